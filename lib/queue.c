/* SPDX-License-Identifier: MIT */
/*
 * queue.c - putting items and job records on the pool's ring when the
 * simple lock-free push is not enough: the wait for space on a full ring,
 * and the queueing of records that come back from the timer or from their
 * dependencies, which must be cancelled if the ring has closed meanwhile.
 *
 * Full ring, blocking push: the eventcount of park.h, with space_seq as
 * the word and the waiter count in pop_attn's low bits. The producer
 * counts itself in and then re-reads the ring's counters; a consumer
 * claims a slot (seq_cst CAS on head) and then reads pop_attn. One of them
 * sees the other, so a producer never sleeps through the slot that would
 * have let it in.
 */
#include <errno.h>

#include "clock.h"
#include "future.h"
#include "job.h"
#include "park.h"
#include "pool.h"
#include "queue.h"
#include "scheduler.h"

/*
 * Workers wake blocked producers only once a run of slots is free
 * (space_wake_free, see pool.c), which saves a system call per
 * job when jobs are short. When they are long, that run could take long
 * to come free while a slot already is: so a blocked producer also looks
 * for itself every SPACE_POLL_NS, which bounds its extra wait.
 */
#define SPACE_POLL_NS 1000000

int aq__queue_wait_push(struct aq_pool *pool, struct aq__ring_item item,
			int64_t deadline)
{
	int rc;

	for (;;) {
		uint32_t key =
			aq__ec_prepare(&pool->space_seq, &pool->pop_attn);

		if (!aq__ring_has_space(&pool->ring)) { /* seq_cst re-check */
			int64_t nap = aq__deadline(SPACE_POLL_NS);

			aq__ec_commit(&pool->space_seq, key,
				      deadline >= 0 && deadline < nap ? deadline
								      : nap);
		}
		aq__ec_leave(&pool->pop_attn);

		rc = aq__ring_push(&pool->ring, item);
		if (rc != -EAGAIN)
			return rc;
		if (deadline >= 0 && aq__now_ns() >= deadline)
			return -ETIMEDOUT;
	}
}

int aq__queue_push(struct aq_pool *pool, struct aq__ring_item item,
		   int64_t budget_ns)
{
	int rc = aq__ring_push(&pool->ring, item);

	if (AQ__UNLIKELY(rc == -EAGAIN) && budget_ns != 0)
		rc = aq__queue_wait_push(pool, item, aq__deadline(budget_ns));
	return rc;
}

int aq__queue_record(struct aq_pool *pool, struct aq_future *rec,
		     int64_t budget_ns)
{
	int rc;

	AQ__STAT_SHARED(pool, released); /* first: see stats.h */
	rc = aq__queue_push(pool, (struct aq__ring_item){ NULL, rec },
			    budget_ns);
	if (rc == 0) {
		aq__pool_wake_one(pool);
		return 0;
	}
	AQ__STAT_SHARED_UNDO(pool, released);
	if (rc == -ESHUTDOWN) {
		/* A waiter helping may have claimed it meanwhile: then only
		 * release. */
		if (aq__future_claim(rec, AQ__STATE_CANCELLING))
			aq__job_finish(rec, AQ_STATE_CANCELLED, 0, NULL);
		aq__future_put(rec);
	}
	return rc;
}

void aq__queue_due(void *ctx, struct aq_future *rec, bool cancel)
{
	struct aq_pool *pool = ctx;
	/* Relaxed: the CAS below validates it. */
	uint32_t state =
		atomic_load_explicit(&rec->state, memory_order_relaxed);

	if (state != AQ_STATE_DELAYED && state != AQ_STATE_RETRYING)
		goto drop; /* a canceller got it first */
	/* Its wait (stats, a scheduler's aging) starts now; written before
	 * the CAS publishes the record to claimers. */
	if (!cancel && pool->sched)
		aq__sched_stamp(pool, rec, aq__now_ns());
	else if (!cancel && pool->timing)
		rec->enqueue_ns = aq__now_ns();
	/* Release on success: the record's fields, written by the worker
	 * that scheduled the retry or by the submitter, travel with it. */
	if (!atomic_compare_exchange_strong_explicit(
		    &rec->state, &state,
		    cancel ? AQ__STATE_CANCELLING : AQ_STATE_PENDING,
		    memory_order_acq_rel, memory_order_relaxed))
		goto drop;
	if (cancel) {
		aq__job_finish(rec, AQ_STATE_CANCELLED, 0, NULL);
		goto drop;
	}
	/* The timer thread is not a worker, so waiting for ring space
	 * cannot deadlock; a closed ring cancels the record. */
	aq__queue_record(pool, rec, -1);
	return;
drop:
	aq__future_put(rec);
}
