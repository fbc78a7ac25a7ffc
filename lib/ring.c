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
	if (aq__fault(AQ_FAULT_ALLOC) ||
	    posix_memalign(&mem, AQ_CACHE_LINE,
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

int aq__ring_push(struct aq__ring *r, struct aq__ring_item item)
{
	/* Relaxed: only a hint where to start; the CAS below validates it. */
	uint64_t pos = atomic_load_explicit(&r->tail, memory_order_relaxed);

	for (;;) {
		struct aq__ring_cell *cell;
		uint64_t seq;
		int64_t dif;

		if (aq_unlikely(pos & AQ_RING_CLOSED))
			return -ESHUTDOWN;
		cell = &r->cells[pos & r->mask];
		/* Acquire: pairs with the consumer's release in pop, so our
		 * write of the item cannot overtake its read of the old one. */
		seq = atomic_load_explicit(&cell->seq, memory_order_acquire);
		dif = (int64_t)(seq - pos);
		if (dif == 0) {
			/*
			 * seq_cst: the claim is the store half of the pool's
			 * parking handshake (a worker raises its idle count,
			 * then reads tail; we claim, then read the idle count),
			 * so the two must be in one total order.
			 */
			if (atomic_compare_exchange_weak_explicit(
				    &r->tail, &pos, pos + 1,
				    memory_order_seq_cst, memory_order_relaxed)) {
				cell->item = item;
				/* Release: publishes the item to the consumer's
				 * acquire load of seq. */
				atomic_store_explicit(&cell->seq, pos + 1,
						      memory_order_release);
				return 0;
			}
			/* The failed CAS reloaded pos (closed bit included). */
		} else if (dif < 0) {
			return -EAGAIN; /* the cell still holds last lap's item */
		} else {
			/* Another producer took pos; relaxed as above. */
			pos = atomic_load_explicit(&r->tail,
						   memory_order_relaxed);
		}
	}
}

bool aq__ring_pop(struct aq__ring *r, struct aq__ring_item *out)
{
	/* Relaxed: a hint, validated by the CAS. */
	uint64_t pos = atomic_load_explicit(&r->head, memory_order_relaxed);

	for (;;) {
		struct aq__ring_cell *cell = &r->cells[pos & r->mask];
		/* Acquire: pairs with the producer's release publish, so the
		 * item we read is the one it wrote. */
		uint64_t seq = atomic_load_explicit(&cell->seq,
						    memory_order_acquire);
		int64_t dif = (int64_t)(seq - (pos + 1));

		if (dif == 0) {
			/*
			 * seq_cst: the claim is the store half of the
			 * full-ring handshake (a blocked producer raises its
			 * waiter count, then reads head; we claim, then read
			 * the waiter count).
			 */
			if (atomic_compare_exchange_weak_explicit(
				    &r->head, &pos, pos + 1,
				    memory_order_seq_cst, memory_order_relaxed)) {
				*out = cell->item;
				/* Release: our read of the item happens before
				 * the next producer's write (its acquire). */
				atomic_store_explicit(&cell->seq,
						      pos + r->mask + 1,
						      memory_order_release);
				return true;
			}
		} else if (dif < 0) {
			return false; /* empty, or the next item not published */
		} else {
			pos = atomic_load_explicit(&r->head,
						   memory_order_relaxed);
		}
	}
}

void aq__ring_close(struct aq__ring *r)
{
	atomic_fetch_or_explicit(&r->tail, AQ_RING_CLOSED,
				 memory_order_seq_cst);
}

bool aq__ring_nonempty(struct aq__ring *r)
{
	/* seq_cst loads: the read halves of the handshakes named in push
	 * and pop. */
	uint64_t tail = atomic_load(&r->tail) & ~AQ_RING_CLOSED;
	uint64_t head = atomic_load(&r->head);

	return tail != head;
}

bool aq__ring_has_space(struct aq__ring *r)
{
	uint64_t tail = atomic_load(&r->tail);
	uint64_t head = atomic_load(&r->head);

	return (tail & AQ_RING_CLOSED) || (tail - head) <= r->mask;
}

bool aq__ring_drained(struct aq__ring *r)
{
	uint64_t tail = atomic_load(&r->tail);
	uint64_t head = atomic_load(&r->head);

	return (tail & AQ_RING_CLOSED) && (tail & ~AQ_RING_CLOSED) == head;
}
