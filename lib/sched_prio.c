/* SPDX-License-Identifier: MIT */
/*
 * sched_prio.c - priorities with aging: higher aq_job_opts.priority runs
 * first, equal priorities run in arrival order, and a waiting job gains one
 * priority level every aging_ns so that a stream of urgent work cannot
 * starve the rest forever.
 *
 * Aging without re-sorting: a job's effective priority at time t is
 *   prio + (t - enqueue) / aging_ns,
 * and since every waiting job ages at the same rate, the order of two jobs
 * never changes with t. It is the order of the fixed key
 *   prio * aging_ns - enqueue
 * (larger first), so an ordinary heap serves. Without aging the key is the
 * priority itself. Ties go to the earlier arrival (aq_sched_job_seq()).
 *
 * The heap is a pairing heap threaded through the jobs' two scheduler
 * slots (first child, next sibling): push is O(1) and never allocates, pop
 * is O(log n) amortised.
 */
#include <errno.h>
#include <stdbool.h>
#include <stdlib.h>

#include "asyncq.h"
#include "fault.h"

/* Longest aging step: keeps prio * aging_ns far inside int64_t. */
#define AGING_MAX_NS (INT64_C(1000) * 1000000000) /* 1000 s */

struct prio {
	aq_sched_job *root;
	int64_t aging_ns;
};

static inline aq_sched_job **child(aq_sched_job *job)
{
	return (aq_sched_job **)&aq_sched_job_slots(job)[0];
}

static inline aq_sched_job **sibling(aq_sched_job *job)
{
	return (aq_sched_job **)&aq_sched_job_slots(job)[1];
}

/* Does a run before b? */
static bool prio_before(const struct prio *q, const aq_sched_job *a,
			const aq_sched_job *b)
{
	int64_t ka, kb;

	if (q->aging_ns) {
		ka = aq_sched_job_priority(a) * q->aging_ns -
		     aq_sched_job_enqueue_ns(a);
		kb = aq_sched_job_priority(b) * q->aging_ns -
		     aq_sched_job_enqueue_ns(b);
	} else {
		ka = aq_sched_job_priority(a);
		kb = aq_sched_job_priority(b);
	}
	if (ka != kb)
		return ka > kb;
	return aq_sched_job_seq(a) < aq_sched_job_seq(b);
}

/* Merge two heaps; the loser becomes the winner's first child. */
static aq_sched_job *meld(const struct prio *q, aq_sched_job *a,
			  aq_sched_job *b)
{
	if (!a)
		return b;
	if (!b)
		return a;
	if (prio_before(q, b, a)) {
		aq_sched_job *t = a;

		a = b;
		b = t;
	}
	*sibling(b) = *child(a);
	*child(a) = b;
	return a;
}

static int prio_init(void **state, const void *params)
{
	const struct aq_sched_priority_params *p = params;
	struct prio *q;

	if (p && (p->aging_ns < 0 || p->aging_ns > AGING_MAX_NS))
		return -EINVAL;
	q = aq__calloc(1, sizeof(*q));
	if (!q)
		return -ENOMEM;
	q->aging_ns = p ? p->aging_ns : 0;
	*state = q;
	return 0;
}

static int prio_push(void *state, aq_sched_job *job)
{
	struct prio *q = state;

	*child(job) = NULL;
	*sibling(job) = NULL;
	q->root = meld(q, q->root, job);
	return 0;
}

static aq_sched_job *prio_pop(void *state)
{
	struct prio *q = state;
	aq_sched_job *top = q->root, *pairs = NULL, *next, *merged = NULL;

	if (!top)
		return NULL;
	/* Two-pass pairing: meld the children in pairs left to right,
	 * keeping the pairs on a stack (linked through sibling), then meld
	 * the stack right to left. */
	for (aq_sched_job *c = *child(top); c; c = next) {
		aq_sched_job *d = *sibling(c), *pair;

		next = d ? *sibling(d) : NULL;
		*sibling(c) = NULL;
		if (d)
			*sibling(d) = NULL;
		pair = meld(q, c, d);
		*sibling(pair) = pairs;
		pairs = pair;
	}
	while (pairs) {
		next = *sibling(pairs);
		*sibling(pairs) = NULL;
		merged = meld(q, merged, pairs);
		pairs = next;
	}
	q->root = merged;
	return top;
}

static void prio_destroy(void *state)
{
	free(state);
}

static const struct aq_sched_ops prio_ops = {
	.name = "priority",
	.init = prio_init,
	.push = prio_push,
	.pop = prio_pop,
	.done = NULL,
	.destroy = prio_destroy,
};

AQ_API const struct aq_sched_ops *aq_sched_priority(void)
{
	return &prio_ops;
}
