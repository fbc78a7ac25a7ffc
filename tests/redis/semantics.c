/* SPDX-License-Identifier: MIT */
/*
 * semantics.c - libasyncq-redis's finer promises against a real
 * redis-server: a cancel reaches Redis, a worker never holds more jobs
 * than its slots, a crash is blamed on the job that was alone on the
 * crashed worker, and heartbeats keep every lease however many are held.
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
			jobs[i].len = (size_t)snprintf(text[i], sizeof(text[i]),
						       "%s g%d", gate,
						       base + i);
			jobs[i].payload = text[i];
		}
		ck_assert_int_eq(aq_redis_submit_batch(c, jobs, B, NULL,
						       futs + base),
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
	char gate[320], p[400], cmd[300], line[128], order[8] = "";
	size_t len = 0;
	FILE *f;
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
		ck_assert_int_eq(aq_redis_submit(c, "gate", p, strlen(p), &o,
						 &futs[i]),
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
	f = fopen(logpath, "r");
	while (fgets(line, sizeof(line), f))
		if (strncmp(line, "start ", 6) == 0 && len + 1 < sizeof(order))
			order[len++] = line[6];
	order[len] = '\0';
	fclose(f);
	ck_assert_str_eq(order, "HNL");
	ck_assert(dead_has("malformed"));
	worker_term(w);
	aq_redis_client_destroy(c);
	assert_no_pending();
}
END_TEST

Suite *redis_sem_suite(void)
{
	Suite *s = suite_create("redis-sem");
	TCase *tc = tcase_create("redis-sem");

	tcase_add_checked_fixture(tc, setup, teardown);
	tcase_set_timeout(tc, 120);
	ADD(tc, test_one_slot_holds_one_job);
	ADD(tc, test_heartbeat_covers_every_lease);
	suite_add_tcase(s, tc);
	return s;
}
