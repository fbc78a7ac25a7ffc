/* SPDX-License-Identifier: MIT */
/* Fault injection: every allocation and thread creation can fail cleanly. */
#include <check.h>
#include <errno.h>
#include <stdatomic.h>
#include <stdint.h>
#include <string.h>

#include "asyncq.h"
#include "fault.h"
#include "helpers.h"
#include "suites.h"

static int noop(void *arg, void **result)
{
	(void)arg;
	(void)result;
	return 0;
}

static atomic_int destroyed;

static void count_destroy(void *arg)
{
	(void)arg;
	atomic_fetch_add(&destroyed, 1);
}

/*
 * Walk the Nth allocation of aq_pool_create from 1 until a create makes no
 * allocation we have not failed yet: each failure must return -ENOMEM and
 * leave *pool untouched (leaks are caught by the ASan/LSan run).
 */
START_TEST(create_fails_cleanly_at_every_allocation)
{
	struct aq_pool_config cfg = { .workers = 2 };

	/* pool, ring cells, record cache, thread table */
	ck_assert_int_ge(th_create_alloc_faults(&cfg), 4);
}
END_TEST

/* The Nth worker fails to start: the ones already started are joined and
 * the error is the thread library's, negated, whose text says so (it once
 * read "Queue full"). */
START_TEST(create_fails_cleanly_at_every_thread)
{
	struct aq_pool_config cfg = { .workers = 4 };

	for (long nth = 1; nth <= 4; nth++) {
		aq_pool *pool = NULL;

		aq__fault_arm(AQ__FAULT_THREAD, nth);
		ck_assert_int_eq(aq_pool_create(&pool, &cfg), -EAGAIN);
		ck_assert_ptr_nonnull(strstr(aq_strerror(-EAGAIN), "thread"));
		ck_assert_ptr_null(pool);
		ck_assert_int_eq(aq__fault_calls(AQ__FAULT_THREAD), nth);
	}
	aq__fault_arm(AQ__FAULT_THREAD, 0);
}
END_TEST

/* A submit whose record cannot be allocated fails with -ENOMEM, does not
 * call arg_destroy (the caller still owns arg), and the pool goes on. */
START_TEST(submit_fails_cleanly_without_memory)
{
	struct aq_job_opts opts = { .arg_destroy = count_destroy };
	aq_pool *pool;
	aq_future *fut = (aq_future *)(uintptr_t)0x1;
	void *res = NULL;

	atomic_store(&destroyed, 0);
	ck_assert_int_eq(aq_pool_create(&pool, NULL), 0);
	aq__fault_arm(AQ__FAULT_ALLOC, 1);
	ck_assert_int_eq(aq_submit(pool, noop, NULL, &opts, &fut), -ENOMEM);
	ck_assert_ptr_null(fut);
	ck_assert_int_eq(aq_submit(pool, noop, NULL, &opts, NULL), 0);
	aq__fault_arm(AQ__FAULT_ALLOC, 0);
	ck_assert_int_eq(aq_submit(pool, noop, NULL, &opts, &fut), 0);
	ck_assert_int_eq(aq_future_get(fut, &res, -1), 0);
	aq_future_release(fut);
	aq_pool_destroy(pool);
	/* The failed submit's arg was not destroyed; the two accepted were. */
	ck_assert_int_eq(atomic_load(&destroyed), 2);
}
END_TEST

/* Fire-and-forget without options never allocates, so it cannot fail on
 * memory at all. */
START_TEST(fire_and_forget_makes_no_allocation)
{
	aq_pool *pool;

	ck_assert_int_eq(aq_pool_create(&pool, NULL), 0);
	aq__fault_arm(AQ__FAULT_ALLOC, 0);
	for (int i = 0; i < 1000; i++) /* 1000 < the 4096-slot ring */
		ck_assert_int_eq(aq_submit(pool, noop, NULL, NULL, NULL), 0);
	ck_assert_int_eq(aq__fault_calls(AQ__FAULT_ALLOC), 0);
	aq_pool_destroy(pool);
}
END_TEST

/* Records are recycled: a submit/get/release loop allocates one record
 * and then reuses it, never mallocing per job. */
START_TEST(future_records_are_recycled)
{
	struct aq_pool_config cfg = { .workers = 1 };
	aq_pool *pool;

	ck_assert_int_eq(aq_pool_create(&pool, &cfg), 0);
	aq__fault_arm(AQ__FAULT_ALLOC, 0);
	for (int i = 0; i < 1000; i++) {
		aq_future *fut;

		ck_assert_int_eq(aq_submit(pool, noop, NULL, NULL, &fut), 0);
		ck_assert_int_eq(aq_future_get(fut, NULL, -1), 0);
		aq_future_release(fut);
	}
	/* The one worker may still hold the pool's reference to the last
	 * record when the next submit comes: that needs a second record,
	 * never a third. */
	ck_assert_int_le(aq__fault_calls(AQ__FAULT_ALLOC), 2);
	aq_pool_destroy(pool);
}
END_TEST

/* ---- every failure point of the other entry points ----------------------- */

#define MS 1000000LL

static void hook(const struct aq_job_event *ev, void *user)
{
	(void)ev;
	(void)user;
}

static int always_retry(int code, void *user)
{
	(void)code;
	(void)user;
	return 1;
}

/* aq_pool_create with every feature on: a scheduler, a retry policy, an
 * elastic size, timing and hooks. Every allocation fails with -ENOMEM and
 * every thread creation with -EAGAIN, *pool untouched, nothing leaked. */
START_TEST(full_create_fails_cleanly_at_every_point)
{
	struct aq_retry_policy retry = { .max_attempts = 3,
					 .base_delay_ns = MS,
					 .retryable = always_retry };
	struct aq_pool_config cfg = { .workers = 3,
				      .min_workers = 2,
				      .max_workers = 4,
				      .flags = AQ_POOL_TIMING,
				      .sched = aq_sched_fair(),
				      .retry = &retry,
				      .before_job = hook,
				      .after_job = hook };
	long allocs = th_create_alloc_faults(&cfg), threads = 0;

	for (long nth = 1;; nth++) {
		aq_pool *pool = NULL;
		int rc;

		aq__fault_arm(AQ__FAULT_THREAD, nth);
		rc = aq_pool_create(&pool, &cfg);
		aq__fault_arm(AQ__FAULT_THREAD, 0);
		if (rc == 0) {
			aq_pool_destroy(pool);
			break;
		}
		ck_assert_int_eq(rc, -EAGAIN);
		ck_assert_ptr_null(pool);
		threads++;
	}
	/* pool, ring, record cache, slot and stats tables, one stats block
	 * and one start block per worker, the scheduler's state */
	ck_assert_int_ge(allocs, 12);
	ck_assert_int_ge(threads, 2); /* the min_workers started at create */
}
END_TEST

static atomic_int then_ran;

static void then_count(aq_future *fut, void *user)
{
	(void)fut;
	(void)user;
	atomic_fetch_add(&then_ran, 1);
}

static bool dispatch_one(void *ctx)
{
	return aq_channel_dispatch(ctx, 0) == 1;
}

/* aq_future_then without memory: -ENOMEM, the callback never runs (inline
 * or on a channel), the future still resolves. */
START_TEST(then_fails_cleanly_at_every_allocation)
{
	aq_pool *pool = th_pool(1, 16, 0, 0);
	struct th_gate gate;
	aq_channel *ch;
	aq_future *fut;
	long points = 0;

	th_gate_init(&gate);
	ck_assert_int_eq(aq_channel_create(&ch, 0), 0);
	atomic_store(&then_ran, 0);
	ck_assert_int_eq(aq_submit(pool, th_gate_job, &gate, NULL, &fut), 0);
	ck_assert(th_gate_wait_entered(&gate, 1));
	for (int on_channel = 0; on_channel < 2; on_channel++) {
		for (long nth = 1;; nth++) {
			int rc;

			aq__fault_arm(AQ__FAULT_ALLOC, nth);
			rc = aq_future_then(fut, then_count, NULL,
					    on_channel ? ch : NULL);
			aq__fault_arm(AQ__FAULT_ALLOC, 0);
			if (rc == 0)
				break;
			ck_assert_int_eq(rc, -ENOMEM);
			points++;
		}
	}
	th_gate_open(&gate);
	ck_assert_int_eq(aq_future_get(fut, NULL, -1), 0);
	ck_assert_int_eq(aq_future_state(fut), AQ_STATE_SUCCEEDED);
	/* Only the two registrations that succeeded ran (the callbacks are
	 * delivered just after the future resolves: poll). */
	ck_assert(th_poll(dispatch_one, ch));
	ck_assert(th_poll_int(&then_ran, 2));
	th_sleep_ms(10);
	ck_assert_int_eq(aq_channel_dispatch(ch, 0), 0);
	ck_assert_int_eq(th_ld(&then_ran), 2);
	/* On a resolved future, a failed registration does not run it either. */
	aq__fault_arm(AQ__FAULT_ALLOC, 1);
	ck_assert_int_eq(aq_future_then(fut, then_count, NULL, NULL), -ENOMEM);
	aq__fault_arm(AQ__FAULT_ALLOC, 0);
	ck_assert_int_eq(th_ld(&then_ran), 2);
	aq_future_release(fut);
	aq_pool_destroy(pool);
	ck_assert_int_eq(aq_channel_dispatch(ch, 0), 0);
	aq_channel_destroy(ch);
	th_gate_destroy(&gate);
	ck_assert_int_ge(points, 2);
}
END_TEST

/* aq_channel_create: no descriptor is -EMFILE, no memory -ENOMEM. */
START_TEST(channel_create_fails_cleanly_at_every_point)
{
	long points = 0;
	aq_channel *ch;

	for (int site = 0; site < 2; site++) {
		enum aq__fault_site fs = site ? AQ__FAULT_ALLOC : AQ__FAULT_FD;

		for (long nth = 1;; nth++) {
			int rc;

			ch = (aq_channel *)(uintptr_t)0x1;
			aq__fault_arm(fs, nth);
			rc = aq_channel_create(&ch, 0);
			aq__fault_arm(fs, 0);
			if (rc == 0) {
				ck_assert_int_ge(aq_channel_fd(ch), 0);
				aq_channel_destroy(ch);
				break;
			}
			ck_assert_int_eq(rc, site ? -ENOMEM : -EMFILE);
			ck_assert_ptr_eq(ch, (aq_channel *)(uintptr_t)0x1);
			points++;
		}
	}
	ck_assert_int_ge(points, 2);
}
END_TEST

/* The timer thread starts with the first delayed job: when it cannot, the
 * delayed submit fails with -EAGAIN, its arg is not destroyed, nothing is
 * left counted (a shutdown completes), and the pool still works. The same
 * for every allocation of a first delayed submit. */
START_TEST(first_delayed_submit_fails_cleanly)
{
	long points = 0;

	for (int site = 0; site < 2; site++) {
		enum aq__fault_site fs = site ? AQ__FAULT_ALLOC : AQ__FAULT_THREAD;

		for (long nth = 1;; nth++) {
			struct aq_job_opts opts = { .delay_ns = MS,
						    .arg_destroy =
							    count_destroy };
			aq_pool *pool = th_pool(1, 16, 0, 0);
			aq_future *fut = (aq_future *)(uintptr_t)0x1;
			int rc;

			atomic_store(&destroyed, 0);
			aq__fault_arm(fs, nth);
			rc = aq_submit(pool, noop, NULL, &opts, &fut);
			aq__fault_arm(fs, 0);
			if (rc == 0) {
				ck_assert_int_eq(aq_future_get(fut, NULL, -1),
						 0);
				aq_future_release(fut);
				aq_pool_destroy(pool);
				ck_assert_int_eq(atomic_load(&destroyed), 1);
				break;
			}
			ck_assert_int_eq(rc, site ? -ENOMEM : -EAGAIN);
			ck_assert_ptr_nonnull(strstr(aq_strerror(rc),
						     site ? "memory" : "thread"));
			ck_assert_ptr_null(fut);
			ck_assert_int_eq(atomic_load(&destroyed), 0);
			/* The pool still works, delayed jobs included. */
			ck_assert_int_eq(aq_submit(pool, noop, NULL, &opts,
						   &fut), 0);
			ck_assert_int_eq(aq_future_get(fut, NULL, -1), 0);
			aq_future_release(fut);
			/* No timer user left behind: a shutdown completes
			 * (else the test times out). */
			ck_assert_int_eq(aq_pool_shutdown(pool, 0), 0);
			aq_pool_destroy(pool);
			ck_assert_int_eq(atomic_load(&destroyed), 1);
			points++;
		}
	}
	ck_assert_int_ge(points, 2); /* the thread, the record or the heap */
}
END_TEST

/*
 * aq_pool_resize raising min: a table that cannot grow is -ENOMEM, and a
 * worker that cannot start is pthread_create's -EAGAIN, whose text says a
 * thread could not be started (some workers may have started either
 * way). The pool still works and a later resize gets there.
 */
START_TEST(resize_fails_cleanly_at_every_point)
{
	long points = 0;

	for (int site = 0; site < 2; site++) {
		enum aq__fault_site fs = site ? AQ__FAULT_ALLOC : AQ__FAULT_THREAD;

		for (long nth = 1;; nth++) {
			aq_pool *pool = th_pool(1, 16, 0, 0);
			aq_future *fut;
			int rc;
			long calls;

			aq__fault_arm(fs, nth);
			rc = aq_pool_resize(pool, 3, 8);
			calls = aq__fault_calls(fs);
			aq__fault_arm(fs, 0);
			ck_assert_msg(calls < nth ? rc == 0
						  : rc == (site ? -ENOMEM
								: -EAGAIN),
				      "resize with fault %d at %ld: %d", site,
				      nth, rc);
			ck_assert_int_eq(aq_submit(pool, noop, NULL, NULL,
						   &fut), 0);
			ck_assert_int_eq(aq_future_get(fut, NULL, -1), 0);
			aq_future_release(fut);
			ck_assert_int_eq(aq_pool_resize(pool, 3, 8), 0);
			ck_assert_int_ge(aq_pool_workers(pool), 3);
			ck_assert_int_eq(aq_pool_shutdown(pool, 0), 0);
			aq_pool_destroy(pool);
			if (calls < nth)
				break; /* no call reached the armed one */
			points++;
		}
	}
	/* two workers started; slot and stats tables, stats blocks and start
	 * blocks allocated */
	ck_assert_int_ge(points, 6);
}
END_TEST

/* A submit with dependencies without memory: -ENOMEM, its arg not
 * destroyed, the dependencies unaffected (they run and resolve, and the
 * caller's references stay good). */
START_TEST(dependent_submit_fails_cleanly_at_every_allocation)
{
	aq_pool *pool = th_pool(2, 16, 0, 0);
	struct th_gate gate;
	aq_future *deps[2], *fut;
	struct aq_job_opts opts = { .arg_destroy = count_destroy,
				    .after = deps,
				    .after_count = 2 };
	long points = 0;

	th_gate_init(&gate);
	atomic_store(&destroyed, 0);
	for (int i = 0; i < 2; i++)
		ck_assert_int_eq(aq_submit(pool, th_gate_job, &gate, NULL,
					   &deps[i]), 0);
	ck_assert(th_gate_wait_entered(&gate, 2));
	for (long nth = 1;; nth++) {
		int rc;

		fut = (aq_future *)(uintptr_t)0x1;
		aq__fault_arm(AQ__FAULT_ALLOC, nth);
		rc = aq_submit(pool, noop, NULL, &opts, &fut);
		aq__fault_arm(AQ__FAULT_ALLOC, 0);
		if (rc == 0)
			break;
		ck_assert_int_eq(rc, -ENOMEM);
		ck_assert_ptr_null(fut);
		ck_assert_int_eq(atomic_load(&destroyed), 0);
		for (int i = 0; i < 2; i++)
			ck_assert_int_eq(aq_future_state(deps[i]),
					 AQ_STATE_RUNNING);
		points++;
	}
	th_gate_open(&gate);
	ck_assert_int_eq(aq_future_get(fut, NULL, -1), 0);
	for (int i = 0; i < 2; i++) {
		ck_assert_int_eq(aq_future_get(deps[i], NULL, -1), 0);
		aq_future_release(deps[i]);
	}
	aq_future_release(fut);
	aq_pool_destroy(pool);
	ck_assert_int_eq(atomic_load(&destroyed), 1);
	th_gate_destroy(&gate);
	/* the dependency array and one node per dependency (the record may
	 * come from the pool's cache) */
	ck_assert_int_ge(points, 3);
}
END_TEST

Suite *fault_suite(void)
{
	Suite *s = suite_create("fault");
	TCase *tc = tcase_create("injection");

	tcase_set_timeout(tc, 30);
	tcase_add_test(tc, create_fails_cleanly_at_every_allocation);
	tcase_add_test(tc, create_fails_cleanly_at_every_thread);
	tcase_add_test(tc, submit_fails_cleanly_without_memory);
	tcase_add_test(tc, fire_and_forget_makes_no_allocation);
	tcase_add_test(tc, future_records_are_recycled);
	tcase_add_test(tc, full_create_fails_cleanly_at_every_point);
	tcase_add_test(tc, then_fails_cleanly_at_every_allocation);
	tcase_add_test(tc, channel_create_fails_cleanly_at_every_point);
	tcase_add_test(tc, first_delayed_submit_fails_cleanly);
	tcase_add_test(tc, resize_fails_cleanly_at_every_point);
	tcase_add_test(tc, dependent_submit_fails_cleanly_at_every_allocation);
	suite_add_tcase(s, tc);
	return s;
}
