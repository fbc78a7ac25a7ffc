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

#include <stdio.h>
#include <stdnoreturn.h>

/* A unit of work as the driver sees it: fn(job) runs it. */
struct bench_job {
	void (*fn)(struct bench_job *job);
};

/* Contender capabilities (struct contender.flags). */
#define CT_MT_SUBMIT 0x1u /* submit may be called from several threads */
#define CT_INLINE 0x2u    /* submit runs the job itself (the direct call) */
#define CT_FF_ONLY 0x4u   /* measured in ff and ff2 only (a variant of
			     another contender's submit path) */

struct contender {
	const char *name;  /* column label in the tables */
	const char *descr; /* one line: what it is and how it is driven */
	unsigned flags;    /* CT_* bits */
	/* A pool of `workers` threads; dies with a message on failure. */
	void *(*create)(unsigned workers);
	/* Queue job to run once on a worker (fire and forget). */
	void (*submit)(void *pool, struct bench_job *job);
	/* Optional: called by each submitting thread after its last submit,
	 * for a contender that gathers submits (a batch) before queueing. */
	void (*flush)(void *pool);
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

/*
 * Driver services for workloads that live outside bench.c (sched_bench.c):
 * the shared jobs, the completion count that every run verifies, the
 * watchdog's idea of where the driver is, and the statistics.
 */
#include <stdint.h>

#define BENCH_WORKERS 2 /* every contender, every pool, gets this many */

extern struct bench_job bench_noop_job; /* counts itself, nothing else */
extern struct bench_job bench_work_job; /* ~1 us busy work, then counts */
extern double bench_work_job_ns;        /* its measured length */

/* Begin a run that must complete exactly `jobs` jobs; wait until it has;
 * after the pool is gone, die unless exactly that many ran. */
void bench_run_begin(unsigned long jobs);
void bench_run_wait_all(void);
void bench_run_verify(const char *workload, const char *what);
/* Tell the watchdog what the driver is doing now (also counts progress). */
void bench_set_where(const char *workload, const char *contender);
void bench_set_step(const char *step);
int64_t bench_now_ns(void);
/* A progress line on stderr is open (1) or ended (0): bench_die() then
 * starts its message on a line of its own. */
void bench_progress_open(int open);
double bench_median(const double *v, int n);
double bench_min(const double *v, int n);
double bench_max(const double *v, int n);

/* The sched workloads (sched_bench.c): libasyncq under each scheduler. */
enum sched_kind { SCHED_WORK, SCHED_NOOP, SCHED_KINDS };
extern const char *const sched_kind_key[SCHED_KINDS]; /* "sched", ... */
void sched_bench_init(enum sched_kind kind, int nruns, unsigned long scale);
void sched_bench_run(enum sched_kind kind, int run);
void sched_bench_print(enum sched_kind kind);
void sched_bench_write(enum sched_kind kind, FILE *out);
void sched_bench_write_raw(enum sched_kind kind, FILE *out);

/* The contenders; the peers exist only when the Makefile found them. */
extern const struct contender contender_asyncq;
extern const struct contender contender_asyncq_batch;
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
