/* SPDX-License-Identifier: MIT */
/*
 * client.c - the submitting side: create and destroy a client, submit and
 * batch submit (one SUBMIT script per SUBMIT_CHUNK jobs, pipelined),
 * cancel, and the queue's figures. The reply thread that reads this
 * client's reply stream and resolves the futures waiting in its table
 * lives in reply.c.
 */
#include <errno.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>

#include "client.h"
#include "reply.h"
#include "table.h"

#define SUBMIT_CHUNK 256 /* jobs per SUBMIT script */

AQ_API int aq_redis_client_create(aq_redis_client **client,
				  const struct aq_redis_conn *conn,
				  unsigned flags)
{
	aq_redis_client *c;
	int rc;

	if (!client || flags)
		return -EINVAL;
	c = calloc(1, sizeof(*c));
	if (!c)
		return -ENOMEM;
	rc = aqr_cfg_init(&c->cfg, conn);
	if (rc) {
		free(c);
		return rc;
	}
	aqr_random_hex(c->id);
	snprintf(c->reply_key, sizeof(c->reply_key), "%srp:%s", c->cfg.prefix,
		 c->id);
	pthread_mutex_init(&c->submit_mu, NULL);
	aqr_link_init(&c->link, &c->cfg);
	aqr_link_init(&c->rlink, &c->cfg);
	c->args = malloc(sizeof(*c->args));
	c->rargs = malloc(sizeof(*c->rargs));
	rc = !c->args || !c->rargs ? -ENOMEM : aqr_table_init(&c->table);
	if (rc == 0)
		rc = aqr_link_connect(&c->link);
	if (rc == 0)
		rc = aqr_link_connect(&c->rlink);
	if (rc == 0 &&
	    pthread_create(&c->reader, NULL, aqr_reader_main, c) != 0)
		rc = -EAGAIN;
	if (rc) {
		aqr_link_close(&c->link);
		aqr_link_close(&c->rlink);
		aqr_table_destroy(&c->table);
		free(c->args);
		free(c->rargs);
		pthread_mutex_destroy(&c->submit_mu);
		aqr_cfg_free(&c->cfg);
		free(c);
		return rc;
	}
	*client = c;
	return 0;
}

static void cancel_one(aq_future *fut, void *user)
{
	(void)user;
	aq_future_complete(fut, -ECANCELED, NULL, NULL);
	aq_future_release(fut);
}

AQ_API void aq_redis_client_destroy(aq_redis_client *c)
{
	int err;

	if (!c)
		return;
	atomic_store(&c->stop, true);
	pthread_join(c->reader, NULL);
	aqr_table_drain(&c->table, cancel_one, NULL);
	/* The reply stream is ours alone: leave nothing behind. */
	if (aqr_link_connect(&c->link) == 0) {
		redisReply *r;

		aqr_args_reset(c->args);
		aqr_args_str(c->args, "DEL");
		aqr_args_str(c->args, c->reply_key);
		r = aqr_call(&c->link, c->args, &err);
		if (r)
			freeReplyObject(r);
	}
	aqr_link_close(&c->link);
	aqr_link_close(&c->rlink);
	aqr_table_destroy(&c->table);
	free(c->args);
	free(c->rargs);
	pthread_mutex_destroy(&c->submit_mu);
	aqr_cfg_free(&c->cfg);
	free(c);
}

static bool opts_valid(const struct aq_redis_job_opts *o)
{
	return o->priority >= AQ_REDIS_PRIO_HIGH &&
	       o->priority <= AQ_REDIS_PRIO_LOW && o->delay_ms >= 0 &&
	       o->run_at_ms >= 0 && o->deadline_ms >= 0 && o->backoff_ms >= 0 &&
	       o->backoff_factor >= 0 && o->backoff_max_ms >= 0 &&
	       o->result_ttl_ms >= 0 &&
	       (!o->idempotency_key ||
		(*o->idempotency_key && strlen(o->idempotency_key) < 512));
}

/* Append one SUBMIT of jobs[0..n) (at most SUBMIT_CHUNK); ids receive
 * their job ids. */
static int submit_append(aq_redis_client *c, const struct aq_redis_job *jobs,
			 unsigned n, const struct aq_redis_job_opts *o,
			 bool want_result, char (*ids)[40])
{
	char factor[32];
	int64_t ttl = o->result_ttl_ms;

	if (o->idempotency_key && !ttl)
		ttl = 3600 * 1000; /* a key needs its outcome kept */
	snprintf(factor, sizeof(factor), "%.17g",
		 o->backoff_factor > 0 ? o->backoff_factor : 1.0);
	aqr_args_script(c->args, &c->link, AQR_SUBMIT, NULL, 0, 0);
	aqr_args_int(c->args, o->priority + 1);
	aqr_args_int(c->args, o->max_attempts ? o->max_attempts : 1);
	aqr_args_int(c->args, o->backoff_ms);
	aqr_args_str(c->args, factor);
	aqr_args_int(c->args, o->backoff_max_ms);
	aqr_args_int(c->args, o->deadline_ms);
	aqr_args_int(c->args, o->delay_ms);
	aqr_args_int(c->args, o->run_at_ms);
	aqr_args_str(c->args, want_result ? c->reply_key : "");
	aqr_args_int(c->args, ttl);
	aqr_args_str(c->args, o->idempotency_key ? o->idempotency_key : "");
	for (unsigned i = 0; i < n; i++) {
		snprintf(ids[i], 40, "%s-%llx", c->id,
			 (unsigned long long)atomic_fetch_add(&c->seq, 1) + 1);
		aqr_args_str(c->args, ids[i]);
		aqr_args_str(c->args, jobs[i].type);
		aqr_args_bin(c->args, jobs[i].payload, jobs[i].len);
	}
	return aqr_append(&c->link, c->args);
}

/*
 * One job's part of a SUBMIT reply. The future was registered under the
 * job's id before the command left, since a worker may finish the job
 * before this reply is read; a duplicate of a job still running reports
 * to us under that same id. A duplicate of one that finished is resolved
 * here.
 */
static void submit_settle(aq_redis_client *c, const redisReply *r,
			  const char *id)
{
	long long kind = r->type == REDIS_REPLY_ARRAY && r->elements >= 1
				 ? aqr_int(r->element[0])
				 : aqr_int(r);
	aq_future *fut;

	atomic_fetch_add(&c->submitted, 1);
	if (kind != 0)
		atomic_fetch_add(&c->duplicates, 1);
	if (kind == 2 && r->elements >= 6 &&
	    (fut = aqr_table_take(&c->table, id)) != NULL) {
		atomic_fetch_add(&c->resolved, 1);
		aqr_outcome_complete(fut, r->element[2]->str,
				     strtol(r->element[3]->str, NULL, 10),
				     r->element[4]->str, r->element[4]->len,
				     r->element[5]->str);
		aq_future_release(fut);
	}
}

/* A SUBMIT's reply for k jobs: 0, or what went wrong (then none of the k
 * was queued). */
static int submit_check(const redisReply *r, unsigned k)
{
	if (aqr_is_err(r, "OOM"))
		return -ENOSPC;
	if (r->type != REDIS_REPLY_ARRAY || r->elements != k)
		return -EPROTO;
	return 0;
}

/*
 * Send jobs in SUBMIT_CHUNK-sized scripts, all pipelined, then read the
 * replies: the number accepted (a prefix) or, with none, a negative errno.
 * Each future in mine[] holds two references, the caller's and the
 * table's: an accepted one moves to futs[]; of the others, the table's
 * reference is dropped here and the caller's is left to the caller.
 */
static int submit_send(aq_redis_client *c, const struct aq_redis_job *jobs,
		       unsigned n, const struct aq_redis_job_opts *o,
		       bool want_result, char (*ids)[40], aq_future **mine,
		       aq_future **futs)
{
	unsigned sent = 0, registered = 0, accepted = 0;
	int rc = 0;

	while (sent < n && !rc) {
		unsigned k = n - sent < SUBMIT_CHUNK ? n - sent : SUBMIT_CHUNK;

		if ((rc = submit_append(c, jobs + sent, k, o, want_result,
					ids + sent)) != 0)
			break;
		sent += k;
		for (; registered < sent && !rc; registered++)
			if (mine[registered])
				rc = aqr_table_put(&c->table, ids[registered],
						   mine[registered]);
		if (rc) {
			registered--; /* the one that failed is not in it */
			/* Not registered: drop the command that went with
			 * it by closing; the job may still be queued. */
			aqr_link_close(&c->link);
		}
	}
	/* Every reply is read, so the link stays in step; after the first
	 * failure nothing more counts as accepted. */
	for (unsigned done = 0; done < sent && c->link.ctx;) {
		unsigned k =
			sent - done < SUBMIT_CHUNK ? sent - done : SUBMIT_CHUNK;
		int err = 0;
		redisReply *r = aqr_read(&c->link, &err);

		if (!r) {
			rc = err; /* -ECONNRESET: the rest may or may not be */
			break;
		}
		if (!rc && (err = submit_check(r, k)) == 0) {
			for (unsigned i = 0; i < k; i++) {
				submit_settle(c, r->element[i], ids[done + i]);
				if (mine[done + i])
					futs[done + i] = mine[done + i];
				mine[done + i] = NULL;
			}
			accepted += k;
		} else if (!rc) {
			rc = err;
		}
		freeReplyObject(r);
		done += k;
	}
	/* Futures of jobs not accepted lose the table's reference: whoever
	 * takes one out of the table owns it; one never put in, here. */
	for (unsigned i = accepted; i < n; i++)
		if (mine[i] && (i >= registered ||
				aqr_table_take(&c->table, ids[i]) == mine[i]))
			aq_future_release(mine[i]);
	return accepted ? (int)accepted : rc ? rc : -EIO;
}

AQ_API int aq_redis_submit_batch(aq_redis_client *c,
				 const struct aq_redis_job *jobs, unsigned n,
				 const struct aq_redis_job_opts *opts,
				 aq_future **futs)
{
	static const struct aq_redis_job_opts defaults;
	char(*ids)[40];
	aq_future **mine;
	int rc = 0;

	if (!c || (!jobs && n))
		return -EINVAL;
	if (!opts)
		opts = &defaults;
	if (!opts_valid(opts))
		return -EINVAL;
	for (unsigned i = 0; i < n; i++) {
		if (!jobs[i].type || !*jobs[i].type ||
		    (!jobs[i].payload && jobs[i].len))
			return -EINVAL;
		if (jobs[i].len > c->cfg.max_payload)
			return -EMSGSIZE;
	}
	if (n == 0)
		return 0;
	ids = malloc(n * sizeof(*ids));
	mine = calloc(n, sizeof(*mine));
	if (!ids || !mine) {
		free(ids);
		free(mine);
		return -ENOMEM;
	}
	for (unsigned i = 0; futs && i < n; i++) {
		futs[i] = NULL;
		/* Two references: the caller's, and the table's. */
		if (aq_future_create(&mine[i], aqr_result_free, 0) != 0) {
			rc = -ENOMEM;
			goto out;
		}
		aq_future_retain(mine[i]);
	}
	pthread_mutex_lock(&c->submit_mu);
	if (!c->link.ctx) {
		/* Redis went away: one attempt to come back, no waiting. */
		if (aqr_link_connect(&c->link) != 0) {
			pthread_mutex_unlock(&c->submit_mu);
			rc = -ENOTCONN;
			goto out;
		}
		atomic_fetch_add(&c->reconnects, 1);
	}
	rc = submit_send(c, jobs, n, opts, futs != NULL, ids, mine, futs);
	pthread_mutex_unlock(&c->submit_mu);
	for (unsigned i = 0; i < n; i++)
		if (mine[i]) /* not accepted: the caller's reference */
			aq_future_release(mine[i]);
	free(ids);
	free(mine);
	return rc;
out:
	for (unsigned i = 0; i < n; i++)
		if (mine[i]) { /* never sent: both references */
			aq_future_release(mine[i]);
			aq_future_release(mine[i]);
		}
	free(ids);
	free(mine);
	return rc;
}

AQ_API int aq_redis_submit(aq_redis_client *c, const char *type,
			   const void *payload, size_t len,
			   const struct aq_redis_job_opts *opts,
			   aq_future **fut)
{
	struct aq_redis_job job = { type, payload, len };
	int rc;

	if (!c || !type)
		return -EINVAL;
	rc = aq_redis_submit_batch(c, &job, 1, opts, fut);
	return rc == 1 ? 0 : rc;
}

AQ_API int aq_redis_cancel(aq_redis_client *c, aq_future *fut)
{
	char id[96];
	redisReply *r;
	long long v;
	int err = -ENOTCONN;

	if (!c || !fut)
		return -EINVAL;
	/* Not in the table: resolved, being resolved, or not ours. */
	if (aqr_table_id_of(&c->table, fut, id, sizeof(id)) != 0)
		return -EALREADY;
	pthread_mutex_lock(&c->submit_mu);
	r = NULL;
	if (c->link.ctx || aqr_link_connect(&c->link) == 0) {
		aqr_args_script(c->args, &c->link, AQR_CANCEL, NULL, 0, 0);
		aqr_args_str(c->args, id);
		r = aqr_call(&c->link, c->args, &err);
	}
	pthread_mutex_unlock(&c->submit_mu);
	if (!r)
		return err;
	v = r->type == REDIS_REPLY_INTEGER ? r->integer : -1;
	freeReplyObject(r);
	if (v == 1) {
		/* Redis resolved it cancelled (its outcome also reaches the
		 * reply thread, whose completion then finds it resolved):
		 * resolve it here, before we return. */
		aq_future *mine = aqr_table_take(&c->table, id);

		aq_future_complete(fut, -ECANCELED, NULL, NULL);
		if (mine) {
			atomic_fetch_add(&c->resolved, 1);
			aq_future_release(mine);
		}
		return 0;
	}
	return v == 2 ? -EBUSY : v == 0 ? -EALREADY : -EPROTO;
}

/* One counting command (ZCARD, XLEN) on the queue's key <prefix><suffix>. */
static int queue_count(struct aqr_link *link, struct aqr_args *a,
		       const char *cmd, const char *suffix, uint64_t *out)
{
	char key[AQR_PREFIX_MAX + 8];
	redisReply *r;
	int err = 0;

	snprintf(key, sizeof(key), "%s%s", link->cfg->prefix, suffix);
	aqr_args_reset(a);
	aqr_args_str(a, cmd);
	aqr_args_str(a, key);
	if (!(r = aqr_call(link, a, &err)))
		return err;
	*out = (uint64_t)aqr_int(r);
	freeReplyObject(r);
	return 0;
}

/* The queue's figures, read from Redis (shared with worker.c). */
int aqr_queue_stats(struct aqr_link *link, struct aqr_args *a,
		    struct aq_redis_stats *st)
{
	const char *prefix = link->cfg->prefix;
	char key[AQR_PREFIX_MAX + 8];
	redisReply *r;
	int err = 0;

	if (!link->ctx && aqr_link_connect(link) != 0)
		return -ENOTCONN;
	for (int s = 0; s < AQR_STREAMS; s++) {
		snprintf(key, sizeof(key), "%ss%d", prefix, s);
		aqr_args_reset(a);
		aqr_args_str(a, "XINFO");
		aqr_args_str(a, "GROUPS");
		aqr_args_str(a, key);
		r = aqr_call(link, a, &err);
		if (!r)
			return err;
		for (size_t g = 0;
		     r->type == REDIS_REPLY_ARRAY && g < r->elements; g++) {
			const redisReply *f = r->element[g];

			for (size_t i = 0; i + 1 < f->elements; i += 2) {
				const char *name = f->element[i]->str;

				if (strcmp(name, "pending") == 0)
					st->pending +=
						aqr_int(f->element[i + 1]);
				else if (strcmp(name, "lag") == 0)
					st->lag += aqr_int(f->element[i + 1]);
			}
		}
		freeReplyObject(r);
	}
	if ((err = queue_count(link, a, "ZCARD", "d", &st->delayed)) != 0)
		return err;
	return queue_count(link, a, "XLEN", "dead", &st->dead);
}

AQ_API int aq_redis_client_stats(aq_redis_client *c, struct aq_redis_stats *st)
{
	int rc;

	if (!c || !st)
		return -EINVAL;
	memset(st, 0, sizeof(*st));
	st->submitted = atomic_load(&c->submitted);
	st->duplicates = atomic_load(&c->duplicates);
	st->resolved = atomic_load(&c->resolved);
	st->reconnects = atomic_load(&c->reconnects);
	pthread_mutex_lock(&c->submit_mu);
	rc = aqr_queue_stats(&c->link, c->args, st);
	pthread_mutex_unlock(&c->submit_mu);
	return rc;
}
