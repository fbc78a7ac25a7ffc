/* SPDX-License-Identifier: MIT */
/*
 * check_threads.c - the worker threads (lib/threads.c): start and stop
 * hooks, names, stacks, pinning, elastic sizing, aq_pool_resize(), two
 * pools side by side, fork and signals.
 */
#include <dirent.h>
#include <errno.h>
#include <limits.h>
#include <poll.h>
#include <pthread.h>
#include <sched.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/types.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include <check.h>

#include "fault.h"
#include "helpers.h"
#include "suites.h"

/* Built with ThreadSanitizer? (gcc says so; clang answers __has_feature.) */
#if defined(__SANITIZE_THREAD__)
#define TSAN_BUILD 1
#elif defined(__has_feature)
#if __has_feature(thread_sanitizer)
#define TSAN_BUILD 1
#endif
#endif
#ifndef TSAN_BUILD
#define TSAN_BUILD 0
#endif

/* ---- worker hooks -------------------------------------------------------- */

static int hk_starts(struct th_hooks *hk, unsigned i)
{
	int n;

	pthread_mutex_lock(&hk->mu);
	n = hk->starts[i];
	pthread_mutex_unlock(&hk->mu);
	return n;
}

static int hk_stops(struct th_hooks *hk, unsigned i)
{
	int n;

	pthread_mutex_lock(&hk->mu);
	n = hk->stops[i];
	pthread_mutex_unlock(&hk->mu);
	return n;
}

static int hk_field(struct th_hooks *hk, const int *field)
{
	int n;

	pthread_mutex_lock(&hk->mu);
	n = *field;
	pthread_mutex_unlock(&hk->mu);
	return n;
}

static int64_t hk_first_stop(struct th_hooks *hk)
{
	int64_t t;

	pthread_mutex_lock(&hk->mu);
	t = hk->first_stop_ns;
	pthread_mutex_unlock(&hk->mu);
	return t;
}

struct workers_at {
	aq_pool *pool;
	int n;
};

static bool workers_eq(void *ctx)
{
	struct workers_at *w = ctx;

	return aq_pool_workers(w->pool) == w->n;
}

/* Poll aq_pool_workers() until it reads n (bounded by th_poll_seconds). */
static bool poll_workers(aq_pool *pool, int n)
{
	struct workers_at w = { pool, n };

	return th_poll(workers_eq, &w);
}

/* ---- jobs ---------------------------------------------------------------- */

/* What a worker thread looks like from inside a job. */
struct probe {
	struct th_gate *gate;  /* passed after recording, when not NULL */
	char name[16];         /* pthread_getname_np() */
	size_t stack_size;     /* pthread_getattr_np() */
	cpu_set_t cpus;        /* sched_getaffinity() */
	sigset_t mask;         /* the blocked signals */
	int index;             /* th_tl_index: the worker's index */
	struct th_hooks *hooks; /* th_tl_hooks: whose worker */
	pthread_t thread;
	atomic_int done;
};

static int probe_job(void *arg, void **result)
{
	struct probe *p = arg;
	pthread_attr_t attr;

	(void)result;
	pthread_getname_np(pthread_self(), p->name, sizeof(p->name));
	if (pthread_getattr_np(pthread_self(), &attr) == 0) {
		pthread_attr_getstacksize(&attr, &p->stack_size);
		pthread_attr_destroy(&attr);
	}
	CPU_ZERO(&p->cpus);
	sched_getaffinity(0, sizeof(p->cpus), &p->cpus); /* 0 = this thread */
	pthread_sigmask(SIG_BLOCK, NULL, &p->mask);
	p->index = th_tl_index;
	p->hooks = th_tl_hooks;
	p->thread = pthread_self();
	atomic_store(&p->done, 1);
	if (p->gate)
		th_gate_pass(p->gate);
	return 0;
}

/*
 * Run n probes on n distinct workers: each holds its worker at the gate
 * until all n have arrived, so no worker can take two.
 */
static void probe_workers(aq_pool *pool, struct probe *probes, unsigned n)
{
	struct th_gate gate;

	th_gate_init(&gate);
	for (unsigned i = 0; i < n; i++) {
		memset(&probes[i], 0, sizeof(probes[i]));
		probes[i].gate = &gate;
		probes[i].index = -2;
		ck_assert_int_eq(aq_submit(pool, probe_job, &probes[i], NULL,
					   NULL),
				 0);
	}
	ck_assert(th_gate_wait_entered(&gate, (int)n));
	th_gate_open(&gate);
	ck_assert(th_poll_int(&gate.passed, (int)n));
	th_gate_destroy(&gate);
	for (unsigned i = 0; i < n; i++)
		ck_assert_int_eq(th_ld(&probes[i].done), 1);
}

static const struct aq_job_opts block_opts = { .flags = AQ_JOB_BLOCK };

/* ---- worker lifecycle ---------------------------------------------------- */

START_TEST(test_hooks_create_shutdown)
{
	struct probe probes[3];
	struct th_hooks hk;
	pthread_t me = pthread_self();
	aq_pool *pool;
	unsigned seen = 0;

	th_hooks_init(&hk);
	pool = th_hooked_pool(3, &hk);
	ck_assert_int_eq(aq_pool_workers(pool), 3);
	ck_assert(th_poll_int(&hk.nstarts, 3));
	for (unsigned i = 0; i < 3; i++) {
		ck_assert_int_eq(hk_starts(&hk, i), 1);
		ck_assert_int_eq(hk_stops(&hk, i), 0);
		pthread_mutex_lock(&hk.mu);
		ck_assert(!pthread_equal(hk.thread[i], me));
		pthread_mutex_unlock(&hk.mu);
	}
	for (unsigned i = 3; i < TH_HK_MAX; i++)
		ck_assert_int_eq(hk_starts(&hk, i), 0);

	/* Jobs run on threads whose start hook has run, with its index. */
	probe_workers(pool, probes, 3);
	for (unsigned i = 0; i < 3; i++) {
		ck_assert_ptr_eq(probes[i].hooks, &hk);
		ck_assert_int_ge(probes[i].index, 0);
		ck_assert_int_lt(probes[i].index, 3);
		seen |= 1u << probes[i].index;
		pthread_mutex_lock(&hk.mu);
		ck_assert(pthread_equal(probes[i].thread,
					hk.thread[probes[i].index]));
		pthread_mutex_unlock(&hk.mu);
	}
	ck_assert_uint_eq(seen, 7);

	/* Shutdown joins: every stop hook has run when it returns. */
	ck_assert_int_eq(aq_pool_shutdown(pool, AQ_SHUTDOWN_DRAIN), 0);
	ck_assert_int_eq(th_ld(&hk.nstops), 3);
	for (unsigned i = 0; i < 3; i++)
		ck_assert_int_eq(hk_stops(&hk, i), 1);
	ck_assert_int_eq(hk_field(&hk, &hk.wrong_thread), 0);
	ck_assert_int_eq(hk_field(&hk, &hk.out_of_range), 0);
	ck_assert_int_eq(hk_field(&hk, &hk.live), 0);
	ck_assert_int_eq(aq_pool_workers(pool), 0);
	aq_pool_destroy(pool);
	ck_assert_int_eq(th_ld(&hk.nstarts), 3);
	ck_assert_int_eq(th_ld(&hk.nstops), 3);
	th_hooks_destroy(&hk);
}
END_TEST

START_TEST(test_resize_down_and_up)
{
	struct th_hooks hk;
	aq_pool *pool;
	aq_future *fut;
	int live_indices = 0;

	th_hooks_init(&hk);
	pool = th_hooked_pool(4, &hk);
	ck_assert(th_poll_int(&hk.nstarts, 4));

	/* Down: idle workers above max retire, running their stop hooks. */
	ck_assert_int_eq(aq_pool_resize(pool, 1, 1), 0);
	ck_assert(poll_workers(pool, 1));
	ck_assert(th_poll_int(&hk.nstops, 3));
	ck_assert_int_eq(aq_pool_workers(pool), 1);
	fut = th_resolved_future(pool, (void *)0x11); /* still works */
	aq_future_release(fut);

	/* Up: started at once, up to min. */
	ck_assert_int_eq(aq_pool_resize(pool, 3, 3), 0);
	ck_assert_int_eq(aq_pool_workers(pool), 3);
	ck_assert(th_poll_int(&hk.nstarts, 6));
	/* Retired indices are reused: three live, all below the old size. */
	for (unsigned i = 0; i < TH_HK_MAX; i++) {
		int d = hk_starts(&hk, i) - hk_stops(&hk, i);

		ck_assert_int_ge(d, 0);
		ck_assert_int_le(d, 1);
		if (d)
			ck_assert_uint_lt(i, 4);
		live_indices += d;
	}
	ck_assert_int_eq(live_indices, 3);

	/* Above the size the pool was created with. */
	ck_assert_int_eq(aq_pool_resize(pool, 6, 6), 0);
	ck_assert_int_eq(aq_pool_workers(pool), 6);
	ck_assert(th_poll_int(&hk.nstarts, 9));
	for (unsigned i = 0; i < 6; i++)
		ck_assert_int_eq(hk_starts(&hk, i) - hk_stops(&hk, i), 1);
	fut = th_resolved_future(pool, (void *)0x12);
	aq_future_release(fut);

	ck_assert_int_eq(aq_pool_shutdown(pool, AQ_SHUTDOWN_DRAIN), 0);
	ck_assert_int_eq(th_ld(&hk.nstops), 9);
	for (unsigned i = 0; i < TH_HK_MAX; i++)
		ck_assert_int_eq(hk_starts(&hk, i), hk_stops(&hk, i));
	ck_assert_int_eq(hk_field(&hk, &hk.wrong_thread), 0);
	ck_assert_int_eq(aq_pool_workers(pool), 0);
	ck_assert_int_eq(aq_pool_resize(pool, 1, 2), -ESHUTDOWN);
	aq_pool_destroy(pool);
	th_hooks_destroy(&hk);
}
END_TEST

/* Holds each worker at its first idle yield (fault.h's pause hook). */
static struct th_gate *first_yield_gate;
static _Thread_local int idle_yields_here;

static void hold_first_idle_yield(enum aq__pause_site site, void *user)
{
	(void)user;
	if (site == AQ__PAUSE_IDLE_YIELD && ++idle_yields_here == 1)
		th_gate_pass(first_yield_gate);
}

/*
 * Regression: a resize that lowers max_workers while the idle workers are
 * between their look at it and their sleep (here: held in their first
 * yield before they park) signalled before they took their parking key,
 * so they slept through it and none retired. The park's re-check now
 * sees one worker too many, and one retires.
 */
START_TEST(test_resize_down_while_workers_yield)
{
	struct th_hooks hk;
	struct th_gate gate;
	aq_pool *pool;

	th_gate_init(&gate);
	first_yield_gate = &gate;
	aq__pause_set(hold_first_idle_yield, NULL);
	th_hooks_init(&hk);
	pool = th_hooked_pool(2, &hk);
	ck_assert(th_gate_wait_entered(&gate, 2));
	ck_assert_int_eq(aq_pool_resize(pool, 1, 1), 0);
	th_gate_open(&gate);
	ck_assert(th_poll_int(&hk.nstops, 1));
	ck_assert(poll_workers(pool, 1));
	ck_assert_int_eq(aq_pool_shutdown(pool, AQ_SHUTDOWN_DRAIN), 0);
	ck_assert_int_eq(th_ld(&hk.nstops), 2);
	aq_pool_destroy(pool);
	aq__pause_set(NULL, NULL);
	th_hooks_destroy(&hk);
	th_gate_destroy(&gate);
}
END_TEST

/* Shrinking a pool whose workers are all busy strands nothing: the extra
 * workers retire only once idle, and every queued job runs. */
START_TEST(test_resize_down_busy)
{
	enum { JOBS = 40 };
	struct th_gate gate;
	atomic_long count = 0;
	struct th_hooks hk;
	aq_pool *pool;

	th_hooks_init(&hk);
	th_gate_init(&gate);
	pool = th_hooked_pool(4, &hk);
	for (int i = 0; i < 4; i++)
		ck_assert_int_eq(aq_submit(pool, th_gate_job, &gate, NULL,
					   NULL),
				 0);
	ck_assert(th_gate_wait_entered(&gate, 4));
	for (int i = 0; i < JOBS; i++)
		ck_assert_int_eq(aq_submit(pool, th_count_job, &count, NULL,
					   NULL),
				 0);
	ck_assert_int_eq(aq_pool_resize(pool, 1, 1), 0);
	/* Nobody is idle, so nobody retired yet. */
	ck_assert_int_eq(aq_pool_workers(pool), 4);
	ck_assert_int_eq(th_ld(&hk.nstops), 0);
	th_gate_open(&gate);
	ck_assert(poll_workers(pool, 1));
	ck_assert(th_poll_int(&hk.nstops, 3));
	aq_pool_shutdown(pool, AQ_SHUTDOWN_DRAIN);
	ck_assert_int_eq(th_ldl(&count), JOBS);
	ck_assert_int_eq(th_ld(&hk.nstops), 4);
	aq_pool_destroy(pool);
	th_gate_destroy(&gate);
	th_hooks_destroy(&hk);
}
END_TEST

START_TEST(test_resize_bad_args)
{
	aq_pool *pool = th_pool(2, 16, 0, 0);

	ck_assert_int_eq(aq_pool_resize(NULL, 1, 1), -EINVAL);
	ck_assert_int_eq(aq_pool_resize(pool, 0, 0), -EINVAL);
	ck_assert_int_eq(aq_pool_resize(pool, 0, 4), -EINVAL);
	ck_assert_int_eq(aq_pool_resize(pool, 3, 2), -EINVAL);
	ck_assert_int_eq(aq_pool_resize(pool, 1, AQ_WORKERS_MAX + 1), -EINVAL);
	ck_assert_int_eq(aq_pool_resize(pool, AQ_WORKERS_MAX + 1,
					AQ_WORKERS_MAX + 1),
			 -EINVAL);
	/* Refused calls changed nothing. */
	ck_assert_int_eq(aq_pool_workers(pool), 2);
	ck_assert_int_eq(aq_pool_resize(pool, 2, 2), 0);
	ck_assert_int_eq(aq_pool_shutdown(pool, AQ_SHUTDOWN_DRAIN), 0);
	ck_assert_int_eq(aq_pool_workers(pool), 0);
	ck_assert_int_eq(aq_pool_resize(pool, 1, 1), -ESHUTDOWN);
	ck_assert_int_eq(aq_pool_resize(pool, 0, 1), -EINVAL);
	aq_pool_destroy(pool);
}
END_TEST

START_TEST(test_config_bad_args)
{
	struct aq_pool_config cfg;
	aq_pool *pool = (aq_pool *)0x1;
	int bad_cpu = -1, huge_cpu = CPU_SETSIZE;

	cfg = (struct aq_pool_config){ .min_workers = 3, .max_workers = 2 };
	ck_assert_int_eq(aq_pool_create(&pool, &cfg), -EINVAL);
	cfg = (struct aq_pool_config){ .max_workers = AQ_WORKERS_MAX + 1 };
	ck_assert_int_eq(aq_pool_create(&pool, &cfg), -EINVAL);
	cfg = (struct aq_pool_config){ .min_workers = 1, .max_workers = 2,
				       .idle_timeout_ns = -1 };
	ck_assert_int_eq(aq_pool_create(&pool, &cfg), -EINVAL);
	cfg = (struct aq_pool_config){ .workers = 1, .ncpus = 1 };
	ck_assert_int_eq(aq_pool_create(&pool, &cfg), -EINVAL);
	cfg = (struct aq_pool_config){ .workers = 1, .cpus = &bad_cpu,
				       .ncpus = 1 };
	ck_assert_int_eq(aq_pool_create(&pool, &cfg), -EINVAL);
	cfg = (struct aq_pool_config){ .workers = 1, .cpus = &huge_cpu,
				       .ncpus = 1 };
	ck_assert_int_eq(aq_pool_create(&pool, &cfg), -EINVAL);
	cfg = (struct aq_pool_config){ .workers = 1, .stack_size = 1024 };
	ck_assert_int_eq(aq_pool_create(&pool, &cfg), -EINVAL);
	cfg = (struct aq_pool_config){ .workers = 1,
				       .stack_size = PTHREAD_STACK_MIN - 1 };
	ck_assert_int_eq(aq_pool_create(&pool, &cfg), -EINVAL);
	ck_assert_ptr_eq(pool, (aq_pool *)0x1); /* untouched */
}
END_TEST

/*
 * Idle workers above min retire after idle_timeout_ns, with their stop
 * hooks, and never below min. Several rounds: each new pool is a fresh
 * chance for a worker to start, see the live count before the spawner
 * counted it, and park with no idle deadline, which would leave the pool
 * above min for good.
 */
START_TEST(test_elastic_retire_idle)
{
	enum { ROUNDS = 20 };

	for (int round = 0; round < ROUNDS; round++) {
		struct aq_pool_config cfg = { .workers = 3, .min_workers = 1,
					      .max_workers = 3,
					      .idle_timeout_ns = 20000000 };
		struct th_gate started;
		struct th_hooks hk;
		aq_pool *pool;
		aq_future *fut;

		/* Held in their start hooks, the workers cannot idle yet: on
		 * a slow machine 20 ms may pass before the count is read. */
		th_gate_init(&started);
		th_hooks_init(&hk);
		hk.start_gate = &started;
		th_hooks_cfg(&cfg, &hk);
		pool = th_pool_cfg(&cfg);
		ck_assert_int_eq(aq_pool_workers(pool), 3);
		ck_assert(th_gate_wait_entered(&started, 3));
		ck_assert_int_eq(th_ld(&hk.nstarts), 3);
		th_gate_open(&started);
		/* Idle 20 ms above the floor: two retire, with their stop
		 * hooks. */
		ck_assert_msg(poll_workers(pool, 1),
			      "round %d: %d workers, not 1, after %.0f s idle",
			      round, aq_pool_workers(pool), th_poll_seconds());
		ck_assert(th_poll_int(&hk.nstops, 2));
		if (round == 0) {
			/* Never below the floor: several timeouts later,
			 * still one. */
			th_sleep_ms(100);
			ck_assert_int_eq(aq_pool_workers(pool), 1);
			ck_assert_int_eq(th_ld(&hk.nstops), 2);
		}
		fut = th_resolved_future(pool, (void *)0x21);
		aq_future_release(fut);
		ck_assert_int_eq(aq_pool_shutdown(pool, AQ_SHUTDOWN_DRAIN), 0);
		ck_assert_int_eq(th_ld(&hk.nstops), 3);
		for (unsigned i = 0; i < 3; i++) {
			ck_assert_int_eq(hk_starts(&hk, i), 1);
			ck_assert_int_eq(hk_stops(&hk, i), 1);
		}
		ck_assert_int_eq(hk_field(&hk, &hk.wrong_thread), 0);
		aq_pool_destroy(pool);
		th_hooks_destroy(&hk);
		th_gate_destroy(&started);
	}
}
END_TEST

/*
 * Regression: lowering min with aq_pool_resize() makes the pool elastic
 * from min up, so idle workers above the new min retire after the idle
 * timeout. Workers that parked while the pool was at its floor chose then
 * to sleep with no deadline, and the resize does not wake them.
 */
START_TEST(test_resize_lower_min_retires_idle)
{
	struct aq_pool_config cfg = { .workers = 4,
				      .idle_timeout_ns = 20000000 };
	struct probe probes[4];
	struct th_hooks hk;
	aq_pool *pool;
	int64_t resized;

	th_hooks_init(&hk);
	th_hooks_cfg(&cfg, &hk);
	pool = th_pool_cfg(&cfg);
	probe_workers(pool, probes, 4);
	/* Give the idle workers time to park, as a long-running server's
	 * would be. (A slow machine can only hide the bug, not fake it.) */
	th_sleep_ms(50);
	resized = th_now_ns();
	ck_assert_int_eq(aq_pool_resize(pool, 1, 4), 0);
	ck_assert_msg(poll_workers(pool, 1),
		      "%d workers, not 1, %.0f s after resize(1, 4) with a "
		      "20 ms idle timeout", aq_pool_workers(pool),
		      th_poll_seconds());
	ck_assert(th_poll_int(&hk.nstops, 3));
	/* The resize retired nobody itself: the first stop came a whole
	 * idle timeout after it. (The count read just after the resize was
	 * no proof: on a slow machine 20 ms may pass before that read.) */
	ck_assert_int_ge(hk_first_stop(&hk) - resized, 20000000);
	aq_pool_destroy(pool);
	ck_assert_int_eq(th_ld(&hk.nstops), 4);
	th_hooks_destroy(&hk);
}
END_TEST

START_TEST(test_elastic_grow_under_backlog)
{
	enum { JOBS = 8 };
	struct aq_pool_config cfg = { .workers = 1, .min_workers = 1,
				      .max_workers = 4,
				      .idle_timeout_ns = 20000000 };
	struct th_gate hold, gate;
	struct th_hooks hk;
	aq_pool *pool;

	th_hooks_init(&hk);
	th_gate_init(&hold);
	th_gate_init(&gate);
	th_hooks_cfg(&cfg, &hk);
	pool = th_pool_cfg(&cfg);
	ck_assert_int_eq(aq_pool_workers(pool), 1);

	/* Queue the backlog while the one worker is held, then let it go:
	 * it takes a job with others waiting and nobody idle, and so does
	 * each worker it starts, up to max. */
	ck_assert_int_eq(aq_submit(pool, th_gate_job, &hold, NULL, NULL), 0);
	ck_assert(th_gate_wait_entered(&hold, 1));
	for (int i = 0; i < JOBS; i++)
		ck_assert_int_eq(aq_submit(pool, th_gate_job, &gate, NULL,
					   NULL),
				 0);
	th_gate_open(&hold);
	ck_assert(th_gate_wait_entered(&gate, 4));
	ck_assert_int_eq(aq_pool_workers(pool), 4);
	ck_assert_int_eq(th_ld(&hk.nstarts), 4);
	ck_assert_int_le(hk_field(&hk, &hk.max_live), 4);
	ck_assert_int_eq(th_ld(&gate.entered), 4); /* the rest wait */

	th_gate_open(&gate);
	ck_assert(th_poll_int(&gate.passed, JOBS));
	/* And back down to min once idle. */
	ck_assert(poll_workers(pool, 1));
	ck_assert(th_poll_int(&hk.nstops, 3));
	ck_assert_int_le(hk_field(&hk, &hk.max_live), 4);
	aq_pool_shutdown(pool, AQ_SHUTDOWN_DRAIN);
	ck_assert_int_eq(th_ld(&hk.nstops), th_ld(&hk.nstarts));
	ck_assert_int_eq(th_ld(&hk.nstarts), 4);
	ck_assert_int_eq(hk_field(&hk, &hk.wrong_thread), 0);
	aq_pool_destroy(pool);
	th_gate_destroy(&hold);
	th_gate_destroy(&gate);
	th_hooks_destroy(&hk);
}
END_TEST

/* Is "aq-<stem>-<i>" for i in 0..n-1 the set of names? */
static void check_names(struct probe *probes, unsigned n, const char *stem)
{
	unsigned seen = 0;

	for (unsigned i = 0; i < n; i++) {
		char want[32];
		unsigned j;

		for (j = 0; j < n; j++) {
			if (stem)
				snprintf(want, sizeof(want), "aq-%s-%u", stem,
					 j);
			else
				snprintf(want, sizeof(want), "aq-%u", j);
			if (strcmp(probes[i].name, want) == 0)
				break;
		}
		ck_assert_msg(j < n, "unexpected thread name \"%s\"",
			      probes[i].name);
		ck_assert_int_eq(probes[i].index, (int)j);
		seen |= 1u << j;
	}
	ck_assert_uint_eq(seen, (1u << n) - 1);
}

/* Threads of this process whose name starts with prefix. */
static int count_tasks_named(const char *prefix)
{
	DIR *dir = opendir("/proc/self/task");
	struct dirent *de;
	int count = 0;

	if (!dir)
		return -1;
	while ((de = readdir(dir))) {
		char path[300], comm[32] = "";
		FILE *f;

		if (de->d_name[0] == '.')
			continue;
		snprintf(path, sizeof(path), "/proc/self/task/%s/comm",
			 de->d_name);
		f = fopen(path, "r");
		if (!f)
			continue;
		if (fgets(comm, sizeof(comm), f) &&
		    strncmp(comm, prefix, strlen(prefix)) == 0)
			count++;
		fclose(f);
	}
	closedir(dir);
	return count;
}

START_TEST(test_thread_names)
{
	struct aq_pool_config cfg = { .workers = 3, .name = "web" };
	struct probe probes[3];
	struct th_hooks hk;
	aq_pool *pool;

	th_hooks_init(&hk);
	th_hooks_cfg(&cfg, &hk);
	pool = th_pool_cfg(&cfg);
	probe_workers(pool, probes, 3);
	check_names(probes, 3, "web");
	ck_assert_int_eq(count_tasks_named("aq-web-"), 3);
	aq_pool_destroy(pool);
	ck_assert_int_eq(count_tasks_named("aq-web-"), 0);

	/* The stem keeps 7 characters, so that "aq-<stem>-<index>" fits
	 * the kernel's 15 for any index up to AQ_WORKERS_MAX. */
	cfg = (struct aq_pool_config){ .workers = 2,
				       .name = "abcdefghijklmnop" };
	th_hooks_cfg(&cfg, &hk);
	pool = th_pool_cfg(&cfg);
	probe_workers(pool, probes, 2);
	check_names(probes, 2, "abcdefg");
	aq_pool_destroy(pool);

	/* No name: "aq-<index>". */
	cfg = (struct aq_pool_config){ .workers = 2 };
	th_hooks_cfg(&cfg, &hk);
	pool = th_pool_cfg(&cfg);
	probe_workers(pool, probes, 2);
	check_names(probes, 2, NULL);
	aq_pool_destroy(pool);
	th_hooks_destroy(&hk);
}
END_TEST

START_TEST(test_stack_size)
{
	const size_t sizes[] = { 256 * 1024, 1024 * 1024 };

	for (unsigned k = 0; k < 2; k++) {
		struct aq_pool_config cfg = { .workers = 2,
					      .stack_size = sizes[k] };
		struct probe probes[2];
		aq_pool *pool = th_pool_cfg(&cfg);

		probe_workers(pool, probes, 2);
		for (unsigned i = 0; i < 2; i++) {
			/* At least what was asked; ThreadSanitizer adds
			 * room of its own, so the upper bound is loose, yet
			 * far below the usual 8 MiB default. */
			ck_assert_uint_ge(probes[i].stack_size, sizes[k]);
			ck_assert_uint_lt(probes[i].stack_size,
					  sizes[k] + 1024 * 1024);
		}
		aq_pool_destroy(pool);
	}
}
END_TEST

START_TEST(test_cpu_pinning)
{
	cpu_set_t allowed;
	int cpus[2], ncpus = 0;
	struct probe probes[4];

	/* Pin to CPUs this process may use: cpu 0 on most machines. */
	CPU_ZERO(&allowed);
	ck_assert_int_eq(sched_getaffinity(0, sizeof(allowed), &allowed), 0);
	for (int c = 0; c < CPU_SETSIZE && ncpus < 2; c++)
		if (CPU_ISSET(c, &allowed))
			cpus[ncpus++] = c;
	ck_assert_int_ge(ncpus, 1);

	{
		struct aq_pool_config cfg = { .workers = 2, .cpus = cpus,
					      .ncpus = 1 };
		aq_pool *pool = th_pool_cfg(&cfg);

		probe_workers(pool, probes, 2);
		for (unsigned i = 0; i < 2; i++) {
			ck_assert_int_eq(CPU_COUNT(&probes[i].cpus), 1);
			ck_assert(CPU_ISSET(cpus[0], &probes[i].cpus));
		}
		aq_pool_destroy(pool);
	}
	if (ncpus < 2)
		return;
	/* Worker n on cpus[n % ncpus]. */
	{
		struct aq_pool_config cfg = { .workers = 4, .cpus = cpus,
					      .ncpus = 2 };
		struct th_hooks hk;
		aq_pool *pool;

		th_hooks_init(&hk);
		th_hooks_cfg(&cfg, &hk);
		pool = th_pool_cfg(&cfg);
		probe_workers(pool, probes, 4);
		for (unsigned i = 0; i < 4; i++) {
			ck_assert_int_ge(probes[i].index, 0);
			ck_assert_int_eq(CPU_COUNT(&probes[i].cpus), 1);
			ck_assert(CPU_ISSET(cpus[probes[i].index % 2],
					    &probes[i].cpus));
		}
		aq_pool_destroy(pool);
		th_hooks_destroy(&hk);
	}
}
END_TEST

/* ---- resize under load --------------------------------------------------- */

enum { RL_PRODUCERS = 4, RL_EACH = 10000 };

struct rl_slot {
	atomic_int ran;      /* the job ran */
	atomic_int resolved; /* its then-callback ran */
};

struct resize_load {
	aq_pool *pool;
	struct rl_slot *slots;
	atomic_int producers_left;
	atomic_int refused;
	atomic_int bad_outcome;
	atomic_int resizing; /* the resizer has made its first resize */
	int resizes, resize_errors, over_max; /* resizer's */
};

struct rl_producer {
	struct resize_load *rl;
	int first;
};

static int rl_job(void *arg, void **result)
{
	struct rl_slot *s = arg;

	atomic_fetch_add(&s->ran, 1);
	*result = s;
	return 0;
}

static void rl_then(aq_future *fut, void *user)
{
	struct rl_slot *s = user;

	(void)fut;
	atomic_fetch_add(&s->resolved, 1);
}

static void *rl_produce(void *arg)
{
	struct rl_producer *p = arg;
	struct resize_load *rl = p->rl;

	for (int i = p->first; i < p->first + RL_EACH; i++) {
		aq_future *fut = NULL;
		/* Every other job fire-and-forget: the ring carries both
		 * kinds through the resizes. */
		int rc = aq_submit(rl->pool, rl_job, &rl->slots[i], &block_opts,
				   i % 2 ? &fut : NULL);

		if (rc != 0) {
			atomic_fetch_add(&rl->refused, 1);
			continue;
		}
		if (fut) {
			if (aq_future_then(fut, rl_then, &rl->slots[i],
					   NULL) != 0)
				atomic_fetch_add(&rl->refused, 1);
			aq_future_release(fut);
		}
	}
	atomic_fetch_sub(&rl->producers_left, 1);
	return NULL;
}

static void *rl_resize(void *arg)
{
	struct resize_load *rl = arg;

	for (unsigned i = 0; atomic_load(&rl->producers_left) > 0; i++) {
		unsigned min = 1 + i % 4;
		unsigned max = min + (i / 4) % (5 - min);

		if (aq_pool_resize(rl->pool, min, max) != 0)
			rl->resize_errors++;
		if (aq_pool_workers(rl->pool) > 4)
			rl->over_max++;
		if (rl->resizes++ == 0)
			atomic_store(&rl->resizing, 1);
		if (i % 8 == 0)
			sched_yield();
	}
	return NULL;
}

START_TEST(test_resize_under_load)
{
	struct aq_pool_config cfg = { .workers = 2, .min_workers = 1,
				      .max_workers = 4, .queue_capacity = 256,
				      .idle_timeout_ns = 1000000 };
	struct rl_producer prod[RL_PRODUCERS];
	pthread_t producers[RL_PRODUCERS], resizer;
	struct resize_load rl = { 0 };
	int total = RL_PRODUCERS * RL_EACH;
	struct th_hooks hk;

	th_hooks_init(&hk);
	th_hooks_cfg(&cfg, &hk);
	rl.pool = th_pool_cfg(&cfg);
	rl.slots = calloc((size_t)total, sizeof(*rl.slots));
	ck_assert_ptr_nonnull(rl.slots);
	atomic_init(&rl.producers_left, RL_PRODUCERS);
	ck_assert_int_eq(pthread_create(&resizer, NULL, rl_resize, &rl), 0);
	/* A busy machine may not run the resizer before the producers are
	 * done: they start once it is resizing. */
	ck_assert(th_poll_int(&rl.resizing, 1));
	for (int p = 0; p < RL_PRODUCERS; p++) {
		prod[p] = (struct rl_producer){ &rl, p * RL_EACH };
		ck_assert_int_eq(pthread_create(&producers[p], NULL,
						rl_produce, &prod[p]),
				 0);
	}
	for (int p = 0; p < RL_PRODUCERS; p++)
		pthread_join(producers[p], NULL);
	pthread_join(resizer, NULL);
	ck_assert_int_eq(aq_pool_shutdown(rl.pool, AQ_SHUTDOWN_DRAIN), 0);

	ck_assert_int_eq(th_ld(&rl.refused), 0);
	ck_assert_int_eq(rl.resize_errors, 0);
	ck_assert_int_eq(rl.over_max, 0);
	ck_assert_int_gt(rl.resizes, 0);
	for (int i = 0; i < total; i++) {
		ck_assert_msg(atomic_load(&rl.slots[i].ran) == 1,
			      "job %d ran %d times", i,
			      atomic_load(&rl.slots[i].ran));
		ck_assert_msg(atomic_load(&rl.slots[i].resolved) == i % 2,
			      "job %d: %d callbacks", i,
			      atomic_load(&rl.slots[i].resolved));
	}
	/* Every worker that started stopped, each through its hook. */
	ck_assert_int_eq(th_ld(&hk.nstops), th_ld(&hk.nstarts));
	ck_assert_int_eq(hk_field(&hk, &hk.wrong_thread), 0);
	ck_assert_int_eq(hk_field(&hk, &hk.out_of_range), 0);
	ck_assert_int_eq(aq_pool_workers(rl.pool), 0);
	aq_pool_destroy(rl.pool);
	free(rl.slots);
	th_hooks_destroy(&hk);
}
END_TEST

/* ---- two pools, fork, signals -------------------------------------------- */

/* Records whose worker ran it: a job of pool A must see A's hooks. */
struct owner_check {
	struct th_hooks *expect;
	const char *name_prefix;
	atomic_int ran, wrong;
};

static int owner_job(void *arg, void **result)
{
	struct owner_check *o = arg;
	char name[16] = "";

	(void)result;
	pthread_getname_np(pthread_self(), name, sizeof(name));
	if (th_tl_hooks != o->expect ||
	    strncmp(name, o->name_prefix, strlen(o->name_prefix)) != 0)
		atomic_fetch_add(&o->wrong, 1);
	atomic_fetch_add(&o->ran, 1);
	return 0;
}

/* A job of one pool that submits to another and waits for it. */
struct cross {
	aq_pool *other;
	struct owner_check *check;
	int rc;
};

static int cross_job(void *arg, void **result)
{
	struct cross *c = arg;
	aq_future *fut;

	(void)result;
	c->rc = aq_submit(c->other, owner_job, c->check, NULL, &fut);
	if (c->rc == 0) {
		c->rc = aq_future_get(fut, NULL, -1);
		aq_future_release(fut);
	}
	return 0;
}

START_TEST(test_two_pools)
{
	enum { N = 2000 };
	struct aq_pool_config ca = { .workers = 2, .queue_capacity = 64,
				     .name = "alpha" };
	struct aq_pool_config cb = { .workers = 3, .min_workers = 1,
				     .max_workers = 3, .name = "beta",
				     .idle_timeout_ns = 20000000 };
	struct owner_check oa = { 0 }, ob = { 0 };
	struct th_hooks ha, hb;
	struct cross cross;
	aq_pool *a, *b;
	aq_future *fut;
	int bstarts;

	th_hooks_init(&ha);
	th_hooks_init(&hb);
	th_hooks_cfg(&ca, &ha);
	th_hooks_cfg(&cb, &hb);
	a = th_pool_cfg(&ca);
	b = th_pool_cfg(&cb);
	oa.expect = &ha;
	oa.name_prefix = "aq-alpha-";
	ob.expect = &hb;
	ob.name_prefix = "aq-beta-";
	for (int i = 0; i < N; i++) {
		ck_assert_int_eq(th_submit_retry(a, owner_job, &oa, NULL,
						 NULL),
				 0);
		ck_assert_int_eq(th_submit_retry(b, owner_job, &ob, NULL,
						 NULL),
				 0);
	}
	ck_assert(th_poll_int(&oa.ran, N));
	ck_assert(th_poll_int(&ob.ran, N));
	ck_assert_int_eq(th_ld(&oa.wrong), 0);
	ck_assert_int_eq(th_ld(&ob.wrong), 0);
	ck_assert(th_poll_int(&ha.nstarts, 2));
	ck_assert_int_eq(aq_pool_capacity(a), 64);
	ck_assert_int_eq(aq_pool_capacity(b), (int)AQ_QUEUE_CAPACITY_DEFAULT);

	/* A job of A submits to B and waits: it runs on B's worker. */
	cross = (struct cross){ b, &ob, -1 };
	ck_assert_int_eq(aq_submit(a, cross_job, &cross, NULL, &fut), 0);
	ck_assert_int_eq(aq_future_get(fut, NULL, -1), 0);
	aq_future_release(fut);
	ck_assert_int_eq(cross.rc, 0);
	ck_assert_int_eq(th_ld(&ob.ran), N + 1);
	ck_assert_int_eq(th_ld(&ob.wrong), 0);

	/*
	 * Resizing one leaves the other alone. B is elastic: while the jobs
	 * above trickled in, a worker idle for 20 ms may have retired and
	 * another been started, so B has had 3 or more workers. With max 1
	 * no worker can start any more, and one job run proves the survivor
	 * has passed its start hook: the count of starts is then final, and
	 * every worker but one stops.
	 */
	ck_assert_int_eq(aq_pool_resize(b, 1, 1), 0);
	ck_assert(poll_workers(b, 1));
	ck_assert_int_eq(aq_pool_workers(a), 2);
	ck_assert_int_eq(th_ld(&ha.nstops), 0);
	ck_assert_int_eq(aq_pool_resize(a, 3, 3), 0);
	ck_assert_int_eq(aq_pool_workers(a), 3);
	ck_assert_int_eq(aq_pool_workers(b), 1);
	ck_assert_int_eq(aq_submit(b, owner_job, &ob, NULL, &fut), 0);
	ck_assert_int_eq(aq_future_get(fut, NULL, -1), 0);
	aq_future_release(fut);
	bstarts = th_ld(&hb.nstarts);
	ck_assert_int_ge(bstarts, 3);
	ck_assert(th_poll_int(&hb.nstops, bstarts - 1));
	ck_assert_int_eq(hk_field(&hb, &hb.live), 1);
	ck_assert_int_eq(th_ld(&hb.nstarts), bstarts);

	/* Shutting A down leaves B working. */
	ck_assert_int_eq(aq_pool_shutdown(a, AQ_SHUTDOWN_DRAIN), 0);
	ck_assert_int_eq(aq_pool_workers(a), 0);
	ck_assert_int_eq(th_ld(&ha.nstops), th_ld(&ha.nstarts));
	ck_assert_int_eq(aq_submit(a, owner_job, &oa, NULL, NULL),
			 -ESHUTDOWN);
	ck_assert_int_eq(aq_submit(b, owner_job, &ob, NULL, &fut), 0);
	ck_assert_int_eq(aq_future_get(fut, NULL, -1), 0);
	aq_future_release(fut);
	ck_assert_int_eq(th_ld(&ob.wrong), 0);
	ck_assert_int_ge(aq_pool_workers(b), 1);
	aq_pool_destroy(b);
	aq_pool_destroy(a);
	ck_assert_int_eq(th_ld(&hb.nstops), th_ld(&hb.nstarts));
	ck_assert_int_eq(hk_field(&ha, &ha.wrong_thread), 0);
	ck_assert_int_eq(hk_field(&hb, &hb.wrong_thread), 0);
	th_hooks_destroy(&ha);
	th_hooks_destroy(&hb);
}
END_TEST

/*
 * In the child of a fork: a new pool, a job, a then-callback on a channel.
 * The parent's pool is never touched here: the child has none of its
 * threads. 0 when everything was as expected.
 */
static int fork_child(void)
{
	struct aq_pool_config cfg = { .workers = 2, .name = "child" };
	struct th_then_rec rec;
	aq_channel *ch;
	aq_pool *pool;
	aq_future *fut;
	void *r = NULL;
	int status = 0;

	th_then_rec_init(&rec);
	if (aq_pool_create(&pool, &cfg) != 0)
		return 2;
	if (aq_pool_workers(pool) != 2)
		status = 3;
	if (aq_channel_create(&ch, 0) != 0)
		return 4;
	if (aq_submit(pool, th_echo_job, (void *)0x31, NULL, &fut) != 0)
		return 5;
	if (aq_future_then(fut, th_then_record, &rec, ch) != 0)
		status = 6;
	if (aq_future_get(fut, &r, 10 * INT64_C(1000000000)) != 0 ||
	    r != (void *)0x31)
		status = 7;
	if (!th_fd_readable(aq_channel_fd(ch), 10000) ||
	    aq_channel_dispatch(ch, 0) != 1 || atomic_load(&rec.calls) != 1 ||
	    rec.get_rc != 0)
		status = 8;
	aq_future_release(fut);
	if (aq_pool_shutdown(pool, AQ_SHUTDOWN_DRAIN) != 0 ||
	    aq_pool_workers(pool) != 0)
		status = 9;
	aq_pool_destroy(pool);
	aq_channel_destroy(ch);
	return status;
}

START_TEST(test_fork_child_new_pool)
{
	struct th_gate gate;
	aq_pool *pool = th_pool(2, 64, 0, 0);
	aq_future *held, *fut;
	int status;
	pid_t pid;

	/* Fork while a worker is in the middle of a job and another idles. */
	th_gate_init(&gate);
	fut = th_resolved_future(pool, (void *)0x30);
	aq_future_release(fut);
	ck_assert_int_eq(aq_submit(pool, th_gate_job, &gate, NULL, &held), 0);
	ck_assert(th_gate_wait_entered(&gate, 1));
#if TSAN_BUILD
	/* ThreadSanitizer cannot start threads in the child of a process
	 * that had several: there, only a pool shut down before the fork
	 * is tested. */
	th_gate_open(&gate);
	ck_assert_int_eq(aq_pool_shutdown(pool, AQ_SHUTDOWN_DRAIN), 0);
#endif
	pid = fork();
	ck_assert_int_ge(pid, 0);
	if (pid == 0)
		_exit(fork_child());
	ck_assert_int_eq(waitpid(pid, &status, 0), pid);
	ck_assert_msg(WIFEXITED(status) && WEXITSTATUS(status) == 0,
		      "child: status %#x", status);

	/* The parent's pool is unaffected. */
	th_gate_open(&gate);
	ck_assert_int_eq(aq_future_get(held, NULL, -1), 0);
	aq_future_release(held);
	if (!TSAN_BUILD) {
		fut = th_resolved_future(pool, (void *)0x32);
		aq_future_release(fut);
		ck_assert_int_eq(aq_pool_workers(pool), 2);
	}
	aq_pool_destroy(pool);
	th_gate_destroy(&gate);
}
END_TEST

/* SIGUSR1, as a host would use it: the handler records its thread. */
#define SIG_SENDS 200
static pthread_t sig_threads[SIG_SENDS];
static atomic_int sig_claimed, sig_recorded;

static void on_sigusr1(int sig)
{
	int i = atomic_fetch_add(&sig_claimed, 1);

	(void)sig;
	if (i < SIG_SENDS)
		sig_threads[i] = pthread_self();
	atomic_fetch_add(&sig_recorded, 1); /* after the write: see reader */
}

/* The host's own thread, the one meant to take SIGUSR1. */
static atomic_int host_stop;

static void *host_thread(void *arg)
{
	sigset_t usr1;

	(void)arg;
	sigemptyset(&usr1);
	sigaddset(&usr1, SIGUSR1);
	pthread_sigmask(SIG_UNBLOCK, &usr1, NULL);
	while (!atomic_load(&host_stop))
		th_sleep_ms(1);
	return NULL;
}

/* Keeps a worker busy (not parked) until told to stop. */
static int spin_job(void *arg, void **result)
{
	(void)result;
	while (!atomic_load((atomic_int *)arg))
		sched_yield();
	return 0;
}

START_TEST(test_signals_go_to_host)
{
	struct sigaction sa = { 0 }, old;
	struct probe probes[3];
	struct th_hooks hk;
	sigset_t usr1, saved;
	atomic_int stop_spin = 0;
	pthread_t host, workers[3];
	aq_pool *pool;

	/* The pool is created while this thread still takes SIGUSR1: the
	 * workers do not merely inherit a blocked mask. */
	th_hooks_init(&hk);
	pool = th_hooked_pool(3, &hk);
	probe_workers(pool, probes, 3);
	ck_assert(th_poll_int(&hk.nstarts, 3));
	pthread_mutex_lock(&hk.mu);
	for (unsigned i = 0; i < 3; i++)
		workers[i] = hk.thread[i];
	pthread_mutex_unlock(&hk.mu);
	/* Every signal a host might use is blocked on every worker. */
	for (unsigned i = 0; i < 3; i++) {
		const int sigs[] = { SIGUSR1, SIGUSR2, SIGTERM, SIGINT,
				     SIGHUP,  SIGPIPE, SIGALRM, SIGCHLD,
				     SIGRTMIN, SIGRTMAX };

		for (unsigned s = 0; s < sizeof(sigs) / sizeof(sigs[0]); s++)
			ck_assert_msg(sigismember(&probes[i].mask, sigs[s]),
				      "signal %d not blocked on a worker",
				      sigs[s]);
	}

	sa.sa_handler = on_sigusr1;
	sigemptyset(&sa.sa_mask);
	ck_assert_int_eq(sigaction(SIGUSR1, &sa, &old), 0);
	/* Only the host thread may take it; this one only sends. */
	sigemptyset(&usr1);
	sigaddset(&usr1, SIGUSR1);
	pthread_sigmask(SIG_BLOCK, &usr1, &saved);
	ck_assert_int_eq(pthread_create(&host, NULL, host_thread, NULL), 0);
	for (int i = 0; i < 3; i++)
		ck_assert_int_eq(aq_submit(pool, spin_job, &stop_spin, NULL,
					   NULL),
				 0);

	for (int n = 1; n <= SIG_SENDS; n++) {
		ck_assert_int_eq(kill(getpid(), SIGUSR1), 0);
		/* One at a time: a pending SIGUSR1 would swallow the next. */
		ck_assert(th_poll_int_ge(&sig_recorded, n));
	}
	atomic_store(&stop_spin, 1);
	atomic_store(&host_stop, 1);
	pthread_join(host, NULL);
	ck_assert_int_eq(th_ld(&sig_recorded), SIG_SENDS);
	for (int n = 0; n < SIG_SENDS; n++) {
		ck_assert(pthread_equal(sig_threads[n], host));
		for (unsigned w = 0; w < 3; w++)
			ck_assert(!pthread_equal(sig_threads[n], workers[w]));
	}
	aq_pool_destroy(pool);
	sigaction(SIGUSR1, &old, NULL);
	pthread_sigmask(SIG_SETMASK, &saved, NULL);
	th_hooks_destroy(&hk);
}
END_TEST

Suite *threads_suite(void)
{
	Suite *s = suite_create("threads");
	TCase *life = tcase_create("lifecycle");
	TCase *stress = tcase_create("stress");
	TCase *host = tcase_create("host");

	tcase_set_timeout(life, TH_TIMEOUT);
	tcase_add_test(life, test_hooks_create_shutdown);
	tcase_add_test(life, test_resize_down_and_up);
	tcase_add_test(life, test_resize_down_while_workers_yield);
	tcase_add_test(life, test_resize_down_busy);
	tcase_add_test(life, test_resize_bad_args);
	tcase_add_test(life, test_config_bad_args);
	tcase_add_test(life, test_elastic_retire_idle);
	tcase_add_test(life, test_resize_lower_min_retires_idle);
	tcase_add_test(life, test_elastic_grow_under_backlog);
	tcase_add_test(life, test_thread_names);
	tcase_add_test(life, test_stack_size);
	tcase_add_test(life, test_cpu_pinning);
	suite_add_tcase(s, life);

	tcase_set_timeout(stress, TH_TIMEOUT_STRESS);

	tcase_add_test(stress, test_resize_under_load);
	suite_add_tcase(s, stress);

	tcase_set_timeout(host, TH_TIMEOUT);
	tcase_add_test(host, test_two_pools);
	tcase_add_test(host, test_fork_child_new_pool);
	tcase_add_test(host, test_signals_go_to_host);
	suite_add_tcase(s, host);
	return s;
}
