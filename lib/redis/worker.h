/* SPDX-License-Identifier: MIT */
/*
 * worker.h - a worker's state, shared by its fetch side (worker.c) and its
 * control side (worker_ctl.c, reclaim.c).
 */
#ifndef AQR_WORKER_H
#define AQR_WORKER_H

#include <pthread.h>
#include <stdatomic.h>

#include "redis.h"

/* One delivered job, from delivery until its pool job reported. */
struct aqr_slot {
	aq_redis_worker *w;
	const struct aq_redis_type *type;
	int sidx;     /* its stream (priority level) */
	char eid[48]; /* its stream entry id: the lease */
	char id[96];  /* the job id */
	/* The submitter's reply stream, or "" (fixed at submit). */
	char rt[AQR_PREFIX_MAX + 32];
	long long ttl; /* how long to keep its outcome (ms) */
	char *payload;
	size_t plen;
	struct aq_redis_result blob;  /* the payload, for types without
					 decode */
	aq_future *fut;               /* its pool job's (a reference), once
					 submitted (under mu) */
	bool undecodable;             /* set by the pool job */
	bool handed;                  /* handed back by a stop: its outcome is
					 no longer ours to report (under mu) */
	struct aqr_slot *prev, *next; /* the running list (under mu) */
};

/* An outcome waiting for the control thread to report it (FINISH). */
struct aqr_done {
	int sidx;
	char eid[48];
	char id[96];
	char rt[AQR_PREFIX_MAX + 32]; /* reply stream and ttl: its slot's */
	long long ttl;
	char outcome; /* s, f, d, h: see the FINISH script */
	int code;
	char *val; /* encoded result, malloc'ed */
	size_t vlen;
	char *msg;          /* malloc'ed, or NULL */
	const char *reason; /* dead-letter reason (static) */
	struct aqr_done *next;
};

struct aq_redis_worker {
	struct aqr_cfg cfg;
	struct aq_redis_type *types; /* the registry, names copied */
	unsigned ntypes;
	aq_pool *pool;
	bool own_pool;
	unsigned concurrency;
	char consumer[160];
	int64_t visibility_ms, heartbeat_ms;
	unsigned max_deliveries, dead_max;

	pthread_mutex_t mu;
	pthread_cond_t cv_free; /* a slot freed, or the done queue emptied */
	pthread_cond_t cv_ctl;  /* an outcome to report, or a stop */
	unsigned in_flight;     /* delivered and not yet settled in Redis */
	unsigned reserved;      /* slots a fetch or reclaim in progress
				   may fill (aqr_reserve) */
	bool solo;              /* a reclaimed suspect runs alone: fetch
				   nothing until in_flight is 0 */
	bool isolate;           /* suspects wait for a worker that holds
				   nothing: fetch nothing, drain */
	bool reclaim_now;       /* a solo run just ended: reclaim without
				   waiting for the next tick */
	unsigned local_running; /* pool jobs that have not reported */
	struct aqr_slot *running;
	struct aqr_done *done_head, *done_tail;
	unsigned ndone;     /* outcomes queued in done_head */
	int64_t done_since; /* when the oldest of them was queued (ms) */
	bool ctl_busy;      /* the control thread holds taken outcomes */
	bool stopped;

	_Atomic bool stop_fetch, stop_ctl;
	pthread_t fetch_thread, ctl_thread;
	struct aqr_link flink, clink; /* fetch's and control's */
	struct aqr_args *fargs, *cargs;

	_Atomic uint64_t completed, retried, dead_lettered, reclaimed, fenced,
		handed_back, reconnects;
};

int64_t aqr_now_ms(void);
void aqr_cond_wait_ms(pthread_cond_t *cv, pthread_mutex_t *mu, int64_t ms);
void aqr_done_push(aq_redis_worker *w, struct aqr_done *d);
void aqr_start(aq_redis_worker *w, const redisReply *job);
void aqr_start_all(aq_redis_worker *w, const redisReply *jobs);
int aqr_ensure_groups(struct aqr_link *link, struct aqr_args *a);
int aqr_fetch_start(aq_redis_worker *w);
unsigned aqr_reserve(aq_redis_worker *w, bool fetch, bool *empty);
bool aqr_reclaim_due(aq_redis_worker *w);
void aqr_unreserve(aq_redis_worker *w, unsigned n);
int aqr_queue_stats(struct aqr_link *link, struct aqr_args *a,
		    struct aq_redis_stats *st);

#endif
