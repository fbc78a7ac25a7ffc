/* SPDX-License-Identifier: MIT */
/*
 * reply.c - a client's reply side: the reply thread that reads this
 * client's reply stream and deletes what it consumed, and the delivery of
 * an outcome to the futures waiting for it (also used by a SUBMIT that
 * finds its job already settled, in client.c).
 *
 * Every client has a reply stream, aq:{queue}:rp:<client id>; a job
 * records it, and whoever settles the job (a worker, or a reclaim that
 * dead-letters it) adds the outcome there. The reply thread reads it with
 * a blocking XREAD from the last id it saw, so a reconnect after a Redis
 * restart misses nothing, and deletes what it consumed.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>

#include "reply.h"

#define REPLY_BLOCK_MS 200 /* longest wait of the reply thread per read */
#define REPLY_COUNT 512    /* most reply entries read per XREAD */

void aqr_result_free(void *result)
{
	free(result);
}

/* A future's result: the header and the bytes in one block. */
static struct aq_redis_result *result_make(const char *data, size_t len)
{
	struct aq_redis_result *res = malloc(sizeof(*res) + len + 1);
	char *bytes;

	if (!res)
		return NULL;
	bytes = (char *)(res + 1);
	if (len)
		memcpy(bytes, data, len);
	bytes[len] = '\0';
	res->len = len;
	res->data = bytes;
	return res;
}

/* Resolve fut from an outcome as the scripts write it: state s (s, f, d,
 * x, c), code, value and message. */
void aqr_outcome_complete(aq_future *fut, const char *state, long code,
			  const char *val, size_t vlen, const char *msg)
{
	struct aq_redis_result *res = NULL;
	int rc;

	switch (state[0]) {
	case 's':
		res = result_make(val, vlen);
		rc = aq_future_complete(fut, 0, res, NULL);
		break;
	case 'f':
		res = result_make(val, vlen);
		rc = aq_future_complete(fut, code > 0 ? (int)code : EIO, res,
					msg);
		break;
	case 'd': {
		char buf[512];

		snprintf(buf, sizeof(buf), "dead letter: %s", msg);
		rc = aq_future_complete(fut, code > 0 ? (int)code : EIO, NULL,
					buf);
		break;
	}
	case 'x':
		rc = aq_future_complete(fut, -ETIME, NULL, NULL);
		break;
	case 'c':
		rc = aq_future_complete(fut, -ECANCELED, NULL, NULL);
		break;
	default:
		rc = aq_future_complete(fut, EPROTO, NULL, "bad outcome");
		break;
	}
	if (rc && res)
		free(res); /* cancelled meanwhile: nobody will read it */
}

/* One outcome of a reply entry, as the FINISH script writes it. */
struct outcome {
	const char *id, *state, *code, *val, *msg;
	size_t vlen;
};

/* Resolve every future waiting for o.id. */
static void outcome_deliver(aq_redis_client *c, const struct outcome *o)
{
	aq_future *fut;

	while ((fut = aqr_table_take(&c->table, o->id)) != NULL) {
		/* Counted first: whoever sees the future resolved sees it
		 * counted. */
		atomic_fetch_add(&c->resolved, 1);
		aqr_outcome_complete(fut, o->state, strtol(o->code, NULL, 10),
				     o->val, o->vlen, o->msg);
		aq_future_release(fut);
	}
}

/* A reply entry holds one or more outcomes, each a run of fields that
 * starts with i (the job id) followed by s, c, v and m. */
static void entry_deliver(aq_redis_client *c, const redisReply *f)
{
	struct outcome o = { NULL, "", "", "", "", 0 };

	for (size_t i = 0; f->type == REDIS_REPLY_ARRAY && i + 1 < f->elements;
	     i += 2) {
		const redisReply *k = f->element[i], *v = f->element[i + 1];

		if (k->type != REDIS_REPLY_STRING ||
		    v->type != REDIS_REPLY_STRING || k->len != 1)
			continue;
		switch (k->str[0]) {
		case 'i':
			if (o.id)
				outcome_deliver(c, &o);
			o = (struct outcome){ v->str, "", "", "", "", 0 };
			break;
		case 's':
			o.state = v->str;
			break;
		case 'c':
			o.code = v->str;
			break;
		case 'v':
			o.val = v->str;
			o.vlen = v->len;
			break;
		case 'm':
			o.msg = v->str;
			break;
		}
	}
	if (o.id)
		outcome_deliver(c, &o);
}

/* One XREAD's worth of reply entries: resolve, then delete them. */
static void reader_handle(aq_redis_client *c, const redisReply *r,
			  char *last_id)
{
	const redisReply *entries;

	if (!r || r->type != REDIS_REPLY_ARRAY || r->elements < 1)
		return;
	entries = r->element[0]->element[1];
	aqr_args_reset(c->rargs);
	aqr_args_str(c->rargs, "XDEL");
	aqr_args_str(c->rargs, c->reply_key);
	for (size_t i = 0; i < entries->elements; i++) {
		const redisReply *e = entries->element[i];

		entry_deliver(c, e->element[1]);
		snprintf(last_id, 64, "%s", e->element[0]->str);
		aqr_args_str(c->rargs, e->element[0]->str);
	}
	if (entries->elements) {
		int err;
		redisReply *d = aqr_call(&c->rlink, c->rargs, &err);

		if (d)
			freeReplyObject(d);
	}
}

void *aqr_reader_main(void *arg)
{
	aq_redis_client *c = arg;
	char last_id[64] = "0-0";

	while (!atomic_load(&c->stop)) {
		redisReply *r;
		int err;

		if (!c->rlink.ctx) {
			if (aqr_link_retry(&c->rlink, &c->stop) != 0)
				continue;
			atomic_fetch_add(&c->reconnects, 1);
		}
		aqr_args_reset(c->rargs);
		aqr_args_str(c->rargs, "XREAD");
		aqr_args_str(c->rargs, "COUNT");
		aqr_args_int(c->rargs, REPLY_COUNT);
		aqr_args_str(c->rargs, "BLOCK");
		aqr_args_int(c->rargs, REPLY_BLOCK_MS);
		aqr_args_str(c->rargs, "STREAMS");
		aqr_args_str(c->rargs, c->reply_key);
		aqr_args_str(c->rargs, last_id);
		r = aqr_call(&c->rlink, c->rargs, &err);
		if (!r)
			continue; /* the link is closed: reconnect above */
		reader_handle(c, r, last_id);
		freeReplyObject(r);
	}
	return NULL;
}
