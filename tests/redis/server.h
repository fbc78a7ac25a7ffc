/* SPDX-License-Identifier: MIT */
/*
 * server.h - a real redis-server for the tests, on 127.0.0.1 at a free
 * port, AOF on (fsync always), in a temporary directory; and the worker
 * processes (build/.../aqr_worker) the tests run against it. Every child
 * is killed with the test process (PR_SET_PDEATHSIG), so a failing test
 * leaves nothing running.
 */
#ifndef AQR_TEST_SERVER_H
#define AQR_TEST_SERVER_H

#include <stdbool.h>
#include <sys/types.h>

#include <hiredis/hiredis.h>

struct rs {
	pid_t pid;
	int port;
	char dir[256];
	char sock[300];          /* its Unix socket */
	const char *extra[8];    /* more redis-server arguments */
};

/* Start (or, with the same port and dir, restart) the server and wait
 * until it answers PING. */
bool rs_start(struct rs *s);
/* SIGTERM and wait: the AOF is complete. */
void rs_stop(struct rs *s);
/* Stop and remove the directory. */
void rs_destroy(struct rs *s);
/* One command on a fresh connection (the caller frees the reply). */
redisReply *rs_cmd(struct rs *s, const char *fmt, ...);
long long rs_int(struct rs *s, const char *fmt, ...);
/* The server's clock in ms (TIME). */
long long rs_time_ms(struct rs *s);

/* Start an aqr_worker on queue with "key=value" options (NULL-ended). */
pid_t rs_worker(struct rs *s, const char *queue, const char *const *opts);
/* Wait for a worker to exit; its exit status or -signal. */
int rs_wait(pid_t pid);

/* Lines of the job log (tests/redis/aqr_worker.c) matching "event id". */
int rs_log_count(const char *path, const char *event, const char *id);

#endif
