/* SPDX-License-Identifier: MIT */
/*
 * worker.h - the worker loop and the worker side of waiting (see
 * worker.c).
 */
#ifndef AQ__WORKER_H
#define AQ__WORKER_H

#include <stdatomic.h>
#include <stdbool.h>
#include <stdint.h>

struct aq_pool;
struct aq_future;

/* The body of a worker thread (the pool's worker_body). */
void aq__worker_loop(struct aq_pool *pool, unsigned index);

/* On a worker of pool: take one queued job and run it; false if none. */
bool aq__worker_help(struct aq_pool *pool);

/*
 * Wait, on a worker of pool, until done(ctx) or the deadline, running
 * queued jobs meanwhile; naps on nap_word (a future's state, with
 * nap_waiters its waiter count) when nothing is queued. 0 or -ETIMEDOUT.
 */
int aq__worker_wait_helping(struct aq_pool *pool, bool (*done)(void *ctx),
			    void *ctx, _Atomic uint32_t *nap_word,
			    _Atomic uint32_t *nap_waiters, int64_t deadline);

/*
 * aq_future_get() on a worker of fut's own pool: run fut here if it is
 * still queued, else help until it resolves. Its final state, or
 * -ETIMEDOUT.
 */
int aq__worker_wait(struct aq_pool *pool, struct aq_future *fut,
		    int64_t deadline);

#endif
