/* SPDX-License-Identifier: MIT */
/*
 * retry.c - failure handling with libasyncq: a flaky "connect" operation
 * retried with exponential back-off and full jitter, a permanent error that
 * is never retried, and an on_error callback that logs the error record.
 *
 * Three jobs share one retry policy:
 *   db     refused twice (ECONNREFUSED, transient), then connects
 *   cache  refused every time: gives up after max_attempts
 *   auth   permission denied (EACCES, permanent): fails at once
 * It uses the real clock with delays of a few milliseconds, prints what
 * happened, and exits 0 when every outcome is the expected one.
 */
#include <errno.h>
#include <inttypes.h>
#include <stdatomic.h>
#include <stdio.h>
#include <string.h>

#include <asyncq.h>

/* A remote service that refuses the first `refusals` connections. */
struct service {
	const char *name;
	int refusals;     /* attempts answered with ECONNREFUSED; -1 = all */
	int denied;       /* non-zero: every attempt fails with EACCES */
	atomic_int tries; /* attempts made */
};

/* The job: one connection attempt. */
static int connect_job(void *arg, void **result)
{
	struct service *svc = (struct service *)arg;
	int n = atomic_fetch_add(&svc->tries, 1) + 1;
	char msg[96];

	(void)result;
	if (svc->denied) {
		snprintf(msg, sizeof(msg), "connect to %s: %s", svc->name,
			 strerror(EACCES));
		aq_current_fail_msg(msg); /* copied into the error record */
		return EACCES;        /* permanent: never retried */
	}
	if (svc->refusals < 0 || n <= svc->refusals) {
		snprintf(msg, sizeof(msg), "connect to %s: %s (attempt %u)",
			 svc->name, strerror(ECONNREFUSED), aq_current_attempt());
		aq_current_fail_msg(msg);
		return ECONNREFUSED;  /* transient: 111 on Linux */
	}
	printf("  %-5s connected on attempt %u\n", svc->name,
	       aq_current_attempt());
	return 0;
}

static atomic_int errors_logged;

/* Before each retry, on a worker: log it (it could also veto it by
 * returning non-zero, or change *delay_ns). */
static int log_retry(const struct aq_job_info *info, int code,
		     unsigned attempt, int64_t *delay_ns, void *user)
{
	const struct service *svc = (const struct service *)info->arg;

	(void)user;
	printf("  %-5s attempt %u failed (%s); retrying in %.3f ms\n",
	       svc->name, attempt, strerror(code), (double)*delay_ns / 1e6);
	return 0;
}

/* Once, on a worker, when a job has failed for good: log the record. */
static void log_error(const struct aq_job_info *info,
		      const struct aq_error *err, void *user)
{
	const struct service *svc = (const struct service *)info->arg;

	(void)user;
	printf("  %-5s FAILED: job %" PRIu64 ", %u attempt%s, code %d (%s), "
	       "\"%s\", %.3f ms from first to last attempt\n",
	       svc->name, err->job_id, err->attempts,
	       err->attempts == 1 ? "" : "s", err->code, strerror(err->code),
	       err->message ? err->message : "",
	       (double)(err->last_attempt_ns - err->first_attempt_ns) / 1e6);
	atomic_fetch_add(&errors_logged, 1);
}

int main(void)
{
	static const int permanent[] = { EACCES };
	struct service db = { "db", 2, 0, 0 };
	struct service cache = { "cache", -1, 0, 0 };
	struct service auth = { "auth", 0, 1, 0 };
	struct service *svcs[3] = { &db, &cache, &auth };
	const int want_rc[3] = { 0, ECONNREFUSED, EACCES };
	const int want_tries[3] = { 3, 4, 1 };
	struct aq_retry_policy policy;
	struct aq_job_opts opts;
	aq_future *futs[3];
	aq_pool *pool;
	int ok = 1, rc;

	/* 4 attempts in all; 2 ms, 4 ms, 8 ms (capped at 5 ms), each a
	 * random delay in [0, d] ("full jitter") so that many clients
	 * retrying together do not stampede. */
	memset(&policy, 0, sizeof(policy));
	policy.max_attempts = 4;
	policy.base_delay_ns = 2000000;
	policy.factor = 2.0;
	policy.max_delay_ns = 5000000;
	policy.flags = AQ_RETRY_JITTER;
	policy.never_retry = permanent;
	policy.never_retry_count = 1;
	policy.on_retry = log_retry;
	policy.on_error = log_error;

	rc = aq_pool_create(&pool, NULL);
	if (rc < 0) {
		fprintf(stderr, "aq_pool_create: %s\n", aq_strerror(rc));
		return 1;
	}
	memset(&opts, 0, sizeof(opts));
	opts.retry = &policy; /* must outlive the jobs: it does */
	for (int i = 0; i < 3; i++) {
		rc = aq_submit(pool, connect_job, svcs[i], &opts, &futs[i]);
		if (rc < 0) {
			fprintf(stderr, "aq_submit: %s\n", aq_strerror(rc));
			return 1;
		}
	}

	for (int i = 0; i < 3; i++) {
		struct aq_error err;
		int tries;

		/* Waits across the retries and their back-off. */
		rc = aq_future_get(futs[i], NULL, -1);
		tries = atomic_load(&svcs[i]->tries);
		printf("%-5s -> %s after %d attempt%s\n", svcs[i]->name,
		       rc == 0 ? "succeeded" : strerror(rc), tries,
		       tries == 1 ? "" : "s");
		if (rc > 0 && aq_future_error(futs[i], &err) == 0 &&
		    (err.code != rc || (int)err.attempts != tries))
			ok = 0;
		if (rc != want_rc[i] || tries != want_tries[i])
			ok = 0;
		aq_future_release(futs[i]);
	}
	aq_pool_destroy(pool);
	if (atomic_load(&errors_logged) != 2) /* cache and auth */
		ok = 0;
	printf("%s\n", ok ? "all outcomes as expected" : "UNEXPECTED outcome");
	return ok ? 0 : 1;
}
