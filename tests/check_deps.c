/* SPDX-License-Identifier: MIT */
/*
 * check_deps.c - jobs that run after others (opts.after, lib/deps.c):
 * chains, fan-in, SKIPPED, cancelling a WAITING job, dependencies across
 * pools.
 *
 * Outcomes are made deterministic with gates: a gate job holds a worker,
 * so whatever is submitted behind it is PENDING (or WAITING) until the
 * test opens the gate.
 */
#include <errno.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <check.h>

#include "fault.h"
#include "helpers.h"
#include "park.h"
#include "suites.h"

#define MS INT64_C(1000000)

/* ---- opts.after: dependencies ------------------------------------------- */

START_TEST(test_chain_passes_value)
{
	/* a -> b -> c, each adding to what the one before returned. */
	aq_pool *pool = th_pool(2, 64, 0, 0);
	struct th_gate gate;
	struct th_job a;
	struct th_link b, c;
	aq_future *fa, *fb, *fc;
	void *r = NULL;

	th_gate_init(&gate);
	th_job_init(&a, &gate, 0, true, (void *)1);
	th_link_init(&b, 10);
	th_link_init(&c, 100);
	fa = th_submit_job(pool, &a);
	fb = th_link_after(pool, &b, &fa, 1);
	fc = th_link_after(pool, &c, &fb, 1);
	ck_assert(th_gate_wait_entered(&gate, 1));
	ck_assert_int_eq(aq_future_state(fb), AQ_STATE_WAITING);
	ck_assert_int_eq(aq_future_state(fc), AQ_STATE_WAITING);
	ck_assert_int_eq(aq_future_get(fc, NULL, 5 * MS), -ETIMEDOUT);
	ck_assert_int_eq(th_ld(&b.ran), 0);

	th_gate_open(&gate);
	ck_assert_int_eq(aq_future_get(fc, &r, th_long_ns()), 0);
	ck_assert_ptr_eq(r, (void *)111);
	ck_assert_int_eq(aq_future_get(fb, &r, 0), 0);
	ck_assert_ptr_eq(r, (void *)11);
	ck_assert_uint_eq(b.deps_seen, 1);
	ck_assert_uint_eq(c.deps_seen, 1);
	ck_assert(b.past_end_null && c.past_end_null);
	ck_assert_int_eq(b.dep_rc, 0);
	ck_assert_int_eq(th_ld(&b.ran) + th_ld(&c.ran), 2);
	ck_assert_int_eq(th_ld(&b.destroyed) + th_ld(&c.destroyed), 2);
	/* Outside a job there are no dependencies. */
	ck_assert_ptr_null(aq_current_dep(0));
	ck_assert_uint_eq(aq_current_dep_count(), 0);
	aq_future_release(fa);
	aq_future_release(fb);
	aq_future_release(fc);
	aq_pool_destroy(pool);
	th_gate_destroy(&gate);
}
END_TEST

#define CHORD 50

START_TEST(test_chord_fan_in)
{
	/* 50 parallel jobs, then one that sums their results. */
	aq_pool *pool = th_pool(2, 256, 0, 0);
	aq_future *parts[CHORD], *sum_fut;
	struct th_link sum;
	void *r = NULL;

	th_link_init(&sum, 0);
	for (intptr_t i = 0; i < CHORD; i++)
		ck_assert_int_eq(aq_submit(pool, th_echo_job, (void *)(i + 1),
					   NULL, &parts[i]),
				 0);
	sum_fut = th_link_after(pool, &sum, parts, CHORD);
	/* The callers' references may go at once: the job holds its own. */
	for (int i = 0; i < CHORD; i++)
		aq_future_release(parts[i]);
	ck_assert_int_eq(aq_future_get(sum_fut, &r, th_long_ns()), 0);
	ck_assert_ptr_eq(r, (void *)(intptr_t)(CHORD * (CHORD + 1) / 2));
	ck_assert_uint_eq(sum.deps_seen, CHORD);
	ck_assert(sum.past_end_null);
	ck_assert_int_eq(sum.dep_rc, 0);
	ck_assert_int_eq(th_ld(&sum.ran), 1);
	ck_assert_int_eq(th_ld(&sum.destroyed), 1);
	aq_future_release(sum_fut);
	aq_pool_destroy(pool);
}
END_TEST

START_TEST(test_after_max_and_resolved)
{
	/* AQ_AFTER_MAX entries (the same future each time), all resolved
	 * before the submit: the job runs at once and sees every entry. */
	static aq_future *deps[AQ_AFTER_MAX];
	aq_pool *pool = th_pool(1, 16, 0, 0);
	aq_future *dep, *f;
	struct th_link l;
	void *r = NULL;

	ck_assert_int_eq(aq_submit(pool, th_echo_job, (void *)2, NULL, &dep),
			 0);
	ck_assert_int_eq(aq_future_get(dep, NULL, th_long_ns()), 0);
	for (unsigned i = 0; i < AQ_AFTER_MAX; i++)
		deps[i] = dep;
	th_link_init(&l, 1);
	f = th_link_after(pool, &l, deps, AQ_AFTER_MAX);
	aq_future_release(dep);
	ck_assert_int_eq(aq_future_get(f, &r, th_long_ns()), 0);
	ck_assert_ptr_eq(r, (void *)(intptr_t)(1 + 2 * AQ_AFTER_MAX));
	ck_assert_uint_eq(l.deps_seen, AQ_AFTER_MAX);
	aq_future_release(f);

	/* after_count 0 ignores after; no future at all is fine too. */
	th_link_init(&l, 5);
	ck_assert_int_eq(th_submit_after(pool, th_link_job, &l, th_link_destroy,
					 deps, 0, &f),
			 0);
	ck_assert_int_eq(aq_future_get(f, &r, th_long_ns()), 0);
	ck_assert_ptr_eq(r, (void *)5);
	ck_assert_uint_eq(l.deps_seen, 0);
	aq_future_release(f);
	aq_pool_destroy(pool);
}
END_TEST

START_TEST(test_after_einval)
{
	static aq_future *many[AQ_AFTER_MAX + 1];
	static int not_a_future;
	aq_pool *pool = th_pool(1, 16, 0, 0);
	aq_future *dep, *withnull[2];
	aq_future *f = (aq_future *)&not_a_future; /* must become NULL */
	struct th_link l;

	ck_assert_int_eq(aq_submit(pool, th_echo_job, NULL, NULL, &dep), 0);
	for (unsigned i = 0; i <= AQ_AFTER_MAX; i++)
		many[i] = dep;
	withnull[0] = dep;
	withnull[1] = NULL;
	th_link_init(&l, 0);
	ck_assert_int_eq(th_submit_after(pool, th_link_job, &l, th_link_destroy,
					 many, AQ_AFTER_MAX + 1, &f),
			 -EINVAL);
	ck_assert_ptr_null(f);
	ck_assert_int_eq(th_submit_after(pool, th_link_job, &l, th_link_destroy,
					 withnull, 2, &f),
			 -EINVAL);
	ck_assert_int_eq(th_submit_after(pool, th_link_job, &l, th_link_destroy,
					 NULL, 1, &f),
			 -EINVAL);
	ck_assert_int_eq(th_submit_after(pool, th_link_job, &l, th_link_destroy,
					 NULL, 1, NULL),
			 -EINVAL);
	/* A refused submit never calls arg_destroy, nor runs anything. */
	ck_assert_int_eq(aq_pool_shutdown(pool, 0), 0);
	ck_assert_int_eq(th_ld(&l.ran), 0);
	ck_assert_int_eq(th_ld(&l.destroyed), 0);
	aq_future_release(dep);
	aq_pool_destroy(pool);
}
END_TEST

/*
 * A dependency that does not succeed: the dependent never runs, resolves
 * SKIPPED (-EPIPE), and its arg_destroy runs once.
 */
static void assert_skipped(aq_future *f, struct th_link *l)
{
	void *r = (void *)0x77;

	ck_assert_int_eq(aq_future_get(f, &r, th_long_ns()), -EPIPE);
	ck_assert_ptr_eq(r, (void *)0x77); /* untouched */
	ck_assert_int_eq(aq_future_state(f), AQ_STATE_SKIPPED);
	ck_assert_int_eq(th_ld(&l->ran), 0);
	ck_assert_int_eq(th_ld(&l->destroyed), 1);
}

START_TEST(test_dep_failed_skips)
{
	aq_pool *pool = th_pool(2, 64, 0, 0);
	struct th_gate gate;
	struct th_job ok, bad;
	struct th_link b, c, d;
	aq_future *fok, *fbad, *fb, *fc, *fd, *both[2];

	th_gate_init(&gate);
	th_job_init(&ok, NULL, 0, true, (void *)1);
	th_job_init(&bad, &gate, 9, false, NULL);
	th_link_init(&b, 0);
	th_link_init(&c, 0);
	th_link_init(&d, 0);
	fok = th_submit_job(pool, &ok);
	fbad = th_submit_job(pool, &bad);
	both[0] = fok;
	both[1] = fbad;
	fb = th_link_after(pool, &b, both, 2); /* one succeeds, one fails */
	fc = th_link_after(pool, &c, &fb, 1);  /* skipped after skipped */
	fd = th_link_after(pool, &d, &fok, 1); /* unaffected */
	ck_assert(th_gate_wait_entered(&gate, 1));
	ck_assert_int_eq(aq_future_state(fb), AQ_STATE_WAITING);
	th_gate_open(&gate);
	assert_skipped(fb, &b);
	assert_skipped(fc, &c);
	ck_assert_int_eq(aq_future_get(fd, NULL, th_long_ns()), 0);
	ck_assert_int_eq(th_ld(&d.ran), 1);
	ck_assert_int_eq(aq_future_get(fbad, NULL, 0), 9);
	/* Skipped is final: cancel finds it resolved. */
	ck_assert_int_eq(aq_future_cancel(fb), -EALREADY);
	aq_future_release(fok);
	aq_future_release(fbad);
	aq_future_release(fb);
	aq_future_release(fc);
	aq_future_release(fd);
	aq_pool_destroy(pool);
	th_gate_destroy(&gate);
}
END_TEST

START_TEST(test_dep_cancelled_skips)
{
	struct th_held_pool h;
	struct th_job a;
	struct th_link b;
	aq_future *fa, *fb;

	th_held_init(&h, 1);
	th_job_init(&a, NULL, 0, false, NULL);
	th_link_init(&b, 0);
	fa = th_submit_job(h.pool, &a);
	fb = th_link_after(h.pool, &b, &fa, 1);
	ck_assert_int_eq(aq_future_state(fb), AQ_STATE_WAITING);
	ck_assert_int_eq(aq_future_cancel(fa), 0);
	/* Settled by the cancel itself, while the worker is still held. */
	ck_assert_int_eq(aq_future_state(fb), AQ_STATE_SKIPPED);
	assert_skipped(fb, &b);
	th_gate_open(&h.gate);
	ck_assert_int_eq(aq_pool_shutdown(h.pool, 0), 0);
	ck_assert_int_eq(th_ld(&a.ran) + th_ld(&b.ran), 0);
	ck_assert_int_eq(th_ld(&b.destroyed), 1);
	aq_future_release(fa);
	aq_future_release(fb);
	th_held_fini(&h);
}
END_TEST

START_TEST(test_dep_expired_skips)
{
	struct th_held_pool h;
	struct th_job a;
	struct th_link b;
	struct aq_job_opts past = { .arg_destroy = th_job_destroy,
				    .deadline_ns = 1 };
	aq_future *fa, *fb;

	th_held_init(&h, 1);
	th_job_init(&a, NULL, 0, false, NULL);
	th_link_init(&b, 0);
	ck_assert_int_eq(aq_submit(h.pool, th_job_fn, &a, &past, &fa), 0);
	fb = th_link_after(h.pool, &b, &fa, 1);
	th_gate_open(&h.gate);
	ck_assert_int_eq(aq_future_get(fa, NULL, th_long_ns()), -ETIME);
	assert_skipped(fb, &b);
	ck_assert_int_eq(th_ld(&a.ran), 0);
	aq_future_release(fa);
	aq_future_release(fb);
	th_held_fini(&h);
}
END_TEST

START_TEST(test_cancel_waiting)
{
	struct th_held_pool h;
	struct th_link b;
	aq_future *fb;

	th_held_init(&h, 1);
	th_link_init(&b, 0);
	fb = th_link_after(h.pool, &b, &h.gate_fut, 1);
	ck_assert_int_eq(aq_future_state(fb), AQ_STATE_WAITING);
	ck_assert_int_eq(aq_future_cancel(fb), 0);
	ck_assert_int_eq(aq_future_state(fb), AQ_STATE_CANCELLED);
	ck_assert_int_eq(aq_future_get(fb, NULL, 0), -ECANCELED);
	ck_assert_int_eq(th_ld(&b.destroyed), 1);
	ck_assert_int_eq(aq_future_cancel(fb), -EALREADY);
	/* The dependency resolving later changes nothing. */
	th_gate_open(&h.gate);
	ck_assert_int_eq(aq_future_get(h.gate_fut, NULL, th_long_ns()), 0);
	ck_assert_int_eq(aq_pool_shutdown(h.pool, 0), 0);
	ck_assert_int_eq(aq_future_state(fb), AQ_STATE_CANCELLED);
	ck_assert_int_eq(th_ld(&b.ran), 0);
	ck_assert_int_eq(th_ld(&b.destroyed), 1);
	aq_future_release(fb);
	th_held_fini(&h);
}
END_TEST

START_TEST(test_dep_deadline_while_waiting)
{
	/* The deadline keeps running while a job waits for its deps. */
	struct th_held_pool h;
	struct th_link b;
	struct aq_job_opts opts = { .arg_destroy = th_link_destroy,
				    .after_count = 1 };
	aq_future *fb;

	th_held_init(&h, 1);
	th_link_init(&b, 0);
	opts.after = &h.gate_fut;
	opts.deadline_ns = th_pool_now(h.pool) + 2 * MS;
	ck_assert_int_eq(aq_submit(h.pool, th_link_job, &b, &opts, &fb), 0);
	th_sleep_ms(10);
	th_gate_open(&h.gate);
	ck_assert_int_eq(aq_future_get(fb, NULL, th_long_ns()), -ETIME);
	ck_assert_int_eq(th_ld(&b.ran), 0);
	ck_assert_int_eq(th_ld(&b.destroyed), 1);
	aq_future_release(fb);
	th_held_fini(&h);
}
END_TEST

/*
 * Issue 11, item 2: a job of pool P waiting on a future of pool Q is
 * cancelled, and P is shut down and destroyed while Q's job still runs.
 * When Q's job then resolves, settling the cancelled dependant must not
 * touch P (a heap-use-after-free under ASan before the fix).
 */
START_TEST(test_cancel_waiting_then_destroy_pool)
{
	struct th_held_pool q;
	struct th_link b;
	aq_future *fb;
	aq_pool *p = th_pool(1, 64, 0, 0);

	th_held_init(&q, 1);
	th_link_init(&b, 0);
	fb = th_link_after(p, &b, &q.gate_fut, 1);
	ck_assert_int_eq(aq_future_state(fb), AQ_STATE_WAITING);
	ck_assert_int_eq(aq_future_cancel(fb), 0);
	ck_assert_int_eq(aq_future_get(fb, NULL, 0), -ECANCELED);
	/* P has nothing left to wait for: it goes away now. */
	ck_assert_int_eq(aq_pool_shutdown(p, AQ_SHUTDOWN_DRAIN), 0);
	aq_pool_destroy(p);
	/* Q's job resolves, and its dependant is settled, after P is gone. */
	th_gate_open(&q.gate);
	ck_assert_int_eq(aq_future_get(q.gate_fut, NULL, th_long_ns()), 0);
	ck_assert_int_eq(aq_pool_shutdown(q.pool, AQ_SHUTDOWN_DRAIN), 0);
	ck_assert_int_eq(aq_future_state(fb), AQ_STATE_CANCELLED);
	ck_assert_int_eq(th_ld(&b.ran), 0);
	ck_assert_int_eq(th_ld(&b.destroyed), 1);
	aq_future_release(fb);
	th_held_fini(&q);
}
END_TEST

/*
 * Item 2's race in the open: the dependency of a job in P resolves on Q's
 * worker while the host cancels the job and destroys P. Every round the
 * job either ran or was cancelled, exactly once, and arg_destroy ran once;
 * under ASan, nothing touches P after it is gone.
 */
START_TEST(test_cancel_waiting_races_settle)
{
	aq_pool *q = th_pool(1, 64, 0, 0);
	int cancelled = 0, ran = 0;

	for (int round = 0; round < 300; round++) {
		aq_pool *p = th_pool(1, 64, 0, 0);
		atomic_long hits;
		struct th_link b;
		aq_future *fd = NULL, *fb;
		int rc;

		atomic_init(&hits, 0);
		th_link_init(&b, 0);
		ck_assert_int_eq(aq_submit(q, th_count_job, &hits, NULL, &fd),
				 0);
		fb = th_link_after(p, &b, &fd, 1);
		rc = aq_future_cancel(fb);
		ck_assert(rc == 0 || rc == -EALREADY || rc == -EBUSY);
		aq_pool_destroy(p);
		ck_assert_int_eq(aq_future_get(fd, NULL, th_long_ns()), 0);
		aq_future_release(fd);
		if (rc == 0) {
			ck_assert_int_eq(aq_future_get(fb, NULL, 0),
					 -ECANCELED);
			cancelled++;
		} else {
			ck_assert_int_eq(aq_future_get(fb, NULL, 0), 0);
			ran++;
		}
		ck_assert_int_eq(th_ld(&b.ran), rc == 0 ? 0 : 1);
		ck_assert_int_eq(th_ld(&b.destroyed), 1);
		aq_future_release(fb);
	}
	ck_assert_int_eq(cancelled + ran, 300);
	aq_pool_destroy(q);
}
END_TEST

START_TEST(test_deps_across_pools)
{
	/* b on pool B runs after a on pool A and x on B; A is destroyed
	 * before b runs, and b still reads a's result. */
	struct th_held_pool a_side, b_side;
	struct th_job a, x;
	struct th_link b;
	aq_future *deps[2], *fb;
	void *r = NULL;

	th_held_init(&a_side, 1);
	th_held_init(&b_side, 1);
	th_job_init(&a, NULL, 0, true, (void *)20);
	th_job_init(&x, NULL, 0, true, (void *)300);
	th_link_init(&b, 1);
	deps[0] = th_submit_job(a_side.pool, &a);
	deps[1] = th_submit_job(b_side.pool, &x);
	fb = th_link_after(b_side.pool, &b, deps, 2);
	aq_future_release(deps[0]);
	ck_assert_int_eq(aq_future_state(fb), AQ_STATE_WAITING);
	/* A runs its job and goes away; B is still held. */
	th_held_fini(&a_side);
	ck_assert_int_eq(th_ld(&a.ran), 1);
	ck_assert_int_eq(aq_future_state(fb), AQ_STATE_WAITING);
	th_gate_open(&b_side.gate);
	ck_assert_int_eq(aq_future_get(fb, &r, th_long_ns()), 0);
	ck_assert_ptr_eq(r, (void *)321);
	ck_assert_uint_eq(b.deps_seen, 2);
	aq_future_release(deps[1]);
	aq_future_release(fb);
	th_held_fini(&b_side);
}
END_TEST

Suite *deps_suite(void)
{
	Suite *s = suite_create("deps");
	TCase *deps = tcase_create("deps");

	tcase_set_timeout(deps, TH_TIMEOUT);
	tcase_add_test(deps, test_chain_passes_value);
	tcase_add_test(deps, test_chord_fan_in);
	tcase_add_test(deps, test_after_max_and_resolved);
	tcase_add_test(deps, test_after_einval);
	tcase_add_test(deps, test_dep_failed_skips);
	tcase_add_test(deps, test_dep_cancelled_skips);
	tcase_add_test(deps, test_dep_expired_skips);
	tcase_add_test(deps, test_cancel_waiting);
	tcase_add_test(deps, test_dep_deadline_while_waiting);
	tcase_add_test(deps, test_deps_across_pools);
	tcase_add_test(deps, test_cancel_waiting_then_destroy_pool);
	tcase_add_test(deps, test_cancel_waiting_races_settle);
	suite_add_tcase(s, deps);
	return s;
}
