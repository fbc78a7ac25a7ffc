/* SPDX-License-Identifier: MIT */
/*
 * bench.c - the benchmark driver behind `make bench`. It measures
 * libasyncq side by side with its peers (a textbook mutex+condvar pool,
 * GLib's GThreadPool, libuv's threadpool, C-Thread-Pool) and a direct call,
 * every one with 2 workers, on five workloads: ff (fire-and-forget no-op
 * jobs from one producer), ff2 (the same from two), work (~1 us jobs:
 * parallel efficiency), rt (submit one job and wait for it: latency
 * percentiles) and idle (CPU burnt in the second after the last job).
 * Contenders are interleaved, run after run, so a slow phase of the machine
 * hits them all alike; each figure is the median of the runs, with min and
 * max, and the ratio of libasyncq to each peer. Every job increments one
 * completion counter and every run checks that count exactly, so a lost or
 * doubled job aborts the benchmark; a watchdog aborts it when nothing
 * progresses. The report also says how much CPU other processes took
 * meanwhile. The tables go to stdout, a machine-readable copy to the file
 * named on the command line (results.txt).
 *
 * More workloads: sched and schednoop (sched_bench.c) run libasyncq alone
 * under each of its schedulers, interleaved with the rest run by run.
 * instr and mem are measured once, after the timed runs (so they are not
 * in the load figure), by programs of their own: instr.sh runs build/instr
 * under valgrind's callgrind (instructions per job), build/mem is linked
 * with a malloc interposer (bytes per queued job, mallocs per job). Their
 * figures join the summary, next to the issue-7 targets.
 *
 * Environment: BENCH_RUNS (runs, default 5), BENCH_SCALE (divide every job
 * count), BENCH_ONLY (comma list of workloads: ff, ff2, work, rt, idle,
 * sched, schednoop, instr, mem), BENCH_CONTENDERS (comma list of contender
 * names), BENCH_STALL_S (watchdog, default 20 s), BENCH_AQ_SUBMIT (retry or
 * block: libasyncq's ff submit path), BENCH_INSTR_CMD and BENCH_MEM_CMD
 * (the programs behind instr and mem; default sh ./instr.sh and
 * ./build/mem, run from tests/bench), INSTR_TIMEOUT (instr.sh: seconds per
 * valgrind run).
 */
#include <errno.h>
#include <math.h>
#include <pthread.h>
#include <semaphore.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include <asyncq.h>

#include "bench.h"

#define WORKERS BENCH_WORKERS  /* every contender gets this many */
#define FF_JOBS 2000000UL      /* ff and ff2 jobs per run, before scaling */
#define WORK_JOBS 200000UL     /* work jobs per run, before scaling */
#define WORK_JOB_NS 1000.0     /* the target length of one work job */
#define RT_TRIPS 20000UL       /* rt round trips per run, before scaling */
#define IDLE_BURST 100000UL    /* ff jobs that precede the idle window */
#define IDLE_WINDOW_NS 1000000000LL /* the idle window: one second */
#define INSTR_JOBS 200000UL    /* instr: N, the jobs of the long run */
#define MEM_JOBS 100000UL      /* mem: jobs queued, and jobs counted */
#define OUTSIDE_STALL_S 3600   /* the watchdog's patience with instr.sh,
				  whose every valgrind run has a timeout */
#define MAX_RUNS 1000          /* most BENCH_RUNS accepts */
#define MAX_CONTENDERS 8
#define MAX_METRICS 6

/* ---- the contenders ------------------------------------------------------ */

static const struct contender *const known_contenders[] = {
	&contender_asyncq,
	&contender_asyncq_batch,
	&contender_textbook,
#ifdef HAVE_GLIB
	&contender_glib,
#endif
#ifdef HAVE_UV
	&contender_uv,
#endif
#ifdef HAVE_THPOOL
	&contender_thpool,
#endif
	&contender_direct,
};

/* Peers this binary was built without, and why (ends with a NULL name). */
static const struct {
	const char *name;
	const char *why;
} missing_peers[] = {
#ifndef HAVE_GLIB
	{ "GThreadPool", "glib-2.0 not found by pkg-config (libglib2.0-dev)" },
#endif
#ifndef HAVE_UV
	{ "libuv", "libuv not found by pkg-config (libuv1-dev)" },
#endif
#ifndef HAVE_THPOOL
	{ "C-Thread-Pool",
	  "/usr/share/cthreadpool/thpool.c not found (cthreadpool-dev)" },
#endif
	{ NULL, NULL },
};

/* The contenders selected for this run (BENCH_CONTENDERS), in order. */
static const struct contender *contenders[MAX_CONTENDERS];
static int ncontenders;

/* ---- workloads and what they report ------------------------------------- */

enum workload_id {
	WL_FF,
	WL_FF2,
	WL_WORK,
	WL_RT,
	WL_IDLE,
	WL_INSTR, /* once, after the timed runs: instr.sh under callgrind */
	WL_MEM,   /* once, after the timed runs: build/mem */
	WL_COUNT
};

/* How a metric is printed. */
enum metric_kind { K_RATE, K_EFF, K_USEC, K_PCT, K_COUNT, K_BYTES };

struct metric {
	const char *key;   /* its name in results.txt */
	const char *label; /* its name in the tables */
	enum metric_kind kind;
	int higher_better; /* 1: throughput-like, ratio aq/peer;
			      0: latency-like, ratio peer/aq */
	int ratio;         /* whether a libasyncq/peer ratio means anything */
};

struct workload {
	const char *key;     /* as in BENCH_ONLY and results.txt */
	int nmetrics;
	struct metric metrics[MAX_METRICS];
	unsigned long jobs;  /* jobs (or round trips) per run, after scaling */
	int selected;        /* named in BENCH_ONLY (all when it is unset) */
	int once;            /* measured once, by an outside program, not
				run by run: its figures do not vary with the
				machine's load (instructions, allocations) */
};

static struct workload workloads[WL_COUNT] = {
	[WL_FF] = { "ff", 1, { { "jobs_per_s", "jobs/s", K_RATE, 1, 1 } },
		    0, 0, 0 },
	[WL_FF2] = { "ff2", 1, { { "jobs_per_s", "jobs/s", K_RATE, 1, 1 } },
		     0, 0, 0 },
	[WL_WORK] = { "work", 1,
		      { { "efficiency", "effic.", K_EFF, 1, 1 } }, 0, 0, 0 },
	[WL_RT] = { "rt", 3,
		    { { "p50_us", "p50 us", K_USEC, 0, 1 },
		      { "p99_us", "p99 us", K_USEC, 0, 1 },
		      { "p999_us", "p99.9 us", K_USEC, 0, 1 } },
		    0, 0, 0 },
	[WL_IDLE] = { "idle", 1,
		      { { "cpu_pct", "% core", K_PCT, 0, 0 } }, 0, 0, 0 },
	/* Instructions per job: (Ir(N) - Ir(1)) / (N - 1), all threads; and
	 * the part of it inside the contender's own code (instr.sh). */
	[WL_INSTR] = { "instr", 4,
		       { { "ff_ir", "ff instr", K_COUNT, 0, 1 },
			 { "ff_own_ir", "ff own", K_COUNT, 0, 0 },
			 { "fut_ir", "fut instr", K_COUNT, 0, 1 },
			 { "fut_own_ir", "fut own", K_COUNT, 0, 0 } },
		       0, 0, 1 },
	/* Memory (mem.c): bytes per queued job and mallocs per job. */
	[WL_MEM] = { "mem", 6,
		     { { "queued_ff_bytes", "B/q ff", K_BYTES, 0, 0 },
		       { "ring_slot_bytes", "B/slot", K_BYTES, 0, 0 },
		       { "heap_ff_bytes", "heap B/ff", K_BYTES, 0, 0 },
		       { "heap_fut_bytes", "heap B/fut", K_BYTES, 0, 0 },
		       { "mallocs_ff", "malloc/ff", K_COUNT, 0, 0 },
		       { "mallocs_fut", "malloc/fut", K_COUNT, 0, 0 } },
		     0, 0, 1 },
};

/* Metric indices of the once-workloads, as laid out above. */
enum { M_INSTR_FF, M_INSTR_FF_OWN, M_INSTR_FUT, M_INSTR_FUT_OWN };
enum {
	M_MEM_QUEUED_FF,
	M_MEM_RING_SLOT,
	M_MEM_HEAP_FF,
	M_MEM_HEAP_FUT,
	M_MEM_MALLOCS_FF,
	M_MEM_MALLOCS_FUT
};

/* The sched workloads: libasyncq alone, one column per scheduler, so
 * they keep their own tables (sched_bench.c); selected like the rest. */
static int sched_selected[SCHED_KINDS];

/*
 * Everything measured: per workload, contender and metric, one value per
 * run. A cell that does not apply (libuv's ff2) is marked n/a instead.
 */
static double *values[WL_COUNT][MAX_CONTENDERS][MAX_METRICS];
static const char *not_applicable[WL_COUNT][MAX_CONTENDERS];
static char notes[WL_COUNT][MAX_CONTENDERS][200]; /* last run's note */
/* A once-workload's lines of explanation from its program, and why it
 * was skipped if it was. */
static char once_notes[WL_COUNT][2048];
static char once_skipped[WL_COUNT][200];

static int nruns = 5;        /* BENCH_RUNS */
static unsigned long scale = 1; /* BENCH_SCALE */
static unsigned stall_seconds = 20; /* BENCH_STALL_S */
/* What the watchdog allows now: stall_seconds, or more while an outside
 * program (valgrind) runs, which has its own timeout (instr.sh). */
static atomic_uint stall_limit = 20;
static int full_run; /* every workload and contender, unscaled, >= 5 runs */

/* ---- small helpers ------------------------------------------------------- */

/* Whether a progress line on stderr awaits its newline. */
static int progress_open;

noreturn void bench_die(const char *fmt, ...)
{
	va_list ap;

	fflush(stdout);
	fputs(progress_open ? "\nbench: " : "bench: ", stderr);
	va_start(ap, fmt);
	vfprintf(stderr, fmt, ap);
	va_end(ap);
	fputc('\n', stderr);
	exit(2);
}

static int64_t clock_ns(clockid_t clock)
{
	struct timespec ts;

	clock_gettime(clock, &ts);
	return (int64_t)ts.tv_sec * 1000000000LL + ts.tv_nsec;
}

static int64_t now_ns(void)
{
	return clock_ns(CLOCK_MONOTONIC);
}

static int cmp_double(const void *a, const void *b)
{
	double x = *(const double *)a, y = *(const double *)b;

	return (x > y) - (x < y);
}

/* The median of n values (sorts a copy). */
static double median(const double *v, int n)
{
	double sorted[MAX_RUNS];

	memcpy(sorted, v, (size_t)n * sizeof(double));
	qsort(sorted, (size_t)n, sizeof(double), cmp_double);
	return n % 2 ? sorted[n / 2]
		     : (sorted[n / 2 - 1] + sorted[n / 2]) / 2;
}

static double min_of(const double *v, int n)
{
	double m = v[0];

	for (int i = 1; i < n; i++)
		if (v[i] < m)
			m = v[i];
	return m;
}

static double max_of(const double *v, int n)
{
	double m = v[0];

	for (int i = 1; i < n; i++)
		if (v[i] > m)
			m = v[i];
	return m;
}

/* Whether name is in the comma-separated list (case-insensitive). */
static int in_list(const char *list, const char *name)
{
	size_t len = strlen(name);

	while (*list) {
		size_t item = strcspn(list, ",");

		if (item == len && strncasecmp(list, name, len) == 0)
			return 1;
		list += item;
		if (*list == ',')
			list++;
	}
	return 0;
}

static long env_long(const char *name, long def, long min, long max)
{
	const char *s = getenv(name);
	char *end;
	long v;

	if (!s || !*s)
		return def;
	errno = 0;
	v = strtol(s, &end, 10);
	if (errno || *end || v < min || v > max)
		bench_die("%s must be an integer from %ld to %ld, not '%s'",
			  name, min, max, s);
	return v;
}

/* ---- the completion counter and the watchdog ---------------------------- */

/*
 * The completion counter of the run in progress. Every job adds one; the
 * job that brings it to the target posts all_done. It has a 128-byte block
 * of its own so the workers' increments share a line with nothing else.
 */
static struct {
	_Alignas(128) atomic_ulong done;
	char pad[128 - sizeof(atomic_ulong)];
} completed;

/*
 * The count that completes the run. Relaxed everywhere: the driver stores
 * it before the run's first submit, and every contender's submit hands the
 * job to a worker with release/acquire (a lock or an atomic), which orders
 * the store before the job's load. The watchdog reads it only to report.
 */
static atomic_ulong target;
static sem_t all_done; /* posted once, by the job that reaches target */

/* Count one finished job; the last one wakes the driver. */
static void count_one(void)
{
	/*
	 * Relaxed: only the count matters, and all increments are RMWs of one
	 * atomic, so exactly one sees target. sem_post/sem_wait order the end
	 * of the run for the driver.
	 */
	unsigned long n = atomic_fetch_add_explicit(&completed.done, 1,
						    memory_order_relaxed) +
			  1;

	if (n == atomic_load_explicit(&target, memory_order_relaxed))
		sem_post(&all_done);
}

/* Where the driver is, for the watchdog's message. */
static struct {
	_Atomic(const char *) workload;
	_Atomic(const char *) contender;
	_Atomic(const char *) step;
	atomic_ulong epoch; /* bumped at every step, so a step is progress */
	atomic_int run;
} where;

static void set_step(const char *step)
{
	atomic_store(&where.step, step);
	atomic_fetch_add(&where.epoch, 1);
}

/*
 * The watchdog: once a second it checks that jobs complete or the driver
 * moves on. A lost job leaves the driver waiting for a count that never
 * comes, and a hung pool stops both; either way it reports where and exits,
 * so `make bench` fails instead of hanging. It wakes once a second, which
 * costs microseconds of CPU and so does not disturb the idle figure.
 */
static void *watchdog_main(void *arg)
{
	unsigned long last_done = ~0UL, last_epoch = ~0UL;
	unsigned still = 0;

	(void)arg;
	for (;;) {
		unsigned long done, epoch;

		sleep(1);
		done = atomic_load_explicit(&completed.done,
					    memory_order_relaxed);
		epoch = atomic_load(&where.epoch);
		if (done != last_done || epoch != last_epoch) {
			last_done = done;
			last_epoch = epoch;
			still = 0;
			continue;
		}
		if (++still < atomic_load(&stall_limit))
			continue;
		fflush(stdout);
		fprintf(stderr,
			"%sbench: FAILED: no progress for %u s in run %d, "
			"workload %s, contender %s, step '%s': %lu of %lu "
			"jobs completed. A job was lost or the pool hung.\n",
			progress_open ? "\n" : "", still, atomic_load(&where.run),
			atomic_load(&where.workload),
			atomic_load(&where.contender),
			atomic_load(&where.step), done,
			atomic_load_explicit(&target, memory_order_relaxed));
		_exit(3);
	}
	return NULL;
}

/* Start a run that must complete exactly `jobs` jobs. */
static void run_begin(unsigned long jobs)
{
	atomic_store(&completed.done, 0);
	atomic_store_explicit(&target, jobs, memory_order_relaxed);
	if (sem_init(&all_done, 0, 0) != 0)
		bench_die("sem_init: %s", strerror(errno));
}

/* Wait until the run's last job has counted itself. */
static void run_wait_all(void)
{
	set_step("waiting for the last job");
	while (sem_wait(&all_done) != 0)
		if (errno != EINTR)
			bench_die("sem_wait: %s", strerror(errno));
}

/* After the pool is destroyed: exactly the submitted jobs ran, once each. */
static void run_verify(const char *wl, const char *ct)
{
	unsigned long done = atomic_load(&completed.done);
	unsigned long expected = atomic_load(&target);

	if (done < expected)
		bench_die("FAILED: %s/%s lost %lu of %lu jobs", wl, ct,
			  expected - done, expected);
	if (done > expected)
		bench_die("FAILED: %s/%s ran %lu jobs, %lu more than the %lu "
			  "submitted", wl, ct, done, done - expected, expected);
	sem_destroy(&all_done);
}

/* The same, for workloads in other files (bench.h). */
void bench_run_begin(unsigned long jobs)
{
	run_begin(jobs);
}

void bench_run_wait_all(void)
{
	run_wait_all();
}

void bench_run_verify(const char *workload, const char *what)
{
	run_verify(workload, what);
}

void bench_set_where(const char *workload, const char *contender)
{
	atomic_store(&where.workload, workload);
	atomic_store(&where.contender, contender);
	atomic_fetch_add(&where.epoch, 1);
}

void bench_set_step(const char *step)
{
	set_step(step);
}

int64_t bench_now_ns(void)
{
	return now_ns();
}

void bench_progress_open(int open)
{
	progress_open = open;
}

double bench_median(const double *v, int n)
{
	return median(v, n);
}

double bench_min(const double *v, int n)
{
	return min_of(v, n);
}

double bench_max(const double *v, int n)
{
	return max_of(v, n);
}

/* ---- the jobs -------------------------------------------------------------- */

/* The no-op job of ff, ff2 and idle: it only counts itself. */
static void noop_job_run(struct bench_job *job)
{
	(void)job;
	count_one();
}

static struct bench_job noop_job = { noop_job_run };
struct bench_job bench_noop_job = { noop_job_run };

/* Spin iterations that make one work job last about WORK_JOB_NS. */
static unsigned long spin_iterations = 1000;
static double work_job_ns; /* one work job's measured length, one thread */
double bench_work_job_ns;  /* the same, for other files */
static volatile unsigned long spin_sink; /* never written in practice */

/* Busy work with no memory traffic: an xorshift chain. */
static void spin(unsigned long iterations)
{
	uint64_t x = 0x9E3779B97F4A7C15ull;

	for (unsigned long i = 0; i < iterations; i++) {
		x ^= x << 13;
		x ^= x >> 7;
		x ^= x << 17;
	}
	/* xorshift never reaches 0 from a non-zero seed, but the compiler
	 * cannot know, so the loop must run; nothing shared is written. */
	if (x == 0)
		spin_sink++;
}

static void work_job_run(struct bench_job *job)
{
	(void)job;
	spin(spin_iterations);
	count_one();
}

static struct bench_job work_job = { work_job_run };
struct bench_job bench_work_job = { work_job_run };

/* The length of one work job on this thread, best of five trials. */
static double measure_work_job(void)
{
	const unsigned long calls = 2000;
	double best = 1e300;

	/* No run in progress: nobody to wake. */
	atomic_store_explicit(&target, ~0UL, memory_order_relaxed);
	for (int trial = 0; trial < 5; trial++) {
		int64_t t0 = now_ns();

		for (unsigned long i = 0; i < calls; i++)
			work_job_run(&work_job);
		double ns = (double)(now_ns() - t0) / (double)calls;
		if (ns < best)
			best = ns;
	}
	return best;
}

/* Pick spin_iterations for WORK_JOB_NS per job, and measure the result. */
static void calibrate_work_job(void)
{
	set_step("calibrating the work job");
	for (int round = 0; round < 4; round++) {
		double ns = measure_work_job();
		double scaled = (double)spin_iterations * WORK_JOB_NS / ns;

		spin_iterations = scaled < 1 ? 1 : (unsigned long)scaled;
	}
	work_job_ns = measure_work_job();
	bench_work_job_ns = work_job_ns;
	atomic_store(&completed.done, 0);
}

/* ---- driving a contender ------------------------------------------------ */

struct producer {
	const struct contender *ct;
	void *pool;
	struct bench_job *job;
	unsigned long jobs;        /* this producer's share */
	pthread_barrier_t *start;  /* all producers and the driver */
	int64_t started_ns;        /* when it left the barrier */
	pthread_t thread;
};

static void *producer_main(void *arg)
{
	struct producer *p = arg;

	pthread_barrier_wait(p->start);
	p->started_ns = now_ns();
	for (unsigned long i = 0; i < p->jobs; i++)
		p->ct->submit(p->pool, p->job);
	if (p->ct->flush)
		p->ct->flush(p->pool);
	return NULL;
}

/*
 * Submit `jobs` copies of job from nproducers threads (the driver itself
 * when there is one) and wait until all have run and the contender's drain
 * returned. Returns the elapsed nanoseconds from the first submit.
 */
static int64_t timed_batch(const struct contender *ct, void *pool,
			   struct bench_job *job, unsigned long jobs,
			   unsigned nproducers)
{
	struct producer producers[2];
	pthread_barrier_t start;
	int64_t t0 = 0, t1;

	set_step("submitting");
	if (nproducers == 1) {
		t0 = now_ns();
		for (unsigned long i = 0; i < jobs; i++)
			ct->submit(pool, job);
		if (ct->flush)
			ct->flush(pool);
	} else {
		pthread_barrier_init(&start, NULL, nproducers + 1);
		for (unsigned i = 0; i < nproducers; i++) {
			struct producer *p = &producers[i];
			int rc;

			*p = (struct producer){ .ct = ct,
						.pool = pool,
						.job = job,
						.jobs = jobs / nproducers,
						.start = &start };
			if (i == nproducers - 1) /* the remainder */
				p->jobs += jobs % nproducers;
			rc = pthread_create(&p->thread, NULL, producer_main, p);
			if (rc)
				bench_die("pthread_create: %s", strerror(rc));
		}
		pthread_barrier_wait(&start);
	}
	run_wait_all();
	if (ct->drain) {
		set_step("draining");
		ct->drain(pool);
	}
	t1 = now_ns();
	if (nproducers > 1) {
		/*
		 * The clock starts when the first producer leaves the
		 * barrier: the driver may not run again until the producers
		 * are done (a direct call can finish before it does).
		 */
		for (unsigned i = 0; i < nproducers; i++) {
			pthread_join(producers[i].thread, NULL);
			if (i == 0 || producers[i].started_ns < t0)
				t0 = producers[i].started_ns;
		}
		pthread_barrier_destroy(&start);
	}
	return t1 - t0;
}

static void *pool_create(const struct contender *ct)
{
	set_step("creating the pool");
	return ct->create(WORKERS);
}

/* Save the contender's note, destroy its pool, check the job count. */
static void pool_finish(enum workload_id wl, int ci, void *pool)
{
	const struct contender *ct = contenders[ci];
	const char *note = ct->note ? ct->note(pool) : NULL;

	if (note)
		snprintf(notes[wl][ci], sizeof(notes[wl][ci]), "%s", note);
	set_step("destroying the pool");
	ct->destroy(pool);
	run_verify(workloads[wl].key, ct->name);
}

/* ff and ff2: no-op jobs from nproducers threads; jobs per second. */
static void measure_ff(enum workload_id wl, int ci, unsigned nproducers,
		       double *out)
{
	const struct contender *ct = contenders[ci];
	unsigned long jobs = workloads[wl].jobs;
	void *pool = pool_create(ct);
	int64_t ns;

	run_begin(jobs);
	ns = timed_batch(ct, pool, &noop_job, jobs, nproducers);
	pool_finish(wl, ci, pool);
	out[0] = (double)jobs * 1e9 / (double)ns;
}

/*
 * work: ~1 us jobs from one producer; efficiency is the ideal time on the
 * workers (all the work split evenly, no overhead) over the measured time.
 * The direct call has no workers, so it runs from two threads: the limit.
 */
static void measure_work(int ci, double *out)
{
	const struct contender *ct = contenders[ci];
	unsigned long jobs = workloads[WL_WORK].jobs;
	void *pool = pool_create(ct);
	int64_t ns;

	run_begin(jobs);
	ns = timed_batch(ct, pool, &work_job, jobs,
			 ct->flags & CT_INLINE ? WORKERS : 1);
	pool_finish(WL_WORK, ci, pool);
	out[0] = (double)jobs * work_job_ns / WORKERS / (double)ns;
}

/*
 * A round trip the way users of a pool without futures write it: the job
 * carries a mutex, a condvar and a flag; the submitter sleeps on them.
 */
struct rt_cell {
	struct bench_job job; /* first, so the job pointer is the cell */
	pthread_mutex_t lock;
	pthread_cond_t cond;
	int done; /* guarded by lock */
};

static void rt_cell_run(struct bench_job *job)
{
	struct rt_cell *cell = (struct rt_cell *)job;

	count_one();
	pthread_mutex_lock(&cell->lock);
	cell->done = 1;
	pthread_cond_signal(&cell->cond);
	pthread_mutex_unlock(&cell->lock);
}

static void rt_generic(const struct contender *ct, void *pool)
{
	struct rt_cell cell = { .job = { rt_cell_run }, .done = 0 };

	pthread_mutex_init(&cell.lock, NULL);
	pthread_cond_init(&cell.cond, NULL);
	ct->submit(pool, &cell.job);
	pthread_mutex_lock(&cell.lock);
	while (!cell.done)
		pthread_cond_wait(&cell.cond, &cell.lock);
	pthread_mutex_unlock(&cell.lock);
	pthread_cond_destroy(&cell.cond);
	pthread_mutex_destroy(&cell.lock);
}

/* Nearest-rank percentile p (0..1) of n sorted values. */
static double percentile(const double *sorted, unsigned long n, double p)
{
	unsigned long rank = (unsigned long)(p * (double)n + 0.999999);

	if (rank < 1)
		rank = 1;
	if (rank > n)
		rank = n;
	return sorted[rank - 1];
}

/*
 * rt: one job at a time, submitted and waited for; latency percentiles in
 * microseconds. The first 1% (at least 10) are a warm-up, not recorded.
 */
static void measure_rt(int ci, double *out)
{
	const struct contender *ct = contenders[ci];
	unsigned long trips = workloads[WL_RT].jobs;
	unsigned long warmup = trips / 100 < 10 ? 10 : trips / 100;
	double *lat = malloc(trips * sizeof(*lat));
	void *pool = pool_create(ct);

	if (!lat)
		bench_die("out of memory");
	run_begin(warmup + trips);
	set_step("round trips");
	for (unsigned long i = 0; i < warmup + trips; i++) {
		int64_t t0 = now_ns();

		if (ct->roundtrip)
			ct->roundtrip(pool, &noop_job);
		else
			rt_generic(ct, pool);
		if (i >= warmup)
			lat[i - warmup] = (double)(now_ns() - t0) / 1e3;
	}
	pool_finish(WL_RT, ci, pool);
	qsort(lat, trips, sizeof(*lat), cmp_double);
	out[0] = percentile(lat, trips, 0.50);
	out[1] = percentile(lat, trips, 0.99);
	out[2] = percentile(lat, trips, 0.999);
	free(lat);
}

/*
 * idle: a burst of no-op jobs, then the CPU time the whole process uses in
 * the following second while the driver sleeps, as a percentage of one
 * core. A pool that parks its workers scores ~0; one that spins, 100+.
 */
static void measure_idle(int ci, double *out)
{
	const struct contender *ct = contenders[ci];
	void *pool = pool_create(ct);
	struct timespec window = { IDLE_WINDOW_NS / 1000000000LL,
				   IDLE_WINDOW_NS % 1000000000LL };
	int64_t cpu0, wall0;

	run_begin(workloads[WL_IDLE].jobs);
	timed_batch(ct, pool, &noop_job, workloads[WL_IDLE].jobs, 1);
	set_step("idle window");
	cpu0 = clock_ns(CLOCK_PROCESS_CPUTIME_ID);
	wall0 = now_ns();
	while (nanosleep(&window, &window) != 0 && errno == EINTR)
		;
	out[0] = (double)(clock_ns(CLOCK_PROCESS_CPUTIME_ID) - cpu0) * 100.0 /
		 (double)(now_ns() - wall0);
	pool_finish(WL_IDLE, ci, pool);
}

/* Run workload wl once for contender ci, store the result of run `run`. */
static void run_one(enum workload_id wl, int ci, int run)
{
	const struct contender *ct = contenders[ci];
	double out[MAX_METRICS] = { 0 };

	atomic_store(&where.workload, workloads[wl].key);
	atomic_store(&where.contender, ct->name);
	switch (wl) {
	case WL_FF:
		measure_ff(wl, ci, 1, out);
		break;
	case WL_FF2:
		measure_ff(wl, ci, 2, out);
		break;
	case WL_WORK:
		measure_work(ci, out);
		break;
	case WL_RT:
		measure_rt(ci, out);
		break;
	case WL_IDLE:
		measure_idle(ci, out);
		break;
	case WL_INSTR: /* once, by run_outside() */
	case WL_MEM:
	case WL_COUNT:
		break;
	}
	for (int m = 0; m < workloads[wl].nmetrics; m++)
		values[wl][ci][m][run] = out[m];
}

/*
 * Other load on the machine. Interleaving spreads noise over all
 * contenders, but a benchmark that shares 2 cores with a test suite is not
 * worth quoting, so the report says how much CPU the rest of the machine
 * used meanwhile: busy time from /proc/stat (steal included: the
 * hypervisor took it) less this process's own CPU time.
 */
struct load_sample {
	double busy_s; /* all CPUs' non-idle time since boot; <0: unknown */
	double own_s;  /* this process's CPU time */
	double wall_s;
};

static void load_sample(struct load_sample *ls)
{
	FILE *f = fopen("/proc/stat", "r");
	unsigned long long t[8] = { 0 };
	long hz = sysconf(_SC_CLK_TCK);

	ls->busy_s = -1;
	if (f && hz > 0 &&
	    fscanf(f, "cpu %llu %llu %llu %llu %llu %llu %llu %llu", &t[0],
		   &t[1], &t[2], &t[3], &t[4], &t[5], &t[6], &t[7]) == 8) {
		/* user nice system idle iowait irq softirq steal */
		ls->busy_s = (double)(t[0] + t[1] + t[2] + t[5] + t[6] + t[7]) /
			     (double)hz;
	}
	if (f)
		fclose(f);
	ls->own_s = (double)clock_ns(CLOCK_PROCESS_CPUTIME_ID) / 1e9;
	ls->wall_s = (double)now_ns() / 1e9;
}

/* Percent of one core the rest of the machine used between a and b. */
static double other_load(const struct load_sample *a,
			 const struct load_sample *b)
{
	double others;

	if (a->busy_s < 0 || b->busy_s < 0 || b->wall_s <= a->wall_s)
		return -1;
	others = (b->busy_s - a->busy_s) - (b->own_s - a->own_s);
	return others < 0 ? 0 : others * 100.0 / (b->wall_s - a->wall_s);
}

/* Say how loaded the machine was; warn when it was enough to matter. */
static void report_load(FILE *out, const char *prefix, const char *when,
			double pct)
{
	if (pct < 0)
		return;
	fprintf(out, "%sother processes used %.0f%% of a core %s%s\n", prefix,
		pct, when,
		pct > 10 ? ": WARNING, a busy machine disturbs the figures"
			 : "");
}

/* ---- the report ------------------------------------------------------------ */

/* A value as the tables print it. */
static void fmt_value(char *buf, size_t size, enum metric_kind kind,
		      double v)
{
	if (isnan(v)) {
		snprintf(buf, size, "n/a");
		return;
	}
	switch (kind) {
	case K_RATE:
		snprintf(buf, size, "%.2f M", v / 1e6);
		break;
	case K_EFF:
		snprintf(buf, size, "%.3f", v);
		break;
	case K_USEC:
		snprintf(buf, size, v < 10 ? "%.2f" : "%.1f", v);
		break;
	case K_PCT:
		snprintf(buf, size, "%.2f %%", v);
		break;
	case K_COUNT: /* 0 and 1 mallocs read better without a ".0" */
		snprintf(buf, size, v == (long)v && v < 10 ? "%.0f" : "%.1f",
			 v);
		break;
	case K_BYTES:
		snprintf(buf, size, v == (long)v ? "%.0f B" : "%.1f B", v);
		break;
	}
}

static int find_contender(const char *name)
{
	for (int ci = 0; ci < ncontenders; ci++)
		if (strcmp(contenders[ci]->name, name) == 0)
			return ci;
	return -1;
}

static int is_peer(int ci)
{
	return contenders[ci] != &contender_asyncq &&
	       contenders[ci] != &contender_asyncq_batch &&
	       !(contenders[ci]->flags & CT_INLINE);
}

/* Values per cell: one per run, or one for a once-workload. */
static int wl_runs(int wl)
{
	return workloads[wl].once ? 1 : nruns;
}

/* The median of a cell in *med; 0 when the cell does not apply or this
 * metric was not measured (NaN) for it. */
static int cell_median(enum workload_id wl, int ci, int m, double *med)
{
	if (not_applicable[wl][ci])
		return 0;
	*med = median(values[wl][ci][m], wl_runs(wl));
	return !isnan(*med);
}

/* libasyncq relative to contender ci: >1 means libasyncq is better. */
static int ratio_to(enum workload_id wl, int ci, int m, double *ratio)
{
	const struct metric *mt = &workloads[wl].metrics[m];
	int aq = find_contender(contender_asyncq.name);
	double a, p;

	if (!mt->ratio || aq < 0 || ci == aq || !cell_median(wl, aq, m, &a) ||
	    !cell_median(wl, ci, m, &p) || a <= 0 || p <= 0)
		return 0;
	*ratio = mt->higher_better ? a / p : p / a;
	return 1;
}

static void describe_workload(enum workload_id wl, char *buf, size_t size)
{
	unsigned long n = workloads[wl].jobs;

	switch (wl) {
	case WL_FF:
		snprintf(buf, size, "%lu no-op fire-and-forget jobs from 1 "
			 "producer", n);
		break;
	case WL_FF2:
		snprintf(buf, size, "%lu no-op fire-and-forget jobs from 2 "
			 "producer threads", n);
		break;
	case WL_WORK:
		snprintf(buf, size, "%lu jobs of %.2f us busy work from 1 "
			 "producer; efficiency = (jobs x %.2f us / %d) / "
			 "elapsed", n, work_job_ns / 1e3, work_job_ns / 1e3,
			 WORKERS);
		break;
	case WL_RT:
		snprintf(buf, size, "%lu round trips (submit one job, wait for "
			 "it); latency in us", n);
		break;
	case WL_IDLE:
		snprintf(buf, size, "CPU of the whole process in the 1 s after "
			 "a burst of %lu jobs, %% of one core", n);
		break;
	case WL_INSTR:
		snprintf(buf, size, "instructions per job under valgrind "
			 "--tool=callgrind, (Ir(N) - Ir(1)) / (N - 1), "
			 "N = %lu", n);
		break;
	case WL_MEM:
		snprintf(buf, size, "bytes per queued job and mallocs per job "
			 "in steady state, counted by a link-time malloc "
			 "interposer (build/mem)");
		break;
	case WL_COUNT:
		break;
	}
}

/* Print a table row without the blanks that empty columns leave. */
static void print_row(const char *c1, const char *c2, const char *c3,
		      const char *c4, const char *c5, const char *c6,
		      const char *c7)
{
	char line[256];
	size_t len;

	snprintf(line, sizeof(line), "  %-14s %-9s %11s %11s %11s %9s %8s",
		 c1, c2, c3, c4, c5, c6, c7);
	len = strlen(line);
	while (len && line[len - 1] == ' ')
		line[--len] = '\0';
	puts(line);
}

/* One section per workload: median, min, max and ratio per contender. */
static void print_section(enum workload_id wl)
{
	const struct workload *w = &workloads[wl];
	const int rate = w->metrics[0].kind == K_RATE;
	const char *ratio_hdr = w->metrics[0].ratio
					? (w->metrics[0].higher_better
						   ? "aq/peer"
						   : "peer/aq")
					: "";
	const int n = wl_runs(wl);
	char descr[200];

	describe_workload(wl, descr, sizeof(descr));
	if (w->once) {
		printf("\n%s: %s; measured once (it does not vary with the "
		       "load)\n", w->key, descr);
		if (once_skipped[wl][0]) {
			printf("  skipped: %s\n", once_skipped[wl]);
			return;
		}
		print_row("contender", "metric", "value", "", "", "",
			  ratio_hdr);
	} else {
		printf("\n%s: %s; %d workers, %d run%s\n", w->key, descr,
		       WORKERS, nruns, nruns == 1 ? "" : "s");
		print_row("contender", "metric", "median", "min", "max",
			  rate ? "ns/job" : "", ratio_hdr);
	}
	for (int ci = 0; ci < ncontenders; ci++) {
		if (not_applicable[wl][ci]) {
			printf("  %-14s %-9s %s\n", contenders[ci]->name,
			       w->metrics[0].label, not_applicable[wl][ci]);
			continue;
		}
		for (int m = 0; m < w->nmetrics; m++) {
			const struct metric *mt = &w->metrics[m];
			const double *v = values[wl][ci][m];
			char med[32], lo[32], hi[32], extra[32] = "",
							      ratio[32] = "-";
			double r, md = median(v, n);

			fmt_value(med, sizeof(med), mt->kind, md);
			fmt_value(lo, sizeof(lo), mt->kind, min_of(v, n));
			fmt_value(hi, sizeof(hi), mt->kind, max_of(v, n));
			if (w->once)
				lo[0] = hi[0] = '\0';
			if (mt->kind == K_RATE)
				snprintf(extra, sizeof(extra), "%.1f",
					 1e9 / md);
			if (!mt->ratio)
				ratio[0] = '\0';
			else if (ratio_to(wl, ci, m, &r))
				snprintf(ratio, sizeof(ratio), "%.2fx", r);
			print_row(m == 0 ? contenders[ci]->name : "",
				  mt->label, med, lo, hi, extra, ratio);
		}
	}
	/* Notes on the submit path matter where submitting is the load. */
	for (int ci = 0; ci < ncontenders && wl != WL_IDLE && wl != WL_RT;
	     ci++)
		if (notes[wl][ci][0])
			printf("  note: %s: %s\n", contenders[ci]->name,
			       notes[wl][ci]);
	if (wl == WL_WORK && find_contender(contender_direct.name) >= 0)
		printf("  note: direct runs the jobs on %d threads, as %d "
		       "perfectly fed workers would\n", WORKERS, WORKERS);
	if ((wl == WL_FF || wl == WL_FF2) &&
	    find_contender(contender_direct.name) >= 0)
		printf("  note: every job increments one shared atomic "
		       "counter; direct shows what that alone costs\n");
	if (w->once)
		fputs(once_notes[wl], stdout);
}

/* The summary rows, and the issue-7 target of each. */
struct summary_row {
	enum workload_id wl;
	int metric;
	const char *row;  /* row label */
	const char *what; /* the target in words; NULL: none */
	double vs_best;   /* libasyncq must beat the best peer by this; 0: no */
	double absolute;  /* or libasyncq's own value must pass this; 0: no */
	int at_most;      /* or libasyncq's own value must be <= limit */
	double limit;
};

static const struct summary_row summary_rows[] = {
	{ WL_FF, 0, "ff jobs/s", ">= 5x the best peer", 5, 0, 0, 0 },
	{ WL_FF2, 0, "ff2 jobs/s", ">= 5x the best peer", 5, 0, 0, 0 },
	{ WL_WORK, 0, "work efficiency", ">= 0.85", 0, 0.85, 0, 0 },
	{ WL_RT, 0, "rt p50 us", "<= half the best peer's", 2, 0, 0, 0 },
	{ WL_RT, 1, "rt p99 us", "<= a third of the best peer's", 3, 0, 0,
	  0 },
	{ WL_RT, 2, "rt p99.9 us", NULL, 0, 0, 0, 0 },
	{ WL_IDLE, 0, "idle % of a core", "< 1 % of a core", 0, 1.0, 0, 0 },
	{ WL_INSTR, M_INSTR_FF, "instr/ff job", "<= 100 instructions", 0, 0, 1,
	  100 },
	{ WL_INSTR, M_INSTR_FF_OWN, "  in own code", NULL, 0, 0, 0, 0 },
	{ WL_INSTR, M_INSTR_FUT, "instr/fut job", NULL, 0, 0, 0, 0 },
	{ WL_INSTR, M_INSTR_FUT_OWN, "  in own code", NULL, 0, 0, 0, 0 },
	{ WL_MEM, M_MEM_QUEUED_FF, "bytes/queued ff", "<= 64 bytes", 0, 0, 1,
	  64 },
	{ WL_MEM, M_MEM_MALLOCS_FF, "mallocs/ff job", "zero", 0, 0, 1, 0 },
	{ WL_MEM, M_MEM_MALLOCS_FUT, "mallocs/fut job", "zero", 0, 0, 1, 0 },
};

/* The peer with the best median for a row (not libasyncq, not direct). */
static int best_peer(const struct summary_row *t, double *best_v)
{
	const struct metric *mt = &workloads[t->wl].metrics[t->metric];
	int best = -1;
	double v;

	for (int ci = 0; ci < ncontenders; ci++)
		if (is_peer(ci) && cell_median(t->wl, ci, t->metric, &v) &&
		    (best < 0 ||
		     (mt->higher_better ? v > *best_v : v < *best_v))) {
			best = ci;
			*best_v = v;
		}
	return best;
}

/*
 * The summary in the shape of issue 7's table, with libasyncq added and a
 * ratio row under each figure; then each target, met or missed.
 */
static void print_summary(void)
{
	const size_t nrows = sizeof(summary_rows) / sizeof(summary_rows[0]);
	int aq = find_contender(contender_asyncq.name);
	char buf[48];

	printf("\nSummary: medians of %d run%s (instr and mem: measured once), "
	       "%d workers each. Ratio rows:\nlibasyncq vs that contender, >1 "
	       "= libasyncq better (throughput and efficiency aq/peer,\n"
	       "latency, instructions peer/aq). instr: per job, all threads; "
	       "own code: the pool's\nown functions only (see the instr "
	       "section). fut: a future per job (peers: a\nmutex+condvar "
	       "cell). mem: bytes/queued ff = ring slot + heap per queued "
	       "job.\n", nruns, nruns == 1 ? "" : "s", WORKERS);
	printf("%-17s", "");
	for (int ci = 0; ci < ncontenders; ci++)
		printf(" %13s", contenders[ci]->name);
	putchar('\n');
	for (size_t r = 0; r < nrows; r++) {
		const struct summary_row *t = &summary_rows[r];
		const struct metric *mt = &workloads[t->wl].metrics[t->metric];
		double v;

		if (!workloads[t->wl].selected || once_skipped[t->wl][0])
			continue;
		printf("%-17s", t->row);
		for (int ci = 0; ci < ncontenders; ci++) {
			if (cell_median(t->wl, ci, t->metric, &v))
				fmt_value(buf, sizeof(buf), mt->kind, v);
			else
				snprintf(buf, sizeof(buf), "n/a");
			printf(" %13s", buf);
		}
		putchar('\n');
		if (!mt->ratio)
			continue;
		printf("%-17s", "  ratio");
		for (int ci = 0; ci < ncontenders; ci++) {
			if (ratio_to(t->wl, ci, t->metric, &v))
				snprintf(buf, sizeof(buf), "%.2fx", v);
			else
				snprintf(buf, sizeof(buf), "-");
			printf(" %13s", buf);
		}
		putchar('\n');
	}

	if (aq < 0)
		return;
	printf("\nTargets (issue 7), libasyncq against the best peer of the "
	       "same run:\n");
	for (size_t r = 0; r < nrows; r++) {
		const struct summary_row *t = &summary_rows[r];
		const struct metric *mt = &workloads[t->wl].metrics[t->metric];
		double aq_v, best_v = 0;
		int best = best_peer(t, &best_v), met = -1;
		char mine[32], theirs[32];

		if (!t->what || !workloads[t->wl].selected ||
		    !cell_median(t->wl, aq, t->metric, &aq_v))
			continue;
		fmt_value(mine, sizeof(mine), mt->kind, aq_v);
		printf("  %-17s %-30s libasyncq %s", t->row, t->what, mine);
		if (mt->ratio && best >= 0 && aq_v > 0 && best_v > 0) {
			fmt_value(theirs, sizeof(theirs), mt->kind, best_v);
			printf(", best peer %s %s (%.2fx)",
			       contenders[best]->name, theirs,
			       mt->higher_better ? aq_v / best_v
						 : best_v / aq_v);
		}
		if (t->vs_best > 0 && best >= 0 && aq_v > 0)
			met = mt->higher_better ? aq_v >= t->vs_best * best_v
						: aq_v * t->vs_best <= best_v;
		else if (t->absolute > 0)
			met = mt->higher_better ? aq_v >= t->absolute
						: aq_v < t->absolute;
		else if (t->at_most)
			met = aq_v <= t->limit;
		if (met >= 0)
			printf(": %s", met ? "met" : "MISSED");
		putchar('\n');
	}
	for (int wl = 0; wl < WL_COUNT; wl++)
		if (workloads[wl].selected && once_skipped[wl][0])
			printf("  %-17s skipped: %s\n", workloads[wl].key,
			       once_skipped[wl]);
}

/* The machine's CPU model, from /proc/cpuinfo when there is one. */
static void cpu_model(char *buf, size_t size)
{
	FILE *f = fopen("/proc/cpuinfo", "r");
	char line[256];

	snprintf(buf, size, "unknown CPU");
	if (!f)
		return;
	while (fgets(line, sizeof(line), f)) {
		char *colon = strchr(line, ':');

		if (strncmp(line, "model name", 10) == 0 && colon) {
			snprintf(buf, size, "%s", colon + 2);
			buf[strcspn(buf, "\n")] = '\0';
			break;
		}
	}
	fclose(f);
}

static void print_header(FILE *out, const char *prefix)
{
	char cpu[128], when[64];
	time_t t = time(NULL);

	cpu_model(cpu, sizeof(cpu));
	strftime(when, sizeof(when), "%Y-%m-%d %H:%M UTC", gmtime(&t));
	fprintf(out, "%slibasyncq benchmark, %s: %ld CPUs (%s)\n", prefix,
		when, sysconf(_SC_NPROCESSORS_ONLN), cpu);
	fprintf(out, "%s%d run%s, contenders interleaved in each; job counts "
		"divided by %lu; %d workers per contender\n", prefix, nruns,
		nruns == 1 ? "" : "s", scale, WORKERS);
	for (int ci = 0; ci < ncontenders; ci++) {
		const struct contender *ct = contenders[ci];
		const char *v = ct->version ? ct->version() : NULL;
		char name[64];

		snprintf(name, sizeof(name), "%s%s%s", ct->name, v ? " " : "",
			 v ? v : "");
		fprintf(out, "%s  %-40s %s\n", prefix, name, ct->descr);
	}
	for (int i = 0; missing_peers[i].name; i++)
		fprintf(out, "%s  %-40s skipped: %s\n", prefix,
			missing_peers[i].name, missing_peers[i].why);
}

/* results.txt: one line per cell, then every raw value. */
static void write_results(const char *path, double busy)
{
	FILE *f = fopen(path, "w");

	if (!f)
		bench_die("cannot write %s: %s", path, strerror(errno));
	print_header(f, "# ");
	report_load(f, "# ", "on average during the runs", busy);
	fprintf(f, "# work job: %.1f ns (%lu spin iterations)\n", work_job_ns,
		spin_iterations);
	/* plot.sh copies only a full run's results into docs/bench/. */
	fprintf(f, "# full run: %s\n", full_run ? "yes" : "no (BENCH_ONLY, "
		"BENCH_CONTENDERS, BENCH_SCALE or BENCH_RUNS < 5)");
	fprintf(f, "# columns: workload contender metric median min max "
		"ratio\n# ratio: libasyncq vs the contender, >1 = libasyncq "
		"better (higher_better metrics aq/peer, others peer/aq); - "
		"where none\n");
	for (int wl = 0; wl < WL_COUNT; wl++) {
		if (!workloads[wl].selected)
			continue;
		for (int ci = 0; ci < ncontenders; ci++)
			for (int m = 0; m < workloads[wl].nmetrics; m++) {
				const double *v = values[wl][ci][m];
				double r, med;

				fprintf(f, "%s %s %s ", workloads[wl].key,
					contenders[ci]->name,
					workloads[wl].metrics[m].key);
				if (!cell_median((enum workload_id)wl, ci, m,
						 &med)) {
					fprintf(f, "na na na na\n");
					continue;
				}
				fprintf(f, "%.6g %.6g %.6g ", med,
					min_of(v, wl_runs(wl)),
					max_of(v, wl_runs(wl)));
				if (ratio_to(wl, ci, m, &r))
					fprintf(f, "%.4g\n", r);
				else
					fprintf(f, "-\n");
			}
	}
	for (int k = 0; k < SCHED_KINDS; k++)
		if (sched_selected[k])
			sched_bench_write((enum sched_kind)k, f);
	fprintf(f, "# raw: run workload contender metric value\n");
	for (int run = 0; run < nruns; run++)
		for (int wl = 0; wl < WL_COUNT; wl++) {
			if (!workloads[wl].selected)
				continue;
			if (run >= wl_runs(wl))
				continue;
			for (int ci = 0; ci < ncontenders; ci++) {
				if (not_applicable[wl][ci])
					continue;
				for (int m = 0; m < workloads[wl].nmetrics;
				     m++) {
					if (isnan(values[wl][ci][m][run]))
						continue;
					fprintf(f, "raw %d %s %s %s %.6g\n",
						run + 1, workloads[wl].key,
						contenders[ci]->name,
						workloads[wl].metrics[m].key,
						values[wl][ci][m][run]);
				}
			}
		}
	for (int k = 0; k < SCHED_KINDS; k++)
		if (sched_selected[k])
			sched_bench_write_raw((enum sched_kind)k, f);
	if (fclose(f) != 0)
		bench_die("cannot write %s: %s", path, strerror(errno));
}

/* ---- instr and mem: programs of their own ------------------------------- */

/*
 * Run the program behind a once-workload and take its figures. It speaks a
 * line protocol on stdout:
 *   value <contender> <metric key> <number>
 *   note <text>      (printed under the workload's table)
 *   skip <reason>    (the workload could not be measured here)
 * and anything else is progress, copied to stderr. Each line counts as
 * progress for the watchdog, which is patient meanwhile: valgrind is slow
 * and instr.sh puts a timeout on each of its runs.
 */
static int run_outside(enum workload_id wl, const char *env_cmd,
		       const char *default_cmd)
{
	const char *cmd = getenv(env_cmd);
	char line[1024], n[32], names[256] = "";
	FILE *p;
	int status, failed = 0;

	if (!cmd || !*cmd)
		cmd = default_cmd;
	/* The program's knobs: its job count and the contenders wanted. */
	snprintf(n, sizeof(n), "%lu", workloads[wl].jobs);
	setenv("BENCH_N", n, 1);
	for (int ci = 0; ci < ncontenders; ci++)
		snprintf(names + strlen(names), sizeof(names) - strlen(names),
			 "%s%s", ci ? "," : "", contenders[ci]->name);
	setenv("BENCH_CONTENDER_LIST", names, 1);

	bench_set_where(workloads[wl].key, "-");
	set_step(cmd);
	atomic_store(&stall_limit, OUTSIDE_STALL_S);
	fflush(NULL);
	p = popen(cmd, "r");
	if (!p) {
		snprintf(once_skipped[wl], sizeof(once_skipped[wl]),
			 "could not run '%s': %s", cmd, strerror(errno));
		atomic_store(&stall_limit, stall_seconds);
		return 0;
	}
	while (fgets(line, sizeof(line), p)) {
		char ct[64], key[64];
		double v;
		int ci, m = -1;

		line[strcspn(line, "\n")] = '\0';
		atomic_fetch_add(&where.epoch, 1);
		if (sscanf(line, "value %63s %63s %lf", ct, key, &v) == 3) {
			ci = find_contender(ct);
			for (int i = 0; i < workloads[wl].nmetrics; i++)
				if (strcmp(workloads[wl].metrics[i].key, key) ==
				    0)
					m = i;
			if (ci < 0 || m < 0)
				continue; /* not selected, or not ours */
			values[wl][ci][m][0] = v;
			not_applicable[wl][ci] = NULL;
		} else if (strncmp(line, "note ", 5) == 0) {
			size_t len = strlen(once_notes[wl]);

			snprintf(once_notes[wl] + len,
				 sizeof(once_notes[wl]) - len, "  %s\n",
				 line + 5);
		} else if (strncmp(line, "skip ", 5) == 0) {
			snprintf(once_skipped[wl], sizeof(once_skipped[wl]),
				 "%.190s", line + 5);
		} else {
			fprintf(stderr, "%s\n", line);
		}
		if (strstr(line, "FAILED"))
			failed = 1;
	}
	status = pclose(p);
	atomic_store(&stall_limit, stall_seconds);
	if (status != 0) {
		snprintf(once_skipped[wl], sizeof(once_skipped[wl]),
			 "FAILED: '%s' exited with status %d", cmd,
			 WIFEXITED(status) ? WEXITSTATUS(status) : -1);
		failed = 1;
	}
	return failed;
}

/* ---- main ------------------------------------------------------------------ */

static void configure(void)
{
	const char *only = getenv("BENCH_ONLY");
	const char *which = getenv("BENCH_CONTENDERS");
	size_t nknown = sizeof(known_contenders) / sizeof(known_contenders[0]);

	nruns = (int)env_long("BENCH_RUNS", 5, 1, MAX_RUNS);
	scale = (unsigned long)env_long("BENCH_SCALE", 1, 1, 100000);
	stall_seconds = (unsigned)env_long("BENCH_STALL_S", 20, 2, 3600);

	workloads[WL_FF].jobs = FF_JOBS / scale;
	workloads[WL_FF2].jobs = FF_JOBS / scale;
	workloads[WL_WORK].jobs = WORK_JOBS / scale;
	workloads[WL_RT].jobs = RT_TRIPS / scale;
	workloads[WL_IDLE].jobs = IDLE_BURST / scale;
	workloads[WL_INSTR].jobs = INSTR_JOBS / scale;
	workloads[WL_MEM].jobs = MEM_JOBS / scale;
	for (int wl = 0; wl < WL_COUNT; wl++) {
		unsigned long least = workloads[wl].once ? 1000 : 2;

		if (workloads[wl].jobs < least)
			workloads[wl].jobs = least;
		workloads[wl].selected =
			!only || !*only || in_list(only, workloads[wl].key);
	}
	for (int k = 0; k < SCHED_KINDS; k++) {
		sched_selected[k] =
			!only || !*only || in_list(only, sched_kind_key[k]);
		if (sched_selected[k])
			sched_bench_init((enum sched_kind)k, nruns, scale);
	}
	if (only && *only) {
		/* Every name in the list must be a workload. */
		for (const char *s = only; *s;) {
			size_t len = strcspn(s, ",");
			int known = 0;

			for (int wl = 0; wl < WL_COUNT; wl++)
				known |= strlen(workloads[wl].key) == len &&
					 strncmp(s, workloads[wl].key, len) == 0;
			for (int k = 0; k < SCHED_KINDS; k++)
				known |= strlen(sched_kind_key[k]) == len &&
					 strncmp(s, sched_kind_key[k], len) ==
						 0;
			if (!known && len)
				bench_die("BENCH_ONLY: unknown workload '%.*s'"
					  " (ff, ff2, work, rt, idle, sched, "
					  "schednoop, instr, mem)",
					  (int)len, s);
			s += len + (s[len] == ',');
		}
	}
	full_run = (!only || !*only) && (!which || !*which) && scale == 1 &&
		   nruns >= 5;
	atomic_store(&stall_limit, stall_seconds);
	for (size_t i = 0; i < nknown; i++)
		if (!which || !*which ||
		    in_list(which, known_contenders[i]->name))
			contenders[ncontenders++] = known_contenders[i];
	if (!ncontenders)
		bench_die("BENCH_CONTENDERS names none of the contenders");

	for (int wl = 0; wl < WL_COUNT; wl++)
		for (int ci = 0; ci < ncontenders; ci++) {
			if (wl == WL_FF2 &&
			    !(contenders[ci]->flags & CT_MT_SUBMIT))
				not_applicable[wl][ci] = "n/a (not thread-safe)";
			if ((contenders[ci]->flags & CT_FF_ONLY) &&
			    wl != WL_FF && wl != WL_FF2 && wl != WL_INSTR)
				not_applicable[wl][ci] = "n/a (ff only)";
			/* Until its program reports a figure for it. */
			if (workloads[wl].once)
				not_applicable[wl][ci] = "not measured";
			for (int m = 0; m < workloads[wl].nmetrics; m++) {
				values[wl][ci][m] =
					calloc((size_t)nruns, sizeof(double));
				if (!values[wl][ci][m])
					bench_die("out of memory");
				for (int r = 0; r < nruns && workloads[wl].once;
				     r++)
					values[wl][ci][m][r] = NAN;
			}
		}
}

int main(int argc, char **argv)
{
	const char *results = argc > 1 ? argv[1] : "results.txt";
	struct load_sample before, start, end;
	double busy;
	pthread_t watchdog;
	int rc, failed = 0;

	if (argc > 2)
		bench_die("usage: bench [results-file]");
	configure();
	rc = pthread_create(&watchdog, NULL, watchdog_main, NULL);
	if (rc)
		bench_die("pthread_create: %s", strerror(rc));
	pthread_detach(watchdog);

	print_header(stdout, "");
	/* A quarter second's look at the machine before starting. */
	load_sample(&before);
	usleep(250000);
	load_sample(&start);
	report_load(stdout, "", "before the start", other_load(&before, &start));
	calibrate_work_job();
	printf("work job: %.1f ns (%lu spin iterations), calibrated at "
	       "start\n", work_job_ns, spin_iterations);
	fflush(stdout);

	/* Run after run, every workload, every contender: interleaved. */
	for (int run = 0; run < nruns; run++) {
		atomic_store(&where.run, run + 1);
		for (int wl = 0; wl < WL_COUNT; wl++) {
			if (!workloads[wl].selected || workloads[wl].once)
				continue;
			fprintf(stderr, "run %d/%d %-5s", run + 1, nruns,
				workloads[wl].key);
			progress_open = 1;
			for (int ci = 0; ci < ncontenders; ci++) {
				if (not_applicable[wl][ci])
					continue;
				fprintf(stderr, " %s", contenders[ci]->name);
				run_one((enum workload_id)wl, ci, run);
			}
			fputc('\n', stderr);
			progress_open = 0;
		}
		for (int k = 0; k < SCHED_KINDS; k++)
			if (sched_selected[k])
				sched_bench_run((enum sched_kind)k, run);
	}

	/* The load figure covers the timed runs only: valgrind, a child,
	 * would count as another process. */
	load_sample(&end);
	busy = other_load(&start, &end);
	if (workloads[WL_INSTR].selected) {
		fprintf(stderr, "instr: valgrind --tool=callgrind (slow; "
			"deterministic, so measured once)\n");
		failed |= run_outside(WL_INSTR, "BENCH_INSTR_CMD",
				      "sh ./instr.sh");
	}
	if (workloads[WL_MEM].selected) {
		fprintf(stderr, "mem: build/mem (malloc interposer)\n");
		failed |= run_outside(WL_MEM, "BENCH_MEM_CMD", "./build/mem");
	}

	for (int wl = 0; wl < WL_COUNT; wl++)
		if (workloads[wl].selected && !workloads[wl].once)
			print_section((enum workload_id)wl);
	for (int k = 0; k < SCHED_KINDS; k++)
		if (sched_selected[k])
			sched_bench_print((enum sched_kind)k);
	for (int wl = 0; wl < WL_COUNT; wl++)
		if (workloads[wl].selected && workloads[wl].once)
			print_section((enum workload_id)wl);
	print_summary();
	putchar('\n');
	report_load(stdout, "", "on average during the runs", busy);
	write_results(results, busy);
	if (failed) {
		printf("\nFAILED: instr or mem reported a failure (above). "
		       "Results in %s.\n", results);
		return 1;
	}
	printf("\nEvery run completed exactly its job count. Results also in "
	       "%s.\n", results);
	return 0;
}
