/* SPDX-License-Identifier: MIT */
/*
 * sched_fifo.c - first-in first-out through the pluggable interface.
 *
 * A pool created with cfg.sched == NULL gets FIFO order from the lock-free
 * ring itself and never uses this file. aq_sched_fifo() gives the same
 * order through struct aq_sched_ops: the smallest complete policy, to
 * start one's own from. An intrusive singly linked list, through slot 0
 * of each job.
 */
#include <errno.h>
#include <stdlib.h>

#include "asyncq.h"
#include "fault.h"

struct fifo {
	aq_sched_job *head, *tail;
};

static int fifo_init(void **state, const void *params)
{
	struct fifo *q;

	(void)params;
	q = aq__calloc(1, sizeof(*q));
	if (!q)
		return -ENOMEM;
	*state = q;
	return 0;
}

static int fifo_push(void *state, aq_sched_job *job)
{
	struct fifo *q = state;

	aq_sched_job_slots(job)[0] = NULL;
	if (q->tail)
		aq_sched_job_slots(q->tail)[0] = job;
	else
		q->head = job;
	q->tail = job;
	return 0;
}

static aq_sched_job *fifo_pop(void *state)
{
	struct fifo *q = state;
	aq_sched_job *job = q->head;

	if (job) {
		q->head = aq_sched_job_slots(job)[0];
		if (!q->head)
			q->tail = NULL;
	}
	return job;
}

static void fifo_destroy(void *state)
{
	free(state);
}

static const struct aq_sched_ops fifo_ops = {
	.name = "fifo",
	.init = fifo_init,
	.push = fifo_push,
	.pop = fifo_pop,
	.done = NULL,
	.destroy = fifo_destroy,
};

AQ_API const struct aq_sched_ops *aq_sched_fifo(void)
{
	return &fifo_ops;
}
