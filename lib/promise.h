/* SPDX-License-Identifier: MIT */
/*
 * promise.h - futures the caller creates and resolves (see promise.c):
 * what the pool-aware layers need of them.
 */
#ifndef AQ__PROMISE_H
#define AQ__PROMISE_H

#include "future.h"

/* A promise is the one record without a cache. */
static inline bool aq__is_promise(const struct aq_future *fut)
{
	return !fut->cache;
}

/*
 * aq_future_cancel() of a promise: 0 if it was PENDING and is now
 * CANCELLED (waiters woken, then-callbacks delivered); -EALREADY if it is
 * final, being completed or being cancelled.
 */
int aq__promise_cancel(struct aq_future *fut);

#endif
