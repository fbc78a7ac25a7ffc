/* SPDX-License-Identifier: MIT */
/*
 * help.h - helping while waiting (see help.c).
 */
#ifndef AQ__HELP_H
#define AQ__HELP_H

#include <stdatomic.h>
#include <stdbool.h>
#include <stdint.h>

#include "asyncq.h"

struct aq_pool;
struct aq_future;

/*
 * Wait, on a worker of pool, until done(ctx) or the deadline, running
 * queued jobs meanwhile: first any of the awaited futures' jobs that is
 * still queued, at any depth; naps on nap_word (a future's state, with
 * nap_waiters its waiter count) when there is nothing to run. 0 or
 * -ETIMEDOUT.
 */
int aq__help_wait(struct aq_pool *pool, bool (*done)(void *ctx), void *ctx,
		  aq_future *const *awaited, unsigned nawaited,
		  _Atomic uint32_t *nap_word, _Atomic uint32_t *nap_waiters,
		  int64_t deadline);

/*
 * aq_future_get() on a worker of fut's own pool: run fut here if it is
 * still queued, else help until it resolves. Its final state, or
 * -ETIMEDOUT.
 */
int aq__help_future(struct aq_pool *pool, struct aq_future *fut,
		    int64_t deadline);

#endif
