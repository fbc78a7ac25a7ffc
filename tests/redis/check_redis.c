/* SPDX-License-Identifier: MIT */
/*
 * check_redis.c - libasyncq-redis against a real redis-server that each
 * test starts for itself (tests/redis/server.c) and worker processes
 * (tests/redis/aqr_worker.c): results, crashes, leases, restarts, dead
 * letters, back-off on the server's clock, drains, idempotency, leftovers.
 */
#include <errno.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include <check.h>

#include "asyncq_redis.h"
#include "helpers.h"
#include "fixture.h"
#include "redis/redis.h"
#include "server.h"

struct rs srv;
char logpath[400];

void setup(void)
{
	memset(&srv, 0, sizeof(srv));
	ck_assert_msg(rs_start(&srv), "redis-server did not start");
	snprintf(logpath, sizeof(logpath), "%s/jobs.log", srv.dir);
}

void teardown(void)
{
	char path[400], line[256];
	FILE *f;

	/* The workers' stderr: a sanitizer report there fails the test. */
	snprintf(path, sizeof(path), "%s/worker.out", srv.dir);
	f = fopen(path, "r");
	while (f && fgets(line, sizeof(line), f))
		ck_assert_msg(!strstr(line, "Sanitizer"), "worker: %s", line);
	if (f)
		fclose(f);
	rs_destroy(&srv);
}

struct aq_redis_conn conn(void)
{
	struct aq_redis_conn c = { .port = (unsigned)srv.port, .queue = QUEUE };

	return c;
}

aq_redis_client *client(void)
{
	struct aq_redis_conn c = conn();
	aq_redis_client *cl = NULL;

	ck_assert_int_eq(aq_redis_client_create(&cl, &c, 0), 0);
	return cl;
}

/* A worker process; opts are "key=value" strings, NULL-ended. */
pid_t worker(const char *const *opts)
{
	const char *all[16];
	char logopt[420];
	int n = 0;

	snprintf(logopt, sizeof(logopt), "log=%s", logpath);
	all[n++] = logopt;
	for (int i = 0; opts && opts[i] && n < 15; i++)
		all[n++] = opts[i];
	all[n] = NULL;
	return rs_worker(&srv, QUEUE, all);
}

void worker_term(pid_t pid)
{
	kill(pid, SIGTERM);
	ck_assert_int_eq(rs_wait(pid), 0);
}

/* The bound of any one wait: 60 s, scaled for sanitizers. */
int64_t bound_ns(void)
{
	return (int64_t)(60e9 * th_time_scale());
}

const char *result_text(aq_future *fut)
{
	struct aq_redis_result *res = NULL;
	int rc = aq_future_get(fut, (void **)&res, bound_ns());

	ck_assert_int_eq(rc, 0);
	return res->data;
}

static struct {
	const char *path;
	const char *event, *id;
	int n;
} log_want;

static bool log_reached(void *ctx)
{
	(void)ctx;
	return rs_log_count(log_want.path, log_want.event, log_want.id) >=
	       log_want.n;
}

/* Poll the job log until "event id" appears n times. */
bool log_wait(const char *event, const char *id, int n)
{
	log_want.path = logpath;
	log_want.event = event;
	log_want.id = id;
	log_want.n = n;
	return th_poll(log_reached, NULL);
}

/* The keys of the queue, minus its three (empty) streams. */
int leftover_keys(char *first, size_t size)
{
	redisReply *r = rs_cmd(&srv, "KEYS aq:*");
	int n = 0;

	ck_assert_ptr_nonnull(r);
	first[0] = '\0';
	for (size_t i = 0; i < r->elements; i++) {
		const char *k = r->element[i]->str;

		if (strcmp(k, "aq:{" QUEUE "}:s0") == 0 ||
		    strcmp(k, "aq:{" QUEUE "}:s1") == 0 ||
		    strcmp(k, "aq:{" QUEUE "}:s2") == 0) {
			ck_assert_int_eq(rs_int(&srv, "XLEN %s", k), 0);
			continue;
		}
		if (!n)
			snprintf(first, size, "%s", k);
		n++;
	}
	freeReplyObject(r);
	return n;
}

void assert_no_pending(void)
{
	for (int s = 0; s < 3; s++) {
		redisReply *r = rs_cmd(&srv, "XPENDING aq:{" QUEUE "}:s%d aq",
				       s);

		ck_assert_ptr_nonnull(r);
		ck_assert_int_eq(r->type, REDIS_REPLY_ARRAY);
		ck_assert_int_eq(r->element[0]->integer, 0);
		freeReplyObject(r);
	}
}

/* ---- basics -------------------------------------------------------------- */

START_TEST(test_add_and_binary_echo)
{
	aq_redis_client *c = client();
	pid_t w = worker(NULL);
	aq_future *f1, *f2, *f3;
	static const char bin[] = { 'a', 0, 'b', '\xff', 0, '\n' };
	struct aq_redis_result *res;
	struct aq_redis_stats st;
	char big[64];

	ck_assert_int_eq(aq_redis_submit(c, "add", "3 4", 3, NULL, &f1), 0);
	ck_assert_int_eq(aq_redis_submit(c, "echo", bin, sizeof(bin), NULL,
					 &f2),
			 0);
	ck_assert_int_eq(aq_redis_submit(c, "echo", NULL, 0, NULL, &f3), 0);
	ck_assert_str_eq(result_text(f1), "7");
	ck_assert_int_eq(aq_future_get(f2, (void **)&res, bound_ns()), 0);
	ck_assert_uint_eq(res->len, sizeof(bin));
	ck_assert_int_eq(memcmp(res->data, bin, sizeof(bin)), 0);
	ck_assert_int_eq(aq_future_get(f3, (void **)&res, bound_ns()), 0);
	ck_assert_uint_eq(res->len, 0);
	ck_assert_int_eq(aq_future_state(f1), AQ_STATE_SUCCEEDED);
	aq_future_release(f1);
	aq_future_release(f2);
	aq_future_release(f3);
	ck_assert_int_eq(aq_redis_client_stats(c, &st), 0);
	ck_assert_uint_eq(st.submitted, 3);
	ck_assert_uint_eq(st.resolved, 3);
	ck_assert_uint_eq(st.pending, 0);
	/* Above the maximum: refused at submit. */
	{
		struct aq_redis_conn small = conn();
		aq_redis_client *c2;

		small.max_payload = 16;
		ck_assert_int_eq(aq_redis_client_create(&c2, &small, 0), 0);
		memset(big, 'x', sizeof(big));
		ck_assert_int_eq(aq_redis_submit(c2, "echo", big, 17, NULL,
						 &f1),
				 -EMSGSIZE);
		aq_redis_client_destroy(c2);
	}
	worker_term(w);
	aq_redis_client_destroy(c);
}
END_TEST

START_TEST(test_bad_input)
{
	struct aq_redis_conn bad = conn();
	struct aq_redis_job_opts o = { 0 };
	struct aq_redis_worker_config wc = { 0 };
	aq_redis_client *c = client();
	aq_redis_worker *w = (aq_redis_worker *)&bad;
	aq_future *f = NULL;

	ck_assert_int_eq(aq_redis_client_create(NULL, &bad, 0), -EINVAL);
	ck_assert_int_eq(aq_redis_client_create(&c, &bad, 1), -EINVAL);
	bad.queue = "a{b";
	ck_assert_int_eq(aq_redis_client_create(&c, &bad, 0), -EINVAL);
	bad = conn();
	bad.user = "u"; /* a user without a password */
	ck_assert_int_eq(aq_redis_client_create(&c, &bad, 0), -EINVAL);
	ck_assert_int_eq(aq_redis_submit(NULL, "add", "1 1", 3, NULL, &f),
			 -EINVAL);
	ck_assert_int_eq(aq_redis_submit(c, NULL, "1 1", 3, NULL, &f), -EINVAL);
	ck_assert_int_eq(aq_redis_submit(c, "", "1 1", 3, NULL, &f), -EINVAL);
	ck_assert_int_eq(aq_redis_submit(c, "add", NULL, 3, NULL, &f), -EINVAL);
	o.priority = 2;
	ck_assert_int_eq(aq_redis_submit(c, "add", "1 1", 3, &o, &f), -EINVAL);
	o.priority = 0;
	o.delay_ms = -1;
	ck_assert_int_eq(aq_redis_submit(c, "add", "1 1", 3, &o, &f), -EINVAL);
	o.delay_ms = 0;
	o.idempotency_key = "";
	ck_assert_int_eq(aq_redis_submit(c, "add", "1 1", 3, &o, &f), -EINVAL);
	ck_assert_ptr_null(f);
	ck_assert_int_eq(aq_redis_submit_batch(c, NULL, 1, NULL, NULL),
			 -EINVAL);
	ck_assert_int_eq(aq_redis_submit_batch(c, NULL, 0, NULL, NULL), 0);
	ck_assert_int_eq(aq_redis_worker_create(NULL, &bad, &wc), -EINVAL);
	ck_assert_int_eq(aq_redis_worker_create(&w, &bad, NULL), -EINVAL);
	wc.ntypes = 1; /* types NULL */
	ck_assert_int_eq(aq_redis_worker_create(&w, &bad, &wc), -EINVAL);
	ck_assert_int_eq(aq_redis_worker_stop(NULL, 0), -EINVAL);
	ck_assert_int_eq(aq_redis_worker_stats(NULL, NULL), -EINVAL);
	ck_assert_int_eq(aq_redis_client_stats(c, NULL), -EINVAL);
	aq_redis_client_destroy(NULL);
	aq_redis_worker_destroy(NULL);
	aq_redis_client_destroy(c);
}
END_TEST

/* Unreachable: a clear code at create, and at submit once it went away. */
START_TEST(test_unreachable)
{
	struct aq_redis_conn c = conn();
	aq_redis_client *cl;
	aq_future *f = NULL;
	int rc;

	c.port = (unsigned)srv.port;
	cl = client();
	rs_stop(&srv);
	rc = aq_redis_submit(cl, "add", "1 2", 3, NULL, &f);
	ck_assert_msg(rc == -ENOTCONN || rc == -ECONNRESET, "rc %d", rc);
	ck_assert_int_eq(aq_redis_submit(cl, "add", "1 2", 3, NULL, &f),
			 -ENOTCONN);
	ck_assert_ptr_null(f);
	aq_redis_client_destroy(cl);
	ck_assert_int_eq(aq_redis_client_create(&cl, &c, 0), -ECONNREFUSED);
	c.unix_path = "/nonexistent/redis.sock";
	ck_assert_int_eq(aq_redis_client_create(&cl, &c, 0), -ECONNREFUSED);
}
END_TEST

/* AUTH with a password, an ACL user, and a Unix socket. */
START_TEST(test_auth_acl_unix)
{
	struct aq_redis_conn c = conn();
	aq_redis_client *cl;
	aq_future *f;
	redisReply *r;
	pid_t w;
	const char *wopts[] = { "pass=sesame", NULL };
	const char *uopts[] = { "user=jobs", "pass=pw2", NULL };

	rs_destroy(&srv);
	memset(&srv, 0, sizeof(srv));
	srv.extra[0] = "--requirepass";
	srv.extra[1] = "sesame";
	ck_assert(rs_start(&srv));
	snprintf(logpath, sizeof(logpath), "%s/jobs.log", srv.dir);
	c = conn();
	ck_assert_int_eq(aq_redis_client_create(&cl, &c, 0), -EACCES);
	c.password = "wrong";
	ck_assert_int_eq(aq_redis_client_create(&cl, &c, 0), -EACCES);
	c.password = "sesame";
	c.unix_path = srv.sock;
	ck_assert_int_eq(aq_redis_client_create(&cl, &c, 0), 0);
	w = worker(wopts);
	ck_assert_int_eq(aq_redis_submit(cl, "add", "20 22", 5, NULL, &f), 0);
	ck_assert_str_eq(result_text(f), "42");
	aq_future_release(f);
	worker_term(w);
	aq_redis_client_destroy(cl);
	/* An ACL user with a password of its own. */
	r = rs_cmd(&srv, "ACL SETUSER jobs on >pw2 ~* &* +@all");
	ck_assert_ptr_nonnull(r);
	ck_assert_int_eq(r->type, REDIS_REPLY_STATUS);
	freeReplyObject(r);
	c = conn();
	c.user = "jobs";
	c.password = "pw2";
	ck_assert_int_eq(aq_redis_client_create(&cl, &c, 0), 0);
	w = worker(uopts);
	ck_assert_int_eq(aq_redis_submit(cl, "add", "1 2", 3, NULL, &f), 0);
	ck_assert_str_eq(result_text(f), "3");
	aq_future_release(f);
	worker_term(w);
	aq_redis_client_destroy(cl);
}
END_TEST

/* ---- many jobs, many workers ------------------------------------------------ */

#define BATCH 500

/* n add jobs through nworkers processes; every future right; then no
 * leftovers in Redis once the workers left. */
static void run_many(unsigned n, int nworkers)
{
	const char *wopts[] = { "conc=16", NULL };
	aq_redis_client *c;
	pid_t w[8];
	unsigned wrong = 0;
	char first[256];
	struct aq_redis_stats st;

	for (int i = 0; i < nworkers; i++)
		w[i] = worker(wopts);
	c = client();
	for (unsigned base = 0; base < n; base += BATCH) {
		struct aq_redis_job jobs[BATCH];
		aq_future *futs[BATCH];
		char text[BATCH][32];
		unsigned k = n - base < BATCH ? n - base : BATCH;

		for (unsigned i = 0; i < k; i++) {
			jobs[i].type = "add";
			jobs[i].len = (size_t)snprintf(text[i], 32, "%u %u",
						       base + i, 7 * (base + i));
			jobs[i].payload = text[i];
		}
		ck_assert_int_eq(aq_redis_submit_batch(c, jobs, k, NULL, futs),
				 (int)k);
		for (unsigned i = 0; i < k; i++) {
			if (strtoul(result_text(futs[i]), NULL, 10) !=
			    8ul * (base + i))
				wrong++;
			aq_future_release(futs[i]);
		}
	}
	ck_assert_uint_eq(wrong, 0);
	ck_assert_int_eq(aq_redis_client_stats(c, &st), 0);
	ck_assert_uint_eq(st.resolved, n);
	ck_assert_uint_eq(st.lag, 0);
	ck_assert_uint_eq(st.pending, 0);
	ck_assert_uint_eq(st.delayed, 0);
	aq_redis_client_destroy(c);
	for (int i = 0; i < nworkers; i++)
		worker_term(w[i]);
	assert_no_pending();
	ck_assert_msg(leftover_keys(first, sizeof(first)) == 0,
		      "leftover key %s", first);
}

START_TEST(test_10000_jobs_3_workers)
{
	run_many(10000, 3);
}
END_TEST

START_TEST(test_100000_jobs_no_leftovers)
{
	/* Sanitizer builds are ~10x slower: the same test, fewer jobs. */
	run_many(th_time_scale() > 1 ? 20000 : 100000, 3);
}
END_TEST

/* ---- crashes, leases, fencing ------------------------------------------------ */

/* kill -9 a worker mid-run: every job done, and only jobs that were in
 * flight on the killed worker ran twice. */
START_TEST(test_kill9_mid_run)
{
	const char *fast[] = { "conc=4", "vis=1000", "hb=200", NULL };
	enum { N = 120 };
	aq_redis_client *c = client();
	aq_future *futs[N];
	pid_t a = worker(fast), b;
	char id[32], payload[48], killed[24];
	int twice = 0;

	for (int i = 0; i < N; i++) {
		snprintf(payload, sizeof(payload), "30 j%d", i);
		ck_assert_int_eq(aq_redis_submit(c, "sleep", payload,
						 strlen(payload), NULL,
						 &futs[i]),
				 0);
	}
	ck_assert(log_wait("end", "j8", 1)); /* a is well under way */
	kill(a, SIGKILL);
	ck_assert_int_eq(rs_wait(a), -SIGKILL);
	snprintf(killed, sizeof(killed), "%ld", (long)a);
	b = worker(fast);
	for (int i = 0; i < N; i++) {
		/* From a only if a finished it before it died. */
		snprintf(id, sizeof(id), "j%d", i);
		if (strcmp(result_text(futs[i]), killed) == 0)
			ck_assert_int_ge(rs_log_count(logpath, "end", id), 1);
		aq_future_release(futs[i]);
	}
	for (int i = 0; i < N; i++) {
		char want[64], line[128];
		FILE *f = fopen(logpath, "r");
		int starts = 0, ends_on_a = 0, starts_on_a = 0;

		snprintf(id, sizeof(id), "j%d", i);
		snprintf(want, sizeof(want), "start %s ", id);
		while (fgets(line, sizeof(line), f)) {
			bool on_a = strtol(strrchr(line, ' ') + 1, NULL, 10) ==
				    a;

			if (strncmp(line, want, strlen(want)) == 0) {
				starts++;
				starts_on_a += on_a;
			} else if (strncmp(line, "end ", 4) == 0 &&
				   strncmp(line + 4, id, strlen(id)) == 0 &&
				   line[4 + strlen(id)] == ' ') {
				ends_on_a += on_a;
			}
		}
		fclose(f);
		ck_assert_int_ge(starts, 1);
		if (starts > 1) {
			/* A duplicate: it was in flight on a when a died
			 * (running, or finished but not yet acknowledged). */
			ck_assert_int_eq(starts, 2);
			ck_assert_int_eq(starts_on_a, 1);
			ck_assert_int_le(ends_on_a, 1);
			twice++;
		}
	}
	ck_assert_int_le(twice, 4); /* a held at most conc = 4 */
	worker_term(b);
	aq_redis_client_destroy(c);
	assert_no_pending();
}
END_TEST

/* A job five times longer than the visibility timeout, with two workers
 * watching: heartbeats keep it, it runs once. */
START_TEST(test_long_job_runs_once)
{
	const char *opts[] = { "conc=2", "vis=500", "hb=100", NULL };
	aq_redis_client *c = client();
	pid_t a = worker(opts), b = worker(opts);
	aq_future *f;

	ck_assert_int_eq(aq_redis_submit(c, "sleep", "2500 long", 9, NULL, &f),
			 0);
	ck_assert(result_text(f)[0] != '\0');
	aq_future_release(f);
	ck_assert_int_eq(rs_log_count(logpath, "start", "long"), 1);
	worker_term(a);
	worker_term(b);
	aq_redis_client_destroy(c);
}
END_TEST

/* SIGSTOP past the lease: another worker takes the job and its outcome
 * is the one delivered; the paused worker's late completion is fenced. */
START_TEST(test_sigstop_fenced)
{
	const char *opts[] = { "conc=1", "vis=400", "hb=100", NULL };
	aq_redis_client *c = client();
	pid_t a = worker(opts), b;
	aq_future *f;
	char apid[24], want[48];

	ck_assert_int_eq(aq_redis_submit(c, "sleep", "1500 st", 7, NULL, &f),
			 0);
	ck_assert(log_wait("start", "st", 1));
	kill(a, SIGSTOP);
	b = worker(opts);
	snprintf(apid, sizeof(apid), "%ld", (long)a);
	ck_assert_str_ne(result_text(f), apid); /* b's outcome */
	kill(a, SIGCONT);
	ck_assert(log_wait("end", "st", 2)); /* a finished too, late */
	worker_term(a);
	snprintf(want, sizeof(want), "h0-f1-c0");
	ck_assert_int_eq(rs_log_count(logpath, "stats", want), 1);
	worker_term(b);
	aq_future_release(f);
	aq_redis_client_destroy(c);
	assert_no_pending();
}
END_TEST

/* Redis restarted mid-run: nothing accepted is lost; clients and workers
 * reconnect. */
START_TEST(test_redis_restart)
{
	const char *opts[] = { "conc=8", "vis=2000", "hb=300", NULL };
	enum { N = 600 };
	aq_redis_client *c = client();
	pid_t a = worker(opts), b = worker(opts);
	aq_future *futs[N] = { 0 };
	char payload[32];
	int accepted = 0;

	for (int i = 0; i < N; i++) {
		int rc, tries = 0;

		if (i == N / 2) {
			rs_stop(&srv);
			ck_assert(rs_start(&srv));
		}
		snprintf(payload, sizeof(payload), "2 r%d", i);
		/* While Redis is away: refused, clearly; try again. */
		while ((rc = aq_redis_submit(c, "sleep", payload,
					     strlen(payload), NULL,
					     &futs[i])) != 0 &&
		       tries++ < 1000) {
			ck_assert_msg(rc == -ENOTCONN || rc == -ECONNRESET,
				      "rc %d", rc);
			th_sleep_ms(10);
		}
		ck_assert_int_eq(rc, 0);
		accepted++;
	}
	for (int i = 0; i < N; i++) {
		ck_assert(result_text(futs[i])[0] != '\0');
		aq_future_release(futs[i]);
	}
	ck_assert_int_eq(accepted, N);
	worker_term(a);
	worker_term(b);
	aq_redis_client_destroy(c);
	assert_no_pending();
}
END_TEST

/* ---- dead letters ------------------------------------------------------------ */

bool dead_has(const char *reason)
{
	redisReply *r = rs_cmd(&srv, "XRANGE aq:{" QUEUE "}:dead - +");
	bool found = false;

	for (size_t i = 0; r && i < r->elements; i++) {
		const redisReply *f = r->element[i]->element[1];

		for (size_t k = 0; k + 1 < f->elements; k += 2)
			if (!strcmp(f->element[k]->str, "reason") &&
			    !strcmp(f->element[k + 1]->str, reason))
				found = true;
	}
	if (r)
		freeReplyObject(r);
	return found;
}

/* The first letter of the id of each "event id" line of the job log, in
 * order, into out (size bytes); returns out. */
const char *log_order(const char *event, char *out, size_t size)
{
	size_t len = 0, elen = strlen(event);
	char line[128];
	FILE *f = fopen(logpath, "r");

	ck_assert_ptr_nonnull(f);
	while (fgets(line, sizeof(line), f))
		if (strncmp(line, event, elen) == 0 && line[elen] == ' ' &&
		    len + 1 < size)
			out[len++] = line[elen + 1];
	out[len] = '\0';
	fclose(f);
	return out;
}

/* A job that calls abort() takes its worker down: start another, a
 * bounded number of times, until fut resolves (it is dead-lettered).
 * *w is the worker now; returns how many were started. */
int respawn_until(aq_future *fut, pid_t *w, const char *const *opts)
{
	int respawns = 0;

	for (int polls = 0; aq_future_get(fut, NULL, 0) == -ETIMEDOUT &&
			    respawns < 10 && polls < 60000;
	     polls++) {
		int st;

		if (waitpid(*w, &st, WNOHANG) != *w) {
			th_sleep_ms(1);
			continue;
		}
		ck_assert(WIFSIGNALED(st) && WTERMSIG(st) == SIGABRT);
		respawns++;
		*w = worker(opts);
	}
	return respawns;
}

START_TEST(test_dead_letters)
{
	/* One slot, so the jobs before the abort are settled when it runs
	 * (tests/redis/semantics.c shares a worker with it). */
	const char *opts[] = { "conc=1", "vis=300", "hb=100", "maxdeliv=2",
			       NULL };
	aq_redis_client *c = client();
	aq_future *unknown, *undecodable, *crash, *ok;
	struct aq_error err;
	char cmd[300];
	pid_t w;

	/* Malformed entries, written by hand. */
	snprintf(cmd, sizeof(cmd),
		 "redis-cli -p %d XADD 'aq:{" QUEUE "}:s1' '*' foo bar "
		 ">/dev/null && redis-cli -p %d XADD 'aq:{" QUEUE
		 "}:s0' '*' j nosuchjob >/dev/null",
		 srv.port, srv.port);
	ck_assert_int_eq(system(cmd), 0);
	ck_assert_int_eq(aq_redis_submit(c, "nope", "x", 1, NULL, &unknown), 0);
	ck_assert_int_eq(aq_redis_submit(c, "strict", "bad", 3, NULL,
					 &undecodable),
			 0);
	ck_assert_int_eq(aq_redis_submit(c, "abort", "boom", 4, NULL, &crash),
			 0);
	w = worker(opts);
	/* A first crash as fetched, then maxdeliv = 2 alone (a reclaimed
	 * job runs alone; only those crashes count). */
	ck_assert_int_eq(respawn_until(crash, &w, opts), 3);
	ck_assert_int_eq(aq_redis_submit(c, "strict", "ok!", 3, NULL, &ok), 0);
	ck_assert_int_eq(aq_future_get(crash, NULL, bound_ns()),
			 AQ_REDIS_E_CRASHED);
	ck_assert_int_eq(aq_future_get(unknown, NULL, bound_ns()),
			 AQ_REDIS_E_UNKNOWN_TYPE);
	ck_assert_int_eq(aq_future_error(unknown, &err), 0);
	ck_assert_ptr_nonnull(strstr(err.message, "unknown_type"));
	ck_assert_int_eq(aq_future_get(undecodable, NULL, bound_ns()),
			 AQ_REDIS_E_UNDECODABLE);
	ck_assert_str_eq(result_text(ok), "strict");
	ck_assert_int_eq(rs_log_count(logpath, "abort", "boom"), 3);
	ck_assert(dead_has("malformed"));
	ck_assert(dead_has("unknown_type"));
	ck_assert(dead_has("undecodable"));
	ck_assert(dead_has("crashed"));
	ck_assert_int_eq(rs_int(&srv, "XLEN aq:{" QUEUE "}:dead"), 5);
	worker_term(w);
	aq_future_release(unknown);
	aq_future_release(undecodable);
	aq_future_release(crash);
	aq_future_release(ok);
	aq_redis_client_destroy(c);
	assert_no_pending();
}
END_TEST

/* A payload the client accepts but the worker's maximum refuses: dead
 * letter, never run; and a result above it likewise. */
START_TEST(test_too_large_at_worker)
{
	const char *opts[] = { "maxpay=40", NULL };
	aq_redis_client *c = client();
	aq_future *big, *small, *bigres;
	char payload[64];
	pid_t w;

	memset(payload, 'x', sizeof(payload));
	memcpy(payload, "ok", 2);
	ck_assert_int_eq(aq_redis_submit(c, "echo", payload, 41, NULL, &big),
			 0);
	ck_assert_int_eq(aq_redis_submit(c, "strict", payload, 30, NULL,
					 &small),
			 0);
	w = worker(opts);
	ck_assert_int_eq(aq_future_get(big, NULL, bound_ns()),
			 AQ_REDIS_E_TOO_LARGE);
	ck_assert_str_eq(result_text(small), "strict");
	ck_assert(dead_has("too_large"));
	worker_term(w);
	/* The result side: 30 bytes in, 60 out of a worker allowing 40. */
	w = worker(opts);
	ck_assert_int_eq(aq_redis_submit(c, "dup", payload, 30, NULL, &bigres),
			 0);
	ck_assert_int_eq(aq_future_get(bigres, NULL, bound_ns()),
			 AQ_REDIS_E_TOO_LARGE);
	ck_assert_int_eq(rs_int(&srv, "XLEN aq:{" QUEUE "}:dead"), 2);
	aq_future_release(bigres);
	aq_future_release(big);
	aq_future_release(small);
	worker_term(w);
	aq_redis_client_destroy(c);
	assert_no_pending();
}
END_TEST

/* ---- time: back-off, delay, deadline, on the server's clock ------------- */

static bool job_attempt_reached(void *ctx)
{
	const char *want = ctx;

	return rs_int(&srv, "HGET aq:{" QUEUE "}:j:%s a", want + 2) ==
	       want[0] - '0';
}

START_TEST(test_backoff_server_clock)
{
	struct aq_redis_job_opts o = { .max_attempts = 3, .backoff_ms = 400,
				       .backoff_factor = 3 };
	aq_redis_client *c = client();
	aq_future *f;
	struct aq_error err;
	redisReply *r;
	char id[128], key[200], want[140];
	long long due, fa;
	pid_t w;

	ck_assert_int_eq(aq_redis_submit(c, "fail", "bf", 2, &o, &f), 0);
	r = rs_cmd(&srv, "KEYS aq:{" QUEUE "}:j:*");
	ck_assert_int_eq(r->elements, 1);
	snprintf(key, sizeof(key), "%s", r->element[0]->str);
	snprintf(id, sizeof(id), "%s", strrchr(key, ':') + 1);
	freeReplyObject(r);
	w = worker(NULL);
	for (int attempt = 2; attempt <= 3; attempt++) {
		snprintf(want, sizeof(want), "%d:%s", attempt, id);
		ck_assert(th_poll(job_attempt_reached, want));
		fa = rs_int(&srv, "HGET %s fa", key);
		due = rs_int(&srv, "HGET %s due", key);
		/* Exactly base * factor^(n-1), on the server's clock. */
		ck_assert_int_eq(due - fa, attempt == 2 ? 400 : 1200);
		ck_assert_int_eq(rs_int(&srv, "ZSCORE aq:{" QUEUE "}:d %s", id),
				 due);
	}
	ck_assert_int_eq(aq_future_get(f, NULL, bound_ns()), 7);
	ck_assert_int_eq(aq_future_error(f, &err), 0);
	ck_assert_ptr_nonnull(strstr(err.message, "failed 3 times"));
	ck_assert_ptr_nonnull(strstr(err.message, "flaky"));
	ck_assert_int_eq(rs_log_count(logpath, "fail", "bf"), 3);
	ck_assert(dead_has("failed"));
	aq_future_release(f);
	worker_term(w);
	aq_redis_client_destroy(c);
}
END_TEST

static long long deadline_at;

static bool server_past(void *ctx)
{
	(void)ctx;
	return rs_time_ms(&srv) > deadline_at;
}

START_TEST(test_delay_and_deadline)
{
	struct aq_redis_job_opts delayed = { .delay_ms = 300 };
	struct aq_redis_job_opts dl = { .deadline_ms = 50 };
	aq_redis_client *c = client();
	aq_future *fd, *fx;
	redisReply *r;
	long long t0;
	pid_t w;

	ck_assert_int_eq(aq_redis_submit(c, "log", "late", 4, &delayed, &fd),
			 0);
	r = rs_cmd(&srv, "ZRANGE aq:{" QUEUE "}:d 0 -1 WITHSCORES");
	ck_assert_int_eq(r->elements, 2);
	t0 = rs_int(&srv, "HGET aq:{" QUEUE "}:j:%s t0", r->element[0]->str);
	ck_assert_int_eq(strtoll(r->element[1]->str, NULL, 10) - t0, 300);
	freeReplyObject(r);
	ck_assert_int_eq(aq_redis_submit(c, "log", "expired", 7, &dl, &fx), 0);
	deadline_at = rs_time_ms(&srv) + 60;
	ck_assert(th_poll(server_past, NULL)); /* the server's clock moved */
	w = worker(NULL);
	ck_assert_int_eq(aq_future_get(fx, NULL, bound_ns()), -ETIME);
	ck_assert_int_eq(aq_future_state(fx), AQ_STATE_EXPIRED);
	ck_assert_str_eq(result_text(fd), "late");
	ck_assert_int_eq(rs_log_count(logpath, "run", "expired"), 0);
	aq_future_release(fd);
	aq_future_release(fx);
	worker_term(w);
	aq_redis_client_destroy(c);
}
END_TEST

/* High before normal before low, with one slot. */
START_TEST(test_priority)
{
	const char *opts[] = { "conc=1", NULL };
	static const int prio[3] = { AQ_REDIS_PRIO_LOW, AQ_REDIS_PRIO_HIGH,
				     AQ_REDIS_PRIO_NORMAL };
	static const char *const name[3] = { "L", "H", "N" };
	aq_redis_client *c = client();
	aq_future *futs[9];
	char order[16];
	pid_t w;

	for (int i = 0; i < 9; i++) {
		struct aq_redis_job_opts o = { .priority = prio[i / 3] };
		char p[8];

		snprintf(p, sizeof(p), "%s%d", name[i / 3], i % 3);
		ck_assert_int_eq(aq_redis_submit(c, "log", p, strlen(p), &o,
						 &futs[i]),
				 0);
	}
	w = worker(opts);
	for (int i = 0; i < 9; i++) {
		result_text(futs[i]);
		aq_future_release(futs[i]);
	}
	ck_assert_str_eq(log_order("run", order, sizeof(order)), "HHHNNNLLL");
	worker_term(w);
	aq_redis_client_destroy(c);
}
END_TEST

/* ---- stop, idempotency, fire and forget ---------------------------------- */

START_TEST(test_sigterm_drain)
{
	const char *opts[] = { "conc=4", NULL };
	const char *quick[] = { "conc=4", "drain=100", NULL };
	aq_redis_client *c = client();
	aq_future *futs[8], *lng;
	pid_t a = worker(opts), b;
	char p[16], apid[24];

	for (int i = 0; i < 8; i++) {
		snprintf(p, sizeof(p), "400 d%d", i);
		ck_assert_int_eq(aq_redis_submit(c, "sleep", p, strlen(p), NULL,
						 &futs[i]),
				 0);
	}
	ck_assert(log_wait("start", "d3", 1));
	/* It holds no more than its four slots, whatever is queued. */
	{
		redisReply *r = rs_cmd(&srv, "XPENDING aq:{" QUEUE "}:s1 aq");

		ck_assert_int_ge(r->element[0]->integer, 1);
		ck_assert_int_le(r->element[0]->integer, 4);
		freeReplyObject(r);
	}
	worker_term(a); /* drains the four it runs, takes nothing more */
	ck_assert_int_eq(rs_log_count(logpath, "stats", "h0-f0-c4"), 1);
	b = worker(opts);
	for (int i = 0; i < 8; i++) {
		snprintf(p, sizeof(p), "d%d", i);
		result_text(futs[i]);
		ck_assert_int_eq(rs_log_count(logpath, "start", p), 1);
		aq_future_release(futs[i]);
	}
	worker_term(b);
	/* Drain time up: the unfinished job is handed back and another
	 * worker (visibility 30 s: no reclaim) takes it at once. */
	a = worker(quick);
	ck_assert_int_eq(aq_redis_submit(c, "sleep", "1500 hb", 7, NULL, &lng),
			 0);
	ck_assert(log_wait("start", "hb", 1));
	kill(a, SIGTERM);
	b = worker(opts);
	snprintf(apid, sizeof(apid), "%ld", (long)a);
	ck_assert_str_ne(result_text(lng), apid);
	ck_assert_int_eq(rs_wait(a), 0);
	ck_assert_int_eq(rs_log_count(logpath, "stats", "h1-f0-c0"), 1);
	aq_future_release(lng);
	worker_term(b);
	aq_redis_client_destroy(c);
	assert_no_pending();
}
END_TEST

START_TEST(test_idempotency_key)
{
	struct aq_redis_job_opts o = { .idempotency_key = "order-17" };
	aq_redis_client *c = client(), *c2 = client();
	aq_future *f1, *f2, *f3, *f4;
	struct aq_redis_stats st;
	pid_t w;

	ck_assert_int_eq(aq_redis_submit(c, "log", "once", 4, &o, &f1), 0);
	ck_assert_int_eq(aq_redis_submit(c, "log", "twice", 5, &o, &f2), 0);
	ck_assert_int_eq(aq_redis_submit(c2, "log", "thrice", 6, &o, &f3), 0);
	w = worker(NULL);
	ck_assert_str_eq(result_text(f1), "once");
	ck_assert_str_eq(result_text(f2), "once");
	ck_assert_str_eq(result_text(f3), "once");
	/* After it finished: answered from the kept outcome, nothing run. */
	ck_assert_int_eq(aq_redis_submit(c, "log", "again", 5, &o, &f4), 0);
	ck_assert_int_eq(aq_future_state(f4), AQ_STATE_SUCCEEDED);
	ck_assert_str_eq(result_text(f4), "once");
	ck_assert_int_eq(rs_log_count(logpath, "run", "once"), 1);
	ck_assert_int_eq(rs_log_count(logpath, "run", "twice"), 0);
	ck_assert_int_eq(rs_log_count(logpath, "run", "thrice"), 0);
	ck_assert_int_eq(aq_redis_client_stats(c, &st), 0);
	ck_assert_uint_eq(st.duplicates, 2);
	/* The outcome and the key stay within their TTL, nothing else. */
	ck_assert_int_gt(rs_int(&srv, "PTTL aq:{" QUEUE "}:k:order-17"), 0);
	aq_future_release(f1);
	aq_future_release(f2);
	aq_future_release(f3);
	aq_future_release(f4);
	worker_term(w);
	aq_redis_client_destroy(c);
	aq_redis_client_destroy(c2);
}
END_TEST

START_TEST(test_fire_and_forget)
{
	aq_redis_client *c = client();
	struct aq_redis_job jobs[3] = { { "log", "ff0", 3 },
					{ "log", "ff1", 3 },
					{ "log", "ff2", 3 } };
	char first[256];
	pid_t w = worker(NULL);

	ck_assert_int_eq(aq_redis_submit(c, "log", "ff", 2, NULL, NULL), 0);
	ck_assert_int_eq(aq_redis_submit_batch(c, jobs, 3, NULL, NULL), 3);
	ck_assert(log_wait("run", "ff", 1));
	ck_assert(log_wait("run", "ff2", 1));
	worker_term(w);
	aq_redis_client_destroy(c);
	assert_no_pending();
	ck_assert_msg(leftover_keys(first, sizeof(first)) == 0,
		      "leftover key %s", first);
}
END_TEST

/* ---- batches ---------------------------------------------------------------- */

#define rs_cmd_free(s, ...)                                                   \
	do {                                                                 \
		redisReply *r_ = rs_cmd(s, __VA_ARGS__);                     \
		ck_assert_ptr_nonnull(r_);                                   \
		ck_assert_msg(r_->type != REDIS_REPLY_ERROR, "%s", r_->str); \
		freeReplyObject(r_);                                         \
	} while (0)

/* The FINISH script run by hand as consumer, for n (entry, job) pairs
 * of stream s1, all with outcome o (s: succeeded with the value "v<i>"),
 * each with its job's reply stream as a fetch would have returned it;
 * its reply. */
static redisReply *finish_outcome(const char *consumer, const char *o,
				  unsigned n, char eids[][48], char ids[][48])
{
	const char *argv[16 + 8 * 10];
	size_t lens[16 + 8 * 10];
	char vals[8][8], rts[8][AQR_PREFIX_MAX + 32];
	size_t size = aqr_script_text(AQR_FINISH, NULL, 0);
	char *text = malloc(size);
	redisContext *ctx = redisConnect("127.0.0.1", srv.port);
	redisReply *r;
	int k = 0;

	ck_assert_ptr_nonnull(text);
	ck_assert(ctx && !ctx->err);
	ck_assert_uint_le(n, 8);
	aqr_script_text(AQR_FINISH, text, size);
	argv[k++] = "EVAL";
	argv[k++] = text;
	argv[k++] = "0";
	argv[k++] = "aq:{" QUEUE "}:";
	argv[k++] = "aq";
	argv[k++] = consumer;
	argv[k++] = "100";
	argv[k++] = "3";
	argv[k++] = "1048576";
	for (unsigned i = 0; i < n; i++) {
		snprintf(vals[i], sizeof(vals[i]), "v%u", i);
		argv[k++] = "1";
		argv[k++] = eids[i];
		argv[k++] = ids[i];
		argv[k++] = o;
		argv[k++] = "0";
		argv[k++] = vals[i];
		argv[k++] = "";
		argv[k++] = "";
		r = rs_cmd(&srv, "HGET aq:{" QUEUE "}:j:%s rt", ids[i]);
		ck_assert_ptr_nonnull(r);
		snprintf(rts[i], sizeof(rts[i]), "%s", r->str ? r->str : "");
		freeReplyObject(r);
		argv[k++] = rts[i];
		argv[k++] = "0";
	}
	for (int i = 0; i < k; i++)
		lens[i] = strlen(argv[i]);
	r = redisCommandArgv(ctx, k, argv, lens);
	ck_assert_ptr_nonnull(r);
	redisFree(ctx);
	free(text);
	return r;
}

static redisReply *finish_as(const char *consumer, unsigned n,
			     char eids[][48], char ids[][48])
{
	return finish_outcome(consumer, "s", n, eids, ids);
}

/* Deliver the next n entries of stream s1 to consumer; their entry and
 * job ids. */
static void deliver(const char *consumer, unsigned n, char eids[][48],
		    char ids[][48])
{
	redisReply *r = rs_cmd(&srv, "XREADGROUP GROUP aq %s COUNT %u STREAMS "
				     "aq:{" QUEUE "}:s1 >",
			       consumer, n);
	const redisReply *es;

	ck_assert_ptr_nonnull(r);
	ck_assert_int_eq(r->type, REDIS_REPLY_ARRAY);
	es = r->element[0]->element[1];
	ck_assert_uint_eq(es->elements, n);
	for (unsigned i = 0; i < n; i++) {
		snprintf(eids[i], 48, "%s", es->element[i]->element[0]->str);
		snprintf(ids[i], 48, "%s",
			 es->element[i]->element[1]->element[1]->str);
	}
	freeReplyObject(r);
}

/* One FINISH for four outcomes, one of whose leases went to another
 * consumer and one reported twice: the lost one and the repeat are
 * fenced off (-1), the others acknowledged and resolved; then the new
 * holder finishes its own. Nothing left behind. */
START_TEST(test_batch_finish_fences_lost_lease)
{
	aq_redis_client *c = client();
	aq_future *futs[3];
	struct aq_redis_job jobs[3] = { { "log", "b0", 2 },
					{ "log", "b1", 2 },
					{ "log", "b2", 2 } };
	char eids[4][48], ids[4][48], first[256];
	struct aq_redis_result *res;
	redisReply *r;

	for (int s = 0; s < 3; s++) /* as a worker would */
		rs_cmd_free(&srv, "XGROUP CREATE aq:{" QUEUE "}:s%d aq 0 MKSTREAM",
			    s);
	ck_assert_int_eq(aq_redis_submit_batch(c, jobs, 3, NULL, futs), 3);
	deliver("A", 3, eids, ids);
	/* Another worker reclaims the second entry. */
	rs_cmd_free(&srv, "XCLAIM aq:{" QUEUE "}:s1 aq B 0 %s", eids[1]);
	memcpy(eids[3], eids[0], 48); /* the first, reported again */
	memcpy(ids[3], ids[0], 48);
	r = finish_as("A", 4, eids, ids);
	ck_assert_int_eq(r->type, REDIS_REPLY_ARRAY);
	ck_assert_uint_eq(r->elements, 4);
	ck_assert_int_eq(r->element[0]->integer, 0);
	ck_assert_int_eq(r->element[1]->integer, -1);
	ck_assert_int_eq(r->element[2]->integer, 0);
	ck_assert_int_eq(r->element[3]->integer, -1);
	freeReplyObject(r);
	ck_assert_str_eq(result_text(futs[0]), "v0");
	ck_assert_str_eq(result_text(futs[2]), "v2");
	/* The fenced job is still B's, pending, unresolved; the stream is
	 * trimmed up to it (the third entry, acknowledged, goes with it). */
	ck_assert_int_eq(aq_future_state(futs[1]), AQ_STATE_PENDING);
	ck_assert_int_eq(rs_int(&srv, "XLEN aq:{" QUEUE "}:s1"), 2);
	ck_assert_int_eq(rs_int(&srv, "EXISTS aq:{" QUEUE "}:j:%s", ids[1]),
			 1);
	r = rs_cmd(&srv, "XPENDING aq:{" QUEUE "}:s1 aq - + 10");
	ck_assert_uint_eq(r->elements, 1);
	ck_assert_str_eq(r->element[0]->element[0]->str, eids[1]);
	ck_assert_str_eq(r->element[0]->element[1]->str, "B");
	freeReplyObject(r);
	/* B reports it: its own lease, so it counts; the value is B's. */
	r = finish_as("B", 1, eids + 1, ids + 1);
	ck_assert_int_eq(r->element[0]->integer, 0);
	freeReplyObject(r);
	ck_assert_int_eq(aq_future_get(futs[1], (void **)&res, bound_ns()), 0);
	ck_assert_str_eq(res->data, "v0");
	for (int i = 0; i < 3; i++)
		aq_future_release(futs[i]);
	aq_redis_client_destroy(c);
	assert_no_pending();
	ck_assert_msg(leftover_keys(first, sizeof(first)) == 0,
		      "leftover key %s", first);
}
END_TEST

/* A FINISH whose batch holds a job that others wait on (an idempotent
 * duplicate submitted while it ran) tells them too, and the job beside it
 * is resolved as well. A cancel tells a held job (its entry pending in the
 * group) from a queued one, also after a hand back queued it anew. */
START_TEST(test_batch_finish_waiters_and_cancel_by_entry)
{
	struct aq_redis_job_opts keyed = { .idempotency_key = "held-key" };
	aq_redis_client *c = client(), *c2 = client();
	aq_future *a, *b, *dup, *x, *y, *z, *after;
	char eids[2][48], ids[2][48], bid[48], first[256];
	struct aq_redis_result *res;
	redisReply *r;

	for (int s = 0; s < 3; s++) /* as a worker would */
		rs_cmd_free(&srv,
			    "XGROUP CREATE aq:{" QUEUE "}:s%d aq 0 MKSTREAM",
			    s);
	ck_assert_int_eq(aq_redis_submit(c, "log", "a", 1, NULL, &a), 0);
	ck_assert_int_eq(aq_redis_submit(c, "log", "b", 1, &keyed, &b), 0);
	deliver("A", 2, eids, ids);
	ck_assert_int_eq(aq_redis_submit(c2, "log", "b2", 2, &keyed, &dup), 0);
	ck_assert_int_eq(aq_future_state(dup), AQ_STATE_PENDING);
	r = finish_as("A", 2, eids, ids);
	ck_assert_int_eq(r->element[0]->integer, 0);
	ck_assert_int_eq(r->element[1]->integer, 0);
	freeReplyObject(r);
	ck_assert_str_eq(result_text(a), "v0");
	ck_assert_str_eq(result_text(b), "v1");
	ck_assert_int_eq(aq_future_get(dup, (void **)&res, bound_ns()), 0);
	ck_assert_str_eq(res->data, "v1");
	memcpy(bid, ids[1], sizeof(bid));

	/* x and y held by A, z queued. */
	ck_assert_int_eq(aq_redis_submit(c, "log", "x", 1, NULL, &x), 0);
	ck_assert_int_eq(aq_redis_submit(c, "log", "y", 1, NULL, &y), 0);
	ck_assert_int_eq(aq_redis_submit(c, "log", "z", 1, NULL, &z), 0);
	deliver("A", 2, eids, ids);
	ck_assert_int_eq(aq_redis_cancel(c, x), -EBUSY);
	ck_assert_int_eq(aq_redis_cancel(c, z), 0);
	ck_assert_int_eq(aq_future_get(z, NULL, 0), -ECANCELED);
	/* y handed back: queued again under a new entry, cancelled now. */
	r = finish_outcome("A", "h", 1, eids + 1, ids + 1);
	ck_assert_int_eq(r->element[0]->integer, 2);
	freeReplyObject(r);
	ck_assert_int_eq(aq_redis_cancel(c, y), 0);
	ck_assert_int_eq(aq_future_get(y, NULL, 0), -ECANCELED);
	/* x ran to its end regardless: it keeps its outcome. */
	r = finish_as("A", 1, eids, ids);
	ck_assert_int_eq(r->element[0]->integer, 0);
	freeReplyObject(r);
	ck_assert_str_eq(result_text(x), "v0");
	/* A worker takes the two cancelled entries, then runs "after". */
	{
		pid_t w = worker(NULL);

		ck_assert_int_eq(
			aq_redis_submit(c, "log", "after", 5, NULL, &after), 0);
		ck_assert_str_eq(result_text(after), "after");
		ck_assert_int_eq(rs_log_count(logpath, "run", "y"), 0);
		ck_assert_int_eq(rs_log_count(logpath, "run", "z"), 0);
		worker_term(w);
	}
	aq_future_release(a);
	aq_future_release(b);
	aq_future_release(dup);
	aq_future_release(x);
	aq_future_release(y);
	aq_future_release(z);
	aq_future_release(after);
	aq_redis_client_destroy(c);
	aq_redis_client_destroy(c2);
	assert_no_pending();
	/* The idempotency key and b's kept outcome live out their TTL. */
	rs_cmd_free(&srv, "DEL aq:{" QUEUE "}:k:held-key");
	rs_cmd_free(&srv, "DEL aq:{" QUEUE "}:r:%s", bid);
	ck_assert_msg(leftover_keys(first, sizeof(first)) == 0,
		      "leftover key %s", first);
}
END_TEST

/* A batch larger than one script: every job queued in order, every future
 * resolved; with one idempotency key across the batch, one run and every
 * future with its outcome. Refused by a Redis out of memory: -ENOSPC,
 * no future, nothing queued; accepted again once there is room. */
START_TEST(test_batch_submit_chunks_and_errors)
{
	enum { N = 600 };
	struct aq_redis_job_opts keyed = { .idempotency_key = "batch-key" };
	static struct aq_redis_job jobs[N];
	static char text[N][16];
	static aq_future *futs[N];
	aq_redis_client *c = client();
	char first[256];
	pid_t w;

	for (unsigned i = 0; i < N; i++) {
		jobs[i].type = "add";
		jobs[i].len = (size_t)snprintf(text[i], 16, "%u 1", i);
		jobs[i].payload = text[i];
	}
	/* Out of memory: the whole call refused, no future handed out. */
	rs_cmd_free(&srv, "CONFIG SET maxmemory 1");
	for (unsigned i = 0; i < N; i++)
		futs[i] = (aq_future *)jobs;
	ck_assert_int_eq(aq_redis_submit_batch(c, jobs, N, NULL, futs),
			 -ENOSPC);
	for (unsigned i = 0; i < N; i++)
		ck_assert_ptr_null(futs[i]);
	ck_assert_int_eq(aq_redis_submit(c, "add", "1 1", 3, NULL, futs),
			 -ENOSPC);
	rs_cmd_free(&srv, "CONFIG SET maxmemory 0");
	ck_assert_msg(leftover_keys(first, sizeof(first)) == 0,
		      "leftover key %s", first);

	ck_assert_int_eq(aq_redis_submit_batch(c, jobs, N, NULL, futs), N);
	w = worker(NULL);
	for (unsigned i = 0; i < N; i++) {
		ck_assert_uint_eq(strtoul(result_text(futs[i]), NULL, 10),
				  i + 1);
		aq_future_release(futs[i]);
	}
	/* One key for all: the first runs, the other 599 wait on it. */
	for (unsigned i = 0; i < N; i++)
		jobs[i].type = "log";
	ck_assert_int_eq(aq_redis_submit_batch(c, jobs, N, &keyed, futs), N);
	for (unsigned i = 0; i < N; i++) {
		ck_assert_str_eq(result_text(futs[i]), "0 1");
		aq_future_release(futs[i]);
	}
	ck_assert_int_eq(rs_log_count(logpath, "run", "0 1"), 1);
	ck_assert_int_eq(rs_log_count(logpath, "run", "1 1"), 0);
	ck_assert_int_eq(rs_log_count(logpath, "run", "599 1"), 0);
	worker_term(w);
	aq_redis_client_destroy(c);
	assert_no_pending();
}
END_TEST

bool wanted(const char *name)
{
	const char *only = getenv("AQR_TEST");

	return !only || !*only || strcmp(only, name) == 0;
}

static Suite *redis_suite(void)
{
	Suite *s = suite_create("redis");
	TCase *tc = tcase_create("redis");

	tcase_add_checked_fixture(tc, setup, teardown);
	tcase_set_timeout(tc, 120);
	ADD(tc, test_add_and_binary_echo);
	ADD(tc, test_bad_input);
	ADD(tc, test_unreachable);
	ADD(tc, test_auth_acl_unix);
	ADD(tc, test_10000_jobs_3_workers);
	ADD(tc, test_kill9_mid_run);
	ADD(tc, test_long_job_runs_once);
	ADD(tc, test_sigstop_fenced);
	ADD(tc, test_redis_restart);
	ADD(tc, test_dead_letters);
	ADD(tc, test_too_large_at_worker);
	ADD(tc, test_backoff_server_clock);
	ADD(tc, test_delay_and_deadline);
	ADD(tc, test_priority);
	ADD(tc, test_sigterm_drain);
	ADD(tc, test_idempotency_key);
	ADD(tc, test_fire_and_forget);
	ADD(tc, test_batch_finish_fences_lost_lease);
	ADD(tc, test_batch_finish_waiters_and_cancel_by_entry);
	ADD(tc, test_batch_submit_chunks_and_errors);
	suite_add_tcase(s, tc);
	tc = tcase_create("big");
	tcase_add_checked_fixture(tc, setup, teardown);
	tcase_set_timeout(tc, 300);
	ADD(tc, test_100000_jobs_no_leftovers);
	suite_add_tcase(s, tc);
	return s;
}

int main(void)
{
	SRunner *sr = srunner_create(redis_suite());
	int failed;

	srunner_add_suite(sr, redis_sem_suite());
	/* Fork mode: a crash fails one test, and its servers die with it. */
	srunner_run_all(sr, CK_NORMAL);
	failed = srunner_ntests_failed(sr);
	srunner_free(sr);
	return failed == 0 ? EXIT_SUCCESS : EXIT_FAILURE;
}
