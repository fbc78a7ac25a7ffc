/* SPDX-License-Identifier: MIT */
/*
 * helpers.h - gates, polling and instrumented jobs shared by the test suites.
 *
 * The tests never sleep a fixed time to get an order: a gate job holds a
 * worker until the test opens the gate, and when a test must wait for
 * something another thread does, it polls with a generous bound
 * (th_poll_seconds(), scaled by CK_TIMEOUT_MULTIPLIER) so that a busy
 * machine slows a test down but never fails it.
 */
#ifndef AQ_TEST_HELPERS_H
#define AQ_TEST_HELPERS_H

#include <pthread.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdint.h>

#include <asyncq.h>

/* Tcase timeouts in seconds; Check multiplies them by CK_TIMEOUT_MULTIPLIER. */
#define TH_TIMEOUT 60
#define TH_TIMEOUT_STRESS 300

/* CK_TIMEOUT_MULTIPLIER as a number (1 when unset or not a number > 0). */
double th_time_scale(void);

/* The bound of every poll: 10 s times th_time_scale(). */
double th_poll_seconds(void);

/* CLOCK_MONOTONIC in nanoseconds. */
int64_t th_now_ns(void);

/* aq_pool_now() of a valid pool, as a value (aborts if it fails). */
int64_t th_pool_now(const aq_pool *pool);

void th_sleep_ms(unsigned ms);

/*
 * Call pred(ctx) every millisecond until it returns true (then true) or
 * th_poll_seconds() pass (then false).
 */
bool th_poll(bool (*pred)(void *ctx), void *ctx);

/* Poll until *p == value. */
bool th_poll_int(atomic_int *p, int value);

/* Poll until *p >= value. */
bool th_poll_int_ge(atomic_int *p, int value);

/* Poll until aq_future_state(fut) == state. */
bool th_poll_state(aq_future *fut, enum aq_state state);

/*
 * A gate: jobs that pass it block until the test opens it. `entered` counts
 * the threads that reached it, so a test knows a worker is held.
 */
struct th_gate {
	pthread_mutex_t mu;
	pthread_cond_t cv;
	bool open;       /* under mu */
	atomic_int entered; /* threads that reached the gate */
	atomic_int passed;  /* threads that went through it */
};

void th_gate_init(struct th_gate *g);
void th_gate_destroy(struct th_gate *g);
void th_gate_open(struct th_gate *g);
void th_gate_pass(struct th_gate *g);
/* Poll until at least n threads have reached the gate. */
bool th_gate_wait_entered(struct th_gate *g, int n);

/* A job whose arg is a struct th_gate: passes it, returns 0. */
int th_gate_job(void *arg, void **result);

/* A job whose arg is an atomic_long: adds one, returns 0. */
int th_count_job(void *arg, void **result);

/*
 * An instrumented job: arg is a struct th_job. It passes the gate (if
 * any), counts its run, stores `result` (if store_result) and returns ret.
 * th_job_destroy() is the matching arg_destroy: it counts its calls and
 * remembers the thread of the last one.
 */
struct th_job {
	struct th_gate *gate; /* passed first when not NULL */
	struct th_gate *destroy_gate; /* passed by th_job_destroy() after it
					 counted, when not NULL */
	int ret;              /* what the job returns */
	bool store_result;    /* whether it writes *result */
	void *result;         /* what it writes there */
	atomic_int ran;       /* times the job ran */
	atomic_int destroyed; /* times th_job_destroy() ran on it */
	atomic_int returned;  /* the job has returned (0 or 1) */
	atomic_int returned_at_destroy; /* `returned` as th_job_destroy()
					   saw it */
	pthread_t destroy_thread; /* thread of the last th_job_destroy() */
};

void th_job_init(struct th_job *j, struct th_gate *gate, int ret,
		 bool store_result, void *result);
int th_job_fn(void *arg, void **result);
void th_job_destroy(void *arg);

/* Plain loads for assertions (Check prints the expression of a failed
 * assertion; atomic_load() would print as its macro expansion). */
static inline int th_ld(atomic_int *p)
{
	return atomic_load(p);
}

static inline long th_ldl(atomic_long *p)
{
	return atomic_load(p);
}

/*
 * Submit with AQ_JOB_NOBLOCK, retrying on -EAGAIN (yielding between tries)
 * for up to th_poll_seconds(). For callers that must not block in the
 * library yet need every submit accepted.
 */
int th_submit_retry(aq_pool *pool, aq_job_fn fn, void *arg,
		    void (*arg_destroy)(void *), aq_future **fut);

/* A pool with `workers` workers and `capacity` slots; fails the test if not. */
aq_pool *th_pool(unsigned workers, unsigned capacity, unsigned flags,
		 int64_t block_timeout_ns);

/*
 * Fail each allocation of aq_pool_create(cfg) in turn (fault.h), from the
 * first until a create succeeds: every failed one must return -ENOMEM and
 * leave *pool untouched (leaks are the ASan run's to catch); the pool that
 * finally comes up must run a job. Returns how many points were failed.
 */
long th_create_alloc_faults(const struct aq_pool_config *cfg);

#endif
