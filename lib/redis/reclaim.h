/* SPDX-License-Identifier: MIT */
/*
 * reclaim.h - a worker's reclaim side (reclaim.c), called by its control
 * thread (worker_ctl.c).
 */
#ifndef AQR_RECLAIM_H
#define AQR_RECLAIM_H

#include <stdint.h>

#include "worker.h"

/* Take over jobs idle past the visibility timeout: 0 when Redis answered
 * (or a suspect still runs here), -1 when not. */
int aqr_reclaim(aq_redis_worker *w);
/* When to reclaim next, after a reclaim at now (ms). */
int64_t aqr_reclaim_next(aq_redis_worker *w, int64_t now);

#endif
