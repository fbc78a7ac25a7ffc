/* SPDX-License-Identifier: MIT */
/*
 * helpers.c - gates, polling, instrumented jobs and the other fixtures shared
 * by the test suites (helpers.h says what each is for).
 */
#include <errno.h>
#include <poll.h>
#include <sched.h>
#include <stdlib.h>
#include <string.h>
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

int64_t th_long_ns(void)
{
	return (int64_t)(th_poll_seconds() * 1e9);
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
	int64_t deadline = th_now_ns() + th_long_ns();

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
	int64_t deadline = th_now_ns() + th_long_ns();
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
			ck_assert_int_eq(
				aq_submit(pool, th_noop_job, NULL, NULL, &fut),
				0);
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

aq_pool *th_pool_cfg(const struct aq_pool_config *cfg)
{
	aq_pool *pool = NULL;
	int ret = aq_pool_create(&pool, cfg);

	ck_assert_msg(ret == 0, "aq_pool_create: %d", ret);
	ck_assert_ptr_nonnull(pool);
	return pool;
}

struct aq_pool_stats th_stats_of(aq_pool *pool)
{
	struct aq_pool_stats st;

	ck_assert_int_eq(aq_pool_stats(pool, &st), 0);
	return st;
}

int th_echo_job(void *arg, void **result)
{
	*result = arg;
	return 0;
}

int th_noop_job(void *arg, void **result)
{
	(void)arg;
	(void)result;
	return 0;
}

/* ---- worker hooks -------------------------------------------------------- */

_Thread_local struct th_hooks *th_tl_hooks;
_Thread_local int th_tl_index = -1;

void th_hooks_init(struct th_hooks *hk)
{
	memset(hk, 0, sizeof(*hk));
	pthread_mutex_init(&hk->mu, NULL);
	atomic_init(&hk->nstarts, 0);
	atomic_init(&hk->nstops, 0);
}

void th_hooks_destroy(struct th_hooks *hk)
{
	pthread_mutex_destroy(&hk->mu);
}

static void th_hook_start(unsigned index, void *user)
{
	struct th_hooks *hk = user;

	pthread_mutex_lock(&hk->mu);
	if (index >= TH_HK_MAX) {
		hk->out_of_range++;
	} else {
		if (hk->starts[index] != hk->stops[index])
			hk->wrong_thread++; /* started twice without a stop */
		hk->starts[index]++;
		hk->thread[index] = pthread_self();
	}
	if (++hk->live > hk->max_live)
		hk->max_live = hk->live;
	pthread_mutex_unlock(&hk->mu);
	th_tl_hooks = hk;
	th_tl_index = (int)index;
	atomic_fetch_add(&hk->nstarts, 1);
	if (hk->start_gate)
		th_gate_pass(hk->start_gate);
}

static void th_hook_stop(unsigned index, void *user)
{
	struct th_hooks *hk = user;

	pthread_mutex_lock(&hk->mu);
	if (index >= TH_HK_MAX) {
		hk->out_of_range++;
	} else {
		if (!pthread_equal(hk->thread[index], pthread_self()) ||
		    th_tl_index != (int)index || th_tl_hooks != hk)
			hk->wrong_thread++;
		hk->stops[index]++;
	}
	if (!hk->first_stop_ns)
		hk->first_stop_ns = th_now_ns();
	hk->live--;
	pthread_mutex_unlock(&hk->mu);
	th_tl_hooks = NULL;
	th_tl_index = -1;
	atomic_fetch_add(&hk->nstops, 1);
}

void th_hooks_cfg(struct aq_pool_config *cfg, struct th_hooks *hk)
{
	cfg->on_thread_start = th_hook_start;
	cfg->on_thread_stop = th_hook_stop;
	cfg->thread_user = hk;
}

aq_pool *th_hooked_pool(unsigned workers, struct th_hooks *hk)
{
	struct aq_pool_config cfg = { .workers = workers };

	th_hooks_cfg(&cfg, hk);
	return th_pool_cfg(&cfg);
}

/* ---- then-callbacks and channels ----------------------------------------- */

void th_then_rec_init(struct th_then_rec *r)
{
	memset(r, 0, sizeof(*r));
	atomic_init(&r->calls, 0);
}

void th_then_record(aq_future *fut, void *user)
{
	struct th_then_rec *r = user;

	r->result = NULL;
	r->get_rc = aq_future_get(fut, &r->result, 0);
	r->state = aq_future_state(fut);
	r->thread = pthread_self();
	r->on_worker = th_tl_hooks != NULL;
	atomic_fetch_add(&r->calls, 1);
}

void th_then_flag(aq_future *fut, void *user)
{
	(void)fut;
	atomic_store((atomic_int *)user, 1);
}

int th_fd_readable(int fd, int timeout_ms)
{
	struct pollfd p = { .fd = fd, .events = POLLIN };
	int rc;

	do
		rc = poll(&p, 1, timeout_ms);
	while (rc < 0 && errno == EINTR);
	return rc > 0 && (p.revents & POLLIN) ? 1 : 0;
}

aq_future *th_resolved_future(aq_pool *pool, void *result)
{
	atomic_int handed_out = 0;
	aq_future *fut;
	void *r = NULL;

	ck_assert_int_eq(aq_submit(pool, th_echo_job, result, NULL, &fut), 0);
	ck_assert_int_eq(aq_future_then(fut, th_then_flag, &handed_out, NULL),
			 0);
	ck_assert_int_eq(aq_future_get(fut, &r, -1), 0);
	ck_assert_ptr_eq(r, result);
	ck_assert(th_poll_int(&handed_out, 1));
	return fut;
}

/* ---- a pool held at a gate, and jobs that run after others --------------- */

void th_held_init(struct th_held_pool *h, unsigned workers)
{
	h->pool = th_pool(workers, 256, 0, 0);
	th_gate_init(&h->gate);
	for (unsigned i = 0; i < workers; i++) {
		aq_future *f = NULL;

		ck_assert_int_eq(aq_submit(h->pool, th_gate_job, &h->gate, NULL,
					   i ? &f : &h->gate_fut),
				 0);
		aq_future_release(f);
	}
	ck_assert(th_gate_wait_entered(&h->gate, (int)workers));
}

void th_held_fini(struct th_held_pool *h)
{
	th_gate_open(&h->gate);
	aq_future_release(h->gate_fut);
	aq_pool_destroy(h->pool);
	th_gate_destroy(&h->gate);
}

aq_future *th_submit_job(aq_pool *pool, struct th_job *j)
{
	struct aq_job_opts opts = { .arg_destroy = th_job_destroy };
	aq_future *f = NULL;

	ck_assert_int_eq(aq_submit(pool, th_job_fn, j, &opts, &f), 0);
	return f;
}

void th_link_init(struct th_link *l, intptr_t add)
{
	memset(l, 0, sizeof(*l));
	l->add = add;
	atomic_init(&l->ran, 0);
	atomic_init(&l->destroyed, 0);
}

int th_link_job(void *arg, void **result)
{
	struct th_link *l = arg;
	intptr_t sum = l->add;

	atomic_fetch_add(&l->ran, 1);
	if (l->nested) {
		aq_future_get(l->nested, NULL, -1);
		l->attempt_after_nested = aq_current_attempt();
	}
	l->deps_seen = aq_current_dep_count();
	l->past_end_null = aq_current_dep(l->deps_seen) == NULL;
	for (unsigned i = 0; i < l->deps_seen; i++) {
		void *r = NULL;
		int rc = aq_future_get(aq_current_dep(i), &r, 0);

		if (rc && !l->dep_rc)
			l->dep_rc = rc;
		sum += (intptr_t)r;
	}
	*result = (void *)sum;
	return 0;
}

void th_link_destroy(void *arg)
{
	atomic_fetch_add(&((struct th_link *)arg)->destroyed, 1);
}

int th_submit_after(aq_pool *pool, aq_job_fn fn, void *arg,
		    void (*destroy)(void *), aq_future *const *deps, unsigned n,
		    aq_future **fut)
{
	struct aq_job_opts opts = { .arg_destroy = destroy,
				    .after = deps,
				    .after_count = n };

	return aq_submit(pool, fn, arg, &opts, fut);
}

aq_future *th_link_after(aq_pool *pool, struct th_link *l,
			 aq_future *const *deps, unsigned n)
{
	aq_future *f = NULL;

	ck_assert_int_eq(th_submit_after(pool, th_link_job, l, th_link_destroy,
					 deps, n, &f),
			 0);
	return f;
}

/* ---- conservation runs --------------------------------------------------- */

int th_cjob_fn(void *arg, void **result)
{
	struct th_cjob *j = arg;

	atomic_fetch_add(&j->calls, 1);
	if (j->yields_left > 0) {
		j->yields_left--;
		return AQ_YIELD;
	}
	atomic_fetch_add(&j->completions, 1);
	*result = (void *)(intptr_t)(j->index + 1);
	return 0;
}

void th_cjob_destroy(void *arg)
{
	atomic_fetch_add(&((struct th_cjob *)arg)->destroyed, 1);
}

uint32_t th_xorshift32(uint32_t *s)
{
	*s ^= *s << 13;
	*s ^= *s >> 17;
	*s ^= *s << 5;
	return *s;
}

/* ---- shutdown in another thread ------------------------------------------ */

static void *th_shutdown_main(void *arg)
{
	struct th_shutdown *s = arg;

	s->ret = aq_pool_shutdown(s->pool, s->flags);
	for (int i = 0; i < s->ncheck; i++)
		if (aq_future_state(s->check_futs[i]) < AQ_STATE_SUCCEEDED)
			s->not_final++;
	atomic_store(&s->returned, 1);
	return NULL;
}

void th_shutdown_start(struct th_shutdown *s, aq_pool *pool, unsigned flags)
{
	s->pool = pool;
	s->flags = flags;
	s->ret = 1;
	atomic_init(&s->returned, 0);
	if (!s->check_futs)
		s->ncheck = 0;
	s->not_final = 0;
	ck_assert_int_eq(pthread_create(&s->tid, NULL, th_shutdown_main, s), 0);
}
