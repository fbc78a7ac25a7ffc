/* SPDX-License-Identifier: MIT */
/*
 * submit.c - aq_submit(): turning a call into a ring item, the blocking
 * wait for ring space, and the wake of a parked worker.
 *
 * The fast path is a fire-and-forget job with no options: the item is
 * {fn, arg} itself, so submitting allocates nothing and touches only the
 * ring and a read of the pool's idle count. A job with a future or options
 * travels as {NULL, record}, the record coming from the pool's cache.
 * A job of a pool without a scheduler that submits to its own pool puts
 * the item on its worker's deque instead (worker.c), unless it is delayed
 * or waits for others.
 *
 * A full ring makes a blocking submit wait for space (queue.c). A job
 * with a delay goes to the timer, one with opts.after to its dependencies
 * (deps.c).
 *
 * aq_submit_batch() puts fire-and-forget jobs on the ring many slots per
 * claim (aq__ring_push_n()) and jobs that need records through the same
 * submit_job() as aq_submit(), one deadline for the whole batch.
 */
#include <errno.h>
#include <limits.h>

#include "cache.h"
#include "clock.h"
#include "current.h"
#include "deps.h"
#include "fault.h"
#include "future.h"
#include "opts.h"
#include "pool.h"
#include "queue.h"
#include "retry.h"
#include "steal.h"
#include "threads.h"
#include "timer.h"
#include "trace.h"
#include "worker.h"

/* Job ids a worker takes from its pool at a time: one shared increment
 * per block, not per job, since workers that submit jobs in a stream
 * (fork-join) would otherwise pass its line between them at every job. */
#define SUBMIT_ID_BLOCK 64

/* A worker's block of ids (a worker thread serves one pool for life):
 * the last one used and the last one it holds. */
static _Thread_local uint64_t worker_id_last, worker_id_end;

/* A job id for a thread that is not one of the pool's workers. */
static inline uint64_t submit_new_id_outside(struct aq_pool *pool)
{
	/* Relaxed: ids need only be unique. */
	return atomic_fetch_add_explicit(&pool->next_id, 1,
					 memory_order_relaxed) +
	       1;
}

/* A new job id of pool: unique in the pool, from 1. */
static inline uint64_t submit_new_id(struct aq_pool *pool)
{
	if (pool != aq__worker_pool)
		return submit_new_id_outside(pool);
	if (AQ__UNLIKELY(worker_id_last == worker_id_end)) {
		/* Relaxed, as above. */
		worker_id_last = atomic_fetch_add_explicit(
			&pool->next_id, SUBMIT_ID_BLOCK, memory_order_relaxed);
		worker_id_end = worker_id_last + SUBMIT_ID_BLOCK;
	}
	return ++worker_id_last;
}

/* Undo a record that was never published. */
static void submit_discard(struct aq_pool *pool, struct aq_future *rec)
{
	if (rec->timer_user)
		aq__pool_timer_user_done(pool);
	/* Ours alone: drop every reference at once. */
	atomic_store_explicit(&rec->refs, 1, memory_order_relaxed);
	aq__future_put(rec);
}

/* submit_queue() ran the job in place: it is resolved, and the record
 * keeps only the caller's reference. */
#define SUBMIT_RAN_HERE 1

/*
 * The ring was full (rc = -EAGAIN) or closed for item, a job neither
 * delayed nor after others: wait for space, run it here, or refuse it.
 * Out of line: the common path of submit_queue() stays small.
 */
static __attribute__((noinline)) int
submit_queue_full(struct aq_pool *pool, struct aq__ring_item item,
		  struct aq_future *rec, const struct aq_job_opts *opts,
		  bool fut, bool here, int rc)
{
	if (rc == -EAGAIN && aq__worker_pool == pool) {
		/*
		 * A worker of this pool must not sleep on its own full
		 * ring: it might be the one to empty it. A job with a
		 * future must not fail either: nested fork-join fills
		 * the ring with the slots of children their waiting
		 * parents already ran in place (help.c), which no
		 * worker reaches while all are nested. So it runs
		 * here, now, as OpenMP runs a task undeferred when
		 * too many are queued; a child run so is a plain call,
		 * and the nesting argument of help.c holds. Nobody
		 * waits for a fire-and-forget job: it is refused, and
		 * AQ_JOB_NOBLOCK asks for the refusal.
		 */
		if (here && fut && !(opts && (opts->flags & AQ_JOB_NOBLOCK))) {
			aq__worker_run_unqueued(pool, rec);
			return SUBMIT_RAN_HERE;
		}
		return rc;
	}
	if (rc == -EAGAIN) {
		int64_t budget = aq__opts_wait_budget(pool, opts);

		if (budget != 0)
			rc = aq__queue_wait_push(pool, item,
						 aq__deadline(budget));
	}
	if (rc == 0) {
		aq__pool_wake_one(pool);
		aq__threads_maybe_grow(pool);
	}
	return rc;
}

/*
 * Queue item (rec's, if it has a record), a job neither delayed nor after
 * others: 0, SUBMIT_RAN_HERE, or a negative errno. A job of this pool
 * submitting one (no policy: those pools have no deques) goes on its
 * worker's deque, or, when that is full, on the ring; any other on the
 * ring. fut: the caller wants a future; here: see submit_job().
 */
static inline __attribute__((always_inline)) int
submit_queue(struct aq_pool *pool, struct aq__ring_item item,
	     struct aq_future *rec, const struct aq_job_opts *opts, bool fut,
	     bool here)
{
	int rc;

	if (aq__worker_pool == pool && aq__worker_deque &&
	    aq__steal_push_local(pool, item) == 0)
		return 0;
	rc = aq__ring_push(&pool->ring, item);
	if (AQ__UNLIKELY(rc))
		return submit_queue_full(pool, item, rec, opts, fut, here, rc);
	aq__pool_wake_one(pool);
	aq__threads_maybe_grow(pool);
	return 0;
}

/*
 * here: on a worker of this pool, a job with a future that finds the ring
 * full runs in place rather than fail (aq_submit(); a batch returns what
 * fitted).
 */
static int submit_job(aq_pool *pool, aq_job_fn fn, void *arg,
		      const struct aq_job_opts *opts, aq_future **fut,
		      bool here)
{
	struct aq__ring_item item = { .fn = fn, .arg = arg };
	struct aq_future *rec = NULL;
	bool delayed = false;
	uint64_t id = 0; /* rec->id, read before rec is published */
	int rc;

	if (AQ__UNLIKELY(!fn) || (opts && !aq__opts_valid(opts)))
		return -EINVAL;
	/* Relaxed: a fast refusal; the ring's closed bit is the real gate. */
	if (AQ__UNLIKELY(!atomic_load_explicit(&pool->accepting,
					       memory_order_relaxed)))
		return -ESHUTDOWN;

	if (aq__opts_need_record(pool, opts, fut != NULL)) {
		/* One reference for the pool, one for the caller's future. */
		rec = aq__future_alloc(pool->cache, fut ? 2 : 1);
		if (!rec)
			return -ENOMEM;
		rec->fn = fn;
		rec->arg = arg;
		rec->arg_destroy = opts ? opts->arg_destroy : NULL;
		if (pool->sched)
			aq__opts_fill_sched(rec, opts);
		if (pool->timing)
			rec->submit_ns = rec->enqueue_ns = aq__now_ns();
		rec->pool = pool;
		rec->id = submit_new_id(pool);
		delayed = aq__opts_fill_time(pool, rec, opts);
		if (rec->timer_user &&
		    (rc = aq__pool_timer_user_add(pool)) != 0) {
			rec->timer_user = false;
			submit_discard(pool, rec);
			return rc;
		}
		item.fn = NULL;
		item.arg = rec;
		/* Read by the probes when they are compiled in (trace.h). */
		// NOLINTNEXTLINE(clang-analyzer-deadcode.DeadStores)
		id = rec->id;
	}

	if (rec && opts && opts->after_count) { /* after_count: rec exists */
		/* After others: their last resolution queues it, or hands
		 * it to the timer if it is also delayed (deps.c). */
		AQ__STAT_SHARED(pool, off_ring); /* first: see stats.h */
		rc = aq__deps_attach(rec, opts->after, opts->after_count);
		if (rc == 0) {
			if (fut)
				*fut = rec;
			AQ__TRACE(submit, pool, id, fn, arg);
			aq__deps_arm(rec);
			return 0;
		}
		AQ__STAT_SHARED_UNDO(pool, off_ring);
	} else if (delayed) {
		/* Delayed: the timer queues it when due (timer.c, queue.c). */
		atomic_store_explicit(&rec->state, AQ_STATE_DELAYED,
				      memory_order_relaxed);
		AQ__STAT_SHARED(pool, off_ring); /* first: see stats.h */
		rc = aq__timer_add(&pool->timer, rec);
		if (rc)
			AQ__STAT_SHARED_UNDO(pool, off_ring);
	} else {
		rc = submit_queue(pool, item, rec, opts, fut != NULL, here);
		if (rc == SUBMIT_RAN_HERE) {
			/* Only a job with a future runs here (submit_queue()),
			 * which clang-tidy's path analysis cannot see. */
			if (fut)
				*fut = rec; /* the caller's reference */
			return 0;
		}
	}
	if (AQ__UNLIKELY(rc)) {
		if (rec)
			submit_discard(pool, rec);
		return rc;
	}
	AQ__TRACE(submit, pool, id, fn, arg);
	if (fut)
		*fut = rec;
	return 0;
}

/*
 * Everything aq_submit() does besides the fast path: bad arguments, jobs
 * that need a record, a full ring (blocking or not), shutdown. Out of line
 * so that the fast path needs no stack frame and no saved registers.
 */
static __attribute__((noinline)) int submit_slow(aq_pool *pool, aq_job_fn fn,
						 void *arg,
						 const struct aq_job_opts *opts,
						 aq_future **fut)
{
	int rc;

	if (fut)
		*fut = NULL;
	if (AQ__UNLIKELY(!pool))
		return -EINVAL;
	/* A fast-path job lands here too when the ring was full or shutdown
	 * had begun: submit_job() retries it, blocks or refuses it as it
	 * would any job without a record. */
	rc = submit_job(pool, fn, arg, opts, fut, true);
	/* Refusals of a well-formed job count; bad arguments do not. */
	if (AQ__UNLIKELY(rc) && rc != -EINVAL)
		AQ__STAT_SHARED(pool, rejected);
	return rc;
}

/* A fast-path push found idle workers or an elastic pool. */
static __attribute__((noinline)) int submit_pushed(aq_pool *pool)
{
	aq__pool_wake_one(pool);
	aq__threads_maybe_grow(pool);
	return 0;
}

/*
 * After a fast path's push: 0, once a parked worker is woken if there is
 * one and no wake is on its way (or an elastic pool may grow). seq_cst:
 * the read half of the parking handshake, as in aq__pool_wake_one(). A
 * worker sleeps but a wake is already on its way to one (it will chain to
 * the next): nothing to do either, the common case while a burst wakes
 * the pool up (relaxed, as in aq__pool_wake_one()). Everything else is
 * out of line, so the fast paths need no stack frame.
 */
static inline __attribute__((always_inline)) int
submit_pushed_fast(aq_pool *pool)
{
	uint32_t idle = atomic_load(&pool->idle);

	if (AQ__LIKELY(idle == 0))
		return 0;
	if (!(idle & AQ__IDLE_ELASTIC) &&
	    atomic_load_explicit(&pool->waking, memory_order_relaxed))
		return 0;
	return submit_pushed(pool);
}

/* A record's job, before it is queued: fn(arg), of pool, numbered id. */
static inline void submit_fill_job(struct aq_future *rec, aq_pool *pool,
				   aq_job_fn fn, void *arg, uint64_t id)
{
	rec->fn = fn;
	rec->arg = arg;
	rec->pool = pool;
	rec->id = id;
}

/*
 * A job with a future and no options, on a pool that needs records for no
 * other reason (fast_submit: no scheduler, no default retry policy, no
 * timing): the fresh record (cache.h) already says "no deadline, no
 * retry, not a timer user, no dependencies", so it needs only its job,
 * its pool and its id before it is queued. 0 with *fut set, or a negative
 * errno with *fut untouched and nothing counted. here: see submit_job().
 */
static inline __attribute__((always_inline)) int
submit_plain(aq_pool *pool, aq_job_fn fn, void *arg, aq_future **fut, bool here)
{
	/* One reference for the pool, one for the caller's future. */
	struct aq_future *rec = aq__future_alloc(pool->cache, 2);
	uint64_t id;
	int rc;

	if (AQ__UNLIKELY(!rec))
		return -ENOMEM;
	id = submit_new_id(pool);
	submit_fill_job(rec, pool, fn, arg, id);
	rc = submit_queue(pool, (struct aq__ring_item){ NULL, rec }, rec, NULL,
			  true, here);
	if (AQ__UNLIKELY(rc < 0)) {
		submit_discard(pool, rec);
		return rc;
	}
	/* Our reference is the caller's now (SUBMIT_RAN_HERE included). */
	AQ__TRACE(submit, pool, id, fn, arg);
	*fut = rec;
	return 0;
}

/* submit_future() for the rest: a worker of the pool (its deque), an
 * empty list of records, a full or closed ring. */
static __attribute__((noinline)) int
submit_future_any(aq_pool *pool, aq_job_fn fn, void *arg, aq_future **fut)
{
	int rc = submit_plain(pool, fn, arg, fut, true);

	if (AQ__UNLIKELY(rc)) {
		*fut = NULL;
		AQ__STAT_SHARED(pool, rejected); /* as submit_slow() counts */
	}
	return rc;
}

/* submit_future() found the ring full or closed: the record, ours alone
 * (not published), goes back, and the general path takes the job. */
static __attribute__((noinline)) int
submit_future_again(aq_pool *pool, struct aq_future *rec, aq_future **fut)
{
	aq_job_fn fn = rec->fn;
	void *arg = rec->arg;

	submit_discard(pool, rec);
	return submit_future_any(pool, fn, arg, fut);
}

/*
 * aq_submit() of a job with a future and no options (submit_plain()).
 * From a thread that is not one of the pool's workers, with a record on
 * its own list and room in the ring, it takes no call frame: every other
 * case leaves by a tail call. Otherwise as submit_plain(): the record is
 * filled before the push publishes it.
 */
static __attribute__((noinline)) int submit_future(aq_pool *pool, aq_job_fn fn,
						   void *arg, aq_future **fut)
{
	struct aq_future *rec;
	uint64_t id;

	if (AQ__UNLIKELY(aq__worker_pool == pool) ||
	    AQ__UNLIKELY(!(rec = aq__future_alloc_local(pool->cache, 2))))
		return submit_future_any(pool, fn, arg, fut);
	id = submit_new_id_outside(pool);
	submit_fill_job(rec, pool, fn, arg, id);
	if (AQ__UNLIKELY(aq__ring_push(&pool->ring,
				       (struct aq__ring_item){ NULL, rec })))
		return submit_future_again(pool, rec, fut);
	AQ__TRACE(submit, pool, id, fn, arg);
	*fut = rec;
	return submit_pushed_fast(pool);
}

AQ_API int aq_submit(aq_pool *pool, aq_job_fn fn, void *arg,
		     const struct aq_job_opts *opts, aq_future **fut)
{
	/*
	 * The fast path: fire-and-forget, no options, a pool that needs no
	 * record and still accepts (fast_submit; relaxed, a read-mostly flag:
	 * the ring's closed bit is the real gate at shutdown), a caller that
	 * is not one of the pool's workers (those push on their deques, in
	 * submit_job()). Two words into the ring, then one load of the idle
	 * word (submit_pushed_fast()).
	 */
	if (AQ__LIKELY(pool && fn && !opts && !fut) &&
	    AQ__LIKELY(aq__worker_pool != pool) &&
	    AQ__LIKELY(atomic_load_explicit(&pool->fast_submit,
					    memory_order_relaxed)) &&
	    AQ__LIKELY(aq__ring_push(&pool->ring,
				     (struct aq__ring_item){ fn, arg }) == 0)) {
		AQ__TRACE(submit, pool, (uint64_t)0, fn, arg);
		return submit_pushed_fast(pool);
	}
	/* A job with a future and nothing else (relaxed, as above). */
	if (AQ__LIKELY(pool && fn && !opts && fut) &&
	    AQ__LIKELY(atomic_load_explicit(&pool->fast_submit,
					    memory_order_relaxed)))
		return submit_future(pool, fn, arg, fut);
	return submit_slow(pool, fn, arg, opts, fut);
}

/* ---- batches ------------------------------------------------------------- */

/*
 * Inline items, many per claim (aq__ring_push_n()). A worker is woken after
 * every claim, before any wait for space: the workers must be up to empty
 * the ring for us. Returns how many were pushed, or an error if none was.
 */
static int submit_batch_ring(struct aq_pool *pool, const struct aq_job *jobs,
			     unsigned n, int64_t budget)
{
	/* A worker of this pool that sleeps on its own full ring could leave
	 * nobody to empty it: it does not wait (as in submit_job()). */
	bool may_wait = budget != 0 && aq__worker_pool != pool;
	int64_t deadline = may_wait ? aq__deadline(budget) : -1;
	unsigned done = 0;
	int rc = 0;

	while (done < n) {
		rc = aq__ring_push_n(&pool->ring, jobs + done, n - done);
		if (rc == -EAGAIN && may_wait) {
			/* Full: wait for one slot and take it, then claim
			 * again whatever has come free meanwhile. */
			struct aq__ring_item item = { jobs[done].fn,
						      jobs[done].arg };

			rc = aq__queue_wait_push(pool, item, deadline);
			if (rc == 0)
				rc = 1;
		}
		if (rc < 0)
			break;
		AQ__TRACE(submit_batch, pool, (unsigned)rc, jobs + done);
		done += (unsigned)rc;
		aq__pool_wake_one(pool);
		aq__threads_maybe_grow(pool);
	}
	return done ? (int)done : rc;
}

/*
 * Jobs that need records (futures, options, or a pool that records every
 * job), one submit_job() each. A wait for space shares one deadline
 * across the batch, so a timeout bounds the whole call.
 */
static int submit_batch_records(struct aq_pool *pool, const struct aq_job *jobs,
				unsigned n, const struct aq_job_opts *opts,
				aq_future **futs)
{
	struct aq_job_opts each = opts ? *opts : (struct aq_job_opts){ 0 };
	int64_t budget = aq__opts_wait_budget(pool, opts);
	int64_t deadline = budget > 0 ? aq__deadline(budget) : -1;
	bool out_of_time = false;
	unsigned i;
	int rc = 0;

	/* Futures and nothing else, no waiting for space: as aq_submit()
	 * takes them (relaxed, as there). */
	if (!opts && budget == 0 && futs &&
	    atomic_load_explicit(&pool->fast_submit, memory_order_relaxed)) {
		for (i = 0; i < n; i++) {
			rc = submit_plain(pool, jobs[i].fn, jobs[i].arg,
					  &futs[i], false);
			if (rc)
				break;
		}
		return i ? (int)i : rc;
	}
	for (i = 0; i < n; i++) {
		if (budget > 0) {
			int64_t left = deadline - aq__now_ns();

			each.flags &= ~AQ__JOB_FLAGS;
			out_of_time = left <= 0;
			each.flags |=
				out_of_time ? AQ_JOB_NOBLOCK : AQ_JOB_BLOCK;
			each.timeout_ns = out_of_time ? 0 : left;
		}
		rc = submit_job(pool, jobs[i].fn, jobs[i].arg, &each,
				futs ? &futs[i] : NULL, false);
		if (rc)
			break;
	}
	if (rc == -EAGAIN && out_of_time)
		rc = -ETIMEDOUT;
	return i ? (int)i : rc;
}

AQ_API int aq_submit_batch(aq_pool *pool, const struct aq_job *jobs, unsigned n,
			   const struct aq_job_opts *opts, aq_future **futs)
{
	int rc;

	/* The count is returned as an int. */
	if (n > INT_MAX)
		return -EINVAL;
	if (futs)
		for (unsigned i = 0; i < n; i++)
			futs[i] = NULL;
	if (!pool || (n && !jobs) || (opts && !aq__opts_valid(opts)))
		return -EINVAL;
	for (unsigned i = 0; i < n; i++)
		if (!jobs[i].fn)
			return -EINVAL;
	if (n == 0)
		return 0;
	/* Relaxed: a fast refusal, as in submit_job(). */
	if (!atomic_load_explicit(&pool->accepting, memory_order_relaxed))
		rc = -ESHUTDOWN;
	else if (!futs && !aq__opts_need_record(pool, opts, false))
		rc = submit_batch_ring(pool, jobs, n,
				       aq__opts_wait_budget(pool, opts));
	else
		rc = submit_batch_records(pool, jobs, n, opts, futs);
	/* Refusals count per job, as they would one aq_submit() each. */
	atomic_fetch_add_explicit(&pool->shared_stats->rejected,
				  n - (rc > 0 ? (unsigned)rc : 0),
				  memory_order_relaxed);
	return rc;
}
