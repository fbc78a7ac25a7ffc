/* SPDX-License-Identifier: MIT */
/*
 * steal.h - the workers' deques as the pool sees them (see steal.c).
 */
#ifndef AQ__STEAL_H
#define AQ__STEAL_H

#include <stdbool.h>

#include "ring.h"

struct aq_pool;
struct aq__deque;

/* The deque of worker index, made by the index's first worker; NULL in a
 * pool with a scheduler (no deques) or if it could not be made (then the
 * worker's jobs submit to the ring). */
struct aq__deque *aq__steal_deque_get(struct aq_pool *pool, unsigned index);

/*
 * On a worker of pool with a deque (aq__worker_deque): push item on it and
 * wake a parked worker if one sleeps. 0, or -EAGAIN when it is full.
 */
int aq__steal_push_local(struct aq_pool *pool, struct aq__ring_item item);

/* A worker about to park, before it counts itself idle: slow chores
 * the pushers left to an idle worker (registering the asymmetric fence,
 * once per process). */
void aq__steal_idle_chores(struct aq_pool *pool);

/*
 * A worker about to park, after it raised idle and before it re-checks:
 * the parker's half of the pushes' fence (aq__steal_push_local()). false
 * if it could not be run: the worker then sleeps only briefly.
 */
bool aq__steal_park_fence(struct aq_pool *pool);

/* Steal one item, the oldest, from another worker's deque; false if none
 * was found (or every try lost a race). */
bool aq__steal_one(struct aq_pool *pool, struct aq__ring_item *item);

/*
 * An idle worker's look before it parks: poll the ring, and now and then
 * the deques, for a few microseconds, spinning, then yielding the core
 * (aq__backoff(), park.h). The number of polls made before something
 * showed (0: at once), or -1 when nothing did.
 */
int aq__steal_spin(struct aq_pool *pool);

/* Is there anything for an idle worker to take, in the ring or a deque?
 * seq_cst loads: the re-check of the parking eventcount (worker.c). */
bool aq__steal_visible(struct aq_pool *pool);

#endif
