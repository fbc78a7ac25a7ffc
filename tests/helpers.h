/* SPDX-License-Identifier: MIT */
/*
 * helpers.h - gates, polling, instrumented jobs and the other fixtures that
 * more than one test suite uses (each is defined once, in helpers.c).
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

/* The longest a test waits for anything, in ns: th_poll_seconds() as ns. */
int64_t th_long_ns(void);

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

/* aq_pool_create(cfg); fails the test if it fails. */
aq_pool *th_pool_cfg(const struct aq_pool_config *cfg);

/* aq_pool_stats() of a valid pool, as a value; fails the test if it fails. */
struct aq_pool_stats th_stats_of(aq_pool *pool);

/* Jobs: th_echo_job succeeds with its arg as the result; th_noop_job
 * succeeds with none. */
int th_echo_job(void *arg, void **result);
int th_noop_job(void *arg, void **result);

/* ---- worker hooks -------------------------------------------------------- */

#define TH_HK_MAX 16 /* worker indices the hook record keeps */

/* What the start and stop hooks of one pool saw (th_hooks_cfg()). */
struct th_hooks {
	pthread_mutex_t mu;
	int starts[TH_HK_MAX];       /* under mu: start hooks per index */
	int stops[TH_HK_MAX];        /* under mu: stop hooks per index */
	pthread_t thread[TH_HK_MAX]; /* under mu: the thread that started
					index */
	int out_of_range;            /* under mu: an index >= TH_HK_MAX */
	int wrong_thread;   /* under mu: a stop hook on another thread than
			       its index's start hook, or a second start on
			       a live index */
	int live, max_live; /* under mu: started and not yet stopped */
	atomic_int nstarts, nstops; /* totals, for polling */
	struct th_gate *start_gate; /* passed by every start hook, if set */
	int64_t first_stop_ns;      /* under mu: th_now_ns() at the first stop
				       hook, 0 before it */
};

/* The hooks of the pool whose worker this thread is, and the worker's
 * index; NULL and -1 on any other thread. */
extern _Thread_local struct th_hooks *th_tl_hooks;
extern _Thread_local int th_tl_index;

void th_hooks_init(struct th_hooks *hk);
void th_hooks_destroy(struct th_hooks *hk);
/* Point cfg's on_thread_start, on_thread_stop and thread_user at hk. */
void th_hooks_cfg(struct aq_pool_config *cfg, struct th_hooks *hk);
/* A pool of `workers` whose workers are recorded in hk. */
aq_pool *th_hooked_pool(unsigned workers, struct th_hooks *hk);

/* ---- then-callbacks and channels ----------------------------------------- */

/* What one then-callback (th_then_record, user = the record) saw. */
struct th_then_rec {
	atomic_int calls;
	int get_rc; /* aq_future_get(fut, &result, 0) in the callback */
	void *result;
	enum aq_state state;
	pthread_t thread;
	bool on_worker; /* ran on a worker of a hooked pool */
};

void th_then_rec_init(struct th_then_rec *r);
void th_then_record(aq_future *fut, void *user);

/* A then-callback that stores 1 in the atomic_int user points at. */
void th_then_flag(aq_future *fut, void *user);

/* 1 when fd polls readable within timeout_ms, else 0. */
int th_fd_readable(int fd, int timeout_ms);

/*
 * Submit th_echo_job(result) and wait until it resolved, and until the
 * resolver has also handed out its then-callbacks (a th_then_flag
 * registered before). aq_future_get() returning is not enough for a test
 * that needs a later registration to be handled at once.
 */
aq_future *th_resolved_future(aq_pool *pool, void *result);

/* ---- a pool held at a gate, and jobs that run after others --------------- */

/* A pool whose every worker is held by a gate job. */
struct th_held_pool {
	aq_pool *pool;
	struct th_gate gate;
	aq_future *gate_fut; /* the first gate job's */
};

/* A pool of `workers` (256 slots), each held at h->gate when it returns. */
void th_held_init(struct th_held_pool *h, unsigned workers);
/* Open the gate and destroy the pool. */
void th_held_fini(struct th_held_pool *h);

/* Submit th_job_fn(j) with th_job_destroy; fails the test if refused. */
aq_future *th_submit_job(aq_pool *pool, struct th_job *j);

/*
 * A job (th_link_job) that adds `add` to the results of the jobs it runs
 * after, and notes what it saw of them; th_link_destroy counts its calls.
 */
struct th_link {
	intptr_t add;
	atomic_int ran;
	atomic_int destroyed;
	unsigned deps_seen; /* aq_current_dep_count() inside the job */
	bool past_end_null; /* aq_current_dep(count) was NULL */
	int dep_rc;         /* the first non-zero aq_future_get of a dep */
	aq_future *nested;  /* waited for before the deps are read */
	unsigned
		attempt_after_nested; /* aq_current_attempt() after that wait */
};

void th_link_init(struct th_link *l, intptr_t add);
int th_link_job(void *arg, void **result);
void th_link_destroy(void *arg);

/* aq_submit(pool, fn, arg) after deps[0 .. n), with arg_destroy destroy. */
int th_submit_after(aq_pool *pool, aq_job_fn fn, void *arg,
		    void (*destroy)(void *), aq_future *const *deps, unsigned n,
		    aq_future **fut);
/* th_link_job(l) after deps[0 .. n); fails the test if refused. */
aq_future *th_link_after(aq_pool *pool, struct th_link *l,
			 aq_future *const *deps, unsigned n);

/* ---- conservation runs --------------------------------------------------- */

/*
 * A job of a many-producer run (th_cjob_fn): it yields (AQ_YIELD) while
 * yields_left > 0, then succeeds with index + 1; th_cjob_destroy counts.
 */
struct th_cjob {
	int index;
	int yields_left; /* only the job itself touches it */
	atomic_int calls;
	atomic_int completions;
	atomic_int destroyed;
};

int th_cjob_fn(void *arg, void **result);
void th_cjob_destroy(void *arg);

/* Marsaglia's 32-bit xorshift (13, 17, 5): the next number of *s. */
uint32_t th_xorshift32(uint32_t *s);

/* ---- shutdown in another thread ------------------------------------------ */

/* aq_pool_shutdown() called on a thread of its own (th_shutdown_start). */
struct th_shutdown {
	pthread_t tid;
	aq_pool *pool;
	unsigned flags;
	int ret;             /* what aq_pool_shutdown returned */
	atomic_int returned; /* it has returned */
	/* Optional: futures that must all be final when shutdown returns. */
	aq_future **check_futs;
	int ncheck;
	int not_final; /* of those, how many were not */
};

/* Start aq_pool_shutdown(pool, flags) on a new thread (join s->tid). Set
 * check_futs and ncheck before, or leave check_futs NULL. */
void th_shutdown_start(struct th_shutdown *s, aq_pool *pool, unsigned flags);

#endif
