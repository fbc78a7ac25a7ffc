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

Suite *redis_sem_suite(void)
{
	Suite *s = suite_create("redis-sem");
	TCase *tc = tcase_create("redis-sem");

	tcase_add_checked_fixture(tc, setup, teardown);
	tcase_set_timeout(tc, 120);
	ADD(tc, test_heartbeat_covers_every_lease);
	suite_add_tcase(s, tc);
	return s;
}
