/* SPDX-License-Identifier: MIT */
/*
 * promise.c - futures that the caller creates and resolves itself
 * (aq_future_create, aq_future_complete), for outcomes that arrive from
 * outside any pool: a network thread, another event loop, a remote worker.
 *
 * A promise is an ordinary job record (future.h) with no pool, no cache
 * and no job: everything that reads a future (get, then, channels, wait
 * all/any, opts.after, the error record) works on it unchanged. It is
 * malloc'ed here and freed by its last reference (cache.c), so it can
 * outlive anything and belongs to no pool's statistics. There is no cache
 * to recycle it: a promise stands for something slow (a network round
 * trip), and a process-wide cache would be global mutable state. A leaf
 * beside future.c: it knows no pool. The pool-aware entry points come here
 * for a promise: aq_future_cancel() (job.c) calls aq__promise_cancel(),
 * and a wait on a worker helps its pool (wait.c, help.c).
 *
 * Resolution is the record's usual claim: whoever moves the state out of
 * PENDING by CAS owns the record's outcome fields until it publishes a
 * final state. aq_future_complete() claims PENDING -> RUNNING (a state a
 * promise otherwise never has, reported as PENDING), or -> CANCELLING for
 * a completion with -ECANCELED, as a cancel does, so that losers tell a
 * cancel from a completion by the state they find. Exactly one claim wins;
 * every other completion is refused with -EALREADY, or -ECANCELED when a
 * cancel won, so the caller knows its outcome was not delivered.
 */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "fault.h"
#include "future.h"
#include "promise.h"

AQ_API int aq_future_create(aq_future **fut, void (*result_destroy)(void *),
			    unsigned flags)
{
	struct aq_future *rec;

	if (!fut || flags)
		return -EINVAL;
	rec = aq__malloc(sizeof(*rec));
	if (!rec)
		return -ENOMEM;
	/* One reference, the caller's; no cache: the last put frees it. */
	aq__future_init(rec, NULL, 1);
	rec->fn = NULL;
	rec->arg = NULL;
	rec->pool = NULL;
	rec->id = 0;
	rec->result_destroy = result_destroy;
	*fut = rec;
	return 0;
}

/* The final state aq_future_get() reports as code, or 0 for a bad code. */
static uint32_t promise_state_of(int code)
{
	if (code == 0)
		return AQ_STATE_SUCCEEDED;
	if (code > 0)
		return AQ_STATE_FAILED;
	if (code == -ECANCELED)
		return AQ_STATE_CANCELLED;
	if (code == -ETIME)
		return AQ_STATE_EXPIRED;
	if (code == -EPIPE)
		return AQ_STATE_SKIPPED;
	return 0;
}

AQ_API int aq_future_complete(aq_future *fut, int code, void *result,
			      const char *message)
{
	uint32_t final_state = promise_state_of(code);
	uint32_t expected = AQ_STATE_PENDING;
	char *copy = NULL;

	if (!fut || !final_state)
		return -EINVAL;
	if (!aq__is_promise(fut))
		return -EINVAL; /* a pool's job: only its worker resolves it */
	if (message && final_state == AQ_STATE_FAILED) {
		/* Copied before the claim, so a claim never fails halfway. */
		size_t len = strlen(message) + 1;

		copy = aq__malloc(len);
		if (!copy)
			return -ENOMEM;
		memcpy(copy, message, len);
	}
	/* Acquire on success: we own the outcome fields (as a worker's
	 * claim); on failure, the state tells who won. */
	if (!atomic_compare_exchange_strong_explicit(
		    &fut->state, &expected,
		    final_state == AQ_STATE_CANCELLED ? AQ__STATE_CANCELLING
						      : AQ_STATE_RUNNING,
		    memory_order_acquire, memory_order_acquire)) {
		free(copy);
		return expected == AQ__STATE_CANCELLING ||
				       expected == AQ_STATE_CANCELLED
			       ? -ECANCELED
			       : -EALREADY;
	}
	fut->message = copy;
	if (final_state == AQ_STATE_FAILED)
		fut->attempt = 1; /* the error record counts one attempt */
	aq__future_settle(fut, code > 0 ? code : 0,
			  final_state == AQ_STATE_SUCCEEDED ||
					  final_state == AQ_STATE_FAILED
				  ? result
				  : NULL);
	aq__future_resolve(fut, final_state);
	return 0;
}

int aq__promise_cancel(struct aq_future *fut)
{
	/* Acquire on success: we own the outcome fields, as a completer
	 * would. A promise that is not PENDING is being completed (RUNNING:
	 * the completer won, its outcome is moments away), cancelled, or
	 * final. */
	if (!aq__future_claim(fut, AQ__STATE_CANCELLING))
		return -EALREADY;
	aq__future_settle(fut, 0, NULL);
	aq__future_resolve(fut, AQ_STATE_CANCELLED);
	return 0;
}
