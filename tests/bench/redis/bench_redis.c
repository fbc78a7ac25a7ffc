/* SPDX-License-Identifier: MIT */
/*
 * bench_redis.c - libasyncq-redis end to end, against a running
 * redis-server and worker processes (bench_redis.sh starts them):
 *
 *   bench_redis PORT results N      N no-op jobs with results, pipelined
 *                                   batches; prints jobs/s
 *   bench_redis PORT noresult N     fire-and-forget; jobs/s until the
 *                                   queue is drained
 *   bench_redis PORT latency N RATE one job at a time at RATE jobs/s;
 *                                   prints p50 and p99 round trip in us
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <asyncq_redis.h>

#define BATCH 1000

static double now_s(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return ts.tv_sec + ts.tv_nsec / 1e9;
}

static int cmp_double(const void *a, const void *b)
{
	double x = *(const double *)a, y = *(const double *)b;

	return x < y ? -1 : x > y;
}

static void fill(struct aq_redis_job *jobs, unsigned k)
{
	for (unsigned i = 0; i < k; i++) {
		jobs[i].type = "noop";
		jobs[i].payload = "1 2";
		jobs[i].len = 3;
	}
}

int main(int argc, char **argv)
{
	struct aq_redis_conn conn = { .queue = "bench" };
	static struct aq_redis_job jobs[BATCH];
	aq_redis_client *c;
	unsigned n;
	double t0, t1;

	if (argc < 4)
		return 2;
	conn.port = (unsigned)atoi(argv[1]);
	n = (unsigned)strtoul(argv[3], NULL, 10);
	if (aq_redis_client_create(&c, &conn, 0) != 0)
		return 1;
	fill(jobs, BATCH);
	if (!strcmp(argv[2], "results")) {
		aq_future **futs = malloc(n * sizeof(*futs));

		t0 = now_s();
		for (unsigned b = 0; b < n; b += BATCH) {
			unsigned k = n - b < BATCH ? n - b : BATCH;

			if (aq_redis_submit_batch(c, jobs, k, NULL, futs + b) !=
			    (int)k)
				return 1;
		}
		if (aq_wait_all(futs, n, -1) != 0)
			return 1;
		t1 = now_s();
		for (unsigned i = 0; i < n; i++) {
			if (aq_future_get(futs[i], NULL, 0) != 0)
				return 1;
			aq_future_release(futs[i]);
		}
		free(futs);
		printf("%.0f\n", n / (t1 - t0));
	} else if (!strcmp(argv[2], "noresult")) {
		struct aq_redis_stats st;

		t0 = now_s();
		for (unsigned b = 0; b < n; b += BATCH) {
			unsigned k = n - b < BATCH ? n - b : BATCH;

			if (aq_redis_submit_batch(c, jobs, k, NULL, NULL) !=
			    (int)k)
				return 1;
		}
		do {
			struct timespec ts = { 0, 1000000 };

			nanosleep(&ts, NULL);
			if (aq_redis_client_stats(c, &st) != 0)
				return 1;
		} while (st.lag || st.pending);
		t1 = now_s();
		printf("%.0f\n", n / (t1 - t0));
	} else if (!strcmp(argv[2], "latency") && argc > 4) {
		double rate = atof(argv[4]), *rtt = malloc(n * sizeof(*rtt));
		double next = now_s();

		for (unsigned i = 0; i < n; i++) {
			aq_future *f;

			while (now_s() < next)
				;
			next += 1.0 / rate;
			t0 = now_s();
			if (aq_redis_submit(c, "noop", "1 2", 3, NULL, &f) ||
			    aq_future_get(f, NULL, -1) != 0)
				return 1;
			rtt[i] = (now_s() - t0) * 1e6;
			aq_future_release(f);
		}
		qsort(rtt, n, sizeof(*rtt), cmp_double);
		printf("%.0f %.0f\n", rtt[n / 2], rtt[n * 99 / 100]);
		free(rtt);
	}
	aq_redis_client_destroy(c);
	return 0;
}
