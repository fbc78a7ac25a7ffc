/* SPDX-License-Identifier: MIT */
/*
 * check_retry.c - retries on a virtual clock: back-off (fixed, exponential,
 * capped, jittered), retryable codes, on_retry and on_error, the error
 * record, pool and job policies, cancellation across attempts, get with a
 * timeout across retries, and a stress test of conservation.
 *
 * Every time here is a virtual clock the test moves by hand, so each due
 * time is checked exactly: one nanosecond early the job still waits, on
 * time it runs. "Has not happened" is shown by settle(): a marker job due
 * now must leave the timer first, then a few quiet milliseconds follow.
 */
#include <errno.h>
#include <limits.h>
#include <math.h>
#include <pthread.h>
#include <sched.h>
#include <stdatomic.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <check.h>

#include "fault.h"
#include "helpers.h"
#include "retry.h"
#include "vclock.h"
#include "suites.h"

#define MAXA 16 /* attempts and callbacks recorded per job */

/* A failed attempt is settled: RETRYING (its due time fixed) or final. */
static bool settled(void *fut)
{
	enum aq_state st = aq_future_state(fut);

	return st == AQ_STATE_RETRYING || st >= AQ_STATE_SUCCEEDED;
}

/* ---- an instrumented flaky job ------------------------------------------- */

/*
 * Attempts 1..nfail fail with `code`, later ones succeed. Each attempt
 * records what the job saw; the callbacks below record what they saw.
 */
struct rjob {
	aq_pool *pool;
	unsigned nfail;       /* attempts that fail */
	int code;             /* their failure code */
	struct th_gate *gate; /* passed in every attempt when set */
	bool wait_cancel;     /* spin until aq_current_cancelled(), then return
				 cancel_ret */
	int cancel_ret;
	const char *msg;      /* aq_current_fail_msg("<msg> <attempt>") if set */
	_Atomic(aq_future *) fut; /* set by the test, read by on_error */
	atomic_int ran;       /* attempts started */
	atomic_int destroyed; /* arg_destroy calls */
	atomic_int bad;       /* inconsistencies seen on a worker */
	/* Per attempt, index attempt - 1. */
	unsigned attempt_seen[MAXA];
	int64_t start_ns[MAXA];
	int64_t deadline_seen[MAXA];
	int cancelled_seen[MAXA];
	/* Per on_retry call. */
	atomic_int retries;
	unsigned retry_attempt[MAXA];
	unsigned retry_info_attempt[MAXA];
	int retry_code[MAXA];
	int64_t retry_delay[MAXA]; /* *delay_ns as the library offered it */
	uint64_t retry_id[MAXA];
	/* on_error. */
	atomic_int errors;
	struct aq_job_info err_info;
	struct aq_error err;
	char err_msg[64];
	int destroyed_at_error;
	enum aq_state state_at_error;
	pthread_t cb_thread; /* thread of the last callback */
};

static struct rjob *rjob_new(aq_pool *pool, unsigned nfail, int code)
{
	struct rjob *j = calloc(1, sizeof(*j));

	ck_assert_ptr_nonnull(j);
	j->pool = pool;
	j->nfail = nfail;
	j->code = code;
	atomic_init(&j->ran, 0);
	atomic_init(&j->destroyed, 0);
	atomic_init(&j->bad, 0);
	atomic_init(&j->retries, 0);
	atomic_init(&j->errors, 0);
	return j;
}

static int rjob_fn(void *arg, void **result)
{
	struct rjob *j = arg;
	int n = atomic_load(&j->ran); /* attempts before this one */
	unsigned attempt = aq_current_attempt();

	(void)result;
	if (attempt != (unsigned)n + 1)
		atomic_fetch_add(&j->bad, 1);
	if (n < MAXA) {
		j->attempt_seen[n] = attempt;
		j->start_ns[n] = th_pool_now(j->pool);
		j->deadline_seen[n] = aq_current_deadline();
		j->cancelled_seen[n] = aq_current_cancelled();
	}
	if (j->msg) {
		char buf[64];

		snprintf(buf, sizeof(buf), "%s %u", j->msg, attempt);
		if (aq_current_fail_msg(buf) != 0)
			atomic_fetch_add(&j->bad, 1);
		memset(buf, 'X', sizeof(buf) - 1); /* it must have copied */
		if (aq_current_fail_msg(NULL) != -EINVAL)
			atomic_fetch_add(&j->bad, 1);
	}
	atomic_fetch_add(&j->ran, 1);
	if (j->gate)
		th_gate_pass(j->gate);
	if (j->wait_cancel) {
		int64_t end = th_now_ns() + poll_ns();

		while (!aq_current_cancelled() && th_now_ns() < end)
			sched_yield();
		if (!aq_current_cancelled())
			atomic_fetch_add(&j->bad, 1);
		return j->cancel_ret;
	}
	return (unsigned)n < j->nfail ? j->code : 0;
}

static void rjob_destroy(void *arg)
{
	atomic_fetch_add(&((struct rjob *)arg)->destroyed, 1);
}

/* What a policy's callbacks are told to do; the policy's user pointer. */
struct ctl {
	unsigned veto_at;  /* on_retry vetoes after this attempt; 0 = never */
	bool set_delay;    /* on_retry replaces *delay_ns with new_delay */
	int64_t new_delay;
	atomic_int retries; /* on_retry calls through this policy */
	atomic_int errors;  /* on_error calls through this policy */
};

static int rec_on_retry(const struct aq_job_info *info, int code,
			unsigned attempt, int64_t *delay_ns, void *user)
{
	struct rjob *j = info->arg;
	struct ctl *c = user;
	int n = atomic_load(&j->retries);

	if (n < MAXA) {
		j->retry_attempt[n] = attempt;
		j->retry_info_attempt[n] = info->attempt;
		j->retry_code[n] = code;
		j->retry_delay[n] = *delay_ns;
		j->retry_id[n] = info->id;
	}
	j->cb_thread = pthread_self();
	atomic_fetch_add(&j->retries, 1);
	if (c)
		atomic_fetch_add(&c->retries, 1);
	if (c && c->veto_at && attempt == c->veto_at)
		return 1;
	if (c && c->set_delay)
		*delay_ns = c->new_delay;
	return 0;
}

static void rec_on_error(const struct aq_job_info *info,
			 const struct aq_error *err, void *user)
{
	struct rjob *j = info->arg;
	struct ctl *c = user;

	j->err_info = *info;
	j->err = *err;
	snprintf(j->err_msg, sizeof(j->err_msg), "%s",
		 err->message ? err->message : "(null)");
	j->destroyed_at_error = atomic_load(&j->destroyed);
	{
		aq_future *fut = atomic_load(&j->fut);

		j->state_at_error = fut ? aq_future_state(fut)
					: AQ_STATE_INVALID;
	}
	j->cb_thread = pthread_self();
	atomic_fetch_add(&j->errors, 1);
	if (c)
		atomic_fetch_add(&c->errors, 1);
}

/* A policy recording into the job and obeying ctl. */
static struct aq_retry_policy policy(unsigned max_attempts, int64_t base,
				     double factor, int64_t max_delay,
				     struct ctl *c)
{
	struct aq_retry_policy p = { 0 };

	p.max_attempts = max_attempts;
	p.base_delay_ns = base;
	p.factor = factor;
	p.max_delay_ns = max_delay;
	p.on_retry = rec_on_retry;
	p.on_error = rec_on_error;
	p.user = c;
	return p;
}

static void ctl_init(struct ctl *c)
{
	memset(c, 0, sizeof(*c));
	atomic_init(&c->retries, 0);
	atomic_init(&c->errors, 0);
}

/* Submit j with arg_destroy and the given policy (NULL: the pool's). */
static aq_future *rsubmit(struct rjob *j, const struct aq_retry_policy *p,
			  const struct aq_job_opts *extra)
{
	struct aq_job_opts opts = { 0 };
	aq_future *fut = NULL;

	if (extra)
		opts = *extra;
	opts.arg_destroy = rjob_destroy;
	opts.retry = p;
	ck_assert_int_eq(aq_submit(j->pool, rjob_fn, j, &opts, &fut), 0);
	ck_assert_ptr_nonnull(fut);
	atomic_store(&j->fut, fut);
	return fut;
}

/* Wait until attempt n has returned and the job waits for its retry.
 * The on_retry count is what publishes the recorded attempt and retry
 * data to this thread (aq_future_state() is only a snapshot). */
static void wait_retrying(struct rjob *j, aq_future *fut, int n)
{
	ck_assert(th_poll_int_ge(&j->retries, n));
	ck_assert(th_poll_int_ge(&j->ran, n));
	ck_assert(th_poll_state(fut, AQ_STATE_RETRYING));
	ck_assert_int_eq(atomic_load(&j->ran), n);
}

/* ---- the first case --------------------------------------------- */

/* Two failures, then success on attempt 3 of 3, exponential back-off. */
START_TEST(test_fail_twice_then_succeed)
{
	struct vclock vc;
	aq_pool *pool = vpool(2, &vc, NULL);
	struct ctl c;
	struct aq_retry_policy p;
	struct rjob *j = rjob_new(pool, 2, 111);
	struct aq_error err;
	aq_future *fut;
	void *result = (void *)1;

	ctl_init(&c);
	p = policy(3, 1 * SEC, 2.0, 0, &c);
	fut = rsubmit(j, &p, NULL);

	/* Attempt 1 fails at T0: the retry is due at T0 + 1 s. */
	wait_retrying(j, fut, 1);
	ck_assert_int_eq(atomic_load(&j->retries), 1);
	ck_assert_uint_eq(j->retry_attempt[0], 1);
	ck_assert_uint_eq(j->retry_info_attempt[0], 1);
	ck_assert_int_eq(j->retry_code[0], 111);
	ck_assert_int_eq(j->retry_delay[0], 1 * SEC);
	ck_assert(!pthread_equal(j->cb_thread, pthread_self()));
	vclock_set(pool, &vc, T0 + 1 * SEC - 1);
	settle(pool);
	ck_assert_int_eq(atomic_load(&j->ran), 1);
	ck_assert_int_eq(aq_future_state(fut), AQ_STATE_RETRYING);
	ck_assert_int_eq(aq_future_get(fut, NULL, 0), -ETIMEDOUT);

	/* Attempt 2 at T0 + 1 s fails: the next is due 2 s later. */
	vclock_set(pool, &vc, T0 + 1 * SEC);
	wait_retrying(j, fut, 2);
	ck_assert_int_eq(atomic_load(&j->retries), 2);
	ck_assert_uint_eq(j->retry_attempt[1], 2);
	ck_assert_int_eq(j->retry_code[1], 111);
	ck_assert_int_eq(j->retry_delay[1], 2 * SEC);
	vclock_set(pool, &vc, T0 + 3 * SEC - 1);
	settle(pool);
	ck_assert_int_eq(atomic_load(&j->ran), 2);
	ck_assert_int_eq(aq_future_state(fut), AQ_STATE_RETRYING);

	/* Attempt 3 at T0 + 3 s succeeds. */
	vclock_set(pool, &vc, T0 + 3 * SEC);
	ck_assert_int_eq(aq_future_get(fut, &result, poll_ns()), 0);
	ck_assert_int_eq(aq_future_state(fut), AQ_STATE_SUCCEEDED);
	ck_assert_int_eq(atomic_load(&j->ran), 3);
	for (unsigned i = 0; i < 3; i++)
		ck_assert_uint_eq(j->attempt_seen[i], i + 1);
	ck_assert_int_eq(j->start_ns[0], T0);
	ck_assert_int_eq(j->start_ns[1], T0 + 1 * SEC);
	ck_assert_int_eq(j->start_ns[2], T0 + 3 * SEC);
	ck_assert_int_eq(atomic_load(&j->retries), 2);
	ck_assert_int_eq(atomic_load(&j->errors), 0);
	ck_assert_int_eq(atomic_load(&j->destroyed), 1);
	ck_assert_int_eq(atomic_load(&j->bad), 0);
	ck_assert_uint_eq(j->retry_id[0], j->retry_id[1]);
	ck_assert_uint_ne(j->retry_id[0], 0);
	/* Success leaves no error record. */
	ck_assert_int_eq(aq_future_error(fut, &err), -EAGAIN);

	aq_future_release(fut);
	aq_pool_destroy(pool);
	ck_assert_int_eq(atomic_load(&j->destroyed), 1);
	free(j);
}
END_TEST

/* ---- back-off ------------------------------------------------------------ */

/* Back-off schedules: delays before attempts 2..6 of a job always failing. */
static const struct backoff_case {
	int64_t base, max_delay;
	double factor;
	int64_t expect[5];
} backoff_cases[] = {
	/* factor 0 and 1: fixed */
	{ 1 * MS, 0, 0.0, { 1 * MS, 1 * MS, 1 * MS, 1 * MS, 1 * MS } },
	{ 7 * MS, 0, 1.0, { 7 * MS, 7 * MS, 7 * MS, 7 * MS, 7 * MS } },
	/* exponential: base * factor^(n-1) */
	{ 1 * MS, 0, 2.0, { 1 * MS, 2 * MS, 4 * MS, 8 * MS, 16 * MS } },
	{ 1 * MS, 0, 3.0, { 1 * MS, 3 * MS, 9 * MS, 27 * MS, 81 * MS } },
	{ 1 * MS, 0, 1.5, { 1000000, 1500000, 2250000, 3375000, 5062500 } },
	/* capped */
	{ 1 * MS, 50 * MS, 10.0, { 1 * MS, 10 * MS, 50 * MS, 50 * MS, 50 * MS } },
	{ 3 * MS, 2 * MS, 2.0, { 2 * MS, 2 * MS, 2 * MS, 2 * MS, 2 * MS } },
	/* no delay at all: retries come at once */
	{ 0, 0, 2.0, { 0, 0, 0, 0, 0 } },
};

START_TEST(test_backoff_exact)
{
	const struct backoff_case *bc = &backoff_cases[_i];
	struct vclock vc;
	aq_pool *pool = vpool(2, &vc, NULL);
	struct ctl c;
	struct aq_retry_policy p;
	struct rjob *j = rjob_new(pool, 100, 42);
	struct aq_error err;
	aq_future *fut;
	int64_t now = T0;

	ctl_init(&c);
	p = policy(6, bc->base, bc->factor, bc->max_delay, &c);
	fut = rsubmit(j, &p, NULL);
	for (int k = 1; k <= 5; k++) {
		int64_t d = bc->expect[k - 1];

		/* Attempt k started at `now` and failed there. */
		ck_assert(th_poll_int_ge(&j->retries, k));
		ck_assert_int_eq(j->start_ns[k - 1], now);
		ck_assert_uint_eq(j->retry_attempt[k - 1], (unsigned)k);
		ck_assert_int_eq(j->retry_code[k - 1], 42);
		ck_assert_msg(j->retry_delay[k - 1] == d,
			      "case %d, retry %d: delay %lld, expected %lld",
			      _i, k, (long long)j->retry_delay[k - 1],
			      (long long)d);
		if (d > 0) {
			wait_retrying(j, fut, k);
			vclock_set(pool, &vc, now + d - 1);
			settle(pool);
			ck_assert_int_eq(atomic_load(&j->ran), k);
			ck_assert_int_eq(aq_future_state(fut),
					 AQ_STATE_RETRYING);
			now += d;
			vclock_set(pool, &vc, now);
		}
		ck_assert(th_poll_int_ge(&j->ran, k + 1));
	}
	ck_assert_int_eq(aq_future_get(fut, NULL, poll_ns()), 42);
	ck_assert_int_eq(atomic_load(&j->ran), 6);
	ck_assert_int_eq(j->start_ns[5], now);
	ck_assert_int_eq(atomic_load(&j->retries), 5);
	ck_assert_int_eq(atomic_load(&j->errors), 1);
	ck_assert_int_eq(aq_future_error(fut, &err), 0);
	ck_assert_uint_eq(err.attempts, 6);
	ck_assert_int_eq(err.first_attempt_ns, T0);
	ck_assert_int_eq(err.last_attempt_ns, now);
	ck_assert_int_eq(atomic_load(&j->bad), 0);
	aq_future_release(fut);
	aq_pool_destroy(pool);
	ck_assert_int_eq(atomic_load(&j->destroyed), 1);
	free(j);
}
END_TEST

/* Back-off samples, recorded by an on_retry that then retries at once. */
#define JITTER_SAMPLES 400

struct sample_rec {
	int64_t delay[JITTER_SAMPLES];
	atomic_int n;
};

static int sample_on_retry(const struct aq_job_info *info, int code,
			   unsigned attempt, int64_t *delay_ns, void *user)
{
	struct sample_rec *r = user;
	int n = atomic_load(&r->n);

	(void)info;
	(void)code;
	(void)attempt;
	if (n < JITTER_SAMPLES)
		r->delay[n] = *delay_ns;
	atomic_fetch_add(&r->n, 1);
	*delay_ns = 0;
	return 0;
}

static int always_fail(void *arg, void **result)
{
	(void)arg;
	(void)result;
	return 5;
}

/* The bound for the sample before attempt k + 2: base * factor^k, capped. */
static int64_t jitter_bound(const struct aq_retry_policy *p, int k)
{
	double d = (double)p->base_delay_ns;

	for (int i = 0; i < k && p->factor > 0; i++)
		d *= p->factor;
	if (p->max_delay_ns && d > (double)p->max_delay_ns)
		d = (double)p->max_delay_ns;
	return (int64_t)d;
}

START_TEST(test_jitter_bounds)
{
	/* Fixed, and exponential into a cap. */
	static const struct {
		int64_t base, max;
		double factor;
	} cases[] = { { 1 * MS, 0, 1.0 }, { 1000, 1 * MS, 2.0 } };
	struct vclock vc;
	aq_pool *pool = vpool(2, &vc, NULL);

	for (unsigned c = 0; c < sizeof(cases) / sizeof(cases[0]); c++) {
		struct sample_rec *r = calloc(1, sizeof(*r));
		struct aq_retry_policy p = { 0 };
		struct aq_job_opts opts = { 0 };
		int64_t lo = INT64_MAX, hi = -1, sum_ratio_pm = 0;
		int distinct = 0;
		aq_future *fut;

		ck_assert_ptr_nonnull(r);
		atomic_init(&r->n, 0);
		p.max_attempts = JITTER_SAMPLES + 1;
		p.base_delay_ns = cases[c].base;
		p.factor = cases[c].factor;
		p.max_delay_ns = cases[c].max;
		p.flags = AQ_RETRY_JITTER;
		p.on_retry = sample_on_retry;
		p.user = r;
		opts.retry = &p;
		ck_assert_int_eq(aq_submit(pool, always_fail, NULL, &opts,
					   &fut), 0);
		ck_assert_int_eq(aq_future_get(fut, NULL, poll_ns()), 5);
		ck_assert_int_eq(atomic_load(&r->n), JITTER_SAMPLES);
		for (int k = 0; k < JITTER_SAMPLES; k++) {
			int64_t bound = jitter_bound(&p, k);
			int64_t d = r->delay[k];

			ck_assert_msg(d >= 0 && d <= bound,
				      "case %u sample %d: %lld not in [0, %lld]",
				      c, k, (long long)d, (long long)bound);
			if (k > 0 && d != r->delay[k - 1])
				distinct++;
			lo = d < lo ? d : lo;
			hi = d > hi ? d : hi;
			/* per mille of the bound, for the mean */
			sum_ratio_pm += bound ? d * 1000 / bound : 0;
		}
		/* Spread out, not all equal: a broken generator (always 0,
		 * always the bound) fails here; a working one essentially
		 * never does (the odds are below 1e-30). */
		ck_assert_int_gt(distinct, JITTER_SAMPLES / 2);
		ck_assert_int_lt(lo, jitter_bound(&p, JITTER_SAMPLES) / 4);
		ck_assert_int_gt(hi, jitter_bound(&p, JITTER_SAMPLES) * 3 / 4);
		/* A uniform mean is half the bound; allow a wide margin. */
		ck_assert_int_gt(sum_ratio_pm / JITTER_SAMPLES, 350);
		ck_assert_int_lt(sum_ratio_pm / JITTER_SAMPLES, 650);
		aq_future_release(fut);
		free(r);
	}
	aq_pool_destroy(pool);
}
END_TEST

/* With jitter, the retry is due exactly the jittered delay later. */
START_TEST(test_jitter_due_time)
{
	struct vclock vc;
	aq_pool *pool = vpool(1, &vc, NULL);
	struct ctl c;
	struct aq_retry_policy p;
	struct rjob *j = rjob_new(pool, 4, 3);
	aq_future *fut;
	int64_t now = T0;

	ctl_init(&c);
	p = policy(5, 1 * SEC, 2.0, 0, &c);
	p.flags = AQ_RETRY_JITTER;
	fut = rsubmit(j, &p, NULL);
	for (int k = 1; k <= 4; k++) {
		int64_t d;

		ck_assert(th_poll_int_ge(&j->retries, k));
		d = j->retry_delay[k - 1];
		ck_assert_int_ge(d, 0);
		ck_assert_int_le(d, (INT64_C(1) << (k - 1)) * SEC);
		if (d > 0) {
			wait_retrying(j, fut, k);
			vclock_set(pool, &vc, now + d - 1);
			settle(pool);
			ck_assert_int_eq(atomic_load(&j->ran), k);
			now += d;
			vclock_set(pool, &vc, now);
		}
		ck_assert(th_poll_int_ge(&j->ran, k + 1));
		ck_assert_int_eq(j->start_ns[k], now);
	}
	ck_assert_int_eq(aq_future_get(fut, NULL, poll_ns()), 0);
	ck_assert_int_eq(atomic_load(&j->ran), 5);
	ck_assert_int_eq(atomic_load(&j->errors), 0);
	aq_future_release(fut);
	aq_pool_destroy(pool);
	free(j);
}
END_TEST

/*
 * Issue 11, item 5, with retries: a clock below zero, going further back
 * and forward again. Each retry is due exactly its back-off after the
 * failed attempt, whatever the clock read in between; a retry pushed to
 * INT64_MAX by on_retry does not come due at the lowest clock, and does
 * not hang the timer, stats, cancel or shutdown.
 */
START_TEST(test_retry_negative_clock)
{
	const int64_t t = -5 * SEC;
	struct vclock vc;
	aq_pool *pool = vpool(1, &vc, NULL);
	struct ctl c, cmax;
	struct aq_retry_policy p, pmax;
	struct rjob *j = rjob_new(pool, 2, 111);
	struct rjob *k = rjob_new(pool, 5, 112);
	struct aq_pool_stats st;
	aq_future *fut, *fk;

	vclock_set(pool, &vc, t);
	ctl_init(&c);
	p = policy(3, 1 * SEC, 2.0, 0, &c);
	fut = rsubmit(j, &p, NULL);

	/* Attempt 1 fails at t: the retry is due at t + 1 s. */
	wait_retrying(j, fut, 1);
	ck_assert_int_eq(j->retry_delay[0], 1 * SEC);
	vclock_set(pool, &vc, t + 1 * SEC - 2);
	settle_step(pool, &vc); /* t + 1 s - 1 */
	ck_assert_int_eq(atomic_load(&j->ran), 1);
	ck_assert_int_eq(aq_future_state(fut), AQ_STATE_RETRYING);
	vclock_set(pool, &vc, t + 1 * SEC);
	wait_retrying(j, fut, 2);
	ck_assert_int_eq(j->start_ns[1], t + 1 * SEC);

	/* Attempt 2 failed at t + 1 s: due at t + 3 s, even after the clock
	 * went to the lowest time there is and came back. */
	vclock_set(pool, &vc, INT64_MIN);
	settle_step(pool, &vc);
	ck_assert_int_eq(aq_future_state(fut), AQ_STATE_RETRYING);
	vclock_set(pool, &vc, t + 3 * SEC - 2);
	settle_step(pool, &vc);
	ck_assert_int_eq(atomic_load(&j->ran), 2);
	vclock_set(pool, &vc, t + 3 * SEC);
	ck_assert_int_eq(aq_future_get(fut, NULL, poll_ns()), 0);
	ck_assert_int_eq(j->start_ns[2], t + 3 * SEC);
	ck_assert_int_eq(atomic_load(&j->errors), 0);

	/* A retry due at the end of time, seen from the lowest clock. */
	ctl_init(&cmax);
	pmax = policy(5, 1 * SEC, 2.0, 0, &cmax);
	cmax.set_delay = true;
	cmax.new_delay = INT64_MAX;
	fk = rsubmit(k, &pmax, NULL);
	wait_retrying(k, fk, 1);
	vclock_set(pool, &vc, INT64_MIN);
	settle_step(pool, &vc);
	ck_assert_int_eq(aq_pool_stats(pool, &st), 0);
	ck_assert_uint_eq(st.delayed, 1);
	ck_assert_int_eq(aq_future_state(fk), AQ_STATE_RETRYING);
	ck_assert_int_eq(aq_future_cancel(fk), 0);
	ck_assert_int_eq(aq_pool_shutdown(pool, AQ_SHUTDOWN_DRAIN), 0);
	ck_assert_int_eq(atomic_load(&k->ran), 1);
	ck_assert_int_eq(atomic_load(&k->destroyed), 1);
	aq_future_release(fk);
	aq_future_release(fut);
	aq_pool_destroy(pool);
	free(j);
	free(k);
}
END_TEST

/*
 * Issue 11, item 10: back-off at large attempt numbers, for factors below,
 * at and above 1, each delay exact (factors whose powers are exact in
 * binary; 0.999, whose are not, within a relative 1e-10 of pow()). The
 * library computed factor^(n-1) by n - 1 multiplications, and a factor
 * below 1, which never reaches the cap, paid all of them on every retry:
 * now it takes a bounded number of steps whatever n (see retry.c).
 * on_retry records the offered delays at chosen attempts and retries at
 * once, except after attempt `keep`, whose delay then stands and is
 * checked to the nanosecond on the virtual clock.
 */
#define BIG_AT 6

struct big_case {
	int64_t base, max_delay;
	double factor;
	unsigned attempts;      /* max_attempts */
	unsigned at[BIG_AT];    /* attempts whose offered delay is checked */
	int64_t expect[BIG_AT]; /* -1: base * pow(factor, at - 1), nearly */
};

struct big_rec {
	const struct big_case *bc;
	int64_t got[BIG_AT];
	atomic_int calls; /* on_retry calls */
};

static int big_on_retry(const struct aq_job_info *info, int code,
			unsigned attempt, int64_t *delay_ns, void *user)
{
	struct big_rec *r = user;

	(void)info;
	(void)code;
	for (unsigned i = 0; i < BIG_AT; i++)
		if (r->bc->at[i] == attempt)
			r->got[i] = *delay_ns;
	atomic_fetch_add(&r->calls, 1);
	if (attempt != r->bc->attempts - 1)
		*delay_ns = 0; /* on at once, but for the last retry */
	return 0;
}

static const struct big_case big_cases[] = {
	/* below 1: halves down to below 1 ns, then 0 for ever */
	{ INT64_C(1) << 40, 0, 0.5, 3001,
	  { 1, 2, 41, 42, 1000, 3000 },
	  { INT64_C(1) << 40, INT64_C(1) << 39, 1, 0, 0, 0 } },
	{ 1000 * SEC, 0, 0.999, 20001,
	  { 1, 2, 100, 5000, 19999, 20000 },
	  { 1000 * SEC, 999 * SEC, -1, -1, -1, -1 } },
	/* 1: fixed */
	{ 7 * MS, 0, 1.0, 3001,
	  { 1, 2, 64, 65, 2999, 3000 },
	  { 7 * MS, 7 * MS, 7 * MS, 7 * MS, 7 * MS, 7 * MS } },
	/* above 1: exact powers, then the saturation (9e18) or the cap */
	{ 1, 0, 2.0, 3001,
	  { 1, 2, 63, 64, 1000, 3000 },
	  { 1, 2, INT64_C(1) << 62, INT64_C(9000000000000000000),
	    INT64_C(9000000000000000000), INT64_C(9000000000000000000) } },
	{ 3, 5 * MS, 4.0, 3001,
	  { 1, 2, 11, 12, 1000, 3000 },
	  { 3, 12, 3 * (INT64_C(1) << 20), 5 * MS, 5 * MS, 5 * MS } },
};

START_TEST(test_backoff_large_attempts)
{
	const struct big_case *bc = &big_cases[_i];
	struct big_rec r = { .bc = bc };
	struct aq_retry_policy p = { .max_attempts = bc->attempts,
				     .base_delay_ns = bc->base,
				     .factor = bc->factor,
				     .max_delay_ns = bc->max_delay,
				     .on_retry = big_on_retry,
				     .user = &r };
	struct aq_job_opts opts = { .retry = &p };
	struct vclock vc;
	aq_pool *pool = vpool(1, &vc, NULL);
	int64_t last;
	aq_future *fut;

	atomic_init(&r.calls, 0);
	ck_assert_int_eq(aq_submit(pool, always_fail, NULL, &opts, &fut), 0);
	/* Every retry but the last comes at once, at T0. */
	ck_assert(th_poll_int_ge(&r.calls, (int)bc->attempts - 1));
	for (unsigned i = 0; i < BIG_AT; i++) {
		int64_t want = bc->expect[i];

		if (want < 0) {
			double w = (double)bc->base *
				   pow(bc->factor, bc->at[i] - 1.0);

			/* Rounding: ~1e-16 per multiplication, and the
			 * truncation to whole nanoseconds. */
			ck_assert_msg(fabs((double)r.got[i] - w) <=
					      w * 1e-10 + 1,
				      "factor %g, attempt %u: %lld, pow %.17g",
				      bc->factor, bc->at[i],
				      (long long)r.got[i], w);
		} else {
			ck_assert_msg(r.got[i] == want,
				      "factor %g, attempt %u: %lld, want %lld",
				      bc->factor, bc->at[i],
				      (long long)r.got[i], (long long)want);
		}
	}
	/* The last retry is due exactly its delay after T0. */
	last = r.got[BIG_AT - 1];
	if (last > 0) {
		ck_assert(th_poll_state(fut, AQ_STATE_RETRYING));
		vclock_set(pool, &vc, T0 + last - 1);
		settle(pool);
		ck_assert_int_eq(aq_future_state(fut), AQ_STATE_RETRYING);
		vclock_set(pool, &vc, T0 + last);
	}
	ck_assert_int_eq(aq_future_get(fut, NULL, poll_ns()), 5);
	ck_assert_int_eq(atomic_load(&r.calls), (int)bc->attempts - 1);
	aq_future_release(fut);
	aq_pool_destroy(pool);
}
END_TEST

/* The same, by the function itself, to the last attempt number there is. */
START_TEST(test_backoff_any_attempt_number)
{
	struct aq_retry_policy half = { .base_delay_ns = INT64_C(1) << 40,
					.factor = 0.5 };
	struct aq_retry_policy one = { .base_delay_ns = 7 * MS, .factor = 1 };
	struct aq_retry_policy zero = { .base_delay_ns = 7 * MS };
	struct aq_retry_policy two = { .base_delay_ns = 1, .factor = 2.0 };
	struct aq_retry_policy capped = { .base_delay_ns = 1, .factor = 2.0,
					  .max_delay_ns = 5 * MS };
	const unsigned ns[] = { 100000, 1u << 31, UINT_MAX - 1, UINT_MAX };

	for (unsigned i = 0; i < sizeof(ns) / sizeof(ns[0]); i++) {
		ck_assert_int_eq(aq__retry_backoff(&half, ns[i]), 0);
		ck_assert_int_eq(aq__retry_backoff(&one, ns[i]), 7 * MS);
		ck_assert_int_eq(aq__retry_backoff(&zero, ns[i]), 7 * MS);
		ck_assert_int_eq(aq__retry_backoff(&two, ns[i]),
				 INT64_C(9000000000000000000));
		ck_assert_int_eq(aq__retry_backoff(&capped, ns[i]), 5 * MS);
	}
	for (unsigned n = 1; n <= 64; n++) {
		ck_assert_int_eq(aq__retry_backoff(&half, n),
				 n <= 41 ? INT64_C(1) << (41 - n) : 0);
		ck_assert_int_eq(aq__retry_backoff(&two, n),
				 n <= 63 ? INT64_C(1) << (n - 1)
					 : INT64_C(9000000000000000000));
	}
	ck_assert_int_eq(aq__retry_backoff(&half, 0), INT64_C(1) << 40);
}
END_TEST

/* Many attempts with factor 10: exact while representable, then
 * saturated, never negative or wrapped; and a cap holds throughout. */
START_TEST(test_backoff_no_overflow)
{
	struct vclock vc;
	aq_pool *pool = vpool(1, &vc, NULL);

	for (int capped = 0; capped < 2; capped++) {
		struct sample_rec *r = calloc(1, sizeof(*r));
		struct aq_retry_policy p = { .max_attempts = 41,
					     .base_delay_ns = 1,
					     .factor = 10.0,
					     .on_retry = sample_on_retry };
		struct aq_job_opts opts = { .retry = &p };
		int64_t cap = INT64_C(500000000000000000); /* 5e17 */
		int64_t expect = 1;
		aq_future *fut;

		ck_assert_ptr_nonnull(r);
		atomic_init(&r->n, 0);
		p.user = r;
		p.max_delay_ns = capped ? cap : 0;
		ck_assert_int_eq(aq_submit(pool, always_fail, NULL, &opts,
					   &fut), 0);
		ck_assert_int_eq(aq_future_get(fut, NULL, poll_ns()), 5);
		ck_assert_int_eq(atomic_load(&r->n), 40);
		for (int k = 0; k < 40; k++) {
			int64_t d = r->delay[k];

			if (k <= 18) {
				int64_t want = capped && expect > cap ? cap
								      : expect;

				ck_assert_int_eq(d, want);
				if (k < 18)
					expect *= 10;
			} else if (capped) {
				ck_assert_int_eq(d, cap);
			} else {
				ck_assert_int_ge(d, r->delay[k - 1]);
			}
			ck_assert_int_gt(d, 0);
		}
		aq_future_release(fut);
		free(r);
	}
	aq_pool_destroy(pool);
}
END_TEST

/* ---- which failures retry ------------------------------------------------ */

static atomic_int pred_calls;
static atomic_int pred_user_ok;
static struct ctl pred_ctl; /* the policy's user: also what on_retry reads */

static int not_five(int code, void *user)
{
	atomic_fetch_add(&pred_calls, 1);
	if (user == &pred_ctl)
		atomic_fetch_add(&pred_user_ok, 1);
	return code != 5;
}

static int any_code(int code, void *user)
{
	(void)code;
	(void)user;
	atomic_fetch_add(&pred_calls, 1);
	return 1;
}

START_TEST(test_retryable_predicate)
{
	struct vclock vc;
	aq_pool *pool = vpool(2, &vc, NULL);
	struct aq_retry_policy p = policy(3, 0, 0, 0, NULL);
	struct rjob *no = rjob_new(pool, 100, 5);
	struct rjob *yes = rjob_new(pool, 100, 6);
	aq_future *fno, *fyes;

	ctl_init(&pred_ctl);
	p.retryable = not_five;
	p.user = &pred_ctl;
	fno = rsubmit(no, &p, NULL);
	ck_assert_int_eq(aq_future_get(fno, NULL, poll_ns()), 5);
	/* Not retryable: failed at once, on_error once, no on_retry. */
	ck_assert_int_eq(atomic_load(&no->ran), 1);
	ck_assert_int_eq(atomic_load(&no->retries), 0);
	ck_assert_int_eq(atomic_load(&no->errors), 1);
	ck_assert_uint_eq(no->err.attempts, 1);
	ck_assert_int_eq(no->err.code, 5);
	ck_assert_int_eq(atomic_load(&pred_calls), 1);

	/* Retryable: every attempt allowed (base 0: at once). */
	fyes = rsubmit(yes, &p, NULL);
	ck_assert_int_eq(aq_future_get(fyes, NULL, poll_ns()), 6);
	ck_assert_int_eq(atomic_load(&yes->ran), 3);
	ck_assert_int_eq(atomic_load(&yes->retries), 2);
	ck_assert_int_eq(atomic_load(&yes->errors), 1);
	/* Asked after attempts 1 and 2; after the last there is nothing to
	 * ask, and it may or may not be asked. */
	ck_assert_int_ge(atomic_load(&pred_calls), 3);
	ck_assert_int_eq(atomic_load(&pred_user_ok),
			 atomic_load(&pred_calls));
	aq_future_release(fno);
	aq_future_release(fyes);
	aq_pool_destroy(pool);
	ck_assert_int_eq(atomic_load(&no->destroyed), 1);
	ck_assert_int_eq(atomic_load(&yes->destroyed), 1);
	free(no);
	free(yes);
}
END_TEST

START_TEST(test_never_retry_list)
{
	static const int never[] = { 7, 9 };
	struct vclock vc;
	aq_pool *pool = vpool(2, &vc, NULL);
	struct aq_retry_policy p = policy(4, 0, 0, 0, NULL);
	struct rjob *j9 = rjob_new(pool, 100, 9);
	struct rjob *j7 = rjob_new(pool, 100, 7);
	struct rjob *j8 = rjob_new(pool, 100, 8);
	aq_future *f9, *f7, *f8;

	p.never_retry = never;
	p.never_retry_count = 2;
	p.retryable = any_code; /* the list wins over it */
	f9 = rsubmit(j9, &p, NULL);
	f7 = rsubmit(j7, &p, NULL);
	f8 = rsubmit(j8, &p, NULL);
	ck_assert_int_eq(aq_future_get(f9, NULL, poll_ns()), 9);
	ck_assert_int_eq(aq_future_get(f7, NULL, poll_ns()), 7);
	ck_assert_int_eq(aq_future_get(f8, NULL, poll_ns()), 8);
	ck_assert_int_eq(atomic_load(&j9->ran), 1);
	ck_assert_int_eq(atomic_load(&j7->ran), 1);
	ck_assert_int_eq(atomic_load(&j8->ran), 4);
	ck_assert_int_eq(atomic_load(&j9->retries), 0);
	ck_assert_int_eq(atomic_load(&j7->retries), 0);
	ck_assert_int_eq(atomic_load(&j8->retries), 3);
	ck_assert_int_eq(atomic_load(&j9->errors), 1);
	ck_assert_int_eq(atomic_load(&j7->errors), 1);
	ck_assert_int_eq(atomic_load(&j8->errors), 1);
	ck_assert_uint_eq(j9->err.attempts, 1);
	ck_assert_uint_eq(j8->err.attempts, 4);

	/* A count of 0 ignores the list. */
	{
		struct rjob *again = rjob_new(pool, 100, 9);
		aq_future *f;

		p.never_retry_count = 0;
		f = rsubmit(again, &p, NULL);
		ck_assert_int_eq(aq_future_get(f, NULL, poll_ns()), 9);
		ck_assert_int_eq(atomic_load(&again->ran), 4);
		aq_future_release(f);
		aq_pool_destroy(pool);
		ck_assert_int_eq(atomic_load(&again->destroyed), 1);
		free(again);
	}
	aq_future_release(f9);
	aq_future_release(f7);
	aq_future_release(f8);
	free(j9);
	free(j7);
	free(j8);
}
END_TEST

/* A job returning a negative (reserved) value fails with EINVAL, which a
 * policy sees as the code. */
static int returns_negative(void *arg, void **result)
{
	(void)result;
	atomic_fetch_add((atomic_int *)arg, 1);
	return -1;
}

START_TEST(test_negative_return_retries_as_einval)
{
	static const int never[] = { EINVAL };
	struct vclock vc;
	aq_pool *pool = vpool(1, &vc, NULL);
	struct aq_retry_policy p = { .max_attempts = 3,
				     .never_retry = never,
				     .never_retry_count = 1 };
	struct aq_job_opts opts = { .retry = &p };
	atomic_int ran;
	aq_future *fut;

	atomic_init(&ran, 0);
	ck_assert_int_eq(aq_submit(pool, returns_negative, &ran, &opts, &fut),
			 0);
	ck_assert_int_eq(aq_future_get(fut, NULL, poll_ns()), EINVAL);
	ck_assert_int_eq(atomic_load(&ran), 1);
	aq_future_release(fut);
	aq_pool_destroy(pool);
}
END_TEST

/* ---- on_retry ------------------------------------------------------------ */

START_TEST(test_on_retry_veto)
{
	struct vclock vc;
	aq_pool *pool = vpool(1, &vc, NULL);
	struct ctl c;
	struct aq_retry_policy p;
	struct rjob *j = rjob_new(pool, 100, 12);
	struct aq_error err;
	aq_future *fut;

	ctl_init(&c);
	c.veto_at = 2;
	p = policy(5, 0, 0, 0, &c);
	fut = rsubmit(j, &p, NULL);
	ck_assert_int_eq(aq_future_get(fut, NULL, poll_ns()), 12);
	ck_assert_int_eq(atomic_load(&j->ran), 2);
	ck_assert_int_eq(atomic_load(&j->retries), 2); /* the veto too */
	ck_assert_uint_eq(j->retry_attempt[1], 2);
	ck_assert_int_eq(atomic_load(&j->errors), 1);
	ck_assert_int_eq(aq_future_error(fut, &err), 0);
	ck_assert_uint_eq(err.attempts, 2);
	ck_assert_int_eq(err.code, 12);
	aq_future_release(fut);
	aq_pool_destroy(pool);
	ck_assert_int_eq(atomic_load(&j->destroyed), 1);
	free(j);
}
END_TEST

START_TEST(test_on_retry_changes_delay)
{
	struct vclock vc;
	aq_pool *pool = vpool(1, &vc, NULL);
	struct ctl c, neg;
	struct aq_retry_policy p, q;
	struct rjob *j = rjob_new(pool, 1, 4);
	struct rjob *k = rjob_new(pool, 1, 4);
	aq_future *fj, *fk;

	/* 1 s offered, 5 s asked for. */
	ctl_init(&c);
	c.set_delay = true;
	c.new_delay = 5 * SEC;
	p = policy(2, 1 * SEC, 0, 0, &c);
	fj = rsubmit(j, &p, NULL);
	wait_retrying(j, fj, 1);
	ck_assert_int_eq(j->retry_delay[0], 1 * SEC);
	vclock_set(pool, &vc, T0 + 5 * SEC - 1);
	settle(pool);
	ck_assert_int_eq(atomic_load(&j->ran), 1);
	ck_assert_int_eq(aq_future_state(fj), AQ_STATE_RETRYING);
	vclock_set(pool, &vc, T0 + 5 * SEC);
	ck_assert_int_eq(aq_future_get(fj, NULL, poll_ns()), 0);
	ck_assert_int_eq(j->start_ns[1], T0 + 5 * SEC);

	/* A negative delay means "at once". */
	ctl_init(&neg);
	neg.set_delay = true;
	neg.new_delay = -7 * SEC;
	q = policy(2, 1 * SEC, 0, 0, &neg);
	fk = rsubmit(k, &q, NULL);
	ck_assert_int_eq(aq_future_get(fk, NULL, poll_ns()), 0);
	ck_assert_int_eq(atomic_load(&k->ran), 2);
	ck_assert_int_eq(k->start_ns[1], T0 + 5 * SEC);

	aq_future_release(fj);
	aq_future_release(fk);
	aq_pool_destroy(pool);
	free(j);
	free(k);
}
END_TEST

/* Regression: a huge delay from on_retry wrapped round (now + delay past
 * INT64_MAX) and the retry ran at once. */
START_TEST(test_on_retry_huge_delay_never_early)
{
	struct vclock vc;
	aq_pool *pool = vpool(1, &vc, NULL);
	struct ctl c;
	struct aq_retry_policy p;
	struct rjob *j = rjob_new(pool, 1, 4);
	aq_future *fut;

	ctl_init(&c);
	c.set_delay = true;
	c.new_delay = INT64_MAX;
	p = policy(2, 1 * SEC, 0, 0, &c);
	fut = rsubmit(j, &p, NULL);
	ck_assert(th_poll_int_ge(&j->retries, 1));
	ck_assert(th_poll(settled, fut));
	vclock_set(pool, &vc, T0 + 3600 * SEC);
	settle(pool);
	ck_assert_msg(atomic_load(&j->ran) == 1 &&
			      aq_future_state(fut) == AQ_STATE_RETRYING,
		      "retried early: ran %d, state %d", atomic_load(&j->ran),
		      aq_future_state(fut));
	ck_assert_int_eq(aq_future_cancel(fut), 0);
	aq_future_release(fut);
	aq_pool_destroy(pool);
	ck_assert_int_eq(atomic_load(&j->destroyed), 1);
	free(j);
}
END_TEST

/*
 * The callbacks run with no library lock held: they may submit and cancel
 * on the same pool (a lock held across them would deadlock here).
 */
struct reenter {
	aq_pool *pool;
	aq_future *victim; /* a delayed job to cancel from on_retry */
	atomic_int cancel_rc;
	atomic_int submit_rc;
	atomic_int extra_ran;
};

static int extra_job(void *arg, void **result)
{
	(void)result;
	atomic_fetch_add(&((struct reenter *)arg)->extra_ran, 1);
	return 0;
}

static int reenter_on_retry(const struct aq_job_info *info, int code,
			    unsigned attempt, int64_t *delay_ns, void *user)
{
	struct reenter *r = user;

	(void)info;
	(void)code;
	(void)attempt;
	(void)delay_ns;
	atomic_store(&r->cancel_rc, aq_future_cancel(r->victim));
	return 0;
}

static void reenter_on_error(const struct aq_job_info *info,
			     const struct aq_error *err, void *user)
{
	struct reenter *r = user;
	struct aq_job_opts opts = { .run_at_ns = th_pool_now(r->pool) };

	(void)info;
	(void)err;
	atomic_store(&r->submit_rc,
		     aq_submit(r->pool, extra_job, r, &opts, NULL));
}

START_TEST(test_callbacks_reenter)
{
	struct vclock vc;
	aq_pool *pool = vpool(1, &vc, NULL);
	struct reenter r = { .pool = pool };
	struct aq_retry_policy p = { .max_attempts = 2,
				     .on_retry = reenter_on_retry,
				     .on_error = reenter_on_error,
				     .user = &r };
	struct aq_job_opts late = { .delay_ns = 60 * SEC };
	struct aq_job_opts opts = { .retry = &p };
	atomic_int victim_ran;
	aq_future *fut;

	atomic_init(&victim_ran, 0);
	atomic_init(&r.cancel_rc, 1);
	atomic_init(&r.submit_rc, 1);
	atomic_init(&r.extra_ran, 0);
	ck_assert_int_eq(aq_submit(pool, th_count_job, &victim_ran, &late,
				   &r.victim), 0);
	ck_assert_int_eq(aq_submit(pool, always_fail, NULL, &opts, &fut), 0);
	ck_assert_int_eq(aq_future_get(fut, NULL, poll_ns()), 5);
	ck_assert_int_eq(atomic_load(&r.cancel_rc), 0);
	ck_assert_int_eq(aq_future_state(r.victim), AQ_STATE_CANCELLED);
	ck_assert(th_poll_int(&r.submit_rc, 0));
	ck_assert(th_poll_int(&r.extra_ran, 1));
	aq_future_release(fut);
	aq_future_release(r.victim);
	aq_pool_destroy(pool);
	ck_assert_int_eq(atomic_load(&victim_ran), 0);
}
END_TEST

/* ---- on_error and the error record --------------------------------------- */

/* on_error: once per final failure, never for success, cancel, expiry;
 * before arg_destroy and before the future resolves; on a worker. */
START_TEST(test_on_error_exactly_once)
{
	struct vclock vc;
	aq_pool *pool = vpool(1, &vc, NULL);
	struct th_gate gate;
	struct ctl c;
	struct aq_retry_policy p;
	struct aq_job_opts later = { .run_at_ns = T0 + 10 * SEC };
	struct aq_job_opts doomed = { .deadline_ns = T0 + 1 };
	struct rjob *ok = rjob_new(pool, 0, 1);
	struct rjob *late_ok = rjob_new(pool, 1, 2);
	struct rjob *fails = rjob_new(pool, 100, 3);
	struct rjob *vetoed = rjob_new(pool, 100, 4);
	struct rjob *cancel_pending = rjob_new(pool, 100, 5);
	struct rjob *cancel_retrying = rjob_new(pool, 100, 6);
	struct rjob *cancel_running = rjob_new(pool, 100, 7);
	struct rjob *expired = rjob_new(pool, 100, 8);
	struct rjob *gatej = rjob_new(pool, 0, 0);
	aq_future *fok, *flate, *ffail, *fveto, *fcp, *fcr, *fcrun, *fexp, *fg;
	struct aq_retry_policy vp;
	struct ctl vc_ctl;

	th_gate_init(&gate);
	ctl_init(&c);
	p = policy(3, 1 * SEC, 0, 0, &c);
	ctl_init(&vc_ctl);
	vc_ctl.veto_at = 1;
	vp = policy(3, 1 * SEC, 0, 0, &vc_ctl);

	/* All delayed to T0 + 10 s, so that fut is stored before they run. */
	fok = rsubmit(ok, &p, &later);
	flate = rsubmit(late_ok, &p, &later);
	ffail = rsubmit(fails, &p, &later);
	fveto = rsubmit(vetoed, &vp, &later);
	vclock_set(pool, &vc, T0 + 10 * SEC);
	ck_assert_int_eq(aq_future_get(fok, NULL, poll_ns()), 0);
	ck_assert_int_eq(aq_future_get(fveto, NULL, poll_ns()), 4);
	wait_retrying(late_ok, flate, 1);
	wait_retrying(fails, ffail, 1);
	vclock_set(pool, &vc, T0 + 11 * SEC);
	ck_assert_int_eq(aq_future_get(flate, NULL, poll_ns()), 0);
	wait_retrying(fails, ffail, 2);
	vclock_set(pool, &vc, T0 + 12 * SEC);
	ck_assert_int_eq(aq_future_get(ffail, NULL, poll_ns()), 3);

	ck_assert_int_eq(atomic_load(&ok->errors), 0);
	ck_assert_int_eq(atomic_load(&late_ok->errors), 0);
	ck_assert_int_eq(atomic_load(&fails->errors), 1);
	ck_assert_int_eq(atomic_load(&vetoed->errors), 1);
	ck_assert_int_eq(atomic_load(&fails->ran), 3);
	/* Before arg_destroy, before the future resolved, on a worker. */
	ck_assert_int_eq(fails->destroyed_at_error, 0);
	ck_assert_int_eq(fails->state_at_error, AQ_STATE_RUNNING);
	ck_assert(!pthread_equal(fails->cb_thread, pthread_self()));
	ck_assert_int_eq(vetoed->destroyed_at_error, 0);
	ck_assert_int_eq(vetoed->state_at_error, AQ_STATE_RUNNING);
	ck_assert_int_eq(atomic_load(&fails->destroyed), 1);

	/* Cancelled while pending behind a gate. */
	gatej->gate = &gate;
	fg = rsubmit(gatej, &p, NULL);
	ck_assert(th_gate_wait_entered(&gate, 1));
	fcp = rsubmit(cancel_pending, &p, NULL);
	ck_assert_int_eq(aq_future_cancel(fcp), 0);
	/* Expired while pending. */
	fexp = rsubmit(expired, &p, &doomed);
	vclock_set(pool, &vc, T0 + 13 * SEC);
	th_gate_open(&gate);
	ck_assert_int_eq(aq_future_get(fexp, NULL, poll_ns()), -ETIME);
	ck_assert_int_eq(aq_future_get(fcp, NULL, poll_ns()), -ECANCELED);

	/* Cancelled while waiting for its retry. */
	fcr = rsubmit(cancel_retrying, &p, NULL);
	wait_retrying(cancel_retrying, fcr, 1);
	ck_assert_int_eq(aq_future_cancel(fcr), 0);

	/* Cancelled while running, honoured. */
	cancel_running->wait_cancel = true;
	cancel_running->cancel_ret = AQ_JOB_CANCELLED;
	fcrun = rsubmit(cancel_running, &p, NULL);
	ck_assert(th_poll_state(fcrun, AQ_STATE_RUNNING));
	ck_assert_int_eq(aq_future_cancel(fcrun), -EBUSY);
	ck_assert_int_eq(aq_future_get(fcrun, NULL, poll_ns()), -ECANCELED);

	vclock_set(pool, &vc, T0 + 100 * SEC);
	settle(pool);
	aq_pool_destroy(pool);
	ck_assert_int_eq(atomic_load(&cancel_pending->errors), 0);
	ck_assert_int_eq(atomic_load(&cancel_retrying->errors), 0);
	ck_assert_int_eq(atomic_load(&cancel_running->errors), 0);
	ck_assert_int_eq(atomic_load(&expired->errors), 0);
	ck_assert_int_eq(atomic_load(&cancel_pending->ran), 0);
	ck_assert_int_eq(atomic_load(&cancel_retrying->ran), 1);
	ck_assert_int_eq(atomic_load(&cancel_running->ran), 1);
	ck_assert_int_eq(atomic_load(&expired->ran), 0);
	/* Through this policy: exactly the one final failure. */
	ck_assert_int_eq(atomic_load(&c.errors), 1);
	ck_assert_int_eq(atomic_load(&vc_ctl.errors), 1);
	{
		struct rjob *all[] = { ok, late_ok, fails, vetoed,
				       cancel_pending, cancel_retrying,
				       cancel_running, expired, gatej };
		aq_future *futs[] = { fok, flate, ffail, fveto, fcp,
				      fcr, fcrun, fexp, fg };

		for (unsigned i = 0; i < sizeof(all) / sizeof(all[0]); i++) {
			ck_assert_int_eq(atomic_load(&all[i]->destroyed), 1);
			ck_assert_int_eq(atomic_load(&all[i]->bad), 0);
			aq_future_release(futs[i]);
			free(all[i]);
		}
	}
	th_gate_destroy(&gate);
}
END_TEST

START_TEST(test_error_record)
{
	struct vclock vc;
	aq_pool *pool = vpool(2, &vc, NULL);
	struct ctl c;
	struct aq_retry_policy p;
	struct rjob *j = rjob_new(pool, 100, 61);
	struct rjob *k = rjob_new(pool, 100, 62);
	struct aq_error err, err2;
	aq_future *fj, *fk;

	ctl_init(&c);
	p = policy(3, 1 * SEC, 0, 0, &c);
	j->msg = "failed attempt";
	fj = rsubmit(j, &p, NULL);
	fk = rsubmit(k, &p, NULL);
	ck_assert_int_eq(aq_future_error(fj, &err), -EAGAIN); /* not yet */
	wait_retrying(j, fj, 1);
	wait_retrying(k, fk, 1);
	ck_assert_int_eq(aq_future_error(fj, &err), -EAGAIN); /* RETRYING */
	vclock_set(pool, &vc, T0 + 1 * SEC);
	wait_retrying(j, fj, 2);
	wait_retrying(k, fk, 2);
	vclock_set(pool, &vc, T0 + 2 * SEC);
	ck_assert_int_eq(aq_future_get(fj, NULL, poll_ns()), 61);
	ck_assert_int_eq(aq_future_get(fk, NULL, poll_ns()), 62);

	ck_assert_int_eq(aq_future_error(fj, &err), 0);
	ck_assert_uint_ne(err.job_id, 0);
	ck_assert_uint_eq(err.attempts, 3);
	ck_assert_int_eq(err.code, 61);
	ck_assert_ptr_nonnull(err.message);
	ck_assert_str_eq(err.message, "failed attempt 3");
	ck_assert_int_eq(err.first_attempt_ns, T0);
	ck_assert_int_eq(err.last_attempt_ns, T0 + 2 * SEC);
	/* on_error saw the same record, and the info matches. */
	ck_assert_uint_eq(j->err.job_id, err.job_id);
	ck_assert_uint_eq(j->err.attempts, 3);
	ck_assert_int_eq(j->err.code, 61);
	ck_assert_str_eq(j->err_msg, "failed attempt 3");
	ck_assert_int_eq(j->err.first_attempt_ns, T0);
	ck_assert_int_eq(j->err.last_attempt_ns, T0 + 2 * SEC);
	ck_assert_uint_eq(j->err_info.id, err.job_id);
	ck_assert_ptr_eq(j->err_info.arg, j);
	ck_assert_uint_eq(j->err_info.attempt, 3);
	ck_assert_uint_eq(j->retry_id[0], err.job_id);

	/* The other job: no message, its own id. */
	ck_assert_int_eq(aq_future_error(fk, &err2), 0);
	ck_assert_uint_ne(err2.job_id, 0);
	ck_assert_uint_ne(err2.job_id, err.job_id);
	ck_assert_ptr_null(err2.message);
	ck_assert_uint_eq(err2.attempts, 3);
	ck_assert_int_eq(err2.code, 62);

	/* Bad arguments. */
	ck_assert_int_eq(aq_future_error(NULL, &err2), -EINVAL);
	ck_assert_int_eq(aq_future_error(fj, NULL), -EINVAL);

	/* The record, message included, outlives the pool. */
	aq_pool_destroy(pool);
	memset(&err, 0, sizeof(err));
	ck_assert_int_eq(aq_future_error(fj, &err), 0);
	ck_assert_str_eq(err.message, "failed attempt 3");
	ck_assert_int_eq(atomic_load(&j->bad), 0);
	aq_future_release(fj);
	aq_future_release(fk);
	free(j);
	free(k);
}
END_TEST

/* A cancelled, expired or succeeded future has no error record. */
START_TEST(test_error_record_only_when_failed)
{
	struct vclock vc;
	aq_pool *pool = vpool(1, &vc, NULL);
	struct aq_job_opts past = { .deadline_ns = T0 };
	struct aq_job_opts later = { .delay_ns = 1 * SEC };
	struct rjob *a = rjob_new(pool, 0, 0);
	struct rjob *b = rjob_new(pool, 0, 0);
	struct rjob *d = rjob_new(pool, 0, 0);
	struct aq_error err;
	aq_future *fa, *fb, *fd;

	fa = rsubmit(a, NULL, NULL);
	fb = rsubmit(b, NULL, &past);
	fd = rsubmit(d, NULL, &later);
	ck_assert_int_eq(aq_future_error(fd, &err), -EAGAIN); /* DELAYED */
	ck_assert_int_eq(aq_future_cancel(fd), 0);
	ck_assert_int_eq(aq_future_get(fa, NULL, poll_ns()), 0);
	ck_assert_int_eq(aq_future_get(fb, NULL, poll_ns()), -ETIME);
	ck_assert_int_eq(aq_future_error(fa, &err), -EAGAIN);
	ck_assert_int_eq(aq_future_error(fb, &err), -EAGAIN);
	ck_assert_int_eq(aq_future_error(fd, &err), -EAGAIN);
	aq_future_release(fa);
	aq_future_release(fb);
	aq_future_release(fd);
	aq_pool_destroy(pool);
	free(a);
	free(b);
	free(d);
}
END_TEST

/* ---- whose policy ------------------------------------------------------- */

static atomic_int ff_ran;

static int ff_fail(void *arg, void **result)
{
	(void)arg;
	(void)result;
	atomic_fetch_add(&ff_ran, 1);
	return 33;
}

static atomic_int ff_errors;

static void ff_on_error(const struct aq_job_info *info,
			const struct aq_error *err, void *user)
{
	(void)user;
	if (info->arg == NULL && err->attempts == 3 && err->code == 33)
		atomic_fetch_add(&ff_errors, 1);
}

/*
 * A job that moves the virtual clock in its calls, then fails: a call
 * moves it to clock_at[calls] and returns rets[calls].
 */
struct stamp_job {
	struct vclock *vc;
	int64_t clock_at[2];
	int rets[2];
	atomic_int calls;
};

static int stamp_job_fn(void *arg, void **result)
{
	struct stamp_job *s = arg;
	int call = atomic_fetch_add(&s->calls, 1);

	(void)result;
	/* Plain store: aq_pool_clock_changed() matters only for the timer,
	 * which holds nothing here. */
	atomic_store(&s->vc->now, s->clock_at[call]);
	return s->rets[call];
}

/*
 * aq_future_error(3)'s times: at the start of the attempt for a job with a
 * retry policy (even one of a single attempt), and, for a job without one,
 * when its first call returned (the pool reads no clock before it runs).
 */
START_TEST(test_error_times_without_policy)
{
	struct vclock vc;
	aq_pool *pool = vpool(1, &vc, NULL);
	struct aq_retry_policy once = { .max_attempts = 1 };
	struct aq_job_opts with_policy = { .retry = &once };
	struct stamp_job plain = { .vc = &vc,
				   .clock_at = { T0 + 5 * SEC },
				   .rets = { 9 } };
	struct stamp_job policed = { .vc = &vc,
				     .clock_at = { T0 + 7 * SEC },
				     .rets = { 8 } };
	struct stamp_job yielder = { .vc = &vc,
				     .clock_at = { T0 + 8 * SEC, T0 + 9 * SEC },
				     .rets = { AQ_YIELD, 6 } };
	struct aq_error err;
	aq_future *fut;

	atomic_init(&plain.calls, 0);
	atomic_init(&policed.calls, 0);
	atomic_init(&yielder.calls, 0);

	/* No policy: stamped when the call returned (T0 + 5 s). */
	ck_assert_int_eq(aq_submit(pool, stamp_job_fn, &plain, NULL, &fut), 0);
	ck_assert_int_eq(aq_future_get(fut, NULL, poll_ns()), 9);
	ck_assert_int_eq(aq_future_error(fut, &err), 0);
	ck_assert_uint_eq(err.attempts, 1);
	ck_assert_int_eq(err.first_attempt_ns, T0 + 5 * SEC);
	ck_assert_int_eq(err.last_attempt_ns, T0 + 5 * SEC);
	aq_future_release(fut);

	/* A policy of one attempt: stamped when the attempt started. */
	ck_assert_int_eq(aq_submit(pool, stamp_job_fn, &policed, &with_policy,
				   &fut),
			 0);
	ck_assert_int_eq(aq_future_get(fut, NULL, poll_ns()), 8);
	ck_assert_int_eq(aq_future_error(fut, &err), 0);
	ck_assert_uint_eq(err.attempts, 1);
	ck_assert_int_eq(err.first_attempt_ns, T0 + 5 * SEC);
	ck_assert_int_eq(err.last_attempt_ns, T0 + 5 * SEC);
	aq_future_release(fut);

	/* No policy, a yield first: stamped when the first call returned,
	 * and still one attempt. */
	ck_assert_int_eq(aq_submit(pool, stamp_job_fn, &yielder, NULL, &fut),
			 0);
	ck_assert_int_eq(aq_future_get(fut, NULL, poll_ns()), 6);
	ck_assert_int_eq(atomic_load(&yielder.calls), 2);
	ck_assert_int_eq(aq_future_error(fut, &err), 0);
	ck_assert_uint_eq(err.attempts, 1);
	ck_assert_int_eq(err.first_attempt_ns, T0 + 8 * SEC);
	ck_assert_int_eq(err.last_attempt_ns, T0 + 8 * SEC);
	aq_future_release(fut);
	aq_pool_destroy(pool);
}
END_TEST

START_TEST(test_pool_default_and_override)
{
	struct vclock vc;
	struct ctl ca, cb;
	struct aq_retry_policy a, b, none = { 0 };
	aq_pool *pool;
	struct rjob *dj, *oj, *nj;
	aq_future *fd, *fo, *fn;

	ctl_init(&ca);
	ctl_init(&cb);
	a = policy(3, 0, 0, 0, &ca);
	b = policy(2, 0, 0, 0, &cb);
	pool = vpool(2, &vc, &a);
	/* The pool copied its policy: changing ours now has no effect. */
	a.max_attempts = 1;
	a.on_error = NULL;

	dj = rjob_new(pool, 100, 21);
	oj = rjob_new(pool, 100, 22);
	nj = rjob_new(pool, 100, 23);
	fd = rsubmit(dj, NULL, NULL);  /* the pool's */
	fo = rsubmit(oj, &b, NULL);    /* its own */
	fn = rsubmit(nj, &none, NULL); /* its own: no retries */
	ck_assert_int_eq(aq_future_get(fd, NULL, poll_ns()), 21);
	ck_assert_int_eq(aq_future_get(fo, NULL, poll_ns()), 22);
	ck_assert_int_eq(aq_future_get(fn, NULL, poll_ns()), 23);
	ck_assert_int_eq(atomic_load(&dj->ran), 3);
	ck_assert_int_eq(atomic_load(&oj->ran), 2);
	ck_assert_int_eq(atomic_load(&nj->ran), 1);
	ck_assert_int_eq(atomic_load(&dj->errors), 1);
	ck_assert_int_eq(atomic_load(&oj->errors), 1);
	ck_assert_int_eq(atomic_load(&nj->errors), 0);
	ck_assert_int_eq(atomic_load(&ca.retries), 2);
	ck_assert_int_eq(atomic_load(&ca.errors), 1);
	ck_assert_int_eq(atomic_load(&cb.retries), 1);
	ck_assert_int_eq(atomic_load(&cb.errors), 1);
	aq_future_release(fd);
	aq_future_release(fo);
	aq_future_release(fn);
	aq_pool_destroy(pool);
	free(dj);
	free(oj);
	free(nj);

	/* Fire-and-forget jobs follow the pool's policy too. */
	{
		struct aq_retry_policy ff = { .max_attempts = 3,
					      .on_error = ff_on_error };

		atomic_init(&ff_ran, 0);
		atomic_init(&ff_errors, 0);
		pool = vpool(2, &vc, &ff);
		ck_assert_int_eq(aq_submit(pool, ff_fail, NULL, NULL, NULL),
				 0);
		ck_assert(th_poll_int(&ff_errors, 1));
		ck_assert_int_eq(atomic_load(&ff_ran), 3);
		aq_pool_destroy(pool);
		ck_assert_int_eq(atomic_load(&ff_ran), 3);
		ck_assert_int_eq(atomic_load(&ff_errors), 1);
	}
}
END_TEST

/* ---- the job's side -------------------------------------------------------- */

struct inline_probe {
	atomic_int done;
	unsigned attempt;
	int cancelled, msg_rc;
	int64_t deadline;
};

static int inline_probe_job(void *arg, void **result)
{
	struct inline_probe *p = arg;

	(void)result;
	p->attempt = aq_current_attempt();
	p->cancelled = aq_current_cancelled();
	p->deadline = aq_current_deadline();
	p->msg_rc = aq_current_fail_msg("no record to hold it");
	atomic_store(&p->done, 1);
	return 0;
}

START_TEST(test_job_api_outside_and_inline)
{
	struct inline_probe probe = { .attempt = 99, .cancelled = 99 };
	aq_pool *pool = th_pool(1, 16, 0, 0);

	/* Outside any job. */
	ck_assert_uint_eq(aq_current_attempt(), 0);
	ck_assert_int_eq(aq_current_cancelled(), 0);
	ck_assert_int_eq(aq_current_deadline(), 0);
	ck_assert_int_eq(aq_current_fail_msg("outside"), -EINVAL);
	ck_assert_int_eq(aq_current_fail_msg(NULL), -EINVAL);

	/* A fire-and-forget job without options has no record: attempt 1,
	 * never cancelled, no deadline, nowhere to keep a message. */
	atomic_init(&probe.done, 0);
	ck_assert_int_eq(aq_submit(pool, inline_probe_job, &probe, NULL,
				   NULL), 0);
	ck_assert(th_poll_int(&probe.done, 1));
	ck_assert_uint_eq(probe.attempt, 1);
	ck_assert_int_eq(probe.cancelled, 0);
	ck_assert_int_eq(probe.deadline, 0);
	ck_assert_int_eq(probe.msg_rc, -EINVAL);
	aq_pool_destroy(pool);
}
END_TEST

/* ---- cancellation across attempts ---------------------------------------- */

START_TEST(test_cancel_retrying)
{
	struct vclock vc;
	aq_pool *pool = vpool(2, &vc, NULL);
	struct ctl c;
	struct aq_retry_policy p;
	struct rjob *j = rjob_new(pool, 100, 8);
	aq_future *fut;

	ctl_init(&c);
	p = policy(5, 1 * SEC, 0, 0, &c);
	fut = rsubmit(j, &p, NULL);
	wait_retrying(j, fut, 1);
	ck_assert_int_eq(aq_future_cancel(fut), 0);
	/* Resolved, arg released, before cancel returned. */
	ck_assert_int_eq(aq_future_state(fut), AQ_STATE_CANCELLED);
	ck_assert_int_eq(atomic_load(&j->destroyed), 1);
	ck_assert_int_eq(aq_future_get(fut, NULL, 0), -ECANCELED);
	ck_assert_int_eq(aq_future_cancel(fut), -EALREADY);
	/* The retry never happens. */
	vclock_set(pool, &vc, T0 + 10 * SEC);
	settle(pool);
	ck_assert_int_eq(atomic_load(&j->ran), 1);
	ck_assert_int_eq(atomic_load(&j->retries), 1);
	ck_assert_int_eq(atomic_load(&j->errors), 0);
	aq_future_release(fut);
	aq_pool_destroy(pool);
	ck_assert_int_eq(atomic_load(&j->destroyed), 1);
	free(j);
}
END_TEST

/* Running: -EBUSY, the job sees the flag; what it returns decides. */
static const struct {
	int ret;              /* the job's return after seeing the flag */
	enum aq_state state;  /* the outcome */
	int get;              /* aq_future_get() */
	int errors;           /* on_error calls */
} running_cases[] = {
	{ AQ_JOB_CANCELLED, AQ_STATE_CANCELLED, -ECANCELED, 0 },
	{ 17, AQ_STATE_FAILED, 17, 1 }, /* failed: not retried */
	{ 0, AQ_STATE_SUCCEEDED, 0, 0 }, /* ignored the request */
};

START_TEST(test_cancel_running)
{
	struct vclock vc;
	aq_pool *pool = vpool(2, &vc, NULL);
	struct ctl c;
	struct aq_retry_policy p;
	struct rjob *j = rjob_new(pool, 100, 17);
	struct aq_job_opts opts = { .deadline_ns = T0 + 77 };
	aq_future *fut;

	ctl_init(&c);
	p = policy(5, 0, 0, 0, &c);
	j->wait_cancel = true;
	j->cancel_ret = running_cases[_i].ret;
	fut = rsubmit(j, &p, &opts);
	ck_assert(th_poll_int(&j->ran, 1));
	ck_assert_int_eq(aq_future_state(fut), AQ_STATE_RUNNING);
	ck_assert_int_eq(j->cancelled_seen[0], 0);
	ck_assert_int_eq(j->deadline_seen[0], T0 + 77);
	ck_assert_int_eq(aq_future_cancel(fut), -EBUSY);
	ck_assert_int_eq(aq_future_get(fut, NULL, poll_ns()),
			 running_cases[_i].get);
	ck_assert_int_eq(aq_future_state(fut), running_cases[_i].state);
	ck_assert_int_eq(atomic_load(&j->ran), 1);
	ck_assert_int_eq(atomic_load(&j->retries), 0);
	ck_assert_int_eq(atomic_load(&j->errors), running_cases[_i].errors);
	ck_assert_int_eq(atomic_load(&j->destroyed), 1);
	ck_assert_int_eq(atomic_load(&j->bad), 0);
	ck_assert_int_eq(aq_future_cancel(fut), -EALREADY);
	aq_future_release(fut);
	aq_pool_destroy(pool);
	ck_assert_int_eq(atomic_load(&j->ran), 1);
	free(j);
}
END_TEST

/*
 * A cancel that arrives after the attempt failed but while the worker is
 * still settling it (here: from on_retry) finds the job RUNNING: -EBUSY.
 * The request must not be lost: either no retry happens, or the next
 * attempt sees aq_current_cancelled() and can honour it.
 */
struct self_cancel {
	aq_future *_Atomic fut;
	atomic_int rc;
};

static int self_cancel_on_retry(const struct aq_job_info *info, int code,
				unsigned attempt, int64_t *delay_ns,
				void *user)
{
	struct self_cancel *s = user;

	(void)info;
	(void)code;
	(void)attempt;
	(void)delay_ns;
	atomic_store(&s->rc, aq_future_cancel(atomic_load(&s->fut)));
	return 0;
}

static int honour_cancel_job(void *arg, void **result)
{
	atomic_int *ran = arg;

	(void)result;
	atomic_fetch_add(ran, 1);
	return aq_current_cancelled() ? AQ_JOB_CANCELLED : 3;
}

START_TEST(test_cancel_while_settling_not_lost)
{
	struct vclock vc;
	aq_pool *pool = vpool(1, &vc, NULL);
	struct self_cancel s;
	struct aq_retry_policy p = { .max_attempts = 3,
				     .base_delay_ns = 1 * SEC,
				     .on_retry = self_cancel_on_retry,
				     .user = &s };
	struct aq_job_opts opts = { .retry = &p, .delay_ns = 1 };
	atomic_int ran;
	aq_future *fut;
	int rc;

	atomic_init(&ran, 0);
	atomic_init(&s.rc, 1);
	ck_assert_int_eq(aq_submit(pool, honour_cancel_job, &ran, &opts, &fut),
			 0);
	atomic_store(&s.fut, fut);
	vclock_set(pool, &vc, T0 + 1);
	ck_assert(th_poll_int(&s.rc, -EBUSY));
	/* Settled (a retry's due time is fixed once it is RETRYING), then
	 * the retry gets its time, should one have been scheduled. */
	ck_assert(th_poll(settled, fut));
	vclock_set(pool, &vc, T0 + 10 * SEC);
	rc = aq_future_get(fut, NULL, poll_ns());
	ck_assert_msg(rc == -ECANCELED,
		      "cancel during on_retry was lost: get %d, state %d, "
		      "ran %d", rc, aq_future_state(fut), atomic_load(&ran));
	ck_assert_int_le(atomic_load(&ran), 2);
	aq_future_release(fut);
	aq_pool_destroy(pool);
}
END_TEST

/* ---- get with a timeout across retries -------------------------------------- */

struct advance {
	aq_pool *pool;
	struct vclock *vc;
	int64_t to;
	atomic_int go; /* set by the test, after its first timed-out get */
};

static void *advance_main(void *arg)
{
	struct advance *a = arg;

	while (!atomic_load(&a->go))
		th_sleep_ms(1);
	th_sleep_ms(20); /* likely inside the get below; fine either way */
	atomic_store(&a->vc->now, a->to);
	aq_pool_clock_changed(a->pool);
	return NULL;
}

START_TEST(test_get_timeout_across_retries)
{
	struct vclock vc;
	aq_pool *pool = vpool(2, &vc, NULL);
	struct ctl c;
	struct aq_retry_policy p;
	struct rjob *j = rjob_new(pool, 1, 14);
	struct rjob *k = rjob_new(pool, 100, 15);
	struct advance adv = { .pool = pool, .vc = &vc, .to = T0 + 1 * SEC };
	pthread_t tid;
	void *result = (void *)&adv;
	aq_future *fj, *fk;

	ctl_init(&c);
	p = policy(2, 1 * SEC, 0, 0, &c);
	fj = rsubmit(j, &p, NULL);
	fk = rsubmit(k, &p, NULL);
	wait_retrying(j, fj, 1);
	wait_retrying(k, fk, 1);
	ck_assert_int_eq(aq_future_get(fj, &result, 0), -ETIMEDOUT);
	ck_assert_int_eq(aq_future_get(fj, &result, 20 * MS), -ETIMEDOUT);
	ck_assert_ptr_eq(result, &adv); /* untouched */
	ck_assert_int_eq(aq_future_state(fj), AQ_STATE_RETRYING);

	atomic_init(&adv.go, 1);
	ck_assert_int_eq(pthread_create(&tid, NULL, advance_main, &adv), 0);
	/* Waits through RETRYING -> PENDING -> RUNNING -> outcome. */
	ck_assert_int_eq(aq_future_get(fj, NULL, poll_ns()), 0);
	ck_assert_int_eq(aq_future_get(fk, NULL, poll_ns()), 15);
	pthread_join(tid, NULL);
	ck_assert_int_eq(atomic_load(&j->ran), 2);
	ck_assert_int_eq(atomic_load(&k->ran), 2);
	aq_future_release(fj);
	aq_future_release(fk);
	aq_pool_destroy(pool);
	free(j);
	free(k);
}
END_TEST

/* ---- configuration and faults ------------------------------------------------ */

START_TEST(test_retry_config_invalid)
{
	static const int never[] = { 1 };
	struct aq_retry_policy bad[6];
	struct aq_pool_config cfg = { .workers = 1 };
	aq_pool *pool;

	for (unsigned i = 0; i < 6; i++)
		bad[i] = (struct aq_retry_policy){ .max_attempts = 3 };
	bad[0].flags = 0x2u;               /* unknown flag */
	bad[1].base_delay_ns = -1;         /* negative delay */
	bad[2].max_delay_ns = -1;          /* negative cap */
	bad[3].factor = -2.0;              /* negative factor */
	bad[4].never_retry_count = 1;      /* a count without a list */
	bad[5].factor = NAN;               /* not a number */
	for (unsigned i = 0; i < 6; i++) {
		pool = (aq_pool *)(uintptr_t)0x1;
		cfg.retry = &bad[i];
		ck_assert_msg(aq_pool_create(&pool, &cfg) == -EINVAL,
			      "bad policy %u accepted", i);
		ck_assert_ptr_eq(pool, (aq_pool *)(uintptr_t)0x1);
	}
	/* The same fields, valid. */
	bad[0] = (struct aq_retry_policy){ .max_attempts = 3,
					   .flags = AQ_RETRY_JITTER,
					   .base_delay_ns = 1,
					   .max_delay_ns = 2,
					   .factor = 2.0,
					   .never_retry = never,
					   .never_retry_count = 1 };
	cfg.retry = &bad[0];
	ck_assert_int_eq(aq_pool_create(&pool, &cfg), 0);
	aq_pool_destroy(pool);
	/* All zero is a valid policy: never retry. */
	bad[0] = (struct aq_retry_policy){ 0 };
	ck_assert_int_eq(aq_pool_create(&pool, &cfg), 0);
	aq_pool_destroy(pool);
}
END_TEST

/*
 * A job's own policy is checked like the pool's: unknown flag bits and
 * negative delays are -EINVAL from aq_submit(), and arg stays the
 * caller's. (Until fixed these were accepted and silently ignored.)
 */
START_TEST(test_job_policy_invalid)
{
	struct vclock vc;
	aq_pool *pool = vpool(1, &vc, NULL);
	struct aq_retry_policy bad[4];
	struct rjob *j = rjob_new(pool, 0, 0);

	for (unsigned i = 0; i < 4; i++)
		bad[i] = (struct aq_retry_policy){ .max_attempts = 3 };
	bad[0].flags = 0x2u;
	bad[1].base_delay_ns = -1;
	bad[2].max_delay_ns = -1;
	bad[3].never_retry_count = 1;
	for (unsigned i = 0; i < 4; i++) {
		struct aq_job_opts opts = { .retry = &bad[i],
					    .arg_destroy = rjob_destroy };
		aq_future *fut = NULL;
		int rc = aq_submit(pool, rjob_fn, j, &opts, &fut);

		ck_assert_msg(rc == -EINVAL, "bad job policy %u: submit %d",
			      i, rc);
		if (rc == 0) {
			aq_future_get(fut, NULL, poll_ns());
			aq_future_release(fut);
		}
	}
	aq_pool_destroy(pool);
	ck_assert_int_eq(atomic_load(&j->ran), 0);
	ck_assert_int_eq(atomic_load(&j->destroyed), 0);
	free(j);
}
END_TEST

/* The timer thread cannot start when the first retry needs it: the job
 * fails for good with its own code, on_error once, nothing leaks. */
START_TEST(test_retry_timer_thread_fails)
{
	struct vclock vc;
	aq_pool *pool = vpool(1, &vc, NULL);
	struct ctl c;
	struct aq_retry_policy p;
	struct rjob *j = rjob_new(pool, 100, 19);
	struct rjob *k = rjob_new(pool, 1, 20);
	aq_future *fut;

	ctl_init(&c);
	p = policy(3, 1 * SEC, 0, 0, &c);
	aq__fault_arm(AQ__FAULT_THREAD, 1);
	fut = rsubmit(j, &p, NULL);
	ck_assert_int_eq(aq_future_get(fut, NULL, poll_ns()), 19);
	aq__fault_arm(AQ__FAULT_THREAD, 0);
	ck_assert_int_eq(atomic_load(&j->ran), 1);
	ck_assert_int_eq(atomic_load(&j->errors), 1);
	ck_assert_int_eq(atomic_load(&j->destroyed), 1);
	ck_assert_uint_eq(j->err.attempts, 1);
	aq_future_release(fut);

	/* The next retry starts the thread and works. */
	fut = rsubmit(k, &p, NULL);
	wait_retrying(k, fut, 1);
	vclock_set(pool, &vc, T0 + 1 * SEC);
	ck_assert_int_eq(aq_future_get(fut, NULL, poll_ns()), 0);
	aq_future_release(fut);
	aq_pool_destroy(pool);
	free(j);
	free(k);
}
END_TEST

/* ---- stress ---------------------------------------------------------------- */

#define PRODUCERS 4
#define PER_PRODUCER 3000
#define NJOBS (PRODUCERS * PER_PRODUCER)
#define NPOLICIES 7

struct sjob {
	unsigned idx;
	unsigned nfail;       /* attempts that fail (>= 100: all) */
	int code;
	int policy;           /* index in stress policies; -1 = pool's */
	bool honour;          /* returns AQ_JOB_CANCELLED when asked */
	bool has_deadline;
	atomic_int ran;
	atomic_int destroyed;
	atomic_int retries;   /* on_retry calls */
	atomic_int vetoes;    /* of which vetoed */
	atomic_int errors;
	atomic_int bad;
	int cancel_rc;        /* of the test's cancel; 1 = none made */
	aq_future *fut;
};

struct stress {
	aq_pool *pool;
	struct vclock vc;
	struct sjob *jobs;
	struct aq_retry_policy policies[NPOLICIES];
	struct aq_retry_policy pool_policy;
	atomic_int stop_clock;
	atomic_int submit_failed;
};

/* splitmix64: deterministic per-job randomness. */
static uint64_t mix(uint64_t x)
{
	x += UINT64_C(0x9e3779b97f4a7c15);
	x = (x ^ (x >> 30)) * UINT64_C(0xbf58476d1ce4e5b9);
	x = (x ^ (x >> 27)) * UINT64_C(0x94d049bb133111eb);
	return x ^ (x >> 31);
}

static int stress_job(void *arg, void **result)
{
	struct sjob *j = arg;
	int n = atomic_fetch_add(&j->ran, 1); /* attempts before this one */

	(void)result;
	if (aq_current_attempt() != (unsigned)n + 1)
		atomic_fetch_add(&j->bad, 1);
	if (j->honour && aq_current_cancelled())
		return AQ_JOB_CANCELLED;
	if ((mix(j->idx) & 15) == 0)
		sched_yield(); /* a little overlap with cancels */
	return (unsigned)n < j->nfail ? j->code : 0;
}

static void stress_destroy(void *arg)
{
	atomic_fetch_add(&((struct sjob *)arg)->destroyed, 1);
}

static int stress_retryable(int code, void *user)
{
	(void)user;
	return code != 17;
}

static int stress_on_retry(const struct aq_job_info *info, int code,
			   unsigned attempt, int64_t *delay_ns, void *user)
{
	struct sjob *j = info->arg;
	const struct aq_retry_policy *p = user;
	int64_t bound = jitter_bound(p, (int)attempt - 1);

	atomic_fetch_add(&j->retries, 1);
	/* The offered delay: exactly the formula, or within it with
	 * jitter. */
	if (code != j->code || attempt != info->attempt || *delay_ns < 0 ||
	    *delay_ns > bound ||
	    (!(p->flags & AQ_RETRY_JITTER) && *delay_ns != bound))
		atomic_fetch_add(&j->bad, 1);
	/* Deterministic vetoes and delay changes for one policy. */
	if (p->max_attempts == 6) {
		if ((mix(info->id + attempt) % 7) == 0) {
			atomic_fetch_add(&j->vetoes, 1);
			return 1;
		}
		*delay_ns /= 2;
	}
	return 0;
}

static void stress_on_error(const struct aq_job_info *info,
			    const struct aq_error *err, void *user)
{
	struct sjob *j = info->arg;

	(void)user;
	if (err->job_id != info->id || err->code != j->code ||
	    (int)err->attempts != atomic_load(&j->ran) || err->job_id == 0 ||
	    err->first_attempt_ns > err->last_attempt_ns)
		atomic_fetch_add(&j->bad, 1);
	atomic_fetch_add(&j->errors, 1);
}

static void stress_policies(struct stress *s)
{
	static const int never[] = { 13 };
	struct aq_retry_policy *p = s->policies;

	memset(p, 0, sizeof(s->policies));
	for (int i = 0; i < NPOLICIES; i++) {
		p[i].on_retry = stress_on_retry;
		p[i].on_error = stress_on_error;
		p[i].user = &p[i];
	}
	p[0].max_attempts = 3;
	p[0].base_delay_ns = 1 * MS;
	p[0].factor = 2.0;
	p[0].flags = AQ_RETRY_JITTER;
	p[1].max_attempts = 5;
	p[1].base_delay_ns = 100000;
	p[1].factor = 3.0;
	p[1].max_delay_ns = 2 * MS;
	p[1].never_retry = never;
	p[1].never_retry_count = 1;
	p[2].max_attempts = 4; /* at once */
	p[2].retryable = stress_retryable;
	p[3].max_attempts = 6; /* on_retry vetoes some, halves the rest */
	p[3].base_delay_ns = 500000;
	p[3].flags = AQ_RETRY_JITTER;
	p[4].max_attempts = 1; /* no retry */
	p[5].max_attempts = 0; /* no retry */
	p[6].max_attempts = 2;
	p[6].base_delay_ns = 5 * MS;
	s->pool_policy = p[1];
	s->pool_policy.user = &s->pool_policy; /* the pool copies it */
}

static const struct aq_retry_policy *stress_policy(struct stress *s,
						   const struct sjob *j)
{
	return j->policy < 0 ? &s->pool_policy : &s->policies[j->policy];
}

static bool stress_code_retryable(const struct aq_retry_policy *p, int code)
{
	for (unsigned i = 0; i < p->never_retry_count; i++)
		if (p->never_retry[i] == code)
			return false;
	return !p->retryable || p->retryable(code, p->user);
}

struct producer {
	struct stress *s;
	unsigned first;
	pthread_t tid;
};

static void *producer_main(void *arg)
{
	struct producer *pr = arg;
	struct stress *s = pr->s;

	for (unsigned i = pr->first; i < pr->first + PER_PRODUCER; i++) {
		struct sjob *j = &s->jobs[i];
		uint64_t r = mix(i * 7919u + 1);
		struct aq_job_opts opts = { .flags = AQ_JOB_BLOCK,
					    .arg_destroy = stress_destroy };
		int64_t now = th_pool_now(s->pool);
		int rc;

		j->idx = i;
		j->nfail = (unsigned)(r % 5) == 4 ? 100 : (unsigned)(r % 5);
		j->code = (int)((r >> 8) % 20) + 1;
		j->policy = (int)((r >> 16) % (NPOLICIES + 1)) - 1;
		j->honour = (r >> 24) & 1;
		j->cancel_rc = 1;
		if (((r >> 28) & 7) == 0)
			opts.delay_ns = (int64_t)((r >> 32) % (20 * MS)) + 1;
		else if (((r >> 28) & 7) == 1)
			opts.run_at_ns = now + (int64_t)((r >> 32) % (10 * MS));
		if (((r >> 36) & 15) == 0) {
			opts.deadline_ns = now + (int64_t)((r >> 40) % (8 * MS));
			j->has_deadline = true;
		}
		if (j->policy >= 0)
			opts.retry = &s->policies[j->policy];
		rc = aq_submit(s->pool, stress_job, j, &opts, &j->fut);
		if (rc != 0) {
			atomic_fetch_add(&s->submit_failed, 1);
			continue;
		}
		if (((r >> 44) & 15) == 0)
			j->cancel_rc = aq_future_cancel(j->fut);
	}
	/* A second pass of cancels, in whatever state the jobs are now. */
	for (unsigned i = pr->first; i < pr->first + PER_PRODUCER; i++) {
		struct sjob *j = &s->jobs[i];

		if (j->fut && j->cancel_rc == 1 && (mix(i ^ 0x5555) & 7) == 0)
			j->cancel_rc = aq_future_cancel(j->fut);
	}
	return NULL;
}

static void *clock_driver(void *arg)
{
	struct stress *s = arg;

	while (!atomic_load(&s->stop_clock)) {
		atomic_fetch_add(&s->vc.now, 200000); /* 0.2 ms virtual */
		aq_pool_clock_changed(s->pool);
		nanosleep(&(struct timespec){ .tv_nsec = 100000 }, NULL);
	}
	return NULL;
}

START_TEST(test_stress)
{
	const unsigned mode = _i ? AQ_SHUTDOWN_CANCEL : AQ_SHUTDOWN_DRAIN;
	struct stress *s = calloc(1, sizeof(*s));
	struct producer prod[PRODUCERS];
	int count[AQ_STATE_EXPIRED + 1] = { 0 };
	pthread_t driver;
	long total_runs = 0;

	ck_assert_ptr_nonnull(s);
	s->jobs = calloc(NJOBS, sizeof(*s->jobs));
	ck_assert_ptr_nonnull(s->jobs);
	for (unsigned i = 0; i < NJOBS; i++) {
		atomic_init(&s->jobs[i].ran, 0);
		atomic_init(&s->jobs[i].destroyed, 0);
		atomic_init(&s->jobs[i].retries, 0);
		atomic_init(&s->jobs[i].vetoes, 0);
		atomic_init(&s->jobs[i].errors, 0);
		atomic_init(&s->jobs[i].bad, 0);
	}
	atomic_init(&s->stop_clock, 0);
	atomic_init(&s->submit_failed, 0);
	stress_policies(s);
	s->pool = vpool(4, &s->vc, &s->pool_policy);
	ck_assert_int_eq(pthread_create(&driver, NULL, clock_driver, s), 0);
	for (int p = 0; p < PRODUCERS; p++) {
		prod[p].s = s;
		prod[p].first = (unsigned)p * PER_PRODUCER;
		ck_assert_int_eq(pthread_create(&prod[p].tid, NULL,
						producer_main, &prod[p]), 0);
	}
	for (int p = 0; p < PRODUCERS; p++)
		pthread_join(prod[p].tid, NULL);
	ck_assert_int_eq(atomic_load(&s->submit_failed), 0);
	/* The clock keeps moving while a drain waits for delayed jobs. */
	ck_assert_int_eq(aq_pool_shutdown(s->pool, mode), 0);
	atomic_store(&s->stop_clock, 1);
	pthread_join(driver, NULL);

	for (unsigned i = 0; i < NJOBS; i++) {
		struct sjob *j = &s->jobs[i];
		const struct aq_retry_policy *p = stress_policy(s, j);
		unsigned max = p->max_attempts > 1 ? p->max_attempts : 1;
		enum aq_state st = aq_future_state(j->fut);
		int ran = atomic_load(&j->ran);
		int get = aq_future_get(j->fut, NULL, 0);

		ck_assert_msg(st >= AQ_STATE_SUCCEEDED && st <= AQ_STATE_EXPIRED,
			      "job %u: state %d after shutdown", i, st);
		count[st]++;
		total_runs += ran;
		ck_assert_msg(atomic_load(&j->destroyed) == 1,
			      "job %u: arg_destroy ran %d times", i,
			      atomic_load(&j->destroyed));
		ck_assert_msg(atomic_load(&j->errors) ==
				      (st == AQ_STATE_FAILED),
			      "job %u: state %d, on_error %d times", i, st,
			      atomic_load(&j->errors));
		ck_assert_msg(ran <= (int)max, "job %u ran %d > %u times", i,
			      ran, max);
		ck_assert_msg(atomic_load(&j->bad) == 0,
			      "job %u: inconsistency seen on a worker", i);
		switch (st) {
		case AQ_STATE_SUCCEEDED:
			ck_assert_int_eq(get, 0);
			ck_assert_int_eq(ran, (int)j->nfail + 1);
			ck_assert_int_eq(atomic_load(&j->retries), ran - 1);
			break;
		case AQ_STATE_FAILED: {
			struct aq_error err;

			ck_assert_int_eq(get, j->code);
			ck_assert_int_eq(aq_future_error(j->fut, &err), 0);
			ck_assert_int_eq((int)err.attempts, ran);
			ck_assert_int_eq(err.code, j->code);
			/* In a drain nothing cuts a retry short but the
			 * policy, a veto, or a cancel request. */
			if (mode == AQ_SHUTDOWN_DRAIN && j->cancel_rc == 1)
				ck_assert_msg(
					ran == (int)max ||
						!stress_code_retryable(
							p, j->code) ||
						atomic_load(&j->vetoes) == 1,
					"job %u failed after %d of %u "
					"attempts", i, ran, max);
			break;
		}
		case AQ_STATE_CANCELLED:
			ck_assert_int_eq(get, -ECANCELED);
			/* In a drain only the test cancels: before the job
			 * ran (0), or while it ran (-EBUSY) — then either the
			 * job honoured the request or it failed and the
			 * request landed while its retry was being decided,
			 * which cancels the retry (see aq_future_cancel(3)). */
			if (mode == AQ_SHUTDOWN_DRAIN)
				ck_assert_msg(j->cancel_rc == 0 ||
						      j->cancel_rc == -EBUSY,
					      "job %u cancelled, cancel %d",
					      i, j->cancel_rc);
			break;
		case AQ_STATE_EXPIRED:
			ck_assert_int_eq(get, -ETIME);
			ck_assert(j->has_deadline);
			break;
		default:
			break;
		}
		if (j->cancel_rc == 0)
			ck_assert_int_eq(st, AQ_STATE_CANCELLED);
		aq_future_release(j->fut);
	}
	ck_assert_int_eq(count[AQ_STATE_SUCCEEDED] + count[AQ_STATE_FAILED] +
				 count[AQ_STATE_CANCELLED] +
				 count[AQ_STATE_EXPIRED],
			 NJOBS);
	/* The mix reached every outcome. */
	ck_assert_int_gt(count[AQ_STATE_SUCCEEDED], 0);
	ck_assert_int_gt(count[AQ_STATE_FAILED], 0);
	ck_assert_int_gt(count[AQ_STATE_CANCELLED], 0);
	/* A drain runs nearly everything; a cancel cuts in early. */
	ck_assert_int_gt(total_runs, mode == AQ_SHUTDOWN_DRAIN ? NJOBS : 0);
	aq_pool_destroy(s->pool);
	free(s->jobs);
	free(s);
}
END_TEST

Suite *retry_suite(void)
{
	Suite *s = suite_create("retry");
	TCase *backoff = tcase_create("backoff");
	TCase *codes = tcase_create("codes");
	TCase *callbacks = tcase_create("callbacks");
	TCase *record = tcase_create("record");
	TCase *cancel = tcase_create("cancel");
	TCase *config = tcase_create("config");
	TCase *stress = tcase_create("stress");

	tcase_set_timeout(backoff, TH_TIMEOUT);
	tcase_add_test(backoff, test_fail_twice_then_succeed);
	tcase_add_loop_test(backoff, test_backoff_exact, 0,
			    (int)(sizeof(backoff_cases) /
				  sizeof(backoff_cases[0])));
	tcase_add_test(backoff, test_backoff_no_overflow);
	tcase_add_test(backoff, test_retry_negative_clock);
	tcase_add_loop_test(backoff, test_backoff_large_attempts, 0,
			    sizeof(big_cases) / sizeof(big_cases[0]));
	tcase_add_test(backoff, test_backoff_any_attempt_number);
	tcase_add_test(backoff, test_jitter_bounds);
	tcase_add_test(backoff, test_jitter_due_time);
	suite_add_tcase(s, backoff);

	tcase_set_timeout(codes, TH_TIMEOUT);
	tcase_add_test(codes, test_retryable_predicate);
	tcase_add_test(codes, test_never_retry_list);
	tcase_add_test(codes, test_negative_return_retries_as_einval);
	suite_add_tcase(s, codes);

	tcase_set_timeout(callbacks, TH_TIMEOUT);
	tcase_add_test(callbacks, test_on_retry_veto);
	tcase_add_test(callbacks, test_on_retry_changes_delay);
	tcase_add_test(callbacks, test_on_retry_huge_delay_never_early);
	tcase_add_test(callbacks, test_callbacks_reenter);
	tcase_add_test(callbacks, test_on_error_exactly_once);
	tcase_add_test(callbacks, test_pool_default_and_override);
	suite_add_tcase(s, callbacks);

	tcase_set_timeout(record, TH_TIMEOUT);
	tcase_add_test(record, test_error_record);
	tcase_add_test(record, test_error_record_only_when_failed);
	tcase_add_test(record, test_error_times_without_policy);
	tcase_add_test(record, test_job_api_outside_and_inline);
	suite_add_tcase(s, record);

	tcase_set_timeout(cancel, TH_TIMEOUT);
	tcase_add_test(cancel, test_cancel_retrying);
	tcase_add_loop_test(cancel, test_cancel_running, 0,
			    (int)(sizeof(running_cases) /
				  sizeof(running_cases[0])));
	tcase_add_test(cancel, test_cancel_while_settling_not_lost);
	tcase_add_test(cancel, test_get_timeout_across_retries);
	suite_add_tcase(s, cancel);

	tcase_set_timeout(config, TH_TIMEOUT);
	tcase_add_test(config, test_retry_config_invalid);
	tcase_add_test(config, test_job_policy_invalid);
	tcase_add_test(config, test_retry_timer_thread_fails);
	suite_add_tcase(s, config);

	/* Loop index 0: drain, 1: cancel. */
	tcase_set_timeout(stress, TH_TIMEOUT_STRESS);
	tcase_add_loop_test(stress, test_stress, 0, 2);
	suite_add_tcase(s, stress);
	return s;
}
