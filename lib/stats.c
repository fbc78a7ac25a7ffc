/* SPDX-License-Identifier: MIT */
/*
 * stats.c - what a pool has done and how long it took: counters summed
 * over per-worker blocks, gauges read from the ring, the scheduler and the
 * timer, log2 histograms of queue wait and run time, and the queueing
 * view of the last window (arrival rate, throughput, utilisation, and
 * Little's L = X * W).
 *
 * Cost: a worker counts into its own cache lines with plain stores, so a
 * job pays a few uncontended memory operations and no locked instruction.
 * Timing costs two clock reads a call and is off unless AQ_POOL_TIMING or
 * a job hook asks for it. Reading stats takes the pool lock (to walk the
 * worker blocks) and the stats lock (for the window), never a lock that
 * workers take per job, so it never stops them.
 *
 * "submitted" is derived, so that submitting counts nothing: every accepted
 * job is either pushed on the ring once by its submit, or accepted into
 * the timer or a dependency wait (off_ring); other ring pushes are yields
 * (requeued) and releases from the timer or dependencies (released). A
 * job submitted by a job of the same pool may go on its worker's deque
 * instead (forked), and is then never on the ring. So submitted = ring
 * pushes - requeued - released + off_ring + forked, exact when the pool
 * is quiet and a consistent estimate while it runs.
 *
 * The reader's order keeps the estimate from exceeding the jobs accepted:
 * outcomes first, then the ring's tail, then the four counters above
 * again. Their writers count before they push, so a push the tail shows
 * is also in the counters read after it. Read only before the tail, a
 * re-push made in between (a delayed job the timer released, a yield)
 * counted as one more submission.
 */
#include <errno.h>
#include <string.h>

#include "clock.h"
#include "deque.h"
#include "fault.h"
#include "park.h"
#include "pool.h"
#include "stats.h"

static unsigned hist_bucket(uint64_t ns)
{
	return ns ? 63u - (unsigned)__builtin_clzll(ns) : 0;
}

static void stat_max(_Atomic uint64_t *max, uint64_t v)
{
	/* Relaxed: one writer per block. */
	if (v > atomic_load_explicit(max, memory_order_relaxed))
		atomic_store_explicit(max, v, memory_order_relaxed);
}

void aq__stats_time(struct aq__stats *blk, int64_t wait_ns, int64_t run_ns,
		    bool busy)
{
	uint64_t w = wait_ns > 0 ? (uint64_t)wait_ns : 0;
	uint64_t r = run_ns > 0 ? (uint64_t)run_ns : 0;

	aq__stat_add(&blk->wait_hist[hist_bucket(w)], 1, false);
	aq__stat_add(&blk->run_hist[hist_bucket(r)], 1, false);
	aq__stat_add(&blk->wait_sum, w, false);
	aq__stat_add(&blk->run_sum, r, false);
	if (busy)
		aq__stat_add(&blk->busy_ns, r, false);
	stat_max(&blk->wait_max, w);
	stat_max(&blk->run_max, r);
}

/* Relaxed: counters are independent; a snapshot need not be atomic. */
#define LOAD(x) atomic_load_explicit(&(x), memory_order_relaxed)

/* Items in the workers' deques: a sum of differences read one deque at a
 * time, so only an estimate while jobs fork. */
static uint64_t stats_deque_items(struct aq_pool *pool)
{
	/* Relaxed: a gauge; the deques outlive the pool's workers. */
	unsigned span =
		atomic_load_explicit(&pool->deque_span, memory_order_relaxed);
	uint64_t n = 0;

	for (unsigned i = 0; i < span; i++) {
		/* Acquire: pairs with the worker's release store of its new
		 * deque, whose initial words we then read. */
		struct aq__deque *d = atomic_load_explicit(
			&pool->deques[i], memory_order_acquire);
		int64_t t, b;

		if (!d)
			continue;
		/* Top first (seq_cst, as aq__deque_nonempty()): bottom read
		 * after it is rarely below it, and a negative count is 0. */
		t = atomic_load(&d->top);
		b = atomic_load(&d->bottom);
		n += b > t ? (uint64_t)(b - t) : 0;
	}
	return n;
}

static void stats_sum(struct aq__stats *sum, const struct aq__stats *blk)
{
#define ADD(f)                                                                 \
	atomic_store_explicit(&sum->f, LOAD(sum->f) + LOAD(blk->f),            \
			      memory_order_relaxed)
	ADD(started);
	ADD(ran_ok);
	ADD(succeeded);
	ADD(failed);
	ADD(cancelled);
	ADD(expired);
	ADD(skipped);
	ADD(retried);
	/* requeued, released, off_ring and forked: read apart, after the
	 * ring's tail (stats_push_offset()). */
	ADD(rejected);
	ADD(busy_ns);
	ADD(sojourn_ns);
	ADD(timed_done);
	ADD(wait_sum);
	ADD(run_sum);
	for (int i = 0; i < AQ__HIST_BUCKETS; i++) {
		ADD(wait_hist[i]);
		ADD(run_hist[i]);
	}
#undef ADD
	if (LOAD(blk->wait_max) > LOAD(sum->wait_max))
		atomic_store_explicit(&sum->wait_max, LOAD(blk->wait_max),
				      memory_order_relaxed);
	if (LOAD(blk->run_max) > LOAD(sum->run_max))
		atomic_store_explicit(&sum->run_max, LOAD(blk->run_max),
				      memory_order_relaxed);
}

static void hist_fill(struct aq_histogram *h, const _Atomic uint64_t *buckets,
		      uint64_t sum, uint64_t max)
{
	const double quantiles[3] = { 0.50, 0.90, 0.99 };
	int64_t *out[3] = { &h->p50_ns, &h->p90_ns, &h->p99_ns };
	uint64_t count = 0, seen = 0;
	int q = 0;

	for (int i = 0; i < AQ__HIST_BUCKETS; i++)
		count += LOAD(buckets[i]);
	memset(h, 0, sizeof(*h));
	h->count = count;
	if (!count)
		return;
	h->mean_ns = (int64_t)(sum / count);
	h->max_ns = (int64_t)max;
	for (int i = 0; i < AQ__HIST_BUCKETS && q < 3; i++) {
		seen += LOAD(buckets[i]);
		while (q < 3 && (double)seen >= quantiles[q] * (double)count) {
			/* The bucket's geometric middle, never past max. */
			double mid = i ? 1.5 * (double)(UINT64_C(1) << i) : 0;
			*out[q++] =
				mid > (double)max ? (int64_t)max : (int64_t)mid;
		}
	}
}

/* The cumulative figures of a snapshot. */
static struct aq__window window_of(const struct aq_pool_stats *st)
{
	return (struct aq__window){
		.t_ns = st->taken_ns,
		.submitted = st->submitted,
		.completed = st->succeeded + st->failed + st->cancelled +
			     st->expired + st->skipped,
		.busy_ns = st->busy_ns,
		.sojourn_ns = st->sojourn_ns,
		.timed_done = st->timed_done,
	};
}

/* b - a, or 0 when b is behind a. */
static double grown(uint64_t a, uint64_t b)
{
	return b > a ? (double)(b - a) : 0;
}

/*
 * The window figures of *st, for the window from `from` to *st. A
 * difference that would be negative counts as 0: "submitted" is derived
 * and may read a little low while the pool runs (see the top of this
 * file), and two threads taking statistics at once may read the counters
 * in one order and close their windows in the other.
 */
static void window_fill(struct aq_pool_stats *st, const struct aq__window *from)
{
	struct aq__window to = window_of(st);
	double secs, timed;

	st->window_ns = to.t_ns - from->t_ns;
	st->arrival_rate = st->throughput = st->utilization = 0;
	st->mean_time_in_system_ns = st->mean_in_system = 0;
	secs = (double)st->window_ns / 1e9;
	if (secs <= 0)
		return;
	st->arrival_rate = grown(from->submitted, to.submitted) / secs;
	st->throughput = grown(from->completed, to.completed) / secs;
	if (st->workers)
		st->utilization = grown(from->busy_ns, to.busy_ns) /
				  ((double)st->window_ns * (double)st->workers);
	timed = grown(from->timed_done, to.timed_done);
	if (timed > 0)
		st->mean_time_in_system_ns =
			grown(from->sojourn_ns, to.sojourn_ns) / timed;
	st->mean_in_system = st->throughput * st->mean_time_in_system_ns / 1e9;
}

AQ_API int aq_pool_stats_window(const struct aq_pool_stats *since,
				struct aq_pool_stats *now)
{
	struct aq__window from, to;

	if (!since || !now)
		return -EINVAL;
	from = window_of(since);
	to = window_of(now);
	/* Cumulative sums never go back: anything else is not an earlier
	 * snapshot of the same pool. */
	if (from.t_ns > to.t_ns || from.completed > to.completed ||
	    from.busy_ns > to.busy_ns || from.sojourn_ns > to.sojourn_ns ||
	    from.timed_done > to.timed_done)
		return -EINVAL;
	window_fill(now, &from);
	return 0;
}

/* What submissions add to the ring's pushes: off_ring + forked -
 * requeued - released, over every block (modulo 2^64; see the top). */
static uint64_t stats_push_offset(struct aq_pool *pool)
{
	uint64_t off = 0;

#define OFFSET(blk)                                                            \
	(LOAD((blk)->off_ring) + LOAD((blk)->forked) - LOAD((blk)->requeued) - \
	 LOAD((blk)->released))
	pthread_mutex_lock(&pool->lock);
	for (unsigned i = 0; i < pool->nslots; i++)
		off += OFFSET(pool->wstats[i]);
	pthread_mutex_unlock(&pool->lock);
	off += OFFSET(pool->shared_stats);
#undef OFFSET
	return off;
}

/* Everything of a snapshot but its time and window (see stats.h). */
void aq__stats_read(struct aq_pool *pool, struct aq_pool_stats *st,
		    struct aq__hists *hists)
{
	static const struct aq__stats zero;
	struct aq__stats sum = zero;
	uint64_t head, pushes, running = 0;

	memset(st, 0, sizeof(*st));

	pthread_mutex_lock(&pool->lock);
	for (unsigned i = 0; i < pool->nslots; i++) {
		stats_sum(&sum, pool->wstats[i]);
		running += LOAD(pool->wstats[i]->running) != AQ__RUNNING_NONE;
	}
	st->workers = pool->live;
	pthread_mutex_unlock(&pool->lock);
	stats_sum(&sum, pool->shared_stats);
	/* Tests hold the reader here to push between the two reads. */
	aq__pause(AQ__PAUSE_STATS_SUMMED);

	/* Head before tail (seq_cst): a consumer only claims a cell a
	 * producer already pushed, so the tail read after the head is never
	 * behind it and the difference never wraps. Read the other way round,
	 * pops made between the two loads gave a "negative" queue. */
	head = atomic_load(&pool->ring.head);
	pushes = atomic_load(&pool->ring.tail) & ~AQ__RING_CLOSED;
	st->queued = pushes - head + LOAD(pool->sched_held) +
		     stats_deque_items(pool);
	pthread_mutex_lock(&pool->timer.lock);
	st->delayed = pool->timer.len;
	pthread_mutex_unlock(&pool->timer.lock);

	/* The offset is read after the tail: our seq_cst load of it
	 * acquires each pusher's CAS, which it made after counting, so every
	 * re-push in `pushes` is in the offset. A re-push counted but not
	 * yet made reads one low, never one high. */
	st->submitted = pushes + stats_push_offset(pool);
	st->started = LOAD(sum.started) + LOAD(sum.ran_ok);
	st->succeeded = LOAD(sum.succeeded) + LOAD(sum.ran_ok);
	st->failed = LOAD(sum.failed);
	st->retried = LOAD(sum.retried);
	st->cancelled = LOAD(sum.cancelled);
	st->expired = LOAD(sum.expired);
	st->skipped = LOAD(sum.skipped);
	st->rejected = LOAD(sum.rejected);
	st->running = running;
	st->workers_busy = running < st->workers ? running : st->workers;
	st->workers_idle = st->workers - st->workers_busy;
	hist_fill(&st->wait, sum.wait_hist, LOAD(sum.wait_sum),
		  LOAD(sum.wait_max));
	hist_fill(&st->run, sum.run_hist, LOAD(sum.run_sum), LOAD(sum.run_max));

	st->busy_ns = LOAD(sum.busy_ns);
	st->sojourn_ns = LOAD(sum.sojourn_ns);
	st->timed_done = LOAD(sum.timed_done);
	if (hists) {
		for (int i = 0; i < AQ__HIST_BUCKETS; i++) {
			hists->wait[i] = LOAD(sum.wait_hist[i]);
			hists->run[i] = LOAD(sum.run_hist[i]);
		}
		hists->wait_sum = LOAD(sum.wait_sum);
		hists->run_sum = LOAD(sum.run_sum);
	}
}

AQ_API int aq_pool_stats(aq_pool *pool, struct aq_pool_stats *st)
{
	if (!pool || !st)
		return -EINVAL;
	aq__stats_read(pool, st, NULL);
	/* The window since the previous call. The time is read under the
	 * lock, so that the pool's windows follow one another in order
	 * however many threads take statistics. */
	pthread_mutex_lock(&pool->stats_lock);
	st->taken_ns = aq__now_ns();
	window_fill(st, &pool->window);
	pool->window = window_of(st);
	pthread_mutex_unlock(&pool->stats_lock);
	return 0;
}
