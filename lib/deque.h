/* SPDX-License-Identifier: MIT */
/*
 * deque.h - a worker's bounded work-stealing deque (see deque.c): the
 * owner pushes and takes at the bottom, other workers steal at the top.
 */
#ifndef AQ__DEQUE_H
#define AQ__DEQUE_H

#include <stdatomic.h>
#include <stdbool.h>
#include <stdint.h>

#include "compat.h"
#include "ring.h"

/* Items per deque: a power of two. Fork-join keeps about one item per
 * level of the task tree in a deque, so this is far more than enough;
 * a push that finds it full is refused and the caller goes elsewhere. */
#define AQ__DEQUE_CAPACITY 512

/*
 * One cell: the two words of a ring item, each atomic, because a thief may
 * read a cell while the owner rewrites it; such a thief then loses its CAS
 * on top and throws what it read away, torn or not.
 */
struct aq__deque_cell {
	_Atomic(aq_job_fn) fn;
	_Atomic(void *) arg;
};

struct aq__deque {
	/* Next index to steal; advanced by thieves and by the owner's take
	 * of the last item, with a CAS. */
	AQ__CACHE_ALIGNED _Atomic int64_t top;
	/* Next index to push; written by the owner only. */
	AQ__CACHE_ALIGNED _Atomic int64_t bottom;
	AQ__CACHE_ALIGNED struct aq__deque_cell cells[AQ__DEQUE_CAPACITY];
};

/* A new empty deque, or NULL (-ENOMEM). Free with free(). */
struct aq__deque *aq__deque_new(void);

/* Owner only: push at the bottom. 0, or -EAGAIN when full. Wait-free. */
static inline int aq__deque_push(struct aq__deque *d, struct aq__ring_item item)
{
	/* Relaxed: only the owner writes bottom. */
	int64_t b = atomic_load_explicit(&d->bottom, memory_order_relaxed);
	/* Acquire: pairs with the thieves' CAS on top, so that our write of
	 * the cell below comes after their read of what it held. */
	int64_t t = atomic_load_explicit(&d->top, memory_order_acquire);
	struct aq__deque_cell *c = &d->cells[b & (AQ__DEQUE_CAPACITY - 1)];

	if (b - t >= AQ__DEQUE_CAPACITY)
		return -EAGAIN;
	/* Relaxed: published by the release store of bottom below. */
	atomic_store_explicit(&c->fn, item.fn, memory_order_relaxed);
	atomic_store_explicit(&c->arg, item.arg, memory_order_relaxed);
	/* Release: pairs with the thieves' acquire load of bottom; the cell
	 * and whatever the item points to travel with it. */
	atomic_store_explicit(&d->bottom, b + 1, memory_order_release);
	return 0;
}

/*
 * Owner only: take the newest item (LIFO). true and *out filled, or false
 * when empty (or a thief won the last item). Wait-free.
 */
bool aq__deque_take(struct aq__deque *d, struct aq__ring_item *out);

/*
 * Any thread: steal the oldest item (FIFO). true and *out filled; false
 * when empty or when another thief or the owner won the race (the caller
 * may try elsewhere). Lock-free.
 */
bool aq__deque_steal(struct aq__deque *d, struct aq__ring_item *out);

/* Owner only: the item a take would return now, without taking it;
 * false if empty. */
static inline bool aq__deque_peek(struct aq__deque *d,
				  struct aq__ring_item *out)
{
	/* Relaxed: the owner's own words; a thief only ever moves top up,
	 * and a stale top only makes us see an item a take will not get. */
	int64_t b = atomic_load_explicit(&d->bottom, memory_order_relaxed);
	int64_t t = atomic_load_explicit(&d->top, memory_order_relaxed);
	struct aq__deque_cell *c =
		&d->cells[(b - 1) & (AQ__DEQUE_CAPACITY - 1)];

	if (b <= t)
		return false;
	out->fn = atomic_load_explicit(&c->fn, memory_order_relaxed);
	out->arg = atomic_load_explicit(&c->arg, memory_order_relaxed);
	return true;
}

/*
 * Any thread: does the deque hold an item? Sequentially consistent loads,
 * so that a parking worker's re-check pairs with the fence a pusher runs
 * before it reads the idle count (see worker.c).
 */
static inline bool aq__deque_nonempty(struct aq__deque *d)
{
	int64_t t = atomic_load(&d->top);

	return atomic_load(&d->bottom) > t;
}

#endif
