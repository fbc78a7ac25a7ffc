/* SPDX-License-Identifier: MIT */
/* bench_worker.c - a worker with the no-op job "noop" (result "3"). */
#define _POSIX_C_SOURCE 200809L
#include <pthread.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>

#include <asyncq_redis.h>

static int noop(void *arg, void **result)
{
	(void)arg;
	*result = NULL;
	return 0;
}

static int encode(void *result, void **data, size_t *len, void *user)
{
	(void)result;
	(void)user;
	*data = strdup("3");
	*len = 1;
	return *data ? 0 : 12;
}

int main(int argc, char **argv)
{
	static const struct aq_redis_type types[] = {
		{ .name = "noop", .fn = noop, .encode = encode },
	};
	struct aq_redis_conn conn = { .queue = "bench" };
	struct aq_redis_worker_config cfg = { .types = types, .ntypes = 1,
					      .concurrency = 256 };
	aq_redis_worker *w;
	sigset_t set;
	int sig;

	if (argc < 2)
		return 2;
	conn.port = (unsigned)atoi(argv[1]);
	sigemptyset(&set);
	sigaddset(&set, SIGTERM);
	pthread_sigmask(SIG_BLOCK, &set, NULL);
	if (aq_redis_worker_create(&w, &conn, &cfg) != 0)
		return 1;
	sigwait(&set, &sig);
	aq_redis_worker_stop(w, 1000);
	aq_redis_worker_destroy(w);
	return 0;
}
