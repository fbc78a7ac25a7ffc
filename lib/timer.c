/* SPDX-License-Identifier: MIT */
/*
 * timer.c - the pool's timer: a binary min-heap of job records ordered by
 * the time they are due, served by one timer thread per pool, started the
 * first time a job is delayed or waits for a retry.
 *
 * Delayed jobs and retry back-offs wait here, never in a sleeping worker.
 * When a record comes due the thread hands it to the due function its
 * owner gave it (the pool queues it on the ring: queue.c). Time is read
 * through the owner's clock (struct aq_clock), so a test can drive a
 * virtual clock and call aq_pool_clock_changed() to make due records fire
 * at once. The timer reads a record's due_ns, timer_index and state, and
 * calls nothing above the records.
 *
 * Ownership: a record in the heap carries its owner's reference. Whoever
 * takes it out owns that reference: the due function when it fires, or
 * aq_future_cancel() through aq__timer_remove().
 *
 * Costs: add and remove are O(log n) under one mutex (each record keeps its
 * heap index, so a cancel removes it at once rather than leaving it until
 * it is due). The lock is never held while a job, a callback or arg_destroy
 * runs. Weak spot: if the ring is full when a record comes due, the thread
 * waits for space, and the records behind it wait too.
 */
#include <errno.h>
#include <signal.h>
#include <stdlib.h>
#include <time.h>

#include "clock.h"
#include "fault.h"
#include "future.h"
#include "timer.h"

_Thread_local const struct aq__timer *aq__timer_self;

static void heap_set(struct aq__timer *t, size_t i, struct aq_future *rec)
{
	t->heap[i] = rec;
	rec->timer_index = i;
}

static void heap_up(struct aq__timer *t, size_t i)
{
	struct aq_future *rec = t->heap[i];

	while (i > 0) {
		size_t parent = (i - 1) / 2;

		if (t->heap[parent]->due_ns <= rec->due_ns)
			break;
		heap_set(t, i, t->heap[parent]);
		i = parent;
	}
	heap_set(t, i, rec);
}

static void heap_down(struct aq__timer *t, size_t i)
{
	struct aq_future *rec = t->heap[i];

	for (;;) {
		size_t child = 2 * i + 1;

		if (child >= t->len)
			break;
		if (child + 1 < t->len &&
		    t->heap[child + 1]->due_ns < t->heap[child]->due_ns)
			child++;
		if (rec->due_ns <= t->heap[child]->due_ns)
			break;
		heap_set(t, i, t->heap[child]);
		i = child;
	}
	heap_set(t, i, rec);
}

/* Remove heap[i]; the record's index becomes SIZE_MAX. */
static void heap_delete(struct aq__timer *t, size_t i)
{
	struct aq_future *gone = t->heap[i];

	t->len--;
	if (i < t->len) {
		heap_set(t, i, t->heap[t->len]);
		heap_down(t, i);
		heap_up(t, t->heap[i]->timer_index);
	}
	gone->timer_index = SIZE_MAX;
}

void aq__timer_init(struct aq__timer *t, const struct aq_clock *clock,
		    const _Atomic bool *flush, aq__timer_due_fn *due,
		    void *due_ctx)
{
	pthread_condattr_t attr;

	pthread_mutex_init(&t->lock, NULL);
	pthread_condattr_init(&attr);
	/* Waits are measured on the monotonic clock, like everything else. */
	pthread_condattr_setclock(&attr, CLOCK_MONOTONIC);
	pthread_cond_init(&t->cond, &attr);
	pthread_condattr_destroy(&attr);
	t->heap = NULL;
	t->len = t->cap = 0;
	t->started = t->stop = false;
	t->clock = clock;
	t->flush = flush;
	t->due = due;
	t->due_ctx = due_ctx;
}

static void timer_wait(struct aq__timer *t, int64_t wait_ns)
{
	struct timespec ts = aq__timespec(aq__deadline(wait_ns));

	pthread_cond_timedwait(&t->cond, &t->lock, &ts);
}

static void *timer_main(void *arg)
{
	struct aq__timer *t = arg;

	aq__timer_self = t; /* callbacks run here may not stop the owner */
	pthread_mutex_lock(&t->lock);
	while (!t->stop) {
		struct aq_future *rec;
		bool cancel;
		int64_t now;

		if (t->len == 0) {
			pthread_cond_wait(&t->cond, &t->lock);
			continue;
		}
		rec = t->heap[0];
		/* Relaxed: advisory, as in the workers. */
		cancel = atomic_load_explicit(t->flush, memory_order_relaxed);
		now = t->clock->now(t->clock->user);
		if (!cancel && rec->due_ns > now) {
			/* On a virtual clock this real-time wait is only a
			 * fallback: aq_pool_clock_changed() kicks us. */
			timer_wait(t, aq__time_diff(rec->due_ns, now));
			continue;
		}
		heap_delete(t, 0);
		pthread_mutex_unlock(&t->lock);
		t->due(t->due_ctx, rec, cancel);
		pthread_mutex_lock(&t->lock);
	}
	pthread_mutex_unlock(&t->lock);
	return NULL;
}

/* Under t->lock. The thread blocks every signal, like the workers. */
static int timer_start(struct aq__timer *t)
{
	sigset_t all, saved;
	int rc;

	sigfillset(&all);
	pthread_sigmask(SIG_SETMASK, &all, &saved);
	rc = aq__fault(AQ__FAULT_THREAD) ? EAGAIN : 0;
	if (!rc)
		rc = pthread_create(&t->thread, NULL, timer_main, t);
	pthread_sigmask(SIG_SETMASK, &saved, NULL);
	if (rc)
		return -rc;
	t->started = true;
	return 0;
}

int aq__timer_add(struct aq__timer *t, struct aq_future *rec)
{
	int rc = 0;

	pthread_mutex_lock(&t->lock);
	/* A canceller that took the record (it CASes the state, then looks
	 * here under this lock) must not find it added after its look. */
	{
		uint32_t state = atomic_load(&rec->state);

		if (state != AQ_STATE_DELAYED && state != AQ_STATE_RETRYING)
			rc = -ECANCELED;
	}
	if (rc == 0 && !t->started)
		rc = timer_start(t);
	if (rc == 0 && t->len == t->cap) {
		size_t cap = t->cap ? 2 * t->cap : 64;
		void *heap = aq__fault(AQ__FAULT_ALLOC)
				     ? NULL
				     : realloc(t->heap, cap * sizeof(*t->heap));

		if (heap) {
			t->heap = heap;
			t->cap = cap;
		} else {
			rc = -ENOMEM;
		}
	}
	if (rc == 0) {
		heap_set(t, t->len++, rec);
		heap_up(t, rec->timer_index);
		/* Wake the thread only if the new record is the next due. */
		if (rec->timer_index == 0)
			pthread_cond_signal(&t->cond);
	}
	pthread_mutex_unlock(&t->lock);
	return rc;
}

bool aq__timer_remove(struct aq__timer *t, struct aq_future *rec)
{
	bool found = false;

	pthread_mutex_lock(&t->lock);
	if (rec->timer_index != SIZE_MAX) {
		heap_delete(t, rec->timer_index);
		found = true;
	}
	pthread_mutex_unlock(&t->lock);
	return found;
}

void aq__timer_kick(struct aq__timer *t)
{
	pthread_mutex_lock(&t->lock);
	pthread_cond_signal(&t->cond);
	pthread_mutex_unlock(&t->lock);
}

void aq__timer_stop(struct aq__timer *t)
{
	pthread_mutex_lock(&t->lock);
	t->stop = true;
	pthread_cond_signal(&t->cond);
	pthread_mutex_unlock(&t->lock);
	if (t->started)
		pthread_join(t->thread, NULL);
	t->started = false;
}

void aq__timer_fini(struct aq__timer *t)
{
	aq__timer_stop(t);
	/* The owner waited for every record it put here (a pool's shutdown
	 * waits for its timer users), so this is empty unless the owner
	 * failed half-way through creation. */
	while (t->len) {
		struct aq_future *rec = t->heap[0];

		heap_delete(t, 0);
		t->due(t->due_ctx, rec, true);
	}
	free(t->heap);
	pthread_cond_destroy(&t->cond);
	pthread_mutex_destroy(&t->lock);
}
