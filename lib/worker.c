/* SPDX-License-Identifier: MIT */
/*
 * worker.c - the worker loop: take a job (from the ring, or from the
 * scheduler), run it, settle its outcome, park when there is nothing to
 * do; and the entry points through which a waiting job (help.c) or a
 * submitting one (submit.c) runs other jobs on its own stack.
 *
 * Parking is the eventcount of park.h, with wake_seq as the word and the
 * low bits of `idle` as the waiter count:
 *
 *   worker:  key = wake_seq; waking = 0; idle++;
 *            if ring empty and open: sleep(wake_seq, key)
 *            idle--; waking = 0
 *   submit:  claim a ring slot; if idle > 0 and !waking: waking = 1,
 *            wake_seq++, wake(wake_seq, 1)            (aq__pool_wake_one)
 *
 * Either the worker sees the job and does not park, or the submitter sees
 * the idle worker and wakes it (park.h says why). `waking` keeps a burst
 * of submits from making a system call each: only one wake is in flight
 * at a time, and the woken worker, once it has taken a job, wakes another
 * if work and idle workers remain (a chain, as Go's scheduler does with
 * spinning threads). A worker clears `waking` before it goes idle and
 * again when it leaves, so a wake spent on a worker that had already
 * found work cannot leave the flag set and later sleepers unwakeable.
 * Liveness: while a job is in the ring, some worker is awake and will
 * take it, because a worker re-checks the ring after raising idle.
 *
 * A worker exits only when the ring is closed and every claimed slot has
 * been consumed (and the scheduler holds nothing), so no accepted job is
 * stranded by shutdown.
 *
 * Deques (deque.c): in a pool without a scheduler, a job that submits a
 * job of its own pool pushes it on its worker's deque, not on the ring.
 * A worker takes work from its own deque first (newest first), then from
 * the ring, then steals (oldest first) from the other workers' deques, and
 * only then spins and parks. A deque push is a condition change of the
 * parking eventcount like a ring claim: the pusher orders its publishing
 * before its read of idle (aq__steal_push_local()), and a parking worker
 * re-checks every deque (seq_cst) after raising idle; so a job in a
 * deque, too, always has an awake worker that will find it (steal.c says
 * how the pusher's fence is mostly paid by the parker). A
 * worker's own deque is empty whenever it is idle, retires or exits (it
 * takes from it first, and nobody else pushes on it), so shutdown and
 * retirement strand nothing there either.
 */
#include <errno.h>
#include <sched.h>
#include <stdlib.h>

#include "cache.h"
#include "clock.h"
#include "current.h"
#include "future.h"
#include "job.h"
#include "park.h"
#include "pool.h"
#include "run.h"
#include "scheduler.h"
#include "steal.h"
#include "threads.h"
#include "trace.h"
#include "worker.h"

/* A parked worker's sleep when aq__steal_park_fence() failed. */
#define WORKER_NAP_NS 1000000

/* Looks at an item claimed but not yet published before a worker yields
 * its core to the producer (see aq__worker_loop()): about a microsecond. */
#define WORKER_STALL_YIELD 32

/* The ring is closed and, with a scheduler, the policy holds nothing. */
static bool pool_drained(struct aq_pool *pool)
{
	/* Relaxed: once the ring is closed and drained, sched_held only
	 * falls, and it was last written under sched_lock, which this worker
	 * took after the writer (in its last aq__sched_next()). */
	return aq__ring_drained(&pool->ring) &&
	       (!pool->sched ||
		atomic_load_explicit(&pool->sched_held, memory_order_relaxed) ==
			0);
}

/*
 * One call of a fire-and-forget job: no record, so its whole context is
 * the running gauge, set to AQ__RUNNING_INLINE (which is also how
 * aq_current_* know they are in one), and the call count for
 * aq_current_yield_due(). The current record is already NULL: every call
 * leaves it so (aq__current_leave(), aq__current_save()). The depth is
 * left alone: only timing reads it, and a pool with timing on has no
 * fire-and-forget items (every job gets a record, pool->record_always).
 * *ignored is never read.
 */
static inline int inline_call(struct aq__ring_item item)
{
	struct aq__stats *st = aq__current.stats;
	void *ignored;
	int rc;

	aq__current.calls++;
	/* Relaxed, as in aq__current_enter(). */
	atomic_store_explicit(&st->running, AQ__RUNNING_INLINE,
			      memory_order_relaxed);
	rc = item.fn(item.arg, &ignored);
	atomic_store_explicit(&st->running, AQ__RUNNING_NONE,
			      memory_order_relaxed);
	return rc;
}

/*
 * A fire-and-forget call ended with rc other than 0: count a failure, or
 * queue a yielded job again (calling it again while that is impossible).
 * Out of line, so that the common case in worker_run() stays small.
 */
static __attribute__((noinline)) void
worker_inline_rest(struct aq_pool *pool, struct aq__ring_item item, int rc)
{
	/* Without a record a yielded job cannot tell a resumed call from a
	 * first one, so it counts as started when it ends, not before. */
	for (;;) {
		if (rc != AQ_YIELD) {
			aq__stat_add(&aq__current.stats->started, 1, false);
			aq__stat_add(rc == 0 ? &aq__current.stats->succeeded
					     : &aq__current.stats->failed,
				     1, false);
			AQ__TRACE(finish, pool, (uint64_t)0,
				  rc == 0 ? AQ_STATE_SUCCEEDED
					  : AQ_STATE_FAILED,
				  rc > 0    ? rc
				  : rc == 0 ? 0
					    : EINVAL);
			return;
		}
		if (aq__run_requeue(pool, item))
			return;
		/* Ring full or closed: call it again, unless cancelling (then
		 * it stops here, as a cancelled job). Relaxed, as in
		 * worker_run(). */
		if (atomic_load_explicit(&pool->cancelling,
					 memory_order_relaxed)) {
			aq__stat_add(&aq__current.stats->started, 1, false);
			aq__stat_add(&aq__current.stats->cancelled, 1, false);
			AQ__TRACE(finish, pool, (uint64_t)0, AQ_STATE_CANCELLED,
				  0);
			return;
		}
		AQ__TRACE(start, pool, (uint64_t)0, item.fn, 1u);
		rc = inline_call(item);
	}
}

/*
 * Run one item taken from the ring or the scheduler; cancel: a cancelling
 * shutdown was seen. The common case, a fire-and-forget job that succeeds,
 * is the whole of it: the call and one counter (ran_ok, see stats.h).
 * Always inlined, as worker_run(): the probes' asm (trace.h) looks big to
 * the inliner, and a call here would cost the fire-and-forget path a score
 * of instructions.
 */
static inline __attribute__((always_inline)) void
worker_run_as(struct aq_pool *pool, struct aq__ring_item item, bool cancel,
	      bool sched)
{
	int rc;

	if (AQ__UNLIKELY(!item.fn)) {
		if (sched)
			aq__run_record(pool, item.arg, cancel, true);
		else
			aq__run_record_fifo(pool, item.arg, cancel);
		return;
	}
	if (AQ__UNLIKELY(cancel)) {
		aq__stat_add(&aq__current.stats->cancelled, 1, false);
		AQ__TRACE(finish, pool, (uint64_t)0, AQ_STATE_CANCELLED, 0);
		return;
	}
	AQ__TRACE(start, pool, (uint64_t)0, item.fn, 1u);
	rc = inline_call(item);
	if (AQ__LIKELY(rc == 0)) {
		aq__stat_add(&aq__current.stats->ran_ok, 1, false);
		AQ__TRACE(finish, pool, (uint64_t)0, AQ_STATE_SUCCEEDED, 0);
	} else {
		worker_inline_rest(pool, item, rc);
	}
}

static inline __attribute__((always_inline)) void
worker_run(struct aq_pool *pool, struct aq__ring_item item)
{
	/* Relaxed: a cancelling shutdown is advisory per item; items taken
	 * before the flag is seen simply run, as they would have anyway. */
	worker_run_as(
		pool, item,
		atomic_load_explicit(&pool->cancelling, memory_order_relaxed),
		pool->sched != NULL);
}

/* pop_attn was not 0 after a pop: wake blocked producers, consider
 * growing, and say whether a cancelling shutdown is under way. */
static __attribute__((noinline)) bool worker_attend(struct aq_pool *pool,
						    uint32_t attn)
{
	if (attn & AQ__ATTN_WAITERS)
		aq__pool_space_freed(pool);
	if (attn & AQ__ATTN_ELASTIC)
		aq__threads_maybe_grow(pool);
	return attn & AQ__ATTN_CANCEL;
}

/*
 * A FIFO pool's worker that found work stays here while the ring has more:
 * pop, one look at pop_attn (blocked producers, growth, cancel: usually 0),
 * run. That is the whole per-job cost of a fire-and-forget job on the
 * worker side; the chained wake, the scheduler test and the retire check
 * of the outer loop are paid once per burst, not once per job.
 */
static void worker_burst(struct aq_pool *pool)
{
	struct aq__ring_item item;

	while (aq__ring_pop(&pool->ring, &item)) {
		/* seq_cst: the read half of the full-ring handshake, as in
		 * aq__pool_freed_slot(). */
		uint32_t attn = atomic_load(&pool->pop_attn);

		worker_run_as(pool, item,
			      AQ__UNLIKELY(attn) && worker_attend(pool, attn),
			      false);
	}
}

/*
 * The next item for this worker: from its own deque (newest first), the
 * ring, or another worker's deque (oldest first); or from the scheduler,
 * whose pools have no deques.
 */
static inline bool worker_take(struct aq_pool *pool, struct aq__ring_item *item)
{
	if (!pool->sched) {
		if (aq__worker_deque && aq__deque_take(aq__worker_deque, item))
			return true;
		if (aq__ring_pop(&pool->ring, item)) {
			aq__pool_freed_slot(pool);
			return true;
		}
		return aq__steal_one(pool, item);
	}
	item->fn = NULL;
	item->arg = aq__sched_next(pool);
	return item->arg != NULL;
}

/*
 * Park until a submit, a completion or shutdown wakes us. Returns 1,
 * without sleeping, when it found an item after announcing itself idle;
 * -ETIMEDOUT when an elastic pool's idle timeout ran out; else 0.
 */
static int worker_park(struct aq_pool *pool, struct aq__ring_item *item)
{
	/* In an elastic pool an idle worker waits only so long, then asks
	 * (under the lock) whether it may retire. */
	int64_t deadline =
		atomic_load_explicit(&pool->max_workers, memory_order_relaxed) >
				atomic_load_explicit(&pool->min_workers,
						     memory_order_relaxed)
			? aq__deadline(pool->idle_timeout_ns)
			: -1;
	uint32_t key = aq__ec_key(&pool->wake_seq);
	bool found = false;
	int rc = 0;

	/*
	 * Clear `waking` before counting ourselves idle (both seq_cst). A
	 * wake may have been spent on a worker that had already found work,
	 * leaving the flag set with nobody coming to clear it; a submitter
	 * that still reads 1 here read it before our clear, so its push came
	 * before our ring check below and we will see its job.
	 */
	aq__steal_idle_chores(pool);
	atomic_store(&pool->waking, 0);
	aq__ec_enter(&pool->idle);
	/* With a scheduler, a job a cap held back may have become runnable:
	 * try the policy itself (its lock orders us with aq__sched_done()). */
	if (pool->sched)
		found = worker_take(pool, item);
	/* The parker's half of the deque pushes' fence (steal.c). */
	else if (!aq__steal_park_fence(pool))
		deadline = aq__deadline(WORKER_NAP_NS);
	/* The condition re-check: the ring's and the deques' loads are
	 * seq_cst; a closed ring means shutdown: go back and see whether it
	 * is drained. So does one worker too many: a resize that lowered
	 * max_workers after our look at it and signalled before our key is
	 * seen here (relaxed loads: the key's acquire pairs with the
	 * signal's release, which follows the store of max_workers). */
	if (!found && !aq__steal_visible(pool) &&
	    !(atomic_load(&pool->ring.tail) & AQ__RING_CLOSED) &&
	    atomic_load_explicit(&pool->nlive, memory_order_relaxed) <=
		    atomic_load_explicit(&pool->max_workers,
					 memory_order_relaxed)) {
		AQ__TRACE(park, pool);
		rc = aq__ec_commit(&pool->wake_seq, key, deadline);
		AQ__TRACE(wake, pool, rc);
	}
	aq__ec_leave(&pool->idle);
	/* Relaxed: `waking` is a hint that saves system calls; clearing it
	 * can only cause an extra wake, never a missed one. */
	if (atomic_load_explicit(&pool->waking, memory_order_relaxed))
		atomic_store_explicit(&pool->waking, 0, memory_order_relaxed);
	return found ? 1 : rc;
}

void aq__worker_run_claimable(struct aq_pool *pool, struct aq_future *rec)
{
	struct aq__current_saved saved = aq__current_save();

	/* Our own reference: the queue's copy keeps the pool's, and drops
	 * it when it reaches the record and finds it taken. */
	atomic_fetch_add_explicit(&rec->refs, 1, memory_order_relaxed);
	/* Taken from the queue, if by a waiter: under a cancelling shutdown
	 * it is cancelled, not run, as a worker would. Relaxed, as in
	 * worker_run(). */
	aq__run_record(
		pool, rec,
		atomic_load_explicit(&pool->cancelling, memory_order_relaxed),
		false);
	aq__current_restore(&saved);
}

void aq__worker_run_unqueued(struct aq_pool *pool, struct aq_future *rec)
{
	struct aq__current_saved saved = aq__current_save();

	/* Accepted without a ring push: counted as off the ring, first (see
	 * AQ__STAT_SHARED()), in this worker's own block. */
	aq__stat_add(&aq__current.stats->off_ring, 1, false);
	/* Not popped: a policy never held it, so it hears no done().
	 * Relaxed, as in worker_run(). */
	aq__run_record(
		pool, rec,
		atomic_load_explicit(&pool->cancelling, memory_order_relaxed),
		false);
	aq__current_restore(&saved);
}

bool aq__worker_run_own(struct aq_pool *pool, struct aq_future *rec)
{
	struct aq__ring_item item;
	struct aq__current_saved saved;

	if (!aq__worker_deque || !aq__deque_peek(aq__worker_deque, &item) ||
	    item.fn || item.arg != rec ||
	    !aq__deque_take(aq__worker_deque, &item))
		return false;
	/* Only the owner takes at the bottom, so what it took is what it
	 * peeked at; the deque's reference comes with it. */
	saved = aq__current_save();
	worker_run(pool, item);
	aq__current_restore(&saved);
	return true;
}

bool aq__worker_help(struct aq_pool *pool)
{
	struct aq__ring_item item;
	struct aq__current_saved saved;

	if (!worker_take(pool, &item))
		return false;
	saved = aq__current_save();
	worker_run(pool, item);
	aq__current_restore(&saved);
	return true;
}

void aq__worker_loop(struct aq_pool *pool, unsigned index)
{
	bool just_woken = false;
	unsigned stalled = 0; /* looks in a row at a claimed, unready item */

	aq__worker_pool = pool;
	aq__worker_deque = aq__steal_deque_get(pool, index);
	aq__cache_bind(pool->cache);
	for (;;) {
		struct aq__ring_item item;
		int spins, parked;

		if (worker_take(pool, &item)) {
			stalled = 0;
			if (just_woken) {
				/* Chain: more work and idle workers left? With
				 * a scheduler the work may have just moved from
				 * the ring into the policy. Relaxed: a hint. */
				just_woken = false;
				if (aq__steal_visible(pool) ||
				    (pool->sched &&
				     atomic_load_explicit(
					     &pool->sched_held,
					     memory_order_relaxed)))
					aq__pool_wake_one(pool);
			}
			aq__threads_maybe_grow(pool);
			worker_run(pool, item);
			if (!pool->sched)
				worker_burst(pool);
			continue;
		}
		if (pool_drained(pool))
			break;
		/* Idle: one too many after a resize? */
		if (AQ__UNLIKELY(atomic_load_explicit(&pool->nlive,
						      memory_order_relaxed) >
				 atomic_load_explicit(&pool->max_workers,
						      memory_order_relaxed)) &&
		    aq__threads_try_retire(
			    pool, index,
			    atomic_load_explicit(&pool->max_workers,
						 memory_order_relaxed)))
			break;
		spins = aq__steal_spin(pool);
		if (spins >= 0) {
			/*
			 * An item is there at once but could not be taken: a
			 * producer has claimed its slot and not yet written
			 * it. That takes nanoseconds, unless the producer was
			 * preempted in between; then, with more threads than
			 * cores, it may need our core to finish, and spinning
			 * here until our time slice ends would keep it
			 * waiting. So after a few such looks, yield.
			 */
			if (spins == 0 && ++stalled >= WORKER_STALL_YIELD) {
				stalled = 0;
				sched_yield();
			}
			continue;
		}
		parked = worker_park(pool, &item);
		if (parked > 0) {
			worker_run(pool, item);
		} else if (parked == -ETIMEDOUT &&
			   aq__threads_try_retire(
				   pool, index,
				   atomic_load_explicit(
					   &pool->min_workers,
					   memory_order_relaxed))) {
			break; /* idle too long in an elastic pool */
		} else {
			just_woken = true;
		}
	}
	aq__cache_unbind(); /* before the pool closes it */
	aq__worker_deque = NULL;
	aq__worker_pool = NULL;
}
