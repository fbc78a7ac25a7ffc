/* SPDX-License-Identifier: MIT */
/* check_main.c - the one test runner: every suite, in fork mode. */

/*
 * AQ_TEST_SUITE=name runs only that suite (one per module: ring, pool,
 * submit, queue, future, shutdown, shutdown_timed, error, badinput, fault,
 * sched, sched_fair, retry, timer, channel, threads, wait, deps, stats,
 * metrics, promise, deque, cache);
 * Check's own CK_RUN_CASE and CK_TIMEOUT_MULTIPLIER work too.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "suites.h"

static const struct {
	const char *name;
	Suite *(*make)(void);
} suites[] = {
	{ "ring", ring_suite },         { "pool", pool_suite },
	{ "submit", submit_suite },     { "queue", queue_suite },
	{ "future", future_suite },     { "shutdown", shutdown_suite },
	{ "shutdown_timed", shutdown_timed_suite },
	{ "error", error_suite },       { "badinput", badinput_suite },
	{ "fault", fault_suite },       { "sched", sched_suite },
	{ "sched_fair", sched_fair_suite },
	{ "retry", retry_suite },       { "timer", timer_suite },
	{ "channel", channel_suite },   { "threads", threads_suite },
	{ "wait", wait_suite },         { "deps", deps_suite },
	{ "stats", stats_suite },
	{ "metrics", metrics_suite },   { "promise", promise_suite },
	{ "deque", deque_suite },       { "cache", cache_suite },
};

int main(void)
{
	const char *only = getenv("AQ_TEST_SUITE");
	SRunner *sr = srunner_create(NULL);
	size_t added = 0;
	int failed;

	for (size_t i = 0; i < sizeof(suites) / sizeof(suites[0]); i++) {
		if (only && *only && strcmp(only, suites[i].name) != 0)
			continue;
		srunner_add_suite(sr, suites[i].make());
		added++;
	}
	if (added == 0) {
		fprintf(stderr, "check_asyncq: no suite named \"%s\"; the "
			"suites are:", only);
		for (size_t i = 0; i < sizeof(suites) / sizeof(suites[0]); i++)
			fprintf(stderr, " %s", suites[i].name);
		fputc('\n', stderr);
		srunner_free(sr);
		return EXIT_FAILURE;
	}
	/* Fork mode (Check's default, unless CK_FORK=no) is kept on purpose:
	 * a crash or a deadlock fails one test, not the run. */
	srunner_run_all(sr, CK_NORMAL);
	failed = srunner_ntests_failed(sr);
	srunner_free(sr);
	return failed == 0 ? EXIT_SUCCESS : EXIT_FAILURE;
}
