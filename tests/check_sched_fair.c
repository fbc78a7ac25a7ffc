/* SPDX-License-Identifier: MIT */
/*
 * check_sched_fair.c - the weighted fair scheduler (aq_sched_fair()): FIFO
 * inside a group, deficit round-robin shares across groups, the flood
 * bound, the per-group cap, conservation under drain and cancel, parameter
 * checks, and allocation failures of group records and of the hash table.
 *
 * Orders are exact: gate jobs hold every worker until all the jobs under
 * test are queued, so the first pop after the gate opens sees them. Only
 * the multi-worker tests have any slack, and it is bounded by the number of
 * workers, never by time; waits are polls with generous bounds.
 */
#include <errno.h>
#include <limits.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <check.h>

#include "fault.h"
#include "helpers.h"
#include "suites.h"

/* ---- pools, gates and the record of what ran ----------------------------- */

static aq_pool *fair_pool(unsigned workers, unsigned capacity,
			  const struct aq_sched_fair_params *params)
{
	struct aq_pool_config cfg = { .workers = workers,
				      .queue_capacity = capacity,
				      .sched = aq_sched_fair(),
				      .sched_params = params };
	aq_pool *pool = NULL;
	int ret = aq_pool_create(&pool, &cfg);

	ck_assert_msg(ret == 0, "aq_pool_create(fair, %u workers): %d",
		      workers, ret);
	ck_assert_ptr_nonnull(pool);
	return pool;
}

/* Gate jobs holding all the workers of a pool (in group 0). */
#define HOLD_MAX 8

struct hold {
	struct th_gate gate;
	aq_future *futs[HOLD_MAX];
	unsigned n;
};

/* Occupy n workers and wait until the gate jobs run: every job submitted
 * from now on waits in the ring until release_workers(). Each gate job is
 * seen running before the next is submitted, so each finds an idle
 * worker of its own. */
static void hold_workers(aq_pool *pool, struct hold *h, unsigned n)
{
	ck_assert_uint_le(n, HOLD_MAX);
	th_gate_init(&h->gate);
	h->n = n;
	for (unsigned i = 0; i < n; i++) {
		ck_assert_int_eq(aq_submit(pool, th_gate_job, &h->gate, NULL,
					   &h->futs[i]),
				 0);
		ck_assert_msg(th_poll_state(h->futs[i], AQ_STATE_RUNNING),
			      "gate job %u never started", i);
	}
}

static void release_workers(struct hold *h)
{
	th_gate_open(&h->gate);
	for (unsigned i = 0; i < h->n; i++) {
		ck_assert_int_eq(aq_future_get(h->futs[i], NULL, -1), 0);
		aq_future_release(h->futs[i]);
	}
	th_gate_destroy(&h->gate);
}

/*
 * The order jobs ran in: each job appends its id as it finishes. Written by
 * the workers at distinct positions, read once the pool is destroyed (the
 * join orders the reads after the writes).
 */
#define ORDER_MAX 8192

static atomic_int order_n;
static int order_ids[ORDER_MAX];

static void order_reset(void)
{
	atomic_store(&order_n, 0);
	memset(order_ids, 0xff, sizeof(order_ids));
}

static int order_len(void)
{
	return atomic_load(&order_n);
}

/* A job that records itself, optionally yielding first. */
struct fjob {
	int id;
	int yields;           /* times it returns AQ_YIELD first */
	int calls;            /* only the job itself writes it */
	atomic_int destroyed; /* fjob_destroy() calls */
};

static void fjob_init(struct fjob *j, int id, int yields)
{
	j->id = id;
	j->yields = yields;
	j->calls = 0;
	atomic_init(&j->destroyed, 0);
}

static int fjob_fn(void *arg, void **result)
{
	struct fjob *j = arg;
	int pos;

	j->calls++;
	pos = atomic_fetch_add(&order_n, 1);
	if (pos < ORDER_MAX)
		order_ids[pos] = j->id;
	if (j->calls <= j->yields)
		return AQ_YIELD;
	*result = (void *)(intptr_t)(j->id + 1);
	return 0;
}

static void fjob_destroy(void *arg)
{
	atomic_fetch_add(&((struct fjob *)arg)->destroyed, 1);
}

static void submit_fjob(aq_pool *pool, struct fjob *j, uint64_t group,
			unsigned weight, aq_future **fut)
{
	struct aq_job_opts opts = { .group = group,
				    .weight = weight,
				    .arg_destroy = fjob_destroy };
	int rc = aq_submit(pool, fjob_fn, j, &opts, fut);

	ck_assert_msg(rc == 0, "aq_submit(job %d, group %llu): %d", j->id,
		      (unsigned long long)group, rc);
}

/* Compare the recorded order with want[0 .. n). */
static void order_expect(const int *want, int n, const char *what)
{
	int ran = order_len();

	ck_assert_msg(ran == n, "%s: %d jobs ran, expected %d", what, ran, n);
	for (int i = 0; i < n; i++)
		ck_assert_msg(order_ids[i] == want[i],
			      "%s: position %d ran job %d, expected %d", what,
			      i, order_ids[i], want[i]);
}

/* ---- FIFO inside a group ------------------------------------------------- */

/*
 * One group: exactly arrival order, across several ring batches. Loop 1
 * interleaves a second group of weight 3: each group's own jobs still run
 * in arrival order, and the whole order is DRR's (1 of group 1, 3 of group
 * 2, ...).
 */
START_TEST(test_fifo_in_group)
{
	enum { N = 300 };
	static struct fjob jobs[N];
	static int want[N];
	struct hold h;
	aq_pool *pool = fair_pool(1, 0, NULL);

	order_reset();
	hold_workers(pool, &h, 1);
	for (int i = 0; i < N; i++) {
		uint64_t group = _i && i % 2 ? 2 : 1;

		fjob_init(&jobs[i], i, 0);
		submit_fjob(pool, &jobs[i], group, group == 2 ? 3 : 1, NULL);
	}
	release_workers(&h);
	aq_pool_destroy(pool);

	if (_i == 0) {
		for (int i = 0; i < N; i++)
			want[i] = i;
	} else {
		/* Group 1 holds the even ids, group 2 the odd ones; group 1
		 * came first. Rounds of 1 + 3 until group 2 runs dry. */
		int next1 = 0, next2 = 1, k = 0;

		while (k < N) {
			if (next1 < N) {
				want[k++] = next1;
				next1 += 2;
			}
			for (int t = 0; t < 3 && next2 < N; t++) {
				want[k++] = next2;
				next2 += 2;
			}
		}
	}
	order_expect(want, N, _i ? "two groups, weights 1:3" : "one group");
	for (int i = 0; i < N; i++) {
		ck_assert_int_eq(jobs[i].calls, 1);
		ck_assert_int_eq(th_ld(&jobs[i].destroyed), 1);
	}
}
END_TEST

/*
 * A yielding job goes to the back of its own group's queue, and its group
 * keeps its place in the round: A0 yields once.
 *   submitted: A0 B0 A1 B1 (weights 1)
 *   ran:       A0 B0 A1 B1 A0
 */
START_TEST(test_yield_requeues_in_group)
{
	static const int want[] = { 0, 10, 1, 11, 0 };
	struct fjob a0, a1, b0, b1;
	aq_future *fut;
	void *result = NULL;
	struct hold h;
	aq_pool *pool = fair_pool(1, 0, NULL);

	order_reset();
	hold_workers(pool, &h, 1);
	fjob_init(&a0, 0, 1);
	fjob_init(&b0, 10, 0);
	fjob_init(&a1, 1, 0);
	fjob_init(&b1, 11, 0);
	submit_fjob(pool, &a0, 1, 1, &fut);
	submit_fjob(pool, &b0, 2, 1, NULL);
	submit_fjob(pool, &a1, 1, 1, NULL);
	submit_fjob(pool, &b1, 2, 1, NULL);
	release_workers(&h);
	aq_pool_destroy(pool);
	order_expect(want, 5, "yield in a group");
	ck_assert_int_eq(aq_future_get(fut, &result, 0), 0);
	ck_assert_ptr_eq(result, (void *)(intptr_t)1);
	ck_assert_int_eq(a0.calls, 2);
	ck_assert_int_eq(th_ld(&a0.destroyed), 1);
	aq_future_release(fut);
}
END_TEST

/*
 * The weight of the latest job pushed is the group's weight. All of these
 * reach the policy before the first pop; B's last job has weight 3, so B's
 * turns are 3 long from the start.
 *   submitted: A0 B0 A1 B1 A2 B2 A3 B3 B4 B5 B6 B7(w3), A all weight 1
 */
START_TEST(test_latest_weight_wins)
{
	static const int want[] = { 0, 10, 11, 12, 1, 13, 14, 15,
				    2, 16, 17, 3 };
	struct fjob a[4], b[8];
	struct hold h;
	aq_pool *pool = fair_pool(1, 0, NULL);

	order_reset();
	hold_workers(pool, &h, 1);
	for (int i = 0; i < 8; i++) {
		if (i < 4) {
			fjob_init(&a[i], i, 0);
			submit_fjob(pool, &a[i], 1, 1, NULL);
		}
		fjob_init(&b[i], 10 + i, 0);
		submit_fjob(pool, &b[i], 2, i == 7 ? 3 : 1, NULL);
	}
	release_workers(&h);
	aq_pool_destroy(pool);
	order_expect(want, 12, "latest weight wins");
}
END_TEST

/* ---- shares: weights 1:2:4 ----------------------------------------------- */

/*
 * Three groups of weights 1, 2 and 4, each backlogged with 700 jobs,
 * submitted interleaved, group 1 first. Group ids are the job ids / 1000.
 *
 * One worker (loop 0): the run order is DRR's exactly, the round being
 * "1 2 2 4 4 4 4" from the first job on, so the first 7 * 60 completions
 * are 60, 120 and 240.
 *
 * Four workers (loop 1): the pops are the same, but up to three popped jobs
 * may finish after later ones, so each count is within 3 of the exact
 * figure (under 5 % of 60).
 */
START_TEST(test_shares_1_2_4)
{
	enum { PER = 700, ROUNDS = 60, WINDOW = 7 * ROUNDS };
	static const unsigned weights[3] = { 1, 2, 4 };
	static const int round_groups[7] = { 0, 1, 1, 2, 2, 2, 2 };
	static struct fjob jobs[3 * PER];
	unsigned workers = _i ? 4 : 1;
	int count[3] = { 0, 0, 0 };
	struct hold h;
	aq_pool *pool = fair_pool(workers, 4096, NULL);

	order_reset();
	hold_workers(pool, &h, workers);
	for (int i = 0; i < PER; i++)
		for (int g = 0; g < 3; g++) {
			struct fjob *j = &jobs[g * PER + i];

			fjob_init(j, g * 1000 + i, 0);
			submit_fjob(pool, j, (uint64_t)(100 + g), weights[g],
				    NULL);
		}
	release_workers(&h);
	aq_pool_destroy(pool);

	ck_assert_int_eq(order_len(), 3 * PER);
	for (int k = 0; k < WINDOW; k++)
		count[order_ids[k] / 1000]++;
	if (workers == 1) {
		int next[3] = { 0, 0, 0 };

		/* The pattern, job by job, and FIFO inside each group. */
		for (int k = 0; k < WINDOW; k++) {
			int g = round_groups[k % 7];
			int want = g * 1000 + next[g]++;

			ck_assert_msg(order_ids[k] == want,
				      "position %d ran job %d, expected %d "
				      "(round %d)",
				      k, order_ids[k], want, k / 7);
		}
		ck_assert_int_eq(count[0], ROUNDS);
		ck_assert_int_eq(count[1], 2 * ROUNDS);
		ck_assert_int_eq(count[2], 4 * ROUNDS);
	} else {
		for (int g = 0; g < 3; g++) {
			int exact = (int)weights[g] * ROUNDS;

			ck_assert_msg(abs(count[g] - exact) <= 3,
				      "weight %u: %d of the first %d "
				      "completions, expected %d +- 3",
				      weights[g], count[g], WINDOW, exact);
		}
	}
}
END_TEST

/* ---- the flood bound ----------------------------------------------------- */

/*
 * Tenant F (weight w) floods; tenant T submits one job after the flood.
 * Once T's job reaches the policy, at most w jobs of F start before it:
 * F finishes its current turn (at most w starts) and T is next in the
 * round. The seam moves all the ring holds into the policy when the gate
 * opens, T's job with the flood, so T's job is exactly the (w + 1)th to
 * run. Loop index: w in {1, 4, 16}, a flood of 40 or of 1000 jobs.
 */
START_TEST(test_flood_bound)
{
	static const unsigned ws[] = { 1, 4, 16 };
	static struct fjob flood[1000];
	unsigned w = ws[_i % 3];
	int nflood = _i < 3 ? 40 : 1000;
	int pos_t = -1;
	struct fjob t;
	aq_future *fut_t;
	struct hold h;
	aq_pool *pool = fair_pool(1, 4096, NULL);

	order_reset();
	hold_workers(pool, &h, 1);
	for (int i = 0; i < nflood; i++) {
		fjob_init(&flood[i], i, 0);
		submit_fjob(pool, &flood[i], 7, w, NULL);
	}
	fjob_init(&t, 5000, 0);
	submit_fjob(pool, &t, 8, 1, &fut_t);
	release_workers(&h);
	ck_assert_int_eq(aq_future_get(fut_t, NULL, -1), 0);
	aq_pool_destroy(pool);
	aq_future_release(fut_t);

	ck_assert_int_eq(order_len(), nflood + 1);
	for (int k = 0; k < nflood + 1; k++)
		if (order_ids[k] == 5000)
			pos_t = k;
	ck_assert_msg(pos_t == (int)w,
		      "weight %u flood of %d: T ran at %d, expected %u", w,
		      nflood, pos_t, w);
	/* The flood itself stayed FIFO around T. */
	for (int k = 0, next = 0; k < nflood + 1; k++)
		if (k != pos_t)
			ck_assert_int_eq(order_ids[k], next++);
}
END_TEST

/* ---- the per-group cap --------------------------------------------------- */

/* A group's live count of running jobs, and the most it reached. */
struct gcount {
	atomic_int running;
	atomic_int max;
	atomic_int entered;
};

struct capjob {
	struct gcount *count;
	struct th_gate *gate; /* passed while counted as running */
};

static void gcount_init(struct gcount *c)
{
	atomic_init(&c->running, 0);
	atomic_init(&c->max, 0);
	atomic_init(&c->entered, 0);
}

static int capjob_fn(void *arg, void **result)
{
	struct capjob *j = arg;
	int now = atomic_fetch_add(&j->count->running, 1) + 1;
	int max = atomic_load(&j->count->max);

	(void)result;
	while (now > max &&
	       !atomic_compare_exchange_weak(&j->count->max, &max, now))
		;
	atomic_fetch_add(&j->count->entered, 1);
	th_gate_pass(j->gate);
	th_sleep_ms(1); /* let the others overlap, if the cap allowed it */
	atomic_fetch_sub(&j->count->running, 1);
	return 0;
}

/*
 * Four workers, max_running = cap (loop: 1, 2, 3). Group A submits 20 jobs
 * that block on a gate, then group B submits 4 - cap. A occupies exactly
 * cap workers and B, though queued behind 20 - cap jobs of A, gets the
 * others (up to its own cap) while A's jobs wait. Then the gate opens: A's
 * running count never exceeds cap while it drains, and reaches it.
 */
START_TEST(test_cap)
{
	enum { NA = 20, WORKERS = 4 };
	unsigned cap = (unsigned)_i + 1;
	int nb = WORKERS - (int)cap;
	int b_runs = nb < (int)cap ? nb : (int)cap;
	struct aq_sched_fair_params params = { .max_running = cap };
	struct capjob ja[NA], jb[WORKERS];
	aq_future *fa[NA], *fb[WORKERS];
	struct gcount ca, cb;
	struct th_gate gate;
	aq_pool *pool = fair_pool(WORKERS, 0, &params);

	gcount_init(&ca);
	gcount_init(&cb);
	th_gate_init(&gate);
	for (int i = 0; i < NA; i++) {
		struct aq_job_opts opts = { .group = 1, .weight = 4 };

		ja[i] = (struct capjob){ &ca, &gate };
		ck_assert_int_eq(aq_submit(pool, capjob_fn, &ja[i], &opts,
					   &fa[i]),
				 0);
	}
	ck_assert(th_poll_int_ge(&ca.entered, (int)cap));
	for (int i = 0; i < nb; i++) {
		struct aq_job_opts opts = { .group = 2 };

		jb[i] = (struct capjob){ &cb, &gate };
		ck_assert_int_eq(aq_submit(pool, capjob_fn, &jb[i], &opts,
					   &fb[i]),
				 0);
	}
	ck_assert_msg(th_poll_int_ge(&cb.entered, b_runs),
		      "cap %u: group B got %d workers, expected %d", cap,
		      th_ld(&cb.entered), b_runs);
	/* Every worker A could take is busy or it is at its cap. */
	ck_assert_int_eq(th_ld(&ca.entered), (int)cap);
	ck_assert_int_eq(th_ld(&ca.max), (int)cap);
	th_gate_open(&gate);
	for (int i = 0; i < NA; i++) {
		ck_assert_int_eq(aq_future_get(fa[i], NULL, -1), 0);
		aq_future_release(fa[i]);
	}
	for (int i = 0; i < nb; i++) {
		ck_assert_int_eq(aq_future_get(fb[i], NULL, -1), 0);
		aq_future_release(fb[i]);
	}
	aq_pool_destroy(pool);
	ck_assert_msg(th_ld(&ca.max) == (int)cap,
		      "cap %u: group A had %d jobs running at once", cap,
		      th_ld(&ca.max));
	ck_assert_int_le(th_ld(&cb.max), (int)cap);
	ck_assert_int_eq(th_ld(&ca.entered), NA);
	ck_assert_int_eq(th_ld(&cb.entered), nb);
	th_gate_destroy(&gate);
}
END_TEST

/*
 * Regression: jobs that a worker moved from the ring into the policy must
 * not sit there while other workers sleep. Four jobs that block on a gate,
 * submitted at once to four idle workers, must all start: the first worker
 * to wake moves all four into the policy, so the ring looks empty to
 * anyone deciding whether to wake another worker.
 */
START_TEST(test_idle_workers_woken_for_policy_backlog)
{
	enum { WORKERS = 4 };
	struct capjob jobs[WORKERS];
	aq_future *futs[WORKERS];
	struct gcount count;
	struct th_gate gate;
	aq_pool *pool = fair_pool(WORKERS, 0, NULL);

	gcount_init(&count);
	th_gate_init(&gate);
	for (int i = 0; i < WORKERS; i++) {
		struct aq_job_opts opts = { .group = (uint64_t)i };

		jobs[i] = (struct capjob){ &count, &gate };
		ck_assert_int_eq(aq_submit(pool, capjob_fn, &jobs[i], &opts,
					   &futs[i]),
				 0);
	}
	ck_assert_msg(th_poll_int_ge(&count.entered, WORKERS),
		      "%d of %d jobs started on %d idle workers",
		      th_ld(&count.entered), WORKERS, WORKERS);
	th_gate_open(&gate);
	for (int i = 0; i < WORKERS; i++) {
		ck_assert_int_eq(aq_future_get(futs[i], NULL, -1), 0);
		aq_future_release(futs[i]);
	}
	aq_pool_destroy(pool);
	th_gate_destroy(&gate);
}
END_TEST

/*
 * When every group with queued jobs is capped, the idle workers park, and
 * done() wakes one: with cap 1 and one group, four workers run its jobs one
 * at a time, in arrival order.
 */
START_TEST(test_cap_serialises_group)
{
	enum { N = 50 };
	static const struct aq_sched_fair_params params = { .max_running = 1 };
	static struct fjob jobs[N];
	static int want[N];
	aq_future *last = NULL;
	aq_pool *pool = fair_pool(4, 0, &params);

	order_reset();
	for (int i = 0; i < N; i++) {
		fjob_init(&jobs[i], i, 0);
		submit_fjob(pool, &jobs[i], 3, 1, i == N - 1 ? &last : NULL);
		want[i] = i;
	}
	ck_assert_int_eq(aq_future_get(last, NULL, th_long_ns()), 0);
	aq_future_release(last);
	aq_pool_destroy(pool);
	order_expect(want, N, "cap 1 serialises a group");
}
END_TEST

/* ---- conservation -------------------------------------------------------- */

#define CONS_PRODUCERS 4
#define CONS_PER 5000
#define CONS_TOTAL (CONS_PRODUCERS * CONS_PER)
#define CONS_GROUPS 50

struct cons_producer {
	pthread_t tid;
	aq_pool *pool;
	int first;           /* index of its first job */
	aq_future *futs[CONS_PER];
	int accepted;        /* futs[0 .. accepted) are futures */
	int errors;          /* refusals other than -ESHUTDOWN */
	int last_error;
};

static struct th_cjob cjobs[CONS_TOTAL];
static struct cons_producer producers[CONS_PRODUCERS];
static atomic_int cons_submitted;

static void *cons_producer_main(void *arg)
{
	struct cons_producer *p = arg;
	uint32_t rng = 2463534242u ^ (uint32_t)(p->first * 2654435761u);

	for (int i = 0; i < CONS_PER; i++) {
		struct th_cjob *j = &cjobs[p->first + i];
		unsigned group = th_xorshift32(&rng) % CONS_GROUPS;
		/* Random weights; every fifth group changes its weight with
		 * each job, over the whole range. */
		unsigned weight =
			group % 5 == 0 ? 1 + th_xorshift32(&rng) % AQ_WEIGHT_MAX
				       : 1 + group % 7;
		struct aq_job_opts opts = { .flags = AQ_JOB_BLOCK,
					    .timeout_ns = th_long_ns(),
					    .arg_destroy = th_cjob_destroy,
					    .group = group,
					    .weight = weight };
		int rc = aq_submit(p->pool, th_cjob_fn, j, &opts, &p->futs[i]);

		if (rc == -ESHUTDOWN)
			break;
		if (rc) {
			p->errors++;
			p->last_error = rc;
			break;
		}
		p->accepted++;
		atomic_fetch_add(&cons_submitted, 1);
	}
	return NULL;
}

/*
 * Four producers, 5000 jobs each, over 50 groups with random weights, into
 * four workers through a small ring; every tenth job yields once. Loop:
 * bit 0 = cancelling shutdown half way, bit 1 = max_running 2.
 * Drain: every future resolves SUCCEEDED once with its own result, each
 * job completed once in exactly its calls. Cancel: succeeded + cancelled
 * == accepted, a cancelled job never completed. Always: arg_destroy once
 * per accepted job, never for a refused one.
 */
START_TEST(test_conservation)
{
	bool cancel = _i & 1;
	struct aq_sched_fair_params params = { .max_running = _i & 2 ? 2 : 0 };
	long succeeded = 0, cancelled = 0, accepted = 0, checksum = 0;
	long want_checksum = 0;
	aq_pool *pool = fair_pool(4, 256, &params);

	for (int i = 0; i < CONS_TOTAL; i++) {
		cjobs[i].index = i;
		cjobs[i].yields_left = i % 10 == 0 ? 1 : 0;
		atomic_init(&cjobs[i].calls, 0);
		atomic_init(&cjobs[i].completions, 0);
		atomic_init(&cjobs[i].destroyed, 0);
	}
	atomic_init(&cons_submitted, 0);
	for (int t = 0; t < CONS_PRODUCERS; t++) {
		struct cons_producer *p = &producers[t];

		memset(p, 0, sizeof(*p));
		p->pool = pool;
		p->first = t * CONS_PER;
		ck_assert_int_eq(pthread_create(&p->tid, NULL,
						cons_producer_main, p),
				 0);
	}
	if (cancel) {
		ck_assert(th_poll_int_ge(&cons_submitted, CONS_TOTAL / 2));
		ck_assert_int_eq(aq_pool_shutdown(pool, AQ_SHUTDOWN_CANCEL), 0);
	}
	for (int t = 0; t < CONS_PRODUCERS; t++)
		pthread_join(producers[t].tid, NULL);
	aq_pool_destroy(pool);

	for (int t = 0; t < CONS_PRODUCERS; t++) {
		struct cons_producer *p = &producers[t];

		ck_assert_msg(p->errors == 0, "producer %d: submit %d", t,
			      p->last_error);
		if (!cancel)
			ck_assert_int_eq(p->accepted, CONS_PER);
		for (int i = 0; i < CONS_PER; i++) {
			struct th_cjob *j = &cjobs[p->first + i];
			int want_calls = j->index % 10 == 0 ? 2 : 1;
			void *result = NULL;
			int rc;

			if (i >= p->accepted) {
				ck_assert_msg(th_ld(&j->calls) == 0 &&
						      th_ld(&j->destroyed) == 0,
					      "refused job %d ran or was "
					      "destroyed",
					      j->index);
				continue;
			}
			accepted++;
			ck_assert_msg(th_ld(&j->destroyed) == 1,
				      "job %d: arg_destroy ran %d times",
				      j->index, th_ld(&j->destroyed));
			rc = aq_future_get(p->futs[i], &result, 0);
			if (rc == 0) {
				ck_assert_int_eq(aq_future_state(p->futs[i]),
						 AQ_STATE_SUCCEEDED);
				ck_assert_msg(th_ld(&j->completions) == 1 &&
						      th_ld(&j->calls) ==
							      want_calls,
					      "job %d completed %d times in "
					      "%d calls",
					      j->index, th_ld(&j->completions),
					      th_ld(&j->calls));
				checksum += (long)(intptr_t)result;
				want_checksum += j->index + 1;
				succeeded++;
			} else {
				ck_assert_msg(cancel && rc == -ECANCELED,
					      "job %d: aq_future_get %d",
					      j->index, rc);
				ck_assert_int_eq(aq_future_state(p->futs[i]),
						 AQ_STATE_CANCELLED);
				ck_assert_msg(th_ld(&j->completions) == 0 &&
						      th_ld(&j->calls) <
							      want_calls,
					      "cancelled job %d completed %d "
					      "times in %d calls",
					      j->index, th_ld(&j->completions),
					      th_ld(&j->calls));
				cancelled++;
			}
			aq_future_release(p->futs[i]);
		}
	}
	ck_assert_int_eq(succeeded + cancelled, accepted);
	ck_assert_int_eq(checksum, want_checksum);
	if (!cancel)
		ck_assert_int_eq(succeeded, CONS_TOTAL);
	else
		ck_assert_int_ge(accepted, CONS_TOTAL / 2);
}
END_TEST

/* ---- groups: many at once, one after another ----------------------------- */

/*
 * 5000 groups with one job each, all queued at once: the hash table grows
 * from 16 buckets through nine doublings (and shrinks back as they drain),
 * and DRR over groups of one job is arrival order.
 */
START_TEST(test_many_groups)
{
	enum { N = 5000 };
	static struct fjob jobs[N];
	static int want[N];
	struct hold h;
	aq_pool *pool = fair_pool(1, 8192, NULL);

	order_reset();
	hold_workers(pool, &h, 1);
	for (int i = 0; i < N; i++) {
		fjob_init(&jobs[i], i, 0);
		/* Keys far apart and close together alike. */
		submit_fjob(pool, &jobs[i],
			    i % 2 ? (uint64_t)i << 40 : (uint64_t)i + 1, 1,
			    NULL);
		want[i] = i;
	}
	release_workers(&h);
	aq_pool_destroy(pool);
	order_expect(want, N, "5000 groups of one job");
}
END_TEST

/*
 * A tenant that comes and goes costs no allocation in the steady state:
 * its group record is recycled. 1000 tenants, one job each, one after the
 * other, after a warm-up: no call of the allocator at all (the job records
 * come from the pool's cache too).
 */
START_TEST(test_groups_recycled)
{
	enum { WARM = 8, N = 1000 };
	struct fjob warm[WARM], j;
	aq_future *futs[WARM], *fut;
	aq_pool *pool = fair_pool(1, 0, NULL);

	/* Warm up: eight records and eight group records in use at once,
	 * so that the caches hold more than the two the loop below ever
	 * has out at a time (its job, and the last one's record on its
	 * way back from the worker). */
	order_reset();
	for (int i = 0; i < WARM; i++) {
		fjob_init(&warm[i], i, 0);
		submit_fjob(pool, &warm[i], (uint64_t)i, 1, &futs[i]);
	}
	for (int i = 0; i < WARM; i++) {
		ck_assert_int_eq(aq_future_get(futs[i], NULL, -1), 0);
		aq_future_release(futs[i]);
	}
	aq__fault_arm(AQ__FAULT_ALLOC, 0); /* count from 0 */
	for (int i = 0; i < N; i++) {
		fjob_init(&j, WARM + i, 0);
		submit_fjob(pool, &j, (uint64_t)(i + 1) * 7919, 1, &fut);
		ck_assert_int_eq(aq_future_get(fut, NULL, -1), 0);
		aq_future_release(fut);
	}
	ck_assert_msg(aq__fault_calls(AQ__FAULT_ALLOC) == 0,
		      "%ld allocations for %d passing tenants",
		      aq__fault_calls(AQ__FAULT_ALLOC), N);
	aq_pool_destroy(pool);
	ck_assert_int_eq(order_len(), WARM + N);
}
END_TEST

/* ---- parameters ---------------------------------------------------------- */

/* max_running above 1000000 (a negative number converted, say) is refused
 * with -EINVAL and *pool is left alone; the bounds and NULL are accepted. */
START_TEST(test_params)
{
	static const unsigned bad[] = { 1000001u, 1u << 31, UINT_MAX };
	static const unsigned good[] = { 0, 1, 4, 1000000u };
	static int sentinel_obj;
	aq_pool *const sentinel = (aq_pool *)(void *)&sentinel_obj;

	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		struct aq_sched_fair_params p = { .max_running = bad[i] };
		struct aq_pool_config cfg = { .workers = 1,
					      .sched = aq_sched_fair(),
					      .sched_params = &p };
		aq_pool *pool = sentinel;
		int rc = aq_pool_create(&pool, &cfg);

		ck_assert_msg(rc == -EINVAL, "max_running %u: %d", bad[i], rc);
		ck_assert_ptr_eq(pool, sentinel);
	}
	for (size_t i = 0; i <= sizeof(good) / sizeof(good[0]); i++) {
		struct aq_sched_fair_params p = { 0 };
		struct fjob j;
		aq_future *fut;
		aq_pool *pool;

		if (i < sizeof(good) / sizeof(good[0]))
			p.max_running = good[i];
		pool = fair_pool(2, 0,
				 i < sizeof(good) / sizeof(good[0]) ? &p
								    : NULL);
		ck_assert_str_eq(aq_sched_fair()->name, "fair");
		order_reset();
		fjob_init(&j, 1, 0);
		submit_fjob(pool, &j, 1, AQ_WEIGHT_MAX, &fut);
		ck_assert_int_eq(aq_future_get(fut, NULL, -1), 0);
		aq_future_release(fut);
		aq_pool_destroy(pool);
	}
}
END_TEST

/* Every allocation of a create with the fair policy may fail: -ENOMEM,
 * *pool untouched, nothing leaked (the ASan run checks). */
START_TEST(test_create_alloc_faults)
{
	struct aq_pool_config cfg = { .workers = 2, .sched = aq_sched_fair() };

	/* pool, ring, record cache, threads, the policy and its buckets */
	ck_assert_int_ge(th_create_alloc_faults(&cfg), 6);
}
END_TEST

/* ---- allocation failures in push ----------------------------------------- */

/*
 * The group record of X cannot be allocated: X's first job resolves FAILED
 * with ENOMEM and never runs; X's second job, pushed next, allocates the
 * record afresh and runs; A and B are untouched.
 *   submitted: A0 X0 X1 B0, one worker held by a gate (group 0)
 * When the gate job is done, group 0's record goes to the free list and A
 * reuses it, so X's record is the first allocation after arming.
 */
START_TEST(test_group_alloc_fails)
{
	static const int want[] = { 0, 11, 20 };
	struct fjob a0, x0, x1, b0;
	aq_future *fa0, *fx0, *fx1, *fb0;
	struct aq_error err;
	struct hold h;
	aq_pool *pool = fair_pool(1, 0, NULL);

	order_reset();
	hold_workers(pool, &h, 1);
	fjob_init(&a0, 0, 0);
	fjob_init(&x0, 10, 0);
	fjob_init(&x1, 11, 0);
	fjob_init(&b0, 20, 0);
	submit_fjob(pool, &a0, 1, 1, &fa0);
	submit_fjob(pool, &x0, 2, 1, &fx0);
	submit_fjob(pool, &x1, 2, 1, &fx1);
	submit_fjob(pool, &b0, 3, 1, &fb0);
	aq__fault_arm(AQ__FAULT_ALLOC, 1);
	release_workers(&h);
	ck_assert_int_eq(aq_future_get(fb0, NULL, th_long_ns()), 0);
	aq__fault_arm(AQ__FAULT_ALLOC, 0);

	ck_assert_int_eq(aq_future_get(fx0, NULL, 0), ENOMEM);
	ck_assert_int_eq(aq_future_state(fx0), AQ_STATE_FAILED);
	ck_assert_int_eq(aq_future_error(fx0, &err), 0);
	ck_assert_int_eq(err.code, ENOMEM);
	ck_assert_int_eq(x0.calls, 0);
	ck_assert_int_eq(th_ld(&x0.destroyed), 1);
	ck_assert_int_eq(aq_future_get(fa0, NULL, 0), 0);
	ck_assert_int_eq(aq_future_get(fx1, NULL, 0), 0);
	aq_future_release(fa0);
	aq_future_release(fx0);
	aq_future_release(fx1);
	aq_future_release(fb0);
	aq_pool_destroy(pool);
	/* X1 ran in X's place in the round: after A, before B. */
	order_expect(want, 3, "group allocation failure");
}
END_TEST

/*
 * Fail each allocation in turn (nth = 1 .. until none is left) while 40
 * jobs in 30 groups reach the policy at once, which also grows the hash
 * table past 16 buckets. Whatever fails, at most one job is lost to it,
 * as FAILED with ENOMEM, and it never ran; a failed table growth loses
 * nothing at all; every other job runs exactly once, in DRR order of the
 * jobs that remain (groups of weight 1: arrival order of the groups'
 * first jobs, then FIFO).
 */
START_TEST(test_push_alloc_sweep)
{
	enum { N = 40, GROUPS = 30 };
	bool saw_table_fault = false;
	long nth;

	for (nth = 1;; nth++) {
		struct fjob jobs[N];
		aq_future *futs[N];
		int failed = -1;
		struct hold h;
		aq_pool *pool = fair_pool(1, 0, NULL);
		long calls;

		order_reset();
		hold_workers(pool, &h, 1);
		for (int i = 0; i < N; i++) {
			fjob_init(&jobs[i], i, 0);
			submit_fjob(pool, &jobs[i], (uint64_t)(i % GROUPS), 1,
				    &futs[i]);
		}
		aq__fault_arm(AQ__FAULT_ALLOC, nth);
		release_workers(&h);
		for (int i = 0; i < N; i++) {
			int rc = aq_future_get(futs[i], NULL, th_long_ns());

			if (rc == 0) {
				ck_assert_int_eq(jobs[i].calls, 1);
			} else {
				ck_assert_msg(rc == ENOMEM && failed < 0,
					      "nth %ld: job %d: %d (job %d "
					      "failed already)",
					      nth, i, rc, failed);
				ck_assert_int_eq(jobs[i].calls, 0);
				failed = i;
			}
			ck_assert_int_eq(th_ld(&jobs[i].destroyed), 1);
			aq_future_release(futs[i]);
		}
		calls = aq__fault_calls(AQ__FAULT_ALLOC);
		aq__fault_arm(AQ__FAULT_ALLOC, 0);
		aq_pool_destroy(pool);

		/* The survivors' order. Every group is in the round, in the
		 * order of its first push, before the first pop: groups
		 * 0..29 start one job each, and groups 0..9 go round again
		 * for their second. If a first job of groups 0..9 was lost,
		 * its group was created by its second job after every other
		 * group joined, so that job runs right after job 29. */
		{
			int want[N], k = 0;

			for (int i = 0; i < GROUPS; i++)
				if (i != failed)
					want[k++] = i;
			if (failed >= 0 && failed < N - GROUPS)
				want[k++] = failed + GROUPS;
			for (int i = GROUPS; i < N; i++)
				if (i != failed && i != failed + GROUPS)
					want[k++] = i;
			order_expect(want, k, "allocation sweep");
		}
		if (calls < nth)
			break; /* this run had no nth allocation: done */
		if (failed < 0)
			saw_table_fault = true;
	}
	/* Some allocation failed without losing a job: the table's. */
	ck_assert_msg(saw_table_fault,
		      "no allocation failed harmlessly in %ld runs", nth);
	ck_assert_int_ge(nth, GROUPS);
}
END_TEST

/* ---- the suite ----------------------------------------------------------- */

Suite *sched_fair_suite(void)
{
	Suite *s = suite_create("sched_fair");
	TCase *order = tcase_create("order");
	TCase *share = tcase_create("shares");
	TCase *cap = tcase_create("cap");
	TCase *cons = tcase_create("conservation");
	TCase *errs = tcase_create("errors");

	tcase_set_timeout(order, TH_TIMEOUT);
	tcase_add_loop_test(order, test_fifo_in_group, 0, 2);
	tcase_add_test(order, test_yield_requeues_in_group);
	tcase_add_test(order, test_latest_weight_wins);
	tcase_add_test(order, test_many_groups);
	tcase_add_test(order, test_groups_recycled);
	suite_add_tcase(s, order);

	tcase_set_timeout(share, TH_TIMEOUT);
	tcase_add_loop_test(share, test_shares_1_2_4, 0, 2);
	tcase_add_loop_test(share, test_flood_bound, 0, 6);
	suite_add_tcase(s, share);

	tcase_set_timeout(cap, TH_TIMEOUT);
	tcase_add_loop_test(cap, test_cap, 0, 3);
	tcase_add_test(cap, test_cap_serialises_group);
	tcase_add_test(cap, test_idle_workers_woken_for_policy_backlog);
	suite_add_tcase(s, cap);

	tcase_set_timeout(cons, TH_TIMEOUT_STRESS);
	tcase_add_loop_test(cons, test_conservation, 0, 4);
	suite_add_tcase(s, cons);

	tcase_set_timeout(errs, TH_TIMEOUT);
	tcase_add_test(errs, test_params);
	tcase_add_test(errs, test_create_alloc_faults);
	tcase_add_test(errs, test_group_alloc_fails);
	tcase_add_test(errs, test_push_alloc_sweep);
	suite_add_tcase(s, errs);
	return s;
}
