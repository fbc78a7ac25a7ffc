/* SPDX-License-Identifier: MIT */
/*
 * worker.c - a process's membership of a queue's consumer group: the fetch
 * thread, which takes no more jobs than there are free slots and hands
 * them to the local aq_pool, and the life of one job on it (decode, run,
 * encode, report). The control thread that reports outcomes, keeps leases
 * and reclaims lives in worker_ctl.c, its reclaim side in reclaim.c.
 *
 * A slot is counted in flight from the moment Redis delivers its entry to
 * this consumer until the FINISH (or hand-back) script for it has been
 * answered, so `concurrency` bounds what the process holds, not only
 * what it runs.
 */
#include <errno.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <time.h>
#include <unistd.h>

#include "worker.h"

#define FETCH_BLOCK_MS 250 /* longest blocking read: bounds stop latency */

int64_t aqr_now_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

void aqr_cond_wait_ms(pthread_cond_t *cv, pthread_mutex_t *mu, int64_t ms)
{
	struct timespec ts;

	if (ms < 1)
		ms = 1;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	ts.tv_sec += ms / 1000;
	ts.tv_nsec += (ms % 1000) * 1000000;
	if (ts.tv_nsec >= 1000000000) {
		ts.tv_sec++;
		ts.tv_nsec -= 1000000000;
	}
	pthread_cond_timedwait(cv, mu, &ts);
}

/* Queue an outcome for the control thread (lock held). */
void aqr_done_push(aq_redis_worker *w, struct aqr_done *d)
{
	d->next = NULL;
	if (w->done_tail) {
		w->done_tail->next = d;
	} else {
		w->done_head = d;
		w->done_since = aqr_now_ms();
	}
	w->done_tail = d;
	w->ndone++;
	pthread_cond_signal(&w->cv_ctl);
}

static struct aqr_done *done_make(const struct aqr_slot *s, char outcome,
				  int code, const char *reason)
{
	struct aqr_done *d = calloc(1, sizeof(*d));

	if (!d)
		return NULL;
	d->sidx = s->sidx;
	memcpy(d->eid, s->eid, sizeof(d->eid));
	memcpy(d->id, s->id, sizeof(d->id));
	memcpy(d->rt, s->rt, sizeof(d->rt));
	d->ttl = s->ttl;
	d->outcome = outcome;
	d->code = code;
	d->reason = reason;
	return d;
}

static void slot_unlink(aq_redis_worker *w, struct aqr_slot *s)
{
	if (s->prev)
		s->prev->next = s->next;
	else
		w->running = s->next;
	if (s->next)
		s->next->prev = s->prev;
	s->prev = s->next = NULL;
}

static void slot_free(struct aqr_slot *s)
{
	aq_future_release(s->fut);
	free(s->payload);
	free(s);
}

/* The pool job: decode, run, free the argument. */
static int slot_run(void *arg, void **result)
{
	struct aqr_slot *s = arg;
	const struct aq_redis_type *t = s->type;
	void *job_arg = &s->blob;
	int rc;

	if (t->decode) {
		rc = t->decode(s->payload, s->plen, &job_arg, t->user);
		if (rc != 0) {
			s->undecodable = true;
			return rc > 0 ? rc : AQ_REDIS_E_UNDECODABLE;
		}
	}
	rc = t->fn(job_arg, result);
	if (t->decode && t->free_arg)
		t->free_arg(job_arg, t->user);
	return rc;
}

/* The outcome of a finished pool job, as a FINISH to send. */
static struct aqr_done *slot_outcome(aq_redis_worker *w, struct aqr_slot *s,
				     aq_future *fut)
{
	const struct aq_redis_type *t = s->type;
	struct aqr_done *d;
	struct aq_error err;
	void *result = NULL;
	int rc = aq_future_get(fut, &result, 0);

	if (s->undecodable) {
		d = done_make(s, 'd', AQ_REDIS_E_UNDECODABLE, "undecodable");
		if (d)
			d->msg = strdup("the payload did not decode");
		return d;
	}
	if (rc < 0) /* the local pool cancelled it (shutdown): hand back */
		return done_make(s, 'h', 0, "");
	if (rc > 0) {
		d = done_make(s, 'f', rc, "");
		if (d && aq_future_error(fut, &err) == 0 && err.message)
			d->msg = strdup(err.message);
	} else {
		d = done_make(s, 's', 0, "");
		if (d && t->encode) {
			int erc = t->encode(result, (void **)&d->val, &d->vlen,
					    t->user);

			if (erc != 0) {
				d->outcome = 'f';
				d->code = erc > 0 ? erc : EIO;
				d->msg = strdup("the result did not encode");
			} else if (d->vlen > w->cfg.max_payload) {
				d->outcome = 'd';
				d->code = AQ_REDIS_E_TOO_LARGE;
				d->reason = "too_large";
				d->msg = strdup("result above the maximum");
			}
		}
	}
	if (t->free_result && result)
		t->free_result(result, t->user);
	return d;
}

/* Then-callback of a slot's pool job, on the thread that resolved it. */
static void slot_done(aq_future *fut, void *user)
{
	struct aqr_slot *s = user;
	aq_redis_worker *w = s->w;
	struct aqr_done *d = slot_outcome(w, s, fut);

	pthread_mutex_lock(&w->mu);
	if (!s->handed) {
		slot_unlink(w, s);
		if (d)
			aqr_done_push(w, d);
		else
			w->in_flight--; /* no memory: the lease runs out and
					   another worker takes it */
		d = NULL;
		if (aqr_reclaim_due(w))
			pthread_cond_signal(&w->cv_ctl);
	}
	w->local_running--;
	pthread_cond_broadcast(&w->cv_free);
	pthread_mutex_unlock(&w->mu);
	if (d) { /* handed back meanwhile: the entry is no longer ours */
		free(d->val);
		free(d->msg);
		free(d);
	}
	slot_free(s);
}

static const struct aq_redis_type *type_find(aq_redis_worker *w,
					     const char *name)
{
	for (unsigned i = 0; i < w->ntypes; i++)
		if (strcmp(w->types[i].name, name) == 0)
			return &w->types[i];
	return NULL;
}

/* Start one delivered job, {stream, entry id, job id, type, payload,
 * attempt, reply stream, ttl} as the scripts return it. Counted in flight
 * from here. */
void aqr_start(aq_redis_worker *w, const redisReply *j)
{
	static const struct aq_retry_policy no_retry; /* retries are Redis's */
	struct aq_job_opts opts = { .retry = &no_retry };
	struct aqr_slot *s;
	struct aqr_done *d = NULL;
	aq_future *fut;

	if (j->type != REDIS_REPLY_ARRAY || j->elements < 8)
		return;
	s = calloc(1, sizeof(*s));
	if (!s)
		return; /* not started: its lease runs out, another takes it */
	s->w = w;
	s->sidx = (int)aqr_int(j->element[0]);
	snprintf(s->eid, sizeof(s->eid), "%s", j->element[1]->str);
	snprintf(s->id, sizeof(s->id), "%s", j->element[2]->str);
	snprintf(s->rt, sizeof(s->rt), "%s",
		 j->element[6]->str ? j->element[6]->str : "");
	s->ttl = aqr_int(j->element[7]);
	s->type = type_find(w, j->element[3]->str);
	s->plen = j->element[4]->len;
	s->payload = malloc(s->plen + 1);
	if (!s->payload) {
		free(s);
		return;
	}
	memcpy(s->payload, j->element[4]->str, s->plen);
	s->payload[s->plen] = '\0';
	s->blob.data = s->payload;
	s->blob.len = s->plen;

	pthread_mutex_lock(&w->mu);
	w->in_flight++;
	if (!s->type) {
		/* Never run what this process did not register. */
		d = done_make(s, 'd', AQ_REDIS_E_UNKNOWN_TYPE, "unknown_type");
		if (d) {
			char msg[300];

			snprintf(msg, sizeof(msg), "no worker type \"%.200s\"",
				 j->element[3]->str);
			d->msg = strdup(msg);
			aqr_done_push(w, d);
		} else {
			w->in_flight--;
		}
		pthread_mutex_unlock(&w->mu);
		slot_free(s);
		return;
	}
	s->next = w->running;
	if (w->running)
		w->running->prev = s;
	w->running = s;
	w->local_running++;
	pthread_mutex_unlock(&w->mu);

	if (aq_submit(w->pool, slot_run, s, &opts, &fut) != 0) {
		pthread_mutex_lock(&w->mu);
		slot_unlink(w, s);
		w->local_running--;
		d = done_make(s, 'h', 0, "");
		if (d)
			aqr_done_push(w, d);
		else
			w->in_flight--;
		pthread_mutex_unlock(&w->mu);
		slot_free(s);
		return;
	}
	/* Kept for a cancel from Redis (worker_ctl.c); before the callback
	 * is set, since it may run and free the slot at once. */
	pthread_mutex_lock(&w->mu);
	s->fut = aq_future_retain(fut);
	pthread_mutex_unlock(&w->mu);
	if (aq_future_then(fut, slot_done, s, NULL) != 0) {
		/* No memory for the callback: wait here instead. */
		aq_future_get(fut, NULL, -1);
		slot_done(fut, s);
	}
	aq_future_release(fut);
}

/* Create the group on each stream (from the start, so jobs queued before
 * any worker existed are delivered); an existing group is fine. */
int aqr_ensure_groups(struct aqr_link *link, struct aqr_args *a)
{
	for (int s = 0; s < AQR_STREAMS; s++) {
		char key[AQR_PREFIX_MAX + 8];
		redisReply *r;
		int err;

		snprintf(key, sizeof(key), "%ss%d", link->cfg->prefix, s);
		aqr_args_reset(a);
		aqr_args_str(a, "XGROUP");
		aqr_args_str(a, "CREATE");
		aqr_args_str(a, key);
		aqr_args_str(a, AQR_GROUP);
		aqr_args_str(a, "0");
		aqr_args_str(a, "MKSTREAM");
		r = aqr_call(link, a, &err);
		if (!r)
			return err;
		if (r->type == REDIS_REPLY_ERROR &&
		    !aqr_is_err(r, "BUSYGROUP")) {
			err = aqr_is_err(r, "NOPERM") ? -EACCES : -EPROTO;
			freeReplyObject(r);
			return err;
		}
		freeReplyObject(r);
	}
	return 0;
}

/* (Re)connect the fetch link and make sure the groups exist. */
static int fetch_connect(aq_redis_worker *w)
{
	bool was = w->flink.connects > 0;
	int rc;

	if (w->flink.ctx)
		return 0;
	rc = was ? aqr_link_retry(&w->flink, &w->stop_fetch)
		 : aqr_link_connect(&w->flink);
	if (rc == 0 && was)
		atomic_fetch_add(&w->reconnects, 1);
	if (rc == 0 && (rc = aqr_ensure_groups(&w->flink, w->fargs)) != 0)
		aqr_link_close(&w->flink);
	return rc;
}

/* Start every job of a FETCH, LOAD or RECLAIM reply. */
void aqr_start_all(aq_redis_worker *w, const redisReply *r)
{
	for (size_t i = 0; r && r->type == REDIS_REPLY_ARRAY && i < r->elements;
	     i++)
		aqr_start(w, r->element[i]);
}

/* The group's cursor (last-delivered-id) of each stream into ids: an
 * entry after it has not been delivered to any worker. 0; 1 when a
 * stream or its group is missing (its id is then "$"); -1 when the link
 * broke. */
static int group_cursors(aq_redis_worker *w, char keys[][AQR_PREFIX_MAX + 8],
			 char ids[][48])
{
	struct aqr_args *a = w->fargs;
	int rc = 0, err;

	for (int s = 0; s < AQR_STREAMS; s++) {
		snprintf(keys[s], sizeof(keys[s]), "%ss%d", w->cfg.prefix, s);
		aqr_args_reset(a);
		aqr_args_str(a, "XINFO");
		aqr_args_str(a, "GROUPS");
		aqr_args_str(a, keys[s]);
		if (aqr_append(&w->flink, a) != 0)
			return -1;
	}
	for (int s = 0; s < AQR_STREAMS; s++) {
		redisReply *r = aqr_read(&w->flink, &err);

		if (!r)
			return -1;
		snprintf(ids[s], 48, "$");
		if (r->type != REDIS_REPLY_ARRAY)
			rc = 1; /* a Redis that lost its streams */
		for (size_t g = 0;
		     r->type == REDIS_REPLY_ARRAY && g < r->elements; g++) {
			const redisReply *f = r->element[g];
			bool ours = false;

			for (size_t i = 0; i + 1 < f->elements; i += 2) {
				const char *k = f->element[i]->str;
				const char *v = f->element[i + 1]->str;

				if (!k || !v)
					continue;
				if (strcmp(k, "name") == 0)
					ours = strcmp(v, AQR_GROUP) == 0;
				else if (ours &&
					 strcmp(k, "last-delivered-id") == 0)
					snprintf(ids[s], 48, "%s", v);
			}
		}
		freeReplyObject(r);
	}
	return rc;
}

/*
 * Nothing was fetched: wait until some stream has an entry the group has
 * not delivered yet, or FETCH_BLOCK_MS passed. The wait is a plain XREAD
 * from the group's cursors, which claims nothing: the FETCH that follows
 * takes at most the free slots, in priority order. (A blocking
 * XREADGROUP over the three streams would deliver up to one entry from
 * each, more than a worker with fewer free slots may hold.)
 */
static void fetch_wait(aq_redis_worker *w)
{
	struct aqr_args *a = w->fargs;
	char keys[AQR_STREAMS][AQR_PREFIX_MAX + 8], ids[AQR_STREAMS][48];
	redisReply *r;
	int err;

	switch (group_cursors(w, keys, ids)) {
	case -1:
		return; /* the link is closed: reconnect in fetch_main */
	case 1:
		if (aqr_ensure_groups(&w->flink, w->fargs) != 0)
			return;
		break;
	}
	aqr_args_reset(a);
	aqr_args_str(a, "XREAD");
	aqr_args_str(a, "COUNT");
	aqr_args_str(a, "1");
	aqr_args_str(a, "BLOCK");
	aqr_args_int(a, FETCH_BLOCK_MS);
	aqr_args_str(a, "STREAMS");
	for (int s = 0; s < AQR_STREAMS; s++)
		aqr_args_str(a, keys[s]);
	for (int s = 0; s < AQR_STREAMS; s++)
		aqr_args_str(a, ids[s]);
	r = aqr_call(&w->flink, a, &err);
	if (r)
		freeReplyObject(r);
}

/* A suspect that ran alone (worker_ctl.c) is settled once nothing is in
 * flight or reserved; then the worker takes jobs again, and its control
 * thread reclaims at once, since more suspects may wait (lock held). */
static void solo_settle(aq_redis_worker *w)
{
	if (w->solo && w->in_flight == 0 && w->reserved == 0) {
		w->solo = false;
		w->reclaim_now = true;
		pthread_cond_signal(&w->cv_ctl);
	}
}

/*
 * Should the control thread reclaim now rather than at its next tick
 * (lock held)? Yes when a suspect just settled (reclaim_now), and when
 * the worker is isolated and holds nothing: it may take the next suspect
 * itself. Either way the worker is empty when it asks, so the RECLAIM
 * takes a suspect (and the worker is busy again) or finds none waiting
 * (and isolate ends): each prompt reclaim is paid for by a settled job.
 */
bool aqr_reclaim_due(aq_redis_worker *w)
{
	solo_settle(w);
	if (atomic_load(&w->stop_fetch))
		return false;
	return w->reclaim_now ||
	       (w->isolate && w->in_flight == 0 && w->reserved == 0);
}

/* May the fetch thread take jobs now (lock held)? Not while a suspect
 * runs alone, nor while suspects wait for this worker to empty. */
static bool fetch_may(aq_redis_worker *w)
{
	solo_settle(w);
	return w->in_flight + w->reserved < w->concurrency && !w->solo &&
	       !w->isolate;
}

/*
 * Reserve every free slot for one fetch (fetch: waits until it may) or
 * one reclaim, so that the fetch and the control thread never both count
 * the same slot free; 0 if none, or when stopping. *empty (may be NULL):
 * the worker held nothing and nothing was reserved.
 */
unsigned aqr_reserve(aq_redis_worker *w, bool fetch, bool *empty)
{
	unsigned n = 0;
	bool may;

	pthread_mutex_lock(&w->mu);
	if (fetch) {
		while (!fetch_may(w) && !atomic_load(&w->stop_fetch))
			aqr_cond_wait_ms(&w->cv_free, &w->mu, 100);
		may = fetch_may(w);
	} else { /* a reclaim may end an isolation: it ignores isolate */
		solo_settle(w);
		may = !w->solo && w->in_flight + w->reserved < w->concurrency;
	}
	if (empty)
		*empty = w->in_flight == 0 && w->reserved == 0;
	if (may && !atomic_load(&w->stop_fetch)) {
		n = w->concurrency - w->in_flight - w->reserved;
		w->reserved += n;
	}
	pthread_mutex_unlock(&w->mu);
	return n;
}

/* Give a reservation back once the jobs it fetched count in flight. */
void aqr_unreserve(aq_redis_worker *w, unsigned n)
{
	pthread_mutex_lock(&w->mu);
	w->reserved -= n;
	if (aqr_reclaim_due(w)) /* a fetch that found nothing, isolated */
		pthread_cond_signal(&w->cv_ctl);
	pthread_cond_broadcast(&w->cv_free);
	pthread_mutex_unlock(&w->mu);
}

static void *fetch_main(void *arg)
{
	aq_redis_worker *w = arg;

	while (!atomic_load(&w->stop_fetch)) {
		unsigned free_slots = aqr_reserve(w, true, NULL);
		bool fetched = false;
		redisReply *r;
		int err;

		if (!free_slots)
			continue; /* stopping */
		if (fetch_connect(w) != 0) {
			aqr_unreserve(w, free_slots);
			continue;
		}
		aqr_args_script(w->fargs, &w->flink, AQR_FETCH, w->consumer,
				w->dead_max, w->max_deliveries);
		aqr_args_int(w->fargs, free_slots);
		r = aqr_call(&w->flink, w->fargs, &err);
		if (r && (aqr_is_err(r, "NOGROUP") ||
			  (r->type == REDIS_REPLY_ERROR &&
			   strstr(r->str, "NOGROUP"))))
			aqr_ensure_groups(&w->flink, w->fargs);
		if (r && r->type == REDIS_REPLY_ARRAY && r->elements > 0) {
			aqr_start_all(w, r);
			fetched = true;
		}
		if (r)
			freeReplyObject(r);
		aqr_unreserve(w, free_slots);
		if (r && !fetched)
			fetch_wait(w); /* nothing queued: wait for an entry */
	}
	return NULL;
}

int aqr_fetch_start(aq_redis_worker *w)
{
	return pthread_create(&w->fetch_thread, NULL, fetch_main, w) ? -EAGAIN
								     : 0;
}
