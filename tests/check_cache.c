/* SPDX-License-Identifier: MIT */
/* The record cache (lib/cache.c): threads' own lists, batches, lifetime. */
#include <check.h>
#include <errno.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdint.h>

#include "asyncq.h"
#include "fault.h"
#include "cache.h"
#include "future.h"
#include "helpers.h"
#include "suites.h"

/* Jobs a client submits before it gets and releases them, as the fut
 * workload of tests/bench/instr.c does. */
#define ROUND 256

/* The cache a future's record belongs to. */
static const struct aq__cache *cache_of(const aq_future *fut)
{
	return ((const struct aq_future *)fut)->cache;
}

/* Records this thread keeps on its own list (and spare batch). */
static unsigned kept_here(void)
{
	return aq__local.count + (aq__local.spare ? AQ__CACHE_BATCH : 0);
}

/* Submit n echo jobs with futures (job i returns i + 1). */
static void submit_n(aq_pool *pool, aq_future **futs, unsigned n)
{
	for (unsigned i = 0; i < n; i++)
		ck_assert_int_eq(th_submit_retry(pool, th_echo_job,
						 (void *)(uintptr_t)(i + 1),
						 NULL, &futs[i]),
				 0);
}

/* Get each of n futures and check its result. */
static void get_n(aq_future **futs, unsigned n)
{
	for (unsigned i = 0; i < n; i++) {
		void *result = NULL;

		ck_assert_int_eq(aq_future_get(futs[i], &result, -1), 0);
		ck_assert_ptr_eq(result, (void *)(uintptr_t)(i + 1));
	}
}

static void release_n(aq_future **futs, unsigned n)
{
	for (unsigned i = 0; i < n; i++)
		aq_future_release(futs[i]);
}

/* A whole round: submit, get, release. */
static void round_of(aq_pool *pool, unsigned n)
{
	aq_future *futs[ROUND];

	ck_assert_uint_le(n, ROUND);
	submit_n(pool, futs, n);
	get_n(futs, n);
	release_n(futs, n);
}

static pthread_t start(void *(*fn)(void *), void *arg)
{
	pthread_t tid;

	ck_assert_int_eq(pthread_create(&tid, NULL, fn, arg), 0);
	return tid;
}

/* What a client thread saw, for the test's thread to check. */
struct client {
	aq_pool *pool, *other;
	struct th_gate ready, go, done, leave;
	long allocs;                     /* allocations counted */
	const struct aq__cache *cache;   /* pool's cache */
	const struct aq__cache *other_cache;
	const struct aq__cache *bound;   /* aq__local.cache at the end */
	const struct aq__cache *bound2;  /* ... at a second point */
	unsigned kept;                   /* kept_here() at the end */
};

static void client_init(struct client *c, aq_pool *pool, aq_pool *other)
{
	*c = (struct client){ .pool = pool, .other = other };
	th_gate_init(&c->ready);
	th_gate_init(&c->go);
	th_gate_init(&c->done);
	th_gate_init(&c->leave);
}

static void client_fini(struct client *c)
{
	th_gate_destroy(&c->ready);
	th_gate_destroy(&c->go);
	th_gate_destroy(&c->done);
	th_gate_destroy(&c->leave);
}

/* ---- reuse ---------------------------------------------------------------- */

static void *reuse_client(void *arg)
{
	struct client *c = arg;
	aq_future *fut;

	round_of(c->pool, ROUND); /* makes the records */
	aq__fault_arm(AQ__FAULT_ALLOC, 0); /* count allocations from here */
	for (int r = 0; r < 10; r++)
		round_of(c->pool, ROUND);
	c->allocs = aq__fault_calls(AQ__FAULT_ALLOC);
	ck_assert_int_eq(th_submit_retry(c->pool, th_noop_job, NULL, NULL,
					 &fut),
			 0);
	c->cache = cache_of(fut);
	ck_assert_int_eq(aq_future_get(fut, NULL, -1), 0);
	aq_future_release(fut);
	c->bound = aq__local.cache;
	c->kept = kept_here();
	return NULL;
}

/*
 * A thread that is not a worker submits rounds of 256 jobs with futures
 * and releases them: after the first round the records are reused (no
 * malloc), the thread is bound to the pool's cache and keeps some of its
 * records, at most AQ__CACHE_LOCAL_MAX, and its exit gives them back.
 */
START_TEST(foreign_thread_reuses_records)
{
	long caches = aq__cache_live_caches();
	long records = aq__cache_live_records();
	struct client c;

	client_init(&c, th_pool(1, 0, 0, 0), NULL);
	ck_assert_int_eq(pthread_join(start(reuse_client, &c), NULL), 0);
	/* The one worker may still hold the pool's reference to one record
	 * when the client needs a 257th: never more. */
	ck_assert_int_le(c.allocs, 1);
	ck_assert_ptr_eq(c.bound, c.cache);
	ck_assert_uint_gt(c.kept, 0);
	ck_assert_uint_le(c.kept, AQ__CACHE_LOCAL_MAX);
	ck_assert_int_le(aq__cache_live_records() - records, ROUND + 1);
	aq_pool_destroy(c.pool);
	ck_assert_int_eq(aq__cache_live_caches(), caches);
	ck_assert_int_eq(aq__cache_live_records(), records);
	client_fini(&c);
}
END_TEST

/* ---- lifetime --------------------------------------------------------------- */

/* Futures held across the destroy: fewer than a batch, so that their
 * release finds room on the thread's list. */
#define HELD 8

/* Fill the thread's list, hold a few futures, wait for the pool's
 * destroy, release them, and stay until told to leave. */
static void *release_after_destroy_client(void *arg)
{
	struct client *c = arg;
	aq_future *futs[HELD];

	round_of(c->pool, ROUND);
	submit_n(c->pool, futs, HELD);
	get_n(futs, HELD);
	c->cache = cache_of(futs[0]);
	th_gate_pass(&c->ready); /* the pool is destroyed meanwhile */
	release_n(futs, HELD);
	c->bound = aq__local.cache;
	c->kept = kept_here();
	th_gate_pass(&c->done);
	return NULL;
}

/*
 * Destroy, then release on the thread whose list holds the pool's
 * records: the cache outlives the destroy while futures live (not freed
 * early), and the releases free it and every record at once, while the
 * thread still lives (its list does not pin a destroyed pool's cache).
 */
START_TEST(destroy_then_release_frees_all)
{
	long caches = aq__cache_live_caches();
	long records = aq__cache_live_records();
	struct client c;
	pthread_t tid;

	client_init(&c, th_pool(1, 0, 0, 0), NULL);
	tid = start(release_after_destroy_client, &c);
	ck_assert(th_gate_wait_entered(&c.ready, 1));
	ck_assert_int_eq(aq__cache_live_caches(), caches + 1);
	aq_pool_destroy(c.pool);
	/* Futures live: their cache and records must still be there. */
	ck_assert_int_eq(aq__cache_live_caches(), caches + 1);
	ck_assert_int_ge(aq__cache_live_records(), records + HELD);
	th_gate_open(&c.ready);
	ck_assert(th_gate_wait_entered(&c.done, 1));
	ck_assert_ptr_null(c.bound);
	ck_assert_uint_eq(c.kept, 0);
	ck_assert_int_eq(aq__cache_live_caches(), caches);
	ck_assert_int_eq(aq__cache_live_records(), records);
	th_gate_open(&c.done);
	ck_assert_int_eq(pthread_join(tid, NULL), 0);
	client_fini(&c);
}
END_TEST

/* Fill the thread's list, then wait (the pool is destroyed) and exit. */
static void *exit_holding_client(void *arg)
{
	struct client *c = arg;

	round_of(c->pool, ROUND);
	c->kept = kept_here();
	th_gate_pass(&c->ready);
	return NULL;
}

/*
 * A thread exits while its list holds records of a destroyed pool: until
 * then they and the cache stay (the documented bound: one cache and at
 * most AQ__CACHE_LOCAL_MAX records), and its exit frees them all.
 */
START_TEST(thread_exit_frees_list_of_destroyed_pool)
{
	long caches = aq__cache_live_caches();
	long records = aq__cache_live_records();
	struct client c;
	pthread_t tid;

	client_init(&c, th_pool(1, 0, 0, 0), NULL);
	tid = start(exit_holding_client, &c);
	ck_assert(th_gate_wait_entered(&c.ready, 1));
	ck_assert_uint_gt(c.kept, 0);
	aq_pool_destroy(c.pool);
	ck_assert_int_eq(aq__cache_live_caches(), caches + 1);
	ck_assert_int_eq(aq__cache_live_records(), records + c.kept);
	th_gate_open(&c.ready);
	ck_assert_int_eq(pthread_join(tid, NULL), 0);
	ck_assert_int_eq(aq__cache_live_caches(), caches);
	ck_assert_int_eq(aq__cache_live_records(), records);
	client_fini(&c);
}
END_TEST

/* The race: each round a new pool; its submitter (bound to the pool's
 * cache) releases half of its futures and a thread that never allocates
 * the other half, while the test's thread destroys the pool. */
#define RACE_ROUNDS 40
#define RACE_JOBS 96

struct race {
	aq_pool *_Atomic pool;
	aq_future *futs[RACE_JOBS];
	pthread_barrier_t start, end;
	long caches;     /* live caches before the test */
	atomic_int over; /* caches seen above caches + 1, between rounds */
};

static void *race_submitter(void *arg)
{
	struct race *r = arg;

	for (int round = 0; round < RACE_ROUNDS; round++) {
		pthread_barrier_wait(&r->start); /* the pool is there */
		/* The first alloc frees the last round's cache, if only this
		 * thread's list still held it. */
		submit_n(atomic_load(&r->pool), r->futs, RACE_JOBS);
		get_n(r->futs, RACE_JOBS);
		pthread_barrier_wait(&r->start); /* go */
		release_n(r->futs, RACE_JOBS / 2);
		pthread_barrier_wait(&r->end);
	}
	return NULL;
}

static void *race_releaser(void *arg)
{
	struct race *r = arg;

	for (int round = 0; round < RACE_ROUNDS; round++) {
		pthread_barrier_wait(&r->start);
		pthread_barrier_wait(&r->start);
		release_n(r->futs + RACE_JOBS / 2, RACE_JOBS - RACE_JOBS / 2);
		pthread_barrier_wait(&r->end);
	}
	return NULL;
}

/*
 * Releases on two threads race a destroy, round after round: no record
 * or cache is touched after it is freed (ASan, TSan), at most one
 * destroyed pool's cache stays between rounds (the submitter's list), and
 * once the threads exit everything is freed.
 */
START_TEST(release_races_destroy)
{
	static struct race r;
	long records = aq__cache_live_records();
	pthread_t sub, rel;

	r.caches = aq__cache_live_caches();
	atomic_store(&r.over, 0);
	ck_assert_int_eq(pthread_barrier_init(&r.start, NULL, 3), 0);
	ck_assert_int_eq(pthread_barrier_init(&r.end, NULL, 3), 0);
	sub = start(race_submitter, &r);
	rel = start(race_releaser, &r);
	for (int round = 0; round < RACE_ROUNDS; round++) {
		atomic_store(&r.pool, th_pool(round % 2 + 1, 0, 0, 0));
		pthread_barrier_wait(&r.start);
		pthread_barrier_wait(&r.start);
		aq_pool_destroy(atomic_load(&r.pool));
		pthread_barrier_wait(&r.end);
		if (aq__cache_live_caches() > r.caches + 1)
			atomic_fetch_add(&r.over, 1);
	}
	ck_assert_int_eq(pthread_join(sub, NULL), 0);
	ck_assert_int_eq(pthread_join(rel, NULL), 0);
	ck_assert_int_eq(atomic_load(&r.over), 0);
	ck_assert_int_eq(aq__cache_live_caches(), r.caches);
	ck_assert_int_eq(aq__cache_live_records(), records);
	pthread_barrier_destroy(&r.start);
	pthread_barrier_destroy(&r.end);
}
END_TEST

/* ---- two pools ------------------------------------------------------------ */

#define ALTERNATIONS 2000

static void *alternating_client(void *arg)
{
	struct client *c = arg;
	aq_future *fut;

	for (unsigned i = 0; i < ALTERNATIONS; i++) {
		aq_pool *pool = i % 2 ? c->other : c->pool;
		void *result = NULL;

		if (i == 100)
			aq__fault_arm(AQ__FAULT_ALLOC, 0); /* warmed up */
		ck_assert_int_eq(th_submit_retry(pool, th_echo_job,
						 (void *)(uintptr_t)(i + 1),
						 NULL, &fut),
				 0);
		if (i < 2)
			*(i % 2 ? &c->other_cache : &c->cache) = cache_of(fut);
		ck_assert_int_eq(aq_future_get(fut, &result, -1), 0);
		ck_assert_ptr_eq(result, (void *)(uintptr_t)(i + 1));
		aq_future_release(fut);
	}
	c->allocs = aq__fault_calls(AQ__FAULT_ALLOC);
	c->bound = aq__local.cache;
	/* Then only the other pool: the binding follows it. */
	for (unsigned i = 0; i < 2 * AQ__CACHE_REBIND_AFTER; i++)
		round_of(c->other, 1);
	c->bound2 = aq__local.cache;
	return NULL;
}

/*
 * A thread alternates between two pools, one job each time: every result
 * is right, the thread stays bound to one of the caches (the other goes
 * through its lock), the records are reused (no malloc after the warm-up
 * but a pool's second record, at most two records per pool), and when it
 * moves on to the second pool alone its binding follows.
 */
START_TEST(alternating_pools_bounded)
{
	long caches = aq__cache_live_caches();
	long records = aq__cache_live_records();
	struct client c;

	client_init(&c, th_pool(1, 0, 0, 0), th_pool(1, 0, 0, 0));
	ck_assert_int_eq(pthread_join(start(alternating_client, &c), NULL),
			 0);
	/* A second record per pool, if its worker first held the pool's
	 * reference when the client needed one after the warm-up. */
	ck_assert_int_le(c.allocs, 2);
	/* Bound to the first pool's cache, or to the second's if the list
	 * was ever empty when a job went to the second (a free move). */
	ck_assert(c.bound == c.cache || c.bound == c.other_cache);
	ck_assert_ptr_eq(c.bound2, c.other_cache);
	/* One with the client, one the worker may still hold, per pool. */
	ck_assert_int_le(aq__cache_live_records() - records, 4);
	aq_pool_destroy(c.pool);
	aq_pool_destroy(c.other);
	ck_assert_int_eq(aq__cache_live_caches(), caches);
	ck_assert_int_eq(aq__cache_live_records(), records);
	client_fini(&c);
}
END_TEST

/* A job on one pool's worker (bound to that pool's cache for life)
 * submits to another pool and waits: the lock path, results right. */
static int nested_submit_job(void *arg, void **result)
{
	aq_pool *other = arg;

	(void)result;
	for (unsigned i = 0; i < 100; i++) {
		aq_future *fut;
		void *got = NULL;

		if (th_submit_retry(other, th_echo_job,
				    (void *)(uintptr_t)(i + 1), NULL, &fut))
			return -EIO;
		if (aq_future_get(fut, &got, -1) != 0 ||
		    got != (void *)(uintptr_t)(i + 1))
			return -EIO;
		aq_future_release(fut);
	}
	return 0;
}

START_TEST(worker_allocates_from_other_pool)
{
	long caches = aq__cache_live_caches();
	long records = aq__cache_live_records();
	aq_pool *pool = th_pool(1, 0, 0, 0), *other = th_pool(1, 0, 0, 0);
	aq_future *fut;

	for (int i = 0; i < 4; i++) {
		ck_assert_int_eq(aq_submit(pool, nested_submit_job, other, NULL,
					   &fut),
				 0);
		ck_assert_int_eq(aq_future_get(fut, NULL, -1), 0);
		aq_future_release(fut);
	}
	aq_pool_destroy(other);
	aq_pool_destroy(pool);
	ck_assert_int_eq(aq__cache_live_caches(), caches);
	ck_assert_int_eq(aq__cache_live_records(), records);
}
END_TEST

/* ---- allocation failure ------------------------------------------------------ */

static void *failing_client(void *arg)
{
	struct client *c = arg;
	aq_future *fut = (aq_future *)(uintptr_t)0x1;

	/* Bound to nothing yet, the depot empty: the new record fails. */
	aq__fault_arm(AQ__FAULT_ALLOC, 1);
	ck_assert_int_eq(aq_submit(c->pool, th_noop_job, NULL, NULL, &fut),
			 -ENOMEM);
	ck_assert_ptr_null(fut); /* aq_submit(3): NULL on failure */
	aq__fault_arm(AQ__FAULT_ALLOC, 0);
	round_of(c->pool, ROUND);
	ck_assert_uint_gt(kept_here(), 0);
	/* Bound to pool, with records: the other pool's first record, under
	 * its lock, fails too. */
	aq__fault_arm(AQ__FAULT_ALLOC, 1);
	ck_assert_int_eq(aq_submit(c->other, th_noop_job, NULL, NULL, &fut),
			 -ENOMEM);
	ck_assert_ptr_null(fut); /* aq_submit(3): NULL on failure */
	aq__fault_arm(AQ__FAULT_ALLOC, 0);
	round_of(c->other, 8);
	/* Bound, list empty after a round bigger than the depot: the refill
	 * finds nothing and the new record fails. */
	round_of(c->pool, ROUND);
	{
		aq_future *futs[ROUND + 2];
		unsigned n = 0;
		int rc = 0;

		/* Hold every record there is (at most ROUND + 1 were ever
		 * needed at once), so that one more must be made. */
		while (n < ROUND + 2) {
			if (n == ROUND)
				aq__fault_arm(AQ__FAULT_ALLOC, 1);
			rc = aq_submit(c->pool, th_noop_job, NULL, NULL,
				       &futs[n]);
			if (rc)
				break;
			n++;
		}
		aq__fault_arm(AQ__FAULT_ALLOC, 0);
		ck_assert_int_eq(rc, -ENOMEM);
		ck_assert_uint_ge(n, ROUND);
		for (unsigned i = 0; i < n; i++) {
			ck_assert_int_eq(aq_future_get(futs[i], NULL, -1), 0);
			aq_future_release(futs[i]);
		}
	}
	return NULL;
}

/*
 * A record that cannot be made fails the submit with -ENOMEM and leaves
 * the cache's count right: with the thread bound to nothing, bound to
 * another cache, and bound with its list empty. Afterwards the pools
 * work, and destroying them frees every cache and record (a miscount
 * would keep a cache for ever).
 */
START_TEST(alloc_failure_is_clean)
{
	long caches = aq__cache_live_caches();
	long records = aq__cache_live_records();
	struct client c;

	client_init(&c, th_pool(1, 0, 0, 0), th_pool(1, 0, 0, 0));
	ck_assert_int_eq(pthread_join(start(failing_client, &c), NULL), 0);
	round_of(c.pool, 4);
	round_of(c.other, 4);
	aq_pool_destroy(c.pool);
	aq_pool_destroy(c.other);
	ck_assert_int_eq(aq__cache_live_caches(), caches);
	ck_assert_int_eq(aq__cache_live_records(), records);
	client_fini(&c);
}
END_TEST

Suite *cache_suite(void)
{
	Suite *s = suite_create("cache");
	TCase *reuse = tcase_create("reuse");
	TCase *life = tcase_create("lifetime");
	TCase *pools = tcase_create("pools");
	TCase *fail = tcase_create("failure");

	tcase_set_timeout(reuse, TH_TIMEOUT);
	tcase_set_timeout(life, TH_TIMEOUT);
	tcase_set_timeout(pools, TH_TIMEOUT);
	tcase_set_timeout(fail, TH_TIMEOUT);
	tcase_add_test(reuse, foreign_thread_reuses_records);
	tcase_add_test(life, destroy_then_release_frees_all);
	tcase_add_test(life, thread_exit_frees_list_of_destroyed_pool);
	tcase_add_test(life, release_races_destroy);
	tcase_add_test(pools, alternating_pools_bounded);
	tcase_add_test(pools, worker_allocates_from_other_pool);
	tcase_add_test(fail, alloc_failure_is_clean);
	suite_add_tcase(s, reuse);
	suite_add_tcase(s, life);
	suite_add_tcase(s, pools);
	suite_add_tcase(s, fail);
	return s;
}
