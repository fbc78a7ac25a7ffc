/* SPDX-License-Identifier: MIT */
/*
 * submit.c - aq_submit(): turning a call into a ring item, the blocking
 * wait for ring space, and the wake of a parked worker.
 *
 * The fast path is a fire-and-forget job with no options: the item is
 * {fn, arg} itself, so submitting allocates nothing and touches only the
 * ring and a read of the pool's idle count. A job with a future or options
 * travels as {NULL, record}, the record coming from the pool's cache.
 *
 * Full ring, blocking submit: a Dekker handshake like the workers' parking.
 * The producer raises space_waiters and then re-reads the ring's counters;
 * a consumer claims a slot (seq_cst CAS on head) and then reads
 * space_waiters. One of them sees the other, so a producer never sleeps
 * through the slot that would have let it in.
 */
#include <errno.h>

#include "fault.h"
#include "pool.h"
#include "retry.h"
#include "timer.h"

#define JOB_FLAGS (AQ_JOB_BLOCK | AQ_JOB_NOBLOCK)

/* How long this submit may wait for space: 0 = not at all, -1 = forever,
 * otherwise nanoseconds. */
static int64_t submit_wait_budget(const struct aq_pool *pool,
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

/* What the pool's scheduler may read of the job (aq_job_*()). */
static void submit_fill_sched(struct aq_future *rec,
			      const struct aq_job_opts *opts)
{
	rec->priority = opts ? opts->priority : 0;
	rec->group = opts ? opts->group : 0;
	rec->weight = opts && opts->weight ? opts->weight : 1;
	rec->hint = opts ? opts->hint : 0;
	rec->enqueue_ns = aq__now_ns();
	rec->seq = 0; /* numbered when it reaches the scheduler */
	rec->sched_slots[0] = rec->sched_slots[1] = NULL;
}

/* The ring was full: wait for a slot until the budget runs out. */
static int submit_wait_space(struct aq_pool *pool, struct aq__ring_item item,
			     int64_t budget_ns)
{
	int64_t deadline = aq__deadline(budget_ns);
	int rc;

	for (;;) {
		/* Acquire: pairs with the consumer's release increment. */
		uint32_t seq = atomic_load_explicit(&pool->space_seq,
						    memory_order_acquire);
		int wait_rc = 0;

		atomic_fetch_add(&pool->space_waiters, 1); /* seq_cst */
		if (!aq__ring_has_space(&pool->ring))       /* seq_cst */
			wait_rc = aq__park_wait(&pool->space_seq, seq,
						deadline);
		atomic_fetch_sub(&pool->space_waiters, 1);

		rc = aq__ring_push(&pool->ring, item);
		if (rc != -EAGAIN)
			return rc;
		if (wait_rc == -ETIMEDOUT)
			return -ETIMEDOUT;
	}
}

int aq__submit_push(struct aq_pool *pool, struct aq__ring_item item,
		    int64_t budget_ns)
{
	int rc = aq__ring_push(&pool->ring, item);

	if (aq_unlikely(rc == -EAGAIN) && budget_ns != 0)
		rc = submit_wait_space(pool, item, budget_ns);
	return rc;
}

static bool submit_opts_valid(const struct aq_job_opts *opts)
{
	if (opts->after_count > AQ_AFTER_MAX ||
	    (opts->after_count && !opts->after))
		return false;
	for (unsigned i = 0; i < opts->after_count; i++)
		if (!opts->after[i])
			return false;
	return !opts->retry || aq__retry_policy_valid(opts->retry);
}

/* Does this job need a record rather than the bare {fn, arg}? */
static bool submit_needs_record(const struct aq_pool *pool,
				const struct aq_job_opts *opts, bool fut)
{
	return fut || pool->record_always ||
	       (opts && (opts->arg_destroy || opts->delay_ns > 0 ||
			 opts->run_at_ns || opts->deadline_ns || opts->retry ||
			 opts->after_count));
}

/* Failure handling and time: the retry policy, the deadline, and when the
 * job may start (0: now). */
static int64_t submit_fill_time(struct aq_pool *pool, struct aq_future *rec,
				const struct aq_job_opts *opts)
{
	int64_t due = 0;

	rec->pool = pool;
	/* Relaxed: ids need only be unique. */
	rec->id = atomic_fetch_add_explicit(&pool->next_id, 1,
					    memory_order_relaxed) + 1;
	rec->retry = opts && opts->retry ? opts->retry
		     : pool->has_retry  ? &pool->retry_default
					: NULL;
	rec->deadline_ns = opts ? opts->deadline_ns : 0;
	if (opts && opts->run_at_ns)
		due = opts->run_at_ns;
	if (opts && opts->delay_ns > 0) {
		int64_t after = aq__time_add(aq__pool_now(pool),
					     opts->delay_ns);

		due = after > due ? after : due;
	}
	/* Jobs that wait outside the ring (delayed, retrying, or after
	 * others) keep shutdown from closing it under them. */
	rec->timer_user = due != 0 || (opts && opts->after_count) ||
			  (rec->retry && rec->retry->max_attempts > 1);
	return due;
}

/* Count a timer user in, unless shutdown has begun (pool.c waits for the
 * count to reach zero before it closes the ring). */
static int submit_timer_user(struct aq_pool *pool)
{
	int rc = 0;

	pthread_mutex_lock(&pool->lock);
	if (atomic_load_explicit(&pool->accepting, memory_order_relaxed))
		pool->timer_users++;
	else
		rc = -ESHUTDOWN;
	pthread_mutex_unlock(&pool->lock);
	return rc;
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

static int submit_job(aq_pool *pool, aq_job_fn fn, void *arg,
		      const struct aq_job_opts *opts, aq_future **fut)
{
	struct aq__ring_item item = { .fn = fn, .arg = arg };
	struct aq_future *rec = NULL;
	int64_t due = 0;
	int rc;

	if (aq_unlikely(!fn))
		return -EINVAL;
	if (opts && ((opts->flags & ~JOB_FLAGS) ||
		     (opts->flags & JOB_FLAGS) == JOB_FLAGS ||
		     opts->priority < AQ_PRIORITY_MIN ||
		     opts->priority > AQ_PRIORITY_MAX ||
		     opts->weight > AQ_WEIGHT_MAX || opts->delay_ns < 0 ||
		     opts->run_at_ns < 0 || opts->deadline_ns < 0 ||
		     !submit_opts_valid(opts)))
		return -EINVAL;
	/* Relaxed: a fast refusal; the ring's closed bit is the real gate. */
	if (aq_unlikely(!atomic_load_explicit(&pool->accepting,
					      memory_order_relaxed)))
		return -ESHUTDOWN;

	if (submit_needs_record(pool, opts, fut != NULL)) {
		/* One reference for the pool, one for the caller's future. */
		rec = aq__future_alloc(pool->cache, fut ? 2 : 1);
		if (!rec)
			return -ENOMEM;
		rec->fn = fn;
		rec->arg = arg;
		rec->arg_destroy = opts ? opts->arg_destroy : NULL;
		if (pool->sched)
			submit_fill_sched(rec, opts);
		if (pool->timing)
			rec->submit_ns = rec->enqueue_ns = aq__now_ns();
		due = submit_fill_time(pool, rec, opts);
		if (rec->timer_user && (rc = submit_timer_user(pool)) != 0) {
			rec->timer_user = false;
			submit_discard(pool, rec);
			return rc;
		}
		item.fn = NULL;
		item.arg = rec;
	}

	if (rec && opts && opts->after_count) { /* after_count: rec exists */
		/* After others: their last resolution queues it, or hands
		 * it to the timer if it is also delayed (wait.c). */
		rec->due_ns = due;
		aq__stats_shared(pool, off_ring); /* first: see stats.h */
		rc = aq__deps_attach(rec, opts->after, opts->after_count);
		if (rc == 0) {
			if (fut)
				*fut = rec;
			aq__deps_arm(rec);
			return 0;
		}
		aq__stats_shared_undo(pool, off_ring);
	} else if (due) {
		/* Delayed: the timer queues it when due (timer.c). */
		rec->due_ns = due;
		atomic_store_explicit(&rec->state, AQ_STATE_DELAYED,
				      memory_order_relaxed);
		aq__stats_shared(pool, off_ring); /* first: see stats.h */
		rc = aq__timer_add(pool, rec);
		if (rc)
			aq__stats_shared_undo(pool, off_ring);
	} else {
		rc = aq__ring_push(&pool->ring, item);
		if (aq_unlikely(rc == -EAGAIN)) {
			int64_t budget = submit_wait_budget(pool, opts);

			/* A worker of this pool that sleeps on its own full
			 * ring could leave nobody to empty it: it gets
			 * -EAGAIN at once. */
			if (budget != 0 && aq__worker_pool != pool)
				rc = submit_wait_space(pool, item, budget);
		}
		if (rc == 0) {
			aq__pool_wake_one(pool);
			aq__pool_maybe_grow(pool);
		}
	}
	if (aq_unlikely(rc)) {
		if (rec)
			submit_discard(pool, rec);
		return rc;
	}
	if (fut)
		*fut = rec;
	return 0;
}

AQ_API int aq_submit(aq_pool *pool, aq_job_fn fn, void *arg,
		     const struct aq_job_opts *opts, aq_future **fut)
{
	int rc;

	/*
	 * The fast path: fire-and-forget, no options, a pool that needs no
	 * record. Two words into the ring, then a look at whether a worker
	 * sleeps. Relaxed: accepting and record_always are read-mostly
	 * flags; the ring's closed bit is the real gate at shutdown.
	 */
	if (aq_likely(pool && fn && !opts && !fut &&
		      !pool->record_always &&
		      atomic_load_explicit(&pool->accepting,
					   memory_order_relaxed))) {
		rc = aq__ring_push(&pool->ring,
				   (struct aq__ring_item){ fn, arg });
		if (aq_likely(rc == 0)) {
			aq__pool_wake_one(pool);
			aq__pool_maybe_grow(pool);
			return 0;
		}
		if (rc == -EAGAIN && (pool->flags & AQ_POOL_BLOCK) &&
		    aq__worker_pool != pool)
			rc = submit_wait_space(
				pool, (struct aq__ring_item){ fn, arg },
				submit_wait_budget(pool, NULL));
		if (rc == 0) {
			aq__pool_wake_one(pool);
			return 0;
		}
		aq__stats_shared(pool, rejected);
		return rc;
	}

	if (fut)
		*fut = NULL;
	if (aq_unlikely(!pool))
		return -EINVAL;
	rc = submit_job(pool, fn, arg, opts, fut);
	/* Refusals of a well-formed job count; bad arguments do not. */
	if (aq_unlikely(rc) && rc != -EINVAL)
		aq__stats_shared(pool, rejected);
	return rc;
}
