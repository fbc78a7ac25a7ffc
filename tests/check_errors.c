/* SPDX-License-Identifier: MIT */
/* check_errors.c - aq_strerror, the version, and bad arguments everywhere. */
#include <errno.h>
#include <limits.h>
#include <stdatomic.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>

#include <check.h>

#include "helpers.h"
#include "suites.h"

#define JOB_CODE_TEXT "Job failed with a job-defined code"
#define UNKNOWN_TEXT "Unknown error"

/* ---- aq_strerror -------------------------------------------------------- */

START_TEST(test_strerror_named)
{
	static const int codes[] = { -EINVAL,    -EAGAIN,    -ENOMEM,
				     -ESHUTDOWN, -ETIMEDOUT, -ECANCELED,
				     -EBUSY,     -EALREADY,  -EDEADLK };
	const size_t n = sizeof(codes) / sizeof(codes[0]);
	const char *texts[sizeof(codes) / sizeof(codes[0])];

	ck_assert_ptr_nonnull(aq_strerror(0));
	ck_assert_str_eq(aq_strerror(0), "Success");
	for (size_t i = 0; i < n; i++) {
		texts[i] = aq_strerror(codes[i]);
		ck_assert_msg(texts[i] != NULL, "code %d: NULL", codes[i]);
		ck_assert_msg(texts[i][0] != '\0', "code %d: empty", codes[i]);
		ck_assert_msg(strcmp(texts[i], UNKNOWN_TEXT) != 0,
			      "code %d is unnamed", codes[i]);
		ck_assert_msg(strcmp(texts[i], JOB_CODE_TEXT) != 0,
			      "code %d named as a job code", codes[i]);
		ck_assert_msg(strcmp(texts[i], "Success") != 0,
			      "code %d named Success", codes[i]);
		/* Static: the same text every time. */
		ck_assert_str_eq(aq_strerror(codes[i]), texts[i]);
	}
	for (size_t i = 0; i < n; i++)
		for (size_t j = i + 1; j < n; j++)
			ck_assert_msg(strcmp(texts[i], texts[j]) != 0,
				      "codes %d and %d share \"%s\"",
				      codes[i], codes[j], texts[i]);
	/* -EAGAIN is a full ring (aq_submit) or a thread that could not be
	 * started (aq_pool_create, aq_pool_resize, a delayed aq_submit): it
	 * once read "Queue full" for both. */
	ck_assert_ptr_nonnull(strstr(aq_strerror(-EAGAIN), "full"));
	ck_assert_ptr_nonnull(strstr(aq_strerror(-EAGAIN), "thread"));
}
END_TEST

START_TEST(test_strerror_other)
{
	static const int positive[] = { 1, EINVAL, 42, 1000, INT_MAX };
	static const int unknown[] = { -12345, -100000, INT_MIN };

	for (size_t i = 0; i < sizeof(positive) / sizeof(positive[0]); i++) {
		ck_assert_ptr_nonnull(aq_strerror(positive[i]));
		ck_assert_str_eq(aq_strerror(positive[i]), JOB_CODE_TEXT);
	}
	for (size_t i = 0; i < sizeof(unknown) / sizeof(unknown[0]); i++) {
		ck_assert_ptr_nonnull(aq_strerror(unknown[i]));
		ck_assert_str_eq(aq_strerror(unknown[i]), UNKNOWN_TEXT);
	}
}
END_TEST

/* ---- version ------------------------------------------------------------ */

START_TEST(test_version)
{
	char want[32];

	ck_assert_uint_eq(aq_version(), AQ_VERSION_HEX);
	ck_assert_uint_eq(AQ_VERSION_HEX, ((unsigned)AQ_VERSION_MAJOR << 16) |
						  ((unsigned)AQ_VERSION_MINOR
						   << 8) |
						  (unsigned)AQ_VERSION_PATCH);
	snprintf(want, sizeof(want), "%d.%d.%d", AQ_VERSION_MAJOR,
		 AQ_VERSION_MINOR, AQ_VERSION_PATCH);
	ck_assert_ptr_nonnull(aq_version_string());
	ck_assert_str_eq(aq_version_string(), want);
}
END_TEST

/* ---- bad arguments, table-driven ---------------------------------------- */

static atomic_int destroyed; /* arg_destroy calls: must stay 0 */

static void count_destroy(void *arg)
{
	(void)arg;
	atomic_fetch_add(&destroyed, 1);
}

static int noop_job(void *arg, void **result)
{
	(void)arg;
	(void)result;
	return 0;
}

/* Returned by a case when an out-parameter was written on failure. */
#define OUT_PARAM_WRITTEN 0x7fff0001

static int sentinel_obj;
#define SENTINEL ((void *)&sentinel_obj)

static int create_null_pool(aq_pool *pool)
{
	(void)pool;
	return aq_pool_create(NULL, NULL);
}

static int create_null_pool_cfg(aq_pool *pool)
{
	struct aq_pool_config cfg = { .workers = 1 };

	(void)pool;
	return aq_pool_create(NULL, &cfg);
}

static int create_cfg(const struct aq_pool_config *cfg)
{
	aq_pool *p = SENTINEL;
	int ret = aq_pool_create(&p, cfg);

	if (ret == 0)
		aq_pool_destroy(p);
	else if (p != SENTINEL)
		return OUT_PARAM_WRITTEN;
	return ret;
}

static int create_bad_flags(aq_pool *pool)
{
	struct aq_pool_config cfg = { .workers = 1, .flags = 0x10 };

	(void)pool;
	return create_cfg(&cfg);
}

static int create_too_many_workers(aq_pool *pool)
{
	struct aq_pool_config cfg = { .workers = AQ_WORKERS_MAX + 1 };

	(void)pool;
	return create_cfg(&cfg);
}

static int create_ring_too_big(aq_pool *pool)
{
	struct aq_pool_config cfg = { .workers = 1,
				      .queue_capacity =
					      AQ_QUEUE_CAPACITY_MAX + 1 };

	(void)pool;
	return create_cfg(&cfg);
}

static int shutdown_null(aq_pool *pool)
{
	(void)pool;
	return aq_pool_shutdown(NULL, AQ_SHUTDOWN_DRAIN);
}

static int shutdown_null_cancel(aq_pool *pool)
{
	(void)pool;
	return aq_pool_shutdown(NULL, AQ_SHUTDOWN_CANCEL);
}

static int shutdown_bad_flags(aq_pool *pool)
{
	return aq_pool_shutdown(pool, 0x2);
}

static int shutdown_high_flag(aq_pool *pool)
{
	return aq_pool_shutdown(pool, AQ_SHUTDOWN_CANCEL | 0x80000000u);
}

static int destroy_null(aq_pool *pool)
{
	(void)pool;
	aq_pool_destroy(NULL);
	return 0;
}

static int workers_null(aq_pool *pool)
{
	(void)pool;
	return aq_pool_workers(NULL);
}

static int capacity_null(aq_pool *pool)
{
	(void)pool;
	return aq_pool_capacity(NULL);
}

/* aq_submit with these arguments; *fut must come back NULL. */
static int submit_case(aq_pool *pool, aq_job_fn fn, unsigned flags)
{
	struct aq_job_opts opts = { .flags = flags,
				    .arg_destroy = count_destroy };
	aq_future *fut = SENTINEL;
	int ret = aq_submit(pool, fn, NULL, &opts, &fut);

	if (ret != 0 && fut != NULL)
		return OUT_PARAM_WRITTEN;
	if (ret == 0) {
		aq_future_get(fut, NULL, -1);
		aq_future_release(fut);
	}
	return ret;
}

static int submit_null_pool(aq_pool *pool)
{
	(void)pool;
	return submit_case(NULL, noop_job, 0);
}

static int submit_null_fn(aq_pool *pool)
{
	return submit_case(pool, NULL, 0);
}

static int submit_null_both(aq_pool *pool)
{
	(void)pool;
	return submit_case(NULL, NULL, 0);
}

static int submit_unknown_flag(aq_pool *pool)
{
	return submit_case(pool, noop_job, 0x4);
}

static int submit_high_flag(aq_pool *pool)
{
	return submit_case(pool, noop_job, AQ_JOB_BLOCK | 0x80000000u);
}

static int submit_block_and_noblock(aq_pool *pool)
{
	return submit_case(pool, noop_job, AQ_JOB_BLOCK | AQ_JOB_NOBLOCK);
}

static int submit_null_pool_no_opts(aq_pool *pool)
{
	(void)pool;
	return aq_submit(NULL, noop_job, NULL, NULL, NULL);
}

static int submit_null_fn_no_opts(aq_pool *pool)
{
	return aq_submit(pool, NULL, NULL, NULL, NULL);
}

static int get_null(aq_pool *pool)
{
	void *result = SENTINEL;
	int ret = aq_future_get(NULL, &result, 0);

	(void)pool;
	return result == SENTINEL ? ret : OUT_PARAM_WRITTEN;
}

static int get_null_forever(aq_pool *pool)
{
	(void)pool;
	return aq_future_get(NULL, NULL, -1);
}

static int cancel_null(aq_pool *pool)
{
	(void)pool;
	return aq_future_cancel(NULL);
}

static int state_null(aq_pool *pool)
{
	(void)pool;
	return (int)aq_future_state(NULL);
}

static int release_null(aq_pool *pool)
{
	(void)pool;
	aq_future_release(NULL);
	return 0;
}

START_TEST(test_bad_arguments)
{
	static const struct {
		const char *name;
		int (*call)(aq_pool *pool);
		int expect;
	} cases[] = {
		{ "aq_pool_create(NULL, NULL)", create_null_pool, -EINVAL },
		{ "aq_pool_create(NULL, &cfg)", create_null_pool_cfg, -EINVAL },
		{ "aq_pool_create unknown flags", create_bad_flags, -EINVAL },
		{ "aq_pool_create workers 1025", create_too_many_workers,
		  -EINVAL },
		{ "aq_pool_create capacity 2^24+1", create_ring_too_big,
		  -EINVAL },
		{ "aq_pool_shutdown(NULL, DRAIN)", shutdown_null, -EINVAL },
		{ "aq_pool_shutdown(NULL, CANCEL)", shutdown_null_cancel,
		  -EINVAL },
		{ "aq_pool_shutdown flags 0x2", shutdown_bad_flags, -EINVAL },
		{ "aq_pool_shutdown high flag", shutdown_high_flag, -EINVAL },
		{ "aq_pool_destroy(NULL)", destroy_null, 0 },
		{ "aq_pool_workers(NULL)", workers_null, -EINVAL },
		{ "aq_pool_capacity(NULL)", capacity_null, -EINVAL },
		{ "aq_submit NULL pool", submit_null_pool, -EINVAL },
		{ "aq_submit NULL fn", submit_null_fn, -EINVAL },
		{ "aq_submit NULL pool and fn", submit_null_both, -EINVAL },
		{ "aq_submit unknown flag", submit_unknown_flag, -EINVAL },
		{ "aq_submit high flag", submit_high_flag, -EINVAL },
		{ "aq_submit BLOCK|NOBLOCK", submit_block_and_noblock,
		  -EINVAL },
		{ "aq_submit NULL pool, no opts", submit_null_pool_no_opts,
		  -EINVAL },
		{ "aq_submit NULL fn, no opts", submit_null_fn_no_opts,
		  -EINVAL },
		{ "aq_future_get(NULL)", get_null, -EINVAL },
		{ "aq_future_get(NULL, NULL, -1)", get_null_forever, -EINVAL },
		{ "aq_future_cancel(NULL)", cancel_null, -EINVAL },
		{ "aq_future_state(NULL)", state_null, AQ_STATE_INVALID },
		{ "aq_future_release(NULL)", release_null, 0 },
	};
	static atomic_long count;
	aq_pool *pool = th_pool(1, 8, 0, 0);
	aq_future *fut;

	atomic_init(&destroyed, 0);
	atomic_init(&count, 0);
	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		int ret = cases[i].call(pool);

		ck_assert_msg(ret == cases[i].expect, "%s: got %d (%s), "
			      "expected %d", cases[i].name, ret,
			      ret == OUT_PARAM_WRITTEN
				      ? "out-parameter written on failure"
				      : aq_strerror(ret),
			      cases[i].expect);
	}
	/* No rejected submit called arg_destroy, and none of the calls
	 * harmed the pool: it still accepts and runs a job. */
	ck_assert_int_eq(th_ld(&destroyed), 0);
	ck_assert_int_eq(aq_submit(pool, th_count_job, &count, NULL, &fut), 0);
	ck_assert_int_eq(aq_future_get(fut, NULL, -1), 0);
	ck_assert_int_eq(th_ldl(&count), 1);
	aq_future_release(fut);
	aq_pool_destroy(pool);
}
END_TEST

Suite *errors_suite(void)
{
	Suite *s = suite_create("errors");
	TCase *tc = tcase_create("errors");

	tcase_set_timeout(tc, TH_TIMEOUT);
	tcase_add_test(tc, test_strerror_named);
	tcase_add_test(tc, test_strerror_other);
	tcase_add_test(tc, test_version);
	tcase_add_test(tc, test_bad_arguments);
	suite_add_tcase(s, tc);
	return s;
}
