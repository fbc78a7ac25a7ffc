/* SPDX-License-Identifier: MIT */
/*
 * check_timer.c - time on a virtual clock: the pool clock, delayed jobs
 * (delay_ns, run_at_ns), deadlines and EXPIRED, cancel while pending or
 * delayed, get with a timeout across a delay, shutdown (drain and cancel)
 * with delayed and retry-waiting jobs, bad inputs and timer faults.
 *
 * "Has not started early" is shown by settle(): a marker job due now must
 * leave the timer, after which a few quiet milliseconds follow; then the
 * clock is moved to the exact due time and the job must run.
 */
#include <errno.h>
#include <pthread.h>
#include <sched.h>
#include <stdatomic.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <check.h>

#include "fault.h"
#include "helpers.h"
#include "vclock.h"
#include "suites.h"


/* ---- an instrumented job ---------------------------------------------------- */

struct tjob {
	aq_pool *pool;
	int ret;              /* what the job returns */
	struct th_gate *gate; /* passed when set */
	atomic_int ran;
	atomic_int destroyed;
	int64_t start_ns;     /* th_pool_now() when it started */
	int64_t deadline;     /* aq_current_deadline() it saw */
	unsigned attempt;     /* aq_current_attempt() it saw */
	int order;            /* its place among the jobs that ran */
};

static atomic_int run_order;

static void tjob_init(struct tjob *j, aq_pool *pool, int ret)
{
	memset(j, 0, sizeof(*j));
	j->pool = pool;
	j->ret = ret;
	atomic_init(&j->ran, 0);
	atomic_init(&j->destroyed, 0);
}

static int tjob_fn(void *arg, void **result)
{
	struct tjob *j = arg;

	(void)result;
	j->start_ns = th_pool_now(j->pool);
	j->deadline = aq_current_deadline();
	j->attempt = aq_current_attempt();
	j->order = atomic_fetch_add(&run_order, 1);
	atomic_fetch_add(&j->ran, 1);
	if (j->gate)
		th_gate_pass(j->gate);
	return j->ret;
}

static void tjob_destroy(void *arg)
{
	atomic_fetch_add(&((struct tjob *)arg)->destroyed, 1);
}

static aq_future *tsubmit(struct tjob *j, const struct aq_job_opts *extra)
{
	struct aq_job_opts opts = { 0 };
	aq_future *fut = NULL;

	if (extra)
		opts = *extra;
	opts.arg_destroy = tjob_destroy;
	ck_assert_int_eq(aq_submit(j->pool, tjob_fn, j, &opts, &fut), 0);
	ck_assert_ptr_nonnull(fut);
	return fut;
}

/* ---- the pool clock ------------------------------------------------------------ */

START_TEST(test_pool_now)
{
	struct vclock vc;
	aq_pool *pool = vpool(1, &vc, NULL);
	aq_pool *real = th_pool(1, 16, 0, 0);
	int64_t before, now, after;

	ck_assert_int_eq(th_pool_now(pool), T0);
	vclock_set(pool, &vc, T0 + 123);
	ck_assert_int_eq(th_pool_now(pool), T0 + 123);
	ck_assert_int_eq(aq_pool_now(NULL, &now), -EINVAL);
	ck_assert_int_eq(aq_pool_now(pool, NULL), -EINVAL);
	now = 7;
	ck_assert_int_eq(aq_pool_now(pool, &now), 0);
	ck_assert_int_eq(now, T0 + 123);
	ck_assert_int_eq(aq_pool_clock_changed(NULL), -EINVAL);

	/* Without cfg.clock: CLOCK_MONOTONIC. */
	before = th_now_ns();
	now = th_pool_now(real);
	after = th_now_ns();
	ck_assert_int_ge(now, before);
	ck_assert_int_le(now, after);
	ck_assert_int_eq(aq_pool_clock_changed(real), 0);
	aq_pool_destroy(real);
	aq_pool_destroy(pool);
}
END_TEST

/* The clock is copied at create: the caller's struct may go. */
START_TEST(test_clock_copied)
{
	struct vclock vc;
	struct aq_clock *clock = malloc(sizeof(*clock));
	struct aq_pool_config cfg = { .workers = 1 };
	aq_pool *pool;

	ck_assert_ptr_nonnull(clock);
	atomic_init(&vc.now, 42);
	clock->now = vclock_now;
	clock->user = &vc;
	cfg.clock = clock;
	ck_assert_int_eq(aq_pool_create(&pool, &cfg), 0);
	memset(clock, 0, sizeof(*clock));
	free(clock);
	ck_assert_int_eq(th_pool_now(pool), 42);
	aq_pool_destroy(pool);
}
END_TEST

/* ---- delayed jobs ------------------------------------------------------------- */

/* How a job is delayed, and when it is due. */
static const struct delay_case {
	int64_t delay_ns;  /* relative to T0 (the clock at submit) */
	int64_t run_at_ns; /* absolute; 0 = not set */
	int64_t due;       /* the later of the two */
} delay_cases[] = {
	{ 5 * SEC, 0, T0 + 5 * SEC },                /* delay_ns */
	{ 0, T0 + 3 * SEC, T0 + 3 * SEC },           /* run_at_ns */
	{ 2 * SEC, T0 + 7 * SEC, T0 + 7 * SEC },     /* run_at later */
	{ 9 * SEC, T0 + 4 * SEC, T0 + 9 * SEC },     /* delay later */
	{ 1, 0, T0 + 1 },                            /* 1 ns */
};

START_TEST(test_delayed_never_early)
{
	const struct delay_case *dc = &delay_cases[_i];
	struct vclock vc;
	aq_pool *pool = vpool(2, &vc, NULL);
	struct aq_job_opts opts = { .delay_ns = dc->delay_ns,
				    .run_at_ns = dc->run_at_ns };
	struct tjob j;
	aq_future *fut;

	tjob_init(&j, pool, 0);
	fut = tsubmit(&j, &opts);
	ck_assert_int_eq(aq_future_state(fut), AQ_STATE_DELAYED);
	settle(pool);
	ck_assert_int_eq(atomic_load(&j.ran), 0);
	ck_assert_int_eq(aq_future_state(fut), AQ_STATE_DELAYED);
	ck_assert_int_eq(aq_future_get(fut, NULL, 0), -ETIMEDOUT);

	/* One nanosecond early: still waiting. */
	vclock_set(pool, &vc, dc->due - 1);
	settle(pool);
	ck_assert_int_eq(atomic_load(&j.ran), 0);
	ck_assert_int_eq(aq_future_state(fut), AQ_STATE_DELAYED);
	ck_assert_int_eq(atomic_load(&j.destroyed), 0);

	/* Due: it runs, at exactly that time. */
	vclock_set(pool, &vc, dc->due);
	ck_assert_int_eq(aq_future_get(fut, NULL, poll_ns()), 0);
	ck_assert_int_eq(atomic_load(&j.ran), 1);
	ck_assert_int_eq(j.start_ns, dc->due);
	ck_assert_uint_eq(j.attempt, 1);
	ck_assert_int_eq(j.deadline, 0);
	ck_assert_int_eq(atomic_load(&j.destroyed), 1);
	aq_future_release(fut);
	aq_pool_destroy(pool);
}
END_TEST

/*
 * Regression: a huge delay must mean "very late", not wrap round. With
 * now + delay_ns past INT64_MAX the sum overflowed (undefined behaviour),
 * came out negative, and the job ran at once.
 */
START_TEST(test_huge_delay_never_early)
{
	struct vclock vc;
	aq_pool *pool = vpool(2, &vc, NULL);
	const struct aq_job_opts cases[] = {
		{ .delay_ns = INT64_MAX },
		{ .delay_ns = INT64_MAX - T0 + 1 }, /* just past the edge */
		{ .run_at_ns = INT64_MAX },
		{ .delay_ns = INT64_MAX, .run_at_ns = T0 + 1 },
	};
	enum { N = sizeof(cases) / sizeof(cases[0]) };
	struct tjob j[N];
	aq_future *fut[N];

	for (int i = 0; i < N; i++) {
		tjob_init(&j[i], pool, 0);
		fut[i] = tsubmit(&j[i], &cases[i]);
	}
	vclock_set(pool, &vc, T0 + 3600 * SEC);
	settle(pool);
	for (int i = 0; i < N; i++) {
		ck_assert_msg(atomic_load(&j[i].ran) == 0 &&
				      aq_future_state(fut[i]) ==
					      AQ_STATE_DELAYED,
			      "case %d ran early: state %d", i,
			      aq_future_state(fut[i]));
		ck_assert_int_eq(aq_future_cancel(fut[i]), 0);
		aq_future_release(fut[i]);
	}
	aq_pool_destroy(pool);
	for (int i = 0; i < N; i++)
		ck_assert_int_eq(atomic_load(&j[i].destroyed), 1);
}
END_TEST

/* A clock that jumps far past the due time runs the job once. */
START_TEST(test_delayed_clock_jumps)
{
	struct vclock vc;
	aq_pool *pool = vpool(2, &vc, NULL);
	struct aq_job_opts opts = { .delay_ns = 1 * SEC };
	struct tjob j;
	aq_future *fut;

	tjob_init(&j, pool, 0);
	fut = tsubmit(&j, &opts);
	vclock_set(pool, &vc, T0 + 3600 * SEC);
	ck_assert_int_eq(aq_future_get(fut, NULL, poll_ns()), 0);
	ck_assert_int_eq(j.start_ns, T0 + 3600 * SEC);
	vclock_set(pool, &vc, T0 + 7200 * SEC);
	settle(pool);
	ck_assert_int_eq(atomic_load(&j.ran), 1);
	aq_future_release(fut);
	aq_pool_destroy(pool);
}
END_TEST

/* run_at_ns at or before now: due at once, no clock change needed. */
START_TEST(test_run_at_past)
{
	struct vclock vc;
	aq_pool *pool = vpool(1, &vc, NULL);
	struct aq_job_opts past = { .run_at_ns = 1 };
	struct aq_job_opts now = { .run_at_ns = T0 };
	struct tjob a, b;
	aq_future *fa, *fb;

	tjob_init(&a, pool, 0);
	tjob_init(&b, pool, 0);
	fa = tsubmit(&a, &past);
	fb = tsubmit(&b, &now);
	ck_assert_int_eq(aq_future_get(fa, NULL, poll_ns()), 0);
	ck_assert_int_eq(aq_future_get(fb, NULL, poll_ns()), 0);
	ck_assert_int_eq(a.start_ns, T0);
	ck_assert_int_eq(b.start_ns, T0);
	aq_future_release(fa);
	aq_future_release(fb);
	aq_pool_destroy(pool);
}
END_TEST

/* With one worker, jobs come due, and run, in due order; each step of the
 * clock releases exactly the jobs due by then. */
START_TEST(test_delayed_order)
{
	static const int secs[] = { 5, 1, 4, 2, 3, 9, 7, 6, 8, 10 };
	enum { N = sizeof(secs) / sizeof(secs[0]) };
	struct vclock vc;
	aq_pool *pool = vpool(1, &vc, NULL);
	struct tjob j[N];
	aq_future *fut[N];

	atomic_store(&run_order, 0);
	for (int i = 0; i < N; i++) {
		struct aq_job_opts opts = { .delay_ns = secs[i] * SEC };

		tjob_init(&j[i], pool, 0);
		fut[i] = tsubmit(&j[i], &opts);
	}
	for (int t = 1; t <= 4; t++) {
		vclock_set(pool, &vc, T0 + t * SEC);
		for (int i = 0; i < N; i++)
			if (secs[i] <= t)
				ck_assert(th_poll_state(fut[i],
							AQ_STATE_SUCCEEDED));
		settle(pool);
		for (int i = 0; i < N; i++)
			ck_assert_int_eq(atomic_load(&j[i].ran),
					 secs[i] <= t);
	}
	/* The rest at once: released in due order onto the FIFO ring. */
	vclock_set(pool, &vc, T0 + 10 * SEC);
	for (int i = 0; i < N; i++)
		ck_assert_int_eq(aq_future_get(fut[i], NULL, poll_ns()), 0);
	for (int i = 0; i < N; i++) {
		ck_assert_int_eq(j[i].order, secs[i] - 1);
		aq_future_release(fut[i]);
	}
	aq_pool_destroy(pool);
}
END_TEST

/* Many delayed jobs at random times, some cancelled (out of the middle of
 * the heap): each step runs exactly those due, each once, never early. */
START_TEST(test_delayed_many)
{
	enum { N = 2000, STEPS = 20 };
	struct vclock vc;
	aq_pool *pool = vpool(4, &vc, NULL);
	struct tjob *j = calloc(N, sizeof(*j));
	aq_future **fut = calloc(N, sizeof(*fut));
	int64_t *due = calloc(N, sizeof(*due));
	bool *cancelled = calloc(N, sizeof(*cancelled));
	uint64_t rnd = 88172645463325252u;

	ck_assert(j && fut && due && cancelled);
	for (int i = 0; i < N; i++) {
		struct aq_job_opts opts = { 0 };

		rnd ^= rnd << 13;
		rnd ^= rnd >> 7;
		rnd ^= rnd << 17;
		due[i] = T0 + 1 + (int64_t)(rnd % (STEPS * SEC));
		if (i & 1)
			opts.run_at_ns = due[i];
		else
			opts.delay_ns = due[i] - T0;
		tjob_init(&j[i], pool, 0);
		fut[i] = tsubmit(&j[i], &opts);
	}
	for (int i = 0; i < N; i += 7) {
		ck_assert_int_eq(aq_future_cancel(fut[i]), 0);
		cancelled[i] = true;
	}
	for (int step = 1; step <= STEPS; step++) {
		int64_t now = T0 + step * SEC;

		vclock_set(pool, &vc, now);
		for (int i = 0; i < N; i++)
			if (!cancelled[i] && due[i] <= now)
				ck_assert(th_poll_state(fut[i],
							AQ_STATE_SUCCEEDED));
		settle(pool);
		for (int i = 0; i < N; i++) {
			int ran = atomic_load(&j[i].ran);

			if (cancelled[i] || due[i] > now) {
				ck_assert_int_eq(ran, 0);
			} else {
				ck_assert_int_eq(ran, 1);
				ck_assert_int_ge(j[i].start_ns, due[i]);
			}
		}
	}
	aq_pool_destroy(pool);
	for (int i = 0; i < N; i++) {
		ck_assert_int_eq(atomic_load(&j[i].destroyed), 1);
		ck_assert_int_eq(aq_future_state(fut[i]),
				 cancelled[i] ? AQ_STATE_CANCELLED
					      : AQ_STATE_SUCCEEDED);
		aq_future_release(fut[i]);
	}
	free(j);
	free(fut);
	free(due);
	free(cancelled);
}
END_TEST

/* With the real clock, a delay is a lower bound (an upper one would make a
 * busy machine fail the test). */
START_TEST(test_delay_real_clock)
{
	aq_pool *pool = th_pool(2, 16, 0, 0);
	struct aq_job_opts opts = { .delay_ns = 20 * MS };
	struct tjob j;
	aq_future *fut;
	int64_t submitted;

	tjob_init(&j, pool, 0);
	submitted = th_pool_now(pool);
	fut = tsubmit(&j, &opts);
	ck_assert_int_eq(aq_future_get(fut, NULL, poll_ns()), 0);
	ck_assert_int_ge(j.start_ns - submitted, 20 * MS);
	aq_future_release(fut);
	aq_pool_destroy(pool);
}
END_TEST

/* ---- clocks below zero, and going backwards (issue 11, item 5) ------------ */

static uint64_t delayed_now(aq_pool *pool)
{
	struct aq_pool_stats st;

	ck_assert_int_eq(aq_pool_stats(pool, &st), 0);
	return st.delayed;
}

/* The case as filed: clock -1, one job due at INT64_MAX; every
 * call that takes the timer's lock hung (UBSan: overflow in timer.c). */
START_TEST(test_negative_clock_run_at_max_no_hang)
{
	struct vclock vc;
	aq_pool *pool = vpool(1, &vc, NULL);
	struct aq_job_opts at_max = { .run_at_ns = INT64_MAX };
	struct tjob a;
	aq_future *fa;

	vclock_set(pool, &vc, -1);
	tjob_init(&a, pool, 0);
	fa = tsubmit(&a, &at_max);
	th_sleep_ms(20); /* the timer thread looks at its heap meanwhile */
	ck_assert_int_eq(delayed_now(pool), 1);
	ck_assert_int_eq(aq_pool_clock_changed(pool), 0);
	ck_assert_int_eq(aq_future_cancel(fa), 0);
	ck_assert_int_eq(aq_pool_shutdown(pool, AQ_SHUTDOWN_DRAIN), 0);
	ck_assert_int_eq(atomic_load(&a.ran), 0);
	ck_assert_int_eq(atomic_load(&a.destroyed), 1);
	aq_future_release(fa);
	aq_pool_destroy(pool);
}
END_TEST

/*
 * A clock below zero with a job due at INT64_MAX: the due time minus the
 * clock overflowed, and the timer thread spun holding its lock, so that
 * aq_pool_stats(), aq_pool_clock_changed(), cancels and shutdown blocked
 * for ever. Below zero, a delay counts from the clock as anywhere else (a
 * delayed job used to start at once), and a job with neither delay nor
 * run_at_ns is due at once (a job run after another waited for 0).
 */
START_TEST(test_negative_clock_due_max)
{
	static const int64_t starts[] = { -1, -T0, INT64_MIN + 2 * SEC,
					  INT64_MIN };

	for (unsigned s = 0; s < sizeof(starts) / sizeof(starts[0]); s++) {
		const int64_t t = starts[s];
		struct vclock vc;
		aq_pool *pool = vpool(1, &vc, NULL);
		struct aq_job_opts at_max = { .run_at_ns = INT64_MAX };
		struct aq_job_opts delay_max = { .delay_ns = INT64_MAX };
		struct aq_job_opts delay_1s = { .delay_ns = 1 * SEC };
		struct aq_job_opts dl = { .deadline_ns = 1 };
		struct aq_job_opts after = { .after_count = 1 };
		struct tjob a, b, c, d, e;
		aq_future *fa, *fb, *fc, *fd, *fe;

		vclock_set(pool, &vc, t);
		ck_assert_int_eq(th_pool_now(pool), t);
		tjob_init(&a, pool, 0);
		tjob_init(&b, pool, 0);
		tjob_init(&c, pool, 0);
		tjob_init(&d, pool, 0);
		tjob_init(&e, pool, 0);
		fa = tsubmit(&a, &at_max);
		fb = tsubmit(&b, &delay_max);
		fc = tsubmit(&c, &delay_1s);
		fd = tsubmit(&d, &dl);
		after.after = &fd;
		fe = tsubmit(&e, &after);
		ck_assert_int_eq(aq_future_state(fc), AQ_STATE_DELAYED);
		/* d's deadline (1) is ahead of a clock below zero. */
		ck_assert_int_eq(aq_future_get(fd, NULL, poll_ns()), 0);
		ck_assert_int_eq(d.start_ns, t);
		ck_assert_int_eq(aq_future_get(fe, NULL, poll_ns()), 0);
		ck_assert_int_eq(delayed_now(pool), 3);
		ck_assert_int_eq(aq_pool_clock_changed(pool), 0);

		settle_step(pool, &vc);
		ck_assert_int_eq(atomic_load(&c.ran), 0);
		vclock_set(pool, &vc, t + 1 * SEC - 1);
		settle_step(pool, &vc); /* the clock is now t + 1 s */
		ck_assert_int_eq(aq_future_get(fc, NULL, poll_ns()), 0);
		ck_assert_int_eq(c.start_ns, t + 1 * SEC);

		/* Back to the lowest time there is: nothing else is due. */
		vclock_set(pool, &vc, INT64_MIN);
		settle_step(pool, &vc);
		ck_assert_int_eq(delayed_now(pool), 2);
		ck_assert_int_eq(aq_future_state(fa), AQ_STATE_DELAYED);
		ck_assert_int_eq(aq_future_state(fb), AQ_STATE_DELAYED);
		ck_assert_int_eq(aq_future_cancel(fa), 0);
		ck_assert_int_eq(delayed_now(pool), 1);
		ck_assert_int_eq(aq_pool_shutdown(pool, AQ_SHUTDOWN_CANCEL), 0);
		ck_assert_int_eq(aq_future_get(fb, NULL, 0), -ECANCELED);
		ck_assert_int_eq(atomic_load(&a.ran) + atomic_load(&b.ran), 0);
		aq_pool_destroy(pool);
		ck_assert_int_eq(atomic_load(&a.destroyed) +
					 atomic_load(&b.destroyed) +
					 atomic_load(&c.destroyed) +
					 atomic_load(&d.destroyed) +
					 atomic_load(&e.destroyed),
				 5);
		aq_future_release(fa);
		aq_future_release(fb);
		aq_future_release(fc);
		aq_future_release(fd);
		aq_future_release(fe);
	}
}
END_TEST

/*
 * A clock that goes backwards, far below zero, and forwards again: jobs
 * wait for their due times on it, whatever it read in between, and a job
 * due at INT64_MAX never comes due. Deadlines are read on it as well.
 */
START_TEST(test_clock_backwards_below_zero)
{
	struct vclock vc;
	aq_pool *pool = vpool(2, &vc, NULL);
	struct aq_job_opts in_10s = { .delay_ns = 10 * SEC };
	struct aq_job_opts at_max = { .run_at_ns = INT64_MAX };
	struct aq_job_opts dl = { .deadline_ns = T0 + 5 * SEC };
	struct tjob a, b, c;
	aq_future *fa, *fb, *fc;

	tjob_init(&a, pool, 0);
	tjob_init(&b, pool, 0);
	tjob_init(&c, pool, 0);
	fa = tsubmit(&a, &in_10s);
	fb = tsubmit(&b, &at_max);
	for (int64_t t = -1; t > INT64_MIN / 32; t *= 16) {
		vclock_set(pool, &vc, t);
		ck_assert_int_eq(delayed_now(pool), 2);
	}
	vclock_set(pool, &vc, INT64_MIN);
	settle_step(pool, &vc);
	ck_assert_int_eq(atomic_load(&a.ran), 0);
	/* A job submitted down here with a deadline ahead runs. */
	fc = tsubmit(&c, &dl);
	ck_assert_int_eq(aq_future_get(fc, NULL, poll_ns()), 0);
	ck_assert_int_eq(c.start_ns, INT64_MIN + 1);
	vclock_set(pool, &vc, T0 + 10 * SEC - 1);
	settle(pool);
	ck_assert_int_eq(atomic_load(&a.ran), 0);
	vclock_set(pool, &vc, T0 + 10 * SEC);
	ck_assert_int_eq(aq_future_get(fa, NULL, poll_ns()), 0);
	ck_assert_int_eq(a.start_ns, T0 + 10 * SEC);
	ck_assert_int_eq(aq_future_state(fb), AQ_STATE_DELAYED);
	ck_assert_int_eq(aq_pool_shutdown(pool, AQ_SHUTDOWN_CANCEL), 0);
	ck_assert_int_eq(aq_future_get(fb, NULL, 0), -ECANCELED);
	ck_assert_int_eq(atomic_load(&b.ran), 0);
	aq_future_release(fa);
	aq_future_release(fb);
	aq_future_release(fc);
	aq_pool_destroy(pool);
}
END_TEST

/* ---- deadlines -------------------------------------------------------------- */

static atomic_int expired_errors;

static void count_on_error(const struct aq_job_info *info,
			   const struct aq_error *err, void *user)
{
	(void)info;
	(void)err;
	(void)user;
	atomic_fetch_add(&expired_errors, 1);
}

/* A deadline already passed (or exactly now): never runs, EXPIRED,
 * -ETIME, arg_destroy once, no on_error. */
START_TEST(test_deadline_past)
{
	struct vclock vc;
	struct aq_retry_policy p = { .max_attempts = 3,
				     .on_error = count_on_error };
	aq_pool *pool = vpool(2, &vc, &p);
	struct aq_job_opts past = { .deadline_ns = T0 - 1 };
	struct aq_job_opts now = { .deadline_ns = T0 };
	struct tjob a, b;
	aq_future *fa, *fb;
	void *result = &a;

	atomic_store(&expired_errors, 0);
	tjob_init(&a, pool, 0);
	tjob_init(&b, pool, 0);
	fa = tsubmit(&a, &past);
	fb = tsubmit(&b, &now);
	ck_assert_int_eq(aq_future_get(fa, &result, poll_ns()), -ETIME);
	ck_assert_int_eq(aq_future_get(fb, NULL, poll_ns()), -ETIME);
	ck_assert_ptr_eq(result, &a); /* untouched */
	ck_assert_int_eq(aq_future_state(fa), AQ_STATE_EXPIRED);
	ck_assert_int_eq(aq_future_state(fb), AQ_STATE_EXPIRED);
	ck_assert_int_eq(aq_future_cancel(fa), -EALREADY);
	aq_pool_destroy(pool);
	ck_assert_int_eq(atomic_load(&a.ran), 0);
	ck_assert_int_eq(atomic_load(&b.ran), 0);
	ck_assert_int_eq(atomic_load(&a.destroyed), 1);
	ck_assert_int_eq(atomic_load(&b.destroyed), 1);
	ck_assert_int_eq(atomic_load(&expired_errors), 0);
	ck_assert_int_eq(aq_future_get(fa, NULL, -1), -ETIME);
	aq_future_release(fa);
	aq_future_release(fb);
}
END_TEST

/* The deadline passes while the job is delayed: when due, it expires. And
 * a deadline after the start time lets it run, and the job can read it. */
START_TEST(test_deadline_while_delayed)
{
	struct vclock vc;
	aq_pool *pool = vpool(2, &vc, NULL);
	struct aq_job_opts late = { .run_at_ns = T0 + 10 * SEC,
				    .deadline_ns = T0 + 5 * SEC };
	struct aq_job_opts fine = { .run_at_ns = T0 + 10 * SEC,
				    .deadline_ns = T0 + 10 * SEC + 1 };
	struct tjob a, b;
	aq_future *fa, *fb;

	tjob_init(&a, pool, 0);
	tjob_init(&b, pool, 0);
	fa = tsubmit(&a, &late);
	fb = tsubmit(&b, &fine);
	/* Past the deadline but not yet due: still DELAYED, not expired. */
	vclock_set(pool, &vc, T0 + 6 * SEC);
	settle(pool);
	ck_assert_int_eq(aq_future_state(fa), AQ_STATE_DELAYED);
	ck_assert_int_eq(atomic_load(&a.destroyed), 0);
	vclock_set(pool, &vc, T0 + 10 * SEC);
	ck_assert_int_eq(aq_future_get(fa, NULL, poll_ns()), -ETIME);
	ck_assert_int_eq(aq_future_get(fb, NULL, poll_ns()), 0);
	ck_assert_int_eq(atomic_load(&a.ran), 0);
	ck_assert_int_eq(atomic_load(&a.destroyed), 1);
	ck_assert_int_eq(atomic_load(&b.ran), 1);
	ck_assert_int_eq(b.deadline, T0 + 10 * SEC + 1);
	ck_assert_int_eq(b.start_ns, T0 + 10 * SEC);
	aq_future_release(fa);
	aq_future_release(fb);
	aq_pool_destroy(pool);
}
END_TEST

/* The deadline passes while the job waits behind a busy worker: it is
 * checked when a worker reaches it. */
START_TEST(test_deadline_while_pending)
{
	struct vclock vc;
	aq_pool *pool = vpool(1, &vc, NULL);
	struct th_gate gate;
	struct aq_job_opts opts = { .deadline_ns = T0 + 1 * SEC };
	struct tjob g, x, y;
	aq_future *fg, *fx, *fy;

	th_gate_init(&gate);
	tjob_init(&g, pool, 0);
	g.gate = &gate;
	tjob_init(&x, pool, 0);
	tjob_init(&y, pool, 0);
	fg = tsubmit(&g, NULL);
	ck_assert(th_gate_wait_entered(&gate, 1));
	fx = tsubmit(&x, &opts);
	fy = tsubmit(&y, NULL);
	ck_assert_int_eq(aq_future_state(fx), AQ_STATE_PENDING);
	vclock_set(pool, &vc, T0 + 1 * SEC);
	th_gate_open(&gate);
	ck_assert_int_eq(aq_future_get(fx, NULL, poll_ns()), -ETIME);
	ck_assert_int_eq(aq_future_get(fy, NULL, poll_ns()), 0);
	ck_assert_int_eq(atomic_load(&x.ran), 0);
	ck_assert_int_eq(atomic_load(&x.destroyed), 1);
	aq_future_release(fg);
	aq_future_release(fx);
	aq_future_release(fy);
	aq_pool_destroy(pool);
	th_gate_destroy(&gate);
}
END_TEST

/* A retry due after the deadline does not happen: EXPIRED, no on_error. */
static atomic_int dl_ran;

static int dl_fail(void *arg, void **result)
{
	(void)arg;
	(void)result;
	atomic_fetch_add(&dl_ran, 1);
	return 4;
}

START_TEST(test_deadline_between_attempts)
{
	struct vclock vc;
	struct aq_retry_policy p = { .max_attempts = 5,
				     .base_delay_ns = 2 * SEC,
				     .on_error = count_on_error };
	aq_pool *pool = vpool(1, &vc, NULL);
	struct aq_job_opts opts = { .retry = &p,
				    .deadline_ns = T0 + 3 * SEC };
	aq_future *fut;

	atomic_store(&expired_errors, 0);
	atomic_store(&dl_ran, 0);
	ck_assert_int_eq(aq_submit(pool, dl_fail, NULL, &opts, &fut), 0);
	/* Attempt 1 at T0, attempt 2 at T0 + 2 s (before the deadline). */
	ck_assert(th_poll_state(fut, AQ_STATE_RETRYING));
	vclock_set(pool, &vc, T0 + 2 * SEC);
	ck_assert(th_poll_int(&dl_ran, 2));
	ck_assert(th_poll_state(fut, AQ_STATE_RETRYING));
	/* Attempt 3 would start at T0 + 4 s: past the deadline. */
	vclock_set(pool, &vc, T0 + 4 * SEC);
	ck_assert_int_eq(aq_future_get(fut, NULL, poll_ns()), -ETIME);
	ck_assert_int_eq(aq_future_state(fut), AQ_STATE_EXPIRED);
	ck_assert_int_eq(atomic_load(&dl_ran), 2);
	ck_assert_int_eq(atomic_load(&expired_errors), 0);
	aq_future_release(fut);
	aq_pool_destroy(pool);
}
END_TEST

/* aq_current_deadline(): the job's own, 0 without one. */
START_TEST(test_job_deadline)
{
	struct vclock vc;
	aq_pool *pool = vpool(1, &vc, NULL);
	struct aq_job_opts opts = { .deadline_ns = T0 + 5 * SEC };
	struct tjob a, b;
	aq_future *fa, *fb;

	tjob_init(&a, pool, 0);
	tjob_init(&b, pool, 0);
	fa = tsubmit(&a, &opts);
	fb = tsubmit(&b, NULL);
	ck_assert_int_eq(aq_future_get(fa, NULL, poll_ns()), 0);
	ck_assert_int_eq(aq_future_get(fb, NULL, poll_ns()), 0);
	ck_assert_int_eq(a.deadline, T0 + 5 * SEC);
	ck_assert_int_eq(b.deadline, 0);
	ck_assert_int_eq(aq_current_deadline(), 0); /* not in a job */
	aq_future_release(fa);
	aq_future_release(fb);
	aq_pool_destroy(pool);
}
END_TEST

/* ---- cancel ------------------------------------------------------------------- */

START_TEST(test_cancel_pending)
{
	struct vclock vc;
	struct aq_retry_policy p = { .max_attempts = 3,
				     .on_error = count_on_error };
	aq_pool *pool = vpool(1, &vc, &p);
	struct th_gate gate;
	struct tjob g, x;
	aq_future *fg, *fx;

	atomic_store(&expired_errors, 0);
	th_gate_init(&gate);
	tjob_init(&g, pool, 0);
	g.gate = &gate;
	tjob_init(&x, pool, 9);
	fg = tsubmit(&g, NULL);
	ck_assert(th_gate_wait_entered(&gate, 1));
	fx = tsubmit(&x, NULL);
	ck_assert_int_eq(aq_future_state(fx), AQ_STATE_PENDING);
	ck_assert_int_eq(aq_future_cancel(fx), 0);
	ck_assert_int_eq(atomic_load(&x.destroyed), 1);
	ck_assert_int_eq(aq_future_state(fx), AQ_STATE_CANCELLED);
	ck_assert_int_eq(aq_future_cancel(fx), -EALREADY);
	th_gate_open(&gate);
	ck_assert_int_eq(aq_future_get(fg, NULL, poll_ns()), 0);
	ck_assert_int_eq(aq_future_get(fx, NULL, 0), -ECANCELED);
	aq_pool_destroy(pool);
	ck_assert_int_eq(atomic_load(&x.ran), 0);
	ck_assert_int_eq(atomic_load(&x.destroyed), 1);
	ck_assert_int_eq(atomic_load(&expired_errors), 0);
	aq_future_release(fg);
	aq_future_release(fx);
	th_gate_destroy(&gate);
}
END_TEST

START_TEST(test_cancel_delayed)
{
	struct vclock vc;
	aq_pool *pool = vpool(2, &vc, NULL);
	struct aq_job_opts opts = { .delay_ns = 5 * SEC };
	struct tjob a, b;
	aq_future *fa, *fb;

	tjob_init(&a, pool, 0);
	tjob_init(&b, pool, 0);
	fa = tsubmit(&a, &opts);
	fb = tsubmit(&b, &opts);
	ck_assert_int_eq(aq_future_cancel(fa), 0);
	ck_assert_int_eq(aq_future_state(fa), AQ_STATE_CANCELLED);
	ck_assert_int_eq(atomic_load(&a.destroyed), 1);
	ck_assert_int_eq(aq_future_get(fa, NULL, 0), -ECANCELED);
	ck_assert_int_eq(aq_future_cancel(fa), -EALREADY);
	/* Due time passes: the cancelled one never runs, the other does. */
	vclock_set(pool, &vc, T0 + 5 * SEC);
	ck_assert_int_eq(aq_future_get(fb, NULL, poll_ns()), 0);
	settle(pool);
	ck_assert_int_eq(atomic_load(&a.ran), 0);
	ck_assert_int_eq(atomic_load(&b.ran), 1);
	/* Cancelling a job and releasing its future early leaks nothing. */
	{
		struct tjob c;
		aq_future *fc;

		tjob_init(&c, pool, 0);
		fc = tsubmit(&c, &opts);
		aq_future_release(fc);
		vclock_set(pool, &vc, T0 + 10 * SEC);
		ck_assert(th_poll_int(&c.destroyed, 1));
		ck_assert_int_eq(atomic_load(&c.ran), 1);
	}
	aq_pool_destroy(pool);
	ck_assert_int_eq(atomic_load(&a.destroyed), 1);
	ck_assert_int_eq(atomic_load(&b.destroyed), 1);
	aq_future_release(fa);
	aq_future_release(fb);
}
END_TEST

/* ---- get with a timeout across a delay ----------------------------------------- */

struct advance {
	aq_pool *pool;
	struct vclock *vc;
	int64_t to;
};

static void *advance_main(void *arg)
{
	struct advance *a = arg;

	th_sleep_ms(20); /* likely inside the get below; fine either way */
	atomic_store(&a->vc->now, a->to);
	aq_pool_clock_changed(a->pool);
	return NULL;
}

START_TEST(test_get_timeout_delayed)
{
	struct vclock vc;
	aq_pool *pool = vpool(1, &vc, NULL);
	struct aq_job_opts opts = { .delay_ns = 1 * SEC };
	struct advance adv = { .pool = pool, .vc = &vc, .to = T0 + 1 * SEC };
	struct tjob j;
	aq_future *fut;
	pthread_t tid;

	tjob_init(&j, pool, 6);
	fut = tsubmit(&j, &opts);
	ck_assert_int_eq(aq_future_get(fut, NULL, 0), -ETIMEDOUT);
	ck_assert_int_eq(aq_future_get(fut, NULL, 20 * MS), -ETIMEDOUT);
	ck_assert_int_eq(aq_future_state(fut), AQ_STATE_DELAYED);
	ck_assert_int_eq(pthread_create(&tid, NULL, advance_main, &adv), 0);
	ck_assert_int_eq(aq_future_get(fut, NULL, poll_ns()), 6);
	pthread_join(tid, NULL);
	aq_future_release(fut);
	aq_pool_destroy(pool);
}
END_TEST

/* ---- shutdown ---------------------------------------------------------------- */

static bool shutdown_begun(void *ctx)
{
	return aq_submit(ctx, marker_fn, NULL, NULL, NULL) == -ESHUTDOWN;
}

static atomic_int retry_ran;

static int fail_once(void *arg, void **result)
{
	(void)arg;
	(void)result;
	return atomic_fetch_add(&retry_ran, 1) == 0 ? 3 : 0;
}

/* A drain waits for a delayed job and a pending retry to run at their
 * times on the pool clock, moved here while shutdown waits. */
START_TEST(test_shutdown_drain_waits)
{
	struct vclock vc;
	aq_pool *pool = vpool(2, &vc, NULL);
	struct aq_retry_policy p = { .max_attempts = 2,
				     .base_delay_ns = 2 * SEC };
	struct aq_job_opts ropts = { .retry = &p };
	struct aq_job_opts dopts = { .delay_ns = 5 * SEC };
	struct th_shutdown s = { 0 };
	struct tjob d;
	aq_future *fd, *fr;

	atomic_store(&retry_ran, 0);
	tjob_init(&d, pool, 0);
	fd = tsubmit(&d, &dopts);
	ck_assert_int_eq(aq_submit(pool, fail_once, NULL, &ropts, &fr), 0);
	ck_assert(th_poll_state(fr, AQ_STATE_RETRYING));

	th_shutdown_start(&s, pool, AQ_SHUTDOWN_DRAIN);
	ck_assert(th_poll(shutdown_begun, pool));
	th_sleep_ms(20);
	ck_assert_int_eq(atomic_load(&s.returned), 0);
	ck_assert_int_eq(aq_future_state(fd), AQ_STATE_DELAYED);
	ck_assert_int_eq(aq_future_state(fr), AQ_STATE_RETRYING);

	/* The retry comes due and succeeds; the drain still waits. */
	vclock_set(pool, &vc, T0 + 2 * SEC);
	ck_assert_int_eq(aq_future_get(fr, NULL, poll_ns()), 0);
	/* (no settle(): submits are refused now) */
	th_sleep_ms(20);
	ck_assert_int_eq(atomic_load(&s.returned), 0);
	ck_assert_int_eq(aq_future_state(fd), AQ_STATE_DELAYED);

	/* The delayed job comes due: the drain completes. */
	vclock_set(pool, &vc, T0 + 5 * SEC);
	pthread_join(s.tid, NULL);
	ck_assert_int_eq(s.ret, 0);
	ck_assert_int_eq(aq_future_state(fd), AQ_STATE_SUCCEEDED);
	ck_assert_int_eq(atomic_load(&d.ran), 1);
	ck_assert_int_eq(d.start_ns, T0 + 5 * SEC);
	ck_assert_int_eq(atomic_load(&d.destroyed), 1);
	ck_assert_int_eq(atomic_load(&retry_ran), 2);
	aq_future_release(fd);
	aq_future_release(fr);
	aq_pool_destroy(pool);
}
END_TEST

/* A cancelling shutdown resolves delayed and retry-waiting jobs at once,
 * without the clock moving; a job failing meanwhile is not retried. */
struct gated_fail {
	struct th_gate *gate;
	atomic_int ran;
	atomic_int errors;
	atomic_int destroyed;
};

static int gated_fail_fn(void *arg, void **result)
{
	struct gated_fail *g = arg;

	(void)result;
	atomic_fetch_add(&g->ran, 1);
	th_gate_pass(g->gate);
	return 8;
}

static void gated_fail_destroy(void *arg)
{
	atomic_fetch_add(&((struct gated_fail *)arg)->destroyed, 1);
}

static void gated_on_error(const struct aq_job_info *info,
			   const struct aq_error *err, void *user)
{
	struct gated_fail *g = info->arg;

	(void)user;
	if (info->arg && user == info->arg && err->attempts == 1 &&
	    err->code == 8)
		atomic_fetch_add(&g->errors, 1);
}

START_TEST(test_shutdown_cancel_resolves_timers)
{
	struct vclock vc;
	aq_pool *pool = vpool(1, &vc, NULL);
	struct th_gate gate;
	struct gated_fail gf = { .gate = &gate };
	struct aq_retry_policy rp = { .max_attempts = 3,
				      .base_delay_ns = 60 * SEC,
				      .on_error = count_on_error };
	struct aq_retry_policy gp = { .max_attempts = 5,
				      .on_error = gated_on_error,
				      .user = &gf };
	struct aq_job_opts dopts = { .delay_ns = 3600 * SEC };
	struct aq_job_opts ropts = { .retry = &rp,
				     .arg_destroy = tjob_destroy };
	struct aq_job_opts gopts = { .retry = &gp,
				     .arg_destroy = gated_fail_destroy };
	struct th_shutdown s = { 0 };
	struct tjob d1, d2, r, pend;
	aq_future *fd1, *fd2, *fr, *fg, *fp;

	atomic_store(&expired_errors, 0);
	th_gate_init(&gate);
	atomic_init(&gf.ran, 0);
	atomic_init(&gf.errors, 0);
	atomic_init(&gf.destroyed, 0);
	tjob_init(&d1, pool, 0);
	tjob_init(&d2, pool, 0);
	tjob_init(&r, pool, 5);
	tjob_init(&pend, pool, 0);

	fd1 = tsubmit(&d1, &dopts);
	dopts.run_at_ns = T0 + 7200 * SEC;
	fd2 = tsubmit(&d2, &dopts);
	ck_assert_int_eq(aq_submit(pool, tjob_fn, &r, &ropts, &fr), 0);
	ck_assert(th_poll_state(fr, AQ_STATE_RETRYING));
	/* The one worker: held in a job that will fail, retries allowed. */
	ck_assert_int_eq(aq_submit(pool, gated_fail_fn, &gf, &gopts, &fg), 0);
	ck_assert(th_gate_wait_entered(&gate, 1));
	fp = tsubmit(&pend, NULL); /* pending behind it */

	th_shutdown_start(&s, pool, AQ_SHUTDOWN_CANCEL);
	/* Delayed and retry-waiting: cancelled at once. */
	ck_assert(th_poll_state(fd1, AQ_STATE_CANCELLED));
	ck_assert(th_poll_state(fd2, AQ_STATE_CANCELLED));
	ck_assert(th_poll_state(fr, AQ_STATE_CANCELLED));
	ck_assert_int_eq(atomic_load(&s.returned), 0); /* the held job */
	th_gate_open(&gate);
	pthread_join(s.tid, NULL);
	ck_assert_int_eq(s.ret, 0);

	/* The failing job was not retried: FAILED, on_error once. */
	ck_assert_int_eq(aq_future_get(fg, NULL, 0), 8);
	ck_assert_int_eq(atomic_load(&gf.ran), 1);
	ck_assert_int_eq(atomic_load(&gf.errors), 1);
	ck_assert_int_eq(atomic_load(&gf.destroyed), 1);
	ck_assert_int_eq(aq_future_get(fp, NULL, 0), -ECANCELED);
	ck_assert_int_eq(aq_future_get(fd1, NULL, 0), -ECANCELED);
	ck_assert_int_eq(aq_future_get(fd2, NULL, 0), -ECANCELED);
	ck_assert_int_eq(aq_future_get(fr, NULL, 0), -ECANCELED);
	ck_assert_int_eq(atomic_load(&d1.ran), 0);
	ck_assert_int_eq(atomic_load(&d2.ran), 0);
	ck_assert_int_eq(atomic_load(&r.ran), 1);
	ck_assert_int_eq(atomic_load(&pend.ran), 0);
	ck_assert_int_eq(atomic_load(&d1.destroyed), 1);
	ck_assert_int_eq(atomic_load(&d2.destroyed), 1);
	ck_assert_int_eq(atomic_load(&r.destroyed), 1);
	ck_assert_int_eq(atomic_load(&pend.destroyed), 1);
	ck_assert_int_eq(atomic_load(&expired_errors), 0);
	/* Once shut down, delayed submits are refused. */
	{
		struct aq_job_opts later = { .delay_ns = 1 };

		ck_assert_int_eq(aq_submit(pool, marker_fn, NULL, &later,
					   NULL), -ESHUTDOWN);
	}
	aq_pool_destroy(pool);
	aq_future_release(fd1);
	aq_future_release(fd2);
	aq_future_release(fr);
	aq_future_release(fg);
	aq_future_release(fp);
	th_gate_destroy(&gate);
}
END_TEST

/* ---- bad inputs, faults ---------------------------------------------------- */

START_TEST(test_time_inputs_invalid)
{
	struct vclock vc;
	aq_pool *pool = vpool(1, &vc, NULL);
	struct aq_job_opts bad[3] = { { .delay_ns = -1 },
				      { .run_at_ns = -1 },
				      { .deadline_ns = -1 } };
	struct aq_clock no_now = { NULL, &vc };
	struct aq_pool_config cfg = { .workers = 1, .clock = &no_now };
	aq_pool *p2 = (aq_pool *)(uintptr_t)0x1;
	struct tjob j;

	tjob_init(&j, pool, 0);
	for (int i = 0; i < 3; i++) {
		aq_future *fut = (aq_future *)(uintptr_t)0x1;

		bad[i].arg_destroy = tjob_destroy;
		ck_assert_int_eq(aq_submit(pool, tjob_fn, &j, &bad[i], &fut),
				 -EINVAL);
		ck_assert_ptr_null(fut);
		ck_assert_int_eq(aq_submit(pool, tjob_fn, &j, &bad[i], NULL),
				 -EINVAL);
	}
	ck_assert_int_eq(atomic_load(&j.destroyed), 0);
	ck_assert_int_eq(aq_pool_create(&p2, &cfg), -EINVAL);
	ck_assert_ptr_eq(p2, (aq_pool *)(uintptr_t)0x1);
	aq_pool_destroy(pool);
	ck_assert_int_eq(atomic_load(&j.ran), 0);
}
END_TEST

/* The timer thread fails to start: the delayed submit fails cleanly (arg
 * still the caller's), and the next one starts it. */
START_TEST(test_timer_thread_fails)
{
	struct vclock vc;
	aq_pool *pool = vpool(1, &vc, NULL);
	struct aq_job_opts opts = { .delay_ns = 1 * SEC };
	struct tjob j;
	aq_future *fut = (aq_future *)(uintptr_t)0x1;
	int rc;

	tjob_init(&j, pool, 0);
	opts.arg_destroy = tjob_destroy;
	aq__fault_arm(AQ__FAULT_THREAD, 1);
	rc = aq_submit(pool, tjob_fn, &j, &opts, &fut);
	aq__fault_arm(AQ__FAULT_THREAD, 0);
	ck_assert_int_eq(rc, -EAGAIN);
	ck_assert_ptr_null(fut);
	ck_assert_int_eq(atomic_load(&j.destroyed), 0);

	fut = tsubmit(&j, &opts);
	vclock_set(pool, &vc, T0 + 1 * SEC);
	ck_assert_int_eq(aq_future_get(fut, NULL, poll_ns()), 0);
	aq_future_release(fut);
	aq_pool_destroy(pool); /* no stranded timer user: no hang */
	ck_assert_int_eq(atomic_load(&j.ran), 1);
	ck_assert_int_eq(atomic_load(&j.destroyed), 1);
}
END_TEST

/* The timer's heap cannot grow: -ENOMEM, nothing half-done. */
START_TEST(test_timer_heap_alloc_fails)
{
	struct vclock vc;
	aq_pool *pool = vpool(1, &vc, NULL);
	struct aq_job_opts opts = { .delay_ns = 1 * SEC,
				    .arg_destroy = tjob_destroy };
	struct tjob j;
	aq_future *fut;
	int rc;

	/* Warm the record cache, so the only allocation left is the heap. */
	tjob_init(&j, pool, 0);
	fut = tsubmit(&j, NULL);
	ck_assert_int_eq(aq_future_get(fut, NULL, poll_ns()), 0);
	aq_future_release(fut);
	tjob_init(&j, pool, 0);

	aq__fault_arm(AQ__FAULT_ALLOC, 1);
	rc = aq_submit(pool, tjob_fn, &j, &opts, &fut);
	aq__fault_arm(AQ__FAULT_ALLOC, 0);
	ck_assert_int_eq(rc, -ENOMEM);
	ck_assert_ptr_null(fut);
	ck_assert_int_eq(atomic_load(&j.destroyed), 0);

	fut = tsubmit(&j, &opts);
	vclock_set(pool, &vc, T0 + 1 * SEC);
	ck_assert_int_eq(aq_future_get(fut, NULL, poll_ns()), 0);
	aq_future_release(fut);
	aq_pool_destroy(pool);
	ck_assert_int_eq(atomic_load(&j.destroyed), 1);
}
END_TEST

/* aq_strerror() names every code the library returns, -ETIME included. */
START_TEST(test_strerror_etime)
{
	ck_assert_str_ne(aq_strerror(-ETIME), "Unknown error");
}
END_TEST

Suite *timer_suite(void)
{
	Suite *s = suite_create("timer");
	TCase *clock = tcase_create("clock");
	TCase *delay = tcase_create("delay");
	TCase *deadline = tcase_create("deadline");
	TCase *cancel = tcase_create("cancel");
	TCase *shutdown = tcase_create("shutdown");
	TCase *misuse = tcase_create("misuse");

	tcase_set_timeout(clock, TH_TIMEOUT);
	tcase_add_test(clock, test_pool_now);
	tcase_add_test(clock, test_clock_copied);
	suite_add_tcase(s, clock);

	tcase_set_timeout(delay, TH_TIMEOUT);
	tcase_add_loop_test(delay, test_delayed_never_early, 0,
			    (int)(sizeof(delay_cases) /
				  sizeof(delay_cases[0])));
	tcase_add_test(delay, test_delayed_clock_jumps);
	tcase_add_test(delay, test_huge_delay_never_early);
	tcase_add_test(delay, test_run_at_past);
	tcase_add_test(delay, test_delayed_order);
	tcase_add_test(delay, test_delayed_many);
	tcase_add_test(delay, test_delay_real_clock);
	tcase_add_test(delay, test_negative_clock_run_at_max_no_hang);
	tcase_add_test(delay, test_negative_clock_due_max);
	tcase_add_test(delay, test_clock_backwards_below_zero);
	suite_add_tcase(s, delay);

	tcase_set_timeout(deadline, TH_TIMEOUT);
	tcase_add_test(deadline, test_deadline_past);
	tcase_add_test(deadline, test_deadline_while_delayed);
	tcase_add_test(deadline, test_deadline_while_pending);
	tcase_add_test(deadline, test_deadline_between_attempts);
	tcase_add_test(deadline, test_job_deadline);
	suite_add_tcase(s, deadline);

	tcase_set_timeout(cancel, TH_TIMEOUT);
	tcase_add_test(cancel, test_cancel_pending);
	tcase_add_test(cancel, test_cancel_delayed);
	tcase_add_test(cancel, test_get_timeout_delayed);
	suite_add_tcase(s, cancel);

	tcase_set_timeout(shutdown, TH_TIMEOUT);
	tcase_add_test(shutdown, test_shutdown_drain_waits);
	tcase_add_test(shutdown, test_shutdown_cancel_resolves_timers);
	suite_add_tcase(s, shutdown);

	tcase_set_timeout(misuse, TH_TIMEOUT);
	tcase_add_test(misuse, test_time_inputs_invalid);
	tcase_add_test(misuse, test_timer_thread_fails);
	tcase_add_test(misuse, test_timer_heap_alloc_fails);
	tcase_add_test(misuse, test_strerror_etime);
	suite_add_tcase(s, misuse);
	return s;
}
