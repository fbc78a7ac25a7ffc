/* SPDX-License-Identifier: MIT */
/*
 * queue.h - putting items and records on the pool's ring (see queue.c).
 */
#ifndef AQ__QUEUE_H
#define AQ__QUEUE_H

#include <stdbool.h>
#include <stdint.h>

#include "ring.h"

struct aq_pool;
struct aq_future;

/*
 * The ring was full: wait for a slot until the deadline (CLOCK_MONOTONIC,
 * negative: none) and push item into it. 0, -ETIMEDOUT or -ESHUTDOWN.
 * Never on one of the pool's own workers: nobody might empty the ring.
 */
int aq__queue_wait_push(struct aq_pool *pool, struct aq__ring_item item,
			int64_t deadline);

/*
 * Push an item, waiting up to budget_ns (negative: forever, 0: not at
 * all) for space if the ring is full. 0, -EAGAIN, -ETIMEDOUT or
 * -ESHUTDOWN.
 */
int aq__queue_push(struct aq_pool *pool, struct aq__ring_item item,
		   int64_t budget_ns);

/*
 * Queue a record its caller has just made PENDING (with the pool's
 * reference), as aq__queue_push() does, and wake a worker: 0. -EAGAIN or
 * -ETIMEDOUT: the ring stayed full, and the record is still the caller's.
 * -ESHUTDOWN: the ring closed, so nothing would run it: it is cancelled
 * here (unless a claimer got it first) and the reference dropped.
 */
int aq__queue_record(struct aq_pool *pool, struct aq_future *rec,
		     int64_t budget_ns);

/* The pool's timer's due function (timer.h): queue a record that came due
 * (or cancel it, with cancel), unless a canceller took it first. */
void aq__queue_due(void *pool, struct aq_future *rec, bool cancel);

#endif
