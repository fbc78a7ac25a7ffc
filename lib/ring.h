/* SPDX-License-Identifier: MIT */
/*
 * ring.h - the bounded lock-free MPMC submission ring (see ring.c).
 */
#ifndef AQ_RING_H
#define AQ_RING_H

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

struct aq__ring_cell {
	_Atomic uint64_t seq; /* position this cell is ready for (see ring.c) */
	struct aq__ring_item item;
};

struct aq__ring {
	/* Producers' claim counter; bit 63 is the "closed" flag. */
	AQ_CACHE_ALIGNED _Atomic uint64_t tail;
	/* Consumers' claim counter, on its own line: the two are hot in
	 * different threads. */
	AQ_CACHE_ALIGNED _Atomic uint64_t head;
	/* Read-only after init, on a third line so producers and consumers
	 * share it without invalidations. */
	AQ_CACHE_ALIGNED uint64_t mask;
	struct aq__ring_cell *cells;
};

#define AQ_RING_CLOSED (UINT64_C(1) << 63)

/* Round capacity up to a power of two (>= 2) and allocate; -ENOMEM. */
int aq__ring_init(struct aq__ring *r, uint32_t capacity);
void aq__ring_fini(struct aq__ring *r);

/* 0, -EAGAIN (full) or -ESHUTDOWN (closed). Lock-free. */
int aq__ring_push(struct aq__ring *r, struct aq__ring_item item);

/* true and *out filled, or false when no published item is ready. */
bool aq__ring_pop(struct aq__ring *r, struct aq__ring_item *out);

/* Refuse all later pushes. Items already claimed still get published. */
void aq__ring_close(struct aq__ring *r);

/*
 * True when some producer has claimed a slot no consumer has taken yet
 * (published or about to be). Sequentially consistent, so that it pairs
 * with the claim in aq__ring_push(): see the parking protocol in pool.c.
 */
bool aq__ring_nonempty(struct aq__ring *r);

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
