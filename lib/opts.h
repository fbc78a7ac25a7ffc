/* SPDX-License-Identifier: MIT */
/*
 * opts.h - a job's options on their way in (see opts.c).
 */
#ifndef AQ__OPTS_H
#define AQ__OPTS_H

#include <stdbool.h>
#include <stdint.h>

#include "asyncq.h"

struct aq_pool;
struct aq_future;

/* The job flags a submit knows. */
#define AQ__JOB_FLAGS (AQ_JOB_BLOCK | AQ_JOB_NOBLOCK)

/* Are opts well formed (flags, ranges, dependencies, retry policy)? */
bool aq__opts_valid(const struct aq_job_opts *opts);

/* Does this job need a record rather than the bare {fn, arg}? fut: the
 * caller wants a future. */
bool aq__opts_need_record(const struct aq_pool *pool,
			  const struct aq_job_opts *opts, bool fut);

/* How long this submit may wait for ring space: 0 = not at all, -1 =
 * forever, otherwise nanoseconds. */
int64_t aq__opts_wait_budget(const struct aq_pool *pool,
			     const struct aq_job_opts *opts);

/* Fill what the pool's scheduler may read of the job. */
void aq__opts_fill_sched(struct aq_future *rec, const struct aq_job_opts *opts);

/*
 * Fill the retry policy, the deadline and when the job may start
 * (rec->due_ns, INT64_MIN when not delayed) of rec, whose pool is set:
 * true if it is delayed. Also sets rec->timer_user.
 */
bool aq__opts_fill_time(struct aq_pool *pool, struct aq_future *rec,
			const struct aq_job_opts *opts);

#endif
