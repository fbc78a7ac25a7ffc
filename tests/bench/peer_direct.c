/* SPDX-License-Identifier: MIT */
/*
 * peer_direct.c - the limit: "submitting" a job calls it on the spot, on
 * the submitting thread, through the same function pointer the pools use.
 * No queue, no worker, no wake-up. The driver runs its multi-threaded
 * workloads (ff2, and work, whose ideal is two busy cores) from two threads
 * so the direct call stands for two perfectly fed workers.
 */
#include <stddef.h>

#include "bench.h"

/* There is no state; any non-NULL pointer will do as the handle. */
static char direct_handle;

static void *direct_create(unsigned workers)
{
	(void)workers;
	return &direct_handle;
}

static void direct_submit(void *pool, struct bench_job *job)
{
	(void)pool;
	job->fn(job);
}

static void direct_destroy(void *pool)
{
	(void)pool;
}

const struct contender contender_direct = {
	.name = "direct",
	.descr = "the job called inline on the submitting thread (the limit)",
	.flags = CT_MT_SUBMIT | CT_INLINE,
	.create = direct_create,
	.submit = direct_submit,
	.roundtrip = direct_submit, /* the call returns when the job is done */
	.destroy = direct_destroy,
};
