/* SPDX-License-Identifier: MIT */
/* bench_worker.c - a worker with the no-op job "noop" (result "3"): up
 * to 256 jobs held at once (fetched, running or being reported), run on
 * a pool of BENCH_THREADS threads (default 2: the jobs do nothing, so
 * more threads only add wake-ups on a 2-core machine). */
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
	struct aq_pool_config pc = { .workers = 2, .name = "bench" };
	aq_redis_worker *w;
	aq_pool *pool;
	sigset_t set;
	int sig;

	if (argc < 2)
		return 2;
	conn.port = (unsigned)atoi(argv[1]);
	if (getenv("BENCH_THREADS"))
		pc.workers = (unsigned)atoi(getenv("BENCH_THREADS"));
	if (aq_pool_create(&pool, &pc) != 0)
		return 1;
	cfg.pool = pool;
	sigemptyset(&set);
	sigaddset(&set, SIGTERM);
	pthread_sigmask(SIG_BLOCK, &set, NULL);
	if (aq_redis_worker_create(&w, &conn, &cfg) != 0)
		return 1;
	sigwait(&set, &sig);
	aq_redis_worker_stop(w, 1000);
	aq_redis_worker_destroy(w);
	aq_pool_destroy(pool);
	return 0;
}
