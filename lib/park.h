/* SPDX-License-Identifier: MIT */
/*
 * park.h - put a thread to sleep on a 32-bit word and wake it (see park.c):
 * the eventcount every wait/wake handshake of the library goes through,
 * and a one-word mutex.
 */
#ifndef AQ__PARK_H
#define AQ__PARK_H

#include <stdatomic.h>
#include <stdbool.h>
#include <stdint.h>

#include "clock.h"
#include "compat.h"
#include "fault.h"

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
int aq__park_wait_any(_Atomic uint32_t *const *words, const uint32_t *expected,
		      unsigned n, int64_t deadline_ns);

/* Wake up to n threads sleeping on word (INT32_MAX for all). */
void aq__park_wake(_Atomic uint32_t *word, int n);

/*
 * The waiting policy before a sleep, for a waiter whose condition may come
 * true soon (a thread on a future, an idle worker before it parks). Each
 * call waits a little before the caller looks again: the first `spins`
 * calls pause once, which catches what is nanoseconds away without a
 * system call; the next `yields` calls each sched_yield(), which keeps the
 * waiter awake a little longer but lends its core to any runnable thread,
 * such as the one it waits for when threads outnumber cores (then a spin
 * would only delay it); then the call returns false and the caller
 * sleeps. The spin is short because a pause costs from 10 to 140 cycles
 * depending on the CPU; a yield's cost does not depend on it. A yield may
 * take as long as another thread's time slice: a waiter with a deadline
 * looks at the clock between yields.
 *
 *   struct aq__backoff b = AQ__BACKOFF_INIT(spins, yields, site);
 *   while (!condition)
 *       if (!aq__backoff(&b))
 *           sleep on the eventcount
 */
struct aq__backoff {
	unsigned waits;           /* calls that waited so far */
	unsigned spins;           /* calls that spin: the first ones */
	unsigned yields;          /* calls that yield: the next ones */
	enum aq__pause_site site; /* where a test may hold a yield */
};

/* Has b yielded (was its last wait a yield, not a spin)? */
static inline bool aq__backoff_yielded(const struct aq__backoff *b)
{
	return b->waits > b->spins;
}

#define AQ__BACKOFF_INIT(spins, yields, site)                                  \
	{                                                                      \
		0, (spins), (yields), (site)                                   \
	}

/*
 * The numbers of an idle worker: awake a few microseconds in all (the spin
 * 0.5 to 3 us depending on the CPU, the yields about as long when nothing
 * else wants the core), then asleep. A thread waiting on a future only
 * spins AQ__BACKOFF_SPINS before it sleeps, and never yields: on a machine
 * busy with other processes each yield gives away a time slice, while a
 * sleeper that is woken runs at once (wait.c).
 */
#define AQ__BACKOFF_SPINS 64
#define AQ__BACKOFF_YIELDS 16

/* The yield of aq__backoff() (park.c). */
void aq__park_yield(enum aq__pause_site site);

/* Wait once, as above; false, without waiting, when the caller should
 * sleep. */
static inline bool aq__backoff(struct aq__backoff *b)
{
	if (b->waits < b->spins) {
		aq__cpu_relax();
	} else if (b->waits < b->spins + b->yields) {
		aq__park_yield(b->site);
	} else {
		return false;
	}
	b->waits++;
	return true;
}

/*
 * An asymmetric fence, for a Dekker handshake with a frequent side and a
 * rare one (a deque push and a worker going to sleep): when the system
 * has it (Linux membarrier(2), private expedited), the frequent side
 * needs only a compiler barrier between its store and its load, because
 * the rare side's aq__park_fence_heavy() makes every running thread of
 * the process pass a full barrier: either the store before that point is
 * visible to the rare side's loads after it, or the load after it sees
 * the rare side's store before it.
 *
 * aq__park_asym_ready(): may the frequent side use the compiler barrier?
 * Cheap: it only reads the kept answer (false until registered).
 * aq__park_asym_register(): ask the kernel and register the process, the
 * first time (slow: milliseconds; call it where a thread is idle anyway);
 * then aq__park_asym_ready()'s answer. aq__park_fence_heavy(): the rare
 * side's half; a full fence when the system has no membarrier. 0, or
 * -ENOSYS when it could not run the barrier although aq__park_asym_ready()
 * said yes (the process forked and could not register again): then the
 * rare side must not rely on the handshake (sleep only briefly).
 */
bool aq__park_asym_ready(void);
bool aq__park_asym_register(void);
int aq__park_fence_heavy(void);

/*
 * The eventcount: the one wait/wake protocol of the library. A waiter
 * sleeps until a condition holds; a notifier makes the condition true,
 * then changes a 32-bit word (a sequence number it bumps, or a state word
 * that is itself the condition), and makes the wake system call only if
 * a count of waiters says someone may sleep.
 *
 *   waiter                                 notifier
 *   key = aq__ec_prepare(word, waiters)    make the condition true
 *   if (!condition)                        change *word
 *       aq__ec_commit(word, key, until)    if (*waiters) wake(word)
 *   aq__ec_leave(waiters)
 *
 * Why no wake-up is lost: the waiter's increment of waiters and its
 * re-check of the condition, and the notifier's update of the condition
 * and its read of waiters, are all seq_cst, so (Dekker) one side sees the
 * other: either the waiter sees the condition and does not sleep, or the
 * notifier sees the waiter and changes the word and wakes it. The key is
 * read before the waiter counts itself in, so a change of the word made
 * by such a notifier comes after it, and the commit, which compares the
 * word with the key atomically with going to sleep, returns at once.
 * The waiter count may share its word with other bits (the pool's idle
 * and pop_attn words do): only the increment and the read matter.
 */

/* Waiter, first: read the key ... */
static inline uint32_t aq__ec_key(_Atomic uint32_t *word)
{
	/* Acquire: pairs with the notifier's release change of the word, so
	 * a waiter that wakes sees what the notifier did before it. */
	return atomic_load_explicit(word, memory_order_acquire);
}

/* ... then count ourselves in (a waiter may do its own bookkeeping in
 * between, as a parking worker does). */
static inline void aq__ec_enter(_Atomic uint32_t *waiters)
{
	atomic_fetch_add(waiters, 1); /* seq_cst: the Dekker store half */
}

/* Both first steps at once: the key. */
static inline uint32_t aq__ec_prepare(_Atomic uint32_t *word,
				      _Atomic uint32_t *waiters)
{
	uint32_t key = aq__ec_key(word);

	aq__ec_enter(waiters);
	return key;
}

/* Waiter, once the condition was re-checked (seq_cst) and found false:
 * sleep unless the word moved from key. 0 or -ETIMEDOUT, as
 * aq__park_wait(); the caller re-checks in either case. */
static inline int aq__ec_commit(_Atomic uint32_t *word, uint32_t key,
				int64_t deadline_ns)
{
	return aq__park_wait(word, key, deadline_ns);
}

/* Waiter, last, whether it slept or not: count ourselves out. */
static inline void aq__ec_leave(_Atomic uint32_t *waiters)
{
	atomic_fetch_sub(waiters, 1);
}

/*
 * Notifier of a condition word (the word is the condition and its new
 * value is already stored, seq_cst): wake up to n sleepers if any waiter
 * is counted in. The seq_cst load is the Dekker read half.
 */
static inline void aq__ec_notify(_Atomic uint32_t *word,
				 _Atomic uint32_t *waiters, int n)
{
	if (atomic_load(waiters))
		aq__park_wake(word, n);
}

/*
 * Notifier of a sequence word, once it has seen (seq_cst) that a waiter
 * is counted in: bump the word so that no waiter still holding the old
 * key can fall asleep, and wake up to n of them.
 */
static inline void aq__ec_signal(_Atomic uint32_t *word, int n)
{
	/* Release: pairs with the acquire load in aq__ec_prepare(). */
	atomic_fetch_add_explicit(word, 1, memory_order_release);
	aq__park_wake(word, n);
}

/*
 * A small mutex on one 32-bit word, for short critical sections (Drepper,
 * "Futexes Are Tricky", mutex 3): 0 free, 1 held, 2 held and someone may
 * sleep. Free of contention, lock and unlock are one atomic instruction
 * each; contended, a locker spins briefly, then sleeps on the word.
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
	if (atomic_fetch_sub_explicit(&l->word, 1, memory_order_release) != 1) {
		atomic_store_explicit(&l->word, 0, memory_order_release);
		aq__park_wake(&l->word, 1);
	}
}

#endif
