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

AQ_API int aq_submit(aq_pool *pool, aq_job_fn fn, void *arg,
		     const struct aq_job_opts *opts, aq_future **fut)
{
	struct aq__ring_item item = { .fn = fn, .arg = arg };
	struct aq_future *rec = NULL;
	int rc;

	if (fut)
		*fut = NULL;
	if (aq_unlikely(!pool || !fn))
		return -EINVAL;
	if (opts && ((opts->flags & ~JOB_FLAGS) ||
		     (opts->flags & JOB_FLAGS) == JOB_FLAGS ||
		     opts->priority < AQ_PRIORITY_MIN ||
		     opts->priority > AQ_PRIORITY_MAX ||
		     opts->weight > AQ_WEIGHT_MAX))
		return -EINVAL;

	/* A scheduler reads job metadata, so its jobs always get a record. */
	if (fut || pool->sched || (opts && opts->arg_destroy)) {
		/* One reference for the pool, one for the caller's future. */
		rec = aq__future_alloc(pool->cache, fut ? 2 : 1);
		if (!rec)
			return -ENOMEM;
		rec->fn = fn;
		rec->arg = arg;
		rec->arg_destroy = opts ? opts->arg_destroy : NULL;
		rec->runs = 0;
		if (pool->sched)
			submit_fill_sched(rec, opts);
		item.fn = NULL;
		item.arg = rec;
	}

	rc = aq__ring_push(&pool->ring, item);
	if (aq_unlikely(rc == -EAGAIN)) {
		int64_t budget = submit_wait_budget(pool, opts);

		/* A worker of this pool that sleeps on its own full ring could
		 * leave nobody to empty it: it gets -EAGAIN at once. */
		if (budget != 0 && aq__worker_pool != pool)
			rc = submit_wait_space(pool, item, budget);
	}
	if (aq_unlikely(rc)) {
		if (rec) {
			/* Never published: ours alone, drop every reference. */
			atomic_store_explicit(&rec->refs, 1,
					      memory_order_relaxed);
			aq__future_put(rec);
		}
		return rc;
	}
	aq__pool_wake_one(pool);
	if (fut)
		*fut = rec;
	return 0;
}
