/* SPDX-License-Identifier: MIT */
/*
 * vclock.h - a virtual clock for the tests of delays, deadlines and
 * retries (check_retry.c, check_timer.c): time moves only when a test
 * says so, so every expectation about time is exact.
 */
#ifndef AQ_TEST_VCLOCK_H
#define AQ_TEST_VCLOCK_H

#include <stdatomic.h>
#include <stdbool.h>
#include <stdint.h>

#include <check.h>

#include "asyncq.h"
#include "helpers.h"

#define MS INT64_C(1000000)
#define SEC INT64_C(1000000000)
#define T0 (1000 * SEC) /* where every virtual clock starts */

/* ---- a virtual clock ----------------------------------------------------- */

struct vclock {
	_Atomic int64_t now;
};

static inline int64_t vclock_now(void *user)
{
	return atomic_load(&((struct vclock *)user)->now);
}

/* Move the clock and tell the pool, as a user of a virtual clock must. */
static inline void vclock_set(aq_pool *pool, struct vclock *vc, int64_t t)
{
	atomic_store(&vc->now, t);
	ck_assert_int_eq(aq_pool_clock_changed(pool), 0);
}

/* A pool on the clock vc (reset to T0), with an optional default policy. */
static inline aq_pool *vpool(unsigned workers, struct vclock *vc,
		      const struct aq_retry_policy *retry)
{
	struct aq_clock clock = { vclock_now, vc };
	struct aq_pool_config cfg = { .workers = workers,
				      .retry = retry,
				      .clock = &clock };
	aq_pool *pool = NULL;

	atomic_init(&vc->now, T0);
	ck_assert_int_eq(aq_pool_create(&pool, &cfg), 0);
	ck_assert_int_eq(th_pool_now(pool), T0);
	return pool;
}

/* The vclock suites' name for th_long_ns(). */
static inline int64_t poll_ns(void)
{
	return th_long_ns();
}

struct state_ne {
	aq_future *fut;
	enum aq_state state;
};

static inline bool state_differs(void *ctx)
{
	struct state_ne *c = ctx;

	return aq_future_state(c->fut) != c->state;
}

static inline int marker_fn(void *arg, void **result)
{
	(void)arg;
	(void)result;
	return 0;
}

/*
 * Let the pool act on the present clock: a marker due now leaves the timer
 * only after the timer thread has looked at its heap at this time; then a
 * job that was wrongly released gets a few milliseconds to show itself.
 */
static inline void settle(aq_pool *pool)
{
	struct aq_job_opts opts = { .run_at_ns = th_pool_now(pool) };
	struct state_ne c;
	aq_future *marker;

	ck_assert_int_eq(aq_submit(pool, marker_fn, NULL, &opts, &marker), 0);
	c.fut = marker;
	c.state = AQ_STATE_DELAYED;
	ck_assert(th_poll(state_differs, &c));
	aq_future_release(marker);
	th_sleep_ms(10);
}

/*
 * settle() for any clock: run_at_ns cannot name a time below 1, so the
 * marker is delayed by 1 ns and the clock moved on by that much. Once the
 * marker has left the timer, the timer thread has looked at its heap at
 * the new time; then a job wrongly released gets a few milliseconds.
 */
static inline void settle_step(aq_pool *pool, struct vclock *vc)
{
	struct aq_job_opts opts = { .delay_ns = 1 };
	struct state_ne c;
	aq_future *marker;

	ck_assert_int_eq(aq_submit(pool, marker_fn, NULL, &opts, &marker), 0);
	ck_assert_int_eq(aq_future_state(marker), AQ_STATE_DELAYED);
	vclock_set(pool, vc, atomic_load(&vc->now) + 1);
	c.fut = marker;
	c.state = AQ_STATE_DELAYED;
	ck_assert(th_poll(state_differs, &c));
	aq_future_release(marker);
	th_sleep_ms(10);
}

#endif
