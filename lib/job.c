/* SPDX-License-Identifier: MIT */
/*
 * job.c - a job record on the pool's side: finishing it, which adds to the
 * record's own resolution (future.c) the pool's bookkeeping (statistics,
 * timer users), claiming it for a worker, and aq_future_cancel(), which
 * may have to take the record out of the pool's timer (a promise, which
 * has no pool, is cancelled by promise.c).
 *
 * The bookkeeping sits between the record's settling (arg_destroy, the
 * outcome stored) and its publication, so that whoever sees a job resolved
 * also sees it counted; the timer-user count drops after the publication,
 * because shutdown waits for it and the pool may go right after.
 */
#include <errno.h>

#include "cache.h"
#include "current.h"
#include "fault.h"
#include "future.h"
#include "job.h"
#include "pool.h"
#include "promise.h"
#include "timer.h"
#include "trace.h"

/* Count an outcome (a final state) of one of pool's jobs: into this
 * worker's own block on one of the pool's workers, else the shared one. */
static inline void stats_outcome(struct aq_pool *pool, uint32_t final_state)
{
	bool shared = !(aq__worker_pool == pool && aq__current.stats);
	struct aq__stats *blk = shared ? pool->shared_stats : aq__current.stats;
	_Atomic uint64_t *counter;

	switch (final_state) {
	case AQ_STATE_SUCCEEDED:
		counter = &blk->succeeded;
		break;
	case AQ_STATE_FAILED:
		counter = &blk->failed;
		break;
	case AQ_STATE_CANCELLED:
		counter = &blk->cancelled;
		break;
	case AQ_STATE_EXPIRED:
		counter = &blk->expired;
		break;
	default:
		counter = &blk->skipped;
		break;
	}
	aq__stat_add(counter, 1, shared);
}

void aq__job_finish(struct aq_future *rec, uint32_t final_state, int code,
		    void *result)
{
	struct aq_pool *pool = rec->pool;
	bool timer_user = rec->timer_user;

	aq__future_settle(rec, code, result);
	stats_outcome(pool, final_state);
	/* Before the resolve: after it the record may be recycled. */
	AQ__TRACE(finish, pool, rec->id, (int)final_state, code);
	aq__future_resolve(rec, final_state);
	/* After the resolve the caller may release and the pool may go, but
	 * not before this count drops: shutdown waits for it. */
	if (timer_user)
		aq__pool_timer_user_done(pool);
}

/* aq__job_claim() under a cancelling shutdown: the record is cancelled,
 * not run (false either way). */
bool aq__job_claim_cancel(struct aq_future *rec)
{
	if (aq__future_claim(rec, AQ__STATE_CANCELLING))
		aq__job_finish(rec, AQ_STATE_CANCELLED, 0, NULL);
	return false;
}

/*
 * The claim comes first, on the cache (which our reference keeps alive),
 * and the state is read after it; reading first would leave a window in
 * which the job finishes and its pool is shut down and freed before the
 * claim is counted. Both seq_cst: a shutdown's last look at the claims
 * (pool.c) comes after every record's final state is stored. If that look
 * comes before our claim in the single total order, so does the final
 * store, and our read sees it: we leave the pool alone. Otherwise the
 * shutdown sees our claim and waits for it, so fut->pool stays valid until
 * we let go. A resolved future is left alone either way: its pool may be
 * gone.
 */
AQ_API int aq_future_cancel(aq_future *fut)
{
	struct aq__cache *cache;
	struct aq_pool *pool;
	uint32_t state, from;
	int rc = -EALREADY;

	if (!fut)
		return -EINVAL;
	if (aq__is_promise(fut)) /* no pool, no timer, no statistics */
		return aq__promise_cancel(fut);
	cache = fut->cache;
	aq__cache_claim(cache);
	state = atomic_load(&fut->state);
	aq__pause(AQ__PAUSE_CANCEL_READ);
	if (aq__state_final(state))
		goto out;
	pool = fut->pool; /* our claim keeps it from being freed */
	rc = aq__future_take(fut, state, &from);
	if (rc == 0) {
		/* A record waiting in the timer leaves it now, with the pool's
		 * reference, ours to drop once it is resolved; one in a queue
		 * is skipped, and released, when reached; one WAITING is
		 * released by its last dependency. */
		bool held = (from == AQ_STATE_DELAYED ||
			     from == AQ_STATE_RETRYING) &&
			    aq__timer_remove(&pool->timer, fut);

		aq__job_finish(fut, AQ_STATE_CANCELLED, 0, NULL);
		if (held)
			aq__future_put(fut);
	}
	AQ__TRACE(cancel, pool, fut->id, rc);
out:
	aq__cache_unclaim(cache);
	return rc;
}
