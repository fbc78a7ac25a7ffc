/* SPDX-License-Identifier: MIT */
/*
 * future.h - job records, which are also the futures callers hold (see
 * future.c); the cache that recycles them is cache.h's. The bottom of the
 * record layers: nothing here calls into a pool, a worker or the timer.
 */
#ifndef AQ__FUTURE_H
#define AQ__FUTURE_H

#include <assert.h>
#include <errno.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include "asyncq.h"
#include "channel.h"
#include "compat.h"
#include "park.h"

struct aq__cache; /* cache.h */

/*
 * A transient state, never shown to callers: the canceller (or a cancelling
 * shutdown) owns the record and is running arg_destroy before it publishes
 * CANCELLED. aq_future_state() reports it as PENDING.
 */
#define AQ__STATE_CANCELLING 8u

/*
 * Another transient state: the thread that resolved a WAITING record's
 * last dependency holds it for a moment while it takes an external claim
 * on the record's pool (deps.c). A canceller waits it out (it lasts a few
 * instructions) and aq_future_state() reports it as WAITING.
 */
#define AQ__STATE_SETTLING 9u

static inline bool aq__state_final(uint32_t state)
{
	return state >= AQ_STATE_SUCCEEDED;
}

/* Bits of a record's detour byte. YIELDED: its last call returned
 * AQ_YIELD, and the next call resumes the same attempt. POLICY: it has a
 * deadline or a retry policy. */
#define AQ__REC_YIELDED 1u
#define AQ__REC_POLICY 2u

/* One aq_future_then() registration; it holds a reference to fut. */
struct aq__then {
	struct aq__chan_node node; /* first; node.next links the future's
				      list, then the channel's queue */
	aq_then_fn fn;
	void *user;
	aq_channel *channel; /* NULL: run on the resolving thread */
	struct aq_future *fut;
};

/*
 * A job that needs more than {fn, arg}: it has a future, or options. The
 * caller's aq_future handle points at this record.
 *
 * aq__future_init() sets cache, refs and timer_index and zeroes every field
 * from state to the end of the "zeroed" block in one memset, so a field
 * whose fresh value is 0, NULL or false belongs in that block; the job's
 * identity before it is written by whoever allocates the record (submit.c
 * for a job, promise.c for a promise) before the record is shared, and
 * fields after the block by whoever uses them (a scheduler, the timer,
 * timing) before they are read.
 */
struct aq_future {
	struct aq__cache *cache; /* where the record returns when refs is 0;
				    NULL for a promise (promise.c) */
	_Atomic uint32_t refs;   /* the caller's reference and the pool's */
	size_t timer_index;      /* position in the timer heap, or SIZE_MAX */

	/* The job's identity: not zeroed, always written first. */
	aq_job_fn fn;
	void *arg;
	struct aq_pool *pool; /* valid while the record is not final; NULL
				 for a promise (promise.c) */
	uint64_t id;          /* job id within the pool, from 1; 0 for a
				 promise */

	/* ---- zeroed by aq__future_init(), from here ... */
	_Atomic uint32_t state;   /* enum aq_state or AQ__STATE_CANCELLING;
				     also the word waiters park on */
	_Atomic uint32_t waiters; /* threads parked, or about to park, on
				     state: the completer wakes only if > 0 */
	int code;                 /* failure code; valid once final */
	union {
		void *result; /* the job's result; valid once final */
		/* While the record is free and heads a full batch in its
		 * cache's depot: the next batch (cache.c). */
		struct aq_future *next_batch;
	};
	void (*arg_destroy)(void *arg);
	struct aq_future *next_free; /* link in the cache's free list */

	/* Failure handling and time (retry.c, timer.c). */
	const struct aq_retry_policy *retry; /* NULL: no retries */
	unsigned attempt;                    /* attempts started */
	/* Why the record leaves the straight run path (run.h): bits
	 * AQ__REC_*, 0 for none, so that path tests one byte. */
	uint8_t detour;
	bool timer_user; /* delayed or retry-capable: the pool counts it
			    until it is final (see pool.c, shutdown) */
	_Atomic bool cancel_requested; /* aq_future_cancel() while running */
	bool sched_queued; /* under sched_lock: the policy holds an entry
			      for it, so another push is a duplicate */
	/* Times the job has been called (AQ_YIELD). Atomic (relaxed): a
	 * waiter may run the job in place while the policy still holds an
	 * entry for it and reads it (scheduler.c). */
	_Atomic unsigned runs;
	int64_t deadline_ns; /* pool clock; 0 = none */
	int64_t first_attempt_ns, last_attempt_ns;
	char *message; /* aq_current_fail_msg(); freed on recycle */
	/* A promise's only (set by aq_future_create()): run on its result
	 * when the record is freed. */
	void (*result_destroy)(void *result);

	/* opts.after: the futures it runs after (references held until the
	 * record is recycled), and how many have yet to resolve, plus one
	 * while submit is still registering (see wait.c). */
	struct aq_future **deps;
	unsigned ndeps;

	/* aq_future_then() registrations, newest first, until the future
	 * resolves; then the THEN_DONE marker (see future.c). */
	_Atomic(struct aq__then *) then_head;
	/* ---- ... to here: then_head is the last zeroed field. */

	/* Written before they are read, by whoever uses them. */
	_Atomic unsigned deps_left; /* deps.c, when ndeps is set */
	int64_t due_ns;             /* pool clock: when the timer releases it */
	int64_t submit_ns; /* real time, with timing on: for W (stats) */

	/* What a scheduler reads (aq_sched_job_*; see scheduler.c). Only
	 * pools with a pluggable scheduler fill them (submit.c). */
	int priority;
	unsigned weight;
	uint64_t group;
	uint64_t hint;
	int64_t enqueue_ns;   /* submit time, CLOCK_MONOTONIC */
	uint64_t seq;         /* arrival order in the scheduler, from 1 */
	void *sched_slots[2]; /* the scheduler's own */
};

/* The zeroed block of a record: from state to then_head. */
#define AQ__FUTURE_ZEROED                                                      \
	(offsetof(struct aq_future, then_head) +                               \
	 sizeof(((struct aq_future *)0)->then_head) -                          \
	 offsetof(struct aq_future, state))

/* Initialise a fresh record: PENDING, refs references, no job, no pool;
 * cache NULL makes it a promise, freed by its last reference. */
static inline void aq__future_init(struct aq_future *fut,
				   struct aq__cache *cache, uint32_t refs)
{
	char *zeroed = (char *)&fut->state;

	/*
	 * Plain initialisation: the record is not shared until it is pushed
	 * on the ring (or handed out by aq_future_create()), whose release
	 * store (or the caller's own hand-off) publishes these writes. The
	 * zeroed block (state PENDING, which is 0, no waiters, no
	 * then-list) is cleared in 64-byte pieces: compilers
	 * write each as a few vector stores, where one memset of the whole
	 * block becomes a `rep stos`, slower to start and one count per word.
	 */
	static_assert(AQ_STATE_PENDING == 0, "the zeroed state is PENDING");
	static_assert(AQ__FUTURE_ZEROED > 64 && AQ__FUTURE_ZEROED <= 128,
		      "two pieces cover the zeroed block");
	memset(zeroed, 0, 64);
	memset(zeroed + 64, 0, AQ__FUTURE_ZEROED - 64);
	fut->cache = cache;
	atomic_init(&fut->refs, refs);
	fut->timer_index = SIZE_MAX;
}

/* The last reference to fut is gone: return it to its cache (cache.c). */
void aq__future_put_last(struct aq_future *fut);

/* Drop one reference; the last one returns the record to its cache. */
static inline void aq__future_put(struct aq_future *fut)
{
	/* acq_rel: our last accesses to the record happen before whoever
	 * drops the final reference recycles it (the acquire half). */
	if (atomic_fetch_sub_explicit(&fut->refs, 1, memory_order_acq_rel) == 1)
		aq__future_put_last(fut);
}

/*
 * Take a record out of PENDING into to (RUNNING for a worker that runs
 * it, CANCELLING for one that cancels it): true if we won it, and own its
 * job fields until we publish a final state.
 */
static inline bool aq__future_claim(struct aq_future *fut, uint32_t to)
{
	uint32_t expected = AQ_STATE_PENDING;

	/* Acquire on success: we see the writes of whoever made the record
	 * PENDING (submitter, timer, or the worker that queued it again). */
	return atomic_compare_exchange_strong_explicit(&fut->state, &expected,
						       to, memory_order_acquire,
						       memory_order_relaxed);
}

/*
 * A canceller takes a record that waits (PENDING, DELAYED, RETRYING or
 * WAITING) into CANCELLING, starting from the state it has read: 0, with
 * the state it was in at *from. A RUNNING record only gets its
 * cancel_requested flag: -EBUSY. Final, or another canceller's:
 * -EALREADY. A record SETTLING is waited out.
 */
int aq__future_take(struct aq_future *fut, uint32_t state, uint32_t *from);

/*
 * The first half of finishing a claimed (RUNNING or CANCELLING) record:
 * run arg_destroy and store the outcome. aq__future_resolve() publishes
 * it; in between, the owner may count it (the pool's statistics).
 */
static inline void aq__future_settle(struct aq_future *fut, int code,
				     void *result)
{
	if (fut->arg_destroy)
		fut->arg_destroy(fut->arg);
	fut->result = result;
	fut->code = code;
}

/* The then-list's end marker: once a future resolves its list is swapped
 * for this, and a registration that finds it runs (or posts) at once. */
extern struct aq__then aq__then_done;

/* Deliver a then-list taken from a resolved record (newest first) in
 * registration order; aq__then_done means another thread took it. */
void aq__future_deliver(struct aq__then *list);

/*
 * Publish a final state (after aq__future_settle()), wake the waiters and
 * deliver the then-callbacks in registration order. A registration that
 * sees the final state before we swap the list takes the list itself
 * (see aq__future_then_node()): whoever swaps in aq__then_done first
 * delivers it. After this the record may be released by its holders at
 * any moment; the owner's reference stays. Inline: most records have no
 * then-callback, and then this is a store, a load and an exchange.
 */
static inline void aq__future_resolve(struct aq_future *fut,
				      uint32_t final_state)
{
	struct aq__then *list;

	/* seq_cst: the condition change of the eventcount (park.h). */
	atomic_store(&fut->state, final_state);
	aq__ec_notify(&fut->state, &fut->waiters, INT32_MAX);
	/* Acquire: pairs with the registrations' release CAS, so their
	 * nodes' fields are visible. */
	list = atomic_exchange_explicit(&fut->then_head, &aq__then_done,
					memory_order_acquire);
	if (list)
		aq__future_deliver(list);
}

/* The outcome of a resolved future (state is final), in aq_future_get()'s
 * terms. The job's own outcomes first: one comparison covers both. */
static inline int aq__future_outcome(const struct aq_future *fut,
				     uint32_t state, void **result)
{
	static_assert(AQ_STATE_FAILED == AQ_STATE_SUCCEEDED + 1,
		      "the job's own outcomes are the two lowest final states");
	if (AQ__LIKELY(state <= AQ_STATE_FAILED)) {
		if (result)
			*result = fut->result;
		return fut->code; /* 0 for SUCCEEDED */
	}
	if (state == AQ_STATE_CANCELLED)
		return -ECANCELED;
	if (state == AQ_STATE_EXPIRED)
		return -ETIME;
	return -EPIPE; /* AQ_STATE_SKIPPED */
}

/*
 * Sleep until the record is final or the deadline (CLOCK_MONOTONIC,
 * negative: none) passes: the final state, or -ETIMEDOUT.
 */
int aq__future_wait(struct aq_future *fut, int64_t deadline);

/* Register a prepared node (no allocation, cannot fail). */
void aq__future_then_node(struct aq_future *fut, struct aq__then *then);

#endif
