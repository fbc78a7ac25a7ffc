/* SPDX-License-Identifier: MIT */
/*
 * current.h - the context of the job a worker thread is running (see
 * current.c): which record, which call, which time slice. The worker loop
 * sets it around each call; the aq_current_*() queries read it.
 */
#ifndef AQ__CURRENT_H
#define AQ__CURRENT_H

#include <stdatomic.h>
#include <stdbool.h>
#include <stdint.h>

#include "future.h"
#include "stats.h"

struct aq_pool;

/* The pool whose worker this thread is, or NULL. */
extern _Thread_local struct aq_pool *aq__worker_pool;

/* That worker's deque (deque.c), or NULL: jobs its jobs submit go there. */
extern _Thread_local struct aq__deque *aq__worker_deque;

/* Per worker thread. */
struct aq__current {
	/* This worker's statistics block (stats.h), or NULL on a thread
	 * that is no pool's worker. Here, beside the running job, so that
	 * a call's bookkeeping finds both through one thread pointer. */
	struct aq__stats *stats;
	/* The record whose job this thread is running, if any. A
	 * fire-and-forget job without one shows as the running gauge's
	 * AQ__RUNNING_INLINE instead (aq__current_inline()). */
	struct aq_future *rec;
	uint64_t calls;      /* job calls started on this thread */
	uint64_t slice_call; /* the call whose time slice started at ... */
	int64_t slice_start; /* ... this time (aq_current_yield_due()) */
	unsigned depth;      /* calls of records nested on this stack (a
				job that waits runs others); only timing
				reads it */
};

extern _Thread_local struct aq__current aq__current;

/* The record whose job this thread is running (innermost, if jobs nest
 * in helping waits), or NULL. */
static inline struct aq_future *aq__current_job(void)
{
	return aq__current.rec;
}

/* Is this thread inside a fire-and-forget job's own call? */
static inline bool aq__current_inline(void)
{
	/* Relaxed: this worker's own gauge. */
	return aq__current.stats &&
	       atomic_load_explicit(&aq__current.stats->running,
				    memory_order_relaxed) == AQ__RUNNING_INLINE;
}

/* A record's call begins on this worker; depth: count it in the nesting
 * depth (a pool with timing, the only reader, must). */
static inline void aq__current_enter(struct aq_future *rec, bool depth)
{
	aq__current.rec = rec;
	aq__current.calls++;
	if (depth)
		aq__current.depth++;
	/* Relaxed: a gauge for readers, written by this worker only. */
	atomic_store_explicit(&aq__current.stats->running, rec->id,
			      memory_order_relaxed);
}

/* ... and ends (depth as it began). */
static inline void aq__current_leave(bool depth)
{
	aq__current.rec = NULL;
	if (depth)
		aq__current.depth--;
	/* Relaxed, as in aq__current_enter(). */
	atomic_store_explicit(&aq__current.stats->running, AQ__RUNNING_NONE,
			      memory_order_relaxed);
}

/*
 * A saved context. A job that waits may run other jobs on the same stack
 * (help.c, helping); it saves its context first and restores it after,
 * so the outer job finds its own again (aq_current_*() answers, gauges,
 * its time slice).
 */
struct aq__current_saved {
	struct aq_future *rec;
	uint64_t running, slice_call;
	int64_t slice_start;
};

/* Save the context and clear it for a nested call ("no job", as a call
 * from the worker loop starts). The running gauge keeps the waiting job
 * until a nested call replaces it: the worker is still busy with it.
 * Inline: a fork-join wait does it for every child it runs itself. */
static inline struct aq__current_saved aq__current_save(void)
{
	/* Relaxed: the gauge is written by this worker only. */
	struct aq__current_saved saved = {
		.rec = aq__current.rec,
		.running = atomic_load_explicit(&aq__current.stats->running,
						memory_order_relaxed),
		.slice_call = aq__current.slice_call,
		.slice_start = aq__current.slice_start,
	};

	aq__current.rec = NULL;
	return saved;
}

static inline void aq__current_restore(const struct aq__current_saved *saved)
{
	aq__current.rec = saved->rec;
	aq__current.slice_call = saved->slice_call;
	aq__current.slice_start = saved->slice_start;
	/* Relaxed, as in aq__current_save(). */
	atomic_store_explicit(&aq__current.stats->running, saved->running,
			      memory_order_relaxed);
}

#endif
