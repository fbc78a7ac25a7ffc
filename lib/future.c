/* SPDX-License-Identifier: MIT */
/*
 * future.c - job records and the futures callers hold on them: the state
 * machine, waiting, then-callbacks, reference counting and recycling. A
 * leaf: it calls the primitives (park.h) and posts to channels, nothing
 * above; the pool side finishes records (job.c), helps while waiting
 * (worker.c) and takes a cancelled record out of the timer (job.c).
 *
 * State machine (one 32-bit word, changed only by CAS or by its owner):
 *
 *   PENDING --worker CAS--> RUNNING --job returns--> SUCCEEDED | FAILED
 *   PENDING --cancel CAS--> CANCELLING --arg_destroy done--> CANCELLED
 *
 * Whoever wins the CAS out of PENDING owns the record's job fields until it
 * publishes a final state, so arg_destroy runs exactly once and always
 * before the future resolves. A record that was cancelled while still in
 * the ring is skipped by the worker that later pops it.
 *
 * Waiting is the eventcount of park.h with the state word as both the
 * condition and the word slept on, and `waiters` as the count: a
 * completion with nobody waiting costs no system call.
 *
 * Records come from a per-pool cache (a free list under an aq__lock), and
 * on a worker first from the worker's own short list of that cache's
 * records (aq__cache_bind()), so that a fork-join tree's allocations and
 * frees, which happen on one worker, do not fight over the lock. The
 * cache counts the records it has handed out (those on a worker's own
 * list too), so a pool can be destroyed while callers still hold futures:
 * the last record to come back frees it.
 * A promise (promise.c) is the one record with neither cache nor pool: it
 * is malloc'ed, freed by its last reference, and counted by no pool.
 */
#include <errno.h>
#include <limits.h>
#include <sched.h>
#include <stdint.h>
#include <stdlib.h>

#include "channel.h"
#include "compat.h"
#include "fault.h"
#include "future.h"
#include "park.h"

struct aq__cache *aq__cache_create(void)
{
	struct aq__cache *cache = aq__calloc(1, sizeof(*cache));

	if (!cache)
		return NULL;
	aq__lock_init(&cache->lock);
	atomic_init(&cache->claims, 0);
	return cache;
}

static void cache_free(struct aq__cache *cache)
{
	struct aq_future *fut = cache->free_list;

	while (fut) {
		struct aq_future *next = fut->next_free;

		free(fut);
		fut = next;
	}
	free(cache);
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

void aq__cache_close(struct aq__cache *cache)
{
	bool last;

	aq__lock(&cache->lock);
	cache->closed = true;
	last = cache->outstanding == 0;
	aq__unlock(&cache->lock);
	if (last)
		cache_free(cache);
}

/* Records a bound thread keeps to itself, at most: enough for the
 * depth of a fork-join tree and the jobs in flight around it. */
#define LOCAL_RECORDS_MAX 64

/*
 * A thread keeps a record it frees only while it has allocated more than
 * it kept (lent): a worker that only runs what outside threads submit
 * keeps none, so they find them back in the shared list and the cache
 * allocates no more records than are live at once, plus those that a
 * worker's own submits left on its list.
 */
_Thread_local struct aq__local_records aq__local;

void aq__cache_bind(struct aq__cache *cache)
{
	aq__local.cache = cache;
}

void aq__cache_unbind(void)
{
	struct aq__cache *cache = aq__local.cache;
	bool free_cache;

	aq__local.cache = NULL;
	if (!cache)
		return;
	aq__lock(&cache->lock);
	cache->outstanding -= aq__local.count;
	while (aq__local.free) {
		struct aq_future *fut = aq__local.free;

		aq__local.free = fut->next_free;
		if (cache->closed) {
			free(fut);
		} else {
			fut->next_free = cache->free_list;
			cache->free_list = fut;
		}
	}
	aq__local.count = 0;
	aq__local.lent = 0;
	free_cache = cache->closed && cache->outstanding == 0;
	aq__unlock(&cache->lock);
	if (free_cache)
		cache_free(cache);
}

struct aq_future *aq__future_alloc_new(struct aq__cache *cache, uint32_t refs)
{
	struct aq_future *fut = aq__malloc(sizeof(*fut));

	if (!fut) {
		aq__lock(&cache->lock);
		cache->outstanding--;
		aq__unlock(&cache->lock);
		return NULL;
	}
	aq__future_init(fut, cache, refs);
	return fut;
}

/* Put a record of a cache back on its free list, or free it (and the cache
 * after the last) once the pool has closed the cache. */
static inline __attribute__((always_inline)) void
cache_put(struct aq__cache *cache, struct aq_future *fut)
{
	bool free_cache = false;

	if (cache == aq__local.cache && aq__local.lent &&
	    aq__local.count < LOCAL_RECORDS_MAX) {
		/* Kept by this worker, still counted as handed out: the cache
		 * is not closed while a worker of its pool is bound to it. */
		aq__local.lent--;
		fut->next_free = aq__local.free;
		aq__local.free = fut;
		aq__local.count++;
		return;
	}
	aq__lock(&cache->lock);
	cache->outstanding--;
	if (AQ__UNLIKELY(cache->closed)) {
		free(fut);
		free_cache = cache->outstanding == 0;
	} else {
		fut->next_free = cache->free_list;
		cache->free_list = fut;
	}
	aq__unlock(&cache->lock);
	if (free_cache)
		cache_free(cache);
}

/* Give a record whose last reference is gone back to its cache. */
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
	if (!fut->cache) { /* a promise (promise.c): no pool to go back to */
		if (fut->result_destroy && fut->result)
			fut->result_destroy(fut->result);
		free(fut);
		return;
	}
	cache_put(fut->cache, fut);
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
	if (AQ__LIKELY(fut->cache && !fut->deps && !fut->message))
		cache_put(fut->cache, fut);
	else
		future_put_chain(fut);
}

/*
 * The then-list's end marker: once a future resolves its list is swapped
 * for this, and a registration that finds it runs (or posts) at once.
 */
struct aq__then aq__then_done;
#define THEN_DONE (&aq__then_done)

/* Run one registration's callback and release what it holds: on the
 * resolving thread, or from aq_channel_dispatch() through node.run. */
static void then_run(struct aq__chan_node *node)
{
	struct aq__then *then = (struct aq__then *)(void *)node;

	then->fn(then->fut, then->user);
	aq__future_put(then->fut);
	free(then);
}

static void then_deliver(struct aq__then *then)
{
	then->node.run = then_run;
	if (then->channel)
		aq__channel_post(then->channel, &then->node);
	else
		then_run(&then->node);
}

/* The next registration of a list. */
static inline struct aq__then *then_next(struct aq__then *then)
{
	return (struct aq__then *)(void *)then->node.next;
}

/* Deliver a then-list taken from a record (newest first), oldest first.
 * THEN_DONE means another thread took it: nothing to do. */
static void then_deliver_list(struct aq__then *list)
{
	struct aq__then *ordered = NULL;

	if (list == THEN_DONE)
		return;
	while (list) {
		struct aq__then *next = then_next(list);

		list->node.next = (struct aq__chan_node *)(void *)ordered;
		ordered = list;
		list = next;
	}
	while (ordered) {
		struct aq__then *next = then_next(ordered);

		then_deliver(ordered);
		ordered = next;
	}
}

void aq__future_deliver(struct aq__then *list)
{
	then_deliver_list(list);
}

AQ_API int aq_future_then(aq_future *fut, aq_then_fn fn, void *user,
			  aq_channel *channel)
{
	struct aq__then *then;

	if (!fut || !fn)
		return -EINVAL;
	then = aq__malloc(sizeof(*then));
	if (!then)
		return -ENOMEM;
	then->fn = fn;
	then->user = user;
	then->channel = channel;
	aq__future_then_node(fut, then);
	return 0;
}

void aq__future_then_node(struct aq_future *fut, struct aq__then *then)
{
	struct aq__then *head;

	then->fut = fut;
	/* Relaxed: the caller's own reference keeps the record alive while
	 * we add ours. */
	atomic_fetch_add_explicit(&fut->refs, 1, memory_order_relaxed);

	/* Acquire on reload: seeing THEN_DONE means seeing the outcome. */
	head = atomic_load_explicit(&fut->then_head, memory_order_acquire);
	for (;;) {
		if (head == THEN_DONE) {
			then->node.next = NULL;
			then_deliver(then);
			return;
		}
		/*
		 * Resolved, but the resolver has not swapped the list yet: a
		 * caller who saw the outcome (aq_future_get returned) must
		 * not have its callback run later on the resolver's thread.
		 * Take the list and deliver it, ours last. seq_cst: ordered
		 * after our read of then_head above.
		 */
		if (aq__state_final(atomic_load(&fut->state))) {
			then_deliver_list(atomic_exchange_explicit(
				&fut->then_head, THEN_DONE,
				memory_order_acquire));
			then->node.next = NULL;
			then_deliver(then);
			return;
		}
		then->node.next = (struct aq__chan_node *)(void *)head;
		/* Release: our node's fields travel with the pointer. */
		if (atomic_compare_exchange_weak_explicit(
			    &fut->then_head, &head, then, memory_order_release,
			    memory_order_acquire))
			return;
	}
}

int aq__future_take(struct aq_future *fut, uint32_t state, uint32_t *from)
{
	for (;;) {
		if (state == AQ__STATE_SETTLING) {
			/* Its last dependency's resolver is taking a claim on
			 * the pool and gives the record back, WAITING, a few
			 * instructions later (deps.c). */
			sched_yield();
			state = atomic_load(&fut->state);
			continue;
		}
		if (state == AQ_STATE_RUNNING) {
			/* Not interrupted, but the job can see the request.
			 * Relaxed: a flag the job polls; no data rides on
			 * it. */
			atomic_store_explicit(&fut->cancel_requested, true,
					      memory_order_relaxed);
			return -EBUSY;
		}
		if (state != AQ_STATE_PENDING && state != AQ_STATE_DELAYED &&
		    state != AQ_STATE_RETRYING && state != AQ_STATE_WAITING)
			return -EALREADY; /* final, or another canceller */
		/* Acquire on success: we take over the job fields. */
		if (atomic_compare_exchange_weak_explicit(
			    &fut->state, &state, AQ__STATE_CANCELLING,
			    memory_order_acquire, memory_order_relaxed)) {
			*from = state;
			return 0;
		}
	}
}

int aq__future_wait(struct aq_future *fut, int64_t deadline)
{
	uint32_t state;

	/* The waiter side of the eventcount (park.h). The state word is the
	 * condition itself, so each seq_cst re-read of it after counting in
	 * is as good a key as the first: a later change wakes the commit. */
	(void)aq__ec_prepare(&fut->state, &fut->waiters);
	while (!aq__state_final(state = atomic_load(&fut->state))) {
		if (aq__ec_commit(&fut->state, state, deadline) == -ETIMEDOUT &&
		    !aq__state_final(state = atomic_load(&fut->state)))
			break;
	}
	aq__ec_leave(&fut->waiters);
	return aq__state_final(state) ? (int)state : -ETIMEDOUT;
}

AQ_API int aq_future_error(const aq_future *cfut, struct aq_error *err)
{
	aq_future *fut = (aq_future *)(uintptr_t)cfut;

	if (!fut || !err)
		return -EINVAL;
	/* Acquire: the record's fields were written before FAILED. */
	if (atomic_load_explicit(&fut->state, memory_order_acquire) !=
	    AQ_STATE_FAILED)
		return -EAGAIN;
	err->job_id = fut->id;
	err->attempts = fut->attempt;
	err->code = fut->code;
	err->message = fut->message;
	err->first_attempt_ns = fut->first_attempt_ns;
	err->last_attempt_ns = fut->last_attempt_ns;
	return 0;
}

AQ_API enum aq_state aq_future_state(const aq_future *fut)
{
	uint32_t state;

	if (!fut)
		return AQ_STATE_INVALID;
	/* Relaxed: a snapshot; callers who then read the result go through
	 * aq_future_get(), which acquires. */
	state = atomic_load_explicit(&((aq_future *)fut)->state,
				     memory_order_relaxed);
	if (state == AQ__STATE_CANCELLING)
		return AQ_STATE_PENDING; /* becomes CANCELLED in a moment */
	if (state == AQ__STATE_SETTLING)
		return AQ_STATE_WAITING; /* is WAITING again in a moment */
	if (state == AQ_STATE_RUNNING && !fut->cache)
		return AQ_STATE_PENDING; /* a promise being completed */
	return (enum aq_state)state;
}

AQ_API aq_future *aq_future_retain(aq_future *fut)
{
	/* Relaxed: the caller's own reference keeps the record alive while
	 * we add one; the release in aq__future_put() orders what follows. */
	if (fut)
		atomic_fetch_add_explicit(&fut->refs, 1, memory_order_relaxed);
	return fut;
}

AQ_API void aq_future_release(aq_future *fut)
{
	if (fut)
		aq__future_put(fut);
}
