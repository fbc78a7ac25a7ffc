/* SPDX-License-Identifier: MIT */
/*
 * scheduler.c - the pluggable-scheduler seam: how jobs move from the lock-free
 * ring into a policy (struct aq_sched_ops) and out to the workers, and the
 * accessors through which a policy reads a job.
 *
 * A pool without a scheduler (cfg.sched == NULL) never comes here: its
 * workers pop straight from the ring, lock-free. With a scheduler, the ring
 * stays the lock-free front door and every op of the policy runs under one
 * mutex, sched_lock, so a policy is plain single-threaded code. A worker
 * that needs a job takes the lock once, moves every job the ring holds
 * into the policy (so it chooses among all jobs submitted so far), pops
 * one, and lets go: the lock is taken once per batch of arrivals, not
 * once per job on each side.
 *
 * Every job popped gets exactly one done() call, whether it ran, yielded
 * (and is then pushed again) or turned out to be cancelled, so a policy
 * can count running jobs per group. done() is followed by a wake of a
 * parked worker when the policy still holds jobs: a job a cap held back
 * may be runnable now. The wake's Dekker partner is the parking worker,
 * which tries aq__sched_next() after raising idle (worker.c): the mutex
 * orders the two.
 *
 * A job waited for may be run in place by its waiter (help.c) while the
 * policy still holds it, bypassing the policy's order and caps: that is
 * what keeps nested waits from deadlocking. Its entry stays, holding its
 * own reference, and when popped finds the job taken, like a cancelled
 * one (done() follows as usual). The entry must not be pushed twice: an
 * intrusive list or heap would be corrupted. So sched_queued marks a
 * record the policy holds, and a second push of it, from the ring (the
 * timer released it again) or from a yield, is dropped: the entry there
 * runs it. Nor may the keys a policy orders by change under it: its
 * arrival number and wait start are set only as it is pushed, under the
 * lock (aq__sched_stamp() for the timer).
 */
#include <errno.h>

#include "clock.h"
#include "future.h"
#include "job.h"
#include "park.h"
#include "pool.h"
#include "scheduler.h"

/* The handle a policy holds is the record itself, under an incomplete
 * type of its own so that a policy cannot reach into it. */
static inline struct aq_future *job_rec(const aq_sched_job *job)
{
	return (struct aq_future *)(uintptr_t)(const void *)job;
}

static inline aq_sched_job *rec_job(struct aq_future *rec)
{
	return (aq_sched_job *)(void *)rec;
}

/* sched_held is written only under sched_lock, so a relaxed load and
 * store make the update; lock-free readers take it as a hint, or read it
 * once the ring is closed and drained. */
static inline void held_add(struct aq_pool *pool, long delta)
{
	size_t held =
		atomic_load_explicit(&pool->sched_held, memory_order_relaxed);

	atomic_store_explicit(&pool->sched_held, held + (size_t)delta,
			      memory_order_relaxed);
}

int aq__sched_init(struct aq_pool *pool, const struct aq_pool_config *cfg)
{
	const struct aq_sched_ops *ops = cfg->sched;
	int rc;

	if (!ops)
		return 0;
	if (!ops->init || !ops->push || !ops->pop || !ops->destroy)
		return -EINVAL;
	rc = ops->init(&pool->sched_state, cfg->sched_params);
	if (rc > 0 || rc < -4095)
		return -EINVAL; /* not an errno: the policy's bug */
	if (rc)
		return rc;
	pool->sched = ops;
	return 0;
}

void aq__sched_fini(struct aq_pool *pool)
{
	if (pool->sched)
		pool->sched->destroy(pool->sched_state);
	pool->sched = NULL;
}

/* Fail a job the policy would not take, outside the lock (arg_destroy is
 * the caller's code), with the push's error as its failure code. */
static void sched_reject(struct aq_future *rec, int rc)
{
	if (aq__future_claim(rec, AQ_STATE_RUNNING))
		aq__job_finish(rec, AQ_STATE_FAILED,
			       rc < 0 && rc >= -4095 ? -rc : ENOMEM, NULL);
	aq__future_put(rec);
}

static void sched_reject_all(struct aq_future *list)
{
	while (list) {
		struct aq_future *next = list->next_free;

		list->next_free = NULL;
		sched_reject(list, list->code);
		list = next;
	}
}

/*
 * Move what the ring holds into the policy, so that it chooses among every
 * job submitted so far. Under sched_lock. The policy holds at most limit
 * jobs (normally one ring's worth): beyond that jobs stay in the ring,
 * whose fullness then pushes back on submitters, so queue_capacity still
 * bounds memory (to about twice the ring). Refused jobs are chained on
 * *rejected through next_free (unused while a record is in flight), their
 * push error in code.
 */
static void sched_refill(struct aq_pool *pool, struct aq_future **rejected,
			 size_t limit)
{
	/* Relaxed: written only under this lock. */
	while (atomic_load_explicit(&pool->sched_held, memory_order_relaxed) <
	       limit) {
		struct aq__ring_item item;
		struct aq_future *rec;
		int rc;

		if (!aq__ring_pop(&pool->ring, &item))
			break;
		aq__pool_freed_slot(pool);
		rec = item.arg; /* scheduled pools queue records only */
		if (rec->sched_queued) {
			/* A duplicate (see above): its reference goes, and it
			 * is not the last, the policy's entry holds one. */
			aq__future_put(rec);
			continue;
		}
		rec->seq = ++pool->sched_seq;
		rc = pool->sched->push(pool->sched_state, rec_job(rec));
		if (rc) {
			rec->code = rc;
			rec->next_free = *rejected;
			*rejected = rec;
			continue;
		}
		held_add(pool, 1);
		rec->sched_queued = true;
	}
}

struct aq_future *aq__sched_next(struct aq_pool *pool)
{
	struct aq_future *rejected = NULL;
	aq_sched_job *job;

	pthread_mutex_lock(&pool->sched_lock);
	sched_refill(pool, &rejected, pool->ring.mask + 1);
	job = pool->sched->pop(pool->sched_state);
	if (!job && aq__ring_nonempty(&pool->ring)) {
		/* The policy is full of jobs it may not start now (a capped
		 * group): take another ring's worth, so that the job another
		 * waits for is not stuck behind them. */
		sched_refill(pool, &rejected,
			     atomic_load_explicit(&pool->sched_held,
						  memory_order_relaxed) +
				     pool->ring.mask + 1);
		job = pool->sched->pop(pool->sched_state);
	}
	if (job) {
		held_add(pool, -1);
		job_rec(job)->sched_queued = false;
	}
	pthread_mutex_unlock(&pool->sched_lock);

	sched_reject_all(rejected);
	return job ? job_rec(job) : NULL;
}

void aq__sched_done(struct aq_pool *pool, struct aq_future *rec, bool requeue,
		    bool popped)
{
	struct aq_future *rejected = NULL;
	bool duplicate = false;
	size_t held;
	int rc = 0;

	pthread_mutex_lock(&pool->sched_lock);
	if (popped && pool->sched->done)
		pool->sched->done(pool->sched_state, rec_job(rec));
	if (requeue) {
		/* A yielded job goes behind everything submitted before its
		 * yield, the ring's contents included: a new arrival number,
		 * and its wait (for aging) starts again. Unless a waiter ran
		 * it in place while its entry stayed queued: that entry runs
		 * it again, and keeps its place. */
		sched_refill(pool, &rejected, pool->ring.mask + 1);
		duplicate = rec->sched_queued;
		if (!duplicate) {
			rec->seq = ++pool->sched_seq;
			rec->enqueue_ns = aq__now_ns();
		}
		/* Release: published only now, after the fields above, for
		 * a waiter may claim it (acquire) the moment it is PENDING,
		 * without this lock, and time it from enqueue_ns. */
		atomic_store_explicit(&rec->state, AQ_STATE_PENDING,
				      memory_order_release);
		if (!duplicate)
			rc = pool->sched->push(pool->sched_state, rec_job(rec));
		if (!duplicate && rc == 0) {
			held_add(pool, 1);
			rec->sched_queued = true;
		}
	}
	held = atomic_load_explicit(&pool->sched_held, memory_order_relaxed);
	pthread_mutex_unlock(&pool->sched_lock);

	sched_reject_all(rejected);
	if (duplicate)
		aq__future_put(rec); /* the entry queued holds its own */
	if (rc)
		sched_reject(rec, rc);
	if (held)
		aq__pool_wake_one(pool);
}

void aq__sched_stamp(struct aq_pool *pool, struct aq_future *rec, int64_t now)
{
	pthread_mutex_lock(&pool->sched_lock);
	if (!rec->sched_queued)
		rec->enqueue_ns = now;
	pthread_mutex_unlock(&pool->sched_lock);
}

/* ---- what a policy may read of a job ---------------------------------- */

AQ_API int aq_sched_job_priority(const aq_sched_job *job)
{
	return job ? job_rec(job)->priority : 0;
}

AQ_API uint64_t aq_sched_job_group(const aq_sched_job *job)
{
	return job ? job_rec(job)->group : 0;
}

AQ_API unsigned aq_sched_job_weight(const aq_sched_job *job)
{
	return job ? job_rec(job)->weight : 1;
}

AQ_API uint64_t aq_sched_job_hint(const aq_sched_job *job)
{
	return job ? job_rec(job)->hint : 0;
}

AQ_API int64_t aq_sched_job_enqueue_ns(const aq_sched_job *job)
{
	return job ? job_rec(job)->enqueue_ns : 0;
}

AQ_API uint64_t aq_sched_job_seq(const aq_sched_job *job)
{
	return job ? job_rec(job)->seq : 0;
}

AQ_API unsigned aq_sched_job_runs(const aq_sched_job *job)
{
	/* Relaxed: see future.h. */
	return job ? atomic_load_explicit(&job_rec(job)->runs,
					  memory_order_relaxed)
		   : 0;
}

AQ_API void **aq_sched_job_slots(aq_sched_job *job)
{
	return job ? job_rec(job)->sched_slots : NULL;
}
