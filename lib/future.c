/* SPDX-License-Identifier: MIT */
/*
 * future.c - job records and the futures callers hold on them: the state
 * machine, waiting, cancellation, reference counting and recycling.
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
 * Waking waiters is a Dekker handshake on two words: a waiter raises
 * `waiters` and then re-reads `state`; the completer stores `state` and then
 * reads `waiters`. Both sides use seq_cst, so at least one sees the other:
 * either the waiter sees the final state, or the completer sees a waiter
 * and makes the futex wake call. A completion with nobody waiting therefore
 * costs no system call.
 *
 * Records come from a per-pool cache (a free list under an aq__lock). The
 * cache counts the records it has handed out, so a pool can be destroyed
 * while callers still hold futures: the last record to come back frees it.
 * A promise (promise.c) is the one record with neither cache nor pool: it
 * is malloc'ed, freed by its last reference, and counted by no pool.
 */
#include <errno.h>
#include <limits.h>
#include <stdint.h>
#include <stdlib.h>

#include "compat.h"
#include "fault.h"
#include "future.h"
#include "park.h"
#include "pool.h"
#include "timer.h"

/* Bounded spin before a waiter parks: long enough to catch a short job's
 * completion without a system call, short enough not to burn a core. */
#define GET_SPIN_ITERATIONS 2000

struct aq__cache *aq__cache_create(void)
{
	struct aq__cache *cache = aq__calloc(1, sizeof(*cache));

	if (!cache)
		return NULL;
	aq__lock_init(&cache->lock);
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

struct aq_future *aq__future_alloc(struct aq__cache *cache, uint32_t refs)
{
	struct aq_future *fut;

	aq__lock(&cache->lock);
	fut = cache->free_list;
	if (fut)
		cache->free_list = fut->next_free;
	cache->outstanding++;
	aq__unlock(&cache->lock);

	if (!fut) {
		fut = aq__malloc(sizeof(*fut));
		if (!fut) {
			aq__lock(&cache->lock);
			cache->outstanding--;
			aq__unlock(&cache->lock);
			return NULL;
		}
	}
	aq__future_init(fut, cache, refs);
	return fut;
}

void aq__future_init(struct aq_future *fut, struct aq__cache *cache,
		     uint32_t refs)
{
	/* Plain initialisation: the record is not shared until it is pushed
	 * on the ring (or handed out by aq_future_create()), whose release
	 * store (or the caller's own hand-off) publishes these writes. */
	atomic_init(&fut->state, AQ_STATE_PENDING);
	atomic_init(&fut->waiters, 0);
	atomic_init(&fut->refs, refs);
	fut->code = 0;
	fut->result = NULL;
	fut->cache = cache;
	fut->next_free = NULL;
	fut->message = NULL;
	fut->timer_user = false;
	atomic_init(&fut->cancel_requested, false);
	fut->timer_index = SIZE_MAX;
	fut->attempt = 0;
	fut->first_attempt_ns = fut->last_attempt_ns = 0;
	fut->yielded = false;
	fut->runs = 0;
	fut->deadline_ns = 0;
	fut->retry = NULL;
	atomic_init(&fut->then_head, NULL);
	fut->deps = NULL;
	fut->ndeps = 0;
	fut->pool = NULL;
	fut->id = 0;
	fut->arg_destroy = NULL;
}

/* Give a record whose last reference is gone back to its cache. */
static void future_recycle(struct aq_future *fut)
{
	struct aq__cache *cache = fut->cache;
	bool free_cache = false;

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
	if (!cache) { /* a promise (promise.c): it has no pool to go back to */
		if (fut->result_destroy && fut->result)
			fut->result_destroy(fut->result);
		free(fut);
		return;
	}
	aq__lock(&cache->lock);
	cache->outstanding--;
	if (cache->closed) {
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

void aq__future_put(struct aq_future *fut)
{
	struct aq_future *todo;

	/* acq_rel: our last accesses to the record happen before whoever
	 * drops the final reference recycles it (the acquire half). */
	if (atomic_fetch_sub_explicit(&fut->refs, 1, memory_order_acq_rel) != 1)
		return;
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

			/* acq_rel, as above. */
			if (atomic_fetch_sub_explicit(&dep->refs, 1,
						      memory_order_acq_rel) ==
			    1) {
				dep->next_free = todo;
				todo = dep;
			}
		}
		future_recycle(rec);
	}
}

/*
 * The then-list's end marker: once a future resolves its list is swapped
 * for this, and a registration that finds it runs (or posts) at once.
 */
static struct aq__then then_done_marker;
#define THEN_DONE (&then_done_marker)

void aq__then_run(struct aq__then *then)
{
	then->fn(then->fut, then->user);
	aq__future_put(then->fut);
	free(then);
}

static void then_deliver(struct aq__then *then)
{
	if (then->channel)
		aq__channel_post(then->channel, then);
	else
		aq__then_run(then);
}

/* Deliver a then-list taken from a record (newest first), oldest first.
 * THEN_DONE means another thread took it: nothing to do. */
static void then_deliver_list(struct aq__then *list)
{
	struct aq__then *ordered = NULL;

	if (list == THEN_DONE)
		return;
	while (list) {
		struct aq__then *next = list->next;

		list->next = ordered;
		ordered = list;
		list = next;
	}
	while (ordered) {
		struct aq__then *next = ordered->next;

		then_deliver(ordered);
		ordered = next;
	}
}

/*
 * Publish a final state (result and code already written), wake any
 * waiter (the store half of the handshake in the file comment), and hand
 * the then-callbacks their turn, in registration order. A registration
 * that sees the final state before we swap the list takes the list
 * itself (see aq__future_then_node()): whoever swaps in THEN_DONE first
 * delivers it.
 */
static void future_resolve(struct aq_future *fut, uint32_t final_state)
{
	atomic_store(&fut->state, final_state);
	if (atomic_load(&fut->waiters))
		aq__park_wake(&fut->state, INT_MAX);
	/* Acquire: pairs with the registrations' release CAS, so their
	 * nodes' fields are visible. */
	then_deliver_list(atomic_exchange_explicit(&fut->then_head, THEN_DONE,
						   memory_order_acquire));
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
			then->next = NULL;
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
			then->next = NULL;
			then_deliver(then);
			return;
		}
		then->next = head;
		/* Release: our node's fields travel with the pointer. */
		if (atomic_compare_exchange_weak_explicit(
			    &fut->then_head, &head, then, memory_order_release,
			    memory_order_acquire))
			return;
	}
}

void aq__future_finish(struct aq_future *fut, uint32_t final_state, int code,
		       void *result)
{
	struct aq_pool *pool = fut->pool;
	bool timer_user = fut->timer_user;

	if (fut->arg_destroy)
		fut->arg_destroy(fut->arg);
	fut->result = result;
	fut->code = code;
	if (pool) /* a promise (promise.c) belongs to no pool's statistics */
		aq__stats_outcome(pool, final_state);
	future_resolve(fut, final_state);
	/* After the resolve the caller may release and the pool may go, but
	 * not before this count drops: shutdown waits for it. */
	if (timer_user)
		aq__pool_timer_user_done(pool);
}

bool aq__future_claim(struct aq_future *fut, bool cancel)
{
	uint32_t expected = AQ_STATE_PENDING;

	/*
	 * acquire on success: we take over the job fields, and see the writes
	 * of whoever made the record PENDING (submitter, timer, or the worker
	 * that queued it again after AQ_YIELD).
	 */
	if (!atomic_compare_exchange_strong_explicit(
		    &fut->state, &expected,
		    cancel ? AQ__STATE_CANCELLING : AQ_STATE_RUNNING,
		    memory_order_acquire, memory_order_relaxed))
		return false;
	if (cancel) {
		aq__future_finish(fut, AQ_STATE_CANCELLED, 0, NULL);
		return false;
	}
	return true;
}

/* The outcome of a resolved future, in aq_future_get()'s terms. */
static int future_outcome(const aq_future *fut, uint32_t state, void **result)
{
	if (state == AQ_STATE_CANCELLED)
		return -ECANCELED;
	if (state == AQ_STATE_EXPIRED)
		return -ETIME;
	if (state == AQ_STATE_SKIPPED)
		return -EPIPE;
	if (result)
		*result = fut->result;
	return fut->code;
}

static int future_cancel(aq_future *fut, uint32_t state);

static bool future_is_final(void *fut)
{
	/* seq_cst: the helping waiter's re-check in the handshake. */
	return aq__state_final(atomic_load(&((aq_future *)fut)->state));
}

AQ_API int aq_future_get(aq_future *fut, void **result, int64_t timeout_ns)
{
	int64_t deadline;
	uint32_t state;

	if (!fut)
		return -EINVAL;
	/* Acquire: pairs with the completer's store of the final state, so
	 * result and code are visible once we see it. */
	state = atomic_load_explicit(&fut->state, memory_order_acquire);
	if (aq__state_final(state))
		return future_outcome(fut, state, result);
	if (timeout_ns == 0)
		return -ETIMEDOUT;

	for (int i = 0; i < GET_SPIN_ITERATIONS; i++) {
		aq__cpu_relax();
		/* Acquire, as above. */
		state = atomic_load_explicit(&fut->state, memory_order_acquire);
		if (aq__state_final(state))
			return future_outcome(fut, state, result);
	}

	deadline = aq__deadline(timeout_ns);
	if (aq__worker_pool && !fut->pool) {
		/* A promise awaited on a worker: whoever completes it may be
		 * a job queued behind us, so help our own pool meanwhile. */
		if (aq__wait_helping(aq__worker_pool, future_is_final, fut,
				     &fut->state, &fut->waiters,
				     deadline) == -ETIMEDOUT)
			return -ETIMEDOUT;
		return future_outcome(fut, atomic_load_explicit(
						   &fut->state,
						   memory_order_acquire),
				      result);
	}
	if (aq__worker_pool && aq__worker_pool == fut->pool) {
		/* A job waiting on its own pool: help, don't block a worker;
		 * best of all, run the awaited job itself if still queued in
		 * the ring. (Not when a scheduler may hold it: the policy
		 * would meet it again, as a job it thinks is still queued.) */
		if (!fut->pool->sched &&
		    atomic_load_explicit(&fut->state, memory_order_relaxed) ==
			    AQ_STATE_PENDING)
			aq__worker_run_claimable(fut->pool, fut);
		if (aq__wait_helping(fut->pool, future_is_final, fut,
				     &fut->state, &fut->waiters,
				     deadline) == -ETIMEDOUT)
			return -ETIMEDOUT;
		return future_outcome(fut, atomic_load_explicit(
						   &fut->state,
						   memory_order_acquire),
				      result);
	}
	/* The load half of the handshake: raise waiters, then re-read. */
	atomic_fetch_add(&fut->waiters, 1);
	while (!aq__state_final(state = atomic_load(&fut->state))) {
		if (aq__park_wait(&fut->state, state, deadline) == -ETIMEDOUT &&
		    !aq__state_final(state = atomic_load(&fut->state)))
			break;
	}
	atomic_fetch_sub(&fut->waiters, 1);
	if (!aq__state_final(state))
		return -ETIMEDOUT;
	return future_outcome(fut, state, result);
}

AQ_API int aq_future_cancel(aq_future *fut)
{
	struct aq_pool *pool;
	uint32_t state;
	int rc;

	if (!fut)
		return -EINVAL;
	/* Acquire: a resolved future is left alone, its pool maybe gone. */
	state = atomic_load_explicit(&fut->state, memory_order_acquire);
	if (aq__state_final(state))
		return -EALREADY;
	/* Not final: its pool is still running it. Keep shutdown from
	 * finishing under us while we may resolve it (see pool.h). */
	pool = fut->pool;
	if (!pool) /* a promise: no pool to keep alive (promise.c) */
		return future_cancel(fut, state);
	aq__pool_ext_enter(pool);
	rc = future_cancel(fut, state);
	aq__pool_ext_leave(pool);
	return rc;
}

static int future_cancel(aq_future *fut, uint32_t state)
{
	for (;;) {
		if (state == AQ_STATE_RUNNING && !fut->pool) {
			/* A promise being completed (promise.c): the
			 * completer won, its outcome is moments away. */
			return -EALREADY;
		}
		if (state == AQ_STATE_RUNNING) {
			/* Not interrupted, but the job can see the request.
			 * Relaxed: a flag the job polls, no data rides on it. */
			atomic_store_explicit(&fut->cancel_requested, true,
					      memory_order_relaxed);
			return -EBUSY;
		}
		if (state != AQ_STATE_PENDING && state != AQ_STATE_DELAYED &&
		    state != AQ_STATE_RETRYING && state != AQ_STATE_WAITING)
			return -EALREADY; /* final, or another canceller */
		/* acquire on success: we take over the job fields. */
		if (atomic_compare_exchange_weak_explicit(
			    &fut->state, &state, AQ__STATE_CANCELLING,
			    memory_order_acquire, memory_order_relaxed))
			break;
	}
	/* A record waiting in the timer leaves it now, with the pool's
	 * reference; one in a queue is skipped, and released, when reached;
	 * one WAITING is released by its last dependency. */
	if ((state == AQ_STATE_DELAYED || state == AQ_STATE_RETRYING) &&
	    aq__timer_remove(fut->pool, fut)) {
		aq__future_finish(fut, AQ_STATE_CANCELLED, 0, NULL);
		aq__future_put(fut);
		return 0;
	}
	aq__future_finish(fut, AQ_STATE_CANCELLED, 0, NULL);
	return 0;
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
	if (state == AQ_STATE_RUNNING && !fut->pool)
		return AQ_STATE_PENDING; /* a promise being completed */
	return (enum aq_state)state;
}

AQ_API void aq_future_release(aq_future *fut)
{
	if (fut)
		aq__future_put(fut);
}
