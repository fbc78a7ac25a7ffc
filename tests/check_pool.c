/* SPDX-License-Identifier: MIT */
/* check_pool.c - pools: config, submit paths, order, full ring, isolation. */
#include <errno.h>
#include <limits.h>
#include <pthread.h>
#include <sched.h>
#include <stdatomic.h>
#include <stdint.h>
#include <stdlib.h>
#include <unistd.h>

#include <check.h>

#include "helpers.h"
#include "suites.h"

/* The worker count a pool created with workers = 0 must have. */
static int expected_default_workers(void)
{
	long n = sysconf(_SC_NPROCESSORS_ONLN);

	if (n < 1)
		n = 1;
	if (n > (long)AQ_WORKERS_MAX)
		n = AQ_WORKERS_MAX;
	return (int)n;
}

/* Submit with no options and no future, retrying while the ring is full. */
static int submit_plain_retry(aq_pool *pool, aq_job_fn fn, void *arg)
{
	int64_t deadline = th_now_ns() + th_long_ns();
	int ret;

	while ((ret = aq_submit(pool, fn, arg, NULL, NULL)) == -EAGAIN &&
	       th_now_ns() < deadline)
		sched_yield();
	return ret;
}

/* ---- creation and configuration ----------------------------------------- */

START_TEST(test_create_defaults)
{
	struct aq_pool_config zero = { 0 };
	aq_pool *pool = NULL;

	ck_assert_int_eq(aq_pool_create(&pool, NULL), 0);
	ck_assert_ptr_nonnull(pool);
	ck_assert_int_eq(aq_pool_workers(pool), expected_default_workers());
	ck_assert_int_eq(aq_pool_capacity(pool), AQ_QUEUE_CAPACITY_DEFAULT);
	aq_pool_destroy(pool);

	pool = NULL;
	ck_assert_int_eq(aq_pool_create(&pool, &zero), 0);
	ck_assert_ptr_nonnull(pool);
	ck_assert_int_eq(aq_pool_workers(pool), expected_default_workers());
	ck_assert_int_eq(aq_pool_capacity(pool), AQ_QUEUE_CAPACITY_DEFAULT);
	aq_pool_destroy(pool);
}
END_TEST

/* workers = 3 means three threads: three gate jobs can all be running. */
START_TEST(test_create_workers_real)
{
	struct th_gate gate;
	aq_pool *pool = th_pool(3, 0, 0, 0);

	ck_assert_int_eq(aq_pool_workers(pool), 3);
	ck_assert_int_eq(aq_pool_capacity(pool), AQ_QUEUE_CAPACITY_DEFAULT);
	th_gate_init(&gate);
	for (int i = 0; i < 3; i++)
		ck_assert_int_eq(aq_submit(pool, th_gate_job, &gate, NULL,
					   NULL),
				 0);
	ck_assert(th_gate_wait_entered(&gate, 3));
	th_gate_open(&gate);
	aq_pool_destroy(pool);
	ck_assert_int_eq(th_ld(&gate.passed), 3);
	th_gate_destroy(&gate);
}
END_TEST

START_TEST(test_config_validation)
{
	static const struct {
		struct aq_pool_config cfg;
		const char *what;
	} bad[] = {
		{ { .workers = AQ_WORKERS_MAX + 1 }, "workers 1025" },
		{ { .workers = UINT_MAX }, "workers UINT_MAX" },
		{ { .queue_capacity = AQ_QUEUE_CAPACITY_MAX + 1 },
		  "capacity (1<<24)+1" },
		{ { .queue_capacity = UINT_MAX }, "capacity UINT_MAX" },
		{ { .flags = 0x4 }, "flags 0x4" },
		{ { .flags = AQ_POOL_BLOCK | 0x80000000u }, "flags high bit" },
		{ { .flags = ~0u }, "flags ~0" },
	};
	static int sentinel_obj;
	aq_pool *const sentinel = (aq_pool *)(void *)&sentinel_obj;
	struct aq_pool_config ok = { .workers = 1 };

	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		aq_pool *pool = sentinel;
		int ret = aq_pool_create(&pool, &bad[i].cfg);

		ck_assert_msg(ret == -EINVAL, "%s: got %d", bad[i].what, ret);
		ck_assert_msg(pool == sentinel, "%s: *pool was written",
			      bad[i].what);
	}
	ck_assert_int_eq(aq_pool_create(NULL, NULL), -EINVAL);
	ck_assert_int_eq(aq_pool_create(NULL, &ok), -EINVAL);
}
END_TEST

START_TEST(test_capacity_rounding)
{
	static const struct {
		unsigned asked;
		int real;
	} cases[] = {
		{ 1, 2 },       { 2, 2 },       { 3, 4 },       { 1000, 1024 },
		{ 1024, 1024 }, { 4096, 4096 }, { 4097, 8192 },
	};

	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		aq_pool *pool = th_pool(1, cases[i].asked, 0, 0);

		ck_assert_msg(aq_pool_capacity(pool) == cases[i].real,
			      "capacity %u -> %d, expected %d", cases[i].asked,
			      aq_pool_capacity(pool), cases[i].real);
		ck_assert_int_eq(aq_pool_workers(pool), 1);
		aq_pool_destroy(pool);
	}
}
END_TEST

/* ---- results ------------------------------------------------------------ */

/* The README's example job. */
static int square(void *arg, void **result)
{
	intptr_t x = (intptr_t)arg;

	*result = (void *)(x * x);
	return 0;
}

START_TEST(test_readme_square)
{
	aq_pool *pool = NULL;
	aq_future *fut = NULL;
	void *result = NULL;

	ck_assert_int_eq(aq_pool_create(&pool, NULL), 0);
	ck_assert_int_eq(aq_submit(pool, square, (void *)(intptr_t)7, NULL,
				   &fut),
			 0);
	ck_assert_ptr_nonnull(fut);
	ck_assert_int_eq(aq_future_get(fut, &result, -1), 0);
	ck_assert_int_eq((intptr_t)result, 49);
	ck_assert_int_eq(aq_future_state(fut), AQ_STATE_SUCCEEDED);
	aq_future_release(fut);
	aq_pool_destroy(pool);
}
END_TEST

/*
 * Job i: i % 3 == 0 succeeds with result i * 10; i % 3 == 1 fails with
 * code i % 50 + 1 and stores nothing; i % 3 == 2 stores i + 1 and fails
 * with 1000 + i.
 */
static int outcome_job(void *arg, void **result)
{
	intptr_t i = (intptr_t)arg;

	switch (i % 3) {
	case 0:
		*result = (void *)(i * 10);
		return 0;
	case 1:
		return (int)(i % 50) + 1;
	default:
		*result = (void *)(i + 1);
		return 1000 + (int)i;
	}
}

START_TEST(test_results_and_codes)
{
	enum { N = 300 };
	static aq_future *futs[N];
	aq_pool *pool = th_pool(2, 0, 0, 0);
	int succeeded = 0, failed = 0;

	for (intptr_t i = 0; i < N; i++)
		ck_assert_int_eq(aq_submit(pool, outcome_job, (void *)i, NULL,
					   &futs[i]),
				 0);
	for (intptr_t i = 0; i < N; i++) {
		void *result = (void *)(intptr_t)-1;
		int ret = aq_future_get(futs[i], &result, -1);

		switch (i % 3) {
		case 0:
			ck_assert_int_eq(ret, 0);
			ck_assert_ptr_eq(result, (void *)(i * 10));
			ck_assert_int_eq(aq_future_state(futs[i]),
					 AQ_STATE_SUCCEEDED);
			succeeded++;
			break;
		case 1:
			ck_assert_int_eq(ret, (int)(i % 50) + 1);
			ck_assert_ptr_null(result); /* it stored nothing */
			ck_assert_int_eq(aq_future_state(futs[i]),
					 AQ_STATE_FAILED);
			failed++;
			break;
		default:
			ck_assert_int_eq(ret, 1000 + (int)i);
			ck_assert_ptr_eq(result, (void *)(i + 1));
			ck_assert_int_eq(aq_future_state(futs[i]),
					 AQ_STATE_FAILED);
			failed++;
			break;
		}
		/* A second get sees the same outcome. */
		ck_assert_int_eq(aq_future_get(futs[i], NULL, 0), ret);
		aq_future_release(futs[i]);
	}
	ck_assert_int_eq(succeeded, N / 3);
	ck_assert_int_eq(failed, N - N / 3);
	aq_pool_destroy(pool);
}
END_TEST

/* ---- fire-and-forget and concurrency ------------------------------------ */

START_TEST(test_fire_and_forget)
{
	enum { PLAIN = 20000, WITH_OPTS = 5000 };
	static atomic_long count;
	struct aq_job_opts block = { .flags = AQ_JOB_BLOCK };
	aq_pool *pool = th_pool(2, 0, 0, 0);

	atomic_init(&count, 0);
	/* No options, no future: the allocation-free path. */
	for (int i = 0; i < PLAIN; i++)
		ck_assert_int_eq(submit_plain_retry(pool, th_count_job,
						    &count),
				 0);
	/* Options but no future. */
	for (int i = 0; i < WITH_OPTS; i++)
		ck_assert_int_eq(aq_submit(pool, th_count_job, &count, &block,
					   NULL),
				 0);
	aq_pool_destroy(pool);
	ck_assert_int_eq(th_ldl(&count), PLAIN + WITH_OPTS);
}
END_TEST

#define CS_THREADS 4
#define CS_PER_THREAD 5000
#define CS_TOTAL (CS_THREADS * CS_PER_THREAD)

static atomic_int cs_runs[CS_TOTAL];      /* times job idx ran */
static atomic_int cs_destroyed[CS_TOTAL]; /* times its arg_destroy ran */

/* arg is the job index; the result is index + 1. */
static int cs_job(void *arg, void **result)
{
	uintptr_t idx = (uintptr_t)arg;

	atomic_fetch_add(&cs_runs[idx], 1);
	*result = (void *)(idx + 1);
	return 0;
}

static void cs_destroy(void *arg)
{
	atomic_fetch_add(&cs_destroyed[(uintptr_t)arg], 1);
}

struct cs_thread {
	aq_pool *pool;
	unsigned id;
	aq_future *futs[CS_PER_THREAD]; /* NULL for fire-and-forget jobs */
	unsigned submit_errors; /* submits that failed */
	unsigned get_errors;    /* wrong outcome, result or state */
	unsigned resolved;      /* futures that resolved as expected */
};

static void *cs_submitter(void *arg)
{
	struct cs_thread *t = arg;
	struct aq_job_opts block = { .flags = AQ_JOB_BLOCK,
				     .timeout_ns = -1,
				     .arg_destroy = cs_destroy };

	for (unsigned i = 0; i < CS_PER_THREAD; i++) {
		uintptr_t idx = (uintptr_t)t->id * CS_PER_THREAD + i;
		int ret;

		t->futs[i] = NULL;
		if (i % 2 == 0)
			ret = aq_submit(t->pool, cs_job, (void *)idx, &block,
					&t->futs[i]);
		else
			ret = submit_plain_retry(t->pool, cs_job, (void *)idx);
		if (ret != 0 || (i % 2 == 0 && t->futs[i] == NULL))
			t->submit_errors++;
	}
	for (unsigned i = 0; i < CS_PER_THREAD; i += 2) {
		uintptr_t idx = (uintptr_t)t->id * CS_PER_THREAD + i;
		void *result = NULL;

		if (!t->futs[i])
			continue;
		if (aq_future_get(t->futs[i], &result, -1) != 0 ||
		    result != (void *)(idx + 1) ||
		    aq_future_state(t->futs[i]) != AQ_STATE_SUCCEEDED ||
		    th_ld(&cs_destroyed[idx]) != 1)
			t->get_errors++;
		else
			t->resolved++;
		aq_future_release(t->futs[i]);
	}
	return NULL;
}

START_TEST(test_submit_concurrent)
{
	static struct cs_thread threads[CS_THREADS];
	pthread_t tids[CS_THREADS];
	/* A small ring, so that submitters meet a full ring often. */
	aq_pool *pool = th_pool(2, 64, 0, 0);
	unsigned resolved = 0;

	for (unsigned i = 0; i < CS_TOTAL; i++) {
		atomic_init(&cs_runs[i], 0);
		atomic_init(&cs_destroyed[i], 0);
	}
	for (unsigned t = 0; t < CS_THREADS; t++) {
		threads[t].pool = pool;
		threads[t].id = t;
		ck_assert_int_eq(pthread_create(&tids[t], NULL, cs_submitter,
						&threads[t]),
				 0);
	}
	for (unsigned t = 0; t < CS_THREADS; t++)
		pthread_join(tids[t], NULL);
	aq_pool_destroy(pool);

	for (unsigned t = 0; t < CS_THREADS; t++) {
		ck_assert_uint_eq(threads[t].submit_errors, 0);
		ck_assert_uint_eq(threads[t].get_errors, 0);
		resolved += threads[t].resolved;
	}
	ck_assert_uint_eq(resolved, CS_TOTAL / 2);
	for (unsigned i = 0; i < CS_TOTAL; i++) {
		ck_assert_msg(th_ld(&cs_runs[i]) == 1,
			      "job %u ran %d times", i,
			      th_ld(&cs_runs[i]));
		ck_assert_msg(th_ld(&cs_destroyed[i]) ==
				      (i % 2 == 0 ? 1 : 0),
			      "job %u: arg_destroy ran %d times", i,
			      th_ld(&cs_destroyed[i]));
	}
}
END_TEST

/* ---- submitting from inside a job --------------------------------------- */

#define NJ_PARENTS 8
#define NJ_CHILDREN 100

struct nj_parent {
	aq_pool *pool;
	intptr_t index;
	atomic_long *children; /* counted by the fire-and-forget children */
	int errors;            /* child submits that failed */
};

/* Child with a future: result is its arg. */
static int nj_echo(void *arg, void **result)
{
	*result = arg;
	return 0;
}

/*
 * Submits NJ_CHILDREN fire-and-forget children, then one child with a
 * future, which it hands back as its own result.
 */
static int nj_parent_job(void *arg, void **result)
{
	struct nj_parent *p = arg;
	aq_future *child = NULL;

	for (int i = 0; i < NJ_CHILDREN; i++)
		if (aq_submit(p->pool, th_count_job, p->children, NULL, NULL))
			p->errors++;
	if (aq_submit(p->pool, nj_echo, (void *)(1000 + p->index), NULL,
		      &child))
		p->errors++;
	*result = child;
	return 0;
}

START_TEST(test_submit_from_job)
{
	static struct nj_parent parents[NJ_PARENTS];
	static aq_future *futs[NJ_PARENTS];
	static atomic_long children;
	aq_pool *pool = th_pool(2, 4096, 0, 0);

	atomic_init(&children, 0);
	for (int i = 0; i < NJ_PARENTS; i++) {
		parents[i].pool = pool;
		parents[i].index = i;
		parents[i].children = &children;
		parents[i].errors = 0;
		ck_assert_int_eq(aq_submit(pool, nj_parent_job, &parents[i],
					   NULL, &futs[i]),
				 0);
	}
	for (int i = 0; i < NJ_PARENTS; i++) {
		aq_future *child = NULL;
		void *result = NULL;

		ck_assert_int_eq(aq_future_get(futs[i], (void **)&child, -1),
				 0);
		ck_assert_int_eq(parents[i].errors, 0);
		ck_assert_ptr_nonnull(child);
		ck_assert_int_eq(aq_future_get(child, &result, -1), 0);
		ck_assert_ptr_eq(result, (void *)(1000 + (intptr_t)i));
		aq_future_release(child);
		aq_future_release(futs[i]);
	}
	/* Every parent has returned, so every child was accepted before the
	 * drain: all of them run. */
	aq_pool_destroy(pool);
	ck_assert_int_eq(th_ldl(&children), NJ_PARENTS * NJ_CHILDREN);
}
END_TEST

/* ---- order -------------------------------------------------------------- */

#define FIFO_N 2000

static int fifo_order[FIFO_N]; /* indices in the order the jobs ran */
static atomic_int fifo_count;

static int fifo_job(void *arg, void **result)
{
	int pos = atomic_fetch_add(&fifo_count, 1);

	(void)result;
	if (pos < FIFO_N)
		fifo_order[pos] = (int)(intptr_t)arg;
	return 0;
}

static void noop_destroy(void *arg)
{
	(void)arg;
}

/* One worker runs jobs in submission order, whichever path each took. */
START_TEST(test_fifo_one_worker)
{
	static aq_future *futs[FIFO_N];
	struct aq_job_opts with_destroy = { .arg_destroy = noop_destroy };
	struct th_gate gate;
	aq_pool *pool = th_pool(1, 4096, 0, 0);

	th_gate_init(&gate);
	atomic_init(&fifo_count, 0);
	/* Hold the worker so that every job below is queued first. */
	ck_assert_int_eq(aq_submit(pool, th_gate_job, &gate, NULL, NULL), 0);
	for (intptr_t i = 0; i < FIFO_N; i++) {
		futs[i] = NULL;
		switch (i % 3) {
		case 0: /* inline {fn, arg} */
			ck_assert_int_eq(aq_submit(pool, fifo_job, (void *)i,
						   NULL, NULL),
					 0);
			break;
		case 1: /* record with a future */
			ck_assert_int_eq(aq_submit(pool, fifo_job, (void *)i,
						   NULL, &futs[i]),
					 0);
			break;
		default: /* record without a future */
			ck_assert_int_eq(aq_submit(pool, fifo_job, (void *)i,
						   &with_destroy, NULL),
					 0);
			break;
		}
	}
	th_gate_open(&gate);
	aq_pool_destroy(pool);
	ck_assert_int_eq(th_ld(&fifo_count), FIFO_N);
	for (int i = 0; i < FIFO_N; i++)
		ck_assert_msg(fifo_order[i] == i,
			      "position %d ran job %d", i, fifo_order[i]);
	for (int i = 0; i < FIFO_N; i++)
		if (futs[i]) {
			ck_assert_int_eq(aq_future_state(futs[i]),
					 AQ_STATE_SUCCEEDED);
			aq_future_release(futs[i]);
		}
	th_gate_destroy(&gate);
}
END_TEST

/* ---- full ring ---------------------------------------------------------- */

/*
 * A pool with one worker held by a gate job and a ring of `capacity` filled
 * with th_jobs: the setup of every full-ring test.
 */
struct full_pool {
	aq_pool *pool;
	struct th_gate gate;
	aq_future *gate_fut;
	struct th_job fill[4];
	aq_future *fill_futs[4];
};

static void full_pool_setup(struct full_pool *fp, unsigned flags,
			    int64_t block_timeout_ns)
{
	struct aq_job_opts opts = { .flags = AQ_JOB_NOBLOCK,
				    .arg_destroy = th_job_destroy };

	fp->pool = th_pool(1, 2, flags, block_timeout_ns);
	ck_assert_int_eq(aq_pool_capacity(fp->pool), 2);
	th_gate_init(&fp->gate);
	ck_assert_int_eq(aq_submit(fp->pool, th_gate_job, &fp->gate, NULL,
				   &fp->gate_fut),
			 0);
	/* Running: the worker has taken it off the ring. */
	ck_assert(th_gate_wait_entered(&fp->gate, 1));
	for (int i = 0; i < 2; i++) {
		th_job_init(&fp->fill[i], NULL, 0, true,
			    (void *)(intptr_t)(100 + i));
		ck_assert_int_eq(aq_submit(fp->pool, th_job_fn, &fp->fill[i],
					   &opts, &fp->fill_futs[i]),
				 0);
	}
}

/* Open the gate and check that everything queued completed. */
static void full_pool_finish(struct full_pool *fp)
{
	void *result;

	th_gate_open(&fp->gate);
	ck_assert_int_eq(aq_future_get(fp->gate_fut, NULL, -1), 0);
	aq_future_release(fp->gate_fut);
	for (int i = 0; i < 2; i++) {
		ck_assert_int_eq(aq_future_get(fp->fill_futs[i], &result, -1),
				 0);
		ck_assert_ptr_eq(result, (void *)(intptr_t)(100 + i));
		ck_assert_int_eq(th_ld(&fp->fill[i].ran), 1);
		ck_assert_int_eq(th_ld(&fp->fill[i].destroyed), 1);
		aq_future_release(fp->fill_futs[i]);
	}
}

static void full_pool_teardown(struct full_pool *fp)
{
	aq_pool_destroy(fp->pool);
	th_gate_destroy(&fp->gate);
}

START_TEST(test_ring_full_eagain)
{
	static int sentinel_obj;
	aq_future *const sentinel = (aq_future *)(void *)&sentinel_obj;
	struct aq_job_opts noblock = { .flags = AQ_JOB_NOBLOCK,
				       .arg_destroy = th_job_destroy };
	struct aq_job_opts zero = { .arg_destroy = th_job_destroy };
	struct full_pool fp;
	struct th_job extra;
	aq_future *fut;

	full_pool_setup(&fp, 0, 0);
	th_job_init(&extra, NULL, 0, false, NULL);

	fut = sentinel;
	ck_assert_int_eq(aq_submit(fp.pool, th_job_fn, &extra, NULL, &fut),
			 -EAGAIN);
	ck_assert_ptr_null(fut);
	fut = sentinel;
	ck_assert_int_eq(aq_submit(fp.pool, th_job_fn, &extra, &zero, &fut),
			 -EAGAIN);
	ck_assert_ptr_null(fut);
	fut = sentinel;
	ck_assert_int_eq(aq_submit(fp.pool, th_job_fn, &extra, &noblock, &fut),
			 -EAGAIN);
	ck_assert_ptr_null(fut);
	ck_assert_int_eq(aq_submit(fp.pool, th_job_fn, &extra, NULL, NULL),
			 -EAGAIN);
	ck_assert_int_eq(th_ld(&extra.destroyed), 0);

	full_pool_finish(&fp);
	/* Both queued jobs have resolved, so the ring is empty again. */
	ck_assert_int_eq(aq_submit(fp.pool, th_job_fn, &extra, &noblock, &fut),
			 0);
	ck_assert_int_eq(aq_future_get(fut, NULL, -1), 0);
	aq_future_release(fut);
	full_pool_teardown(&fp);
	ck_assert_int_eq(th_ld(&extra.ran), 1);
	ck_assert_int_eq(th_ld(&extra.destroyed), 1);
}
END_TEST

/* AQ_JOB_BLOCK with a timeout waits the whole timeout, then -ETIMEDOUT. */
START_TEST(test_block_timeout)
{
	const int64_t timeout = 50 * 1000000LL;
	struct aq_job_opts block = { .flags = AQ_JOB_BLOCK,
				     .timeout_ns = timeout,
				     .arg_destroy = th_job_destroy };
	struct full_pool fp;
	struct th_job extra;
	aq_future *fut = NULL;
	int64_t start, waited;

	full_pool_setup(&fp, 0, 0);
	th_job_init(&extra, NULL, 0, false, NULL);
	start = th_now_ns();
	ck_assert_int_eq(aq_submit(fp.pool, th_job_fn, &extra, &block, &fut),
			 -ETIMEDOUT);
	waited = th_now_ns() - start;
	ck_assert_msg(waited >= timeout - 2000000,
		      "gave up after %lld ns of a %lld ns timeout",
		      (long long)waited, (long long)timeout);
	ck_assert_ptr_null(fut);
	ck_assert_int_eq(th_ld(&extra.destroyed), 0);
	full_pool_finish(&fp);
	full_pool_teardown(&fp);
	ck_assert_int_eq(th_ld(&extra.ran), 0);
	ck_assert_int_eq(th_ld(&extra.destroyed), 0);
}
END_TEST

struct blocked_submit {
	aq_pool *pool;
	struct aq_job_opts opts;
	const struct aq_job_opts *optsp; /* &opts, or NULL */
	struct th_job job;
	aq_future *fut;
	atomic_int started;  /* about to call aq_submit */
	atomic_int returned; /* aq_submit returned */
	int ret;             /* what it returned */
};

static void *blocked_submitter(void *arg)
{
	struct blocked_submit *b = arg;

	atomic_store(&b->started, 1);
	b->ret = aq_submit(b->pool, th_job_fn, &b->job, b->optsp, &b->fut);
	atomic_store(&b->returned, 1);
	return NULL;
}

static void blocked_init(struct blocked_submit *b, aq_pool *pool,
			 const struct aq_job_opts *opts)
{
	b->pool = pool;
	if (opts) {
		b->opts = *opts;
		b->optsp = &b->opts;
	} else {
		b->optsp = NULL;
	}
	th_job_init(&b->job, NULL, 0, true, b);
	b->fut = NULL;
	atomic_init(&b->started, 0);
	atomic_init(&b->returned, 0);
	b->ret = 1;
}

/*
 * Start the submitters, let them reach the full ring, and check that none
 * has returned: while the gate holds, there is no space to give them.
 */
static void blocked_start(struct blocked_submit *b, pthread_t *tid, int n)
{
	for (int i = 0; i < n; i++)
		ck_assert_int_eq(pthread_create(&tid[i], NULL,
						blocked_submitter, &b[i]),
				 0);
	for (int i = 0; i < n; i++)
		ck_assert(th_poll_int(&b[i].started, 1));
	/* Not needed for correctness: gives them time to go to sleep, so
	 * that the wake-up path is what gets tested. */
	th_sleep_ms(50);
	for (int i = 0; i < n; i++)
		ck_assert_msg(th_ld(&b[i].returned) == 0,
			      "submitter %d returned %d on a full ring", i,
			      b[i].ret);
}

/* Blocked submits (from other threads) succeed once the ring drains. */
static void blocked_finish_ok(struct blocked_submit *b, pthread_t *tid,
			      int n)
{
	for (int i = 0; i < n; i++) {
		void *result = NULL;

		pthread_join(tid[i], NULL);
		ck_assert_int_eq(b[i].ret, 0);
		ck_assert_ptr_nonnull(b[i].fut);
		ck_assert_int_eq(aq_future_get(b[i].fut, &result, -1), 0);
		ck_assert_ptr_eq(result, &b[i]);
		ck_assert_int_eq(th_ld(&b[i].job.ran), 1);
		aq_future_release(b[i].fut);
	}
}

START_TEST(test_block_until_space)
{
	struct aq_job_opts forever0 = { .flags = AQ_JOB_BLOCK,
					.timeout_ns = 0,
					.arg_destroy = th_job_destroy };
	struct aq_job_opts forever_neg = { .flags = AQ_JOB_BLOCK,
					   .timeout_ns = -1,
					   .arg_destroy = th_job_destroy };
	struct blocked_submit b[2];
	pthread_t tid[2];
	struct full_pool fp;

	full_pool_setup(&fp, 0, 0);
	blocked_init(&b[0], fp.pool, &forever0);
	blocked_init(&b[1], fp.pool, &forever_neg);
	blocked_start(b, tid, 2);
	full_pool_finish(&fp);
	blocked_finish_ok(b, tid, 2);
	full_pool_teardown(&fp);
	for (int i = 0; i < 2; i++)
		ck_assert_int_eq(th_ld(&b[i].job.destroyed), 1);
}
END_TEST

/*
 * Workers wake blocked producers once a run of slots is free (a quarter of
 * the ring, here 16 of 64), not after every pop. A producer pushing 2000
 * blocking submits through a 64-slot ring gets every one in, in order.
 */
struct stream {
	aq_pool *pool;
	atomic_long *counter;
	int bad; /* submits that did not return 0 */
};

static void *blocking_stream(void *arg)
{
	static const struct aq_job_opts block = { .flags = AQ_JOB_BLOCK };
	struct stream *s = arg;

	for (int i = 0; i < 2000; i++)
		if (aq_submit(s->pool, th_count_job, s->counter, &block,
			      NULL) != 0)
			s->bad++;
	return NULL;
}

START_TEST(test_block_stream)
{
	aq_pool *pool = th_pool(1, 64, 0, 0);
	atomic_long counter;
	struct stream s[2] = { { pool, &counter, 0 }, { pool, &counter, 0 } };
	pthread_t t[2];

	atomic_init(&counter, 0);
	for (int i = 0; i < 2; i++)
		ck_assert_int_eq(pthread_create(&t[i], NULL, blocking_stream,
						&s[i]),
				 0);
	for (int i = 0; i < 2; i++) {
		pthread_join(t[i], NULL);
		ck_assert_int_eq(s[i].bad, 0);
	}
	aq_pool_destroy(pool);
	ck_assert_int_eq(th_ldl(&counter), 4000);
}
END_TEST

/*
 * A slot is free but the workers are stuck, so the run of free slots that
 * would wake a blocked producer never comes: the producer still gets in,
 * because it also looks for itself (every millisecond, aq_submit(3)).
 */
START_TEST(test_block_one_slot_free)
{
	struct aq_job_opts forever = { .flags = AQ_JOB_BLOCK,
				       .arg_destroy = th_job_destroy };
	struct th_gate first, stuck;
	aq_future *first_fut, *stuck_fut;
	struct blocked_submit b;
	atomic_long counter;
	pthread_t tid;
	aq_pool *pool = th_pool(1, 64, 0, 0);

	atomic_init(&counter, 0);
	th_gate_init(&first);
	th_gate_init(&stuck);
	ck_assert_int_eq(aq_submit(pool, th_gate_job, &first, NULL,
				   &first_fut),
			 0);
	ck_assert(th_gate_wait_entered(&first, 1));
	/* The ring: the stuck gate job, then 63 counting jobs: full. */
	ck_assert_int_eq(aq_submit(pool, th_gate_job, &stuck, NULL,
				   &stuck_fut),
			 0);
	for (int i = 0; i < 63; i++)
		ck_assert_int_eq(aq_submit(pool, th_count_job, &counter, NULL,
					   NULL),
				 0);
	ck_assert_int_eq(aq_submit(pool, th_count_job, &counter, NULL, NULL),
			 -EAGAIN);
	blocked_init(&b, pool, &forever);
	blocked_start(&b, &tid, 1);
	/* The worker takes the stuck job (one slot free) and stays in it. */
	th_gate_open(&first);
	ck_assert(th_gate_wait_entered(&stuck, 1));
	ck_assert_msg(th_poll_int(&b.returned, 1),
		      "a blocked submit stayed blocked with a slot free");
	ck_assert_int_eq(b.ret, 0);
	th_gate_open(&stuck);
	blocked_finish_ok(&b, &tid, 1);
	ck_assert_int_eq(aq_future_get(first_fut, NULL, -1), 0);
	ck_assert_int_eq(aq_future_get(stuck_fut, NULL, -1), 0);
	aq_future_release(first_fut);
	aq_future_release(stuck_fut);
	aq_pool_destroy(pool);
	ck_assert_int_eq(th_ldl(&counter), 63);
	th_gate_destroy(&first);
	th_gate_destroy(&stuck);
}
END_TEST

/* AQ_POOL_BLOCK makes blocking the default; AQ_JOB_NOBLOCK overrides it. */
START_TEST(test_pool_block_default)
{
	const int64_t pool_timeout = 50 * 1000000LL;
	struct aq_job_opts zero = { .arg_destroy = th_job_destroy };
	struct aq_job_opts noblock = { .flags = AQ_JOB_NOBLOCK,
				       .arg_destroy = th_job_destroy };
	struct aq_job_opts own_timeout = { .flags = AQ_JOB_BLOCK,
					   .timeout_ns = 20 * 1000000LL,
					   .arg_destroy = th_job_destroy };
	struct aq_job_opts both = { .flags = AQ_JOB_BLOCK | AQ_JOB_NOBLOCK,
				    .arg_destroy = th_job_destroy };
	struct full_pool fp;
	struct th_job extra;
	aq_future *fut;
	int64_t start, waited;

	full_pool_setup(&fp, AQ_POOL_BLOCK, pool_timeout);
	th_job_init(&extra, NULL, 0, false, NULL);

	start = th_now_ns();
	ck_assert_int_eq(aq_submit(fp.pool, th_job_fn, &extra, NULL, &fut),
			 -ETIMEDOUT);
	waited = th_now_ns() - start;
	ck_assert_msg(waited >= pool_timeout - 2000000,
		      "gave up after %lld ns", (long long)waited);
	ck_assert_ptr_null(fut);
	ck_assert_int_eq(aq_submit(fp.pool, th_job_fn, &extra, &zero, &fut),
			 -ETIMEDOUT);
	ck_assert_int_eq(aq_submit(fp.pool, th_job_fn, &extra, NULL, NULL),
			 -ETIMEDOUT);
	ck_assert_int_eq(aq_submit(fp.pool, th_job_fn, &extra, &noblock, &fut),
			 -EAGAIN);
	ck_assert_ptr_null(fut);
	ck_assert_int_eq(aq_submit(fp.pool, th_job_fn, &extra, &own_timeout,
				   &fut),
			 -ETIMEDOUT);
	ck_assert_int_eq(aq_submit(fp.pool, th_job_fn, &extra, &both, &fut),
			 -EINVAL);
	ck_assert_int_eq(th_ld(&extra.destroyed), 0);
	full_pool_finish(&fp);
	full_pool_teardown(&fp);
	ck_assert_int_eq(th_ld(&extra.ran), 0);
	ck_assert_int_eq(th_ld(&extra.destroyed), 0);
}
END_TEST

/* AQ_POOL_BLOCK with block_timeout_ns 0 waits forever, and succeeds. */
START_TEST(test_pool_block_forever)
{
	struct aq_job_opts zero = { .arg_destroy = th_job_destroy };
	struct blocked_submit b[2];
	pthread_t tid[2];
	struct full_pool fp;

	full_pool_setup(&fp, AQ_POOL_BLOCK, 0);
	blocked_init(&b[0], fp.pool, NULL);
	blocked_init(&b[1], fp.pool, &zero);
	blocked_start(b, tid, 2);
	full_pool_finish(&fp);
	blocked_finish_ok(b, tid, 2);
	full_pool_teardown(&fp);
	ck_assert_int_eq(th_ld(&b[0].job.destroyed), 0);
	ck_assert_int_eq(th_ld(&b[1].job.destroyed), 1);
}
END_TEST

/*
 * A job that waits on its gate, then makes a blocking submit to its own
 * pool, whose ring the test has filled meanwhile: with a future (the job
 * runs in place) or without (refused). Its submits go to its worker's
 * deque first, so it fills that with no-ops before (fire-and-forget,
 * refused once deque and ring are both full).
 */
struct inner_submit {
	aq_pool *pool;
	struct th_gate gate;
	const struct aq_job_opts *opts; /* for the inner submit */
	bool with_future;
	struct th_job inner;
	aq_future *inner_fut;
	int inner_state; /* the inner future's state as the submit returned */
	int ret; /* what the inner submit returned */
};

static int inner_noop(void *arg, void **result)
{
	(void)arg;
	(void)result;
	return 0;
}

static int inner_submit_job(void *arg, void **result)
{
	struct inner_submit *s = arg;
	static int sentinel_obj;
	struct aq_job_opts nb = { .flags = AQ_JOB_NOBLOCK };
	int filled = 0;

	(void)result;
	th_gate_pass(&s->gate);
	while (filled < 100000 &&
	       aq_submit(s->pool, inner_noop, NULL, &nb, NULL) == 0)
		filled++;
	ck_assert_int_gt(filled, 0); /* the deque took some */
	ck_assert_int_lt(filled, 100000);
	s->inner_fut = (aq_future *)(void *)&sentinel_obj;
	s->ret = aq_submit(s->pool, th_job_fn, &s->inner, s->opts,
			   s->with_future ? &s->inner_fut : NULL);
	if (s->ret == 0 && s->with_future)
		s->inner_state = aq_future_state(s->inner_fut);
	return 0;
}

static void run_inner_submit(unsigned pool_flags, int64_t pool_timeout,
			     const struct aq_job_opts *inner_opts,
			     bool with_future)
{
	struct aq_job_opts noblock = { .flags = AQ_JOB_NOBLOCK };
	bool in_place = with_future &&
			!(inner_opts && (inner_opts->flags & AQ_JOB_NOBLOCK));
	struct inner_submit s;
	struct th_job fill[2];
	aq_future *fut, *fill_futs[2];
	aq_pool *pool = th_pool(1, 2, pool_flags, pool_timeout);

	s.pool = pool;
	th_gate_init(&s.gate);
	s.opts = inner_opts;
	s.with_future = with_future;
	s.inner_state = -1;
	th_job_init(&s.inner, NULL, 0, false, NULL);
	s.ret = 1;
	ck_assert_int_eq(aq_submit(pool, inner_submit_job, &s, NULL, &fut), 0);
	ck_assert(th_gate_wait_entered(&s.gate, 1));
	for (int i = 0; i < 2; i++) {
		th_job_init(&fill[i], NULL, 0, false, NULL);
		ck_assert_int_eq(aq_submit(pool, th_job_fn, &fill[i], &noblock,
					   &fill_futs[i]),
				 0);
	}
	ck_assert_int_eq(aq_submit(pool, th_job_fn, &s.inner, &noblock, NULL),
			 -EAGAIN);
	th_gate_open(&s.gate);
	ck_assert_int_eq(aq_future_get(fut, NULL, -1), 0);
	/* A wait would have ended in -ETIMEDOUT (or never: the test's
	 * timeout then reports it). With a future the job ran in place,
	 * before the submit returned; without one, or with
	 * AQ_JOB_NOBLOCK, -EAGAIN at once. */
	if (in_place) {
		ck_assert_int_eq(s.ret, 0);
		ck_assert_int_eq(s.inner_state, AQ_STATE_SUCCEEDED);
		aq_future_release(s.inner_fut);
	} else {
		ck_assert_int_eq(s.ret, -EAGAIN);
		if (with_future)
			ck_assert_ptr_null(s.inner_fut);
	}
	for (int i = 0; i < 2; i++) {
		ck_assert_int_eq(aq_future_get(fill_futs[i], NULL, -1), 0);
		aq_future_release(fill_futs[i]);
	}
	aq_future_release(fut);
	aq_pool_destroy(pool);
	ck_assert_int_eq(th_ld(&s.inner.ran), in_place);
	ck_assert_int_eq(th_ld(&s.inner.destroyed),
			 in_place && inner_opts && inner_opts->arg_destroy);
	for (int i = 0; i < 2; i++)
		ck_assert_int_eq(th_ld(&fill[i].ran), 1);
	th_gate_destroy(&s.gate);
}

/* Inside a job of its own pool nothing sleeps on the full ring; a job
 * with a future runs in place instead (issue 11, item 4). */
START_TEST(test_block_inside_job)
{
	const int64_t ten_s = 10 * 1000000000LL;
	struct aq_job_opts block = { .flags = AQ_JOB_BLOCK,
				     .timeout_ns = ten_s,
				     .arg_destroy = th_job_destroy };
	struct aq_job_opts block_forever = { .flags = AQ_JOB_BLOCK };
	struct aq_job_opts noblock = { .flags = AQ_JOB_NOBLOCK,
				       .arg_destroy = th_job_destroy };

	/* Refused, with a future too, when it asks for the refusal. */
	run_inner_submit(AQ_POOL_BLOCK, 0, &noblock, true);
	for (int fut = 0; fut < 2; fut++) {
		run_inner_submit(0, 0, NULL, fut); /* not blocking at all */
		run_inner_submit(0, 0, &block, fut);
		run_inner_submit(0, 0, &block_forever, fut);
		/* Blocking by the pool's default, with a timeout and
		 * forever. */
		run_inner_submit(AQ_POOL_BLOCK, ten_s, NULL, fut);
		run_inner_submit(AQ_POOL_BLOCK, 0, NULL, fut);
	}
}
END_TEST

/* ---- arg_destroy -------------------------------------------------------- */

START_TEST(test_arg_destroy_once)
{
	struct aq_job_opts opts = { .arg_destroy = th_job_destroy };
	struct aq_job_opts bad = { .flags = 0x100,
				   .arg_destroy = th_job_destroy };
	struct th_gate gate;
	struct th_job ok, fail, cancelled, forgotten, rejected;
	aq_future *fok, *ffail, *fcancel, *fgate;
	void *result = NULL;
	aq_pool *pool = th_pool(1, 16, 0, 0);

	th_gate_init(&gate);
	th_job_init(&ok, NULL, 0, true, &ok);
	th_job_init(&fail, NULL, 7, false, NULL);
	th_job_init(&cancelled, NULL, 0, false, NULL);
	th_job_init(&forgotten, NULL, 0, false, NULL);
	th_job_init(&rejected, NULL, 0, false, NULL);

	/* Success and failure: arg_destroy has run by the time get returns,
	 * after the job returned. */
	ck_assert_int_eq(aq_submit(pool, th_job_fn, &ok, &opts, &fok), 0);
	ck_assert_int_eq(aq_submit(pool, th_job_fn, &fail, &opts, &ffail), 0);
	ck_assert_int_eq(aq_future_get(fok, &result, -1), 0);
	ck_assert_ptr_eq(result, &ok);
	ck_assert_int_eq(th_ld(&ok.destroyed), 1);
	ck_assert_int_eq(th_ld(&ok.returned_at_destroy), 1);
	ck_assert_int_eq(aq_future_get(ffail, NULL, -1), 7);
	ck_assert_int_eq(th_ld(&fail.destroyed), 1);
	ck_assert_int_eq(th_ld(&fail.returned_at_destroy), 1);

	/* Cancel: on the cancelling thread, before cancel returns. */
	ck_assert_int_eq(aq_submit(pool, th_gate_job, &gate, NULL, &fgate), 0);
	ck_assert(th_gate_wait_entered(&gate, 1));
	ck_assert_int_eq(aq_submit(pool, th_job_fn, &cancelled, &opts,
				   &fcancel),
			 0);
	ck_assert_int_eq(th_ld(&cancelled.destroyed), 0);
	ck_assert_int_eq(aq_future_cancel(fcancel), 0);
	ck_assert_int_eq(th_ld(&cancelled.destroyed), 1);
	ck_assert(pthread_equal(cancelled.destroy_thread, pthread_self()));

	/* Fire-and-forget with arg_destroy. */
	ck_assert_int_eq(aq_submit(pool, th_job_fn, &forgotten, &opts, NULL),
			 0);

	/* Failed submits never call it. */
	ck_assert_int_eq(aq_submit(pool, th_job_fn, &rejected, &bad, NULL),
			 -EINVAL);
	ck_assert_int_eq(aq_submit(NULL, th_job_fn, &rejected, &opts, NULL),
			 -EINVAL);
	ck_assert_int_eq(aq_submit(pool, NULL, &rejected, &opts, NULL),
			 -EINVAL);

	th_gate_open(&gate);
	ck_assert_int_eq(aq_future_get(fgate, NULL, -1), 0);
	ck_assert_int_eq(aq_pool_shutdown(pool, AQ_SHUTDOWN_DRAIN), 0);
	ck_assert_int_eq(aq_submit(pool, th_job_fn, &rejected, &opts, NULL),
			 -ESHUTDOWN);
	aq_pool_destroy(pool);

	ck_assert_int_eq(th_ld(&ok.destroyed), 1);
	ck_assert_int_eq(th_ld(&fail.destroyed), 1);
	ck_assert_int_eq(th_ld(&cancelled.destroyed), 1);
	ck_assert_int_eq(th_ld(&cancelled.ran), 0);
	ck_assert_int_eq(th_ld(&forgotten.ran), 1);
	ck_assert_int_eq(th_ld(&forgotten.destroyed), 1);
	ck_assert_int_eq(th_ld(&forgotten.returned_at_destroy), 1);
	ck_assert_int_eq(th_ld(&rejected.ran), 0);
	ck_assert_int_eq(th_ld(&rejected.destroyed), 0);
	aq_future_release(fok);
	aq_future_release(ffail);
	aq_future_release(fcancel);
	aq_future_release(fgate);
	th_gate_destroy(&gate);
}
END_TEST

struct cancel_thread {
	aq_future *fut;
	int ret; /* what aq_future_cancel returned */
};

static void *cancel_main(void *arg)
{
	struct cancel_thread *c = arg;

	c->ret = aq_future_cancel(c->fut);
	return NULL;
}

/*
 * arg_destroy runs before the future resolves: while an arg_destroy is held
 * on a gate, the job has returned (or was cancelled) yet get finds no
 * outcome.
 */
START_TEST(test_arg_destroy_before_resolve)
{
	struct aq_job_opts opts = { .arg_destroy = th_job_destroy };
	struct th_gate gate, dgate[3];
	struct th_job ok, fail, cancelled;
	aq_future *fok, *ffail, *fcancel, *fgate;
	struct cancel_thread ct;
	pthread_t tid;
	void *result = NULL;
	aq_pool *pool = th_pool(1, 16, 0, 0);

	th_gate_init(&gate);
	for (int i = 0; i < 3; i++)
		th_gate_init(&dgate[i]);
	th_job_init(&ok, NULL, 0, true, &ok);
	ok.destroy_gate = &dgate[0];
	th_job_init(&fail, NULL, 5, false, NULL);
	fail.destroy_gate = &dgate[1];
	th_job_init(&cancelled, NULL, 0, false, NULL);
	cancelled.destroy_gate = &dgate[2];

	ck_assert_int_eq(aq_submit(pool, th_job_fn, &ok, &opts, &fok), 0);
	ck_assert_int_eq(aq_submit(pool, th_job_fn, &fail, &opts, &ffail), 0);

	ck_assert(th_gate_wait_entered(&dgate[0], 1));
	ck_assert_int_eq(th_ld(&ok.returned), 1);
	ck_assert_int_eq(aq_future_get(fok, &result, 0), -ETIMEDOUT);
	ck_assert_int_lt(aq_future_state(fok), AQ_STATE_SUCCEEDED);
	th_gate_open(&dgate[0]);
	ck_assert_int_eq(aq_future_get(fok, &result, -1), 0);
	ck_assert_ptr_eq(result, &ok);

	ck_assert(th_gate_wait_entered(&dgate[1], 1));
	ck_assert_int_eq(th_ld(&fail.returned), 1);
	ck_assert_int_eq(aq_future_get(ffail, NULL, 0), -ETIMEDOUT);
	ck_assert_int_lt(aq_future_state(ffail), AQ_STATE_SUCCEEDED);
	th_gate_open(&dgate[1]);
	ck_assert_int_eq(aq_future_get(ffail, NULL, -1), 5);

	/* Cancel, from another thread, its arg_destroy held. */
	ck_assert_int_eq(aq_submit(pool, th_gate_job, &gate, NULL, &fgate), 0);
	ck_assert(th_gate_wait_entered(&gate, 1));
	ck_assert_int_eq(aq_submit(pool, th_job_fn, &cancelled, &opts,
				   &fcancel),
			 0);
	ct.fut = fcancel;
	ct.ret = 1;
	ck_assert_int_eq(pthread_create(&tid, NULL, cancel_main, &ct), 0);
	ck_assert(th_gate_wait_entered(&dgate[2], 1));
	ck_assert_int_eq(aq_future_get(fcancel, NULL, 0), -ETIMEDOUT);
	ck_assert_int_lt(aq_future_state(fcancel), AQ_STATE_SUCCEEDED);
	th_gate_open(&dgate[2]);
	pthread_join(tid, NULL);
	ck_assert_int_eq(ct.ret, 0);
	ck_assert_int_eq(aq_future_get(fcancel, NULL, -1), -ECANCELED);
	ck_assert_int_eq(aq_future_state(fcancel), AQ_STATE_CANCELLED);

	th_gate_open(&gate);
	aq_pool_destroy(pool);
	ck_assert_int_eq(th_ld(&ok.destroyed), 1);
	ck_assert_int_eq(th_ld(&fail.destroyed), 1);
	ck_assert_int_eq(th_ld(&cancelled.destroyed), 1);
	ck_assert_int_eq(th_ld(&cancelled.ran), 0);
	aq_future_release(fok);
	aq_future_release(ffail);
	aq_future_release(fcancel);
	aq_future_release(fgate);
	th_gate_destroy(&gate);
	for (int i = 0; i < 3; i++)
		th_gate_destroy(&dgate[i]);
}
END_TEST

/* ---- isolation ---------------------------------------------------------- */

START_TEST(test_two_pools)
{
	enum { NB = 1000 };
	static atomic_long count_b;
	struct full_pool a;
	struct th_job extra;
	aq_pool *b = th_pool(2, 0, 0, 0);
	aq_future *fut;

	atomic_init(&count_b, 0);
	full_pool_setup(&a, 0, 0);
	th_job_init(&extra, NULL, 0, false, NULL);

	/* B works normally while A is stuck and full. */
	for (int i = 0; i < NB; i++)
		ck_assert_int_eq(submit_plain_retry(b, th_count_job, &count_b),
				 0);
	ck_assert_int_eq(aq_submit(b, th_count_job, &count_b, NULL, &fut), 0);
	ck_assert_int_eq(aq_future_get(fut, NULL, -1), 0);
	aq_future_release(fut);
	ck_assert_int_eq(aq_pool_shutdown(b, AQ_SHUTDOWN_DRAIN), 0);
	ck_assert_int_eq(th_ldl(&count_b), NB + 1);
	ck_assert_int_eq(aq_submit(b, th_count_job, &count_b, NULL, NULL),
			 -ESHUTDOWN);
	aq_pool_destroy(b);
	/* B's shutdown touched nothing of A: still full, still open, its
	 * jobs still queued. */
	ck_assert_int_eq(aq_submit(a.pool, th_job_fn, &extra, NULL, NULL),
			 -EAGAIN);
	ck_assert_int_eq(aq_future_state(a.gate_fut), AQ_STATE_RUNNING);
	ck_assert_int_eq(aq_future_state(a.fill_futs[0]), AQ_STATE_PENDING);
	ck_assert_int_eq(aq_future_state(a.fill_futs[1]), AQ_STATE_PENDING);
	ck_assert_int_eq(aq_pool_workers(a.pool), 1);
	ck_assert_int_eq(aq_pool_capacity(a.pool), 2);
	full_pool_finish(&a);
	ck_assert_int_eq(aq_submit(a.pool, th_job_fn, &extra, NULL, &fut), 0);
	ck_assert_int_eq(aq_future_get(fut, NULL, -1), 0);
	aq_future_release(fut);
	full_pool_teardown(&a);
	ck_assert_int_eq(th_ld(&extra.ran), 1);
	ck_assert_int_eq(th_ldl(&count_b), NB + 1);
}
END_TEST

Suite *pool_suite(void)
{
	Suite *s = suite_create("pool");
	TCase *config = tcase_create("config");
	TCase *submit = tcase_create("submit");
	TCase *full = tcase_create("full");

	tcase_set_timeout(config, TH_TIMEOUT);
	tcase_add_test(config, test_create_defaults);
	tcase_add_test(config, test_create_workers_real);
	tcase_add_test(config, test_config_validation);
	tcase_add_test(config, test_capacity_rounding);
	suite_add_tcase(s, config);

	tcase_set_timeout(submit, TH_TIMEOUT_STRESS);
	tcase_add_test(submit, test_readme_square);
	tcase_add_test(submit, test_results_and_codes);
	tcase_add_test(submit, test_fire_and_forget);
	tcase_add_test(submit, test_submit_concurrent);
	tcase_add_test(submit, test_submit_from_job);
	tcase_add_test(submit, test_fifo_one_worker);
	tcase_add_test(submit, test_arg_destroy_once);
	tcase_add_test(submit, test_arg_destroy_before_resolve);
	tcase_add_test(submit, test_two_pools);
	suite_add_tcase(s, submit);

	tcase_set_timeout(full, TH_TIMEOUT);
	tcase_add_test(full, test_ring_full_eagain);
	tcase_add_test(full, test_block_timeout);
	tcase_add_test(full, test_block_until_space);
	tcase_add_test(full, test_block_stream);
	tcase_add_test(full, test_block_one_slot_free);
	tcase_add_test(full, test_pool_block_default);
	tcase_add_test(full, test_pool_block_forever);
	tcase_add_test(full, test_block_inside_job);
	suite_add_tcase(s, full);
	return s;
}
