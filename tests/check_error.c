/* SPDX-License-Identifier: MIT */
/* check_error.c - aq_strerror() and the version (lib/error.c). */
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
				     -EBUSY,     -EALREADY,  -EDEADLK,
				     /* libasyncq-redis's */
				     -ENOTCONN,  -ECONNRESET, -ECONNREFUSED,
				     -EHOSTUNREACH, -EACCES, -EPROTO,
				     -EMSGSIZE,  -ENOSPC, -EIO };
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

/* The component's codes tell its caller whether a submit was accepted:
 * worded for that, not the C library's generic texts. */
START_TEST(test_strerror_redis_codes)
{
	ck_assert_ptr_nonnull(strstr(aq_strerror(-ENOTCONN), "not accepted"));
	ck_assert_ptr_nonnull(
		strstr(aq_strerror(-ECONNRESET), "may have been accepted"));
	ck_assert_ptr_nonnull(
		strstr(aq_strerror(-EMSGSIZE), "configured maximum"));
	ck_assert_ptr_nonnull(strstr(aq_strerror(-EACCES), "credentials"));
	ck_assert_ptr_nonnull(strstr(aq_strerror(-EPROTO), "reply"));
	ck_assert_ptr_nonnull(strstr(aq_strerror(-ENOSPC), "not accepted"));
	ck_assert_ptr_nonnull(strstr(aq_strerror(-ECONNREFUSED), "refused"));
	ck_assert_ptr_nonnull(strstr(aq_strerror(-EHOSTUNREACH), "unreachable"));
	ck_assert_ptr_nonnull(strstr(aq_strerror(-EIO), "nothing was accepted"));
}
END_TEST

/*
 * -EALREADY is a cancel that came too late (aq_future_cancel) and a
 * promise completed twice (aq_future_complete), which has no job: it once
 * read "Job already finished", wrong for the second.
 */
START_TEST(test_strerror_already_fits_cancel_and_promise)
{
	const char *t = aq_strerror(-EALREADY);

	ck_assert_ptr_null(strstr(t, "Job"));
	ck_assert_ptr_nonnull(strstr(t, "future has its outcome"));
	ck_assert_ptr_nonnull(strstr(t, "made before"));
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

Suite *error_suite(void)
{
	Suite *s = suite_create("error");
	TCase *tc = tcase_create("error");

	tcase_set_timeout(tc, TH_TIMEOUT);
	tcase_add_test(tc, test_strerror_named);
	tcase_add_test(tc, test_strerror_redis_codes);
	tcase_add_test(tc, test_strerror_already_fits_cancel_and_promise);
	tcase_add_test(tc, test_strerror_other);
	tcase_add_test(tc, test_version);
	suite_add_tcase(s, tc);
	return s;
}
