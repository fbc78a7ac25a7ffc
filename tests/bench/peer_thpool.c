/* SPDX-License-Identifier: MIT */
/*
 * peer_thpool.c - C-Thread-Pool (Pithikos), as Debian ships it in
 * cthreadpool-dev, as a benchmark peer. Its thpool.c is compiled into the
 * benchmark from /usr/share/cthreadpool by the Makefile, unmodified. Each
 * thpool_add_work mallocs a job node onto a mutex-guarded list and posts a
 * binary semaphore; the worker frees the node after running it.
 *
 * Its limits show in the adapter: the keep-alive flag is a global, so only
 * one pool may exist at a time (the driver never has two), and
 * thpool_destroy polls for up to a second rather than joining.
 */
#include <thpool.h>

#include "bench.h"

/* C-Thread-Pool's job signature around the shared job function. */
static void ctp_run(void *arg)
{
	struct bench_job *job = arg;

	job->fn(job);
}

/* The Debian package version, passed in by the Makefile when it knows it. */
static const char *ctp_version(void)
{
#ifdef THPOOL_VERSION
	return THPOOL_VERSION;
#else
	return NULL;
#endif
}

static void *ctp_create(unsigned workers)
{
	threadpool pool = thpool_init((int)workers);

	if (!pool)
		bench_die("thpool_init failed");
	return pool;
}

static void ctp_submit(void *pool, struct bench_job *job)
{
	if (thpool_add_work(pool, ctp_run, job) != 0)
		bench_die("thpool_add_work failed");
}

static void ctp_destroy(void *pool)
{
	thpool_destroy(pool);
}

const struct contender contender_thpool = {
	.name = "C-Thread-Pool",
	.descr = "Debian cthreadpool-dev thpool.c: mutex list, binary semaphore",
	.flags = CT_MT_SUBMIT,
	.create = ctp_create,
	.submit = ctp_submit,
	.destroy = ctp_destroy,
	.version = ctp_version,
};
