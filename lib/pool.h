/* SPDX-License-Identifier: MIT */
/*
 * pool.h - the pool object shared by the pool's sources (see pool.c).
 */
#ifndef AQ_POOL_H
#define AQ_POOL_H

#include <pthread.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdint.h>

#include "asyncq.h"
#include "compat.h"
#include "future.h"
#include "park.h"
#include "ring.h"
#include "stats.h"
#include "timer.h"

enum aq__pool_phase {
	AQ__POOL_RUNNING,  /* accepting jobs */
	AQ__POOL_STOPPING, /* ring closed; workers finishing what was accepted */
	AQ__POOL_STOPPED   /* every job resolved, every worker joined */
};

/* A worker index's thread (threads.c). */
struct aq__slot {
	pthread_t thread;
	enum {
		AQ__SLOT_EMPTY,
		AQ__SLOT_LIVE,    /* its worker runs */
		AQ__SLOT_RETIRING, /* retired, its stop hook may still run */
		AQ__SLOT_DONE,    /* retired and done with the pool: to be
				     joined, then its index is free */
		AQ__SLOT_REAPING  /* being joined, lock released */
	} state;
};

struct aq_pool {
	struct aq__ring ring; /* the submission queue; aligned lines inside */

	/*
	 * Read by every submit and every pop, written almost never (at
	 * create, shutdown or resize): one line, shared read-only by all.
	 */
	AQ_CACHE_ALIGNED _Atomic bool accepting; /* false once shutdown
						    began */
	_Atomic bool cancelling;   /* a CANCEL shutdown: workers cancel, not
				      run */
	/* accepting && !record_always: the one flag aq_submit()'s fast path
	 * reads (cleared with accepting). */
	_Atomic bool fast_submit;
	bool record_always;        /* a scheduler, a default retry policy or
				      timing: every job needs a record */
	const struct aq_sched_ops *sched; /* NULL: the ring's own FIFO */

	/*
	 * Parking: written only when a worker parks or is woken, read by
	 * every submit, so they share one line apart from the ring counters.
	 */
	/*
	 * Workers parked or about to park (see pool.c), plus AQ__IDLE_ELASTIC
	 * while max_workers > min_workers: a submit reads this one word, and
	 * when it is 0 it has nobody to wake and no growth to consider.
	 */
	AQ_CACHE_ALIGNED _Atomic uint32_t idle;
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
	AQ_CACHE_ALIGNED _Atomic uint32_t pop_attn;
	_Atomic uint32_t space_seq; /* blocked producers' futex word; bumped
				       on wakes */
	uint32_t space_wake_free;   /* free slots that wake them (pool.c) */

	/*
	 * The pluggable scheduler; sched is NULL for the ring's own FIFO.
	 * Every op runs under sched_lock (see sched.c).
	 */
	AQ_CACHE_ALIGNED pthread_mutex_t sched_lock;
	void *sched_state;
	_Atomic size_t sched_held; /* jobs the policy holds; written under
				      sched_lock, read without it */
	uint64_t sched_seq;        /* arrival numbers, under sched_lock */

	/* Time, delays and retries (timer.c, retry.c). */
	struct aq__timer timer;
	struct aq_clock clock;               /* copied from the config */
	struct aq_retry_policy retry_default; /* copied; used if has_retry */
	bool has_retry;
	_Atomic uint64_t next_id;  /* job ids of records, from 1 */
	size_t timer_users;        /* under lock: delayed or retry-capable
				      records not yet final */

	/* Cold fields, read-only after create unless noted. */
	AQ_CACHE_ALIGNED struct aq__cache *cache; /* job records (futures) */
	unsigned flags;            /* AQ_POOL_* */
	int64_t block_timeout_ns;  /* for AQ_POOL_BLOCK submits */
	int64_t slice_ns;          /* for aq_job_yield_due() */

	/* Worker threads (threads.c). Written under lock; the atomics are
	 * read without it by workers deciding to grow or retire. */
	struct aq__slot *slots;    /* one per possible worker index */
	unsigned nslots;
	unsigned live;             /* under lock: started, not retired */
	_Atomic unsigned nlive;    /* == live, for lock-free readers */
	_Atomic unsigned min_workers, max_workers;
	int64_t idle_timeout_ns;   /* real time, for elastic retirement */
	char name[8];              /* thread name stem, truncated */
	char *label;               /* cfg.name in full, for metrics; NULL =
				      none was given */
	int *cpus;                 /* pinning, copied; NULL = none */
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
	bool timing;               /* measure wait and run times */
	void (*before_job)(const struct aq_job_event *ev, void *user);
	void (*after_job)(const struct aq_job_event *ev, void *user);
	void *hook_user;
	pthread_mutex_t stats_lock;
	struct aq__window window;  /* the last aq_pool_stats() call; under
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

/* Wake every producer blocked on a full ring. */
static inline void aq__pool_wake_producers(struct aq_pool *pool)
{
	/* Release: pairs with the blocked producer's acquire load of
	 * space_seq before it sleeps. */
	atomic_fetch_add_explicit(&pool->space_seq, 1, memory_order_release);
	aq__park_wake(&pool->space_seq, INT32_MAX);
}

/*
 * A pop saw producers blocked on a full ring: wake them once enough slots
 * are free (space_wake_free, see pool.c), not on every pop. seq_cst loads,
 * head first: the tail read after it is never behind it.
 */
static inline void aq__pool_space_freed(struct aq_pool *pool)
{
	uint64_t head = atomic_load(&pool->ring.head);
	uint64_t used = (atomic_load(&pool->ring.tail) & ~AQ_RING_CLOSED) -
			head;

	if (aq__ring_capacity(&pool->ring) - used >= pool->space_wake_free)
		aq__pool_wake_producers(pool);
}

/* A slot was freed: wake producers blocked on a full ring, if any. */
static inline void aq__pool_freed_slot(struct aq_pool *pool)
{
	/* seq_cst: the read half of the full-ring handshake; the store half
	 * was the seq_cst claim on head inside aq__ring_pop(). */
	if (aq_unlikely(atomic_load(&pool->pop_attn) & AQ__ATTN_WAITERS))
		aq__pool_space_freed(pool);
}

/* The pool's clock (struct aq_clock), in nanoseconds. */
static inline int64_t aq__pool_now(struct aq_pool *pool)
{
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

/* Start one more worker if below max (pool.c). */
void aq__pool_grow(struct aq_pool *pool);

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
 * An elastic pool under backlog: more jobs wait than there are workers,
 * nobody is idle, and there is room for another worker. (A job or two
 * waiting for a worker that is about to take them is not a backlog.)
 * Relaxed loads of read-mostly words on the common path; the decision is
 * re-checked under the lock. Called after a submit and when a worker
 * takes a job.
 */
static inline void aq__pool_maybe_grow(struct aq_pool *pool)
{
	uint32_t idle = atomic_load_explicit(&pool->idle, memory_order_relaxed);
	unsigned live;

	if (aq_likely(idle != AQ__IDLE_ELASTIC))
		return; /* not elastic, or a worker is idle */
	live = atomic_load_explicit(&pool->nlive, memory_order_relaxed);
	if (live >= atomic_load_explicit(&pool->max_workers,
					 memory_order_relaxed))
		return;
	/* Relaxed: a hint; claims counted, published or not. */
	if ((atomic_load_explicit(&pool->ring.tail, memory_order_relaxed) &
	     ~AQ_RING_CLOSED) -
		    atomic_load_explicit(&pool->ring.head,
					 memory_order_relaxed) <=
	    live)
		return;
	aq__pool_grow(pool);
}

/* A record that counted as a timer user became final (pool.c). */
void aq__pool_timer_user_done(struct aq_pool *pool);

/*
 * Push an item, waiting up to budget_ns (negative: forever) for space if
 * the ring is full (submit.c). 0, -EAGAIN, -ETIMEDOUT or -ESHUTDOWN.
 */
int aq__submit_push(struct aq_pool *pool, struct aq__ring_item item,
		    int64_t budget_ns);

/* Threads (threads.c). */
int aq__threads_init(struct aq_pool *pool, const struct aq_pool_config *cfg);
void aq__threads_fini(struct aq_pool *pool);
/* Start workers until `live` reaches target. Under lock, and only while
 * the pool runs (shutdown's join would miss a later thread). 0, an error
 * of the thread library or -ENOMEM, or -EBUSY: the free indexes are still
 * held by retiring workers' stop hooks. */
int aq__threads_spawn(struct aq_pool *pool, unsigned target);
/* Join retired workers, with the lock released while joining; none once
 * shutdown has begun (its own join takes them). */
void aq__threads_reap(struct aq_pool *pool);
/* Retire the calling worker if more than floor live: true = it must exit
 * now (its stop hook still to run). Takes the lock. */
bool aq__threads_try_retire(struct aq_pool *pool, unsigned index,
			    unsigned floor);
/* Join every worker thread by the deadline (negative: none); no lock held;
 * no spawns any more. 0, or -ETIMEDOUT with the rest still joinable. */
int aq__threads_join_all(struct aq_pool *pool, int64_t deadline);
/* On a worker of pool: run rec here and now if it is still PENDING (a
 * waiter helping the very job it waits for; pool.c). */
void aq__worker_run_claimable(struct aq_pool *pool, struct aq_future *rec);

/* The record whose job this thread is running (innermost, if jobs nest
 * in helping waits), or NULL (pool.c). */
struct aq_future *aq__current_job(void);

/* On a worker of pool: run a record its submit found no room for in the
 * ring, here and now, with the reference the ring would have held. */
void aq__worker_run_unqueued(struct aq_pool *pool, struct aq_future *rec);

/* On a worker of pool: take one queued job and run it; false if none. */
bool aq__worker_help(struct aq_pool *pool);

/*
 * Wait, on a worker of pool, until done(ctx) or the deadline, running
 * queued jobs meanwhile: first any of the awaited futures' jobs that is
 * still queued, at any depth; naps on nap_word (a future's state) when
 * there is nothing to run. 0 or -ETIMEDOUT (wait.c).
 */
int aq__wait_helping(struct aq_pool *pool, bool (*done)(void *ctx), void *ctx,
		     aq_future *const *awaited, unsigned nawaited,
		     _Atomic uint32_t *nap_word, _Atomic uint32_t *nap_waiters,
		     int64_t deadline);

/* The body of a worker thread (pool.c). */
void aq__worker_loop(struct aq_pool *pool, unsigned index);

/* The pool whose timer thread this is, or NULL (timer.c). */
extern _Thread_local struct aq_pool *aq__timer_pool;

/* The pool whose worker this thread is, or NULL (pool.c). */
extern _Thread_local struct aq_pool *aq__worker_pool;

/*
 * Wake one parked worker, if any is parked and no wake is already under
 * way: the submit side of the parking protocol described in pool.c. Called
 * after a successful push, whose seq_cst claim orders before the load of
 * idle below.
 */
static inline void aq__pool_wake_one(struct aq_pool *pool)
{
	/* seq_cst: the read half of the parking handshake (see pool.c). */
	if (aq_likely((atomic_load(&pool->idle) & AQ__IDLE_COUNT) == 0))
		return;
	/* Relaxed peek first so that a stream of submits does not bounce the
	 * line with an exchange while one wake is in flight; the exchange
	 * (acq_rel) then elects exactly one waker. */
	if (atomic_load_explicit(&pool->waking, memory_order_relaxed) ||
	    atomic_exchange_explicit(&pool->waking, 1, memory_order_acq_rel))
		return;
	/* Release: a worker that sees the new sequence (acquire in its park)
	 * also sees everything we did before, including our push. */
	atomic_fetch_add_explicit(&pool->wake_seq, 1, memory_order_release);
	aq__park_wake(&pool->wake_seq, 1);
}

#endif
