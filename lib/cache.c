/* SPDX-License-Identifier: MIT */
/*
 * cache.c - the per-pool cache of job records (cache.h, which has the
 * inline allocation fast path): where records come from and where they go
 * back when their last reference is gone, each thread's own short list of
 * them, and the cache's lifetime, which can outlast its pool's.
 *
 * The scheme is Bonwick and Adams' magazines and depot ("Magazines and
 * Vmem", USENIX 2001), cut down to one cache per thread. The cache's
 * depot (under an aq__lock) holds full batches of AQ__CACHE_BATCH (32)
 * free records and one partial batch. A thread binds one cache at a time
 * and keeps records of it on its own list (at most a batch) and a spare
 * full batch: it allocates from them and frees onto them with no lock and
 * no atomic read-modify-write, and meets the lock once per batch: an
 * empty list takes the spare, else a batch from the depot (or its partial
 * one), else a new record; a full list becomes the spare and the old
 * spare goes to the depot, whole. A record freed on a thread bound to
 * another cache, or on one that has not allocated more than it kept
 * ("lent": a worker running an outside thread's jobs, a thread that only
 * releases), goes to the depot alone, under the lock, so such threads do
 * not hoard.
 *
 * Bound: a thread keeps at most AQ__CACHE_LOCAL_MAX (64) records, all of
 * one cache. A cache thus makes no more records than were live at once
 * plus those on the threads' lists.
 *
 * Binding. A worker binds its pool's cache for its life (aq__cache_bind())
 * and never moves; it allocates from other caches under their lock. Any
 * other thread binds lazily to the cache it first allocates from, and
 * moves to another cache it allocates from when its list is empty, when
 * its cache is closed, or after AQ__CACHE_REBIND_AFTER (64) allocations
 * in a row from others: one alternating between two pools keeps its list
 * (moving it each time would cost a batch each way per job) and takes the
 * other's lock, one that moved on to another pool follows it.
 *
 * Lifetime. The cache counts the records it has handed out, those on the
 * threads' lists too, so a pool can be destroyed while callers still hold
 * futures or records sit on some thread's list: the last record to come
 * back frees the cache. A thread gives its records back when it moves to
 * another cache, when it frees a record of its cache after the pool
 * closed it, when it destroys the pool itself (aq__cache_close()), and
 * when it exits (a pthread key's destructor). Until then a destroyed
 * pool's cache and the records on one thread's list stay allocated: the
 * weak spot of the scheme, bounded per thread by one cache and the list.
 * A bound thread follows its cache pointer only while it holds records of
 * it (which keep it alive); with none the pointer may dangle and is only
 * compared. The closed flag is read without the lock as a hint; every
 * decision that frees is taken under the lock.
 */
#include <pthread.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdlib.h>

#include "compat.h"
#include "fault.h"
#include "cache.h"
#include "future.h"
#include "park.h"

#ifdef AQ_TESTING
/* Process-global on purpose, and only in test builds, as fault.c's
 * counters. Relaxed: counts read after the threads that change them are
 * joined; no ordering, so a thread sanitizer still sees only the
 * library's own synchronisation. */
static _Atomic long live_caches, live_records;
#define COUNT_LIVE(counter, delta)                                             \
	atomic_fetch_add_explicit(&(counter), (delta), memory_order_relaxed)

long aq__cache_live_caches(void)
{
	return atomic_load_explicit(&live_caches, memory_order_relaxed);
}

long aq__cache_live_records(void)
{
	return atomic_load_explicit(&live_records, memory_order_relaxed);
}
#else
#define COUNT_LIVE(counter, delta) ((void)0)
#endif

struct aq__cache *aq__cache_create(void)
{
	struct aq__cache *cache = aq__calloc(1, sizeof(*cache));

	if (!cache)
		return NULL;
	aq__lock_init(&cache->lock);
	atomic_init(&cache->closed, false);
	atomic_init(&cache->claims, 0);
	COUNT_LIVE(live_caches, 1);
	return cache;
}

/* Free a list of records linked by next_free. */
static void records_free(struct aq_future *fut)
{
	while (fut) {
		struct aq_future *next = fut->next_free;

		free(fut);
		COUNT_LIVE(live_records, -1);
		fut = next;
	}
}

/* Free a depot's records: its full batches and its partial one. */
static void depot_free(struct aq_future *batches, struct aq_future *loose)
{
	while (batches) {
		struct aq_future *next = batches->next_batch;

		records_free(batches);
		batches = next;
	}
	records_free(loose);
}

static void cache_free(struct aq__cache *cache)
{
	depot_free(cache->batches, cache->loose);
	free(cache);
	COUNT_LIVE(live_caches, -1);
}

/*
 * The caches this thread holds claims on, innermost last. Claims nest as
 * calls do (a callback run under one may cancel another job), so a short
 * stack does; past its depth they are only counted.
 */
#define CLAIMS_RECORDED 8
static _Thread_local const struct aq__cache *claims_held[CLAIMS_RECORDED];
static _Thread_local unsigned claims_depth;

void aq__cache_claim(struct aq__cache *cache)
{
	atomic_fetch_add(&cache->claims, 1); /* seq_cst: see aq_future_cancel */
	if (claims_depth < CLAIMS_RECORDED)
		claims_held[claims_depth] = cache;
	claims_depth++;
}

/*
 * The wake after the last claim ends may reach a cache already freed by a
 * shutdown that saw the count reach zero and a release of the last record:
 * a private futex wake on such an address finds no waiter and touches
 * nothing.
 */
void aq__cache_unclaim(struct aq__cache *cache)
{
	claims_depth--;
	if (atomic_fetch_sub(&cache->claims, 1) == 1)
		aq__park_wake(&cache->claims, INT32_MAX);
}

bool aq__cache_claimed_here(const struct aq__cache *cache)
{
	for (unsigned i = 0; i < claims_depth && i < CLAIMS_RECORDED; i++)
		if (claims_held[i] == cache)
			return true;
	return claims_depth > CLAIMS_RECORDED;
}

/* ---- the depot: the cache's free records, under its lock ---------------- */

/* One record into the depot: onto the partial batch, which becomes a full
 * one when it reaches AQ__CACHE_BATCH. */
static void depot_put_one(struct aq__cache *cache, struct aq_future *fut)
{
	fut->next_free = cache->loose;
	cache->loose = fut;
	if (++cache->loose_count == AQ__CACHE_BATCH) {
		fut->next_batch = cache->batches;
		cache->batches = fut;
		cache->loose = NULL;
		cache->loose_count = 0;
	}
}

/* A list of free records for a thread's own list, and their number in *n:
 * a full batch if there is one, else the partial one (0: none). */
static struct aq_future *depot_take(struct aq__cache *cache, unsigned *n)
{
	struct aq_future *list = cache->batches;

	if (list) {
		cache->batches = list->next_batch;
		*n = AQ__CACHE_BATCH;
		return list;
	}
	list = cache->loose;
	*n = cache->loose_count;
	cache->loose = NULL;
	cache->loose_count = 0;
	return list;
}

/* One free record, or NULL: from the partial batch, which a full batch
 * refills when it is empty. */
static struct aq_future *depot_take_one(struct aq__cache *cache)
{
	struct aq_future *fut;

	if (!cache->loose && cache->batches) {
		cache->loose = cache->batches;
		cache->batches = cache->loose->next_batch;
		cache->loose_count = AQ__CACHE_BATCH;
	}
	fut = cache->loose;
	if (fut) {
		cache->loose = fut->next_free;
		cache->loose_count--;
	}
	return fut;
}

/*
 * n records (a list linked by next_free) come back to the cache: into the
 * depot, or freed once the pool has closed the cache. True when they were
 * the closed cache's last: the caller frees it after the unlock.
 */
static bool cache_take_back(struct aq__cache *cache, struct aq_future *list,
			    unsigned n)
{
	cache->outstanding -= n;
	/* Relaxed: the lock orders it (close writes it under the lock). */
	if (AQ__UNLIKELY(atomic_load_explicit(&cache->closed,
					      memory_order_relaxed))) {
		records_free(list);
		return cache->outstanding == 0;
	}
	if (n == AQ__CACHE_BATCH) { /* a thread's half list: a batch whole */
		list->next_batch = cache->batches;
		cache->batches = list;
		return false;
	}
	while (list) {
		struct aq_future *next = list->next_free;

		depot_put_one(cache, list);
		list = next;
	}
	return false;
}

/* ---- a thread's own list ------------------------------------------------- */

/*
 * A thread keeps a record it frees only while it has allocated more than
 * it kept (lent): a worker that only runs what outside threads submit
 * keeps none, so they find them back in the depot and the cache
 * allocates no more records than are live at once, plus those on the
 * threads' own lists.
 */
_Thread_local struct aq__local_records aq__local;

/*
 * Lazy bindings and thread exit: the first one on a thread sets a
 * pthread key whose destructor gives the records back when the thread
 * exits. The key is created once per process and never changes; it holds
 * no state of any pool.
 */
enum bind_state {
	BIND_UNKEYED, /* may bind; the key is not set on this thread yet */
	BIND_KEYED,   /* the key is set: the thread's exit unbinds */
	BIND_NEVER,   /* exiting, or no key to be had: lock path only */
};
static _Thread_local unsigned char bind_state;
static pthread_once_t bind_key_once = PTHREAD_ONCE_INIT;
static pthread_key_t bind_key;
/* Set once under bind_key_once, cleared when the key is deleted. */
static _Atomic bool bind_key_ok;

/* Give every record this thread keeps back to its cache, and unbind. */
static void local_unbind(void)
{
	struct aq__cache *cache = aq__local.cache;
	struct aq_future *list = aq__local.free, *spare = aq__local.spare;
	unsigned n = aq__local.count;
	bool last;

	aq__local = (struct aq__local_records){ 0 };
	if (n == 0 && !spare)
		return; /* the cache may be gone: do not follow it */
	/* Our records count as handed out, so the cache is still there. */
	aq__lock(&cache->lock);
	last = spare && cache_take_back(cache, spare, AQ__CACHE_BATCH);
	if (n) /* the last, if the spare was not */
		last = cache_take_back(cache, list, n);
	aq__unlock(&cache->lock);
	if (last)
		cache_free(cache);
}

static void bind_thread_exit(void *unused)
{
	(void)unused;
	bind_state = BIND_NEVER; /* a later destructor's alloc: no rebind */
	local_unbind();
}

static void bind_key_create(void)
{
	atomic_store(&bind_key_ok,
		     pthread_key_create(&bind_key, bind_thread_exit) == 0);
}

/* The library is unloaded (dlclose()) or the process exits: threads that
 * exit later must not call into code that may be gone, and threads that
 * bind later take the lock path (a deleted key must not be set). */
__attribute__((destructor)) static void bind_key_delete(void)
{
	if (atomic_exchange(&bind_key_ok, false))
		pthread_key_delete(bind_key);
}

void aq__cache_bind(struct aq__cache *cache)
{
	if (aq__local.cache != cache)
		local_unbind();
	aq__local.cache = cache;
	aq__local.pinned = true;
}

void aq__cache_unbind(void)
{
	local_unbind();
}

/*
 * Bind this thread to cache if it may: true when it is bound to it now,
 * with an empty list. A worker's binding stays; so does a lazy one whose
 * cache is open and which holds records, until AQ__CACHE_REBIND_AFTER misses.
 */
static bool local_bind(struct aq__cache *cache)
{
	if (aq__local.cache == cache)
		return true;
	if (aq__local.pinned || bind_state == BIND_NEVER)
		return false;
	if (aq__local.count || aq__local.spare) {
		/* Relaxed: a hint (see struct aq__cache); our records keep
		 * the cache alive while we look. */
		if (!atomic_load_explicit(&aq__local.cache->closed,
					  memory_order_relaxed) &&
		    ++aq__local.misses < AQ__CACHE_REBIND_AFTER)
			return false;
		local_unbind();
	}
	if (bind_state == BIND_UNKEYED) {
		pthread_once(&bind_key_once, bind_key_create);
		if (!atomic_load(&bind_key_ok) ||
		    pthread_setspecific(bind_key, &aq__local) != 0) {
			bind_state = BIND_NEVER;
			return false;
		}
		bind_state = BIND_KEYED;
	}
	aq__local = (struct aq__local_records){ .cache = cache };
	return true;
}

void aq__cache_close(struct aq__cache *cache)
{
	struct aq_future *batches, *loose;
	bool last;

	/* The destroying thread gives its own records back at once. */
	if (aq__local.cache == cache)
		local_unbind();
	aq__lock(&cache->lock);
	/* Relaxed: the lock orders it for those who read it under the lock;
	 * the others take it as a hint (see struct aq__cache). */
	atomic_store_explicit(&cache->closed, true, memory_order_relaxed);
	last = cache->outstanding == 0;
	/* No record is taken from a closed cache: free the depot now, not
	 * when the last future comes back. */
	batches = cache->batches;
	loose = cache->loose;
	cache->batches = cache->loose = NULL;
	cache->loose_count = 0;
	aq__unlock(&cache->lock);
	depot_free(batches, loose);
	if (last)
		cache_free(cache);
}

/* ---- allocation and return ----------------------------------------------- */

/* A new record, counted as handed out already by the caller, or NULL. */
static struct aq_future *record_new(struct aq__cache *cache, uint32_t refs)
{
	struct aq_future *fut = aq__malloc(sizeof(*fut));

	if (!fut) {
		aq__lock(&cache->lock);
		cache->outstanding--;
		aq__unlock(&cache->lock);
		return NULL;
	}
	COUNT_LIVE(live_records, 1);
	aq__future_init(fut, cache, refs);
	return fut;
}

struct aq_future *aq__future_alloc_slow(struct aq__cache *cache, uint32_t refs)
{
	struct aq_future *fut;
	unsigned n;

	if (!local_bind(cache)) {
		/* Another cache is bound here: one record, under the lock. */
		aq__lock(&cache->lock);
		fut = depot_take_one(cache);
		cache->outstanding++;
		aq__unlock(&cache->lock);
		if (!fut)
			return record_new(cache, refs);
		aq__future_init(fut, cache, refs);
		return fut;
	}
	/* Bound to cache, our list empty: the spare batch, else a batch (or
	 * what there is) from the depot, else a new record. */
	fut = aq__local.spare;
	n = AQ__CACHE_BATCH;
	if (fut) {
		aq__local.spare = NULL;
	} else {
		aq__lock(&cache->lock);
		fut = depot_take(cache, &n);
		cache->outstanding += n ? n : 1;
		aq__unlock(&cache->lock);
		if (!fut) {
			fut = record_new(cache, refs);
			if (fut)
				aq__local.lent++;
			return fut;
		}
	}
	aq__local.free = fut->next_free;
	aq__local.count = n - 1;
	aq__local.lent++;
	aq__local.misses = 0;
	aq__future_init(fut, cache, refs);
	return fut;
}

/* A record comes back and cache_put() could not keep it on our list. */
static __attribute__((noinline)) void cache_put_slow(struct aq__cache *cache,
						     struct aq_future *fut)
{
	bool last;

	if (cache == aq__local.cache) {
		/* Relaxed: a hint (see struct aq__cache); fut keeps the cache
		 * alive. */
		if (atomic_load_explicit(&cache->closed,
					 memory_order_relaxed)) {
			/* A release after the pool's destroy: the records we
			 * keep of it go too, and the binding. */
			local_unbind();
		} else if (aq__local.lent &&
			   aq__local.count == AQ__CACHE_BATCH) {
			/* Our list is a full batch: it becomes the spare, and
			 * the spare before it, if any, goes to the depot. */
			struct aq_future *old = aq__local.spare;

			aq__local.spare = aq__local.free;
			aq__local.lent--;
			fut->next_free = NULL;
			aq__local.free = fut;
			aq__local.count = 1;
			if (old) {
				aq__lock(&cache->lock);
				last = cache_take_back(cache, old,
						       AQ__CACHE_BATCH);
				aq__unlock(&cache->lock);
				if (last) /* cannot be: we keep some */
					cache_free(cache);
			}
			return;
		}
	}
	fut->next_free = NULL;
	aq__lock(&cache->lock);
	last = cache_take_back(cache, fut, 1);
	aq__unlock(&cache->lock);
	if (last)
		cache_free(cache);
}

/*
 * Can this thread keep a record of cache on its own list now? Only when
 * its list is bound to cache (lent is 0 when unbound, so cache is not
 * NULL), it has lent records, its list has room, and the pool is open.
 * Relaxed load of closed: a hint (see struct aq__cache); the record
 * keeps the cache alive. A stale "open" only keeps the record on our
 * list until the binding ends.
 */
static inline bool local_may_keep(const struct aq__cache *cache)
{
	return cache == aq__local.cache && aq__local.lent &&
	       aq__local.count < AQ__CACHE_BATCH &&
	       !atomic_load_explicit(&cache->closed, memory_order_relaxed);
}

static inline void local_keep(struct aq_future *fut)
{
	aq__local.lent--;
	fut->next_free = aq__local.free;
	aq__local.free = fut;
	aq__local.count++;
}

/* A promise (promise.c) has no pool to go back to: it is freed. */
static __attribute__((noinline)) void promise_free(struct aq_future *fut)
{
	if (fut->result_destroy && fut->result)
		fut->result_destroy(fut->result);
	free(fut);
}

/* Put a record whose last reference is gone back: on our own list when we
 * may keep it (never a promise: local_may_keep() is false for its NULL
 * cache), else into its cache's depot, or freed (and the cache after its
 * last record) once the pool has closed the cache; a promise is freed. */
static inline __attribute__((always_inline)) void
cache_put(struct aq_future *fut)
{
	if (AQ__LIKELY(local_may_keep(fut->cache)))
		local_keep(fut);
	else if (fut->cache)
		cache_put_slow(fut->cache, fut);
	else
		promise_free(fut);
}

/* Give a record whose last reference is gone back, with what it owns. */
static void future_recycle(struct aq_future *fut)
{
	/* free(NULL) is common here: skip the calls. */
	if (fut->message) {
		free(fut->message);
		fut->message = NULL;
	}
	if (fut->deps) {
		free(fut->deps);
		fut->deps = NULL;
		fut->ndeps = 0;
	}
	cache_put(fut);
}

/*
 * The last reference to a record that holds others (its dependencies, see
 * aq__future_put()), a message or no cache is gone: recycle it and every
 * record that goes with it.
 */
static __attribute__((noinline)) void future_put_chain(struct aq_future *fut)
{
	struct aq_future *todo;

	/*
	 * A record holds references to the jobs it ran after, which may be
	 * the last ones, and so on down a chain: release them with a work
	 * list instead of recursion, so a long chain cannot overflow the
	 * stack. Records on the list are ours (no references left), so
	 * next_free is free to link them.
	 */
	fut->next_free = NULL;
	todo = fut;
	while (todo) {
		struct aq_future *rec = todo;

		todo = rec->next_free;
		for (unsigned i = 0; i < rec->ndeps; i++) {
			struct aq_future *dep = rec->deps[i];

			/* acq_rel, as in aq__future_put() (future.h). */
			if (atomic_fetch_sub_explicit(
				    &dep->refs, 1, memory_order_acq_rel) == 1) {
				dep->next_free = todo;
				todo = dep;
			}
		}
		future_recycle(rec);
	}
}

void aq__future_put_last(struct aq_future *fut)
{
	/* The common record: a pool's, with no dependencies or message. */
	if (AQ__LIKELY(!fut->deps && !fut->message))
		cache_put(fut);
	else
		future_put_chain(fut);
}
