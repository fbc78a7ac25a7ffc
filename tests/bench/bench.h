/* SPDX-License-Identifier: MIT */
/*
 * bench.h - the small interface between the benchmark driver (bench.c) and
 * its contenders: libasyncq, the peers it is measured against, and a direct
 * call that marks the limit. Each contender is a table of function pointers
 * (create, submit, an optional native round trip and drain, destroy). A job
 * is a struct bench_job whose first field is its function, so every
 * contender's native callback is the same one-line trampoline and all of
 * them pay the same indirect call.
 */
#ifndef BENCH_H
#define BENCH_H

#include <stdnoreturn.h>

/* A unit of work as the driver sees it: fn(job) runs it. */
struct bench_job {
	void (*fn)(struct bench_job *job);
};

/* Contender capabilities (struct contender.flags). */
#define CT_MT_SUBMIT 0x1u /* submit may be called from several threads */
#define CT_INLINE 0x2u    /* submit runs the job itself (the direct call) */

struct contender {
	const char *name;  /* column label in the tables */
	const char *descr; /* one line: what it is and how it is driven */
	unsigned flags;    /* CT_* bits */
	/* A pool of `workers` threads; dies with a message on failure. */
	void *(*create)(unsigned workers);
	/* Queue job to run once on a worker (fire and forget). */
	void (*submit)(void *pool, struct bench_job *job);
	/*
	 * Optional: submit job and wait for it with the contender's own
	 * completion mechanism (a future, an event loop). NULL means the
	 * driver's generic mutex+condvar cell, as users of such pools do.
	 */
	void (*roundtrip)(void *pool, struct bench_job *job);
	/*
	 * Optional: after every job has run, finish what the contender still
	 * owes the caller (libuv's after-work callbacks on the loop thread).
	 * Timed as part of the workload.
	 */
	void (*drain)(void *pool);
	/* Stop the workers and free the pool (every job has run by now). */
	void (*destroy)(void *pool);
	/* Optional: a line about this run's submit path for the report. */
	const char *(*note)(void *pool);
	/* Optional: the version of the code measured, for the report. */
	const char *(*version)(void);
};

/* Print "bench: <message>" to stderr and exit with status 2. */
noreturn void bench_die(const char *fmt, ...)
	__attribute__((format(printf, 1, 2)));

/* Spin-wait hint for retry loops (PAUSE on x86, YIELD on Arm). */
static inline void bench_cpu_relax(void)
{
#if defined(__x86_64__) || defined(__i386__)
	__builtin_ia32_pause();
#elif defined(__aarch64__)
	__asm__ __volatile__("yield" ::: "memory");
#endif
}

/* The contenders; the peers exist only when the Makefile found them. */
extern const struct contender contender_asyncq;
extern const struct contender contender_textbook;
extern const struct contender contender_direct;
#ifdef HAVE_GLIB
extern const struct contender contender_glib;
#endif
#ifdef HAVE_UV
extern const struct contender contender_uv;
#endif
#ifdef HAVE_THPOOL
extern const struct contender contender_thpool;
#endif

#endif /* BENCH_H */
