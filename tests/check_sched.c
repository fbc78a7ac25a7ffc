/* SPDX-License-Identifier: MIT */
/*
 * check_sched.c - the pluggable scheduler: priority order and aging,
 * aq_sched_fifo() through the interface, AQ_YIELD and aq_current_yield_due(),
 * the contract of struct aq_sched_ops (threads, lock, push and init
 * failures), a policy written here outside the library (LIFO),
 * conservation of every job under drain and cancel, and nested waits
 * under every policy.
 *
 * Orders are exact: one worker is held by a gate job until every job under
 * test is queued. Nothing depends on timing except generous bounds, and the
 * aging tests assert only what the aging key (priority * aging_ns -
 * enqueue time) implies for the times the test itself reads around each
 * submit.
 */
#include <errno.h>
#include <limits.h>
#include <pthread.h>
#include <sched.h>
#include <stdatomic.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <check.h>

#include "fault.h"
#include "helpers.h"
#include "suites.h"

/* ---- pools, gates and order records shared by the tests ----------------- */

/*
 * The three ways a pool gets first-in first-out behaviour: the ring alone
 * (cfg.sched NULL), aq_sched_fifo() through the interface, and
 * aq_sched_priority() with every job at the same priority.
 */
enum { KIND_RING, KIND_FIFO, KIND_PRIO, NKINDS };

static const char *const kind_names[NKINDS] = {
	"ring (cfg.sched NULL)", "aq_sched_fifo()", "aq_sched_priority()"
};

static const struct aq_sched_ops *kind_ops(int kind)
{
	switch (kind) {
	case KIND_FIFO:
		return aq_sched_fifo();
	case KIND_PRIO:
		return aq_sched_priority();
	default:
		return NULL;
	}
}

static aq_pool *make_pool(const struct aq_sched_ops *ops, const void *params,
			  unsigned workers, unsigned capacity, int64_t slice_ns)
{
	struct aq_pool_config cfg = { .workers = workers,
				      .queue_capacity = capacity,
				      .sched = ops,
				      .sched_params = params,
				      .slice_ns = slice_ns };
	aq_pool *pool = NULL;
	int ret = aq_pool_create(&pool, &cfg);

	ck_assert_msg(ret == 0, "aq_pool_create(sched %s): %d",
		      ops ? ops->name : "NULL", ret);
	ck_assert_ptr_nonnull(pool);
	return pool;
}

static aq_pool *kind_pool(int kind, unsigned workers, unsigned capacity,
			  int64_t slice_ns)
{
	return make_pool(kind_ops(kind), NULL, workers, capacity, slice_ns);
}

/* A gate job holding a pool's only worker. */
struct hold {
	struct th_gate gate;
	aq_future *fut;
};

/* Occupy the worker and wait until the gate job runs: every job submitted
 * from now on queues until release_worker(). */
static void hold_worker_opts(aq_pool *pool, struct hold *h,
			     const struct aq_job_opts *opts)
{
	th_gate_init(&h->gate);
	ck_assert_int_eq(aq_submit(pool, th_gate_job, &h->gate, opts, &h->fut),
			 0);
	ck_assert_msg(th_poll_state(h->fut, AQ_STATE_RUNNING),
		      "the gate job never started");
}

static void hold_worker(aq_pool *pool, struct hold *h)
{
	hold_worker_opts(pool, h, NULL);
}

static void release_worker(struct hold *h)
{
	th_gate_open(&h->gate);
	ck_assert_int_eq(aq_future_get(h->fut, NULL, -1), 0);
	aq_future_release(h->fut);
}

/* The order in which jobs ran (one worker: written by one thread at a time,
 * read once the pool is destroyed or the jobs' futures resolved). */
#define ORDER_MAX 1024

struct order {
	atomic_int n;
	int ids[ORDER_MAX];
};

static void order_init(struct order *o)
{
	atomic_init(&o->n, 0);
	memset(o->ids, 0xff, sizeof(o->ids));
}

static void order_add(struct order *o, int id)
{
	int pos = atomic_fetch_add(&o->n, 1);

	if (pos < ORDER_MAX)
		o->ids[pos] = id;
}

/* "a b c ..." for failure messages; truncated to fit buf. */
static const char *order_str(const struct order *o, char *buf, size_t size)
{
	int n = atomic_load(&((struct order *)o)->n);
	size_t used = 0;

	buf[0] = '\0';
	for (int i = 0; i < n && i < ORDER_MAX && used + 16 < size; i++)
		used += (size_t)snprintf(buf + used, size - used, "%s%d",
					 i ? " " : "", o->ids[i]);
	return buf;
}

static void order_expect(const struct order *o, const int *want, int n,
			 const char *what)
{
	char got[512], exp[512];
	struct order w;
	int ran = atomic_load(&((struct order *)o)->n);
	bool same = ran == n;

	for (int i = 0; same && i < n; i++)
		same = o->ids[i] == want[i];
	if (same)
		return;
	order_init(&w);
	for (int i = 0; i < n; i++)
		order_add(&w, want[i]);
	ck_abort_msg("%s: ran [%s], expected [%s]", what,
		     order_str(o, got, sizeof(got)),
		     order_str(&w, exp, sizeof(exp)));
}

/*
 * An instrumented job that records its id in an order, yields `yields`
 * times and then succeeds with 1 + 2 + ... + calls as its result: the sum
 * is only right if its state survived every yield.
 */
struct ojob {
	struct order *order;
	int id;
	int yields;           /* how many times it returns AQ_YIELD */
	int calls;            /* times called; only the job writes it */
	long sum;             /* 1 + 2 + ... + calls */
	int destroyed_early;  /* calls made after arg_destroy had run */
	atomic_int destroyed; /* ojob_destroy() calls */
	int calls_at_destroy; /* calls when ojob_destroy() ran */
	pthread_t destroy_thread;
};

static void ojob_init(struct ojob *j, struct order *o, int id, int yields)
{
	memset(j, 0, sizeof(*j));
	j->order = o;
	j->id = id;
	j->yields = yields;
	atomic_init(&j->destroyed, 0);
}

static int ojob_fn(void *arg, void **result)
{
	struct ojob *j = arg;

	j->calls++;
	j->sum += j->calls;
	if (atomic_load(&j->destroyed))
		j->destroyed_early++;
	order_add(j->order, j->id);
	if (j->calls <= j->yields)
		return AQ_YIELD;
	*result = (void *)(intptr_t)j->sum;
	return 0;
}

static void ojob_destroy(void *arg)
{
	struct ojob *j = arg;

	j->calls_at_destroy = j->calls;
	j->destroy_thread = pthread_self();
	atomic_fetch_add(&j->destroyed, 1);
}

static void submit_ojob(aq_pool *pool, struct ojob *j, int priority,
			aq_future **fut)
{
	struct aq_job_opts opts = { .priority = priority,
				    .arg_destroy = ojob_destroy };

	ck_assert_int_eq(aq_submit(pool, ojob_fn, j, &opts, fut), 0);
}

/* The job succeeded once, with the full sum, and arg_destroy ran once,
 * after its last call. Releases fut. */
static void ojob_check_done(struct ojob *j, aq_future *fut, const char *what)
{
	long want = (long)(j->yields + 1) * (j->yields + 2) / 2;
	void *result = NULL;

	ck_assert_msg(aq_future_get(fut, &result, -1) == 0, "%s: job %d failed",
		      what, j->id);
	ck_assert_msg((long)(intptr_t)result == want,
		      "%s: job %d result %ld, expected %ld", what, j->id,
		      (long)(intptr_t)result, want);
	ck_assert_int_eq(aq_future_state(fut), AQ_STATE_SUCCEEDED);
	ck_assert_msg(j->calls == j->yields + 1, "%s: job %d called %d times",
		      what, j->id, j->calls);
	ck_assert_msg(atomic_load(&j->destroyed) == 1,
		      "%s: job %d arg_destroy ran %d times", what, j->id,
		      atomic_load(&j->destroyed));
	ck_assert_msg(j->calls_at_destroy == j->yields + 1 &&
			      j->destroyed_early == 0,
		      "%s: job %d arg_destroy ran before its last call", what,
		      j->id);
	aq_future_release(fut);
}

/* ---- priority: strict order --------------------------------------------- */

/*
 * Strictly higher priority first, FIFO among equals, with aging off (the
 * default, and asked for explicitly). Job 7 has no options at all: normal
 * priority 0.
 */
START_TEST(test_priority_strict_order)
{
	static const int prios[] = { 0, 5, -3, 5, 10, AQ_PRIORITY_MIN,
				     AQ_PRIORITY_MAX, 0, -3 };
	static const int want[] = { 6, 4, 1, 3, 0, 7, 2, 8, 5 };
	static const struct aq_sched_priority_params strict = { .aging_ns = 0 };
	enum { N = sizeof(prios) / sizeof(prios[0]) };
	struct ojob jobs[N];
	aq_future *futs[N];
	struct order order;
	struct hold h;
	aq_pool *pool = make_pool(aq_sched_priority(), _i ? &strict : NULL, 1,
				  0, 0);

	order_init(&order);
	hold_worker(pool, &h);
	for (int i = 0; i < N; i++) {
		ojob_init(&jobs[i], &order, i, 0);
		futs[i] = NULL;
		if (i == 7)
			ck_assert_int_eq(aq_submit(pool, ojob_fn, &jobs[i],
						   NULL, NULL),
					 0);
		else
			submit_ojob(pool, &jobs[i], prios[i], &futs[i]);
	}
	release_worker(&h);
	aq_pool_destroy(pool);
	order_expect(&order, want, N, "priority order");
	for (int i = 0; i < N; i++)
		if (futs[i])
			ojob_check_done(&jobs[i], futs[i], "priority");
	ck_assert_int_eq(jobs[7].calls, 1);
	th_gate_destroy(&h.gate);
}
END_TEST

/*
 * The same promise when more jobs wait than the scheduler moves from the
 * ring in one go: a free worker takes the most urgent of all the jobs
 * accepted, not just of the first few.
 */
#define MANY 300

START_TEST(test_priority_order_many)
{
	static struct ojob jobs[MANY];
	static aq_future *futs[MANY];
	static int prios[MANY], want[MANY];
	static struct order order;
	uint32_t rng = 12345;
	struct hold h;
	aq_pool *pool = make_pool(aq_sched_priority(), NULL, 1, 0, 0);

	order_init(&order);
	for (int i = 0; i < MANY; i++) {
		rng = rng * 1103515245u + 12345u;
		prios[i] = AQ_PRIORITY_MIN +
			   (int)((rng >> 8) % (AQ_PRIORITY_MAX -
					       AQ_PRIORITY_MIN + 1));
	}
	prios[MANY - 1] = AQ_PRIORITY_MAX + 0; /* the last is the most urgent */
	prios[0] = AQ_PRIORITY_MIN;            /* the first the least */
	/* The expected order: a stable insertion sort, priority descending. */
	for (int i = 0; i < MANY; i++) {
		int k = i;

		while (k > 0 && prios[want[k - 1]] < prios[i]) {
			want[k] = want[k - 1];
			k--;
		}
		want[k] = i;
	}
	hold_worker(pool, &h);
	for (int i = 0; i < MANY; i++) {
		ojob_init(&jobs[i], &order, i, 0);
		submit_ojob(pool, &jobs[i], prios[i], &futs[i]);
	}
	release_worker(&h);
	aq_pool_destroy(pool);
	order_expect(&order, want, MANY, "priority order, 300 waiting");
	for (int i = 0; i < MANY; i++)
		ojob_check_done(&jobs[i], futs[i], "priority, 300 waiting");
	th_gate_destroy(&h.gate);
}
END_TEST

/* ---- priority: aging ---------------------------------------------------- */

#define AGE_NS INT64_C(1000000) /* one aging step: 1 ms */

/*
 * Low (priority 0) waits at least 30 ms before High (10) arrives, then
 * Low2 (0). With aging of 1 ms a step, Low has gained more than 10 levels:
 * key(Low) - key(High) = e(High) - e(Low) - 10 ms > 0, so the order is
 * Low, High, Low2. Without aging it is High, Low, Low2.
 */
START_TEST(test_aging_overtakes)
{
	static const struct aq_sched_priority_params aging = { .aging_ns =
								       AGE_NS };
	static const int want_aging[] = { 0, 1, 2 };
	static const int want_strict[] = { 1, 0, 2 };
	static const int prio[] = { 0, 10, 0 };
	struct ojob jobs[3];
	aq_future *futs[3];
	struct order order;
	struct hold h;
	int64_t low_after;
	aq_pool *pool = make_pool(aq_sched_priority(), _i ? NULL : &aging, 1,
				  0, 0);

	order_init(&order);
	hold_worker(pool, &h);
	for (int i = 0; i < 3; i++)
		ojob_init(&jobs[i], &order, i, 0);
	submit_ojob(pool, &jobs[0], prio[0], &futs[0]);
	low_after = th_now_ns();
	while (th_now_ns() - low_after <= 30 * AGE_NS)
		th_sleep_ms(5);
	submit_ojob(pool, &jobs[1], prio[1], &futs[1]);
	submit_ojob(pool, &jobs[2], prio[2], &futs[2]);
	release_worker(&h);
	aq_pool_destroy(pool);
	order_expect(&order, _i ? want_strict : want_aging, 3,
		     _i ? "no aging" : "aging 1 ms");
	for (int i = 0; i < 3; i++)
		ojob_check_done(&jobs[i], futs[i], "aging");
	th_gate_destroy(&h.gate);
}
END_TEST

/*
 * Starvation bound under a stream of urgent work. One worker; a job of
 * priority -10 is queued first, then AGE_CHAINS chains of priority +10
 * jobs, each of which submits its successor before it returns, so urgent
 * work is always waiting. With aging_ns A the key of a job is
 * prio * A - enqueue_ns, ties to the earlier arrival, which gives exactly:
 *
 *   - an urgent job U runs before Low only if e(U) < e(Low) + 20 A;
 *   - Low runs only when every urgent job waiting has e(U) >= e(Low) + 20 A,
 *     so it has waited at least 20 A.
 *
 * The test reads the clock before and after each submit, which brackets
 * the enqueue time the library takes inside aq_submit(), and asserts those
 * two rules on the brackets: they hold however slow the machine is.
 */
#define AGE_LOW (-10)
#define AGE_HIGH 10
#define AGE_GAP (AGE_HIGH - AGE_LOW) /* levels Low must gain */
#define AGE_CHAINS 4
#define AGE_TAIL 20 /* urgent jobs each chain runs after Low did */

struct age_run {
	aq_pool *pool;
	int64_t low_before, low_after; /* clock around aq_submit(Low) */
	int64_t deadline;              /* the chains stop here in any case */
	atomic_int low_ran;
	int64_t low_ran_at;            /* when Low started */
	/* One worker runs every job in turn: plain counters suffice. */
	long urgent_before_low;        /* urgent jobs that ran before Low */
	long urgent_total;
	long violations;               /* urgent jobs that overtook too late */
	int64_t worst_late_ns;         /* the worst of those */
	bool timed_out;                /* a chain met the deadline */
	atomic_int chains_live;
	atomic_int errors;             /* failed submits of a successor */
};

struct urgent {
	struct age_run *run;
	int64_t submitted_before; /* clock read just before its aq_submit */
	int after_low;            /* urgent jobs of this chain since Low ran */
};

static int urgent_fn(void *arg, void **result);

/* Queue an urgent job; false when the submit failed. */
static bool urgent_submit(struct age_run *r, int after_low)
{
	struct aq_job_opts opts = { .priority = AGE_HIGH, .arg_destroy = free };
	struct urgent *u = malloc(sizeof(*u));

	if (!u)
		return false;
	u->run = r;
	u->after_low = after_low;
	u->submitted_before = th_now_ns();
	if (aq_submit(r->pool, urgent_fn, u, &opts, NULL) != 0) {
		free(u);
		return false;
	}
	return true;
}

static int urgent_fn(void *arg, void **result)
{
	struct urgent *u = arg;
	struct age_run *r = u->run;
	bool low_ran = atomic_load(&r->low_ran);
	int after_low = u->after_low + (low_ran ? 1 : 0);

	(void)result;
	r->urgent_total++;
	if (!low_ran) {
		int64_t late = u->submitted_before -
			       (r->low_after + AGE_GAP * AGE_NS);

		r->urgent_before_low++;
		if (late >= 0) {
			r->violations++;
			if (late > r->worst_late_ns)
				r->worst_late_ns = late;
		}
	}
	if (after_low > AGE_TAIL || th_now_ns() > r->deadline) {
		if (after_low <= AGE_TAIL)
			r->timed_out = true;
		atomic_fetch_sub(&r->chains_live, 1);
		return 0;
	}
	/* The successor is queued before we return, so urgent work is
	 * waiting whenever the worker chooses its next job. */
	if (!urgent_submit(r, after_low)) {
		atomic_fetch_add(&r->errors, 1);
		atomic_fetch_sub(&r->chains_live, 1);
	}
	return 0;
}

static int low_fn(void *arg, void **result)
{
	struct age_run *r = arg;

	(void)result;
	r->low_ran_at = th_now_ns();
	atomic_store(&r->low_ran, 1);
	return 0;
}

START_TEST(test_aging_no_starvation)
{
	static const struct aq_sched_priority_params aging = { .aging_ns =
								       AGE_NS };
	static struct age_run r;
	struct aq_job_opts low_opts = { .priority = AGE_LOW };
	int64_t first_urgent_after = 0;
	aq_future *low;
	struct hold h;

	memset(&r, 0, sizeof(r));
	atomic_init(&r.low_ran, 0);
	atomic_init(&r.chains_live, AGE_CHAINS);
	atomic_init(&r.errors, 0);
	r.pool = make_pool(aq_sched_priority(), &aging, 1, 0, 0);
	r.deadline = INT64_MAX; /* set once the chains are queued */

	hold_worker(r.pool, &h);
	r.low_before = th_now_ns();
	ck_assert_int_eq(aq_submit(r.pool, low_fn, &r, &low_opts, &low), 0);
	r.low_after = th_now_ns();
	for (int c = 0; c < AGE_CHAINS; c++) {
		ck_assert(urgent_submit(&r, 0));
		if (c == 0)
			first_urgent_after = th_now_ns();
	}
	r.deadline = th_now_ns() + th_long_ns();
	release_worker(&h);

	ck_assert_msg(aq_future_get(low, NULL, 2 * th_long_ns()) == 0,
		      "the low-priority job never ran");
	aq_future_release(low);
	ck_assert_msg(th_poll_int(&r.chains_live, 0),
		      "the urgent chains did not stop");
	aq_pool_destroy(r.pool);

	ck_assert_int_eq(atomic_load(&r.errors), 0);
	ck_assert_msg(!r.timed_out,
		      "the low job did not run within %.0f s while urgent "
		      "jobs kept arriving",
		      th_poll_seconds());
	ck_assert_msg(r.violations == 0,
		      "%ld of %ld urgent jobs ran before the low one although "
		      "enqueued after its bound (worst %lld ns late)",
		      r.violations, r.urgent_before_low,
		      (long long)r.worst_late_ns);
	ck_assert_msg(r.low_ran_at - r.low_before >= AGE_GAP * AGE_NS,
		      "the low job ran after %lld ns, before its priority "
		      "could catch up (%lld ns)",
		      (long long)(r.low_ran_at - r.low_before),
		      (long long)(AGE_GAP * AGE_NS));
	/* The first urgent job, if queued within the bound, must overtake. */
	if (first_urgent_after - r.low_before < AGE_GAP * AGE_NS)
		ck_assert_msg(r.urgent_before_low >= 1,
			      "no urgent job overtook the low one");
	ck_assert_int_ge(r.urgent_total,
			 r.urgent_before_low + AGE_CHAINS * AGE_TAIL);
	th_gate_destroy(&h.gate);
}
END_TEST

/* ---- FIFO through the interface ----------------------------------------- */

#define FIFO_N 1000

/* aq_sched_fifo(): submission order, whatever path a job took. */
START_TEST(test_fifo_ops_order)
{
	static struct ojob jobs[FIFO_N];
	static aq_future *futs[FIFO_N];
	static int want[FIFO_N];
	static struct order order;
	struct aq_job_opts with_destroy = { .arg_destroy = ojob_destroy };
	struct hold h;
	aq_pool *pool = make_pool(aq_sched_fifo(), NULL, 1, 0, 0);

	order_init(&order);
	hold_worker(pool, &h);
	for (int i = 0; i < FIFO_N; i++) {
		ojob_init(&jobs[i], &order, i, 0);
		want[i] = i;
		futs[i] = NULL;
		switch (i % 3) {
		case 0: /* no options, no future */
			ck_assert_int_eq(aq_submit(pool, ojob_fn, &jobs[i],
						   NULL, NULL),
					 0);
			break;
		case 1:
			submit_ojob(pool, &jobs[i], 0, &futs[i]);
			break;
		default: /* options, no future */
			ck_assert_int_eq(aq_submit(pool, ojob_fn, &jobs[i],
						   &with_destroy, NULL),
					 0);
			break;
		}
	}
	release_worker(&h);
	aq_pool_destroy(pool);
	order_expect(&order, want, FIFO_N, "aq_sched_fifo order");
	for (int i = 0; i < FIFO_N; i++) {
		if (futs[i])
			ojob_check_done(&jobs[i], futs[i], "aq_sched_fifo");
		ck_assert_int_eq(atomic_load(&jobs[i].destroyed),
				 i % 3 == 0 ? 0 : 1);
	}
	th_gate_destroy(&h.gate);
}
END_TEST

/* ---- a policy written outside the library: LIFO ------------------------- */

/* A stack linked through slot 0 of each job. No done(): it is optional. */
struct lifo {
	aq_sched_job *top;
};

static int lifo_init(void **state, const void *params)
{
	struct lifo *s = calloc(1, sizeof(*s));

	(void)params;
	if (!s)
		return -ENOMEM;
	*state = s;
	return 0;
}

static int lifo_push(void *state, aq_sched_job *job)
{
	struct lifo *s = state;

	aq_sched_job_slots(job)[0] = s->top;
	s->top = job;
	return 0;
}

static aq_sched_job *lifo_pop(void *state)
{
	struct lifo *s = state;
	aq_sched_job *job = s->top;

	if (job)
		s->top = aq_sched_job_slots(job)[0];
	return job;
}

static void lifo_destroy(void *state)
{
	free(state);
}

static const struct aq_sched_ops lifo_ops = {
	.name = "test-lifo",
	.init = lifo_init,
	.push = lifo_push,
	.pop = lifo_pop,
	.destroy = lifo_destroy,
};

static const struct aq_sched_ops *lifo_sched(void)
{
	return &lifo_ops;
}

#define LIFO_N 40

START_TEST(test_custom_lifo_order)
{
	struct ojob jobs[LIFO_N];
	aq_future *futs[LIFO_N];
	int want[LIFO_N];
	struct order order;
	struct hold h;
	aq_pool *pool = make_pool(&lifo_ops, NULL, 1, 0, 0);

	order_init(&order);
	hold_worker(pool, &h);
	for (int i = 0; i < LIFO_N; i++) {
		ojob_init(&jobs[i], &order, i, 0);
		want[i] = LIFO_N - 1 - i;
		futs[i] = NULL;
		if (i % 2)
			submit_ojob(pool, &jobs[i], 0, &futs[i]);
		else
			ck_assert_int_eq(aq_submit(pool, ojob_fn, &jobs[i],
						   NULL, NULL),
					 0);
	}
	release_worker(&h);
	aq_pool_destroy(pool);
	order_expect(&order, want, LIFO_N, "LIFO order");
	for (int i = 1; i < LIFO_N; i += 2)
		ojob_check_done(&jobs[i], futs[i], "LIFO");
	th_gate_destroy(&h.gate);
}
END_TEST

/* ---- a spy: FIFO that checks how the pool calls it ---------------------- */

/*
 * The spy's parameters and findings. It outlives the pool; the ops write it
 * under the pool's scheduler lock (plain fields: ThreadSanitizer would
 * report a missing lock) and the test reads it after aq_pool_destroy().
 */
#define SPY_LOG_MAX 64

struct spy_event {
	char op; /* 'P' push, 'R' push refused, 'O' pop, 'D' done */
	uint64_t hint;
	unsigned runs;
	uint64_t seq;
	int priority;
	uint64_t group;
	unsigned weight;
	int64_t enqueue_ns;
};

struct spy {
	pthread_t creator;  /* creates and destroys the pool */
	int init_rc;        /* what init returns */
	/* push refuses a job with this, when it returns non-zero */
	int (*verdict)(aq_sched_job *job);
	atomic_int inits, destroys;
	atomic_int inside;     /* an op is running */
	atomic_int overlaps;   /* an op began while another was running */
	atomic_int off_thread; /* an op on the wrong thread */
	long pushes, refused, pops, dones;
	int nlog;
	struct spy_event log[SPY_LOG_MAX];
};

struct spy_state {
	struct spy *spy;
	aq_sched_job *head, *tail;
};

static void spy_reset(struct spy *s)
{
	memset(s, 0, sizeof(*s));
	s->creator = pthread_self();
	atomic_init(&s->inits, 0);
	atomic_init(&s->destroys, 0);
	atomic_init(&s->inside, 0);
	atomic_init(&s->overlaps, 0);
	atomic_init(&s->off_thread, 0);
}

/* Every op but init and destroy runs on a worker, never on the creator
 * (which only submits), and never while another op runs. */
static void spy_enter(struct spy *s, bool on_creator)
{
	if (atomic_exchange(&s->inside, 1))
		atomic_fetch_add(&s->overlaps, 1);
	if (!!pthread_equal(pthread_self(), s->creator) != on_creator)
		atomic_fetch_add(&s->off_thread, 1);
}

static void spy_leave(struct spy *s)
{
	atomic_store(&s->inside, 0);
}

static void spy_log(struct spy *s, char op, aq_sched_job *job)
{
	struct spy_event *e;

	if (s->nlog >= SPY_LOG_MAX)
		return;
	e = &s->log[s->nlog++];
	e->op = op;
	e->hint = aq_sched_job_hint(job);
	e->runs = aq_sched_job_runs(job);
	e->seq = aq_sched_job_seq(job);
	e->priority = aq_sched_job_priority(job);
	e->group = aq_sched_job_group(job);
	e->weight = aq_sched_job_weight(job);
	e->enqueue_ns = aq_sched_job_enqueue_ns(job);
}

static int spy_init(void **state, const void *params)
{
	struct spy *s = (struct spy *)(uintptr_t)params;
	struct spy_state *st;

	spy_enter(s, true);
	atomic_fetch_add(&s->inits, 1);
	spy_leave(s);
	if (s->init_rc)
		return s->init_rc;
	st = calloc(1, sizeof(*st));
	if (!st)
		return -ENOMEM;
	st->spy = s;
	*state = st;
	return 0;
}

static int spy_push(void *state, aq_sched_job *job)
{
	struct spy_state *st = state;
	struct spy *s = st->spy;
	int rc = s->verdict ? s->verdict(job) : 0;

	spy_enter(s, false);
	spy_log(s, rc ? 'R' : 'P', job);
	if (rc) {
		s->refused++;
	} else {
		s->pushes++;
		aq_sched_job_slots(job)[0] = NULL;
		if (st->tail)
			aq_sched_job_slots(st->tail)[0] = job;
		else
			st->head = job;
		st->tail = job;
	}
	spy_leave(s);
	return rc;
}

static aq_sched_job *spy_pop(void *state)
{
	struct spy_state *st = state;
	struct spy *s = st->spy;
	aq_sched_job *job;

	spy_enter(s, false);
	job = st->head;
	if (job) {
		st->head = aq_sched_job_slots(job)[0];
		if (!st->head)
			st->tail = NULL;
		s->pops++;
		spy_log(s, 'O', job);
	}
	spy_leave(s);
	return job;
}

static void spy_done(void *state, aq_sched_job *job)
{
	struct spy_state *st = state;
	struct spy *s = st->spy;

	spy_enter(s, false);
	s->dones++;
	spy_log(s, 'D', job);
	spy_leave(s);
}

static void spy_destroy(void *state)
{
	struct spy_state *st = state;
	struct spy *s = st->spy;

	spy_enter(s, true);
	atomic_fetch_add(&s->destroys, 1);
	if (st->head)
		atomic_fetch_add(&s->off_thread, 1000); /* jobs left behind */
	spy_leave(s);
	free(st);
}

static const struct aq_sched_ops spy_ops = {
	.name = "test-spy",
	.init = spy_init,
	.push = spy_push,
	.pop = spy_pop,
	.done = spy_done,
	.destroy = spy_destroy,
};

static const struct aq_sched_ops *spy_sched(void)
{
	return &spy_ops;
}

static void spy_expect_clean(struct spy *s, const char *what)
{
	ck_assert_msg(atomic_load(&s->inits) == 1 &&
			      atomic_load(&s->destroys) == 1,
		      "%s: init ran %d times, destroy %d times", what,
		      atomic_load(&s->inits), atomic_load(&s->destroys));
	ck_assert_msg(atomic_load(&s->overlaps) == 0,
		      "%s: %d ops ran while another op was running", what,
		      atomic_load(&s->overlaps));
	ck_assert_msg(atomic_load(&s->off_thread) == 0,
		      "%s: ops on the wrong thread, or jobs left in the "
		      "policy at destroy (%d)",
		      what, atomic_load(&s->off_thread));
	ck_assert_msg(s->pops == s->pushes,
		      "%s: %ld pushes but %ld pops: jobs left behind", what,
		      s->pushes, s->pops);
	ck_assert_msg(s->dones == s->pops,
		      "%s: %ld pops but %ld done calls", what, s->pops,
		      s->dones);
}

/* ---- the ops contract, seen by the spy ---------------------------------- */

static const struct spy_event *spy_find(const struct spy *s, int from,
					char op, uint64_t hint)
{
	for (int i = from; i < s->nlog; i++)
		if (s->log[i].op == op && s->log[i].hint == hint)
			return &s->log[i];
	return NULL;
}

static void spy_expect_sequence(const struct spy *s, const char *want_ops,
				const uint64_t *want_hints,
				const unsigned *want_runs)
{
	int n = (int)strlen(want_ops);
	char got[4 * SPY_LOG_MAX + 1] = "";
	size_t used = 0;
	bool same = s->nlog == n;

	for (int i = 0; i < s->nlog && used + 24 < sizeof(got); i++)
		used += (size_t)snprintf(got + used, sizeof(got) - used,
					 "%s%c%llu/%u", i ? " " : "",
					 s->log[i].op,
					 (unsigned long long)s->log[i].hint,
					 s->log[i].runs);
	for (int i = 0; same && i < n; i++)
		same = s->log[i].op == want_ops[i] &&
		       s->log[i].hint == want_hints[i] &&
		       s->log[i].runs == want_runs[i];
	ck_assert_msg(same, "ops ran as [%s] (op hint/runs), expected %s", got,
		      want_ops);
}

#define GATE_HINT 1000

/*
 * One worker, the spy as policy. While a gate job holds the worker: A
 * (yields once), B (cancelled while queued), C (no options at all) and D
 * (extreme values) are submitted. Then the exact sequence of ops, the
 * accessors' values, the arrival numbers and the threads are checked.
 */
START_TEST(test_ops_contract)
{
	static struct spy spy;
	struct aq_job_opts gate_opts = { .hint = GATE_HINT };
	struct aq_job_opts a_opts = { .priority = 7,
				      .group = 42,
				      .weight = 0,
				      .hint = 1,
				      .arg_destroy = ojob_destroy };
	struct aq_job_opts b_opts = { .priority = AQ_PRIORITY_MIN,
				      .group = 0,
				      .weight = 3,
				      .hint = 2,
				      .arg_destroy = ojob_destroy };
	struct aq_job_opts d_opts = { .priority = AQ_PRIORITY_MAX,
				      .group = UINT64_MAX,
				      .weight = AQ_WEIGHT_MAX,
				      .hint = UINT64_MAX,
				      .arg_destroy = ojob_destroy };
	struct ojob a, b, c, d;
	aq_future *fa, *fb, *fd;
	int64_t a_before, a_after, d_before, d_after, released;
	struct order order;
	struct hold h;
	aq_pool *pool;
	/* After the gate's push and pop: its done, the four arrivals, A's
	 * yield (done, push again), then each pop and done in FIFO order. */
	static const char want_ops[] = "POD" "PPPPO" "DP" "OD" "OD" "OD" "OD";
	static const uint64_t want_hints[] = {
		GATE_HINT, GATE_HINT, GATE_HINT,
		1, 2, 0, UINT64_MAX, 1,
		1, 1,
		2, 2,
		0, 0,
		UINT64_MAX, UINT64_MAX,
		1, 1,
	};
	static const unsigned want_runs[] = {
		0, 0, 1,
		0, 0, 0, 0, 0,
		1, 1,
		0, 0, /* B: cancelled, never called, still done */
		0, 1,
		0, 1,
		1, 2,
	};
	const struct spy_event *e;

	spy_reset(&spy);
	pool = make_pool(&spy_ops, &spy, 1, 0, 0);
	order_init(&order);
	ojob_init(&a, &order, 1, 1);
	ojob_init(&b, &order, 2, 0);
	ojob_init(&c, &order, 3, 0);
	ojob_init(&d, &order, 4, 0);

	hold_worker_opts(pool, &h, &gate_opts);
	a_before = th_now_ns();
	ck_assert_int_eq(aq_submit(pool, ojob_fn, &a, &a_opts, &fa), 0);
	a_after = th_now_ns();
	ck_assert_int_eq(aq_submit(pool, ojob_fn, &b, &b_opts, &fb), 0);
	ck_assert_int_eq(aq_submit(pool, ojob_fn, &c, NULL, NULL), 0);
	d_before = th_now_ns();
	ck_assert_int_eq(aq_submit(pool, ojob_fn, &d, &d_opts, &fd), 0);
	d_after = th_now_ns();
	ck_assert_int_eq(aq_future_cancel(fb), 0);
	released = th_now_ns();
	release_worker(&h);
	aq_pool_destroy(pool);

	spy_expect_sequence(&spy, want_ops, want_hints, want_runs);
	spy_expect_clean(&spy, "spy");
	ck_assert_int_eq(spy.refused, 0);

	/* Arrival numbers: from 1 in the order the policy receives jobs; a
	 * yielded job gets a new one. */
	for (int i = 0, pushes = 0; i < spy.nlog; i++)
		if (spy.log[i].op == 'P')
			ck_assert_msg(spy.log[i].seq == (uint64_t)++pushes,
				      "push %d has seq %llu", pushes,
				      (unsigned long long)spy.log[i].seq);

	/* What the policy read of A at its first push. */
	e = spy_find(&spy, 0, 'P', 1);
	ck_assert_int_eq(e->priority, 7);
	ck_assert_uint_eq(e->group, 42);
	ck_assert_uint_eq(e->weight, 1); /* 0 means 1 */
	ck_assert_int_ge(e->enqueue_ns, a_before);
	ck_assert_int_le(e->enqueue_ns, a_after);
	/* ... and after its yield: a new enqueue time, the same metadata. */
	e = spy_find(&spy, (int)(e - spy.log) + 1, 'P', 1);
	ck_assert_ptr_nonnull(e);
	ck_assert_int_ge(e->enqueue_ns, released);
	ck_assert_int_eq(e->priority, 7);
	ck_assert_uint_eq(e->group, 42);
	e = spy_find(&spy, 0, 'P', 2);
	ck_assert_int_eq(e->priority, AQ_PRIORITY_MIN);
	ck_assert_uint_eq(e->weight, 3);
	e = spy_find(&spy, 0, 'P', 0); /* C: no options */
	ck_assert_int_eq(e->priority, 0);
	ck_assert_uint_eq(e->group, 0);
	ck_assert_uint_eq(e->weight, 1);
	e = spy_find(&spy, 0, 'P', UINT64_MAX);
	ck_assert_int_eq(e->priority, AQ_PRIORITY_MAX);
	ck_assert_uint_eq(e->group, UINT64_MAX);
	ck_assert_uint_eq(e->weight, AQ_WEIGHT_MAX);
	ck_assert_int_ge(e->enqueue_ns, d_before);
	ck_assert_int_le(e->enqueue_ns, d_after);

	/* The jobs themselves. */
	ojob_check_done(&a, fa, "spy: A");
	ck_assert_int_eq(aq_future_get(fb, NULL, 0), -ECANCELED);
	ck_assert_int_eq(b.calls, 0);
	ck_assert_int_eq(atomic_load(&b.destroyed), 1);
	aq_future_release(fb);
	ck_assert_int_eq(c.calls, 1);
	ojob_check_done(&d, fd, "spy: D");

	/* NULL is harmless for every accessor. */
	ck_assert_int_eq(aq_sched_job_priority(NULL), 0);
	ck_assert_uint_eq(aq_sched_job_group(NULL), 0);
	ck_assert_uint_eq(aq_sched_job_weight(NULL), 1);
	ck_assert_uint_eq(aq_sched_job_hint(NULL), 0);
	ck_assert_int_eq(aq_sched_job_enqueue_ns(NULL), 0);
	ck_assert_uint_eq(aq_sched_job_seq(NULL), 0);
	ck_assert_uint_eq(aq_sched_job_runs(NULL), 0);
	ck_assert_ptr_null(aq_sched_job_slots(NULL));
	th_gate_destroy(&h.gate);
}
END_TEST

/* ---- push failures ------------------------------------------------------ */

static int refuse_code; /* what refuse_some() returns */

/*
 * Refuses new jobs with an odd hint, and jobs with hint 100 when they come
 * back after a yield.
 */
static int refuse_some(aq_sched_job *job)
{
	uint64_t hint = aq_sched_job_hint(job);

	if (hint == GATE_HINT)
		return 0;
	if (hint == 100)
		return aq_sched_job_runs(job) > 0 ? refuse_code : 0;
	return (hint % 2) ? refuse_code : 0;
}

/*
 * Jobs the policy refuses resolve FAILED with the positive code push gave,
 * never run, and get their arg_destroy once; the others run in order. Loop
 * index 0: -ENOMEM, 1: -EPERM (the code is the policy's, not always ENOMEM).
 */
START_TEST(test_push_refused)
{
	static const int codes[] = { ENOMEM, EPERM };
	enum { N = 10 };
	static struct spy spy;
	struct aq_job_opts gate_opts = { .hint = GATE_HINT };
	struct ojob jobs[N], again, loose;
	aq_future *futs[N], *fagain;
	struct order order;
	struct hold h;
	aq_pool *pool;
	int code = codes[_i];
	const int want[] = { 0, 2, 4, 6, 8, 100 };

	spy_reset(&spy);
	spy.verdict = refuse_some;
	refuse_code = -code;
	pool = make_pool(&spy_ops, &spy, 1, 0, 0);
	order_init(&order);
	hold_worker_opts(pool, &h, &gate_opts);
	for (int i = 0; i < N; i++) {
		struct aq_job_opts opts = { .hint = (uint64_t)i,
					    .arg_destroy = ojob_destroy };

		ojob_init(&jobs[i], &order, i, 0);
		ck_assert_int_eq(aq_submit(pool, ojob_fn, &jobs[i], &opts,
					   &futs[i]),
				 0);
	}
	/* Yields once: refused when it comes back. */
	{
		struct aq_job_opts opts = { .hint = 100,
					    .arg_destroy = ojob_destroy };

		ojob_init(&again, &order, 100, 1);
		ck_assert_int_eq(aq_submit(pool, ojob_fn, &again, &opts,
					   &fagain),
				 0);
	}
	/* Fire-and-forget, refused: still destroyed once. */
	{
		struct aq_job_opts opts = { .hint = 11,
					    .arg_destroy = ojob_destroy };

		ojob_init(&loose, &order, 11, 0);
		ck_assert_int_eq(aq_submit(pool, ojob_fn, &loose, &opts, NULL),
				 0);
	}
	release_worker(&h);
	aq_pool_destroy(pool);

	/* "again" ran once, was refused on its way back: the order shows
	 * one call of it only. */
	order_expect(&order, want, 6, "refused pushes");
	for (int i = 0; i < N; i++) {
		void *result = NULL;
		int rc = aq_future_get(futs[i], &result, 0);

		if (i % 2) {
			ck_assert_msg(rc == code,
				      "refused job %d: aq_future_get %d, "
				      "expected %d (the code push returned, "
				      "made positive)",
				      i, rc, code);
			ck_assert_int_eq(aq_future_state(futs[i]),
					 AQ_STATE_FAILED);
			ck_assert_int_eq(jobs[i].calls, 0);
			ck_assert_int_eq(atomic_load(&jobs[i].destroyed), 1);
			aq_future_release(futs[i]);
		} else {
			ojob_check_done(&jobs[i], futs[i], "accepted push");
		}
	}
	ck_assert_msg(aq_future_get(fagain, NULL, 0) == code,
		      "job refused after a yield: %d, expected %d",
		      aq_future_get(fagain, NULL, 0), code);
	ck_assert_int_eq(aq_future_state(fagain), AQ_STATE_FAILED);
	ck_assert_int_eq(again.calls, 1);
	ck_assert_int_eq(atomic_load(&again.destroyed), 1);
	aq_future_release(fagain);
	ck_assert_int_eq(loose.calls, 0);
	ck_assert_int_eq(atomic_load(&loose.destroyed), 1);
	/* 5 new jobs and 1 return refused; nothing refused is popped. */
	ck_assert_int_eq(spy.refused, N / 2 + 2);
	spy_expect_clean(&spy, "refusing spy");
	th_gate_destroy(&h.gate);
}
END_TEST

/* ---- init failures and bad ops tables ----------------------------------- */

/*
 * init's error comes back from aq_pool_create(), *pool is left alone and
 * destroy is never called (there is no state to destroy). A value that is
 * not a negative errno is the policy's bug: -EINVAL.
 */
START_TEST(test_init_fails)
{
	static const struct {
		int init_rc, want;
	} cases[] = {
		{ -EPERM, -EPERM },
		{ -ENOMEM, -ENOMEM },
		{ -ENOTSUP, -ENOTSUP },
		{ 7, -EINVAL },
		{ -5000, -EINVAL },
	};
	static int sentinel_obj;
	aq_pool *const sentinel = (aq_pool *)(void *)&sentinel_obj;
	static struct spy spy;

	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		struct aq_pool_config cfg = { .workers = 2,
					      .sched = &spy_ops,
					      .sched_params = &spy };
		aq_pool *pool = sentinel;
		int rc;

		spy_reset(&spy);
		spy.init_rc = cases[i].init_rc;
		rc = aq_pool_create(&pool, &cfg);
		ck_assert_msg(rc == cases[i].want,
			      "init returned %d: aq_pool_create %d, expected "
			      "%d",
			      cases[i].init_rc, rc, cases[i].want);
		ck_assert_ptr_eq(pool, sentinel);
		ck_assert_int_eq(atomic_load(&spy.inits), 1);
		ck_assert_int_eq(atomic_load(&spy.destroys), 0);
	}
}
END_TEST

/* init succeeded, then a worker failed to start: destroy runs exactly once
 * (and the sanitizer run sees no leak). */
START_TEST(test_init_then_thread_fails)
{
	static struct spy spy;
	struct aq_pool_config cfg = { .workers = 3,
				      .sched = &spy_ops,
				      .sched_params = &spy };

	for (long nth = 1; nth <= 3; nth++) {
		aq_pool *pool = NULL;

		spy_reset(&spy);
		aq__fault_arm(AQ__FAULT_THREAD, nth);
		ck_assert_int_eq(aq_pool_create(&pool, &cfg), -EAGAIN);
		aq__fault_arm(AQ__FAULT_THREAD, 0);
		ck_assert_ptr_null(pool);
		ck_assert_int_eq(atomic_load(&spy.inits), 1);
		ck_assert_int_eq(atomic_load(&spy.destroys), 1);
	}
}
END_TEST

/*
 * Every allocation of a create with a built-in policy can fail: -ENOMEM,
 * *pool untouched, nothing leaked (the policy's own state included).
 */
START_TEST(test_create_alloc_faults)
{
	static const struct aq_sched_priority_params aging = { .aging_ns =
								       AGE_NS };
	const struct aq_sched_ops *ops = _i ? aq_sched_priority()
					    : aq_sched_fifo();
	struct aq_pool_config cfg = { .workers = 2,
				      .sched = ops,
				      .sched_params = _i ? &aging : NULL };

	/* pool, ring cells, record cache, thread table, the policy's state */
	ck_assert_msg(th_create_alloc_faults(&cfg) >= 5, "%s", ops->name);
}
END_TEST

/* init, push, pop and destroy are required; done is optional. */
START_TEST(test_ops_required)
{
	static int sentinel_obj;
	aq_pool *const sentinel = (aq_pool *)(void *)&sentinel_obj;
	struct aq_sched_ops bad[4];
	struct ojob j;
	struct order order;
	aq_future *fut;
	aq_pool *pool;

	for (int i = 0; i < 4; i++)
		bad[i] = lifo_ops;
	bad[0].init = NULL;
	bad[1].push = NULL;
	bad[2].pop = NULL;
	bad[3].destroy = NULL;
	for (int i = 0; i < 4; i++) {
		struct aq_pool_config cfg = { .workers = 1, .sched = &bad[i] };

		pool = sentinel;
		ck_assert_msg(aq_pool_create(&pool, &cfg) == -EINVAL,
			      "ops without %s accepted",
			      (const char *[]){ "init", "push", "pop",
						"destroy" }[i]);
		ck_assert_ptr_eq(pool, sentinel);
	}
	/* lifo_ops has no done(): a complete, working policy. */
	ck_assert(lifo_ops.done == NULL);
	pool = make_pool(&lifo_ops, NULL, 1, 0, 0);
	order_init(&order);
	ojob_init(&j, &order, 1, 2);
	submit_ojob(pool, &j, 0, &fut);
	ojob_check_done(&j, fut, "policy without done()");
	aq_pool_destroy(pool);
}
END_TEST

/* ---- option and parameter validation ------------------------------------ */

static atomic_int bad_destroyed;

static void count_destroy(void *arg)
{
	(void)arg;
	atomic_fetch_add(&bad_destroyed, 1);
}

/* Priority and weight out of range: -EINVAL, whatever the pool's policy,
 * *fut NULL and no arg_destroy. The bounds themselves are accepted. */
START_TEST(test_opts_range)
{
	static const struct {
		int priority;
		unsigned weight;
		const char *what;
	} bad[] = {
		{ AQ_PRIORITY_MIN - 1, 0, "priority MIN - 1" },
		{ AQ_PRIORITY_MAX + 1, 0, "priority MAX + 1" },
		{ INT_MIN, 0, "priority INT_MIN" },
		{ INT_MAX, 0, "priority INT_MAX" },
		{ 0, AQ_WEIGHT_MAX + 1, "weight MAX + 1" },
		{ 0, UINT_MAX, "weight UINT_MAX" },
	}, good[] = {
		{ AQ_PRIORITY_MIN, 0, "priority MIN" },
		{ AQ_PRIORITY_MAX, AQ_WEIGHT_MAX, "priority MAX, weight MAX" },
		{ 0, 1, "weight 1" },
	};
	aq_pool *pool = kind_pool(_i, 1, 0, 0);
	struct ojob jobs[3];
	struct order order;

	atomic_init(&bad_destroyed, 0);
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		struct aq_job_opts opts = { .priority = bad[i].priority,
					    .weight = bad[i].weight,
					    .arg_destroy = count_destroy };
		aq_future *fut = (aq_future *)(uintptr_t)0x1;
		int rc = aq_submit(pool, th_count_job, NULL, &opts, &fut);

		ck_assert_msg(rc == -EINVAL, "%s, %s: aq_submit %d",
			      kind_names[_i], bad[i].what, rc);
		ck_assert_ptr_null(fut);
	}
	ck_assert_int_eq(atomic_load(&bad_destroyed), 0);
	order_init(&order);
	for (int i = 0; i < 3; i++) {
		struct aq_job_opts opts = { .priority = good[i].priority,
					    .weight = good[i].weight,
					    .arg_destroy = ojob_destroy };
		aq_future *fut;

		ojob_init(&jobs[i], &order, i, 0);
		ck_assert_msg(aq_submit(pool, ojob_fn, &jobs[i], &opts, &fut) ==
				      0,
			      "%s, %s refused", kind_names[_i], good[i].what);
		ojob_check_done(&jobs[i], fut, good[i].what);
	}
	aq_pool_destroy(pool);
}
END_TEST

/* Negative or oversized aging, and a negative slice: aq_pool_create
 * -EINVAL. Aging up to 1000 s is accepted. */
START_TEST(test_priority_params)
{
	static const int64_t bad_aging[] = {
		-1, INT64_MIN, INT64_C(1000) * 1000000000 + 1, INT64_MAX
	};
	static const int64_t good_aging[] = { 0, 1, AGE_NS,
					      INT64_C(1000) * 1000000000 };
	static int sentinel_obj;
	aq_pool *const sentinel = (aq_pool *)(void *)&sentinel_obj;

	for (size_t i = 0; i < sizeof(bad_aging) / sizeof(bad_aging[0]); i++) {
		struct aq_sched_priority_params p = { .aging_ns =
							      bad_aging[i] };
		struct aq_pool_config cfg = { .workers = 1,
					      .sched = aq_sched_priority(),
					      .sched_params = &p };
		aq_pool *pool = sentinel;

		ck_assert_msg(aq_pool_create(&pool, &cfg) == -EINVAL,
			      "aging_ns %lld accepted",
			      (long long)bad_aging[i]);
		ck_assert_ptr_eq(pool, sentinel);
	}
	for (size_t i = 0; i < sizeof(good_aging) / sizeof(good_aging[0]);
	     i++) {
		struct aq_sched_priority_params p = { .aging_ns =
							      good_aging[i] };
		struct ojob j;
		struct order order;
		aq_future *fut;
		aq_pool *pool = make_pool(aq_sched_priority(), &p, 1, 0, 0);

		order_init(&order);
		ojob_init(&j, &order, 1, 0);
		submit_ojob(pool, &j, AQ_PRIORITY_MIN, &fut);
		ojob_check_done(&j, fut, "aging bounds");
		aq_pool_destroy(pool);
	}
	for (int kind = 0; kind < NKINDS; kind++) {
		struct aq_pool_config cfg = { .workers = 1,
					      .sched = kind_ops(kind),
					      .slice_ns = -1 };
		aq_pool *pool = sentinel;

		ck_assert_int_eq(aq_pool_create(&pool, &cfg), -EINVAL);
		ck_assert_ptr_eq(pool, sentinel);
	}
}
END_TEST

/* ---- AQ_YIELD ----------------------------------------------------------- */

/*
 * Y yields 3 times, Z twice; A and B do not. With one worker a yielding
 * job goes to the tail each time:
 *   [Y Z A B] -> Y1 [Z A B Y] -> Z1 [A B Y Z] -> A, B -> Y2 [Z Y] -> Z2
 *   [Y Z] -> Y3 [Z Y] -> Z3 (done) -> Y4 (done)
 * and each finishes with its full result, arg_destroy once, after its last
 * call. The same in all three FIFO pools.
 */
START_TEST(test_yield_interleaves)
{
	static const int want[] = { 1, 2, 3, 4, 1, 2, 1, 2, 1 };
	static const int yields[] = { 3, 2, 0, 0 };
	struct ojob jobs[4];
	aq_future *futs[4];
	struct order order;
	struct hold h;
	aq_pool *pool = kind_pool(_i, 1, 0, 0);

	order_init(&order);
	hold_worker(pool, &h);
	for (int i = 0; i < 4; i++) {
		ojob_init(&jobs[i], &order, i + 1, yields[i]);
		submit_ojob(pool, &jobs[i], 0, &futs[i]);
	}
	release_worker(&h);
	for (int i = 0; i < 4; i++)
		ojob_check_done(&jobs[i], futs[i], kind_names[_i]);
	aq_pool_destroy(pool);
	order_expect(&order, want, 9, kind_names[_i]);
	th_gate_destroy(&h.gate);
}
END_TEST

/* The same with fire-and-forget jobs (no future, no options: in a FIFO
 * pool they travel in the ring as {fn, arg}). */
START_TEST(test_yield_inline)
{
	static const int want[] = { 1, 2, 1, 1 };
	struct ojob y, a;
	struct order order;
	struct hold h;
	aq_pool *pool = kind_pool(_i, 1, 0, 0);

	order_init(&order);
	hold_worker(pool, &h);
	ojob_init(&y, &order, 1, 2);
	ojob_init(&a, &order, 2, 0);
	ck_assert_int_eq(aq_submit(pool, ojob_fn, &y, NULL, NULL), 0);
	ck_assert_int_eq(aq_submit(pool, ojob_fn, &a, NULL, NULL), 0);
	release_worker(&h);
	/* Wait for all four calls before destroying: a destroy that closes
	 * the ring while Y runs makes its requeue fail, and a FIFO pool then
	 * calls it again at once (aq_sched_fifo(3)), which is not the order
	 * under test. */
	ck_assert_msg(th_poll_int_ge(&order.n, 4), "only %d calls",
		      atomic_load(&order.n));
	aq_pool_destroy(pool);
	order_expect(&order, want, 4, kind_names[_i]);
	ck_assert_int_eq(y.calls, 3);
	ck_assert_int_eq(y.sum, 6);
	th_gate_destroy(&h.gate);
}
END_TEST

/* A job that passes a gate in its first call, then yields once. */
struct gated_yield {
	struct th_gate gate;
	struct order *order;
	int calls;
};

static int gated_yield_fn(void *arg, void **result)
{
	struct gated_yield *g = arg;

	order_add(g->order, 1);
	if (++g->calls == 1) {
		th_gate_pass(&g->gate);
		return AQ_YIELD;
	}
	*result = (void *)(intptr_t)g->calls;
	return 0;
}

/*
 * The tail means behind every job accepted before the yield, also those
 * that arrived while the yielding job ran: Y runs, F1 and F2 are submitted
 * meanwhile, Y yields; the order is Y F1 F2 Y in all three FIFO pools.
 */
START_TEST(test_yield_behind_later_arrivals)
{
	static const int want[] = { 1, 2, 3, 1 };
	struct gated_yield y;
	struct ojob f[2];
	aq_future *fy, *ff[2];
	struct order order;
	void *result;
	aq_pool *pool = kind_pool(_i, 1, 0, 0);

	order_init(&order);
	th_gate_init(&y.gate);
	y.order = &order;
	y.calls = 0;
	ck_assert_int_eq(aq_submit(pool, gated_yield_fn, &y, NULL, &fy), 0);
	ck_assert(th_gate_wait_entered(&y.gate, 1));
	for (int i = 0; i < 2; i++) {
		ojob_init(&f[i], &order, i + 2, 0);
		submit_ojob(pool, &f[i], 0, &ff[i]);
	}
	th_gate_open(&y.gate);
	ck_assert_int_eq(aq_future_get(fy, &result, -1), 0);
	ck_assert_ptr_eq(result, (void *)(intptr_t)2);
	aq_future_release(fy);
	for (int i = 0; i < 2; i++)
		ojob_check_done(&f[i], ff[i], kind_names[_i]);
	aq_pool_destroy(pool);
	order_expect(&order, want, 4, kind_names[_i]);
	th_gate_destroy(&y.gate);
}
END_TEST

/*
 * A yielded job waiting for its turn is PENDING and can be cancelled: 0,
 * arg_destroy once on the cancelling thread, -ECANCELED, and it is never
 * called again. Y would otherwise yield forever (up to a safety bound).
 */
START_TEST(test_yield_cancel_waiting)
{
	struct ojob y;
	struct th_gate gate2;
	aq_future *fy, *fg2;
	struct order order;
	struct hold h;
	aq_pool *pool = kind_pool(_i, 1, 0, 0);

	order_init(&order);
	th_gate_init(&gate2);
	hold_worker(pool, &h);
	ojob_init(&y, &order, 1, 1000);
	submit_ojob(pool, &y, 0, &fy);
	ck_assert_int_eq(aq_submit(pool, th_gate_job, &gate2, NULL, &fg2), 0);
	/* Y runs once and yields behind gate2's job, which then holds the
	 * worker. */
	release_worker(&h);
	ck_assert(th_gate_wait_entered(&gate2, 1));
	ck_assert_int_eq(y.calls, 1);
	ck_assert_int_eq(aq_future_state(fy), AQ_STATE_PENDING);
	ck_assert_int_eq(aq_future_cancel(fy), 0);
	ck_assert_int_eq(aq_future_state(fy), AQ_STATE_CANCELLED);
	ck_assert_int_eq(atomic_load(&y.destroyed), 1);
	ck_assert(pthread_equal(y.destroy_thread, pthread_self()));
	ck_assert_int_eq(aq_future_cancel(fy), -EALREADY);
	th_gate_open(&gate2);
	ck_assert_int_eq(aq_future_get(fg2, NULL, -1), 0);
	aq_future_release(fg2);
	aq_pool_destroy(pool);
	ck_assert_int_eq(aq_future_get(fy, NULL, 0), -ECANCELED);
	aq_future_release(fy);
	ck_assert_msg(y.calls == 1, "%s: the cancelled job ran %d times",
		      kind_names[_i], y.calls);
	ck_assert_int_eq(atomic_load(&y.destroyed), 1);
	th_gate_destroy(&gate2);
	th_gate_destroy(&h.gate);
}
END_TEST

/* Fills its pool's ring (capacity 2) from inside, then yields: with no
 * room at the tail it is called again at once, before the fillers. A job's
 * aq_submit() would go to its worker's deque; aq_submit_batch() of
 * fire-and-forget jobs always goes to the ring. */
struct filler {
	aq_pool *pool;
	struct order *order;
	struct ojob fill[4];
	int calls;
	int filled;       /* fillers the ring took in the first call */
	int full_again;   /* the ring was still full in the second call */
};

static int filler_fn(void *arg, void **result)
{
	struct filler *f = arg;

	(void)result;
	order_add(f->order, 1);
	if (++f->calls == 1) {
		while (f->filled < 4 &&
		       aq_submit_batch(f->pool,
				       &(struct aq_job){ ojob_fn,
							 &f->fill[f->filled] },
				       1, NULL, NULL) == 1)
			f->filled++;
		return AQ_YIELD;
	}
	f->full_again = aq_submit_batch(f->pool,
					&(struct aq_job){ ojob_fn, &f->fill[3] },
					1, NULL, NULL) == -EAGAIN;
	return 0;
}

START_TEST(test_yield_full_ring)
{
	static const int want[] = { 1, 1, 2, 3 };
	static struct filler f;
	static struct order order;
	aq_future *fut;

	memset(&f, 0, sizeof(f));
	order_init(&order);
	f.pool = kind_pool(KIND_RING, 1, 2, 0);
	f.order = &order;
	for (int i = 0; i < 4; i++)
		ojob_init(&f.fill[i], &order, i + 2, 0);
	ck_assert_int_eq(aq_submit(f.pool, filler_fn, &f, NULL, &fut), 0);
	ck_assert_int_eq(aq_future_get(fut, NULL, -1), 0);
	aq_future_release(fut);
	aq_pool_destroy(f.pool);
	ck_assert_int_eq(f.filled, 2);
	ck_assert_int_eq(f.calls, 2);
	ck_assert_msg(f.full_again, "the ring had room again in the second "
				    "call: the job was not called at once");
	order_expect(&order, want, 4, "yield on a full ring");
}
END_TEST

/*
 * A job that yields while its pool shuts down. Its first call waits until
 * the ring is closed (submits fail with -ESHUTDOWN), then yields. Drain:
 * it is called again and succeeds (in a FIFO pool at once, the closed ring
 * having no room). Cancel: it is queued, so it never runs again:
 * CANCELLED, arg_destroy once. Loop index: kind * 2 + cancel.
 */
struct closing {
	aq_pool *pool;
	int calls;
	atomic_int extra_ran;  /* jobs it submitted that ran */
	int extra_accepted;    /* jobs it submitted that were accepted */
	int saw_shutdown;
	int extra_ran_at_second; /* extra_ran when called again */
	atomic_int destroyed;
};

static int closing_extra_fn(void *arg, void **result)
{
	(void)result;
	atomic_fetch_add(&((struct closing *)arg)->extra_ran, 1);
	return 0;
}

static void closing_destroy(void *arg)
{
	atomic_fetch_add(&((struct closing *)arg)->destroyed, 1);
}

static int closing_fn(void *arg, void **result)
{
	struct closing *c = arg;
	int64_t deadline = th_now_ns() + th_long_ns();

	(void)result;
	if (++c->calls > 1) {
		c->extra_ran_at_second = atomic_load(&c->extra_ran);
		return 0;
	}
	while (th_now_ns() < deadline) {
		int rc = aq_submit(c->pool, closing_extra_fn, c, NULL, NULL);

		if (rc == 0) {
			c->extra_accepted++;
		} else if (rc == -ESHUTDOWN) {
			c->saw_shutdown = 1;
			break;
		} else {
			sched_yield();
		}
	}
	return AQ_YIELD;
}

START_TEST(test_yield_at_shutdown)
{
	int kind = _i / 2;
	bool cancel = _i % 2;
	struct aq_job_opts opts = { .arg_destroy = closing_destroy };
	static struct closing c;
	aq_future *fut;
	int rc;

	memset(&c, 0, sizeof(c));
	atomic_init(&c.extra_ran, 0);
	atomic_init(&c.destroyed, 0);
	c.pool = kind_pool(kind, 1, 64, 0);
	ck_assert_int_eq(aq_submit(c.pool, closing_fn, &c, &opts, &fut), 0);
	ck_assert(th_poll_state(fut, AQ_STATE_RUNNING));
	ck_assert_int_eq(aq_pool_shutdown(c.pool, cancel ? AQ_SHUTDOWN_CANCEL
							  : AQ_SHUTDOWN_DRAIN),
			 0);
	ck_assert_int_eq(c.saw_shutdown, 1);
	rc = aq_future_get(fut, NULL, 0);
	if (cancel) {
		ck_assert_msg(rc == -ECANCELED,
			      "%s: yielded job at a cancelling shutdown: %d",
			      kind_names[kind], rc);
		ck_assert_int_eq(c.calls, 1);
		ck_assert_int_eq(atomic_load(&c.extra_ran), 0);
	} else {
		ck_assert_msg(rc == 0, "%s: yielded job at a draining "
				       "shutdown: %d",
			      kind_names[kind], rc);
		ck_assert_int_eq(c.calls, 2);
		ck_assert_int_eq(atomic_load(&c.extra_ran), c.extra_accepted);
		if (kind == KIND_RING)
			ck_assert_msg(c.extra_ran_at_second == 0,
				      "closed ring: the job was not called "
				      "again at once (%d jobs ran first)",
				      c.extra_ran_at_second);
	}
	ck_assert_int_eq(atomic_load(&c.destroyed), 1);
	aq_future_release(fut);
	aq_pool_destroy(c.pool);
}
END_TEST

/* ---- aq_current_yield_due() ------------------------------------------------- */

START_TEST(test_yield_due_outside_job)
{
	aq_pool *pool = kind_pool(KIND_PRIO, 1, 0, INT64_C(1));
	struct hold h;

	ck_assert_int_eq(aq_current_yield_due(), 0);
	/* Not even while the pool is busy and jobs wait. */
	hold_worker(pool, &h);
	ck_assert_int_eq(aq_submit(pool, th_gate_job, &h.gate, NULL, NULL), 0);
	th_sleep_ms(2);
	ck_assert_int_eq(aq_current_yield_due(), 0);
	release_worker(&h);
	aq_pool_destroy(pool);
	ck_assert_int_eq(aq_current_yield_due(), 0);
	th_gate_destroy(&h.gate);
}
END_TEST

#define SLICE_NS AGE_NS /* 1 ms */

/* Asks aq_current_yield_due() in a loop: until it turns true (then yields
 * once), or for spin_ns counting true answers. */
struct due_job {
	struct order *order;
	int64_t spin_ns;     /* 0: wait until due; else spin this long */
	int calls;
	int first_answer[2]; /* the first answer in calls 1 and 2 */
	int became_due;
	int64_t started;     /* clock before the first question, call 1 */
	int64_t due_at;      /* clock when it turned true */
	int64_t spun;        /* how long it spun */
	long true_answers;
};

static int due_fn(void *arg, void **result)
{
	struct due_job *d = arg;
	int64_t bound = th_long_ns();
	int64_t t0 = th_now_ns();

	(void)result;
	order_add(d->order, 1);
	if (++d->calls > 1) {
		d->first_answer[1] = aq_current_yield_due();
		return 0;
	}
	d->started = t0;
	d->first_answer[0] = aq_current_yield_due();
	for (;;) {
		int64_t now;
		int due = aq_current_yield_due();

		now = th_now_ns();
		if (d->spin_ns) {
			d->true_answers += due != 0;
			if (now - t0 >= d->spin_ns) {
				d->spun = now - t0;
				return 0;
			}
		} else if (due) {
			d->became_due = 1;
			d->due_at = now;
			return AQ_YIELD;
		} else if (now - t0 > bound) {
			return 0;
		}
	}
}

/*
 * Another job waits: within a generous bound aq_current_yield_due() turns
 * true, no sooner than a slice after the first question; the job yields,
 * the other runs, and in the next call the first answer is false again
 * (a new slice).
 */
START_TEST(test_yield_due_others_wait)
{
	static const int want[] = { 1, 2, 1 };
	struct due_job d;
	struct ojob w;
	struct order order;
	struct hold h;
	aq_future *fd, *fw;
	aq_pool *pool = kind_pool(_i, 1, 0, SLICE_NS);

	memset(&d, 0, sizeof(d));
	order_init(&order);
	d.order = &order;
	ojob_init(&w, &order, 2, 0);
	hold_worker(pool, &h);
	ck_assert_int_eq(aq_submit(pool, due_fn, &d, NULL, &fd), 0);
	submit_ojob(pool, &w, 0, &fw);
	release_worker(&h);
	ck_assert_int_eq(aq_future_get(fd, NULL, -1), 0);
	aq_future_release(fd);
	ojob_check_done(&w, fw, kind_names[_i]);
	aq_pool_destroy(pool);
	ck_assert_int_eq(d.first_answer[0], 0);
	ck_assert_msg(d.became_due, "%s: never due in %.0f s with a job "
				    "waiting",
		      kind_names[_i], th_poll_seconds());
	ck_assert_msg(d.due_at - d.started >= SLICE_NS,
		      "%s: due after %lld ns, before the slice of %lld ns",
		      kind_names[_i], (long long)(d.due_at - d.started),
		      (long long)SLICE_NS);
	ck_assert_int_eq(d.first_answer[1], 0);
	order_expect(&order, want, 3, kind_names[_i]);
	th_gate_destroy(&h.gate);
}
END_TEST

/* Nothing else waits: never due, however long the job runs. */
START_TEST(test_yield_due_alone)
{
	struct due_job d;
	struct order order;
	aq_future *fd;
	aq_pool *pool = kind_pool(_i, 1, 0, SLICE_NS);

	memset(&d, 0, sizeof(d));
	order_init(&order);
	d.order = &order;
	d.spin_ns = 20 * SLICE_NS;
	ck_assert_int_eq(aq_submit(pool, due_fn, &d, NULL, &fd), 0);
	ck_assert_int_eq(aq_future_get(fd, NULL, -1), 0);
	aq_future_release(fd);
	aq_pool_destroy(pool);
	ck_assert_int_ge(d.spun, 20 * SLICE_NS);
	ck_assert_msg(d.true_answers == 0,
		      "%s: due %ld times with nothing else waiting",
		      kind_names[_i], d.true_answers);
}
END_TEST

/* Others wait, but the slice (an hour) is not over: never due. */
START_TEST(test_yield_due_long_slice)
{
	struct due_job d;
	struct ojob w;
	struct order order;
	struct hold h;
	aq_future *fd, *fw;
	aq_pool *pool = kind_pool(_i, 1, 0, INT64_C(3600) * 1000000000);

	memset(&d, 0, sizeof(d));
	order_init(&order);
	d.order = &order;
	d.spin_ns = 5 * SLICE_NS;
	ojob_init(&w, &order, 2, 0);
	hold_worker(pool, &h);
	ck_assert_int_eq(aq_submit(pool, due_fn, &d, NULL, &fd), 0);
	submit_ojob(pool, &w, 0, &fw);
	release_worker(&h);
	ck_assert_int_eq(aq_future_get(fd, NULL, -1), 0);
	aq_future_release(fd);
	ojob_check_done(&w, fw, kind_names[_i]);
	aq_pool_destroy(pool);
	ck_assert_int_eq(d.true_answers, 0);
	th_gate_destroy(&h.gate);
}
END_TEST

/* ---- conservation ------------------------------------------------------- */

/*
 * 4 producers x 5000 jobs with futures on 2 workers and a 256-slot ring;
 * every tenth job yields once. Drain: every future SUCCEEDED with its own
 * result, each job completed once, arg_destroy once. Cancel (shutdown once
 * half the jobs are in): succeeded + cancelled == accepted, a refused
 * submit left its job alone, and arg_destroy ran once for every accepted
 * job.
 */
#define CONS_PRODUCERS 4
#define CONS_PER 5000
#define CONS_TOTAL (CONS_PRODUCERS * CONS_PER)

struct cons_producer {
	pthread_t tid;
	aq_pool *pool;
	int first;          /* index of its first job */
	bool random_prio;
	aq_future *futs[CONS_PER];
	int accepted;       /* futs[0 .. accepted) are futures */
	int shut_out;       /* it met -ESHUTDOWN */
	int errors;         /* any other refusal */
	int last_error;
};

static struct th_cjob cjobs[CONS_TOTAL];
static struct cons_producer producers[CONS_PRODUCERS];
static atomic_int cons_submitted;

static bool cjob_yields(int index)
{
	return index % 10 == 0;
}

static void *cons_producer_main(void *arg)
{
	struct cons_producer *p = arg;
	uint32_t rng = 2463534242u ^ (uint32_t)p->first;

	for (int i = 0; i < CONS_PER; i++) {
		struct th_cjob *j = &cjobs[p->first + i];
		struct aq_job_opts opts = { .flags = AQ_JOB_BLOCK,
					    .timeout_ns = th_long_ns(),
					    .arg_destroy = th_cjob_destroy,
					    .hint = (uint64_t)j->index,
					    .group = (uint64_t)(j->index % 3) };
		int rc;

		if (p->random_prio)
			opts.priority =
				AQ_PRIORITY_MIN +
				(int)(th_xorshift32(&rng) %
				      (AQ_PRIORITY_MAX - AQ_PRIORITY_MIN + 1));
		rc = aq_submit(p->pool, th_cjob_fn, j, &opts, &p->futs[i]);
		if (rc == -ESHUTDOWN) {
			p->shut_out = 1;
			break;
		}
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

static const struct aq_sched_priority_params cons_aging = { .aging_ns =
								    1000 };
static struct spy cons_spy;

static const struct cons_case {
	const char *name;
	const struct aq_sched_ops *(*ops)(void);
	const void *params;
	bool random_prio;
	bool cancel;
} cons_cases[] = {
	{ "LIFO (user policy), drain", lifo_sched, NULL, false, false },
	{ "LIFO (user policy), cancel", lifo_sched, NULL, false, true },
	{ "priority, drain", aq_sched_priority, NULL, true, false },
	{ "priority, cancel", aq_sched_priority, NULL, true, true },
	{ "priority aging 1 us, drain", aq_sched_priority, &cons_aging, true,
	  false },
	{ "priority aging 1 us, cancel", aq_sched_priority, &cons_aging, true,
	  true },
	{ "aq_sched_fifo, drain", aq_sched_fifo, NULL, false, false },
	{ "aq_sched_fifo, cancel", aq_sched_fifo, NULL, false, true },
	{ "spy, drain", spy_sched, &cons_spy, true, false },
	{ "spy, cancel", spy_sched, &cons_spy, true, true },
};

START_TEST(test_conservation)
{
	const struct cons_case *cc = &cons_cases[_i];
	long succeeded = 0, cancelled = 0, accepted = 0;
	aq_pool *pool;

	for (int i = 0; i < CONS_TOTAL; i++) {
		cjobs[i].index = i;
		cjobs[i].yields_left = cjob_yields(i) ? 1 : 0;
		atomic_init(&cjobs[i].calls, 0);
		atomic_init(&cjobs[i].completions, 0);
		atomic_init(&cjobs[i].destroyed, 0);
	}
	atomic_init(&cons_submitted, 0);
	spy_reset(&cons_spy);
	pool = make_pool(cc->ops(), cc->params, 2, 256, 0);
	for (int t = 0; t < CONS_PRODUCERS; t++) {
		struct cons_producer *p = &producers[t];

		memset(p, 0, sizeof(*p));
		p->pool = pool;
		p->first = t * CONS_PER;
		p->random_prio = cc->random_prio;
		ck_assert_int_eq(pthread_create(&p->tid, NULL,
						cons_producer_main, p),
				 0);
	}
	if (cc->cancel) {
		ck_assert(th_poll_int_ge(&cons_submitted, CONS_TOTAL / 2));
		ck_assert_int_eq(aq_pool_shutdown(pool, AQ_SHUTDOWN_CANCEL), 0);
	}
	for (int t = 0; t < CONS_PRODUCERS; t++)
		pthread_join(producers[t].tid, NULL);
	aq_pool_destroy(pool);

	for (int t = 0; t < CONS_PRODUCERS; t++) {
		struct cons_producer *p = &producers[t];

		ck_assert_msg(p->errors == 0, "%s: producer %d: submit %d",
			      cc->name, t, p->last_error);
		if (!cc->cancel)
			ck_assert_int_eq(p->accepted, CONS_PER);
		for (int i = 0; i < CONS_PER; i++) {
			struct th_cjob *j = &cjobs[p->first + i];
			int want_calls = cjob_yields(j->index) ? 2 : 1;
			void *result = NULL;
			int rc;

			if (i >= p->accepted) {
				ck_assert_msg(atomic_load(&j->calls) == 0 &&
						      atomic_load(
							      &j->destroyed) ==
							      0,
					      "%s: refused job %d ran or was "
					      "destroyed",
					      cc->name, j->index);
				continue;
			}
			accepted++;
			ck_assert_msg(atomic_load(&j->destroyed) == 1,
				      "%s: job %d: arg_destroy ran %d times",
				      cc->name, j->index,
				      atomic_load(&j->destroyed));
			rc = aq_future_get(p->futs[i], &result, 0);
			if (rc == 0) {
				ck_assert_ptr_eq(result,
						 (void *)(intptr_t)(j->index +
								    1));
				ck_assert_int_eq(aq_future_state(p->futs[i]),
						 AQ_STATE_SUCCEEDED);
				ck_assert_msg(atomic_load(&j->completions) ==
							      1 &&
						      atomic_load(&j->calls) ==
							      want_calls,
					      "%s: job %d completed %d times "
					      "in %d calls",
					      cc->name, j->index,
					      atomic_load(&j->completions),
					      atomic_load(&j->calls));
				succeeded++;
			} else {
				ck_assert_msg(cc->cancel && rc == -ECANCELED,
					      "%s: job %d: aq_future_get %d",
					      cc->name, j->index, rc);
				ck_assert_int_eq(aq_future_state(p->futs[i]),
						 AQ_STATE_CANCELLED);
				ck_assert_msg(atomic_load(&j->completions) ==
							      0 &&
						      atomic_load(&j->calls) <
							      want_calls,
					      "%s: cancelled job %d completed "
					      "%d times in %d calls",
					      cc->name, j->index,
					      atomic_load(&j->completions),
					      atomic_load(&j->calls));
				cancelled++;
			}
			aq_future_release(p->futs[i]);
		}
	}
	ck_assert_int_eq(succeeded + cancelled, accepted);
	if (!cc->cancel)
		ck_assert_int_eq(succeeded, CONS_TOTAL);
	else
		ck_assert_int_ge(accepted, CONS_TOTAL / 2);
	if (cc->ops == spy_sched)
		spy_expect_clean(&cons_spy, cc->name);
}
END_TEST

/* ---- nested waits under every policy ------------------------------------ */

/*
 * Regression (issue 11, item 4): with a scheduling policy a waiting job
 * could not run the job it waited for (the policy held it), so it helped
 * with whatever the policy gave it, the next parent, and so on; past a
 * helping depth of 64 the wait only slept, and one worker with 100 parents
 * each waiting for its own child hung for ever. Every way of scheduling,
 * none included, must finish them all.
 */
static const struct aq_sched_ops *nested_ops(int i)
{
	switch (i) {
	case 1:
		return aq_sched_fifo();
	case 2:
		return aq_sched_priority();
	case 3:
		return aq_sched_fair();
	default:
		return NULL; /* the ring alone */
	}
}

#define NESTED_KINDS 4

static aq_pool *nested_pool;

static int nested_child(void *arg, void **result)
{
	*result = (void *)((intptr_t)arg * 2 + 1);
	return 0;
}

/* Submits one child and waits for it, for ever. */
static int nested_parent(void *arg, void **result)
{
	aq_future *child;
	void *r = NULL;
	int rc;

	if (aq_submit(nested_pool, nested_child, arg, NULL, &child))
		return 100;
	rc = aq_future_get(child, &r, -1);
	aq_future_release(child);
	if (rc)
		return 101;
	*result = r;
	return 0;
}

START_TEST(test_nested_waits_policy_hang)
{
	enum { PARENTS = 100 };
	const struct aq_sched_ops *ops = nested_ops(_i);
	aq_future *futs[PARENTS];

	nested_pool = make_pool(ops, NULL, 1, 0, 0);
	for (intptr_t i = 0; i < PARENTS; i++)
		ck_assert_int_eq(aq_submit(nested_pool, nested_parent,
					   (void *)i, NULL, &futs[i]),
				 0);
	/* Generous, not tight: a hang fails here instead of hanging. */
	ck_assert_msg(aq_wait_all(futs, PARENTS, th_long_ns()) == 0,
		      "sched %s: 100 nested parents on 1 worker never finished",
		      ops ? ops->name : "NULL");
	for (intptr_t i = 0; i < PARENTS; i++) {
		void *r = NULL;

		ck_assert_int_eq(aq_future_get(futs[i], &r, 0), 0);
		ck_assert_ptr_eq(r, (void *)(i * 2 + 1));
		aq_future_release(futs[i]);
	}
	aq_pool_destroy(nested_pool);
}
END_TEST

/* A chain: each job submits the next level and waits for it. */
static int nested_chain(void *arg, void **result)
{
	intptr_t depth = (intptr_t)arg;
	aq_future *child;
	void *r = NULL;
	int rc;

	if (depth == 0) {
		*result = (void *)42;
		return 0;
	}
	if (aq_submit(nested_pool, nested_chain, (void *)(depth - 1), NULL,
		      &child))
		return 100;
	rc = aq_future_get(child, &r, -1);
	aq_future_release(child);
	if (rc)
		return 101;
	*result = r;
	return 0;
}

/* The same bug, deeper than the helping depth: a chain 200 jobs deep on 1
 * and on 2 workers (_i: policy in the low bits, workers - 1 above). */
START_TEST(test_nested_chain_policy_hang)
{
	const struct aq_sched_ops *ops = nested_ops(_i % NESTED_KINDS);
	unsigned workers = 1 + (unsigned)_i / NESTED_KINDS;
	aq_future *f;
	void *r = NULL;

	nested_pool = make_pool(ops, NULL, workers, 0, 0);
	ck_assert_int_eq(aq_submit(nested_pool, nested_chain, (void *)200,
				   NULL, &f),
			 0);
	ck_assert_msg(aq_future_get(f, &r, th_long_ns()) == 0,
		      "sched %s, %u workers: a chain 200 deep never finished",
		      ops ? ops->name : "NULL", workers);
	ck_assert_ptr_eq(r, (void *)42);
	aq_future_release(f);
	aq_pool_destroy(nested_pool);
}
END_TEST

/* ---- the suite ---------------------------------------------------------- */

Suite *sched_suite(void)
{
	Suite *s = suite_create("sched");
	TCase *prio = tcase_create("priority");
	TCase *order = tcase_create("order");
	TCase *yield = tcase_create("yield");
	TCase *ops = tcase_create("ops");
	TCase *cons = tcase_create("conservation");
	TCase *nested = tcase_create("nested");

	tcase_set_timeout(prio, TH_TIMEOUT);
	tcase_add_loop_test(prio, test_priority_strict_order, 0, 2);
	tcase_add_test(prio, test_priority_order_many);
	tcase_add_loop_test(prio, test_aging_overtakes, 0, 2);
	tcase_add_test(prio, test_aging_no_starvation);
	tcase_add_test(prio, test_priority_params);
	suite_add_tcase(s, prio);

	tcase_set_timeout(order, TH_TIMEOUT);
	tcase_add_test(order, test_fifo_ops_order);
	tcase_add_test(order, test_custom_lifo_order);
	suite_add_tcase(s, order);

	tcase_set_timeout(yield, TH_TIMEOUT);
	tcase_add_loop_test(yield, test_yield_interleaves, 0, NKINDS);
	tcase_add_loop_test(yield, test_yield_inline, 0, NKINDS);
	tcase_add_loop_test(yield, test_yield_behind_later_arrivals, 0, NKINDS);
	tcase_add_loop_test(yield, test_yield_cancel_waiting, 0, NKINDS);
	tcase_add_test(yield, test_yield_full_ring);
	tcase_add_loop_test(yield, test_yield_at_shutdown, 0, 2 * NKINDS);
	tcase_add_test(yield, test_yield_due_outside_job);
	tcase_add_loop_test(yield, test_yield_due_others_wait, 0, NKINDS);
	tcase_add_loop_test(yield, test_yield_due_alone, 0, NKINDS);
	tcase_add_loop_test(yield, test_yield_due_long_slice, 0, NKINDS);
	suite_add_tcase(s, yield);

	tcase_set_timeout(ops, TH_TIMEOUT);
	tcase_add_test(ops, test_ops_contract);
	tcase_add_loop_test(ops, test_push_refused, 0, 2);
	tcase_add_test(ops, test_init_fails);
	tcase_add_test(ops, test_init_then_thread_fails);
	tcase_add_loop_test(ops, test_create_alloc_faults, 0, 2);
	tcase_add_test(ops, test_ops_required);
	tcase_add_loop_test(ops, test_opts_range, 0, NKINDS);
	suite_add_tcase(s, ops);

	tcase_set_timeout(nested, TH_TIMEOUT);
	tcase_add_loop_test(nested, test_nested_waits_policy_hang, 0,
			    NESTED_KINDS);
	tcase_add_loop_test(nested, test_nested_chain_policy_hang, 0,
			    2 * NESTED_KINDS);
	suite_add_tcase(s, nested);

	tcase_set_timeout(cons, TH_TIMEOUT_STRESS);
	tcase_add_loop_test(cons, test_conservation, 0,
			    (int)(sizeof(cons_cases) / sizeof(cons_cases[0])));
	suite_add_tcase(s, cons);
	return s;
}
