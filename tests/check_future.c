/* SPDX-License-Identifier: MIT */
/* check_future.c - futures: get, waiters, codes, cancel, release, states. */
#include <errno.h>
#include <limits.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdint.h>

#include <check.h>

#include "fault.h"
#include "helpers.h"
#include "park.h"
#include "suites.h"

static int result_sentinel_obj;
#define RESULT_SENTINEL ((void *)&result_sentinel_obj)

/*
 * One worker held by a gate job (gate_fut, RUNNING), and one job x queued
 * behind it (fut, PENDING): the setup of most tests here.
 */
struct held {
	aq_pool *pool;
	struct th_gate gate;
	aq_future *gate_fut;
	struct th_job x;
	aq_future *fut;
};

static void held_setup(struct held *h, int x_ret, void *x_result)
{
	struct aq_job_opts opts = { .arg_destroy = th_job_destroy };

	h->pool = th_pool(1, 16, 0, 0);
	th_gate_init(&h->gate);
	ck_assert_int_eq(aq_submit(h->pool, th_gate_job, &h->gate, NULL,
				   &h->gate_fut),
			 0);
	ck_assert(th_gate_wait_entered(&h->gate, 1));
	th_job_init(&h->x, NULL, x_ret, true, x_result);
	ck_assert_int_eq(aq_submit(h->pool, th_job_fn, &h->x, &opts, &h->fut),
			 0);
}

static void held_teardown(struct held *h)
{
	th_gate_open(&h->gate);
	aq_future_release(h->gate_fut);
	aq_future_release(h->fut);
	aq_pool_destroy(h->pool);
	th_gate_destroy(&h->gate);
}

/* ---- get ---------------------------------------------------------------- */

START_TEST(test_get_timeout_zero)
{
	struct held h;
	void *result = RESULT_SENTINEL;

	held_setup(&h, 0, (void *)0x1234);
	ck_assert_int_eq(aq_future_get(h.fut, &result, 0), -ETIMEDOUT);
	ck_assert_ptr_eq(result, RESULT_SENTINEL); /* untouched */
	ck_assert_int_eq(aq_future_state(h.fut), AQ_STATE_PENDING);
	/* The running gate job has no outcome either. */
	ck_assert_int_eq(aq_future_get(h.gate_fut, &result, 0), -ETIMEDOUT);
	ck_assert_ptr_eq(result, RESULT_SENTINEL);
	ck_assert_int_eq(aq_future_state(h.gate_fut), AQ_STATE_RUNNING);
	ck_assert_int_eq(aq_future_get(h.fut, NULL, 0), -ETIMEDOUT);

	th_gate_open(&h.gate);
	ck_assert_int_eq(aq_future_get(h.fut, &result, -1), 0);
	ck_assert_ptr_eq(result, (void *)0x1234);
	/* Once resolved, timeout 0 answers at once. */
	result = NULL;
	ck_assert_int_eq(aq_future_get(h.fut, &result, 0), 0);
	ck_assert_ptr_eq(result, (void *)0x1234);
	held_teardown(&h);
}
END_TEST

START_TEST(test_get_timeout_expires)
{
	const int64_t timeout = 30 * 1000000LL;
	struct held h;
	void *result = RESULT_SENTINEL;
	int64_t start, waited;

	held_setup(&h, 0, (void *)0x5678);
	start = th_now_ns();
	ck_assert_int_eq(aq_future_get(h.fut, &result, timeout), -ETIMEDOUT);
	waited = th_now_ns() - start;
	ck_assert_msg(waited >= timeout - 2000000,
		      "gave up after %lld ns of a %lld ns timeout",
		      (long long)waited, (long long)timeout);
	ck_assert_ptr_eq(result, RESULT_SENTINEL);
	/* Still valid and still pending. */
	ck_assert_int_eq(aq_future_state(h.fut), AQ_STATE_PENDING);
	ck_assert_int_eq(aq_future_get(h.gate_fut, NULL, timeout),
			 -ETIMEDOUT);

	th_gate_open(&h.gate);
	/* A generous positive timeout returns as soon as the outcome is in. */
	ck_assert_int_eq(aq_future_get(h.fut, &result,
				       (int64_t)(th_poll_seconds() * 1e9)),
			 0);
	ck_assert_ptr_eq(result, (void *)0x5678);
	ck_assert_int_eq(th_ld(&h.x.ran), 1);
	held_teardown(&h);
}
END_TEST

struct opener {
	struct th_gate *gate;
	int wait_entered; /* open once this many threads reached the gate */
};

static void *open_gate_later(void *arg)
{
	struct opener *o = arg;

	th_gate_wait_entered(o->gate, o->wait_entered);
	th_sleep_ms(20); /* let the main thread go to sleep in get */
	th_gate_open(o->gate);
	return NULL;
}

START_TEST(test_get_forever)
{
	struct th_gate gate;
	struct th_job job;
	struct opener o = { &gate, 1 };
	aq_pool *pool = th_pool(1, 4, 0, 0);
	aq_future *fut;
	void *result = NULL;
	pthread_t tid;

	th_gate_init(&gate);
	th_job_init(&job, &gate, 0, true, (void *)0x77);
	ck_assert_int_eq(aq_submit(pool, th_job_fn, &job, NULL, &fut), 0);
	ck_assert_int_eq(pthread_create(&tid, NULL, open_gate_later, &o), 0);
	ck_assert_int_eq(aq_future_get(fut, &result, -1), 0);
	ck_assert_ptr_eq(result, (void *)0x77);
	ck_assert_int_eq(th_ld(&job.returned), 1);
	ck_assert_int_eq(aq_future_state(fut), AQ_STATE_SUCCEEDED);
	/* Any negative timeout means forever. */
	ck_assert_int_eq(aq_future_get(fut, &result, INT64_MIN), 0);
	pthread_join(tid, NULL);
	aq_future_release(fut);
	aq_pool_destroy(pool);
	th_gate_destroy(&gate);
}
END_TEST

static int store_nothing_job(void *arg, void **result)
{
	(void)result;
	return (int)(intptr_t)arg;
}

/* result may be NULL; a job that stores nothing gives NULL. */
START_TEST(test_result_null)
{
	aq_pool *pool = th_pool(1, 8, 0, 0);
	aq_future *ok, *fail;
	void *result = RESULT_SENTINEL;

	ck_assert_int_eq(aq_submit(pool, store_nothing_job, (void *)0, NULL,
				   &ok),
			 0);
	ck_assert_int_eq(aq_submit(pool, store_nothing_job, (void *)5, NULL,
				   &fail),
			 0);
	ck_assert_int_eq(aq_future_get(ok, NULL, -1), 0);
	ck_assert_int_eq(aq_future_get(ok, &result, -1), 0);
	ck_assert_ptr_null(result);
	ck_assert_int_eq(aq_future_get(fail, NULL, -1), 5);
	ck_assert_int_eq(aq_future_get(fail, NULL, 0), 5);
	aq_future_release(ok);
	aq_future_release(fail);
	aq_pool_destroy(pool);
}
END_TEST

/* ---- many waiters ------------------------------------------------------- */

#define NWAITERS 8

struct waiter {
	aq_future *fut;
	int64_t timeout;
	atomic_int started;  /* about to call get */
	atomic_int returned; /* get returned */
	int ret;
	void *result;
};

static void *waiter_main(void *arg)
{
	struct waiter *w = arg;

	atomic_store(&w->started, 1);
	w->ret = aq_future_get(w->fut, &w->result, w->timeout);
	atomic_store(&w->returned, 1);
	return NULL;
}

static void start_waiters(struct waiter *w, pthread_t *tid, aq_future *fut)
{
	for (int i = 0; i < NWAITERS; i++) {
		w[i].fut = fut;
		/* Half wait forever, half with a long positive timeout. */
		w[i].timeout = i % 2 ? -1
				     : (int64_t)(3 * th_poll_seconds() * 1e9);
		atomic_init(&w[i].started, 0);
		atomic_init(&w[i].returned, 0);
		w[i].ret = 12345;
		w[i].result = RESULT_SENTINEL;
		ck_assert_int_eq(pthread_create(&tid[i], NULL, waiter_main,
						&w[i]),
				 0);
	}
	for (int i = 0; i < NWAITERS; i++)
		ck_assert(th_poll_int(&w[i].started, 1));
	th_sleep_ms(20); /* not needed for correctness: let them sleep */
	for (int i = 0; i < NWAITERS; i++)
		ck_assert_msg(th_ld(&w[i].returned) == 0,
			      "waiter %d returned %d before the outcome", i,
			      w[i].ret);
}

static void join_waiters(struct waiter *w, pthread_t *tid, int ret,
			 void *result)
{
	for (int i = 0; i < NWAITERS; i++) {
		pthread_join(tid[i], NULL);
		ck_assert_msg(w[i].ret == ret, "waiter %d got %d, expected %d",
			      i, w[i].ret, ret);
		ck_assert_ptr_eq(w[i].result, result);
	}
}

START_TEST(test_many_waiters)
{
	struct waiter w[NWAITERS];
	pthread_t tid[NWAITERS];
	struct held h;

	/* Success: all see 0 and the same result. */
	held_setup(&h, 0, (void *)0xabc);
	start_waiters(w, tid, h.fut);
	th_gate_open(&h.gate);
	join_waiters(w, tid, 0, (void *)0xabc);
	held_teardown(&h);

	/* Failure: all see the same code and result. */
	held_setup(&h, 33, (void *)0xdef);
	start_waiters(w, tid, h.fut);
	th_gate_open(&h.gate);
	join_waiters(w, tid, 33, (void *)0xdef);
	held_teardown(&h);

	/* Cancel: all wake with -ECANCELED, result untouched. */
	held_setup(&h, 0, (void *)0x123);
	start_waiters(w, tid, h.fut);
	ck_assert_int_eq(aq_future_cancel(h.fut), 0);
	join_waiters(w, tid, -ECANCELED, RESULT_SENTINEL);
	held_teardown(&h);
	ck_assert_int_eq(th_ld(&h.x.ran), 0);
}
END_TEST

/* ---- failure codes ------------------------------------------------------ */

START_TEST(test_negative_return)
{
	/* -1 is left out: it is set aside for AQ_YIELD (scheduler work). */
	static const int rets[] = { -2, -EINVAL, -ECANCELED, -ETIMEDOUT,
				    INT_MIN };
	aq_pool *pool = th_pool(1, 8, 0, 0);

	for (size_t i = 0; i < sizeof(rets) / sizeof(rets[0]); i++) {
		aq_future *fut;

		ck_assert_int_eq(aq_submit(pool, store_nothing_job,
					   (void *)(intptr_t)rets[i], NULL,
					   &fut),
				 0);
		ck_assert_msg(aq_future_get(fut, NULL, -1) == EINVAL,
			      "job returning %d", rets[i]);
		ck_assert_int_eq(aq_future_state(fut), AQ_STATE_FAILED);
		ck_assert_int_eq(aq_future_cancel(fut), -EALREADY);
		aq_future_release(fut);
	}
	aq_pool_destroy(pool);
}
END_TEST

/* ---- cancel ------------------------------------------------------------- */

/*
 * Issue 11, item 8: a job that waits for its own future, which cannot
 * resolve while it waits. It used to time out, or with -1 hang for ever;
 * now the wait is refused with -EDEADLK at once. A poll (timeout 0) is no
 * wait and still says -ETIMEDOUT.
 */
struct self_wait {
	struct th_gate gate; /* the job waits here for its own handle */
	aq_future *self;
	int rc_poll, rc_timed, rc_forever;
};

static int self_wait_job(void *arg, void **result)
{
	struct self_wait *w = arg;

	(void)result;
	th_gate_pass(&w->gate);
	w->rc_poll = aq_future_get(w->self, NULL, 0);
	w->rc_timed = aq_future_get(w->self, NULL, 100 * INT64_C(1000000));
	w->rc_forever = aq_future_get(w->self, NULL, -1);
	return 0;
}

static void self_wait_on(const struct aq_sched_ops *sched)
{
	struct aq_pool_config cfg = { .workers = 1, .sched = sched };
	struct self_wait w = { .rc_poll = 1, .rc_timed = 1, .rc_forever = 1 };
	aq_pool *pool = NULL;

	ck_assert_int_eq(aq_pool_create(&pool, &cfg), 0);
	th_gate_init(&w.gate);
	ck_assert_int_eq(aq_submit(pool, self_wait_job, &w, NULL, &w.self), 0);
	/* The handle is written before the gate opens (its mutex orders
	 * the two). */
	th_gate_open(&w.gate);
	ck_assert_int_eq(aq_future_get(w.self, NULL,
				       (int64_t)(th_poll_seconds() * 1e9)),
			 0);
	ck_assert_int_eq(w.rc_poll, -ETIMEDOUT);
	ck_assert_int_eq(w.rc_timed, -EDEADLK);
	ck_assert_int_eq(w.rc_forever, -EDEADLK);
	aq_future_release(w.self);
	aq_pool_destroy(pool);
	th_gate_destroy(&w.gate);
}

START_TEST(test_get_own_future_edeadlk)
{
	self_wait_on(NULL);
	self_wait_on(aq_sched_fifo());
}
END_TEST

START_TEST(test_cancel_before_start)
{
	struct held h;
	void *result = RESULT_SENTINEL;

	held_setup(&h, 0, (void *)0x1);
	ck_assert_int_eq(aq_future_cancel(h.fut), 0);
	ck_assert_int_eq(aq_future_state(h.fut), AQ_STATE_CANCELLED);
	/* arg_destroy ran on this thread, before cancel returned. */
	ck_assert_int_eq(th_ld(&h.x.destroyed), 1);
	ck_assert(pthread_equal(h.x.destroy_thread, pthread_self()));
	ck_assert_int_eq(aq_future_get(h.fut, &result, 0), -ECANCELED);
	ck_assert_int_eq(aq_future_get(h.fut, &result, -1), -ECANCELED);
	ck_assert_int_eq(aq_future_get(h.fut, &result, 1000000), -ECANCELED);
	ck_assert_ptr_eq(result, RESULT_SENTINEL);
	ck_assert_int_eq(aq_future_cancel(h.fut), -EALREADY);

	/* The worker gets to it and must not run it. */
	th_gate_open(&h.gate);
	ck_assert_int_eq(aq_future_get(h.gate_fut, NULL, -1), 0);
	ck_assert_int_eq(aq_pool_shutdown(h.pool, AQ_SHUTDOWN_DRAIN), 0);
	ck_assert_int_eq(th_ld(&h.x.ran), 0);
	ck_assert_int_eq(th_ld(&h.x.destroyed), 1);
	ck_assert_int_eq(aq_future_state(h.fut), AQ_STATE_CANCELLED);
	ck_assert_int_eq(aq_future_cancel(h.fut), -EALREADY);
	held_teardown(&h);
}
END_TEST

START_TEST(test_cancel_running)
{
	struct th_gate gate;
	struct th_job job;
	struct aq_job_opts opts = { .arg_destroy = th_job_destroy };
	aq_pool *pool = th_pool(1, 4, 0, 0);
	aq_future *fut;
	void *result = NULL;

	th_gate_init(&gate);
	th_job_init(&job, &gate, 0, true, (void *)0x99);
	ck_assert_int_eq(aq_submit(pool, th_job_fn, &job, &opts, &fut), 0);
	ck_assert(th_gate_wait_entered(&gate, 1));
	ck_assert_int_eq(aq_future_state(fut), AQ_STATE_RUNNING);
	ck_assert_int_eq(aq_future_cancel(fut), -EBUSY);
	ck_assert_int_eq(aq_future_cancel(fut), -EBUSY);
	ck_assert_int_eq(aq_future_state(fut), AQ_STATE_RUNNING);
	ck_assert_int_eq(th_ld(&job.destroyed), 0);
	th_gate_open(&gate);
	ck_assert_int_eq(aq_future_get(fut, &result, -1), 0);
	ck_assert_ptr_eq(result, (void *)0x99);
	ck_assert_int_eq(aq_future_state(fut), AQ_STATE_SUCCEEDED);
	ck_assert_int_eq(th_ld(&job.ran), 1);
	ck_assert_int_eq(th_ld(&job.destroyed), 1);
	ck_assert_int_eq(aq_future_cancel(fut), -EALREADY);
	aq_future_release(fut);
	aq_pool_destroy(pool);
	th_gate_destroy(&gate);
}
END_TEST

START_TEST(test_cancel_after_done)
{
	aq_pool *pool = th_pool(1, 8, 0, 0);
	aq_future *ok, *fail;
	void *result = NULL;

	ck_assert_int_eq(aq_submit(pool, store_nothing_job, (void *)0, NULL,
				   &ok),
			 0);
	ck_assert_int_eq(aq_submit(pool, store_nothing_job, (void *)9, NULL,
				   &fail),
			 0);
	ck_assert_int_eq(aq_future_get(ok, &result, -1), 0);
	ck_assert_int_eq(aq_future_get(fail, NULL, -1), 9);
	ck_assert_int_eq(aq_future_cancel(ok), -EALREADY);
	ck_assert_int_eq(aq_future_cancel(fail), -EALREADY);
	/* The outcome did not change. */
	ck_assert_int_eq(aq_future_state(ok), AQ_STATE_SUCCEEDED);
	ck_assert_int_eq(aq_future_state(fail), AQ_STATE_FAILED);
	ck_assert_int_eq(aq_future_get(ok, NULL, 0), 0);
	ck_assert_int_eq(aq_future_get(fail, NULL, 0), 9);
	aq_future_release(ok);
	aq_future_release(fail);
	aq_pool_destroy(pool);
}
END_TEST

/* ---- release ------------------------------------------------------------ */

START_TEST(test_release_before_completion)
{
	struct aq_job_opts opts = { .arg_destroy = th_job_destroy };
	struct th_gate running_gate;
	struct th_job running;
	aq_future *fut;
	struct held h;

	/* Released while pending: still runs. */
	held_setup(&h, 0, NULL);
	aq_future_release(h.fut);
	h.fut = NULL;

	/* Released while running: still finishes. */
	th_gate_init(&running_gate);
	th_job_init(&running, &running_gate, 0, false, NULL);
	ck_assert_int_eq(aq_submit(h.pool, th_job_fn, &running, &opts, &fut),
			 0);
	th_gate_open(&h.gate);
	ck_assert(th_gate_wait_entered(&running_gate, 1));
	aq_future_release(fut);
	th_gate_open(&running_gate);

	aq_pool_destroy(h.pool);
	ck_assert_int_eq(th_ld(&h.x.ran), 1);
	ck_assert_int_eq(th_ld(&h.x.destroyed), 1);
	ck_assert_int_eq(th_ld(&running.ran), 1);
	ck_assert_int_eq(th_ld(&running.destroyed), 1);
	aq_future_release(h.gate_fut);
	th_gate_destroy(&h.gate);
	th_gate_destroy(&running_gate);
}
END_TEST

/* ---- states ------------------------------------------------------------- */

START_TEST(test_state_transitions)
{
	struct th_gate xgate;
	struct th_job xj;
	struct held h;
	aq_future *x, *fail;

	/* Behind h's gate job: xj (which then waits on its own gate, so
	 * RUNNING can be observed) and a job that fails. */
	held_setup(&h, 0, NULL);
	th_gate_init(&xgate);
	th_job_init(&xj, &xgate, 0, false, NULL);
	ck_assert_int_eq(aq_submit(h.pool, th_job_fn, &xj, NULL, &x), 0);
	ck_assert_int_eq(aq_submit(h.pool, store_nothing_job, (void *)4, NULL,
				   &fail),
			 0);

	ck_assert_int_eq(aq_future_state(x), AQ_STATE_PENDING);
	ck_assert_int_eq(aq_future_state(fail), AQ_STATE_PENDING);
	th_gate_open(&h.gate);
	ck_assert(th_gate_wait_entered(&xgate, 1));
	ck_assert_int_eq(aq_future_state(h.gate_fut), AQ_STATE_SUCCEEDED);
	ck_assert_int_eq(aq_future_state(h.fut), AQ_STATE_SUCCEEDED);
	ck_assert_int_eq(aq_future_state(x), AQ_STATE_RUNNING);
	ck_assert_int_eq(aq_future_state(fail), AQ_STATE_PENDING);
	th_gate_open(&xgate);
	ck_assert_int_eq(aq_future_get(x, NULL, -1), 0);
	ck_assert_int_eq(aq_future_state(x), AQ_STATE_SUCCEEDED);
	ck_assert_int_eq(aq_future_get(fail, NULL, -1), 4);
	ck_assert_int_eq(aq_future_state(fail), AQ_STATE_FAILED);
	ck_assert(aq_future_state(x) >= AQ_STATE_SUCCEEDED);
	aq_future_release(x);
	aq_future_release(fail);
	held_teardown(&h);
	th_gate_destroy(&xgate);
}
END_TEST

START_TEST(test_state_values)
{
	ck_assert_int_eq(aq_future_state(NULL), AQ_STATE_INVALID);
	/* The numbering is part of the ABI. */
	ck_assert_int_eq(AQ_STATE_INVALID, -1);
	ck_assert_int_eq(AQ_STATE_PENDING, 0);
	ck_assert_int_eq(AQ_STATE_RUNNING, 1);
	ck_assert_int_eq(AQ_STATE_SUCCEEDED, 16);
	ck_assert_int_eq(AQ_STATE_FAILED, 17);
	ck_assert_int_eq(AQ_STATE_CANCELLED, 18);
}
END_TEST

/* ---- futures outliving their pool --------------------------------------- */

START_TEST(test_outlive_pool)
{
	enum { N = 100 };
	static aq_future *futs[N];
	aq_pool *pool = th_pool(2, 0, 0, 0);
	struct held h;
	void *result;

	for (intptr_t i = 0; i < N; i++)
		ck_assert_int_eq(aq_submit(pool, store_nothing_job,
					   (void *)(i % 4), NULL, &futs[i]),
				 0);
	/* Collect half before the pool goes, the rest after. */
	for (int i = 0; i < N / 2; i++)
		ck_assert_int_eq(aq_future_get(futs[i], NULL, -1), i % 4);
	aq_pool_destroy(pool);
	for (int i = 0; i < N; i++) {
		result = RESULT_SENTINEL;
		ck_assert_int_eq(aq_future_state(futs[i]),
				 i % 4 ? AQ_STATE_FAILED : AQ_STATE_SUCCEEDED);
		ck_assert_int_eq(aq_future_get(futs[i], &result, 0), i % 4);
		ck_assert_int_eq(aq_future_get(futs[i], NULL, -1), i % 4);
		ck_assert_ptr_null(result);
		ck_assert_int_eq(aq_future_cancel(futs[i]), -EALREADY);
		aq_future_release(futs[i]);
	}

	/* One finished, one cancelled, read after the pool is gone. */
	held_setup(&h, 0, NULL);
	ck_assert_int_eq(aq_future_cancel(h.fut), 0);
	th_gate_open(&h.gate);
	aq_pool_destroy(h.pool);
	ck_assert_int_eq(aq_future_state(h.gate_fut), AQ_STATE_SUCCEEDED);
	ck_assert_int_eq(aq_future_get(h.gate_fut, NULL, -1), 0);
	ck_assert_int_eq(aq_future_state(h.fut), AQ_STATE_CANCELLED);
	ck_assert_int_eq(aq_future_get(h.fut, NULL, -1), -ECANCELED);
	ck_assert_int_eq(aq_future_cancel(h.fut), -EALREADY);
	ck_assert_int_eq(th_ld(&h.x.ran), 0);
	ck_assert_int_eq(th_ld(&h.x.destroyed), 1);
	aq_future_release(h.fut);
	aq_future_release(h.gate_fut);
	th_gate_destroy(&h.gate);
}
END_TEST

/* ---- the record cache's lock (aq__lock, park.h) ------------------------- */

#define LOCKERS 4
#define LOCK_ROUNDS 200000

static struct aq__lock counter_lock;
static long plain_counter; /* only under counter_lock */
static long holders;       /* likewise: must be 1 inside */
static atomic_int overlaps;

static void *locker_main(void *arg)
{
	(void)arg;
	for (int i = 0; i < LOCK_ROUNDS; i++) {
		aq__lock(&counter_lock);
		if (++holders != 1)
			atomic_fetch_add(&overlaps, 1);
		plain_counter++;
		/* Now and then hold it long enough for others to sleep. */
		if (i % 4096 == 0)
			th_sleep_ms(1);
		holders--;
		aq__unlock(&counter_lock);
	}
	return NULL;
}

/* Four threads, a plain counter: every increment counted, never two
 * holders at once, and the sleeping path (word 2) taken and left. */
START_TEST(test_lock_mutual_exclusion)
{
	pthread_t t[LOCKERS];

	aq__lock_init(&counter_lock);
	plain_counter = 0;
	holders = 0;
	atomic_init(&overlaps, 0);
	for (int i = 0; i < LOCKERS; i++)
		ck_assert_int_eq(pthread_create(&t[i], NULL, locker_main, NULL),
				 0);
	for (int i = 0; i < LOCKERS; i++)
		pthread_join(t[i], NULL);
	ck_assert_int_eq(th_ld(&overlaps), 0);
	ck_assert_int_eq(plain_counter, (long)LOCKERS * LOCK_ROUNDS);
	ck_assert_uint_eq(atomic_load(&counter_lock.word), 0);
}
END_TEST

/* ---- a cancel in flight while its pool is destroyed (issue 11) ---------- */

struct cancel_in_flight {
	aq_future *fut;
	struct th_gate pause_gate; /* the canceller waits here, between its
				      look at the state and what follows */
	int ret;                   /* what aq_future_cancel returned */
	aq_pool *pool;
	atomic_int destroyed;      /* aq_pool_destroy has returned */
};

static void hold_canceller(enum aq__pause_site site, void *user)
{
	struct cancel_in_flight *c = user;

	if (site == AQ__PAUSE_CANCEL_READ)
		th_gate_pass(&c->pause_gate);
}

static void *canceller_main(void *arg)
{
	struct cancel_in_flight *c = arg;

	c->ret = aq_future_cancel(c->fut);
	return NULL;
}

static void *destroyer_main(void *arg)
{
	struct cancel_in_flight *c = arg;

	aq_pool_destroy(c->pool);
	atomic_store(&c->destroyed, 1);
	return NULL;
}

/*
 * aq_future_cancel() reads the state, and if it is not final goes on to
 * use the pool. Held just after that read (the job still RUNNING), while
 * the job finishes and its pool is shut down and destroyed by another
 * thread: the destroy must wait for the cancel (which then returns -EBUSY,
 * the state it saw), not free the pool under it. It once did: the cancel
 * then counted itself in on the freed pool (ASan: heap-use-after-free).
 * The pause before the cancel is let go is time for a broken destroy to
 * finish; a working one waits whatever it is.
 */
START_TEST(test_cancel_in_flight_keeps_its_pool)
{
	struct cancel_in_flight c = { .ret = 1 };
	pthread_t canceller, destroyer;
	struct th_gate gate;

	th_gate_init(&gate);
	th_gate_init(&c.pause_gate);
	c.pool = th_pool(1, 16, 0, 0);
	ck_assert_int_eq(aq_submit(c.pool, th_gate_job, &gate, NULL, &c.fut),
			 0);
	ck_assert(th_gate_wait_entered(&gate, 1));
	aq__pause_set(hold_canceller, &c);
	ck_assert_int_eq(pthread_create(&canceller, NULL, canceller_main, &c),
			 0);
	ck_assert(th_gate_wait_entered(&c.pause_gate, 1));
	aq__pause_set(NULL, NULL);
	th_gate_open(&gate);
	ck_assert(th_poll_state(c.fut, AQ_STATE_SUCCEEDED));
	ck_assert_int_eq(pthread_create(&destroyer, NULL, destroyer_main, &c),
			 0);
	for (int ms = 0; ms < 200 && !th_ld(&c.destroyed); ms++)
		th_sleep_ms(1);
	ck_assert_msg(!th_ld(&c.destroyed),
		      "the pool was destroyed under a cancel in flight");
	th_gate_open(&c.pause_gate);
	pthread_join(canceller, NULL);
	pthread_join(destroyer, NULL);
	ck_assert_int_eq(c.ret, -EBUSY);
	ck_assert_int_eq(aq_future_state(c.fut), AQ_STATE_SUCCEEDED);
	ck_assert_int_eq(aq_future_cancel(c.fut), -EALREADY);
	aq_future_release(c.fut);
	th_gate_destroy(&c.pause_gate);
}
END_TEST

/*
 * Regression (issue 11, item 4): a helping wait checked its timeout only
 * when it found nothing to help with, so on a worker whose pool always had
 * another job queued, aq_future_get() with a 20 ms timeout never returned.
 * A ticker job here queues the next ticker before it returns, for as long
 * as the waiter waits: the waiter's timeout must still end its wait, after
 * at most the ticker it is running (_i: 0 the ring alone, 1 a policy).
 */
struct endless {
	aq_pool *pool;
	aq_future *held;   /* runs on the other worker until the gate opens */
	atomic_int stop;   /* tickers stop queueing more */
	atomic_long ticks; /* tickers run */
	int rc;            /* the helping wait's return */
	int64_t waited_ns; /* how long it took */
	atomic_int done;   /* the waiter has returned */
};

static int ticker_job(void *arg, void **result)
{
	struct endless *e = arg;

	(void)result;
	atomic_fetch_add(&e->ticks, 1);
	if (!atomic_load(&e->stop) &&
	    aq_submit(e->pool, ticker_job, e, NULL, NULL) != 0)
		return 1;
	return 0;
}

static int endless_waiter_job(void *arg, void **result)
{
	struct endless *e = arg;
	int64_t start;

	(void)result;
	if (aq_submit(e->pool, ticker_job, e, NULL, NULL) != 0)
		return 1;
	start = th_now_ns();
	e->rc = aq_future_get(e->held, NULL, 20 * 1000000LL);
	e->waited_ns = th_now_ns() - start;
	atomic_store(&e->stop, 1);
	atomic_store(&e->done, 1);
	return 0;
}

START_TEST(test_helping_wait_timeout_endless_work)
{
	struct aq_pool_config cfg = { .workers = 2,
				      .sched = _i ? aq_sched_fifo() : NULL };
	struct endless e = { 0 };
	struct th_gate gate;
	aq_future *waiter;

	ck_assert_int_eq(aq_pool_create(&e.pool, &cfg), 0);
	th_gate_init(&gate);
	atomic_init(&e.stop, 0);
	atomic_init(&e.ticks, 0);
	atomic_init(&e.done, 0);
	ck_assert_int_eq(aq_submit(e.pool, th_gate_job, &gate, NULL, &e.held),
			 0);
	ck_assert(th_gate_wait_entered(&gate, 1));
	/* The other worker takes the waiter; it alone runs the tickers. */
	ck_assert_int_eq(aq_submit(e.pool, endless_waiter_job, &e, NULL,
				   &waiter),
			 0);
	ck_assert_msg(th_poll_int(&e.done, 1),
		      "a helping wait with a 20 ms timeout never returned "
		      "(%ld jobs run meanwhile)",
		      th_ldl(&e.ticks));
	ck_assert_int_eq(e.rc, -ETIMEDOUT);
	ck_assert_msg(e.waited_ns >= 20 * 1000000LL,
		      "gave up after %lld ns", (long long)e.waited_ns);
	ck_assert(th_ldl(&e.ticks) >= 1);
	th_gate_open(&gate);
	ck_assert_int_eq(aq_future_get(waiter, NULL, -1), 0);
	ck_assert_int_eq(aq_future_get(e.held, NULL, -1), 0);
	aq_future_release(waiter);
	aq_future_release(e.held);
	aq_pool_destroy(e.pool);
	th_gate_destroy(&gate);
}
END_TEST

/* ---- plain records: a future and no options ------------------------------ */

/* What a plain job did, for the tests below. */
struct plain {
	int ret;           /* what it returns (after its yields) */
	int yields;        /* AQ_YIELD this many times first */
	atomic_int calls;  /* calls so far */
	atomic_int then_calls; /* then-callbacks run on its future */
	unsigned attempt;  /* aq_current_attempt() in its last call */
	bool fail_msg;     /* set a failure message */
};

static int plain_job(void *arg, void **result)
{
	struct plain *p = arg;
	int call = atomic_fetch_add(&p->calls, 1);

	p->attempt = aq_current_attempt();
	if (call < p->yields)
		return AQ_YIELD;
	if (p->fail_msg)
		ck_assert_int_eq(aq_current_fail_msg("plain failure"), 0);
	*result = p;
	return p->ret;
}

static void plain_then(aq_future *fut, void *user)
{
	(void)fut;
	atomic_fetch_add(&((struct plain *)user)->then_calls, 1);
}

/*
 * A record that failed with a message, a then-callback and an error
 * record is recycled for the jobs that follow (one worker, so the one
 * that ran it has put it back before it runs the next). They fail too,
 * with no message: each error record is fresh (one attempt, no message,
 * its own id and times) and each then-list its own.
 */
START_TEST(test_plain_record_recycled_clean)
{
	enum { NEXT = 8 };
	aq_pool *pool = th_pool(1, 64, 0, 0);
	struct plain dirty = { .ret = 7, .fail_msg = true };
	struct plain next[NEXT + 1] = { 0 };
	aq_future *futs[NEXT + 1];
	struct aq_error err;
	uintptr_t dirty_rec;
	uint64_t dirty_id;
	int64_t before, after;
	bool reused = false;
	void *result = NULL;
	aq_future *fut;

	ck_assert_int_eq(aq_pool_now(pool, &before), 0);
	ck_assert_int_eq(aq_submit(pool, plain_job, &dirty, NULL, &fut), 0);
	ck_assert_int_eq(aq_future_then(fut, plain_then, &dirty, NULL), 0);
	ck_assert_int_eq(aq_future_get(fut, &result, -1), 7);
	ck_assert_int_eq(aq_pool_now(pool, &after), 0);
	ck_assert_int_eq(aq_future_error(fut, &err), 0);
	ck_assert_uint_eq(err.attempts, 1);
	ck_assert_int_eq(err.code, 7);
	ck_assert_str_eq(err.message, "plain failure");
	ck_assert_int_ge(err.first_attempt_ns, before);
	ck_assert_int_le(err.first_attempt_ns, after);
	ck_assert_int_eq(err.last_attempt_ns, err.first_attempt_ns);
	dirty_id = err.job_id;
	ck_assert_uint_gt(dirty_id, 0);
	dirty_rec = (uintptr_t)fut;
	aq_future_release(fut);

	/* The first runs after the worker has put the failed record back;
	 * holding all of them empties the cache, so one gets it. */
	for (int i = 0; i <= NEXT; i++) {
		next[i].ret = 3;
		ck_assert_int_eq(aq_submit(pool, plain_job, &next[i], NULL,
					   &futs[i]),
				 0);
		if (i == 0)
			ck_assert_int_eq(aq_future_get(futs[0], NULL, -1), 3);
	}
	for (int i = 0; i <= NEXT; i++) {
		result = NULL;
		ck_assert_int_eq(aq_future_get(futs[i], &result, -1), 3);
		ck_assert_ptr_eq(result, &next[i]);
		ck_assert_int_eq(aq_future_state(futs[i]), AQ_STATE_FAILED);
		ck_assert_int_eq(aq_future_error(futs[i], &err), 0);
		ck_assert_uint_eq(err.attempts, 1);
		ck_assert_int_eq(err.code, 3);
		ck_assert_ptr_null(err.message);
		ck_assert_uint_gt(err.job_id, dirty_id);
		ck_assert_int_ge(err.first_attempt_ns, after);
		ck_assert_int_eq(err.last_attempt_ns, err.first_attempt_ns);
		ck_assert_uint_eq(next[i].attempt, 1);
		ck_assert_int_eq(th_ld(&next[i].calls), 1);
		/* Registered after the outcome: runs at once, once. */
		ck_assert_int_eq(aq_future_then(futs[i], plain_then, &next[i],
						NULL),
				 0);
		ck_assert_int_eq(th_ld(&next[i].then_calls), 1);
		reused = reused || (uintptr_t)futs[i] == dirty_rec;
	}
	ck_assert_msg(reused, "no job got the failed job's record back");
	ck_assert_int_eq(th_ld(&dirty.then_calls), 1);
	ck_assert_int_eq(th_ld(&dirty.calls), 1);
	for (int i = 0; i <= NEXT; i++)
		aq_future_release(futs[i]);
	aq_pool_destroy(pool);
}
END_TEST

/*
 * A plain job on a pool without a scheduler that yields: queued again and
 * resumed in the same attempt, then counted once as started and once as
 * succeeded.
 */
START_TEST(test_plain_record_yields_resume)
{
	aq_pool *pool = th_pool(1, 16, 0, 0);
	struct plain p = { .ret = 0, .yields = 2 };
	struct aq_pool_stats st;
	aq_future *fut;

	ck_assert_int_eq(aq_submit(pool, plain_job, &p, NULL, &fut), 0);
	ck_assert_int_eq(aq_future_get(fut, NULL, -1), 0);
	ck_assert_int_eq(th_ld(&p.calls), 3);
	ck_assert_uint_eq(p.attempt, 1);
	aq_future_release(fut);
	ck_assert_int_eq(aq_pool_shutdown(pool, 0), 0);
	ck_assert_int_eq(aq_pool_stats(pool, &st), 0);
	ck_assert_uint_eq(st.submitted, 1);
	ck_assert_uint_eq(st.started, 1);
	ck_assert_uint_eq(st.succeeded, 1);
	ck_assert_uint_eq(st.failed, 0);
	aq_pool_destroy(pool);
}
END_TEST

/*
 * The short submit path of a job with a future and no options meets a full
 * ring: refused with -EAGAIN, *fut NULL, counted as rejected; and a
 * blocking pool makes it wait for space instead.
 */
START_TEST(test_plain_record_full_ring)
{
	bool blocking = _i == 1;
	aq_pool *pool = th_pool(1, 2, blocking ? AQ_POOL_BLOCK : 0, 0);
	struct plain p[3] = { 0 };
	aq_future *futs[3] = { NULL, NULL, NULL };
	aq_future *gate_fut, *late = (aq_future *)&late;
	struct aq_pool_stats st;
	struct th_gate gate;
	unsigned queued = 0;
	struct opener o = { &gate, 1 };
	pthread_t tid;

	th_gate_init(&gate);
	ck_assert_int_eq(aq_submit(pool, th_gate_job, &gate, NULL, &gate_fut),
			 0);
	ck_assert(th_gate_wait_entered(&gate, 1));
	/* Fill the ring (two slots) behind the held worker. */
	for (; queued < 2; queued++)
		ck_assert_int_eq(aq_submit(pool, plain_job, &p[queued], NULL,
					   &futs[queued]),
				 0);
	if (!blocking) {
		ck_assert_int_eq(aq_submit(pool, plain_job, &p[2], NULL, &late),
				 -EAGAIN);
		ck_assert_ptr_null(late);
		th_gate_open(&gate);
	} else {
		/* Space comes when the gate opens, from another thread. */
		ck_assert_int_eq(pthread_create(&tid, NULL, open_gate_later,
						&o),
				 0);
		ck_assert_int_eq(aq_submit(pool, plain_job, &p[2], NULL,
					   &futs[2]),
				 0);
		ck_assert_int_eq(pthread_join(tid, NULL), 0);
		queued++;
	}
	for (unsigned i = 0; i < queued; i++) {
		ck_assert_int_eq(aq_future_get(futs[i], NULL, -1), 0);
		aq_future_release(futs[i]);
	}
	ck_assert_int_eq(aq_future_get(gate_fut, NULL, -1), 0);
	aq_future_release(gate_fut);
	ck_assert_int_eq(aq_pool_shutdown(pool, 0), 0);
	ck_assert_int_eq(aq_pool_stats(pool, &st), 0);
	ck_assert_uint_eq(st.rejected, blocking ? 0u : 1u);
	ck_assert_uint_eq(st.submitted, 1 + queued);
	ck_assert_uint_eq(st.succeeded, 1 + queued);
	aq_pool_destroy(pool);
	th_gate_destroy(&gate);
}
END_TEST

Suite *future_suite(void)
{
	Suite *s = suite_create("future");
	TCase *get = tcase_create("get");
	TCase *cancel = tcase_create("cancel");
	TCase *life = tcase_create("lifetime");
	TCase *plain = tcase_create("plain");

	tcase_set_timeout(get, TH_TIMEOUT);
	tcase_add_test(get, test_get_timeout_zero);
	tcase_add_test(get, test_get_timeout_expires);
	tcase_add_test(get, test_get_forever);
	tcase_add_test(get, test_result_null);
	tcase_add_test(get, test_many_waiters);
	tcase_add_test(get, test_negative_return);
	tcase_add_test(get, test_get_own_future_edeadlk);

	tcase_add_loop_test(get, test_helping_wait_timeout_endless_work, 0, 2);
	suite_add_tcase(s, get);

	tcase_set_timeout(cancel, TH_TIMEOUT);
	tcase_add_test(cancel, test_cancel_before_start);
	tcase_add_test(cancel, test_cancel_running);
	tcase_add_test(cancel, test_cancel_after_done);
	tcase_add_test(cancel, test_cancel_in_flight_keeps_its_pool);
	suite_add_tcase(s, cancel);

	tcase_set_timeout(life, TH_TIMEOUT);
	tcase_add_test(life, test_release_before_completion);
	tcase_add_test(life, test_state_transitions);
	tcase_add_test(life, test_state_values);
	tcase_add_test(life, test_outlive_pool);
	tcase_add_test(life, test_lock_mutual_exclusion);
	suite_add_tcase(s, life);

	tcase_set_timeout(plain, TH_TIMEOUT);
	tcase_add_test(plain, test_plain_record_recycled_clean);
	tcase_add_test(plain, test_plain_record_yields_resume);
	tcase_add_loop_test(plain, test_plain_record_full_ring, 0, 2);
	suite_add_tcase(s, plain);
	return s;
}
