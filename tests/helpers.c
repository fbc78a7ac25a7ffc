/* SPDX-License-Identifier: MIT */
/*
 * helpers.c - gates, polling and instrumented jobs shared by the test suites.
 */
#include <errno.h>
#include <sched.h>
#include <stdlib.h>
#include <time.h>

#include <check.h>

#include "fault.h"
#include "helpers.h"

double th_time_scale(void)
{
	const char *s = getenv("CK_TIMEOUT_MULTIPLIER");
	char *end;
	double m;

	if (!s || !*s)
		return 1.0;
	m = strtod(s, &end);
	if (*end != '\0' || !(m > 0))
		return 1.0;
	return m < 1.0 ? 1.0 : m;
}

double th_poll_seconds(void)
{
	return 10.0 * th_time_scale();
}

int64_t th_now_ns(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (int64_t)ts.tv_sec * 1000000000 + ts.tv_nsec;
}

int64_t th_pool_now(const aq_pool *pool)
{
	int64_t now;

	if (aq_pool_now(pool, &now) != 0)
		abort();
	return now;
}

void th_sleep_ms(unsigned ms)
{
	struct timespec ts = { .tv_sec = ms / 1000,
			       .tv_nsec = (long)(ms % 1000) * 1000000L };

	while (nanosleep(&ts, &ts) == -1 && errno == EINTR)
		;
}

bool th_poll(bool (*pred)(void *ctx), void *ctx)
{
	int64_t deadline = th_now_ns() + (int64_t)(th_poll_seconds() * 1e9);

	for (;;) {
		if (pred(ctx))
			return true;
		if (th_now_ns() > deadline)
			return pred(ctx);
		th_sleep_ms(1);
	}
}

struct int_cmp {
	atomic_int *p;
	int value;
};

static bool int_eq(void *ctx)
{
	struct int_cmp *c = ctx;

	return atomic_load(c->p) == c->value;
}

static bool int_ge(void *ctx)
{
	struct int_cmp *c = ctx;

	return atomic_load(c->p) >= c->value;
}

bool th_poll_int(atomic_int *p, int value)
{
	struct int_cmp c = { p, value };

	return th_poll(int_eq, &c);
}

bool th_poll_int_ge(atomic_int *p, int value)
{
	struct int_cmp c = { p, value };

	return th_poll(int_ge, &c);
}

struct state_cmp {
	aq_future *fut;
	enum aq_state state;
};

static bool state_eq(void *ctx)
{
	struct state_cmp *c = ctx;

	return aq_future_state(c->fut) == c->state;
}

bool th_poll_state(aq_future *fut, enum aq_state state)
{
	struct state_cmp c = { fut, state };

	return th_poll(state_eq, &c);
}

void th_gate_init(struct th_gate *g)
{
	pthread_mutex_init(&g->mu, NULL);
	pthread_cond_init(&g->cv, NULL);
	g->open = false;
	atomic_init(&g->entered, 0);
	atomic_init(&g->passed, 0);
}

void th_gate_destroy(struct th_gate *g)
{
	pthread_cond_destroy(&g->cv);
	pthread_mutex_destroy(&g->mu);
}

void th_gate_open(struct th_gate *g)
{
	pthread_mutex_lock(&g->mu);
	g->open = true;
	pthread_cond_broadcast(&g->cv);
	pthread_mutex_unlock(&g->mu);
}

void th_gate_pass(struct th_gate *g)
{
	atomic_fetch_add(&g->entered, 1);
	pthread_mutex_lock(&g->mu);
	while (!g->open)
		pthread_cond_wait(&g->cv, &g->mu);
	pthread_mutex_unlock(&g->mu);
	atomic_fetch_add(&g->passed, 1);
}

bool th_gate_wait_entered(struct th_gate *g, int n)
{
	return th_poll_int_ge(&g->entered, n);
}

int th_gate_job(void *arg, void **result)
{
	(void)result;
	th_gate_pass(arg);
	return 0;
}

int th_count_job(void *arg, void **result)
{
	(void)result;
	atomic_fetch_add((atomic_long *)arg, 1);
	return 0;
}

void th_job_init(struct th_job *j, struct th_gate *gate, int ret,
		 bool store_result, void *result)
{
	j->gate = gate;
	j->destroy_gate = NULL;
	j->ret = ret;
	j->store_result = store_result;
	j->result = result;
	atomic_init(&j->ran, 0);
	atomic_init(&j->destroyed, 0);
	atomic_init(&j->returned, 0);
	atomic_init(&j->returned_at_destroy, -1);
}

int th_job_fn(void *arg, void **result)
{
	struct th_job *j = arg;

	atomic_fetch_add(&j->ran, 1);
	if (j->gate)
		th_gate_pass(j->gate);
	if (j->store_result)
		*result = j->result;
	atomic_store(&j->returned, 1);
	return j->ret;
}

void th_job_destroy(void *arg)
{
	struct th_job *j = arg;

	j->destroy_thread = pthread_self();
	atomic_store(&j->returned_at_destroy, atomic_load(&j->returned));
	atomic_fetch_add(&j->destroyed, 1);
	if (j->destroy_gate)
		th_gate_pass(j->destroy_gate);
}

int th_submit_retry(aq_pool *pool, aq_job_fn fn, void *arg,
		    void (*arg_destroy)(void *), aq_future **fut)
{
	struct aq_job_opts opts = { .flags = AQ_JOB_NOBLOCK,
				    .arg_destroy = arg_destroy };
	int64_t deadline = th_now_ns() + (int64_t)(th_poll_seconds() * 1e9);
	int ret;

	for (;;) {
		ret = aq_submit(pool, fn, arg, &opts, fut);
		if (ret != -EAGAIN || th_now_ns() > deadline)
			return ret;
		sched_yield();
	}
}

aq_pool *th_pool(unsigned workers, unsigned capacity, unsigned flags,
		 int64_t block_timeout_ns)
{
	struct aq_pool_config cfg = { .workers = workers,
				      .queue_capacity = capacity,
				      .flags = flags,
				      .block_timeout_ns = block_timeout_ns };
	aq_pool *pool = NULL;
	int ret = aq_pool_create(&pool, &cfg);

	ck_assert_msg(ret == 0, "aq_pool_create(workers %u, capacity %u, "
		      "flags %#x): %d", workers, capacity, flags, ret);
	ck_assert_ptr_nonnull(pool);
	return pool;
}

static int th_fault_noop(void *arg, void **result)
{
	(void)arg;
	(void)result;
	return 0;
}

long th_create_alloc_faults(const struct aq_pool_config *cfg)
{
	long points = 0;

	for (long nth = 1;; nth++) {
		aq_pool *pool = (aq_pool *)(uintptr_t)0x1;
		aq_future *fut;
		int rc;

		aq__fault_arm(AQ__FAULT_ALLOC, nth);
		rc = aq_pool_create(&pool, cfg);
		aq__fault_arm(AQ__FAULT_ALLOC, 0);
		if (rc == 0) {
			ck_assert_int_eq(aq_submit(pool, th_fault_noop, NULL,
						   NULL, &fut), 0);
			ck_assert_int_eq(aq_future_get(fut, NULL, -1), 0);
			aq_future_release(fut);
			aq_pool_destroy(pool);
			return points;
		}
		ck_assert_msg(rc == -ENOMEM, "allocation %ld failed: %d", nth,
			      rc);
		ck_assert_ptr_eq(pool, (aq_pool *)(uintptr_t)0x1);
		points++;
	}
}
