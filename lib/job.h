/* SPDX-License-Identifier: MIT */
/*
 * job.h - a job record on the pool's side (see job.c): claiming it,
 * finishing it with the pool's bookkeeping, cancelling it.
 */
#ifndef AQ__JOB_H
#define AQ__JOB_H

#include <stdbool.h>
#include <stdint.h>

#include "compat.h"
#include "current.h"
#include "future.h"
#include "pool.h"
#include "stats.h"
#include "trace.h"

/*
 * Give a claimed (RUNNING or CANCELLING) record its final outcome: run
 * arg_destroy, store result and code, count the outcome in the pool's
 * statistics, publish the state (waking waiters and then-callbacks), and
 * tell the pool if the record was a timer user. The pool's reference
 * stays with the caller.
 */
void aq__job_finish(struct aq_future *rec, uint32_t final_state, int code,
		    void *result);

/*
 * aq__job_finish() for the common case, inline: a job of pool that
 * succeeded, finished on one of pool's own workers (whose block counts
 * it).
 */
static inline __attribute__((always_inline)) void
aq__job_succeed(struct aq_pool *pool, struct aq_future *rec, void *result)
{
	bool timer_user = rec->timer_user;

	aq__future_settle(rec, 0, result);
	aq__stat_add(&aq__current.stats->succeeded, 1, false);
	/* Before the resolve: after it the record may be recycled. */
	AQ__TRACE(finish, pool, rec->id, (int)AQ_STATE_SUCCEEDED, 0);
	aq__future_resolve(rec, AQ_STATE_SUCCEEDED);
	/* As in aq__job_finish(): after the publication, before the pool
	 * may go. */
	if (AQ__UNLIKELY(timer_user))
		aq__pool_timer_user_done(pool);
}

/*
 * Claim a record a worker has taken from a queue: PENDING -> RUNNING, or
 * -> cancelled when cancel is true (a cancelling shutdown). False when it
 * was not PENDING (a canceller owns it) or was cancelled here: the caller
 * then only drops the pool's reference.
 */
bool aq__job_claim_cancel(struct aq_future *rec);

static inline bool aq__job_claim(struct aq_future *rec, bool cancel)
{
	if (AQ__UNLIKELY(cancel))
		return aq__job_claim_cancel(rec);
	return aq__future_claim(rec, AQ_STATE_RUNNING);
}

#endif
