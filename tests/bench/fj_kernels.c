/* SPDX-License-Identifier: MIT */
/*
 * fj_kernels.c - the sequential code of the forkjoin workload: fib, and
 * merge sort with its merge. Compiled once and linked into every
 * contender (fj_asyncq, fj_omp, fj_tbb), so that their leaves are the
 * same instructions and only the forks and joins differ.
 */
#include <string.h>

#include "fj_common.h"

long fj_fib_seq(int n)
{
	return n < 2 ? n : fj_fib_seq(n - 1) + fj_fib_seq(n - 2);
}

void fj_merge(int *a, int *tmp, size_t half, size_t n)
{
	size_t i = 0, j = half, k = 0;

	while (i < half && j < n)
		tmp[k++] = a[j] < a[i] ? a[j++] : a[i++];
	while (i < half)
		tmp[k++] = a[i++];
	while (j < n)
		tmp[k++] = a[j++];
	memcpy(a, tmp, n * sizeof(*a));
}

void fj_sort_seq(int *a, int *tmp, size_t n)
{
	size_t half = n / 2;

	if (n < 2)
		return;
	fj_sort_seq(a, tmp, half);
	fj_sort_seq(a + half, tmp + half, n - half);
	fj_merge(a, tmp, half, n);
}
