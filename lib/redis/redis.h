/* SPDX-License-Identifier: MIT */
/*
 * redis.h - private declarations of libasyncq-redis: the configuration
 * every handle copies, the connection ("link") with its reconnect and its
 * scripts, and the script table.
 */
#ifndef AQR_REDIS_H
#define AQR_REDIS_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include <hiredis/hiredis.h>

#include "asyncq.h"
#include "asyncq_redis.h"

#define AQR_STREAMS 3  /* one stream per priority level, s0 = high */
#define AQR_GROUP "aq" /* the consumer group of every queue */
#define AQR_PREFIX_MAX 300

/* A connection's settings, copied from struct aq_redis_conn. */
struct aqr_cfg {
	char *host, *unix_path, *user, *password;
	unsigned port;
	int64_t timeout_ms;
	size_t max_payload;
	char prefix[AQR_PREFIX_MAX]; /* "aq:{queue}:" */
};

int aqr_cfg_init(struct aqr_cfg *cfg, const struct aq_redis_conn *conn);
void aqr_cfg_free(struct aqr_cfg *cfg);

enum aqr_script {
	AQR_SUBMIT,
	AQR_FETCH,
	AQR_RECLAIM,
	AQR_HEARTBEAT,
	AQR_FINISH,
	AQR_PROMOTE,
	AQR_CANCEL,
	AQR_SCRIPTS
};

/* The script's source (prelude + body) into buf; its size with the NUL. */
size_t aqr_script_text(enum aqr_script which, char *buf, size_t size);

/*
 * One connection, owned by one thread at a time. It loads the scripts on
 * every connect (a restarted Redis has forgotten them) and remembers
 * their SHA1s; it counts reconnects.
 */
struct aqr_link {
	const struct aqr_cfg *cfg;
	redisContext *ctx; /* NULL while disconnected */
	char sha[AQR_SCRIPTS][41];
	uint64_t connects;  /* successful connects so far */
	int64_t backoff_ms; /* the next wait before reconnecting */
};

void aqr_link_init(struct aqr_link *link, const struct aqr_cfg *cfg);
/* Connect if not connected: 0 or a negative errno (see the header). */
int aqr_link_connect(struct aqr_link *link);
void aqr_link_close(struct aqr_link *link);
/* Reconnect after a failure: waits the back-off (10 ms doubling to 1 s)
 * unless *stop turns true, then tries once. */
int aqr_link_retry(struct aqr_link *link, const _Atomic bool *stop);

/* Arguments of one command, appended one by one (binary-safe). */
#define AQR_ARGS_MAX 4096
struct aqr_args {
	unsigned n;
	const char *v[AQR_ARGS_MAX];
	size_t len[AQR_ARGS_MAX];
	char nums[64][24]; /* storage for numbers */
	unsigned nnums;
};

void aqr_args_reset(struct aqr_args *a);
void aqr_args_str(struct aqr_args *a, const char *s);
void aqr_args_bin(struct aqr_args *a, const void *p, size_t len);
void aqr_args_int(struct aqr_args *a, long long v);
/* 0..3 without using number storage (stream indexes, many per command). */
void aqr_args_small(struct aqr_args *a, int v);

/* Start an EVALSHA of `which`: the command, the key, the six common
 * arguments (prefix, group, consumer, dead max, deliveries, payload max). */
void aqr_args_script(struct aqr_args *a, const struct aqr_link *link,
		     enum aqr_script which, const char *consumer,
		     unsigned dead_max, unsigned max_deliveries);

/* Send a command and read its reply; NULL (and the link closed) on an I/O
 * error, with *err set to a negative errno. */
redisReply *aqr_call(struct aqr_link *link, struct aqr_args *a, int *err);
/* Pipelining: append, then read the replies in order. */
int aqr_append(struct aqr_link *link, struct aqr_args *a);
redisReply *aqr_read(struct aqr_link *link, int *err);

/* Small helpers over replies. */
long long aqr_int(const redisReply *r);
bool aqr_is_err(const redisReply *r, const char *prefix);

/* A random 16-hex-digit name. */
void aqr_random_hex(char out[17]);

#endif
