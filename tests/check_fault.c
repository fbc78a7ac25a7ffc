/* SPDX-License-Identifier: MIT */
/* Fault injection: every allocation and thread creation can fail cleanly. */
#include <check.h>
#include <errno.h>
#include <stdatomic.h>
#include <stdint.h>

#include "asyncq.h"
#include "fault.h"
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
	long points = 0;

	for (long nth = 1;; nth++) {
		aq_pool *pool = (aq_pool *)(uintptr_t)0x1;
		int rc;

		aq__fault_arm(AQ_FAULT_ALLOC, nth);
		rc = aq_pool_create(&pool, &cfg);
		if (rc == 0) {
			aq__fault_arm(AQ_FAULT_ALLOC, 0);
			ck_assert_int_eq(aq_pool_workers(pool), 2);
			aq_pool_destroy(pool);
			break;
		}
		ck_assert_int_eq(rc, -ENOMEM);
		ck_assert_ptr_eq(pool, (aq_pool *)(uintptr_t)0x1);
		points++;
	}
	aq__fault_arm(AQ_FAULT_ALLOC, 0);
	/* pool, ring cells, record cache, thread table */
	ck_assert_int_ge(points, 4);
}
END_TEST

/* The Nth worker fails to start: the ones already started are joined and
 * the error is the thread library's, negated. */
START_TEST(create_fails_cleanly_at_every_thread)
{
	struct aq_pool_config cfg = { .workers = 4 };

	for (long nth = 1; nth <= 4; nth++) {
		aq_pool *pool = NULL;

		aq__fault_arm(AQ_FAULT_THREAD, nth);
		ck_assert_int_eq(aq_pool_create(&pool, &cfg), -EAGAIN);
		ck_assert_ptr_null(pool);
		ck_assert_int_eq(aq__fault_calls(AQ_FAULT_THREAD), nth);
	}
	aq__fault_arm(AQ_FAULT_THREAD, 0);
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
	aq__fault_arm(AQ_FAULT_ALLOC, 1);
	ck_assert_int_eq(aq_submit(pool, noop, NULL, &opts, &fut), -ENOMEM);
	ck_assert_ptr_null(fut);
	ck_assert_int_eq(aq_submit(pool, noop, NULL, &opts, NULL), 0);
	aq__fault_arm(AQ_FAULT_ALLOC, 0);
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
	aq__fault_arm(AQ_FAULT_ALLOC, 0);
	for (int i = 0; i < 1000; i++) /* 1000 < the 4096-slot ring */
		ck_assert_int_eq(aq_submit(pool, noop, NULL, NULL, NULL), 0);
	ck_assert_int_eq(aq__fault_calls(AQ_FAULT_ALLOC), 0);
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
	aq__fault_arm(AQ_FAULT_ALLOC, 0);
	for (int i = 0; i < 1000; i++) {
		aq_future *fut;

		ck_assert_int_eq(aq_submit(pool, noop, NULL, NULL, &fut), 0);
		ck_assert_int_eq(aq_future_get(fut, NULL, -1), 0);
		aq_future_release(fut);
	}
	/* The one worker may still hold the pool's reference to the last
	 * record when the next submit comes: that needs a second record,
	 * never a third. */
	ck_assert_int_le(aq__fault_calls(AQ_FAULT_ALLOC), 2);
	aq_pool_destroy(pool);
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
	suite_add_tcase(s, tc);
	return s;
}
