/* SPDX-License-Identifier: MIT */
/*
 * worker_ctl.c - a worker's control thread and lifecycle: it reports
 * outcomes (FINISH, pipelined), keeps the leases of running jobs
 * (HEARTBEAT), moves due delayed jobs to their streams (PROMOTE), has
 * reclaim.c take over jobs whose worker went quiet (RECLAIM); and create,
 * graceful stop, destroy and statistics.
 *
 * An outcome is dropped from the queue only once Redis answered its
 * FINISH: on a broken connection the outcomes are kept and sent again
 * after the reconnect, and FINISH itself checks that the entry is still
 * this consumer's, so a report that comes too late (after a reclaim) is
 * fenced off instead of acknowledging someone else's delivery.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <unistd.h>

#include "reclaim.h"
#include "worker.h"

#define PROMOTE_MAX 256     /* delayed jobs moved per PROMOTE */
#define PROMOTE_IDLE_MS 100 /* look at the delayed set this often */
#define FINISH_BATCH 128    /* outcomes per FINISH script */
#define FINISH_PIPELINE 4   /* FINISH scripts per round trip */
#define FINISH_LINGER_MS 2  /* longest an outcome waits for company */
#define PROMPT_MAX 1024     /* prompt reclaims between two ticks */

static void done_free(struct aqr_done *d)
{
	free(d->val);
	free(d->msg);
	free(d);
}

/* Append one FINISH for the outcomes of list, up to FINISH_BATCH; they
 * go to sent[], and what follows them is returned. */
static struct aqr_done *finish_append(aq_redis_worker *w, struct aqr_done *list,
				      struct aqr_done **sent, unsigned *n,
				      int *rc)
{
	char codes[FINISH_BATCH][16], ttls[FINISH_BATCH][24];
	unsigned k = 0;

	aqr_args_script(w->cargs, &w->clink, AQR_FINISH, w->consumer,
			w->dead_max, w->max_deliveries);
	for (; list && k < FINISH_BATCH; list = list->next, k++) {
		struct aqr_done *d = list;

		snprintf(codes[k], sizeof(codes[k]), "%d", d->code);
		aqr_args_small(w->cargs, d->sidx);
		aqr_args_str(w->cargs, d->eid);
		aqr_args_str(w->cargs, d->id);
		aqr_args_bin(w->cargs, &d->outcome, 1);
		aqr_args_str(w->cargs, codes[k]);
		aqr_args_bin(w->cargs, d->val, d->vlen);
		aqr_args_str(w->cargs, d->msg ? d->msg : "");
		aqr_args_str(w->cargs, d->reason ? d->reason : "");
		snprintf(ttls[k], sizeof(ttls[k]), "%lld", d->ttl);
		aqr_args_str(w->cargs, d->rt);
		aqr_args_str(w->cargs, ttls[k]);
		sent[*n + k] = d;
	}
	*rc = aqr_append(&w->clink, w->cargs);
	if (*rc == 0)
		*n += k;
	return *rc == 0 ? list : sent[*n];
}

/* Count one FINISH reply element: -1 fenced, 0 done, 1 retried, 2 handed
 * back, 3 dead-lettered. */
static void finish_count(aq_redis_worker *w, long long v)
{
	if (v == -1)
		atomic_fetch_add(&w->fenced, 1);
	else if (v == 1)
		atomic_fetch_add(&w->retried, 1);
	else if (v == 2)
		atomic_fetch_add(&w->handed_back, 1);
	else if (v == 3)
		atomic_fetch_add(&w->dead_lettered, 1);
	else
		atomic_fetch_add(&w->completed, 1);
}

/*
 * Report the outcomes of list: FINISH scripts of up to FINISH_BATCH
 * outcomes each, pipelined (FINISH_PIPELINE at most). An outcome is
 * dropped only once its script answered; the others go back in front of
 * the queue, to be sent again (after a reconnect).
 */
static void ctl_finish(aq_redis_worker *w, struct aqr_done *list)
{
	struct aqr_done *sent[FINISH_BATCH * FINISH_PIPELINE];
	unsigned n = 0, answered = 0, calls = 0, back = 0;
	int rc = 0;

	while (list && calls < FINISH_PIPELINE && rc == 0) {
		list = finish_append(w, list, sent, &n, &rc);
		calls += rc == 0;
	}
	for (unsigned call = 0; call < calls; call++) {
		unsigned k = n - answered < FINISH_BATCH ? n - answered
							 : FINISH_BATCH;
		int err;
		redisReply *r = aqr_read(&w->clink, &err);

		if (!r)
			break;
		if (r->type != REDIS_REPLY_ARRAY || r->elements != k) {
			/* A script error: keep them, try again later. */
			freeReplyObject(r);
			break;
		}
		for (unsigned i = 0; i < k; i++)
			finish_count(w, aqr_int(r->element[i]));
		freeReplyObject(r);
		answered += k;
	}
	/* Unanswered ones, and what was not sent, back in front. */
	for (unsigned i = n; i-- > answered;) {
		sent[i]->next = list;
		list = sent[i];
	}
	pthread_mutex_lock(&w->mu);
	if (list) {
		struct aqr_done *tail = list;

		for (back = 1; tail->next; back++)
			tail = tail->next;
		tail->next = w->done_head;
		if (!w->done_head)
			w->done_tail = tail;
		w->done_head = list;
		w->ndone += back;
		w->done_since = 0; /* due at once */
	}
	w->in_flight -= answered;
	w->ctl_busy = false;
	pthread_cond_broadcast(&w->cv_free);
	pthread_mutex_unlock(&w->mu);
	for (unsigned i = 0; i < answered; i++)
		done_free(sent[i]);
}

/* Entries per HEARTBEAT call: what one command's arguments hold. */
#define HEARTBEAT_CHUNK ((AQR_ARGS_MAX - 16) / 3)

/* A job whose cancel was asked (HEARTBEAT said 2): cancel its pool job,
 * which then never starts here, or sees aq_current_cancelled() if it
 * runs. Not under mu: a cancel that wins runs slot_done here. */
static void ctl_cancel_local(aq_redis_worker *w, const char *eid)
{
	aq_future *fut = NULL;

	pthread_mutex_lock(&w->mu);
	for (struct aqr_slot *s = w->running; s; s = s->next)
		if (s->fut && strcmp(s->eid, eid) == 0) {
			fut = aq_future_retain(s->fut);
			break;
		}
	pthread_mutex_unlock(&w->mu);
	if (fut) {
		aq_future_cancel(fut);
		aq_future_release(fut);
	}
}

/* A running job's lease, as the heartbeat copies it. */
struct hb_entry {
	int sidx;
	char eid[48];
	char id[96];
};

/* Renew the lease of every running job of ours, HEARTBEAT_CHUNK entries
 * per call, so any number of jobs in flight keeps its leases. */
static void ctl_heartbeat(aq_redis_worker *w)
{
	struct hb_entry *all;
	struct aqr_slot *s;
	unsigned n = 0, cap;
	redisReply *r;
	int err;

	pthread_mutex_lock(&w->mu);
	/* Running slots are counted in in_flight: the array is large
	 * enough. Copied: a slot may go once we unlock. */
	cap = w->in_flight ? w->in_flight : 1;
	all = malloc((size_t)cap * sizeof(*all));
	if (!all) {
		pthread_mutex_unlock(&w->mu);
		return; /* the next beat tries again */
	}
	for (s = w->running; s && n < cap; s = s->next) {
		all[n].sidx = s->sidx;
		memcpy(all[n].eid, s->eid, sizeof(all[n].eid));
		memcpy(all[n].id, s->id, sizeof(all[n].id));
		n++;
	}
	pthread_mutex_unlock(&w->mu);
	for (unsigned base = 0; base < n && w->clink.ctx;
	     base += HEARTBEAT_CHUNK) {
		unsigned end =
			n - base < HEARTBEAT_CHUNK ? n : base + HEARTBEAT_CHUNK;

		aqr_args_script(w->cargs, &w->clink, AQR_HEARTBEAT, w->consumer,
				w->dead_max, w->max_deliveries);
		for (unsigned i = base; i < end; i++) {
			aqr_args_small(w->cargs, all[i].sidx);
			aqr_args_str(w->cargs, all[i].eid);
			aqr_args_str(w->cargs, all[i].id);
		}
		r = aqr_call(&w->clink, w->cargs, &err);
		for (size_t i = 0; r && r->type == REDIS_REPLY_ARRAY &&
				   i < r->elements && base + i < end;
		     i++)
			if (aqr_int(r->element[i]) == 2)
				ctl_cancel_local(w, all[base + i].eid);
		if (r)
			freeReplyObject(r);
	}
	free(all);
}

/* Move due delayed jobs; the ms until the next one is due, or -1. */
static int64_t ctl_promote(aq_redis_worker *w)
{
	redisReply *r;
	int64_t wait = -1;
	int err;

	aqr_args_script(w->cargs, &w->clink, AQR_PROMOTE, w->consumer,
			w->dead_max, w->max_deliveries);
	aqr_args_int(w->cargs, PROMOTE_MAX);
	r = aqr_call(&w->clink, w->cargs, &err);
	if (r && r->type == REDIS_REPLY_ARRAY && r->elements == 2) {
		wait = aqr_int(r->element[1]);
		if (aqr_int(r->element[0]) >= PROMOTE_MAX)
			wait = 0; /* more are due */
	}
	if (r)
		freeReplyObject(r);
	return wait;
}

/*
 * When the queued outcomes are to be sent (lock held): at once when a
 * batch is full, when no job of ours is still running (nothing more is
 * coming soon: a lone job is never held back) or when stopping; else when
 * the oldest has waited FINISH_LINGER_MS, so that jobs finishing close
 * together share one FINISH.
 */
static int64_t finish_due(const aq_redis_worker *w)
{
	if (w->ndone >= FINISH_BATCH || w->local_running == 0 ||
	    atomic_load(&w->stop_fetch))
		return 0;
	return w->done_since + FINISH_LINGER_MS;
}

static void *ctl_main(void *arg)
{
	aq_redis_worker *w = arg;
	int64_t now = aqr_now_ms();
	int64_t next_hb = now + w->heartbeat_ms, next_promote = now;
	int64_t next_reclaim = now;
	/* A prompt reclaim (aqr_reclaim_due) goes ahead of the tick; none
	 * after one Redis did not answer, nor past PROMPT_MAX, until the next
	 * tick: a fault never turns the prompt path into a busy loop. */
	bool prompt = false, held = false;
	unsigned prompts = 0;

	for (;;) {
		struct aqr_done *list;
		int64_t until;
		bool stopping;

		pthread_mutex_lock(&w->mu);
		for (;;) {
			int64_t flush;

			now = aqr_now_ms();
			until = next_hb < next_promote ? next_hb : next_promote;
			if (until > next_reclaim)
				until = next_reclaim;
			flush = finish_due(w);
			prompt = !held && aqr_reclaim_due(w);
			if (atomic_load(&w->stop_ctl) || now >= until ||
			    prompt || (w->done_head && now >= flush))
				break;
			if (w->done_head && flush < until)
				until = flush;
			aqr_cond_wait_ms(&w->cv_ctl, &w->mu, until - now);
		}
		list = w->done_head;
		w->done_head = w->done_tail = NULL;
		w->ndone = 0;
		w->ctl_busy = list != NULL;
		stopping = atomic_load(&w->stop_ctl);
		pthread_mutex_unlock(&w->mu);

		if (!w->clink.ctx) {
			bool was = w->clink.connects > 0;

			if ((was ? aqr_link_retry(&w->clink, NULL)
				 : aqr_link_connect(&w->clink)) == 0 &&
			    was)
				atomic_fetch_add(&w->reconnects, 1);
		}
		if (list)
			ctl_finish(w, list); /* puts back what it could not */
		if (stopping && !list)
			break;
		if (!w->clink.ctx)
			continue;
		now = aqr_now_ms();
		if (now >= next_hb) {
			ctl_heartbeat(w);
			next_hb = now + w->heartbeat_ms;
		}
		if (atomic_load(&w->stop_fetch))
			continue; /* stopping: take nothing new */
		if (now >= next_promote) {
			int64_t wait = ctl_promote(w);

			next_promote = now + (wait < 0 || wait > PROMOTE_IDLE_MS
						      ? PROMOTE_IDLE_MS
						      : wait);
		}
		if (now >= next_reclaim) {
			held = aqr_reclaim(w) != 0;
			prompts = 0;
			next_reclaim = aqr_reclaim_next(w, now);
		} else if (prompt) {
			held = aqr_reclaim(w) != 0 || ++prompts >= PROMPT_MAX;
			next_reclaim = aqr_reclaim_next(w, now);
		}
	}
	return NULL;
}

/* ---- lifecycle -------------------------------------------------------------
 */

static void worker_free(aq_redis_worker *w)
{
	aqr_link_close(&w->flink);
	aqr_link_close(&w->clink);
	for (unsigned i = 0; i < w->ntypes; i++)
		free((char *)w->types[i].name);
	free(w->types);
	free(w->fargs);
	free(w->cargs);
	if (w->own_pool && w->pool)
		aq_pool_destroy(w->pool);
	pthread_mutex_destroy(&w->mu);
	pthread_cond_destroy(&w->cv_free);
	pthread_cond_destroy(&w->cv_ctl);
	aqr_cfg_free(&w->cfg);
	free(w);
}

static int worker_config(aq_redis_worker *w,
			 const struct aq_redis_worker_config *cfg)
{
	static unsigned long instance;
	char host[64] = "host";

	w->types = calloc(cfg->ntypes, sizeof(*w->types));
	if (!w->types)
		return -ENOMEM;
	for (unsigned i = 0; i < cfg->ntypes; i++) {
		const struct aq_redis_type *t = &cfg->types[i];

		if (!t->name || !*t->name || !t->fn)
			return -EINVAL;
		w->types[i] = *t;
		w->types[i].name = strdup(t->name);
		w->ntypes = i + 1;
		if (!w->types[i].name)
			return -ENOMEM;
	}
	w->concurrency = cfg->concurrency ? cfg->concurrency : 4;
	w->visibility_ms = cfg->visibility_ms ? cfg->visibility_ms : 30000;
	w->heartbeat_ms =
		cfg->heartbeat_ms ? cfg->heartbeat_ms : w->visibility_ms / 4;
	if (w->heartbeat_ms < 1)
		w->heartbeat_ms = 1;
	w->max_deliveries = cfg->max_deliveries ? cfg->max_deliveries : 3;
	w->dead_max = cfg->dead_max ? cfg->dead_max : 10000;
	if (cfg->consumer) {
		snprintf(w->consumer, sizeof(w->consumer), "%s", cfg->consumer);
	} else {
		char rnd[17];

		gethostname(host, sizeof(host) - 1);
		aqr_random_hex(rnd);
		snprintf(w->consumer, sizeof(w->consumer), "%s-%ld-%lu-%s",
			 host, (long)getpid(), ++instance, rnd);
	}
	if (cfg->pool) {
		w->pool = cfg->pool;
	} else {
		struct aq_pool_config pc = { .workers = w->concurrency,
					     .name = "redis" };
		int rc = aq_pool_create(&w->pool, &pc);

		if (rc)
			return rc;
		w->own_pool = true;
	}
	return 0;
}

AQ_API int aq_redis_worker_create(aq_redis_worker **worker,
				  const struct aq_redis_conn *conn,
				  const struct aq_redis_worker_config *cfg)
{
	pthread_condattr_t ca;
	aq_redis_worker *w;
	int rc;

	if (!worker || !cfg || (!cfg->types && cfg->ntypes) ||
	    cfg->visibility_ms < 0 || cfg->heartbeat_ms < 0 ||
	    (cfg->consumer &&
	     (!*cfg->consumer || strlen(cfg->consumer) >= 160)))
		return -EINVAL;
	w = calloc(1, sizeof(*w));
	if (!w)
		return -ENOMEM;
	rc = aqr_cfg_init(&w->cfg, conn);
	if (rc) {
		free(w);
		return rc;
	}
	pthread_mutex_init(&w->mu, NULL);
	pthread_condattr_init(&ca);
	pthread_condattr_setclock(&ca, CLOCK_MONOTONIC);
	pthread_cond_init(&w->cv_free, &ca);
	pthread_cond_init(&w->cv_ctl, &ca);
	pthread_condattr_destroy(&ca);
	aqr_link_init(&w->flink, &w->cfg);
	aqr_link_init(&w->clink, &w->cfg);
	w->fargs = malloc(sizeof(*w->fargs));
	w->cargs = malloc(sizeof(*w->cargs));
	if (!w->fargs || !w->cargs)
		rc = -ENOMEM;
	if (!rc)
		rc = worker_config(w, cfg);
	/* Connect both links now, so an unreachable Redis is an error of
	 * create, not a silent retry loop. */
	if (!rc)
		rc = aqr_link_connect(&w->flink);
	if (!rc)
		rc = aqr_ensure_groups(&w->flink, w->fargs);
	if (!rc)
		rc = aqr_link_connect(&w->clink);
	if (!rc && pthread_create(&w->ctl_thread, NULL, ctl_main, w) != 0)
		rc = -EAGAIN;
	if (!rc && (rc = aqr_fetch_start(w)) != 0) {
		atomic_store(&w->stop_ctl, true);
		pthread_cond_signal(&w->cv_ctl);
		pthread_join(w->ctl_thread, NULL);
	}
	if (rc) {
		worker_free(w);
		return rc;
	}
	*worker = w;
	return 0;
}

AQ_API int aq_redis_worker_stop(aq_redis_worker *w, int64_t drain_ms)
{
	int64_t deadline;
	struct aqr_slot *s;
	int handed = 0;

	if (!w || drain_ms < 0)
		return -EINVAL;
	pthread_mutex_lock(&w->mu);
	if (w->stopped) {
		pthread_mutex_unlock(&w->mu);
		return -EALREADY;
	}
	w->stopped = true;
	pthread_mutex_unlock(&w->mu);

	atomic_store(&w->stop_fetch, true);
	pthread_cond_broadcast(&w->cv_free);
	pthread_join(w->fetch_thread, NULL);

	/* Drain: running jobs finish and are reported; leases are kept. */
	deadline = aqr_now_ms() + drain_ms;
	pthread_mutex_lock(&w->mu);
	while (w->in_flight > 0 && aqr_now_ms() < deadline)
		aqr_cond_wait_ms(&w->cv_free, &w->mu, deadline - aqr_now_ms());
	/* Hand back what still runs: another worker takes it at once. */
	while ((s = w->running) != NULL) {
		struct aqr_done *d = calloc(1, sizeof(*d));

		w->running = s->next;
		s->prev = s->next = NULL;
		s->handed = true;
		if (!d) {
			w->in_flight--; /* its lease runs out instead */
			continue;
		}
		d->sidx = s->sidx;
		memcpy(d->eid, s->eid, sizeof(d->eid));
		memcpy(d->id, s->id, sizeof(d->id));
		memcpy(d->rt, s->rt, sizeof(d->rt));
		d->ttl = s->ttl;
		d->outcome = 'h';
		aqr_done_push(w, d);
		handed++;
	}
	/* Wait until the control thread reported everything queued (it
	 * retries over reconnects; bounded by the link's own timeouts). */
	deadline = aqr_now_ms() + 2 * w->cfg.timeout_ms;
	while ((w->done_head || w->ctl_busy) && aqr_now_ms() < deadline)
		aqr_cond_wait_ms(&w->cv_free, &w->mu, 100);
	pthread_mutex_unlock(&w->mu);
	return handed;
}

AQ_API void aq_redis_worker_destroy(aq_redis_worker *w)
{
	int err;

	if (!w)
		return;
	aq_redis_worker_stop(w, 0);
	/* Handed-back jobs still run here: wait for their calls to end. */
	pthread_mutex_lock(&w->mu);
	while (w->local_running > 0)
		aqr_cond_wait_ms(&w->cv_free, &w->mu, 100);
	pthread_mutex_unlock(&w->mu);
	atomic_store(&w->stop_ctl, true);
	pthread_cond_signal(&w->cv_ctl);
	pthread_join(w->ctl_thread, NULL);
	/* Nothing of ours is pending any more: leave the group clean. */
	if (w->clink.ctx) {
		for (int s = 0; s < AQR_STREAMS; s++) {
			char key[AQR_PREFIX_MAX + 8];
			redisReply *r;

			snprintf(key, sizeof(key), "%ss%d", w->cfg.prefix, s);
			aqr_args_reset(w->cargs);
			aqr_args_str(w->cargs, "XGROUP");
			aqr_args_str(w->cargs, "DELCONSUMER");
			aqr_args_str(w->cargs, key);
			aqr_args_str(w->cargs, AQR_GROUP);
			aqr_args_str(w->cargs, w->consumer);
			r = aqr_call(&w->clink, w->cargs, &err);
			if (r)
				freeReplyObject(r);
		}
	}
	worker_free(w);
}

AQ_API int aq_redis_worker_stats(aq_redis_worker *w, struct aq_redis_stats *st)
{
	struct aqr_link link;
	struct aqr_args *a;
	int rc;

	if (!w || !st)
		return -EINVAL;
	memset(st, 0, sizeof(*st));
	pthread_mutex_lock(&w->mu);
	st->in_flight = w->in_flight;
	pthread_mutex_unlock(&w->mu);
	st->completed = atomic_load(&w->completed);
	st->retried = atomic_load(&w->retried);
	st->dead_lettered = atomic_load(&w->dead_lettered);
	st->reclaimed = atomic_load(&w->reclaimed);
	st->fenced = atomic_load(&w->fenced);
	st->handed_back = atomic_load(&w->handed_back);
	st->reconnects = atomic_load(&w->reconnects);
	/* Its own short connection: the worker's two are busy. */
	a = malloc(sizeof(*a));
	if (!a)
		return -ENOMEM;
	aqr_link_init(&link, &w->cfg);
	rc = aqr_queue_stats(&link, a, st);
	aqr_link_close(&link);
	free(a);
	return rc;
}
