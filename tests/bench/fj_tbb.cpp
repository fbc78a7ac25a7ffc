// SPDX-License-Identifier: MIT
/*
 * fj_tbb.cpp - the forkjoin workload on oneTBB's task_group (Debian
 * libtbb-dev), for forkjoin.sh: the same forks as fj_asyncq.c, the left
 * half run by the group, the right half in place, then wait().
 *
 *   fj_tbb fib|sort SIZE CUTOFF WORKERS
 */
#include <oneapi/tbb/global_control.h>
#include <oneapi/tbb/task_arena.h>
#include <oneapi/tbb/task_group.h>

#include "fj_common.h"

static long fib_task(int n, int cutoff)
{
	long left, right;
	tbb::task_group g;

	if (n < cutoff)
		return fj_fib_seq(n);
	g.run([&] { left = fib_task(n - 1, cutoff); });
	right = fib_task(n - 2, cutoff);
	g.wait();
	return left + right;
}

static void sort_task(int *a, int *tmp, size_t n, size_t cutoff)
{
	size_t half = n / 2;
	tbb::task_group g;

	if (n <= cutoff) {
		fj_sort_seq(a, tmp, n);
		return;
	}
	g.run([&] { sort_task(a, tmp, half, cutoff); });
	sort_task(a + half, tmp + half, n - half, cutoff);
	g.wait();
	fj_merge(a, tmp, half, n);
}

int main(int argc, char **argv)
{
	struct fj_args args;
	double t0 = 0, t1 = 0;
	long sum = 0;
	int *a = nullptr, *tmp = nullptr;

	if (fj_parse(argc, argv, &args) != 0 || args.seq)
		return 2;
	tbb::global_control limit(tbb::global_control::max_allowed_parallelism,
				  (size_t)args.workers);
	tbb::task_arena arena(args.workers);
	if (!args.fib) {
		a = fj_sort_input(args.size);
		tmp = (int *)malloc(sizeof(int) << args.size);
		if (!tmp)
			return 1;
	}
	arena.initialize();
	arena.execute([&] {
		t0 = fj_now();
		if (args.fib)
			sum = fib_task(args.size, args.cutoff);
		else
			sort_task(a, tmp, (size_t)1 << args.size,
				  (size_t)args.cutoff);
		t1 = fj_now();
	});
	if (!args.fib) {
		sum = fj_sort_check(a, args.size);
		free(a);
		free(tmp);
	}
	printf("%.6f %ld\n", t1 - t0, sum);
	return 0;
}
