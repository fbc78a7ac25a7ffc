/* SPDX-License-Identifier: MIT */
/*
 * ring.h - the bounded lock-free MPMC submission ring (see ring.c).
 */
#ifndef AQ__RING_H
#define AQ__RING_H

#include <errno.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdint.h>

#include "asyncq.h"
#include "compat.h"

/*
 * One queued item: two words. The pool stores a job inline as {fn, arg}
 * when it needs nothing else, or {NULL, record} when it carries a future or
 * options. The ring itself never looks inside an item.
 */
struct aq__ring_item {
	aq_job_fn fn; /* the job, or NULL when arg is a job record */
	void *arg;
};

/*
 * 32 bytes, aligned: two cells per cache line and none across two, and an
 * index is one shift. 32 bytes per queued job.
 */
struct aq__ring_cell {
	_Alignas(32) _Atomic uint64_t seq; /* position this cell is ready for
					      (see ring.c) */
	struct aq__ring_item item;
};

struct aq__ring {
	/* Producers' claim counter; bit 63 is the "closed" flag. */
	AQ__CACHE_ALIGNED _Atomic uint64_t tail;
	/* Consumers' claim counter, on its own line: the two are hot in
	 * different threads. */
	AQ__CACHE_ALIGNED _Atomic uint64_t head;
	/* Read-only after init, on a third line so producers and consumers
	 * share it without invalidations. */
	AQ__CACHE_ALIGNED uint64_t mask;
	struct aq__ring_cell *cells;
};

#define AQ__RING_CLOSED (UINT64_C(1) << 63)

/* Round capacity up to a power of two (>= 2) and allocate; -ENOMEM. */
int aq__ring_init(struct aq__ring *r, uint32_t capacity);
void aq__ring_fini(struct aq__ring *r);

/*
 * Push and pop are inline: they are most of what a fire-and-forget job
 * costs, so they are not paid for with a call each way.
 */

/* 0, -EAGAIN (full) or -ESHUTDOWN (closed). Lock-free. */
static inline int aq__ring_push(struct aq__ring *r, struct aq__ring_item item)
{
	/* Relaxed: only a hint where to start; the CAS below validates it. */
	uint64_t pos = atomic_load_explicit(&r->tail, memory_order_relaxed);

	/*
	 * No test of the closed bit up front: a cell's seq never has bit 63
	 * set, so with it set in pos, seq == pos cannot hold and we land in
	 * one of the two rare branches below, which look at the bit.
	 */
	for (;;) {
		struct aq__ring_cell *cell = &r->cells[pos & r->mask];
		/* Acquire: pairs with the consumer's release in pop, so our
		 * write of the item cannot overtake its read of the old one. */
		uint64_t seq =
			atomic_load_explicit(&cell->seq, memory_order_acquire);
		int64_t dif = (int64_t)(seq - pos);

		if (AQ__LIKELY(dif == 0)) {
			/*
			 * seq_cst: the claim is the store half of the pool's
			 * parking handshake (a worker raises its idle count,
			 * then reads tail; we claim, then read the idle count),
			 * so the two must be in one total order.
			 */
			if (atomic_compare_exchange_weak_explicit(
				    &r->tail, &pos, pos + 1,
				    memory_order_seq_cst,
				    memory_order_relaxed)) {
				cell->item = item;
				/* Release: publishes the item to the consumer's
				 * acquire load of seq. */
				atomic_store_explicit(&cell->seq, pos + 1,
						      memory_order_release);
				return 0;
			}
			/* The failed CAS reloaded pos (closed bit included). */
		} else if (pos & AQ__RING_CLOSED) {
			return -ESHUTDOWN;
		} else if (dif < 0) {
			return -EAGAIN; /* the cell holds last lap's item */
		} else {
			/* Another producer took pos; relaxed as above. */
			pos = atomic_load_explicit(&r->tail,
						   memory_order_relaxed);
		}
	}
}

/* true and *out filled, or false when no published item is ready. */
static inline bool aq__ring_pop(struct aq__ring *r, struct aq__ring_item *out)
{
	/* Relaxed: a hint, validated by the CAS. */
	uint64_t pos = atomic_load_explicit(&r->head, memory_order_relaxed);

	for (;;) {
		struct aq__ring_cell *cell = &r->cells[pos & r->mask];
		/* Acquire: pairs with the producer's release publish, so the
		 * item we read is the one it wrote. */
		uint64_t seq =
			atomic_load_explicit(&cell->seq, memory_order_acquire);
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
				    memory_order_seq_cst,
				    memory_order_relaxed)) {
				*out = cell->item;
				/* Release: our read of the item happens before
				 * the next producer's write (its acquire). */
				atomic_store_explicit(&cell->seq,
						      pos + r->mask + 1,
						      memory_order_release);
				return true;
			}
		} else if (dif < 0) {
			return false; /* empty, or the next not published */
		} else {
			pos = atomic_load_explicit(&r->head,
						   memory_order_relaxed);
		}
	}
}

/*
 * Push up to n jobs as inline items {fn, arg}, in order, claiming as many
 * consecutive free cells as there are (up to n) with one CAS on tail.
 * Returns how many were pushed (1..n; 0 for n = 0), or -EAGAIN (full) or
 * -ESHUTDOWN (closed) when none was. Lock-free.
 */
int aq__ring_push_n(struct aq__ring *r, const struct aq_job *jobs, unsigned n);

/* Refuse all later pushes. Items already claimed still get published. */
void aq__ring_close(struct aq__ring *r);

/*
 * True when some producer has claimed a slot no consumer has taken yet
 * (published or about to be). Sequentially consistent, so that it pairs
 * with the claim in aq__ring_push(): see the parking protocol in worker.c.
 * Inline: an idle worker asks it at every look of its spin.
 */
static inline bool aq__ring_nonempty(struct aq__ring *r)
{
	/* seq_cst loads: the read halves of the handshakes named in push
	 * and pop. */
	uint64_t tail = atomic_load(&r->tail) & ~AQ__RING_CLOSED;
	uint64_t head = atomic_load(&r->head);

	return tail != head;
}

/*
 * True when a push could claim a slot (or would fail as closed); the read
 * half of the full-ring handshake. Sequentially consistent.
 */
bool aq__ring_has_space(struct aq__ring *r);

/* Closed, and every claimed slot consumed: nothing more will ever come. */
bool aq__ring_drained(struct aq__ring *r);

static inline uint32_t aq__ring_capacity(const struct aq__ring *r)
{
	return (uint32_t)(r->mask + 1);
}

#endif
