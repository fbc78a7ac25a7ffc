/* SPDX-License-Identifier: MIT */
/*
 * usdt_prog.c - a known workload for tests/usdt.sh to trace: each of the
 * library's USDT probes fires a number of times that can be counted in
 * advance, and some of their arguments (printed with -n, as "name count"
 * lines that usdt.sh compares with what bpftrace counted).
 *
 *   100 fire-and-forget jobs, 20 jobs with futures, and a batch of 10
 *   fire-and-forget jobs (aq_submit_batch), all succeeding; one job that
 *   fails three times (two retries); one whose deadline has passed; one
 *   delayed job, cancelled. One worker, so nothing depends on timing.
 */
#include <errno.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <asyncq.h>

#define N_FF 100
#define N_FUT 20
#define N_BATCH 10

static atomic_int ran;

static int count_job(void *arg, void **result)
{
	(void)arg;
	(void)result;
	atomic_fetch_add(&ran, 1);
	return 0;
}

static int fail_job(void *arg, void **result)
{
	(void)arg;
	(void)result;
	return 5;
}

static void die(const char *what, int rc)
{
	fprintf(stderr, "usdt_prog: %s: %s\n", what, aq_strerror(rc));
	exit(1);
}

int main(int argc, char **argv)
{
	static const struct aq_retry_policy thrice = { .max_attempts = 3 };
	struct aq_pool_config cfg = { .workers = 1, .name = "usdt" };
	struct aq_job_opts retry = { .retry = &thrice };
	struct aq_job_opts later = { .delay_ns = INT64_C(3600000000000) };
	struct aq_job_opts deadline = { 0 };
	struct aq_job batch[N_BATCH];
	aq_future *futs[N_FUT], *failing, *expiring, *delayed;
	aq_pool *pool;
	int rc, done;

	if (argc == 2 && !strcmp(argv[1], "-n")) {
		/* What a trace of one run must count (see usdt.sh). */
		printf("submit %d\nsubmit_batch %d\nstart %d\nfinish %d\n"
		       "succeeded %d\nfailed 1\ncancelled 1\nexpired 1\n"
		       "retry 2\nexpire 1\ncancel 1\n",
		       N_FF + N_FUT + 3, N_BATCH, N_FF + N_FUT + N_BATCH + 3,
		       N_FF + N_FUT + N_BATCH + 3, N_FF + N_FUT + N_BATCH);
		/* Arguments: attempts 1 each, 1 + 2 + 3 for the failing
		 * job; its code; the attempts that failed and were retried
		 * (1 + 2); the cancel's result, 0. */
		printf("start_attempts %d\nfailed_code 5\nretry_attempts 3\n"
		       "cancel_rc 0\n",
		       N_FF + N_FUT + N_BATCH + 6);
		return 0;
	}
	rc = aq_pool_create(&pool, &cfg);
	if (rc)
		die("aq_pool_create", rc);
	for (int i = 0; i < N_FF; i++)
		if ((rc = aq_submit(pool, count_job, NULL, NULL, NULL)))
			die("aq_submit", rc);
	for (int i = 0; i < N_FUT; i++)
		if ((rc = aq_submit(pool, count_job, NULL, NULL, &futs[i])))
			die("aq_submit", rc);
	for (int i = 0; i < N_BATCH; i++)
		batch[i] = (struct aq_job){ count_job, NULL };
	for (done = 0; done < N_BATCH; done += rc)
		if ((rc = aq_submit_batch(pool, batch + done,
					  (unsigned)(N_BATCH - done), NULL,
					  NULL)) < 0)
			die("aq_submit_batch", rc);
	if ((rc = aq_submit(pool, fail_job, NULL, &retry, &failing)))
		die("aq_submit", rc);
	if ((rc = aq_pool_now(pool, &deadline.deadline_ns))) /* passed */
		die("aq_pool_now", rc);
	if ((rc = aq_submit(pool, count_job, NULL, &deadline, &expiring)))
		die("aq_submit", rc);
	if ((rc = aq_submit(pool, count_job, NULL, &later, &delayed)))
		die("aq_submit", rc);
	if ((rc = aq_future_cancel(delayed)))
		die("aq_future_cancel", rc);

	for (int i = 0; i < N_FUT; i++) {
		if ((rc = aq_future_get(futs[i], NULL, -1)))
			die("aq_future_get", rc);
		aq_future_release(futs[i]);
	}
	if ((rc = aq_future_get(failing, NULL, -1)) != 5)
		die("the failing job", rc);
	if ((rc = aq_future_get(expiring, NULL, -1)) != -ETIME)
		die("the expiring job", rc);
	aq_future_release(failing);
	aq_future_release(expiring);
	aq_future_release(delayed);
	/* A draining shutdown runs every fire-and-forget job first. */
	if ((rc = aq_pool_shutdown(pool, 0)))
		die("aq_pool_shutdown", rc);
	aq_pool_destroy(pool);
	if (atomic_load(&ran) != N_FF + N_FUT + N_BATCH) {
		fprintf(stderr, "usdt_prog: %d jobs ran, not %d\n",
			atomic_load(&ran), N_FF + N_FUT + N_BATCH);
		return 1;
	}
	return 0;
}
