/* SPDX-License-Identifier: MIT */
/*
 * custom_scheduler.c - a scheduling policy written outside the library:
 * shortest job first. Each job says how costly it expects to be in
 * aq_job_opts.hint; a free worker takes the cheapest waiting job, and jobs
 * of equal cost run in arrival order.
 *
 * Copy the "policy" part to write your own (man aq_sched_ops). The pool
 * calls every op with its scheduler lock held, so the policy is plain
 * single-threaded code: no atomics, no locks of its own. It keeps its
 * queue inside the jobs themselves, through the two pointer slots that
 * aq_sched_job_slots() gives every job, so push never allocates and
 * cannot fail.
 *
 * main() proves the order: one worker is held by a gate job while jobs of
 * different costs are submitted; once the gate opens they must run
 * cheapest first. It exits 0 only if they did.
 */
#define _POSIX_C_SOURCE 200809L /* nanosleep() under -std=c11 */

#include <errno.h>
#include <stdatomic.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <time.h>

#include <asyncq.h>

/* ---- the policy --------------------------------------------------------- */

/* The policy's state: a list of waiting jobs, sorted by hint (cheapest
 * first), linked through slot 0 of each job. */
struct sjf {
	aq_sched_job *head;
	unsigned long long done; /* jobs finished or yielded, for the curious */
};

/* The next job in the list. */
static aq_sched_job **next_of(aq_sched_job *job)
{
	return (aq_sched_job **)&aq_sched_job_slots(job)[0];
}

/*
 * init: called once by aq_pool_create(), on the creating thread, with
 * cfg.sched_params (unused here). Return 0, or a negative errno that
 * aq_pool_create() then returns; on failure free whatever was allocated,
 * since destroy is not called.
 */
static int sjf_init(void **state, const void *params)
{
	struct sjf *q = calloc(1, sizeof(*q));

	(void)params;
	if (!q)
		return -ENOMEM;
	*state = q;
	return 0;
}

/*
 * push: a job became runnable, either new or back after returning
 * AQ_YIELD. Insert it after every job that is no more costly, so equal
 * costs keep their arrival order. A negative errno would fail the job
 * with that code; this policy always accepts. O(n): fine for an example,
 * a heap would do for long queues.
 */
static int sjf_push(void *state, aq_sched_job *job)
{
	struct sjf *q = state;
	aq_sched_job **link = &q->head;

	while (*link && aq_sched_job_hint(*link) <= aq_sched_job_hint(job))
		link = next_of(*link);
	*next_of(job) = *link;
	*link = job;
	return 0;
}

/*
 * pop: the job a free worker runs next, or NULL when none may run now.
 * From this moment until done() the job belongs to the worker; the policy
 * must not touch it through its list any more.
 */
static aq_sched_job *sjf_pop(void *state)
{
	struct sjf *q = state;
	aq_sched_job *job = q->head;

	if (job)
		q->head = *next_of(job);
	return job;
}

/*
 * done (optional): a popped job stopped running, whether it finished,
 * yielded (push follows) or had been cancelled before it started. Called
 * exactly once per pop; a policy that caps concurrency counts here.
 */
static void sjf_done(void *state, aq_sched_job *job)
{
	struct sjf *q = state;

	(void)job;
	q->done++;
}

/* destroy: called once by aq_pool_destroy() (or a failed create), after
 * every job is resolved: the list is empty. */
static void sjf_destroy(void *state)
{
	free(state);
}

static const struct aq_sched_ops sjf_ops = {
	.name = "shortest-job-first",
	.init = sjf_init,
	.push = sjf_push,
	.pop = sjf_pop,
	.done = sjf_done,
	.destroy = sjf_destroy,
};

/* ---- a demonstration ---------------------------------------------------- */

#define NJOBS 6

static atomic_int gate_open;       /* the gate job waits for this */
static int ran[NJOBS];             /* job indices in the order they ran */
static int nran;                   /* one worker: no race */

/* Holds the pool's only worker until main() opens the gate. */
static int gate_job(void *arg, void **result)
{
	struct timespec ms = { 0, 1000000 };

	(void)arg;
	(void)result;
	while (!atomic_load(&gate_open))
		nanosleep(&ms, NULL);
	return 0;
}

/* Records that it ran. */
static int work_job(void *arg, void **result)
{
	(void)result;
	ran[nran++] = (int)(intptr_t)arg;
	return 0;
}

int main(void)
{
	/* Job i costs costs[i]; the cheapest must run first. The two jobs
	 * of cost 30 keep their submission order (2 before 4). */
	static const uint64_t costs[NJOBS] = { 50, 10, 30, 90, 30, 5 };
	static const int want[NJOBS] = { 5, 1, 2, 4, 0, 3 };
	struct aq_pool_config cfg = { 0 };
	struct timespec ms = { 0, 1000000 };
	aq_future *gate, *futs[NJOBS];
	aq_pool *pool;
	int rc, ok = 1;

	cfg.workers = 1;
	cfg.sched = &sjf_ops;
	rc = aq_pool_create(&pool, &cfg);
	if (rc) {
		fprintf(stderr, "aq_pool_create: %s\n", aq_strerror(rc));
		return 1;
	}

	/* Occupy the worker, so that every job below is queued first. */
	rc = aq_submit(pool, gate_job, NULL, NULL, &gate);
	if (rc) {
		fprintf(stderr, "aq_submit: %s\n", aq_strerror(rc));
		return 1;
	}
	while (aq_future_state(gate) != AQ_STATE_RUNNING)
		nanosleep(&ms, NULL);

	for (int i = 0; i < NJOBS; i++) {
		struct aq_job_opts opts = { 0 };

		opts.hint = costs[i]; /* what the policy sorts by */
		rc = aq_submit(pool, work_job, (void *)(intptr_t)i, &opts,
			       &futs[i]);
		if (rc) {
			fprintf(stderr, "aq_submit: %s\n", aq_strerror(rc));
			return 1;
		}
	}
	atomic_store(&gate_open, 1);

	for (int i = 0; i < NJOBS; i++) {
		if (aq_future_get(futs[i], NULL, -1) != 0)
			ok = 0;
		aq_future_release(futs[i]);
	}
	aq_future_get(gate, NULL, -1);
	aq_future_release(gate);
	aq_pool_destroy(pool);

	printf("ran by cost:");
	for (int i = 0; i < nran; i++) {
		printf(" job %d (cost %llu)", ran[i],
		       (unsigned long long)costs[ran[i]]);
		if (i >= NJOBS || ran[i] != want[i])
			ok = 0;
	}
	printf("\n%s\n", ok && nran == NJOBS ? "order correct"
					     : "ORDER WRONG");
	return ok && nran == NJOBS ? 0 : 1;
}
