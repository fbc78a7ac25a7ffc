/* SPDX-License-Identifier: MIT */
/* server.c - redis-server and worker processes for the Redis suite. */
#include <errno.h>
#include <netinet/in.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "helpers.h"
#include "server.h"

static int free_port(void)
{
	struct sockaddr_in a = { .sin_family = AF_INET };
	socklen_t len = sizeof(a);
	int fd = socket(AF_INET, SOCK_STREAM, 0), port = -1;

	a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	if (fd >= 0 && bind(fd, (struct sockaddr *)&a, sizeof(a)) == 0 &&
	    getsockname(fd, (struct sockaddr *)&a, &len) == 0)
		port = ntohs(a.sin_port);
	if (fd >= 0)
		close(fd);
	return port;
}

/* fork + exec with the child tied to our life. */
static pid_t spawn(char *const argv[], const char *out)
{
	pid_t parent = getpid(), pid = fork();

	if (pid != 0)
		return pid;
	prctl(PR_SET_PDEATHSIG, SIGKILL);
	if (getppid() != parent)
		_exit(127);
	if (out) {
		FILE *f = freopen(out, "a", stdout);

		(void)f;
		dup2(1, 2);
	}
	execvp(argv[0], argv);
	_exit(127);
}

static redisContext *rs_connect(struct rs *s)
{
	struct timeval tv = { 5, 0 };
	redisContext *c = redisConnectWithTimeout("127.0.0.1", s->port, tv);

	if (c && c->err) {
		redisFree(c);
		return NULL;
	}
	return c;
}

/* A test that fails exits from the middle (fork mode): stop its server
 * and remove its directory at exit all the same. */
static struct rs *live;

static void rs_at_exit(void)
{
	if (live)
		rs_destroy(live);
}

bool rs_start(struct rs *s)
{
	static bool registered;

	if (!registered) {
		registered = true;
		atexit(rs_at_exit);
	}
	live = s;
	char port[16], log[300];
	char *argv[40];
	int n = 0;

	if (!s->dir[0]) {
		const char *tmp = getenv("AQR_TMPDIR");

		snprintf(s->dir, sizeof(s->dir), "%s/aqr-test-XXXXXX",
			 tmp && *tmp ? tmp : "/tmp");
		if (!mkdtemp(s->dir))
			return false;
		s->port = free_port();
		snprintf(s->sock, sizeof(s->sock), "%s/redis.sock", s->dir);
	}
	snprintf(port, sizeof(port), "%d", s->port);
	snprintf(log, sizeof(log), "%s/redis.log", s->dir);
	argv[n++] = "redis-server";
	argv[n++] = "--port";
	argv[n++] = port;
	argv[n++] = "--bind";
	argv[n++] = "127.0.0.1";
	argv[n++] = "--dir";
	argv[n++] = s->dir;
	argv[n++] = "--appendonly";
	argv[n++] = "yes";
	argv[n++] = "--appendfsync";
	argv[n++] = "always";
	argv[n++] = "--save";
	argv[n++] = "";
	argv[n++] = "--unixsocket";
	argv[n++] = s->sock;
	argv[n++] = "--protected-mode";
	argv[n++] = "yes";
	for (int i = 0; i < 8 && s->extra[i]; i++)
		argv[n++] = (char *)s->extra[i];
	argv[n] = NULL;
	s->pid = spawn(argv, log);
	if (s->pid < 0)
		return false;
	for (int i = 0; i < 2000; i++) { /* 10 s at most */
		redisContext *c = rs_connect(s);

		if (c) {
			redisReply *r = redisCommand(c, "PING");
			bool up = r && (r->type == REDIS_REPLY_STATUS ||
					r->type == REDIS_REPLY_ERROR);

			if (r)
				freeReplyObject(r);
			redisFree(c);
			if (up)
				return true;
		}
		th_sleep_ms(5);
	}
	return false;
}

void rs_stop(struct rs *s)
{
	if (s->pid > 0) {
		kill(s->pid, SIGTERM);
		waitpid(s->pid, NULL, 0);
		s->pid = 0;
	}
}

void rs_destroy(struct rs *s)
{
	char cmd[400];

	rs_stop(s);
	if (live == s)
		live = NULL;
	if (s->dir[0] && strstr(s->dir, "/aqr-test-")) {
		snprintf(cmd, sizeof(cmd), "rm -rf '%s'", s->dir);
		if (system(cmd) != 0)
			fprintf(stderr, "could not remove %s\n", s->dir);
	}
	s->dir[0] = '\0';
}

static redisReply *rs_vcmd(struct rs *s, const char *fmt, va_list ap)
{
	redisContext *c = rs_connect(s);
	redisReply *r;

	if (!c)
		return NULL;
	if (s->extra[0] && strcmp(s->extra[0], "--requirepass") == 0) {
		r = redisCommand(c, "AUTH %s", s->extra[1]);
		if (r)
			freeReplyObject(r);
	}
	r = redisvCommand(c, fmt, ap);
	redisFree(c);
	return r;
}

redisReply *rs_cmd(struct rs *s, const char *fmt, ...)
{
	va_list ap;
	redisReply *r;

	va_start(ap, fmt);
	r = rs_vcmd(s, fmt, ap);
	va_end(ap);
	return r;
}

long long rs_int(struct rs *s, const char *fmt, ...)
{
	va_list ap;
	redisReply *r;
	long long v = -1;

	va_start(ap, fmt);
	r = rs_vcmd(s, fmt, ap);
	va_end(ap);
	if (r && r->type == REDIS_REPLY_INTEGER)
		v = r->integer;
	else if (r && r->type == REDIS_REPLY_STRING)
		v = strtoll(r->str, NULL, 10);
	else if (r && r->type == REDIS_REPLY_NIL)
		v = -2;
	if (r)
		freeReplyObject(r);
	return v;
}

long long rs_time_ms(struct rs *s)
{
	redisReply *r = rs_cmd(s, "TIME");
	long long v = -1;

	if (r && r->type == REDIS_REPLY_ARRAY && r->elements == 2)
		v = strtoll(r->element[0]->str, NULL, 10) * 1000 +
		    strtoll(r->element[1]->str, NULL, 10) / 1000;
	if (r)
		freeReplyObject(r);
	return v;
}

pid_t rs_worker(struct rs *s, const char *queue, const char *const *opts)
{
	const char *bin = getenv("AQR_WORKER");
	char port[32], q[128], out[300];
	char *argv[32];
	int n = 0;

	snprintf(port, sizeof(port), "port=%d", s->port);
	snprintf(q, sizeof(q), "queue=%s", queue);
	snprintf(out, sizeof(out), "%s/worker.out", s->dir);
	argv[n++] = (char *)(bin ? bin : "./build/test/aqr_worker");
	argv[n++] = port;
	argv[n++] = q;
	for (int i = 0; opts && opts[i] && n < 30; i++)
		argv[n++] = (char *)opts[i];
	argv[n] = NULL;
	return spawn(argv, out);
}

int rs_wait(pid_t pid)
{
	int st;

	if (waitpid(pid, &st, 0) != pid)
		return -1000;
	if (WIFSIGNALED(st))
		return -WTERMSIG(st);
	return WEXITSTATUS(st);
}

int rs_log_count(const char *path, const char *event, const char *id)
{
	char line[512], want[300];
	FILE *f = fopen(path, "r");
	int n = 0;

	if (!f)
		return 0;
	snprintf(want, sizeof(want), "%s %s ", event, id);
	while (fgets(line, sizeof(line), f))
		if (strncmp(line, want, strlen(want)) == 0)
			n++;
	fclose(f);
	return n;
}
