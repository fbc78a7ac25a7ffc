/* SPDX-License-Identifier: MIT */
/*
 * mem.c - the mem workload of `make bench` (issue 7): what a queued job
 * costs in memory, and how many allocations a job costs once the pool is
 * warm. A program of its own because it is linked with a malloc
 * interposer (-Wl,--wrap=malloc,--wrap=free,--wrap=calloc,--wrap=realloc,
 * --wrap=posix_memalign): every call those functions get from this program,
 * from libasyncq.a and from the statically linked peers is counted, with
 * the bytes it hands out (malloc_usable_size). The main benchmark is not
 * linked with it, so its timings pay nothing for the counting. Calls made
 * inside shared libraries (libc itself, GLib, libuv) are not seen, so only
 * the peers compiled into the program are measured: the textbook pool and
 * C-Thread-Pool.
 *
 * Measured:
 *   ring bytes per slot   libasyncq allocates its ring at create: the
 *                         bytes create allocates for a 2^20-slot ring less
 *                         those for 2^16, per extra slot.
 *   heap bytes per queued job
 *                         a 1-worker pool whose worker is held by a gate
 *                         job; N jobs queued behind it; the growth of the
 *                         heap in use (mallinfo2(), chunk headers
 *                         included; the interposer's usable bytes as a
 *                         cross-check) divided by N.
 *                         Fire-and-forget, and with a future.
 *   bytes per queued ff job = ring bytes per slot + heap bytes per queued
 *                         ff job (the ring is paid for at create, whether
 *                         or not it is full: this is its cost per slot).
 *   mallocs per job       a 2-worker pool; N jobs to warm it up, then the
 *                         allocation calls (malloc, calloc, realloc,
 *                         posix_memalign) during N more, divided by N.
 *                         Jobs go in batches of 256, each waited for
 *                         (futures: get and release each), so the queue
 *                         is as deep in the measured phase as in the
 *                         warm-up. Fire-and-forget; a future per job; and
 *                         a few configurations that give every job a
 *                         record (timing, a scheduler).
 *
 * Output: the line protocol bench.c reads (value / note lines). N is
 * BENCH_N (default 100000); BENCH_CONTENDER_LIST limits the contenders.
 */
#include <errno.h>
#include <malloc.h>
#include <pthread.h>
#include <sched.h>
#include <semaphore.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <unistd.h>

#include <asyncq.h>

#include "bench.h"

#define BATCH 256u /* futures submitted before they are read */
#define SPINS_BEFORE_YIELD 8

/* ---- the interposer -------------------------------------------------------- */

void *__real_malloc(size_t size);
void *__real_calloc(size_t n, size_t size);
void *__real_realloc(void *p, size_t size);
int __real_posix_memalign(void **p, size_t align, size_t size);
void __real_free(void *p);

void *__wrap_malloc(size_t size);
void *__wrap_calloc(size_t n, size_t size);
void *__wrap_realloc(void *p, size_t size);
int __wrap_posix_memalign(void **p, size_t align, size_t size);
void __wrap_free(void *p);

/*
 * What the interposer counts. Relaxed atomics: each is a tally read after
 * the threads that add to it have handed their work back (a semaphore or a
 * future orders that), never a synchronisation point.
 */
static struct {
	atomic_ulong allocs;   /* malloc + calloc + realloc + posix_memalign */
	atomic_ulong frees;    /* free of a non-NULL pointer */
	atomic_llong live;     /* usable bytes handed out and not freed */
} heap;

static void heap_add(void *p)
{
	atomic_fetch_add_explicit(&heap.allocs, 1, memory_order_relaxed);
	atomic_fetch_add_explicit(&heap.live, (long long)malloc_usable_size(p),
				  memory_order_relaxed);
}

static void heap_sub(void *p)
{
	atomic_fetch_add_explicit(&heap.frees, 1, memory_order_relaxed);
	atomic_fetch_sub_explicit(&heap.live, (long long)malloc_usable_size(p),
				  memory_order_relaxed);
}

void *__wrap_malloc(size_t size)
{
	void *p = __real_malloc(size);

	if (p)
		heap_add(p);
	return p;
}

void *__wrap_calloc(size_t n, size_t size)
{
	void *p = __real_calloc(n, size);

	if (p)
		heap_add(p);
	return p;
}

void *__wrap_realloc(void *old, size_t size)
{
	long long before = old ? (long long)malloc_usable_size(old) : 0;
	void *p = __real_realloc(old, size);

	if (p) {
		atomic_fetch_add_explicit(&heap.allocs, 1,
					  memory_order_relaxed);
		atomic_fetch_add_explicit(&heap.live,
					  (long long)malloc_usable_size(p) -
						  before,
					  memory_order_relaxed);
	}
	return p;
}

int __wrap_posix_memalign(void **pp, size_t align, size_t size)
{
	int rc = __real_posix_memalign(pp, align, size);

	if (rc == 0)
		heap_add(*pp);
	return rc;
}

void __wrap_free(void *p)
{
	if (p)
		heap_sub(p);
	__real_free(p);
}

struct snap {
	unsigned long allocs, frees;
	long long live;
	size_t mallinfo_used; /* mallinfo2: in-use chunks + mmapped */
};

static void snap_take(struct snap *s)
{
	struct mallinfo2 mi = mallinfo2();

	s->allocs = atomic_load(&heap.allocs);
	s->frees = atomic_load(&heap.frees);
	s->live = atomic_load(&heap.live);
	s->mallinfo_used = mi.uordblks + mi.hblkhd;
}

/* ---- jobs ------------------------------------------------------------------ */

noreturn void bench_die(const char *fmt, ...)
{
	va_list ap;

	fflush(stdout);
	fputs("mem: ", stderr);
	va_start(ap, fmt);
	vfprintf(stderr, fmt, ap);
	va_end(ap);
	fputc('\n', stderr);
	exit(2);
}

static atomic_ulong done;
static atomic_ulong target;
static sem_t all_done;

static void count_begin(unsigned long jobs)
{
	atomic_store(&done, 0);
	atomic_store(&target, jobs);
}

static void count_one(void)
{
	/* Relaxed: only the count matters; sem_post orders the end. */
	if (atomic_fetch_add_explicit(&done, 1, memory_order_relaxed) + 1 ==
	    atomic_load_explicit(&target, memory_order_relaxed))
		sem_post(&all_done);
}

static void count_wait(const char *what)
{
	while (sem_wait(&all_done) != 0)
		if (errno != EINTR)
			bench_die("sem_wait: %s", strerror(errno));
	if (atomic_load(&done) != atomic_load(&target))
		bench_die("FAILED: %s: %lu jobs ran, %lu submitted", what,
			  atomic_load(&done), atomic_load(&target));
}

static void noop_run(struct bench_job *job)
{
	(void)job;
	count_one();
}

static struct bench_job noop_job = { noop_run };

/* The gate: holds the only worker until released; counts as a job. */
static sem_t gate_started, gate_open;

static void gate_run(struct bench_job *job)
{
	(void)job;
	sem_post(&gate_started);
	while (sem_wait(&gate_open) != 0)
		;
	count_one();
}

static struct bench_job gate_job = { gate_run };

/* ---- libasyncq ------------------------------------------------------------- */

static int aq_trampoline(void *arg, void **result)
{
	struct bench_job *job = arg;

	(void)result;
	job->fn(job);
	return 0;
}

static void aq_submit_retry(aq_pool *pool, struct bench_job *job,
			    const struct aq_job_opts *opts, aq_future **fut)
{
	unsigned failures = 0;
	int rc;

	while ((rc = aq_submit(pool, aq_trampoline, job, opts, fut)) != 0) {
		if (rc != -EAGAIN)
			bench_die("aq_submit: %s", aq_strerror(rc));
		if (++failures <= SPINS_BEFORE_YIELD)
			bench_cpu_relax();
		else
			sched_yield();
	}
}

static aq_pool *aq_make(unsigned workers, unsigned capacity, unsigned flags,
			const struct aq_sched_ops *sched)
{
	struct aq_pool_config cfg = { .workers = workers,
				      .queue_capacity = capacity,
				      .flags = flags,
				      .sched = sched };
	aq_pool *pool;
	int rc = aq_pool_create(&pool, &cfg);

	if (rc < 0)
		bench_die("aq_pool_create: %s", aq_strerror(rc));
	return pool;
}

/* Live heap bytes that creating a 1-worker pool of this capacity adds. */
static long long aq_create_bytes(unsigned capacity)
{
	struct snap a, b;
	aq_pool *pool;

	snap_take(&a);
	pool = aq_make(1, capacity, 0, NULL);
	/* Let the worker start and settle, whatever it allocates. */
	usleep(20000);
	snap_take(&b);
	aq_pool_destroy(pool);
	return b.live - a.live;
}

/*
 * Heap bytes per job queued behind the gate, fire-and-forget or with a
 * future, as mallinfo2() sees them (chunk headers included: what the heap
 * really grows by); *usable gets the interposer's count of the same.
 */
static double aq_queued_bytes(unsigned long n, int with_future,
			      const struct aq_sched_ops *sched, double *usable)
{
	unsigned capacity = 2;
	aq_future **futs = NULL;
	struct snap a, b;
	aq_pool *pool;

	while (capacity < n + 1)
		capacity <<= 1;
	pool = aq_make(1, capacity, 0, sched);
	if (with_future && !(futs = calloc(n, sizeof(*futs))))
		bench_die("out of memory");
	count_begin(n + 1);
	aq_submit_retry(pool, &gate_job, NULL, NULL);
	while (sem_wait(&gate_started) != 0)
		;
	snap_take(&a);
	for (unsigned long i = 0; i < n; i++)
		aq_submit_retry(pool, &noop_job, NULL,
				with_future ? &futs[i] : NULL);
	snap_take(&b);
	sem_post(&gate_open);
	count_wait(with_future ? "queued fut" : "queued ff");
	for (unsigned long i = 0; with_future && i < n; i++) {
		if (aq_future_get(futs[i], NULL, -1) != 0)
			bench_die("FAILED: a queued job's future did not "
				  "succeed");
		aq_future_release(futs[i]);
	}
	free(futs);
	aq_pool_destroy(pool);
	*usable = (double)(b.live - a.live) / (double)n;
	return ((double)b.mallinfo_used - (double)a.mallinfo_used) / (double)n;
}

/* One way of submitting, for the steady-state count. */
struct aq_mode {
	const char *name;
	int with_future;
	unsigned flags;                   /* pool flags */
	const struct aq_sched_ops *(*sched)(void);
	int fair_opts;                    /* group and weight per job */
};

static void aq_mode_jobs(aq_pool *pool, const struct aq_mode *m,
			 unsigned long n)
{
	aq_future *futs[BATCH];

	count_begin(n);
	for (unsigned long i = 0; i < n; i += BATCH) {
		unsigned b = n - i < BATCH ? (unsigned)(n - i) : BATCH;

		for (unsigned j = 0; j < b; j++) {
			struct aq_job_opts o = { .group = (i + j) % 8,
						 .weight = (i + j) % 8 + 1 };

			aq_submit_retry(pool, &noop_job,
					m->fair_opts ? &o : NULL,
					m->with_future ? &futs[j] : NULL);
		}
		for (unsigned j = 0; m->with_future && j < b; j++) {
			if (aq_future_get(futs[j], NULL, -1) != 0)
				bench_die("FAILED: %s: a future did not "
					  "succeed", m->name);
			aq_future_release(futs[j]);
		}
		/* Fire-and-forget too waits for its batch: the queue stays
		 * as shallow as the warm-up's, so a record cache that grows
		 * to the deepest queue seen is warm (see the note). */
		while (!m->with_future && atomic_load(&done) < i + b)
			sched_yield();
	}
	count_wait(m->name);
}

/* Allocation calls per job after a warm-up of n jobs, over n more. */
static double aq_mallocs_per_job(const struct aq_mode *m, unsigned long n,
				 double *frees)
{
	aq_pool *pool = aq_make(BENCH_WORKERS, 65536, m->flags,
				m->sched ? m->sched() : NULL);
	struct snap a, b;

	aq_mode_jobs(pool, m, n); /* warm-up */
	snap_take(&a);
	aq_mode_jobs(pool, m, n);
	snap_take(&b);
	aq_pool_destroy(pool);
	*frees = (double)(b.frees - a.frees) / (double)n;
	return (double)(b.allocs - a.allocs) / (double)n;
}

/* ---- the peers compiled in ------------------------------------------------ */

static const struct contender *const peers[] = {
	&contender_textbook,
#ifdef HAVE_THPOOL
	&contender_thpool,
#endif
};

/* A peer's future: a mutex+condvar cell, as bench.c's rt uses. */
struct cell {
	struct bench_job job;
	pthread_mutex_t lock;
	pthread_cond_t cond;
	int done;
};

static void cell_run(struct bench_job *job)
{
	struct cell *c = (struct cell *)job;

	count_one();
	pthread_mutex_lock(&c->lock);
	c->done = 1;
	pthread_cond_signal(&c->cond);
	pthread_mutex_unlock(&c->lock);
}

static double peer_queued_bytes(const struct contender *ct, unsigned long n,
				double *usable)
{
	void *pool = ct->create(1);
	struct snap a, b;

	count_begin(n + 1);
	ct->submit(pool, &gate_job);
	while (sem_wait(&gate_started) != 0)
		;
	snap_take(&a);
	for (unsigned long i = 0; i < n; i++)
		ct->submit(pool, &noop_job);
	snap_take(&b);
	sem_post(&gate_open);
	count_wait(ct->name);
	ct->destroy(pool);
	*usable = (double)(b.live - a.live) / (double)n;
	return ((double)b.mallinfo_used - (double)a.mallinfo_used) / (double)n;
}

static void peer_jobs(const struct contender *ct, void *pool, int with_cell,
		      unsigned long n)
{
	static struct cell cells[BATCH];

	count_begin(n);
	for (unsigned long i = 0; i < n; i += BATCH) {
		unsigned b = n - i < BATCH ? (unsigned)(n - i) : BATCH;

		for (unsigned j = 0; j < b; j++) {
			struct cell *c = &cells[j];

			if (!with_cell) {
				ct->submit(pool, &noop_job);
				continue;
			}
			c->job.fn = cell_run;
			c->done = 0;
			pthread_mutex_init(&c->lock, NULL);
			pthread_cond_init(&c->cond, NULL);
			ct->submit(pool, &c->job);
		}
		for (unsigned j = 0; with_cell && j < b; j++) {
			struct cell *c = &cells[j];

			pthread_mutex_lock(&c->lock);
			while (!c->done)
				pthread_cond_wait(&c->cond, &c->lock);
			pthread_mutex_unlock(&c->lock);
			pthread_cond_destroy(&c->cond);
			pthread_mutex_destroy(&c->lock);
		}
	}
	count_wait(ct->name);
}

static double peer_mallocs_per_job(const struct contender *ct, int with_cell,
				   unsigned long n)
{
	void *pool = ct->create(BENCH_WORKERS);
	struct snap a, b;

	peer_jobs(ct, pool, with_cell, n);
	snap_take(&a);
	peer_jobs(ct, pool, with_cell, n);
	snap_take(&b);
	ct->destroy(pool);
	return (double)(b.allocs - a.allocs) / (double)n;
}

/* ---- main ---------------------------------------------------------------- */

static int wanted(const char *name)
{
	const char *list = getenv("BENCH_CONTENDER_LIST");
	size_t len = strlen(name);

	if (!list || !*list)
		return 1;
	while (*list) {
		size_t item = strcspn(list, ",");

		if (item == len && strncasecmp(list, name, len) == 0)
			return 1;
		list += item + (list[item] == ',');
	}
	return 0;
}

int main(void)
{
	const char *s = getenv("BENCH_N");
	unsigned long n = s && *s ? strtoul(s, NULL, 10) : 100000;
	static const struct aq_mode modes[] = {
		{ "ff", 0, 0, NULL, 0 },
		{ "fut", 1, 0, NULL, 0 },
		{ "ff with AQ_POOL_TIMING (a record per job)", 0,
		  AQ_POOL_TIMING, NULL, 0 },
		{ "fut, aq_sched_fifo()", 1, 0, aq_sched_fifo, 0 },
		{ "fut, aq_sched_priority()", 1, 0, aq_sched_priority, 0 },
		{ "ff, aq_sched_fair() (8 groups)", 0, 0, aq_sched_fair, 1 },
	};

	if (n < 1000)
		n = 1000;
	/* Line-buffered: bench.c reads us through a pipe as we go. */
	setvbuf(stdout, NULL, _IOLBF, 0);
	if (sem_init(&all_done, 0, 0) || sem_init(&gate_started, 0, 0) ||
	    sem_init(&gate_open, 0, 0))
		bench_die("sem_init: %s", strerror(errno));

	if (wanted("libasyncq")) {
		const unsigned small = 1u << 16, big = 1u << 20;
		long long b_small = aq_create_bytes(small);
		long long b_big = aq_create_bytes(big);
		double slot = (double)(b_big - b_small) / (double)(big - small);
		double us_ff, us_fut, us_sched;
		double ff = aq_queued_bytes(n, 0, NULL, &us_ff);
		double fut = aq_queued_bytes(n, 1, NULL, &us_fut);
		double sched = aq_queued_bytes(n, 0, aq_sched_fifo(),
					       &us_sched);
		double mallocs_ff = 0, mallocs_fut = 0;

		printf("value libasyncq ring_slot_bytes %.2f\n", slot);
		printf("value libasyncq heap_ff_bytes %.2f\n", ff);
		printf("value libasyncq queued_ff_bytes %.2f\n", slot + ff);
		printf("value libasyncq heap_fut_bytes %.2f\n", fut);
		printf("note libasyncq: create allocates %lld B with a %u-slot "
		       "ring, %lld B with %u: %.2f B per ring slot\n",
		       b_small, small, b_big, big, slot);
		printf("note libasyncq: %lu jobs queued behind a gate on a "
		       "1-worker pool: heap %+.2f B per ff job (usable "
		       "%+.2f), %+.2f B per job with a future (usable "
		       "%+.2f)\n", n, ff, us_ff, fut, us_fut);
		printf("note libasyncq: the same through the pluggable path "
		       "(aq_sched_fifo()): heap %+.2f B per queued ff job "
		       "(usable %+.2f): a scheduled job always has a record\n",
		       sched, us_sched);
		for (size_t i = 0; i < sizeof(modes) / sizeof(modes[0]); i++) {
			double frees, per = aq_mallocs_per_job(&modes[i], n,
							       &frees);

			if (i == 0)
				mallocs_ff = per;
			if (i == 1)
				mallocs_fut = per;
			printf("note libasyncq: steady state, %s: %.4f "
			       "allocation calls and %.4f frees per job (%lu "
			       "jobs after %lu of warm-up)\n", modes[i].name,
			       per, frees, n, n);
		}
		printf("value libasyncq mallocs_ff %.4f\n", mallocs_ff);
		printf("value libasyncq mallocs_fut %.4f\n", mallocs_fut);
	}
	for (size_t i = 0; i < sizeof(peers) / sizeof(peers[0]); i++) {
		const struct contender *ct = peers[i];
		double us, q, ff, cell;

		if (!wanted(ct->name))
			continue;
		q = peer_queued_bytes(ct, n, &us);
		ff = peer_mallocs_per_job(ct, 0, n);
		cell = peer_mallocs_per_job(ct, 1, n);
		printf("value %s ring_slot_bytes 0\n", ct->name);
		printf("value %s heap_ff_bytes %.2f\n", ct->name, q);
		printf("value %s queued_ff_bytes %.2f\n", ct->name, q);
		printf("value %s mallocs_ff %.4f\n", ct->name, ff);
		printf("value %s mallocs_fut %.4f\n", ct->name, cell);
		printf("note %s: heap %+.2f B per queued job (usable %+.2f); "
		       "%.4f allocation calls per job, %.4f with a mutex+"
		       "condvar cell\n", ct->name, q, us, ff, cell);
	}
	printf("note steady state: jobs in batches of 256, each batch "
	       "waited for; records come from a per-pool cache that grows to "
	       "the deepest queue of records seen (and keeps them until "
	       "destroy), so an unbounded burst through a scheduler or with "
	       "timing allocates until the cache has grown to it\n");
	printf("note heap bytes: mallinfo2() in-use growth (chunk headers "
	       "included); usable: the interposer's malloc_usable_size() "
	       "sum\n");
	printf("note allocation calls: malloc, calloc, realloc and "
	       "posix_memalign from the program, libasyncq.a and the peers "
	       "linked in (-Wl,--wrap); calls inside shared libraries (libc, "
	       "GLib, libuv) are not seen\n");
	return 0;
}
