/* SPDX-License-Identifier: MIT */
/*
 * stats.h - the pool's counters and timing histograms (see stats.c).
 */
#ifndef AQ__STATS_H
#define AQ__STATS_H

#include <stdatomic.h>
#include <stdbool.h>
#include <stdint.h>

#include "compat.h"

#define AQ__HIST_BUCKETS 64 /* bucket k: durations in [2^k, 2^(k+1)) ns */

/*
 * One writer's counters, on lines of their own. A worker owns its block
 * and updates it with plain relaxed loads and stores (no locked
 * instruction); the pool's shared block takes the rare updates from other
 * threads (cancellers, the timer thread, failed submits) with fetch_add.
 */
struct aq__stats {
	AQ__CACHE_ALIGNED _Atomic uint64_t started, succeeded, failed,
		cancelled, expired, skipped, retried;
	/* Fire-and-forget jobs that ran once and succeeded: they count as
	 * started and as succeeded, with one store instead of two (a reader
	 * adds them to both). */
	_Atomic uint64_t ran_ok;
	_Atomic uint64_t requeued; /* yields pushed back on the ring */
	_Atomic uint64_t released; /* timer/dependency pushes on the ring */
	_Atomic uint64_t off_ring; /* accepted into timer or dependencies */
	_Atomic uint64_t forked;   /* pushed on a worker's deque by a job */
	_Atomic uint64_t rejected;
	/* A worker's running gauge: AQ__RUNNING_NONE, the id of the record
	 * whose job it runs (ids start at 1), or AQ__RUNNING_INLINE. One word,
	 * so that a call sets and clears it with one store each. */
	_Atomic uint64_t running;
	/* Timing (AQ_POOL_TIMING or job hooks). */
	_Atomic uint64_t busy_ns, sojourn_ns, timed_done;
	_Atomic uint64_t wait_sum, run_sum, wait_max, run_max;
	_Atomic uint64_t wait_hist[AQ__HIST_BUCKETS];
	_Atomic uint64_t run_hist[AQ__HIST_BUCKETS];
};

/* The running gauge in no job and in a fire-and-forget job's call (no
 * job id reaches UINT64_MAX). */
#define AQ__RUNNING_NONE 0
#define AQ__RUNNING_INLINE UINT64_MAX

/* Add n to a counter of blk: a plain update for the owning worker, an
 * atomic one for the shared block. */
static inline void aq__stat_add(_Atomic uint64_t *counter, uint64_t n,
				bool shared)
{
	if (shared)
		atomic_fetch_add_explicit(counter, n, memory_order_relaxed);
	else
		/* Relaxed load and store: one writer, readers only sum. */
		atomic_store_explicit(
			counter,
			atomic_load_explicit(counter, memory_order_relaxed) + n,
			memory_order_relaxed);
}

struct aq_pool;

/* The cumulative figures a window of aq_pool_stats() is a difference of. */
struct aq__window {
	int64_t t_ns;
	uint64_t submitted, completed, busy_ns, sojourn_ns, timed_done;
};

/*
 * Count into the shared block (slow paths, any thread). A push that
 * re-queues a job is counted before the push, and taken back if the push
 * fails, so that a reader who has seen the job finish also sees it
 * counted (aq_pool_stats() derives "submitted" from these).
 */
#define AQ__STAT_SHARED(pool, field)                                           \
	atomic_fetch_add_explicit(&(pool)->shared_stats->field, 1,             \
				  memory_order_relaxed)
#define AQ__STAT_SHARED_UNDO(pool, field)                                      \
	atomic_fetch_sub_explicit(&(pool)->shared_stats->field, 1,             \
				  memory_order_relaxed)

/* The raw timing histograms (bucket k: [2^k, 2^(k+1)) ns) and their sums
 * in nanoseconds, for exporters that publish buckets (metrics.c). */
struct aq__hists {
	uint64_t wait[AQ__HIST_BUCKETS], run[AQ__HIST_BUCKETS];
	uint64_t wait_sum, run_sum;
};

struct aq_pool_stats;

/*
 * Read pool's counters, gauges and distributions into *st, and the raw
 * histograms of the same reading into *hists unless it is NULL. The time
 * and window fields are left 0 and the pool's window is not touched:
 * aq_pool_stats() adds those; an exporter of cumulative figures needs
 * none and must not close other callers' windows.
 */
void aq__stats_read(struct aq_pool *pool, struct aq_pool_stats *st,
		    struct aq__hists *hists);

/* Record one call's wait and run times into a worker's block; busy: its
 * run time is the worker's busy time (not nested in another call). */
void aq__stats_time(struct aq__stats *blk, int64_t wait_ns, int64_t run_ns,
		    bool busy);

#endif
