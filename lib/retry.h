/* SPDX-License-Identifier: MIT */
/*
 * retry.h - what follows a failed attempt (see retry.c).
 */
#ifndef AQ__RETRY_H
#define AQ__RETRY_H

#include <stdbool.h>
#include <stdint.h>

#include "asyncq.h"

struct aq_pool;
struct aq_future;

/* Flags known, delays non-negative, never_retry present if counted. */
bool aq__retry_policy_valid(const struct aq_retry_policy *policy);

/* The delay before the attempt after attempt n (n >= 1) without jitter:
 * base * factor^(n-1), capped by max_delay_ns, at least 0. */
int64_t aq__retry_backoff(const struct aq_retry_policy *policy, unsigned n);

/*
 * A worker's attempt of rec failed with code. Schedule a retry if the
 * policy allows it and on_retry does not veto it: true, and the record is
 * no longer the caller's (it waits in the timer with the pool's reference,
 * or it was cancelled, here or by a canceller, and the reference dropped).
 * Otherwise false, and the caller ends the job with aq__retry_fail().
 */
bool aq__retry_schedule(struct aq_pool *pool, struct aq_future *rec, int code);

/* The job failed for good: on_error, then resolve FAILED. */
void aq__retry_fail(struct aq_future *rec, int code, void *result);

#endif
