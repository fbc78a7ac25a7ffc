/* SPDX-License-Identifier: MIT */
/*
 * worker.h - the worker loop (see worker.c), and the ways a waiting or
 * submitting job runs other jobs on its own stack.
 */
#ifndef AQ__WORKER_H
#define AQ__WORKER_H

#include <stdatomic.h>
#include <stdbool.h>
#include <stdint.h>

#include "asyncq.h"
#include "ring.h"

struct aq_pool;
struct aq_future;

/* The body of a worker thread (the pool's worker_body). */
void aq__worker_loop(struct aq_pool *pool, unsigned index);

/* On a worker of pool: if rec is the newest item of its own deque, take it
 * and run it here (a waiter on its last child); false if not. */
bool aq__worker_run_own(struct aq_pool *pool, struct aq_future *rec);

/* On a worker of pool: take one queued job and run it; false if none. */
bool aq__worker_help(struct aq_pool *pool);

/* On a worker of pool: run rec here and now if it is still PENDING (a
 * waiter helping the very job it waits for; help.c). */
void aq__worker_run_claimable(struct aq_pool *pool, struct aq_future *rec);

/* On a worker of pool: run a record its submit found no room for in the
 * ring, here and now, with the reference the ring would have held. */
void aq__worker_run_unqueued(struct aq_pool *pool, struct aq_future *rec);

#endif
