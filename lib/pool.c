/* SPDX-License-Identifier: MIT */
/*
 * pool.c - the worker threads and the pool's lifecycle: create, the worker
 * loop, parking and waking, shutdown (drain or cancel) and destroy.
 *
 * Parking protocol. A worker that finds the ring empty spins briefly, then
 * parks on the futex word wake_seq:
 *
 *   worker:  seq = wake_seq; waking = 0; idle++;
 *            if ring empty and open: wait(wake_seq, seq)
 *            idle--; waking = 0
 *   submit:  claim a ring slot; if idle > 0 and !waking: waking = 1,
 *            wake_seq++, wake(wake_seq, 1)
 *
 * The worker's idle++ and its read of the ring's claim counters, and the
 * submitter's claim and its read of idle, are all seq_cst, so at least one
 * side sees the other (Dekker): either the worker sees the job and does not
 * park, or the submitter sees the idle worker and wakes it. A worker that
 * read wake_seq before a wake finds the word changed and does not sleep.
 *
 * `waking` keeps a burst of submits from making a system call each: only
 * one wake is in flight at a time, and the woken worker, once it has taken
 * a job, wakes another if work and idle workers remain (a chain, as Go's
 * scheduler does with spinning threads). A worker clears `waking` before it
 * goes idle and again when it leaves, so a wake spent on a worker that had
 * already found work cannot leave the flag stuck and later sleepers
 * unwakeable.
 * Liveness: while a job is in the ring, some worker is awake and will take
 * it, because a worker re-checks the ring after raising idle.
 *
 * Shutdown closes the ring (producers get -ESHUTDOWN from then on), wakes
 * every worker, and joins them; a worker exits only when the ring is closed
 * and every claimed slot has been consumed, so no accepted job is stranded.
 */
#include <errno.h>
#include <sched.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "fault.h"
#include "pool.h"
#include "retry.h"
#include "trace.h"
#include "scheduler.h"
#include "timer.h"

/* Idle polls of the ring before parking: ~ a few microseconds, which hides
 * the futex round trip when jobs arrive in quick succession. */
#define WORKER_SPIN_ITERATIONS 256

/* Looks at an item claimed but not yet published before a worker yields
 * its core to the producer (see aq__worker_loop()): about a microsecond. */
#define WORKER_STALL_YIELD 32

/* The most free slots a blocked producer waits for (see aq_pool_create()). */
#define SPACE_WAKE_MAX 256

_Thread_local struct aq_pool *aq__worker_pool;

/* Per worker thread: which job call this is, and when the running job's
 * current time slice began (see aq_job_yield_due()). */
static _Thread_local uint64_t job_calls;
static _Thread_local uint64_t slice_call;
static _Thread_local int64_t slice_start_ns;
/* The record whose job this thread is running, if any (aq_job_attempt()
 * & co). A fire-and-forget job without one shows as the running gauge's
 * AQ__RUNNING_INLINE instead (in_inline_job()). */
static _Thread_local struct aq_future *current_rec;

/* Calls of job records nested on this thread's stack (a job that waits
 * runs others); only timing reads it (worker_call_timed()). */
static _Thread_local unsigned call_depth;

/* Is this thread inside a fire-and-forget job's own call? */
static inline bool in_inline_job(void)
{
	/* Relaxed: this worker's own gauge. */
	return aq__tls_stats &&
	       atomic_load_explicit(&aq__tls_stats->running,
				    memory_order_relaxed) == AQ__RUNNING_INLINE;
}

/*
 * What this thread is running. A job that waits may run other jobs on the
 * same stack (wait.c), and one that submits may run its child (submit.c);
 * the entry points for that, aq__worker_help(), aq__worker_run_claimable()
 * and aq__worker_run_unqueued(), save it first and restore it after, so
 * the outer job finds its own context again (aq_job_* answers, gauges,
 * its time slice). Plain calls only set and clear it.
 */
struct job_ctx {
	struct aq_future *rec;
	uint64_t id, slice_call;
	uint32_t running;
	int64_t slice_start;
};

/* Save the context and clear it for a nested call. */
static struct job_ctx ctx_save(void)
{
	/* Relaxed: the gauges are written by this worker only. */
	struct job_ctx saved = {
		.rec = current_rec,
		.id = atomic_load_explicit(&aq__tls_stats->current_id,
					   memory_order_relaxed),
		.running = atomic_load_explicit(&aq__tls_stats->running,
						memory_order_relaxed),
		.slice_call = slice_call,
		.slice_start = slice_start_ns,
	};

	/* The nested call starts from "no job", as a call from the worker
	 * loop does: inline_call() sets only what differs from that. */
	current_rec = NULL;
	atomic_store_explicit(&aq__tls_stats->current_id, 0,
			      memory_order_relaxed);
	return saved;
}

static void ctx_restore(const struct job_ctx *saved)
{
	current_rec = saved->rec;
	slice_call = saved->slice_call;
	slice_start_ns = saved->slice_start;
	/* Relaxed, as in ctx_save(). */
	atomic_store_explicit(&aq__tls_stats->current_id, saved->id,
			      memory_order_relaxed);
	atomic_store_explicit(&aq__tls_stats->running, saved->running,
			      memory_order_relaxed);
}

static inline void ctx_enter(struct aq_future *rec)
{
	current_rec = rec;
	job_calls++;
	call_depth++;
	/* Relaxed: gauges for readers, written by this worker only. */
	atomic_store_explicit(&aq__tls_stats->current_id, rec->id,
			      memory_order_relaxed);
	atomic_store_explicit(&aq__tls_stats->running, AQ__RUNNING_RECORD,
			      memory_order_relaxed);
}

static inline void ctx_leave(void)
{
	current_rec = NULL;
	call_depth--;
	/* Relaxed, as in ctx_enter(). current_id goes back to 0 so that a
	 * fire-and-forget call (inline_call()) need not store it. */
	atomic_store_explicit(&aq__tls_stats->current_id, 0,
			      memory_order_relaxed);
	atomic_store_explicit(&aq__tls_stats->running, 0,
			      memory_order_relaxed);
}


/* The ring is closed and, with a scheduler, the policy holds nothing. */
static bool pool_drained(struct aq_pool *pool)
{
	/* Relaxed: once the ring is closed and drained, sched_held only
	 * falls, and it was last written under sched_lock, which this worker
	 * took after the writer (in its last aq__sched_next()). */
	return aq__ring_drained(&pool->ring) &&
	       (!pool->sched || atomic_load_explicit(&pool->sched_held,
						     memory_order_relaxed) == 0);
}

/* A FIFO pool's job yielded: queue it again at the ring's tail. */
static bool requeue_on_ring(struct aq_pool *pool, struct aq__ring_item item)
{
	/* Counted first (see aq__stats_shared()); this worker's own block,
	 * so taking it back is a plain store too. */
	aq__stat_add(&aq__tls_stats->requeued, 1, false);
	if (aq__ring_push(&pool->ring, item) != 0) {
		aq__stat_add(&aq__tls_stats->requeued, UINT64_MAX, false);
		return false; /* full or closed: the caller runs it again */
	}
	aq__pool_wake_one(pool);
	return true;
}

/*
 * One call of a fire-and-forget job: no record, so its whole context is
 * the running gauge, set to AQ__RUNNING_INLINE (which is also how aq_job_*
 * know they are in one), and the call count for aq_job_yield_due().
 * current_rec and current_id are already NULL and 0: every call leaves
 * them so (ctx_leave(), ctx_save()). call_depth is left alone: only timing
 * reads it, and a pool with timing on has no fire-and-forget items (every
 * job gets a record, pool->record_always). *ignored is never read.
 */
static inline int inline_call(struct aq__ring_item item)
{
	struct aq__stats *st = aq__tls_stats;
	void *ignored;
	int rc;

	job_calls++;
	/* Relaxed, as in ctx_enter(). */
	atomic_store_explicit(&st->running, AQ__RUNNING_INLINE,
			      memory_order_relaxed);
	rc = item.fn(item.arg, &ignored);
	atomic_store_explicit(&st->running, 0, memory_order_relaxed);
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
			aq__stat_add(&aq__tls_stats->started, 1, false);
			aq__stat_add(rc == 0 ? &aq__tls_stats->succeeded
					     : &aq__tls_stats->failed,
				     1, false);
			AQ__TRACE(finish, pool, (uint64_t)0,
				  rc == 0 ? AQ_STATE_SUCCEEDED : AQ_STATE_FAILED,
				  rc > 0 ? rc : rc == 0 ? 0 : EINVAL);
			return;
		}
		if (requeue_on_ring(pool, item))
			return;
		/* Ring full or closed: call it again, unless cancelling (then
		 * it stops here, as a cancelled job). Relaxed, as in
		 * worker_run(). */
		if (atomic_load_explicit(&pool->cancelling,
					 memory_order_relaxed)) {
			aq__stat_add(&aq__tls_stats->started, 1, false);
			aq__stat_add(&aq__tls_stats->cancelled, 1, false);
			AQ__TRACE(finish, pool, (uint64_t)0,
				  AQ_STATE_CANCELLED, 0);
			return;
		}
		AQ__TRACE(start, pool, (uint64_t)0, item.fn, 1u);
		rc = inline_call(item);
	}
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
	aq__stats_time(aq__tls_stats, ev.wait_ns, ev.run_ns, call_depth == 1);
	if (rc == AQ_YIELD) {
		/* Its next wait starts now. (A policy sets it when the job
		 * goes back to it, under its lock: the record may still be
		 * queued there if a waiter ran it in place.) */
		if (!pool->sched)
			rec->enqueue_ns = end;
	} else {
		aq__stat_add(&aq__tls_stats->sojourn_ns,
			     (uint64_t)(end - rec->submit_ns), false);
		aq__stat_add(&aq__tls_stats->timed_done, 1, false);
	}
	return rc;
}

enum requeue { REQUEUED, RUN_AGAIN, GONE };

/* A yielded record goes back to the tail, or, if it cannot be queued, is
 * run again at once (RUN_AGAIN) unless a cancel took it (GONE). */
static enum requeue requeue_record(struct aq_pool *pool,
				   struct aq_future *rec, bool popped)
{
	/* Release: whoever claims it next (acquire) sees our writes. */
	atomic_store_explicit(&rec->state, AQ_STATE_PENDING,
			      memory_order_release);
	if (pool->sched) {
		/* Back to the policy; the pool keeps its reference. */
		aq__sched_done(pool, rec, true, popped);
		return REQUEUED;
	}
	if (requeue_on_ring(pool, (struct aq__ring_item){ NULL, rec }))
		return REQUEUED;
	/* Relaxed, as in worker_run(). */
	if (aq__future_claim(rec, atomic_load_explicit(&pool->cancelling,
						       memory_order_relaxed)))
		return RUN_AGAIN;
	aq__future_put(rec);
	return GONE;
}

/*
 * A job record, from the ring or from the scheduler: claim it, check its
 * deadline, call it (again, while it yields and cannot be queued), and
 * settle the outcome: success, cancellation, a retry, or failure.
 */
/* Kept out of line: the fire-and-forget path through worker_run() then
 * needs few registers and no big prologue. */
static __attribute__((noinline)) void
worker_run_record(struct aq_pool *pool, struct aq_future *rec, bool cancel,
		  bool popped)
{
	bool expired = false; /* its deadline passed before it started */
	void *result = NULL;
	int64_t now;
	int rc = 0;

	if (!aq__future_claim(rec, cancel)) {
		/* Cancelled before it ran; the scheduler still hears of it. */
		if (popped)
			aq__sched_done(pool, rec, false, true);
		aq__future_put(rec);
		return;
	}
	for (;;) {
		now = aq__pool_now(pool);
		if (!rec->yielded) {
			if (rec->deadline_ns && now >= rec->deadline_ns) {
				expired = true;
				break;
			}
			/* A new attempt (a yield only pauses one). */
			if (rec->attempt++ == 0) {
				rec->first_attempt_ns = now;
				aq__stat_add(&aq__tls_stats->started, 1, false);
			}
			rec->last_attempt_ns = now;
		}
		ctx_enter(rec);
		/* Relaxed: only this worker writes it now (future.h). */
		atomic_store_explicit(&rec->runs,
				      atomic_load_explicit(&rec->runs,
							   memory_order_relaxed) +
					      1,
				      memory_order_relaxed);
		result = NULL;
		AQ__TRACE(start, pool, rec->id, rec->fn, rec->attempt);
		if (pool->timing)
			rc = worker_call_timed(pool, rec, &result);
		else
			rc = rec->fn(rec->arg, &result);
		ctx_leave();
		rec->yielded = rc == AQ_YIELD;
		if (rc != AQ_YIELD)
			break;
		if (requeue_record(pool, rec, popped) != RUN_AGAIN)
			return;
	}

	/* The policy hears first: after a retry is scheduled the record may
	 * already be running on another worker. */
	if (popped)
		aq__sched_done(pool, rec, false, true);
	if (expired) {
		AQ__TRACE(expire, pool, rec->id, rec->deadline_ns);
		aq__future_finish(rec, AQ_STATE_EXPIRED, 0, NULL);
	} else if (rc == 0) {
		aq__future_finish(rec, AQ_STATE_SUCCEEDED, 0, result);
	} else if (rc == AQ_JOB_CANCELLED) {
		aq__future_finish(rec, AQ_STATE_CANCELLED, 0, NULL);
	} else {
		/* Negative returns are reserved: a contract error. */
		int code = rc > 0 ? rc : EINVAL;

		if (aq__retry_schedule(pool, rec, code))
			return; /* the timer (or a canceller) has it now */
		aq__retry_fail(rec, code, result);
	}
	aq__future_put(rec);
}

/*
 * Run one item taken from the ring or the scheduler; cancel: a cancelling
 * shutdown was seen. The common case, a fire-and-forget job that succeeds,
 * is the whole of it: the call and one counter (ran_ok, see stats.h).
 */
/* Always inlined, as worker_run(): the probes' asm (trace.h) looks big to
 * the inliner, and a call here would cost the fire-and-forget path a score
 * of instructions. */
static inline __attribute__((always_inline)) void
worker_run_as(struct aq_pool *pool, struct aq__ring_item item, bool cancel)
{
	int rc;

	if (aq_unlikely(!item.fn)) {
		worker_run_record(pool, item.arg, cancel, pool->sched != NULL);
		return;
	}
	if (aq_unlikely(cancel)) {
		aq__stat_add(&aq__tls_stats->cancelled, 1, false);
		AQ__TRACE(finish, pool, (uint64_t)0, AQ_STATE_CANCELLED, 0);
		return;
	}
	AQ__TRACE(start, pool, (uint64_t)0, item.fn, 1u);
	rc = inline_call(item);
	if (aq_likely(rc == 0)) {
		aq__stat_add(&aq__tls_stats->ran_ok, 1, false);
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
	worker_run_as(pool, item,
		      atomic_load_explicit(&pool->cancelling,
					   memory_order_relaxed));
}

/* pop_attn was not 0 after a pop: wake blocked producers, consider
 * growing, and say whether a cancelling shutdown is under way. */
static __attribute__((noinline)) bool worker_attend(struct aq_pool *pool,
						    uint32_t attn)
{
	if (attn & AQ__ATTN_WAITERS)
		aq__pool_space_freed(pool);
	if (attn & AQ__ATTN_ELASTIC)
		aq__pool_maybe_grow(pool);
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
			      aq_unlikely(attn) && worker_attend(pool, attn));
	}
}

/* The next item for this worker, from the ring or the scheduler. */
static inline bool worker_take(struct aq_pool *pool,
			       struct aq__ring_item *item)
{
	if (!pool->sched) {
		if (!aq__ring_pop(&pool->ring, item))
			return false;
		aq__pool_freed_slot(pool);
		return true;
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
	/* Acquire: pairs with the waker's release increment. */
	uint32_t seq = atomic_load_explicit(&pool->wake_seq,
					    memory_order_acquire);
	/* In an elastic pool an idle worker waits only so long, then asks
	 * (under the lock) whether it may retire. */
	int64_t deadline =
		atomic_load_explicit(&pool->max_workers, memory_order_relaxed) >
				atomic_load_explicit(&pool->min_workers,
						     memory_order_relaxed)
			? aq__deadline(pool->idle_timeout_ns)
			: -1;
	bool found = false;
	int rc = 0;

	/*
	 * Clear `waking` before announcing ourselves idle (both seq_cst). A
	 * wake may have been spent on a worker that had already found work,
	 * leaving the flag set with nobody coming to clear it; a submitter
	 * that still reads 1 here read it before our clear, so its push came
	 * before our ring check below and we will see its job.
	 */
	atomic_store(&pool->waking, 0);
	atomic_fetch_add(&pool->idle, 1); /* seq_cst: handshake store half */
	/* With a scheduler, a job a cap held back may have become runnable:
	 * try the policy itself (its lock orders us with aq__sched_done()). */
	if (pool->sched)
		found = worker_take(pool, item);
	/* ring_nonempty is seq_cst (handshake read half); a closed ring means
	 * shutdown: go back and see whether it is drained. */
	if (!found && !aq__ring_nonempty(&pool->ring) &&
	    !(atomic_load(&pool->ring.tail) & AQ_RING_CLOSED)) {
		AQ__TRACE(park, pool);
		rc = aq__park_wait(&pool->wake_seq, seq, deadline);
		AQ__TRACE(wake, pool, rc);
	}
	atomic_fetch_sub(&pool->idle, 1);
	/* Relaxed: `waking` is a hint that saves system calls; clearing it
	 * can only cause an extra wake, never a missed one. */
	if (atomic_load_explicit(&pool->waking, memory_order_relaxed))
		atomic_store_explicit(&pool->waking, 0, memory_order_relaxed);
	return found ? 1 : rc;
}

void aq__worker_run_claimable(struct aq_pool *pool, struct aq_future *rec)
{
	struct job_ctx saved = ctx_save();

	/* Our own reference: the queue's copy keeps the pool's, and drops
	 * it when it reaches the record and finds it taken. */
	atomic_fetch_add_explicit(&rec->refs, 1, memory_order_relaxed);
	/* Taken from the queue, if by a waiter: under a cancelling shutdown
	 * it is cancelled, not run, as a worker would. Relaxed, as in
	 * worker_run(). */
	worker_run_record(pool, rec,
			  atomic_load_explicit(&pool->cancelling,
					       memory_order_relaxed),
			  false);
	ctx_restore(&saved);
}

struct aq_future *aq__current_job(void)
{
	return current_rec;
}

void aq__worker_run_unqueued(struct aq_pool *pool, struct aq_future *rec)
{
	struct job_ctx saved = ctx_save();

	/* Accepted without a ring push: counted as off the ring, first (see
	 * aq__stats_shared()), in this worker's own block. */
	aq__stat_add(&aq__tls_stats->off_ring, 1, false);
	/* Not popped: a policy never held it, so it hears no done().
	 * Relaxed, as in worker_run(). */
	worker_run_record(pool, rec, atomic_load_explicit(&pool->cancelling,
							  memory_order_relaxed),
			  false);
	ctx_restore(&saved);
}

bool aq__worker_help(struct aq_pool *pool)
{
	struct aq__ring_item item;
	struct job_ctx saved;

	if (!worker_take(pool, &item))
		return false;
	saved = ctx_save();
	worker_run(pool, item);
	ctx_restore(&saved);
	return true;
}

/*
 * An elastic pool under backlog: work waits, nobody is idle, and there is
 * room for another worker. Two relaxed loads on the common path; the
 * decision is re-checked under the lock.
 */
void aq__pool_grow(struct aq_pool *pool)
{
	pthread_mutex_lock(&pool->lock);
	if (pool->phase == AQ__POOL_RUNNING &&
	    pool->live < atomic_load_explicit(&pool->max_workers,
					      memory_order_relaxed))
		aq__threads_spawn(pool, pool->live + 1); /* best effort */
	pthread_mutex_unlock(&pool->lock);
	aq__threads_reap(pool);
}

void aq__worker_loop(struct aq_pool *pool, unsigned index)
{
	bool just_woken = false;
	unsigned stalled = 0; /* looks in a row at a claimed, unready item */

	aq__worker_pool = pool;
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
				if (aq__ring_nonempty(&pool->ring) ||
				    (pool->sched &&
				     atomic_load_explicit(&pool->sched_held,
							  memory_order_relaxed)))
					aq__pool_wake_one(pool);
			}
			aq__pool_maybe_grow(pool);
			worker_run(pool, item);
			if (!pool->sched)
				worker_burst(pool);
			continue;
		}
		if (pool_drained(pool))
			break;
		/* Idle: one too many after a resize? */
		if (aq_unlikely(atomic_load_explicit(&pool->nlive,
						     memory_order_relaxed) >
				atomic_load_explicit(&pool->max_workers,
						     memory_order_relaxed)) &&
		    aq__threads_try_retire(
			    pool, index,
			    atomic_load_explicit(&pool->max_workers,
						 memory_order_relaxed)))
			break;
		for (spins = 0; spins < WORKER_SPIN_ITERATIONS; spins++) {
			aq__cpu_relax();
			if (aq__ring_nonempty(&pool->ring))
				break;
		}
		if (spins < WORKER_SPIN_ITERATIONS) {
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
				   atomic_load_explicit(&pool->min_workers,
							memory_order_relaxed))) {
			break; /* idle too long in an elastic pool */
		} else {
			just_woken = true;
		}
	}
	aq__worker_pool = NULL;
}

AQ_API int aq_job_yield_due(void)
{
	struct aq_pool *pool = aq__worker_pool;
	int64_t now;

	/* Only inside a job's own call: not in its arg_destroy or a hook. */
	if (!pool || (!current_rec && !in_inline_job()))
		return 0;
	now = aq__now_ns();
	if (slice_call != job_calls) {
		/* First look in this call of the job: its slice starts now. */
		slice_call = job_calls;
		slice_start_ns = now;
		return 0;
	}
	if (now - slice_start_ns < pool->slice_ns)
		return 0;
	/* Relaxed: a hint; a stale answer costs one slice at most. */
	return aq__ring_nonempty(&pool->ring) ||
	       atomic_load_explicit(&pool->sched_held, memory_order_relaxed);
}

/* Close the ring and wake everyone who may be asleep. Under pool->lock. */
static void pool_begin_stop(struct aq_pool *pool)
{
	pool->phase = AQ__POOL_STOPPING;
	aq__ring_close(&pool->ring);
	/* Release increments, as in the wake paths: sleepers see the close. */
	atomic_fetch_add_explicit(&pool->wake_seq, 1, memory_order_release);
	aq__park_wake(&pool->wake_seq, INT32_MAX);
	atomic_fetch_add_explicit(&pool->space_seq, 1, memory_order_release);
	aq__park_wake(&pool->space_seq, INT32_MAX);
}

static int64_t default_clock(void *user)
{
	(void)user;
	return aq__now_ns();
}

static void pool_free(struct aq_pool *pool)
{
	aq__timer_fini(pool);
	aq__sched_fini(pool);
	aq__ring_fini(&pool->ring);
	if (pool->cache)
		aq__cache_close(pool->cache);
	aq__threads_fini(pool);
	pthread_cond_destroy(&pool->stopped_cond);
	pthread_cond_destroy(&pool->timers_cond);
	pthread_mutex_destroy(&pool->stats_lock);
	free(pool->shared_stats);
	pthread_mutex_destroy(&pool->lock);
	pthread_mutex_destroy(&pool->sched_lock);
	free(pool);
}

AQ_API int aq_pool_create(aq_pool **poolp, const struct aq_pool_config *cfg)
{
	static const struct aq_pool_config defaults;
	struct aq_pool *pool;
	unsigned initial = 0;
	void *mem;
	int rc;

	if (!poolp)
		return -EINVAL;
	if (!cfg)
		cfg = &defaults;
	if (cfg->workers > AQ_WORKERS_MAX ||
	    cfg->queue_capacity > AQ_QUEUE_CAPACITY_MAX ||
	    (cfg->flags & ~(AQ_POOL_BLOCK | AQ_POOL_TIMING)) ||
	    cfg->slice_ns < 0 ||
	    (cfg->clock && !cfg->clock->now) ||
	    (cfg->retry && !aq__retry_policy_valid(cfg->retry)))
		return -EINVAL;

	/* The pool holds cache-aligned members, so align the allocation. */
	if (aq__fault(AQ_FAULT_ALLOC) ||
	    posix_memalign(&mem, AQ_CACHE_LINE, sizeof(*pool)))
		return -ENOMEM;
	pool = memset(mem, 0, sizeof(*pool));
	pthread_mutex_init(&pool->lock, NULL);
	{
		pthread_condattr_t attr;

		/* Timed shutdown waits on the monotonic clock. */
		pthread_condattr_init(&attr);
		pthread_condattr_setclock(&attr, CLOCK_MONOTONIC);
		pthread_cond_init(&pool->stopped_cond, &attr);
		pthread_cond_init(&pool->timers_cond, &attr);
		pthread_condattr_destroy(&attr);
	}
	pthread_mutex_init(&pool->sched_lock, NULL);
	pthread_mutex_init(&pool->stats_lock, NULL);
	pool->window.t_ns = aq__now_ns(); /* the first window starts now */
	pool->before_job = cfg->before_job;
	pool->after_job = cfg->after_job;
	pool->hook_user = cfg->hook_user;
	pool->timing = (cfg->flags & AQ_POOL_TIMING) || cfg->before_job ||
		       cfg->after_job;
	aq__timer_init(&pool->timer);
	atomic_init(&pool->accepting, true);
	pool->clock.now = default_clock;
	if (cfg->clock)
		pool->clock = *cfg->clock;
	if (cfg->retry) {
		pool->retry_default = *cfg->retry;
		pool->has_retry = true;
	}
	pool->phase = AQ__POOL_RUNNING;
	pool->flags = cfg->flags;
	pool->block_timeout_ns = cfg->block_timeout_ns;
	pool->slice_ns = cfg->slice_ns > 0 ? cfg->slice_ns : 1000000;
	rc = aq__ring_init(&pool->ring, cfg->queue_capacity
						? cfg->queue_capacity
						: AQ_QUEUE_CAPACITY_DEFAULT);
	/*
	 * Producers blocked on a full ring are woken once this many slots
	 * are free, not after every pop: a wake is a system call on the
	 * worker's side and a context switch on theirs, which, paid per job,
	 * made a blocking submit four times slower than a retried one. A
	 * quarter of the ring, at most SPACE_WAKE_MAX: a woken producer gets
	 * a run of submits, and waits at most that many jobs longer than a
	 * wake per slot would make it. Liveness: once a producer sleeps on a
	 * full ring, every later pop looks, and the one that leaves the
	 * threshold free wakes it (producers that keep refilling the ring
	 * meanwhile hold it off, as they would hold off any submit).
	 */
	if (rc == 0) {
		uint32_t quarter = aq__ring_capacity(&pool->ring) / 4;

		pool->space_wake_free = quarter < 1		 ? 1
					: quarter > SPACE_WAKE_MAX ? SPACE_WAKE_MAX
								   : quarter;
	}
	if (rc == 0) {
		void *mem;

		pool->cache = aq__cache_create();
		if (!pool->cache ||
		    aq__fault(AQ_FAULT_ALLOC) ||
		    posix_memalign(&mem, AQ_CACHE_LINE, sizeof(struct aq__stats)))
			rc = -ENOMEM;
		else
			pool->shared_stats = memset(mem, 0,
						    sizeof(struct aq__stats));
	}
	if (rc == 0) {
		rc = aq__threads_init(pool, cfg); /* initial count, or -errno */
		initial = rc > 0 ? (unsigned)rc : 0;
		rc = rc > 0 ? 0 : rc;
	}
	if (rc == 0)
		rc = aq__sched_init(pool, cfg);
	pool->record_always = pool->sched || pool->has_retry || pool->timing;
	aq__pool_set_elastic(pool);
	atomic_store_explicit(&pool->fast_submit, !pool->record_always,
			      memory_order_relaxed);
	if (rc == 0) {
		pthread_mutex_lock(&pool->lock);
		rc = aq__threads_spawn(pool, initial);
		if (rc)
			pool_begin_stop(pool); /* the started ones exit */
		pthread_mutex_unlock(&pool->lock);
		if (rc)
			aq__threads_join_all(pool, -1);
	}
	if (rc) {
		pool_free(pool);
		return rc;
	}
	*poolp = pool;
	return 0;
}

void aq__pool_timer_user_done(struct aq_pool *pool)
{
	pthread_mutex_lock(&pool->lock);
	if (--pool->timer_users == 0)
		pthread_cond_broadcast(&pool->timers_cond);
	pthread_mutex_unlock(&pool->lock);
}

/* pthread_cond_timedwait on a monotonic condition variable, with the
 * library's deadline convention (negative: none). */
static int cond_wait_until(pthread_cond_t *cond, pthread_mutex_t *lock,
			   int64_t deadline)
{
	struct timespec ts;

	if (deadline < 0)
		return pthread_cond_wait(cond, lock);
	ts.tv_sec = deadline / 1000000000;
	ts.tv_nsec = deadline % 1000000000;
	return pthread_cond_timedwait(cond, lock, &ts);
}

/* Wait until no outside thread is working on one of our records. */
static int pool_wait_ext(struct aq_pool *pool, int64_t deadline)
{
	uint32_t n;

	/* seq_cst: the last look that aq_future_cancel() reasons about. */
	while ((n = atomic_load(&pool->cache->claims)) != 0)
		if (aq__park_wait(&pool->cache->claims, n, deadline) ==
		    -ETIMEDOUT)
			return -ETIMEDOUT;
	return 0;
}

/*
 * The joiner's part: wait for timer users, close the ring, join the
 * workers and the timer thread, wait for outside claims. Called with the
 * lock held and pool->joining set; returns with the lock held. On a
 * timeout the pool keeps stopping and another call can take over.
 */
static int pool_stop(struct aq_pool *pool, int64_t deadline)
{
	int rc = 0;

	/*
	 * Delayed jobs and retries come back through the ring, so it stays
	 * open until none is left: when draining they run at their time;
	 * when cancelling the timer thread and the workers cancel them.
	 */
	while (pool->timer_users && rc != ETIMEDOUT)
		rc = cond_wait_until(&pool->timers_cond, &pool->lock,
				     deadline);
	if (pool->timer_users)
		return -ETIMEDOUT;
	if (pool->phase == AQ__POOL_RUNNING)
		pool_begin_stop(pool);
	pthread_mutex_unlock(&pool->lock);

	rc = aq__threads_join_all(pool, deadline);
	if (rc == 0) {
		aq__timer_stop(pool);
		rc = pool_wait_ext(pool, deadline);
	}
	pthread_mutex_lock(&pool->lock);
	return rc;
}

AQ_API int aq_pool_shutdown_timed(aq_pool *pool, unsigned flags,
				  int64_t timeout_ns)
{
	int64_t deadline = aq__deadline(timeout_ns);
	int rc = 0;

	if (!pool || (flags & ~AQ_SHUTDOWN_CANCEL))
		return -EINVAL;
	/*
	 * Its own worker or timer thread would wait for itself, and so would
	 * a thread holding a claim on it (an arg_destroy or then-callback run
	 * by aq_future_cancel() or by the release of a dependent job): the
	 * claim, and the job it is resolving, end only after we return.
	 */
	if (aq__worker_pool == pool || aq__timer_pool == pool ||
	    aq__cache_claimed_here(pool->cache))
		return -EDEADLK;
	if (flags & AQ_SHUTDOWN_CANCEL) {
		atomic_store(&pool->cancelling, true);
		atomic_fetch_or(&pool->pop_attn, AQ__ATTN_CANCEL);
		/* The timer thread cancels what it holds, now. */
		aq__timer_kick(pool);
	}

	pthread_mutex_lock(&pool->lock);
	/* Under the lock: a submit counting a timer user in sees either this
	 * or its own count is waited for by the joiner. */
	atomic_store(&pool->accepting, false);
	atomic_store(&pool->fast_submit, false);
	for (;;) {
		if (pool->phase == AQ__POOL_STOPPED) {
			rc = 0;
			break;
		}
		if (!pool->joining) {
			/* Be the joiner (again, if an earlier one timed out). */
			pool->joining = true;
			rc = pool_stop(pool, deadline);
			pool->joining = false;
			if (rc == 0)
				pool->phase = AQ__POOL_STOPPED;
			/* Done, or gave up: either way others look again. */
			pthread_cond_broadcast(&pool->stopped_cond);
			break;
		}
		if (rc == ETIMEDOUT) {
			rc = -ETIMEDOUT;
			break;
		}
		/* Another caller joins; wait for it to finish or give up. */
		rc = cond_wait_until(&pool->stopped_cond, &pool->lock,
				     deadline);
	}
	pthread_mutex_unlock(&pool->lock);
	return rc;
}

AQ_API int aq_pool_shutdown(aq_pool *pool, unsigned flags)
{
	return aq_pool_shutdown_timed(pool, flags, -1);
}

AQ_API int aq_pool_running_jobs(aq_pool *pool, uint64_t *ids, unsigned max)
{
	unsigned count = 0;

	if (!pool || (!ids && max))
		return -EINVAL;
	pthread_mutex_lock(&pool->lock);
	for (unsigned i = 0; i < pool->nslots; i++) {
		struct aq__stats *blk = pool->wstats[i];

		/* Relaxed: a snapshot; a job may end as we look. */
		if (!atomic_load_explicit(&blk->running, memory_order_relaxed))
			continue;
		if (count < max)
			ids[count] = atomic_load_explicit(&blk->current_id,
							  memory_order_relaxed);
		count++;
	}
	pthread_mutex_unlock(&pool->lock);
	return (int)count;
}

AQ_API void aq_pool_destroy(aq_pool *pool)
{
	/* Where a shutdown is refused (-EDEADLK: the pool's own worker or
	 * timer thread, or a callback holding a claim on it, whose caller
	 * still uses the pool) we cannot free it either: a documented misuse
	 * that leaves the pool alone rather than deadlock. */
	if (!pool || aq_pool_shutdown(pool, AQ_SHUTDOWN_DRAIN) != 0)
		return;
	pool_free(pool);
}

AQ_API int aq_pool_workers(const aq_pool *pool)
{
	/* Relaxed: a snapshot of a number that may change. */
	return pool ? (int)atomic_load_explicit(&pool->nlive,
						memory_order_relaxed)
		    : -EINVAL;
}

AQ_API int aq_pool_capacity(const aq_pool *pool)
{
	return pool ? (int)aq__ring_capacity(&pool->ring) : -EINVAL;
}

AQ_API int64_t aq_pool_now(const aq_pool *pool)
{
	return pool ? aq__pool_now((aq_pool *)(uintptr_t)pool) : -EINVAL;
}

AQ_API int aq_pool_clock_changed(aq_pool *pool)
{
	if (!pool)
		return -EINVAL;
	aq__timer_kick(pool);
	return 0;
}

/* ---- what a running job may ask ----------------------------------------- */

AQ_API unsigned aq_job_attempt(void)
{
	if (current_rec)
		return current_rec->attempt;
	return in_inline_job() ? 1 : 0;
}

AQ_API int aq_job_cancelled(void)
{
	/* Relaxed: a flag polled by the job; no data rides on it. */
	return current_rec && atomic_load_explicit(
				      &current_rec->cancel_requested,
				      memory_order_relaxed);
}

AQ_API aq_future *aq_job_dep(unsigned i)
{
	return current_rec && i < current_rec->ndeps ? current_rec->deps[i]
						     : NULL;
}

AQ_API unsigned aq_job_dep_count(void)
{
	return current_rec ? current_rec->ndeps : 0;
}

AQ_API int64_t aq_job_deadline(void)
{
	return current_rec ? current_rec->deadline_ns : 0;
}

AQ_API int aq_job_fail_msg(const char *message)
{
	size_t len;
	char *copy;

	if (!current_rec || !message)
		return -EINVAL;
	len = strlen(message) + 1;
	copy = aq__malloc(len);
	if (!copy)
		return -ENOMEM;
	memcpy(copy, message, len);
	free(current_rec->message);
	current_rec->message = copy;
	return 0;
}
