/* SPDX-License-Identifier: MIT */
/* check_shutdown_timed.c - shutdown with a deadline, and the running jobs it reports. */
#include <errno.h>
#include <pthread.h>
#include <sched.h>
#include <stdatomic.h>
#include <stdint.h>

#include <check.h>

#include "helpers.h"
#include "suites.h"

#define MS 1000000LL

/* A job that spins until the test releases it; the before_job hook
 * remembers the id of the job that started last. */
struct stuck {
	atomic_int release;
	atomic_int started;
	_Atomic uint64_t id;
};

static void remember_id(const struct aq_job_event *ev, void *user)
{
	struct stuck *s = user;

	atomic_store(&s->id, ev->id);
}

static int stuck_job(void *arg, void **result)
{
	struct stuck *s = arg;

	(void)result;
	atomic_fetch_add(&s->started, 1);
	while (!atomic_load(&s->release))
		th_sleep_ms(1);
	return 0;
}

static aq_pool *hooked_pool(struct stuck *s, unsigned workers)
{
	struct aq_pool_config cfg = { .workers = workers,
				      .before_job = remember_id,
				      .hook_user = s };
	aq_pool *pool = NULL;

	ck_assert_int_eq(aq_pool_create(&pool, &cfg), 0);
	return pool;
}

/* A job that never returns on its own: the timed shutdown gives up, says
 * which job runs, the pool stays stopping, and a later shutdown completes. */
START_TEST(timed_shutdown_gives_up_on_a_stuck_job)
{
	struct stuck s = { 0 };
	aq_pool *pool = hooked_pool(&s, 2);
	aq_future *fut, *late = (aq_future *)(uintptr_t)0x1;
	uint64_t ids[4] = { 0 };
	void *res = (void *)1;

	ck_assert_int_eq(aq_submit(pool, stuck_job, &s, NULL, &fut), 0);
	ck_assert(th_poll_int(&s.started, 1));
	ck_assert_uint_ne(atomic_load(&s.id), 0);

	ck_assert_int_eq(aq_pool_shutdown_timed(pool, 0, 50 * MS), -ETIMEDOUT);
	ck_assert_int_eq(aq_pool_running_jobs(pool, ids, 4), 1);
	ck_assert_uint_eq(ids[0], atomic_load(&s.id));
	ck_assert_uint_eq(ids[1], 0);
	/* Counting only. */
	ck_assert_int_eq(aq_pool_running_jobs(pool, NULL, 0), 1);
	ck_assert_int_eq(aq_future_state(fut), AQ_STATE_RUNNING);

	/* Still stuck: a second timed call gives up too. */
	ck_assert_int_eq(aq_pool_shutdown_timed(pool, 0, 50 * MS), -ETIMEDOUT);
	/* The pool keeps stopping. */
	ck_assert_int_eq(aq_submit(pool, stuck_job, &s, NULL, &late),
			 -ESHUTDOWN);
	ck_assert_ptr_null(late);

	atomic_store(&s.release, 1);
	ck_assert_int_eq(aq_pool_shutdown(pool, AQ_SHUTDOWN_DRAIN), 0);
	ck_assert_int_eq(aq_future_state(fut), AQ_STATE_SUCCEEDED);
	ck_assert_int_eq(aq_future_get(fut, &res, 0), 0);
	ck_assert_int_eq(aq_pool_running_jobs(pool, ids, 4), 0);
	ck_assert_int_eq(th_ld(&s.started), 1);
	/* Done: again returns 0 at once. */
	ck_assert_int_eq(aq_pool_shutdown_timed(pool, 0, 0), 0);
	aq_future_release(fut);
	aq_pool_destroy(pool);
}
END_TEST

/* With nothing running, the timed shutdown completes within its time. */
START_TEST(timed_shutdown_of_an_idle_pool_completes)
{
	aq_pool *pool = th_pool(2, 16, 0, 0);
	uint64_t ids[2] = { 7, 7 };

	ck_assert_int_eq(aq_pool_running_jobs(pool, ids, 2), 0);
	ck_assert_uint_eq(ids[0], 7); /* nothing written */
	/* A generous deadline: a timed join that completes, on a busy
	 * machine too (and under ThreadSanitizer, which follows the timed
	 * join the library uses). */
	ck_assert_int_eq(aq_pool_shutdown_timed(pool, 0, 10000 * MS), 0);
	ck_assert_int_eq(aq_pool_shutdown_timed(pool, AQ_SHUTDOWN_CANCEL,
						50 * MS), 0);
	ck_assert_int_eq(aq_pool_shutdown(pool, 0), 0);
	aq_pool_destroy(pool);
}
END_TEST

/* A negative timeout is no deadline: it waits like aq_pool_shutdown. */
START_TEST(timed_shutdown_with_negative_timeout_waits)
{
	struct stuck s = { 0 };
	aq_pool *pool = hooked_pool(&s, 1);
	aq_future *fut;

	ck_assert_int_eq(aq_submit(pool, stuck_job, &s, NULL, &fut), 0);
	ck_assert(th_poll_int(&s.started, 1));
	atomic_store(&s.release, 1);
	ck_assert_int_eq(aq_pool_shutdown_timed(pool, 0, -1), 0);
	ck_assert_int_eq(aq_future_state(fut), AQ_STATE_SUCCEEDED);
	aq_future_release(fut);
	aq_pool_destroy(pool);
}
END_TEST

struct caller {
	pthread_t tid;
	aq_pool *pool;
	int64_t timeout_ns; /* negative: aq_pool_shutdown */
	int ret;
	atomic_int returned;
};

static void *caller_main(void *arg)
{
	struct caller *c = arg;

	c->ret = c->timeout_ns < 0 ? aq_pool_shutdown(c->pool, 0)
				   : aq_pool_shutdown_timed(c->pool, 0,
							    c->timeout_ns);
	atomic_store(&c->returned, 1);
	return NULL;
}

/* A timed and an untimed shutdown at once, in either order of arrival:
 * the timed one gives up, the untimed one keeps waiting and completes once
 * the job is released (when the timed one was the joiner, it handed over). */
START_TEST(untimed_shutdown_completes_after_a_timed_one_gave_up)
{
	for (int order = 0; order < 2; order++) {
		struct stuck s = { 0 };
		aq_pool *pool = hooked_pool(&s, 1);
		struct caller timed = { .pool = pool, .timeout_ns = 100 * MS };
		struct caller untimed = { .pool = pool, .timeout_ns = -1 };
		struct caller *first = order ? &untimed : &timed;
		struct caller *second = order ? &timed : &untimed;
		aq_future *fut;

		ck_assert_int_eq(aq_submit(pool, stuck_job, &s, NULL, &fut), 0);
		ck_assert(th_poll_int(&s.started, 1));
		ck_assert_int_eq(pthread_create(&first->tid, NULL, caller_main,
						first), 0);
		th_sleep_ms(20); /* a likely order, not needed for the asserts */
		ck_assert_int_eq(pthread_create(&second->tid, NULL,
						caller_main, second), 0);

		ck_assert_int_eq(pthread_join(timed.tid, NULL), 0);
		ck_assert_int_eq(timed.ret, -ETIMEDOUT);
		/* The job is still held: the untimed call still waits. */
		th_sleep_ms(20);
		ck_assert_int_eq(th_ld(&untimed.returned), 0);
		ck_assert_int_eq(aq_future_state(fut), AQ_STATE_RUNNING);

		atomic_store(&s.release, 1);
		ck_assert(th_poll_int(&untimed.returned, 1));
		ck_assert_int_eq(pthread_join(untimed.tid, NULL), 0);
		ck_assert_int_eq(untimed.ret, 0);
		ck_assert_int_eq(aq_future_state(fut), AQ_STATE_SUCCEEDED);
		ck_assert_int_eq(aq_pool_running_jobs(pool, NULL, 0), 0);
		aq_future_release(fut);
		aq_pool_destroy(pool);
	}
}
END_TEST

/* aq_pool_destroy() finishes what a timed-out shutdown left. */
START_TEST(destroy_completes_a_timed_out_shutdown)
{
	struct stuck s = { 0 };
	aq_pool *pool = hooked_pool(&s, 1);
	aq_future *fut;

	ck_assert_int_eq(aq_submit(pool, stuck_job, &s, NULL, &fut), 0);
	ck_assert(th_poll_int(&s.started, 1));
	ck_assert_int_eq(aq_pool_shutdown_timed(pool, AQ_SHUTDOWN_CANCEL,
						20 * MS), -ETIMEDOUT);
	atomic_store(&s.release, 1);
	aq_pool_destroy(pool);
	ck_assert_int_eq(aq_future_state(fut), AQ_STATE_SUCCEEDED);
	aq_future_release(fut);
}
END_TEST

START_TEST(bad_arguments_are_rejected)
{
	aq_pool *pool = th_pool(1, 16, 0, 0);
	uint64_t id = 42;

	ck_assert_int_eq(aq_pool_shutdown_timed(NULL, 0, 0), -EINVAL);
	ck_assert_int_eq(aq_pool_shutdown_timed(NULL, 0, -1), -EINVAL);
	ck_assert_int_eq(aq_pool_shutdown_timed(pool, 0x2u, 0), -EINVAL);
	ck_assert_int_eq(aq_pool_shutdown_timed(pool, ~0u, 0), -EINVAL);
	ck_assert_int_eq(aq_pool_running_jobs(NULL, &id, 1), -EINVAL);
	ck_assert_int_eq(aq_pool_running_jobs(NULL, NULL, 0), -EINVAL);
	ck_assert_int_eq(aq_pool_running_jobs(pool, NULL, 1), -EINVAL);
	ck_assert_uint_eq(id, 42);
	/* The rejected calls changed nothing: the pool still accepts. */
	{
		atomic_long count = 0;
		aq_future *fut;

		ck_assert_int_eq(aq_submit(pool, th_count_job, &count, NULL,
					   &fut), 0);
		ck_assert_int_eq(aq_future_get(fut, NULL, -1), 0);
		ck_assert_int_eq(th_ldl(&count), 1);
		aq_future_release(fut);
	}
	aq_pool_destroy(pool);
}
END_TEST

static aq_pool *self_pool;

static int shutdown_self(void *arg, void **result)
{
	atomic_int *rets = arg;

	(void)result;
	atomic_store(&rets[0], aq_pool_shutdown_timed(self_pool, 0, 10 * MS));
	atomic_store(&rets[1], aq_pool_shutdown_timed(self_pool, 0, -1));
	atomic_store(&rets[2], aq_pool_shutdown(self_pool, 0));
	return 0;
}

/* From inside one of its own jobs the pool cannot wait for itself. */
START_TEST(timed_shutdown_from_a_job_is_a_deadlock)
{
	atomic_int rets[3] = { 1, 1, 1 };
	atomic_long count = 0;
	aq_future *fut;

	self_pool = th_pool(2, 16, 0, 0);
	ck_assert_int_eq(aq_submit(self_pool, shutdown_self, rets, NULL, &fut),
			 0);
	ck_assert_int_eq(aq_future_get(fut, NULL, -1), 0);
	ck_assert_int_eq(th_ld(&rets[0]), -EDEADLK);
	ck_assert_int_eq(th_ld(&rets[1]), -EDEADLK);
	ck_assert_int_eq(th_ld(&rets[2]), -EDEADLK);
	aq_future_release(fut);
	/* The refused calls did not stop the pool. */
	ck_assert_int_eq(aq_submit(self_pool, th_count_job, &count, NULL, &fut),
			 0);
	ck_assert_int_eq(aq_future_get(fut, NULL, -1), 0);
	ck_assert_int_eq(th_ldl(&count), 1);
	aq_future_release(fut);
	ck_assert_int_eq(aq_pool_shutdown_timed(self_pool, 0, -1), 0);
	aq_pool_destroy(self_pool);
}
END_TEST

/*
 * A timeout too long to add to the clocks (above ~7.4e18 ns, INT64_MAX
 * included) is as good as none: the shutdown waits for a job still held
 * by a gate, then returns 0 once the gate opens. It once gave up at once
 * with -ETIMEDOUT (the deadline for the timed join overflowed). The
 * pause before the gate opens is generous time for a broken shutdown to
 * return early; a working one waits whatever it is.
 */
START_TEST(timed_shutdown_with_a_huge_timeout_waits)
{
	static const int64_t timeouts[] = { INT64_MAX, INT64_MAX - 1,
					    INT64_C(8000000000000000000),
					    INT64_C(7400000000000000000) };

	for (unsigned i = 0; i < sizeof(timeouts) / sizeof(timeouts[0]); i++) {
		struct aq_job_opts noblock = { .flags = AQ_JOB_NOBLOCK };
		struct caller c = { .timeout_ns = timeouts[i], .ret = 1 };
		struct th_gate gate;
		atomic_long count = 0;
		int ret;

		th_gate_init(&gate);
		c.pool = th_pool(1, 16, 0, 0);
		ck_assert_int_eq(aq_submit(c.pool, th_gate_job, &gate, NULL,
					   NULL),
				 0);
		ck_assert(th_gate_wait_entered(&gate, 1));
		ck_assert_int_eq(pthread_create(&c.tid, NULL, caller_main, &c),
				 0);
		/* Begun: submits are refused (before, they are accepted and
		 * run, or find the ring full). */
		while ((ret = aq_submit(c.pool, th_count_job, &count, &noblock,
					NULL)) != -ESHUTDOWN) {
			ck_assert(ret == 0 || ret == -EAGAIN);
			sched_yield();
		}
		for (int ms = 0; ms < 100 && !th_ld(&c.returned); ms++)
			th_sleep_ms(1);
		ck_assert_msg(!th_ld(&c.returned),
			      "timeout %lld: returned %d with the job running",
			      (long long)timeouts[i], c.ret);
		th_gate_open(&gate);
		pthread_join(c.tid, NULL);
		ck_assert_int_eq(c.ret, 0);
		ck_assert_int_eq(th_ld(&gate.passed), 1);
		aq_pool_destroy(c.pool);
		th_gate_destroy(&gate);
	}
}
END_TEST

Suite *shutdown_timed_suite(void)
{
	Suite *s = suite_create("shutdown_timed");
	TCase *tc = tcase_create("timed");

	tcase_set_timeout(tc, TH_TIMEOUT);
	tcase_add_test(tc, timed_shutdown_gives_up_on_a_stuck_job);
	tcase_add_test(tc, timed_shutdown_of_an_idle_pool_completes);
	tcase_add_test(tc, timed_shutdown_with_negative_timeout_waits);
	tcase_add_test(tc, untimed_shutdown_completes_after_a_timed_one_gave_up);
	tcase_add_test(tc, destroy_completes_a_timed_out_shutdown);
	tcase_add_test(tc, bad_arguments_are_rejected);
	tcase_add_test(tc, timed_shutdown_from_a_job_is_a_deadlock);
	tcase_add_test(tc, timed_shutdown_with_a_huge_timeout_waits);
	suite_add_tcase(s, tc);
	return s;
}
