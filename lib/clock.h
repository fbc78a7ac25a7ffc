/* SPDX-License-Identifier: MIT */
/*
 * clock.h - time in nanoseconds: the monotonic clock every wait is
 * measured against, the API's timeout convention, and saturating sums.
 */
#ifndef AQ__CLOCK_H
#define AQ__CLOCK_H

#include <stdint.h>
#include <time.h>

#define AQ__NS_PER_S INT64_C(1000000000)

/* Nanoseconds on CLOCK_MONOTONIC. */
static inline int64_t aq__now_ns(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (int64_t)ts.tv_sec * AQ__NS_PER_S + ts.tv_nsec;
}

/* a + b for a time and a non-negative duration, saturating at INT64_MAX
 * rather than wrapping into the past. */
static inline int64_t aq__time_add(int64_t a, int64_t b)
{
	return b > 0 && a > INT64_MAX - b ? INT64_MAX : a + b;
}

/*
 * to - from for two times on one clock, saturating at INT64_MAX and
 * INT64_MIN: a clock may read anything, below zero included, so the
 * distance between two of its readings can exceed the type.
 */
static inline int64_t aq__time_diff(int64_t to, int64_t from)
{
	if (from < 0 && to > INT64_MAX + from)
		return INT64_MAX;
	if (from > 0 && to < INT64_MIN + from)
		return INT64_MIN;
	return to - from;
}

/*
 * A deadline from a relative timeout in the API's convention: negative
 * means forever (returns -1), otherwise now + timeout_ns, saturated:
 * INT64_MAX is then as good as no deadline at every clock conversion.
 */
static inline int64_t aq__deadline(int64_t timeout_ns)
{
	return timeout_ns < 0 ? -1 : aq__time_add(aq__now_ns(), timeout_ns);
}

/* A time in nanoseconds as the struct timespec of pthread and futex. */
static inline struct timespec aq__timespec(int64_t ns)
{
	return (struct timespec){ .tv_sec = ns / AQ__NS_PER_S,
				  .tv_nsec = ns % AQ__NS_PER_S };
}

#endif
