/* SPDX-License-Identifier: MIT */
/*
 * quickstart.c - the smallest useful libasyncq program: create a pool,
 * submit jobs with and without futures, read results and failures, shut
 * down. `make demo` builds and runs it. Compiles as C and as C++.
 */
#include <stdint.h>
#include <stdio.h>

#include <asyncq.h>

/* A job: 0 and a result on success, a positive code of its own on failure. */
static int square(void *arg, void **result)
{
	intptr_t x = (intptr_t)arg;

	if (x < 0)
		return 1; /* our own failure code: "negative input" */
	*result = (void *)(x * x);
	return 0;
}

static int count(void *arg, void **result)
{
	(void)result;
	++*(long *)arg; /* one worker only, so no race (see cfg below) */
	return 0;
}

int main(void)
{
	struct aq_pool_config cfg = { 0 }; /* zero = defaults */
	struct aq_job_opts wait_for_space = { 0 };
	aq_future *futs[5];
	aq_pool *pool;
	long counted = 0;
	int rc;

	cfg.workers = 1; /* so that count() needs no atomics */
	rc = aq_pool_create(&pool, &cfg);
	if (rc) {
		fprintf(stderr, "aq_pool_create: %s\n", aq_strerror(rc));
		return 1;
	}
	printf("libasyncq %s: pool with %d worker(s), ring of %d slots\n",
	       aq_version_string(), aq_pool_workers(pool),
	       aq_pool_capacity(pool));

	for (intptr_t i = 0; i < 5; i++) {
		rc = aq_submit(pool, square, (void *)(i == 3 ? -i : i), NULL,
			       &futs[i]);
		if (rc) {
			fprintf(stderr, "aq_submit: %s\n", aq_strerror(rc));
			return 1;
		}
	}
	for (int i = 0; i < 5; i++) {
		void *result;

		rc = aq_future_get(futs[i], &result, -1); /* wait forever */
		if (rc == 0)
			printf("job %d succeeded: %ld\n", i,
			       (long)(intptr_t)result);
		else if (rc > 0)
			printf("job %d failed with its own code %d\n", i, rc);
		else
			printf("job %d: %s\n", i, aq_strerror(rc));
		aq_future_release(futs[i]);
	}

	/* Fire-and-forget: no future. AQ_JOB_BLOCK waits for ring space
	 * instead of failing with -EAGAIN when the ring is full. */
	wait_for_space.flags = AQ_JOB_BLOCK;
	for (int i = 0; i < 1000; i++) {
		rc = aq_submit(pool, count, &counted, &wait_for_space, NULL);
		if (rc) {
			fprintf(stderr, "aq_submit: %s\n", aq_strerror(rc));
			return 1;
		}
	}
	aq_pool_destroy(pool); /* drains: every accepted job runs */
	printf("1000 fire-and-forget jobs ran: counted %ld\n", counted);
	return counted == 1000 ? 0 : 1;
}
