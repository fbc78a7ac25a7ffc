/* SPDX-License-Identifier: MIT */
/*
 * retry.c - failure handling: whether a failed attempt is tried again and
 * when (fixed or exponential back-off, a cap, optional full jitter), the
 * on_retry and on_error callbacks, and the error record.
 *
 * Everything here runs on the worker whose attempt failed, with no library
 * lock held, so the callbacks may submit jobs or cancel futures. A retry
 * puts the record in the timer (timer.c) in state RETRYING; it is queued
 * again, as PENDING, when its delay has passed.
 */
#include <errno.h>
#include <stdint.h>

#include "clock.h"
#include "current.h"
#include "future.h"
#include "job.h"
#include "pool.h"
#include "retry.h"
#include "trace.h"
#include "timer.h"

/* Per worker thread: the generator behind full jitter (xorshift64*). A
 * statistical spread is all jitter needs; it is not for secrets. */
static _Thread_local uint64_t jitter_state;

static uint64_t jitter_next(void)
{
	uint64_t x = jitter_state;

	if (x == 0) /* seed each thread differently, once */
		x = (uint64_t)aq__now_ns() ^ (uint64_t)(uintptr_t)&jitter_state;
	x ^= x >> 12;
	x ^= x << 25;
	x ^= x >> 27;
	jitter_state = x ? x : 1;
	return x * UINT64_C(2685821657736338717);
}

int64_t aq__retry_backoff(const struct aq_retry_policy *policy, unsigned n)
{
	double factor = policy->factor > 0 ? policy->factor : 1.0;
	double delay = (double)policy->base_delay_ns;
	unsigned exp = n > 1 ? n - 1 : 0;

	if (delay <= 0)
		return 0;
	/*
	 * base * factor^(n-1) by binary exponentiation (no libm): one
	 * squaring per bit of n - 1, so at most 32 of them and 32 products
	 * whatever n. (One multiplication per attempt made a factor below 1,
	 * which never reaches the cap, cost O(n) on every retry.) Powers of
	 * the factor only grow above 1 and only shrink below it, so stop
	 * once past any representable delay, or at 0; inf and 0 are fine on
	 * the way.
	 */
	if (factor == 1.0)
		exp = 0;
	for (double power = factor; exp && delay < 9.0e18 && delay > 0;
	     exp >>= 1) {
		if (exp & 1)
			delay *= power;
		power *= power;
	}
	if (policy->max_delay_ns > 0 && delay > (double)policy->max_delay_ns)
		delay = (double)policy->max_delay_ns;
	/* Far beyond any useful delay, but keep the conversion defined. */
	if (!(delay < 9.0e18))
		delay = 9.0e18;
	return (int64_t)delay;
}

bool aq__retry_policy_valid(const struct aq_retry_policy *p)
{
	return p->base_delay_ns >= 0 && p->max_delay_ns >= 0 &&
	       p->factor >= 0 && !(p->flags & ~AQ_RETRY_JITTER) &&
	       (p->never_retry || p->never_retry_count == 0);
}

static bool retry_allowed(const struct aq_retry_policy *policy, int code)
{
	for (unsigned i = 0; i < policy->never_retry_count; i++)
		if (policy->never_retry && policy->never_retry[i] == code)
			return false;
	return !policy->retryable || policy->retryable(code, policy->user);
}

/*
 * A cancel asked for once the retry was decided (from on_retry, or from
 * another thread meanwhile): the retry is what it stops, so the job ends
 * CANCELLED (no on_error), as if it had been cancelled while RETRYING.
 */
static bool retry_cancelled(struct aq_future *rec)
{
	/* Relaxed: a flag; no data rides on it. */
	if (!atomic_load_explicit(&rec->cancel_requested, memory_order_relaxed))
		return false;
	aq__job_finish(rec, AQ_STATE_CANCELLED, 0, NULL);
	aq__future_put(rec);
	return true;
}

bool aq__retry_schedule(struct aq_pool *pool, struct aq_future *rec, int code)
{
	const struct aq_retry_policy *policy = rec->retry;
	struct aq_job_info info;
	int64_t delay;

	if (!policy || rec->attempt >= policy->max_attempts)
		return false;
	/* Relaxed loads: advisory flags; no data rides on them. A job that
	 * saw a cancel request and still failed has failed: no retry. */
	if (atomic_load_explicit(&pool->cancelling, memory_order_relaxed) ||
	    atomic_load_explicit(&rec->cancel_requested, memory_order_relaxed))
		return false;
	if (!retry_allowed(policy, code))
		return false;

	delay = aq__retry_backoff(policy, rec->attempt);
	if ((policy->flags & AQ_RETRY_JITTER) && delay > 0)
		delay = (int64_t)(jitter_next() % ((uint64_t)delay + 1));
	info.id = rec->id;
	info.arg = rec->arg;
	info.attempt = rec->attempt;
	if (policy->on_retry &&
	    policy->on_retry(&info, code, rec->attempt, &delay, policy->user))
		return false; /* vetoed */
	if (delay < 0)
		delay = 0;
	if (retry_cancelled(rec)) /* on_retry itself may have asked */
		return true;

	rec->code = code; /* the error record shows the latest failure */
	aq__stat_add(&aq__current.stats->retried, 1, false); /* on a worker */
	rec->due_ns = aq__time_add(aq__pool_now(pool), delay);
	AQ__TRACE(retry, pool, rec->id, rec->attempt, code, delay);
	/* Release: the timer thread's CAS (acq_rel) sees our writes. */
	atomic_store_explicit(&rec->state, AQ_STATE_RETRYING,
			      memory_order_release);
	/* A reference of our own across the hand-over: once in the timer,
	 * the record may fire, run and be released at any moment. */
	atomic_fetch_add_explicit(&rec->refs, 1, memory_order_relaxed);
	if (aq__timer_add(&pool->timer, rec) == 0) {
		/* A cancel that came while the attempt was settling found the
		 * job RUNNING and only raised the flag: honour it now, as a
		 * cancel of a RETRYING job. Relaxed: a flag, as above. */
		if (atomic_load_explicit(&rec->cancel_requested,
					 memory_order_relaxed))
			aq_future_cancel(rec);
		aq__future_put(rec);
		return true;
	}
	atomic_fetch_sub_explicit(&rec->refs, 1, memory_order_relaxed);
	/* No room in the timer: take the record back and fail it. A
	 * canceller may have claimed it meanwhile: it resolved the record,
	 * and the pool's reference, which the timer never took, is ours to
	 * drop. */
	{
		uint32_t expected = AQ_STATE_RETRYING;

		if (!atomic_compare_exchange_strong(&rec->state, &expected,
						    AQ_STATE_RUNNING)) {
			aq__future_put(rec);
			return true;
		}
	}
	return false;
}

void aq__retry_fail(struct aq_future *rec, int code, void *result)
{
	const struct aq_retry_policy *policy = rec->retry;

	rec->code = code;
	if (policy && policy->on_error) {
		struct aq_job_info info = { .id = rec->id,
					    .arg = rec->arg,
					    .attempt = rec->attempt };
		struct aq_error err = {
			.job_id = rec->id,
			.attempts = rec->attempt,
			.code = code,
			.message = rec->message,
			.first_attempt_ns = rec->first_attempt_ns,
			.last_attempt_ns = rec->last_attempt_ns,
		};

		policy->on_error(&info, &err, policy->user);
	}
	aq__job_finish(rec, AQ_STATE_FAILED, code, result);
}
