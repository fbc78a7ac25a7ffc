/* SPDX-License-Identifier: MIT */
/*
 * pool.c - the pool's lifecycle: create (with its error unwinding),
 * shutdown (drain or cancel, timed or not), destroy, and the pool's
 * read-only accessors. The workers' loop is worker.c's, their threads
 * threads.c's.
 *
 * Shutdown stops accepting jobs, waits until no job waits outside the
 * ring (delayed, retrying, or after others: they come back through it),
 * closes the ring (producers get -ESHUTDOWN from then on), wakes every
 * sleeper and joins the workers, which exit only once the ring is closed
 * and drained; then it stops the timer thread and waits for threads that
 * are not the pool's own but work on one of its records (a cancel, a
 * dependency release). No accepted job is stranded.
 */
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "cache.h"
#include "clock.h"
#include "current.h"
#include "fault.h"
#include "future.h"
#include "pool.h"
#include "queue.h"
#include "retry.h"
#include "scheduler.h"
#include "threads.h"
#include "timer.h"
#include "worker.h"

/* The most free slots a blocked producer waits for (space_wake_free()). */
#define SPACE_WAKE_MAX 256

/* Close the ring and wake everyone who may be asleep. Under pool->lock. */
static void pool_begin_stop(struct aq_pool *pool)
{
	pool->phase = AQ__POOL_STOPPING;
	aq__ring_close(&pool->ring);
	/* Sleepers see the close (the eventcount's notifier side). */
	aq__ec_signal(&pool->wake_seq, INT32_MAX);
	aq__ec_signal(&pool->space_seq, INT32_MAX);
}

int64_t aq__pool_default_clock(void *user)
{
	(void)user;
	return aq__now_ns();
}

/* The pool's locks and condition variables; they cannot fail as used. */
static void pool_sync_init(struct aq_pool *pool)
{
	pthread_condattr_t attr;

	pthread_mutex_init(&pool->lock, NULL);
	/* Timed shutdown waits on the monotonic clock. */
	pthread_condattr_init(&attr);
	pthread_condattr_setclock(&attr, CLOCK_MONOTONIC);
	pthread_cond_init(&pool->stopped_cond, &attr);
	pthread_cond_init(&pool->timers_cond, &attr);
	pthread_condattr_destroy(&attr);
	pthread_mutex_init(&pool->sched_lock, NULL);
	pthread_mutex_init(&pool->stats_lock, NULL);
}

static void pool_sync_fini(struct aq_pool *pool)
{
	pthread_cond_destroy(&pool->stopped_cond);
	pthread_cond_destroy(&pool->timers_cond);
	pthread_mutex_destroy(&pool->stats_lock);
	pthread_mutex_destroy(&pool->lock);
	pthread_mutex_destroy(&pool->sched_lock);
}

/* What the configuration says that needs no allocation. */
static void pool_settings(struct aq_pool *pool,
			  const struct aq_pool_config *cfg)
{
	pool->window.t_ns = aq__now_ns(); /* the first window starts now */
	pool->before_job = cfg->before_job;
	pool->after_job = cfg->after_job;
	pool->hook_user = cfg->hook_user;
	pool->timing = (cfg->flags & AQ_POOL_TIMING) || cfg->before_job ||
		       cfg->after_job;
	atomic_init(&pool->accepting, true);
	pool->clock.now = aq__pool_default_clock;
	if (cfg->clock)
		pool->clock = *cfg->clock;
	if (cfg->retry) {
		pool->retry_default = *cfg->retry;
		pool->has_retry = true;
	}
	pool->phase = AQ__POOL_RUNNING;
	pool->flags = cfg->flags;
	pool->block_timeout_ns = cfg->block_timeout_ns;
	pool->slice_ns = cfg->slice_ns > 0 ? cfg->slice_ns : 1000000;
	pool->worker_body = aq__worker_loop;
	aq__timer_init(&pool->timer, &pool->clock, &pool->cancelling,
		       aq__queue_due, pool);
}

/*
 * Producers blocked on a full ring are woken once this many slots are
 * free, not after every pop: a wake costs a system call on the worker's
 * side and a context switch on theirs. Liveness: once a producer sleeps
 * on a full ring, every later pop looks, and the one that leaves the
 * threshold free wakes it.
 */
static uint32_t space_wake_free(const struct aq__ring *ring)
{
	uint32_t quarter = aq__ring_capacity(ring) / 4;

	return quarter < 1                ? 1
	       : quarter > SPACE_WAKE_MAX ? SPACE_WAKE_MAX
					  : quarter;
}

static bool config_valid(const struct aq_pool_config *cfg)
{
	return cfg->workers <= AQ_WORKERS_MAX &&
	       cfg->queue_capacity <= AQ_QUEUE_CAPACITY_MAX &&
	       !(cfg->flags & ~(AQ_POOL_BLOCK | AQ_POOL_TIMING)) &&
	       cfg->slice_ns >= 0 && (!cfg->clock || cfg->clock->now) &&
	       (!cfg->retry || aq__retry_policy_valid(cfg->retry));
}

AQ_API int aq_pool_create(aq_pool **poolp, const struct aq_pool_config *cfg)
{
	static const struct aq_pool_config defaults;
	struct aq_pool *pool;
	unsigned initial;
	void *mem;
	int rc;

	if (!poolp)
		return -EINVAL;
	if (!cfg)
		cfg = &defaults;
	if (!config_valid(cfg))
		return -EINVAL;

	/* The pool holds cache-aligned members, so align the allocation. */
	if (aq__fault(AQ__FAULT_ALLOC) ||
	    posix_memalign(&mem, AQ__CACHE_LINE, sizeof(*pool)))
		return -ENOMEM;
	pool = memset(mem, 0, sizeof(*pool));
	pool_sync_init(pool);
	pool_settings(pool, cfg);

	rc = aq__ring_init(&pool->ring, cfg->queue_capacity
						? cfg->queue_capacity
						: AQ_QUEUE_CAPACITY_DEFAULT);
	if (rc)
		goto err_sync;
	pool->space_wake_free = space_wake_free(&pool->ring);
	rc = -ENOMEM;
	pool->cache = aq__cache_create();
	if (!pool->cache)
		goto err_ring;
	if (aq__fault(AQ__FAULT_ALLOC) ||
	    posix_memalign(&mem, AQ__CACHE_LINE, sizeof(struct aq__stats)))
		goto err_cache;
	pool->shared_stats = memset(mem, 0, sizeof(struct aq__stats));
	rc = aq__threads_init(pool, cfg); /* the initial count, or -errno */
	if (rc < 0)
		goto err_threads;
	initial = (unsigned)rc;
	rc = aq__sched_init(pool, cfg);
	if (rc)
		goto err_threads;
	pool->record_always = pool->sched || pool->has_retry || pool->timing;
	aq__pool_set_elastic(pool);
	atomic_store_explicit(&pool->fast_submit, !pool->record_always,
			      memory_order_relaxed);

	pthread_mutex_lock(&pool->lock);
	rc = aq__threads_spawn(pool, initial);
	if (rc)
		pool_begin_stop(pool); /* the started ones exit */
	pthread_mutex_unlock(&pool->lock);
	if (rc) {
		aq__threads_join_all(pool, -1);
		goto err_sched;
	}
	*poolp = pool;
	return 0;

err_sched:
	aq__sched_fini(pool);
err_threads:
	aq__threads_fini(pool);
	free(pool->shared_stats);
err_cache:
	aq__cache_close(pool->cache);
err_ring:
	aq__ring_fini(&pool->ring);
err_sync:
	aq__timer_fini(&pool->timer);
	pool_sync_fini(pool);
	free(pool);
	return rc;
}

/* Free a pool that has shut down: create's unwinding, all of it. */
static void pool_free(struct aq_pool *pool)
{
	aq__sched_fini(pool);
	aq__threads_fini(pool);
	free(pool->shared_stats);
	aq__cache_close(pool->cache);
	aq__ring_fini(&pool->ring);
	aq__timer_fini(&pool->timer);
	pool_sync_fini(pool);
	free(pool);
}

/* pthread_cond_timedwait on a monotonic condition variable, with the
 * library's deadline convention (negative: none). */
static int cond_wait_until(pthread_cond_t *cond, pthread_mutex_t *lock,
			   int64_t deadline)
{
	struct timespec ts;

	if (deadline < 0)
		return pthread_cond_wait(cond, lock);
	ts = aq__timespec(deadline);
	return pthread_cond_timedwait(cond, lock, &ts);
}

/* Wait until no outside thread is working on one of our records. */
static int pool_wait_ext(struct aq_pool *pool, int64_t deadline)
{
	uint32_t n;

	/* The word is the condition (a count that its last leaver wakes at
	 * zero), so each seq_cst load is the key; and the load is the last
	 * look that aq_future_cancel() reasons about. */
	while ((n = atomic_load(&pool->cache->claims)) != 0)
		if (aq__ec_commit(&pool->cache->claims, n, deadline) ==
		    -ETIMEDOUT)
			return -ETIMEDOUT;
	return 0;
}

/*
 * The joiner's part: wait for timer users, close the ring, join the
 * workers and the timer thread, wait for outside claims. Called with the
 * lock held and pool->joining set; returns with the lock held. On a
 * timeout the pool keeps stopping and another call can take over.
 */
static int pool_stop(struct aq_pool *pool, int64_t deadline)
{
	int rc = 0;

	/*
	 * Delayed jobs and retries come back through the ring, so it stays
	 * open until none is left: when draining they run at their time;
	 * when cancelling the timer thread and the workers cancel them.
	 */
	while (pool->timer_users && rc != ETIMEDOUT)
		rc = cond_wait_until(&pool->timers_cond, &pool->lock, deadline);
	if (pool->timer_users)
		return -ETIMEDOUT;
	if (pool->phase == AQ__POOL_RUNNING)
		pool_begin_stop(pool);
	pthread_mutex_unlock(&pool->lock);

	rc = aq__threads_join_all(pool, deadline);
	if (rc == 0) {
		aq__timer_stop(&pool->timer);
		rc = pool_wait_ext(pool, deadline);
	}
	pthread_mutex_lock(&pool->lock);
	return rc;
}

AQ_API int aq_pool_shutdown_timed(aq_pool *pool, unsigned flags,
				  int64_t timeout_ns)
{
	int64_t deadline = aq__deadline(timeout_ns);
	int rc = 0;

	if (!pool || (flags & ~AQ_SHUTDOWN_CANCEL))
		return -EINVAL;
	/*
	 * Its own worker or timer thread would wait for itself, and so would
	 * a thread holding a claim on it (an arg_destroy or then-callback run
	 * by aq_future_cancel() or by the release of a dependent job): the
	 * claim, and the job it is resolving, end only after we return.
	 */
	if (aq__worker_pool == pool || aq__timer_self == &pool->timer ||
	    aq__cache_claimed_here(pool->cache))
		return -EDEADLK;
	if (flags & AQ_SHUTDOWN_CANCEL) {
		atomic_store(&pool->cancelling, true);
		atomic_fetch_or(&pool->pop_attn, AQ__ATTN_CANCEL);
		/* The timer thread cancels what it holds, now. */
		aq__timer_kick(&pool->timer);
	}

	pthread_mutex_lock(&pool->lock);
	/* Under the lock: a submit counting a timer user in sees either this
	 * or its own count is waited for by the joiner. */
	atomic_store(&pool->accepting, false);
	atomic_store(&pool->fast_submit, false);
	for (;;) {
		if (pool->phase == AQ__POOL_STOPPED) {
			rc = 0;
			break;
		}
		if (!pool->joining) {
			/* Be the joiner (again, if an earlier one gave up). */
			pool->joining = true;
			rc = pool_stop(pool, deadline);
			pool->joining = false;
			if (rc == 0)
				pool->phase = AQ__POOL_STOPPED;
			/* Done, or gave up: either way others look again. */
			pthread_cond_broadcast(&pool->stopped_cond);
			break;
		}
		if (rc == ETIMEDOUT) {
			rc = -ETIMEDOUT;
			break;
		}
		/* Another caller joins; wait for it to finish or give up. */
		rc = cond_wait_until(&pool->stopped_cond, &pool->lock,
				     deadline);
	}
	pthread_mutex_unlock(&pool->lock);
	return rc;
}

AQ_API int aq_pool_shutdown(aq_pool *pool, unsigned flags)
{
	return aq_pool_shutdown_timed(pool, flags, -1);
}

AQ_API int aq_pool_running_jobs(aq_pool *pool, uint64_t *ids, unsigned max)
{
	unsigned count = 0;

	if (!pool || (!ids && max))
		return -EINVAL;
	pthread_mutex_lock(&pool->lock);
	for (unsigned i = 0; i < pool->nslots; i++) {
		struct aq__stats *blk = pool->wstats[i];

		/* Relaxed: a snapshot; a job may end as we look. */
		uint64_t running = atomic_load_explicit(&blk->running,
							memory_order_relaxed);

		if (running == AQ__RUNNING_NONE)
			continue;
		if (count < max) /* a fire-and-forget job has no id: 0 */
			ids[count] =
				running == AQ__RUNNING_INLINE ? 0 : running;
		count++;
	}
	pthread_mutex_unlock(&pool->lock);
	return (int)count;
}

AQ_API void aq_pool_destroy(aq_pool *pool)
{
	/* Where a shutdown is refused (-EDEADLK: the pool's own worker or
	 * timer thread, or a callback holding a claim on it, whose caller
	 * still uses the pool) we cannot free it either: a documented misuse
	 * that leaves the pool alone rather than deadlock. */
	if (!pool || aq_pool_shutdown(pool, AQ_SHUTDOWN_DRAIN) != 0)
		return;
	pool_free(pool);
}

AQ_API int aq_pool_workers(const aq_pool *pool)
{
	/* Relaxed: a snapshot of a number that may change. */
	return pool ? (int)atomic_load_explicit(&pool->nlive,
						memory_order_relaxed)
		    : -EINVAL;
}

AQ_API int aq_pool_capacity(const aq_pool *pool)
{
	return pool ? (int)aq__ring_capacity(&pool->ring) : -EINVAL;
}

AQ_API int aq_pool_now(const aq_pool *pool, int64_t *now)
{
	if (!pool || !now)
		return -EINVAL;
	*now = aq__pool_now((aq_pool *)(uintptr_t)pool);
	return 0;
}

AQ_API int aq_pool_clock_changed(aq_pool *pool)
{
	if (!pool)
		return -EINVAL;
	aq__timer_kick(&pool->timer);
	return 0;
}
