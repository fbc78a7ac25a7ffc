/* SPDX-License-Identifier: MIT */
/*
 * run.h - running a job record on a worker (see run.c).
 */
#ifndef AQ__RUN_H
#define AQ__RUN_H

#include <stdbool.h>

#include "ring.h"

struct aq_pool;
struct aq_future;

/*
 * On a worker of pool: run a record taken from a queue (popped: from the
 * scheduler, which hears when it is done), or cancel it (cancel: a
 * cancelling shutdown was seen), and drop the reference the queue held.
 * Out of line: the fire-and-forget path of the worker loop then needs
 * few registers and no big prologue.
 */
void aq__run_record(struct aq_pool *pool, struct aq_future *rec, bool cancel,
		    bool popped);

/* A FIFO pool's yielded job goes back to the ring's tail: true, or false
 * when the ring is full or closed (the caller runs it again). */
bool aq__run_requeue(struct aq_pool *pool, struct aq__ring_item item);

#endif
