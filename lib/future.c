/* SPDX-License-Identifier: MIT */
/*
 * future.c - job records and the futures callers hold on them: the state
 * machine, waiting, then-callbacks and reference counting. A
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
 * Records come from a per-pool cache and go back to it when their last
 * reference is gone (cache.c).
 *
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
