/* SPDX-License-Identifier: MIT */
/*
 * run.c - one job record's run on a worker: the claim, the attempt and its
 * time stamps, the call (timed, with hooks, or plain), a yield (queued
 * again, or called again), and the outcome: success, cancellation, a
 * retry, failure or expiry. The worker loop (worker.c) takes the items;
 * this file runs the ones that carry records.
 *
 * The common record (no scheduler, no timing, a new attempt, no deadline,
 * no retry policy) that succeeds takes a straight path, inline in the
 * worker's loop (aq__run_record_fifo(), run.h): claim, call, resolve, put.
 * Everything else goes through aq__run_claimed() and
 * worker_record_settle(), which handle every case.
 */
#include <errno.h>
#include <stdlib.h>

#include "clock.h"
#include "current.h"
#include "future.h"
#include "job.h"
#include "pool.h"
#include "retry.h"
#include "run.h"
#include "scheduler.h"
#include "trace.h"

/* A FIFO pool's job yielded: queue it again at the ring's tail. */
bool aq__run_requeue(struct aq_pool *pool, struct aq__ring_item item)
{
	/* Counted first (see AQ__STAT_SHARED()); this worker's own block,
	 * so taking it back is a plain store too. */
	aq__stat_add(&aq__current.stats->requeued, 1, false);
	if (aq__ring_push(&pool->ring, item) != 0) {
		aq__stat_add(&aq__current.stats->requeued, UINT64_MAX, false);
		return false; /* full or closed: the caller runs it again */
	}
	aq__pool_wake_one(pool);
	return true;
}
/* A call with timing on: hooks, histograms, and for a final outcome the
 * time in system (W). */
static int worker_call_timed(struct aq_pool *pool, struct aq_future *rec,
			     void **result)
{
	struct aq_job_event ev = { .id = rec->id, .attempt = rec->attempt };
	int64_t start = aq__now_ns(), end;
	int rc;

	ev.wait_ns = start - rec->enqueue_ns;
	if (pool->before_job)
		pool->before_job(&ev, pool->hook_user);
	rc = rec->fn(rec->arg, result);
	end = aq__now_ns();
	ev.run_ns = end - start;
	ev.code = rc;
	if (pool->after_job)
		pool->after_job(&ev, pool->hook_user);
	/* Busy time counts the outermost call only: a nested call's time is
	 * already inside the call that waited for it. */
	aq__stats_time(aq__current.stats, ev.wait_ns, ev.run_ns,
		       aq__current.depth == 1);
	if (rc == AQ_YIELD) {
		/* Its next wait starts now. (A policy sets it when the job
		 * goes back to it, under its lock: the record may still be
		 * queued there if a waiter ran it in place.) */
		if (!pool->sched)
			rec->enqueue_ns = end;
	} else {
		aq__stat_add(&aq__current.stats->sojourn_ns,
			     (uint64_t)(end - rec->submit_ns), false);
		aq__stat_add(&aq__current.stats->timed_done, 1, false);
	}
	return rc;
}

enum requeue { REQUEUED, RUN_AGAIN, GONE };

/* A yielded record goes back to the tail, or, if it cannot be queued, is
 * run again at once (RUN_AGAIN) unless a cancel took it (GONE). */
static enum requeue requeue_record(struct aq_pool *pool, struct aq_future *rec,
				   bool popped)
{
	if (pool->sched) {
		/* Back to the policy, which makes it PENDING; the pool keeps
		 * its reference. */
		aq__sched_done(pool, rec, true, popped);
		return REQUEUED;
	}
	/* Release: whoever claims it next (acquire) sees our writes. */
	atomic_store_explicit(&rec->state, AQ_STATE_PENDING,
			      memory_order_release);
	if (aq__run_requeue(pool, (struct aq__ring_item){ NULL, rec }))
		return REQUEUED;
	/* Relaxed, as in worker_run(). */
	if (aq__job_claim(rec, atomic_load_explicit(&pool->cancelling,
						    memory_order_relaxed)))
		return RUN_AGAIN;
	aq__future_put(rec);
	return GONE;
}

/*
 * After a claimed record's calls: settle the outcome (success,
 * cancellation, a retry, or failure; expired: its deadline passed before
 * it started) and drop the pool's reference.
 */
static void worker_record_settle(struct aq_pool *pool, struct aq_future *rec,
				 bool expired, int rc, void *result,
				 bool popped)
{
	/* The policy hears first: after a retry is scheduled the record may
	 * already be running on another worker. */
	if (popped)
		aq__sched_done(pool, rec, false, true);
	if (expired) {
		AQ__TRACE(expire, pool, rec->id, rec->deadline_ns);
		aq__job_finish(rec, AQ_STATE_EXPIRED, 0, NULL);
	} else if (rc == 0) {
		aq__job_finish(rec, AQ_STATE_SUCCEEDED, 0, result);
	} else if (rc == AQ_JOB_CANCELLED) {
		aq__job_finish(rec, AQ_STATE_CANCELLED, 0, NULL);
	} else {
		/* Negative returns are reserved: a contract error. */
		int code = rc > 0 ? rc : EINVAL;

		if (aq__retry_schedule(pool, rec, code))
			return; /* the timer (or a canceller) has it now */
		aq__retry_fail(rec, code, result);
	}
	aq__future_put(rec);
}

/* A new attempt starts at now (a yield only pauses one). */
static inline void record_attempt(struct aq_future *rec, int64_t now)
{
	if (rec->attempt++ == 0) {
		rec->first_attempt_ns = now;
		aq__stat_add(&aq__current.stats->started, 1, false);
	}
	rec->last_attempt_ns = now;
}

/*
 * The only attempt of a record without a retry policy, whose first call
 * returned something other than success: stamp it now, when it returned.
 * Its start is not stamped: nothing but aq_future_error() reads the times
 * of such a job, and a clock read is a fifth of a plain job's cost
 * (aq_future_error(3) documents it).
 */
static void record_stamp_late(struct aq_pool *pool, struct aq_future *rec)
{
	rec->first_attempt_ns = rec->last_attempt_ns = aq__pool_now(pool);
}

/* One call of a claimed record's job, in its context, on the general
 * path (aq__run_record_fifo() has the straight one): the call count for a
 * scheduler, the nesting depth and the timed call for timing. */
static int record_call(struct aq_pool *pool, struct aq_future *rec,
		       void **result)
{
	int rc;

	aq__current_enter(rec, true);
	/* Relaxed: only this worker writes it now (future.h). */
	atomic_store_explicit(
		&rec->runs,
		atomic_load_explicit(&rec->runs, memory_order_relaxed) + 1,
		memory_order_relaxed);
	*result = NULL;
	AQ__TRACE(start, pool, rec->id, rec->fn, rec->attempt);
	if (pool->timing)
		rc = worker_call_timed(pool, rec, result);
	else
		rc = rec->fn(rec->arg, result);
	aq__current_leave(true);
	aq__run_set_yielded(rec, rc == AQ_YIELD);
	return rc;
}

/*
 * A claimed record in any case: check its deadline, call it (again, while
 * it yields and cannot be queued), and settle the outcome.
 */
void aq__run_claimed(struct aq_pool *pool, struct aq_future *rec, bool popped)
{
	bool expired = false; /* its deadline passed before it started */
	void *result = NULL;
	int64_t now;
	int rc = 0;

	for (;;) {
		now = aq__pool_now(pool);
		if (!(rec->detour & AQ__REC_YIELDED)) {
			if (rec->deadline_ns && now >= rec->deadline_ns) {
				expired = true;
				break;
			}
			record_attempt(rec, now);
		}
		rc = record_call(pool, rec, &result);
		if (rc != AQ_YIELD)
			break;
		if (requeue_record(pool, rec, popped) != RUN_AGAIN)
			return;
	}
	worker_record_settle(pool, rec, expired, rc, result, popped);
}

void aq__run_plain_rest(struct aq_pool *pool, struct aq_future *rec, int rc,
			void *result)
{
	aq__run_set_yielded(rec, rc == AQ_YIELD);
	record_stamp_late(pool, rec);
	if (rc != AQ_YIELD) {
		worker_record_settle(pool, rec, false, rc, result, false);
		return;
	}
	/* Yielded: queued again, or run again (the loop resumes it). */
	if (requeue_record(pool, rec, false) == RUN_AGAIN)
		aq__run_claimed(pool, rec, false);
}

void aq__run_record(struct aq_pool *pool, struct aq_future *rec, bool cancel,
		    bool popped)
{
	/* Without a scheduler: the inline path, which handles every case
	 * (a popped record has a scheduler). */
	if (AQ__LIKELY(!pool->sched)) {
		aq__run_record_fifo(pool, rec, cancel);
		return;
	}
	if (!aq__job_claim(rec, cancel)) {
		/* Cancelled before it ran; the scheduler still hears of it. */
		if (popped)
			aq__sched_done(pool, rec, false, true);
		aq__future_put(rec);
		return;
	}
	/* Ours now (the claim's acquire): its fields are safe to read. */
	aq__run_claimed(pool, rec, popped);
}
