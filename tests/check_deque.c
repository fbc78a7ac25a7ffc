/* SPDX-License-Identifier: MIT */
/* check_deque.c - the work-stealing deque (lib/deque.c) and fork-join on
 * it: nested submits, stealing, cancel, shutdown and counts. */
#include <errno.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <check.h>

#include "deque.h"
#include "fault.h"
#include "helpers.h"
#include "park.h"
#include "pool.h" /* the count of parked workers */
#include "suites.h"

/* Never called: its address tags items. */
static int tag_fn(void *a, void **r)
{
	(void)a;
	(void)r;
	return 0;
}

static struct aq__ring_item item_n(uintptr_t n)
{
	return (struct aq__ring_item){ tag_fn, (void *)n };
}

START_TEST(test_lifo_owner_fifo_thief)
{
	struct aq__deque *d = aq__deque_new();
	struct aq__ring_item out;

	ck_assert_ptr_nonnull(d);
	ck_assert(!aq__deque_take(d, &out));
	ck_assert(!aq__deque_steal(d, &out));
	ck_assert(!aq__deque_peek(d, &out));
	for (uintptr_t i = 1; i <= 4; i++)
		ck_assert_int_eq(aq__deque_push(d, item_n(i)), 0);
	ck_assert(aq__deque_nonempty(d));
	ck_assert(aq__deque_peek(d, &out));
	ck_assert_ptr_eq(out.arg, (void *)4);
	ck_assert(aq__deque_take(d, &out)); /* newest */
	ck_assert_ptr_eq(out.arg, (void *)4);
	ck_assert(out.fn == tag_fn);
	ck_assert(aq__deque_steal(d, &out)); /* oldest */
	ck_assert_ptr_eq(out.arg, (void *)1);
	ck_assert(aq__deque_take(d, &out));
	ck_assert_ptr_eq(out.arg, (void *)3);
	ck_assert(aq__deque_take(d, &out)); /* the last: a race it wins */
	ck_assert_ptr_eq(out.arg, (void *)2);
	ck_assert(!aq__deque_take(d, &out));
	ck_assert(!aq__deque_steal(d, &out));
	ck_assert(!aq__deque_nonempty(d));
	free(d);
}
END_TEST

START_TEST(test_full_and_wrap)
{
	struct aq__deque *d = aq__deque_new();
	struct aq__ring_item out;

	ck_assert_ptr_nonnull(d);
	/* Three laps of the array: full at capacity each time. */
	for (int lap = 0; lap < 3; lap++) {
		for (uintptr_t i = 0; i < AQ__DEQUE_CAPACITY; i++)
			ck_assert_int_eq(aq__deque_push(d, item_n(i + 1)), 0);
		ck_assert_int_eq(aq__deque_push(d, item_n(9999)), -EAGAIN);
		for (uintptr_t i = 0; i < AQ__DEQUE_CAPACITY; i++) {
			ck_assert(aq__deque_steal(d, &out));
			ck_assert_ptr_eq(out.arg, (void *)(i + 1));
		}
		ck_assert(!aq__deque_steal(d, &out));
	}
	free(d);
}
END_TEST

/* ---- stealing: one owner, thieves, every item taken exactly once ------ */

#define STEAL_ITEMS 200000
#define STEAL_THIEVES 3

static struct aq__deque *s_deque;
static atomic_uchar *s_taken; /* per item: times taken */
static atomic_int s_done;     /* the owner has pushed everything */

static void take_once(struct aq__ring_item it)
{
	uintptr_t n = (uintptr_t)it.arg;

	ck_assert(it.fn == tag_fn);
	ck_assert(n >= 1 && n <= STEAL_ITEMS);
	atomic_fetch_add(&s_taken[n - 1], 1);
}

static void *thief(void *arg)
{
	struct aq__ring_item it;

	(void)arg;
	/* Bounded: the owner finishes; then one more look empties it. */
	while (!atomic_load(&s_done))
		if (aq__deque_steal(s_deque, &it))
			take_once(it);
	while (aq__deque_steal(s_deque, &it))
		take_once(it);
	return NULL;
}

START_TEST(test_steal_exactly_once)
{
	pthread_t tid[STEAL_THIEVES];
	struct aq__ring_item it;
	uintptr_t next = 1;

	s_deque = aq__deque_new();
	s_taken = calloc(STEAL_ITEMS, sizeof(*s_taken));
	ck_assert_ptr_nonnull(s_deque);
	ck_assert_ptr_nonnull(s_taken);
	atomic_store(&s_done, 0);
	for (int i = 0; i < STEAL_THIEVES; i++)
		ck_assert_int_eq(pthread_create(&tid[i], NULL, thief, NULL), 0);
	/* The owner: bursts of pushes, then takes; a full deque is taken
	 * from until it has room. The last item of a burst is often the one
	 * race between the owner and a thief. */
	while (next <= STEAL_ITEMS) {
		unsigned burst = 1 + (unsigned)(next % 7);

		for (unsigned k = 0; k < burst && next <= STEAL_ITEMS; k++) {
			if (aq__deque_push(s_deque, item_n(next)) == 0)
				next++;
			else if (aq__deque_take(s_deque, &it))
				take_once(it);
		}
		for (unsigned k = 0; k < burst / 2; k++)
			if (aq__deque_take(s_deque, &it))
				take_once(it);
	}
	while (aq__deque_take(s_deque, &it))
		take_once(it);
	atomic_store(&s_done, 1);
	for (int i = 0; i < STEAL_THIEVES; i++)
		pthread_join(tid[i], NULL);
	for (unsigned i = 0; i < STEAL_ITEMS; i++)
		ck_assert_msg(atomic_load(&s_taken[i]) == 1,
			      "item %u taken %d times", i + 1,
			      (int)atomic_load(&s_taken[i]));
	free(s_taken);
	free(s_deque);
}
END_TEST

/* ---- fork-join through the pool ---------------------------------------- */

static const unsigned fj_workers[] = { 1, 2, 8 };
static aq_pool *fj_pool;
static atomic_long fj_jobs; /* jobs run */

static long fib_seq(int n)
{
	return n < 2 ? n : fib_seq(n - 1) + fib_seq(n - 2);
}

struct fib_arg {
	int n, cutoff;
	long result;
};

static int fib_job(void *arg, void **out)
{
	struct fib_arg *a = arg;
	struct fib_arg left, right;
	aq_future *fut;

	(void)out;
	atomic_fetch_add_explicit(&fj_jobs, 1, memory_order_relaxed);
	if (a->n < a->cutoff || a->n < 2) {
		a->result = fib_seq(a->n);
		return 0;
	}
	left = (struct fib_arg){ a->n - 1, a->cutoff, 0 };
	right = (struct fib_arg){ a->n - 2, a->cutoff, 0 };
	ck_assert_int_eq(aq_submit(fj_pool, fib_job, &left, NULL, &fut), 0);
	fib_job(&right, NULL);
	atomic_fetch_sub_explicit(&fj_jobs, 1, memory_order_relaxed);
	ck_assert_int_eq(aq_future_get(fut, NULL, -1), 0);
	aq_future_release(fut);
	a->result = left.result + right.result;
	return 0;
}

/* Jobs fib(n) submits at cutoff c, the root included: its leaves (a job
 * below the cutoff is one; every other submits one more). */
static long fib_jobs(int n, int c)
{
	return n < c || n < 2 ? 1 : fib_jobs(n - 1, c) + fib_jobs(n - 2, c);
}

START_TEST(test_fib_every_cutoff)
{
	static const int cutoffs[] = { 2, 3, 5, 10, 15, 20 };
	const int n = 20;

	fj_pool = th_pool(fj_workers[_i], 0, 0, 0);
	for (size_t c = 0; c < sizeof(cutoffs) / sizeof(cutoffs[0]); c++) {
		struct fib_arg root = { n, cutoffs[c], 0 };
		struct aq_pool_stats st;
		aq_future *fut;

		atomic_store(&fj_jobs, 0);
		ck_assert_int_eq(aq_submit(fj_pool, fib_job, &root, NULL, &fut),
				 0);
		ck_assert_int_eq(aq_future_get(fut, NULL, -1), 0);
		aq_future_release(fut);
		ck_assert_int_eq(root.result, 6765);
		/* Each job ran exactly once (a right half is a call, not a
		 * job: fib_job takes it back). */
		ck_assert_int_eq(atomic_load(&fj_jobs),
				 fib_jobs(n, cutoffs[c]));
		ck_assert_int_eq(aq_pool_stats(fj_pool, &st), 0);
		ck_assert_uint_eq(st.submitted, st.succeeded);
	}
	aq_pool_destroy(fj_pool);
}
END_TEST

struct sort_arg {
	int *a, *tmp;
	size_t n, cutoff;
};

static void merge(int *a, int *tmp, size_t half, size_t n)
{
	size_t i = 0, j = half, k = 0;

	while (i < half && j < n)
		tmp[k++] = a[j] < a[i] ? a[j++] : a[i++];
	while (i < half)
		tmp[k++] = a[i++];
	while (j < n)
		tmp[k++] = a[j++];
	memcpy(a, tmp, n * sizeof(*a));
}

static int sort_job(void *arg, void **out)
{
	struct sort_arg *s = arg;
	size_t half = s->n / 2;
	struct sort_arg left, right;
	aq_future *fut;

	(void)out;
	if (s->n <= s->cutoff || s->n < 2) {
		/* Insertion sort: small pieces only. */
		for (size_t i = 1; i < s->n; i++)
			for (size_t j = i; j > 0 && s->a[j - 1] > s->a[j]; j--) {
				int t = s->a[j];

				s->a[j] = s->a[j - 1];
				s->a[j - 1] = t;
			}
		return 0;
	}
	left = (struct sort_arg){ s->a, s->tmp, half, s->cutoff };
	right = (struct sort_arg){ s->a + half, s->tmp + half, s->n - half,
				   s->cutoff };
	ck_assert_int_eq(aq_submit(fj_pool, sort_job, &left, NULL, &fut), 0);
	sort_job(&right, NULL);
	ck_assert_int_eq(aq_future_get(fut, NULL, -1), 0);
	aq_future_release(fut);
	merge(s->a, s->tmp, half, s->n);
	return 0;
}

START_TEST(test_merge_sort_every_cutoff)
{
	static const size_t cutoffs[] = { 1, 4, 32, 256, 4096 };
	const size_t n = 5000; /* not a power of two: uneven halves */
	int *a = malloc(n * sizeof(int)), *tmp = malloc(n * sizeof(int));
	uint32_t x = 12345;

	ck_assert(a && tmp);
	fj_pool = th_pool(fj_workers[_i], 0, 0, 0);
	for (size_t c = 0; c < sizeof(cutoffs) / sizeof(cutoffs[0]); c++) {
		struct sort_arg root = { a, tmp, n, cutoffs[c] };
		aq_future *fut;
		long sum = 0, sum_after = 0;

		for (size_t i = 0; i < n; i++) {
			x = x * 1103515245u + 12345u;
			a[i] = (int)(x >> 8) % 1000;
			sum += a[i];
		}
		ck_assert_int_eq(aq_submit(fj_pool, sort_job, &root, NULL, &fut),
				 0);
		ck_assert_int_eq(aq_future_get(fut, NULL, -1), 0);
		aq_future_release(fut);
		for (size_t i = 0; i < n; i++) {
			if (i)
				ck_assert_int_le(a[i - 1], a[i]);
			sum_after += a[i];
		}
		ck_assert_int_eq(sum, sum_after);
	}
	aq_pool_destroy(fj_pool);
	free(a);
	free(tmp);
}
END_TEST

/* ---- 100 parents, one worker, each scheduler ----------------------------- */

static atomic_int child_runs;

static int child_job(void *arg, void **out)
{
	(void)arg;
	(void)out;
	atomic_fetch_add(&child_runs, 1);
	return 0;
}

static int parent_job(void *arg, void **out)
{
	aq_pool *pool = arg;
	aq_future *fut;

	(void)out;
	ck_assert_int_eq(aq_submit(pool, child_job, NULL, NULL, &fut), 0);
	ck_assert_int_eq(aq_future_get(fut, NULL, -1), 0);
	aq_future_release(fut);
	return 0;
}

START_TEST(test_hundred_parents_one_worker)
{
	const struct aq_sched_ops *scheds[] = { NULL, aq_sched_fifo(),
						aq_sched_priority(),
						aq_sched_fair() };
	struct aq_pool_config cfg = { .workers = 1, .sched = scheds[_i] };
	aq_future *futs[100];
	aq_pool *pool;

	atomic_store(&child_runs, 0);
	ck_assert_int_eq(aq_pool_create(&pool, &cfg), 0);
	for (int i = 0; i < 100; i++)
		ck_assert_int_eq(aq_submit(pool, parent_job, pool, NULL,
					   &futs[i]),
				 0);
	for (int i = 0; i < 100; i++) {
		ck_assert_int_eq(aq_future_get(futs[i], NULL, -1), 0);
		aq_future_release(futs[i]);
	}
	ck_assert_int_eq(atomic_load(&child_runs), 100);
	aq_pool_destroy(pool);
}
END_TEST

/* ---- a job cancelled while in a deque ----------------------------------- */

static int cancel_parent(void *arg, void **out)
{
	aq_pool *pool = arg;
	aq_future *fut;

	(void)out;
	ck_assert_int_eq(aq_submit(pool, child_job, NULL, NULL, &fut), 0);
	/* One worker, and it is here: the child sits in its deque. */
	ck_assert_int_eq(aq_future_state(fut), AQ_STATE_PENDING);
	ck_assert_int_eq(aq_future_cancel(fut), 0);
	ck_assert_int_eq(aq_future_state(fut), AQ_STATE_CANCELLED);
	ck_assert_int_eq(aq_future_get(fut, NULL, -1), -ECANCELED);
	aq_future_release(fut);
	return 0;
}

START_TEST(test_cancel_in_deque)
{
	aq_pool *pool = th_pool(1, 0, 0, 0);
	struct aq_pool_stats st;
	aq_future *fut;

	atomic_store(&child_runs, 0);
	ck_assert_int_eq(aq_submit(pool, cancel_parent, pool, NULL, &fut), 0);
	ck_assert_int_eq(aq_future_get(fut, NULL, -1), 0);
	aq_future_release(fut);
	ck_assert_int_eq(aq_pool_shutdown(pool, AQ_SHUTDOWN_DRAIN), 0);
	ck_assert_int_eq(atomic_load(&child_runs), 0);
	ck_assert_int_eq(aq_pool_stats(pool, &st), 0);
	ck_assert_uint_eq(st.submitted, 2);
	ck_assert_uint_eq(st.succeeded, 1);
	ck_assert_uint_eq(st.cancelled, 1);
	ck_assert_uint_eq(st.started, 1);
	ck_assert_uint_eq(st.queued, 0);
	aq_pool_destroy(pool);
}
END_TEST

/* ---- shutdown with deques that hold jobs ------------------------------ */

#define SHUT_CHILDREN 50

struct shut {
	aq_pool *pool;
	struct th_gate gate;
	aq_future *futs[SHUT_CHILDREN];
	int refused; /* aq_submit() saw the shutdown */
	int probes;  /* fire-and-forget probes accepted before it */
};

static int probe_job(void *arg, void **out)
{
	(void)arg;
	(void)out;
	return 0;
}

static int shut_parent(void *arg, void **out)
{
	struct shut *s = arg;

	(void)out;
	for (int i = 0; i < SHUT_CHILDREN; i++)
		ck_assert_int_eq(aq_submit(s->pool, child_job, NULL, NULL,
					   &s->futs[i]),
				 0);
	th_gate_pass(&s->gate);
	/* Until shutdown has begun (bounded: the test's own timeout). */
	while (!s->refused) {
		int rc = aq_submit(s->pool, probe_job, NULL, NULL, NULL);

		s->probes += rc == 0;
		s->refused = rc == -ESHUTDOWN;
	}
	return 0;
}

START_TEST(test_shutdown_with_deques)
{
	/* _i: 0 drains (the children run), 1 cancels (they resolve
	 * cancelled). */
	struct shut s = { 0 };
	struct aq_pool_stats st;
	aq_future *fut;
	long ran_before;

	s.pool = th_pool(1, 0, 0, 0);
	th_gate_init(&s.gate);
	atomic_store(&child_runs, 0);
	ck_assert_int_eq(aq_submit(s.pool, shut_parent, &s, NULL, &fut), 0);
	ck_assert(th_gate_wait_entered(&s.gate, 1));
	ran_before = atomic_load(&child_runs);
	ck_assert_int_eq(ran_before, 0);
	/* The parent now submits until it is refused: the pool stops
	 * accepting with its 50 children (at least) in the deque. */
	th_gate_open(&s.gate);
	ck_assert_int_eq(aq_pool_shutdown(s.pool, _i ? AQ_SHUTDOWN_CANCEL
						       : AQ_SHUTDOWN_DRAIN),
			 0);
	ck_assert_int_eq(s.refused, 1);
	ck_assert_int_eq(aq_future_get(fut, NULL, -1), 0);
	aq_future_release(fut);
	for (int i = 0; i < SHUT_CHILDREN; i++) {
		ck_assert_int_eq(aq_future_get(s.futs[i], NULL, 0),
				 _i ? -ECANCELED : 0);
		aq_future_release(s.futs[i]);
	}
	ck_assert_int_eq(atomic_load(&child_runs), _i ? 0 : SHUT_CHILDREN);
	ck_assert_int_eq(aq_pool_stats(s.pool, &st), 0);
	ck_assert_uint_eq(st.submitted, 1 + SHUT_CHILDREN + s.probes);
	ck_assert_uint_eq(st.succeeded,
			  _i ? 1 : 1 + SHUT_CHILDREN + s.probes);
	ck_assert_uint_eq(st.cancelled, _i ? SHUT_CHILDREN + s.probes : 0);
	ck_assert_uint_eq(st.queued, 0);
	th_gate_destroy(&s.gate);
	aq_pool_destroy(s.pool);
}
END_TEST

/* ---- a push on a deque wakes a parked worker ---------------------------- */

#define WAKE_ROUNDS 300

static atomic_int wake_child_ran;

static int wake_child(void *arg, void **out)
{
	(void)arg;
	(void)out;
	atomic_store(&wake_child_ran, 1);
	return 0;
}

static int wake_parent(void *arg, void **out)
{
	(void)out;
	ck_assert_int_eq(aq_submit(arg, wake_child, NULL, NULL, NULL), 0);
	/* Not a helping wait: this worker stays here, so only the other one
	 * can take the child from our deque, and it may be parked (or going
	 * to sleep right now): the push must wake it. Bounded: 10 s. */
	return th_poll_int(&wake_child_ran, 1) ? 0 : 1;
}

/* Both workers of a 2-worker pool counted idle: parked, or past the point
 * of counting themselves and on their way to park. */
static bool two_idle(void *pool)
{
	return (atomic_load(&((aq_pool *)pool)->idle) & AQ__IDLE_COUNT) == 2;
}

/*
 * The parking handshake of a deque push (the asymmetric fence where the
 * system has it, else a seq_cst fence in the pusher): rounds in which
 * the other worker is parked (one round in 8 waits for both to count
 * themselves idle, however long their yields take on a busy machine) or
 * on its way to park (at once) never lose the wake, so every parent sees
 * its child run.
 */
START_TEST(test_push_wakes_parked_worker)
{
	aq_pool *pool = th_pool(2, 0, 0, 0);
	struct aq_pool_stats st;

	/* _i == 1: a parker's heavy fence (membarrier(2)) fails once: it
	 * must then sleep only briefly and look again. */
	if (_i)
		aq__fault_arm(AQ__FAULT_FENCE, 1);
	for (int i = 0; i < WAKE_ROUNDS; i++) {
		aq_future *fut;

		atomic_store(&wake_child_ran, 0);
		if (i % 8 == 0)
			ck_assert(th_poll(two_idle, pool));
		ck_assert_int_eq(aq_submit(pool, wake_parent, pool, NULL, &fut),
				 0);
		ck_assert_msg(aq_future_get(fut, NULL, -1) == 0,
			      "round %d: the child never ran", i);
		aq_future_release(fut);
	}
	ck_assert_int_eq(aq_pool_shutdown(pool, AQ_SHUTDOWN_DRAIN), 0);
	ck_assert_int_eq(aq_pool_stats(pool, &st), 0);
	ck_assert_uint_eq(st.succeeded, 2 * WAKE_ROUNDS);
	aq_pool_destroy(pool);
	if (_i) {
		/* Where the system has the asymmetric fence, parkers ran it,
		 * and the failure was injected. */
		ck_assert(!aq__park_asym_ready() ||
			  aq__fault_calls(AQ__FAULT_FENCE) > 0);
		aq__fault_arm(AQ__FAULT_FENCE, 0);
	}
}
END_TEST

/* ---- an idle worker spins, yields, then parks ---------------------------- */

static atomic_int idle_yields;             /* every worker's, in all */
static _Thread_local int idle_yields_mine; /* this worker's */
static struct th_gate *idle_hold;          /* the first yield passes it */

static void on_idle_yield(enum aq__pause_site site, void *user)
{
	(void)user;
	if (site != AQ__PAUSE_IDLE_YIELD)
		return;
	idle_yields_mine++;
	if (atomic_fetch_add(&idle_yields, 1) == 0 && idle_hold)
		th_gate_pass(idle_hold);
}

/* Is exactly one worker counted in the parking eventcount (asleep, or
 * committed to it)? */
static bool one_parked(void *pool)
{
	return (atomic_load(&((aq_pool *)pool)->idle) & AQ__IDLE_COUNT) == 1;
}

/*
 * With nothing to do a worker yields exactly AQ__BACKOFF_YIELDS times
 * (after its spin), then parks; a submit wakes it, and once the job is
 * done it does the same again.
 */
START_TEST(test_idle_worker_yields_then_parks)
{
	atomic_long ran = 0;
	aq_pool *pool;
	aq_future *fut;

	atomic_store(&idle_yields, 0);
	idle_hold = NULL;
	aq__pause_set(on_idle_yield, NULL);
	pool = th_pool(1, 16, 0, 0);
	ck_assert(th_poll(one_parked, pool));
	ck_assert_int_eq(th_ld(&idle_yields), AQ__BACKOFF_YIELDS);

	ck_assert_int_eq(aq_submit(pool, th_count_job, &ran, NULL, &fut), 0);
	ck_assert_int_eq(aq_future_get(fut, NULL, -1), 0);
	ck_assert(th_poll(one_parked, pool));
	ck_assert_int_eq(th_ld(&idle_yields), 2 * AQ__BACKOFF_YIELDS);
	ck_assert_int_eq(th_ldl(&ran), 1);
	aq_future_release(fut);
	aq_pool_destroy(pool);
	aq__pause_set(NULL, NULL);
}
END_TEST

static atomic_int idle_child_pushed, idle_child_ran, idle_child_saw;

static int idle_child(void *arg, void **out)
{
	(void)arg;
	(void)out;
	/* Runs on the worker that stole it: how many yields it took. */
	atomic_store(&idle_child_saw, idle_yields_mine);
	atomic_store(&idle_child_ran, 1);
	return 0;
}

static int idle_parent(void *arg, void **out)
{
	(void)out;
	ck_assert_int_eq(aq_submit(arg, idle_child, NULL, NULL, NULL), 0);
	atomic_store(&idle_child_pushed, 1);
	/* Not a helping wait: only the other worker can run the child. */
	return th_poll_int(&idle_child_ran, 1) ? 0 : 1;
}

/*
 * An idle worker looks at the deques after every yield (not only at every
 * eighth look): a child pushed while the worker is in its first yield is
 * stolen right after it. The other worker is asleep at first, so the
 * parent's submit wakes it, and the child's push wakes nobody (the
 * yielding worker is not asleep).
 */
START_TEST(test_idle_yield_then_steal)
{
	struct th_gate hold;
	aq_pool *pool;
	aq_future *fut;

	atomic_store(&idle_yields, 0);
	atomic_store(&idle_child_pushed, 0);
	atomic_store(&idle_child_ran, 0);
	atomic_store(&idle_child_saw, -1);
	th_gate_init(&hold);
	idle_hold = &hold;
	aq__pause_set(on_idle_yield, NULL);
	pool = th_pool(2, 16, 0, 0);
	ck_assert(th_gate_wait_entered(&hold, 1));
	ck_assert(th_poll(one_parked, pool));
	ck_assert_int_eq(aq_submit(pool, idle_parent, pool, NULL, &fut), 0);
	ck_assert(th_poll_int(&idle_child_pushed, 1));
	th_gate_open(&hold);
	ck_assert_int_eq(aq_future_get(fut, NULL, -1), 0);
	ck_assert_int_eq(th_ld(&idle_child_saw), 1);
	aq_future_release(fut);
	aq_pool_destroy(pool);
	aq__pause_set(NULL, NULL);
	idle_hold = NULL;
	th_gate_destroy(&hold);
}
END_TEST

/* ---- counts: stats and hooks, once per job; a spill past the deque ---- */

static atomic_long hook_before, hook_after;

static void on_before(const struct aq_job_event *ev, void *user)
{
	(void)ev;
	(void)user;
	atomic_fetch_add(&hook_before, 1);
}

static void on_after(const struct aq_job_event *ev, void *user)
{
	(void)ev;
	(void)user;
	atomic_fetch_add(&hook_after, 1);
}

START_TEST(test_counts_exact)
{
	struct aq_pool_config cfg = { .workers = fj_workers[_i],
				      .before_job = on_before,
				      .after_job = on_after };
	struct fib_arg root = { 18, 3, 0 };
	struct aq_pool_stats st;
	aq_future *fut;
	long jobs = fib_jobs(18, 3);

	atomic_store(&hook_before, 0);
	atomic_store(&hook_after, 0);
	atomic_store(&fj_jobs, 0);
	ck_assert_int_eq(aq_pool_create(&fj_pool, &cfg), 0);
	ck_assert_int_eq(aq_submit(fj_pool, fib_job, &root, NULL, &fut), 0);
	ck_assert_int_eq(aq_future_get(fut, NULL, -1), 0);
	aq_future_release(fut);
	ck_assert_int_eq(root.result, 2584);
	ck_assert_int_eq(aq_pool_shutdown(fj_pool, AQ_SHUTDOWN_DRAIN), 0);
	ck_assert_int_eq(aq_pool_stats(fj_pool, &st), 0);
	ck_assert_uint_eq(st.submitted, (uint64_t)jobs);
	ck_assert_uint_eq(st.started, (uint64_t)jobs);
	ck_assert_uint_eq(st.succeeded, (uint64_t)jobs);
	ck_assert_uint_eq(st.queued, 0);
	ck_assert_int_eq(atomic_load(&hook_before), jobs);
	ck_assert_int_eq(atomic_load(&hook_after), jobs);
	aq_pool_destroy(fj_pool);
}
END_TEST

#define SPILL_CHILDREN (AQ__DEQUE_CAPACITY + 100)

static int spill_parent(void *arg, void **out)
{
	aq_pool *pool = arg;
	aq_future **futs = malloc(SPILL_CHILDREN * sizeof(*futs));

	(void)out;
	ck_assert_ptr_nonnull(futs);
	/* More than the deque and the ring (4) hold: the rest run in place,
	 * none is refused. */
	for (int i = 0; i < SPILL_CHILDREN; i++)
		ck_assert_int_eq(aq_submit(pool, child_job, NULL, NULL,
					   &futs[i]),
				 0);
	for (int i = 0; i < SPILL_CHILDREN; i++) {
		ck_assert_int_eq(aq_future_get(futs[i], NULL, -1), 0);
		aq_future_release(futs[i]);
	}
	free(futs);
	return 0;
}

START_TEST(test_spill_to_ring_then_in_place)
{
	aq_pool *pool = th_pool(1, 4, 0, 0);
	struct aq_pool_stats st;
	aq_future *fut;

	atomic_store(&child_runs, 0);
	ck_assert_int_eq(aq_submit(pool, spill_parent, pool, NULL, &fut), 0);
	ck_assert_int_eq(aq_future_get(fut, NULL, -1), 0);
	aq_future_release(fut);
	ck_assert_int_eq(aq_pool_shutdown(pool, AQ_SHUTDOWN_DRAIN), 0);
	ck_assert_int_eq(atomic_load(&child_runs), SPILL_CHILDREN);
	ck_assert_int_eq(aq_pool_stats(pool, &st), 0);
	ck_assert_uint_eq(st.submitted, 1 + SPILL_CHILDREN);
	ck_assert_uint_eq(st.succeeded, 1 + SPILL_CHILDREN);
	ck_assert_uint_eq(st.rejected, 0);
	aq_pool_destroy(pool);
}
END_TEST

Suite *deque_suite(void)
{
	Suite *s = suite_create("deque");
	TCase *tc = tcase_create("deque");
	TCase *fj = tcase_create("forkjoin");

	tcase_set_timeout(tc, TH_TIMEOUT_STRESS);
	tcase_add_test(tc, test_lifo_owner_fifo_thief);
	tcase_add_test(tc, test_full_and_wrap);
	tcase_add_test(tc, test_steal_exactly_once);
	suite_add_tcase(s, tc);

	tcase_set_timeout(fj, TH_TIMEOUT_STRESS);
	tcase_add_loop_test(fj, test_fib_every_cutoff, 0, 3);
	tcase_add_loop_test(fj, test_merge_sort_every_cutoff, 0, 3);
	tcase_add_loop_test(fj, test_hundred_parents_one_worker, 0, 4);
	tcase_add_test(fj, test_cancel_in_deque);
	tcase_add_loop_test(fj, test_shutdown_with_deques, 0, 2);
	tcase_add_loop_test(fj, test_counts_exact, 0, 3);
	tcase_add_test(fj, test_spill_to_ring_then_in_place);
	tcase_add_loop_test(fj, test_push_wakes_parked_worker, 0, 2);
	tcase_add_test(fj, test_idle_worker_yields_then_parks);
	tcase_add_test(fj, test_idle_yield_then_steal);
	suite_add_tcase(s, fj);
	return s;
}
