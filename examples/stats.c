/* SPDX-License-Identifier: MIT */
/*
 * stats.c - watching a pool from the inside: a mixed workload (short and
 * long jobs, some failing and retried, some cancelled) runs while the main
 * thread prints aq_pool_stats() once a second: the counters, the gauges,
 * the queueing view of the last second (arrival rate lambda, throughput X,
 * utilisation rho, time in system W, number in system L = X W) and the
 * wait and run time percentiles.
 *
 *   build/examples/stats [-s SECONDS]     (default 5)
 */
#include <errno.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <time.h>
#include <unistd.h>

#include <asyncq.h>

#define WORKERS 4
#define ARRIVALS_PER_MS 3 /* about 60% of what 4 workers can do here */

static int64_t now_ns(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (int64_t)ts.tv_sec * 1000000000 + ts.tv_nsec;
}

static void sleep_until(int64_t t_ns)
{
	struct timespec ts = { .tv_sec = t_ns / 1000000000,
			       .tv_nsec = t_ns % 1000000000 };

	while (clock_nanosleep(CLOCK_MONOTONIC, TIMER_ABSTIME, &ts, NULL) ==
	       EINTR)
		;
}

/* Short jobs use the CPU for ~100 us. */
static int short_job(void *arg, void **result)
{
	int64_t until = now_ns() + 100000;

	(void)arg;
	(void)result;
	while (now_ns() < until)
		;
	return 0;
}

/* Long jobs wait 5 ms, as a call to a slow service would. */
static int long_job(void *arg, void **result)
{
	(void)arg;
	(void)result;
	sleep_until(now_ns() + 5000000);
	return 0;
}

/* Fails its first attempt; the pool's retry policy tries it again. */
static int flaky_job(void *arg, void **result)
{
	(void)arg;
	(void)result;
	return aq_current_attempt() < 2 ? EAGAIN : 0;
}

/* Always fails: retried, then failed for good. */
static int broken_job(void *arg, void **result)
{
	(void)arg;
	(void)result;
	return EIO;
}

struct producer {
	aq_pool *pool;
	atomic_bool stop;
};

/* Submits ARRIVALS_PER_MS jobs every millisecond: 85% short, 8% long,
 * 3% flaky, 2% broken, 2% cancelled before they can run. */
static void *produce(void *arg)
{
	struct producer *p = arg;
	struct aq_job_opts opts = { .flags = AQ_JOB_BLOCK,
				    .timeout_ns = 10000000 };
	uint64_t seq = 0;
	int64_t tick = now_ns();

	while (!atomic_load(&p->stop)) {
		for (int i = 0; i < ARRIVALS_PER_MS; i++, seq++) {
			unsigned kind = (unsigned)(seq * 37 % 100);
			aq_job_fn fn = kind < 85   ? short_job
				       : kind < 93 ? long_job
				       : kind < 96 ? flaky_job
				       : kind < 98 ? broken_job
						   : short_job;
			aq_future *fut = NULL;
			int rc;

			/* Only the jobs we cancel need a future. */
			rc = aq_submit(p->pool, fn, NULL, &opts,
				       kind >= 98 ? &fut : NULL);
			if (rc)
				continue; /* counted as rejected */
			if (fut) {
				aq_future_cancel(fut); /* may be too late */
				aq_future_release(fut);
			}
		}
		tick += 1000000;
		sleep_until(tick);
	}
	return NULL;
}

static void print_header(void)
{
	printf("%4s %8s %8s %6s %6s %6s %4s %7s %7s %5s %7s %6s "
	       "%8s %8s %8s %8s\n",
	       "t", "submit", "done", "failed", "retry", "queued", "run",
	       "lambda", "X", "rho", "W(ms)", "L", "wait50", "wait99",
	       "run50", "run99");
}

static void print_row(int t, const struct aq_pool_stats *s)
{
	uint64_t done = s->succeeded + s->failed + s->cancelled + s->expired +
			s->skipped;

	printf("%4d %8llu %8llu %6llu %6llu %6llu %4llu %7.0f %7.0f %5.2f "
	       "%7.3f %6.2f %6.0fus %6.0fus %6.0fus %6.0fus\n",
	       t, (unsigned long long)s->submitted, (unsigned long long)done,
	       (unsigned long long)s->failed, (unsigned long long)s->retried,
	       (unsigned long long)s->queued, (unsigned long long)s->running,
	       s->arrival_rate, s->throughput, s->utilization,
	       s->mean_time_in_system_ns / 1e6, s->mean_in_system,
	       (double)s->wait.p50_ns / 1e3, (double)s->wait.p99_ns / 1e3,
	       (double)s->run.p50_ns / 1e3, (double)s->run.p99_ns / 1e3);
	fflush(stdout);
}

static void usage(const char *argv0)
{
	fprintf(stderr, "usage: %s [-s SECONDS]\n", argv0);
}

int main(int argc, char **argv)
{
	/* Failed jobs are tried up to 3 times, 1 ms then 2 ms apart. */
	static const struct aq_retry_policy retry = {
		.max_attempts = 3, .base_delay_ns = 1000000, .factor = 2.0
	};
	struct aq_pool_config cfg = { .workers = WORKERS,
				      .flags = AQ_POOL_TIMING,
				      .retry = &retry };
	struct producer prod = { .pool = NULL };
	struct aq_pool_stats s;
	uint64_t done;
	long seconds = 5;
	pthread_t thread;
	int64_t start;
	int opt, rc;

	while ((opt = getopt(argc, argv, "s:h")) != -1) {
		char *end;

		switch (opt) {
		case 's':
			seconds = strtol(optarg, &end, 10);
			if (*end || seconds < 1 || seconds > 86400) {
				usage(argv[0]);
				return 2;
			}
			break;
		default:
			usage(argv[0]);
			return opt == 'h' ? 0 : 2;
		}
	}

	rc = aq_pool_create(&prod.pool, &cfg);
	if (rc) {
		fprintf(stderr, "aq_pool_create: %s\n", aq_strerror(rc));
		return 1;
	}
	atomic_init(&prod.stop, false);
	if (pthread_create(&thread, NULL, produce, &prod)) {
		fprintf(stderr, "pthread_create failed\n");
		aq_pool_destroy(prod.pool);
		return 1;
	}

	/* The first call opens the window each row then closes. */
	aq_pool_stats(prod.pool, &s);
	print_header();
	start = now_ns();
	for (int t = 1; t <= seconds; t++) {
		sleep_until(start + (int64_t)t * 1000000000);
		aq_pool_stats(prod.pool, &s);
		print_row(t, &s);
	}

	atomic_store(&prod.stop, true);
	pthread_join(thread, NULL);
	aq_pool_shutdown(prod.pool, AQ_SHUTDOWN_DRAIN);
	aq_pool_stats(prod.pool, &s); /* still readable until destroy */
	done = s.succeeded + s.failed + s.cancelled + s.expired + s.skipped;
	printf("drained: %llu submitted = %llu succeeded + %llu failed + "
	       "%llu cancelled + %llu expired + %llu skipped (%s); "
	       "%llu retries, %llu refused\n",
	       (unsigned long long)s.submitted,
	       (unsigned long long)s.succeeded, (unsigned long long)s.failed,
	       (unsigned long long)s.cancelled, (unsigned long long)s.expired,
	       (unsigned long long)s.skipped,
	       done == s.submitted ? "adds up" : "does NOT add up",
	       (unsigned long long)s.retried,
	       (unsigned long long)s.rejected);
	aq_pool_destroy(prod.pool);
	return done == s.submitted ? 0 : 1;
}
