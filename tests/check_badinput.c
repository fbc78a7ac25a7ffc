/* SPDX-License-Identifier: MIT */
/* check_badinput.c - every public function, every bad argument it can see:
 * the table-driven sweep, and a simple call-by-call pass. */

/*
 * Three tables drive one test: pool configurations that aq_pool_create()
 * must refuse, job options that aq_submit() must refuse, and every other
 * bad call (NULL handles and functions, unknown flags, out-of-range sizes,
 * calls after shutdown, double cancels, job-context functions outside a
 * job, misuse from inside a job). Each entry names the function it aims at
 * and the code its man page documents. The test then checks that none of
 * them changed anything: out-parameters keep their sentinels, no
 * arg_destroy or then-callback ran, the pools' counters are as they were
 * (a pool that was shut down counts its -ESHUTDOWN refusals under
 * `rejected`, as documented, and nothing else), the fixture's futures keep
 * their states, and the pools and the channel still work.
 *
 * The API check: the names of every AQ_API function in include/asyncq.h are
 * read at run time and each must have an entry here (or be on the short
 * list of functions that take no argument at all), so a new public function
 * fails this test until its bad inputs are added. The header is found next
 * to this file's path as compiled (tests/ -> include/); AQ_HEADER=path
 * overrides that.
 */
#include <errno.h>
#include <limits.h>
#include <math.h>
#include <sched.h>
#include <stdatomic.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <check.h>

#include "helpers.h"
#include "suites.h"

/* Fewest bad inputs the tables must hold; they hold more. */
#define BAD_INPUTS_FLOOR 150

/* A case's return when it saw an out-parameter written on failure, or
 * another side effect it checks for itself. */
#define SIDE_EFFECT 0x7fff0001

static int sentinel_obj;
#define SENTINEL ((void *)&sentinel_obj)

static atomic_int destroyed;  /* arg_destroy calls: must stay 0 */
static atomic_int then_calls; /* then-callbacks of bad registrations */

static void count_destroy(void *arg)
{
	(void)arg;
	atomic_fetch_add(&destroyed, 1);
}

static void count_then(aq_future *fut, void *user)
{
	(void)fut;
	(void)user;
	atomic_fetch_add(&then_calls, 1);
}

static int fail_job(void *arg, void **result)
{
	(void)arg;
	(void)result;
	return 5;
}

/* ---- the fixture -------------------------------------------------------- */

static struct fixture {
	aq_pool *pool;       /* running: must come out untouched */
	aq_pool *dead;       /* shut down before the cases */
	aq_pool *jobpool;    /* runs the jobs that misuse from inside */
	aq_channel *channel;
	aq_future *done;     /* SUCCEEDED */
	aq_future *failed;   /* FAILED */
	aq_future *cancelled; /* CANCELLED by a cancel that returned 0 */
	aq_future *pending;  /* DELAYED an hour: must stay so */
	aq_future *to_release; /* resolved; a case releases it */
	unsigned dead_refusals; /* -ESHUTDOWN submits made to dead */
} fx;

/* ---- aq_pool_create: configurations it must refuse ------------------- */

static const struct aq_clock clock_without_now = { NULL, NULL };
static const struct aq_retry_policy retry_neg_base = { .max_attempts = 2,
						       .base_delay_ns = -1 };
static const struct aq_retry_policy retry_neg_max = { .max_attempts = 2,
						      .max_delay_ns = -1 };
static const struct aq_retry_policy retry_neg_factor = { .max_attempts = 2,
							 .factor = -0.5 };
static const struct aq_retry_policy retry_bad_flag = { .max_attempts = 2,
						       .flags = 0x2 };
static const struct aq_retry_policy retry_high_flag = {
	.max_attempts = 2, .flags = AQ_RETRY_JITTER | 0x80000000u
};
static const struct aq_retry_policy retry_never_without_list = {
	.max_attempts = 2, .never_retry_count = 1
};
static struct aq_retry_policy retry_nan_factor; /* factor = NAN, at setup */
static const int cpu_negative[] = { -1 };
static const int cpu_too_big[] = { CPU_SETSIZE };
static const int cpu_one_bad[] = { 0, -7 };

/* Scheduler ops, some incomplete, some whose init fails. */
static atomic_int sched_destroys; /* destroy of a policy whose init failed */

static int sched_init_ok(void **state, const void *params)
{
	(void)params;
	*state = NULL;
	return 0;
}

static int sched_init_enomem(void **state, const void *params)
{
	(void)state;
	(void)params;
	return -ENOMEM;
}

static int sched_init_positive(void **state, const void *params)
{
	(void)state;
	(void)params;
	return 5;
}

static int sched_init_not_errno(void **state, const void *params)
{
	(void)state;
	(void)params;
	return -5000;
}

static int sched_push(void *state, aq_sched_job *job)
{
	(void)state;
	(void)job;
	return 0;
}

static aq_sched_job *sched_pop(void *state)
{
	(void)state;
	return NULL;
}

static void sched_destroy(void *state)
{
	(void)state;
	atomic_fetch_add(&sched_destroys, 1);
}

static const struct aq_sched_ops ops_no_init = {
	"no-init", NULL, sched_push, sched_pop, NULL, sched_destroy
};
static const struct aq_sched_ops ops_no_push = {
	"no-push", sched_init_ok, NULL, sched_pop, NULL, sched_destroy
};
static const struct aq_sched_ops ops_no_pop = {
	"no-pop", sched_init_ok, sched_push, NULL, NULL, sched_destroy
};
static const struct aq_sched_ops ops_no_destroy = {
	"no-destroy", sched_init_ok, sched_push, sched_pop, NULL, NULL
};
static const struct aq_sched_ops ops_init_enomem = {
	"enomem", sched_init_enomem, sched_push, sched_pop, NULL, sched_destroy
};
static const struct aq_sched_ops ops_init_positive = {
	"positive", sched_init_positive, sched_push, sched_pop, NULL,
	sched_destroy
};
static const struct aq_sched_ops ops_init_not_errno = {
	"not-errno", sched_init_not_errno, sched_push, sched_pop, NULL,
	sched_destroy
};
static const struct aq_sched_priority_params prio_neg_aging = {
	.aging_ns = -1
};
static const struct aq_sched_priority_params prio_huge_aging = {
	.aging_ns = INT64_MAX
};
static const struct aq_sched_fair_params fair_huge_cap = {
	.max_running = UINT_MAX
};

/* Schedulers are filled in at setup (their ops come from functions). */
enum sched_pick { SCHED_AS_IS, SCHED_PRIORITY, SCHED_FAIR };

static const struct create_case {
	const char *fn;   /* the function whose argument is bad */
	const char *what;
	struct aq_pool_config cfg;
	enum sched_pick sched;
	bool nan_retry;   /* cfg.retry = &retry_nan_factor */
	int expect;
} create_cases[] = {
	{ "aq_pool_create", "unknown flag 0x4", { .workers = 1, .flags = 0x4 },
	  0, false, -EINVAL },
	{ "aq_pool_create", "unknown flag 0x80000000",
	  { .workers = 1, .flags = AQ_POOL_BLOCK | 0x80000000u }, 0, false,
	  -EINVAL },
	{ "aq_pool_create", "workers AQ_WORKERS_MAX + 1",
	  { .workers = AQ_WORKERS_MAX + 1 }, 0, false, -EINVAL },
	{ "aq_pool_create", "workers UINT_MAX", { .workers = UINT_MAX }, 0,
	  false, -EINVAL },
	{ "aq_pool_create", "queue_capacity AQ_QUEUE_CAPACITY_MAX + 1",
	  { .workers = 1, .queue_capacity = AQ_QUEUE_CAPACITY_MAX + 1 }, 0,
	  false, -EINVAL },
	{ "aq_pool_create", "queue_capacity UINT_MAX",
	  { .workers = 1, .queue_capacity = UINT_MAX }, 0, false, -EINVAL },
	{ "aq_pool_create", "slice_ns -1", { .workers = 1, .slice_ns = -1 }, 0,
	  false, -EINVAL },
	{ "aq_pool_create", "slice_ns INT64_MIN",
	  { .workers = 1, .slice_ns = INT64_MIN }, 0, false, -EINVAL },
	{ "aq_pool_create", "clock without now",
	  { .workers = 1, .clock = &clock_without_now }, 0, false, -EINVAL },
	{ "aq_pool_create", "retry base_delay_ns -1",
	  { .workers = 1, .retry = &retry_neg_base }, 0, false, -EINVAL },
	{ "aq_pool_create", "retry max_delay_ns -1",
	  { .workers = 1, .retry = &retry_neg_max }, 0, false, -EINVAL },
	{ "aq_pool_create", "retry factor -0.5",
	  { .workers = 1, .retry = &retry_neg_factor }, 0, false, -EINVAL },
	{ "aq_pool_create", "retry factor NaN", { .workers = 1 }, 0, true,
	  -EINVAL },
	{ "aq_pool_create", "retry unknown flag 0x2",
	  { .workers = 1, .retry = &retry_bad_flag }, 0, false, -EINVAL },
	{ "aq_pool_create", "retry unknown flag 0x80000000",
	  { .workers = 1, .retry = &retry_high_flag }, 0, false, -EINVAL },
	{ "aq_pool_create", "retry never_retry_count without never_retry",
	  { .workers = 1, .retry = &retry_never_without_list }, 0, false,
	  -EINVAL },
	{ "aq_pool_create", "min_workers > max_workers",
	  { .min_workers = 2, .max_workers = 1 }, 0, false, -EINVAL },
	{ "aq_pool_create", "max_workers AQ_WORKERS_MAX + 1",
	  { .workers = 1, .max_workers = AQ_WORKERS_MAX + 1 }, 0, false,
	  -EINVAL },
	{ "aq_pool_create", "min_workers AQ_WORKERS_MAX + 1",
	  { .min_workers = AQ_WORKERS_MAX + 1 }, 0, false, -EINVAL },
	{ "aq_pool_create", "max_workers UINT_MAX",
	  { .workers = 2, .min_workers = 1, .max_workers = UINT_MAX }, 0,
	  false, -EINVAL },
	{ "aq_pool_create", "idle_timeout_ns -1",
	  { .workers = 1, .min_workers = 1, .max_workers = 2,
	    .idle_timeout_ns = -1 }, 0, false, -EINVAL },
	{ "aq_pool_create", "ncpus 1, cpus NULL", { .workers = 1, .ncpus = 1 },
	  0, false, -EINVAL },
	{ "aq_pool_create", "cpus {-1}",
	  { .workers = 1, .cpus = cpu_negative, .ncpus = 1 }, 0, false,
	  -EINVAL },
	{ "aq_pool_create", "cpus {CPU_SETSIZE}",
	  { .workers = 1, .cpus = cpu_too_big, .ncpus = 1 }, 0, false,
	  -EINVAL },
	{ "aq_pool_create", "cpus {0, -7}",
	  { .workers = 1, .cpus = cpu_one_bad, .ncpus = 2 }, 0, false,
	  -EINVAL },
	{ "aq_pool_create", "stack_size 1", { .workers = 1, .stack_size = 1 },
	  0, false, -EINVAL },
	{ "aq_pool_create", "sched without init",
	  { .workers = 1, .sched = &ops_no_init }, 0, false, -EINVAL },
	{ "aq_pool_create", "sched without push",
	  { .workers = 1, .sched = &ops_no_push }, 0, false, -EINVAL },
	{ "aq_pool_create", "sched without pop",
	  { .workers = 1, .sched = &ops_no_pop }, 0, false, -EINVAL },
	{ "aq_pool_create", "sched without destroy",
	  { .workers = 1, .sched = &ops_no_destroy }, 0, false, -EINVAL },
	{ "aq_pool_create", "sched init fails -ENOMEM",
	  { .workers = 1, .sched = &ops_init_enomem }, 0, false, -ENOMEM },
	{ "aq_pool_create", "sched init returns 5 (not an errno)",
	  { .workers = 1, .sched = &ops_init_positive }, 0, false, -EINVAL },
	{ "aq_pool_create", "sched init returns -5000 (not an errno)",
	  { .workers = 1, .sched = &ops_init_not_errno }, 0, false, -EINVAL },
	{ "aq_sched_priority", "aging_ns -1",
	  { .workers = 1, .sched_params = &prio_neg_aging }, SCHED_PRIORITY,
	  false, -EINVAL },
	{ "aq_sched_priority", "aging_ns INT64_MAX",
	  { .workers = 1, .sched_params = &prio_huge_aging }, SCHED_PRIORITY,
	  false, -EINVAL },
	{ "aq_sched_fair", "max_running UINT_MAX",
	  { .workers = 1, .sched_params = &fair_huge_cap }, SCHED_FAIR, false,
	  -EINVAL },
};

static int run_create_case(const struct create_case *c)
{
	struct aq_pool_config cfg = c->cfg;
	aq_pool *pool = SENTINEL;
	int ret;

	if (c->sched == SCHED_PRIORITY)
		cfg.sched = aq_sched_priority();
	else if (c->sched == SCHED_FAIR)
		cfg.sched = aq_sched_fair();
	if (c->nan_retry)
		cfg.retry = &retry_nan_factor;
	ret = aq_pool_create(&pool, &cfg);
	if (ret == 0) {
		aq_pool_destroy(pool);
		return 0;
	}
	return pool == SENTINEL ? ret : SIDE_EFFECT;
}

/* ---- aq_submit: options it must refuse ---------------------------------- */

static aq_future *const after_null_entry[] = { NULL };
static aq_future *after_second_null[2]; /* [0] = fx.done at setup */

enum submit_pool { TO_POOL, TO_NULL, TO_DEAD };

static const struct submit_case {
	const char *what;
	enum submit_pool to;
	bool null_fn;
	bool no_opts;     /* opts NULL (then no arg_destroy either) */
	struct aq_job_opts opts; /* arg_destroy is added when opts are used */
	bool nan_retry;   /* opts.retry = &retry_nan_factor */
	int expect;
} submit_cases[] = {
	{ "NULL pool", TO_NULL, false, false, { 0 }, false, -EINVAL },
	{ "NULL pool, NULL opts", TO_NULL, false, true, { 0 }, false,
	  -EINVAL },
	{ "NULL fn", TO_POOL, true, false, { 0 }, false, -EINVAL },
	{ "NULL fn, NULL opts", TO_POOL, true, true, { 0 }, false, -EINVAL },
	{ "NULL pool and fn", TO_NULL, true, true, { 0 }, false, -EINVAL },
	{ "unknown flag 0x4", TO_POOL, false, false, { .flags = 0x4 }, false,
	  -EINVAL },
	{ "unknown flag 0x80000000", TO_POOL, false, false,
	  { .flags = AQ_JOB_NOBLOCK | 0x80000000u }, false, -EINVAL },
	{ "AQ_JOB_BLOCK | AQ_JOB_NOBLOCK", TO_POOL, false, false,
	  { .flags = AQ_JOB_BLOCK | AQ_JOB_NOBLOCK }, false, -EINVAL },
	{ "priority AQ_PRIORITY_MIN - 1", TO_POOL, false, false,
	  { .priority = AQ_PRIORITY_MIN - 1 }, false, -EINVAL },
	{ "priority AQ_PRIORITY_MAX + 1", TO_POOL, false, false,
	  { .priority = AQ_PRIORITY_MAX + 1 }, false, -EINVAL },
	{ "priority INT_MIN", TO_POOL, false, false, { .priority = INT_MIN },
	  false, -EINVAL },
	{ "priority INT_MAX", TO_POOL, false, false, { .priority = INT_MAX },
	  false, -EINVAL },
	{ "weight AQ_WEIGHT_MAX + 1", TO_POOL, false, false,
	  { .weight = AQ_WEIGHT_MAX + 1 }, false, -EINVAL },
	{ "weight UINT_MAX", TO_POOL, false, false, { .weight = UINT_MAX },
	  false, -EINVAL },
	{ "delay_ns -1", TO_POOL, false, false, { .delay_ns = -1 }, false,
	  -EINVAL },
	{ "delay_ns INT64_MIN", TO_POOL, false, false,
	  { .delay_ns = INT64_MIN }, false, -EINVAL },
	{ "run_at_ns -1", TO_POOL, false, false, { .run_at_ns = -1 }, false,
	  -EINVAL },
	{ "deadline_ns -1", TO_POOL, false, false, { .deadline_ns = -1 }, false,
	  -EINVAL },
	{ "deadline_ns INT64_MIN", TO_POOL, false, false,
	  { .deadline_ns = INT64_MIN }, false, -EINVAL },
	{ "after_count AQ_AFTER_MAX + 1", TO_POOL, false, false,
	  { .after = after_null_entry, .after_count = AQ_AFTER_MAX + 1 },
	  false, -EINVAL },
	{ "after_count UINT_MAX", TO_POOL, false, false,
	  { .after = after_null_entry, .after_count = UINT_MAX }, false,
	  -EINVAL },
	{ "after NULL, after_count 1", TO_POOL, false, false,
	  { .after_count = 1 }, false, -EINVAL },
	{ "after {NULL}", TO_POOL, false, false,
	  { .after = after_null_entry, .after_count = 1 }, false, -EINVAL },
	{ "after {done, NULL}", TO_POOL, false, false,
	  { .after = after_second_null, .after_count = 2 }, false, -EINVAL },
	{ "retry base_delay_ns -1", TO_POOL, false, false,
	  { .retry = &retry_neg_base }, false, -EINVAL },
	{ "retry max_delay_ns -1", TO_POOL, false, false,
	  { .retry = &retry_neg_max }, false, -EINVAL },
	{ "retry factor -0.5", TO_POOL, false, false,
	  { .retry = &retry_neg_factor }, false, -EINVAL },
	{ "retry factor NaN", TO_POOL, false, false, { 0 }, true, -EINVAL },
	{ "retry unknown flag", TO_POOL, false, false,
	  { .retry = &retry_bad_flag }, false, -EINVAL },
	{ "retry never_retry_count without never_retry", TO_POOL, false, false,
	  { .retry = &retry_never_without_list }, false, -EINVAL },
	{ "bad option to a shut-down pool", TO_DEAD, false, false,
	  { .priority = AQ_PRIORITY_MAX + 1 }, false, -EINVAL },
	{ "NULL fn to a shut-down pool", TO_DEAD, true, false, { 0 }, false,
	  -EINVAL },
	/* Well-formed jobs refused: these count as rejected. */
	{ "after shutdown", TO_DEAD, false, false, { 0 }, false, -ESHUTDOWN },
	{ "after shutdown, NULL opts", TO_DEAD, false, true, { 0 }, false,
	  -ESHUTDOWN },
	{ "after shutdown, delayed", TO_DEAD, false, false, { .delay_ns = 1 },
	  false, -ESHUTDOWN },
	{ "after shutdown, blocking", TO_DEAD, false, false,
	  { .flags = AQ_JOB_BLOCK, .timeout_ns = 1000000 }, false,
	  -ESHUTDOWN },
	{ "after shutdown, after {done}", TO_DEAD, false, false,
	  { .after = after_second_null, .after_count = 1 }, false,
	  -ESHUTDOWN },
};

/* Each case is tried with aq_submit() and, as a batch of one job, with
 * aq_submit_batch(): the same job must meet the same refusal. */
static int run_submit_case(const struct submit_case *c, bool batch)
{
	struct aq_job_opts opts = c->opts;
	aq_pool *pool = c->to == TO_POOL ? fx.pool
			: c->to == TO_DEAD ? fx.dead
					   : NULL;
	struct aq_job job = { c->null_fn ? NULL : th_noop_job, NULL };
	aq_future *fut = SENTINEL;
	int ret;

	opts.arg_destroy = count_destroy;
	if (c->nan_retry)
		opts.retry = &retry_nan_factor;
	if (batch) {
		ret = aq_submit_batch(pool, &job, 1, c->no_opts ? NULL : &opts,
				      &fut);
		if (ret == 1)
			ret = 0;
	} else {
		ret = aq_submit(pool, job.fn, job.arg,
				c->no_opts ? NULL : &opts, &fut);
	}
	if (ret == 0) {
		aq_future_get(fut, NULL, -1);
		aq_future_release(fut);
		return 0;
	}
	if (ret == -ESHUTDOWN && pool == fx.dead)
		fx.dead_refusals++;
	/* On failure *fut is set to NULL (aq_submit(3)). */
	return fut == NULL ? ret : SIDE_EFFECT;
}

/* ---- aq_submit_batch: what only a batch can get wrong --------------------- */

static const struct aq_job two_jobs_second_null[2] = { { th_noop_job, NULL },
						       { NULL, NULL } };

static int batch_null_pool(void)
{
	struct aq_job job = { th_noop_job, NULL };

	return aq_submit_batch(NULL, &job, 1, NULL, NULL);
}

static int batch_null_pool_empty(void)
{
	return aq_submit_batch(NULL, NULL, 0, NULL, NULL);
}

static int batch_null_jobs(void)
{
	aq_future *futs[1] = { SENTINEL };
	int ret = aq_submit_batch(fx.pool, NULL, 1, NULL, futs);

	return futs[0] == NULL ? ret : SIDE_EFFECT;
}

/* n must fit the int return: refused before the array is read (it holds
 * one job) and before futs is written (it holds one pointer). */
static int batch_n_too_big(void)
{
	struct aq_job job = { th_noop_job, NULL };
	aq_future *futs[1] = { SENTINEL };
	int ret = aq_submit_batch(fx.pool, &job, (unsigned)INT_MAX + 1, NULL,
				  futs);

	return futs[0] == SENTINEL ? ret : SIDE_EFFECT;
}

/* One bad job refuses the whole batch: the good one before it must not
 * run (the "nothing changed" checks count the pool's jobs). */
static int batch_second_fn_null(void)
{
	aq_future *futs[2] = { SENTINEL, SENTINEL };
	int ret = aq_submit_batch(fx.pool, two_jobs_second_null, 2, NULL, futs);

	return futs[0] == NULL && futs[1] == NULL ? ret : SIDE_EFFECT;
}

static int batch_second_fn_null_ff(void)
{
	return aq_submit_batch(fx.pool, two_jobs_second_null, 2, NULL, NULL);
}

static int batch_bad_opts(void)
{
	static const struct aq_job_opts bad = { .flags = AQ_JOB_BLOCK |
							 AQ_JOB_NOBLOCK };
	struct aq_job job = { th_noop_job, NULL };

	return aq_submit_batch(fx.pool, &job, 1, &bad, NULL);
}

/* ---- everything else ----------------------------------------------------- */

static int create_null_out(void)
{
	return aq_pool_create(NULL, NULL);
}

static int create_null_out_cfg(void)
{
	struct aq_pool_config cfg = { .workers = 1 };

	return aq_pool_create(NULL, &cfg);
}

static int shutdown_null(void)
{
	return aq_pool_shutdown(NULL, AQ_SHUTDOWN_DRAIN);
}

static int shutdown_null_cancel(void)
{
	return aq_pool_shutdown(NULL, AQ_SHUTDOWN_CANCEL);
}

static int shutdown_flag_2(void)
{
	return aq_pool_shutdown(fx.pool, 0x2);
}

static int shutdown_flag_high(void)
{
	return aq_pool_shutdown(fx.pool, AQ_SHUTDOWN_CANCEL | 0x80000000u);
}

static int timed_null(void)
{
	return aq_pool_shutdown_timed(NULL, AQ_SHUTDOWN_DRAIN, 0);
}

static int timed_null_forever(void)
{
	return aq_pool_shutdown_timed(NULL, AQ_SHUTDOWN_CANCEL, -1);
}

static int timed_flag_4(void)
{
	return aq_pool_shutdown_timed(fx.pool, 0x4, 1000);
}

static int timed_flag_high(void)
{
	return aq_pool_shutdown_timed(fx.pool, 0x80000000u, -1);
}

static int running_null_pool(void)
{
	uint64_t ids[2] = { 7, 7 };
	int ret = aq_pool_running_jobs(NULL, ids, 2);

	return ids[0] == 7 && ids[1] == 7 ? ret : SIDE_EFFECT;
}

static int running_null_ids(void)
{
	return aq_pool_running_jobs(fx.pool, NULL, 1);
}

static int running_null_ids_many(void)
{
	return aq_pool_running_jobs(fx.pool, NULL, UINT_MAX);
}

static int destroy_null(void)
{
	aq_pool_destroy(NULL);
	return 0;
}

static int workers_null(void)
{
	return aq_pool_workers(NULL);
}

static int capacity_null(void)
{
	return aq_pool_capacity(NULL);
}

static int resize_null(void)
{
	return aq_pool_resize(NULL, 1, 1);
}

static int resize_min_zero(void)
{
	return aq_pool_resize(fx.pool, 0, 1);
}

static int resize_both_zero(void)
{
	return aq_pool_resize(fx.pool, 0, 0);
}

static int resize_min_above_max(void)
{
	return aq_pool_resize(fx.pool, 2, 1);
}

static int resize_max_too_big(void)
{
	return aq_pool_resize(fx.pool, 1, AQ_WORKERS_MAX + 1);
}

static int resize_uint_max(void)
{
	return aq_pool_resize(fx.pool, UINT_MAX, UINT_MAX);
}

static int resize_dead(void)
{
	return aq_pool_resize(fx.dead, 1, 2);
}

static int resize_dead_bad(void)
{
	return aq_pool_resize(fx.dead, 0, 2);
}

static int attempt_outside(void)
{
	return (int)aq_current_attempt();
}

static int cancelled_outside(void)
{
	return aq_current_cancelled();
}

static int deadline_outside(void)
{
	return aq_current_deadline() == 0 ? 0 : SIDE_EFFECT;
}

static int fail_msg_outside(void)
{
	return aq_current_fail_msg("not in a job");
}

static int fail_msg_null_outside(void)
{
	return aq_current_fail_msg(NULL);
}

static int dep_outside(void)
{
	return aq_current_dep(0) == NULL ? 0 : SIDE_EFFECT;
}

static int dep_far_outside(void)
{
	return aq_current_dep(UINT_MAX) == NULL ? 0 : SIDE_EFFECT;
}

static int dep_count_outside(void)
{
	return (int)aq_current_dep_count();
}

static int yield_due_outside(void)
{
	return aq_current_yield_due();
}

static int now_null(void)
{
	int64_t now = 5;

	/* *now is left alone on failure. */
	return now == 5 && aq_pool_now(NULL, &now) == -EINVAL && now == 5
		       ? -EINVAL
		       : SIDE_EFFECT;
}

static int now_out_null(void)
{
	return aq_pool_now(fx.pool, NULL);
}

static int clock_changed_null(void)
{
	return aq_pool_clock_changed(NULL);
}

static int priority_null(void)
{
	return aq_sched_job_priority(NULL);
}

static int group_null(void)
{
	return aq_sched_job_group(NULL) == 0 ? 0 : SIDE_EFFECT;
}

static int weight_null(void)
{
	return (int)aq_sched_job_weight(NULL);
}

static int hint_null(void)
{
	return aq_sched_job_hint(NULL) == 0 ? 0 : SIDE_EFFECT;
}

static int enqueue_null(void)
{
	return aq_sched_job_enqueue_ns(NULL) == 0 ? 0 : SIDE_EFFECT;
}

static int seq_null(void)
{
	return aq_sched_job_seq(NULL) == 0 ? 0 : SIDE_EFFECT;
}

static int runs_null(void)
{
	return (int)aq_sched_job_runs(NULL);
}

static int slots_null(void)
{
	return aq_sched_job_slots(NULL) == NULL ? 0 : SIDE_EFFECT;
}

static int get_null(void)
{
	void *result = SENTINEL;
	int ret = aq_future_get(NULL, &result, 0);

	return result == SENTINEL ? ret : SIDE_EFFECT;
}

static int get_null_forever(void)
{
	void *result = SENTINEL;
	int ret = aq_future_get(NULL, &result, -1);

	return result == SENTINEL ? ret : SIDE_EFFECT;
}

static int get_null_timeout(void)
{
	return aq_future_get(NULL, NULL, 1000000);
}

static int cancel_null(void)
{
	return aq_future_cancel(NULL);
}

static int cancel_succeeded(void)
{
	return aq_future_cancel(fx.done);
}

static int cancel_failed(void)
{
	return aq_future_cancel(fx.failed);
}

static int cancel_twice(void)
{
	return aq_future_cancel(fx.cancelled); /* the first returned 0 */
}

static int promise_create_null(void)
{
	return aq_future_create(NULL, NULL, 0);
}

static int promise_create_flags(void)
{
	aq_future *fut = SENTINEL;
	int ret = aq_future_create(&fut, NULL, 0x1);

	return fut == SENTINEL ? ret : SIDE_EFFECT;
}

static int promise_complete_null(void)
{
	return aq_future_complete(NULL, 0, NULL, NULL);
}

static int promise_complete_pool_future(void)
{
	return aq_future_complete(fx.pending, 0, NULL, NULL);
}

static int promise_complete_bad_code(void)
{
	aq_future *fut;
	int ret;

	if (aq_future_create(&fut, NULL, 0) != 0)
		return SIDE_EFFECT;
	ret = aq_future_complete(fut, -EINVAL, NULL, NULL);
	if (aq_future_state(fut) != AQ_STATE_PENDING)
		ret = SIDE_EFFECT;
	aq_future_release(fut);
	return ret;
}

static int promise_complete_twice(void)
{
	aq_future *fut;
	int ret = SIDE_EFFECT;

	if (aq_future_create(&fut, NULL, 0) != 0)
		return SIDE_EFFECT;
	if (aq_future_complete(fut, 0, NULL, NULL) == 0)
		ret = aq_future_complete(fut, 0, NULL, NULL);
	aq_future_release(fut);
	return ret;
}

static int promise_complete_cancelled(void)
{
	aq_future *fut;
	int ret = SIDE_EFFECT;

	if (aq_future_create(&fut, NULL, 0) != 0)
		return SIDE_EFFECT;
	if (aq_future_cancel(fut) == 0)
		ret = aq_future_complete(fut, 0, NULL, NULL);
	aq_future_release(fut);
	return ret;
}

static int retain_null(void)
{
	return aq_future_retain(NULL) == NULL ? 0 : SIDE_EFFECT;
}

static int wait_all_null_array(void)
{
	return aq_wait_all(NULL, 1, 0);
}

static int wait_all_null_entry(void)
{
	aq_future *futs[2] = { fx.done, NULL };

	return aq_wait_all(futs, 2, -1);
}

static int wait_all_null_first(void)
{
	aq_future *futs[2] = { NULL, fx.pending };

	return aq_wait_all(futs, 2, -1);
}

/* aq_wait_any: *index must stay untouched on failure. */
static int wait_any_case(aq_future *const *futs, unsigned n, bool index_ptr)
{
	unsigned index = 77;
	int ret = aq_wait_any(futs, n, -1, index_ptr ? &index : NULL);

	return index == 77 ? ret : SIDE_EFFECT;
}

static int wait_any_null_array(void)
{
	return wait_any_case(NULL, 1, true);
}

static int wait_any_zero(void)
{
	aq_future *futs[1] = { fx.done };

	return wait_any_case(futs, 0, true);
}

static int wait_any_null_index(void)
{
	aq_future *futs[1] = { fx.done };

	return wait_any_case(futs, 1, false);
}

static int wait_any_null_entry(void)
{
	aq_future *futs[2] = { fx.pending, NULL };

	return wait_any_case(futs, 2, true);
}

/* aq_future_error: *err must stay untouched on failure. */
static int error_case(const aq_future *fut)
{
	struct aq_error err, want;
	int ret;

	memset(&err, 0x5a, sizeof(err));
	want = err;
	ret = aq_future_error(fut, &err);
	return memcmp(&err, &want, sizeof(err)) == 0 ? ret : SIDE_EFFECT;
}

static int error_null(void)
{
	return error_case(NULL);
}

static int error_null_err(void)
{
	return aq_future_error(fx.failed, NULL);
}

static int error_succeeded(void)
{
	return error_case(fx.done);
}

static int error_cancelled(void)
{
	return error_case(fx.cancelled);
}

static int error_pending(void)
{
	return error_case(fx.pending);
}

static int state_null(void)
{
	return (int)aq_future_state(NULL);
}

static int release_null(void)
{
	aq_future_release(NULL);
	return 0;
}

static int release_resolved(void)
{
	aq_future_release(fx.to_release);
	fx.to_release = NULL;
	return 0;
}

static int stats_null_pool(void)
{
	struct aq_pool_stats st, want;
	int ret;

	memset(&st, 0x5a, sizeof(st));
	want = st;
	ret = aq_pool_stats(NULL, &st);
	return memcmp(&st, &want, sizeof(st)) == 0 ? ret : SIDE_EFFECT;
}

static int stats_null_out(void)
{
	return aq_pool_stats(fx.pool, NULL);
}

static int window_null_since(void)
{
	struct aq_pool_stats now, want;
	int ret;

	ck_assert_int_eq(aq_pool_stats(fx.pool, &now), 0);
	want = now;
	ret = aq_pool_stats_window(NULL, &now);
	return memcmp(&now, &want, sizeof(now)) == 0 ? ret : SIDE_EFFECT;
}

static int window_null_now(void)
{
	struct aq_pool_stats since;

	ck_assert_int_eq(aq_pool_stats(fx.pool, &since), 0);
	return aq_pool_stats_window(&since, NULL);
}

/* Arguments swapped: the later snapshot as `since`. */
static int window_backwards(void)
{
	struct aq_pool_stats earlier, later, want;
	int ret;

	ck_assert_int_eq(aq_pool_stats(fx.pool, &earlier), 0);
	do /* until the clock has moved: equal times are not backwards */
		ck_assert_int_eq(aq_pool_stats(fx.pool, &later), 0);
	while (later.taken_ns == earlier.taken_ns);
	want = earlier;
	ret = aq_pool_stats_window(&later, &earlier);
	return memcmp(&earlier, &want, sizeof(want)) == 0 ? ret : SIDE_EFFECT;
}

/* aq_pool_metrics(): buf must keep its sentinel. */
static int metrics_call(aq_pool *const *pools, unsigned n, bool null_buf)
{
	char buf[8] = "sentinl";
	int ret = aq_pool_metrics(pools, n, null_buf ? NULL : buf,
				  sizeof(buf));

	return strcmp(buf, "sentinl") == 0 ? ret : SIDE_EFFECT;
}

static int metrics_null_pools(void)
{
	return metrics_call(NULL, 1, false);
}

static int metrics_no_pools(void)
{
	aq_pool *pools[1] = { fx.pool };

	return metrics_call(pools, 0, false);
}

static int metrics_null_entry(void)
{
	aq_pool *pools[2] = { fx.pool, NULL };

	return metrics_call(pools, 2, false);
}

static int metrics_null_buf(void)
{
	aq_pool *pools[1] = { fx.pool };

	return metrics_call(pools, 1, true);
}

/* Two pools without a name: both would be pool="default". */
static int metrics_same_name(void)
{
	aq_pool *pools[2] = { fx.pool, fx.jobpool };

	return metrics_call(pools, 2, false);
}

static int then_null_fut(void)
{
	return aq_future_then(NULL, count_then, NULL, NULL);
}

static int then_null_fut_channel(void)
{
	return aq_future_then(NULL, count_then, NULL, fx.channel);
}

static int then_null_fn(void)
{
	return aq_future_then(fx.done, NULL, NULL, NULL);
}

static int then_null_fn_channel(void)
{
	return aq_future_then(fx.pending, NULL, NULL, fx.channel);
}

static int channel_create_null(void)
{
	return aq_channel_create(NULL, 0);
}

static int channel_create_flags(unsigned flags)
{
	aq_channel *ch = SENTINEL;
	int ret = aq_channel_create(&ch, flags);

	if (ret == 0) {
		aq_channel_destroy(ch);
		return 0;
	}
	return ch == SENTINEL ? ret : SIDE_EFFECT;
}

static int channel_create_flag_1(void)
{
	return channel_create_flags(1);
}

static int channel_create_flag_high(void)
{
	return channel_create_flags(0x80000000u);
}

static int channel_create_null_flags(void)
{
	return aq_channel_create(NULL, 1);
}

static int channel_fd_null(void)
{
	return aq_channel_fd(NULL);
}

static int dispatch_null(void)
{
	return aq_channel_dispatch(NULL, 0);
}

static int dispatch_null_max(void)
{
	return aq_channel_dispatch(NULL, 5);
}

static int channel_destroy_null(void)
{
	aq_channel_destroy(NULL);
	return 0;
}

static int strerror_code(int code)
{
	const char *s = aq_strerror(code);

	return s && strcmp(s, "Unknown error") == 0 ? 0 : SIDE_EFFECT;
}

static int strerror_unknown(void)
{
	return strerror_code(-100000);
}

static int strerror_int_min(void)
{
	return strerror_code(INT_MIN);
}

static int strerror_below_errno(void)
{
	return strerror_code(-4097); /* AQ_YIELD is not a return code */
}

/* ---- misuse from inside a job ----------------------------------------- */

/* Run fn on fx.jobpool's worker and return what it returned; with_record
 * gives the job a record (a future), else it runs as a bare
 * fire-and-forget job. */
struct in_job {
	int (*fn)(void);
	atomic_int ret;
	atomic_int done;
};

static int in_job_trampoline(void *arg, void **result)
{
	struct in_job *j = arg;

	(void)result;
	atomic_store(&j->ret, j->fn());
	atomic_store(&j->done, 1);
	return 0;
}

static int in_job(int (*fn)(void), bool with_record,
		  aq_future *const *after, unsigned after_count)
{
	struct in_job j = { .fn = fn };
	struct aq_job_opts opts = { .after = after,
				    .after_count = after_count };
	aq_future *fut = NULL;
	int ret;

	atomic_init(&j.ret, SIDE_EFFECT);
	atomic_init(&j.done, 0);
	ret = aq_submit(fx.jobpool, in_job_trampoline, &j,
			after_count ? &opts : NULL, with_record ? &fut : NULL);
	ck_assert_int_eq(ret, 0);
	ck_assert_msg(th_poll_int(&j.done, 1), "the job did not run");
	if (fut) {
		ck_assert_int_eq(aq_future_get(fut, NULL, -1), 0);
		aq_future_release(fut);
	}
	return atomic_load(&j.ret);
}

static int own_shutdown(void)
{
	return aq_pool_shutdown(fx.jobpool, AQ_SHUTDOWN_DRAIN);
}

static int own_shutdown_cancel(void)
{
	return aq_pool_shutdown(fx.jobpool, AQ_SHUTDOWN_CANCEL);
}

static int own_shutdown_timed(void)
{
	return aq_pool_shutdown_timed(fx.jobpool, AQ_SHUTDOWN_DRAIN, 1000);
}

static int own_destroy(void)
{
	aq_pool_destroy(fx.jobpool); /* documented: leaves the pool alone */
	return 0;
}

static int fail_msg_null(void)
{
	return aq_current_fail_msg(NULL);
}

static int fail_msg_bare(void)
{
	return aq_current_fail_msg("nowhere to keep it");
}

static int dep_none(void)
{
	return aq_current_dep(0) == NULL ? 0 : SIDE_EFFECT;
}

static int dep_past_end(void)
{
	return aq_current_dep(1) == NULL && aq_current_dep(UINT_MAX) == NULL
		       ? 0
		       : SIDE_EFFECT;
}

static int resize_bad_inside(void)
{
	return aq_pool_resize(fx.jobpool, 3, 2);
}

static int in_own_shutdown(void)
{
	return in_job(own_shutdown, true, NULL, 0);
}

static int in_own_shutdown_cancel(void)
{
	return in_job(own_shutdown_cancel, false, NULL, 0);
}

static int in_own_shutdown_timed(void)
{
	return in_job(own_shutdown_timed, true, NULL, 0);
}

static int in_own_destroy(void)
{
	return in_job(own_destroy, true, NULL, 0);
}

static int in_fail_msg_null(void)
{
	return in_job(fail_msg_null, true, NULL, 0);
}

static int in_fail_msg_bare(void)
{
	return in_job(fail_msg_bare, false, NULL, 0);
}

static int in_dep_none(void)
{
	return in_job(dep_none, true, NULL, 0);
}

static int in_dep_past_end(void)
{
	aq_future *after[1];
	aq_future *first;
	int ret;

	/* A dependency of the job pool's own, already resolved. */
	ck_assert_int_eq(aq_submit(fx.jobpool, th_noop_job, NULL, NULL, &first),
			 0);
	ck_assert_int_eq(aq_future_get(first, NULL, -1), 0);
	after[0] = first;
	ret = in_job(dep_past_end, true, after, 1);
	aq_future_release(first);
	return ret;
}

static int in_resize_bad(void)
{
	return in_job(resize_bad_inside, true, NULL, 0);
}

static const struct call_case {
	const char *fn;
	const char *what;
	int (*call)(void);
	int expect;
} call_cases[] = {
	{ "aq_pool_create", "NULL pool pointer, NULL cfg", create_null_out,
	  -EINVAL },
	{ "aq_pool_create", "NULL pool pointer", create_null_out_cfg,
	  -EINVAL },
	{ "aq_pool_shutdown", "NULL pool", shutdown_null, -EINVAL },
	{ "aq_pool_shutdown", "NULL pool, CANCEL", shutdown_null_cancel,
	  -EINVAL },
	{ "aq_pool_shutdown", "unknown flag 0x2", shutdown_flag_2, -EINVAL },
	{ "aq_pool_shutdown", "unknown flag 0x80000000", shutdown_flag_high,
	  -EINVAL },
	{ "aq_pool_shutdown", "from its own worker", in_own_shutdown,
	  -EDEADLK },
	{ "aq_pool_shutdown", "CANCEL from its own worker",
	  in_own_shutdown_cancel, -EDEADLK },
	{ "aq_pool_shutdown_timed", "NULL pool", timed_null, -EINVAL },
	{ "aq_pool_shutdown_timed", "NULL pool, no timeout",
	  timed_null_forever, -EINVAL },
	{ "aq_pool_shutdown_timed", "unknown flag 0x4", timed_flag_4,
	  -EINVAL },
	{ "aq_pool_shutdown_timed", "unknown flag 0x80000000",
	  timed_flag_high, -EINVAL },
	{ "aq_pool_shutdown_timed", "from its own worker",
	  in_own_shutdown_timed, -EDEADLK },
	{ "aq_pool_running_jobs", "NULL pool", running_null_pool, -EINVAL },
	{ "aq_pool_running_jobs", "NULL ids, max 1", running_null_ids,
	  -EINVAL },
	{ "aq_pool_running_jobs", "NULL ids, max UINT_MAX",
	  running_null_ids_many, -EINVAL },
	{ "aq_submit_batch", "NULL pool", batch_null_pool, -EINVAL },
	{ "aq_submit_batch", "NULL pool, n 0", batch_null_pool_empty, -EINVAL },
	{ "aq_submit_batch", "NULL jobs, n 1", batch_null_jobs, -EINVAL },
	{ "aq_submit_batch", "n INT_MAX + 1", batch_n_too_big, -EINVAL },
	{ "aq_submit_batch", "second fn NULL, with futures",
	  batch_second_fn_null, -EINVAL },
	{ "aq_submit_batch", "second fn NULL, fire-and-forget",
	  batch_second_fn_null_ff, -EINVAL },
	{ "aq_submit_batch", "BLOCK | NOBLOCK, fire-and-forget",
	  batch_bad_opts, -EINVAL },
	{ "aq_pool_destroy", "NULL", destroy_null, 0 },
	{ "aq_pool_destroy", "from its own worker", in_own_destroy, 0 },
	{ "aq_pool_workers", "NULL", workers_null, -EINVAL },
	{ "aq_pool_capacity", "NULL", capacity_null, -EINVAL },
	{ "aq_pool_resize", "NULL pool", resize_null, -EINVAL },
	{ "aq_pool_resize", "min 0", resize_min_zero, -EINVAL },
	{ "aq_pool_resize", "min 0, max 0", resize_both_zero, -EINVAL },
	{ "aq_pool_resize", "min > max", resize_min_above_max, -EINVAL },
	{ "aq_pool_resize", "max AQ_WORKERS_MAX + 1", resize_max_too_big,
	  -EINVAL },
	{ "aq_pool_resize", "min = max = UINT_MAX", resize_uint_max,
	  -EINVAL },
	{ "aq_pool_resize", "after shutdown", resize_dead, -ESHUTDOWN },
	{ "aq_pool_resize", "bad bounds after shutdown", resize_dead_bad,
	  -EINVAL },
	{ "aq_pool_resize", "bad bounds from its own worker", in_resize_bad,
	  -EINVAL },
	{ "aq_current_attempt", "outside a job", attempt_outside, 0 },
	{ "aq_current_cancelled", "outside a job", cancelled_outside, 0 },
	{ "aq_current_deadline", "outside a job", deadline_outside, 0 },
	{ "aq_current_fail_msg", "outside a job", fail_msg_outside, -EINVAL },
	{ "aq_current_fail_msg", "NULL, outside a job", fail_msg_null_outside,
	  -EINVAL },
	{ "aq_current_fail_msg", "NULL, in a job with a future", in_fail_msg_null,
	  -EINVAL },
	{ "aq_current_fail_msg", "in a job without a record", in_fail_msg_bare,
	  -EINVAL },
	{ "aq_current_dep", "outside a job", dep_outside, 0 },
	{ "aq_current_dep", "UINT_MAX, outside a job", dep_far_outside, 0 },
	{ "aq_current_dep", "in a job without dependencies", in_dep_none, 0 },
	{ "aq_current_dep", "past the end, in a job with one", in_dep_past_end,
	  0 },
	{ "aq_current_dep_count", "outside a job", dep_count_outside, 0 },
	{ "aq_current_yield_due", "outside a job", yield_due_outside, 0 },
	{ "aq_pool_now", "NULL pool", now_null, -EINVAL },
	{ "aq_pool_now", "NULL now", now_out_null, -EINVAL },
	{ "aq_pool_clock_changed", "NULL", clock_changed_null, -EINVAL },
	{ "aq_sched_job_priority", "NULL", priority_null, 0 },
	{ "aq_sched_job_group", "NULL", group_null, 0 },
	{ "aq_sched_job_weight", "NULL", weight_null, 1 },
	{ "aq_sched_job_hint", "NULL", hint_null, 0 },
	{ "aq_sched_job_enqueue_ns", "NULL", enqueue_null, 0 },
	{ "aq_sched_job_seq", "NULL", seq_null, 0 },
	{ "aq_sched_job_runs", "NULL", runs_null, 0 },
	{ "aq_sched_job_slots", "NULL", slots_null, 0 },
	{ "aq_future_get", "NULL, timeout 0", get_null, -EINVAL },
	{ "aq_future_get", "NULL, no timeout", get_null_forever, -EINVAL },
	{ "aq_future_get", "NULL, NULL result, 1 ms", get_null_timeout,
	  -EINVAL },
	{ "aq_future_cancel", "NULL", cancel_null, -EINVAL },
	{ "aq_future_cancel", "a succeeded future", cancel_succeeded,
	  -EALREADY },
	{ "aq_future_cancel", "a failed future", cancel_failed, -EALREADY },
	{ "aq_future_cancel", "twice", cancel_twice, -EALREADY },
	{ "aq_future_create", "NULL", promise_create_null, -EINVAL },
	{ "aq_future_create", "unknown flag 0x1", promise_create_flags,
	  -EINVAL },
	{ "aq_future_complete", "NULL", promise_complete_null, -EINVAL },
	{ "aq_future_complete", "a pool's future", promise_complete_pool_future,
	  -EINVAL },
	{ "aq_future_complete", "code -EINVAL", promise_complete_bad_code,
	  -EINVAL },
	{ "aq_future_complete", "twice", promise_complete_twice, -EALREADY },
	{ "aq_future_complete", "after cancel", promise_complete_cancelled,
	  -ECANCELED },
	{ "aq_future_retain", "NULL", retain_null, 0 },
	{ "aq_wait_all", "NULL array, n 1", wait_all_null_array, -EINVAL },
	{ "aq_wait_all", "NULL entry", wait_all_null_entry, -EINVAL },
	{ "aq_wait_all", "NULL first entry, no timeout", wait_all_null_first,
	  -EINVAL },
	{ "aq_wait_any", "NULL array, n 1", wait_any_null_array, -EINVAL },
	{ "aq_wait_any", "n 0", wait_any_zero, -EINVAL },
	{ "aq_wait_any", "NULL index", wait_any_null_index, -EINVAL },
	{ "aq_wait_any", "NULL entry", wait_any_null_entry, -EINVAL },
	{ "aq_future_error", "NULL future", error_null, -EINVAL },
	{ "aq_future_error", "NULL err", error_null_err, -EINVAL },
	{ "aq_future_error", "a succeeded future", error_succeeded, -EAGAIN },
	{ "aq_future_error", "a cancelled future", error_cancelled, -EAGAIN },
	{ "aq_future_error", "a pending future", error_pending, -EAGAIN },
	{ "aq_future_state", "NULL", state_null, AQ_STATE_INVALID },
	{ "aq_future_release", "NULL", release_null, 0 },
	{ "aq_future_release", "a resolved future", release_resolved, 0 },
	{ "aq_pool_stats", "NULL pool", stats_null_pool, -EINVAL },
	{ "aq_pool_stats", "NULL stats", stats_null_out, -EINVAL },
	{ "aq_pool_metrics", "NULL pools", metrics_null_pools, -EINVAL },
	{ "aq_pool_metrics", "no pools", metrics_no_pools, -EINVAL },
	{ "aq_pool_metrics", "NULL entry", metrics_null_entry, -EINVAL },
	{ "aq_pool_metrics", "NULL buf, size > 0", metrics_null_buf, -EINVAL },
	{ "aq_pool_metrics", "two pools, one name", metrics_same_name,
	  -EINVAL },
	{ "aq_pool_stats_window", "NULL since", window_null_since, -EINVAL },
	{ "aq_pool_stats_window", "NULL now", window_null_now, -EINVAL },
	{ "aq_pool_stats_window", "since later than now", window_backwards,
	  -EINVAL },
	{ "aq_future_then", "NULL future", then_null_fut, -EINVAL },
	{ "aq_future_then", "NULL future, on a channel",
	  then_null_fut_channel, -EINVAL },
	{ "aq_future_then", "NULL fn", then_null_fn, -EINVAL },
	{ "aq_future_then", "NULL fn, on a channel", then_null_fn_channel,
	  -EINVAL },
	{ "aq_channel_create", "NULL channel pointer", channel_create_null,
	  -EINVAL },
	{ "aq_channel_create", "flags 1", channel_create_flag_1, -EINVAL },
	{ "aq_channel_create", "flags 0x80000000", channel_create_flag_high,
	  -EINVAL },
	{ "aq_channel_create", "NULL pointer and flags 1",
	  channel_create_null_flags, -EINVAL },
	{ "aq_channel_fd", "NULL", channel_fd_null, -EINVAL },
	{ "aq_channel_dispatch", "NULL", dispatch_null, -EINVAL },
	{ "aq_channel_dispatch", "NULL, max 5", dispatch_null_max, -EINVAL },
	{ "aq_channel_destroy", "NULL", channel_destroy_null, 0 },
	{ "aq_strerror", "-100000", strerror_unknown, 0 },
	{ "aq_strerror", "INT_MIN", strerror_int_min, 0 },
	{ "aq_strerror", "AQ_YIELD", strerror_below_errno, 0 },
};

/*
 * Public functions that take no argument, so no input of theirs can be
 * bad; they are still called, and must answer sensibly.
 */
static const char *const no_arguments[] = {
	"aq_sched_fifo", "aq_version", "aq_version_string",
};

static void check_no_argument_functions(void)
{
	const struct aq_sched_ops *ops[3] = { aq_sched_fifo(),
					      aq_sched_priority(),
					      aq_sched_fair() };

	for (int i = 0; i < 3; i++) {
		ck_assert_ptr_nonnull(ops[i]);
		ck_assert(ops[i]->init != NULL);
		ck_assert(ops[i]->push != NULL);
		ck_assert(ops[i]->pop != NULL);
		ck_assert(ops[i]->destroy != NULL);
	}
	ck_assert_uint_eq(aq_version(), AQ_VERSION_HEX);
	ck_assert_ptr_nonnull(aq_version_string());
}

/* ---- the API check --------------------------------------------------- */

static bool covered(const char *name)
{
	for (size_t i = 0; i < sizeof(create_cases) / sizeof(create_cases[0]);
	     i++)
		if (strcmp(create_cases[i].fn, name) == 0)
			return true;
	if (strcmp(name, "aq_submit") == 0)
		return true; /* submit_cases */
	for (size_t i = 0; i < sizeof(call_cases) / sizeof(call_cases[0]); i++)
		if (strcmp(call_cases[i].fn, name) == 0)
			return true;
	for (size_t i = 0; i < sizeof(no_arguments) / sizeof(no_arguments[0]);
	     i++)
		if (strcmp(no_arguments[i], name) == 0)
			return true;
	return false;
}

/* include/asyncq.h, found from this file's compiled path. */
static void header_path(char *buf, size_t size)
{
	const char *env = getenv("AQ_HEADER");
	const char *me = __FILE__;
	const char *tail = strstr(me, "tests/check_badinput.c");

	if (env && *env) {
		snprintf(buf, size, "%s", env);
		return;
	}
	snprintf(buf, size, "%.*sinclude/asyncq.h",
		 tail ? (int)(tail - me) : 0, me);
}

/*
 * Every "AQ_API type name(" declaration of the header: each name must be
 * covered. Returns how many there are.
 */
static int check_api_covered(void)
{
	char path[4096], line[512];
	FILE *f;
	int found = 0;

	header_path(path, sizeof(path));
	f = fopen(path, "r");
	ck_assert_msg(f != NULL, "cannot read %s to list the public "
		      "functions; run from the top directory or set "
		      "AQ_HEADER", path);
	while (fgets(line, sizeof(line), f)) {
		char *p = line, *paren, *start;
		char name[128];

		while (*p == ' ' || *p == '\t')
			p++;
		if (strncmp(p, "AQ_API ", 7) != 0)
			continue;
		paren = strchr(p, '(');
		ck_assert_msg(paren != NULL, "cannot parse: %s", line);
		start = paren;
		while (start > p && (start[-1] == '_' ||
				     (start[-1] >= 'a' && start[-1] <= 'z') ||
				     (start[-1] >= '0' && start[-1] <= '9')))
			start--;
		ck_assert_msg(paren - start > 0 &&
			      (size_t)(paren - start) < sizeof(name),
			      "cannot parse: %s", line);
		memcpy(name, start, (size_t)(paren - start));
		name[paren - start] = '\0';
		ck_assert_msg(covered(name), "%s is public (include/asyncq.h) "
			      "but tests/check_badinput.c tries no bad input "
			      "on it: add its cases", name);
		found++;
	}
	fclose(f);
	ck_assert_msg(found >= 40, "only %d AQ_API functions found in %s",
		      found, path);
	return found;
}

/* ---- setup, the run, the "nothing changed" checks ------------------------- */

static int64_t far_delay_ns(void)
{
	return INT64_C(3600) * 1000000000; /* an hour */
}

static void fixture_setup(void)
{
	struct aq_job_opts delayed = { .delay_ns = far_delay_ns(),
				       .arg_destroy = count_destroy };
	struct aq_pool_config cfg = { .workers = 1, .queue_capacity = 8 };

	memset(&fx, 0, sizeof(fx));
	atomic_init(&destroyed, 0);
	atomic_init(&then_calls, 0);
	atomic_init(&sched_destroys, 0);
	retry_nan_factor = (struct aq_retry_policy){ .max_attempts = 2,
						     .factor = NAN };

	fx.pool = th_pool(1, 8, 0, 0);
	fx.jobpool = th_pool(1, 8, 0, 0);
	ck_assert_int_eq(aq_pool_create(&fx.dead, &cfg), 0);
	ck_assert_int_eq(aq_pool_shutdown(fx.dead, AQ_SHUTDOWN_DRAIN), 0);
	ck_assert_int_eq(aq_channel_create(&fx.channel, 0), 0);

	ck_assert_int_eq(aq_submit(fx.pool, th_noop_job, NULL, NULL, &fx.done),
			 0);
	ck_assert_int_eq(aq_future_get(fx.done, NULL, -1), 0);
	ck_assert_int_eq(aq_submit(fx.pool, fail_job, NULL, NULL, &fx.failed),
			 0);
	ck_assert_int_eq(aq_future_get(fx.failed, NULL, -1), 5);
	ck_assert_int_eq(
		aq_submit(fx.pool, th_noop_job, NULL, NULL, &fx.to_release), 0);
	ck_assert_int_eq(aq_future_get(fx.to_release, NULL, -1), 0);
	ck_assert_int_eq(
		aq_submit(fx.pool, th_noop_job, NULL, &delayed, &fx.cancelled),
		0);
	ck_assert_int_eq(aq_future_cancel(fx.cancelled), 0);
	ck_assert_int_eq(
		aq_submit(fx.pool, th_noop_job, NULL, &delayed, &fx.pending),
		0);
	ck_assert_int_eq(aq_future_state(fx.pending), AQ_STATE_DELAYED);
	after_second_null[0] = fx.done;
	after_second_null[1] = NULL;
	/* The cancel ran the one arg_destroy of the fixture. */
	ck_assert_int_eq(th_ld(&destroyed), 1);
	atomic_store(&destroyed, 0);
}

static void fixture_teardown(void)
{
	ck_assert_int_eq(aq_future_cancel(fx.pending), 0);
	aq_future_release(fx.pending);
	aq_future_release(fx.cancelled);
	aq_future_release(fx.failed);
	aq_future_release(fx.done);
	if (fx.to_release)
		aq_future_release(fx.to_release);
	aq_pool_destroy(fx.pool);
	aq_pool_destroy(fx.jobpool);
	aq_pool_destroy(fx.dead);
	aq_channel_destroy(fx.channel);
}

/* The counters that must not move. */
static void stats_counters(aq_pool *pool, uint64_t out[12])
{
	struct aq_pool_stats st;

	ck_assert_int_eq(aq_pool_stats(pool, &st), 0);
	out[0] = st.submitted;
	out[1] = st.started;
	out[2] = st.succeeded;
	out[3] = st.failed;
	out[4] = st.retried;
	out[5] = st.cancelled;
	out[6] = st.expired;
	out[7] = st.skipped;
	out[8] = st.rejected;
	out[9] = st.queued;
	out[10] = st.delayed;
	out[11] = st.workers;
}

static const char *const counter_names[12] = {
	"submitted", "started", "succeeded", "failed",  "retried", "cancelled",
	"expired",   "skipped", "rejected",  "queued",  "delayed", "workers",
};

static void check_case(const char *fn, const char *what, int got, int want)
{
	ck_assert_msg(got == want, "%s(%s): got %d (%s), expected %d (%s)", fn,
		      what, got,
		      got == SIDE_EFFECT ? "an out-parameter or a result "
					   "changed on failure"
					 : aq_strerror(got),
		      want, aq_strerror(want));
}

/* After the cases: does a pool still take and run a job? */
static void check_pool_works(aq_pool *pool)
{
	static atomic_long count;
	aq_future *fut;

	atomic_store(&count, 0);
	ck_assert_int_eq(aq_submit(pool, th_count_job, &count, NULL, &fut), 0);
	ck_assert_int_eq(aq_future_get(fut, NULL, -1), 0);
	ck_assert_int_eq(th_ldl(&count), 1);
	aq_future_release(fut);
}

START_TEST(test_bad_inputs)
{
	const size_t ncreate = sizeof(create_cases) / sizeof(create_cases[0]);
	const size_t nsubmit = sizeof(submit_cases) / sizeof(submit_cases[0]);
	const size_t ncall = sizeof(call_cases) / sizeof(call_cases[0]);
	uint64_t before[12], after[12], dead_before[12], dead_after[12];
	unsigned expected_refusals = 0;
	size_t tried = 0;
	int functions;
	aq_future *fut;

	functions = check_api_covered();
	check_no_argument_functions();
	fixture_setup();
	stats_counters(fx.pool, before);
	stats_counters(fx.dead, dead_before);

	for (size_t i = 0; i < ncreate; i++, tried++)
		check_case(create_cases[i].fn, create_cases[i].what,
			   run_create_case(&create_cases[i]),
			   create_cases[i].expect);
	for (size_t i = 0; i < nsubmit; i++, tried += 2) {
		check_case("aq_submit", submit_cases[i].what,
			   run_submit_case(&submit_cases[i], false),
			   submit_cases[i].expect);
		check_case("aq_submit_batch", submit_cases[i].what,
			   run_submit_case(&submit_cases[i], true),
			   submit_cases[i].expect);
		if (submit_cases[i].expect == -ESHUTDOWN)
			expected_refusals += 2;
	}
	for (size_t i = 0; i < ncall; i++, tried++)
		check_case(call_cases[i].fn, call_cases[i].what,
			   call_cases[i].call(), call_cases[i].expect);

	/* Nothing changed: no arg_destroy, no callback, no policy torn
	 * down that never started. */
	ck_assert_int_eq(th_ld(&destroyed), 0);
	ck_assert_int_eq(th_ld(&then_calls), 0);
	ck_assert_int_eq(th_ld(&sched_destroys), 0);
	/* The running pool's counters are exactly as they were... */
	stats_counters(fx.pool, after);
	for (int k = 0; k < 12; k++)
		ck_assert_msg(after[k] == before[k], "pool: %s went from %llu "
			      "to %llu", counter_names[k],
			      (unsigned long long)before[k],
			      (unsigned long long)after[k]);
	/* ... and the shut-down one counted its -ESHUTDOWN refusals as
	 * rejected (aq_pool_stats(3)), and nothing else. */
	ck_assert_uint_eq(fx.dead_refusals, expected_refusals);
	stats_counters(fx.dead, dead_after);
	dead_before[8] += expected_refusals;
	for (int k = 0; k < 12; k++)
		ck_assert_msg(dead_after[k] == dead_before[k], "dead pool: %s "
			      "is %llu, expected %llu", counter_names[k],
			      (unsigned long long)dead_after[k],
			      (unsigned long long)dead_before[k]);
	/* The fixture's futures are where they were. */
	ck_assert_int_eq(aq_future_state(fx.done), AQ_STATE_SUCCEEDED);
	ck_assert_int_eq(aq_future_state(fx.failed), AQ_STATE_FAILED);
	ck_assert_int_eq(aq_future_state(fx.cancelled), AQ_STATE_CANCELLED);
	ck_assert_int_eq(aq_future_state(fx.pending), AQ_STATE_DELAYED);
	ck_assert_int_eq(aq_future_get(fx.done, NULL, 0), 0);
	ck_assert_int_eq(aq_future_get(fx.failed, NULL, 0), 5);
	/* The pools, even the one a job tried to shut down and destroy,
	 * still work; the dead one still refuses. */
	ck_assert_int_eq(aq_pool_workers(fx.pool), 1);
	ck_assert_int_eq(aq_pool_capacity(fx.pool), 8);
	check_pool_works(fx.pool);
	check_pool_works(fx.jobpool);
	ck_assert_int_eq(aq_submit(fx.dead, th_noop_job, NULL, NULL, &fut),
			 -ESHUTDOWN);
	/* The channel still delivers. */
	ck_assert_int_eq(aq_future_then(fx.done, count_then, NULL, fx.channel),
			 0);
	ck_assert_int_eq(aq_channel_dispatch(fx.channel, 0), 1);
	ck_assert_int_eq(th_ld(&then_calls), 1);

	printf("badinput: %zu bad inputs tried on %d public functions, each "
	       "refused with its documented code and changing nothing\n",
	       tried, functions);
	ck_assert_msg(tried >= BAD_INPUTS_FLOOR, "only %zu bad inputs (floor "
		      "%d)", tried, BAD_INPUTS_FLOOR);
	ck_assert_int_eq(th_ld(&destroyed), 0);
	fixture_teardown();
	/* The teardown's cancel of the pending job ran its arg_destroy. */
	ck_assert_int_eq(th_ld(&destroyed), 1);
}
END_TEST

/* ---- one call each, on a running pool (was the errors suite's) ---------- */

static int create_null_pool(aq_pool *pool)
{
	(void)pool;
	return aq_pool_create(NULL, NULL);
}

static int create_null_pool_cfg(aq_pool *pool)
{
	struct aq_pool_config cfg = { .workers = 1 };

	(void)pool;
	return aq_pool_create(NULL, &cfg);
}

static int create_cfg(const struct aq_pool_config *cfg)
{
	aq_pool *p = SENTINEL;
	int ret = aq_pool_create(&p, cfg);

	if (ret == 0)
		aq_pool_destroy(p);
	else if (p != SENTINEL)
		return SIDE_EFFECT;
	return ret;
}

static int create_bad_flags(aq_pool *pool)
{
	struct aq_pool_config cfg = { .workers = 1, .flags = 0x10 };

	(void)pool;
	return create_cfg(&cfg);
}

static int create_too_many_workers(aq_pool *pool)
{
	struct aq_pool_config cfg = { .workers = AQ_WORKERS_MAX + 1 };

	(void)pool;
	return create_cfg(&cfg);
}

static int create_ring_too_big(aq_pool *pool)
{
	struct aq_pool_config cfg = { .workers = 1,
				      .queue_capacity =
					      AQ_QUEUE_CAPACITY_MAX + 1 };

	(void)pool;
	return create_cfg(&cfg);
}

static int one_shutdown_null(aq_pool *pool)
{
	(void)pool;
	return aq_pool_shutdown(NULL, AQ_SHUTDOWN_DRAIN);
}

static int one_shutdown_null_cancel(aq_pool *pool)
{
	(void)pool;
	return aq_pool_shutdown(NULL, AQ_SHUTDOWN_CANCEL);
}

static int shutdown_bad_flags(aq_pool *pool)
{
	return aq_pool_shutdown(pool, 0x2);
}

static int shutdown_high_flag(aq_pool *pool)
{
	return aq_pool_shutdown(pool, AQ_SHUTDOWN_CANCEL | 0x80000000u);
}

static int one_destroy_null(aq_pool *pool)
{
	(void)pool;
	aq_pool_destroy(NULL);
	return 0;
}

static int one_workers_null(aq_pool *pool)
{
	(void)pool;
	return aq_pool_workers(NULL);
}

static int one_capacity_null(aq_pool *pool)
{
	(void)pool;
	return aq_pool_capacity(NULL);
}

/* aq_submit with these arguments; *fut must come back NULL. */
static int one_submit_case(aq_pool *pool, aq_job_fn fn, unsigned flags)
{
	struct aq_job_opts opts = { .flags = flags,
				    .arg_destroy = count_destroy };
	aq_future *fut = SENTINEL;
	int ret = aq_submit(pool, fn, NULL, &opts, &fut);

	if (ret != 0 && fut != NULL)
		return SIDE_EFFECT;
	if (ret == 0) {
		aq_future_get(fut, NULL, -1);
		aq_future_release(fut);
	}
	return ret;
}

static int submit_null_pool(aq_pool *pool)
{
	(void)pool;
	return one_submit_case(NULL, th_noop_job, 0);
}

static int submit_null_fn(aq_pool *pool)
{
	return one_submit_case(pool, NULL, 0);
}

static int submit_null_both(aq_pool *pool)
{
	(void)pool;
	return one_submit_case(NULL, NULL, 0);
}

static int submit_unknown_flag(aq_pool *pool)
{
	return one_submit_case(pool, th_noop_job, 0x4);
}

static int submit_high_flag(aq_pool *pool)
{
	return one_submit_case(pool, th_noop_job, AQ_JOB_BLOCK | 0x80000000u);
}

static int submit_block_and_noblock(aq_pool *pool)
{
	return one_submit_case(pool, th_noop_job,
			       AQ_JOB_BLOCK | AQ_JOB_NOBLOCK);
}

static int submit_null_pool_no_opts(aq_pool *pool)
{
	(void)pool;
	return aq_submit(NULL, th_noop_job, NULL, NULL, NULL);
}

static int submit_null_fn_no_opts(aq_pool *pool)
{
	return aq_submit(pool, NULL, NULL, NULL, NULL);
}

static int one_get_null(aq_pool *pool)
{
	void *result = SENTINEL;
	int ret = aq_future_get(NULL, &result, 0);

	(void)pool;
	return result == SENTINEL ? ret : SIDE_EFFECT;
}

static int one_get_null_forever(aq_pool *pool)
{
	(void)pool;
	return aq_future_get(NULL, NULL, -1);
}

static int one_cancel_null(aq_pool *pool)
{
	(void)pool;
	return aq_future_cancel(NULL);
}

static int one_state_null(aq_pool *pool)
{
	(void)pool;
	return (int)aq_future_state(NULL);
}

static int one_release_null(aq_pool *pool)
{
	(void)pool;
	aq_future_release(NULL);
	return 0;
}

START_TEST(test_one_call_each)
{
	static const struct {
		const char *name;
		int (*call)(aq_pool *pool);
		int expect;
	} cases[] = {
		{ "aq_pool_create(NULL, NULL)", create_null_pool, -EINVAL },
		{ "aq_pool_create(NULL, &cfg)", create_null_pool_cfg, -EINVAL },
		{ "aq_pool_create unknown flags", create_bad_flags, -EINVAL },
		{ "aq_pool_create workers 1025", create_too_many_workers,
		  -EINVAL },
		{ "aq_pool_create capacity 2^24+1", create_ring_too_big,
		  -EINVAL },
		{ "aq_pool_shutdown(NULL, DRAIN)", one_shutdown_null, -EINVAL },
		{ "aq_pool_shutdown(NULL, CANCEL)", one_shutdown_null_cancel,
		  -EINVAL },
		{ "aq_pool_shutdown flags 0x2", shutdown_bad_flags, -EINVAL },
		{ "aq_pool_shutdown high flag", shutdown_high_flag, -EINVAL },
		{ "aq_pool_destroy(NULL)", one_destroy_null, 0 },
		{ "aq_pool_workers(NULL)", one_workers_null, -EINVAL },
		{ "aq_pool_capacity(NULL)", one_capacity_null, -EINVAL },
		{ "aq_submit NULL pool", submit_null_pool, -EINVAL },
		{ "aq_submit NULL fn", submit_null_fn, -EINVAL },
		{ "aq_submit NULL pool and fn", submit_null_both, -EINVAL },
		{ "aq_submit unknown flag", submit_unknown_flag, -EINVAL },
		{ "aq_submit high flag", submit_high_flag, -EINVAL },
		{ "aq_submit BLOCK|NOBLOCK", submit_block_and_noblock,
		  -EINVAL },
		{ "aq_submit NULL pool, no opts", submit_null_pool_no_opts,
		  -EINVAL },
		{ "aq_submit NULL fn, no opts", submit_null_fn_no_opts,
		  -EINVAL },
		{ "aq_future_get(NULL)", one_get_null, -EINVAL },
		{ "aq_future_get(NULL, NULL, -1)", one_get_null_forever, -EINVAL },
		{ "aq_future_cancel(NULL)", one_cancel_null, -EINVAL },
		{ "aq_future_state(NULL)", one_state_null, AQ_STATE_INVALID },
		{ "aq_future_release(NULL)", one_release_null, 0 },
	};
	static atomic_long count;
	aq_pool *pool = th_pool(1, 8, 0, 0);
	aq_future *fut;

	atomic_init(&destroyed, 0);
	atomic_init(&count, 0);
	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		int ret = cases[i].call(pool);

		ck_assert_msg(ret == cases[i].expect, "%s: got %d (%s), "
			      "expected %d", cases[i].name, ret,
			      ret == SIDE_EFFECT
				      ? "out-parameter written on failure"
				      : aq_strerror(ret),
			      cases[i].expect);
	}
	/* No rejected submit called arg_destroy, and none of the calls
	 * harmed the pool: it still accepts and runs a job. */
	ck_assert_int_eq(th_ld(&destroyed), 0);
	ck_assert_int_eq(aq_submit(pool, th_count_job, &count, NULL, &fut), 0);
	ck_assert_int_eq(aq_future_get(fut, NULL, -1), 0);
	ck_assert_int_eq(th_ldl(&count), 1);
	aq_future_release(fut);
	aq_pool_destroy(pool);
}
END_TEST

Suite *badinput_suite(void)
{
	Suite *s = suite_create("badinput");
	TCase *tc = tcase_create("badinput");
	TCase *one = tcase_create("one_call_each");

	tcase_set_timeout(tc, TH_TIMEOUT);
	tcase_add_test(tc, test_bad_inputs);
	suite_add_tcase(s, tc);

	tcase_set_timeout(one, TH_TIMEOUT);
	tcase_add_test(one, test_one_call_each);
	suite_add_tcase(s, one);
	return s;
}
