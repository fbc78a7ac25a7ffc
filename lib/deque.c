/* SPDX-License-Identifier: MIT */
/*
 * deque.c - the per-worker work-stealing deque: a job that submits a job
 * of its own pool puts it here, at the bottom, and its worker takes its
 * newest work back from the bottom (LIFO: a fork-join tree is walked
 * depth-first, so the deque holds about one item per level), while idle
 * workers steal the oldest from the top (FIFO: the biggest subtrees).
 *
 * The algorithm is Chase and Lev's ("Dynamic circular work-stealing
 * deque", SPAA 2005) without the growth: a fixed array of
 * AQ__DEQUE_CAPACITY cells, and a push that finds it full is refused (the
 * pool then uses its ring). The memory orders follow Le, Pop, Cohen and
 * Zappa Nardelli ("Correct and efficient work-stealing for weak memory
 * models", PPoPP 2013), with two changes made for ThreadSanitizer, which
 * does not model fences: the owner's stores of bottom are release stores
 * (the paper's release fence before a relaxed store, made part of the
 * store; on x86-64 both are a plain mov), and cells are relaxed atomics.
 *
 * Invariants: top only grows, and only by a successful CAS; the owner
 * alone writes bottom and the cells; items live at [top, bottom). The last
 * item is the one race between the owner and thieves: both CAS top, and
 * the seq_cst fences in take and steal make sure that they do not both
 * take it (the owner lowers bottom, fence, reads top; a thief reads top,
 * fence, reads bottom: one of them sees the other).
 *
 * Progress: push and take are wait-free; steal is lock-free (a thief
 * fails only because another thread took an item). Weak spot: a thief's
 * CAS and the owner's take of the last item contend on top's line; with
 * many thieves on one deque, all but one of them fail and go elsewhere.
 */
#include <stdlib.h>

#include "deque.h"

struct aq__deque *aq__deque_new(void)
{
	/* No fault injection here: a worker makes its deque when it starts,
	 * at a moment no test can predict, and a worker without one simply
	 * sends its nested jobs to the ring. */
	struct aq__deque *d = aligned_alloc(AQ__CACHE_LINE, sizeof(*d));

	if (!d)
		return NULL;
	atomic_init(&d->top, 0);
	atomic_init(&d->bottom, 0);
	for (unsigned i = 0; i < AQ__DEQUE_CAPACITY; i++) {
		atomic_init(&d->cells[i].fn, NULL);
		atomic_init(&d->cells[i].arg, NULL);
	}
	return d;
}

static void deque_read(struct aq__deque *d, int64_t i,
		       struct aq__ring_item *out)
{
	struct aq__deque_cell *c = &d->cells[i & (AQ__DEQUE_CAPACITY - 1)];

	/* Relaxed: the owner reads its own writes; a thief's read is
	 * ordered after the owner's writes by its acquire load of bottom,
	 * and validated by its CAS on top. */
	out->fn = atomic_load_explicit(&c->fn, memory_order_relaxed);
	out->arg = atomic_load_explicit(&c->arg, memory_order_relaxed);
}

bool aq__deque_take(struct aq__deque *d, struct aq__ring_item *out)
{
	/* Relaxed: only the owner writes bottom. */
	int64_t b = atomic_load_explicit(&d->bottom, memory_order_relaxed) - 1;
	int64_t t;
	bool got = true;

	/* Empty as the owner sees it is empty: only the owner pushes and top
	 * only grows, so a stale top can only make it look fuller. Relaxed;
	 * this spares the fence below on a worker's every look. */
	if (atomic_load_explicit(&d->top, memory_order_relaxed) > b)
		return false;
	/* Release, as in push: a thief that reads this value of bottom
	 * also sees the cells pushed before it. */
	atomic_store_explicit(&d->bottom, b, memory_order_release);
	/* seq_cst fence: our store of bottom is ordered before our load of
	 * top, against the thief's load of top, fence, load of bottom. */
	atomic_thread_fence(memory_order_seq_cst);
	/* Relaxed: ordered by the fence above. */
	t = atomic_load_explicit(&d->top, memory_order_relaxed);
	if (t > b) {
		/* Empty: put bottom back (release, as above). */
		atomic_store_explicit(&d->bottom, b + 1, memory_order_release);
		return false;
	}
	deque_read(d, b, out);
	if (t == b) {
		/* The last item: race the thieves for it on top. seq_cst on
		 * success, as the thieves' CAS; relaxed on failure: we only
		 * give up. */
		if (!atomic_compare_exchange_strong_explicit(
			    &d->top, &t, t + 1, memory_order_seq_cst,
			    memory_order_relaxed))
			got = false;
		/* The deque is empty either way (release, as above). */
		atomic_store_explicit(&d->bottom, b + 1, memory_order_release);
	}
	return got;
}

bool aq__deque_steal(struct aq__deque *d, struct aq__ring_item *out)
{
	/* Acquire: pairs with the CAS of an earlier thief, so the cell we
	 * read is not older than the top we claim. */
	int64_t t = atomic_load_explicit(&d->top, memory_order_acquire);
	int64_t b;

	/* seq_cst fence: our load of top before our load of bottom, against
	 * the owner's store of bottom, fence, load of top in take. */
	atomic_thread_fence(memory_order_seq_cst);
	/* Acquire: pairs with the owner's release stores of bottom, so the
	 * cell and the item's record are visible to us. */
	b = atomic_load_explicit(&d->bottom, memory_order_acquire);
	if (t >= b)
		return false;
	deque_read(d, t, out);
	/* seq_cst, as the paper: claims the item against the owner and the
	 * other thieves; its release half lets the owner reuse the cell
	 * (the owner's acquire load of top in push). Relaxed on failure:
	 * what we read is thrown away. */
	return atomic_compare_exchange_strong_explicit(
		&d->top, &t, t + 1, memory_order_seq_cst, memory_order_relaxed);
}
