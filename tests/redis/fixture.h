/* SPDX-License-Identifier: MIT */
/*
 * fixture.h - what the Redis suites share (check_redis.c): a redis-server
 * per test, worker processes logging to one job log, and the checks of
 * what a queue leaves in Redis.
 */
#ifndef AQR_TEST_FIXTURE_H
#define AQR_TEST_FIXTURE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

#include <check.h>

#include "asyncq_redis.h"
#include "server.h"

#define QUEUE "t"

extern struct rs srv;     /* this test's server */
extern char logpath[400]; /* the workers' job log */

/* The checked fixture: start the server; stop it, and fail on a
 * sanitizer report in the workers' output. */
void setup(void);
void teardown(void);
struct aq_redis_conn conn(void);
aq_redis_client *client(void);
/* A worker process; opts are "key=value" strings, NULL-ended. */
pid_t worker(const char *const *opts);
/* SIGTERM it and expect a clean exit. */
void worker_term(pid_t pid);
/* The bound of any one wait: 60 s, scaled for sanitizers. */
int64_t bound_ns(void);
/* The result bytes of a future that must succeed. */
const char *result_text(aq_future *fut);
/* Poll the job log until "event id" appears n times. */
bool log_wait(const char *event, const char *id, int n);
/* The keys of the queue besides its three empty streams. */
int leftover_keys(char *first, size_t size);
void assert_no_pending(void);
/* Has the dead-letter stream an entry with this reason? */
bool dead_has(const char *reason);
/* The first letters of the ids of the job log's "event id" lines. */
const char *log_order(const char *event, char *out, size_t size);
/* Restart the worker *w each time a job's abort() takes it down, until
 * fut resolves (bounded); how many were restarted. */
int respawn_until(aq_future *fut, pid_t *w, const char *const *opts);

/* AQR_TEST=test_name runs that test alone. */
bool wanted(const char *name);
#define ADD(tc, t)                                                             \
	do {                                                                   \
		if (wanted(#t))                                                \
			tcase_add_test(tc, t);                                 \
	} while (0)

/* tests/redis/semantics.c: cancel, fetch bounds, crash blame, leases. */
Suite *redis_sem_suite(void);

#endif
