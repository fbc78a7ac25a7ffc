/* SPDX-License-Identifier: MIT */
/*
 * reply.h - a client's reply side (reply.c): the reply thread and the
 * delivery of outcomes, called by client.c.
 */
#ifndef AQR_REPLY_H
#define AQR_REPLY_H

#include <stddef.h>

#include "client.h"

/* Frees a future's result (struct aq_redis_result and its bytes). */
void aqr_result_free(void *result);
/* Resolve fut from an outcome as the scripts write it: state s (s, f, d,
 * x, c), code, value and message. */
void aqr_outcome_complete(aq_future *fut, const char *state, long code,
			  const char *val, size_t vlen, const char *msg);
/* The reply thread's body; arg is the client. */
void *aqr_reader_main(void *arg);

#endif
