/* SPDX-License-Identifier: MIT */
/*
 * peer_uv.c - libuv's threadpool (uv_queue_work) as a benchmark peer. Work
 * runs on libuv's process-wide pool, sized by UV_THREADPOOL_SIZE, which
 * libuv reads once, at its first uv_queue_work; this adapter sets it from
 * the requested worker count before that. Each job is a malloc'd uv_work_t;
 * its after-work callback, which frees it, runs on the loop thread, so that
 * is part of what a job costs and the drain that runs the loop is timed.
 * A libuv loop is not thread-safe: only its own thread may queue work, so
 * this contender has no multi-producer run.
 */
#include <stdio.h>
#include <stdlib.h>

#include <uv.h>

#include "bench.h"

/* Run the loop's ready callbacks every this many submits, as an
 * event-driven program would between its own events, to recycle reqs. */
#define UVP_SUBMITS_PER_LOOP_TURN 1024u

struct uvp_pool {
	uv_loop_t loop;
	unsigned long submits; /* fire-and-forget submits so far */
};

/* The size libuv's pool was given, once it exists; 0 before. */
static unsigned uvp_pool_size;
static int uvp_pool_started; /* its threads are running */

/* The job that starts libuv's pool: it does nothing, not even count. */
static void uvp_nothing(struct bench_job *job)
{
	(void)job;
}

static void uvp_roundtrip(void *pool, struct bench_job *job);

static void uvp_run_job(uv_work_t *req)
{
	struct bench_job *job = req->data;

	job->fn(job);
}

static void uvp_after_free(uv_work_t *req, int status)
{
	if (status != 0)
		bench_die("libuv after-work status: %s", uv_strerror(status));
	free(req);
}

static void uvp_after_nothing(uv_work_t *req, int status)
{
	(void)req;
	if (status != 0)
		bench_die("libuv after-work status: %s", uv_strerror(status));
}

static void *uvp_create(unsigned workers)
{
	struct uvp_pool *c = calloc(1, sizeof(*c));
	int rc;

	if (!c)
		bench_die("libuv: out of memory");
	if (!uvp_pool_size) {
		char size[16];

		/* Read by libuv at its first uv_queue_work in this process. */
		snprintf(size, sizeof(size), "%u", workers);
		if (setenv("UV_THREADPOOL_SIZE", size, 1) != 0)
			bench_die("setenv UV_THREADPOOL_SIZE failed");
		uvp_pool_size = workers;
	} else if (uvp_pool_size != workers) {
		bench_die("libuv: its pool is process-wide and has %u threads,"
			  " not %u", uvp_pool_size, workers);
	}
	rc = uv_loop_init(&c->loop);
	if (rc < 0)
		bench_die("uv_loop_init: %s", uv_strerror(rc));
	if (!uvp_pool_started) {
		/*
		 * libuv starts its threads at the first uv_queue_work; do it
		 * here, where pools are created, so no timed run pays for it.
		 */
		struct bench_job nothing = { uvp_nothing };

		uvp_roundtrip(c, &nothing);
		uvp_pool_started = 1;
	}
	return c;
}

static void uvp_submit(void *pool, struct bench_job *job)
{
	struct uvp_pool *c = pool;
	uv_work_t *req = malloc(sizeof(*req));
	int rc;

	if (!req)
		bench_die("libuv: out of memory");
	req->data = job;
	rc = uv_queue_work(&c->loop, req, uvp_run_job, uvp_after_free);
	if (rc < 0)
		bench_die("uv_queue_work: %s", uv_strerror(rc));
	if (++c->submits % UVP_SUBMITS_PER_LOOP_TURN == 0)
		uv_run(&c->loop, UV_RUN_NOWAIT);
}

static void uvp_roundtrip(void *pool, struct bench_job *job)
{
	struct uvp_pool *c = pool;
	uv_work_t req;
	int rc;

	req.data = job;
	rc = uv_queue_work(&c->loop, &req, uvp_run_job, uvp_after_nothing);
	if (rc < 0)
		bench_die("uv_queue_work: %s", uv_strerror(rc));
	/* Returns once the after-work callback ran: nothing left active. */
	uv_run(&c->loop, UV_RUN_DEFAULT);
}

static void uvp_drain(void *pool)
{
	struct uvp_pool *c = pool;

	uv_run(&c->loop, UV_RUN_DEFAULT);
}

static void uvp_destroy(void *pool)
{
	struct uvp_pool *c = pool;
	int rc;

	uv_run(&c->loop, UV_RUN_DEFAULT);
	rc = uv_loop_close(&c->loop);
	if (rc < 0)
		bench_die("uv_loop_close: %s", uv_strerror(rc));
	free(c);
}

const struct contender contender_uv = {
	.name = "libuv",
	.descr = "libuv uv_queue_work, loop-thread submits, malloc'd uv_work_t",
	.flags = 0, /* the loop is not thread-safe */
	.create = uvp_create,
	.submit = uvp_submit,
	.roundtrip = uvp_roundtrip,
	.drain = uvp_drain,
	.destroy = uvp_destroy,
	.version = uv_version_string,
};
