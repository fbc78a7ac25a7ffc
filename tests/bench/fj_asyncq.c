/* SPDX-License-Identifier: MIT */
/*
 * fj_asyncq.c - the forkjoin workload on libasyncq (forkjoin.sh runs it):
 * recursive fib and a parallel merge sort, each fork submitting its left
 * half with a future, running its right half in place, then waiting with
 * aq_future_get(). "seq" runs the same code as plain calls.
 *
 *   fj_asyncq fib|sort|seqfib|seqsort SIZE CUTOFF WORKERS
 *
 * prints "<seconds> <checksum>"; a failed submit or wait exits 1.
 */
#include <asyncq.h>
#include <stdio.h>
#include <stdlib.h>

#include "fj_common.h"

static aq_pool *pool;

struct fib_task {
	int n, cutoff;
	long result;
};

static int fib_job(void *arg, void **out)
{
	struct fib_task *t = arg;
	struct fib_task left, right;
	aq_future *fut;

	(void)out;
	if (t->n < t->cutoff) {
		t->result = fj_fib_seq(t->n);
		return 0;
	}
	left = (struct fib_task){ t->n - 1, t->cutoff, 0 };
	right = (struct fib_task){ t->n - 2, t->cutoff, 0 };
	if (aq_submit(pool, fib_job, &left, NULL, &fut) != 0)
		exit(1);
	fib_job(&right, NULL);
	if (aq_future_get(fut, NULL, -1) != 0)
		exit(1);
	aq_future_release(fut);
	t->result = left.result + right.result;
	return 0;
}

struct sort_task {
	int *a, *tmp;
	size_t n, cutoff;
};

static int sort_job(void *arg, void **out)
{
	struct sort_task *t = arg;
	size_t half = t->n / 2;
	struct sort_task left, right;
	aq_future *fut;

	(void)out;
	if (t->n <= t->cutoff) {
		fj_sort_seq(t->a, t->tmp, t->n);
		return 0;
	}
	left = (struct sort_task){ t->a, t->tmp, half, t->cutoff };
	right = (struct sort_task){ t->a + half, t->tmp + half, t->n - half,
				    t->cutoff };
	if (aq_submit(pool, sort_job, &left, NULL, &fut) != 0)
		exit(1);
	sort_job(&right, NULL);
	if (aq_future_get(fut, NULL, -1) != 0)
		exit(1);
	aq_future_release(fut);
	fj_merge(t->a, t->tmp, half, t->n);
	return 0;
}

int main(int argc, char **argv)
{
	struct fj_args args;
	struct aq_pool_config cfg = { 0 };
	aq_future *fut;
	double t0, t1;
	long sum;

	if (fj_parse(argc, argv, &args) != 0)
		return 2;
	if (args.seq) {
		double secs = fj_time_seq(&args, &sum);

		printf("%.6f %ld\n", secs, sum);
		return 0;
	}
	cfg.workers = args.workers;
	if (aq_pool_create(&pool, &cfg) != 0)
		return 1;
	if (args.fib) {
		struct fib_task root = { args.size, args.cutoff, 0 };

		t0 = fj_now();
		if (aq_submit(pool, fib_job, &root, NULL, &fut) != 0 ||
		    aq_future_get(fut, NULL, -1) != 0)
			return 1;
		t1 = fj_now();
		sum = root.result;
	} else {
		/* The input is made before the clock starts and checked after
		 * it stops, as fj_omp.c and fj_tbb.cpp do. */
		int *a = fj_sort_input(args.size), *tmp = malloc(
			sizeof(int) << args.size);
		struct sort_task root = { a, tmp, (size_t)1 << args.size,
					  (size_t)args.cutoff };

		if (!tmp)
			return 1;
		t0 = fj_now();
		if (aq_submit(pool, sort_job, &root, NULL, &fut) != 0 ||
		    aq_future_get(fut, NULL, -1) != 0)
			return 1;
		t1 = fj_now();
		sum = fj_sort_check(a, args.size);
		free(a);
		free(tmp);
	}
	aq_future_release(fut);
	aq_pool_destroy(pool);
	printf("%.6f %ld\n", t1 - t0, sum);
	return 0;
}
