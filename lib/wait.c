/* SPDX-License-Identifier: MIT */
/*
 * wait.c - waiting for futures: aq_future_get(), aq_wait_all() and
 * aq_wait_any(). A caller that is one of the pool's own workers does not
 * sleep but helps (help.c), so nested waits cannot deadlock; any other
 * thread sleeps on the eventcount of park.h.
 */
#include <errno.h>
#include <limits.h>
#include <stdlib.h>

#include "clock.h"
#include "compat.h"
#include "current.h"
#include "fault.h"
#include "future.h"
#include "park.h"
#include "help.h"
#include "promise.h"

/* Longest sleep of a waiter that polls (no vectored wait, no memory). */
#define POLL_NAP_NS 1000000

/* aq_future_get() of a future that was not resolved at the first look. */
static __attribute__((noinline)) int
future_get_wait(aq_future *fut, void **result, int64_t timeout_ns)
{
	int64_t deadline;
	uint32_t state;
	int rc;

	if (timeout_ns == 0)
		return -ETIMEDOUT;
	/* A job waiting for its own outcome would wait forever (or until
	 * its timeout): refuse it. Off the paths above, which never wait. */
	if (AQ__UNLIKELY(fut == aq__current_job()))
		return -EDEADLK;

	deadline = aq__deadline(timeout_ns);
	/* A job waiting on its own pool: help, don't block a worker, and
	 * don't spin first either: the awaited job is most likely on this
	 * worker's own deque (help.c). So too for a promise: whoever
	 * completes it may be a job queued behind us (help runs only the
	 * pool's own jobs, never the promise). */
	if (aq__worker_pool &&
	    (aq__worker_pool == fut->pool || aq__is_promise(fut))) {
		rc = aq__help_future(aq__worker_pool, fut, deadline);
	} else {
		/* Awake a few microseconds before we sleep, and no yield
		 * (park.h): the spin is far shorter than any timeout worth
		 * setting, so only the sleep looks at the deadline. */
		for (int i = 0; i < AQ__BACKOFF_SPINS; i++) {
			aq__cpu_relax();
			/* Acquire, as in aq_future_get(). */
			state = atomic_load_explicit(&fut->state,
						     memory_order_acquire);
			if (aq__state_final(state))
				return aq__future_outcome(fut, state, result);
		}
		rc = aq__future_wait(fut, deadline);
	}
	if (rc < 0)
		return rc;
	return aq__future_outcome(fut, (uint32_t)rc, result);
}

/* The resolved case is the whole of it: no stack frame, two loads. */
AQ_API int aq_future_get(aq_future *fut, void **result, int64_t timeout_ns)
{
	uint32_t state;

	if (!fut)
		return -EINVAL;
	/* Acquire: pairs with the completer's store of the final state, so
	 * result and code are visible once we see it. */
	state = atomic_load_explicit(&fut->state, memory_order_acquire);
	if (AQ__LIKELY(aq__state_final(state)))
		return aq__future_outcome(fut, state, result);
	return future_get_wait(fut, result, timeout_ns);
}

static bool futs_valid(aq_future *const *futs, unsigned n)
{
	if (!futs && n)
		return false;
	for (unsigned i = 0; i < n; i++)
		if (!futs[i])
			return false;
	return true;
}

/*
 * Is the job running on this thread (if any) one of futs? Its future
 * cannot resolve while it waits: a wait for it is a deadlock.
 */
static bool holds_current_job(aq_future *const *futs, unsigned n)
{
	struct aq_future *self = aq__current_job();

	for (unsigned i = 0; self && i < n; i++)
		if (futs[i] == self)
			return true;
	return false;
}

AQ_API int aq_wait_all(aq_future *const *futs, unsigned n, int64_t timeout_ns)
{
	int64_t deadline;

	if (!futs_valid(futs, n))
		return -EINVAL;
	/* Refused before any wait, as aq_future_get() refuses it. */
	if (timeout_ns != 0 && holds_current_job(futs, n))
		return -EDEADLK;
	deadline = aq__deadline(timeout_ns);
	/* One after the other, each with what is left of the time: all are
	 * resolved at the end exactly when each was on its turn. */
	for (unsigned i = 0; i < n; i++) {
		int64_t left = -1;
		int rc;

		if (deadline >= 0) {
			left = deadline - aq__now_ns();
			if (left < 0)
				left = 0;
		}
		rc = aq_future_get(futs[i], NULL, left);
		if (rc == -ETIMEDOUT)
			return -ETIMEDOUT;
	}
	return 0;
}

/* The first resolved future, or n. */
static unsigned first_final(aq_future *const *futs, unsigned n)
{
	for (unsigned i = 0; i < n; i++)
		/* Acquire: the caller then reads the outcome. */
		if (aq__state_final(atomic_load_explicit(&futs[i]->state,
							 memory_order_acquire)))
			return i;
	return n;
}

/* A heap-allocated event that outlives the waiter if it times out: each
 * registration holds a reference, and the last one out frees it. */
struct any_event {
	_Atomic uint32_t seq;     /* bumped by each resolution */
	_Atomic uint32_t waiters; /* the waiter parked on seq, if any */
	_Atomic unsigned refs;
};

static void any_event_put(struct any_event *ev)
{
	if (atomic_fetch_sub(&ev->refs, 1) == 1)
		free(ev);
}

static void any_event_fire(aq_future *fut, void *user)
{
	struct any_event *ev = user;

	(void)fut;
	/* The notifier side of the eventcount (park.h): the future is final
	 * (the condition), then the word changes (seq_cst), then the read of
	 * waiters. */
	atomic_fetch_add(&ev->seq, 1);
	aq__ec_notify(&ev->seq, &ev->waiters, INT32_MAX);
	any_event_put(ev);
}

struct any_ctx {
	aq_future *const *futs;
	unsigned n, found;
};

static bool any_done(void *arg)
{
	struct any_ctx *ctx = arg;

	ctx->found = first_final(ctx->futs, ctx->n);
	return ctx->found < ctx->n;
}

/*
 * Sleep on every future's state word at once (aq__park_wait_any()), as a
 * waiter of each: the eventcount of aq_future_get() on n words (count in,
 * then read state; the resolver stores state, then reads waiters and
 * wakes). Nothing is allocated and nothing stays behind on a timeout.
 * 0 (ctx->found set), -ETIMEDOUT, or -ENOSYS: wait some other way.
 */
static int any_wait_words(struct any_ctx *ctx, int64_t deadline)
{
	_Atomic uint32_t *words[AQ__PARK_ANY_MAX];
	uint32_t seen[AQ__PARK_ANY_MAX];
	unsigned n = ctx->n;
	int rc;

	if (n > AQ__PARK_ANY_MAX)
		return -ENOSYS;
	for (unsigned i = 0; i < n; i++) {
		words[i] = &ctx->futs[i]->state;
		aq__ec_enter(&ctx->futs[i]->waiters);
	}
	for (;;) {
		ctx->found = n;
		for (unsigned i = 0; i < n && ctx->found == n; i++) {
			/* seq_cst: the handshake's read half; it also
			 * acquires the outcome for the caller. */
			seen[i] = atomic_load(words[i]);
			if (aq__state_final(seen[i]))
				ctx->found = i;
		}
		if (ctx->found < n) {
			rc = 0;
			break;
		}
		rc = aq__park_wait_any(words, seen, n, deadline);
		if (rc == -ENOSYS)
			break;
		if (rc == -ETIMEDOUT) {
			rc = any_done(ctx) ? 0 : -ETIMEDOUT;
			break;
		}
	}
	for (unsigned i = 0; i < n; i++)
		aq__ec_leave(&ctx->futs[i]->waiters);
	return rc;
}

AQ_API int aq_wait_any(aq_future *const *futs, unsigned n, int64_t timeout_ns,
		       unsigned *index)
{
	struct any_ctx ctx = { futs, n, n };
	struct any_event *ev;
	int64_t deadline;
	int rc = 0;

	if (!futs_valid(futs, n) || n == 0 || !index)
		return -EINVAL;
	if (any_done(&ctx) || timeout_ns == 0)
		goto out;
	/* Only the others could end the wait: refused, as in aq_wait_all(). */
	if (holds_current_job(futs, n))
		return -EDEADLK;
	deadline = aq__deadline(timeout_ns);

	/* On a worker of one of the futures' pools, or awaiting a promise
	 * on any worker: help instead of sleeping (first by running one of the
	 * awaited jobs of that pool still queued), napping on that future (the
	 * others' resolutions are seen on the next look, at most a nap later).
	 */
	for (unsigned i = 0; aq__worker_pool && i < n; i++) {
		if (futs[i]->pool == aq__worker_pool ||
		    aq__is_promise(futs[i])) {
			rc = aq__help_wait(aq__worker_pool, any_done, &ctx,
					   futs, n, &futs[i]->state,
					   &futs[i]->waiters, deadline);
			goto out;
		}
	}

	rc = any_wait_words(&ctx, deadline);
	if (rc != -ENOSYS)
		goto out;
	rc = 0;

	/* Without a vectored wait: a then-callback on each future pokes one
	 * event we sleep on. */
	ev = aq__malloc(sizeof(*ev));
	if (!ev) {
		/* No memory for the event: poll, politely. */
		while (!any_done(&ctx) &&
		       (deadline < 0 || aq__now_ns() < deadline))
			aq__park_wait(&futs[0]->state,
				      atomic_load(&futs[0]->state),
				      aq__deadline(POLL_NAP_NS));
		goto out;
	}
	atomic_init(&ev->seq, 0);
	atomic_init(&ev->waiters, 0);
	atomic_init(&ev->refs, n + 1);
	for (unsigned i = 0; i < n; i++) {
		struct aq__then *then = aq__malloc(sizeof(*then));

		if (!then) { /* this one cannot wake us: napping covers it */
			/* Refcounted, n + 1 puts in all. */
			// NOLINTNEXTLINE(clang-analyzer-unix.Malloc)
			any_event_put(ev);
			continue;
		}
		then->fn = any_event_fire;
		then->user = ev;
		then->channel = NULL;
		aq__future_then_node(futs[i], then);
	}
	for (;;) {
		uint32_t key = aq__ec_prepare(&ev->seq, &ev->waiters);
		int slept = 0;

		if (!any_done(&ctx))
			slept = aq__ec_commit(&ev->seq, key, deadline);
		aq__ec_leave(&ev->waiters);
		if (any_done(&ctx))
			break;
		if (slept == -ETIMEDOUT) {
			rc = -ETIMEDOUT;
			break;
		}
	}
	/* Refcounted, n + 1 puts in all. */
	// NOLINTNEXTLINE(clang-analyzer-unix.Malloc)
	any_event_put(ev);
out:
	if (ctx.found < n) {
		*index = ctx.found;
		return 0;
	}
	return rc ? rc : -ETIMEDOUT;
}
