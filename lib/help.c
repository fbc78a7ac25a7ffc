/* SPDX-License-Identifier: MIT */
/*
 * help.c - helping while waiting: the worker side of a wait on one of the
 * pool's own futures (aq_future_get(), aq_wait_all(), aq_wait_any() called
 * by a job).
 *
 * Help while waiting: a job that waits on a future of its own pool holds
 * a worker. If every worker did that, the jobs they wait for could never
 * run. So a wait on one of the pool's own workers takes queued jobs and
 * runs them itself until what it waits for resolves (as ForkJoinPool and
 * TBB do). First choice, at every look and at any nesting depth, with or
 * without a scheduling policy, is the very job it waits for, if no worker
 * has taken it yet: it is claimed and run right here, so a fork-join tree
 * unwinds depth-first on one stack. Otherwise any queued job will do, to
 * a bounded nesting depth (the stack must stay bounded). When there is
 * nothing to run it naps on the future's word, briefly, counted as an
 * idle worker so that a job queued meanwhile wakes it (else it is picked
 * up within 1 ms, where the nap cannot sleep on two words). The timeout
 * is looked at before each job it starts, so a wait returns at most one
 * job's length late.
 *
 * Why nested waits cannot deadlock, on any number of workers and whatever
 * the policy, as long as a job waits only for jobs submitted after it
 * started (its children, theirs, ...). Number the jobs by the time they
 * started. On a worker's stack each job above another started later; a
 * job waited for was submitted, so started, after its waiter started.
 * Take a waiter W at the top of a stack (nothing runs above it). If the
 * job J it waits for runs, then J or a job above J is at the top of
 * another stack and started later than W. Following these steps the start
 * numbers grow, so they end, at a waiter on top of its stack whose job
 * does not run: it is final (the wait ends), queued (the waiter claims it
 * and runs it: hence at any depth and whatever the policy, which is why a
 * policy must tolerate it, see scheduler.c), or in the timer or waiting
 * for dependencies, which make it queued without any worker's help. So
 * some thread always makes progress. Helping with other jobs is not
 * needed for this, only for speed, so its depth bound is safe. A job that
 * waits for one submitted before it started (its parent, a sibling) can
 * deadlock: that job may be waiting beneath it on the same stack.
 */
#include <errno.h>

#include "clock.h"
#include "future.h"
#include "help.h"
#include "park.h"
#include "pool.h"
#include "steal.h"
#include "worker.h"

/* Longest nap of a helping waiter between looks at the queue. */
#define HELP_NAP_MAX_NS 1000000
/* Deepest nesting of helping waits on one worker's stack. */
#define HELP_DEPTH_MAX 64

static _Thread_local unsigned help_depth;

/*
 * Run one of the awaited jobs here if it is still queued: they are all the
 * caller's to wait for, so this is progress for the wait whichever it is.
 * true if one was claimed (or taken by someone else just now).
 */
static bool help_run_awaited(struct aq_pool *pool, aq_future *const *futs,
			     unsigned n)
{
	for (unsigned i = 0; i < n; i++) {
		/* Relaxed: a hint; the claim inside is the real test. */
		if (futs[i]->pool == pool &&
		    atomic_load_explicit(&futs[i]->state,
					 memory_order_relaxed) ==
			    AQ_STATE_PENDING) {
			aq__worker_run_claimable(pool, futs[i]);
			return true;
		}
	}
	return false;
}

/*
 * A nap of a waiter that may take other jobs, until the wait is done, a
 * job shows up for it, or until: it sleeps on both the future's word and
 * the pool's wake_seq (futex_waitv), counted in the future's waiters and
 * in the pool's idle workers, so that a push, which wakes an idle worker,
 * may wake it too, as worker_park() does for a parking worker (whose
 * handshake, `waking` and fences included, this one follows). false, and
 * no nap, where the system cannot sleep on two words.
 */
static bool help_nap_for_work(struct aq_pool *pool, bool (*done)(void *ctx),
			      void *ctx, _Atomic uint32_t *nap_word,
			      _Atomic uint32_t *nap_waiters, int64_t until)
{
	_Atomic uint32_t *words[2] = { nap_word, &pool->wake_seq };
	uint32_t keys[2];
	int rc = 0;

	keys[1] = aq__ec_key(&pool->wake_seq);
	keys[0] = aq__ec_prepare(nap_word, nap_waiters);
	atomic_store(&pool->waking, 0); /* seq_cst, as in worker_park() */
	aq__ec_enter(&pool->idle);
	/* If the heavy fence failed, the nap is short anyway (until). */
	(void)aq__steal_park_fence(pool);
	if (!done(ctx) && !aq__steal_visible(pool))
		rc = aq__park_wait_any(words, keys, 2, until);
	aq__ec_leave(&pool->idle);
	aq__ec_leave(nap_waiters);
	/* Relaxed, as in worker_park(). */
	if (atomic_load_explicit(&pool->waking, memory_order_relaxed))
		atomic_store_explicit(&pool->waking, 0, memory_order_relaxed);
	return rc != -ENOSYS;
}

int aq__help_wait(struct aq_pool *pool, bool (*done)(void *ctx), void *ctx,
		  aq_future *const *awaited, unsigned nawaited,
		  _Atomic uint32_t *nap_word, _Atomic uint32_t *nap_waiters,
		  int64_t deadline)
{
	int64_t nap = 20000;
	int rc;

	/* Helping nests (a job run while helping may wait and help too):
	 * bound the depth at which other jobs are taken so the stack stays
	 * bounded; the awaited jobs themselves are run at any depth. */
	help_depth++;
	for (;;) {
		uint32_t seen;
		int64_t until;

		if (done(ctx)) {
			rc = 0;
			break;
		}
		/* Before each job we would start: a wait overruns its
		 * timeout by at most the one job it was running. */
		if (deadline >= 0 && aq__now_ns() >= deadline) {
			rc = done(ctx) ? 0 : -ETIMEDOUT;
			break;
		}
		if (help_run_awaited(pool, awaited, nawaited) ||
		    (help_depth <= HELP_DEPTH_MAX && aq__worker_help(pool))) {
			nap = 20000;
			continue;
		}
		until = aq__deadline(nap);
		if (deadline >= 0 && deadline < until)
			until = deadline;
		if (help_depth > HELP_DEPTH_MAX ||
		    !help_nap_for_work(pool, done, ctx, nap_word, nap_waiters,
				       until)) {
			/* The eventcount (park.h) on the future's word: a
			 * nap. */
			seen = aq__ec_prepare(nap_word, nap_waiters);
			if (!done(ctx))
				aq__ec_commit(nap_word, seen, until);
			aq__ec_leave(nap_waiters);
		}
		nap = nap * 2 > HELP_NAP_MAX_NS ? HELP_NAP_MAX_NS : nap * 2;
	}
	help_depth--;
	return rc;
}

static bool future_is_final(void *fut)
{
	/* seq_cst: the helping waiter's re-check of the eventcount. */
	return aq__state_final(atomic_load(&((struct aq_future *)fut)->state));
}

int aq__help_future(struct aq_pool *pool, struct aq_future *fut,
		    int64_t deadline)
{
	/* Best of all, run the awaited job itself while it is still
	 * queued: at once, with the deque's reference, if it is the newest
	 * item of our own deque, as the last child a job forked is. */
	if (aq__worker_run_own(pool, fut)) {
		/* Acquire: the outcome is the caller's to read. It ran here,
		 * so it is final unless it yielded or awaits a retry. */
		uint32_t state =
			atomic_load_explicit(&fut->state, memory_order_acquire);

		if (aq__state_final(state))
			return (int)state;
	}
	if (aq__help_wait(pool, future_is_final, fut, &fut, 1, &fut->state,
			  &fut->waiters, deadline) == -ETIMEDOUT)
		return -ETIMEDOUT;
	/* Acquire: the outcome is the caller's to read. */
	return (int)atomic_load_explicit(&fut->state, memory_order_acquire);
}
