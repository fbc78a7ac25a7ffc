/* SPDX-License-Identifier: MIT */
/*
 * check_wait.c - waiting (lib/wait.c, and helping in lib/worker.c):
 * aq_wait_all and aq_wait_any, and nested waits that help instead of
 * deadlocking (1- and 2-worker pools, fork-join).
 *
 * Outcomes are made deterministic with gates: a gate job holds a worker,
 * so whatever is submitted behind it is PENDING until the test opens the
 * gate.
 */
#include <errno.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <check.h>

#include "fault.h"
#include "future.h" /* the waiters of a future */
#include "helpers.h"
#include "park.h"
#include "suites.h"

#define MS INT64_C(1000000)

/* The pool the fork-join jobs submit to (each test runs in its own
 * process, and sets it before the first submit). */
static aq_pool *cur_pool;

/* ---- aq_wait_all -------------------------------------------------------- */

START_TEST(test_wait_all_mixed)
{
	struct th_held_pool h;
	struct th_job ok, bad, cancelled, late;
	struct aq_job_opts past = { .arg_destroy = th_job_destroy,
				    .deadline_ns = 1 };
	aq_future *f[5];
	void *r = NULL;
	int64_t start, waited;

	th_held_init(&h, 1);
	th_job_init(&ok, NULL, 0, true, (void *)0x11);
	th_job_init(&bad, NULL, 7, false, NULL);
	th_job_init(&cancelled, NULL, 0, false, NULL);
	th_job_init(&late, NULL, 0, false, NULL);
	f[0] = th_submit_job(h.pool, &ok);
	f[1] = th_submit_job(h.pool, &bad);
	f[2] = th_submit_job(h.pool, &cancelled);
	ck_assert_int_eq(aq_submit(h.pool, th_job_fn, &late, &past, &f[3]), 0);
	f[4] = h.gate_fut;

	/* Nothing is resolved: a look, then a short wait, time out. */
	ck_assert_int_eq(aq_wait_all(f, 5, 0), -ETIMEDOUT);
	start = th_now_ns();
	ck_assert_int_eq(aq_wait_all(f, 5, 20 * MS), -ETIMEDOUT);
	waited = th_now_ns() - start;
	ck_assert_msg(waited >= 18 * MS, "gave up after %lld ns",
		      (long long)waited);
	/* One resolved of five is not all. */
	ck_assert_int_eq(aq_future_cancel(f[2]), 0);
	ck_assert_int_eq(aq_wait_all(f, 5, 5 * MS), -ETIMEDOUT);
	ck_assert_int_eq(aq_wait_all(&f[2], 1, 0), 0);

	th_gate_open(&h.gate);
	ck_assert_int_eq(aq_wait_all(f, 5, th_long_ns()), 0);
	/* Every outcome, whatever it is, is there to read at once. */
	ck_assert_int_eq(aq_future_get(f[0], &r, 0), 0);
	ck_assert_ptr_eq(r, (void *)0x11);
	ck_assert_int_eq(aq_future_get(f[1], NULL, 0), 7);
	ck_assert_int_eq(aq_future_get(f[2], NULL, 0), -ECANCELED);
	ck_assert_int_eq(aq_future_get(f[3], NULL, 0), -ETIME);
	ck_assert_int_eq(aq_future_get(f[4], NULL, 0), 0);
	ck_assert_int_eq(th_ld(&cancelled.ran), 0);
	ck_assert_int_eq(th_ld(&late.ran), 0);
	ck_assert_int_eq(th_ld(&late.destroyed), 1);
	/* Already resolved: 0 even with a zero timeout, and again. */
	ck_assert_int_eq(aq_wait_all(f, 5, 0), 0);
	ck_assert_int_eq(aq_wait_all(f, 5, -1), 0);
	for (int i = 0; i < 4; i++)
		aq_future_release(f[i]);
	th_held_fini(&h);
}
END_TEST

struct opener {
	struct th_gate *gate;
	unsigned delay_ms;
};

static void *open_later(void *arg)
{
	struct opener *o = arg;

	th_sleep_ms(o->delay_ms);
	th_gate_open(o->gate);
	return NULL;
}

START_TEST(test_wait_all_forever_and_two_pools)
{
	struct th_held_pool a, b;
	struct th_job ja, jb;
	struct opener oa = { &a.gate, 10 }, ob = { &b.gate, 30 };
	pthread_t ta, tb;
	aq_future *f[4];

	th_held_init(&a, 1);
	th_held_init(&b, 1);
	th_job_init(&ja, NULL, 0, true, (void *)1);
	th_job_init(&jb, NULL, 0, true, (void *)2);
	f[0] = th_submit_job(a.pool, &ja);
	f[1] = b.gate_fut;
	f[2] = th_submit_job(b.pool, &jb);
	f[3] = a.gate_fut;
	ck_assert_int_eq(pthread_create(&ta, NULL, open_later, &oa), 0);
	ck_assert_int_eq(pthread_create(&tb, NULL, open_later, &ob), 0);
	/* Negative = forever: returns once both pools' jobs are done. */
	ck_assert_int_eq(aq_wait_all(f, 4, -1), 0);
	for (int i = 0; i < 4; i++)
		ck_assert_int_ge(aq_future_state(f[i]), AQ_STATE_SUCCEEDED);
	ck_assert_int_eq(th_ld(&ja.ran) + th_ld(&jb.ran), 2);
	pthread_join(ta, NULL);
	pthread_join(tb, NULL);
	aq_future_release(f[0]);
	aq_future_release(f[2]);
	th_held_fini(&a);
	th_held_fini(&b);
}
END_TEST

START_TEST(test_wait_all_einval)
{
	struct th_held_pool h;
	aq_future *f[2];

	th_held_init(&h, 1);
	f[0] = h.gate_fut;
	f[1] = NULL;
	ck_assert_int_eq(aq_wait_all(NULL, 1, 0), -EINVAL);
	ck_assert_int_eq(aq_wait_all(NULL, 1, -1), -EINVAL);
	ck_assert_int_eq(aq_wait_all(f, 2, -1), -EINVAL);
	/* A NULL entry is refused even behind an unresolved one. */
	ck_assert_int_eq(aq_wait_all(f, 2, 0), -EINVAL);
	/* No futures at all: all of them (none) are resolved. */
	ck_assert_int_eq(aq_wait_all(f, 0, 0), 0);
	ck_assert_int_eq(aq_wait_all(f, 1, 0), -ETIMEDOUT);
	th_held_fini(&h);
}
END_TEST

/* ---- aq_wait_any -------------------------------------------------------- */

START_TEST(test_wait_any_lowest_resolved)
{
	struct th_held_pool h;
	struct th_job j[4];
	aq_future *f[5];
	unsigned idx = 99;
	int64_t start, waited;

	th_held_init(&h, 1);
	for (int i = 0; i < 4; i++) {
		th_job_init(&j[i], NULL, i, false, NULL);
		f[i] = th_submit_job(h.pool, &j[i]);
	}
	f[4] = h.gate_fut;
	/* Nothing resolved: -ETIMEDOUT, *index untouched. */
	ck_assert_int_eq(aq_wait_any(f, 5, 0, &idx), -ETIMEDOUT);
	ck_assert_uint_eq(idx, 99);
	start = th_now_ns();
	ck_assert_int_eq(aq_wait_any(f, 5, 20 * MS, &idx), -ETIMEDOUT);
	waited = th_now_ns() - start;
	ck_assert_msg(waited >= 18 * MS, "gave up after %lld ns",
		      (long long)waited);
	ck_assert_uint_eq(idx, 99);

	/* Cancel 3 then 1: the lowest resolved index is reported. */
	ck_assert_int_eq(aq_future_cancel(f[3]), 0);
	ck_assert_int_eq(aq_wait_any(f, 5, 0, &idx), 0);
	ck_assert_uint_eq(idx, 3);
	ck_assert_int_eq(aq_future_cancel(f[1]), 0);
	ck_assert_int_eq(aq_wait_any(f, 5, -1, &idx), 0);
	ck_assert_uint_eq(idx, 1);
	ck_assert_int_eq(aq_future_get(f[idx], NULL, 0), -ECANCELED);
	/* Only the unresolved ones: still none. */
	ck_assert_int_eq(aq_wait_any(&f[4], 1, 5 * MS, &idx), -ETIMEDOUT);
	ck_assert_uint_eq(idx, 1);

	th_gate_open(&h.gate);
	ck_assert_int_eq(aq_wait_all(f, 5, th_long_ns()), 0);
	ck_assert_int_eq(aq_wait_any(f, 5, 0, &idx), 0);
	ck_assert_uint_eq(idx, 0);
	ck_assert_int_eq(aq_future_get(f[2], NULL, 0), 2);
	ck_assert_int_eq(th_ld(&j[1].ran) + th_ld(&j[3].ran), 0);
	for (int i = 0; i < 4; i++)
		aq_future_release(f[i]);
	th_held_fini(&h);
}
END_TEST

START_TEST(test_wait_any_wakes_on_later_entry)
{
	/* Two workers, each held by its own gate; the second gate opens
	 * from another thread while the test sleeps in aq_wait_any. */
	aq_pool *pool = th_pool(2, 16, 0, 0);
	struct th_gate g1, g2;
	struct opener o = { &g2, 20 };
	aq_future *f[2];
	pthread_t t;
	unsigned idx = 99;

	th_gate_init(&g1);
	th_gate_init(&g2);
	ck_assert_int_eq(aq_submit(pool, th_gate_job, &g1, NULL, &f[0]), 0);
	ck_assert_int_eq(aq_submit(pool, th_gate_job, &g2, NULL, &f[1]), 0);
	ck_assert(th_gate_wait_entered(&g1, 1));
	ck_assert(th_gate_wait_entered(&g2, 1));
	ck_assert_int_eq(pthread_create(&t, NULL, open_later, &o), 0);
	ck_assert_int_eq(aq_wait_any(f, 2, th_long_ns(), &idx), 0);
	ck_assert_uint_eq(idx, 1);
	ck_assert_int_eq(aq_future_state(f[0]), AQ_STATE_RUNNING);
	pthread_join(t, NULL);

	/* And forever (negative timeout) on the first. */
	o.gate = &g1;
	ck_assert_int_eq(pthread_create(&t, NULL, open_later, &o), 0);
	ck_assert_int_eq(aq_wait_any(f, 1, -1, &idx), 0);
	ck_assert_uint_eq(idx, 0);
	pthread_join(t, NULL);
	aq_future_release(f[0]);
	aq_future_release(f[1]);
	aq_pool_destroy(pool);
	th_gate_destroy(&g1);
	th_gate_destroy(&g2);
}
END_TEST

START_TEST(test_wait_any_einval)
{
	struct th_held_pool h;
	aq_future *f[2];
	unsigned idx = 99;

	th_held_init(&h, 1);
	f[0] = h.gate_fut;
	f[1] = NULL;
	ck_assert_int_eq(aq_wait_any(f, 0, 0, &idx), -EINVAL);
	ck_assert_int_eq(aq_wait_any(f, 1, 0, NULL), -EINVAL);
	ck_assert_int_eq(aq_wait_any(NULL, 1, 0, &idx), -EINVAL);
	ck_assert_int_eq(aq_wait_any(f, 2, 0, &idx), -EINVAL);
	ck_assert_int_eq(aq_wait_any(f, 2, -1, &idx), -EINVAL);
	ck_assert_uint_eq(idx, 99);
	th_held_fini(&h);
}
END_TEST

/* ---- aq_future_get(): spin, then sleep, never yield ---------------------- */

/* The yields (park.c's yield site) that the thread `waiter` made. */
struct yield_watch {
	pthread_t waiter;
	atomic_int yields;
};

static void on_any_yield(enum aq__pause_site site, void *user)
{
	struct yield_watch *w = user;

	if (site == AQ__PAUSE_IDLE_YIELD && pthread_equal(pthread_self(),
							  w->waiter))
		atomic_fetch_add(&w->yields, 1);
}

static bool has_waiter(void *fut)
{
	return atomic_load(&((struct aq_future *)fut)->waiters) == 1;
}

struct getter {
	aq_future *fut;
	struct yield_watch *watch;
	int rc;
};

static void *getter_main(void *arg)
{
	struct getter *g = arg;

	g->watch->waiter = pthread_self();
	aq__pause_set(on_any_yield, g->watch);
	g->rc = aq_future_get(g->fut, NULL, -1);
	return NULL;
}

/* A gate job on a one-worker pool, running: its future is not final
 * until the test opens the gate. */
static aq_future *held_job(aq_pool *pool, struct th_gate *gate)
{
	aq_future *fut;

	ck_assert_int_eq(aq_submit(pool, th_gate_job, gate, NULL, &fut), 0);
	ck_assert(th_gate_wait_entered(gate, 1));
	return fut;
}

/*
 * A thread waiting on a running job's future spins briefly, then sleeps
 * (it counts itself in the future's waiters) and wakes when the job
 * completes; it never yields: on a machine busy with other processes
 * every yield gave away a time slice (50 000 round trips took 83 s
 * instead of 1 s beside three busy loops), while a woken sleeper runs at
 * once.
 */
START_TEST(test_get_sleeps_without_yielding)
{
	aq_pool *pool = th_pool(1, 16, 0, 0);
	struct yield_watch w = { .yields = 0 };
	struct getter g = { NULL, &w, 1 };
	struct th_gate gate;
	pthread_t tid;

	th_gate_init(&gate);
	g.fut = held_job(pool, &gate);
	ck_assert_int_eq(pthread_create(&tid, NULL, getter_main, &g), 0);
	ck_assert(th_poll(has_waiter, g.fut));
	th_gate_open(&gate);
	pthread_join(tid, NULL);
	aq__pause_set(NULL, NULL);
	ck_assert_int_eq(g.rc, 0);
	ck_assert_int_eq(th_ld(&w.yields), 0);
	aq_future_release(g.fut);
	aq_pool_destroy(pool);
	th_gate_destroy(&gate);
}
END_TEST

/* ---- opts.after: dependencies ------------------------------------------- */

/* ---- nested waits ------------------------------------------------------- */

static int plus_one_job(void *arg, void **result)
{
	*result = (void *)((intptr_t)arg + 1);
	return 0;
}

/* Submits a child (or a chain of them, arg = depth) and waits for it. */
static int parent_job(void *arg, void **result)
{
	intptr_t depth = (intptr_t)arg;
	aq_future *child;
	void *r = NULL;
	int rc;

	if (depth <= 0)
		return plus_one_job((void *)41, result);
	rc = aq_submit(cur_pool, parent_job, (void *)(depth - 1),
		       NULL, &child);
	if (rc)
		return 100;
	rc = aq_future_get(child, &r, -1);
	aq_future_release(child);
	if (rc)
		return 101;
	*result = r;
	return 0;
}

START_TEST(test_nested_one_worker)
{
	/* Room for the chain: a child run in place on its parent's stack
	 * keeps its ring slot until a worker reaches it. */
	aq_pool *pool = th_pool(1, 256, 0, 0);
	aq_future *f;
	void *r = NULL;

	cur_pool = pool;
	ck_assert_int_eq(aq_submit(pool, parent_job, (void *)1, NULL, &f), 0);
	ck_assert_int_eq(aq_future_get(f, &r, th_long_ns()), 0);
	ck_assert_ptr_eq(r, (void *)42);
	aq_future_release(f);
	/* A chain 200 deep, each level waiting for the next. */
	ck_assert_int_eq(aq_submit(pool, parent_job, (void *)200, NULL, &f),
			 0);
	ck_assert_int_eq(aq_future_get(f, &r, th_long_ns()), 0);
	ck_assert_ptr_eq(r, (void *)42);
	aq_future_release(f);
	aq_pool_destroy(pool);
}
END_TEST

/* Queues `n` counting jobs, then a child, and waits for the child: on one
 * worker the queued jobs ahead of the child must not block it. */
struct crowd {
	aq_pool *pool;
	int n;
	atomic_long counted;
};

static int crowd_job(void *arg, void **result)
{
	struct crowd *c = arg;
	aq_future *child;
	void *r = NULL;
	int rc;

	for (int i = 0; i < c->n; i++)
		if (aq_submit(c->pool, th_count_job, &c->counted, NULL, NULL))
			return 100;
	if (aq_submit(c->pool, plus_one_job, (void *)6, NULL, &child))
		return 101;
	rc = aq_future_get(child, &r, -1);
	aq_future_release(child);
	*result = r;
	return rc;
}

START_TEST(test_nested_behind_queued)
{
	for (unsigned workers = 1; workers <= 2; workers++) {
		aq_pool *pool = th_pool(workers, 1024, 0, 0);
		struct crowd c = { pool, 100, 0 };
		aq_future *f[4];
		void *r = NULL;

		for (int i = 0; i < 4; i++)
			ck_assert_int_eq(aq_submit(pool, crowd_job, &c, NULL,
						   &f[i]),
					 0);
		for (int i = 0; i < 4; i++) {
			ck_assert_int_eq(aq_future_get(f[i], &r, th_long_ns()),
					 0);
			ck_assert_ptr_eq(r, (void *)7);
			aq_future_release(f[i]);
		}
		aq_pool_destroy(pool);
		ck_assert_int_eq(th_ldl(&c.counted), 400);
	}
}
END_TEST

/* Waits for a job another worker holds: a short wait times out (with
 * nothing queued to help with), then a long one sees it finish. */
struct holder_wait {
	aq_future *held;
	int first_rc, second_rc;
	atomic_int first_done;
};

static int wait_held_job(void *arg, void **result)
{
	struct holder_wait *w = arg;

	(void)result;
	w->first_rc = aq_future_get(w->held, NULL, 20 * MS);
	atomic_store(&w->first_done, 1);
	w->second_rc = aq_future_get(w->held, NULL, -1);
	return 0;
}

START_TEST(test_nested_wait_on_running)
{
	aq_pool *pool = th_pool(2, 16, 0, 0);
	struct th_gate gate;
	struct holder_wait w = { 0 };
	aq_future *f;

	th_gate_init(&gate);
	atomic_init(&w.first_done, 0);
	ck_assert_int_eq(aq_submit(pool, th_gate_job, &gate, NULL, &w.held),
			 0);
	ck_assert(th_gate_wait_entered(&gate, 1));
	ck_assert_int_eq(aq_submit(pool, wait_held_job, &w, NULL, &f), 0);
	ck_assert(th_poll_int(&w.first_done, 1));
	th_gate_open(&gate);
	ck_assert_int_eq(aq_future_get(f, NULL, th_long_ns()), 0);
	ck_assert_int_eq(w.first_rc, -ETIMEDOUT);
	ck_assert_int_eq(w.second_rc, 0);
	aq_future_release(w.held);
	aq_future_release(f);
	aq_pool_destroy(pool);
	th_gate_destroy(&gate);
}
END_TEST

/* Parallel Fibonacci: fib(n) submits fib(n-1) and fib(n-2) and waits. */
static int fib_job(void *arg, void **result)
{
	intptr_t n = (intptr_t)arg, sum = 0;
	aq_future *f[2] = { NULL, NULL };

	if (n < 2) {
		*result = (void *)n;
		return 0;
	}
	for (int i = 0; i < 2; i++) {
		void *r = NULL;
		int rc = aq_submit(cur_pool, fib_job,
				   (void *)(n - 1 - i), NULL, &f[i]);

		/* A full ring refuses a worker at once: compute it here. */
		if (rc == -EAGAIN) {
			fib_job((void *)(n - 1 - i), &r);
			sum += (intptr_t)r;
		} else if (rc) {
			return 100;
		}
	}
	for (int i = 0; i < 2; i++) {
		void *r = NULL;

		if (!f[i])
			continue;
		if (aq_future_get(f[i], &r, -1) != 0)
			return 101;
		aq_future_release(f[i]);
		sum += (intptr_t)r;
	}
	*result = (void *)sum;
	return 0;
}

static void fib_on(unsigned workers)
{
	aq_pool *pool = th_pool(workers, 0, 0, 0);
	aq_future *f;
	void *r = NULL;

	cur_pool = pool;
	ck_assert_int_eq(aq_submit(pool, fib_job, (void *)20, NULL, &f), 0);
	ck_assert_int_eq(aq_future_get(f, &r, 10 * th_long_ns()), 0);
	ck_assert_ptr_eq(r, (void *)6765);
	aq_future_release(f);
	aq_pool_destroy(pool);
}

START_TEST(test_fib_two_workers)
{
	fib_on(2);
}
END_TEST

START_TEST(test_fib_one_worker)
{
	fib_on(1);
}
END_TEST

/*
 * Regression (issue 11, item 4): fib(20) by nested submit-and-get of both
 * halves, with no fallback for -EAGAIN. On 2 workers with the default
 * ring the submits failed with -EAGAIN: each half run in place by its
 * waiting parent kept its ring slot, and no worker reached those slots
 * while every worker was nested. Every ring size, worker count and
 * policy must compute it (_i: policy in the low 2 bits, then the ring
 * size, then the worker count).
 */
static int fib_strict_job(void *arg, void **result)
{
	intptr_t n = (intptr_t)arg, sum = 0;
	aq_future *f[2];

	if (n < 2) {
		*result = (void *)n;
		return 0;
	}
	for (int i = 0; i < 2; i++)
		if (aq_submit(cur_pool, fib_strict_job, (void *)(n - 1 - i),
			      NULL, &f[i]) != 0) {
			if (i)
				aq_future_release(f[0]);
			return 100;
		}
	for (int i = 0; i < 2; i++) {
		void *r = NULL;
		int rc = aq_future_get(f[i], &r, -1);

		aq_future_release(f[i]);
		if (rc != 0) {
			if (i == 0)
				aq_future_release(f[1]);
			return 101;
		}
		sum += (intptr_t)r;
	}
	*result = (void *)sum;
	return 0;
}

START_TEST(test_fib_nested_no_eagain)
{
	static const unsigned worker_counts[3] = { 1, 2, 8 };
	const struct aq_sched_ops *const ops[4] = {
		NULL, aq_sched_fifo(), aq_sched_priority(), aq_sched_fair()
	};
	struct aq_pool_config cfg = {
		.workers = worker_counts[_i / 8],
		.queue_capacity = (_i / 4) % 2 ? 64 : 0, /* 0: the default */
		.sched = ops[_i % 4],
	};
	aq_pool *pool = NULL;
	aq_future *f;
	void *r = NULL;
	int rc;

	ck_assert_int_eq(aq_pool_create(&pool, &cfg), 0);
	cur_pool = pool;
	ck_assert_int_eq(aq_submit(pool, fib_strict_job, (void *)20, NULL, &f),
			 0);
	rc = aq_future_get(f, &r, 10 * th_long_ns());
	ck_assert_msg(rc == 0 && r == (void *)6765,
		      "fib(20), %u workers, ring %d, sched %s: rc %d, %ld",
		      cfg.workers, aq_pool_capacity(pool),
		      cfg.sched ? cfg.sched->name : "NULL", rc,
		      (long)(intptr_t)r);
	aq_future_release(f);
	aq_pool_destroy(pool);
}
END_TEST

/* Parallel merge sort: halves are sorted by child jobs down to a depth. */
#define SORT_N (1u << 16)
#define SORT_DEPTH 12

struct sort_task {
	int *a, *tmp;
	size_t lo, hi;
	int depth;
};

static int cmp_int(const void *x, const void *y)
{
	int a = *(const int *)x, b = *(const int *)y;

	return (a > b) - (a < b);
}

static int sort_job(void *arg, void **result)
{
	struct sort_task *t = arg, half[2];
	aq_future *f[2] = { NULL, NULL };
	size_t mid = t->lo + (t->hi - t->lo) / 2, i, j, k;

	(void)result;
	if (t->depth == 0 || t->hi - t->lo < 32) {
		qsort(t->a + t->lo, t->hi - t->lo, sizeof(int), cmp_int);
		return 0;
	}
	half[0] = (struct sort_task){ t->a, t->tmp, t->lo, mid, t->depth - 1 };
	half[1] = (struct sort_task){ t->a, t->tmp, mid, t->hi, t->depth - 1 };
	for (int h = 0; h < 2; h++) {
		int rc = aq_submit(cur_pool, sort_job, &half[h],
				   NULL, &f[h]);

		if (rc == -EAGAIN)
			sort_job(&half[h], NULL);
		else if (rc)
			return 100;
	}
	for (int h = 0; h < 2; h++) {
		if (!f[h])
			continue;
		if (aq_future_get(f[h], NULL, -1) != 0)
			return 101;
		aq_future_release(f[h]);
	}
	for (i = t->lo, j = mid, k = t->lo; k < t->hi; k++)
		t->tmp[k] = j >= t->hi || (i < mid && t->a[i] <= t->a[j])
				    ? t->a[i++]
				    : t->a[j++];
	memcpy(t->a + t->lo, t->tmp + t->lo, (t->hi - t->lo) * sizeof(int));
	return 0;
}

/* An order-independent checksum of a multiset of ints. */
static uint64_t mix(uint32_t v)
{
	uint64_t x = v * UINT64_C(0x9E3779B97F4A7C15);

	return x ^ (x >> 29);
}

START_TEST(test_merge_sort)
{
	aq_pool *pool = th_pool(2, 0, 0, 0);
	int *a = malloc(SORT_N * sizeof(int)), *tmp = malloc(SORT_N * sizeof(int));
	struct sort_task top = { a, tmp, 0, SORT_N, SORT_DEPTH };
	uint64_t sum_before = 0, sum_after = 0, x = 88172645463325252u;
	aq_future *f;

	ck_assert(a && tmp);
	for (size_t i = 0; i < SORT_N; i++) {
		x ^= x << 13;
		x ^= x >> 7;
		x ^= x << 17;
		a[i] = (int)(x % 1000003) - 500000;
		sum_before += mix((uint32_t)a[i]);
	}
	cur_pool = pool;
	ck_assert_int_eq(aq_submit(pool, sort_job, &top, NULL, &f), 0);
	ck_assert_int_eq(aq_future_get(f, NULL, 10 * th_long_ns()), 0);
	for (size_t i = 0; i < SORT_N; i++) {
		sum_after += mix((uint32_t)a[i]);
		if (i)
			ck_assert_int_le(a[i - 1], a[i]);
	}
	ck_assert_uint_eq(sum_after, sum_before);
	aq_future_release(f);
	aq_pool_destroy(pool);
	free(a);
	free(tmp);
}
END_TEST

/* Inside a job on a 1-worker pool: wait_all on children, then wait_any on
 * two more, one of which can only resolve by the helping worker. */
static int gather_job(void *arg, void **result)
{
	aq_future *f[8];
	intptr_t sum = 0;
	unsigned idx = 99;
	int rc;

	(void)arg;
	for (intptr_t i = 0; i < 8; i++)
		if (aq_submit(cur_pool, plus_one_job, (void *)i,
			      NULL, &f[i]))
			return 100;
	if (aq_wait_all(f, 8, -1) != 0)
		return 101;
	for (int i = 0; i < 8; i++) {
		void *r = NULL;

		if (aq_future_get(f[i], &r, 0) != 0)
			return 102;
		sum += (intptr_t)r;
		aq_future_release(f[i]);
	}
	/* wait_any: nothing resolved yet, both queued behind us. */
	for (intptr_t i = 0; i < 2; i++)
		if (aq_submit(cur_pool, plus_one_job,
			      (void *)(1000 * (i + 1)), NULL, &f[i]))
			return 103;
	rc = aq_wait_any(f, 2, -1, &idx);
	if (rc != 0 || idx > 1 ||
	    aq_future_state(f[idx]) != AQ_STATE_SUCCEEDED)
		return 104;
	if (aq_wait_all(f, 2, -1) != 0)
		return 105;
	aq_future_release(f[0]);
	aq_future_release(f[1]);
	*result = (void *)sum;
	return 0;
}

START_TEST(test_wait_all_any_inside_job)
{
	for (unsigned workers = 1; workers <= 2; workers++) {
		aq_pool *pool = th_pool(workers, 64, 0, 0);
		aq_future *f[3];
		void *r = NULL;

		cur_pool = pool;
		for (int i = 0; i < 3; i++)
			ck_assert_int_eq(aq_submit(pool, gather_job, NULL,
						   NULL, &f[i]),
					 0);
		ck_assert_int_eq(aq_wait_all(f, 3, th_long_ns()), 0);
		for (int i = 0; i < 3; i++) {
			ck_assert_int_eq(aq_future_get(f[i], &r, 0), 0);
			ck_assert_ptr_eq(r, (void *)36); /* 1 + ... + 8 */
			aq_future_release(f[i]);
		}
		aq_pool_destroy(pool);
	}
}
END_TEST

/* Inside a job: wait_all and wait_any with timeouts on a job another pool
 * holds (nothing here can help it along). */
static int timed_waits_job(void *arg, void **result)
{
	aq_future *held = arg;
	unsigned idx = 99;

	(void)result;
	if (aq_wait_all(&held, 1, 10 * MS) != -ETIMEDOUT)
		return 1;
	if (aq_wait_any(&held, 1, 10 * MS, &idx) != -ETIMEDOUT || idx != 99)
		return 2;
	if (aq_wait_any(&held, 1, 0, &idx) != -ETIMEDOUT)
		return 3;
	return 0;
}

/*
 * Issue 11, item 8: aq_wait_all / aq_wait_any inside a job, with the job's
 * own future among futs: it cannot resolve while the job waits, so the
 * wait is refused with -EDEADLK (it timed out, or hung with -1, before).
 * A poll (timeout 0) is no wait; and aq_wait_any with another future
 * already resolved has its answer.
 */
struct self_waits {
	struct th_gate gate; /* the job waits here for its own handle */
	aq_future *self, *done, *held; /* held: on another, held pool */
	int all_timed, all_forever, all_poll;
	int any_timed, any_forever, any_poll, any_done;
	unsigned any_done_idx;
};

static int self_waits_job(void *arg, void **result)
{
	struct self_waits *w = arg;
	aq_future *both[2], *mixed[2];
	unsigned idx = 99;

	(void)result;
	th_gate_pass(&w->gate);
	both[0] = w->done;
	both[1] = w->self;
	mixed[0] = w->self;
	mixed[1] = w->held;
	w->all_timed = aq_wait_all(both, 2, 100 * MS);
	w->all_forever = aq_wait_all(both, 2, -1);
	w->all_poll = aq_wait_all(both, 2, 0);
	w->any_timed = aq_wait_any(mixed, 2, 100 * MS, &idx);
	w->any_forever = aq_wait_any(mixed, 2, -1, &idx);
	w->any_poll = aq_wait_any(mixed, 2, 0, &idx);
	w->any_done = aq_wait_any(both, 2, -1, &w->any_done_idx);
	return 0;
}

START_TEST(test_wait_all_any_own_future_edeadlk)
{
	struct self_waits w = { .any_done_idx = 99 };
	struct th_held_pool other;
	aq_pool *pool = th_pool(1, 16, 0, 0);

	th_held_init(&other, 1);
	w.held = other.gate_fut;
	th_gate_init(&w.gate);
	ck_assert_int_eq(aq_submit(pool, plus_one_job, NULL, NULL, &w.done),
			 0);
	ck_assert_int_eq(aq_future_get(w.done, NULL, th_long_ns()), 0);
	ck_assert_int_eq(aq_submit(pool, self_waits_job, &w, NULL, &w.self),
			 0);
	th_gate_open(&w.gate); /* orders the handle before the job reads it */
	ck_assert_int_eq(aq_future_get(w.self, NULL, th_long_ns()), 0);
	ck_assert_int_eq(w.all_timed, -EDEADLK);
	ck_assert_int_eq(w.all_forever, -EDEADLK);
	ck_assert_int_eq(w.all_poll, -ETIMEDOUT);
	ck_assert_int_eq(w.any_timed, -EDEADLK);
	ck_assert_int_eq(w.any_forever, -EDEADLK);
	ck_assert_int_eq(w.any_poll, -ETIMEDOUT);
	ck_assert_int_eq(w.any_done, 0);
	ck_assert_uint_eq(w.any_done_idx, 0);
	aq_future_release(w.self);
	aq_future_release(w.done);
	aq_pool_destroy(pool);
	th_held_fini(&other);
	th_gate_destroy(&w.gate);
}
END_TEST

START_TEST(test_waits_inside_job_time_out)
{
	struct th_held_pool other;
	aq_pool *pool = th_pool(1, 16, 0, 0);
	struct th_gate gate;
	aq_future *f, *held;

	/* On another pool's job: a plain wait. */
	th_held_init(&other, 1);
	ck_assert_int_eq(aq_submit(pool, timed_waits_job, other.gate_fut,
				   NULL, &f),
			 0);
	ck_assert_int_eq(aq_future_get(f, NULL, th_long_ns()), 0);
	aq_future_release(f);
	th_held_fini(&other);
	aq_pool_destroy(pool);

	/* On its own pool's job that the other worker holds: the wait
	 * helps, finds nothing queued, and still times out. */
	pool = th_pool(2, 16, 0, 0);
	th_gate_init(&gate);
	ck_assert_int_eq(aq_submit(pool, th_gate_job, &gate, NULL, &held), 0);
	ck_assert(th_gate_wait_entered(&gate, 1));
	ck_assert_int_eq(aq_submit(pool, timed_waits_job, held, NULL, &f), 0);
	ck_assert_int_eq(aq_future_get(f, NULL, th_long_ns()), 0);
	th_gate_open(&gate);
	aq_future_release(f);
	aq_future_release(held);
	aq_pool_destroy(pool);
	th_gate_destroy(&gate);
}
END_TEST

/*
 * Regression: aq_wait_any() inside a job helped only when futs[0] belonged
 * to the job's own pool. With futs[0] from another (held) pool and futs[1]
 * a child queued on its own 1-worker pool, it slept on the only worker,
 * and the child could not run until futs[0] resolved.
 */
struct any_mixed {
	aq_future *foreign; /* held on another pool */
	int rc;
	unsigned idx;
};

static int any_mixed_job(void *arg, void **result)
{
	struct any_mixed *m = arg;
	aq_future *f[2];

	(void)result;
	m->idx = 99;
	if (aq_submit(cur_pool, plus_one_job, (void *)1, NULL, &f[1]))
		return 100;
	f[0] = m->foreign;
	m->rc = aq_wait_any(f, 2, (int64_t)(th_time_scale() * 1e9), &m->idx);
	aq_future_release(f[1]);
	return 0;
}

/* Can this system sleep on several words at once (futex_waitv)? */
static bool have_park_any(void)
{
	_Atomic uint32_t word = 1;
	_Atomic uint32_t *words[1] = { &word };
	uint32_t expected = 0; /* differs: returns at once unless ENOSYS */

	return aq__park_wait_any(words, &expected, 1, -1) != -ENOSYS;
}

/*
 * A wait that times out leaves nothing behind: 300 calls with a 1 ms
 * timeout on futures that stay pending allocate nothing (where the vectored
 * wait exists; elsewhere each call leaves a record per future until it
 * resolves, as aq_wait_any(3) says). Then, with 130 futures (more than one
 * vectored wait takes), the fallback still finds the one that resolves.
 */
START_TEST(test_wait_any_timeouts_leave_nothing)
{
	struct th_held_pool h;
	struct th_job j[3];
	aq_future *f[130];
	unsigned idx = 99;
	long allocs;

	th_held_init(&h, 1);
	for (int i = 0; i < 3; i++) {
		th_job_init(&j[i], NULL, 0, false, NULL);
		f[i] = th_submit_job(h.pool, &j[i]);
	}
	aq__fault_arm(AQ__FAULT_ALLOC, 0); /* count from here, fail none */
	for (int i = 0; i < 300; i++)
		ck_assert_int_eq(aq_wait_any(f, 3, 1 * MS, &idx), -ETIMEDOUT);
	allocs = aq__fault_calls(AQ__FAULT_ALLOC);
	if (have_park_any())
		ck_assert_msg(allocs == 0,
			      "300 timed-out waits allocated %ld times", allocs);
	else
		printf("compose: no futex_waitv here; 300 timed-out waits "
		       "allocated %ld times\n", allocs);
	ck_assert_uint_eq(idx, 99);

	/* 127 more entries, all the held gate job's future: 130 in all. */
	for (int i = 3; i < 130; i++)
		f[i] = h.gate_fut;
	ck_assert_int_eq(aq_wait_any(f, 130, 5 * MS, &idx), -ETIMEDOUT);
	ck_assert_int_eq(aq_future_cancel(f[2]), 0);
	ck_assert_int_eq(aq_wait_any(f, 130, th_long_ns(), &idx), 0);
	ck_assert_uint_eq(idx, 2);
	th_gate_open(&h.gate);
	ck_assert_int_eq(aq_wait_any(f + 3, 127, th_long_ns(), &idx), 0);
	ck_assert_uint_eq(idx, 0);
	ck_assert_int_eq(aq_wait_all(f, 2, th_long_ns()), 0);
	for (int i = 0; i < 3; i++)
		aq_future_release(f[i]);
	th_held_fini(&h);
}
END_TEST

START_TEST(test_wait_any_helps_for_later_entries)
{
	struct th_held_pool other;
	struct any_mixed m = { 0 };
	aq_future *f;

	th_held_init(&other, 1);
	cur_pool = th_pool(1, 16, 0, 0);
	m.foreign = other.gate_fut;
	ck_assert_int_eq(aq_submit(cur_pool, any_mixed_job, &m, NULL, &f), 0);
	ck_assert_int_eq(aq_future_get(f, NULL, th_long_ns()), 0);
	ck_assert_msg(m.rc == 0 && m.idx == 1,
		      "wait_any inside a job: %d, index %u (0, 1)", m.rc,
		      m.idx);
	aq_future_release(f);
	aq_pool_destroy(cur_pool);
	th_held_fini(&other);
}
END_TEST

/*
 * Regression: a job that waits (helping, so that another job runs on its
 * stack) lost its own context afterwards: aq_current_dep_count() 0 and
 * aq_current_attempt() 0 once the nested job had returned.
 */
START_TEST(test_nested_wait_keeps_job_context)
{
	aq_pool *pool = th_pool(1, 16, 0, 0);
	struct th_gate gate;
	aq_future *dep, *fb;
	struct th_link b;
	void *r = NULL;

	th_gate_init(&gate);
	ck_assert_int_eq(aq_submit(pool, th_echo_job, (void *)5, NULL, &dep),
			 0);
	ck_assert_int_eq(aq_future_get(dep, NULL, th_long_ns()), 0);
	th_link_init(&b, 1);
	/* The nested future is queued behind b, so b's wait runs it. */
	{
		aq_future *hold;

		ck_assert_int_eq(aq_submit(pool, th_gate_job, &gate, NULL,
					   &hold),
				 0);
		ck_assert(th_gate_wait_entered(&gate, 1));
		fb = th_link_after(pool, &b, &dep, 1);
		ck_assert_int_eq(aq_submit(pool, plus_one_job, (void *)0,
					   NULL, &b.nested),
				 0);
		th_gate_open(&gate);
		aq_future_release(hold);
	}
	ck_assert_int_eq(aq_future_get(fb, &r, th_long_ns()), 0);
	ck_assert_msg(b.deps_seen == 1 && b.attempt_after_nested == 1 &&
			      r == (void *)6,
		      "after a nested wait that ran a job in place, the job "
		      "saw %u dependencies (1), attempt %u (1), and returned "
		      "%ld (6)",
		      b.deps_seen, b.attempt_after_nested, (long)(intptr_t)r);
	aq_future_release(b.nested);
	aq_future_release(dep);
	aq_future_release(fb);
	aq_pool_destroy(pool);
	th_gate_destroy(&gate);
}
END_TEST

Suite *wait_suite(void)
{
	Suite *s = suite_create("wait");
	TCase *wait = tcase_create("wait");
	TCase *nested = tcase_create("nested");

	tcase_set_timeout(wait, TH_TIMEOUT);
	tcase_add_test(wait, test_wait_all_mixed);
	tcase_add_test(wait, test_wait_all_forever_and_two_pools);
	tcase_add_test(wait, test_wait_all_einval);
	tcase_add_test(wait, test_wait_any_lowest_resolved);
	tcase_add_test(wait, test_wait_any_wakes_on_later_entry);
	tcase_add_test(wait, test_wait_any_einval);
	tcase_add_test(wait, test_wait_any_timeouts_leave_nothing);
	tcase_add_test(wait, test_get_sleeps_without_yielding);
	suite_add_tcase(s, wait);

	tcase_set_timeout(nested, TH_TIMEOUT_STRESS);
	tcase_add_test(nested, test_nested_one_worker);
	tcase_add_test(nested, test_nested_behind_queued);
	tcase_add_test(nested, test_nested_wait_on_running);
	tcase_add_test(nested, test_fib_two_workers);
	tcase_add_test(nested, test_fib_one_worker);
	tcase_add_loop_test(nested, test_fib_nested_no_eagain, 0, 24);
	tcase_add_test(nested, test_merge_sort);
	tcase_add_test(nested, test_wait_all_any_inside_job);
	tcase_add_test(nested, test_waits_inside_job_time_out);
	tcase_add_test(nested, test_wait_all_any_own_future_edeadlk);
	tcase_add_test(nested, test_nested_wait_keeps_job_context);
	tcase_add_test(nested, test_wait_any_helps_for_later_entries);
	suite_add_tcase(s, nested);
	return s;
}
