/* SPDX-License-Identifier: MIT */
/*
 * run.h - running a job record on a worker (see run.c).
 */
#ifndef AQ__RUN_H
#define AQ__RUN_H

#include <stdbool.h>

#include "current.h"
#include "future.h"
#include "job.h"
#include "pool.h"
#include "ring.h"
#include "stats.h"
#include "trace.h"

/*
 * On a worker of pool: run a record taken from a queue (popped: from the
 * scheduler, which hears when it is done), or cancel it (cancel: a
 * cancelling shutdown was seen), and drop the reference the queue held.
 * Any record, any pool; out of line.
 */
void aq__run_record(struct aq_pool *pool, struct aq_future *rec, bool cancel,
		    bool popped);

/* A record this worker has claimed (RUNNING) and that is not on the
 * straight path: run it (again, while it yields and cannot be queued)
 * and settle it, whatever the case. */
void aq__run_claimed(struct aq_pool *pool, struct aq_future *rec, bool popped);

/* The straight path's call returned rc, not 0: stamp, then settle the
 * failure or queue the yielded job again. */
void aq__run_plain_rest(struct aq_pool *pool, struct aq_future *rec, int rc,
			void *result);

/* Note whether the record's last call yielded (its detour byte). */
static inline void aq__run_set_yielded(struct aq_future *rec, bool yielded)
{
	rec->detour = (uint8_t)((rec->detour & ~AQ__REC_YIELDED) |
				(yielded ? AQ__REC_YIELDED : 0));
}

/*
 * aq__run_record() for a pool without a scheduler, inline where a worker
 * runs records one after another (its loop, its helping waits), whose
 * registers it shares, so the common record costs no call frame: a record
 * without timing, deadline or retry policy, on its first call, runs
 * straight through (claim, call, resolve, put); anything else goes out of
 * line. Its only attempt is counted, not stamped (aq__run_plain_rest()).
 */
static inline __attribute__((always_inline)) void
aq__run_record_fifo(struct aq_pool *pool, struct aq_future *rec, bool cancel)
{
	void *result = NULL;
	int rc;

	if (AQ__UNLIKELY(!aq__job_claim(rec, cancel))) {
		/* A canceller took it first, or a cancelling shutdown here. */
		aq__future_put(rec);
		return;
	}
	/* Ours now (the claim's acquire): its fields are safe to read. */
	if (AQ__UNLIKELY(pool->timing || rec->detour)) {
		aq__run_claimed(pool, rec, false);
		return;
	}
	rec->attempt = 1;
	aq__stat_add(&aq__current.stats->started, 1, false);
	aq__current_enter(rec, false);
	AQ__TRACE(start, pool, rec->id, rec->fn, 1u);
	rc = rec->fn(rec->arg, &result);
	aq__current_leave(false);
	if (AQ__LIKELY(rc == 0)) {
		aq__job_succeed(pool, rec, result);
		aq__future_put(rec);
		return;
	}
	aq__run_plain_rest(pool, rec, rc, result);
}

/* A FIFO pool's yielded job goes back to the ring's tail: true, or false
 * when the ring is full or closed (the caller runs it again). */
bool aq__run_requeue(struct aq_pool *pool, struct aq__ring_item item);

#endif
