/* SPDX-License-Identifier: MIT */
/*
 * reclaim.c - a worker's reclaim side, run by its control thread
 * (worker_ctl.c): take over the jobs of a worker that went quiet (the
 * RECLAIM script), run a suspect alone (solo) or stop fetching so that a
 * worker holding nothing takes it (isolate), and decide when to ask again.
 */
#include <stdbool.h>
#include <stdint.h>

#include "reclaim.h"

#define ISOLATE_POLL_MS 100 /* an isolated worker asks again this often */

/*
 * Take over jobs idle past the visibility timeout. They lost their worker
 * and run again only alone (the RECLAIM script): when this worker holds
 * nothing it may take one, and then fetches nothing else until it is
 * settled (solo); when it holds jobs and suspects wait, it stops fetching
 * until it is empty (isolate), so that some worker takes them. The
 * control loop calls it again at once when the solo run settles or the
 * isolated worker empties (aqr_reclaim_due), so a crashed worker's jobs
 * come back one a round trip, not one a tick. 0 when Redis answered (or
 * a suspect still runs here); -1 when not, and the next try waits.
 */
int aqr_reclaim(aq_redis_worker *w)
{
	bool empty;
	unsigned free_slots = aqr_reserve(w, false, &empty);
	const redisReply *jobs = NULL;
	redisReply *r;
	int err, rc = -1;

	pthread_mutex_lock(&w->mu);
	w->reclaim_now = false;
	if (w->solo) { /* its suspect still runs */
		pthread_mutex_unlock(&w->mu);
		if (free_slots)
			aqr_unreserve(w, free_slots);
		return 0;
	}
	pthread_mutex_unlock(&w->mu);
	aqr_args_script(w->cargs, &w->clink, AQR_RECLAIM, w->consumer,
			w->dead_max, w->max_deliveries);
	aqr_args_int(w->cargs, w->visibility_ms);
	aqr_args_int(w->cargs, free_slots);
	aqr_args_int(w->cargs, empty);
	r = aqr_call(&w->clink, w->cargs, &err);
	if (r && r->type == REDIS_REPLY_ARRAY && r->elements == 2 &&
	    r->element[1]->type == REDIS_REPLY_ARRAY) {
		jobs = r->element[1];
		pthread_mutex_lock(&w->mu);
		/* Set before the job counts in flight and the slots are given
		 * back: the fetch thread must not slip in beside it. */
		for (size_t i = 0; i < jobs->elements; i++)
			if (jobs->element[i]->elements >= 9)
				w->solo = true;
		w->isolate = aqr_int(r->element[0]) > 0;
		pthread_cond_broadcast(&w->cv_free);
		pthread_mutex_unlock(&w->mu);
		atomic_fetch_add(&w->reclaimed, jobs->elements);
		aqr_start_all(w, jobs);
		rc = 0;
	}
	if (r)
		freeReplyObject(r);
	if (free_slots)
		aqr_unreserve(w, free_slots);
	return rc;
}

/*
 * When to reclaim next, after a reclaim. Normally once a tick (a quarter
 * of the visibility timeout, at least 50 ms). An isolated worker that
 * still holds jobs asks every ISOLATE_POLL_MS instead: isolation is meant
 * to last only while suspects wait, and once other workers have taken
 * the last of them this worker's RECLAIM says so (isolate ends) and it
 * fetches again, instead of draining for nothing until its next tick
 * (up to a quarter of the visibility timeout). The poll is one script
 * (XPENDING over the three streams, and a look at each waiting suspect),
 * at the pace PROMOTE already runs, and only while this worker is
 * isolated.
 */
int64_t aqr_reclaim_next(aq_redis_worker *w, int64_t now)
{
	int64_t tick = w->visibility_ms / 4 > 50 ? w->visibility_ms / 4 : 50;
	bool isolated;

	pthread_mutex_lock(&w->mu);
	isolated = w->isolate && !w->solo;
	pthread_mutex_unlock(&w->mu);
	return now +
	       (isolated && tick > ISOLATE_POLL_MS ? ISOLATE_POLL_MS : tick);
}
