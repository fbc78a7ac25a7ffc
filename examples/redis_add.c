/* SPDX-License-Identifier: MIT */
/*
 * redis_add.c - the Celery "add" example, in C, across processes through
 * Redis: one program, two modes.
 *
 *   redis_add worker [host [port]]        run add jobs until SIGINT/SIGTERM
 *   redis_add submit N [host [port]]      submit add(i, i) for i < N and
 *                                         check every result
 *
 * The payload is two 64-bit integers as text ("3 4"), the result their
 * sum as text ("7"): any language can speak it.
 */
#define _POSIX_C_SOURCE 200809L /* sigwait, pthread_sigmask */
#include <errno.h>
#include <inttypes.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <asyncq_redis.h>

/* decode: "x y" -> a malloc'ed pair. */
static int add_decode(const void *data, size_t len, void **arg, void *user)
{
	int64_t *xy = malloc(2 * sizeof(*xy));
	char buf[64];

	(void)user;
	if (!xy)
		return ENOMEM;
	if (len >= sizeof(buf)) {
		free(xy);
		return EBADMSG;
	}
	memcpy(buf, data, len);
	buf[len] = '\0';
	if (sscanf(buf, "%" SCNd64 " %" SCNd64, &xy[0], &xy[1]) != 2) {
		free(xy);
		return EBADMSG;
	}
	*arg = xy;
	return 0;
}

static void add_free(void *p, void *user)
{
	(void)user;
	free(p);
}

/* The task itself. */
static int add(void *arg, void **result)
{
	const int64_t *xy = arg;
	int64_t *sum = malloc(sizeof(*sum));

	if (!sum)
		return ENOMEM;
	*sum = xy[0] + xy[1];
	*result = sum;
	return 0;
}

static int add_encode(void *result, void **data, size_t *len, void *user)
{
	char *text = malloc(24);

	(void)user;
	if (!text)
		return ENOMEM;
	*len = (size_t)snprintf(text, 24, "%" PRId64, *(int64_t *)result);
	*data = text;
	return 0;
}

static int run_worker(const struct aq_redis_conn *conn)
{
	static const struct aq_redis_type types[] = {
		{ .name = "add", .fn = add, .decode = add_decode,
		  .encode = add_encode, .free_arg = add_free,
		  .free_result = add_free },
	};
	struct aq_redis_worker_config cfg = { .types = types, .ntypes = 1,
					      .concurrency = 64 };
	aq_redis_worker *w;
	sigset_t set;
	int sig, rc;

	/* Block the stop signals before any thread starts, then wait. */
	sigemptyset(&set);
	sigaddset(&set, SIGINT);
	sigaddset(&set, SIGTERM);
	pthread_sigmask(SIG_BLOCK, &set, NULL);
	rc = aq_redis_worker_create(&w, conn, &cfg);
	if (rc) {
		fprintf(stderr, "worker: %s\n", aq_strerror(rc));
		return 1;
	}
	fprintf(stderr, "worker: ready\n");
	sigwait(&set, &sig);
	rc = aq_redis_worker_stop(w, 10000); /* drain up to 10 s */
	fprintf(stderr, "worker: stopped, %d handed back\n", rc);
	aq_redis_worker_destroy(w);
	return 0;
}

#define BATCH 256

static int run_submit(const struct aq_redis_conn *conn, unsigned n)
{
	aq_redis_client *c;
	unsigned bad = 0;
	int rc = aq_redis_client_create(&c, conn, 0);

	if (rc) {
		fprintf(stderr, "submit: %s\n", aq_strerror(rc));
		return 1;
	}
	for (unsigned base = 0; base < n; base += BATCH) {
		struct aq_redis_job jobs[BATCH];
		aq_future *futs[BATCH];
		char text[BATCH][48];
		unsigned k = n - base < BATCH ? n - base : BATCH;

		for (unsigned i = 0; i < k; i++) {
			jobs[i].type = "add";
			jobs[i].len = (size_t)snprintf(text[i], sizeof(text[i]),
						       "%u %u", base + i,
						       base + i);
			jobs[i].payload = text[i];
		}
		rc = aq_redis_submit_batch(c, jobs, k, NULL, futs);
		if (rc != (int)k) {
			fprintf(stderr, "submit: %s\n",
				rc < 0 ? aq_strerror(rc) : "partly accepted");
			aq_redis_client_destroy(c);
			return 1;
		}
		for (unsigned i = 0; i < k; i++) {
			struct aq_redis_result *res = NULL;

			if (aq_future_get(futs[i], (void **)&res, -1) != 0 ||
			    strtoull(res->data, NULL, 10) != 2ull * (base + i))
				bad++;
			aq_future_release(futs[i]);
		}
	}
	printf("%u jobs, %u wrong\n", n, bad);
	aq_redis_client_destroy(c);
	return bad != 0;
}

int main(int argc, char **argv)
{
	struct aq_redis_conn conn = { .queue = "add" };
	int at = 2;

	if (argc < 2 || (strcmp(argv[1], "worker") && strcmp(argv[1], "submit")) ||
	    (!strcmp(argv[1], "submit") && argc < 3)) {
		fprintf(stderr, "usage: %s worker [host [port]]\n"
				"       %s submit N [host [port]]\n",
			argv[0], argv[0]);
		return 2;
	}
	if (!strcmp(argv[1], "submit"))
		at = 3;
	if (argc > at)
		conn.host = argv[at];
	if (argc > at + 1)
		conn.port = (unsigned)atoi(argv[at + 1]);
	if (!strcmp(argv[1], "worker"))
		return run_worker(&conn);
	return run_submit(&conn, (unsigned)strtoul(argv[2], NULL, 10));
}
