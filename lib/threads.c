/* SPDX-License-Identifier: MIT */
/*
 * threads.c - the worker threads as threads: starting them (names, CPU
 * pinning, stack size, blocked signals, start and stop hooks), retiring
 * them when an elastic pool shrinks or aq_pool_resize() asks for fewer,
 * and joining them. What a worker does is the pool's worker_body
 * (worker.c), which this file calls through the pointer, not by name.
 *
 * Each worker index has a slot: EMPTY, LIVE (its thread runs) or DONE (it
 * retired and waits to be joined). Slots change under the pool lock.
 * Retired threads are joined lazily, by the next spawn, resize or shutdown,
 * so a retiring worker never waits for anyone. A worker retires only when
 * it holds no job and more than the floor remain, so shrinking never loses
 * or strands a job. No spawn happens once shutdown has closed the ring,
 * so the final join sees every thread.
 */
#include <errno.h>
#include <limits.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "clock.h"
#include "current.h"
#include "fault.h"
#include "pool.h"
#include "threads.h"

/* What a new thread needs to know: the allocation is freed by the thread. */
struct worker_start {
	struct aq_pool *pool;
	unsigned index;
	struct aq__stats *stats; /* the slot's counters */
};

static void *worker_thread(void *arg)
{
	struct worker_start start = *(struct worker_start *)arg;
	struct aq_pool *pool = start.pool;

	free(arg);
#if defined(__linux__)
	{
		char name[16]; /* the kernel keeps 15 characters */

		if (pool->name[0])
			/* Truncating is the point. */
			// NOLINTNEXTLINE(cert-err33-c)
			snprintf(name, sizeof(name), "aq-%s-%u", pool->name,
				 start.index);
		else
			/* Truncating is the point. */
			// NOLINTNEXTLINE(cert-err33-c)
			snprintf(name, sizeof(name), "aq-%u", start.index);
		pthread_setname_np(pthread_self(), name);
	}
#endif
	aq__current.stats = start.stats;
	if (pool->on_thread_start)
		pool->on_thread_start(start.index, pool->thread_user);
	pool->worker_body(pool, start.index);
	if (pool->on_thread_stop)
		pool->on_thread_stop(start.index, pool->thread_user);
	/* Retired (not shut down): the index may be reused once the stop
	 * hook has returned, and the thread is joinable. After this unlock
	 * the thread never touches the pool again. */
	pthread_mutex_lock(&pool->lock);
	if (pool->slots[start.index].state == AQ__SLOT_RETIRING)
		pool->slots[start.index].state = AQ__SLOT_DONE;
	pthread_mutex_unlock(&pool->lock);
	return NULL;
}

/* A zeroed, cache-aligned counter block. */
static struct aq__stats *stats_block_new(void)
{
	void *mem;

	if (aq__fault(AQ__FAULT_ALLOC) ||
	    posix_memalign(&mem, AQ__CACHE_LINE, sizeof(struct aq__stats)))
		return NULL;
	return memset(mem, 0, sizeof(struct aq__stats));
}

int aq__threads_init(struct aq_pool *pool, const struct aq_pool_config *cfg)
{
	long cpus = sysconf(_SC_NPROCESSORS_ONLN);
	unsigned initial, min, max;

	initial = cfg->workers                  ? cfg->workers
		  : cpus < 1                    ? 1
		  : cpus > (long)AQ_WORKERS_MAX ? AQ_WORKERS_MAX
						: (unsigned)cpus;
	/* Only a maximum given: start with no more than it allows. */
	if (!cfg->workers && !cfg->min_workers && cfg->max_workers &&
	    initial > cfg->max_workers)
		initial = cfg->max_workers;
	min = cfg->min_workers ? cfg->min_workers : initial;
	max = cfg->max_workers ? cfg->max_workers
	      : initial > min  ? initial
			       : min;
	if (min > max || max > AQ_WORKERS_MAX || cfg->idle_timeout_ns < 0 ||
	    (cfg->ncpus && !cfg->cpus))
		return -EINVAL;
#if defined(__linux__)
	for (unsigned i = 0; i < cfg->ncpus; i++)
		if (cfg->cpus[i] < 0 || cfg->cpus[i] >= CPU_SETSIZE)
			return -EINVAL;
#endif
	if (cfg->stack_size && cfg->stack_size < (size_t)PTHREAD_STACK_MIN)
		return -EINVAL;

	atomic_init(&pool->min_workers, min);
	atomic_init(&pool->max_workers, max);
	atomic_init(&pool->nlive, 0);
	pool->idle_timeout_ns = cfg->idle_timeout_ns ? cfg->idle_timeout_ns
						     : INT64_C(10000000000);
	if (cfg->name)
		/* A truncated stem is documented. */
		// NOLINTNEXTLINE(cert-err33-c)
		snprintf(pool->name, sizeof(pool->name), "%s", cfg->name);
	if (cfg->name && cfg->name[0]) {
		size_t len = strlen(cfg->name) + 1;

		pool->label = aq__malloc(len);
		if (!pool->label)
			return -ENOMEM;
		memcpy(pool->label, cfg->name, len);
	}
	pool->stack_size = cfg->stack_size;
	pool->on_thread_start = cfg->on_thread_start;
	pool->on_thread_stop = cfg->on_thread_stop;
	pool->thread_user = cfg->thread_user;
	if (cfg->ncpus) {
		pool->cpus = aq__calloc(cfg->ncpus, sizeof(*pool->cpus));
		if (!pool->cpus)
			return -ENOMEM;
		memcpy(pool->cpus, cfg->cpus, cfg->ncpus * sizeof(int));
		pool->ncpus = cfg->ncpus;
	}
	/* Slots for every index the pool may use; resize can raise max up
	 * to AQ_WORKERS_MAX, and grows this array then. */
	pool->slots = aq__calloc(max, sizeof(*pool->slots));
	pool->wstats = aq__calloc(max, sizeof(*pool->wstats));
	/* Every index resize may reach: the array never moves, so thieves
	 * read it without a lock. */
	pool->deques = aq__calloc(AQ_WORKERS_MAX, sizeof(*pool->deques));
	if (!pool->slots || !pool->wstats || !pool->deques)
		return -ENOMEM;
	pool->nslots = max; /* fini frees whichever blocks exist */
	for (unsigned i = 0; i < max; i++) {
		pool->wstats[i] = stats_block_new();
		if (!pool->wstats[i])
			return -ENOMEM;
	}
	/* At most AQ_WORKERS_MAX. */
	// NOLINTNEXTLINE(bugprone-narrowing-conversions)
	return initial < min ? min : initial > max ? max : initial;
}

void aq__threads_fini(struct aq_pool *pool)
{
	for (unsigned i = 0; pool->wstats && i < pool->nslots; i++)
		free(pool->wstats[i]);
	free(pool->wstats);
	/* Relaxed: every worker has been joined. */
	for (unsigned i = 0; pool->deques && i < AQ_WORKERS_MAX; i++)
		free(atomic_load_explicit(&pool->deques[i],
					  memory_order_relaxed));
	free(pool->deques);
	free(pool->slots);
	free(pool->cpus);
	free(pool->label);
}

void aq__threads_reap(struct aq_pool *pool)
{
	pthread_mutex_lock(&pool->lock);
	/* Once shutdown has begun its join takes every thread: joining one
	 * here too could join it twice. */
	for (unsigned i = 0;
	     pool->phase == AQ__POOL_RUNNING && i < pool->nslots; i++) {
		pthread_t thread;

		if (pool->slots[i].state != AQ__SLOT_DONE)
			continue;
		/* Joined with the lock released: a retiring thread's stop
		 * hook may still be running, and may call into the pool. */
		thread = pool->slots[i].thread;
		pool->slots[i].state = AQ__SLOT_REAPING;
		pthread_mutex_unlock(&pool->lock);
		pthread_join(thread, NULL);
		pthread_mutex_lock(&pool->lock);
		pool->slots[i].state = AQ__SLOT_EMPTY;
	}
	pthread_mutex_unlock(&pool->lock);
}

/* Start one worker at index. Under lock. */
static int threads_start(struct aq_pool *pool, unsigned index)
{
	struct worker_start *start;
	pthread_attr_t attr;
	sigset_t all, saved;
	int rc;

	start = aq__malloc(sizeof(*start));
	if (!start)
		return -ENOMEM;
	start->pool = pool;
	start->index = index;
	start->stats = pool->wstats[index];
	pthread_attr_init(&attr);
	if (pool->stack_size)
		pthread_attr_setstacksize(&attr, pool->stack_size);
#if defined(__linux__)
	if (pool->ncpus) {
		cpu_set_t set;

		CPU_ZERO(&set);
		CPU_SET(pool->cpus[index % pool->ncpus], &set);
		pthread_attr_setaffinity_np(&attr, sizeof(set), &set);
	}
#endif
	/* The thread inherits a full mask, so no signal meant for the host
	 * lands on it before it could block it. */
	sigfillset(&all);
	pthread_sigmask(SIG_SETMASK, &all, &saved);
	/* Counted before it starts, so the new worker's first look at the
	 * count (to retire, or to park with a deadline) includes itself.
	 * Relaxed: a mirror for hints; the lock orders the real count. */
	pool->slots[index].state = AQ__SLOT_LIVE;
	pool->live++;
	atomic_store_explicit(&pool->nlive, pool->live, memory_order_relaxed);
	rc = aq__fault(AQ__FAULT_THREAD) ? EAGAIN : 0;
	if (!rc)
		rc = pthread_create(&pool->slots[index].thread, &attr,
				    worker_thread, start);
	pthread_sigmask(SIG_SETMASK, &saved, NULL);
	pthread_attr_destroy(&attr);
	if (rc) {
		pool->slots[index].state = AQ__SLOT_EMPTY;
		pool->live--;
		atomic_store_explicit(&pool->nlive, pool->live,
				      memory_order_relaxed);
		free(start);
		return -rc;
	}
	return 0;
}

int aq__threads_spawn(struct aq_pool *pool, unsigned target)
{
	/* A raised max_workers may need a bigger table. */
	if (target > pool->nslots) {
		struct aq__slot *slots =
			aq__fault(AQ__FAULT_ALLOC)
				? NULL
				: realloc(pool->slots, target * sizeof(*slots));
		struct aq__stats **wstats;

		if (!slots)
			return -ENOMEM;
		pool->slots = slots;
		wstats = aq__fault(AQ__FAULT_ALLOC)
				 ? NULL
				 : realloc(pool->wstats,
					   target * sizeof(*wstats));
		if (!wstats)
			return -ENOMEM;
		pool->wstats = wstats;
		for (unsigned i = pool->nslots; i < target; i++) {
			memset(&slots[i], 0, sizeof(slots[i]));
			wstats[i] = stats_block_new();
			if (!wstats[i])
				return -ENOMEM;
			pool->nslots = i + 1;
		}
	}
	/* The lowest free indexes first. A DONE slot's thread has run its
	 * stop hook and let go of the lock for good: joining it here, under
	 * the lock, is quick and cannot deadlock. A RETIRING one (stop hook
	 * still running) or REAPING one is not free yet. */
	for (unsigned i = 0; i < pool->nslots && pool->live < target; i++) {
		int rc;

		if (pool->slots[i].state == AQ__SLOT_DONE) {
			pthread_join(pool->slots[i].thread, NULL);
			pool->slots[i].state = AQ__SLOT_EMPTY;
		}
		if (pool->slots[i].state != AQ__SLOT_EMPTY)
			continue;
		rc = threads_start(pool, i);
		if (rc)
			return rc;
	}
	/* Indexes still held by retiring threads: try again later. */
	return pool->live < target ? -EBUSY : 0;
}

void aq__threads_grow(struct aq_pool *pool)
{
	pthread_mutex_lock(&pool->lock);
	if (pool->phase == AQ__POOL_RUNNING &&
	    pool->live < atomic_load_explicit(&pool->max_workers,
					      memory_order_relaxed))
		aq__threads_spawn(pool, pool->live + 1); /* best effort */
	pthread_mutex_unlock(&pool->lock);
	aq__threads_reap(pool);
}

bool aq__threads_try_retire(struct aq_pool *pool, unsigned index,
			    unsigned floor)
{
	bool retire = false;

	pthread_mutex_lock(&pool->lock);
	/* Not while shutting down: shutdown joins everyone anyway. */
	if (pool->phase == AQ__POOL_RUNNING && pool->live > floor) {
		pool->live--;
		atomic_store_explicit(&pool->nlive, pool->live,
				      memory_order_relaxed);
		pool->slots[index].state = AQ__SLOT_RETIRING;
		retire = true;
	}
	pthread_mutex_unlock(&pool->lock);
	return retire;
}

/*
 * Join one thread by the deadline (negative: none): 0 or -ETIMEDOUT. The
 * deadline is on CLOCK_MONOTONIC; pthread_timedjoin_np() wants real time,
 * so it is converted once (a wall-clock step during the wait shifts it).
 * pthread_clockjoin_np() would avoid that, but ThreadSanitizer does not
 * know it and would then lose track of the joined thread.
 */
static int join_until(pthread_t thread, int64_t deadline)
{
#if defined(__GLIBC__)
	if (deadline >= 0) {
		struct timespec now, ts;
		int64_t left = deadline - aq__now_ns(), real;

		clock_gettime(CLOCK_REALTIME, &now);
		/* Saturated: a deadline that far (a timeout near INT64_MAX)
		 * would wrap into the past and give up at once. */
		real = aq__time_add(
			(int64_t)now.tv_sec * AQ__NS_PER_S + now.tv_nsec, left);
		ts = aq__timespec(real);
		return pthread_timedjoin_np(thread, NULL, &ts) == ETIMEDOUT
			       ? -ETIMEDOUT
			       : 0;
	}
#else
	(void)deadline; /* no timed join here: wait */
#endif
	pthread_join(thread, NULL);
	return 0;
}

int aq__threads_join_all(struct aq_pool *pool, int64_t deadline)
{
	pthread_mutex_lock(&pool->lock);
	for (unsigned i = 0; i < pool->nslots; i++) {
		pthread_t thread;
		bool live;

		/* EMPTY, or REAPING: being joined by a worker's aq__threads_
		 * reap() (that worker is joined here in turn). RETIRING and
		 * DONE threads are joined here, so none outlives shutdown. */
		if (pool->slots[i].state == AQ__SLOT_EMPTY ||
		    pool->slots[i].state == AQ__SLOT_REAPING)
			continue;
		/* Unlocked while joining: a LIVE worker may still need the
		 * lock on its way out. */
		thread = pool->slots[i].thread;
		live = pool->slots[i].state == AQ__SLOT_LIVE;
		pthread_mutex_unlock(&pool->lock);
		if (join_until(thread, deadline) == -ETIMEDOUT)
			return -ETIMEDOUT; /* the slot stays, for a retry */
		pthread_mutex_lock(&pool->lock);
		pool->slots[i].state = AQ__SLOT_EMPTY;
		if (live)
			pool->live--;
		atomic_store_explicit(&pool->nlive, pool->live,
				      memory_order_relaxed);
	}
	pthread_mutex_unlock(&pool->lock);
	return 0;
}

AQ_API int aq_pool_resize(aq_pool *pool, unsigned min_workers,
			  unsigned max_workers)
{
	unsigned old_min;
	int rc = 0;

	if (!pool || min_workers < 1 || min_workers > max_workers ||
	    max_workers > AQ_WORKERS_MAX)
		return -EINVAL;
	aq__threads_reap(pool);
	pthread_mutex_lock(&pool->lock);
	if (pool->phase != AQ__POOL_RUNNING ||
	    !atomic_load_explicit(&pool->accepting, memory_order_relaxed)) {
		pthread_mutex_unlock(&pool->lock);
		return -ESHUTDOWN;
	}
	/* Relaxed stores: workers read these as hints and re-check under
	 * the lock before they retire or grow. */
	old_min =
		atomic_load_explicit(&pool->min_workers, memory_order_relaxed);
	atomic_store_explicit(&pool->min_workers, min_workers,
			      memory_order_relaxed);
	atomic_store_explicit(&pool->max_workers, max_workers,
			      memory_order_relaxed);
	aq__pool_set_elastic(pool);
	/*
	 * Indexes held by workers still in their stop hooks come free in a
	 * moment: wait for them, with the lock released (a stop hook must
	 * not call aq_pool_resize() on its own pool). A shutdown may begin
	 * while we are away, and its join may already have passed the index
	 * we wait for: look for it before every start, under the lock, since
	 * a thread started after that would never be joined.
	 */
	while (pool->live < min_workers &&
	       (rc = aq__threads_spawn(pool, min_workers)) == -EBUSY) {
		struct timespec nap = { 0, 100000 };

		pthread_mutex_unlock(&pool->lock);
		nanosleep(&nap, NULL);
		pthread_mutex_lock(&pool->lock);
		/* Relaxed: shutdown clears accepting under this lock. */
		if (pool->phase != AQ__POOL_RUNNING ||
		    !atomic_load_explicit(&pool->accepting,
					  memory_order_relaxed)) {
			rc = -ESHUTDOWN;
			break;
		}
	}
	if (rc != -ESHUTDOWN && pool->live >= min_workers)
		rc = 0; /* a worker growing the pool may have got there first */
	pthread_mutex_unlock(&pool->lock);
	/* Too many, or a lower floor? Wake everyone: idle workers above max
	 * retire now, and those above the new min park with a deadline. */
	if (atomic_load_explicit(&pool->nlive, memory_order_relaxed) >
		    max_workers ||
	    min_workers < old_min) {
		aq__ec_signal(&pool->wake_seq, INT32_MAX);
	}
	return rc;
}
