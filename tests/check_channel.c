/* SPDX-License-Identifier: MIT */
/*
 * check_channel.c - completion delivery: then-callbacks on the resolving
 * thread or posted to a channel (lib/channel.c), the channel's descriptor,
 * dispatch budgets, and a high-volume run.
 *
 * Which thread ran a callback is told by a thread-local pointer that the
 * pools' start hooks set on every worker: NULL on any other thread.
 */
#include <dirent.h>
#include <errno.h>
#include <limits.h>
#include <poll.h>
#include <pthread.h>
#include <sched.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/types.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include <check.h>

#include "helpers.h"
#include "suites.h"

/* ---- then-callbacks ------------------------------------------------------ */

/* The generous bound of a poll() that must succeed, in milliseconds. */
static int poll_bound_ms(void)
{
	return (int)(th_poll_seconds() * 1000);
}

static aq_channel *make_channel(void)
{
	aq_channel *ch = NULL;

	ck_assert_int_eq(aq_channel_create(&ch, 0), 0);
	ck_assert_ptr_nonnull(ch);
	ck_assert_int_ge(aq_channel_fd(ch), 0);
	return ch;
}

START_TEST(test_then_every_outcome)
{
	struct aq_job_opts expire = { .deadline_ns = 1 }; /* long past */
	struct th_then_rec on_ok, on_fail, on_cancel, on_expire, on_done;
	struct th_job ok, fail, cancel, expired;
	aq_future *gate_fut, *f_ok, *f_fail, *f_cancel, *f_expire;
	pthread_t me = pthread_self();
	struct th_gate gate;
	struct th_hooks hk;
	aq_pool *pool;

	th_hooks_init(&hk);
	pool = th_hooked_pool(1, &hk);
	th_gate_init(&gate);
	th_then_rec_init(&on_ok);
	th_then_rec_init(&on_fail);
	th_then_rec_init(&on_cancel);
	th_then_rec_init(&on_expire);
	th_then_rec_init(&on_done);

	/* Hold the one worker, so that every job below is still pending
	 * when its callback is registered. */
	ck_assert_int_eq(aq_submit(pool, th_gate_job, &gate, NULL, &gate_fut),
			 0);
	ck_assert(th_gate_wait_entered(&gate, 1));
	th_job_init(&ok, NULL, 0, true, (void *)0x1234);
	th_job_init(&fail, NULL, 7, true, (void *)0x77);
	th_job_init(&cancel, NULL, 0, false, NULL);
	th_job_init(&expired, NULL, 0, false, NULL);
	ck_assert_int_eq(aq_submit(pool, th_job_fn, &ok, NULL, &f_ok), 0);
	ck_assert_int_eq(aq_submit(pool, th_job_fn, &fail, NULL, &f_fail), 0);
	ck_assert_int_eq(aq_submit(pool, th_job_fn, &cancel, NULL, &f_cancel),
			 0);
	ck_assert_int_eq(aq_submit(pool, th_job_fn, &expired, &expire,
				   &f_expire),
			 0);
	ck_assert_int_eq(aq_future_then(f_ok, th_then_record, &on_ok, NULL), 0);
	ck_assert_int_eq(aq_future_then(f_fail, th_then_record, &on_fail, NULL),
			 0);
	ck_assert_int_eq(
		aq_future_then(f_cancel, th_then_record, &on_cancel, NULL), 0);
	ck_assert_int_eq(
		aq_future_then(f_expire, th_then_record, &on_expire, NULL), 0);
	ck_assert_int_eq(th_ld(&on_ok.calls), 0);

	/* Cancelled: the canceller resolves it, so the callback has run on
	 * this thread by the time aq_future_cancel() returns. */
	ck_assert_int_eq(aq_future_cancel(f_cancel), 0);
	ck_assert_int_eq(th_ld(&on_cancel.calls), 1);
	ck_assert_int_eq(on_cancel.get_rc, -ECANCELED);
	ck_assert_int_eq(on_cancel.state, AQ_STATE_CANCELLED);
	ck_assert(pthread_equal(on_cancel.thread, me));
	ck_assert(!on_cancel.on_worker);

	th_gate_open(&gate);
	ck_assert(th_poll_int(&on_ok.calls, 1));
	ck_assert(th_poll_int(&on_fail.calls, 1));
	ck_assert(th_poll_int(&on_expire.calls, 1));

	ck_assert_int_eq(on_ok.get_rc, 0);
	ck_assert_ptr_eq(on_ok.result, (void *)0x1234);
	ck_assert_int_eq(on_ok.state, AQ_STATE_SUCCEEDED);
	ck_assert(on_ok.on_worker);
	ck_assert(!pthread_equal(on_ok.thread, me));

	ck_assert_int_eq(on_fail.get_rc, 7);
	ck_assert_ptr_eq(on_fail.result, (void *)0x77);
	ck_assert_int_eq(on_fail.state, AQ_STATE_FAILED);
	ck_assert(on_fail.on_worker);

	/* Expired: the worker that reached it after its deadline. */
	ck_assert_int_eq(on_expire.get_rc, -ETIME);
	ck_assert_int_eq(on_expire.state, AQ_STATE_EXPIRED);
	ck_assert(on_expire.on_worker);
	ck_assert_int_eq(th_ld(&expired.ran), 0);
	ck_assert_int_eq(th_ld(&cancel.ran), 0);

	/* Already resolved: at once, on the registering thread, before
	 * aq_future_then() returns. */
	ck_assert_int_eq(aq_future_then(f_ok, th_then_record, &on_done, NULL),
			 0);
	ck_assert_int_eq(th_ld(&on_done.calls), 1);
	ck_assert_int_eq(on_done.get_rc, 0);
	ck_assert_ptr_eq(on_done.result, (void *)0x1234);
	ck_assert(pthread_equal(on_done.thread, me));
	ck_assert(!on_done.on_worker);

	/* Once the workers are joined nothing can run any more: each ran
	 * exactly once. */
	aq_pool_shutdown(pool, AQ_SHUTDOWN_DRAIN);
	ck_assert_int_eq(th_ld(&on_ok.calls), 1);
	ck_assert_int_eq(th_ld(&on_fail.calls), 1);
	ck_assert_int_eq(th_ld(&on_cancel.calls), 1);
	ck_assert_int_eq(th_ld(&on_expire.calls), 1);
	ck_assert_int_eq(th_ld(&on_done.calls), 1);
	aq_future_release(gate_fut);
	aq_future_release(f_ok);
	aq_future_release(f_fail);
	aq_future_release(f_cancel);
	aq_future_release(f_expire);
	aq_pool_destroy(pool);
	th_gate_destroy(&gate);
	th_hooks_destroy(&hk);
}
END_TEST

/* The same outcomes delivered through a channel: every one waits for the
 * dispatching thread, and each runs once. */
START_TEST(test_then_every_outcome_channel)
{
	struct aq_job_opts expire = { .deadline_ns = 1 };
	struct th_then_rec rec[5];
	struct th_job ok, fail, cancel, expired;
	aq_future *gate_fut, *futs[4];
	pthread_t me = pthread_self();
	struct th_gate gate;
	aq_channel *ch = make_channel();
	aq_pool *pool = th_pool(1, 16, 0, 0);
	int ran = 0;

	th_gate_init(&gate);
	for (int i = 0; i < 5; i++)
		th_then_rec_init(&rec[i]);
	ck_assert_int_eq(aq_submit(pool, th_gate_job, &gate, NULL, &gate_fut),
			 0);
	ck_assert(th_gate_wait_entered(&gate, 1));
	th_job_init(&ok, NULL, 0, true, (void *)0x1234);
	th_job_init(&fail, NULL, 9, false, NULL);
	th_job_init(&cancel, NULL, 0, false, NULL);
	th_job_init(&expired, NULL, 0, false, NULL);
	ck_assert_int_eq(aq_submit(pool, th_job_fn, &ok, NULL, &futs[0]), 0);
	ck_assert_int_eq(aq_submit(pool, th_job_fn, &fail, NULL, &futs[1]), 0);
	ck_assert_int_eq(aq_submit(pool, th_job_fn, &cancel, NULL, &futs[2]),
			 0);
	ck_assert_int_eq(aq_submit(pool, th_job_fn, &expired, &expire,
				   &futs[3]),
			 0);
	for (int i = 0; i < 4; i++)
		ck_assert_int_eq(
			aq_future_then(futs[i], th_then_record, &rec[i], ch),
			0);
	ck_assert_int_eq(aq_future_cancel(futs[2]), 0);
	/* Posted, not run: only a dispatch runs it. */
	ck_assert_int_eq(th_ld(&rec[2].calls), 0);
	ck_assert_int_eq(th_fd_readable(aq_channel_fd(ch), 0), 1);
	th_gate_open(&gate);
	for (int i = 0; i < 4; i++)
		ck_assert_int_eq(aq_future_get(futs[i], NULL, -1),
				 i == 0 ? 0 : i == 1 ? 9 : i == 2 ? -ECANCELED
								 : -ETIME);
	/* The posts follow the resolutions: wait for all four. */
	while (ran < 4) {
		int n;

		ck_assert_int_eq(
			th_fd_readable(aq_channel_fd(ch), poll_bound_ms()), 1);
		n = aq_channel_dispatch(ch, 0);
		ck_assert_int_gt(n, 0);
		ran += n;
	}
	ck_assert_int_eq(ran, 4);
	ck_assert_int_eq(rec[0].get_rc, 0);
	ck_assert_ptr_eq(rec[0].result, (void *)0x1234);
	ck_assert_int_eq(rec[1].get_rc, 9);
	ck_assert_int_eq(rec[2].get_rc, -ECANCELED);
	ck_assert_int_eq(rec[3].get_rc, -ETIME);
	ck_assert_int_eq(rec[3].state, AQ_STATE_EXPIRED);
	/* Already resolved, through the channel: posted at once. */
	ck_assert_int_eq(aq_future_then(futs[1], th_then_record, &rec[4], ch),
			 0);
	ck_assert_int_eq(th_ld(&rec[4].calls), 0);
	ck_assert_int_eq(aq_channel_dispatch(ch, 0), 1);
	for (int i = 0; i < 5; i++) {
		ck_assert_int_eq(th_ld(&rec[i].calls), 1);
		ck_assert(pthread_equal(rec[i].thread, me));
	}
	ck_assert_int_eq(th_fd_readable(aq_channel_fd(ch), 0), 0);
	ck_assert_int_eq(aq_channel_dispatch(ch, 0), 0);
	for (int i = 0; i < 4; i++)
		aq_future_release(futs[i]);
	aq_future_release(gate_fut);
	aq_pool_destroy(pool);
	aq_channel_destroy(ch);
	th_gate_destroy(&gate);
}
END_TEST

/*
 * Regression: a callback registered once aq_future_get() has returned the
 * outcome must be handled at once, on the registering thread (or posted
 * before aq_future_then() returns). future_resolve() publishes the state
 * before it swaps the then-list for its end marker, so a registration in
 * between joins the list and is run later by the resolving worker: on the
 * wrong thread, and for a channel possibly after the caller destroyed it.
 */
START_TEST(test_then_registered_after_get_runs_at_once)
{
	enum { ROUNDS = 50000 };
	struct th_then_rec rec;
	aq_channel *ch = make_channel();
	aq_pool *pool = th_pool(2, 64, 0, 0);
	pthread_t me = pthread_self();

	for (int i = 0; i < ROUNDS; i++) {
		aq_channel *via = i % 2 ? ch : NULL;
		aq_future *fut;
		void *r = NULL;

		th_then_rec_init(&rec);
		ck_assert_int_eq(aq_submit(pool, th_echo_job, &rec, NULL, &fut),
				 0);
		ck_assert_int_eq(aq_future_get(fut, &r, -1), 0);
		ck_assert_int_eq(aq_future_then(fut, th_then_record, &rec, via),
				 0);
		if (via)
			ck_assert_msg(aq_channel_dispatch(ch, 0) == 1,
				      "round %d: resolved future, yet the "
				      "callback was not posted at once", i);
		ck_assert_msg(th_ld(&rec.calls) == 1,
			      "round %d: resolved future, yet the callback "
			      "did not run at once", i);
		ck_assert(pthread_equal(rec.thread, me));
		aq_future_release(fut);
	}
	aq_pool_destroy(pool);
	aq_channel_destroy(ch);
}
END_TEST

/* Callbacks of one future run in registration order. */
struct order_log {
	atomic_int n;
	int seq[16];
};

struct order_entry {
	struct order_log *log;
	int id;
};

static void then_order(aq_future *fut, void *user)
{
	struct order_entry *e = user;
	/* The callbacks of one future run one after the other on one
	 * thread, so a load and a store are enough. */
	int i = atomic_load(&e->log->n);

	(void)fut;
	if (i < 16)
		e->log->seq[i] = e->id;
	atomic_store(&e->log->n, i + 1);
}

START_TEST(test_then_order)
{
	struct order_log inline_log = { 0 }, chan_log = { 0 };
	struct order_entry inl[6], chan[6];
	struct th_gate gate;
	aq_channel *ch = make_channel();
	aq_pool *pool = th_pool(1, 16, 0, 0);
	aq_future *gate_fut, *a, *b;
	int ran = 0;

	th_gate_init(&gate);
	ck_assert_int_eq(aq_submit(pool, th_gate_job, &gate, NULL, &gate_fut),
			 0);
	ck_assert(th_gate_wait_entered(&gate, 1));
	ck_assert_int_eq(aq_submit(pool, th_echo_job, NULL, NULL, &a), 0);
	ck_assert_int_eq(aq_submit(pool, th_echo_job, NULL, NULL, &b), 0);
	for (int i = 0; i < 6; i++) {
		inl[i] = (struct order_entry){ &inline_log, i };
		chan[i] = (struct order_entry){ &chan_log, i };
		ck_assert_int_eq(aq_future_then(a, then_order, &inl[i], NULL),
				 0);
		ck_assert_int_eq(aq_future_then(b, then_order, &chan[i], ch),
				 0);
	}
	th_gate_open(&gate);
	ck_assert(th_poll_int(&inline_log.n, 6));
	while (ran < 6) {
		int n;

		ck_assert_int_eq(
			th_fd_readable(aq_channel_fd(ch), poll_bound_ms()), 1);
		n = aq_channel_dispatch(ch, 0);
		ck_assert_int_gt(n, 0);
		ran += n;
	}
	aq_pool_shutdown(pool, AQ_SHUTDOWN_DRAIN);
	ck_assert_int_eq(th_ld(&inline_log.n), 6);
	ck_assert_int_eq(th_ld(&chan_log.n), 6);
	for (int i = 0; i < 6; i++) {
		ck_assert_int_eq(inline_log.seq[i], i);
		ck_assert_int_eq(chan_log.seq[i], i);
	}
	aq_future_release(gate_fut);
	aq_future_release(a);
	aq_future_release(b);
	aq_pool_destroy(pool);
	aq_channel_destroy(ch);
	th_gate_destroy(&gate);
}
END_TEST

/* A dispatching thread other than the test's. */
struct dispatcher {
	aq_channel *ch;
	int ran;
	pthread_t self;
};

static void *dispatch_thread(void *arg)
{
	struct dispatcher *d = arg;

	d->self = pthread_self();
	if (th_fd_readable(aq_channel_fd(d->ch), poll_bound_ms()))
		d->ran = aq_channel_dispatch(d->ch, 0);
	return NULL;
}

START_TEST(test_then_inline_vs_channel)
{
	struct th_then_rec inl, chan, other;
	struct dispatcher d = { 0 };
	pthread_t me = pthread_self(), t;
	struct th_gate gate;
	struct th_job job;
	aq_channel *ch = make_channel();
	struct th_hooks hk;
	aq_pool *pool;
	aq_future *fut;

	th_hooks_init(&hk);
	pool = th_hooked_pool(2, &hk);
	th_gate_init(&gate);
	th_then_rec_init(&inl);
	th_then_rec_init(&chan);
	th_then_rec_init(&other);
	th_job_init(&job, &gate, 0, true, (void *)0x42);
	ck_assert_int_eq(aq_submit(pool, th_job_fn, &job, NULL, &fut), 0);
	ck_assert(th_gate_wait_entered(&gate, 1));
	ck_assert_int_eq(aq_future_then(fut, th_then_record, &inl, NULL), 0);
	ck_assert_int_eq(aq_future_then(fut, th_then_record, &chan, ch), 0);
	th_gate_open(&gate);

	/* Inline: on the worker that completed the job. */
	ck_assert(th_poll_int(&inl.calls, 1));
	ck_assert(inl.on_worker);
	ck_assert(!pthread_equal(inl.thread, me));
	ck_assert_int_eq(inl.get_rc, 0);
	ck_assert_ptr_eq(inl.result, (void *)0x42);

	/* Channel: it waits, readable, until this thread dispatches. */
	ck_assert_int_eq(th_fd_readable(aq_channel_fd(ch), poll_bound_ms()), 1);
	ck_assert_int_eq(th_ld(&chan.calls), 0);
	ck_assert_int_eq(aq_channel_dispatch(ch, 0), 1);
	ck_assert_int_eq(th_ld(&chan.calls), 1);
	ck_assert(pthread_equal(chan.thread, me));
	ck_assert(!chan.on_worker);
	ck_assert_int_eq(chan.get_rc, 0);
	ck_assert_ptr_eq(chan.result, (void *)0x42);

	/* Whichever thread dispatches runs it. */
	d.ch = ch;
	ck_assert_int_eq(aq_future_then(fut, th_then_record, &other, ch), 0);
	ck_assert_int_eq(pthread_create(&t, NULL, dispatch_thread, &d), 0);
	pthread_join(t, NULL);
	ck_assert_int_eq(d.ran, 1);
	ck_assert_int_eq(th_ld(&other.calls), 1);
	ck_assert(pthread_equal(other.thread, d.self));
	ck_assert(!other.on_worker);

	aq_pool_shutdown(pool, AQ_SHUTDOWN_DRAIN);
	ck_assert_int_eq(th_ld(&inl.calls), 1);
	ck_assert_int_eq(th_ld(&chan.calls), 1);
	aq_future_release(fut);
	aq_pool_destroy(pool);
	aq_channel_destroy(ch);
	th_gate_destroy(&gate);
	th_hooks_destroy(&hk);
}
END_TEST

/* The callback may release the caller's reference: it holds its own. */
static void then_release(aq_future *fut, void *user)
{
	th_then_record(fut, user);
	aq_future_release(fut); /* the caller's reference, handed over */
}

START_TEST(test_then_future_valid_in_callback)
{
	struct th_then_rec inl, chan;
	aq_channel *ch = make_channel();
	aq_pool *pool = th_pool(2, 16, 0, 0);
	aq_future *fut, *fut2;

	th_then_rec_init(&inl);
	th_then_rec_init(&chan);
	/* Released by the caller before it resolves: the registration still
	 * holds the record. */
	ck_assert_int_eq(aq_submit(pool, th_echo_job, (void *)0x5, NULL, &fut),
			 0);
	ck_assert_int_eq(aq_future_then(fut, th_then_record, &inl, NULL), 0);
	aq_future_release(fut);
	ck_assert(th_poll_int(&inl.calls, 1));
	ck_assert_int_eq(inl.get_rc, 0);
	ck_assert_ptr_eq(inl.result, (void *)0x5);

	/* Channel callback outliving both the caller's reference and the
	 * pool, which hands its reference over to the callback. */
	fut2 = th_resolved_future(pool, (void *)0x6);
	ck_assert_int_eq(aq_future_then(fut2, then_release, &chan, ch), 0);
	aq_pool_destroy(pool);
	ck_assert_int_eq(aq_channel_dispatch(ch, 0), 1);
	ck_assert_int_eq(th_ld(&chan.calls), 1);
	ck_assert_int_eq(chan.get_rc, 0);
	ck_assert_ptr_eq(chan.result, (void *)0x6);
	ck_assert_int_eq(chan.state, AQ_STATE_SUCCEEDED);
	aq_channel_destroy(ch);
}
END_TEST

/* ---- channel readiness and budgets --------------------------------------- */

START_TEST(test_channel_fd_readiness)
{
	struct th_then_rec rec, rec2;
	struct th_gate gate;
	struct th_job job;
	aq_channel *ch = make_channel();
	aq_pool *pool = th_pool(1, 16, 0, 0);
	int fd = aq_channel_fd(ch);
	aq_future *fut;

	th_then_rec_init(&rec);
	th_then_rec_init(&rec2);
	th_gate_init(&gate);
	/* Empty: not readable, and a dispatch runs nothing. */
	ck_assert_int_eq(th_fd_readable(fd, 0), 0);
	ck_assert_int_eq(aq_channel_dispatch(ch, 0), 0);
	ck_assert_int_eq(th_fd_readable(fd, 0), 0);

	/* Registered on a pending future: nothing waits yet. */
	th_job_init(&job, &gate, 0, false, NULL);
	ck_assert_int_eq(aq_submit(pool, th_job_fn, &job, NULL, &fut), 0);
	ck_assert(th_gate_wait_entered(&gate, 1));
	ck_assert_int_eq(aq_future_then(fut, th_then_record, &rec, ch), 0);
	ck_assert_int_eq(th_fd_readable(fd, 0), 0);

	/* Resolved: readable, and it stays readable until dispatched. */
	th_gate_open(&gate);
	ck_assert_int_eq(th_fd_readable(fd, poll_bound_ms()), 1);
	ck_assert_int_eq(aq_future_state(fut), AQ_STATE_SUCCEEDED);
	ck_assert_int_eq(th_fd_readable(fd, 0), 1);
	ck_assert_int_eq(th_fd_readable(fd, 0), 1);
	ck_assert_int_eq(th_ld(&rec.calls), 0);
	ck_assert_int_eq(aq_channel_dispatch(ch, 0), 1);
	ck_assert_int_eq(th_ld(&rec.calls), 1);
	ck_assert_int_eq(th_fd_readable(fd, 0), 0);

	/* Registered on a resolved future: readable at once. */
	ck_assert_int_eq(aq_future_then(fut, th_then_record, &rec2, ch), 0);
	ck_assert_int_eq(th_fd_readable(fd, 0), 1);
	ck_assert_int_eq(aq_channel_dispatch(ch, 1), 1);
	ck_assert_int_eq(th_fd_readable(fd, 0), 0);
	ck_assert_int_eq(aq_channel_dispatch(ch, 1), 0);
	ck_assert_int_eq(th_ld(&rec2.calls), 1);

	aq_future_release(fut);
	aq_pool_destroy(pool);
	aq_channel_destroy(ch);
	th_gate_destroy(&gate);
}
END_TEST

START_TEST(test_channel_dispatch_budget)
{
	struct order_log log = { 0 };
	struct order_entry entries[10];
	aq_channel *ch = make_channel();
	aq_pool *pool = th_pool(2, 16, 0, 0);
	int fd = aq_channel_fd(ch);
	aq_future *futs[10];

	/* Ten completions waiting: registered once resolved, so each is
	 * posted before aq_future_then() returns. */
	for (int i = 0; i < 10; i++) {
		futs[i] = th_resolved_future(pool, NULL);
		entries[i] = (struct order_entry){ &log, i };
		ck_assert_int_eq(aq_future_then(futs[i], then_order,
						&entries[i], ch),
				 0);
	}
	ck_assert_int_eq(th_ld(&log.n), 0);
	ck_assert_int_eq(th_fd_readable(fd, 0), 1);
	ck_assert_int_eq(aq_channel_dispatch(ch, 3), 3);
	ck_assert_int_eq(th_ld(&log.n), 3);
	ck_assert_int_eq(th_fd_readable(fd, 0), 1);
	ck_assert_int_eq(aq_channel_dispatch(ch, 3), 3);
	ck_assert_int_eq(th_fd_readable(fd, 0), 1);
	ck_assert_int_eq(aq_channel_dispatch(ch, 3), 3);
	ck_assert_int_eq(th_fd_readable(fd, 0), 1);
	ck_assert_int_eq(aq_channel_dispatch(ch, 3), 1);
	ck_assert_int_eq(th_fd_readable(fd, 0), 0);
	ck_assert_int_eq(aq_channel_dispatch(ch, 3), 0);
	ck_assert_int_eq(th_fd_readable(fd, 0), 0);
	/* Each once, oldest first. */
	ck_assert_int_eq(th_ld(&log.n), 10);
	for (int i = 0; i < 10; i++)
		ck_assert_int_eq(log.seq[i], i);
	for (int i = 0; i < 10; i++)
		aq_future_release(futs[i]);
	aq_pool_destroy(pool);
	aq_channel_destroy(ch);
}
END_TEST

/* A callback that registers another one on the same, resolved, future and
 * channel: it is posted while the dispatch runs and waits for the next. */
struct rearm {
	aq_channel *ch;
	atomic_int first, second;
	int then_rc;
};

static void then_second(aq_future *fut, void *user)
{
	struct rearm *r = user;

	(void)fut;
	atomic_fetch_add(&r->second, 1);
}

static void then_first(aq_future *fut, void *user)
{
	struct rearm *r = user;

	atomic_fetch_add(&r->first, 1);
	r->then_rc = aq_future_then(fut, then_second, r, r->ch);
}

START_TEST(test_channel_callback_registers_more)
{
	struct rearm r = { 0 };
	aq_pool *pool = th_pool(1, 16, 0, 0);
	aq_future *fut = th_resolved_future(pool, NULL);
	int fd;

	r.ch = make_channel();
	fd = aq_channel_fd(r.ch);
	ck_assert_int_eq(aq_future_then(fut, then_first, &r, r.ch), 0);
	/* dispatch(0) runs what waited when it was called: the callback
	 * posted meanwhile keeps the descriptor readable. */
	ck_assert_int_eq(aq_channel_dispatch(r.ch, 0), 1);
	ck_assert_int_eq(r.then_rc, 0);
	ck_assert_int_eq(th_ld(&r.first), 1);
	ck_assert_int_eq(th_ld(&r.second), 0);
	ck_assert_int_eq(th_fd_readable(fd, 0), 1);
	ck_assert_int_eq(aq_channel_dispatch(r.ch, 0), 1);
	ck_assert_int_eq(th_ld(&r.second), 1);
	ck_assert_int_eq(th_fd_readable(fd, 0), 0);
	aq_future_release(fut);
	aq_pool_destroy(pool);
	aq_channel_destroy(r.ch);
}
END_TEST

/* Callbacks that submit more work and register it on the same channel. */
struct chain {
	aq_pool *pool;
	aq_channel *ch;
	atomic_int to_submit; /* submissions left to make */
	atomic_int calls;     /* callbacks run */
	atomic_int errors;
};

static const struct aq_job_opts block_opts = { .flags = AQ_JOB_BLOCK };

static void chain_then(aq_future *fut, void *user)
{
	struct chain *c = user;
	aq_future *next;
	void *r = NULL;

	if (aq_future_get(fut, &r, 0) != 0 || r != c)
		atomic_fetch_add(&c->errors, 1);
	atomic_fetch_add(&c->calls, 1);
	if (atomic_fetch_sub(&c->to_submit, 1) <= 0)
		return;
	if (aq_submit(c->pool, th_echo_job, c, &block_opts, &next) != 0) {
		atomic_fetch_add(&c->errors, 1);
		return;
	}
	if (aq_future_then(next, chain_then, c, c->ch) != 0)
		atomic_fetch_add(&c->errors, 1);
	aq_future_release(next);
}

START_TEST(test_channel_callbacks_submit_more)
{
	enum { SEEDS = 8, TOTAL = 3000 };
	struct chain c = { 0 };
	int fd, loops = 0;

	c.pool = th_pool(2, 64, 0, 0);
	c.ch = make_channel();
	atomic_init(&c.to_submit, TOTAL - SEEDS);
	fd = aq_channel_fd(c.ch);
	for (int i = 0; i < SEEDS; i++) {
		aq_future *fut;

		ck_assert_int_eq(aq_submit(c.pool, th_echo_job, &c, NULL, &fut),
				 0);
		ck_assert_int_eq(aq_future_then(fut, chain_then, &c, c.ch), 0);
		aq_future_release(fut);
	}
	/* An event loop: it must never wait out a poll (a lost wake-up),
	 * nor find the descriptor readable with nothing to run (a spin). */
	while (th_ld(&c.calls) < TOTAL) {
		ck_assert_int_eq(
			th_fd_readable(fd, 5000 * (int)th_time_scale()), 1);
		ck_assert_int_gt(aq_channel_dispatch(c.ch, 7), 0);
		loops++;
	}
	aq_pool_shutdown(c.pool, AQ_SHUTDOWN_DRAIN);
	ck_assert_int_eq(th_ld(&c.calls), TOTAL);
	ck_assert_int_eq(th_ld(&c.errors), 0);
	ck_assert_int_le(loops, TOTAL);
	ck_assert_int_eq(th_fd_readable(fd, 0), 0);
	ck_assert_int_eq(aq_channel_dispatch(c.ch, 0), 0);
	aq_pool_destroy(c.pool);
	aq_channel_destroy(c.ch);
}
END_TEST

/* Inline callbacks on workers feed the channel: a worker registers the
 * next job's callback on the channel from inside a callback. */
static void chain_then_inline(aq_future *fut, void *user)
{
	struct chain *c = user;
	aq_future *next;

	(void)fut;
	/* From a worker of the pool: a full ring gives -EAGAIN, so retry. */
	while (aq_submit(c->pool, th_echo_job, c, NULL, &next) == -EAGAIN)
		sched_yield();
	if (!next || aq_future_then(next, chain_then, c, c->ch) != 0)
		atomic_fetch_add(&c->errors, 1);
	aq_future_release(next);
}

START_TEST(test_channel_fed_from_workers)
{
	enum { N = 2000 };
	struct chain c = { 0 };
	int fd, ran = 0;

	c.pool = th_pool(2, 4096, 0, 0);
	c.ch = make_channel();
	atomic_init(&c.to_submit, 0); /* chain_then submits nothing more */
	fd = aq_channel_fd(c.ch);
	for (int i = 0; i < N; i++) {
		aq_future *fut;

		ck_assert_int_eq(
			th_submit_retry(c.pool, th_echo_job, &c, NULL, &fut),
			0);
		ck_assert_int_eq(aq_future_then(fut, chain_then_inline, &c,
						NULL),
				 0);
		aq_future_release(fut);
	}
	while (ran < N) {
		int n;

		ck_assert_int_eq(
			th_fd_readable(fd, 5000 * (int)th_time_scale()), 1);
		n = aq_channel_dispatch(c.ch, 0);
		ck_assert_int_gt(n, 0);
		ran += n;
	}
	aq_pool_shutdown(c.pool, AQ_SHUTDOWN_DRAIN);
	ck_assert_int_eq(ran, N);
	ck_assert_int_eq(th_ld(&c.calls), N);
	ck_assert_int_eq(th_ld(&c.errors), 0);
	ck_assert_int_eq(th_fd_readable(fd, 0), 0);
	aq_pool_destroy(c.pool);
	aq_channel_destroy(c.ch);
}
END_TEST

/* 4 producers x 5000 futures with a callback each on one channel, and a
 * dispatching thread that polls: every callback runs exactly once. */
enum { VOL_PRODUCERS = 4, VOL_EACH = 5000 };

struct volume;

struct vol_slot {
	atomic_int hits;
	struct volume *v;
};

struct volume {
	aq_pool *pool;
	aq_channel *ch;
	struct vol_slot *slots;
	atomic_int total;     /* callbacks run */
	atomic_int bad;       /* a wrong outcome seen by a callback */
	atomic_int refused;   /* a submit or then that failed */
	int timeouts;         /* dispatcher: polls that timed out */
	int empty;            /* dispatcher: readable but nothing ran */
	int dispatched;       /* dispatcher: the sum of dispatch counts */
};

struct vol_producer {
	struct volume *v;
	int first;
};

static void vol_then(aq_future *fut, void *user)
{
	struct vol_slot *s = user;
	void *r = NULL;

	if (aq_future_get(fut, &r, 0) != 0 || r != s)
		atomic_fetch_add(&s->v->bad, 1);
	atomic_fetch_add(&s->hits, 1);
	atomic_fetch_add(&s->v->total, 1);
}

static void *vol_produce(void *arg)
{
	struct vol_producer *p = arg;
	struct volume *v = p->v;

	for (int i = p->first; i < p->first + VOL_EACH; i++) {
		aq_future *fut;

		if (aq_submit(v->pool, th_echo_job, &v->slots[i], &block_opts,
			      &fut) != 0) {
			atomic_fetch_add(&v->refused, 1);
			continue;
		}
		if (aq_future_then(fut, vol_then, &v->slots[i], v->ch) != 0)
			atomic_fetch_add(&v->refused, 1);
		aq_future_release(fut);
	}
	return NULL;
}

static void *vol_dispatch(void *arg)
{
	struct volume *v = arg;
	int want = VOL_PRODUCERS * VOL_EACH;

	while (atomic_load(&v->total) < want) {
		int n;

		if (!th_fd_readable(aq_channel_fd(v->ch),
				    5000 * (int)th_time_scale())) {
			v->timeouts++;
			break;
		}
		n = aq_channel_dispatch(v->ch, 64);
		if (n <= 0)
			v->empty++;
		else
			v->dispatched += n;
	}
	return NULL;
}

START_TEST(test_channel_high_volume)
{
	struct vol_producer prod[VOL_PRODUCERS];
	pthread_t producers[VOL_PRODUCERS], dispatcher;
	struct volume v = { 0 };
	int want = VOL_PRODUCERS * VOL_EACH;

	v.pool = th_pool(4, 4096, 0, 0);
	v.ch = make_channel();
	v.slots = calloc((size_t)want, sizeof(*v.slots));
	ck_assert_ptr_nonnull(v.slots);
	for (int i = 0; i < want; i++) {
		atomic_init(&v.slots[i].hits, 0);
		v.slots[i].v = &v;
	}
	ck_assert_int_eq(pthread_create(&dispatcher, NULL, vol_dispatch, &v),
			 0);
	for (int p = 0; p < VOL_PRODUCERS; p++) {
		prod[p] = (struct vol_producer){ &v, p * VOL_EACH };
		ck_assert_int_eq(pthread_create(&producers[p], NULL,
						vol_produce, &prod[p]),
				 0);
	}
	for (int p = 0; p < VOL_PRODUCERS; p++)
		pthread_join(producers[p], NULL);
	pthread_join(dispatcher, NULL);
	aq_pool_shutdown(v.pool, AQ_SHUTDOWN_DRAIN);

	ck_assert_int_eq(th_ld(&v.refused), 0);
	ck_assert_int_eq(v.timeouts, 0);
	ck_assert_int_eq(v.empty, 0);
	ck_assert_int_eq(v.dispatched, want);
	ck_assert_int_eq(th_ld(&v.total), want);
	ck_assert_int_eq(th_ld(&v.bad), 0);
	for (int i = 0; i < want; i++)
		ck_assert_msg(atomic_load(&v.slots[i].hits) == 1,
			      "callback %d ran %d times", i,
			      atomic_load(&v.slots[i].hits));
	ck_assert_int_eq(th_fd_readable(aq_channel_fd(v.ch), 0), 0);
	ck_assert_int_eq(aq_channel_dispatch(v.ch, 0), 0);
	aq_pool_destroy(v.pool);
	aq_channel_destroy(v.ch);
	free(v.slots);
}
END_TEST

START_TEST(test_channel_destroy_runs_waiting)
{
	struct th_then_rec rec[3];
	struct rearm r = { 0 };
	aq_channel *ch = make_channel();
	aq_pool *pool = th_pool(1, 16, 0, 0);
	aq_future *fut = th_resolved_future(pool, (void *)0x9);

	for (int i = 0; i < 3; i++) {
		th_then_rec_init(&rec[i]);
		ck_assert_int_eq(
			aq_future_then(fut, th_then_record, &rec[i], ch), 0);
	}
	/* And one that registers another while the destroy runs it. */
	r.ch = ch;
	ck_assert_int_eq(aq_future_then(fut, then_first, &r, ch), 0);
	for (int i = 0; i < 3; i++)
		ck_assert_int_eq(th_ld(&rec[i].calls), 0);
	aq_channel_destroy(ch);
	for (int i = 0; i < 3; i++) {
		ck_assert_int_eq(th_ld(&rec[i].calls), 1);
		ck_assert_int_eq(rec[i].get_rc, 0);
		ck_assert_ptr_eq(rec[i].result, (void *)0x9);
	}
	ck_assert_int_eq(r.then_rc, 0);
	ck_assert_int_eq(th_ld(&r.first), 1);
	ck_assert_int_eq(th_ld(&r.second), 1);
	aq_future_release(fut);
	aq_pool_destroy(pool);
	aq_channel_destroy(NULL); /* ignored */
}
END_TEST

static void then_never(aq_future *fut, void *user)
{
	(void)fut;
	atomic_fetch_add((atomic_int *)user, 1);
}

static atomic_int null_user_calls;

static void then_null_user(aq_future *fut, void *user)
{
	(void)fut;
	if (user == NULL)
		atomic_fetch_add(&null_user_calls, 1);
}

START_TEST(test_then_channel_bad_args)
{
	aq_channel *ch = (aq_channel *)0x1;
	aq_pool *pool = th_pool(1, 16, 0, 0);
	aq_future *fut = th_resolved_future(pool, NULL);
	atomic_int calls = 0;

	ck_assert_int_eq(aq_future_then(NULL, then_never, &calls, NULL),
			 -EINVAL);
	ck_assert_int_eq(aq_future_then(fut, NULL, &calls, NULL), -EINVAL);
	ck_assert_int_eq(th_ld(&calls), 0);
	ck_assert_int_eq(aq_channel_create(NULL, 0), -EINVAL);
	ck_assert_int_eq(aq_channel_create(&ch, 1), -EINVAL);
	ck_assert_int_eq(aq_channel_create(&ch, 0x80000000u), -EINVAL);
	ck_assert_ptr_eq(ch, (aq_channel *)0x1); /* untouched */
	ck_assert_int_eq(aq_channel_fd(NULL), -EINVAL);
	ck_assert_int_eq(aq_channel_dispatch(NULL, 0), -EINVAL);
	ck_assert_int_eq(aq_channel_dispatch(NULL, 5), -EINVAL);
	aq_channel_destroy(NULL);
	/* A user pointer of NULL is fine. */
	ck_assert_int_eq(aq_future_then(fut, then_null_user, NULL, NULL), 0);
	ck_assert_int_eq(th_ld(&null_user_calls), 1);
	aq_future_release(fut);
	aq_pool_destroy(pool);
}
END_TEST

Suite *channel_suite(void)
{
	Suite *s = suite_create("channel");
	TCase *then = tcase_create("then");
	TCase *channel = tcase_create("channel");
	TCase *stress = tcase_create("stress");

	tcase_set_timeout(then, TH_TIMEOUT);
	tcase_add_test(then, test_then_every_outcome);
	tcase_add_test(then, test_then_every_outcome_channel);
	tcase_add_test(then, test_then_order);
	tcase_add_test(then, test_then_inline_vs_channel);
	tcase_add_test(then, test_then_future_valid_in_callback);
	tcase_add_test(then, test_then_registered_after_get_runs_at_once);
	tcase_add_test(then, test_then_channel_bad_args);
	suite_add_tcase(s, then);

	tcase_set_timeout(channel, TH_TIMEOUT);
	tcase_add_test(channel, test_channel_fd_readiness);
	tcase_add_test(channel, test_channel_dispatch_budget);
	tcase_add_test(channel, test_channel_callback_registers_more);
	tcase_add_test(channel, test_channel_callbacks_submit_more);
	tcase_add_test(channel, test_channel_fed_from_workers);
	tcase_add_test(channel, test_channel_destroy_runs_waiting);
	suite_add_tcase(s, channel);

	tcase_set_timeout(stress, TH_TIMEOUT_STRESS);
	tcase_add_test(stress, test_channel_high_volume);
	suite_add_tcase(s, stress);
	return s;
}
