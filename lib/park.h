/* SPDX-License-Identifier: MIT */
/*
 * park.h - put a thread to sleep on a 32-bit word and wake it (see park.c),
 * and the monotonic clock every wait is measured against.
 */
#ifndef AQ_PARK_H
#define AQ_PARK_H

#include <stdatomic.h>
#include <stdint.h>

/* Nanoseconds on CLOCK_MONOTONIC. */
int64_t aq__now_ns(void);

/*
 * A deadline from a relative timeout in the API's convention: negative
 * means forever (returns -1), otherwise now + timeout_ns.
 */
int64_t aq__deadline(int64_t timeout_ns);

/*
 * Sleep while *word == expected, until woken or until deadline_ns on
 * CLOCK_MONOTONIC (negative: no deadline). Returns 0 when woken, when the
 * word had already changed, or spuriously; -ETIMEDOUT once the deadline
 * has passed. Callers re-check their condition in a loop.
 */
int aq__park_wait(_Atomic uint32_t *word, uint32_t expected,
		  int64_t deadline_ns);

/* The most words aq__park_wait_any() sleeps on. */
#define AQ__PARK_ANY_MAX 128

/*
 * Sleep while *words[i] == expected[i] for every i < n, until one of them
 * is woken, or until deadline_ns as above. Returns as aq__park_wait(), or
 * -ENOSYS when this system cannot sleep on several words at once (not
 * Linux, a kernel before 5.16, or n > AQ__PARK_ANY_MAX): the caller then
 * waits some other way.
 */
int aq__park_wait_any(_Atomic uint32_t *const *words,
		      const uint32_t *expected, unsigned n,
		      int64_t deadline_ns);

/* Wake up to n threads sleeping on word (INT32_MAX for all). */
void aq__park_wake(_Atomic uint32_t *word, int n);

/*
 * A small mutex on one 32-bit word, for short critical sections (Drepper,
 * "Futexes Are Tricky", mutex 3): 0 free, 1 held, 2 held and someone may
 * sleep. Free of contention, lock and unlock are one atomic instruction
 * each, against some 55 instructions for a pthread_mutex_lock/unlock pair
 * (callgrind); contended, a locker spins briefly, then sleeps on the word.
 * Not recursive, no owner checks, no priority inheritance.
 */
struct aq__lock {
	_Atomic uint32_t word;
};

static inline void aq__lock_init(struct aq__lock *l)
{
	atomic_init(&l->word, 0);
}

/* The contended part of aq__lock() (park.c). */
void aq__lock_slow(struct aq__lock *l);

static inline void aq__lock(struct aq__lock *l)
{
	uint32_t free_word = 0;

	/* Acquire: the critical section sees what the last holder did. */
	if (!atomic_compare_exchange_strong_explicit(&l->word, &free_word, 1,
						     memory_order_acquire,
						     memory_order_relaxed))
		aq__lock_slow(l);
}

static inline void aq__unlock(struct aq__lock *l)
{
	/* Release: the next holder sees our critical section. 2 means a
	 * locker may sleep: free the word and wake one. */
	if (atomic_fetch_sub_explicit(&l->word, 1, memory_order_release) !=
	    1) {
		atomic_store_explicit(&l->word, 0, memory_order_release);
		aq__park_wake(&l->word, 1);
	}
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


#endif
