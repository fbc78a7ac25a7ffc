/* SPDX-License-Identifier: MIT */
/*
 * sched_bench.c - the sched and schednoop workloads of `make bench`:
 * libasyncq alone, the same mix of jobs run under each way a pool can
 * schedule: the FIFO fast path (cfg.sched NULL: workers pop the lock-free
 * ring), aq_sched_fifo() (the same order through the pluggable path, one
 * mutex around the policy), aq_sched_priority() (random priorities, aging
 * 1 ms) and aq_sched_fair() (8 groups, weights 1..8). Two producer threads
 * submit; one job in FUTURE_EVERY carries a future, and a producer that
 * holds FUTURE_WINDOW futures settles its oldest (get, release) before it
 * asks for another, as a program that wants some results does. The rest
 * are fire-and-forget.
 *
 * sched: ~1 us jobs, pool created with AQ_POOL_TIMING; jobs/s and the
 * queue wait (submit to start) percentiles from aq_pool_stats(). Timing
 * gives every job a record, the fast path's too, so the cost measured here
 * is the scheduler's alone.
 * schednoop: empty jobs, timing off: the per-job overhead a user pays.
 * The fast path's fire-and-forget jobs travel as {fn, arg} with no record,
 * so here the cost includes the record every scheduled job needs.
 *
 * Policies are interleaved run by run (fast fifo priority fair, fast fifo
 * ...), each figure is a median with min and max, and the cost of each
 * policy is the median of its per-run ratio to the fast path of the same
 * run, so a slow phase of the machine cancels out. Every run checks that
 * exactly the submitted jobs ran, and that the pool's own counters agree.
 */
#include <errno.h>
#include <math.h>
#include <pthread.h>
#include <sched.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <asyncq.h>

#include "bench.h"

#define SCHED_JOBS 200000UL       /* sched: jobs per run, before scaling */
#define SCHED_NOOP_JOBS 1000000UL /* schednoop: the same */
#define PRODUCERS 2
#define RING_SLOTS 65536u         /* as the contender's ring */
#define FUTURE_EVERY 8            /* one job in 8 carries a future */
#define FUTURE_WINDOW 64          /* futures a producer holds at most */
#define PRIO_SPREAD 10            /* priorities uniform in -10..10 */
#define AGING_NS 1000000          /* priority: one level per 1 ms waited */
#define GROUPS 8                  /* fair: groups 0..7, weight group + 1 */
#define SPINS_BEFORE_YIELD 8      /* full ring: PAUSEs, then sched_yield */

enum policy { P_FAST, P_FIFO, P_PRIO, P_FAIR, NPOLICIES };

static const struct aq_sched_priority_params prio_params = {
	.aging_ns = AGING_NS,
};

static const char *const policy_key[NPOLICIES] = { "fast", "fifo",
						   "priority", "fair" };

static const struct aq_sched_ops *policy_ops(enum policy p)
{
	switch (p) {
	case P_FIFO:
		return aq_sched_fifo();
	case P_PRIO:
		return aq_sched_priority();
	case P_FAIR:
		return aq_sched_fair();
	default:
		return NULL;
	}
}

/* What is measured per run: jobs/s always, the wait with timing only. */
enum { M_RATE, M_WAIT_P50, M_WAIT_P99, M_WAIT_MAX, NMETRICS };

static const char *const metric_key[NMETRICS] = { "jobs_per_s",
						  "wait_p50_us",
						  "wait_p99_us",
						  "wait_max_us" };
static const char *const metric_label[NMETRICS] = { "jobs/s",
						    "wait p50 us",
						    "wait p99 us",
						    "wait max us" };

const char *const sched_kind_key[SCHED_KINDS] = { "sched", "schednoop" };

static struct sched_state {
	int nruns;
	unsigned long jobs;       /* per run, after scaling */
	int timing;               /* AQ_POOL_TIMING, and the wait metrics */
	struct bench_job *job;    /* the work or the no-op job */
	double *v[NPOLICIES][NMETRICS]; /* one value per run */
	unsigned long full_retries[NPOLICIES]; /* in the last run */
} state[SCHED_KINDS];

/* ---- producing ------------------------------------------------------------ */

struct producer {
	aq_pool *pool;
	enum policy policy;
	struct bench_job *job;
	unsigned long jobs;        /* this producer's share */
	uint64_t rng;              /* xorshift state: priorities, groups */
	pthread_barrier_t *start;
	int64_t started_ns;        /* when it left the barrier */
	unsigned long full_retries; /* submits that found the ring full */
	pthread_t thread;
};

/* libasyncq's job signature around the shared job function. */
static int sched_trampoline(void *arg, void **result)
{
	struct bench_job *job = arg;

	(void)result;
	job->fn(job);
	return 0;
}

static uint64_t xorshift(uint64_t *s)
{
	*s ^= *s << 13;
	*s ^= *s >> 7;
	*s ^= *s << 17;
	return *s;
}

/* Submit, retrying while the ring is full, as contender_asyncq.c does. */
static void submit_retry(struct producer *p, const struct aq_job_opts *opts,
			 aq_future **fut)
{
	unsigned long failures = 0;
	int rc;

	while ((rc = aq_submit(p->pool, sched_trampoline, p->job, opts,
			       fut)) != 0) {
		if (rc != -EAGAIN)
			bench_die("sched/%s: aq_submit: %s",
				  policy_key[p->policy], aq_strerror(rc));
		if (++failures <= SPINS_BEFORE_YIELD)
			bench_cpu_relax();
		else
			sched_yield();
	}
	p->full_retries += failures;
}

static void future_settle(enum policy policy, aq_future *fut)
{
	int rc = aq_future_get(fut, NULL, -1); /* the watchdog covers hangs */

	if (rc != 0)
		bench_die("sched/%s: aq_future_get: %d (%s)",
			  policy_key[policy], rc, aq_strerror(rc));
	aq_future_release(fut);
}

static void *producer_main(void *arg)
{
	struct producer *p = arg;
	aq_future *window[FUTURE_WINDOW] = { NULL };
	unsigned next = 0;

	pthread_barrier_wait(p->start);
	p->started_ns = bench_now_ns();
	for (unsigned long i = 0; i < p->jobs; i++) {
		struct aq_job_opts o = { 0 };
		const struct aq_job_opts *opts = NULL;

		if (p->policy == P_PRIO) {
			o.priority = (int)(xorshift(&p->rng) %
					   (2 * PRIO_SPREAD + 1)) -
				     PRIO_SPREAD;
			opts = &o;
		} else if (p->policy == P_FAIR) {
			unsigned group = (unsigned)(xorshift(&p->rng) % GROUPS);

			o.group = group;
			o.weight = group + 1;
			opts = &o;
		}
		if (i % FUTURE_EVERY == FUTURE_EVERY - 1) {
			aq_future **slot = &window[next++ % FUTURE_WINDOW];

			if (*slot)
				future_settle(p->policy, *slot);
			submit_retry(p, opts, slot);
		} else {
			submit_retry(p, opts, NULL);
		}
	}
	for (unsigned i = 0; i < FUTURE_WINDOW; i++)
		if (window[i])
			future_settle(p->policy, window[i]);
	return NULL;
}

/* ---- one run of one policy ---------------------------------------------- */

static void sched_measure(enum sched_kind kind, enum policy policy, int run)
{
	struct sched_state *s = &state[kind];
	const char *key = sched_kind_key[kind];
	struct aq_pool_config cfg = {
		.workers = BENCH_WORKERS,
		.queue_capacity = RING_SLOTS,
		.flags = s->timing ? AQ_POOL_TIMING : 0,
		.sched = policy_ops(policy),
		.sched_params = policy == P_PRIO ? &prio_params : NULL,
	};
	struct producer producers[PRODUCERS];
	struct aq_pool_stats st;
	pthread_barrier_t start;
	aq_pool *pool;
	int64_t t0 = 0, t1;
	int rc;

	bench_set_where(key, policy_key[policy]);
	bench_set_step("creating the pool");
	rc = aq_pool_create(&pool, &cfg);
	if (rc < 0)
		bench_die("%s/%s: aq_pool_create: %s", key, policy_key[policy],
			  aq_strerror(rc));
	bench_run_begin(s->jobs);
	pthread_barrier_init(&start, NULL, PRODUCERS + 1);
	for (unsigned i = 0; i < PRODUCERS; i++) {
		struct producer *p = &producers[i];

		/* Fixed seeds: every policy and run sees the same stream. */
		*p = (struct producer){ .pool = pool,
					.policy = policy,
					.job = s->job,
					.jobs = s->jobs / PRODUCERS,
					.rng = 0x9E3779B97F4A7C15ull * (i + 1),
					.start = &start };
		if (i == PRODUCERS - 1)
			p->jobs += s->jobs % PRODUCERS;
		rc = pthread_create(&p->thread, NULL, producer_main, p);
		if (rc)
			bench_die("pthread_create: %s", strerror(rc));
	}
	bench_set_step("submitting");
	pthread_barrier_wait(&start);
	s->full_retries[policy] = 0;
	for (unsigned i = 0; i < PRODUCERS; i++) {
		pthread_join(producers[i].thread, NULL);
		if (i == 0 || producers[i].started_ns < t0)
			t0 = producers[i].started_ns;
		s->full_retries[policy] += producers[i].full_retries;
	}
	bench_run_wait_all();
	t1 = bench_now_ns();
	pthread_barrier_destroy(&start);

	/* Drained and joined: the pool's counters are final. */
	bench_set_step("shutting down");
	rc = aq_pool_shutdown(pool, AQ_SHUTDOWN_DRAIN);
	if (rc < 0)
		bench_die("%s/%s: aq_pool_shutdown: %s", key,
			  policy_key[policy], aq_strerror(rc));
	rc = aq_pool_stats(pool, &st);
	if (rc < 0)
		bench_die("%s/%s: aq_pool_stats: %s", key, policy_key[policy],
			  aq_strerror(rc));
	if (st.submitted != s->jobs || st.succeeded != s->jobs ||
	    (s->timing && st.wait.count != s->jobs))
		bench_die("FAILED: %s/%s: the pool counted %llu submitted, "
			  "%llu succeeded, %llu timed of %lu jobs", key,
			  policy_key[policy],
			  (unsigned long long)st.submitted,
			  (unsigned long long)st.succeeded,
			  (unsigned long long)st.wait.count, s->jobs);
	bench_set_step("destroying the pool");
	aq_pool_destroy(pool);
	bench_run_verify(key, policy_key[policy]);

	s->v[policy][M_RATE][run] = (double)s->jobs * 1e9 / (double)(t1 - t0);
	s->v[policy][M_WAIT_P50][run] = s->timing ? st.wait.p50_ns / 1e3 : NAN;
	s->v[policy][M_WAIT_P99][run] = s->timing ? st.wait.p99_ns / 1e3 : NAN;
	s->v[policy][M_WAIT_MAX][run] = s->timing ? st.wait.max_ns / 1e3 : NAN;
}

/* ---- the driver's interface --------------------------------------------- */

void sched_bench_init(enum sched_kind kind, int nruns, unsigned long scale)
{
	struct sched_state *s = &state[kind];

	s->nruns = nruns;
	s->timing = kind == SCHED_WORK;
	s->job = kind == SCHED_WORK ? &bench_work_job : &bench_noop_job;
	s->jobs = (kind == SCHED_WORK ? SCHED_JOBS : SCHED_NOOP_JOBS) / scale;
	if (s->jobs < 2 * FUTURE_EVERY)
		s->jobs = 2 * FUTURE_EVERY;
	for (int p = 0; p < NPOLICIES; p++)
		for (int m = 0; m < NMETRICS; m++) {
			s->v[p][m] = calloc((size_t)nruns, sizeof(double));
			if (!s->v[p][m])
				bench_die("out of memory");
		}
}

void sched_bench_run(enum sched_kind kind, int run)
{
	fprintf(stderr, "run %d/%d %-5s", run + 1, state[kind].nruns,
		sched_kind_key[kind]);
	bench_progress_open(1);
	for (int p = 0; p < NPOLICIES; p++) {
		fprintf(stderr, " %s", policy_key[p]);
		sched_measure(kind, (enum policy)p, run);
	}
	fputc('\n', stderr);
	bench_progress_open(0);
}

/*
 * The cost of policy p against the fast path, run by run: the ratio of
 * fast-path jobs/s to p's (>1: the pluggable path is slower) and the
 * difference in wall-clock ns per job. Medians with min and max.
 */
static void cost(enum sched_kind kind, int p, double ratio[3], double ns[3])
{
	const struct sched_state *s = &state[kind];
	double r[s->nruns > 0 ? s->nruns : 1], d[s->nruns > 0 ? s->nruns : 1];

	for (int run = 0; run < s->nruns; run++) {
		double fast = s->v[P_FAST][M_RATE][run];
		double mine = s->v[p][M_RATE][run];

		r[run] = fast / mine;
		d[run] = 1e9 / mine - 1e9 / fast;
	}
	ratio[0] = bench_median(r, s->nruns);
	ratio[1] = bench_min(r, s->nruns);
	ratio[2] = bench_max(r, s->nruns);
	ns[0] = bench_median(d, s->nruns);
	ns[1] = bench_min(d, s->nruns);
	ns[2] = bench_max(d, s->nruns);
}

static void fmt_metric(char *buf, size_t size, int m, double v)
{
	if (isnan(v))
		snprintf(buf, size, "n/a");
	else if (m == M_RATE)
		snprintf(buf, size, "%.2f M", v / 1e6);
	else
		snprintf(buf, size, v < 10 ? "%.2f" : "%.1f", v);
}

void sched_bench_print(enum sched_kind kind)
{
	const struct sched_state *s = &state[kind];
	const int nm = s->timing ? NMETRICS : 1;

	if (kind == SCHED_WORK)
		printf("\nsched: %lu jobs of %.2f us busy work", s->jobs,
		       bench_work_job_ns / 1e3);
	else
		printf("\nschednoop: %lu empty jobs", s->jobs);
	printf(" from %d producers, 1 in %d with a future (a producer "
	       "holding %d settles its oldest);\n%d workers, ring %u, %s; "
	       "libasyncq alone, policies interleaved, %d run%s\n",
	       PRODUCERS, FUTURE_EVERY, FUTURE_WINDOW, BENCH_WORKERS,
	       RING_SLOTS,
	       s->timing ? "AQ_POOL_TIMING (every job has a record)"
			 : "timing off (fast-path fire-and-forget jobs have "
			   "no record)",
	       s->nruns, s->nruns == 1 ? "" : "s");
	printf("  %-9s %-12s %10s %10s %10s %8s %9s\n", "policy", "metric",
	       "median", "min", "max", "ns/job", "fast/this");
	for (int p = 0; p < NPOLICIES; p++)
		for (int m = 0; m < nm; m++) {
			const double *v = s->v[p][m];
			char med[32], lo[32], hi[32], nsj[32] = "", r[32] = "";
			double ratio[3], ns[3];

			fmt_metric(med, sizeof(med), m,
				   bench_median(v, s->nruns));
			fmt_metric(lo, sizeof(lo), m, bench_min(v, s->nruns));
			fmt_metric(hi, sizeof(hi), m, bench_max(v, s->nruns));
			if (m == M_RATE) {
				snprintf(nsj, sizeof(nsj), "%.1f",
					 1e9 / bench_median(v, s->nruns));
				cost(kind, p, ratio, ns);
				snprintf(r, sizeof(r), "%.2fx", ratio[0]);
			}
			printf("  %-9s %-12s %10s %10s %10s %8s %9s\n",
			       m == 0 ? policy_key[p] : "", metric_label[m], med,
			       lo, hi, nsj, r);
		}
	printf("  cost of the pluggable path, per-run pairs with the fast "
	       "path (median [min, max]):\n");
	for (int p = P_FIFO; p < NPOLICIES; p++) {
		double ratio[3], ns[3];

		cost(kind, p, ratio, ns);
		printf("    %-9s %.2fx [%.2f, %.2f] the fast path's time, "
		       "%+.1f ns/job [%+.1f, %+.1f]\n",
		       policy_key[p], ratio[0], ratio[1], ratio[2], ns[0],
		       ns[1], ns[2]);
	}
	printf("  note: fast = cfg.sched NULL (workers pop the ring); fifo = "
	       "aq_sched_fifo();\n  priority = aq_sched_priority(), "
	       "priorities uniform in -%d..%d, aging %.0f ms;\n  fair = "
	       "aq_sched_fair(), group uniform in 0..%d, weight group+1 "
	       "(1..%d)\n", PRIO_SPREAD, PRIO_SPREAD, AGING_NS / 1e6,
	       GROUPS - 1, GROUPS);
	printf("  note: ns/job is wall-clock time per job with %d workers; "
	       "fast/this >1 = slower than the fast path\n", BENCH_WORKERS);
	if (s->timing)
		printf("  note: wait = submit to start, aq_pool_stats() "
		       "(log2 buckets: percentiles within 1.5x, max "
		       "exact)\n");
	printf("  note: full-ring submit retries in the last run:");
	for (int p = 0; p < NPOLICIES; p++)
		printf(" %s %lu", policy_key[p], s->full_retries[p]);
	putchar('\n');
}

void sched_bench_write(enum sched_kind kind, FILE *out)
{
	const struct sched_state *s = &state[kind];
	const char *key = sched_kind_key[kind];
	const int nm = s->timing ? NMETRICS : 1;

	fprintf(out, "# %s rows: libasyncq under each policy; the ratio "
		"column of jobs_per_s is fast-path jobs/s over this policy's "
		"(the pluggable path's cost, median of per-run ratios); "
		"cost_ns_per_job: the extra wall-clock ns per job\n", key);
	for (int p = 0; p < NPOLICIES; p++) {
		double ratio[3], ns[3];

		cost(kind, p, ratio, ns);
		for (int m = 0; m < nm; m++) {
			const double *v = s->v[p][m];

			fprintf(out, "%s %s %s %.6g %.6g %.6g ", key,
				policy_key[p], metric_key[m],
				bench_median(v, s->nruns),
				bench_min(v, s->nruns),
				bench_max(v, s->nruns));
			if (m == M_RATE && p != P_FAST)
				fprintf(out, "%.4g\n", ratio[0]);
			else
				fprintf(out, "-\n");
		}
		if (p != P_FAST)
			fprintf(out, "%s %s cost_ns_per_job %.6g %.6g %.6g -\n",
				key, policy_key[p], ns[0], ns[1], ns[2]);
	}
}

void sched_bench_write_raw(enum sched_kind kind, FILE *out)
{
	const struct sched_state *s = &state[kind];
	const int nm = s->timing ? NMETRICS : 1;

	for (int run = 0; run < s->nruns; run++)
		for (int p = 0; p < NPOLICIES; p++)
			for (int m = 0; m < nm; m++)
				fprintf(out, "raw %d %s %s %s %.6g\n", run + 1,
					sched_kind_key[kind], policy_key[p],
					metric_key[m], s->v[p][m][run]);
}
