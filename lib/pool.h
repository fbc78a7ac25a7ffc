/* SPDX-License-Identifier: MIT */
/*
 * pool.h - struct aq_pool, the object the pool's layers share, and the
 * small inline helpers that read or poke it on hot paths. Behaviour lives
 * in the .c files: lifecycle in pool.c, the worker loop in worker.c, the
 * running job's context in current.c, threads in threads.c.
 */
#ifndef AQ__POOL_H
#define AQ__POOL_H

#include <errno.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdint.h>

#include "asyncq.h"
#include "cache.h"
#include "clock.h"
#include "compat.h"
#include "deque.h"
#include "future.h"
#include "park.h"
#include "ring.h"
#include "stats.h"
#include "timer.h"

enum aq__pool_phase {
	AQ__POOL_RUNNING,  /* accepting jobs */
	AQ__POOL_STOPPING, /* ring closed; workers finish what was accepted */
	AQ__POOL_STOPPED   /* every job resolved, every worker joined */
};

struct aq_pool {
	struct aq__ring ring; /* the submission queue; aligned lines inside */

	/*
	 * Read by every submit and every pop, written almost never (at
	 * create, shutdown or resize): one line, shared read-only by all.
	 */
	AQ__CACHE_ALIGNED _Atomic bool accepting; /* false once shutdown
						    began */
	_Atomic bool cancelling; /* a CANCEL shutdown: workers cancel, not
				    run */
	/* accepting && !record_always: the one flag aq_submit()'s fast path
	 * reads (cleared with accepting). */
	_Atomic bool fast_submit;
	bool record_always; /* a scheduler, a default retry policy or
			       timing: every job needs a record */
	const struct aq_sched_ops *sched; /* NULL: the ring's own FIFO */
	/* The workers' deques (deque.c, worker.c), AQ_WORKERS_MAX entries:
	 * an index's first worker makes its deque and stores it here, and
	 * it stays until the pool is destroyed. NULL: none (yet). */
	struct aq__deque *_Atomic *deques;
	/* Indexes below this may have a deque: where thieves look. Only
	 * grows. */
	_Atomic unsigned deque_span;
	/* Set (seq_cst) before a worker's first push with only a compiler
	 * barrier (steal.c): from then on a parking worker runs the heavy
	 * fence (worker_park()). */
	_Atomic bool deques_light;
	/* A push found the asymmetric fence not yet registered: the next
	 * worker to go idle registers it (steal.c), off the pushers' path. */
	_Atomic bool asym_wanted;

	/*
	 * Parking: written only when a worker parks or is woken, read by
	 * every submit, so they share one line apart from the ring counters.
	 */
	/*
	 * Workers parked or about to park (see worker.c), plus AQ__IDLE_ELASTIC
	 * while max_workers > min_workers: a submit reads this one word, and
	 * when it is 0 it has nobody to wake and no growth to consider.
	 */
	AQ__CACHE_ALIGNED _Atomic uint32_t idle;
	_Atomic uint32_t waking;   /* 1 while a wake is under way and no woken
				      worker has taken it yet */
	_Atomic uint32_t wake_seq; /* the futex word idle workers sleep on;
				      bumped by every wake */

	/*
	 * What a worker must look at after a pop, in one word so that the
	 * common case is one load and one branch: the number of producers
	 * blocked on a full ring (AQ__ATTN_WAITERS bits), a cancelling
	 * shutdown (AQ__ATTN_CANCEL, set with `cancelling`) and an elastic
	 * pool (AQ__ATTN_ELASTIC, as in `idle`).
	 */
	AQ__CACHE_ALIGNED _Atomic uint32_t pop_attn;
	_Atomic uint32_t space_seq; /* blocked producers' futex word; bumped
				       on wakes */
	uint32_t space_wake_free;   /* free slots that wake them (queue.c) */

	/*
	 * The pluggable scheduler; sched is NULL for the ring's own FIFO.
	 * Every op runs under sched_lock (see scheduler.c).
	 */
	AQ__CACHE_ALIGNED pthread_mutex_t sched_lock;
	void *sched_state;
	_Atomic size_t sched_held; /* jobs the policy holds; written under
				      sched_lock, read without it */
	uint64_t sched_seq;        /* arrival numbers, under sched_lock */

	/* Time, delays and retries (timer.c, retry.c). */
	struct aq__timer timer;
	struct aq_clock clock;                /* copied from the config */
	struct aq_retry_policy retry_default; /* copied; used if has_retry */
	bool has_retry;
	_Atomic uint64_t next_id; /* job ids of records, from 1 */
	size_t timer_users;       /* under lock: delayed or retry-capable
				     records not yet final */

	/* Cold fields, read-only after create unless noted. */
	AQ__CACHE_ALIGNED struct aq__cache *cache; /* job records (futures) */
	unsigned flags;                            /* AQ_POOL_* */
	int64_t block_timeout_ns; /* for AQ_POOL_BLOCK submits */
	int64_t slice_ns;         /* for aq_current_yield_due() */

	/* Worker threads (threads.c). Written under lock; the atomics are
	 * read without it by workers deciding to grow or retire. */
	void (*worker_body)(struct aq_pool *pool, unsigned index);
	struct aq__slot *slots; /* one per possible worker index
				   (threads.h) */
	unsigned nslots;
	unsigned live;          /* under lock: started, not retired */
	_Atomic unsigned nlive; /* == live, for lock-free readers */
	_Atomic unsigned min_workers, max_workers;
	int64_t idle_timeout_ns; /* real time, for elastic retirement */
	char name[8];            /* thread name stem, truncated */
	char *label;             /* cfg.name in full, for metrics; NULL =
				    none was given */
	int *cpus;               /* pinning, copied; NULL = none */
	unsigned ncpus;
	size_t stack_size;
	void (*on_thread_start)(unsigned index, void *user);
	void (*on_thread_stop)(unsigned index, void *user);
	void *thread_user;

	/* Statistics (stats.c): a block per worker slot (stable addresses;
	 * the pointer array grows with the slots, under lock) and one for
	 * everyone else. */
	struct aq__stats **wstats;
	struct aq__stats *shared_stats;
	bool timing; /* measure wait and run times */
	void (*before_job)(const struct aq_job_event *ev, void *user);
	void (*after_job)(const struct aq_job_event *ev, void *user);
	void *hook_user;
	pthread_mutex_t stats_lock;
	struct aq__window window; /* the last aq_pool_stats() call; under
				     stats_lock */

	/* Shutdown coordination: not on any hot path. */
	pthread_mutex_t lock;
	pthread_cond_t stopped_cond; /* signalled when phase becomes STOPPED */
	pthread_cond_t timers_cond;  /* signalled when timer_users reaches 0 */
	enum aq__pool_phase phase;   /* under lock */
	bool joining;                /* under lock: one caller joins workers */
};

#define AQ__ATTN_CANCEL (UINT32_C(1) << 31)
#define AQ__ATTN_ELASTIC (UINT32_C(1) << 30)
#define AQ__ATTN_WAITERS (AQ__ATTN_ELASTIC - 1)

/* Wake every producer blocked on a full ring (the notifier side of the
 * eventcount in queue.c). */
static inline void aq__pool_wake_producers(struct aq_pool *pool)
{
	aq__ec_signal(&pool->space_seq, INT32_MAX);
}

/*
 * A pop saw producers blocked on a full ring: wake them once enough slots
 * are free (space_wake_free, see queue.c), not on every pop. seq_cst
 * loads, head first: the tail read after it is never behind it.
 */
static inline void aq__pool_space_freed(struct aq_pool *pool)
{
	uint64_t head = atomic_load(&pool->ring.head);
	uint64_t used =
		(atomic_load(&pool->ring.tail) & ~AQ__RING_CLOSED) - head;

	if (aq__ring_capacity(&pool->ring) - used >= pool->space_wake_free)
		aq__pool_wake_producers(pool);
}

/* A slot was freed: wake producers blocked on a full ring, if any. */
static inline void aq__pool_freed_slot(struct aq_pool *pool)
{
	/* seq_cst: the read half of the full-ring handshake; the store half
	 * was the seq_cst claim on head inside aq__ring_pop(). */
	if (AQ__UNLIKELY(atomic_load(&pool->pop_attn) & AQ__ATTN_WAITERS))
		aq__pool_space_freed(pool);
}

/* The clock of a pool whose configuration gave none: CLOCK_MONOTONIC. */
int64_t aq__pool_default_clock(void *user);

/* The pool's clock (struct aq_clock), in nanoseconds; the default one
 * without the indirect call. */
static inline int64_t aq__pool_now(struct aq_pool *pool)
{
	if (AQ__LIKELY(pool->clock.now == aq__pool_default_clock))
		return aq__now_ns();
	return pool->clock.now(pool->clock.user);
}

/*
 * A thread that is not one of the pool's own starts or ends work on one of
 * its records (a cancel, a dependency release): shutdown does not return
 * while any is under way. The claims are counted on the pool's record
 * cache (see aq__cache_claim()); seq_cst, before the caller's CAS.
 */
static inline void aq__pool_ext_enter(struct aq_pool *pool)
{
	aq__cache_claim(pool->cache);
}

static inline void aq__pool_ext_leave(struct aq_pool *pool)
{
	aq__cache_unclaim(pool->cache);
}

#define AQ__IDLE_ELASTIC (UINT32_C(1) << 31)
#define AQ__IDLE_COUNT (AQ__IDLE_ELASTIC - 1)

/* Set or clear the elastic bits (of idle and pop_attn) from max_workers >
 * min_workers. */
static inline void aq__pool_set_elastic(struct aq_pool *pool)
{
	/* Relaxed: a hint (growth is re-checked under the lock); the
	 * read-modify-writes keep the counts that share the words. */
	if (atomic_load_explicit(&pool->max_workers, memory_order_relaxed) >
	    atomic_load_explicit(&pool->min_workers, memory_order_relaxed)) {
		atomic_fetch_or_explicit(&pool->idle, AQ__IDLE_ELASTIC,
					 memory_order_relaxed);
		atomic_fetch_or_explicit(&pool->pop_attn, AQ__ATTN_ELASTIC,
					 memory_order_relaxed);
	} else {
		atomic_fetch_and_explicit(&pool->idle, AQ__IDLE_COUNT,
					  memory_order_relaxed);
		atomic_fetch_and_explicit(&pool->pop_attn, ~AQ__ATTN_ELASTIC,
					  memory_order_relaxed);
	}
}

/*
 * Count a new timer user in (a job that waits outside the ring: delayed,
 * retry-capable or after others): 0, or -ESHUTDOWN once shutdown has
 * begun (see aq__pool_timer_user_done()).
 */
static inline int aq__pool_timer_user_add(struct aq_pool *pool)
{
	int rc = 0;

	pthread_mutex_lock(&pool->lock);
	/* Relaxed: read under the lock that shutdown takes to clear it. */
	if (atomic_load_explicit(&pool->accepting, memory_order_relaxed))
		pool->timer_users++;
	else
		rc = -ESHUTDOWN;
	pthread_mutex_unlock(&pool->lock);
	return rc;
}

/*
 * A record that counted as a timer user became final: shutdown, which
 * waits for the count to reach zero before it closes the ring, may go on.
 */
static inline void aq__pool_timer_user_done(struct aq_pool *pool)
{
	pthread_mutex_lock(&pool->lock);
	if (--pool->timer_users == 0)
		pthread_cond_broadcast(&pool->timers_cond);
	pthread_mutex_unlock(&pool->lock);
}

/*
 * Wake one parked worker, if any is parked and no wake is already under
 * way: the notifier side of the parking eventcount described in worker.c.
 * Called after a successful push, whose seq_cst claim (the condition
 * change) orders before the load of idle below.
 */
static inline void aq__pool_wake_one(struct aq_pool *pool)
{
	/* seq_cst: the eventcount's read of the waiter count (park.h). */
	if (AQ__LIKELY((atomic_load(&pool->idle) & AQ__IDLE_COUNT) == 0))
		return;
	/* Relaxed peek first so that a stream of submits does not bounce the
	 * line with an exchange while one wake is in flight; the exchange
	 * (acq_rel) then elects exactly one waker. */
	if (atomic_load_explicit(&pool->waking, memory_order_relaxed) ||
	    atomic_exchange_explicit(&pool->waking, 1, memory_order_acq_rel))
		return;
	aq__ec_signal(&pool->wake_seq, 1);
}

#endif
