/* SPDX-License-Identifier: MIT */
/*
 * park.c - sleeping and waking on a 32-bit word: a private futex on Linux,
 * and elsewhere a small table of mutex/condition-variable buckets hashed by
 * address, which gives the same "sleep while the word still equals what I
 * saw" contract. Every blocking wait in the library goes through here,
 * through the eventcount of park.h (worker parking, full-ring waits,
 * future waits) or the one-word mutex below, so they share one tested
 * path and one statement of their memory orders. Also here: the heavy
 * half of the asymmetric fence (park.h), membarrier(2) on Linux.
 */
#include <errno.h>
#include <stdbool.h>
#include <limits.h>
#include <sched.h>
#include <time.h>

#include "compat.h"
#include "fault.h"
#include "park.h"

/* Spins of a contended aq__lock() before it sleeps. */
#define LOCK_SPINS 100

void aq__lock_slow(struct aq__lock *l)
{
	uint32_t c;

	for (int i = 0; i < LOCK_SPINS; i++) {
		aq__cpu_relax();
		c = 0;
		/* Relaxed peek, then the acquire CAS as in aq__lock(). */
		if (atomic_load_explicit(&l->word, memory_order_relaxed) == 0 &&
		    atomic_compare_exchange_weak_explicit(&l->word, &c, 1,
							  memory_order_acquire,
							  memory_order_relaxed))
			return;
	}
	/* Mark it "someone may sleep" and sleep until we take it free:
	 * whoever holds it then will wake one of us on unlock. */
	c = atomic_exchange_explicit(&l->word, 2, memory_order_acquire);
	while (c != 0) {
		aq__park_wait(&l->word, 2, -1);
		c = atomic_exchange_explicit(&l->word, 2, memory_order_acquire);
	}
}

void aq__park_yield(enum aq__pause_site site)
{
	(void)site; /* only a test build's hook reads it */
	aq__pause(site);
	sched_yield();
}

#if defined(__linux__)
#include <linux/futex.h>
#include <sys/syscall.h>
#include <unistd.h>

/* deadline_ns as the futex calls take it: *tsp = NULL for none, else ts
 * filled; true (and nothing to wait for) when it has passed. */
static bool futex_deadline(int64_t deadline_ns, struct timespec *ts,
			   struct timespec **tsp)
{
	*tsp = NULL;
	if (deadline_ns < 0)
		return false;
	if (aq__now_ns() >= deadline_ns)
		return true;
	*ts = aq__timespec(deadline_ns);
	*tsp = ts;
	return false;
}

int aq__park_wait(_Atomic uint32_t *word, uint32_t expected,
		  int64_t deadline_ns)
{
	struct timespec ts, *tsp;
	long rc;

	if (futex_deadline(deadline_ns, &ts, &tsp))
		return -ETIMEDOUT;
	/*
	 * FUTEX_WAIT_BITSET takes an absolute CLOCK_MONOTONIC deadline, so a
	 * wait interrupted by a signal or a spurious wake resumes with the
	 * same deadline instead of restarting its timeout.
	 */
	rc = syscall(SYS_futex, (uint32_t *)word, FUTEX_WAIT_BITSET_PRIVATE,
		     expected, tsp, NULL, FUTEX_BITSET_MATCH_ANY);
	if (rc == -1 && errno == ETIMEDOUT)
		return -ETIMEDOUT;
	return 0; /* woken, EAGAIN (word changed) or EINTR: caller re-checks */
}

void aq__park_wake(_Atomic uint32_t *word, int n)
{
	syscall(SYS_futex, (uint32_t *)word, FUTEX_WAKE_PRIVATE, n, NULL, NULL,
		0);
}

#ifdef SYS_membarrier
#include <linux/membarrier.h>
#define HAVE_ASYM 1

/* The kernel's answer: 0 not asked yet, 1 registered, -1 unavailable
 * (no membarrier, no expedited command, or a seccomp filter said no). */
static _Atomic int asym_state;

static int asym_register(void)
{
	long cmds = syscall(SYS_membarrier, MEMBARRIER_CMD_QUERY, 0, 0);

	if (cmds < 0 || !(cmds & MEMBARRIER_CMD_PRIVATE_EXPEDITED) ||
	    syscall(SYS_membarrier, MEMBARRIER_CMD_REGISTER_PRIVATE_EXPEDITED,
		    0, 0) != 0)
		return -1;
	return 1;
}

bool aq__park_asym_ready(void)
{
	/* Relaxed: a cache of the kernel's answer, which every thread of the
	 * process gets the same (registering again is harmless). */
	return atomic_load_explicit(&asym_state, memory_order_relaxed) > 0;
}

bool aq__park_asym_register(void)
{
	/* Relaxed, as above. */
	int state = atomic_load_explicit(&asym_state, memory_order_relaxed);

	if (state == 0) {
		state = asym_register();
		atomic_store_explicit(&asym_state, state, memory_order_relaxed);
	}
	return state > 0;
}

int aq__park_fence_heavy(void)
{
	/* Relaxed, as above. */
	if (atomic_load_explicit(&asym_state, memory_order_relaxed) <= 0) {
		atomic_thread_fence(memory_order_seq_cst);
		return 0;
	}
	if (aq__fault(AQ__FAULT_FENCE)) {
		/* A test: as if neither try below had worked. */
		atomic_thread_fence(memory_order_seq_cst);
		return -ENOSYS;
	}
	if (syscall(SYS_membarrier, MEMBARRIER_CMD_PRIVATE_EXPEDITED, 0, 0) ==
	    0)
		return 0;
	/* Not registered (a forked child, on a kernel that does not pass
	 * the registration on): register and try once more. */
	if (asym_register() > 0 &&
	    syscall(SYS_membarrier, MEMBARRIER_CMD_PRIVATE_EXPEDITED, 0, 0) ==
		    0)
		return 0;
	atomic_thread_fence(memory_order_seq_cst);
	return -ENOSYS;
}
#endif

#ifdef SYS_futex_waitv
#define HAVE_PARK_ANY 1

/* Set once futex_waitv() said ENOSYS: later calls do not ask again. */
static atomic_bool waitv_missing;

/*
 * futex_waitv() (Linux 5.16): one sleep on up to 128 private futex words,
 * woken by an ordinary FUTEX_WAKE on any of them. Its deadline is absolute
 * on the clock we name, as with FUTEX_WAIT_BITSET above.
 */
int aq__park_wait_any(_Atomic uint32_t *const *words, const uint32_t *expected,
		      unsigned n, int64_t deadline_ns)
{
	struct futex_waitv v[AQ__PARK_ANY_MAX];
	struct timespec ts, *tsp;
	long rc;

	/* Relaxed: a cache of the kernel's answer. */
	if (n > AQ__PARK_ANY_MAX ||
	    atomic_load_explicit(&waitv_missing, memory_order_relaxed))
		return -ENOSYS;
	if (futex_deadline(deadline_ns, &ts, &tsp))
		return -ETIMEDOUT;
	for (unsigned i = 0; i < n; i++)
		v[i] = (struct futex_waitv){
			.val = expected[i],
			.uaddr = (uint64_t)(uintptr_t)words[i],
			.flags = FUTEX_32 | FUTEX_PRIVATE_FLAG,
		};
	rc = syscall(SYS_futex_waitv, v, n, 0, tsp, CLOCK_MONOTONIC);
	if (rc == -1 && errno == ENOSYS) {
		atomic_store_explicit(&waitv_missing, true,
				      memory_order_relaxed);
		return -ENOSYS;
	}
	if (rc == -1 && errno == ETIMEDOUT)
		return -ETIMEDOUT;
	return 0; /* woken, EAGAIN (a word changed) or EINTR: re-check */
}
#endif

#else /* !__linux__ */
#include <pthread.h>
#include <stdint.h>

/*
 * Buckets are shared by all pools in the process, but they hold no state
 * of their own between calls: a collision only costs a spurious wake.
 */
#define PARK_BUCKETS 64
static struct park_bucket {
	pthread_mutex_t lock;
	pthread_cond_t cond;
} park_table[PARK_BUCKETS];
static pthread_once_t park_once = PTHREAD_ONCE_INIT;

static void park_init(void)
{
	pthread_condattr_t attr;

	pthread_condattr_init(&attr);
	pthread_condattr_setclock(&attr, CLOCK_MONOTONIC);
	for (int i = 0; i < PARK_BUCKETS; i++) {
		pthread_mutex_init(&park_table[i].lock, NULL);
		pthread_cond_init(&park_table[i].cond, &attr);
	}
	pthread_condattr_destroy(&attr);
}

static struct park_bucket *park_bucket(const void *word)
{
	uintptr_t h = (uintptr_t)word;

	pthread_once(&park_once, park_init);
	return &park_table[(h >> 4) % PARK_BUCKETS];
}

int aq__park_wait(_Atomic uint32_t *word, uint32_t expected,
		  int64_t deadline_ns)
{
	struct park_bucket *b = park_bucket(word);
	int rc = 0;

	pthread_mutex_lock(&b->lock);
	/* The waker changes the word before taking this lock to broadcast,
	 * so checking under the lock cannot miss its wake. */
	if (atomic_load(word) == expected) {
		if (deadline_ns < 0) {
			pthread_cond_wait(&b->cond, &b->lock);
		} else {
			struct timespec ts = aq__timespec(deadline_ns);
			if (pthread_cond_timedwait(&b->cond, &b->lock, &ts) ==
			    ETIMEDOUT)
				rc = -ETIMEDOUT;
		}
	}
	pthread_mutex_unlock(&b->lock);
	return rc;
}

void aq__park_wake(_Atomic uint32_t *word, int n)
{
	struct park_bucket *b = park_bucket(word);

	(void)n; /* buckets are shared: wake everyone, they re-check */
	pthread_mutex_lock(&b->lock);
	pthread_cond_broadcast(&b->cond);
	pthread_mutex_unlock(&b->lock);
}
#endif

#ifndef HAVE_ASYM
/* No membarrier here: both sides of a handshake use full fences. */
bool aq__park_asym_ready(void)
{
	return false;
}

bool aq__park_asym_register(void)
{
	return false;
}

int aq__park_fence_heavy(void)
{
	atomic_thread_fence(memory_order_seq_cst);
	return 0;
}
#endif

#ifndef HAVE_PARK_ANY
/* No vectored wait here (not Linux, or headers before 5.16): the caller
 * falls back. */
int aq__park_wait_any(_Atomic uint32_t *const *words, const uint32_t *expected,
		      unsigned n, int64_t deadline_ns)
{
	(void)words;
	(void)expected;
	(void)n;
	(void)deadline_ns;
	return -ENOSYS;
}
#endif
