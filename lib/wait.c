/* SPDX-License-Identifier: MIT */
/*
 * wait.c - composing jobs: waiting for many futures (aq_wait_all,
 * aq_wait_any), jobs that run after others (aq_job_opts.after), and the
 * "help while waiting" rule that keeps nested waits from deadlocking.
 *
 * Help while waiting: a job that waits on a future of its own pool holds a
 * worker. If every worker did that, the jobs they wait for could never
 * run. So a wait on one of the pool's own workers takes queued jobs and
 * runs them itself until what it waits for resolves (as ForkJoinPool and
 * TBB do). First choice, at every look and at any nesting depth, with or
 * without a scheduling policy, is the very job it waits for, if no worker
 * has taken it yet: it is claimed and run right here, so a fork-join tree
 * unwinds depth-first on one stack. Otherwise any queued job will do, to
 * a bounded nesting depth (the stack must stay bounded). When there is
 * nothing to run it naps on the future's word, briefly, so a job queued
 * meanwhile is picked up within 1 ms. The timeout is looked at before
 * each job it starts, so a wait returns at most one job's length late.
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
 *
 * Dependencies: a record submitted with opts.after starts WAITING, holding
 * a reference to each dependency and one internal then-registration on
 * each. deps_left counts the dependencies not yet resolved plus one guard
 * held by submit while it registers, so the record cannot start before
 * submit has finished with it. Whoever brings deps_left to zero settles
 * the record: PENDING and queued if every dependency succeeded, SKIPPED
 * otherwise, or only released if a canceller got there first. The record's
 * pool reference belongs to that counter until then.
 *
 * A WAITING record may be cancelled, and its pool shut down and destroyed,
 * long before its last dependency (of another pool, say) resolves. So the
 * settler touches nothing of the pool until it knows the record is not
 * resolved: it moves it WAITING -> SETTLING, which cancellers wait out,
 * takes an external claim on the pool (shutdown waits for those), and puts
 * it back to WAITING. If a canceller got there first it only drops the
 * record's reference; the record's cache outlives the pool. Weak spot: a
 * settler preempted inside that window keeps a canceller yielding.
 */
#include <errno.h>
#include <stdlib.h>

#include "fault.h"
#include "future.h"
#include "park.h"
#include "pool.h"
#include "timer.h"

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

int aq__wait_helping(struct aq_pool *pool, bool (*done)(void *ctx), void *ctx,
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
		/* The future handshake (future.c): raise waiters, re-check. */
		seen = atomic_load(nap_word);
		atomic_fetch_add(nap_waiters, 1);
		if (!done(ctx))
			aq__park_wait(nap_word, seen, until);
		atomic_fetch_sub(nap_waiters, 1);
		nap = nap * 2 > HELP_NAP_MAX_NS ? HELP_NAP_MAX_NS : nap * 2;
	}
	help_depth--;
	return rc;
}

/* ---- aq_wait_all / aq_wait_any ------------------------------------------ */

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
		if (aq__state_final(atomic_load_explicit(
			    &futs[i]->state, memory_order_acquire)))
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
	atomic_fetch_add(&ev->seq, 1); /* seq_cst: handshake store half */
	if (atomic_load(&ev->waiters))
		aq__park_wake(&ev->seq, INT32_MAX);
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
 * waiter of each: the same handshake as aq_future_get() (raise waiters,
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
		atomic_fetch_add(&ctx->futs[i]->waiters, 1); /* seq_cst */
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
		atomic_fetch_sub(&ctx->futs[i]->waiters, 1);
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

	/* On a worker of one of the futures' pools: help instead of
	 * sleeping (first by running one of the awaited jobs of that pool
	 * still queued), napping on that future (the others' resolutions
	 * are seen on the next look, at most a nap later). */
	for (unsigned i = 0; aq__worker_pool && i < n; i++) {
		if (futs[i]->pool == aq__worker_pool) {
			rc = aq__wait_helping(aq__worker_pool, any_done, &ctx,
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
				      aq__deadline(HELP_NAP_MAX_NS));
		goto out;
	}
	atomic_init(&ev->seq, 0);
	atomic_init(&ev->waiters, 0);
	atomic_init(&ev->refs, n + 1);
	for (unsigned i = 0; i < n; i++) {
		struct aq__then *then = aq__malloc(sizeof(*then));

		if (!then) { /* this one cannot wake us: napping covers it */
			any_event_put(ev); // NOLINT(clang-analyzer-unix.Malloc): refcounted, n + 1 puts in all
			continue;
		}
		then->fn = any_event_fire;
		then->user = ev;
		then->channel = NULL;
		aq__future_then_node(futs[i], then);
	}
	for (;;) {
		uint32_t seq = atomic_load(&ev->seq);

		if (any_done(&ctx))
			break;
		atomic_fetch_add(&ev->waiters, 1); /* handshake load half */
		if (!any_done(&ctx) &&
		    aq__park_wait(&ev->seq, seq, deadline) == -ETIMEDOUT &&
		    !any_done(&ctx)) {
			atomic_fetch_sub(&ev->waiters, 1);
			rc = -ETIMEDOUT;
			break;
		}
		atomic_fetch_sub(&ev->waiters, 1);
	}
	any_event_put(ev); // NOLINT(clang-analyzer-unix.Malloc): refcounted, n + 1 puts in all
out:
	if (ctx.found < n) {
		*index = ctx.found;
		return 0;
	}
	return rc ? rc : -ETIMEDOUT;
}

/* ---- opts.after ------------------------------------------------------------ */

/* A record that could not be queued goes to the timer, due at once
 * (from DELAYED); if even that fails it fails with ENOMEM. */
static void deps_to_timer(struct aq_pool *pool, struct aq_future *rec)
{
	uint32_t expected = AQ_STATE_DELAYED;

	if (aq__timer_add(pool, rec) == 0)
		return;
	/* A canceller may have taken it meanwhile: then only release. */
	if (atomic_compare_exchange_strong(&rec->state, &expected,
					   AQ__STATE_CANCELLING))
		aq__future_finish(rec, AQ_STATE_FAILED, ENOMEM, NULL);
	aq__future_put(rec);
}

/*
 * Every dependency has resolved: start the record, skip it, or hand it to
 * the timer if it is also delayed. Runs on whichever thread resolved the
 * last dependency, possibly not one of the pool's. While the record is
 * WAITING its pool is alive (a timer user, which shutdown waits for); the
 * external claim, taken while no canceller can resolve it (SETTLING, see
 * the file comment), keeps it so until we are done with it.
 */
static void deps_settle(struct aq_future *rec)
{
	struct aq_pool *pool;
	uint32_t expected = AQ_STATE_WAITING, target;
	bool ok = true;
	int rc;

	/* seq_cst, both: the claim below is ordered between them, so a
	 * canceller that takes the record after our store also finds the
	 * claim counted (and shutdown waits for it). */
	if (!atomic_compare_exchange_strong(&rec->state, &expected,
					    AQ__STATE_SETTLING)) {
		/* Cancelled: its pool may be gone; the record is ours to
		 * release, nothing else. */
		aq__future_put(rec);
		return;
	}
	pool = rec->pool;
	aq__pool_ext_enter(pool);
	atomic_store(&rec->state, AQ_STATE_WAITING);
	expected = AQ_STATE_WAITING;
	for (unsigned i = 0; i < rec->ndeps; i++)
		/* Acquire: each dependency's outcome is settled. */
		if (atomic_load_explicit(&rec->deps[i]->state,
					 memory_order_acquire) !=
		    AQ_STATE_SUCCEEDED)
			ok = false;
	/* Its wait (stats, a scheduler's aging) starts now; written before
	 * the CAS publishes the record to claimers. */
	if (pool->timing || pool->sched)
		rec->enqueue_ns = aq__now_ns();
	target = !ok				      ? AQ__STATE_CANCELLING
		 : rec->due_ns > aq__pool_now(pool) ? AQ_STATE_DELAYED
						      : AQ_STATE_PENDING;
	/* acq_rel: take over the record, or find a canceller did. */
	if (!atomic_compare_exchange_strong_explicit(
		    &rec->state, &expected, target, memory_order_acq_rel,
		    memory_order_relaxed)) {
		aq__future_put(rec);
	} else if (!ok) {
		aq__future_finish(rec, AQ_STATE_SKIPPED, 0, NULL);
		aq__future_put(rec);
	} else if (target == AQ_STATE_DELAYED) {
		deps_to_timer(pool, rec);
	} else if (aq__stats_shared(pool, released), /* first: stats.h */
		   (rc = aq__ring_push(&pool->ring,
				       (struct aq__ring_item){ NULL, rec })) ==
			   0) {
		aq__pool_wake_one(pool);
	} else if (aq__stats_shared_undo(pool, released), rc == -EAGAIN) {
		/* Full, and we may be one of its workers, which must not
		 * wait on it: the timer thread queues it. A waiter helping
		 * may have claimed it meanwhile: then only release. */
		expected = AQ_STATE_PENDING;
		rec->due_ns = INT64_MIN; /* due whatever the clock reads */
		if (atomic_compare_exchange_strong(&rec->state, &expected,
						   AQ_STATE_DELAYED))
			deps_to_timer(pool, rec);
		else
			aq__future_put(rec);
	} else {
		/* The ring is closed: nothing will run it. */
		expected = AQ_STATE_PENDING;
		if (atomic_compare_exchange_strong(&rec->state, &expected,
						   AQ__STATE_CANCELLING))
			aq__future_finish(rec, AQ_STATE_CANCELLED, 0, NULL);
		aq__future_put(rec);
	}
	aq__pool_ext_leave(pool);
}

/*
 * Records whose last dependency resolved while this thread was already
 * settling one: a failed head of a long chain skips the next job from
 * inside its own resolution, and so on; settling them in a loop here
 * instead of recursing keeps the stack flat however long the chain.
 */
static _Thread_local struct aq_future *settle_queue;
static _Thread_local bool settling;

static void deps_ready(struct aq_future *rec)
{
	if (settling) {
		rec->next_free = settle_queue; /* unused while in flight */
		settle_queue = rec;
		return;
	}
	settling = true;
	deps_settle(rec);
	while (settle_queue) {
		rec = settle_queue;
		settle_queue = rec->next_free;
		rec->next_free = NULL;
		deps_settle(rec);
	}
	settling = false;
}

static void deps_one_done(aq_future *dep, void *user)
{
	struct aq_future *rec = user;

	(void)dep;
	if (atomic_fetch_sub(&rec->deps_left, 1) == 1)
		deps_ready(rec);
}

int aq__deps_attach(struct aq_future *rec, aq_future *const *after,
		    unsigned count)
{
	struct aq__then *nodes[AQ_AFTER_MAX];
	unsigned i;

	rec->deps = aq__calloc(count, sizeof(*rec->deps));
	if (!rec->deps)
		return -ENOMEM;
	for (i = 0; i < count; i++) {
		nodes[i] = aq__malloc(sizeof(*nodes[i]));
		if (!nodes[i])
			break;
	}
	if (i < count) {
		while (i--)
			free(nodes[i]);
		free(rec->deps);
		rec->deps = NULL;
		return -ENOMEM;
	}
	atomic_store_explicit(&rec->state, AQ_STATE_WAITING,
			      memory_order_relaxed);
	atomic_init(&rec->deps_left, count + 1);
	rec->ndeps = count;
	for (i = 0; i < count; i++) {
		/* Relaxed: the caller's reference keeps it alive meanwhile. */
		atomic_fetch_add_explicit(&after[i]->refs, 1,
					  memory_order_relaxed);
		rec->deps[i] = after[i];
		nodes[i]->fn = deps_one_done;
		nodes[i]->user = rec;
		nodes[i]->channel = NULL;
		aq__future_then_node(after[i], nodes[i]);
	}
	return 0;
}

void aq__deps_arm(struct aq_future *rec)
{
	if (atomic_fetch_sub(&rec->deps_left, 1) == 1)
		deps_ready(rec);
}
