/* SPDX-License-Identifier: MIT */
/*
 * fj_omp.c - the forkjoin workload on OpenMP tasks (gcc -fopenmp), for
 * forkjoin.sh: the same forks as fj_asyncq.c, the left half a task, the
 * right half in place, then taskwait.
 *
 *   fj_omp fib|sort SIZE CUTOFF WORKERS
 */
#include <omp.h>
#include <stdio.h>
#include <stdlib.h>

#include "fj_common.h"

static long fib_task(int n, int cutoff)
{
	long left, right;

	if (n < cutoff)
		return fj_fib_seq(n);
#pragma omp task shared(left)
	left = fib_task(n - 1, cutoff);
	right = fib_task(n - 2, cutoff);
#pragma omp taskwait
	return left + right;
}

static void sort_task(int *a, int *tmp, size_t n, size_t cutoff)
{
	size_t half = n / 2;

	if (n <= cutoff) {
		fj_sort_seq(a, tmp, n);
		return;
	}
#pragma omp task
	sort_task(a, tmp, half, cutoff);
	sort_task(a + half, tmp + half, n - half, cutoff);
#pragma omp taskwait
	fj_merge(a, tmp, half, n);
}

int main(int argc, char **argv)
{
	struct fj_args args;
	double t0, t1;
	long sum = 0;
	int *a = NULL, *tmp = NULL;

	if (fj_parse(argc, argv, &args) != 0 || args.seq)
		return 2;
	omp_set_num_threads(args.workers);
	if (!args.fib) {
		a = fj_sort_input(args.size);
		tmp = malloc(sizeof(int) << args.size);
		if (!tmp)
			return 1;
	}
	/* The team is started before the clock, as the pools are. */
#pragma omp parallel
	{
#pragma omp single
		{
			t0 = fj_now();
			if (args.fib)
				sum = fib_task(args.size, args.cutoff);
			else
				sort_task(a, tmp, (size_t)1 << args.size,
					  (size_t)args.cutoff);
			t1 = fj_now();
		}
	}
	if (!args.fib) {
		sum = fj_sort_check(a, args.size);
		free(a);
		free(tmp);
	}
	printf("%.6f %ld\n", t1 - t0, sum);
	return 0;
}
