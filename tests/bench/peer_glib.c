/* SPDX-License-Identifier: MIT */
/*
 * peer_glib.c - GLib's GThreadPool as a benchmark peer. The pool is created
 * exclusive with the requested number of threads, so they all start at once
 * and belong to this pool alone. GThreadPool binds one function to a pool
 * and queues data pointers (a GAsyncQueue: a mutex and a condvar), so the
 * queued pointer is the job itself and the pool function runs it.
 */
#include <stdio.h>

#include <glib.h>

#include "bench.h"

/* The pool function: the pushed data is the job. */
static void glib_run(gpointer data, gpointer user_data)
{
	struct bench_job *job = data;

	(void)user_data;
	job->fn(job);
}

/* The version of the GLib actually loaded. */
static const char *glib_version(void)
{
	static char version[32];

	snprintf(version, sizeof(version), "%u.%u.%u", glib_major_version,
		 glib_minor_version, glib_micro_version);
	return version;
}

static void *glib_create(unsigned workers)
{
	GError *err = NULL;
	GThreadPool *pool = g_thread_pool_new(glib_run, NULL, (gint)workers,
					      TRUE, &err);

	if (!pool)
		bench_die("g_thread_pool_new: %s",
			  err ? err->message : "failed");
	return pool;
}

static void glib_submit(void *pool, struct bench_job *job)
{
	GError *err = NULL;

	if (!g_thread_pool_push(pool, job, &err))
		bench_die("g_thread_pool_push: %s",
			  err ? err->message : "failed");
}

static void glib_destroy(void *pool)
{
	/* immediate = FALSE, wait = TRUE: run what is queued, join. */
	g_thread_pool_free(pool, FALSE, TRUE);
}

const struct contender contender_glib = {
	.name = "GThreadPool",
	.descr = "GLib GThreadPool, exclusive threads (GAsyncQueue: mutex+condvar)",
	.flags = CT_MT_SUBMIT,
	.create = glib_create,
	.submit = glib_submit,
	.destroy = glib_destroy,
	.version = glib_version,
};
