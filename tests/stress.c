/* SPDX-License-Identifier: MIT */
/*
 * stress.c - everything at once, for a while, then proof that nothing was
 * lost: `stress [-d SECONDS] [-s SEED]` (make stress).
 *
 * Four producers and an elastic pool (1 to 4 workers, a short idle timeout,
 * so workers retire and start all the time) with a scheduler chosen by the
 * seed. The producers submit a random mix: fire-and-forget jobs, jobs with
 * futures, failing jobs with retry policies (small back-offs on the real
 * clock), delays, deadlines, jobs that run after others, blocking and
 * non-blocking submits. Jobs yield, submit children and wait for them;
 * producers cancel, wait and release at random moments; then-callbacks run
 * inline and through a channel drained by a dispatcher thread; a chaos
 * thread resizes the pool and reads its statistics. The run ends in a shutdown
 * chosen by the seed (drain or cancel, sometimes timed first, then
 * untimed), with the producers still submitting.
 *
 * The invariants, checked as the run goes and at the end (any violation is
 * printed with the seed and makes the exit status 1):
 *   - every accepted future resolves exactly once (an audit then-callback
 *     on each counts it), and every then-callback runs exactly once;
 *   - a job never runs on two workers at once, never twice for one
 *     attempt, never after it resolved, and never for more attempts than
 *     its policy allows; attempts go 1, 2, 3 ... with AQ_YIELD resuming the
 *     same one;
 *   - arg_destroy runs exactly once for every accepted job, before its
 *     future resolves, and never for a refused one;
 *   - after shutdown every future is final, and the statistics add up
 *     exactly: submitted = succeeded + failed + cancelled + expired +
 *     skipped = what the producers counted as accepted, rejected = what they
 *     saw refused, retried = the retries on_retry let through, started = the
 *     first attempts the jobs saw;
 *   - the worker threads' start and stop hooks pair up, and no thread is
 *     left behind; under ASan, LeakSanitizer proves nothing leaked.
 *
 * Job bookkeeping lives in `struct job`, reference counted: the job's arg
 * (dropped by arg_destroy), each then-callback, and whoever holds it for a
 * moment. Fire-and-forget jobs without options carry a `struct ticket`
 * instead, from a fixed per-producer array, since nothing would free a
 * heap argument that a cancelling shutdown drops.
 */
#include <errno.h>
#include <inttypes.h>
#include <poll.h>
#include <pthread.h>
#include <sched.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>
#include <dirent.h>

#include "asyncq.h"

/* aq_pool_now() of a valid pool, as a value. */
static int64_t pool_now(const aq_pool *pool)
{
	int64_t now;

	if (aq_pool_now(pool, &now) != 0)
		abort();
	return now;
}

#define PRODUCERS 4
#define MAX_WORKERS 4
#define HELD_MAX 32        /* futures a producer holds at once */
#define TICKETS 256        /* fire-and-forget arguments per producer */
#define TICKET_BATCH 8     /* tickets per aq_submit_batch() at most */
#define LIVE_LIMIT 4096    /* producers pause above this many live jobs */
#define FAIL_CODE 5        /* what a failing job returns */
#define FATAL_CODE 77      /* a code one policy never retries */
#define FAIL_MESSAGE "stress: planned failure"

/* ---- random numbers: xorshift64*, one state per thread -------------------- */

static uint64_t splitmix(uint64_t x)
{
	x += UINT64_C(0x9e3779b97f4a7c15);
	x = (x ^ (x >> 30)) * UINT64_C(0xbf58476d1ce4e5b9);
	x = (x ^ (x >> 27)) * UINT64_C(0x94d049bb133111eb);
	return x ^ (x >> 31);
}

static uint64_t rnd(uint64_t *s)
{
	uint64_t x = *s;

	x ^= x >> 12;
	x ^= x << 25;
	x ^= x >> 27;
	*s = x ? x : 1;
	return x * UINT64_C(2685821657736338717);
}

/* Uniform in [0, n). */
static unsigned rnd_below(uint64_t *s, unsigned n)
{
	return n ? (unsigned)(rnd(s) % n) : 0;
}

/* True with probability percent / 100. */
static bool chance(uint64_t *s, unsigned percent)
{
	return rnd_below(s, 100) < percent;
}

static int64_t now_ns(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (int64_t)ts.tv_sec * 1000000000 + ts.tv_nsec;
}

static void sleep_us(unsigned us)
{
	struct timespec ts = { .tv_sec = us / 1000000,
			       .tv_nsec = (long)(us % 1000000) * 1000L };

	while (nanosleep(&ts, &ts) == -1 && errno == EINTR)
		;
}

static void spin_us(unsigned us)
{
	int64_t until = now_ns() + (int64_t)us * 1000;

	while (now_ns() < until)
		;
}

/* ---- violations ------------------------------------------------------------ */

static uint64_t seed;
static atomic_long violations;
static atomic_bool final_checks; /* the end-of-run checks: print them all */

static void violation(const char *fmt, ...)
{
	long n = atomic_fetch_add(&violations, 1);
	va_list ap;

	if (n >= 20 && !atomic_load(&final_checks))
		return; /* the first ones tell the story */
	va_start(ap, fmt);
	fprintf(stderr, "stress: VIOLATION (seed %" PRIu64 "): ", seed);
	vfprintf(stderr, fmt, ap);
	fputc('\n', stderr);
	va_end(ap);
}

/* ---- what the run counts ------------------------------------------------- */

static struct {
	/* Submits, by who made them and how they ended. */
	atomic_long accepted, accepted_ff, accepted_fut, accepted_nested,
		accepted_cb, refused, refused_again, refused_timedout,
		refused_shutdown, refused_nomem;
	/* Ticket batches (aq_submit_batch()), and the jobs turned away at
	 * the tail of a batch that got only part of its jobs in. */
	atomic_long batches, refused_partial;
	/* Calls of job functions: all, first attempts, yields, and calls
	 * made by jobs whose record has hooks (all of them when hooks are
	 * on). */
	atomic_long calls, first_starts, yields, returned_cancelled;
	/* Outcomes seen by the audit then-callbacks (futures only). */
	atomic_long succeeded, failed, cancelled, expired, skipped;
	/* Callbacks. */
	atomic_long on_retry_allowed, on_retry_vetoed, on_error, destroyed,
		then_inline, then_channel, then_late;
	/* Producer actions. */
	atomic_long cancel_ok, cancel_busy, cancel_already, gets, waits,
		resizes, stats_reads;
	/* Tickets (fire-and-forget jobs): ran to the end, and still
	 * queued at the end (dropped by a cancelling shutdown). */
	atomic_long ticket_done;
	/* Hooks. */
	atomic_long before_job, after_job, thread_start, thread_stop;
	/* Job structs alive; must come back to zero. */
	atomic_long live_jobs;
} g;

/* ---- the run's configuration ------------------------------------------------ */

static aq_pool *pool;
static aq_channel *channel;
static bool lean;             /* no scheduler, retry default or timing:
				 fire-and-forget jobs travel without a record */
static bool has_retry_default;
static bool hooks;
static atomic_bool producers_stop, chaos_stop, dispatcher_stop;

/*
 * The retry policies jobs may name (they must outlive the jobs). user is
 * the index, so the callbacks know which one they serve.
 */
static int on_retry_cb(const struct aq_job_info *info, int code,
		       unsigned attempt, int64_t *delay_ns, void *user);
static void on_error_cb(const struct aq_job_info *info,
			const struct aq_error *err, void *user);

static const int never_retry_codes[] = { FATAL_CODE };

static const struct aq_retry_policy policies[] = {
	{ .max_attempts = 3, .base_delay_ns = 20000, .factor = 2.0,
	  .max_delay_ns = 1000000, .flags = AQ_RETRY_JITTER,
	  .on_retry = on_retry_cb, .on_error = on_error_cb },
	{ .max_attempts = 4, .base_delay_ns = 50000,
	  .never_retry = never_retry_codes, .never_retry_count = 1,
	  .on_retry = on_retry_cb, .on_error = on_error_cb },
	{ .max_attempts = 2, .on_retry = on_retry_cb,
	  .on_error = on_error_cb },
};
#define NPOLICIES (sizeof(policies) / sizeof(policies[0]))

/* The pool's default, used by jobs that name none. */
static const struct aq_retry_policy default_policy = {
	.max_attempts = 2, .base_delay_ns = 10000,
	.on_retry = on_retry_cb, .on_error = on_error_cb,
};

/* ---- job bookkeeping ------------------------------------------------------- */

#define JOB_MAGIC 0x6a6f6273u
#define TICKET_MAGIC 0x7469636bu

/*
 * A job with its own bookkeeping. The plan is fixed before submit; the
 * run fields are written by the job's calls, one at a time (which in_run
 * checks), and read by the audit once the future resolved.
 */
struct job {
	unsigned magic;          /* JOB_MAGIC: the callbacks tell jobs from
				    tickets by it */
	atomic_uint refs;        /* arg, then-callbacks, a holder */
	/* The plan. */
	unsigned max_attempts;   /* of its policy; 1 without one */
	unsigned fail_attempts;  /* attempts that fail before one succeeds */
	int fail_code;           /* what a failing attempt returns */
	unsigned yields;         /* AQ_YIELD returns per attempt */
	unsigned spin;           /* microseconds of work per call */
	bool has_future;
	bool has_policy;         /* a retry policy applies: on_error is due */
	bool nested;             /* submits a child job on its first call */
	bool fail_msg;           /* attaches a message when it fails */
	uint64_t rng;            /* for the nested submit */
	/* The run. */
	atomic_int in_run;       /* calls in progress: 0 or 1 */
	unsigned attempt;        /* the attempt of the last call */
	unsigned yields_done;    /* yields within that attempt */
	bool resuming;           /* the last call yielded */
	int last_ret;            /* what the last non-yield call returned */
	atomic_uint attempts_started;
	atomic_uint retries_allowed; /* on_retry said yes */
	atomic_int on_error_calls;
	atomic_int destroyed;    /* arg_destroy calls */
	atomic_int resolved;     /* audit then-callback calls */
	atomic_int then_registered, then_ran;
};

/* A fire-and-forget job's argument: reused once its job returned. */
struct ticket {
	unsigned magic;       /* TICKET_MAGIC */
	atomic_int queued;    /* 1 from submit until the job's last return */
	atomic_int in_run;
	unsigned yields;      /* AQ_YIELD returns still to make */
	bool fail;            /* its last call fails */
	bool resuming;
};

static struct job *job_new(uint64_t *rng)
{
	struct job *j = calloc(1, sizeof(*j));

	if (!j) {
		fprintf(stderr, "stress: out of memory\n");
		abort();
	}
	j->magic = JOB_MAGIC;
	atomic_init(&j->refs, 2); /* the arg, and the creator */
	j->rng = rnd(rng);
	atomic_fetch_add(&g.live_jobs, 1);
	return j;
}

static void job_ref(struct job *j)
{
	atomic_fetch_add(&j->refs, 1);
}

/* The last reference: the job's whole life is known; check it. */
static void job_put(struct job *j)
{
	unsigned started;

	if (atomic_fetch_sub(&j->refs, 1) != 1)
		return;
	started = atomic_load(&j->attempts_started);
	if (atomic_load(&j->destroyed) != 1)
		violation("job %p: arg_destroy ran %d times", (void *)j,
			  atomic_load(&j->destroyed));
	if (atomic_load(&j->resolved) != (j->has_future ? 1 : 0))
		violation("job %p: its future resolved %d times", (void *)j,
			  atomic_load(&j->resolved));
	if (atomic_load(&j->then_ran) != atomic_load(&j->then_registered))
		violation("job %p: %d then-callbacks ran of %d registered",
			  (void *)j, atomic_load(&j->then_ran),
			  atomic_load(&j->then_registered));
	if (started > j->max_attempts)
		violation("job %p: %u attempts, its policy allows %u",
			  (void *)j, started, j->max_attempts);
	if (atomic_load(&j->on_error_calls) > 1)
		violation("job %p: on_error ran %d times", (void *)j,
			  atomic_load(&j->on_error_calls));
	j->magic = 0;
	free(j);
	atomic_fetch_sub(&g.live_jobs, 1);
}

/* A refused job: nothing of the library may have touched it. */
static void job_discard(struct job *j)
{
	if (atomic_load(&j->destroyed))
		violation("arg_destroy ran for a refused job");
	j->magic = 0;
	free(j);
	atomic_fetch_sub(&g.live_jobs, 1);
}

static void job_destroy(void *arg)
{
	struct job *j = arg;

	if (j->magic != JOB_MAGIC) {
		violation("arg_destroy with a stale argument %p", arg);
		return;
	}
	if (atomic_fetch_add(&j->destroyed, 1) != 0)
		violation("job %p: arg_destroy ran twice", arg);
	if (atomic_load(&j->in_run))
		violation("job %p: arg_destroy while it runs", arg);
	if (atomic_load(&j->resolved))
		violation("job %p: arg_destroy after its future resolved", arg);
	atomic_fetch_add(&g.destroyed, 1);
	job_put(j);
}

static void count_refusal(int rc)
{
	atomic_fetch_add(&g.refused, 1);
	switch (rc) {
	case -EAGAIN:
		atomic_fetch_add(&g.refused_again, 1);
		break;
	case -ETIMEDOUT:
		atomic_fetch_add(&g.refused_timedout, 1);
		break;
	case -ESHUTDOWN:
		atomic_fetch_add(&g.refused_shutdown, 1);
		break;
	case -ENOMEM:
		atomic_fetch_add(&g.refused_nomem, 1);
		break;
	default:
		violation("aq_submit returned %d (%s)", rc, aq_strerror(rc));
	}
}

/* ---- the audit: every future's outcome, checked once it resolves -------- */

static void audit_then(aq_future *fut, void *user)
{
	struct job *j = user;
	enum aq_state state = aq_future_state(fut);
	struct aq_error err;
	unsigned started = atomic_load(&j->attempts_started);
	unsigned retries = atomic_load(&j->retries_allowed);
	void *result = NULL;
	int rc = aq_future_get(fut, &result, 0);

	if (j->magic != JOB_MAGIC) {
		violation("then-callback with a stale job %p", user);
		return;
	}
	if (atomic_fetch_add(&j->resolved, 1) != 0)
		violation("job %p: its future resolved twice", user);
	if (atomic_load(&j->destroyed) != 1)
		violation("job %p: resolved before its arg_destroy ran",
			  user);
	if (atomic_load(&j->in_run))
		violation("job %p: resolved while it runs", user);
	switch (state) {
	case AQ_STATE_SUCCEEDED:
		atomic_fetch_add(&g.succeeded, 1);
		if (rc != 0 || result != j || j->last_ret != 0)
			violation("job %p: SUCCEEDED but get %d, result %p, "
				  "job returned %d", user, rc, result,
				  j->last_ret);
		if (started != retries + 1)
			violation("job %p: succeeded after %u attempts and "
				  "%u retries", user, started, retries);
		break;
	case AQ_STATE_FAILED:
		atomic_fetch_add(&g.failed, 1);
		if (rc != j->fail_code || j->last_ret != j->fail_code)
			violation("job %p: FAILED but get %d, job returned %d",
				  user, rc, j->last_ret);
		if (aq_future_error(fut, &err) != 0 ||
		    err.attempts != started || err.code != j->fail_code)
			violation("job %p: error record %u attempts code %d, "
				  "saw %u attempts", user, err.attempts,
				  err.code, started);
		else if (j->fail_msg && (!err.message ||
					 strcmp(err.message, FAIL_MESSAGE)))
			violation("job %p: lost its failure message", user);
		if (started != retries + 1)
			violation("job %p: failed after %u attempts and %u "
				  "retries", user, started, retries);
		if (atomic_load(&j->on_error_calls) != (j->has_policy ? 1 : 0))
			violation("job %p: on_error ran %d times", user,
				  atomic_load(&j->on_error_calls));
		break;
	case AQ_STATE_CANCELLED:
		atomic_fetch_add(&g.cancelled, 1);
		if (rc != -ECANCELED)
			violation("job %p: CANCELLED but get %d", user, rc);
		break;
	case AQ_STATE_EXPIRED:
		atomic_fetch_add(&g.expired, 1);
		if (rc != -ETIME)
			violation("job %p: EXPIRED but get %d", user, rc);
		break;
	case AQ_STATE_SKIPPED:
		atomic_fetch_add(&g.skipped, 1);
		if (rc != -EPIPE || started)
			violation("job %p: SKIPPED but get %d, %u attempts",
				  user, rc, started);
		break;
	default:
		violation("job %p: then-callback in state %d", user,
			  (int)state);
	}
	if (state != AQ_STATE_FAILED && atomic_load(&j->on_error_calls))
		violation("job %p: on_error ran, yet state %d", user,
			  (int)state);
	atomic_fetch_add(&g.then_inline, 1);
	atomic_fetch_add(&j->then_ran, 1);
	job_put(j);
}

/* A second callback, through the channel or registered late. */
static void extra_then(aq_future *fut, void *user)
{
	struct job *j = user;

	if (j->magic != JOB_MAGIC) {
		violation("then-callback with a stale job %p", user);
		return;
	}
	if (aq_future_state(fut) < AQ_STATE_SUCCEEDED ||
	    aq_future_get(fut, NULL, 0) == -ETIMEDOUT)
		violation("job %p: then-callback before it resolved", user);
	/* No order against the audit: a callback registered on a future
	 * that is resolving may run on this thread while the resolving
	 * thread is still about to run the audit. */
	atomic_fetch_add(&j->then_ran, 1);
	job_put(j);
}

static void channel_then(aq_future *fut, void *user);

/* Register a callback on fut for j: registered is counted first, since
 * the callback runs at once on a resolved future. */
static void then_register(aq_future *fut, struct job *j, aq_then_fn fn,
			  aq_channel *ch)
{
	int rc;

	job_ref(j);
	atomic_fetch_add(&j->then_registered, 1);
	rc = aq_future_then(fut, fn, j, ch);
	if (rc != 0) {
		violation("aq_future_then returned %d", rc);
		atomic_fetch_sub(&j->then_registered, 1);
		job_put(j);
	}
}

/* ---- retry callbacks ------------------------------------------------------- */

static int on_retry_cb(const struct aq_job_info *info, int code,
		       unsigned attempt, int64_t *delay_ns, void *user)
{
	struct job *j = info->arg;

	(void)user;
	if (code != FAIL_CODE || attempt != info->attempt)
		violation("on_retry: code %d attempt %u/%u", code, attempt,
			  info->attempt);
	if (j->magic == TICKET_MAGIC) {
		violation("on_retry for a ticket, which never fails with a "
			  "retry policy");
		return 1;
	}
	if (j->magic != JOB_MAGIC) {
		violation("on_retry with a stale argument");
		return 1;
	}
	/* One in ten is vetoed; one in five goes at once. */
	if (rnd_below(&j->rng, 10) == 0) {
		atomic_fetch_add(&g.on_retry_vetoed, 1);
		return 1;
	}
	if (rnd_below(&j->rng, 5) == 0)
		*delay_ns = -1;
	atomic_fetch_add(&j->retries_allowed, 1);
	atomic_fetch_add(&g.on_retry_allowed, 1);
	return 0;
}

static void on_error_cb(const struct aq_job_info *info,
			const struct aq_error *err, void *user)
{
	struct job *j = info->arg;

	(void)user;
	atomic_fetch_add(&g.on_error, 1);
	if (j->magic != JOB_MAGIC) {
		violation("on_error for a %s", j->magic == TICKET_MAGIC
							? "ticket"
							: "stale argument");
		return;
	}
	if (err->attempts != info->attempt ||
	    err->attempts != atomic_load(&j->attempts_started))
		violation("on_error: %u attempts, info %u, job saw %u",
			  err->attempts, info->attempt,
			  atomic_load(&j->attempts_started));
	atomic_fetch_add(&j->on_error_calls, 1);
}

/* ---- the jobs ---------------------------------------------------------------- */

static int submit_random(uint64_t *rng, bool from_worker, bool from_callback,
			 struct job **held_job, aq_future **held_fut);

static int stress_job(void *arg, void **result)
{
	struct job *j = arg;
	unsigned attempt = aq_current_attempt();
	int ret;

	if (j->magic != JOB_MAGIC) {
		violation("a job ran with a stale argument %p", arg);
		return 0;
	}
	if (atomic_fetch_add(&j->in_run, 1) != 0)
		violation("job %p runs on two workers at once", arg);
	if (atomic_load(&j->destroyed) || atomic_load(&j->resolved))
		violation("job %p runs after it resolved", arg);
	atomic_fetch_add(&g.calls, 1);
	if (j->resuming) {
		if (attempt != j->attempt)
			violation("job %p: resumed as attempt %u after a yield "
				  "in attempt %u", arg, attempt, j->attempt);
	} else {
		if (attempt != j->attempt + 1)
			violation("job %p: attempt %u after attempt %u", arg,
				  attempt, j->attempt);
		j->attempt = attempt;
		j->yields_done = 0;
		if (atomic_fetch_add(&j->attempts_started, 1) + 1 >
		    j->max_attempts)
			violation("job %p: attempt %u of %u", arg, attempt,
				  j->max_attempts);
		if (attempt == 1)
			atomic_fetch_add(&g.first_starts, 1);
	}
	if (j->spin)
		spin_us(j->spin);
	(void)aq_current_yield_due();

	/* A child, on the first call only, sometimes waited for here (the
	 * wait helps: it runs queued jobs meanwhile). */
	if (j->nested && attempt == 1 && !j->resuming) {
		struct job *child = NULL;
		aq_future *fut = NULL;

		if (submit_random(&j->rng, true, false, &child, &fut) == 0 &&
		    fut) {
			int rc = aq_future_get(fut, NULL, 1000000);

			if (rc == -EINVAL || rc == -EAGAIN)
				violation("nested get: %d", rc);
			aq_future_release(fut);
			job_put(child);
		}
	}

	if (aq_current_cancelled()) {
		j->resuming = false;
		j->last_ret = AQ_JOB_CANCELLED;
		atomic_fetch_add(&g.returned_cancelled, 1);
		atomic_fetch_sub(&j->in_run, 1);
		return AQ_JOB_CANCELLED;
	}
	if (j->yields_done < j->yields) {
		j->yields_done++;
		j->resuming = true;
		atomic_fetch_add(&g.yields, 1);
		atomic_fetch_sub(&j->in_run, 1);
		return AQ_YIELD;
	}
	j->resuming = false;
	ret = attempt <= j->fail_attempts ? j->fail_code : 0;
	if (ret == 0)
		*result = j;
	else if (j->fail_msg && aq_current_fail_msg(FAIL_MESSAGE) != 0)
		violation("aq_current_fail_msg failed in a job with a future");
	j->last_ret = ret;
	atomic_fetch_sub(&j->in_run, 1);
	return ret;
}

static int ticket_job(void *arg, void **result)
{
	struct ticket *t = arg;
	unsigned attempt = aq_current_attempt();
	int ret;

	(void)result;
	if (t->magic != TICKET_MAGIC) {
		violation("a fire-and-forget job ran with a stale argument");
		return 0;
	}
	if (atomic_fetch_add(&t->in_run, 1) != 0)
		violation("ticket %p runs on two workers at once", arg);
	if (!atomic_load(&t->queued))
		violation("ticket %p runs but was not queued", arg);
	atomic_fetch_add(&g.calls, 1);
	if (!t->resuming && attempt == 1)
		atomic_fetch_add(&g.first_starts, 1);
	if (attempt != 1)
		violation("ticket %p: attempt %u", arg, attempt);
	if (t->yields) {
		t->yields--;
		t->resuming = true;
		atomic_fetch_add(&g.yields, 1);
		atomic_fetch_sub(&t->in_run, 1);
		return AQ_YIELD;
	}
	t->resuming = false;
	ret = t->fail ? FAIL_CODE : 0;
	atomic_fetch_add(&g.ticket_done, 1);
	atomic_fetch_sub(&t->in_run, 1);
	/* Release: the producer that reuses the ticket (acquire) sees our
	 * writes to it. Nothing touches it after this store. */
	atomic_store_explicit(&t->queued, 0, memory_order_release);
	return ret;
}

/* ---- submitting ---------------------------------------------------------------- */

struct producer {
	pthread_t thread;
	unsigned index;
	uint64_t rng;
	struct ticket tickets[TICKETS];
	unsigned next_ticket;
	struct job *held_job[HELD_MAX]; /* one reference each */
	aq_future *held[HELD_MAX];
	unsigned nheld;
	bool saw_shutdown;
};

/* Fill opts with a random mix for a job that has its own record. */
static void random_opts(uint64_t *rng, struct aq_job_opts *opts,
			struct job *j, bool from_worker)
{
	unsigned r = rnd_below(rng, 100);

	opts->arg_destroy = job_destroy;
	/* Ring full: fail at once, wait a little, or the pool's default. */
	if (r < 50)
		opts->flags = AQ_JOB_NOBLOCK;
	else if (r < 60 && !from_worker) {
		opts->flags = AQ_JOB_BLOCK;
		opts->timeout_ns = 100000 + rnd_below(rng, 2000000);
	}
	opts->priority = (int)rnd_below(rng, 201) - 100;
	opts->group = rnd_below(rng, 8);
	opts->weight = 1 + rnd_below(rng, 10);
	opts->hint = rnd(rng);
	if (chance(rng, 12))
		opts->delay_ns = rnd_below(rng, 1000000);
	else if (chance(rng, 3))
		opts->run_at_ns = pool_now(pool) + rnd_below(rng, 500000);
	if (chance(rng, 8))
		opts->deadline_ns = pool_now(pool) + rnd_below(rng, 600000);

	/* Failure and retries. */
	j->max_attempts = 1;
	if (chance(rng, 35)) {
		const struct aq_retry_policy *p =
			&policies[rnd_below(rng, NPOLICIES)];

		opts->retry = p;
		j->has_policy = true;
		j->max_attempts = p->max_attempts;
	} else if (has_retry_default) {
		j->has_policy = true;
		j->max_attempts = default_policy.max_attempts;
	}
	j->fail_code = opts->retry == &policies[1] && chance(rng, 30)
			       ? FATAL_CODE
			       : FAIL_CODE;
	if (chance(rng, 30))
		j->fail_attempts = 1 + rnd_below(rng, j->max_attempts + 1);
	j->yields = chance(rng, 15) ? 1 + rnd_below(rng, 2) : 0;
	j->spin = chance(rng, 20) ? rnd_below(rng, 30) : 0;
	if (chance(rng, 2))
		j->spin = 500 + rnd_below(rng, 1000); /* a slow one */
	j->nested = chance(rng, from_worker ? 3 : 8);
}

/*
 * Submit one random job. Producers pass held_* to keep the future (then
 * it is theirs, with a job reference); others get it released here. From
 * a worker (a nested submit) the future is handed back the same way, for
 * the job to wait on. Returns aq_submit()'s result.
 */
static int submit_random(uint64_t *rng, bool from_worker, bool from_callback,
			 struct job **held_job, aq_future **held_fut)
{
	struct aq_job_opts opts = { 0 };
	struct job *j = job_new(rng);
	bool want_future = chance(rng, from_worker ? 50 : 70);
	aq_future *fut = NULL;
	int rc;

	random_opts(rng, &opts, j, from_worker);
	j->has_future = want_future;
	j->fail_msg = want_future && chance(rng, 30);
	rc = aq_submit(pool, stress_job, j, &opts, want_future ? &fut : NULL);
	if (rc != 0) {
		count_refusal(rc);
		if (fut)
			violation("a refused submit set *fut");
		job_discard(j);
		return rc;
	}
	atomic_fetch_add(&g.accepted, 1);
	if (from_worker)
		atomic_fetch_add(&g.accepted_nested, 1);
	if (from_callback)
		atomic_fetch_add(&g.accepted_cb, 1);
	if (!want_future) {
		job_put(j);
		return 0;
	}
	atomic_fetch_add(&g.accepted_fut, 1);
	then_register(fut, j, audit_then, NULL);
	if (chance(rng, 25))
		then_register(fut, j, channel_then, channel);
	if (held_fut) {
		*held_fut = fut;
		*held_job = j; /* with the creator's reference */
		return 0;
	}
	aq_future_release(fut);
	job_put(j);
	return 0;
}

static void channel_then(aq_future *fut, void *user)
{
	static uint64_t rng = 1; /* the dispatcher is one thread */

	atomic_fetch_add(&g.then_channel, 1);
	extra_then(fut, user);
	if (rng == 1)
		rng = splitmix(seed ^ 0xc0ffee);
	/* Now and then a follow-up job from the event loop's side. */
	if (chance(&rng, 5))
		submit_random(&rng, false, true, NULL, NULL);
}

/*
 * Fire-and-forget with tickets: one with aq_submit(), or now and then a
 * batch of up to TICKET_BATCH with aq_submit_batch(), whose result says
 * which got in (a prefix). False when every ticket is in use.
 */
static bool submit_ticket(struct producer *p)
{
	struct ticket *ts[TICKET_BATCH];
	struct aq_job jobs[TICKET_BATCH];
	struct aq_job_opts opts = { .flags = AQ_JOB_NOBLOCK };
	unsigned want = chance(&p->rng, 20)
				? 2 + rnd_below(&p->rng, TICKET_BATCH - 1)
				: 1;
	unsigned n = 0, accepted;
	bool batch;
	int rc;

	for (unsigned i = 0; i < TICKETS && n < want; i++) {
		struct ticket *c = &p->tickets[(p->next_ticket + i) % TICKETS];

		/* Acquire: pairs with the job's release of the ticket. */
		if (!atomic_load_explicit(&c->queued, memory_order_acquire))
			ts[n++] = c;
	}
	if (n == 0)
		return false;
	p->next_ticket = (unsigned)(ts[n - 1] - p->tickets + 1) % TICKETS;
	for (unsigned i = 0; i < n; i++) {
		struct ticket *t = ts[i];

		t->yields = chance(&p->rng, 10) ? 1 + rnd_below(&p->rng, 2) : 0;
		/* With a retry policy a failure would be retried, and the
		 * ticket could not tell its last call: tickets then never
		 * fail. */
		t->fail = !has_retry_default && chance(&p->rng, 10);
		t->resuming = false;
		atomic_store(&t->queued, 1);
		jobs[i] = (struct aq_job){ ticket_job, t };
	}
	batch = want > 1;
	/* Bare: no options, no future, the job as {fn, arg} in lean pools;
	 * or NOBLOCK. A bare batch in a pool with AQ_POOL_BLOCK may wait. */
	if (batch) {
		rc = aq_submit_batch(pool, jobs, n,
				     chance(&p->rng, 50) ? NULL : &opts, NULL);
		atomic_fetch_add(&g.batches, 1);
		if (rc == 0 || rc > (int)n)
			violation("aq_submit_batch of %u returned %d", n, rc);
		accepted = rc > 0 ? (unsigned)rc : 0;
	} else {
		rc = aq_submit(pool, ticket_job, ts[0],
			       chance(&p->rng, 50) ? NULL : &opts, NULL);
		accepted = rc == 0;
	}
	for (unsigned i = accepted; i < n; i++) {
		atomic_store(&ts[i]->queued, 0);
		if (rc < 0) {
			count_refusal(rc);
		} else {
			atomic_fetch_add(&g.refused, 1);
			atomic_fetch_add(&g.refused_partial, 1);
		}
	}
	if (rc == -ESHUTDOWN)
		p->saw_shutdown = true;
	atomic_fetch_add(&g.accepted, accepted);
	atomic_fetch_add(&g.accepted_ff, accepted);
	return true;
}

/* Drop held future i: maybe register a late callback first. */
static void held_drop(struct producer *p, unsigned i)
{
	if (chance(&p->rng, 10)) {
		atomic_fetch_add(&g.then_late, 1);
		then_register(p->held[i], p->held_job[i], extra_then,
			      chance(&p->rng, 50) ? channel : NULL);
	}
	aq_future_release(p->held[i]);
	job_put(p->held_job[i]);
	p->nheld--;
	p->held[i] = p->held[p->nheld];
	p->held_job[i] = p->held_job[p->nheld];
}

static void do_cancel(aq_future *fut)
{
	int rc = aq_future_cancel(fut);

	if (rc == 0)
		atomic_fetch_add(&g.cancel_ok, 1);
	else if (rc == -EBUSY)
		atomic_fetch_add(&g.cancel_busy, 1);
	else if (rc == -EALREADY)
		atomic_fetch_add(&g.cancel_already, 1);
	else
		violation("aq_future_cancel returned %d", rc);
	if (rc == 0 && aq_future_state(fut) != AQ_STATE_CANCELLED)
		violation("cancel returned 0, yet state %d",
			  (int)aq_future_state(fut));
}

/* Something to do with the futures a producer holds. */
static void producer_play(struct producer *p)
{
	unsigned r = rnd_below(&p->rng, 100);
	unsigned i = rnd_below(&p->rng, p->nheld);
	unsigned idx;
	int rc;

	if (!p->nheld)
		return;
	if (r < 40) {
		do_cancel(p->held[i]);
	} else if (r < 60) {
		rc = aq_future_get(p->held[i], NULL,
				   chance(&p->rng, 50) ? 0 : 200000);
		atomic_fetch_add(&g.gets, 1);
		if (rc == -EINVAL || rc == -EAGAIN)
			violation("aq_future_get returned %d", rc);
		if (rc != -ETIMEDOUT &&
		    aq_future_state(p->held[i]) < AQ_STATE_SUCCEEDED)
			violation("get returned %d on a pending future", rc);
	} else if (r < 70) {
		rc = aq_wait_any(p->held, p->nheld, 100000, &idx);
		atomic_fetch_add(&g.waits, 1);
		if (rc == 0 &&
		    (idx >= p->nheld ||
		     aq_future_state(p->held[idx]) < AQ_STATE_SUCCEEDED))
			violation("aq_wait_any: index %u not resolved", idx);
		else if (rc != 0 && rc != -ETIMEDOUT)
			violation("aq_wait_any returned %d", rc);
	} else if (r < 75) {
		rc = aq_wait_all(p->held, p->nheld, 100000);
		atomic_fetch_add(&g.waits, 1);
		if (rc != 0 && rc != -ETIMEDOUT)
			violation("aq_wait_all returned %d", rc);
	} else {
		held_drop(p, i);
	}
}

/* A job with a future that runs after some of the held ones. */
static int submit_dependent(struct producer *p)
{
	struct aq_job_opts opts = { .arg_destroy = job_destroy,
				    .flags = AQ_JOB_NOBLOCK };
	aq_future *after[3];
	unsigned n = 1 + rnd_below(&p->rng, 3);
	struct job *j = job_new(&p->rng);
	aq_future *fut = NULL;
	int rc;

	for (unsigned k = 0; k < n; k++)
		after[k] = p->held[rnd_below(&p->rng, p->nheld)];
	opts.after = after;
	opts.after_count = n;
	j->max_attempts = has_retry_default ? default_policy.max_attempts : 1;
	j->has_policy = has_retry_default;
	j->fail_code = FAIL_CODE;
	j->fail_attempts = chance(&p->rng, 20) ? 1 : 0;
	j->has_future = true;
	if (chance(&p->rng, 20))
		opts.delay_ns = rnd_below(&p->rng, 300000);
	rc = aq_submit(pool, stress_job, j, &opts, &fut);
	if (rc != 0) {
		count_refusal(rc);
		job_discard(j);
		return rc;
	}
	atomic_fetch_add(&g.accepted, 1);
	atomic_fetch_add(&g.accepted_fut, 1);
	then_register(fut, j, audit_then, NULL);
	if (p->nheld < HELD_MAX) {
		p->held[p->nheld] = fut;
		p->held_job[p->nheld++] = j;
	} else {
		aq_future_release(fut);
		job_put(j);
	}
	return 0;
}

static void *producer_main(void *arg)
{
	struct producer *p = arg;

	while (!atomic_load(&producers_stop) && !p->saw_shutdown) {
		unsigned r = rnd_below(&p->rng, 100);
		int rc = 0;

		/* Bounded backlog: delayed and dependent jobs bypass the
		 * ring, so the ring alone would not pace us. */
		if (atomic_load(&g.live_jobs) > LIVE_LIMIT) {
			sleep_us(100);
			continue;
		}
		if (r < 25) {
			if (!submit_ticket(p))
				sched_yield();
		} else if (r < 32 && p->nheld) {
			rc = submit_dependent(p);
		} else if (r < 90) {
			struct job *j = NULL;
			aq_future *fut = NULL;

			rc = submit_random(&p->rng, false, false, &j, &fut);
			if (rc == 0 && fut) {
				if (p->nheld == HELD_MAX || chance(&p->rng, 40)) {
					if (p->nheld == HELD_MAX)
						held_drop(p, rnd_below(
							&p->rng, p->nheld));
					p->held[p->nheld] = fut;
					p->held_job[p->nheld++] = j;
				} else {
					aq_future_release(fut);
					job_put(j);
				}
			}
		} else {
			producer_play(p);
		}
		if (rc == -ESHUTDOWN)
			p->saw_shutdown = true;
		else if (rc == -EAGAIN || rc == -ETIMEDOUT)
			sched_yield();
	}
	return NULL;
}

/* ---- chaos: resizes and statistics -------------------------------------- */

static void *chaos_main(void *arg)
{
	uint64_t rng = splitmix(seed ^ 0xca05);
	struct aq_pool_stats prev = { 0 }, st;

	(void)arg;
	while (!atomic_load(&chaos_stop)) {
		unsigned min = 1 + rnd_below(&rng, MAX_WORKERS);
		unsigned max = min + rnd_below(&rng, MAX_WORKERS - min + 1);
		uint64_t ids[MAX_WORKERS * 2];
		int rc;

		sleep_us(500 + rnd_below(&rng, 3000));
		rc = aq_pool_resize(pool, min, max);
		if (rc == 0)
			atomic_fetch_add(&g.resizes, 1);
		else if (rc != -ESHUTDOWN)
			violation("aq_pool_resize(%u, %u) returned %d", min,
				  max, rc);
		if (!chance(&rng, 30))
			continue;
		rc = aq_pool_stats(pool, &st);
		atomic_fetch_add(&g.stats_reads, 1);
		if (rc != 0)
			violation("aq_pool_stats returned %d", rc);
		/* Monotonic counters never go back. */
		if (st.started < prev.started || st.succeeded < prev.succeeded ||
		    st.failed < prev.failed || st.retried < prev.retried ||
		    st.cancelled < prev.cancelled ||
		    st.expired < prev.expired || st.skipped < prev.skipped ||
		    st.rejected < prev.rejected)
			violation("statistics went back");
		if (st.workers > MAX_WORKERS || st.running > MAX_WORKERS)
			violation("stats: %" PRIu64 " workers, %" PRIu64
				  " running", st.workers, st.running);
		prev = st;
		rc = aq_pool_running_jobs(pool, ids, MAX_WORKERS * 2);
		if (rc < 0 || rc > MAX_WORKERS)
			violation("aq_pool_running_jobs returned %d", rc);
		rc = aq_pool_workers(pool);
		if (rc < 0 || rc > MAX_WORKERS)
			violation("aq_pool_workers returned %d", rc);
	}
	return NULL;
}

/* ---- the event loop's side: the channel -------------------------------- */

static void *dispatcher_main(void *arg)
{
	uint64_t rng = splitmix(seed ^ 0xd15);
	struct pollfd pfd = { .fd = aq_channel_fd(channel), .events = POLLIN };

	(void)arg;
	while (!atomic_load(&dispatcher_stop)) {
		int rc = poll(&pfd, 1, 5);

		if (rc < 0 && errno != EINTR)
			violation("poll on the channel: %s", strerror(errno));
		if (rc > 0 &&
		    aq_channel_dispatch(channel, rnd_below(&rng, 9)) < 0)
			violation("aq_channel_dispatch failed");
	}
	return NULL;
}

/* ---- hooks ---------------------------------------------------------------------- */

static void thread_start_hook(unsigned index, void *user)
{
	(void)user;
	if (index >= MAX_WORKERS)
		violation("worker index %u", index);
	atomic_fetch_add(&g.thread_start, 1);
}

static void thread_stop_hook(unsigned index, void *user)
{
	(void)index;
	(void)user;
	atomic_fetch_add(&g.thread_stop, 1);
}

static void before_hook(const struct aq_job_event *ev, void *user)
{
	(void)user;
	if (ev->attempt == 0)
		violation("before_job: attempt 0");
	atomic_fetch_add(&g.before_job, 1);
}

static void after_hook(const struct aq_job_event *ev, void *user)
{
	(void)ev;
	(void)user;
	atomic_fetch_add(&g.after_job, 1);
}

/* ---- the watchdog: a hang is a failure too ------------------------------- */

static const char *_Atomic phase = "start";
static _Atomic int64_t phase_deadline;

static void phase_set(const char *name, double seconds)
{
	atomic_store(&phase_deadline, now_ns() + (int64_t)(seconds * 1e9));
	atomic_store(&phase, name);
}

static void *watchdog_main(void *arg)
{
	(void)arg;
	for (;;) {
		sleep_us(100000);
		if (atomic_load(&phase_deadline) &&
		    now_ns() > atomic_load(&phase_deadline)) {
			fprintf(stderr, "stress: HANG (seed %" PRIu64 "): %s "
				"did not finish in time\n", seed,
				atomic_load(&phase));
			abort();
		}
	}
	return NULL;
}

/* ---- main ---------------------------------------------------------------------- */

static int count_threads(void)
{
	DIR *d = opendir("/proc/self/task");
	struct dirent *e;
	int n = 0;

	if (!d)
		return -1;
	while ((e = readdir(d)))
		if (e->d_name[0] != '.')
			n++;
	closedir(d);
	return n;
}

static double time_scale(void)
{
	const char *s = getenv("CK_TIMEOUT_MULTIPLIER");
	double m = s ? strtod(s, NULL) : 1.0;

	return m > 1.0 ? m : 1.0;
}

static void usage(void)
{
	fprintf(stderr, "usage: stress [-d SECONDS] [-s SEED]\n");
	exit(2);
}

#define CHECK_EQ(what, a, b)                                                 \
	do {                                                                 \
		uint64_t a_ = (uint64_t)(a), b_ = (uint64_t)(b);             \
		if (a_ != b_)                                                \
			violation("%s: %" PRIu64 " != %" PRIu64, what, a_,  \
				  b_);                                       \
	} while (0)

#define L(x) atomic_load(&g.x)

int main(int argc, char **argv)
{
	static struct producer producers[PRODUCERS];
	static const char *const sched_names[] = { "none", "fifo", "priority",
						   "fair" };
	static const char *const mode_names[] = { "drain", "cancel" };
	struct aq_sched_priority_params prio = { .aging_ns = 200000 };
	struct aq_sched_fair_params fair = { .max_running = 2 };
	struct aq_pool_config cfg = { 0 };
	struct aq_pool_stats st;
	double seconds = 20, scale = time_scale();
	pthread_t chaos, dispatcher, watchdog;
	uint64_t rng;
	unsigned sched, mode, final_mode;
	int64_t timed_ns = -1;
	int timed_rc = 0, running_at_timeout = 0, threads_before, opt;
	long ticket_lost = 0;
	int64_t t0;

	seed = (uint64_t)now_ns() ^ (uint64_t)getpid();
	while ((opt = getopt(argc, argv, "d:s:")) != -1) {
		if (opt == 'd')
			seconds = strtod(optarg, NULL);
		else if (opt == 's')
			seed = strtoull(optarg, NULL, 0);
		else
			usage();
	}
	if (!(seconds > 0) || optind != argc)
		usage();
	rng = splitmix(seed);

	/* The run's shape, from the seed. */
	sched = rnd_below(&rng, 4);
	lean = sched == 0 && chance(&rng, 50);
	has_retry_default = !lean && chance(&rng, 50);
	hooks = !lean && chance(&rng, 30);
	mode = rnd_below(&rng, 2);
	final_mode = chance(&rng, 30) ? !mode : mode;
	if (chance(&rng, 40))
		timed_ns = rnd_below(&rng, 20000000);
	cfg.workers = 2;
	cfg.min_workers = 1;
	cfg.max_workers = MAX_WORKERS;
	cfg.idle_timeout_ns = 2000000 + rnd_below(&rng, 20000000);
	cfg.queue_capacity = 64u << rnd_below(&rng, 5);
	cfg.flags = (!lean && chance(&rng, 40) ? AQ_POOL_TIMING : 0) |
		    (chance(&rng, 30) ? AQ_POOL_BLOCK : 0);
	cfg.block_timeout_ns = 1000000;
	cfg.sched = sched == 1 ? aq_sched_fifo()
		    : sched == 2 ? aq_sched_priority()
		    : sched == 3 ? aq_sched_fair()
				 : NULL;
	cfg.sched_params = sched == 2 ? (const void *)&prio
			   : sched == 3 ? (const void *)&fair
					: NULL;
	cfg.retry = has_retry_default ? &default_policy : NULL;
	cfg.name = "stress";
	cfg.on_thread_start = thread_start_hook;
	cfg.on_thread_stop = thread_stop_hook;
	if (hooks) {
		cfg.before_job = before_hook;
		cfg.after_job = after_hook;
	}
	printf("stress: seed %" PRIu64 ", %.0f s, scheduler %s%s%s%s%s, "
	       "capacity %u, shutdown %s%s%s\n",
	       seed, seconds, sched_names[sched], lean ? ", lean" : "",
	       has_retry_default ? ", retry default" : "",
	       hooks ? ", hooks" : "",
	       cfg.flags & AQ_POOL_TIMING ? ", timing" : "",
	       cfg.queue_capacity, mode_names[mode],
	       timed_ns >= 0 ? " (timed first)" : "",
	       final_mode != mode ? ", then the other mode" : "");
	fflush(stdout);

	pthread_create(&watchdog, NULL, watchdog_main, NULL);
	threads_before = count_threads();
	phase_set("setup", 30 * scale);
	if (aq_channel_create(&channel, 0) != 0 ||
	    aq_pool_create(&pool, &cfg) != 0) {
		fprintf(stderr, "stress: cannot create the pool\n");
		return 1;
	}
	pthread_create(&dispatcher, NULL, dispatcher_main, NULL);
	pthread_create(&chaos, NULL, chaos_main, NULL);
	for (unsigned i = 0; i < PRODUCERS; i++) {
		struct producer *p = &producers[i];

		p->index = i;
		p->rng = splitmix(seed + 1 + i);
		for (unsigned k = 0; k < TICKETS; k++) {
			p->tickets[k].magic = TICKET_MAGIC;
			atomic_init(&p->tickets[k].queued, 0);
			atomic_init(&p->tickets[k].in_run, 0);
		}
		pthread_create(&p->thread, NULL, producer_main, p);
	}

	/* The run. */
	phase_set("the run", seconds + 30 * scale);
	t0 = now_ns();
	while (now_ns() - t0 < (int64_t)(seconds * 1e9))
		sleep_us(50000);

	/* Shutdown, with the producers still at it. */
	phase_set("shutdown", 60 * scale);
	if (timed_ns >= 0) {
		uint64_t ids[MAX_WORKERS];

		timed_rc = aq_pool_shutdown_timed(pool, mode, timed_ns);
		if (timed_rc == -ETIMEDOUT) {
			running_at_timeout =
				aq_pool_running_jobs(pool, ids, MAX_WORKERS);
			if (running_at_timeout < 0 ||
			    running_at_timeout > MAX_WORKERS)
				violation("aq_pool_running_jobs after a timed "
					  "shutdown: %d", running_at_timeout);
		} else if (timed_rc != 0) {
			violation("aq_pool_shutdown_timed returned %d",
				  timed_rc);
		}
	}
	if (aq_pool_shutdown(pool, final_mode) != 0)
		violation("aq_pool_shutdown failed");
	if (aq_pool_shutdown(pool, final_mode) != 0)
		violation("a second aq_pool_shutdown failed");

	phase_set("joining the producers", 30 * scale);
	atomic_store(&producers_stop, true);
	for (unsigned i = 0; i < PRODUCERS; i++)
		pthread_join(producers[i].thread, NULL);
	atomic_store(&chaos_stop, true);
	pthread_join(chaos, NULL);

	/* Every future is final now, with no wait. */
	atomic_store(&final_checks, true);
	phase_set("the final checks", 30 * scale);
	for (unsigned i = 0; i < PRODUCERS; i++) {
		struct producer *p = &producers[i];

		while (p->nheld) {
			aq_future *fut = p->held[p->nheld - 1];
			int rc = aq_future_get(fut, NULL, 0);

			if (rc == -ETIMEDOUT ||
			    aq_future_state(fut) < AQ_STATE_SUCCEEDED)
				violation("a future is still pending after "
					  "shutdown (state %d)",
					  (int)aq_future_state(fut));
			held_drop(p, p->nheld - 1);
		}
		for (unsigned k = 0; k < TICKETS; k++)
			if (atomic_load(&p->tickets[k].queued))
				ticket_lost++;
	}

	/* The statistics add up. */
	if (aq_pool_stats(pool, &st) != 0)
		violation("aq_pool_stats after shutdown failed");
	CHECK_EQ("stats: submitted vs the outcomes", st.submitted,
		 st.succeeded + st.failed + st.cancelled + st.expired +
			 st.skipped);
	CHECK_EQ("stats: submitted vs accepted", st.submitted, L(accepted));
	CHECK_EQ("stats: rejected vs refused", st.rejected, L(refused));
	/* A retry on_retry allowed is not scheduled when a cancel came in
	 * meanwhile (the job resolves CANCELLED): at most one per cancel. */
	if (st.retried > (uint64_t)L(on_retry_allowed) ||
	    (uint64_t)L(on_retry_allowed) > st.retried + st.cancelled)
		violation("stats: retried %" PRIu64 ", on_retry allowed %ld, "
			  "cancelled %" PRIu64, st.retried,
			  L(on_retry_allowed), st.cancelled);
	CHECK_EQ("stats: started vs first attempts", st.started,
		 L(first_starts));
	CHECK_EQ("stats: queued after shutdown", st.queued, 0);
	CHECK_EQ("stats: delayed after shutdown", st.delayed, 0);
	CHECK_EQ("stats: running after shutdown", st.running, 0);
	/* Jobs without futures count too, except in skipped: only
	 * dependent jobs, all with futures, are skipped. */
	if (st.succeeded < (uint64_t)L(succeeded) ||
	    st.failed < (uint64_t)L(failed) ||
	    st.cancelled < (uint64_t)L(cancelled) ||
	    st.expired < (uint64_t)L(expired) ||
	    st.skipped != (uint64_t)L(skipped))
		violation("stats outcomes below what the futures saw: "
			  "%" PRIu64 "/%ld ok %" PRIu64 "/%ld failed %" PRIu64
			  "/%ld cancelled %" PRIu64 "/%ld expired %" PRIu64
			  "/%ld skipped", st.succeeded, L(succeeded),
			  st.failed, L(failed), st.cancelled, L(cancelled),
			  st.expired, L(expired), st.skipped, L(skipped));
	CHECK_EQ("tickets: accepted vs ran + dropped", L(accepted_ff),
		 L(ticket_done) + ticket_lost);
	if (final_mode == AQ_SHUTDOWN_DRAIN && mode == AQ_SHUTDOWN_DRAIN)
		CHECK_EQ("drain: tickets dropped", ticket_lost, 0);
	if (hooks) {
		CHECK_EQ("hooks: before_job vs calls", L(before_job),
			 L(calls));
		CHECK_EQ("hooks: after_job vs calls", L(after_job), L(calls));
	}
	if (cfg.flags & AQ_POOL_TIMING || hooks)
		CHECK_EQ("stats: timed calls", st.run.count, L(calls));

	phase_set("the channel", 30 * scale);
	atomic_store(&dispatcher_stop, true);
	pthread_join(dispatcher, NULL);
	aq_channel_destroy(channel);
	phase_set("destroy", 30 * scale);
	aq_pool_destroy(pool);

	CHECK_EQ("outcomes of the futures vs their count",
		 L(succeeded) + L(failed) + L(cancelled) + L(expired) +
			 L(skipped),
		 L(accepted_fut));
	CHECK_EQ("job structs still alive", L(live_jobs), 0);
	CHECK_EQ("worker threads started vs stopped", L(thread_start),
		 L(thread_stop));
	CHECK_EQ("threads before and after", count_threads(),
		 threads_before);
	phase_set("done", 30 * scale);

	printf("stress: %ld accepted (%ld fire-and-forget, %ld with futures, "
	       "%ld nested, %ld from callbacks; %ld batches), %ld refused "
	       "(%ld EAGAIN, %ld ETIMEDOUT, %ld ESHUTDOWN, %ld at the tail "
	       "of a batch)\n",
	       L(accepted), L(accepted_ff), L(accepted_fut),
	       L(accepted_nested), L(accepted_cb), L(batches), L(refused),
	       L(refused_again), L(refused_timedout), L(refused_shutdown),
	       L(refused_partial));
	printf("stress: %ld calls, %" PRIu64 " started, %" PRIu64
	       " succeeded, %" PRIu64 " failed, %" PRIu64 " retried (%ld "
	       "vetoed), %ld yields, %" PRIu64 " cancelled (%ld by cancel, "
	       "%ld returned cancelled), %" PRIu64 " expired, %" PRIu64
	       " skipped\n",
	       L(calls), st.started, st.succeeded, st.failed, st.retried,
	       L(on_retry_vetoed), L(yields), st.cancelled, L(cancel_ok),
	       L(returned_cancelled), st.expired, st.skipped);
	printf("stress: %ld then-callbacks inline, %ld on the channel, %ld "
	       "late; %ld arg_destroy; %ld resizes, %ld stats reads, %ld "
	       "worker threads; %ld tickets dropped; timed shutdown %s "
	       "(%d running)\n",
	       L(then_inline), L(then_channel), L(then_late), L(destroyed),
	       L(resizes), L(stats_reads), L(thread_start), ticket_lost,
	       timed_ns < 0 ? "not tried"
	       : timed_rc   ? "timed out"
			    : "returned 0",
	       running_at_timeout);
	if (atomic_load(&violations)) {
		fprintf(stderr, "stress: FAILED, %ld violations (seed %" PRIu64
			")\n", atomic_load(&violations), seed);
		return 1;
	}
	printf("stress: OK, seed %" PRIu64 "\n", seed);
	return 0;
}
