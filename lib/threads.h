/* SPDX-License-Identifier: MIT */
/*
 * threads.h - the pool's worker threads as threads (see threads.c): what
 * runs on them is the pool's worker_body, set before the first spawn.
 */
#ifndef AQ__THREADS_H
#define AQ__THREADS_H

#include <pthread.h>
#include <stdbool.h>
#include <stdint.h>

#include "asyncq.h"
#include "pool.h"

/* A worker index's thread. */
struct aq__slot {
	pthread_t thread;
	enum {
		AQ__SLOT_EMPTY,
		AQ__SLOT_LIVE,     /* its worker runs */
		AQ__SLOT_RETIRING, /* retired, its stop hook may still run */
		AQ__SLOT_DONE,     /* retired and done with the pool: to be
				      joined, then its index is free */
		AQ__SLOT_REAPING   /* being joined, lock released */
	} state;
};

/* Bounds, names, pinning and per-slot counters from cfg: the initial
 * worker count, or a negative errno. */
int aq__threads_init(struct aq_pool *pool, const struct aq_pool_config *cfg);
void aq__threads_fini(struct aq_pool *pool);
/* Start workers until `live` reaches target. Under lock, and only while
 * the pool runs (shutdown's join would miss a later thread). 0, an error
 * of the thread library or -ENOMEM, or -EBUSY: the free indexes are still
 * held by retiring workers' stop hooks. */
int aq__threads_spawn(struct aq_pool *pool, unsigned target);
/* Start one more worker if the pool runs and is below max (an elastic
 * pool under backlog); takes the lock. */
void aq__threads_grow(struct aq_pool *pool);
/* Join retired workers, with the lock released while joining; none once
 * shutdown has begun (its own join takes them). */
void aq__threads_reap(struct aq_pool *pool);
/* Retire the calling worker if more than floor live: true = it must exit
 * now (its stop hook still to run). Takes the lock. */
bool aq__threads_try_retire(struct aq_pool *pool, unsigned index,
			    unsigned floor);
/* Join every worker thread by the deadline (negative: none); no lock held;
 * no spawns any more. 0, or -ETIMEDOUT with the rest still joinable. */
int aq__threads_join_all(struct aq_pool *pool, int64_t deadline);

/*
 * An elastic pool under backlog: more jobs wait than there are workers,
 * nobody is idle, and there is room for another worker. (A job or two
 * waiting for a worker that is about to take them is not a backlog.)
 * Relaxed loads of read-mostly words on the common path; the decision is
 * re-checked under the lock. Called after a submit and when a worker
 * takes a job.
 */
static inline void aq__threads_maybe_grow(struct aq_pool *pool)
{
	uint32_t idle = atomic_load_explicit(&pool->idle, memory_order_relaxed);
	unsigned live;

	if (AQ__LIKELY(idle != AQ__IDLE_ELASTIC))
		return; /* not elastic, or a worker is idle */
	live = atomic_load_explicit(&pool->nlive, memory_order_relaxed);
	if (live >=
	    atomic_load_explicit(&pool->max_workers, memory_order_relaxed))
		return;
	/* Relaxed: a hint; claims counted, published or not. */
	if ((atomic_load_explicit(&pool->ring.tail, memory_order_relaxed) &
	     ~AQ__RING_CLOSED) -
		    atomic_load_explicit(&pool->ring.head,
					 memory_order_relaxed) <=
	    live)
		return;
	aq__threads_grow(pool);
}

#endif
