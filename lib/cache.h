/* SPDX-License-Identifier: MIT */
/*
 * cache.h - the per-pool cache that recycles job records, and each
 * thread's own short list of one cache's records (see cache.c). Above the
 * record (future.h), below everything that allocates records.
 */
#ifndef AQ__CACHE_H
#define AQ__CACHE_H

#include <stdatomic.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "compat.h"
#include "future.h"
#include "park.h"

/*
 * Recycles records so the steady state does not malloc. It outlives its
 * pool while callers still hold futures: the pool closes it, and the last
 * record to come back frees it. Free records wait in a depot of full
 * batches (AQ__CACHE_BATCH records each, taken or given whole by the
 * threads' own lists) and one partial batch of records given back one by
 * one (see cache.c).
 */
struct aq__cache {
	struct aq__lock lock;
	struct aq_future *batches; /* full batches, linked by next_batch */
	struct aq_future *loose;   /* a partial batch, by next_free */
	unsigned loose_count;      /* records on loose, < AQ__CACHE_BATCH */
	size_t outstanding;        /* records handed out, not yet back (those on
				      a thread's own list too) */
	/* The pool is gone: free records, don't keep them. Written under
	 * the lock; read without it as a hint by a thread that holds one of
	 * the cache's records (which keeps the cache alive). */
	_Atomic bool closed;
	_Atomic uint32_t claims; /* outside claims (aq__cache_claim()) */
};

/* Records a thread moves between its own list and a cache at once. */
#define AQ__CACHE_BATCH 32u
/* Records a thread keeps of its bound cache, at most (cache.c): its
 * list and a spare batch; enough for the depth of a fork-join tree and
 * the jobs in flight around it. */
#define AQ__CACHE_LOCAL_MAX (2 * AQ__CACHE_BATCH)
/* A thread bound lazily to a cache whose pool is open moves to another
 * cache after this many allocations in a row from others (cache.c). */
#define AQ__CACHE_REBIND_AFTER 64u

struct aq__cache *aq__cache_create(void);
/* The pool is done with the cache; it is freed once every record is back. */
void aq__cache_close(struct aq__cache *cache);

/*
 * A thread that is not one of the pool's own (a canceller, the resolver of
 * a dependency) starts or ends work on one of the pool's records: shutdown
 * does not finish while any such claim is held (see pool.c). The count
 * lives here rather than in the pool because a caller holding only a
 * future may take it: its reference keeps the cache, not the pool, alive.
 * Claims nest, and each thread records the caches it holds them on.
 */
void aq__cache_claim(struct aq__cache *cache);
void aq__cache_unclaim(struct aq__cache *cache);
/* Does the calling thread hold a claim on cache? (Also true, to be safe,
 * when it holds claims nested deeper than it can record.) */
bool aq__cache_claimed_here(const struct aq__cache *cache);

/*
 * A thread binds one cache at a time: records of that cache which the
 * thread frees then stay on a short list of its own, and its allocations
 * take from that list first, with no lock and no atomic read-modify-write
 * (a fork-join job allocates and frees on one worker; an outside thread
 * submits a batch of jobs and releases their futures). Records on the
 * list still count as handed out. A worker binds its pool's cache for its
 * whole life (aq__cache_bind()) and unbinds, giving them back, before the
 * pool closes the cache (workers are joined first); any other thread
 * binds lazily, to the cache it first allocates from, and gives its
 * records back as cache.c describes (at the latest when it exits).
 */
void aq__cache_bind(struct aq__cache *cache);
void aq__cache_unbind(void);

#ifdef AQ_TESTING
/* Caches not yet freed, and records of caches not yet freed, in the whole
 * process (test builds only: tests/check_cache.c). */
long aq__cache_live_caches(void);
long aq__cache_live_records(void);
#endif

/* The bound cache and this thread's own free records of it (cache.c). */
struct aq__local_records {
	struct aq__cache *cache; /* bound, or NULL; once count is 0 it may
				    dangle (the cache freed): it is then
				    compared, never followed */
	struct aq_future *free;  /* records of cache, by next_free */
	unsigned count;          /* records on free, <= AQ__CACHE_BATCH */
	struct aq_future *spare; /* NULL, or a full batch of cache */
	unsigned misses;         /* allocations from other caches since the last
				    one from ours (lazy bindings only) */
	unsigned long lent;      /* allocated here and not yet kept back */
	bool pinned;             /* a worker's binding: never moved */
};
extern _Thread_local struct aq__local_records aq__local;

/* aq__future_alloc() found no record on this thread's own list of cache:
 * refill it, bind cache, or take the cache's lock (cache.c). */
struct aq_future *aq__future_alloc_slow(struct aq__cache *cache, uint32_t refs);

/* A record of cache from this thread's own list, initialised as by
 * aq__future_alloc(), or NULL when the list has none: no call, no lock. */
static inline struct aq_future *aq__future_alloc_local(struct aq__cache *cache,
						       uint32_t refs)
{
	struct aq_future *fut = aq__local.free;

	/* Our own list holds only records of the bound cache. */
	if (AQ__LIKELY(fut && cache == aq__local.cache)) {
		aq__local.free = fut->next_free;
		aq__local.count--;
		aq__local.lent++;
		aq__local.misses = 0;
		aq__future_init(fut, cache, refs);
		return fut;
	}
	return NULL;
}

/* A record in state PENDING with refs references, or NULL (-ENOMEM). */
static inline struct aq_future *aq__future_alloc(struct aq__cache *cache,
						 uint32_t refs)
{
	struct aq_future *fut = aq__future_alloc_local(cache, refs);

	return AQ__LIKELY(fut) ? fut : aq__future_alloc_slow(cache, refs);
}
#endif
