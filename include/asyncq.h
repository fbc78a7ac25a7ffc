/* SPDX-License-Identifier: MIT */
/*
 * asyncq.h - the public interface of libasyncq, an embeddable C11 library
 * for in-process asynchronous job execution.
 *
 * A pool owns a bounded lock-free submission ring and a set of pthread
 * workers. aq_submit() puts a job on the ring and may hand back a future;
 * aq_future_get() waits for the job's outcome. Every function returns 0 or
 * a negative errno code (see aq_strerror()); the full contract of each lives
 * in its man page, and man 7 libasyncq gives the model.
 *
 * ABI policy: until 1.0 the ABI may change with any minor version (the
 * soname is libasyncq.so.0.MINOR); from 1.0 on, libraries of the same
 * major version are ABI compatible (soname libasyncq.so.MAJOR).
 */
#ifndef ASYNCQ_H
#define ASYNCQ_H

#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

#define AQ_VERSION_MAJOR 0
#define AQ_VERSION_MINOR 2
#define AQ_VERSION_PATCH 0

/* The version as one number, (major << 16) | (minor << 8) | patch. */
#define AQ_VERSION_HEX                                                         \
	((AQ_VERSION_MAJOR << 16) | (AQ_VERSION_MINOR << 8) | AQ_VERSION_PATCH)

#if defined(_WIN32)
#define AQ_API
#elif defined(__GNUC__) && __GNUC__ >= 4
#define AQ_API __attribute__((visibility("default")))
#else
#define AQ_API
#endif

typedef struct aq_pool aq_pool;     /* a set of workers and their queue */
typedef struct aq_future aq_future; /* the outcome of one submitted job */

/*
 * A job. It returns 0 on success, with its result (if any) stored in
 * *result, or a positive failure code of its own choosing. Negative return
 * values are reserved for the library's control codes.
 */
typedef int (*aq_job_fn)(void *arg, void **result);

/* ---- Pools ------------------------------------------------------------ */

#define AQ_WORKERS_MAX 1024u             /* most workers one pool may have */
#define AQ_QUEUE_CAPACITY_DEFAULT 4096u  /* ring slots when none are asked */
#define AQ_QUEUE_CAPACITY_MAX (1u << 24) /* largest ring a pool may have */

/* Pool flags (struct aq_pool_config.flags). */
/* Submits wait for ring space by default. */
#define AQ_POOL_BLOCK 0x1u
/* Measure wait and run times (two clock reads per job) for
 * aq_pool_stats(). */
#define AQ_POOL_TIMING 0x2u

struct aq_sched_ops;
struct aq_retry_policy;
struct aq_job_event;

/*
 * A time source in nanoseconds that never goes back. Tests plug in a
 * virtual clock and call aq_pool_clock_changed() after moving it.
 */
struct aq_clock {
	int64_t (*now)(void *user);
	void *user;
};

/*
 * Pool configuration. All-zero means "the defaults", so
 * `struct aq_pool_config cfg = {0};` is always valid.
 */
struct aq_pool_config {
	unsigned workers;         /* worker threads at start; 0 = online
				     CPUs; kept within min/max_workers */
	unsigned queue_capacity;  /* ring slots, rounded up to a power of two;
				     0 = AQ_QUEUE_CAPACITY_DEFAULT */
	unsigned flags;           /* AQ_POOL_* bits */
	int64_t block_timeout_ns; /* with AQ_POOL_BLOCK: longest wait for ring
				     space; 0 or negative = wait forever */
	const struct aq_sched_ops *sched; /* the policy; NULL = FIFO, served
					     straight from the ring */
	const void *sched_params;         /* handed to sched->init(); NULL = its
					     defaults */
	int64_t slice_ns; /* time slice for aq_current_yield_due();
			     0 = 1 ms */
	const struct aq_retry_policy *retry; /* default for jobs whose opts
						name none; copied at create;
						NULL = no retries */
	const struct aq_clock *clock; /* the time source of delays, deadlines
					 and backoff; copied; NULL = the
					 CLOCK_MONOTONIC clock */

	/* Worker threads (man aq_pool_config). */
	unsigned min_workers;    /* fewest workers kept; 0 = the starting
				    count (workers, or online CPUs) */
	unsigned max_workers;    /* most workers; 0 = the larger of the
				    starting count and min_workers.
				    max > min makes the pool elastic */
	int64_t idle_timeout_ns; /* elastic pool: a worker idle this long
				    above min_workers retires; 0 = 10 s */
	const char *name;        /* threads are named "aq-<name>-<n>"; NULL =
				    "aq-<n>" */
	const int *cpus;         /* worker n is pinned to cpus[n % ncpus] */
	unsigned ncpus;          /* 0 = no pinning */
	size_t stack_size;       /* bytes; 0 = the system default */
	/* Called on each worker thread as it starts and as it exits (on
	 * every exit path), with its index and thread_user. */
	void (*on_thread_start)(unsigned index, void *user);
	void (*on_thread_stop)(unsigned index, void *user);
	void *thread_user;

	/* Per-job hooks, on the worker, around each call (tracing); setting
	 * either turns timing on. */
	void (*before_job)(const struct aq_job_event *ev, void *user);
	void (*after_job)(const struct aq_job_event *ev, void *user);
	void *hook_user;
};

/* Create a pool; cfg may be NULL for the defaults. */
AQ_API int aq_pool_create(aq_pool **pool, const struct aq_pool_config *cfg);

/* Shutdown flags. */
#define AQ_SHUTDOWN_DRAIN 0x0u  /* every accepted job runs (the default) */
#define AQ_SHUTDOWN_CANCEL 0x1u /* queued jobs do not run: -ECANCELED */

/*
 * Stop accepting jobs, resolve every accepted job (run or cancelled, as
 * flags say) and join the workers. Blocks until that is done; -EDEADLK on
 * the pool's own worker or timer thread.
 */
AQ_API int aq_pool_shutdown(aq_pool *pool, unsigned flags);

/*
 * aq_pool_shutdown() that gives up after timeout_ns (negative = never):
 * -ETIMEDOUT when jobs still run (see aq_pool_running_jobs()); the pool
 * keeps stopping, and a later call, or aq_pool_destroy(), waits again.
 */
AQ_API int aq_pool_shutdown_timed(aq_pool *pool, unsigned flags,
				  int64_t timeout_ns);

/* The ids of the jobs running now (0 for fire-and-forget jobs without a
 * record): up to max written to ids; returns how many run. */
AQ_API int aq_pool_running_jobs(aq_pool *pool, uint64_t *ids, unsigned max);

/* Shut down (draining) if not already done, then free the pool. */
AQ_API void aq_pool_destroy(aq_pool *pool);

/* The number of worker threads running now (elastic pools and resizes
 * change it; 0 after shutdown), and the ring's fixed capacity. */
AQ_API int aq_pool_workers(const aq_pool *pool);
AQ_API int aq_pool_capacity(const aq_pool *pool);

/*
 * Set the pool's worker bounds at run time (1 <= min <= max <=
 * AQ_WORKERS_MAX; min == max for a fixed size). Workers start at once up
 * to min; idle workers above max retire. No job is lost or stranded.
 */
AQ_API int aq_pool_resize(aq_pool *pool, unsigned min_workers,
			  unsigned max_workers);

/* ---- Submitting ---------------------------------------------------------- */

/* Job flags (struct aq_job_opts.flags). */
/* Wait for ring space (see timeout_ns). */
#define AQ_JOB_BLOCK 0x1u
/* Fail with -EAGAIN when full, even if the pool was created with
 * AQ_POOL_BLOCK, or on one of its workers with a future. */
#define AQ_JOB_NOBLOCK 0x2u

/*
 * Per-job options. All-zero means "the defaults"; opts may also be NULL.
 */
struct aq_job_opts {
	unsigned flags;     /* AQ_JOB_* bits */
	int64_t timeout_ns; /* with AQ_JOB_BLOCK: longest wait for ring space;
			       0 or negative = wait forever */
	void (*arg_destroy)(void *arg); /* called exactly once with arg after
					   the job is finished with, whatever
					   its outcome, before its future
					   resolves; never when submit fails */
	int priority;      /* AQ_PRIORITY_MIN..MAX, higher runs first; 0 =
			      normal (priority scheduler) */
	uint64_t group;    /* fairness group: tenant, connection, ... (fair
			      scheduler); 0 is a group like any other */
	unsigned weight;   /* the group's share, 1..AQ_WEIGHT_MAX; 0 = 1 (fair
			      scheduler: the latest job's weight wins) */
	uint64_t hint;     /* free for custom schedulers, e.g. expected cost */
	int64_t delay_ns;  /* run no earlier than delay_ns from now */
	int64_t run_at_ns; /* ... or than this time on the pool's clock
			      (aq_pool_now()); 0 = not set */
	int64_t deadline_ns; /* not started by this time on the pool's clock:
				never runs, resolves EXPIRED; 0 = none */
	const struct aq_retry_policy *retry; /* overrides the pool's; must
						stay valid until the job
						resolves */
	aq_future *const *after; /* start only once all of these resolved
				    (each must succeed, else the job is
				    SKIPPED); the job holds its own
				    references */
	unsigned after_count;    /* entries in after, 0..AQ_AFTER_MAX */
};

#define AQ_AFTER_MAX 1024u

#define AQ_PRIORITY_MIN (-100)
#define AQ_PRIORITY_MAX 100
#define AQ_WEIGHT_MAX 1000u

/*
 * Submit fn(arg). On success, and when fut is not NULL, *fut receives a
 * future the caller must release with aq_future_release(). Thread-safe from
 * any thread, including from inside a job. On one of the pool's own workers
 * a job with a future that finds the ring full runs in place at once.
 */
AQ_API int aq_submit(aq_pool *pool, aq_job_fn fn, void *arg,
		     const struct aq_job_opts *opts, aq_future **fut);

/* One job of a batch: fn(arg). */
struct aq_job {
	aq_job_fn fn;
	void *arg;
};

/*
 * Submit jobs[0..n-1], in order, each with opts. Fire-and-forget jobs with
 * no record to make go onto the ring many slots per atomic claim, with one
 * wake. futs, if not NULL, receives a future per accepted job (NULL for
 * the rest). Returns how many were accepted: n, or fewer when the ring
 * filled (or the wait for space timed out, or shutdown began) after some
 * were; a negative error when none was. n = 0 returns 0.
 */
AQ_API int aq_submit_batch(aq_pool *pool, const struct aq_job *jobs, unsigned n,
			   const struct aq_job_opts *opts, aq_future **futs);

/* ---- Failure handling: retries, errors, time ----------------------------- */

/* What a callback learns of the job it is called for. */
struct aq_job_info {
	uint64_t id;      /* the job's id within its pool, from 1 */
	void *arg;        /* the job's argument */
	unsigned attempt; /* the attempt that just ended, from 1 */
};

/* The error record of a failed job (aq_future_error()). */
struct aq_error {
	uint64_t job_id;
	unsigned attempts;   /* attempts made */
	int code;            /* the last attempt's failure code */
	const char *message; /* set by aq_current_fail_msg(), or NULL;
				valid while the future is held */
	/* Pool clock: the start of attempt 1 and of the last attempt; for
	 * a job without a retry policy, see aq_future_error(3). */
	int64_t first_attempt_ns;
	int64_t last_attempt_ns;
};

/* Retry flags (struct aq_retry_policy.flags). */
#define AQ_RETRY_JITTER 0x1u /* "full jitter": a random delay in [0, d] */

/*
 * When and how often a failed job is tried again, and whom to tell. All
 * zero means "never retry".
 */
struct aq_retry_policy {
	unsigned max_attempts; /* attempts in all, the first included;
				  0 or 1 = no retry */
	int64_t base_delay_ns; /* the delay before attempt 2 */
	double factor;         /* delay before attempt n+1 is
				  base * factor^(n-1); 0 or 1 = fixed */
	int64_t max_delay_ns;  /* cap on the delay; 0 = none */
	unsigned flags;        /* AQ_RETRY_* */
	/* Is this failure code worth another attempt? NULL = any is. */
	int (*retryable)(int code, void *user);
	const int *never_retry; /* codes never retried, whatever retryable */
	unsigned never_retry_count;
	/* Before each retry, on a worker: return non-zero to veto it; may
	 * change *delay_ns. */
	int (*on_retry)(const struct aq_job_info *info, int code,
			unsigned attempt, int64_t *delay_ns, void *user);
	/* Exactly once, on a worker, when the job finally fails. */
	void (*on_error)(const struct aq_job_info *info,
			 const struct aq_error *err, void *user);
	void *user; /* handed to the three callbacks */
};

/* A job's return value after it saw aq_current_cancelled(): resolve the
 * future CANCELLED rather than failed. */
#define AQ_JOB_CANCELLED (-4098)

/* Inside a job: which attempt this is (from 1); 0 outside a job. */
AQ_API unsigned aq_current_attempt(void);
/* Inside a job: has someone asked to cancel it? 0 or 1. */
AQ_API int aq_current_cancelled(void);
/* Inside a job: its deadline on the pool clock, 0 if none. */
AQ_API int64_t aq_current_deadline(void);
/* Inside a job: attach a message to its error record (copied).
 * 0, -EINVAL (NULL, or not in a job that has a record), -ENOMEM. */
AQ_API int aq_current_fail_msg(const char *message);

/* Inside a job submitted with opts.after: the i-th future it ran after
 * (NULL past the end), and how many there are. */
AQ_API aq_future *aq_current_dep(unsigned i);
AQ_API unsigned aq_current_dep_count(void);

/* The pool's clock now (see struct aq_clock) in *now: 0, or -EINVAL for
 * a NULL pool or now. */
AQ_API int aq_pool_now(const aq_pool *pool, int64_t *now);
/* Tell the pool its clock moved (virtual clocks): due timers fire. */
AQ_API int aq_pool_clock_changed(aq_pool *pool);

/* ---- Schedulers ---------------------------------------------------------- */

/*
 * A job's return value that gives up its worker: it is queued again at the
 * tail with its arg and state kept, and called again when its turn comes.
 * Outside the -errno range, so a job returning -1 or -errno by mistake is
 * failed (EINVAL), never looped.
 */
#define AQ_YIELD (-4097)

/* True when the calling job has run a whole time slice and others wait:
 * the moment to return AQ_YIELD. False outside a job. */
AQ_API int aq_current_yield_due(void);

/*
 * A queued job as a scheduler sees it, valid from push until done: an
 * opaque handle, read only through the aq_sched_job_*() accessors.
 */
typedef struct aq_sched_job aq_sched_job;

/*
 * A scheduling policy (man aq_sched_ops). The pool calls every op with its
 * scheduler lock held, from a worker thread (init and destroy from the
 * creating or destroying thread), so a policy needs no locking of its own.
 */
struct aq_sched_ops {
	const char *name;
	/* Set *state; 0 or a negative errno (aq_pool_create fails with it). */
	int (*init)(void **state, const void *params);
	/* A job became runnable: new, or back after AQ_YIELD. 0, or a
	 * negative errno: the job then fails with that (positive) code. */
	int (*push)(void *state, aq_sched_job *job);
	/* The job a free worker runs next, or NULL: none may run now. */
	aq_sched_job *(*pop)(void *state);
	/* Optional: a popped job stopped running (finished or yielded). */
	void (*done)(void *state, aq_sched_job *job);
	void (*destroy)(void *state);
};

/* The built-in policies (man aq_sched_fifo). */
AQ_API const struct aq_sched_ops *aq_sched_fifo(void);
AQ_API const struct aq_sched_ops *aq_sched_priority(void);
AQ_API const struct aq_sched_ops *aq_sched_fair(void);

/* Parameters of aq_sched_priority(); zero = the defaults. */
struct aq_sched_priority_params {
	int64_t aging_ns; /* each aging_ns of waiting raises a job one
			     priority level; 0 = no aging (strict) */
};

/* Parameters of aq_sched_fair(); zero = the defaults. */
struct aq_sched_fair_params {
	unsigned max_running; /* most jobs of one group running at once;
				 0 = no cap */
};

/* What a scheduler may read of a job (man aq_sched_job_priority). */
AQ_API int aq_sched_job_priority(const aq_sched_job *job);
AQ_API uint64_t aq_sched_job_group(const aq_sched_job *job);
AQ_API unsigned aq_sched_job_weight(const aq_sched_job *job);
AQ_API uint64_t aq_sched_job_hint(const aq_sched_job *job);
/* When it was queued (CLOCK_MONOTONIC), its arrival order (from 1), and
 * how many times it ran (AQ_YIELD). */
AQ_API int64_t aq_sched_job_enqueue_ns(const aq_sched_job *job);
AQ_API uint64_t aq_sched_job_seq(const aq_sched_job *job);
AQ_API unsigned aq_sched_job_runs(const aq_sched_job *job);
/* Two words a scheduler may use freely, e.g. for intrusive links. */
AQ_API void **aq_sched_job_slots(aq_sched_job *job);

/* ---- Futures ------------------------------------------------------------- */

/*
 * The states of a future. Final states are numbered from 16 up, so that
 * `state >= AQ_STATE_SUCCEEDED` tells whether the outcome is known.
 */
enum aq_state {
	AQ_STATE_INVALID = -1,   /* not a future (NULL) */
	AQ_STATE_PENDING = 0,    /* accepted, queued to run */
	AQ_STATE_RUNNING = 1,    /* a worker is running it */
	AQ_STATE_DELAYED = 2,    /* waiting for its start time */
	AQ_STATE_RETRYING = 3,   /* failed, waiting for its next attempt */
	AQ_STATE_WAITING = 4,    /* waiting for the jobs it runs after */
	AQ_STATE_SUCCEEDED = 16, /* the job returned 0 */
	AQ_STATE_FAILED = 17,    /* the job returned a positive failure code */
	AQ_STATE_CANCELLED = 18, /* it will never run (cancel or shutdown) */
	AQ_STATE_EXPIRED = 19,   /* its deadline passed before it started */
	AQ_STATE_SKIPPED = 20    /* a job it ran after did not succeed */
};

/*
 * Wait up to timeout_ns (negative = forever, 0 = just look) for the
 * outcome. Returns 0 (succeeded; *result set), the job's positive failure
 * code (failed; *result set), -ETIMEDOUT (no outcome yet), -ECANCELED,
 * -ETIME (expired: its deadline passed before it started), -EPIPE
 * (skipped: a job it ran after did not succeed), -EDEADLK (a job waiting
 * for its own future) or -EINVAL. result may be NULL. On one of the
 * future's own pool workers it runs the awaited job itself if still
 * queued, else other queued jobs, while it waits, so nested waits (on jobs
 * submitted after the waiter started) cannot deadlock.
 */
AQ_API int aq_future_get(aq_future *fut, void **result, int64_t timeout_ns);

/*
 * Stop a job that waits (pending, delayed, retrying or waiting): 0. A
 * running job is not interrupted, but aq_current_cancelled() turns true for
 * it and it is not retried: -EBUSY. Resolved: -EALREADY.
 */
AQ_API int aq_future_cancel(aq_future *fut);

/*
 * Wait until every future resolved (0) or until the timeout (-ETIMEDOUT);
 * -EINVAL for a NULL array or entry; -EDEADLK, as aq_future_get, inside
 * a job whose own future is among them. Outcomes are read with
 * aq_future_get(f, &r, 0). Helps like aq_future_get on a pool's worker.
 */
AQ_API int aq_wait_all(aq_future *const *futs, unsigned n, int64_t timeout_ns);

/* Wait until one resolved: 0 and its position in *index, or -ETIMEDOUT. */
AQ_API int aq_wait_any(aq_future *const *futs, unsigned n, int64_t timeout_ns,
		       unsigned *index);

/* The error record of a FAILED future: 0, -EINVAL, or -EAGAIN (the future
 * has not failed, or not yet). */
AQ_API int aq_future_error(const aq_future *fut, struct aq_error *err);

/* The future's present state; AQ_STATE_INVALID for NULL. */
AQ_API enum aq_state aq_future_state(const aq_future *fut);

/* Drop the caller's reference. Safe at any time; NULL is ignored. */
AQ_API void aq_future_release(aq_future *fut);

/* Take one more reference to fut (released with aq_future_release());
 * returns fut. NULL is ignored. */
AQ_API aq_future *aq_future_retain(aq_future *fut);

/* ---- Promises: futures resolved by the caller ---------------------------- */

/*
 * A PENDING future that belongs to no pool and runs no job; the caller
 * holds one reference and resolves it with aq_future_complete().
 * result_destroy (may be NULL) runs on a non-NULL result when the last
 * reference goes. flags must be 0. 0, -EINVAL or -ENOMEM.
 */
AQ_API int aq_future_create(aq_future **fut, void (*result_destroy)(void *),
			    unsigned flags);

/*
 * Resolve a promise, exactly once, from any thread: code 0 (SUCCEEDED,
 * with result), a positive failure code (FAILED, with result and a copy of
 * message), -ECANCELED, -ETIME or -EPIPE (CANCELLED, EXPIRED, SKIPPED).
 * 0; -EALREADY if it was completed before, -ECANCELED if it was cancelled;
 * -EINVAL (NULL, a bad code, a pool's future); -ENOMEM.
 */
AQ_API int aq_future_complete(aq_future *fut, int code, void *result,
			      const char *message);

/* ---- Statistics --------------------------------------------------------- */

/* A distribution of durations (log2 buckets: percentiles are within a
 * factor of 1.5 of the truth; max and mean are exact). */
struct aq_histogram {
	uint64_t count;
	int64_t mean_ns, p50_ns, p90_ns, p99_ns, max_ns;
};

/*
 * A snapshot of a pool (man aq_pool_stats). Counters are since creation;
 * rates are over the window since the previous aq_pool_stats() call.
 */
struct aq_pool_stats {
	/* Counters. submitted = succeeded + failed + cancelled + expired +
	 * skipped + in flight, exactly, once the pool is quiet. */
	uint64_t submitted, started, succeeded, failed, retried, cancelled,
		expired, skipped, rejected;
	/* Gauges, now. */
	uint64_t queued;  /* in the ring or the scheduler */
	uint64_t delayed; /* in the timer: delayed, or waiting to retry */
	uint64_t running; /* jobs being run by workers */
	uint64_t workers, workers_busy, workers_idle;
	/* Distributions (need AQ_POOL_TIMING or job hooks). */
	struct aq_histogram wait; /* submit (or release) to start */
	struct aq_histogram run;  /* start to end of one call */
	/* The window: rates per second, and queueing-theory views of it. */
	int64_t window_ns;
	double arrival_rate;           /* lambda: submissions per second */
	double throughput;             /* completions per second */
	double utilization;            /* rho: busy time / (window * workers) */
	double mean_time_in_system_ns; /* W: submit to completion, averaged
					  over jobs completed in the window */
	double mean_in_system;         /* L = throughput * W (Little's law) */
	/* The cumulative sums the window figures are differences of, so that
	 * a caller can compute its own windows (aq_pool_stats_window()). */
	int64_t taken_ns;    /* when it was taken, CLOCK_MONOTONIC */
	uint64_t busy_ns;    /* time workers spent in job calls */
	uint64_t sojourn_ns; /* submit to end, summed over timed ends */
	uint64_t timed_done; /* completions whose time is in sojourn_ns */
};

/* Fill *stats; its window runs from the previous call, by any caller. */
AQ_API int aq_pool_stats(aq_pool *pool, struct aq_pool_stats *stats);

/*
 * Recompute the window figures of `now` (window_ns, the rates, W and L)
 * for the window from the earlier snapshot `since` of the same pool: a
 * caller's own window, whoever else takes statistics. -EINVAL for NULL, or
 * a `since` taken after `now`.
 */
AQ_API int aq_pool_stats_window(const struct aq_pool_stats *since,
				struct aq_pool_stats *now);

/*
 * The statistics of npools pools as OpenMetrics text (Prometheus can scrape
 * it), each pool labelled by its cfg.name, into buf, snprintf-style: the
 * text's length is returned; it is complete if less than size. Does not
 * touch any window of aq_pool_stats(). man aq_pool_metrics.
 */
AQ_API int aq_pool_metrics(aq_pool *const *pools, unsigned npools, char *buf,
			   size_t size);

/* What the per-job hooks (cfg.before_job, cfg.after_job) are told. */
struct aq_job_event {
	uint64_t id; /* the job's id, from 1 (hooks give every job a
			record, so never 0) */
	unsigned attempt;
	int64_t wait_ns; /* submit (or release) to start */
	int64_t run_ns;  /* after_job only: the call's duration */
	int code;        /* after_job only: what the job returned */
};

/* ---- Completion delivery: callbacks and channels ----------------------- */

/* Called once when a future resolves, whatever the outcome; read it with
 * aq_future_get(fut, &result, 0). fut stays valid during the call. */
typedef void (*aq_then_fn)(aq_future *fut, void *user);

/* A queue of completion callbacks run by the host's own event loop. */
typedef struct aq_channel aq_channel;

/*
 * Run fn(fut, user) once fut resolves: on the thread that resolves it when
 * channel is NULL, else on whichever thread calls aq_channel_dispatch().
 * A future already resolved is handled the same way, at once.
 */
AQ_API int aq_future_then(aq_future *fut, aq_then_fn fn, void *user,
			  aq_channel *channel);

/* A channel; flags must be 0. */
AQ_API int aq_channel_create(aq_channel **channel, unsigned flags);
/* Readable exactly while callbacks wait: poll/epoll it for POLLIN. */
AQ_API int aq_channel_fd(const aq_channel *channel);
/* Run up to max waiting callbacks here (0 = all); how many ran. */
AQ_API int aq_channel_dispatch(aq_channel *channel, unsigned max);
/* Run what still waits, then free. No callback may be added any more. */
AQ_API void aq_channel_destroy(aq_channel *channel);

/* ---- Errors and version -------------------------------------------------- */

/* A static description of a return code of this library (never NULL). */
AQ_API const char *aq_strerror(int code);

/* The run-time library version as AQ_VERSION_HEX, and as "M.m.p". */
AQ_API unsigned aq_version(void);
AQ_API const char *aq_version_string(void);

#ifdef __cplusplus
}
#endif

#endif /* ASYNCQ_H */
