/* SPDX-License-Identifier: MIT */
/*
 * job.h - a job record on the pool's side (see job.c): claiming it,
 * finishing it with the pool's bookkeeping, cancelling it.
 */
#ifndef AQ__JOB_H
#define AQ__JOB_H

#include <stdbool.h>
#include <stdint.h>

#include "future.h"

/*
 * Give a claimed (RUNNING or CANCELLING) record its final outcome: run
 * arg_destroy, store result and code, count the outcome in the pool's
 * statistics, publish the state (waking waiters and then-callbacks), and
 * tell the pool if the record was a timer user. The pool's reference
 * stays with the caller.
 */
void aq__job_finish(struct aq_future *rec, uint32_t final_state, int code,
		    void *result);

/*
 * Claim a record a worker has taken from a queue: PENDING -> RUNNING, or
 * -> cancelled when cancel is true (a cancelling shutdown). False when it
 * was not PENDING (a canceller owns it) or was cancelled here: the caller
 * then only drops the pool's reference.
 */
bool aq__job_claim(struct aq_future *rec, bool cancel);

#endif
