/* SPDX-License-Identifier: MIT */
/*
 * future.h - job records, which are also the futures callers hold, and the
 * per-pool cache that recycles them (see future.c).
 */
#ifndef AQ_FUTURE_H
#define AQ_FUTURE_H

#include <pthread.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdint.h>

#include "asyncq.h"
#include "park.h"

/*
 * A transient state, never shown to callers: the canceller (or a cancelling
 * shutdown) owns the record and is running arg_destroy before it publishes
 * CANCELLED. aq_future_state() reports it as PENDING.
 */
#define AQ__STATE_CANCELLING 8u

static inline bool aq__state_final(uint32_t state)
{
	return state >= AQ_STATE_SUCCEEDED;
}

/* One aq_future_then() registration; it holds a reference to fut. */
struct aq__then {
	aq_then_fn fn;
	void *user;
	aq_channel *channel;   /* NULL: run on the resolving thread */
	struct aq_future *fut;
	struct aq__then *next; /* the future's list, then the channel's */
};

/*
 * A job that needs more than {fn, arg}: it has a future, or options. The
 * caller's aq_future handle points at this record.
 */
struct aq_future {
	_Atomic uint32_t state;   /* enum aq_state or AQ__STATE_CANCELLING;
				     also the word waiters park on */
	_Atomic uint32_t waiters; /* threads parked, or about to park, on
				     state: the completer wakes only if > 0 */
	_Atomic uint32_t refs;    /* the caller's reference and the pool's */
	int code;                 /* failure code; valid once final */
	void *result;             /* the job's result; valid once final */
	aq_job_fn fn;
	void *arg;
	void (*arg_destroy)(void *arg);
	struct aq__cache *cache;  /* where the record returns when refs is 0;
				     NULL for a promise (promise.c) */
	struct aq_future *next_free; /* link in the cache's free list */

	/* What a scheduler reads (aq_job_*; see scheduler.c). Only pools with a
	 * pluggable scheduler fill enqueue_ns and seq. */
	int priority;
	unsigned weight;
	uint64_t group;
	uint64_t hint;
	int64_t enqueue_ns;  /* submit time, CLOCK_MONOTONIC */
	uint64_t seq;        /* arrival order in the scheduler, from 1 */
	unsigned runs;       /* times the job has been called (AQ_YIELD) */
	void *sched_slots[2]; /* the scheduler's own */

	/* Failure handling and time (retry.c, timer.c). */
	struct aq_pool *pool; /* valid while the record is not final; NULL
				 for a promise (promise.c) */
	uint64_t id;          /* job id within the pool, from 1 */
	const struct aq_retry_policy *retry; /* NULL: no retries */
	unsigned attempt;     /* attempts started */
	bool yielded;         /* its last call returned AQ_YIELD: the next
				 call resumes the same attempt */
	bool timer_user;      /* delayed or retry-capable: the pool counts it
				 until it is final (see pool.c, shutdown) */
	_Atomic bool cancel_requested; /* aq_future_cancel() while running */
	int64_t deadline_ns;  /* pool clock; 0 = none */
	int64_t due_ns;       /* pool clock: when the timer releases it */
	size_t timer_index;   /* position in the timer heap, or SIZE_MAX */
	int64_t first_attempt_ns, last_attempt_ns;
	char *message;        /* aq_job_fail_msg(); freed on recycle */
	void (*result_destroy)(void *result); /* a promise's only (set by
						 aq_future_create()): run on
						 its result when it is freed */

	/* opts.after: the futures it runs after (references held until the
	 * record is recycled), and how many have yet to resolve, plus one
	 * while submit is still registering (see wait.c). */
	struct aq_future **deps;
	unsigned ndeps;
	_Atomic unsigned deps_left;

	int64_t submit_ns;    /* real time, with timing on: for W (stats) */

	/* aq_future_then() registrations, newest first, until the future
	 * resolves; then the THEN_DONE marker (see future.c). */
	_Atomic(struct aq__then *) then_head;
};

/*
 * Recycles records so the steady state does not malloc. It outlives its
 * pool while callers still hold futures: the pool closes it, and the last
 * record to come back frees it.
 */
struct aq__cache {
	struct aq__lock lock;
	struct aq_future *free_list; /* records ready for reuse */
	size_t outstanding;          /* records handed out, not yet back */
	bool closed;                 /* the pool is gone: free, don't keep */
};

struct aq__cache *aq__cache_create(void);
/* The pool is done with the cache; it is freed once every record is back. */
void aq__cache_close(struct aq__cache *cache);

/* A record in state PENDING with refs references, or NULL (-ENOMEM). */
struct aq_future *aq__future_alloc(struct aq__cache *cache, uint32_t refs);
/* Initialise a fresh record: PENDING, refs references, no job, no pool;
 * cache NULL makes it a promise, freed by its last reference. */
void aq__future_init(struct aq_future *fut, struct aq__cache *cache,
		     uint32_t refs);
/* Drop one reference; the last one returns the record to its cache. */
void aq__future_put(struct aq_future *fut);

/*
 * Give a claimed (RUNNING or CANCELLING) record its final outcome: run
 * arg_destroy, store result and code, publish the state, wake waiters, and
 * tell the pool if it was a timer user. The pool's reference stays.
 */
void aq__future_finish(struct aq_future *fut, uint32_t final_state, int code,
		       void *result);

/*
 * Claim a record a worker has taken from a queue: PENDING -> RUNNING, or
 * -> cancelled when cancel is true (a cancelling shutdown). False when it
 * was not PENDING (a canceller owns it) or was cancelled here: the caller
 * then only drops the pool's reference.
 */
bool aq__future_claim(struct aq_future *fut, bool cancel);



/* Register a prepared node (no allocation, cannot fail). */
void aq__future_then_node(struct aq_future *fut, struct aq__then *then);

/* Run one registration's callback and release what it holds. */
void aq__then_run(struct aq__then *then);

/* opts.after for a new record (wait.c): allocate and register; the record
 * is WAITING until its dependencies resolve. 0 or -ENOMEM (nothing done). */
int aq__deps_attach(struct aq_future *rec, aq_future *const *after,
		    unsigned count);
/* Submit is done registering: drop the guard count (wait.c). */
void aq__deps_arm(struct aq_future *rec);

/* Queue a registration on its channel (channel.c). */
void aq__channel_post(aq_channel *channel, struct aq__then *then);

#endif
