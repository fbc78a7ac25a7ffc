/* SPDX-License-Identifier: MIT */
/*
 * scheduler.h - the pluggable-scheduler seam between the ring and the workers
 * (see scheduler.c).
 */
#ifndef AQ__SCHED_H
#define AQ__SCHED_H

#include <stdbool.h>

#include "future.h"

struct aq_pool;

/* Set up cfg->sched (NULL: the ring's own FIFO, nothing to do). */
int aq__sched_init(struct aq_pool *pool, const struct aq_pool_config *cfg);
void aq__sched_fini(struct aq_pool *pool);

/*
 * Under the scheduler lock: move a batch of jobs from the ring into the
 * policy, then pop the job to run next. NULL when none may run now.
 */
struct aq_future *aq__sched_next(struct aq_pool *pool);

/*
 * A job stopped running (or never ran: it had been cancelled). popped: it
 * came from aq__sched_next(), so the policy hears done(); false for a job
 * a waiter claimed and ran directly (help.c). With requeue it yielded and
 * goes back to the policy (unless its entry is still there); the caller
 * leaves it RUNNING, and it is made PENDING here, once its arrival
 * number and wait start are written.
 */
void aq__sched_done(struct aq_pool *pool, struct aq_future *rec, bool requeue,
		    bool popped);

/*
 * A delayed or retrying record becomes queued again at `now` (queue.c):
 * its wait starts now, unless the policy still holds an entry for it,
 * whose keys must not change under it.
 */
void aq__sched_stamp(struct aq_pool *pool, struct aq_future *rec, int64_t now);

#endif
