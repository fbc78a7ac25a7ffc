/* SPDX-License-Identifier: MIT */
/*
 * suites.h - the Check suites the one runner (check_main.c) puts together.
 */
#ifndef AQ_TEST_SUITES_H
#define AQ_TEST_SUITES_H

#include <check.h>

/* One suite per module, named after it. */
Suite *ring_suite(void);     /* lib/ring.c, through the aq__ring_* API */
Suite *pool_suite(void);     /* pools: configuration, submission, blocking */
Suite *submit_suite(void);   /* aq_submit_batch */
Suite *queue_suite(void);    /* producers outrun the pool: bounded, lossless */
Suite *future_suite(void);   /* futures: get, cancel, state, release */
Suite *shutdown_suite(void); /* drain, cancel, destroy, misuse */
Suite *shutdown_timed_suite(void); /* shutdown deadlines, running jobs */
Suite *error_suite(void);    /* aq_strerror, version */
Suite *badinput_suite(void); /* every public function, every bad argument */
Suite *fault_suite(void);    /* fault injection (tests/check_fault.c) */
Suite *sched_suite(void);    /* schedulers: priority, aging, AQ_YIELD, ops */
Suite *sched_fair_suite(void); /* the weighted fair scheduler */
Suite *retry_suite(void);    /* retries, back-off, callbacks, error record */
Suite *timer_suite(void);    /* delays, deadlines, the pool clock */
Suite *channel_suite(void);  /* then-callbacks, completion channels */
Suite *threads_suite(void);  /* worker threads: hooks, resize, elastic, host */
Suite *wait_suite(void);     /* wait-all/any, nested waits that help */
Suite *deps_suite(void);     /* opts.after: chains, fan-in, SKIPPED */
Suite *stats_suite(void);    /* counters, gauges, timing, hooks, Little's law */
Suite *metrics_suite(void);  /* aq_pool_metrics: OpenMetrics text */
Suite *promise_suite(void);  /* aq_future_create, aq_future_complete */
Suite *deque_suite(void);    /* work-stealing deques and fork-join */
Suite *cache_suite(void);    /* the record cache: threads' lists, lifetime */

#endif
