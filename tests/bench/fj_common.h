/* SPDX-License-Identifier: MIT */
/*
 * fj_common.h - what the forkjoin contenders (fj_*.c, fj_tbb.cpp) share:
 * the arguments, the sequential kernels, the input and its check, so that
 * they differ only in how they fork and join. C and C++; the kernels
 * themselves are in fj_kernels.c.
 */
#ifndef FJ_COMMON_H
#define FJ_COMMON_H

#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

struct fj_args {
	int fib;     /* fib, else merge sort */
	int seq;     /* the sequential code, no library */
	int size;    /* fib: n; sort: log2 of the element count */
	int cutoff;  /* fib: n below which it recurses sequentially; sort:
			elements at or below which it sorts sequentially */
	int workers; /* threads of the library */
};

static inline int fj_parse(int argc, char **argv, struct fj_args *a)
{
	if (argc != 5) {
		fprintf(stderr, "usage: %s fib|sort|seqfib|seqsort SIZE "
				"CUTOFF WORKERS\n",
			argv[0]);
		return -1;
	}
	a->seq = strncmp(argv[1], "seq", 3) == 0;
	a->fib = strcmp(argv[1] + (a->seq ? 3 : 0), "fib") == 0;
	a->size = atoi(argv[2]);
	a->cutoff = atoi(argv[3]);
	a->workers = atoi(argv[4]);
	return a->size > 0 && a->size < 31 + 20 * a->fib && a->workers > 0
		       ? 0
		       : -1;
}

static inline double fj_now(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec + (double)ts.tv_nsec * 1e-9;
}

/*
 * The sequential kernels, in fj_kernels.c: one object linked into every
 * contender, so that all of them run the very same machine code at the
 * leaves (compiled into each program, the copies differed by up to 20%
 * in speed, which is the compiler's doing, not the library's).
 */
#ifdef __cplusplus
extern "C" {
#endif
long fj_fib_seq(int n);
/* Merge a[0, half) and a[half, n) through tmp back into a. */
void fj_merge(int *a, int *tmp, size_t half, size_t n);
void fj_sort_seq(int *a, int *tmp, size_t n);
#ifdef __cplusplus
}
#endif

/* 2^log2n pseudo-random ints, the same every run. */
static inline int *fj_sort_input(int log2n)
{
	size_t n = (size_t)1 << log2n;
	int *a = (int *)malloc(n * sizeof(int));
	uint64_t x = 88172645463325252ULL;

	if (!a)
		exit(1);
	for (size_t i = 0; i < n; i++) {
		x ^= x << 13;
		x ^= x >> 7;
		x ^= x << 17;
		a[i] = (int)(x >> 33);
	}
	return a;
}

/* Sorted? Then a checksum of the order; -1 if not sorted. */
static inline long fj_sort_check(const int *a, int log2n)
{
	size_t n = (size_t)1 << log2n;
	long sum = 0;

	for (size_t i = 0; i < n; i++) {
		if (i && a[i - 1] > a[i])
			return -1;
		sum += (long)(a[i] & 0xff) * (long)(i & 0xf);
	}
	return sum;
}

/* The sequential code, timed as the contenders time theirs: the sort's
 * input is made before the clock starts and checked after it stops.
 * Seconds; the checksum in *sum. */
static inline double fj_time_seq(const struct fj_args *args, long *sum)
{
	int *a, *tmp;
	double t0, t1;

	if (args->fib) {
		t0 = fj_now();
		*sum = fj_fib_seq(args->size);
		return fj_now() - t0;
	}
	a = fj_sort_input(args->size);
	tmp = (int *)malloc(sizeof(int) << args->size);
	if (!tmp)
		exit(1);
	t0 = fj_now();
	fj_sort_seq(a, tmp, (size_t)1 << args->size);
	t1 = fj_now();
	*sum = fj_sort_check(a, args->size);
	free(a);
	free(tmp);
	return t1 - t0;
}

#endif
