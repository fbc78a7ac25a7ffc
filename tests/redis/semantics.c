/* SPDX-License-Identifier: MIT */
/*
 * semantics.c - libasyncq-redis's finer promises against a real
 * redis-server: a cancel reaches Redis, a worker never holds more jobs
 * than its slots, a crash is blamed on the job that was alone on the
 * crashed worker, the jobs of a killed worker come back promptly, and
 * heartbeats keep every lease however many are held.
 */
#include <errno.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include "fixture.h"
#include "helpers.h"

/* Entries pending in the group over the three streams (one script: one
 * consistent look). */
static long long pending_total(void)
{
	return rs_int(&srv, "EVAL %s 1 aq:{" QUEUE "}:s",
		      "local n = 0 for s = 0, 2 do n = n + "
		      "redis.call('XPENDING', KEYS[1] .. s, 'aq')[1] end "
		      "return n");
}

static long long pending_want;

static bool pending_reached(void *ctx)
{
	(void)ctx;
	return pending_total() == pending_want;
}

static long long server_at;

static bool server_past(void *ctx)
{
	(void)ctx;
	return rs_time_ms(&srv) > server_at;
}

/* ---- heartbeats ---------------------------------------------------------- */

/* Regression: a heartbeat renewed the leases of the first ~2040 jobs a
 * worker held (one command's arguments) and let the others lapse. */
START_TEST(test_heartbeat_covers_every_lease)
{
	enum { N = 2500, B = 500 };
	const char *opts[] = { "conc=3000", "threads=2", "vis=1000", "hb=100",
			       NULL };
	aq_redis_client *c = client();
	aq_future **futs = calloc(N, sizeof(*futs));
	char gate[320], apid[24];
	redisReply *r;
	pid_t a = worker(opts);
	int wrong = 0;

	ck_assert_ptr_nonnull(futs);
	snprintf(gate, sizeof(gate), "%s/gate", srv.dir);
	snprintf(apid, sizeof(apid), "%ld", (long)a);
	for (int base = 0; base < N; base += B) {
		struct aq_redis_job jobs[B];
		static char text[B][400];

		for (int i = 0; i < B; i++) {
			jobs[i].type = "gate";
			jobs[i].len =
				(size_t)snprintf(text[i], sizeof(text[i]),
						 "%s g%d", gate, base + i);
			jobs[i].payload = text[i];
		}
		ck_assert_int_eq(
			aq_redis_submit_batch(c, jobs, B, NULL, futs + base),
			B);
	}
	pending_want = N; /* all held by a, two of them running */
	ck_assert(th_poll(pending_reached, NULL));
	/* Three visibility timeouts later every lease was renewed within
	 * the last one (one beat every 100 ms). */
	server_at = rs_time_ms(&srv) + 3000;
	ck_assert(th_poll(server_past, NULL));
	r = rs_cmd(&srv, "XPENDING aq:{" QUEUE "}:s1 aq IDLE 1000 - + 10");
	ck_assert_ptr_nonnull(r);
	ck_assert_msg(r->elements == 0, "%zu leases lapsed, first %s",
		      r->elements,
		      r->elements ? r->element[0]->element[0]->str : "");
	freeReplyObject(r);
	fclose(fopen(gate, "w"));
	for (int i = 0; i < N; i++) {
		wrong += strcmp(result_text(futs[i]), apid) != 0;
		aq_future_release(futs[i]);
	}
	ck_assert_int_eq(wrong, 0);
	free(futs);
	worker_term(a);
	aq_redis_client_destroy(c);
	assert_no_pending();
}
END_TEST

/* ---- a worker holds no more than its slots ------------------------------- */

/* Regression: when a fetch found only entries it settled itself (here a
 * malformed one), the blocking read that followed took one entry from
 * each of the three streams, three jobs for a worker with one slot. */
START_TEST(test_one_slot_holds_one_job)
{
	static const int prio[3] = { AQ_REDIS_PRIO_HIGH, AQ_REDIS_PRIO_NORMAL,
				     AQ_REDIS_PRIO_LOW };
	static const char *const name[3] = { "H", "N", "L" };
	const char *opts[] = { "conc=1", NULL };
	aq_redis_client *c = client();
	aq_future *futs[3];
	char gate[320], p[400], cmd[300], order[8];
	pid_t w;

	snprintf(gate, sizeof(gate), "%s/gate", srv.dir);
	/* First in the high stream: an entry that names no job. */
	snprintf(cmd, sizeof(cmd),
		 "redis-cli -p %d XADD 'aq:{" QUEUE "}:s0' '*' foo bar "
		 ">/dev/null",
		 srv.port);
	ck_assert_int_eq(system(cmd), 0);
	for (int i = 0; i < 3; i++) {
		struct aq_redis_job_opts o = { .priority = prio[i] };

		snprintf(p, sizeof(p), "%s %s", gate, name[i]);
		ck_assert_int_eq(
			aq_redis_submit(c, "gate", p, strlen(p), &o, &futs[i]),
			0);
	}
	w = worker(opts);
	ck_assert(log_wait("start", "H", 1));
	ck_assert_int_eq(pending_total(), 1);
	fclose(fopen(gate, "w"));
	for (int i = 0; i < 3; i++) {
		ck_assert(log_wait("start", name[i], 1));
		result_text(futs[i]);
		aq_future_release(futs[i]);
	}
	ck_assert_str_eq(log_order("start", order, sizeof(order)), "HNL");
	ck_assert(dead_has("malformed"));
	worker_term(w);
	aq_redis_client_destroy(c);
	assert_no_pending();
}
END_TEST

/* ---- cancel ----------------------------------------------------------------
 */

static void count_call(aq_future *fut, void *user)
{
	(void)fut;
	__atomic_fetch_add((int *)user, 1, __ATOMIC_SEQ_CST);
}

static bool one_delayed(void *ctx)
{
	(void)ctx;
	return rs_int(&srv, "ZCARD aq:{" QUEUE "}:d") == 1;
}

/* Cancelled while queued, delayed or waiting for a retry: never run,
 * resolved -ECANCELED once, nothing left in Redis. */
START_TEST(test_cancel_before_start)
{
	struct aq_redis_job_opts later = { .delay_ms = 600000 };
	struct aq_redis_job_opts retry = { .max_attempts = 3,
					   .backoff_ms = 600000 };
	aq_redis_client *c = client();
	aq_future *q, *d, *f, *after;
	int calls[3] = { 0, 0, 0 };
	char first[256];
	pid_t w;

	ck_assert_int_eq(aq_redis_submit(c, "log", "q", 1, NULL, &q), 0);
	ck_assert_int_eq(aq_redis_submit(c, "log", "d", 1, &later, &d), 0);
	ck_assert_int_eq(aq_redis_submit(c, "fail", "f", 1, &retry, &f), 0);
	ck_assert_int_eq(aq_redis_submit(c, "log", "after", 5, NULL, &after),
			 0);
	ck_assert_int_eq(aq_future_then(q, count_call, &calls[0], NULL), 0);
	ck_assert_int_eq(aq_future_then(d, count_call, &calls[1], NULL), 0);
	ck_assert_int_eq(aq_future_then(f, count_call, &calls[2], NULL), 0);
	ck_assert_int_eq(aq_redis_cancel(NULL, q), -EINVAL);
	ck_assert_int_eq(aq_redis_cancel(c, NULL), -EINVAL);
	/* Queued in its stream, and delayed: resolved before the call
	 * returns. */
	ck_assert_int_eq(aq_redis_cancel(c, q), 0);
	ck_assert_int_eq(aq_future_state(q), AQ_STATE_CANCELLED);
	ck_assert_int_eq(aq_redis_cancel(c, d), 0);
	ck_assert_int_eq(aq_future_get(d, NULL, 0), -ECANCELED);
	ck_assert_int_eq(aq_redis_cancel(c, q), -EALREADY);
	ck_assert_int_eq(rs_int(&srv, "ZCARD aq:{" QUEUE "}:d"), 0);
	w = worker(NULL);
	/* Waiting for its retry after one failure. */
	ck_assert(log_wait("fail", "f", 1));
	ck_assert(th_poll(one_delayed, NULL));
	ck_assert_int_eq(aq_redis_cancel(c, f), 0);
	ck_assert_int_eq(aq_future_get(f, NULL, 0), -ECANCELED);
	ck_assert_str_eq(result_text(after), "after"); /* q's entry is gone */
	ck_assert_int_eq(rs_log_count(logpath, "run", "q"), 0);
	ck_assert_int_eq(rs_log_count(logpath, "run", "d"), 0);
	ck_assert_int_eq(rs_log_count(logpath, "fail", "f"), 1);
	for (int i = 0; i < 3; i++)
		ck_assert_int_eq(__atomic_load_n(&calls[i], __ATOMIC_SEQ_CST),
				 1);
	aq_future_release(q);
	aq_future_release(d);
	aq_future_release(f);
	aq_future_release(after);
	worker_term(w);
	aq_redis_client_destroy(c);
	assert_no_pending();
	ck_assert_msg(leftover_keys(first, sizeof(first)) == 0,
		      "leftover key %s", first);
}
END_TEST

/* Cancelled while a worker runs it: -EBUSY; the worker's job sees
 * aq_current_cancelled() and ends cancelled; a job that ignores the flag
 * keeps its outcome. */
START_TEST(test_cancel_running)
{
	const char *opts[] = { "conc=2", "hb=50", NULL };
	aq_redis_client *c = client();
	aq_future *k, *g;
	char gate[320], p[400];
	pid_t w = worker(opts);

	snprintf(gate, sizeof(gate), "%s/gate", srv.dir);
	snprintf(p, sizeof(p), "%s g", gate);
	ck_assert_int_eq(aq_redis_submit(c, "cancellable", "k", 1, NULL, &k),
			 0);
	ck_assert_int_eq(aq_redis_submit(c, "gate", p, strlen(p), NULL, &g), 0);
	ck_assert(log_wait("start", "k", 1));
	ck_assert(log_wait("start", "g", 1));
	ck_assert_int_eq(aq_redis_cancel(c, k), -EBUSY);
	ck_assert_int_eq(aq_redis_cancel(c, g), -EBUSY);
	ck_assert_int_eq(aq_future_get(k, NULL, bound_ns()), -ECANCELED);
	ck_assert_int_eq(rs_log_count(logpath, "cancelled", "k"), 1);
	fclose(fopen(gate, "w"));
	ck_assert(result_text(g)[0] != '\0'); /* ran to its end: succeeded */
	ck_assert_int_eq(rs_log_count(logpath, "start", "k"), 1);
	ck_assert_int_eq(rs_log_count(logpath, "start", "g"), 1);
	ck_assert_int_eq(aq_redis_cancel(c, g), -EALREADY);
	aq_future_release(k);
	aq_future_release(g);
	/* Asked to cancel while it runs, then failing: not retried. */
	{
		struct aq_redis_job_opts retry = { .max_attempts = 3 };
		char gate2[330];
		aq_future *x, *own;

		snprintf(gate2, sizeof(gate2), "%s2", gate);
		snprintf(p, sizeof(p), "%s x fail", gate2);
		ck_assert_int_eq(
			aq_redis_submit(c, "gate", p, strlen(p), &retry, &x),
			0);
		ck_assert(log_wait("start", "x", 1));
		ck_assert_int_eq(aq_redis_cancel(c, x), -EBUSY);
		fclose(fopen(gate2, "w"));
		ck_assert_int_eq(aq_future_get(x, NULL, bound_ns()), 7);
		ck_assert_int_eq(rs_log_count(logpath, "start", "x"), 1);
		aq_future_release(x);
		/* A future not from this client: nothing to cancel. */
		ck_assert_int_eq(aq_future_create(&own, NULL, 0), 0);
		ck_assert_int_eq(aq_redis_cancel(c, own), -EALREADY);
		ck_assert_int_eq(aq_future_state(own), AQ_STATE_PENDING);
		aq_future_release(own);
	}
	worker_term(w);
	aq_redis_client_destroy(c);
	assert_no_pending();
}
END_TEST

/* ---- crashes are blamed on the job that ran alone ---------------------- */

/* Regression: a worker's crash counted a delivery against every job in
 * flight on it, so a job that merely shared a worker with one that calls
 * abort() was dead-lettered as "crashed" with it. */
START_TEST(test_crash_blames_the_job_alone)
{
	const char *opts[] = { "conc=2", "vis=300", "hb=100", "maxdeliv=2",
			       NULL };
	aq_redis_client *c = client();
	aq_future *crash, *inno;
	pid_t w;

	/* Both in the first fetch of one worker: the abort takes the
	 * sleeper down with it. */
	ck_assert_int_eq(aq_redis_submit(c, "abort", "boom", 4, NULL, &crash),
			 0);
	ck_assert_int_eq(
		aq_redis_submit(c, "sleep", "500 inno", 8, NULL, &inno), 0);
	w = worker(opts);
	/* Once beside it, then maxdeliv = 2 times alone. */
	ck_assert_int_eq(respawn_until(crash, &w, opts), 3);
	ck_assert_int_eq(aq_future_get(crash, NULL, bound_ns()),
			 AQ_REDIS_E_CRASHED);
	/* The innocent job runs to its end and succeeds. */
	ck_assert(result_text(inno)[0] != '\0');
	ck_assert_int_eq(rs_log_count(logpath, "abort", "boom"), 3);
	ck_assert_int_eq(rs_int(&srv, "XLEN aq:{" QUEUE "}:dead"), 1);
	aq_future_release(crash);
	aq_future_release(inno);
	worker_term(w);
	aq_redis_client_destroy(c);
	assert_no_pending();
}
END_TEST

/* ---- prompt recovery after a crash --------------------------------------- */

/* Regression: a survivor reclaimed one suspect per tick (visibility / 4)
 * and fetched nothing while suspects waited, so the 12 jobs of a killed
 * worker came back one a tick, 12 ticks of a stalled queue. Now each
 * settled suspect is followed at once by the next reclaim. The times are
 * scaled with CK_TIMEOUT_MULTIPLIER: at any scale the old code needs at
 * least vis - tick + 11 ticks after the kill, past the bound. */
START_TEST(test_crash_recovery_is_prompt)
{
	enum { N = 12, M = 20 };
	const double scale = th_time_scale();
	const long vis = (long)(4000 * scale);
	const int64_t bound_ms = vis + (int64_t)(9000 * scale);
	char visopt[32], gate[320], text[N][400], ltext[M][16], bpid[24];
	const char *aopts[] = { "conc=12", visopt, NULL };
	const char *bopts[] = { "conc=4", visopt, NULL };
	aq_redis_client *c = client();
	aq_future *futs[N], *normal[M];
	int calls[N] = { 0 };
	int64_t killed, settled = -1, deadline;
	pid_t a, b;

	snprintf(visopt, sizeof(visopt), "vis=%ld", vis);
	snprintf(gate, sizeof(gate), "%s/gate", srv.dir);
	a = worker(aopts);
	for (int i = 0; i < N; i++) {
		char id[8];

		snprintf(id, sizeof(id), "s%d", i);
		snprintf(text[i], sizeof(text[i]), "%s %s", gate, id);
		ck_assert_int_eq(aq_redis_submit(c, "gate", text[i],
						 strlen(text[i]), NULL,
						 &futs[i]),
				 0);
		ck_assert_int_eq(
			aq_future_then(futs[i], count_call, &calls[i], NULL),
			0);
	}
	for (int i = 0; i < N; i++) {
		char id[8];

		snprintf(id, sizeof(id), "s%d", i);
		ck_assert(log_wait("start", id, 1)); /* all 12 held by a */
	}
	b = worker(bopts); /* the survivor, empty */
	ck_assert(log_wait("ready", "-", 2));
	snprintf(bpid, sizeof(bpid), "%ld", (long)b);
	kill(a, SIGKILL);
	killed = th_now_ns() / 1000000;
	ck_assert_int_eq(rs_wait(a), -SIGKILL);
	fclose(fopen(gate, "w")); /* reclaimed, they end at once */
	/* Normal work submitted while the suspects wait completes too. */
	ck_assert(log_wait("start", "s0", 2));
	for (int i = 0; i < M; i++) {
		snprintf(ltext[i], sizeof(ltext[i]), "n%d", i);
		ck_assert_int_eq(aq_redis_submit(c, "log", ltext[i],
						 strlen(ltext[i]), NULL,
						 &normal[i]),
				 0);
	}
	/* Bounded: twice the bound, polled every 10 ms. */
	deadline = killed + 2 * bound_ms;
	while (settled < 0 && th_now_ns() / 1000000 < deadline) {
		int done = 0;

		for (int i = 0; i < N; i++)
			done += aq_future_state(futs[i]) != AQ_STATE_PENDING;
		for (int i = 0; i < M; i++)
			done += aq_future_state(normal[i]) != AQ_STATE_PENDING;
		if (done == N + M)
			settled = th_now_ns() / 1000000;
		else
			th_sleep_ms(10);
	}
	ck_assert_msg(settled >= 0, "not all settled within %lld ms",
		      (long long)(2 * bound_ms));
	fprintf(stderr,
		"redis-sem: %d suspects and %d jobs settled %lld ms "
		"after the kill (visibility %ld ms, bound %lld ms)\n",
		N, M, (long long)(settled - killed), vis, (long long)bound_ms);
	ck_assert_msg(settled - killed < bound_ms,
		      "recovery took %lld ms, bound %lld ms",
		      (long long)(settled - killed), (long long)bound_ms);
	for (int i = 0; i < N; i++) {
		char id[8];

		snprintf(id, sizeof(id), "s%d", i);
		/* Ran on the survivor, once there: a's start and b's. */
		ck_assert_str_eq(result_text(futs[i]), bpid);
		ck_assert_int_eq(rs_log_count(logpath, "start", id), 2);
		ck_assert_int_eq(__atomic_load_n(&calls[i], __ATOMIC_SEQ_CST),
				 1);
		aq_future_release(futs[i]);
	}
	for (int i = 0; i < M; i++) {
		ck_assert_str_eq(result_text(normal[i]), ltext[i]);
		ck_assert_int_eq(rs_log_count(logpath, "run", ltext[i]), 1);
		aq_future_release(normal[i]);
	}
	worker_term(b);
	aq_redis_client_destroy(c);
	assert_no_pending();
	{
		char first[256];

		ck_assert_msg(leftover_keys(first, sizeof(first)) == 0,
			      "leftover key %s", first);
	}
}
END_TEST

Suite *redis_sem_suite(void)
{
	Suite *s = suite_create("redis-sem");
	TCase *tc = tcase_create("redis-sem");

	tcase_add_checked_fixture(tc, setup, teardown);
	tcase_set_timeout(tc, 120);
	ADD(tc, test_cancel_before_start);
	ADD(tc, test_cancel_running);
	ADD(tc, test_one_slot_holds_one_job);
	ADD(tc, test_crash_blames_the_job_alone);
	ADD(tc, test_heartbeat_covers_every_lease);
	ADD(tc, test_crash_recovery_is_prompt);
	suite_add_tcase(s, tc);
	return s;
}
