/* SPDX-License-Identifier: MIT */
/*
 * check_submit.c - aq_submit_batch() (lib/submit.c): every job of a batch runs exactly
 * once, in order; a full ring takes what fits and says how much; blocking
 * waits once for the whole batch; futures come back one per accepted job;
 * pools that record every job take the same path as futures do.
 */
#include <check.h>
#include <errno.h>
#include <stdint.h>
#include <stdlib.h>

#include <asyncq.h>

#include "helpers.h"
#include "suites.h"

#define MS 1000000LL

/* A job that records its arg (an index) in the order it runs. */
#define ORDER_MAX 4096

struct order {
	atomic_int n;
	int ids[ORDER_MAX];
};

static struct order order;

static int order_job(void *arg, void **result)
{
	int pos = atomic_fetch_add(&order.n, 1);

	if (pos < ORDER_MAX)
		order.ids[pos] = (int)(intptr_t)arg;
	*result = (void *)((intptr_t)arg * 3);
	return 0;
}

static void order_reset(void)
{
	atomic_store(&order.n, 0);
	for (int i = 0; i < ORDER_MAX; i++)
		order.ids[i] = -1;
}

/* jobs[i] = order_job(first + i). */
static void order_jobs(struct aq_job *jobs, unsigned n, int first)
{
	for (unsigned i = 0; i < n; i++) {
		jobs[i].fn = order_job;
		jobs[i].arg = (void *)(intptr_t)(first + (int)i);
	}
}

/* A pool of one worker, held by a gate job that has left the ring: the
 * ring is empty and every job submitted now waits until release. */
struct held {
	aq_pool *pool;
	struct th_gate gate;
	aq_future *gate_fut;
};

static void held_setup(struct held *h, unsigned capacity, unsigned flags)
{
	h->pool = th_pool(1, capacity, flags, 0);
	th_gate_init(&h->gate);
	ck_assert_int_eq(aq_submit(h->pool, th_gate_job, &h->gate, NULL,
				   &h->gate_fut),
			 0);
	ck_assert(th_gate_wait_entered(&h->gate, 1));
}

static void held_release(struct held *h)
{
	th_gate_open(&h->gate);
	ck_assert_int_eq(aq_future_get(h->gate_fut, NULL, -1), 0);
	aq_future_release(h->gate_fut);
}

static void held_teardown(struct held *h)
{
	aq_pool_destroy(h->pool);
	th_gate_destroy(&h->gate);
}

/* ---- fire-and-forget batches -------------------------------------------- */

/* Thousands of jobs in batches of every size from 1 to 64, from two
 * threads at once: each runs exactly once, and the stats agree. */
struct producer {
	aq_pool *pool;
	atomic_long *counter;
	long submitted;
	int errors;
};

static void *batch_producer(void *arg)
{
	struct producer *p = arg;
	struct aq_job jobs[64];

	for (unsigned i = 0; i < 64; i++) {
		jobs[i].fn = th_count_job;
		jobs[i].arg = p->counter;
	}
	for (unsigned round = 0; round < 100; round++) {
		unsigned n = 1 + round % 64, done = 0;

		while (done < n) {
			int ret = aq_submit_batch(p->pool, jobs, n - done, NULL,
						  NULL);

			if (ret == -EAGAIN) {
				sched_yield();
				continue;
			}
			if (ret < 1 || (unsigned)ret > n - done) {
				p->errors++;
				return NULL;
			}
			done += (unsigned)ret;
		}
		p->submitted += n;
	}
	return NULL;
}

START_TEST(test_batch_runs_all)
{
	aq_pool *pool = th_pool(2, 64, 0, 0);
	struct producer p[2];
	pthread_t t[2];
	atomic_long counter;
	struct aq_pool_stats st;

	atomic_init(&counter, 0);
	for (int i = 0; i < 2; i++) {
		p[i] = (struct producer){ pool, &counter, 0, 0 };
		ck_assert_int_eq(pthread_create(&t[i], NULL, batch_producer,
						&p[i]),
				 0);
	}
	for (int i = 0; i < 2; i++) {
		pthread_join(t[i], NULL);
		ck_assert_int_eq(p[i].errors, 0);
	}
	ck_assert_int_eq(aq_pool_shutdown(pool, AQ_SHUTDOWN_DRAIN), 0);
	/* 1 + 2 + ... + 64, plus 1 + ... + 36, per producer. */
	ck_assert_int_eq(p[0].submitted, 64 * 65 / 2 + 36 * 37 / 2);
	ck_assert_int_eq(th_ldl(&counter), p[0].submitted + p[1].submitted);
	st = th_stats_of(pool);
	ck_assert_uint_eq(st.submitted, (uint64_t)th_ldl(&counter));
	ck_assert_uint_eq(st.succeeded, (uint64_t)th_ldl(&counter));
	aq_pool_destroy(pool);
}
END_TEST

/* One worker: a batch runs in array order, between the single submits
 * made before and after it. */
START_TEST(test_batch_order)
{
	struct aq_job jobs[100];
	struct held h;

	order_reset();
	held_setup(&h, 256, 0);
	ck_assert_int_eq(aq_submit(h.pool, order_job, (void *)0, NULL, NULL),
			 0);
	order_jobs(jobs, 100, 1);
	ck_assert_int_eq(aq_submit_batch(h.pool, jobs, 100, NULL, NULL), 100);
	ck_assert_int_eq(aq_submit(h.pool, order_job, (void *)101, NULL, NULL),
			 0);
	ck_assert_int_eq(aq_submit_batch(h.pool, jobs, 0, NULL, NULL), 0);
	held_release(&h);
	ck_assert(th_poll_int_ge(&order.n, 102));
	held_teardown(&h);
	ck_assert_int_eq(th_ld(&order.n), 102);
	for (int i = 0; i < 102; i++)
		ck_assert_int_eq(order.ids[i], i);
}
END_TEST

/* A ring with room for 16: a batch of 40 gets 16 in, the next none
 * (-EAGAIN), and the 24 + 40 turned away count as rejected. */
START_TEST(test_batch_full_partial)
{
	struct aq_job jobs[40];
	struct aq_pool_stats st;
	struct held h;

	order_reset();
	held_setup(&h, 16, 0);
	order_jobs(jobs, 40, 0);
	ck_assert_int_eq(aq_submit_batch(h.pool, jobs, 40, NULL, NULL), 16);
	ck_assert_int_eq(aq_submit_batch(h.pool, jobs + 16, 24, NULL, NULL),
			 -EAGAIN);
	st = th_stats_of(h.pool);
	ck_assert_uint_eq(st.rejected, 24 + 24);
	ck_assert_uint_eq(st.queued, 16);
	held_release(&h);
	ck_assert(th_poll_int_ge(&order.n, 16));
	held_teardown(&h);
	ck_assert_int_eq(th_ld(&order.n), 16);
	for (int i = 0; i < 16; i++)
		ck_assert_int_eq(order.ids[i], i);
}
END_TEST

/* AQ_JOB_BLOCK (_i 0) or AQ_POOL_BLOCK (_i 1): a batch 60 times the ring
 * waits for room as the worker frees it, and all of it runs, in order. */
START_TEST(test_batch_blocks_until_all_in)
{
	static struct aq_job jobs[960];
	static const struct aq_job_opts block = { .flags = AQ_JOB_BLOCK };
	aq_pool *pool = th_pool(1, 16, _i ? AQ_POOL_BLOCK : 0, 0);

	order_reset();
	order_jobs(jobs, 960, 0);
	ck_assert_int_eq(aq_submit_batch(pool, jobs, 960, _i ? NULL : &block,
					 NULL),
			 960);
	aq_pool_destroy(pool);
	ck_assert_int_eq(th_ld(&order.n), 960);
	for (int i = 0; i < 960; i++)
		ck_assert_int_eq(order.ids[i], i);
}
END_TEST

/* A blocking batch with a timeout bounds the whole call: it returns what
 * it got in (16) when the time is up, and -ETIMEDOUT when that was none. */
START_TEST(test_batch_block_timeout)
{
	const struct aq_job_opts block = { .flags = AQ_JOB_BLOCK,
					   .timeout_ns = 30 * MS };
	struct aq_job jobs[40];
	struct held h;
	int64_t start, waited;

	order_reset();
	held_setup(&h, 16, 0);
	order_jobs(jobs, 40, 0);
	start = th_now_ns();
	ck_assert_int_eq(aq_submit_batch(h.pool, jobs, 40, &block, NULL), 16);
	waited = th_now_ns() - start;
	ck_assert_msg(waited >= 28 * MS, "gave up after %lld ns",
		      (long long)waited);
	ck_assert_int_eq(aq_submit_batch(h.pool, jobs + 16, 24, &block, NULL),
			 -ETIMEDOUT);
	held_release(&h);
	held_teardown(&h);
	ck_assert_int_eq(th_ld(&order.n), 16);
}
END_TEST

/* Inside a job of its own pool a batch never sleeps on the full ring (its
 * worker could be the one to empty it): it returns what fitted. */
struct inner {
	aq_pool *pool;
	int ret;
};

static int inner_batch_job(void *arg, void **result)
{
	static const struct aq_job_opts block = { .flags = AQ_JOB_BLOCK };
	struct inner *in = arg;
	struct aq_job jobs[40];

	(void)result;
	order_jobs(jobs, 40, 0);
	in->ret = aq_submit_batch(in->pool, jobs, 40, &block, NULL);
	return 0;
}

START_TEST(test_batch_inside_job)
{
	struct inner in;
	aq_future *fut;

	order_reset();
	in.pool = th_pool(1, 16, AQ_POOL_BLOCK, 0);
	in.ret = 0;
	ck_assert_int_eq(aq_submit(in.pool, inner_batch_job, &in, NULL, &fut),
			 0);
	ck_assert_int_eq(aq_future_get(fut, NULL, -1), 0);
	aq_future_release(fut);
	ck_assert_int_eq(in.ret, 16);
	aq_pool_destroy(in.pool);
	ck_assert_int_eq(th_ld(&order.n), 16);
}
END_TEST

/* ---- batches that get records --------------------------------------------- */

/* A future per job, each with its own job's result. */
START_TEST(test_batch_futures)
{
	struct aq_job jobs[100];
	aq_future *futs[100];
	aq_pool *pool = th_pool(2, 256, 0, 0);

	order_reset();
	order_jobs(jobs, 100, 0);
	ck_assert_int_eq(aq_submit_batch(pool, jobs, 100, NULL, futs), 100);
	for (int i = 0; i < 100; i++) {
		void *result = NULL;

		ck_assert_ptr_nonnull(futs[i]);
		ck_assert_int_eq(aq_future_get(futs[i], &result, -1), 0);
		ck_assert_ptr_eq(result, (void *)(intptr_t)(i * 3));
		aq_future_release(futs[i]);
	}
	aq_pool_destroy(pool);
}
END_TEST

/* Futures for what fitted, NULL for the rest; arg_destroy only for the
 * accepted jobs. */
static atomic_int destroyed;

static void count_destroyed(void *arg)
{
	(void)arg;
	atomic_fetch_add(&destroyed, 1);
}

START_TEST(test_batch_futures_partial)
{
	const struct aq_job_opts opts = { .arg_destroy = count_destroyed };
	struct aq_job jobs[40];
	aq_future *futs[40];
	struct held h;

	order_reset();
	atomic_store(&destroyed, 0);
	held_setup(&h, 16, 0);
	order_jobs(jobs, 40, 0);
	ck_assert_int_eq(aq_submit_batch(h.pool, jobs, 40, &opts, futs), 16);
	for (int i = 0; i < 40; i++)
		ck_assert_msg((futs[i] != NULL) == (i < 16),
			      "futs[%d] is %p", i, (void *)futs[i]);
	held_release(&h);
	for (int i = 0; i < 16; i++) {
		ck_assert_int_eq(aq_future_get(futs[i], NULL, -1), 0);
		aq_future_release(futs[i]);
	}
	held_teardown(&h);
	ck_assert_int_eq(th_ld(&destroyed), 16);
	for (int i = 0; i < 16; i++)
		ck_assert_int_eq(order.ids[i], i);
}
END_TEST

/*
 * Futures and no options (the short path aq_submit() also takes): what
 * fits is queued in order, the rest refused with NULL futures and counted
 * as rejected, one each.
 */
START_TEST(test_batch_plain_futures_partial)
{
	struct aq_job jobs[40];
	aq_future *futs[40];
	struct aq_pool_stats st;
	struct held h;

	order_reset();
	held_setup(&h, 16, 0);
	order_jobs(jobs, 40, 0);
	ck_assert_int_eq(aq_submit_batch(h.pool, jobs, 40, NULL, futs), 16);
	for (int i = 0; i < 40; i++)
		ck_assert_msg((futs[i] != NULL) == (i < 16),
			      "futs[%d] is %p", i, (void *)futs[i]);
	st = th_stats_of(h.pool);
	ck_assert_uint_eq(st.rejected, 24);
	held_release(&h);
	for (int i = 0; i < 16; i++) {
		ck_assert_int_eq(aq_future_get(futs[i], NULL, -1), 0);
		aq_future_release(futs[i]);
	}
	st = th_stats_of(h.pool);
	ck_assert_uint_eq(st.submitted, 17); /* and the gate job */
	ck_assert_uint_eq(st.succeeded, 17);
	held_teardown(&h);
	for (int i = 0; i < 16; i++)
		ck_assert_int_eq(order.ids[i], i);
}
END_TEST

/* With records, a blocking timeout is also one bound for the batch. */
START_TEST(test_batch_futures_timeout)
{
	const struct aq_job_opts block = { .flags = AQ_JOB_BLOCK,
					   .timeout_ns = 30 * MS };
	struct aq_job jobs[40];
	aq_future *futs[40];
	struct held h;
	int64_t start, waited;

	held_setup(&h, 16, 0);
	order_jobs(jobs, 40, 0);
	start = th_now_ns();
	ck_assert_int_eq(aq_submit_batch(h.pool, jobs, 40, &block, futs), 16);
	waited = th_now_ns() - start;
	/* One timeout for all 24 that waited, not one each (720 ms). */
	ck_assert_msg(waited >= 28 * MS && waited < 700 * MS,
		      "returned after %lld ns", (long long)waited);
	ck_assert_int_eq(aq_submit_batch(h.pool, jobs, 1, &block, futs + 16),
			 -ETIMEDOUT);
	ck_assert_ptr_null(futs[16]);
	held_release(&h);
	for (int i = 0; i < 16; i++) {
		ck_assert_int_eq(aq_future_get(futs[i], NULL, -1), 0);
		aq_future_release(futs[i]);
	}
	held_teardown(&h);
}
END_TEST

/* A pool that records every job (here: a scheduler) takes a batch
 * without futures through records too; all of it runs, by priority. */
START_TEST(test_batch_scheduled_pool)
{
	struct aq_pool_config cfg = { .workers = 1,
				      .sched = aq_sched_priority() };
	const struct aq_job_opts urgent = { .priority = 10 };
	struct aq_job jobs[8];
	struct th_gate gate;
	aq_future *gate_fut;
	aq_pool *pool;

	order_reset();
	ck_assert_int_eq(aq_pool_create(&pool, &cfg), 0);
	th_gate_init(&gate);
	ck_assert_int_eq(aq_submit(pool, th_gate_job, &gate, NULL, &gate_fut),
			 0);
	ck_assert(th_gate_wait_entered(&gate, 1));
	order_jobs(jobs, 8, 0);
	ck_assert_int_eq(aq_submit_batch(pool, jobs, 4, NULL, NULL), 4);
	ck_assert_int_eq(aq_submit_batch(pool, jobs + 4, 4, &urgent, NULL), 4);
	th_gate_open(&gate);
	ck_assert_int_eq(aq_future_get(gate_fut, NULL, -1), 0);
	aq_future_release(gate_fut);
	aq_pool_destroy(pool);
	th_gate_destroy(&gate);
	ck_assert_int_eq(th_ld(&order.n), 8);
	for (int i = 0; i < 8; i++)
		ck_assert_int_eq(order.ids[i], i < 4 ? i + 4 : i - 4);
}
END_TEST

/* After shutdown nothing is accepted, and every job counts as rejected. */
START_TEST(test_batch_after_shutdown)
{
	struct aq_job jobs[5];
	aq_future *futs[5];
	aq_pool *pool = th_pool(1, 16, 0, 0);

	order_jobs(jobs, 5, 0);
	ck_assert_int_eq(aq_pool_shutdown(pool, AQ_SHUTDOWN_DRAIN), 0);
	ck_assert_int_eq(aq_submit_batch(pool, jobs, 5, NULL, NULL),
			 -ESHUTDOWN);
	ck_assert_int_eq(aq_submit_batch(pool, jobs, 5, NULL, futs),
			 -ESHUTDOWN);
	for (int i = 0; i < 5; i++)
		ck_assert_ptr_null(futs[i]);
	ck_assert_uint_eq(th_stats_of(pool).rejected, 10);
	aq_pool_destroy(pool);
}
END_TEST

Suite *submit_suite(void)
{
	Suite *s = suite_create("submit");
	TCase *ff = tcase_create("ff");
	TCase *rec = tcase_create("records");

	tcase_set_timeout(ff, TH_TIMEOUT);
	tcase_add_test(ff, test_batch_runs_all);
	tcase_add_test(ff, test_batch_order);
	tcase_add_test(ff, test_batch_full_partial);
	tcase_add_loop_test(ff, test_batch_blocks_until_all_in, 0, 2);
	tcase_add_test(ff, test_batch_block_timeout);
	tcase_add_test(ff, test_batch_inside_job);
	suite_add_tcase(s, ff);

	tcase_set_timeout(rec, TH_TIMEOUT);
	tcase_add_test(rec, test_batch_futures);
	tcase_add_test(rec, test_batch_futures_partial);
	tcase_add_test(rec, test_batch_plain_futures_partial);
	tcase_add_test(rec, test_batch_futures_timeout);
	tcase_add_test(rec, test_batch_scheduled_pool);
	tcase_add_test(rec, test_batch_after_shutdown);
	suite_add_tcase(s, rec);
	return s;
}
