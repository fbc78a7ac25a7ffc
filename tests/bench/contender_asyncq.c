/* SPDX-License-Identifier: MIT */
/*
 * contender_asyncq.c - libasyncq as a benchmark contender. The pool has the
 * requested workers and a 65536-slot ring. The ring is finite, so a
 * fire-and-forget submit that finds it full is retried: a few PAUSE spins,
 * then sched_yield() so the workers get the core. That measures the ring
 * rather than the blocking path; BENCH_AQ_SUBMIT=block creates the pool
 * with AQ_POOL_BLOCK instead, so that a submit on a full ring sleeps until
 * the workers have made room (the fast path is the same until then). Round trips use a future (aq_submit with fut,
 * then aq_future_get), the way a libasyncq user waits for one result.
 */
#include <errno.h>
#include <sched.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <asyncq.h>

#include "bench.h"

#define AQ_BENCH_CAPACITY 65536u /* ring slots: deep enough for bursts */
#define SPINS_BEFORE_YIELD 8     /* PAUSEs on a full ring before yielding */

struct aq_contender {
	aq_pool *pool;
	int use_block;             /* AQ_POOL_BLOCK: sleep on a full ring */
	atomic_ulong full_retries; /* submits that found the ring full; only
				      a failed submit touches it, so the
				      fast path shares no counter */
	char note[160];            /* the report line for this run */
};

/* libasyncq's job signature around the shared job function. */
static int aq_trampoline(void *arg, void **result)
{
	struct bench_job *job = arg;

	(void)result;
	job->fn(job);
	return 0;
}

static void *aq_create(unsigned workers)
{
	struct aq_pool_config cfg = { .workers = workers,
				      .queue_capacity = AQ_BENCH_CAPACITY };
	struct aq_contender *c = calloc(1, sizeof(*c));
	const char *mode = getenv("BENCH_AQ_SUBMIT");
	int rc;

	if (!c)
		bench_die("libasyncq: out of memory");
	if (mode && strcmp(mode, "block") == 0)
		c->use_block = 1;
	else if (mode && *mode && strcmp(mode, "retry") != 0)
		bench_die("BENCH_AQ_SUBMIT must be retry or block, not '%s'",
			  mode);
	if (c->use_block)
		cfg.flags = AQ_POOL_BLOCK; /* no timeout: wait for room */
	rc = aq_pool_create(&c->pool, &cfg);
	if (rc < 0)
		bench_die("aq_pool_create: %s", aq_strerror(rc));
	if (aq_pool_workers(c->pool) != (int)workers)
		bench_die("libasyncq: asked for %u workers, got %d", workers,
			  aq_pool_workers(c->pool));
	return c;
}

static void aq_submit_ff(void *pool, struct bench_job *job)
{
	struct aq_contender *c = pool;
	unsigned long failures = 0;
	int rc;

	if (c->use_block) {
		rc = aq_submit(c->pool, aq_trampoline, job, NULL, NULL);
		if (rc < 0)
			bench_die("aq_submit (AQ_POOL_BLOCK): %s",
				  aq_strerror(rc));
		return;
	}
	while ((rc = aq_submit(c->pool, aq_trampoline, job, NULL, NULL)) !=
	       0) {
		if (rc != -EAGAIN)
			bench_die("aq_submit: %s", aq_strerror(rc));
		/*
		 * The ring is full: the workers are behind. Spin a little
		 * (they free a slot within a job or two), then give them the
		 * core, which on a 2-core machine they share with us.
		 */
		if (++failures <= SPINS_BEFORE_YIELD)
			bench_cpu_relax();
		else
			sched_yield();
	}
	if (failures)
		/*
		 * Relaxed: a statistic, read by the driver after it joined
		 * the producers, and the join orders it.
		 */
		atomic_fetch_add_explicit(&c->full_retries, failures,
					  memory_order_relaxed);
}

static void aq_roundtrip(void *pool, struct bench_job *job)
{
	struct aq_contender *c = pool;
	aq_future *fut;
	int rc;

	rc = aq_submit(c->pool, aq_trampoline, job, NULL, &fut);
	if (rc < 0)
		bench_die("aq_submit (with future): %s", aq_strerror(rc));
	/* Wait forever: the driver's watchdog reports a job that never ends. */
	rc = aq_future_get(fut, NULL, -1);
	if (rc != 0)
		bench_die("aq_future_get: %d (%s)", rc, aq_strerror(rc));
	aq_future_release(fut);
}

static void aq_destroy(void *pool)
{
	struct aq_contender *c = pool;

	aq_pool_destroy(c->pool);
	free(c);
}

static const char *aq_note(void *pool)
{
	struct aq_contender *c = pool;

	if (c->use_block)
		snprintf(c->note, sizeof(c->note),
			 "pool with AQ_POOL_BLOCK: a submit on a full ring "
			 "sleeps until there is room; ring %d slots",
			 aq_pool_capacity(c->pool));
	else
		snprintf(c->note, sizeof(c->note),
			 "submit retried on -EAGAIN (%d PAUSEs, then "
			 "sched_yield); ring %d slots; %lu full-ring retries "
			 "in the last run", SPINS_BEFORE_YIELD,
			 aq_pool_capacity(c->pool),
			 atomic_load_explicit(&c->full_retries,
					      memory_order_relaxed));
	return c->note;
}

const struct contender contender_asyncq = {
	.name = "libasyncq",
	.descr = "lock-free MPMC ring feeding a worker pool; futures",
	.flags = CT_MT_SUBMIT,
	.create = aq_create,
	.submit = aq_submit_ff,
	.roundtrip = aq_roundtrip,
	.destroy = aq_destroy,
	.note = aq_note,
	.version = aq_version_string,
};

/* ---- libasyncq-b64: the same pool, fed with aq_submit_batch() ---------- */

/*
 * Each submitting thread gathers BATCH_JOBS jobs and hands them over with
 * one aq_submit_batch(), which claims ring slots for as many as fit with
 * one atomic operation; a partial batch is topped up after the same
 * PAUSE-then-yield back-off as a single submit. ff and ff2 only: it is how
 * a producer that has many jobs at hand submits them, not a different
 * pool.
 */
#define BATCH_JOBS 64

static _Thread_local struct aq_job batch_buf[BATCH_JOBS];
static _Thread_local unsigned batch_len;

static void aq_batch_flush(void *pool)
{
	struct aq_contender *c = pool;
	unsigned done = 0, failures = 0, backoff = 0;

	while (done < batch_len) {
		int rc = aq_submit_batch(c->pool, batch_buf + done,
					 batch_len - done, NULL, NULL);

		if (rc > 0) {
			/* Progress: try the rest at once, and start the
			 * back-off afresh, as a single submit does per job. */
			done += (unsigned)rc;
			backoff = 0;
			continue;
		}
		if (rc != -EAGAIN)
			bench_die("aq_submit_batch: %s", aq_strerror(rc));
		failures++;
		if (++backoff <= SPINS_BEFORE_YIELD)
			bench_cpu_relax();
		else
			sched_yield();
	}
	batch_len = 0;
	if (failures)
		/* Relaxed, as in aq_submit_ff(). */
		atomic_fetch_add_explicit(&c->full_retries, failures,
					  memory_order_relaxed);
}

static void aq_batch_submit(void *pool, struct bench_job *job)
{
	batch_buf[batch_len++] = (struct aq_job){ aq_trampoline, job };
	if (batch_len == BATCH_JOBS)
		aq_batch_flush(pool);
}

static const char *aq_batch_note(void *pool)
{
	struct aq_contender *c = pool;

	snprintf(c->note, sizeof(c->note),
		 "aq_submit_batch() of %d jobs per call, the rest retried "
		 "on a full ring; ring %d slots; %lu full-ring retries in the "
		 "last run", BATCH_JOBS, aq_pool_capacity(c->pool),
		 atomic_load_explicit(&c->full_retries, memory_order_relaxed));
	return c->note;
}

const struct contender contender_asyncq_batch = {
	.name = "libasyncq-b64",
	.descr = "libasyncq fed with aq_submit_batch(), 64 jobs per call "
		 "(ff, ff2 only)",
	.flags = CT_MT_SUBMIT | CT_FF_ONLY,
	.create = aq_create,
	.submit = aq_batch_submit,
	.flush = aq_batch_flush,
	.roundtrip = aq_roundtrip,
	.destroy = aq_destroy,
	.note = aq_batch_note,
	.version = aq_version_string,
};
