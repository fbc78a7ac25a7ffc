/* SPDX-License-Identifier: MIT */
/*
 * timer.h - where delayed jobs and retry back-offs wait (see timer.c).
 */
#ifndef AQ_TIMER_H
#define AQ_TIMER_H

#include <pthread.h>
#include <stdbool.h>
#include <stdint.h>

struct aq_pool;
struct aq_future;

struct aq__timer {
	pthread_mutex_t lock;
	pthread_cond_t cond;      /* the timer thread sleeps here */
	struct aq_future **heap;  /* min-heap on due_ns, under lock */
	size_t len, cap;
	pthread_t thread;
	bool started;             /* the thread runs (started on first use) */
	bool stop;                /* under lock: the thread is to exit */
};

int aq__timer_init(struct aq__timer *timer);
/* Stop and join the thread, if it runs. */
void aq__timer_stop(struct aq_pool *pool);
/* Stop, cancel whatever still waits, free. */
void aq__timer_fini(struct aq_pool *pool);

/*
 * Hold a DELAYED or RETRYING record (with the pool's reference) until its
 * due_ns on the pool clock, then queue it. 0, -ENOMEM, the thread
 * library's error if the timer thread could not start, or -ECANCELED if a
 * canceller took the record first. On any error the record is not held:
 * the caller keeps the pool's reference (and finds a cancelled record no
 * longer in the state it set).
 */
int aq__timer_add(struct aq_pool *pool, struct aq_future *rec);

/* Take rec out before it fires: true if it was there (the caller now
 * holds the reference the timer held). */
bool aq__timer_remove(struct aq_pool *pool, struct aq_future *rec);

/* The clock moved or the pool is cancelling: re-examine the heap now. */
void aq__timer_kick(struct aq_pool *pool);

#endif
