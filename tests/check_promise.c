/* SPDX-License-Identifier: MIT */
/* check_promise.c - promises: aq_future_create, aq_future_complete, retain. */
#include <errno.h>
#include <pthread.h>
#include <stdatomic.h>
#include <string.h>

#include <check.h>

#include "fault.h"
#include "helpers.h"
#include "suites.h"

static int obj_a, obj_b;
#define RES_A ((void *)&obj_a)
#define RES_B ((void *)&obj_b)

static aq_future *promise(void)
{
	aq_future *fut = NULL;

	ck_assert_int_eq(aq_future_create(&fut, NULL, 0), 0);
	ck_assert_ptr_nonnull(fut);
	return fut;
}

START_TEST(test_complete_success)
{
	aq_future *fut = promise();
	void *result = NULL;

	ck_assert_int_eq(aq_future_state(fut), AQ_STATE_PENDING);
	ck_assert_int_eq(aq_future_get(fut, &result, 0), -ETIMEDOUT);
	ck_assert_int_eq(aq_future_complete(fut, 0, RES_A, "ignored"), 0);
	ck_assert_int_eq(aq_future_state(fut), AQ_STATE_SUCCEEDED);
	ck_assert_int_eq(aq_future_get(fut, &result, -1), 0);
	ck_assert_ptr_eq(result, RES_A);
	aq_future_release(fut);
}
END_TEST

START_TEST(test_complete_failure_record)
{
	aq_future *fut = promise();
	struct aq_error err;
	void *result = NULL;
	char msg[32];

	ck_assert_int_eq(aq_future_error(fut, &err), -EAGAIN);
	strcpy(msg, "remote said no");
	ck_assert_int_eq(aq_future_complete(fut, 42, RES_B, msg), 0);
	memset(msg, 0, sizeof(msg)); /* the message was copied */
	ck_assert_int_eq(aq_future_state(fut), AQ_STATE_FAILED);
	ck_assert_int_eq(aq_future_get(fut, &result, 0), 42);
	ck_assert_ptr_eq(result, RES_B);
	ck_assert_int_eq(aq_future_error(fut, &err), 0);
	ck_assert_int_eq(err.code, 42);
	ck_assert_uint_eq(err.attempts, 1);
	ck_assert_uint_eq(err.job_id, 0);
	ck_assert_str_eq(err.message, "remote said no");
	aq_future_release(fut);
}
END_TEST

START_TEST(test_complete_other_outcomes)
{
	static const struct {
		int code;
		enum aq_state state;
	} cases[] = {
		{ -ECANCELED, AQ_STATE_CANCELLED },
		{ -ETIME, AQ_STATE_EXPIRED },
		{ -EPIPE, AQ_STATE_SKIPPED },
	};

	for (unsigned i = 0; i < 3; i++) {
		aq_future *fut = promise();
		void *result = RES_A;

		ck_assert_int_eq(aq_future_complete(fut, cases[i].code, RES_B,
						    NULL),
				 0);
		ck_assert_int_eq(aq_future_state(fut), cases[i].state);
		ck_assert_int_eq(aq_future_get(fut, &result, 0),
				 cases[i].code);
		ck_assert_ptr_eq(result, RES_A); /* untouched */
		aq_future_release(fut);
	}
}
END_TEST

START_TEST(test_double_complete_refused)
{
	aq_future *fut = promise();
	void *result = NULL;

	ck_assert_int_eq(aq_future_complete(fut, 0, RES_A, NULL), 0);
	ck_assert_int_eq(aq_future_complete(fut, 0, RES_B, NULL), -EALREADY);
	ck_assert_int_eq(aq_future_complete(fut, 7, RES_B, "x"), -EALREADY);
	ck_assert_int_eq(aq_future_get(fut, &result, 0), 0);
	ck_assert_ptr_eq(result, RES_A); /* the first outcome stands */
	ck_assert_int_eq(aq_future_cancel(fut), -EALREADY);
	aq_future_release(fut);
}
END_TEST

START_TEST(test_cancel_pending_promise)
{
	aq_future *fut = promise();

	ck_assert_int_eq(aq_future_cancel(fut), 0);
	ck_assert_int_eq(aq_future_state(fut), AQ_STATE_CANCELLED);
	ck_assert_int_eq(aq_future_get(fut, NULL, 0), -ECANCELED);
	ck_assert_int_eq(aq_future_cancel(fut), -EALREADY);
	ck_assert_int_eq(aq_future_complete(fut, 0, RES_A, NULL), -ECANCELED);
	ck_assert_int_eq(aq_future_complete(fut, 3, NULL, "late"), -ECANCELED);
	aq_future_release(fut);
}
END_TEST

START_TEST(test_bad_input)
{
	aq_future *fut = RES_A;
	aq_future *p;
	aq_future *pooled = NULL;
	aq_pool *pool = th_pool(1, 16, 0, 0);
	atomic_long n = 0;

	ck_assert_int_eq(aq_future_create(NULL, NULL, 0), -EINVAL);
	ck_assert_int_eq(aq_future_create(&fut, NULL, 1), -EINVAL);
	ck_assert_ptr_eq(fut, RES_A); /* untouched on failure */
	ck_assert_int_eq(aq_future_complete(NULL, 0, NULL, NULL), -EINVAL);
	p = promise();
	ck_assert_int_eq(aq_future_complete(p, -1, NULL, NULL), -EINVAL);
	ck_assert_int_eq(aq_future_complete(p, -EINVAL, NULL, NULL), -EINVAL);
	ck_assert_int_eq(aq_future_complete(p, -ETIMEDOUT, NULL, NULL),
			 -EINVAL);
	ck_assert_int_eq(aq_future_state(p), AQ_STATE_PENDING);
	/* A pool's future is resolved by its worker only. */
	ck_assert_int_eq(aq_submit(pool, th_count_job, &n, NULL, &pooled), 0);
	ck_assert_int_eq(aq_future_complete(pooled, 0, NULL, NULL), -EINVAL);
	ck_assert_int_eq(aq_future_get(pooled, NULL, -1), 0);
	ck_assert_int_eq(aq_future_complete(pooled, 0, NULL, NULL), -EINVAL);
	ck_assert_ptr_null(aq_future_retain(NULL));
	aq_future_release(pooled);
	aq_future_release(p); /* released while pending: freed, no leak */
	aq_pool_destroy(pool);
}
END_TEST

START_TEST(test_alloc_failures)
{
	aq_future *fut = NULL;

	aq__fault_arm(AQ__FAULT_ALLOC, 1);
	ck_assert_int_eq(aq_future_create(&fut, NULL, 0), -ENOMEM);
	aq__fault_arm(AQ__FAULT_ALLOC, 0);
	ck_assert_ptr_null(fut);
	fut = promise();
	/* The message copy fails: nothing happened, it may be completed. */
	aq__fault_arm(AQ__FAULT_ALLOC, 1);
	ck_assert_int_eq(aq_future_complete(fut, 5, NULL, "m"), -ENOMEM);
	aq__fault_arm(AQ__FAULT_ALLOC, 0);
	ck_assert_int_eq(aq_future_state(fut), AQ_STATE_PENDING);
	ck_assert_int_eq(aq_future_complete(fut, 5, NULL, "m"), 0);
	ck_assert_int_eq(aq_future_get(fut, NULL, 0), 5);
	aq_future_release(fut);
}
END_TEST

/* Retain: the completer's reference outlives the caller's. */
START_TEST(test_retain_keeps_alive)
{
	aq_future *fut = promise();
	aq_future *mine = aq_future_retain(fut);

	ck_assert_ptr_eq(mine, fut);
	aq_future_release(fut); /* the caller lets go first */
	ck_assert_int_eq(aq_future_state(mine), AQ_STATE_PENDING);
	ck_assert_int_eq(aq_future_complete(mine, 0, RES_A, NULL), 0);
	aq_future_release(mine);
}
END_TEST

static atomic_int destroyed;

static void count_destroy(void *result)
{
	ck_assert_ptr_eq(result, RES_A);
	atomic_fetch_add(&destroyed, 1);
}

/* result_destroy runs once, when the last reference goes, and only on a
 * result that was delivered. */
START_TEST(test_result_destroy)
{
	aq_future *fut, *other;

	atomic_store(&destroyed, 0);
	ck_assert_int_eq(aq_future_create(&fut, count_destroy, 0), 0);
	aq_future_retain(fut);
	ck_assert_int_eq(aq_future_complete(fut, 0, RES_A, NULL), 0);
	aq_future_release(fut);
	ck_assert_int_eq(th_ld(&destroyed), 0);
	aq_future_release(fut);
	ck_assert_int_eq(th_ld(&destroyed), 1);
	/* Cancelled, or completed without a result: nothing to destroy. */
	ck_assert_int_eq(aq_future_create(&fut, count_destroy, 0), 0);
	ck_assert_int_eq(aq_future_cancel(fut), 0);
	aq_future_release(fut);
	ck_assert_int_eq(aq_future_create(&other, count_destroy, 0), 0);
	ck_assert_int_eq(aq_future_complete(other, -ETIME, RES_A, NULL), 0);
	aq_future_release(other);
	ck_assert_int_eq(th_ld(&destroyed), 1);
}
END_TEST

/* ---- with the rest of the API ------------------------------------------ */

struct then_rec {
	atomic_int calls;
	pthread_t thread;
	enum aq_state seen;
};

static void then_note(aq_future *fut, void *user)
{
	struct then_rec *r = user;

	r->thread = pthread_self();
	r->seen = aq_future_state(fut);
	atomic_fetch_add(&r->calls, 1);
}

struct completer {
	aq_future *fut;
	int code;
	void *result;
	atomic_int go;
	pthread_t thread;
	int rc;
};

static void *completer_main(void *arg)
{
	struct completer *c = arg;

	/* Bounded: the test sets go at once. */
	th_poll_int(&c->go, 1);
	c->rc = aq_future_complete(c->fut, c->code, c->result, "from thread");
	return NULL;
}

static void completer_start(struct completer *c, aq_future *fut, int code)
{
	c->fut = fut;
	c->code = code;
	c->result = RES_A;
	atomic_init(&c->go, 0);
	c->rc = 1;
	ck_assert_int_eq(pthread_create(&c->thread, NULL, completer_main, c),
			 0);
}

START_TEST(test_then_runs_on_completing_thread)
{
	aq_future *fut = promise();
	struct then_rec r = { 0 };
	struct completer c;

	ck_assert_int_eq(aq_future_then(fut, then_note, &r, NULL), 0);
	completer_start(&c, fut, 0);
	atomic_store(&c.go, 1);
	pthread_join(c.thread, NULL);
	ck_assert_int_eq(c.rc, 0);
	ck_assert_int_eq(th_ld(&r.calls), 1);
	ck_assert(pthread_equal(r.thread, c.thread));
	ck_assert_int_eq(r.seen, AQ_STATE_SUCCEEDED);
	aq_future_release(fut);
}
END_TEST

START_TEST(test_then_on_channel)
{
	aq_future *fut = promise();
	struct then_rec r = { 0 };
	aq_channel *ch;

	ck_assert_int_eq(aq_channel_create(&ch, 0), 0);
	ck_assert_int_eq(aq_future_then(fut, then_note, &r, ch), 0);
	aq_future_release(fut); /* the registration holds its own */
	ck_assert_int_eq(aq_channel_dispatch(ch, 0), 0);
	ck_assert_int_eq(aq_future_complete(fut, 9, NULL, NULL), 0);
	ck_assert_int_eq(th_ld(&r.calls), 0); /* not until dispatched */
	ck_assert_int_eq(aq_channel_dispatch(ch, 0), 1);
	ck_assert_int_eq(th_ld(&r.calls), 1);
	ck_assert(pthread_equal(r.thread, pthread_self()));
	ck_assert_int_eq(r.seen, AQ_STATE_FAILED);
	aq_channel_destroy(ch);
}
END_TEST

START_TEST(test_get_wakes_on_complete)
{
	aq_future *fut = promise();
	struct completer c;
	void *result = NULL;

	completer_start(&c, fut, 0);
	atomic_store(&c.go, 1);
	ck_assert_int_eq(aq_future_get(fut, &result, -1), 0);
	ck_assert_ptr_eq(result, RES_A);
	pthread_join(c.thread, NULL);
	ck_assert_int_eq(c.rc, 0);
	aq_future_release(fut);
}
END_TEST

START_TEST(test_wait_all_any)
{
	aq_future *futs[3] = { promise(), promise(), promise() };
	unsigned index = 99;

	ck_assert_int_eq(aq_wait_any(futs, 3, 0, &index), -ETIMEDOUT);
	ck_assert_int_eq(aq_wait_all(futs, 3, 1000000), -ETIMEDOUT);
	ck_assert_int_eq(aq_future_complete(futs[2], 0, NULL, NULL), 0);
	ck_assert_int_eq(aq_wait_any(futs, 3, -1, &index), 0);
	ck_assert_uint_eq(index, 2);
	ck_assert_int_eq(aq_wait_all(futs, 3, 0), -ETIMEDOUT);
	ck_assert_int_eq(aq_future_complete(futs[0], 1, NULL, NULL), 0);
	ck_assert_int_eq(aq_future_cancel(futs[1]), 0);
	ck_assert_int_eq(aq_wait_all(futs, 3, -1), 0);
	for (unsigned i = 0; i < 3; i++)
		aq_future_release(futs[i]);
}
END_TEST

/* A job submitted after a promise runs only once it succeeds. */
START_TEST(test_after_promise)
{
	aq_pool *pool = th_pool(2, 16, 0, 0);
	aq_future *ok = promise(), *bad = promise();
	aq_future *job_ok, *job_bad;
	atomic_long runs = 0;
	struct aq_job_opts opts = { .after = &ok, .after_count = 1 };

	ck_assert_int_eq(aq_submit(pool, th_count_job, &runs, &opts, &job_ok),
			 0);
	opts.after = &bad;
	ck_assert_int_eq(aq_submit(pool, th_count_job, &runs, &opts,
				   &job_bad),
			 0);
	ck_assert_int_eq(aq_future_state(job_ok), AQ_STATE_WAITING);
	ck_assert_int_eq(aq_future_get(job_ok, NULL, 1000000), -ETIMEDOUT);
	ck_assert_int_eq(th_ldl(&runs), 0);
	ck_assert_int_eq(aq_future_complete(ok, 0, NULL, NULL), 0);
	ck_assert_int_eq(aq_future_get(job_ok, NULL, -1), 0);
	ck_assert_int_eq(aq_future_complete(bad, 3, NULL, "no"), 0);
	ck_assert_int_eq(aq_future_get(job_bad, NULL, -1), -EPIPE);
	ck_assert_int_eq(th_ldl(&runs), 1);
	aq_future_release(ok);
	aq_future_release(bad);
	aq_future_release(job_ok);
	aq_future_release(job_bad);
	aq_pool_destroy(pool);
}
END_TEST

/* The statistics of a pool are untouched by promises. */
START_TEST(test_no_pool_stats)
{
	aq_pool *pool = th_pool(1, 16, 0, 0);
	aq_future *fut = promise();
	struct aq_pool_stats st;

	ck_assert_int_eq(aq_future_complete(fut, 0, NULL, NULL), 0);
	ck_assert_int_eq(aq_pool_stats(pool, &st), 0);
	ck_assert_uint_eq(st.succeeded, 0);
	ck_assert_uint_eq(st.submitted, 0);
	aq_future_release(fut);
	aq_pool_destroy(pool);
}
END_TEST

/* A job waiting on a promise that a job queued behind it completes: the
 * one worker helps, so this cannot deadlock. */
static int complete_job(void *arg, void **result)
{
	(void)result;
	return aq_future_complete(arg, 0, RES_B, NULL) == 0 ? 0 : 1;
}

static int wait_promise_job(void *arg, void **result)
{
	return aq_future_get(arg, result, -1);
}

START_TEST(test_worker_waits_on_promise)
{
	aq_pool *pool = th_pool(1, 16, 0, 0);
	aq_future *fut = promise();
	aq_future *waiter, *completer;
	void *result = NULL;

	ck_assert_int_eq(aq_submit(pool, wait_promise_job, fut, NULL, &waiter),
			 0);
	ck_assert_int_eq(aq_submit(pool, complete_job, fut, NULL, &completer),
			 0);
	ck_assert_int_eq(aq_future_get(waiter, &result, -1), 0);
	ck_assert_ptr_eq(result, RES_B);
	ck_assert_int_eq(aq_future_get(completer, NULL, -1), 0);
	aq_future_release(waiter);
	aq_future_release(completer);
	aq_future_release(fut);
	aq_pool_destroy(pool);
}
END_TEST

/* ---- races ---------------------------------------------------------------- */

#define RACERS 4
#define RACE_ROUNDS 300

/* RACERS threads complete (one of them cancels) the same promise at once:
 * exactly one wins, every other is refused, the outcome is the winner's,
 * and every then-callback ran once. */
START_TEST(test_complete_race_one_winner)
{
	for (int round = 0; round < RACE_ROUNDS; round++) {
		aq_future *fut = promise();
		struct completer c[RACERS];
		struct then_rec r = { 0 };
		int wins = 0, winner = -1;
		void *result = NULL;
		int got;

		ck_assert_int_eq(aq_future_then(fut, then_note, &r, NULL), 0);
		for (int i = 0; i < RACERS; i++) {
			completer_start(&c[i], fut, i == 0 ? -ECANCELED : i);
			c[i].result = &c[i];
		}
		for (int i = 0; i < RACERS; i++)
			atomic_store(&c[i].go, 1);
		for (int i = 0; i < RACERS; i++) {
			pthread_join(c[i].thread, NULL);
			if (c[i].rc == 0) {
				wins++;
				winner = i;
			} else {
				ck_assert(c[i].rc == -EALREADY ||
					  c[i].rc == -ECANCELED);
			}
		}
		ck_assert_int_eq(wins, 1);
		got = aq_future_get(fut, &result, 0);
		ck_assert_int_eq(got, c[winner].code);
		if (winner != 0)
			ck_assert_ptr_eq(result, &c[winner]);
		for (int i = 0; i < RACERS; i++)
			if (i != winner)
				ck_assert_int_eq(c[i].rc, winner == 0
								  ? -ECANCELED
								  : -EALREADY);
		ck_assert_int_eq(th_ld(&r.calls), 1);
		aq_future_release(fut);
	}
}
END_TEST

static void *canceller_main(void *arg)
{
	struct completer *c = arg;

	th_poll_int(&c->go, 1);
	c->rc = aq_future_cancel(c->fut);
	return NULL;
}

/* cancel against complete: exactly one of them succeeds. */
START_TEST(test_cancel_complete_race)
{
	for (int round = 0; round < RACE_ROUNDS; round++) {
		aq_future *fut = promise();
		struct completer done, cancel;
		int got;

		completer_start(&done, fut, 0);
		cancel.fut = fut;
		atomic_init(&cancel.go, 0);
		ck_assert_int_eq(pthread_create(&cancel.thread, NULL,
						canceller_main, &cancel),
				 0);
		atomic_store(&cancel.go, 1);
		atomic_store(&done.go, 1);
		pthread_join(done.thread, NULL);
		pthread_join(cancel.thread, NULL);
		got = aq_future_get(fut, NULL, 0);
		if (done.rc == 0) {
			ck_assert_int_eq(cancel.rc, -EALREADY);
			ck_assert_int_eq(got, 0);
		} else {
			ck_assert_int_eq(done.rc, -ECANCELED);
			ck_assert_int_eq(cancel.rc, 0);
			ck_assert_int_eq(got, -ECANCELED);
		}
		aq_future_release(fut);
	}
}
END_TEST

Suite *promise_suite(void)
{
	Suite *s = suite_create("promise");
	TCase *tc = tcase_create("promise");

	tcase_set_timeout(tc, TH_TIMEOUT);
	tcase_add_test(tc, test_complete_success);
	tcase_add_test(tc, test_complete_failure_record);
	tcase_add_test(tc, test_complete_other_outcomes);
	tcase_add_test(tc, test_double_complete_refused);
	tcase_add_test(tc, test_cancel_pending_promise);
	tcase_add_test(tc, test_bad_input);
	tcase_add_test(tc, test_alloc_failures);
	tcase_add_test(tc, test_retain_keeps_alive);
	tcase_add_test(tc, test_result_destroy);
	tcase_add_test(tc, test_then_runs_on_completing_thread);
	tcase_add_test(tc, test_then_on_channel);
	tcase_add_test(tc, test_get_wakes_on_complete);
	tcase_add_test(tc, test_wait_all_any);
	tcase_add_test(tc, test_after_promise);
	tcase_add_test(tc, test_no_pool_stats);
	tcase_add_test(tc, test_worker_waits_on_promise);
	suite_add_tcase(s, tc);

	tc = tcase_create("race");
	tcase_set_timeout(tc, TH_TIMEOUT_STRESS);
	tcase_add_test(tc, test_complete_race_one_winner);
	tcase_add_test(tc, test_cancel_complete_race);
	suite_add_tcase(s, tc);
	return s;
}
