/* SPDX-License-Identifier: MIT */
/*
 * instr.c - the program that instr.sh runs under valgrind --tool=callgrind
 * to count instructions per job (issue 7's instr workload). It creates a
 * 2-worker pool, submits N no-op jobs, waits until all have run, and
 * destroys the pool. instr.sh runs it for N = 1 and for a large N and
 * takes (Ir(N) - Ir(1)) / (N - 1), so what start-up, thread creation and
 * teardown cost cancels out and what remains is the cost of one more job,
 * on every thread: the submit, the hand-over, the worker's loop, the call.
 *
 *   instr <contender> ff <N>   fire-and-forget. libasyncq: aq_submit with
 *                              no options into a 65536-slot ring, retried
 *                              on -EAGAIN (PAUSE, then sched_yield), as the
 *                              benchmark's contender does; peers: their
 *                              submit, through their adapter in peer_*.c.
 *   instr <contender> fut <N>  a future per job, in batches of BATCH:
 *                              submit BATCH jobs each with a future, then
 *                              aq_future_get() and aq_future_release()
 *                              each. Peers have no futures: each job
 *                              carries a mutex+condvar cell that the
 *                              submitter waits on, as their users write.
 *   instr libasyncq-b64 ff|fut <N>
 *                              the same with aq_submit_batch(): ff, 64
 *                              jobs per call; fut, BATCH per call with a
 *                              future each.
 *   instr --list               the contenders this binary has.
 *
 * Every job is the benchmark's shape: a struct bench_job called through a
 * trampoline; it adds one to a counter, and the one that completes the
 * count posts a semaphore, which is how the program knows every job ran
 * (a lost job hangs it; instr.sh's timeout then reports it).
 */
#include <errno.h>
#include <pthread.h>
#include <sched.h>
#include <semaphore.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include <asyncq.h>

#include "bench.h"

/*
 * Pool creation and teardown are left out of the count, for every
 * contender: they are a fixed cost that the N = 1 run subtracts anyway,
 * except where it is not fixed: C-Thread-Pool's thpool_init() spins until
 * its threads have started and thpool_destroy() polls time() until they
 * are gone, so its count varied by more than the jobs themselves (per job
 * figures from 19 to 1943 in runs of the same build).
 */
#if defined(__has_include)
#if __has_include(<valgrind/callgrind.h>)
#include <valgrind/callgrind.h>
#define UNCOUNTED(stmt)                                                      \
	do {                                                                 \
		CALLGRIND_TOGGLE_COLLECT;                                    \
		stmt;                                                        \
		CALLGRIND_TOGGLE_COLLECT;                                    \
	} while (0)
#endif
#endif
#ifndef UNCOUNTED
#define UNCOUNTED(stmt) stmt
#endif

#define RING_SLOTS 65536u
#define BATCH 256u /* fut: jobs submitted before their futures are read */
#define SPINS_BEFORE_YIELD 8

static atomic_ulong done;
static unsigned long target;
static unsigned long full_retries; /* libasyncq: submits that found the
				      ring full (the submitting thread's) */
static sem_t all_done;

noreturn void bench_die(const char *fmt, ...)
{
	va_list ap;

	fputs("instr: ", stderr);
	va_start(ap, fmt);
	vfprintf(stderr, fmt, ap);
	va_end(ap);
	fputc('\n', stderr);
	exit(2);
}

/* The no-op job: count, and wake main when the count is complete. */
static void count_one(void)
{
	/* Relaxed: only the count matters; sem_post orders the end. */
	if (atomic_fetch_add_explicit(&done, 1, memory_order_relaxed) + 1 ==
	    target)
		sem_post(&all_done);
}

static void noop_run(struct bench_job *job)
{
	(void)job;
	count_one();
}

static struct bench_job noop_job = { noop_run };

static void wait_all(void)
{
	while (sem_wait(&all_done) != 0)
		if (errno != EINTR)
			bench_die("sem_wait: %s", strerror(errno));
}

/* ---- libasyncq ----------------------------------------------------------- */

static int aq_trampoline(void *arg, void **result)
{
	struct bench_job *job = arg;

	(void)result;
	job->fn(job);
	return 0;
}

/* The ring was full (rc): retry as the benchmark's contender does. Out of
 * line, as a user's full-ring handling would be: the loop below then
 * costs what a plain call costs. */
static __attribute__((noinline)) void aq_submit_retry(aq_pool *pool,
						      aq_future **fut, int rc)
{
	unsigned failures = 0;

	do {
		if (rc != -EAGAIN)
			bench_die("aq_submit: %s", aq_strerror(rc));
		full_retries++;
		if (++failures <= SPINS_BEFORE_YIELD)
			bench_cpu_relax();
		else
			sched_yield();
	} while ((rc = aq_submit(pool, aq_trampoline, &noop_job, NULL, fut)) !=
		 0);
}

static inline void aq_submit_one(aq_pool *pool, aq_future **fut)
{
	int rc = aq_submit(pool, aq_trampoline, &noop_job, NULL, fut);

	if (__builtin_expect(rc != 0, 0))
		aq_submit_retry(pool, fut, rc);
}

/* Submit jobs[0..n-1] with aq_submit_batch(), retrying what did not fit. */
static void aq_submit_all(aq_pool *pool, struct aq_job *jobs, unsigned n,
			  aq_future **futs)
{
	unsigned done = 0, failures = 0;

	while (done < n) {
		int rc = aq_submit_batch(pool, jobs + done, n - done, NULL,
					 futs ? futs + done : NULL);

		if (rc > 0) {
			/* Progress: the back-off starts afresh, as in the
			 * benchmark's batch contender. */
			done += (unsigned)rc;
			failures = 0;
			continue;
		}
		if (rc != -EAGAIN)
			bench_die("aq_submit_batch: %s", aq_strerror(rc));
		full_retries++;
		if (++failures <= SPINS_BEFORE_YIELD)
			bench_cpu_relax();
		else
			sched_yield();
	}
}

/* libasyncq-b64: the same jobs in batches (ff: 64 per call; fut: BATCH
 * per call, each with its future). */
static void run_asyncq_batch(int with_future, aq_pool *pool, unsigned long n)
{
	static struct aq_job jobs[BATCH];
	aq_future *futs[BATCH];
	unsigned per = with_future ? BATCH : 64;

	for (unsigned j = 0; j < BATCH; j++)
		jobs[j] = (struct aq_job){ aq_trampoline, &noop_job };
	for (unsigned long i = 0; i < n; i += per) {
		unsigned b = n - i < per ? (unsigned)(n - i) : per;

		aq_submit_all(pool, jobs, b, with_future ? futs : NULL);
		for (unsigned j = 0; with_future && j < b; j++) {
			int rc = aq_future_get(futs[j], NULL, -1);

			if (rc != 0)
				bench_die("aq_future_get: %s", aq_strerror(rc));
			aq_future_release(futs[j]);
		}
	}
}

static void run_asyncq(int batch, int with_future, unsigned long n)
{
	struct aq_pool_config cfg = { .workers = BENCH_WORKERS,
				      .queue_capacity = RING_SLOTS };
	aq_future *futs[BATCH];
	aq_pool *pool;
	int rc;

	UNCOUNTED(rc = aq_pool_create(&pool, &cfg));
	if (rc < 0)
		bench_die("aq_pool_create: %s", aq_strerror(rc));
	if (batch) {
		run_asyncq_batch(with_future, pool, n);
	} else if (!with_future) {
		for (unsigned long i = 0; i < n; i++)
			aq_submit_one(pool, NULL);
	} else {
		for (unsigned long i = 0; i < n; i += BATCH) {
			unsigned b = n - i < BATCH ? (unsigned)(n - i) : BATCH;

			for (unsigned j = 0; j < b; j++)
				aq_submit_one(pool, &futs[j]);
			for (unsigned j = 0; j < b; j++) {
				rc = aq_future_get(futs[j], NULL, -1);
				if (rc != 0)
					bench_die("aq_future_get: %s",
						  aq_strerror(rc));
				aq_future_release(futs[j]);
			}
		}
	}
	wait_all();
	UNCOUNTED(aq_pool_destroy(pool));
}

/* ---- the peers, through their benchmark adapters ------------------------ */

static const struct contender *const peers[] = {
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
#define NPEERS (sizeof(peers) / sizeof(peers[0]))

/* A peer's stand-in for a future, as in bench.c's rt workload. */
struct cell {
	struct bench_job job; /* first: the job pointer is the cell */
	pthread_mutex_t lock;
	pthread_cond_t cond;
	int done; /* guarded by lock */
};

static void cell_run(struct bench_job *job)
{
	struct cell *cell = (struct cell *)job;

	count_one();
	pthread_mutex_lock(&cell->lock);
	cell->done = 1;
	pthread_cond_signal(&cell->cond);
	pthread_mutex_unlock(&cell->lock);
}

static void run_peer(const struct contender *ct, int with_future,
		     unsigned long n)
{
	static struct cell cells[BATCH];
	void *pool;

	UNCOUNTED(pool = ct->create(BENCH_WORKERS));
	if (!with_future) {
		for (unsigned long i = 0; i < n; i++)
			ct->submit(pool, &noop_job);
	} else {
		for (unsigned long i = 0; i < n; i += BATCH) {
			unsigned b = n - i < BATCH ? (unsigned)(n - i) : BATCH;

			for (unsigned j = 0; j < b; j++) {
				struct cell *c = &cells[j];

				c->job.fn = cell_run;
				c->done = 0;
				pthread_mutex_init(&c->lock, NULL);
				pthread_cond_init(&c->cond, NULL);
				ct->submit(pool, &c->job);
			}
			for (unsigned j = 0; j < b; j++) {
				struct cell *c = &cells[j];

				pthread_mutex_lock(&c->lock);
				while (!c->done)
					pthread_cond_wait(&c->cond, &c->lock);
				pthread_mutex_unlock(&c->lock);
				pthread_cond_destroy(&c->cond);
				pthread_mutex_destroy(&c->lock);
			}
		}
	}
	wait_all();
	if (ct->drain)
		ct->drain(pool);
	UNCOUNTED(ct->destroy(pool));
}

int main(int argc, char **argv)
{
	const struct contender *peer = NULL;
	unsigned long n;
	int with_future, is_aq, is_batch;
	char *end;

	if (argc == 2 && strcmp(argv[1], "--list") == 0) {
		printf("libasyncq\nlibasyncq-b64\n");
		for (size_t i = 0; i < NPEERS; i++)
			printf("%s\n", peers[i]->name);
		return 0;
	}
	if (argc != 4)
		bench_die("usage: instr <contender> ff|fut <N> | instr --list");
	is_batch = strcasecmp(argv[1], "libasyncq-b64") == 0;
	is_aq = is_batch || strcasecmp(argv[1], "libasyncq") == 0;
	for (size_t i = 0; i < NPEERS && !is_aq; i++)
		if (strcasecmp(argv[1], peers[i]->name) == 0)
			peer = peers[i];
	if (!is_aq && !peer)
		bench_die("unknown contender '%s' (instr --list)", argv[1]);
	if (strcmp(argv[2], "ff") != 0 && strcmp(argv[2], "fut") != 0)
		bench_die("mode must be ff or fut, not '%s'", argv[2]);
	with_future = strcmp(argv[2], "fut") == 0;
	errno = 0;
	n = strtoul(argv[3], &end, 10);
	if (errno || *end || n < 1)
		bench_die("N must be a positive integer, not '%s'", argv[3]);
	if (peer && (peer->flags & CT_INLINE) && with_future)
		bench_die("%s has no fut mode", peer->name);

	target = n;
	if (sem_init(&all_done, 0, 0) != 0)
		bench_die("sem_init: %s", strerror(errno));
	if (is_aq)
		run_asyncq(is_batch, with_future, n);
	else
		run_peer(peer, with_future, n);
	if (atomic_load(&done) != n)
		bench_die("FAILED: %lu of %lu jobs ran", atomic_load(&done), n);
	/* For instr.sh: each retry is a failed aq_submit, and is counted. */
	fprintf(stderr, "instr: full-ring retries: %lu\n", full_retries);
	return 0;
}
