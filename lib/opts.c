/* SPDX-License-Identifier: MIT */
/*
 * opts.c - a job's options (struct aq_job_opts) on their way in: whether
 * they are valid, whether the job needs a record, and what they write in
 * it (time, retry policy, what a scheduler reads), plus how long a submit
 * may wait for ring space. The queueing itself is submit.c's.
 */
#include <errno.h>
#include <stdint.h>

#include "clock.h"
#include "future.h"
#include "opts.h"
#include "pool.h"
#include "retry.h"

/* How long this submit may wait for space: 0 = not at all, -1 = forever,
 * otherwise nanoseconds. */
int64_t aq__opts_wait_budget(const struct aq_pool *pool,
			     const struct aq_job_opts *opts)
{
	unsigned flags = opts ? opts->flags : 0;
	int64_t timeout;

	if (flags & AQ_JOB_NOBLOCK)
		return 0;
	if (flags & AQ_JOB_BLOCK)
		timeout = opts->timeout_ns;
	else if (pool->flags & AQ_POOL_BLOCK)
		timeout = pool->block_timeout_ns;
	else
		return 0;
	return timeout > 0 ? timeout : -1;
}

/* What the pool's scheduler may read of the job (aq_sched_job_*()). */
void aq__opts_fill_sched(struct aq_future *rec, const struct aq_job_opts *opts)
{
	rec->priority = opts ? opts->priority : 0;
	rec->group = opts ? opts->group : 0;
	rec->weight = opts && opts->weight ? opts->weight : 1;
	rec->hint = opts ? opts->hint : 0;
	rec->enqueue_ns = aq__now_ns();
	rec->seq = 0; /* numbered when it reaches the scheduler */
	rec->sched_slots[0] = rec->sched_slots[1] = NULL;
}

bool aq__opts_valid(const struct aq_job_opts *opts)
{
	if ((opts->flags & ~AQ__JOB_FLAGS) ||
	    (opts->flags & AQ__JOB_FLAGS) == AQ__JOB_FLAGS ||
	    opts->priority < AQ_PRIORITY_MIN ||
	    opts->priority > AQ_PRIORITY_MAX || opts->weight > AQ_WEIGHT_MAX ||
	    opts->delay_ns < 0 || opts->run_at_ns < 0 || opts->deadline_ns < 0)
		return false;
	if (opts->after_count > AQ_AFTER_MAX ||
	    (opts->after_count && !opts->after))
		return false;
	for (unsigned i = 0; i < opts->after_count; i++)
		if (!opts->after[i])
			return false;
	return !opts->retry || aq__retry_policy_valid(opts->retry);
}

/* Does this job need a record rather than the bare {fn, arg}? */
bool aq__opts_need_record(const struct aq_pool *pool,
			  const struct aq_job_opts *opts, bool fut)
{
	return fut || pool->record_always ||
	       (opts &&
		(opts->arg_destroy || opts->delay_ns > 0 || opts->run_at_ns ||
		 opts->deadline_ns || opts->retry || opts->after_count));
}

/*
 * Failure handling and time: the retry policy, the deadline, and when the
 * job may start (rec->due_ns). True if it is delayed (run_at_ns or a
 * delay): the pool clock may read anything, below zero included, so no
 * value of due_ns can stand for "now"; INT64_MIN, never later than the
 * clock, is what a job that is not delayed gets.
 */
bool aq__opts_fill_time(struct aq_pool *pool, struct aq_future *rec,
			const struct aq_job_opts *opts)
{
	bool delayed = false;

	rec->due_ns = INT64_MIN;
	rec->retry = opts && opts->retry ? opts->retry
		     : pool->has_retry   ? &pool->retry_default
					 : NULL;
	rec->deadline_ns = opts ? opts->deadline_ns : 0;
	if (rec->retry || rec->deadline_ns)
		rec->detour |= AQ__REC_POLICY;
	if (opts && opts->run_at_ns) {
		rec->due_ns = opts->run_at_ns;
		delayed = true;
	}
	if (opts && opts->delay_ns > 0) {
		int64_t after =
			aq__time_add(aq__pool_now(pool), opts->delay_ns);

		if (after > rec->due_ns)
			rec->due_ns = after;
		delayed = true;
	}
	/* Jobs that wait outside the ring (delayed, retrying, or after
	 * others) keep shutdown from closing it under them. */
	rec->timer_user = delayed || (opts && opts->after_count) ||
			  (rec->retry && rec->retry->max_attempts > 1);
	return delayed;
}
