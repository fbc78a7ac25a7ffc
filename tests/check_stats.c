/* SPDX-License-Identifier: MIT */
/*
 * check_stats.c - aq_pool_stats(): counters that add up exactly, refusals,
 * gauges behind a gate, histograms with and without timing, the window's
 * rates, per-job hooks, and Little's law (L = lambda W) on a steady load.
 */
#include <errno.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <check.h>

#include "fault.h"
#include "helpers.h"
#include "suites.h"
#include "vclock.h"

static aq_pool *pool_with(unsigned workers, unsigned capacity, unsigned flags,
			  const struct aq_sched_ops *sched)
{
	struct aq_pool_config cfg = { .workers = workers,
				      .queue_capacity = capacity,
				      .flags = flags,
				      .sched = sched };
	aq_pool *pool = NULL;

	ck_assert_int_eq(aq_pool_create(&pool, &cfg), 0);
	return pool;
}

static uint64_t completed(const struct aq_pool_stats *st)
{
	return st->succeeded + st->failed + st->cancelled + st->expired +
	       st->skipped;
}

/* Quiet: nothing queued, delayed or running, every job accounted for. */
static bool pool_quiet(void *arg)
{
	struct aq_pool_stats st;

	return aq_pool_stats(arg, &st) == 0 && st.queued == 0 &&
	       st.delayed == 0 && st.running == 0 &&
	       completed(&st) == st.submitted;
}

static void assert_hist_ordered(const struct aq_histogram *h)
{
	ck_assert_int_ge(h->p50_ns, 0);
	ck_assert_int_le(h->p50_ns, h->p90_ns);
	ck_assert_int_le(h->p90_ns, h->p99_ns);
	ck_assert_int_le(h->p99_ns, h->max_ns);
	ck_assert_int_le(h->mean_ns, h->max_ns);
}

static int fail_job(void *arg, void **result)
{
	(void)result;
	return (int)(intptr_t)arg;
}

/* Fails its first two attempts, succeeds on the third. */
static int flaky_job(void *arg, void **result)
{
	(void)arg;
	(void)result;
	return aq_current_attempt() < 3 ? 5 : 0;
}

/* Gives up its worker once (AQ_YIELD), then succeeds. */
static int yield_once_job(void *arg, void **result)
{
	(void)result;
	return atomic_fetch_add((atomic_int *)arg, 1) == 0 ? AQ_YIELD : 0;
}

static void count_destroy(void *arg)
{
	atomic_fetch_add((atomic_long *)arg, 1);
}

/* ---- counters ----------------------------------------------------------- */

/*
 * A mixed workload behind two gate jobs that hold both workers, so that
 * cancels and expiries land while everything is still queued. On a
 * virtual clock: the delayed jobs stay in the timer until the clock moves
 * after the first reading, which is then of a pool where nothing moves.
 */
#define MIX_FUTS 64

struct mix {
	aq_future *futs[MIX_FUTS];
	unsigned nfuts;
	atomic_long counted;   /* fire-and-forget runs */
	atomic_long destroyed; /* fire-and-forget arg_destroy calls */
	atomic_int yields[2];
};

static void mix_keep(struct mix *m, aq_future *f)
{
	ck_assert_uint_lt(m->nfuts, MIX_FUTS);
	m->futs[m->nfuts++] = f;
}

static aq_future *mix_submit(struct mix *m, aq_pool *pool, aq_job_fn fn,
			     void *arg, const struct aq_job_opts *opts)
{
	aq_future *f = NULL;

	ck_assert_int_eq(aq_submit(pool, fn, arg, opts, &f), 0);
	mix_keep(m, f);
	return f;
}

static bool counted_all(void *arg)
{
	struct mix *m = arg;

	return atomic_load(&m->counted) == 10 &&
	       atomic_load(&m->destroyed) == 5;
}

static void mixed_workload(unsigned flags)
{
	static const struct aq_retry_policy retry3 = { .max_attempts = 3 };
	struct vclock vc = { T0 };
	struct aq_clock clock = { vclock_now, &vc };
	struct aq_pool_config cfg = { .workers = 2,
				      .queue_capacity = 1024,
				      .flags = flags,
				      .clock = &clock };
	aq_pool *pool = NULL;
	struct th_gate gate;
	struct mix m = { .nfuts = 0 };
	struct aq_job_opts opts;
	struct aq_pool_stats st, after;
	aq_future *parent, *cancel_me[3];

	ck_assert_int_eq(aq_pool_create(&pool, &cfg), 0);
	th_gate_init(&gate);
	atomic_init(&m.counted, 0);
	atomic_init(&m.destroyed, 0);
	atomic_init(&m.yields[0], 0);
	atomic_init(&m.yields[1], 0);
	for (int i = 0; i < 2; i++) /* 2 gates: succeeded */
		mix_submit(&m, pool, th_gate_job, &gate, NULL);
	ck_assert(th_gate_wait_entered(&gate, 2));

	for (int i = 0; i < 20; i++) /* 20 successes */
		mix_submit(&m, pool, th_noop_job, NULL, NULL);
	for (int i = 0; i < 5; i++) /* 5 failures, no retry */
		mix_submit(&m, pool, fail_job, (void *)3, NULL);
	opts = (struct aq_job_opts){ .retry = &retry3 };
	for (int i = 0; i < 4; i++) /* 4 succeed on attempt 3: 8 retries */
		mix_submit(&m, pool, flaky_job, NULL, &opts);
	for (int i = 0; i < 2; i++) /* 2 fail 3 times: 4 retries */
		mix_submit(&m, pool, fail_job, (void *)6, &opts);
	for (int i = 0; i < 3; i++) /* 3 cancelled while queued */
		cancel_me[i] = mix_submit(&m, pool, th_noop_job, NULL, NULL);
	opts = (struct aq_job_opts){ .deadline_ns = 1 };
	for (int i = 0; i < 3; i++) /* 3 expired: deadline long past */
		mix_submit(&m, pool, th_noop_job, NULL, &opts);
	parent = mix_submit(&m, pool, fail_job, (void *)4, NULL); /* failed */
	opts = (struct aq_job_opts){ .after = &parent, .after_count = 1 };
	for (int i = 0; i < 2; i++) /* 2 skipped */
		mix_submit(&m, pool, th_noop_job, NULL, &opts);
	for (int i = 0; i < 10; i++) /* 10 fire-and-forget, no record */
		ck_assert_int_eq(aq_submit(pool, th_count_job, &m.counted,
					   NULL, NULL),
				 0);
	opts = (struct aq_job_opts){ .arg_destroy = count_destroy };
	for (int i = 0; i < 5; i++) /* 5 fire-and-forget with a record */
		ck_assert_int_eq(
			aq_submit(pool, th_noop_job, &m.destroyed, &opts, NULL),
			0);
	for (int i = 0; i < 2; i++) /* 2 that yield once */
		mix_submit(&m, pool, yield_once_job, &m.yields[i], NULL);
	opts = (struct aq_job_opts){ .delay_ns = 1 * MS };
	for (int i = 0; i < 2; i++) /* 2 delayed */
		mix_submit(&m, pool, th_noop_job, NULL, &opts);

	/* Bad arguments are not submissions, nor refusals. */
	ck_assert_int_eq(aq_submit(pool, NULL, NULL, NULL, NULL), -EINVAL);
	for (int i = 0; i < 3; i++)
		ck_assert_int_eq(aq_future_cancel(cancel_me[i]), 0);

	st = th_stats_of(pool);
	ck_assert_uint_eq(st.submitted, 61);
	ck_assert_uint_eq(st.running, 2);
	ck_assert_uint_eq(st.cancelled, 3);
	ck_assert_uint_eq(st.delayed, 2);

	vclock_set(pool, &vc, T0 + 1 * MS);
	th_gate_open(&gate);
	ck_assert_int_eq(aq_wait_all(m.futs, m.nfuts, th_long_ns()), 0);
	ck_assert(th_poll(counted_all, &m));
	ck_assert(th_poll(pool_quiet, pool));

	st = th_stats_of(pool);
	ck_assert_uint_eq(st.submitted, 61);
	ck_assert_uint_eq(st.succeeded, 2 + 20 + 4 + 10 + 5 + 2 + 2);
	ck_assert_uint_eq(st.failed, 5 + 2 + 1);
	ck_assert_uint_eq(st.cancelled, 3);
	ck_assert_uint_eq(st.expired, 3);
	ck_assert_uint_eq(st.skipped, 2);
	ck_assert_uint_eq(completed(&st), st.submitted);
	ck_assert_uint_eq(st.started, st.succeeded + st.failed);
	ck_assert_uint_eq(st.retried, 8 + 4);
	ck_assert_uint_eq(st.rejected, 0);
	ck_assert_uint_eq(st.queued + st.delayed + st.running, 0);
	ck_assert_uint_eq(st.workers, 2);
	ck_assert_uint_eq(st.workers_busy, 0);
	ck_assert_uint_eq(st.workers_idle, 2);
	if (flags & AQ_POOL_TIMING) {
		/* One sample per call: first attempts, retries, yields. */
		uint64_t calls = st.started + st.retried + 2;

		ck_assert_uint_eq(st.run.count, calls);
		ck_assert_uint_eq(st.wait.count, calls);
		assert_hist_ordered(&st.run);
		assert_hist_ordered(&st.wait);
	} else {
		ck_assert_uint_eq(st.run.count + st.wait.count, 0);
	}

	/* After shutdown the stats are still there, and unchanged. */
	ck_assert_int_eq(aq_pool_shutdown(pool, 0), 0);
	after = th_stats_of(pool);
	ck_assert_uint_eq(after.submitted, st.submitted);
	ck_assert_uint_eq(after.started, st.started);
	ck_assert_uint_eq(after.succeeded, st.succeeded);
	ck_assert_uint_eq(after.failed, st.failed);
	ck_assert_uint_eq(after.retried, st.retried);
	ck_assert_uint_eq(after.cancelled + after.expired + after.skipped,
			  8);
	ck_assert_uint_eq(after.workers, 0);
	ck_assert(after.arrival_rate == 0 && after.throughput == 0);
	for (unsigned i = 0; i < m.nfuts; i++)
		aq_future_release(m.futs[i]);
	aq_pool_destroy(pool);
	th_gate_destroy(&gate);
}

START_TEST(test_counters_add_up)
{
	mixed_workload(0);
}
END_TEST

START_TEST(test_counters_add_up_timed)
{
	mixed_workload(AQ_POOL_TIMING);
}
END_TEST

/*
 * A delayed job the timer queues while aq_pool_stats() reads: held after
 * it summed the counters, the reader lets the timer release the job onto
 * the ring (counted as released, then pushed) before it reads the ring.
 * The reader read the ring's tail only after the counters, so that push
 * counted as a submission: submitted read 3 for 2 jobs (the flaky 62 of
 * test_counters_add_up when a delayed job came due during its reading).
 */
struct release_in_read {
	aq_pool *pool;
	struct vclock *vc;
	atomic_int armed;  /* 1 until the hook has run: nested reads pass */
	atomic_int pushed; /* the release was seen on the ring, in the hook */
};

/* The delayed job has left the timer and is on the ring. */
static bool released_to_ring(void *arg)
{
	struct aq_pool_stats st;

	return aq_pool_stats(arg, &st) == 0 && st.delayed == 0 &&
	       st.queued == 1;
}

static void release_in_read(enum aq__pause_site site, void *user)
{
	struct release_in_read *r = user;

	if (site != AQ__PAUSE_STATS_SUMMED || !atomic_exchange(&r->armed, 0))
		return;
	vclock_set(r->pool, r->vc, T0 + 1 * MS);
	atomic_store(&r->pushed, th_poll(released_to_ring, r->pool));
}

START_TEST(test_release_during_read_not_a_submission)
{
	struct vclock vc;
	aq_pool *pool = vpool(1, &vc, NULL);
	struct aq_job_opts later = { .delay_ns = 1 * MS };
	struct release_in_read r = { .pool = pool, .vc = &vc };
	struct aq_pool_stats st;
	struct th_gate gate;
	aq_future *held, *delayed;
	int rc;

	atomic_init(&r.armed, 1);
	atomic_init(&r.pushed, 0);
	th_gate_init(&gate);
	ck_assert_int_eq(aq_submit(pool, th_gate_job, &gate, NULL, &held), 0);
	ck_assert(th_gate_wait_entered(&gate, 1));
	ck_assert_int_eq(aq_submit(pool, th_noop_job, NULL, &later, &delayed),
			 0);
	st = th_stats_of(pool);
	ck_assert_uint_eq(st.submitted, 2);
	ck_assert_uint_eq(st.delayed, 1);

	aq__pause_set(release_in_read, &r);
	rc = aq_pool_stats(pool, &st);
	aq__pause_set(NULL, NULL);
	ck_assert_int_eq(rc, 0);
	ck_assert(atomic_load(&r.pushed));
	ck_assert_uint_eq(st.queued, 1);
	ck_assert_uint_eq(st.delayed, 0);
	ck_assert_uint_eq(st.submitted, 2);

	th_gate_open(&gate);
	ck_assert_int_eq(aq_future_get(delayed, NULL, th_long_ns()), 0);
	ck_assert(th_poll(pool_quiet, pool));
	st = th_stats_of(pool);
	ck_assert_uint_eq(st.submitted, 2);
	ck_assert_uint_eq(st.succeeded, 2);
	aq_future_release(held);
	aq_future_release(delayed);
	aq_pool_destroy(pool);
	th_gate_destroy(&gate);
}
END_TEST

START_TEST(test_rejected)
{
	aq_pool *pool = pool_with(1, 2, 0, NULL);
	struct th_gate gate;
	struct aq_job_opts bad = { .flags = 0x80 };
	struct aq_job_opts wait_1ms = { .flags = AQ_JOB_BLOCK,
					.timeout_ns = 1 * MS };
	struct aq_job_opts prio = { .priority = AQ_PRIORITY_MAX + 1 };
	struct aq_job_opts after = { .after_count = AQ_AFTER_MAX + 1 };
	struct aq_pool_stats st;
	aq_future *held, *f;

	th_gate_init(&gate);
	ck_assert_int_eq(aq_submit(pool, th_gate_job, &gate, NULL, &held), 0);
	ck_assert(th_gate_wait_entered(&gate, 1));
	ck_assert_int_eq(aq_pool_capacity(pool), 2);
	ck_assert_int_eq(aq_submit(pool, th_noop_job, NULL, NULL, NULL), 0);
	ck_assert_int_eq(aq_submit(pool, th_noop_job, NULL, NULL, NULL), 0);
	/* Full: refused, with and without a future, and after a wait. */
	ck_assert_int_eq(aq_submit(pool, th_noop_job, NULL, NULL, NULL),
			 -EAGAIN);
	ck_assert_int_eq(aq_submit(pool, th_noop_job, NULL, NULL, &f), -EAGAIN);
	ck_assert_int_eq(aq_submit(pool, th_noop_job, NULL, &wait_1ms, NULL),
			 -ETIMEDOUT);
	/* Bad arguments: not refusals. */
	ck_assert_int_eq(aq_submit(pool, NULL, NULL, NULL, NULL), -EINVAL);
	ck_assert_int_eq(aq_submit(pool, th_noop_job, NULL, &bad, NULL),
			 -EINVAL);
	ck_assert_int_eq(aq_submit(pool, th_noop_job, NULL, &prio, NULL),
			 -EINVAL);
	ck_assert_int_eq(aq_submit(pool, th_noop_job, NULL, &after, NULL),
			 -EINVAL);
	ck_assert_int_eq(aq_submit(NULL, th_noop_job, NULL, NULL, NULL),
			 -EINVAL);
	st = th_stats_of(pool);
	ck_assert_uint_eq(st.rejected, 3);
	ck_assert_uint_eq(st.submitted, 3);
	ck_assert_uint_eq(st.queued, 2);

	th_gate_open(&gate);
	ck_assert_int_eq(aq_pool_shutdown(pool, 0), 0);
	/* Shut down: refused, with or without dependencies. */
	after = (struct aq_job_opts){ .after = &held, .after_count = 1 };
	ck_assert_int_eq(aq_submit(pool, th_noop_job, NULL, NULL, NULL),
			 -ESHUTDOWN);
	ck_assert_int_eq(aq_submit(pool, th_noop_job, NULL, &after, &f),
			 -ESHUTDOWN);
	st = th_stats_of(pool);
	ck_assert_uint_eq(st.rejected, 5);
	ck_assert_uint_eq(st.submitted, 3);
	ck_assert_uint_eq(st.succeeded, 3);
	ck_assert_uint_eq(completed(&st), st.submitted);
	ck_assert_int_eq(aq_pool_stats(NULL, &st), -EINVAL);
	ck_assert_int_eq(aq_pool_stats(pool, NULL), -EINVAL);
	aq_future_release(held);
	aq_pool_destroy(pool);
	th_gate_destroy(&gate);
}
END_TEST

/* ---- gauges ------------------------------------------------------------- */

static void gauges_on(const struct aq_sched_ops *sched)
{
	aq_pool *pool = pool_with(1, 64, 0, sched);
	struct th_gate gate;
	struct aq_job_opts later = { .delay_ns = 3600 * INT64_C(1000000000) };
	struct aq_job_opts after;
	struct aq_pool_stats st;
	aq_future *held, *f[5], *delayed[2], *waiting;
	atomic_long counted;

	th_gate_init(&gate);
	atomic_init(&counted, 0);
	st = th_stats_of(pool);
	ck_assert_uint_eq(st.workers, 1);
	ck_assert_uint_eq(st.running + st.queued + st.delayed, 0);
	ck_assert_uint_eq(st.workers_idle, 1);

	ck_assert_int_eq(aq_submit(pool, th_gate_job, &gate, NULL, &held), 0);
	ck_assert(th_gate_wait_entered(&gate, 1));
	for (int i = 0; i < 5; i++)
		ck_assert_int_eq(
			aq_submit(pool, th_noop_job, NULL, NULL, &f[i]), 0);
	for (int i = 0; i < 3; i++)
		ck_assert_int_eq(aq_submit(pool, th_count_job, &counted, NULL,
					   NULL),
				 0);
	for (int i = 0; i < 2; i++)
		ck_assert_int_eq(
			aq_submit(pool, th_noop_job, NULL, &later, &delayed[i]),
			0);
	/* WAITING: in neither the queue nor the timer. */
	after = (struct aq_job_opts){ .after = &held, .after_count = 1 };
	ck_assert_int_eq(aq_submit(pool, th_noop_job, NULL, &after, &waiting),
			 0);
	st = th_stats_of(pool);
	ck_assert_uint_eq(st.queued, 8);
	ck_assert_uint_eq(st.delayed, 2);
	ck_assert_uint_eq(st.running, 1);
	ck_assert_uint_eq(st.workers, 1);
	ck_assert_uint_eq(st.workers_busy, 1);
	ck_assert_uint_eq(st.workers_idle, 0);
	ck_assert_uint_eq(st.submitted, 12);

	/* Cancelled delayed jobs leave the timer at once. */
	for (int i = 0; i < 2; i++)
		ck_assert_int_eq(aq_future_cancel(delayed[i]), 0);
	st = th_stats_of(pool);
	ck_assert_uint_eq(st.delayed, 0);
	ck_assert_uint_eq(st.cancelled, 2);

	th_gate_open(&gate);
	ck_assert_int_eq(aq_future_get(waiting, NULL, th_long_ns()), 0);
	ck_assert_int_eq(aq_wait_all(f, 5, th_long_ns()), 0);
	ck_assert(th_poll(pool_quiet, pool));
	st = th_stats_of(pool);
	ck_assert_uint_eq(st.queued + st.delayed + st.running, 0);
	ck_assert_uint_eq(st.workers_busy, 0);
	ck_assert_uint_eq(st.workers_idle, 1);
	ck_assert_uint_eq(st.succeeded, 10);
	ck_assert_uint_eq(th_ldl(&counted), 3);
	for (int i = 0; i < 5; i++)
		aq_future_release(f[i]);
	for (int i = 0; i < 2; i++)
		aq_future_release(delayed[i]);
	aq_future_release(waiting);
	aq_future_release(held);
	aq_pool_destroy(pool);
	th_gate_destroy(&gate);
}

START_TEST(test_gauges_fifo)
{
	gauges_on(NULL);
}
END_TEST

START_TEST(test_gauges_priority)
{
	gauges_on(aq_sched_priority());
}
END_TEST

START_TEST(test_gauges_busy_idle)
{
	aq_pool *pool = pool_with(4, 64, 0, NULL);
	struct th_gate gate;
	struct aq_pool_stats st;
	aq_future *f[2];

	th_gate_init(&gate);
	for (int i = 0; i < 2; i++)
		ck_assert_int_eq(aq_submit(pool, th_gate_job, &gate, NULL,
					   &f[i]),
				 0);
	ck_assert(th_gate_wait_entered(&gate, 2));
	st = th_stats_of(pool);
	ck_assert_uint_eq(st.workers, 4);
	ck_assert_uint_eq(st.running, 2);
	ck_assert_uint_eq(st.workers_busy, 2);
	ck_assert_uint_eq(st.workers_idle, 2);
	ck_assert_uint_eq(st.queued, 0);
	th_gate_open(&gate);
	ck_assert_int_eq(aq_wait_all(f, 2, th_long_ns()), 0);
	aq_future_release(f[0]);
	aq_future_release(f[1]);
	aq_pool_destroy(pool);
	th_gate_destroy(&gate);
}
END_TEST

/* Regression: a job that runs a child in place (a nested wait), then holds
 * its worker at a gate, is still running, but the gauge read 0 once the
 * child had returned. */
struct nested_hold {
	aq_pool *pool;
	struct th_gate *gate;
};

static int nested_then_hold_job(void *arg, void **result)
{
	struct nested_hold *n = arg;
	aq_future *child;

	(void)result;
	if (aq_submit(n->pool, th_noop_job, NULL, NULL, &child))
		return 100;
	aq_future_get(child, NULL, -1);
	aq_future_release(child);
	th_gate_pass(n->gate);
	return 0;
}

START_TEST(test_running_gauge_after_nested_wait)
{
	aq_pool *pool = pool_with(1, 64, 0, NULL);
	struct th_gate gate;
	struct nested_hold n = { pool, &gate };
	struct aq_pool_stats st;
	aq_future *f;

	th_gate_init(&gate);
	ck_assert_int_eq(aq_submit(pool, nested_then_hold_job, &n, NULL, &f),
			 0);
	ck_assert(th_gate_wait_entered(&gate, 1));
	st = th_stats_of(pool);
	th_gate_open(&gate);
	ck_assert_int_eq(aq_future_get(f, NULL, th_long_ns()), 0);
	ck_assert_uint_eq(st.running, 1);
	ck_assert_uint_eq(st.workers_busy, 1);
	aq_future_release(f);
	aq_pool_destroy(pool);
	th_gate_destroy(&gate);
}
END_TEST

/* ---- histograms and the window ------------------------------------------ */

static int sleep_1ms_job(void *arg, void **result)
{
	(void)arg;
	(void)result;
	th_sleep_ms(1);
	return 0;
}

START_TEST(test_histograms_off)
{
	static const struct aq_histogram zero;
	aq_pool *pool = pool_with(2, 256, 0, NULL);
	aq_future *f[100];
	struct aq_pool_stats st;

	for (int i = 0; i < 100; i++)
		ck_assert_int_eq(
			aq_submit(pool, th_noop_job, NULL, NULL, &f[i]), 0);
	ck_assert_int_eq(aq_wait_all(f, 100, th_long_ns()), 0);
	st = th_stats_of(pool);
	ck_assert_uint_eq(st.succeeded, 100);
	ck_assert(memcmp(&st.wait, &zero, sizeof(zero)) == 0);
	ck_assert(memcmp(&st.run, &zero, sizeof(zero)) == 0);
	ck_assert(st.utilization == 0);
	ck_assert(st.mean_time_in_system_ns == 0);
	ck_assert(st.mean_in_system == 0);
	ck_assert(st.arrival_rate > 0 && st.throughput > 0);
	for (int i = 0; i < 100; i++)
		aq_future_release(f[i]);
	aq_pool_destroy(pool);
}
END_TEST

START_TEST(test_histograms_timed)
{
	aq_pool *pool = pool_with(2, 256, AQ_POOL_TIMING, NULL);
	aq_future *f[40];
	struct aq_pool_stats st;

	for (int i = 0; i < 40; i++)
		ck_assert_int_eq(aq_submit(pool, sleep_1ms_job, NULL, NULL,
					   &f[i]),
				 0);
	ck_assert_int_eq(aq_wait_all(f, 40, th_long_ns()), 0);
	ck_assert(th_poll(pool_quiet, pool));
	st = th_stats_of(pool);
	ck_assert_uint_eq(st.run.count, 40);
	ck_assert_uint_eq(st.wait.count, 40);
	assert_hist_ordered(&st.run);
	assert_hist_ordered(&st.wait);
	/* Each job slept at least 1 ms: max and mean are exact. */
	ck_assert_int_ge(st.run.max_ns, 1 * MS);
	ck_assert_int_ge(st.run.mean_ns, 1 * MS);
	ck_assert_msg(st.run.p50_ns >= MS / 2 && st.run.p50_ns <= 50 * MS,
		      "run p50 %lld ns for 1 ms jobs",
		      (long long)st.run.p50_ns);
	/* 40 jobs on 2 workers: most waited for others. */
	ck_assert_int_gt(st.wait.max_ns, 0);
	for (int i = 0; i < 40; i++)
		aq_future_release(f[i]);
	aq_pool_destroy(pool);
}
END_TEST

START_TEST(test_window_rates)
{
	aq_pool *pool = pool_with(2, 256, AQ_POOL_TIMING, NULL);
	aq_future *f[100];
	struct aq_pool_stats st;
	double secs;

	(void)th_stats_of(pool); /* the window starts here */
	for (int i = 0; i < 100; i++)
		ck_assert_int_eq(
			aq_submit(pool, th_noop_job, NULL, NULL, &f[i]), 0);
	ck_assert_int_eq(aq_wait_all(f, 100, th_long_ns()), 0);
	th_sleep_ms(20);
	st = th_stats_of(pool);
	secs = (double)st.window_ns / 1e9;
	ck_assert_int_ge(st.window_ns, 20 * MS);
	/* Counts in the window, recovered from the rates. */
	ck_assert_msg(st.arrival_rate * secs > 99.999 &&
			      st.arrival_rate * secs < 100.001,
		      "lambda %g over %g s", st.arrival_rate, secs);
	ck_assert_msg(st.throughput * secs > 99.999 &&
			      st.throughput * secs < 100.001,
		      "X %g over %g s", st.throughput, secs);
	ck_assert(st.mean_time_in_system_ns > 0);
	ck_assert(st.utilization > 0 && st.utilization <= 1.0);
	/* L = X W by definition. */
	ck_assert(st.mean_in_system > 0.999 * st.throughput *
						 st.mean_time_in_system_ns /
						 1e9 &&
		  st.mean_in_system < 1.001 * st.throughput *
						 st.mean_time_in_system_ns /
						 1e9);
	/* A new window: nothing happened in it. */
	st = th_stats_of(pool);
	ck_assert(st.arrival_rate == 0 && st.throughput == 0);
	ck_assert(st.mean_time_in_system_ns == 0 && st.mean_in_system == 0);
	ck_assert_int_ge(st.window_ns, 0);
	ck_assert_uint_eq(st.submitted, 100);
	for (int i = 0; i < 100; i++)
		aq_future_release(f[i]);
	aq_pool_destroy(pool);
}
END_TEST

/* Regression: a parent that runs a 20 ms child in place kept its worker
 * busy for 20 ms, not 40, but both calls were added to the busy time, so
 * utilisation read about 2 on one worker. */
static int sleep_20ms_job(void *arg, void **result)
{
	(void)arg;
	(void)result;
	th_sleep_ms(20);
	return 0;
}

static int parent_of_sleeper_job(void *arg, void **result)
{
	aq_future *child;
	int rc;

	(void)result;
	if (aq_submit(arg, sleep_20ms_job, NULL, NULL, &child))
		return 100;
	rc = aq_future_get(child, NULL, -1);
	aq_future_release(child);
	return rc;
}

START_TEST(test_utilization_nested_once)
{
	aq_pool *pool = pool_with(1, 64, AQ_POOL_TIMING, NULL);
	struct aq_pool_stats st;
	aq_future *f;

	(void)th_stats_of(pool); /* the window starts here */
	ck_assert_int_eq(aq_submit(pool, parent_of_sleeper_job, pool, NULL,
				   &f),
			 0);
	ck_assert_int_eq(aq_future_get(f, NULL, th_long_ns()), 0);
	st = th_stats_of(pool);
	ck_assert_uint_eq(st.run.count, 2);
	ck_assert_msg(st.utilization <= 1.0,
		      "utilisation %.3f of 1 worker (window %lld ns)",
		      st.utilization, (long long)st.window_ns);
	aq_future_release(f);
	aq_pool_destroy(pool);
}
END_TEST

/* Readers never stop the workers, and their reads race with nothing. */
struct reader {
	aq_pool *pool;
	atomic_int stop;
	atomic_int reading; /* set after the first read */
	long reads;
	long wrapped; /* gauges read as "negative" (wrapped) values */
};

static void *read_stats(void *arg)
{
	struct reader *r = arg;
	struct aq_pool_stats st;

	while (!atomic_load(&r->stop)) {
		if (aq_pool_stats(r->pool, &st) != 0)
			continue;
		if (r->reads++ == 0)
			atomic_store(&r->reading, 1);
		/* No gauge can be near 2^64: that would be a count that
		 * went below zero between two loads. */
		if (st.queued > UINT32_MAX || st.running > UINT32_MAX ||
		    completed(&st) > st.submitted + 1000000 ||
		    st.throughput > 1e12 || st.arrival_rate > 1e12)
			r->wrapped++;
	}
	return NULL;
}

START_TEST(test_stats_while_running)
{
	aq_pool *pool = pool_with(2, 4096, AQ_POOL_TIMING, NULL);
	struct reader r[2] = { { pool, 0, 0, 0, 0 }, { pool, 0, 0, 0, 0 } };
	pthread_t t[2];
	atomic_long counted;
	struct aq_pool_stats st;
	const long jobs = 20000;

	atomic_init(&counted, 0);
	for (int i = 0; i < 2; i++)
		ck_assert_int_eq(pthread_create(&t[i], NULL, read_stats, &r[i]),
				 0);
	/* A busy machine may not run a reader before the jobs are done:
	 * the load starts once both are reading. */
	for (int i = 0; i < 2; i++)
		ck_assert(th_poll_int(&r[i].reading, 1));
	for (long i = 0; i < jobs; i++)
		ck_assert_int_eq(th_submit_retry(pool, th_count_job, &counted,
						 NULL, NULL),
				 0);
	ck_assert_int_eq(aq_pool_shutdown(pool, 0), 0);
	for (int i = 0; i < 2; i++) {
		atomic_store(&r[i].stop, 1);
		pthread_join(t[i], NULL);
		ck_assert_int_gt(r[i].reads, 0);
		ck_assert_msg(r[i].wrapped == 0,
			      "%ld of %ld reads had a wrapped gauge",
			      r[i].wrapped, r[i].reads);
	}
	st = th_stats_of(pool);
	ck_assert_int_eq(th_ldl(&counted), jobs);
	ck_assert_uint_eq(st.submitted, (uint64_t)jobs);
	ck_assert_uint_eq(st.succeeded, (uint64_t)jobs);
	ck_assert_uint_eq(st.started, (uint64_t)jobs);
	ck_assert_uint_eq(st.run.count, (uint64_t)jobs);
	aq_pool_destroy(pool);
}
END_TEST

/* ---- windows of one's own (aq_pool_stats_window) ------------------------ */

/* Jobs resolved in a window: throughput times its length. */
static double window_done(const struct aq_pool_stats *st)
{
	return st->throughput * (double)st->window_ns / 1e9;
}

/*
 * Two observers: A keeps its own snapshots, B calls aq_pool_stats() in
 * between (which moves the pool's shared window). A's window from its own
 * earlier snapshot still counts the 100 jobs that ran in it; the shared
 * window of the same call, opened by B after they ran, counts none.
 */
START_TEST(test_window_of_ones_own)
{
	aq_pool *pool = pool_with(1, 256, AQ_POOL_TIMING, NULL);
	struct aq_pool_stats a0, b, a1, copy;
	struct th_gate gate;
	aq_future *gate_fut;
	atomic_long counted;
	int64_t first_submit;
	double busy_ns;

	atomic_init(&counted, 0);
	th_gate_init(&gate);
	first_submit = th_now_ns();
	ck_assert_int_eq(aq_submit(pool, th_gate_job, &gate, NULL, &gate_fut),
			 0);
	ck_assert(th_gate_wait_entered(&gate, 1));
	for (int i = 0; i < 100; i++)
		ck_assert_int_eq(aq_submit(pool, th_count_job, &counted, NULL,
					   NULL),
				 0);
	a0 = th_stats_of(pool);
	th_gate_open(&gate);
	ck_assert_int_eq(aq_future_get(gate_fut, NULL, -1), 0);
	aq_future_release(gate_fut);
	ck_assert(th_poll(pool_quiet, pool));
	b = th_stats_of(pool);
	th_sleep_ms(2);
	a1 = th_stats_of(pool);
	/* The shared window: from b, after the jobs ran. */
	ck_assert(a1.window_ns > 0);
	ck_assert(window_done(&a1) < 0.5);
	ck_assert(a1.taken_ns - b.taken_ns == a1.window_ns);
	/* A's own window: the gate job and the 100 counted ones. */
	ck_assert_int_eq(aq_pool_stats_window(&a0, &a1), 0);
	ck_assert(a1.window_ns == a1.taken_ns - a0.taken_ns);
	ck_assert_msg(window_done(&a1) > 100.5 && window_done(&a1) < 101.5,
		      "%.3f jobs resolved in A's window", window_done(&a1));
	ck_assert(a1.arrival_rate == 0); /* all submitted before a0 */
	/* Busy time counts when a call ends: the gate job's began before a0,
	 * by as much as a slow machine took to submit the 100 jobs, so the
	 * bound is the time since the first submit, not the window. */
	busy_ns = a1.utilization * (double)a1.window_ns * a1.workers;
	ck_assert_msg(busy_ns > 0 && busy_ns <= (double)(a1.taken_ns -
							 first_submit) *
							(1 + 1e-9),
		      "busy %.0f ns in A's window of %lld ns, %lld ns after "
		      "the first submit", busy_ns, (long long)a1.window_ns,
		      (long long)(a1.taken_ns - first_submit));
	/* W: every timed completion in the window (the pool times jobs). */
	ck_assert(a1.mean_time_in_system_ns > 0);
	ck_assert(a1.mean_in_system > 0);
	/* The counters and gauges are left as they were. */
	ck_assert_uint_eq(completed(&a1), completed(&b));
	/* A window of nothing: length 0, no rates. */
	copy = a1;
	ck_assert_int_eq(aq_pool_stats_window(&a1, &copy), 0);
	ck_assert_int_eq(copy.window_ns, 0);
	ck_assert(copy.throughput == 0 && copy.arrival_rate == 0);
	/* Backwards: refused, and *now untouched. */
	copy = a0;
	ck_assert_int_eq(aq_pool_stats_window(&a1, &copy), -EINVAL);
	ck_assert(memcmp(&copy, &a0, sizeof(copy)) == 0);
	aq_pool_destroy(pool);
	th_gate_destroy(&gate);
}
END_TEST

/* ---- per-job hooks ------------------------------------------------------ */

#define HOOK_EVENTS 256

struct hook_log {
	pthread_mutex_t mu;
	struct hook_rec {
		struct aq_job_event ev;
		bool after;
		pthread_t thread;
	} recs[HOOK_EVENTS];
	unsigned n;
	atomic_int mismatches; /* hooks and job disagreed */
};

/* What the before hook told this thread, for the job and the after hook. */
static _Thread_local struct aq_job_event hook_seen;
static _Thread_local bool hook_inside;

static void hook_record(struct hook_log *hl, const struct aq_job_event *ev,
			bool after)
{
	pthread_mutex_lock(&hl->mu);
	if (hl->n < HOOK_EVENTS)
		hl->recs[hl->n++] = (struct hook_rec){ *ev, after,
							 pthread_self() };
	pthread_mutex_unlock(&hl->mu);
}

static void before_hook(const struct aq_job_event *ev, void *user)
{
	struct hook_log *hl = user;

	if (hook_inside || ev->wait_ns < 0)
		atomic_fetch_add(&hl->mismatches, 1);
	hook_seen = *ev;
	hook_inside = true;
	hook_record(hl, ev, false);
}

static void after_hook(const struct aq_job_event *ev, void *user)
{
	struct hook_log *hl = user;

	if (!hook_inside || ev->id != hook_seen.id ||
	    ev->attempt != hook_seen.attempt || ev->run_ns < 0 ||
	    ev->wait_ns != hook_seen.wait_ns)
		atomic_fetch_add(&hl->mismatches, 1);
	hook_inside = false;
	hook_record(hl, ev, true);
}

/* arg: the hl. Checks it runs between the hooks of its own attempt. */
static int hooked_job(void *arg, void **result)
{
	struct hook_log *hl = arg;

	(void)result;
	if (!hook_inside || aq_current_attempt() != hook_seen.attempt)
		atomic_fetch_add(&hl->mismatches, 1);
	return 0;
}

static int hooked_flaky_job(void *arg, void **result)
{
	hooked_job(arg, result);
	return aq_current_attempt() < 3 ? 5 : 0;
}

static int hooked_fail_job(void *arg, void **result)
{
	hooked_job(arg, result);
	return 8;
}

START_TEST(test_job_hooks)
{
	static const struct aq_retry_policy retry3 = { .max_attempts = 3 };
	static struct hook_log hl;
	struct aq_pool_config cfg = { .workers = 2,
				      .before_job = before_hook,
				      .after_job = after_hook,
				      .hook_user = &hl };
	struct aq_job_opts opts = { .retry = &retry3 };
	aq_pool *pool = NULL;
	aq_future *f[30];
	struct aq_pool_stats st;
	struct aq_error err;

	pthread_mutex_init(&hl.mu, NULL);
	atomic_init(&hl.mismatches, 0);
	ck_assert_int_eq(aq_pool_create(&pool, &cfg), 0);
	for (int i = 0; i < 20; i++)
		ck_assert_int_eq(aq_submit(pool, hooked_job, &hl, NULL, &f[i]),
				 0);
	for (int i = 20; i < 25; i++)
		ck_assert_int_eq(aq_submit(pool, hooked_flaky_job, &hl,
					   &opts, &f[i]),
				 0);
	for (int i = 25; i < 30; i++)
		ck_assert_int_eq(aq_submit(pool, hooked_fail_job, &hl, &opts,
					   &f[i]),
				 0);
	ck_assert_int_eq(aq_wait_all(f, 30, th_long_ns()), 0);
	ck_assert_int_eq(aq_pool_shutdown(pool, 0), 0);

	/* 20 + 5 * 3 + 5 * 3 calls, each with one before and one after. */
	ck_assert_uint_eq(hl.n, 2 * 50);
	ck_assert_int_eq(th_ld(&hl.mismatches), 0);
	for (unsigned i = 0; i < hl.n; i++) {
		const struct hook_rec *b = &hl.recs[i];
		unsigned afters = 0;

		if (b->after)
			continue;
		ck_assert_uint_ne(b->ev.id, 0);
		ck_assert_uint_ge(b->ev.attempt, 1);
		ck_assert_uint_le(b->ev.attempt, 3);
		/* Exactly one after for this (id, attempt), later, on the
		 * same thread. */
		for (unsigned j = 0; j < hl.n; j++) {
			const struct hook_rec *a = &hl.recs[j];

			if (!a->after || a->ev.id != b->ev.id ||
			    a->ev.attempt != b->ev.attempt)
				continue;
			afters++;
			ck_assert_uint_gt(j, i);
			ck_assert(pthread_equal(a->thread, b->thread));
		}
		ck_assert_uint_eq(afters, 1);
	}
	/* Codes: the failed futures' records name their last call. */
	for (int i = 25; i < 30; i++) {
		bool found = false;

		ck_assert_int_eq(aq_future_error(f[i], &err), 0);
		ck_assert_uint_eq(err.attempts, 3);
		for (unsigned j = 0; j < hl.n; j++)
			if (hl.recs[j].after &&
			    hl.recs[j].ev.id == err.job_id &&
			    hl.recs[j].ev.attempt == 3) {
				ck_assert_int_eq(hl.recs[j].ev.code, 8);
				found = true;
			}
		ck_assert(found);
	}
	for (unsigned j = 0; j < hl.n; j++) {
		const struct aq_job_event *ev = &hl.recs[j].ev;

		if (hl.recs[j].after && ev->attempt < 3)
			ck_assert(ev->code == 0 || ev->code == 5 ||
				  ev->code == 8);
	}
	/* The hooks turned timing on. */
	st = th_stats_of(pool);
	ck_assert_uint_eq(st.run.count, 50);
	ck_assert_uint_eq(st.retried, 20);
	for (int i = 0; i < 30; i++)
		aq_future_release(f[i]);
	aq_pool_destroy(pool);
	pthread_mutex_destroy(&hl.mu);
}
END_TEST

/* ---- Little's law ------------------------------------------------------- */

/*
 * A steady load on 2 workers: a producer submits jobs at random (Poisson)
 * times for ~60% utilisation, while the test thread samples the number of
 * jobs in the system at random intervals (mean 1 ms, so that sampling does
 * not lock onto any rhythm of the load). Two views:
 *
 *  1. Gauges: each sample is an aq_pool_stats() call, and its queued +
 *     running the number in system. Each call also ends a window, so the
 *     period's lambda, X and W are put together from the windows' own
 *     rates (count = rate * window).
 *  2. One window: aq_pool_stats() is called once at each end, and the
 *     samples count the jobs in system themselves (submitted by the
 *     producer, not yet finished by the job).
 *
 * Each compares L with lambda * W and X * W within 10%; when the first try
 * fails, two more are made and the median of the three decides. L is the
 * exact time average of the test's own count over the period, integrated
 * from the submit and return times; the samples' average only estimates
 * it, and on a busy machine, where the sampler runs when the scheduler
 * lets it, it strayed from it by up to 25% (it is printed beside it).
 *
 * The load is first jobs that spin ~50 us. On a machine too busy to give
 * two workers 60% of two CPUs the queue grows without bound and the law
 * says nothing about a window, and heavy preemption distorts the samples;
 * then (overloaded, or a median off by more than 10%) jobs that sleep
 * ~1 ms, which need almost no CPU, take their place, and their verdict is
 * final. Only when even those overload the pool or find it unsteady
 * (utilisation above 95%, a full ring, or arrivals and completions more
 * than 3% apart) is the check skipped, with a note.
 */
#define LL_WORKERS 2
#define LL_UTIL 0.6
#define LL_WARMUP_MS 200
#define LL_PHASE_MS 800

enum ll_kind { LL_SPIN, LL_SLEEP };

struct ll_load {
	aq_pool *pool;
	enum ll_kind kind;
	int64_t service_ns;    /* the nominal service time of a job */
	atomic_int stop;
	atomic_long submitted; /* by the producer, before aq_submit */
	atomic_long finished;  /* by the jobs, as they return */
	atomic_long refused;
	int64_t base_ns;       /* the origin of the two sums below */
	atomic_llong sub_ns;   /* sum of the times of those submits */
	atomic_llong fin_ns;   /* sum of the times of those returns */
};

static int ll_job(void *arg, void **result)
{
	struct ll_load *load = arg;
	int64_t until = th_now_ns() + load->service_ns;

	(void)result;
	if (load->kind == LL_SLEEP) {
		struct timespec ts = { 0, (long)load->service_ns };

		nanosleep(&ts, NULL);
	} else {
		while (th_now_ns() < until)
			;
	}
	atomic_fetch_add(&load->fin_ns, th_now_ns() - load->base_ns);
	atomic_fetch_add(&load->finished, 1);
	return 0;
}

static uint64_t xorshift(uint64_t *s)
{
	*s ^= *s << 13;
	*s ^= *s >> 7;
	*s ^= *s << 17;
	return *s;
}

/* A uniform number in (0, 1]. */
static double uniform(uint64_t *s)
{
	return ((double)(xorshift(s) >> 11) + 1.0) / 9007199254740992.0;
}

/* -ln(u) for u in (0, 1], without libm: ln(u) = ln(m) + e ln 2. */
static double neg_log(double u)
{
	int e = 0;
	double m = u, t, t2, sum;

	while (m < 0.5) {
		m *= 2;
		e--;
	}
	/* ln(m) = 2 atanh((m - 1) / (m + 1)), m in [0.5, 1]. */
	t = (m - 1) / (m + 1);
	t2 = t * t;
	sum = t * (1 + t2 * (1.0 / 3 + t2 * (1.0 / 5 + t2 * (1.0 / 7 +
					   t2 * (1.0 / 9 + t2 / 11)))));
	return -(2 * sum + e * 0.69314718055994531);
}

static void sleep_until(int64_t t_ns)
{
	struct timespec ts = { .tv_sec = t_ns / 1000000000,
			       .tv_nsec = t_ns % 1000000000 };

	while (clock_nanosleep(CLOCK_MONOTONIC, TIMER_ABSTIME, &ts, NULL) ==
	       EINTR)
		;
}

static void *ll_producer(void *arg)
{
	struct ll_load *load = arg;
	const double mean_gap_ns =
		(double)load->service_ns / (LL_UTIL * LL_WORKERS);
	uint64_t seed = 0x2545F4914F6CDD1DULL;
	int64_t next = th_now_ns();

	while (!atomic_load(&load->stop)) {
		int64_t now = th_now_ns();

		/* Every arrival that is due; then sleep to the next one. */
		while (next <= now) {
			int64_t t = th_now_ns() - load->base_ns;

			atomic_fetch_add(&load->sub_ns, t);
			atomic_fetch_add(&load->submitted, 1);
			/* A full ring: the machine cannot keep up. */
			if (aq_submit(load->pool, ll_job, load, NULL, NULL)) {
				atomic_fetch_add(&load->submitted, -1);
				atomic_fetch_add(&load->sub_ns, -t);
				atomic_fetch_add(&load->refused, 1);
			}
			next += (int64_t)(mean_gap_ns * neg_log(uniform(&seed)));
		}
		sleep_until(next);
	}
	return NULL;
}

/*
 * The jobs in the system by the test's own count, integrated exactly
 * from the sums of submit and return times: the integral of N(t) up to t
 * is N(t) t - (sum of submit times) + (sum of return times).
 */
struct ll_mark {
	int64_t t;
	double integral; /* job-nanoseconds in the system up to t */
};

static struct ll_mark ll_mark(struct ll_load *load)
{
	long n = atomic_load(&load->submitted) - atomic_load(&load->finished);
	double sums = (double)atomic_load(&load->fin_ns) -
		      (double)atomic_load(&load->sub_ns);
	int64_t t = th_now_ns() - load->base_ns;

	return (struct ll_mark){ t, (double)n * (double)t + sums };
}

/* The time average of N between two marks. */
static double ll_exact_l(struct ll_mark a, struct ll_mark b)
{
	return b.t > a.t ? (b.integral - a.integral) / (double)(b.t - a.t)
			 : 0;
}

struct ll_result {
	double l_exact_gauge, l_sampled_gauge, l_lambda_w_gauge, l_x_w_gauge;
	double l_exact_own, l_sampled_own, l_lambda_w_own, l_x_w_own;
	double lambda, x, w_ns, utilization;
	long samples;
	long refused;      /* submits the full ring refused */
	bool overloaded;   /* the load could not be kept steady */
};

/* Sleep a random 0.2 .. 1.8 ms. */
static void sample_pause(uint64_t *seed)
{
	int64_t ns = 200000 + (int64_t)(uniform(seed) * 1600000);
	struct timespec ts = { 0, (long)ns };

	nanosleep(&ts, NULL);
}

static double rel_err(double a, double b)
{
	double d = a - b;

	return (d < 0 ? -d : d) / (b > 0 ? b : 1e-9);
}

static void ll_try(struct ll_result *res, enum ll_kind kind)
{
	struct aq_pool_config cfg = { .workers = LL_WORKERS,
				      .flags = AQ_POOL_TIMING };
	struct ll_load load = { .pool = NULL, .kind = kind };
	struct aq_pool_stats st;
	uint64_t seed = 0x9E3779B97F4A7C15ULL;
	double t_sum = 0, arrivals = 0, done = 0, sojourn = 0, busy = 0;
	double l_weighted = 0, sum_l = 0;
	int64_t end;
	long n = 0;
	pthread_t producer;
	struct ll_mark m0;

	memset(res, 0, sizeof(*res));
	load.service_ns = kind == LL_SPIN ? 50000 : 1000000;
	atomic_init(&load.stop, 0);
	atomic_init(&load.submitted, 0);
	atomic_init(&load.finished, 0);
	atomic_init(&load.refused, 0);
	atomic_init(&load.sub_ns, 0);
	atomic_init(&load.fin_ns, 0);
	load.base_ns = th_now_ns();
	ck_assert_int_eq(aq_pool_create(&load.pool, &cfg), 0);
	ck_assert_int_eq(pthread_create(&producer, NULL, ll_producer, &load),
			 0);
	th_sleep_ms(LL_WARMUP_MS);

	/* 1. Gauges: every sample is a window of its own. */
	ck_assert_int_eq(aq_pool_stats(load.pool, &st), 0);
	m0 = ll_mark(&load);
	end = th_now_ns() + LL_PHASE_MS * MS;
	while (th_now_ns() < end) {
		double secs;

		sample_pause(&seed);
		ck_assert_int_eq(aq_pool_stats(load.pool, &st), 0);
		secs = (double)st.window_ns / 1e9;
		t_sum += secs;
		arrivals += st.arrival_rate * secs;
		done += st.throughput * secs;
		/* Every completion here ran and was timed: W * count is the
		 * window's total time in system. */
		sojourn += st.mean_time_in_system_ns / 1e9 *
			   (st.throughput * secs);
		busy += st.utilization * secs;
		l_weighted += st.mean_in_system * secs;
		sum_l += (double)(st.queued + st.running);
		n++;
	}
	res->samples = n;
	res->lambda = arrivals / t_sum;
	res->x = done / t_sum;
	res->w_ns = done > 0 ? sojourn / done * 1e9 : 0;
	res->utilization = busy / t_sum;
	res->l_sampled_gauge = sum_l / (double)n;
	res->l_exact_gauge = ll_exact_l(m0, ll_mark(&load));
	res->l_lambda_w_gauge = res->lambda * res->w_ns / 1e9;
	res->l_x_w_gauge = l_weighted / t_sum;

	/* 2. One window; the samples count for themselves. */
	sum_l = 0;
	n = 0;
	ck_assert_int_eq(aq_pool_stats(load.pool, &st), 0);
	m0 = ll_mark(&load);
	end = th_now_ns() + LL_PHASE_MS * MS;
	while (th_now_ns() < end) {
		sample_pause(&seed);
		sum_l += (double)(atomic_load(&load.submitted) -
				  atomic_load(&load.finished));
		n++;
	}
	ck_assert_int_eq(aq_pool_stats(load.pool, &st), 0);
	res->l_exact_own = ll_exact_l(m0, ll_mark(&load));
	res->l_sampled_own = sum_l / (double)n;
	res->l_lambda_w_own = st.arrival_rate * st.mean_time_in_system_ns / 1e9;
	res->l_x_w_own = st.mean_in_system;
	if (st.utilization > res->utilization)
		res->utilization = st.utilization;

	atomic_store(&load.stop, 1);
	pthread_join(producer, NULL);
	aq_pool_destroy(load.pool);
	/* Not steady: the ring overflowed, the workers were (by wall
	 * time) almost never free, or the queue grew or shrank by more
	 * than 3% of the period's arrivals (a busy machine stalls the
	 * workers or the producer for a while). The law holds over a
	 * period that ends as full as it began; one that does not shifts
	 * L from lambda W by the backlog's time in it. */
	res->refused = atomic_load(&load.refused);
	res->overloaded = res->refused > 0 || res->utilization > 0.95 ||
			  rel_err(res->x, res->lambda) > 0.03 ||
			  rel_err(st.throughput, st.arrival_rate) > 0.03;
}

static bool ll_ok(const struct ll_result *r)
{
	return rel_err(r->l_lambda_w_gauge, r->l_exact_gauge) <= 0.10 &&
	       rel_err(r->l_x_w_gauge, r->l_exact_gauge) <= 0.10 &&
	       rel_err(r->l_lambda_w_own, r->l_exact_own) <= 0.10 &&
	       rel_err(r->l_x_w_own, r->l_exact_own) <= 0.10;
}

static void ll_print(const char *what, enum ll_kind kind,
		     const struct ll_result *r)
{
	printf("little: %s (%s jobs): lambda %.0f/s X %.0f/s W %.1f us "
	       "rho %.2f; gauges: L %.3f (sampled %.3f), lambda W %.3f, "
	       "X W %.3f (%ld samples); one window: L %.3f (sampled %.3f), "
	       "lambda W %.3f, X W %.3f%s\n",
	       what, kind == LL_SPIN ? "50 us spin" : "1 ms sleep", r->lambda,
	       r->x, r->w_ns / 1e3, r->utilization, r->l_exact_gauge,
	       r->l_sampled_gauge, r->l_lambda_w_gauge, r->l_x_w_gauge,
	       r->samples, r->l_exact_own, r->l_sampled_own,
	       r->l_lambda_w_own, r->l_x_w_own,
	       r->refused ? "; the ring overflowed" : "");
	fflush(stdout);
}

static int cmp_double(const void *a, const void *b)
{
	double x = *(const double *)a, y = *(const double *)b;

	return (x > y) - (x < y);
}

/* The median of three tries' relative errors. */
static double median3(double a, double b, double c)
{
	double v[3] = { a, b, c };

	qsort(v, 3, sizeof(double), cmp_double);
	return v[1];
}

#define LL_ERR(r, l, ref) rel_err((r).l, (r).ref)
#define LL_MEDIAN(r, l, ref)                                                 \
	median3(LL_ERR(r[0], l, ref), LL_ERR(r[1], l, ref),                   \
		LL_ERR(r[2], l, ref))

START_TEST(test_littles_law)
{
	bool verbose = getenv("AQ_TEST_VERBOSE") != NULL;

	for (int k = LL_SPIN; k <= LL_SLEEP; k++) {
		struct ll_result r[3];
		double err[4];
		int i;

		bool overloaded = false;

		for (i = 0; i < 3; i++) {
			ll_try(&r[i], (enum ll_kind)k);
			if (verbose)
				ll_print("try", (enum ll_kind)k, &r[i]);
			overloaded = r[i].overloaded;
			if (overloaded) {
				ll_print("overloaded", (enum ll_kind)k, &r[i]);
				break;
			}
			if (i == 0 && ll_ok(&r[0]))
				return; /* the first try agreed */
		}
		if (overloaded)
			continue; /* a lighter load, or skip */
		/* The first try did not agree: the median of three decides. */
		err[0] = LL_MEDIAN(r, l_lambda_w_gauge, l_exact_gauge);
		err[1] = LL_MEDIAN(r, l_x_w_gauge, l_exact_gauge);
		err[2] = LL_MEDIAN(r, l_lambda_w_own, l_exact_own);
		err[3] = LL_MEDIAN(r, l_x_w_own, l_exact_own);
		for (i = 0; i < 3; i++)
			ll_print("try", (enum ll_kind)k, &r[i]);
		if (k == LL_SPIN && (err[0] > 0.10 || err[1] > 0.10 ||
				     err[2] > 0.10 || err[3] > 0.10)) {
			/* Preemption on a busy machine distorts spinning
			 * jobs most: the sleeping ones decide. */
			printf("little: spinning jobs disagreed, trying "
			       "sleeping ones\n");
			continue;
		}
		for (i = 0; i < 4; i++)
			ck_assert_msg(err[i] <= 0.10,
				      "Little's law off by %.1f%% (check %d, "
				      "median of 3)",
				      100 * err[i], i);
		return;
	}
	printf("little: skipped, the machine is overloaded even for "
	       "sleeping jobs\n");
}
END_TEST

Suite *stats_suite(void)
{
	Suite *s = suite_create("stats");
	TCase *counters = tcase_create("counters");
	TCase *gauges = tcase_create("gauges");
	TCase *timing = tcase_create("timing");
	TCase *little = tcase_create("little");

	tcase_set_timeout(counters, TH_TIMEOUT);
	tcase_add_test(counters, test_counters_add_up);
	tcase_add_test(counters, test_counters_add_up_timed);
	tcase_add_test(counters, test_release_during_read_not_a_submission);
	tcase_add_test(counters, test_rejected);
	tcase_add_test(counters, test_stats_while_running);
	tcase_add_test(counters, test_window_of_ones_own);
	suite_add_tcase(s, counters);

	tcase_set_timeout(gauges, TH_TIMEOUT);
	tcase_add_test(gauges, test_gauges_fifo);
	tcase_add_test(gauges, test_gauges_priority);
	tcase_add_test(gauges, test_gauges_busy_idle);
	tcase_add_test(gauges, test_running_gauge_after_nested_wait);
	suite_add_tcase(s, gauges);

	tcase_set_timeout(timing, TH_TIMEOUT);
	tcase_add_test(timing, test_histograms_off);
	tcase_add_test(timing, test_histograms_timed);
	tcase_add_test(timing, test_window_rates);
	tcase_add_test(timing, test_utilization_nested_once);
	tcase_add_test(timing, test_job_hooks);
	suite_add_tcase(s, timing);

	tcase_set_timeout(little, TH_TIMEOUT);
	tcase_add_test(little, test_littles_law);
	suite_add_tcase(s, little);
	return s;
}
