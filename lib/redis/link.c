/* SPDX-License-Identifier: MIT */
/*
 * link.c - one connection to Redis: connect to a host/port or a Unix
 * socket with timeouts, AUTH with a password or an ACL user, load the
 * scripts, reconnect with back-off, and send commands (one at a time or
 * pipelined) with binary-safe arguments.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/random.h>
#include <time.h>

#include "redis.h"

static char *dup_or_null(const char *s)
{
	return s ? strdup(s) : NULL;
}

int aqr_cfg_init(struct aqr_cfg *cfg, const struct aq_redis_conn *conn)
{
	static const struct aq_redis_conn defaults;
	const char *queue;

	if (!conn)
		conn = &defaults;
	queue = conn->queue ? conn->queue : "default";
	if (!*queue || strpbrk(queue, "{}") || strlen(queue) > 200 ||
	    conn->timeout_ms < 0 || conn->port > 65535 ||
	    (conn->user && !conn->password))
		return -EINVAL;
	memset(cfg, 0, sizeof(*cfg));
	cfg->host = strdup(conn->host ? conn->host : "127.0.0.1");
	cfg->unix_path = dup_or_null(conn->unix_path);
	cfg->user = dup_or_null(conn->user);
	cfg->password = dup_or_null(conn->password);
	if (!cfg->host || (conn->unix_path && !cfg->unix_path) ||
	    (conn->user && !cfg->user) || (conn->password && !cfg->password)) {
		aqr_cfg_free(cfg);
		return -ENOMEM;
	}
	cfg->port = conn->port ? conn->port : 6379;
	cfg->timeout_ms = conn->timeout_ms ? conn->timeout_ms : 5000;
	cfg->max_payload = conn->max_payload ? conn->max_payload : 1u << 20;
	/* The braces are the hash tag: every key of a queue in one slot. */
	snprintf(cfg->prefix, sizeof(cfg->prefix), "aq:{%s}:", queue);
	return 0;
}

void aqr_cfg_free(struct aqr_cfg *cfg)
{
	free(cfg->host);
	free(cfg->unix_path);
	free(cfg->user);
	free(cfg->password);
	memset(cfg, 0, sizeof(*cfg));
}

void aqr_link_init(struct aqr_link *link, const struct aqr_cfg *cfg)
{
	memset(link, 0, sizeof(*link));
	link->cfg = cfg;
	link->backoff_ms = 10;
}

void aqr_link_close(struct aqr_link *link)
{
	if (link->ctx)
		redisFree(link->ctx);
	link->ctx = NULL;
}

/* A negative errno for a context's failure. */
static int ctx_errno(const redisContext *ctx)
{
	if (!ctx)
		return -ENOMEM;
#ifdef REDIS_ERR_TIMEOUT
	if (ctx->err == REDIS_ERR_TIMEOUT)
		return -ETIMEDOUT;
#endif
	if (ctx->err == REDIS_ERR_IO && errno > 0) {
		if (errno == EAGAIN || errno == EINPROGRESS)
			return -ETIMEDOUT;
		if (errno == ENOENT) /* no such Unix socket */
			return -ECONNREFUSED;
		return -errno;
	}
	if (ctx->err == REDIS_ERR_EOF)
		return -ECONNRESET;
	return -ENOTCONN;
}

static int link_auth(struct aqr_link *link)
{
	const struct aqr_cfg *cfg = link->cfg;
	redisReply *r;
	int rc = 0;

	if (!cfg->password)
		return 0;
	if (cfg->user)
		r = redisCommand(link->ctx, "AUTH %s %s", cfg->user,
				 cfg->password);
	else
		r = redisCommand(link->ctx, "AUTH %s", cfg->password);
	if (!r)
		return ctx_errno(link->ctx);
	if (r->type == REDIS_REPLY_ERROR)
		rc = -EACCES;
	freeReplyObject(r);
	return rc;
}

static int link_load_scripts(struct aqr_link *link)
{
	for (int i = 0; i < AQR_SCRIPTS; i++) {
		size_t size = aqr_script_text(i, NULL, 0);
		char *text = malloc(size);
		redisReply *r;
		int rc = 0;

		if (!text)
			return -ENOMEM;
		aqr_script_text(i, text, size);
		r = redisCommand(link->ctx, "SCRIPT LOAD %b", text, size - 1);
		free(text);
		if (!r)
			return ctx_errno(link->ctx);
		if (r->type == REDIS_REPLY_STRING && r->len == 40)
			memcpy(link->sha[i], r->str, 41);
		else if (r->type == REDIS_REPLY_ERROR &&
			 (strstr(r->str, "NOPERM") || strstr(r->str, "NOAUTH")))
			rc = -EACCES;
		else
			rc = -EPROTO;
		freeReplyObject(r);
		if (rc)
			return rc;
	}
	return 0;
}

int aqr_link_connect(struct aqr_link *link)
{
	const struct aqr_cfg *cfg = link->cfg;
	struct timeval tv = { .tv_sec = cfg->timeout_ms / 1000,
			      .tv_usec = (cfg->timeout_ms % 1000) * 1000 };
	int rc = 0;

	if (link->ctx)
		return 0;
	errno = 0;
	if (cfg->unix_path)
		link->ctx = redisConnectUnixWithTimeout(cfg->unix_path, tv);
	else
		link->ctx =
			redisConnectWithTimeout(cfg->host, (int)cfg->port, tv);
	if (!link->ctx || link->ctx->err) {
		rc = ctx_errno(link->ctx);
		aqr_link_close(link);
		return rc;
	}
	if (redisSetTimeout(link->ctx, tv) != REDIS_OK ||
	    (rc = link_auth(link)) != 0 ||
	    (rc = link_load_scripts(link)) != 0) {
		rc = rc ? rc : -ENOTCONN;
		aqr_link_close(link);
		return rc;
	}
	link->connects++;
	link->backoff_ms = 10;
	return 0;
}

int aqr_link_retry(struct aqr_link *link, const _Atomic bool *stop)
{
	int64_t waited = 0;

	aqr_link_close(link);
	/* Sleep in slices so that a stop request is seen within 10 ms. */
	while (waited < link->backoff_ms && !(stop && *stop)) {
		struct timespec ts = { 0, 10 * 1000000L };

		nanosleep(&ts, NULL);
		waited += 10;
	}
	if (link->backoff_ms < 1000)
		link->backoff_ms *= 2;
	if (stop && *stop)
		return -ECANCELED;
	return aqr_link_connect(link);
}

/* ---- commands --------------------------------------------------------------
 */

void aqr_args_reset(struct aqr_args *a)
{
	a->n = 0;
	a->nnums = 0;
}

void aqr_args_bin(struct aqr_args *a, const void *p, size_t len)
{
	if (a->n >= AQR_ARGS_MAX)
		return; /* callers stay far below; aqr_call() then fails */
	a->v[a->n] = p ? p : "";
	a->len[a->n++] = len;
}

void aqr_args_str(struct aqr_args *a, const char *s)
{
	aqr_args_bin(a, s, strlen(s));
}

void aqr_args_int(struct aqr_args *a, long long v)
{
	char *buf;

	if (a->nnums >= sizeof(a->nums) / sizeof(a->nums[0]))
		return;
	buf = a->nums[a->nnums++];
	snprintf(buf, sizeof(a->nums[0]), "%lld", v);
	aqr_args_str(a, buf);
}

void aqr_args_small(struct aqr_args *a, int v)
{
	static const char *const small[] = { "0", "1", "2", "3" };

	if (v >= 0 && v < 4)
		aqr_args_str(a, small[v]);
	else
		aqr_args_int(a, v);
}

void aqr_args_script(struct aqr_args *a, const struct aqr_link *link,
		     enum aqr_script which, const char *consumer,
		     unsigned dead_max, unsigned max_deliveries)
{
	aqr_args_reset(a);
	aqr_args_str(a, "EVALSHA");
	aqr_args_str(a, link->sha[which]);
	aqr_args_str(a, "0");
	aqr_args_str(a, link->cfg->prefix);
	aqr_args_str(a, AQR_GROUP);
	aqr_args_str(a, consumer ? consumer : "");
	aqr_args_int(a, dead_max);
	aqr_args_int(a, max_deliveries);
	aqr_args_int(a, (long long)link->cfg->max_payload);
}

int aqr_append(struct aqr_link *link, struct aqr_args *a)
{
	if (!link->ctx)
		return -ENOTCONN;
	if (a->n >= AQR_ARGS_MAX)
		return -E2BIG;
	if (redisAppendCommandArgv(link->ctx, (int)a->n, a->v, a->len) !=
	    REDIS_OK)
		return -ENOMEM;
	return 0;
}

redisReply *aqr_read(struct aqr_link *link, int *err)
{
	void *reply = NULL;

	if (!link->ctx) {
		*err = -ENOTCONN;
		return NULL;
	}
	if (redisGetReply(link->ctx, &reply) != REDIS_OK || !reply) {
		*err = ctx_errno(link->ctx);
		if (*err == -ETIMEDOUT || *err == -ENOTCONN)
			*err = -ECONNRESET; /* mid-command: unknown outcome */
		aqr_link_close(link);
		return NULL;
	}
	/* A script the server forgot (SCRIPT FLUSH): reconnecting reloads. */
	if (aqr_is_err(reply, "NOSCRIPT")) {
		freeReplyObject(reply);
		*err = -ECONNRESET;
		aqr_link_close(link);
		return NULL;
	}
	return reply;
}

redisReply *aqr_call(struct aqr_link *link, struct aqr_args *a, int *err)
{
	int rc = aqr_append(link, a);

	if (rc) {
		*err = rc;
		return NULL;
	}
	return aqr_read(link, err);
}

long long aqr_int(const redisReply *r)
{
	if (!r)
		return 0;
	if (r->type == REDIS_REPLY_INTEGER)
		return r->integer;
	if (r->type == REDIS_REPLY_STRING)
		return strtoll(r->str, NULL, 10);
	return 0;
}

bool aqr_is_err(const redisReply *r, const char *prefix)
{
	return r && r->type == REDIS_REPLY_ERROR &&
	       strncmp(r->str, prefix, strlen(prefix)) == 0;
}

void aqr_random_hex(char out[17])
{
	uint64_t v = 0;

	if (getrandom(&v, sizeof(v), 0) != (ssize_t)sizeof(v)) {
		struct timespec ts;

		clock_gettime(CLOCK_REALTIME, &ts);
		v = (uint64_t)ts.tv_nsec * 0x9e3779b97f4a7c15ull ^
		    (uint64_t)ts.tv_sec;
	}
	snprintf(out, 17, "%016llx", (unsigned long long)v);
}
