/* SPDX-License-Identifier: MIT */
/*
 * current.c - the running job's context: the thread-local record of what
 * a worker is running, saved and restored around nested calls, and the
 * aq_current_*() queries through which a job asks about itself.
 */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "clock.h"
#include "current.h"
#include "fault.h"
#include "pool.h"

_Thread_local struct aq_pool *aq__worker_pool;
_Thread_local struct aq__deque *aq__worker_deque;
_Thread_local struct aq__current aq__current;

AQ_API int aq_current_yield_due(void)
{
	struct aq_pool *pool = aq__worker_pool;
	int64_t now;

	/* Only inside a job's own call: not in its arg_destroy or a hook. */
	if (!pool || (!aq__current.rec && !aq__current_inline()))
		return 0;
	now = aq__now_ns();
	if (aq__current.slice_call != aq__current.calls) {
		/* First look in this call of the job: its slice starts now. */
		aq__current.slice_call = aq__current.calls;
		aq__current.slice_start = now;
		return 0;
	}
	if (now - aq__current.slice_start < pool->slice_ns)
		return 0;
	/* Relaxed: a hint; a stale answer costs one slice at most. */
	return aq__ring_nonempty(&pool->ring) ||
	       atomic_load_explicit(&pool->sched_held, memory_order_relaxed);
}

AQ_API unsigned aq_current_attempt(void)
{
	if (aq__current.rec)
		return aq__current.rec->attempt;
	return aq__current_inline() ? 1 : 0;
}

AQ_API int aq_current_cancelled(void)
{
	/* Relaxed: a flag polled by the job; no data rides on it. */
	return aq__current.rec &&
	       atomic_load_explicit(&aq__current.rec->cancel_requested,
				    memory_order_relaxed);
}

AQ_API aq_future *aq_current_dep(unsigned i)
{
	return aq__current.rec && i < aq__current.rec->ndeps
		       ? aq__current.rec->deps[i]
		       : NULL;
}

AQ_API unsigned aq_current_dep_count(void)
{
	return aq__current.rec ? aq__current.rec->ndeps : 0;
}

AQ_API int64_t aq_current_deadline(void)
{
	return aq__current.rec ? aq__current.rec->deadline_ns : 0;
}

AQ_API int aq_current_fail_msg(const char *message)
{
	size_t len;
	char *copy;

	if (!aq__current.rec || !message)
		return -EINVAL;
	len = strlen(message) + 1;
	copy = aq__malloc(len);
	if (!copy)
		return -ENOMEM;
	memcpy(copy, message, len);
	free(aq__current.rec->message);
	aq__current.rec->message = copy;
	return 0;
}
