/* SPDX-License-Identifier: MIT */
/* check_shutdown.c - shutdown (drain and cancel), destroy, and misuse. */
#include <errno.h>
#include <pthread.h>
#include <sched.h>
#include <stdbool.h>
#include <stdatomic.h>
#include <stdint.h>
#include <stdlib.h>

#include <check.h>

#include "helpers.h"
#include "suites.h"

/* The pool jobs of a test submit to (each test runs in its own process). */
static aq_pool *test_pool;

/* ---- shutdown in another thread, and knowing it has begun --------------- */

static int count_int_job(void *arg, void **result)
{
	(void)result;
	atomic_fetch_add((atomic_int *)arg, 1);
	return 0;
}

/*
 * Probe until submits to pool fail with -ESHUTDOWN, i.e. shutdown has
 * begun. Probes that the pool still accepts are counted in *accepted (they
 * add one to *counter when they run). Between probes it sleeps a
 * millisecond, and then any refusal but -EAGAIN (full ring: "not yet")
 * fails the test; with spin it only yields, so that it sees the shutdown
 * begin as soon as it can, and takes any other refusal as "not yet".
 */
static bool probe_until_shutdown(aq_pool *pool, atomic_long *counter,
				 int *accepted, bool spin)
{
	int64_t deadline = th_now_ns() + th_long_ns();
	struct aq_job_opts noblock = { .flags = AQ_JOB_NOBLOCK };

	while (th_now_ns() < deadline) {
		int ret = aq_submit(pool, th_count_job, counter, &noblock,
				    NULL);

		if (ret == -ESHUTDOWN)
			return true;
		if (ret == 0)
			(*accepted)++;
		else if (!spin && ret != -EAGAIN)
			ck_abort_msg("probe submit returned %d", ret);
		if (spin)
			sched_yield();
		else
			th_sleep_ms(1);
	}
	return false;
}

/* Wait, a millisecond between probes, until shutdown has begun. */
static bool wait_shutdown_begun(aq_pool *pool, atomic_long *counter,
				int *accepted)
{
	return probe_until_shutdown(pool, counter, accepted, false);
}

/* ---- drain -------------------------------------------------------------- */

#define DRAIN_N 10000

static atomic_int drain_runs[DRAIN_N]; /* times job i ran */

/* arg is the job index; the result is index + 1. */
static int drain_job(void *arg, void **result)
{
	atomic_fetch_add(&drain_runs[(uintptr_t)arg], 1);
	*result = (void *)((uintptr_t)arg + 1);
	return 0;
}

START_TEST(test_drain_many)
{
	static aq_future *futs[DRAIN_N];
	aq_pool *pool = th_pool(2, 16384, 0, 0);
	aq_future *late = (aq_future *)(void *)futs;

	for (unsigned i = 0; i < DRAIN_N; i++)
		atomic_init(&drain_runs[i], 0);
	for (uintptr_t i = 0; i < DRAIN_N; i++)
		ck_assert_int_eq(aq_submit(pool, drain_job, (void *)i, NULL,
					   &futs[i]),
				 0);
	/* Most of them are still queued now. */
	ck_assert_int_eq(aq_pool_shutdown(pool, AQ_SHUTDOWN_DRAIN), 0);
	ck_assert_int_eq(aq_submit(pool, drain_job, (void *)0, NULL, &late),
			 -ESHUTDOWN);
	ck_assert_ptr_null(late);
	for (uintptr_t i = 0; i < DRAIN_N; i++) {
		void *result = NULL;

		ck_assert_int_eq(th_ld(&drain_runs[i]), 1);
		ck_assert_int_eq(aq_future_state(futs[i]), AQ_STATE_SUCCEEDED);
		ck_assert_int_eq(aq_future_get(futs[i], &result, 0), 0);
		ck_assert_ptr_eq(result, (void *)(i + 1));
		aq_future_release(futs[i]);
	}
	aq_pool_destroy(pool);
}
END_TEST

/*
 * A drain that begins while a gate holds the only worker: jobs queued
 * before it all run; the gate job's own submit, made during the drain,
 * gets -ESHUTDOWN.
 */
struct late_submitter {
	aq_pool *pool;
	struct th_gate gate;
	atomic_long *counter;
	int ret; /* its submit after the gate */
};

static int late_submit_job(void *arg, void **result)
{
	struct late_submitter *l = arg;

	(void)result;
	th_gate_pass(&l->gate);
	l->ret = aq_submit(l->pool, th_count_job, l->counter, NULL, NULL);
	return 0;
}

START_TEST(test_drain_behind_gate)
{
	enum { N = 1000 };
	static atomic_long count;
	struct th_shutdown st = { 0 };
	struct late_submitter l;
	aq_pool *pool = th_pool(1, 2048, 0, 0);
	aq_future *lfut;
	int accepted = 0;

	atomic_init(&count, 0);
	l.pool = pool;
	l.counter = &count;
	l.ret = 1;
	th_gate_init(&l.gate);
	ck_assert_int_eq(aq_submit(pool, late_submit_job, &l, NULL, &lfut), 0);
	ck_assert(th_gate_wait_entered(&l.gate, 1));
	for (int i = 0; i < N; i++)
		ck_assert_int_eq(aq_submit(pool, th_count_job, &count, NULL,
					   NULL),
				 0);
	th_shutdown_start(&st, pool, AQ_SHUTDOWN_DRAIN);
	ck_assert(wait_shutdown_begun(pool, &count, &accepted));
	ck_assert_int_eq(th_ldl(&count), 0); /* the gate still holds */
	th_gate_open(&l.gate);
	pthread_join(st.tid, NULL);
	ck_assert_int_eq(st.ret, 0);
	ck_assert_int_eq(aq_future_get(lfut, NULL, 0), 0);
	ck_assert_int_eq(l.ret, -ESHUTDOWN);
	ck_assert_int_eq(th_ldl(&count), N + accepted);
	aq_future_release(lfut);
	aq_pool_destroy(pool);
	ck_assert_int_eq(th_ldl(&count), N + accepted);
	th_gate_destroy(&l.gate);
}
END_TEST

/* ---- cancel ------------------------------------------------------------- */

#define CQ_N 64 /* the ring's capacity: the queue is full */

START_TEST(test_cancel_queued)
{
	static struct th_job jobs[CQ_N];
	static aq_future *futs[CQ_N];
	static atomic_int inline_runs;
	struct aq_job_opts with_destroy = { .arg_destroy = th_job_destroy };
	struct aq_job_opts noblock = { .flags = AQ_JOB_NOBLOCK };
	struct th_shutdown st = { 0 };
	struct th_gate gate;
	struct th_job holder, probe;
	aq_future *holder_fut;
	void *hres = NULL;
	aq_pool *pool = th_pool(1, CQ_N, 0, 0);
	int submitted = 0, succeeded = 0, cancelled = 0;
	int64_t deadline;
	int ret;

	th_gate_init(&gate);
	atomic_init(&inline_runs, 0);
	th_job_init(&holder, &gate, 0, true, (void *)0x42);
	th_job_init(&probe, NULL, 0, false, NULL);
	ck_assert_int_eq(aq_submit(pool, th_job_fn, &holder, &with_destroy,
				   &holder_fut),
			 0);
	submitted++;
	ck_assert(th_gate_wait_entered(&gate, 1));

	/* Fill the ring with every kind of job. */
	for (int i = 0; i < CQ_N; i++) {
		th_job_init(&jobs[i], NULL, 0, false, NULL);
		futs[i] = NULL;
		switch (i % 4) {
		case 0: /* inline fire-and-forget: simply dropped */
			ret = aq_submit(pool, count_int_job, &inline_runs,
					NULL, NULL);
			break;
		case 1: /* future and arg_destroy */
			ret = aq_submit(pool, th_job_fn, &jobs[i],
					&with_destroy, &futs[i]);
			submitted++;
			break;
		case 2: /* future only */
			ret = aq_submit(pool, th_job_fn, &jobs[i], NULL,
					&futs[i]);
			submitted++;
			break;
		default: /* fire-and-forget with arg_destroy */
			ret = aq_submit(pool, th_job_fn, &jobs[i],
					&with_destroy, NULL);
			break;
		}
		ck_assert_int_eq(ret, 0);
	}
	ck_assert_int_eq(aq_submit(pool, th_job_fn, &probe, &noblock, NULL),
			 -EAGAIN);

	th_shutdown_start(&st, pool, AQ_SHUTDOWN_CANCEL);
	/* The ring is full, so the probe can only fail: -EAGAIN until the
	 * shutdown begins, then -ESHUTDOWN. */
	deadline = th_now_ns() + th_long_ns();
	while ((ret = aq_submit(pool, th_job_fn, &probe, &with_destroy,
				NULL)) == -EAGAIN &&
	       th_now_ns() < deadline)
		th_sleep_ms(1);
	ck_assert_int_eq(ret, -ESHUTDOWN);
	ck_assert_int_eq(th_ld(&st.returned), 0); /* the gate holds */
	th_gate_open(&gate);
	pthread_join(st.tid, NULL);
	ck_assert_int_eq(st.ret, 0);

	/* The running job finished normally. */
	ck_assert_int_eq(aq_future_get(holder_fut, &hres, 0), 0);
	ck_assert_ptr_eq(hres, (void *)0x42);
	ck_assert_int_eq(th_ld(&holder.ran), 1);
	ck_assert_int_eq(th_ld(&holder.destroyed), 1);
	succeeded++;
	/* Nothing queued ran; every future resolved CANCELLED; every
	 * arg_destroy ran exactly once. */
	ck_assert_int_eq(th_ld(&inline_runs), 0);
	aq_pool_destroy(pool);
	for (int i = 0; i < CQ_N; i++) {
		void *result = (void *)&gate;

		ck_assert_int_eq(th_ld(&jobs[i].ran), 0);
		ck_assert_int_eq(th_ld(&jobs[i].destroyed),
				 (i % 4 == 1 || i % 4 == 3) ? 1 : 0);
		if (!futs[i])
			continue;
		ck_assert_int_eq(aq_future_state(futs[i]), AQ_STATE_CANCELLED);
		ck_assert_int_eq(aq_future_get(futs[i], &result, -1),
				 -ECANCELED);
		ck_assert_ptr_eq(result, (void *)&gate);
		ck_assert_int_eq(aq_future_cancel(futs[i]), -EALREADY);
		cancelled++;
		aq_future_release(futs[i]);
	}
	ck_assert_int_eq(succeeded + cancelled, submitted);
	ck_assert_int_eq(cancelled, CQ_N / 2);
	ck_assert_int_eq(th_ld(&probe.ran), 0);
	ck_assert_int_eq(th_ld(&probe.destroyed), 0);
	aq_future_release(holder_fut);
	th_gate_destroy(&gate);
}
END_TEST

/*
 * Issue 11, item 7: a running job waits on its queued child after a
 * cancelling shutdown began. The wait may run the child in place (the one
 * worker is the parent), but must cancel it as a worker would: the child
 * never runs and the parent's wait gets -ECANCELED (it ran, and returned
 * 0, before the fix).
 */
struct wait_child {
	struct th_gate gate; /* the parent waits here before its wait */
	struct th_job child;
	aq_future *child_fut;
	int submit_rc, get_rc;
};

static int wait_child_parent(void *arg, void **result)
{
	struct wait_child *w = arg;
	struct aq_job_opts opts = { .arg_destroy = th_job_destroy };

	(void)result;
	w->submit_rc = aq_submit(test_pool, th_job_fn, &w->child,
				 &opts, &w->child_fut);
	th_gate_pass(&w->gate);
	w->get_rc = aq_future_get(w->child_fut, NULL, -1);
	return 0;
}

START_TEST(test_cancel_shutdown_wait_runs_no_child)
{
	struct wait_child w = { .submit_rc = 1, .get_rc = 1 };
	aq_future *parent;
	aq_pool *pool = th_pool(1, 16, 0, 0);

	test_pool = pool;
	th_gate_init(&w.gate);
	th_job_init(&w.child, NULL, 0, false, NULL);
	ck_assert_int_eq(aq_submit(pool, wait_child_parent, &w, NULL, &parent),
			 0);
	ck_assert(th_gate_wait_entered(&w.gate, 1));
	ck_assert_int_eq(w.submit_rc, 0);
	/* The cancelling shutdown begins (here, so that it happens before
	 * the gate opens) and cannot finish while the parent runs. */
	ck_assert_int_eq(aq_pool_shutdown_timed(pool, AQ_SHUTDOWN_CANCEL, 0),
			 -ETIMEDOUT);
	th_gate_open(&w.gate);
	ck_assert_int_eq(aq_future_get(parent, NULL, (int64_t)(th_poll_seconds() *
								1e9)),
			 0);
	ck_assert_int_eq(aq_pool_shutdown(pool, AQ_SHUTDOWN_CANCEL), 0);
	ck_assert_int_eq(w.get_rc, -ECANCELED);
	ck_assert_int_eq(th_ld(&w.child.ran), 0);
	ck_assert_int_eq(th_ld(&w.child.destroyed), 1);
	ck_assert_int_eq(aq_future_state(w.child_fut), AQ_STATE_CANCELLED);
	aq_future_release(w.child_fut);
	aq_future_release(parent);
	aq_pool_destroy(pool);
	th_gate_destroy(&w.gate);
}
END_TEST

/* ---- after shutdown ----------------------------------------------------- */

START_TEST(test_submit_after_shutdown)
{
	static const unsigned pool_flags[] = { 0, AQ_POOL_BLOCK };
	struct aq_job_opts variants[] = {
		{ .arg_destroy = th_job_destroy },
		{ .flags = AQ_JOB_BLOCK, .arg_destroy = th_job_destroy },
		{ .flags = AQ_JOB_BLOCK, .timeout_ns = 1000000,
		  .arg_destroy = th_job_destroy },
		{ .flags = AQ_JOB_NOBLOCK, .arg_destroy = th_job_destroy },
	};
	static int sentinel_obj;

	for (size_t p = 0; p < 2; p++) {
		aq_pool *pool = th_pool(1, 4, pool_flags[p], 0);
		struct th_job job;

		th_job_init(&job, NULL, 0, false, NULL);
		ck_assert_int_eq(aq_pool_shutdown(pool, AQ_SHUTDOWN_DRAIN), 0);
		ck_assert_int_eq(aq_submit(pool, th_job_fn, &job, NULL, NULL),
				 -ESHUTDOWN);
		for (size_t v = 0; v < sizeof(variants) / sizeof(variants[0]);
		     v++) {
			aq_future *fut = (aq_future *)(void *)&sentinel_obj;

			ck_assert_int_eq(aq_submit(pool, th_job_fn, &job,
						   &variants[v], &fut),
					 -ESHUTDOWN);
			ck_assert_ptr_null(fut);
			ck_assert_int_eq(aq_submit(pool, th_job_fn, &job,
						   &variants[v], NULL),
					 -ESHUTDOWN);
		}
		aq_pool_destroy(pool);
		ck_assert_int_eq(th_ld(&job.ran), 0);
		ck_assert_int_eq(th_ld(&job.destroyed), 0);
	}
}
END_TEST

START_TEST(test_shutdown_twice)
{
	static const unsigned seq[][2] = {
		{ AQ_SHUTDOWN_DRAIN, AQ_SHUTDOWN_DRAIN },
		{ AQ_SHUTDOWN_DRAIN, AQ_SHUTDOWN_CANCEL },
		{ AQ_SHUTDOWN_CANCEL, AQ_SHUTDOWN_DRAIN },
		{ AQ_SHUTDOWN_CANCEL, AQ_SHUTDOWN_CANCEL },
	};

	for (size_t i = 0; i < sizeof(seq) / sizeof(seq[0]); i++) {
		static atomic_long count;
		aq_pool *pool = th_pool(2, 64, 0, 0);
		aq_future *fut;

		atomic_init(&count, 0);
		ck_assert_int_eq(aq_submit(pool, th_count_job, &count, NULL,
					   &fut),
				 0);
		ck_assert_int_eq(aq_future_get(fut, NULL, -1), 0);
		ck_assert_int_eq(aq_pool_shutdown(pool, seq[i][0]), 0);
		ck_assert_int_eq(aq_pool_shutdown(pool, seq[i][1]), 0);
		ck_assert_int_eq(aq_pool_shutdown(pool, seq[i][1]), 0);
		ck_assert_int_eq(aq_future_state(fut), AQ_STATE_SUCCEEDED);
		ck_assert_int_eq(th_ldl(&count), 1);
		aq_future_release(fut);
		aq_pool_destroy(pool);
	}
}
END_TEST

/* An idle pool (workers parked) shuts down promptly and cleanly. */
START_TEST(test_shutdown_idle)
{
	aq_pool *pool = th_pool(4, 0, 0, 0);

	ck_assert_int_eq(aq_pool_workers(pool), 4);
	ck_assert_int_eq(aq_pool_shutdown(pool, AQ_SHUTDOWN_DRAIN), 0);
	ck_assert_int_eq(aq_pool_workers(pool), 0); /* all joined */
	aq_pool_destroy(pool);

	pool = th_pool(4, 0, 0, 0);
	ck_assert_int_eq(aq_pool_shutdown(pool, AQ_SHUTDOWN_CANCEL), 0);
	aq_pool_destroy(pool);

	pool = th_pool(4, 0, 0, 0);
	aq_pool_destroy(pool); /* no shutdown at all */
}
END_TEST

/* ---- shutdown and destroy from inside a job ----------------------------- */

struct self_shutdown {
	aq_pool *own;   /* the pool the job runs in */
	aq_pool *other; /* another pool */
	int own_drain, own_cancel, other_ret;
};

static int self_shutdown_job(void *arg, void **result)
{
	struct self_shutdown *s = arg;

	(void)result;
	s->own_drain = aq_pool_shutdown(s->own, AQ_SHUTDOWN_DRAIN);
	s->own_cancel = aq_pool_shutdown(s->own, AQ_SHUTDOWN_CANCEL);
	/* Documented misuse: does nothing from one of the pool's workers. */
	aq_pool_destroy(s->own);
	s->other_ret = aq_pool_shutdown(s->other, AQ_SHUTDOWN_DRAIN);
	return 0;
}

START_TEST(test_shutdown_from_job)
{
	static atomic_long count;
	struct self_shutdown s;
	aq_pool *pool = th_pool(2, 16, 0, 0);
	aq_pool *other = th_pool(1, 16, 0, 0);
	aq_future *fut;

	atomic_init(&count, 0);
	s.own = pool;
	s.other = other;
	s.own_drain = s.own_cancel = s.other_ret = 1;
	ck_assert_int_eq(aq_submit(pool, self_shutdown_job, &s, NULL, &fut), 0);
	ck_assert_int_eq(aq_future_get(fut, NULL, -1), 0);
	ck_assert_int_eq(s.own_drain, -EDEADLK);
	ck_assert_int_eq(s.own_cancel, -EDEADLK);
	/* Another pool's workers may shut this one down. */
	ck_assert_int_eq(s.other_ret, 0);
	ck_assert_int_eq(aq_submit(other, th_count_job, &count, NULL, NULL),
			 -ESHUTDOWN);
	aq_future_release(fut);
	/* The pool is untouched: it still accepts and runs jobs. */
	ck_assert_int_eq(aq_submit(pool, th_count_job, &count, NULL, &fut), 0);
	ck_assert_int_eq(aq_future_get(fut, NULL, -1), 0);
	ck_assert_int_eq(th_ldl(&count), 1);
	aq_future_release(fut);
	aq_pool_destroy(pool);
	aq_pool_destroy(other);
}
END_TEST

/* ---- destroy without shutdown ------------------------------------------- */

static void *open_after_delay(void *gate)
{
	th_sleep_ms(50);
	th_gate_open(gate);
	return NULL;
}

START_TEST(test_destroy_drains)
{
	enum { N = 1000 };
	static struct th_job jobs[N];
	static atomic_long count;
	struct aq_job_opts with_destroy = { .arg_destroy = th_job_destroy };
	struct th_gate gate;
	aq_pool *pool = th_pool(1, 2048, 0, 0);
	pthread_t tid;

	th_gate_init(&gate);
	atomic_init(&count, 0);
	ck_assert_int_eq(aq_submit(pool, th_gate_job, &gate, NULL, NULL), 0);
	ck_assert(th_gate_wait_entered(&gate, 1));
	for (int i = 0; i < N; i++) {
		th_job_init(&jobs[i], NULL, 0, false, NULL);
		if (i % 2)
			ck_assert_int_eq(aq_submit(pool, th_count_job, &count,
						   NULL, NULL),
					 0);
		else
			ck_assert_int_eq(aq_submit(pool, th_job_fn, &jobs[i],
						   &with_destroy, NULL),
					 0);
	}
	/*
	 * Open the gate from another thread a little later; whether that
	 * happens before or after destroy begins, every job above was
	 * accepted and must run.
	 */
	ck_assert_int_eq(pthread_create(&tid, NULL, open_after_delay, &gate),
			 0);
	aq_pool_destroy(pool);
	pthread_join(tid, NULL);
	ck_assert_int_eq(th_ldl(&count), N / 2);
	for (int i = 0; i < N; i += 2) {
		ck_assert_int_eq(th_ld(&jobs[i].ran), 1);
		ck_assert_int_eq(th_ld(&jobs[i].destroyed), 1);
	}
	th_gate_destroy(&gate);
}
END_TEST

/* ---- misuse ------------------------------------------------------------- */

START_TEST(test_shutdown_bad_args)
{
	static const unsigned bad_flags[] = { 0x2, 0x4, 0x80000000u, ~0u };
	static atomic_long count;
	aq_pool *pool = th_pool(1, 4, 0, 0);
	aq_future *fut;

	ck_assert_int_eq(aq_pool_shutdown(NULL, AQ_SHUTDOWN_DRAIN), -EINVAL);
	ck_assert_int_eq(aq_pool_shutdown(NULL, AQ_SHUTDOWN_CANCEL), -EINVAL);
	for (size_t i = 0; i < sizeof(bad_flags) / sizeof(bad_flags[0]); i++)
		ck_assert_msg(aq_pool_shutdown(pool, bad_flags[i]) == -EINVAL,
			      "flags %#x", bad_flags[i]);
	/* Rejected calls did not start a shutdown. */
	atomic_init(&count, 0);
	ck_assert_int_eq(aq_submit(pool, th_count_job, &count, NULL, &fut), 0);
	ck_assert_int_eq(aq_future_get(fut, NULL, -1), 0);
	ck_assert_int_eq(th_ldl(&count), 1);
	aq_future_release(fut);
	aq_pool_destroy(pool);
}
END_TEST

/* ---- a blocked submit and a beginning shutdown -------------------------- */

struct blocked {
	aq_pool *pool;
	const struct aq_job_opts *opts;
	struct th_job job;
	aq_future *fut;
	atomic_int started;
	atomic_int returned;
	int ret;
};

static void *blocked_main(void *arg)
{
	struct blocked *b = arg;

	atomic_store(&b->started, 1);
	b->ret = aq_submit(b->pool, th_job_fn, &b->job, b->opts, &b->fut);
	atomic_store(&b->returned, 1);
	return NULL;
}

static void run_blocked_then_shutdown(unsigned pool_flags,
				      const struct aq_job_opts *opts,
				      unsigned shutdown_flags)
{
	struct aq_job_opts fill_opts = { .flags = AQ_JOB_NOBLOCK,
					 .arg_destroy = th_job_destroy };
	struct th_shutdown st = { 0 };
	struct th_gate gate;
	struct th_job fill[2];
	aq_future *gate_fut, *fill_futs[2];
	struct blocked b;
	pthread_t tid;
	aq_pool *pool = th_pool(1, 2, pool_flags, 0);
	bool cancel = shutdown_flags & AQ_SHUTDOWN_CANCEL;

	th_gate_init(&gate);
	ck_assert_int_eq(aq_submit(pool, th_gate_job, &gate, NULL, &gate_fut),
			 0);
	ck_assert(th_gate_wait_entered(&gate, 1));
	for (int i = 0; i < 2; i++) {
		th_job_init(&fill[i], NULL, 0, false, NULL);
		ck_assert_int_eq(aq_submit(pool, th_job_fn, &fill[i],
					   &fill_opts, &fill_futs[i]),
				 0);
	}

	b.pool = pool;
	b.opts = opts;
	th_job_init(&b.job, NULL, 0, false, NULL);
	b.fut = (aq_future *)(void *)&b;
	atomic_init(&b.started, 0);
	atomic_init(&b.returned, 0);
	b.ret = 1;
	ck_assert_int_eq(pthread_create(&tid, NULL, blocked_main, &b), 0);
	ck_assert(th_poll_int(&b.started, 1));
	th_sleep_ms(50); /* not needed for correctness: let it go to sleep */
	ck_assert_msg(th_ld(&b.returned) == 0,
		      "a blocking submit on a full ring returned %d", b.ret);

	th_shutdown_start(&st, pool, shutdown_flags);
	/* The gate still holds, so no space ever appears: only the
	 * shutdown can end the wait. */
	ck_assert_msg(th_poll_int(&b.returned, 1),
		      "the blocked submit did not return when shutdown began");
	pthread_join(tid, NULL);
	ck_assert_int_eq(b.ret, -ESHUTDOWN);
	ck_assert_ptr_null(b.fut);
	ck_assert_int_eq(th_ld(&st.returned), 0);

	th_gate_open(&gate);
	pthread_join(st.tid, NULL);
	ck_assert_int_eq(st.ret, 0);
	ck_assert_int_eq(aq_future_get(gate_fut, NULL, 0), 0);
	for (int i = 0; i < 2; i++) {
		ck_assert_int_eq(aq_future_get(fill_futs[i], NULL, 0),
				 cancel ? -ECANCELED : 0);
		ck_assert_int_eq(th_ld(&fill[i].ran), cancel ? 0 : 1);
		ck_assert_int_eq(th_ld(&fill[i].destroyed), 1);
		aq_future_release(fill_futs[i]);
	}
	aq_future_release(gate_fut);
	aq_pool_destroy(pool);
	ck_assert_int_eq(th_ld(&b.job.ran), 0);
	ck_assert_int_eq(th_ld(&b.job.destroyed), 0);
	th_gate_destroy(&gate);
}

START_TEST(test_blocked_submit_shutdown)
{
	struct aq_job_opts block = { .flags = AQ_JOB_BLOCK,
				     .arg_destroy = th_job_destroy };

	run_blocked_then_shutdown(0, &block, AQ_SHUTDOWN_CANCEL);
	run_blocked_then_shutdown(0, &block, AQ_SHUTDOWN_DRAIN);
	/* Blocking by the pool's default, no options. */
	run_blocked_then_shutdown(AQ_POOL_BLOCK, NULL, AQ_SHUTDOWN_CANCEL);
}
END_TEST

/* ---- concurrent shutdown callers ---------------------------------------- */

START_TEST(test_concurrent_shutdowns)
{
	enum { N = 50 };
	static aq_future *futs[N];
	static atomic_long count;
	struct th_shutdown st[3] = { { 0 } };
	struct th_gate gate;
	aq_pool *pool = th_pool(1, 64, 0, 0);
	int accepted = 0;

	th_gate_init(&gate);
	atomic_init(&count, 0);
	ck_assert_int_eq(aq_submit(pool, th_gate_job, &gate, NULL, NULL), 0);
	ck_assert(th_gate_wait_entered(&gate, 1));
	for (int i = 0; i < N; i++)
		ck_assert_int_eq(aq_submit(pool, th_count_job, &count, NULL,
					   &futs[i]),
				 0);
	for (int i = 0; i < 3; i++) {
		st[i].check_futs = futs;
		st[i].ncheck = N;
		th_shutdown_start(&st[i], pool, AQ_SHUTDOWN_DRAIN);
	}
	ck_assert(wait_shutdown_begun(pool, &count, &accepted));
	th_sleep_ms(20); /* not needed for correctness: let all three wait */
	for (int i = 0; i < 3; i++)
		ck_assert_int_eq(th_ld(&st[i].returned), 0);
	th_gate_open(&gate);
	/* Each caller returns only once everything is resolved. */
	for (int i = 0; i < 3; i++) {
		pthread_join(st[i].tid, NULL);
		ck_assert_int_eq(st[i].ret, 0);
		ck_assert_int_eq(st[i].not_final, 0);
	}
	ck_assert_int_eq(th_ldl(&count), N + accepted);
	for (int i = 0; i < N; i++) {
		ck_assert_int_eq(aq_future_state(futs[i]), AQ_STATE_SUCCEEDED);
		aq_future_release(futs[i]);
	}
	aq_pool_destroy(pool);
	th_gate_destroy(&gate);
}
END_TEST

/* ---- shutdown from a callback of a job resolved by another thread ------- */

/*
 * What an arg_destroy or then-callback does below: open the gate that held
 * the pool's worker (so that nothing but the callback itself keeps the
 * pool from stopping), then shut its own pool down, timed first (a hang
 * would be -ETIMEDOUT), and only if that is refused untimed and destroy;
 * and shut down an unrelated pool, which must work.
 */
struct reentry {
	aq_pool *pool;         /* the job's pool */
	aq_pool *other;        /* unrelated, or NULL */
	struct th_gate *gate;  /* opened first, when not NULL */
	int timed, untimed, other_ret;
	atomic_int calls;
};

static void reentry_shutdown(struct reentry *r)
{
	if (r->gate)
		th_gate_open(r->gate);
	r->timed = aq_pool_shutdown_timed(r->pool, AQ_SHUTDOWN_CANCEL,
					  200 * INT64_C(1000000));
	if (r->timed == -EDEADLK) {
		r->untimed = aq_pool_shutdown(r->pool, AQ_SHUTDOWN_DRAIN);
		if (r->untimed == -EDEADLK)
			aq_pool_destroy(r->pool); /* refused: does nothing */
	}
	if (r->other)
		r->other_ret = aq_pool_shutdown(r->other, AQ_SHUTDOWN_DRAIN);
	atomic_fetch_add(&r->calls, 1);
}

static void reentry_destroy(void *arg)
{
	reentry_shutdown(arg);
}

static void reentry_then(aq_future *fut, void *user)
{
	(void)fut;
	reentry_shutdown(user);
}

static int never_runs(void *arg, void **result)
{
	(void)arg;
	(void)result;
	ck_abort_msg("a cancelled or skipped job ran");
	return 0;
}

/* The refused calls left the pool alone: it accepts and runs jobs, and a
 * shutdown from an ordinary thread completes. */
static void reentry_check(struct reentry *r)
{
	atomic_long count = 0;
	aq_future *fut;

	ck_assert_int_eq(th_ld(&r->calls), 1);
	ck_assert_int_eq(r->timed, -EDEADLK);
	ck_assert_int_eq(r->untimed, -EDEADLK);
	if (r->other)
		ck_assert_int_eq(r->other_ret, 0);
	ck_assert_int_eq(aq_submit(r->pool, th_count_job, &count, NULL, &fut),
			 0);
	ck_assert_int_eq(aq_future_get(fut, NULL, -1), 0);
	ck_assert_int_eq(th_ldl(&count), 1);
	aq_future_release(fut);
	ck_assert_int_eq(aq_pool_shutdown(r->pool, AQ_SHUTDOWN_DRAIN), 0);
	aq_pool_destroy(r->pool);
	if (r->other)
		aq_pool_destroy(r->other);
}

/*
 * aq_future_cancel() on the host thread resolves the job there, holding
 * the pool's claim that shutdown waits for: a shutdown of that pool from
 * the job's arg_destroy or a then-callback (queued behind a held worker,
 * or delayed) is refused with -EDEADLK, and aq_pool_destroy there does
 * nothing. They once waited for the claim the caller held (for ever, or
 * until a timed shutdown's deadline).
 */
START_TEST(test_shutdown_from_cancel_callback_is_refused)
{
	for (int variant = 0; variant < 4; variant++) {
		bool in_then = variant & 1, delayed = variant & 2;
		struct reentry r = { .timed = 1, .untimed = 1, .other_ret = 1 };
		struct aq_job_opts opts = { 0 };
		struct th_gate gate;
		aq_future *fut;

		th_gate_init(&gate);
		r.pool = th_pool(1, 16, 0, 0);
		r.other = th_pool(1, 16, 0, 0);
		if (delayed) {
			opts.delay_ns = 3600 * INT64_C(1000000000);
		} else {
			r.gate = &gate;
			ck_assert_int_eq(aq_submit(r.pool, th_gate_job, &gate,
						   NULL, NULL),
					 0);
			ck_assert(th_gate_wait_entered(&gate, 1));
		}
		if (!in_then)
			opts.arg_destroy = reentry_destroy;
		ck_assert_int_eq(aq_submit(r.pool, never_runs, &r, &opts, &fut),
				 0);
		if (in_then)
			ck_assert_int_eq(aq_future_then(fut, reentry_then, &r,
							NULL),
					 0);
		ck_assert_int_eq(aq_future_cancel(fut), 0);
		ck_assert_int_eq(aq_future_state(fut), AQ_STATE_CANCELLED);
		aq_future_release(fut);
		reentry_check(&r);
		th_gate_destroy(&gate);
	}
}
END_TEST

/*
 * A job of pool P that runs after a job of pool Q which fails is skipped
 * on Q's worker, which holds P's claim while it settles it: a shutdown of
 * P from the skipped job's arg_destroy or then-callback is refused with
 * -EDEADLK. It once waited for that claim (and for the job itself).
 */
START_TEST(test_shutdown_from_skip_callback_is_refused)
{
	for (int in_then = 0; in_then < 2; in_then++) {
		struct reentry r = { .timed = 1, .untimed = 1 };
		struct aq_job_opts opts = { .after_count = 1 };
		aq_pool *q = th_pool(1, 16, 0, 0);
		struct th_gate gate;
		struct th_job dep;
		aq_future *qfut, *fut;

		th_gate_init(&gate);
		th_job_init(&dep, &gate, 1, false, NULL); /* fails */
		r.pool = th_pool(1, 16, 0, 0);
		ck_assert_int_eq(aq_submit(q, th_job_fn, &dep, NULL, &qfut), 0);
		opts.after = &qfut;
		if (!in_then)
			opts.arg_destroy = reentry_destroy;
		ck_assert_int_eq(aq_submit(r.pool, never_runs, &r, &opts, &fut),
				 0);
		if (in_then)
			ck_assert_int_eq(aq_future_then(fut, reentry_then, &r,
							NULL),
					 0);
		th_gate_open(&gate);
		ck_assert_int_eq(aq_future_get(fut, NULL, -1), -EPIPE);
		ck_assert(th_poll_int(&r.calls, 1));
		aq_future_release(fut);
		aq_future_release(qfut);
		reentry_check(&r);
		aq_pool_destroy(q);
		th_gate_destroy(&gate);
	}
}
END_TEST

/* ---- a resize racing shutdown (issue 11, item 1) ------------------------ */

/*
 * The start and stop hooks of the pool below. The first stop hook is the
 * worker that aq_pool_resize(pool, 1, 1) retires: it holds its index in
 * the gate until the test opens it.
 */
struct resize_race {
	struct th_gate stop_gate;
	atomic_int starts, stops;
	atomic_int first_stop; /* 1 once the first stop hook has begun */
	aq_pool *pool;
	int resize_ret;        /* what the racing aq_pool_resize returned */
};

static void race_start_hook(unsigned index, void *user)
{
	struct resize_race *r = user;

	(void)index;
	atomic_fetch_add(&r->starts, 1);
}

static void race_stop_hook(unsigned index, void *user)
{
	struct resize_race *r = user;

	(void)index;
	if (atomic_exchange(&r->first_stop, 1) == 0)
		th_gate_pass(&r->stop_gate);
	atomic_fetch_add(&r->stops, 1);
}

static void *race_resize_main(void *arg)
{
	struct resize_race *r = arg;

	r->resize_ret = aq_pool_resize(r->pool, 3, 3);
	return NULL;
}

static void run_resize_racing_shutdown(bool spin)
{
	struct resize_race r = { .resize_ret = 1 };
	struct aq_pool_config cfg = { .workers = 2,
				      .on_thread_start = race_start_hook,
				      .on_thread_stop = race_stop_hook,
				      .thread_user = &r };
	struct th_shutdown st = { 0 };
	atomic_long count = 0;
	pthread_t resizer;
	int accepted = 0;

	th_gate_init(&r.stop_gate);
	ck_assert_int_eq(aq_pool_create(&r.pool, &cfg), 0);
	ck_assert(th_poll_int(&r.starts, 2));
	ck_assert_int_eq(aq_pool_resize(r.pool, 1, 1), 0);
	ck_assert(th_gate_wait_entered(&r.stop_gate, 1));
	ck_assert_int_eq(pthread_create(&resizer, NULL, race_resize_main, &r),
			 0);
	/* Worker 2 started: the resize has found the retiring index held,
	 * under the same hold of the pool's lock, and now waits for it. */
	ck_assert(th_poll_int(&r.starts, 3));
	th_shutdown_start(&st, r.pool, AQ_SHUTDOWN_DRAIN);
	ck_assert(probe_until_shutdown(r.pool, &count, &accepted, spin));
	th_gate_open(&r.stop_gate);
	pthread_join(resizer, NULL);
	ck_assert_int_eq(r.resize_ret, -ESHUTDOWN);
	pthread_join(st.tid, NULL);
	ck_assert_int_eq(st.ret, 0);
	ck_assert_int_eq(aq_pool_workers(r.pool), 0);
	ck_assert_int_eq(th_ld(&r.starts), 3);
	ck_assert_int_eq(th_ld(&r.stops), 3);
	ck_assert_int_eq(th_ldl(&count), accepted);
	aq_pool_destroy(r.pool);
	ck_assert_int_eq(th_ld(&r.starts), 3);
	th_gate_destroy(&r.stop_gate);
}

/*
 * A resize that waits for a retiring worker's index while a shutdown
 * begins starts no worker after it: it returns -ESHUTDOWN, the shutdown
 * joins every worker that ever started (each ran its stop hook), and none
 * is left running. The order is forced: the resize has started worker 2
 * (the table's new slot) and found index 0 or 1 still held by the retiring
 * worker's stop hook before the shutdown begins, and that hook returns only
 * once the shutdown has begun (seen a little later, or at once). It once
 * gave up with -EBUSY, or restarted the index after the shutdown had passed
 * it: a worker never joined, running on the freed pool after
 * aq_pool_destroy().
 */
START_TEST(test_resize_racing_shutdown_starts_no_worker_after_it)
{
	run_resize_racing_shutdown(false);
	for (int i = 0; i < 5; i++)
		run_resize_racing_shutdown(true);
}
END_TEST

Suite *shutdown_suite(void)
{
	Suite *s = suite_create("shutdown");
	TCase *drain = tcase_create("drain");
	TCase *cancel = tcase_create("cancel");
	TCase *misuse = tcase_create("misuse");

	tcase_set_timeout(drain, TH_TIMEOUT_STRESS);
	tcase_add_test(drain, test_drain_many);
	tcase_add_test(drain, test_drain_behind_gate);
	tcase_add_test(drain, test_destroy_drains);
	tcase_add_test(drain, test_concurrent_shutdowns);
	tcase_add_test(drain, test_resize_racing_shutdown_starts_no_worker_after_it);
	suite_add_tcase(s, drain);

	tcase_set_timeout(cancel, TH_TIMEOUT);
	tcase_add_test(cancel, test_cancel_queued);
	tcase_add_test(cancel, test_blocked_submit_shutdown);
	tcase_add_test(cancel, test_cancel_shutdown_wait_runs_no_child);
	suite_add_tcase(s, cancel);

	tcase_set_timeout(misuse, TH_TIMEOUT);
	tcase_add_test(misuse, test_submit_after_shutdown);
	tcase_add_test(misuse, test_shutdown_twice);
	tcase_add_test(misuse, test_shutdown_idle);
	tcase_add_test(misuse, test_shutdown_from_job);
	tcase_add_test(misuse, test_shutdown_bad_args);
	tcase_add_test(misuse, test_shutdown_from_cancel_callback_is_refused);
	tcase_add_test(misuse, test_shutdown_from_skip_callback_is_refused);
	suite_add_tcase(s, misuse);
	return s;
}
