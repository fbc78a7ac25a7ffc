/* SPDX-License-Identifier: MIT */
/*
 * ring.c - the bounded lock-free multi-producer multi-consumer ring that is
 * every pool's submission queue.
 *
 * Algorithm: Dmitry Vyukov's bounded MPMC queue. Each cell carries a
 * sequence number. A producer that sees tail == pos claims cell pos by a CAS
 * on tail when the cell's seq equals pos (the cell is free for this lap),
 * writes the item and publishes it by storing seq = pos + 1. A consumer
 * claims cell pos by a CAS on head when seq == pos + 1 (published), reads
 * the item and frees the cell for the next lap by storing seq = pos + size.
 *
 * Invariants: 0 <= tail - head <= size; a cell's seq only grows; an item is
 * read by exactly one consumer, the one whose CAS on head won its position.
 * Counters are 64-bit and never wrap in practice (2^63 pushes). Bit 63 of
 * tail is the "closed" flag: once set, every producer's CAS fails and it
 * returns -ESHUTDOWN, while items already claimed are still published and
 * consumed, so shutdown can wait until head == tail and know nothing is lost.
 *
 * Progress: push and pop are lock-free (a CAS fails only when another thread
 * made progress). Known weak spot: a producer preempted between its claim
 * and its publish holds up consumers of that one cell, and everything
 * behind it, until it runs again; pop reports "empty" meanwhile, and
 * aq__ring_nonempty() lets a caller see that an item is still coming.
 */
#include <errno.h>
#include <stdlib.h>

#include "fault.h"
#include "ring.h"

int aq__ring_init(struct aq__ring *r, uint32_t capacity)
{
	uint64_t size = 2;
	void *mem;

	while (size < capacity)
		size <<= 1;
	if (aq__fault(AQ__FAULT_ALLOC) ||
	    posix_memalign(&mem, AQ__CACHE_LINE,
			   size * sizeof(struct aq__ring_cell)))
		return -ENOMEM;
	r->cells = mem;
	r->mask = size - 1;
	for (uint64_t i = 0; i < size; i++) {
		/* Plain initialisation: no other thread sees the ring yet. */
		atomic_init(&r->cells[i].seq, i);
		r->cells[i].item.fn = NULL;
		r->cells[i].item.arg = NULL;
	}
	atomic_init(&r->tail, 0);
	atomic_init(&r->head, 0);
	return 0;
}

void aq__ring_fini(struct aq__ring *r)
{
	free(r->cells);
	r->cells = NULL;
}

/*
 * Batch claim: cells pos .. pos+k-1 each show seq == their position (free
 * for this lap), so one CAS of tail from pos to pos+k makes all k ours.
 * None of them can change between the look and the CAS: a cell's seq moves
 * on only when a producer claims its position, and nobody claimed any
 * position from pos on if tail still reads pos. The look stops at the
 * first cell that is not free (a full ring, or another producer ahead of
 * us), so k is never more than the free space.
 */
int aq__ring_push_n(struct aq__ring *r, const struct aq_job *jobs, unsigned n)
{
	/* Relaxed: a hint, validated by the CAS. */
	uint64_t pos = atomic_load_explicit(&r->tail, memory_order_relaxed);
	/* Read-only after init: in locals, so that the loops below do not
	 * reload them after every atomic access. */
	struct aq__ring_cell *const cells = r->cells;
	struct aq__ring_cell *const end = cells + r->mask + 1;
	const uint64_t mask = r->mask;

	if (n == 0)
		return 0;
	for (;;) {
		/* The loops walk a cell pointer and wrap it at the end of the
		 * array, rather than index by (pos + i) & mask each time. */
		struct aq__ring_cell *cell = &cells[pos & mask];
		uint64_t seq = 0;
		unsigned k = 0;

		if (pos & AQ__RING_CLOSED)
			return -ESHUTDOWN;
		while (k < n) {
			/* Acquire, as in push: the consumer's read of last
			 * lap's item comes before our write. */
			seq = atomic_load_explicit(&cell->seq,
						   memory_order_acquire);
			if (seq != pos + k)
				break;
			k++;
			if (++cell == end)
				cell = cells;
		}
		if (k == 0) {
			if ((int64_t)(seq - pos) < 0)
				return -EAGAIN; /* last lap's item is there */
			/* Another producer took pos. */
			pos = atomic_load_explicit(&r->tail,
						   memory_order_relaxed);
			continue;
		}
		/* seq_cst: the store half of the parking handshake, as in
		 * aq__ring_push(). */
		if (atomic_compare_exchange_weak_explicit(
			    &r->tail, &pos, pos + k, memory_order_seq_cst,
			    memory_order_relaxed)) {
			/*
			 * Write every item, then publish them last to first.
			 * Consumers take cells in order, so they wait at the
			 * first one until the whole run is out, then find the
			 * rest ready, instead of chasing the writes cell by
			 * cell and pulling each line away from the producer.
			 */
			cell = &cells[pos & mask];
			for (unsigned i = 0; i < k; i++) {
				cell->item.fn = jobs[i].fn;
				cell->item.arg = jobs[i].arg;
				if (++cell == end)
					cell = cells;
			}
			for (unsigned i = k; i-- > 0;)
				/* Release: publishes item i (and, for i = 0,
				 * the writes of the whole run). */
				atomic_store_explicit(
					&cells[(pos + i) & mask].seq,
					pos + i + 1, memory_order_release);
			return (int)k;
		}
		/* The failed CAS reloaded pos (closed bit included). */
	}
}

void aq__ring_close(struct aq__ring *r)
{
	atomic_fetch_or_explicit(&r->tail, AQ__RING_CLOSED,
				 memory_order_seq_cst);
}

bool aq__ring_has_space(struct aq__ring *r)
{
	uint64_t tail = atomic_load(&r->tail);
	uint64_t head = atomic_load(&r->head);

	return (tail & AQ__RING_CLOSED) || (tail - head) <= r->mask;
}

bool aq__ring_drained(struct aq__ring *r)
{
	uint64_t tail = atomic_load(&r->tail);
	uint64_t head = atomic_load(&r->head);

	return (tail & AQ__RING_CLOSED) && (tail & ~AQ__RING_CLOSED) == head;
}
