/* SPDX-License-Identifier: MIT */
/*
 * steal.c - the workers' deques as the pool sees them: making a worker's
 * deque, a job's push on its worker's deque (with the wake of a parked
 * worker), stealing from the other workers' deques, and the look an idle
 * worker takes at the ring and every deque before it parks. The deque
 * itself is deque.c; when a worker uses which is worker.c.
 */
#include <errno.h>

#include "current.h"
#include "deque.h"
#include "park.h"
#include "pool.h"
#include "stats.h"
#include "steal.h"

/* Steal attempts per look: a failed steal lost a race for an item, so
 * another round may find one; bounded so that a look is short. */
#define WORKER_STEAL_ROUNDS 2

static _Thread_local unsigned steal_from; /* where the next look starts */
/* This worker's pushes use the light half of the asymmetric fence (a
 * worker thread serves one pool for life). */
static _Thread_local bool steal_light;

/* Does any worker's deque hold an item? seq_cst loads: the re-check of
 * the parking eventcount. */
static bool steal_deques_nonempty(struct aq_pool *pool)
{
	/* Relaxed: the span only grows, and a deque born after we read it
	 * belongs to a worker that is awake. */
	unsigned span =
		atomic_load_explicit(&pool->deque_span, memory_order_relaxed);

	for (unsigned i = 0; i < span; i++) {
		/* Acquire: pairs with the release store that published it. */
		struct aq__deque *d = atomic_load_explicit(
			&pool->deques[i], memory_order_acquire);

		if (d && aq__deque_nonempty(d))
			return true;
	}
	return false;
}

bool aq__steal_one(struct aq_pool *pool, struct aq__ring_item *item)
{
	/* Relaxed, as in steal_deques_nonempty(). */
	unsigned span =
		atomic_load_explicit(&pool->deque_span, memory_order_relaxed);

	for (unsigned round = 0; round < WORKER_STEAL_ROUNDS; round++) {
		for (unsigned k = 0; k < span; k++) {
			unsigned i = (steal_from + k) % span;
			/* Acquire, as in steal_deques_nonempty(). */
			struct aq__deque *d = atomic_load_explicit(
				&pool->deques[i], memory_order_acquire);

			if (!d || d == aq__worker_deque)
				continue;
			if (aq__deque_steal(d, item)) {
				/* Next time start here: a deque that had
				 * work likely has more. */
				steal_from = i;
				return true;
			}
		}
	}
	steal_from++;
	return false;
}

bool aq__steal_visible(struct aq_pool *pool)
{
	return aq__ring_nonempty(&pool->ring) || steal_deques_nonempty(pool);
}

int aq__steal_spin(struct aq_pool *pool)
{
	/* Awake a few microseconds, which hides the futex round trip when
	 * jobs arrive in quick succession, lending the core to whichever
	 * thread may be about to submit, before we park (park.h). */
	struct aq__backoff wait = AQ__BACKOFF_INIT(
		AQ__BACKOFF_SPINS, AQ__BACKOFF_YIELDS, AQ__PAUSE_IDLE_YIELD);
	int looks = 0;

	/* The ring at every look; the deques (a scan of them all) at every
	 * eighth look of the spin, a nested job is rarely in a hurry, and
	 * after every yield, which costs more than the scan. */
	while (aq__backoff(&wait)) {
		if (aq__ring_nonempty(&pool->ring) ||
		    (((looks & 7) == 7 || aq__backoff_yielded(&wait)) &&
		     steal_deques_nonempty(pool)))
			return looks;
		looks++;
	}
	return -1;
}

struct aq__deque *aq__steal_deque_get(struct aq_pool *pool, unsigned index)
{
	/* Relaxed: only workers of this index store it, one at a time
	 * (a slot's next thread starts after its last one retired). */
	struct aq__deque *d = atomic_load_explicit(&pool->deques[index],
						   memory_order_relaxed);
	unsigned span;

	if (d || pool->sched)
		return d;
	d = aq__deque_new();
	if (!d)
		return NULL;
	/* Release: pairs with the thieves' acquire loads of the entry. */
	atomic_store_explicit(&pool->deques[index], d, memory_order_release);
	/* Relaxed: a bound for the thieves' scan; the entry above is what
	 * they validate. */
	span = atomic_load_explicit(&pool->deque_span, memory_order_relaxed);
	while (span <= index &&
	       !atomic_compare_exchange_weak_explicit(
		       &pool->deque_span, &span, index + 1,
		       memory_order_relaxed, memory_order_relaxed))
		;
	return d;
}

/*
 * A push before this worker uses the light fence: a seq_cst fence; and if
 * the system has the asymmetric fence, tell parkers to run its heavy half
 * from now on. The flag's seq_cst store comes before our later pushes'
 * reads of idle (seq_cst), so a parker that read it still clear (seq_cst,
 * after raising idle) raised idle before any of them reads it: those
 * pushers see it and wake it, as with a full fence. Registering the
 * process takes milliseconds, so a pusher does not: it asks the next
 * worker to go idle to do it (aq__steal_idle_chores()).
 */
static __attribute__((noinline)) void steal_fence_first(struct aq_pool *pool)
{
	if (!aq__park_asym_ready()) {
		/* Relaxed: a request; until it is served, full fences. */
		if (!atomic_load_explicit(&pool->asym_wanted,
					  memory_order_relaxed))
			atomic_store_explicit(&pool->asym_wanted, true,
					      memory_order_relaxed);
	} else {
		/* seq_cst load, when another worker set it: its store then
		 * comes before our later reads of idle, as our own would. */
		if (!atomic_load(&pool->deques_light))
			atomic_store(&pool->deques_light, true);
		steal_light = true;
	}
	atomic_thread_fence(memory_order_seq_cst);
}

void aq__steal_idle_chores(struct aq_pool *pool)
{
	/* Relaxed: see steal_fence_first(). */
	if (AQ__UNLIKELY(atomic_load_explicit(&pool->asym_wanted,
					      memory_order_relaxed))) {
		atomic_store_explicit(&pool->asym_wanted, false,
				      memory_order_relaxed);
		aq__park_asym_register();
	}
}

bool aq__steal_park_fence(struct aq_pool *pool)
{
	/* seq_cst: see steal_fence_first(). */
	return !atomic_load(&pool->deques_light) || aq__park_fence_heavy() == 0;
}

int aq__steal_push_local(struct aq_pool *pool, struct aq__ring_item item)
{
	/* Counted first, in this worker's own block (see AQ__STAT_SHARED()). */
	aq__stat_add(&aq__current.stats->forked, 1, false);
	if (aq__deque_push(aq__worker_deque, item) != 0) {
		aq__stat_add(&aq__current.stats->forked, UINT64_MAX, false);
		return -EAGAIN;
	}
	/*
	 * The push (a store of bottom) is the condition change of the
	 * parking eventcount, and must be ordered before our read of idle in
	 * aq__pool_wake_one(), against a parker's raise of idle and its
	 * seq_cst re-check of the deques (worker_park()). A fork-join job
	 * pushes at every fork and a worker parks rarely, so the parker pays:
	 * with the asymmetric fence of park.h, a compiler barrier here and
	 * the heavy fence there. Else a seq_cst fence here.
	 */
	if (AQ__LIKELY(steal_light))
		atomic_signal_fence(memory_order_seq_cst);
	else
		steal_fence_first(pool);
	aq__pool_wake_one(pool);
	return 0;
}
