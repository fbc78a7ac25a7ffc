/* SPDX-License-Identifier: MIT */
/*
 * timer.h - where delayed jobs and retry back-offs wait (see timer.c). The
 * timer knows records and a clock, not pools: when a record comes due it
 * calls the due function it was given.
 */
#ifndef AQ__TIMER_H
#define AQ__TIMER_H

#include <pthread.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdint.h>

#include "asyncq.h"

struct aq_future;

/*
 * Called on the timer thread, without the timer's lock, for a record that
 * came due (cancel false) or that must be cancelled (cancel true: *flush
 * was set, or the timer is being torn down). The record comes with the
 * reference the timer held, which the function now owns.
 */
typedef void aq__timer_due_fn(void *ctx, struct aq_future *rec, bool cancel);

struct aq__timer {
	pthread_mutex_t lock;
	pthread_cond_t cond;     /* the timer thread sleeps here */
	struct aq_future **heap; /* min-heap on due_ns, under lock */
	size_t len, cap;
	pthread_t thread;
	bool started; /* the thread runs (started on first use) */
	bool stop;    /* under lock: the thread is to exit */
	/* Set at init, read-only after. */
	const struct aq_clock *clock; /* the time due_ns is on */
	const _Atomic bool *flush;    /* when true everything is due now, as
					 cancelled (a cancelling shutdown) */
	aq__timer_due_fn *due;
	void *due_ctx;
};

/* The timer whose thread this is, or NULL. */
extern _Thread_local const struct aq__timer *aq__timer_self;

void aq__timer_init(struct aq__timer *t, const struct aq_clock *clock,
		    const _Atomic bool *flush, aq__timer_due_fn *due,
		    void *due_ctx);
/* Stop and join the thread, if it runs. */
void aq__timer_stop(struct aq__timer *t);
/* Stop, cancel (through due) whatever still waits, free. */
void aq__timer_fini(struct aq__timer *t);

/*
 * Hold a DELAYED or RETRYING record (with the owner's reference) until its
 * due_ns on the clock, then hand it to due. 0, -ENOMEM, the thread
 * library's error if the timer thread could not start, or -ECANCELED if a
 * canceller took the record first. On any error the record is not held:
 * the caller keeps the reference (and finds a cancelled record no longer
 * in the state it set).
 */
int aq__timer_add(struct aq__timer *t, struct aq_future *rec);

/* Take rec out before it fires: true if it was there (the caller now
 * holds the reference the timer held). */
bool aq__timer_remove(struct aq__timer *t, struct aq_future *rec);

/* The clock moved or *flush was set: re-examine the heap now. */
void aq__timer_kick(struct aq__timer *t);

#endif
