/* SPDX-License-Identifier: MIT */
/*
 * deps.c - jobs that run after others (aq_job_opts.after).
 *
 * A record submitted with opts.after starts WAITING, holding a reference
 * to each dependency and one internal then-registration on each.
 * deps_left counts the dependencies not yet resolved plus one guard held
 * by submit while it registers, so the record cannot start before submit
 * has finished with it. Whoever brings deps_left to zero settles the
 * record: PENDING and queued if every dependency succeeded, SKIPPED
 * otherwise, or only released if a canceller got there first. The
 * record's pool reference belongs to that counter until then.
 *
 * A WAITING record may be cancelled, and its pool shut down and destroyed,
 * long before its last dependency (of another pool, say) resolves. So the
 * settler touches nothing of the pool until it knows the record is not
 * resolved: it moves it WAITING -> SETTLING, which cancellers wait out,
 * takes an external claim on the pool (shutdown waits for those), and puts
 * it back to WAITING. If a canceller got there first it only drops the
 * record's reference; the record's cache outlives the pool. Weak spot: a
 * settler preempted inside that window keeps a canceller yielding.
 */
#include <errno.h>
#include <stdlib.h>

#include "clock.h"
#include "deps.h"
#include "fault.h"
#include "future.h"
#include "job.h"
#include "pool.h"
#include "queue.h"
#include "timer.h"

/* A record that could not be queued goes to the timer, due at once
 * (from DELAYED); if even that fails it fails with ENOMEM. */
static void deps_to_timer(struct aq_pool *pool, struct aq_future *rec)
{
	uint32_t expected = AQ_STATE_DELAYED;

	if (aq__timer_add(&pool->timer, rec) == 0)
		return;
	/* A canceller may have taken it meanwhile: then only release. */
	if (atomic_compare_exchange_strong(&rec->state, &expected,
					   AQ__STATE_CANCELLING))
		aq__job_finish(rec, AQ_STATE_FAILED, ENOMEM, NULL);
	aq__future_put(rec);
}

/*
 * Every dependency has resolved: start the record, skip it, or hand it to
 * the timer if it is also delayed. Runs on whichever thread resolved the
 * last dependency, possibly not one of the pool's. While the record is
 * WAITING its pool is alive (a timer user, which shutdown waits for); the
 * external claim, taken while no canceller can resolve it (SETTLING, see
 * the file comment), keeps it so until we are done with it.
 */
static void deps_settle(struct aq_future *rec)
{
	struct aq_pool *pool;
	uint32_t expected = AQ_STATE_WAITING, target;
	bool ok = true;

	/* seq_cst, both: the claim below is ordered between them, so a
	 * canceller that takes the record after our store also finds the
	 * claim counted (and shutdown waits for it). */
	if (!atomic_compare_exchange_strong(&rec->state, &expected,
					    AQ__STATE_SETTLING)) {
		/* Cancelled: its pool may be gone; the record is ours to
		 * release, nothing else. */
		aq__future_put(rec);
		return;
	}
	pool = rec->pool;
	aq__pool_ext_enter(pool);
	atomic_store(&rec->state, AQ_STATE_WAITING);
	expected = AQ_STATE_WAITING;
	for (unsigned i = 0; i < rec->ndeps; i++)
		/* Acquire: each dependency's outcome is settled. */
		if (atomic_load_explicit(&rec->deps[i]->state,
					 memory_order_acquire) !=
		    AQ_STATE_SUCCEEDED)
			ok = false;
	/* Its wait (stats, a scheduler's aging) starts now; written before
	 * the CAS publishes the record to claimers. */
	if (pool->timing || pool->sched)
		rec->enqueue_ns = aq__now_ns();
	target = !ok                                ? AQ__STATE_CANCELLING
		 : rec->due_ns > aq__pool_now(pool) ? AQ_STATE_DELAYED
						    : AQ_STATE_PENDING;
	/* acq_rel: take over the record, or find a canceller did. */
	if (!atomic_compare_exchange_strong_explicit(
		    &rec->state, &expected, target, memory_order_acq_rel,
		    memory_order_relaxed)) {
		aq__future_put(rec);
	} else if (!ok) {
		aq__job_finish(rec, AQ_STATE_SKIPPED, 0, NULL);
		aq__future_put(rec);
	} else if (target == AQ_STATE_DELAYED) {
		deps_to_timer(pool, rec);
	} else if (aq__queue_record(pool, rec, 0) == -EAGAIN) {
		/* Full, and we may be one of its workers, which must not
		 * wait on it: the timer thread queues it. A waiter helping
		 * may have claimed it meanwhile: then only release. (A closed
		 * ring cancelled it in aq__queue_record().) */
		expected = AQ_STATE_PENDING;
		rec->due_ns = INT64_MIN; /* due whatever the clock reads */
		if (atomic_compare_exchange_strong(&rec->state, &expected,
						   AQ_STATE_DELAYED))
			deps_to_timer(pool, rec);
		else
			aq__future_put(rec);
	}
	aq__pool_ext_leave(pool);
}

/*
 * Records whose last dependency resolved while this thread was already
 * settling one: a failed head of a long chain skips the next job from
 * inside its own resolution, and so on; settling them in a loop here
 * instead of recursing keeps the stack flat however long the chain.
 */
static _Thread_local struct aq_future *settle_queue;
static _Thread_local bool settling;

static void deps_ready(struct aq_future *rec)
{
	if (settling) {
		rec->next_free = settle_queue; /* unused while in flight */
		settle_queue = rec;
		return;
	}
	settling = true;
	deps_settle(rec);
	while (settle_queue) {
		rec = settle_queue;
		settle_queue = rec->next_free;
		rec->next_free = NULL;
		deps_settle(rec);
	}
	settling = false;
}

static void deps_one_done(aq_future *dep, void *user)
{
	struct aq_future *rec = user;

	(void)dep;
	if (atomic_fetch_sub(&rec->deps_left, 1) == 1)
		deps_ready(rec);
}

int aq__deps_attach(struct aq_future *rec, aq_future *const *after,
		    unsigned count)
{
	struct aq__then *nodes[AQ_AFTER_MAX];
	unsigned i;

	rec->deps = aq__calloc(count, sizeof(*rec->deps));
	if (!rec->deps)
		return -ENOMEM;
	for (i = 0; i < count; i++) {
		nodes[i] = aq__malloc(sizeof(*nodes[i]));
		if (!nodes[i])
			break;
	}
	if (i < count) {
		while (i--)
			free(nodes[i]);
		free(rec->deps);
		rec->deps = NULL;
		return -ENOMEM;
	}
	atomic_store_explicit(&rec->state, AQ_STATE_WAITING,
			      memory_order_relaxed);
	atomic_init(&rec->deps_left, count + 1);
	rec->ndeps = count;
	for (i = 0; i < count; i++) {
		/* Relaxed: the caller's reference keeps it alive meanwhile. */
		atomic_fetch_add_explicit(&after[i]->refs, 1,
					  memory_order_relaxed);
		rec->deps[i] = after[i];
		nodes[i]->fn = deps_one_done;
		nodes[i]->user = rec;
		nodes[i]->channel = NULL;
		aq__future_then_node(after[i], nodes[i]);
	}
	return 0;
}

void aq__deps_arm(struct aq_future *rec)
{
	if (atomic_fetch_sub(&rec->deps_left, 1) == 1)
		deps_ready(rec);
}
