/* SPDX-License-Identifier: MIT */
/* check_ring.c - unit and stress tests of the MPMC ring (lib/ring.c). */
#include <errno.h>
#include <pthread.h>
#include <sched.h>
#include <stdatomic.h>
#include <stdint.h>
#include <stdlib.h>

#include <check.h>

#include "helpers.h"
#include "ring.h"
#include "suites.h"

/*
 * Distinct job functions, so the fn word of an item can carry a tag the
 * tests check (they are never called).
 */
static int tag0(void *a, void **r) { (void)a; (void)r; return 10; }
static int tag1(void *a, void **r) { (void)a; (void)r; return 11; }
static int tag2(void *a, void **r) { (void)a; (void)r; return 12; }
static int tag3(void *a, void **r) { (void)a; (void)r; return 13; }
static const aq_job_fn tags[4] = { tag0, tag1, tag2, tag3 };

/* An item whose fn is tags[n % 4] and whose arg is the value arg. */
static struct aq__ring_item item_of(uintptr_t n, uintptr_t arg)
{
	struct aq__ring_item it = { tags[n % 4], (void *)arg };

	return it;
}

/* Whether out.fn is the tag item_of(n, ...) put there. */
static bool fn_is(struct aq__ring_item out, uintptr_t n)
{
	return out.fn == tags[n % 4];
}

static void ring_init_ok(struct aq__ring *r, uint32_t capacity)
{
	ck_assert_int_eq(aq__ring_init(r, capacity), 0);
}

/* ---- capacity ----------------------------------------------------------- */

START_TEST(test_capacity_rounding)
{
	static const struct {
		uint32_t asked, real;
	} cases[] = {
		{ 1, 2 },    { 2, 2 },       { 3, 4 },       { 4, 4 },
		{ 5, 8 },    { 1000, 1024 }, { 4095, 4096 }, { 4096, 4096 },
		{ 4097, 8192 },
	};

	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		struct aq__ring r;

		ring_init_ok(&r, cases[i].asked);
		ck_assert_msg(aq__ring_capacity(&r) == cases[i].real,
			      "capacity %u -> %u, expected %u", cases[i].asked,
			      aq__ring_capacity(&r), cases[i].real);
		aq__ring_fini(&r);
	}
}
END_TEST

/* Push until full: exactly `capacity` pushes succeed, then -EAGAIN. */
START_TEST(test_full_at_capacity)
{
	static const uint32_t caps[] = { 2, 4, 8, 64, 4096 };

	for (size_t c = 0; c < sizeof(caps) / sizeof(caps[0]); c++) {
		struct aq__ring r;
		struct aq__ring_item out;

		ring_init_ok(&r, caps[c]);
		for (uint32_t i = 0; i < caps[c]; i++)
			ck_assert_int_eq(aq__ring_push(&r, item_of(1, i + 1)),
					 0);
		ck_assert_int_eq(aq__ring_push(&r, item_of(1, 999999)),
				 -EAGAIN);
		ck_assert_int_eq(aq__ring_push(&r, item_of(1, 999999)),
				 -EAGAIN);
		/* One pop makes room for exactly one push. */
		ck_assert(aq__ring_pop(&r, &out));
		ck_assert_ptr_eq(out.arg, (void *)1);
		ck_assert_int_eq(aq__ring_push(&r, item_of(1, caps[c] + 1)),
				 0);
		ck_assert_int_eq(aq__ring_push(&r, item_of(1, 999999)),
				 -EAGAIN);
		/* Everything comes out in order, and nothing else. */
		for (uint32_t i = 2; i <= caps[c] + 1; i++) {
			ck_assert(aq__ring_pop(&r, &out));
			ck_assert_ptr_eq(out.arg, (void *)(uintptr_t)i);
		}
		ck_assert(!aq__ring_pop(&r, &out));
		aq__ring_fini(&r);
	}
}
END_TEST

/* ---- order and emptiness ------------------------------------------------ */

START_TEST(test_fifo_both_words)
{
	struct aq__ring r;
	struct aq__ring_item out;

	ring_init_ok(&r, 16);
	for (uintptr_t i = 0; i < 16; i++)
		ck_assert_int_eq(aq__ring_push(&r, item_of(1000 + i, 2000 + i)),
				 0);
	for (uintptr_t i = 0; i < 16; i++) {
		ck_assert(aq__ring_pop(&r, &out));
		ck_assert(fn_is(out, 1000 + i));
		ck_assert_ptr_eq(out.arg, (void *)(2000 + i));
	}
	ck_assert(!aq__ring_pop(&r, &out));
	aq__ring_fini(&r);
}
END_TEST

/* ---- batches (aq__ring_push_n) ----------------------------------------- */

/* jobs[i] = item_of(base + i, base + i), as struct aq_job. */
static void jobs_of(struct aq_job *jobs, unsigned n, uintptr_t base)
{
	for (unsigned i = 0; i < n; i++) {
		struct aq__ring_item it = item_of(base + i, base + i);

		jobs[i].fn = it.fn;
		jobs[i].arg = it.arg;
	}
}

/* A batch takes what room there is, in order, and no more. */
START_TEST(test_push_n_partial)
{
	struct aq_job jobs[10];
	struct aq__ring r;
	struct aq__ring_item out;

	ring_init_ok(&r, 8);
	for (uintptr_t i = 1; i <= 3; i++)
		ck_assert_int_eq(aq__ring_push(&r, item_of(i, i)), 0);
	jobs_of(jobs, 10, 4);
	ck_assert_int_eq(aq__ring_push_n(&r, jobs, 0), 0);
	ck_assert_int_eq(aq__ring_push_n(&r, jobs, 10), 5); /* 4 .. 8 */
	ck_assert_int_eq(aq__ring_push_n(&r, jobs + 5, 5), -EAGAIN);
	ck_assert_int_eq(aq__ring_push(&r, item_of(99, 99)), -EAGAIN);
	/* Two pops: room for exactly two of the rest. */
	ck_assert(aq__ring_pop(&r, &out));
	ck_assert(aq__ring_pop(&r, &out));
	ck_assert_ptr_eq(out.arg, (void *)2);
	ck_assert_int_eq(aq__ring_push_n(&r, jobs + 5, 5), 2); /* 9, 10 */
	for (uintptr_t i = 3; i <= 10; i++) {
		ck_assert(aq__ring_pop(&r, &out));
		ck_assert_ptr_eq(out.arg, (void *)i);
		ck_assert(fn_is(out, i));
	}
	ck_assert(!aq__ring_pop(&r, &out));
	ck_assert(!aq__ring_nonempty(&r));
	aq__ring_fini(&r);
}
END_TEST

/* Batches go round the ring many times, each exactly once and in order. */
START_TEST(test_push_n_laps)
{
	struct aq_job jobs[7];
	struct aq__ring r;
	struct aq__ring_item out;
	uintptr_t next_in = 1, next_out = 1;

	ring_init_ok(&r, 16);
	while (next_in <= 5000) {
		int n;

		jobs_of(jobs, 7, next_in);
		n = aq__ring_push_n(&r, jobs, 7);
		ck_assert_msg(n >= 1 && n <= 7, "push_n returned %d", n);
		next_in += (uintptr_t)n;
		/* Drain at a different pace, so that the free room and the
		 * batch boundaries keep shifting against the ring's end. */
		for (int i = 0; i < 5 && aq__ring_pop(&r, &out); i++) {
			ck_assert_ptr_eq(out.arg, (void *)next_out);
			ck_assert(fn_is(out, next_out));
			next_out++;
		}
		while (!aq__ring_has_space(&r) && aq__ring_pop(&r, &out)) {
			ck_assert_ptr_eq(out.arg, (void *)next_out);
			next_out++;
		}
	}
	while (aq__ring_pop(&r, &out)) {
		ck_assert_ptr_eq(out.arg, (void *)next_out);
		next_out++;
	}
	ck_assert_uint_eq(next_out, next_in);
	aq__ring_fini(&r);
}
END_TEST

START_TEST(test_push_n_closed)
{
	struct aq_job jobs[4];
	struct aq__ring r;
	struct aq__ring_item out;

	ring_init_ok(&r, 4);
	jobs_of(jobs, 4, 1);
	ck_assert_int_eq(aq__ring_push_n(&r, jobs, 2), 2);
	aq__ring_close(&r);
	ck_assert_int_eq(aq__ring_push_n(&r, jobs + 2, 2), -ESHUTDOWN);
	/* What was pushed before the close still comes out. */
	ck_assert(aq__ring_pop(&r, &out));
	ck_assert_ptr_eq(out.arg, (void *)1);
	ck_assert(aq__ring_pop(&r, &out));
	ck_assert_ptr_eq(out.arg, (void *)2);
	ck_assert(aq__ring_drained(&r));
	aq__ring_fini(&r);
}
END_TEST

/* Closed and full: both push and push_n say closed, not full (a push whose
 * position carries the closed bit can never match a cell). */
START_TEST(test_push_closed_full)
{
	struct aq_job jobs[2];
	struct aq__ring r;

	ring_init_ok(&r, 2);
	jobs_of(jobs, 2, 1);
	ck_assert_int_eq(aq__ring_push_n(&r, jobs, 2), 2);
	ck_assert_int_eq(aq__ring_push(&r, item_of(3, 3)), -EAGAIN);
	aq__ring_close(&r);
	ck_assert_int_eq(aq__ring_push(&r, item_of(3, 3)), -ESHUTDOWN);
	ck_assert_int_eq(aq__ring_push_n(&r, jobs, 2), -ESHUTDOWN);
	aq__ring_fini(&r);
}
END_TEST

START_TEST(test_pop_empty)
{
	struct aq__ring r;
	struct aq__ring_item out;

	ring_init_ok(&r, 4);
	ck_assert(!aq__ring_pop(&r, &out));
	ck_assert(!aq__ring_pop(&r, &out));
	ck_assert_int_eq(aq__ring_push(&r, item_of(7, 8)), 0);
	ck_assert(aq__ring_pop(&r, &out));
	ck_assert(fn_is(out, 7));
	ck_assert_ptr_eq(out.arg, (void *)8);
	ck_assert(!aq__ring_pop(&r, &out));
	/* NULL words are ordinary items, not "empty". */
	{
		struct aq__ring_item nulls = { NULL, NULL };

		ck_assert_int_eq(aq__ring_push(&r, nulls), 0);
	}
	ck_assert(aq__ring_pop(&r, &out));
	ck_assert(out.fn == NULL);
	ck_assert_ptr_null(out.arg);
	ck_assert(!aq__ring_pop(&r, &out));
	aq__ring_fini(&r);
}
END_TEST

START_TEST(test_nonempty_has_space)
{
	struct aq__ring r;
	struct aq__ring_item out;

	ring_init_ok(&r, 4);
	ck_assert(!aq__ring_nonempty(&r));
	ck_assert(aq__ring_has_space(&r));
	for (uintptr_t i = 1; i <= 4; i++) {
		ck_assert(aq__ring_has_space(&r));
		ck_assert_int_eq(aq__ring_push(&r, item_of(i, i)), 0);
		ck_assert(aq__ring_nonempty(&r));
	}
	ck_assert(!aq__ring_has_space(&r));
	ck_assert(aq__ring_pop(&r, &out));
	ck_assert(aq__ring_has_space(&r));
	ck_assert(aq__ring_nonempty(&r));
	ck_assert_int_eq(aq__ring_push(&r, item_of(5, 5)), 0);
	ck_assert(!aq__ring_has_space(&r));
	for (int i = 0; i < 4; i++) {
		ck_assert(aq__ring_nonempty(&r));
		ck_assert(aq__ring_pop(&r, &out));
	}
	ck_assert(!aq__ring_nonempty(&r));
	ck_assert(aq__ring_has_space(&r));
	aq__ring_fini(&r);
}
END_TEST

/* ---- close and drained -------------------------------------------------- */

START_TEST(test_close_empty)
{
	struct aq__ring r;
	struct aq__ring_item out;

	ring_init_ok(&r, 8);
	ck_assert(!aq__ring_drained(&r)); /* empty but open */
	aq__ring_close(&r);
	ck_assert(aq__ring_drained(&r));
	ck_assert_int_eq(aq__ring_push(&r, item_of(1, 1)), -ESHUTDOWN);
	ck_assert(!aq__ring_pop(&r, &out));
	ck_assert(!aq__ring_nonempty(&r));
	ck_assert(aq__ring_drained(&r));
	/* Closing twice is harmless. */
	aq__ring_close(&r);
	ck_assert(aq__ring_drained(&r));
	ck_assert_int_eq(aq__ring_push(&r, item_of(1, 1)), -ESHUTDOWN);
	aq__ring_fini(&r);
}
END_TEST

START_TEST(test_close_with_items)
{
	struct aq__ring r;
	struct aq__ring_item out;

	ring_init_ok(&r, 8);
	for (uintptr_t i = 1; i <= 3; i++)
		ck_assert_int_eq(aq__ring_push(&r, item_of(i, i)), 0);
	ck_assert(!aq__ring_drained(&r));
	aq__ring_close(&r);
	ck_assert_int_eq(aq__ring_push(&r, item_of(9, 9)), -ESHUTDOWN);
	/* Items accepted before the close still come out, in order. */
	for (uintptr_t i = 1; i <= 3; i++) {
		ck_assert(!aq__ring_drained(&r));
		ck_assert(aq__ring_nonempty(&r));
		ck_assert(aq__ring_pop(&r, &out));
		ck_assert_ptr_eq(out.arg, (void *)i);
	}
	ck_assert(aq__ring_drained(&r));
	ck_assert(!aq__ring_nonempty(&r));
	ck_assert(!aq__ring_pop(&r, &out));
	ck_assert_int_eq(aq__ring_push(&r, item_of(9, 9)), -ESHUTDOWN);
	aq__ring_fini(&r);
}
END_TEST

/* A full ring that is closed reports -ESHUTDOWN, not -EAGAIN: a producer
 * waiting for space must learn that none will ever come. */
START_TEST(test_close_full)
{
	struct aq__ring r;
	struct aq__ring_item out;

	ring_init_ok(&r, 4);
	for (uintptr_t i = 1; i <= 4; i++)
		ck_assert_int_eq(aq__ring_push(&r, item_of(i, i)), 0);
	ck_assert_int_eq(aq__ring_push(&r, item_of(5, 5)), -EAGAIN);
	ck_assert(!aq__ring_has_space(&r));
	aq__ring_close(&r);
	ck_assert_int_eq(aq__ring_push(&r, item_of(5, 5)), -ESHUTDOWN);
	ck_assert(aq__ring_has_space(&r)); /* "or would fail as closed" */
	ck_assert(!aq__ring_drained(&r));
	for (uintptr_t i = 1; i <= 4; i++) {
		ck_assert(aq__ring_pop(&r, &out));
		ck_assert_ptr_eq(out.arg, (void *)i);
	}
	ck_assert(aq__ring_drained(&r));
	aq__ring_fini(&r);
}
END_TEST

/* ---- wrap-around -------------------------------------------------------- */

START_TEST(test_wraparound)
{
	struct aq__ring r;
	struct aq__ring_item out;
	uintptr_t next_in = 1, next_out = 1;

	/* Capacity 4, three in and three out per lap: the positions slide
	 * over the cells in every phase. */
	ring_init_ok(&r, 4);
	for (int lap = 0; lap < 20000; lap++) {
		for (int k = 0; k < 3; k++) {
			ck_assert_int_eq(aq__ring_push(&r, item_of(next_in,
								   ~next_in)),
					 0);
			next_in++;
		}
		for (int k = 0; k < 3; k++) {
			ck_assert(aq__ring_pop(&r, &out));
			ck_assert(fn_is(out, next_out));
			ck_assert_ptr_eq(out.arg, (void *)~next_out);
			next_out++;
		}
		ck_assert(!aq__ring_pop(&r, &out));
	}
	/* After 60,000 items the ring still holds exactly its capacity. */
	for (int k = 0; k < 4; k++)
		ck_assert_int_eq(aq__ring_push(&r, item_of(next_in++, 0)), 0);
	ck_assert_int_eq(aq__ring_push(&r, item_of(0, 0)), -EAGAIN);
	for (int k = 0; k < 4; k++) {
		ck_assert(aq__ring_pop(&r, &out));
		ck_assert(fn_is(out, next_out));
		ck_assert_ptr_eq(out.arg, (void *)0);
		next_out++;
	}
	ck_assert(!aq__ring_pop(&r, &out));
	aq__ring_fini(&r);

	/* The smallest ring, one in one out and two in two out. */
	ring_init_ok(&r, 2);
	next_in = next_out = 1;
	for (int lap = 0; lap < 50000; lap++) {
		int n = 1 + (lap & 1);

		for (int k = 0; k < n; k++)
			ck_assert_int_eq(aq__ring_push(&r, item_of(0,
								   next_in++)),
					 0);
		if (n == 2)
			ck_assert_int_eq(aq__ring_push(&r, item_of(0, 0)),
					 -EAGAIN);
		for (int k = 0; k < n; k++) {
			ck_assert(aq__ring_pop(&r, &out));
			ck_assert_ptr_eq(out.arg, (void *)next_out++);
		}
	}
	ck_assert(!aq__ring_pop(&r, &out));
	aq__ring_fini(&r);
}
END_TEST

/* ---- stress: 4 producers x 4 consumers ---------------------------------- */

#define S_PRODUCERS 4
#define S_CONSUMERS 4
#define S_PER_PRODUCER 200000u
#define S_TOTAL (S_PRODUCERS * S_PER_PRODUCER)

static struct aq__ring s_ring;
static pthread_barrier_t s_start;
static atomic_uchar *s_seen;       /* per item: times it was dequeued */
static atomic_uint s_dequeued;     /* items dequeued, all consumers */

struct s_producer {
	unsigned id;
	bool batches;      /* push with aq__ring_push_n(), 1..17 at a time */
	uint64_t checksum; /* sum of the values it pushed */
	unsigned errors;   /* pushes that failed with other than -EAGAIN */
};

struct s_consumer {
	uint64_t checksum;   /* sum of the values it popped */
	unsigned count;      /* items it popped */
	unsigned duplicates; /* items it found already seen */
	unsigned disorder;   /* one producer's items out of order */
	unsigned corrupt;    /* bad value, or fn not matching the value */
};

/* Item value: producer id and sequence number, never 0. */
static uintptr_t s_value(unsigned producer, unsigned seq)
{
	return (uintptr_t)producer * S_PER_PRODUCER + seq + 1;
}

static void *s_produce(void *arg)
{
	struct s_producer *p = arg;

	pthread_barrier_wait(&s_start);
	for (unsigned seq = 0; p->batches && seq < S_PER_PRODUCER;) {
		struct aq_job jobs[17];
		unsigned n = 1 + (seq * 7 + p->id) % 17;
		int ret;

		if (n > S_PER_PRODUCER - seq)
			n = S_PER_PRODUCER - seq;
		for (unsigned i = 0; i < n; i++) {
			struct aq__ring_item it =
				item_of(p->id, s_value(p->id, seq + i));

			jobs[i].fn = it.fn;
			jobs[i].arg = it.arg;
		}
		while ((ret = aq__ring_push_n(&s_ring, jobs, n)) == -EAGAIN)
			sched_yield();
		if (ret < 1 || (unsigned)ret > n) {
			p->errors++;
			break;
		}
		for (unsigned i = 0; i < (unsigned)ret; i++)
			p->checksum += s_value(p->id, seq + i);
		seq += (unsigned)ret;
	}
	for (unsigned seq = 0; !p->batches && seq < S_PER_PRODUCER; seq++) {
		uintptr_t v = s_value(p->id, seq);
		struct aq__ring_item it = item_of(p->id, v);
		int ret;

		while ((ret = aq__ring_push(&s_ring, it)) == -EAGAIN)
			sched_yield();
		if (ret != 0)
			p->errors++;
		else
			p->checksum += v;
	}
	return NULL;
}

static void *s_consume(void *arg)
{
	struct s_consumer *c = arg;
	long long last[S_PRODUCERS];

	for (int i = 0; i < S_PRODUCERS; i++)
		last[i] = -1;
	pthread_barrier_wait(&s_start);
	while (atomic_load(&s_dequeued) < S_TOTAL) {
		struct aq__ring_item it;
		uintptr_t v;
		unsigned producer, seq;

		if (!aq__ring_pop(&s_ring, &it)) {
			sched_yield();
			continue;
		}
		v = (uintptr_t)it.arg;
		if (v == 0 || v > S_TOTAL) {
			c->corrupt++;
			atomic_fetch_add(&s_dequeued, 1);
			continue;
		}
		producer = (unsigned)((v - 1) / S_PER_PRODUCER);
		seq = (unsigned)((v - 1) % S_PER_PRODUCER);
		if (!fn_is(it, producer))
			c->corrupt++;
		if ((long long)seq <= last[producer])
			c->disorder++;
		last[producer] = seq;
		if (atomic_fetch_add(&s_seen[v - 1], 1) != 0)
			c->duplicates++;
		c->checksum += v;
		c->count++;
		atomic_fetch_add(&s_dequeued, 1);
	}
	return NULL;
}

/* _i = 0: single pushes; 1: producers 1 and 3 push in batches of 1..17
 * (aq__ring_push_n()), racing the single pushes of 0 and 2. */
START_TEST(test_stress_mpmc)
{
	pthread_t pt[S_PRODUCERS], ct[S_CONSUMERS];
	struct s_producer prod[S_PRODUCERS] = { { 0 } };
	struct s_consumer cons[S_CONSUMERS] = { { 0 } };
	uint64_t pushed_sum = 0, popped_sum = 0, expected_sum;
	unsigned popped = 0, dup = 0, disorder = 0, corrupt = 0, errors = 0;
	struct aq__ring_item it;

	/* A small ring, so that producers meet a full ring and the cells
	 * go round thousands of laps. */
	ring_init_ok(&s_ring, 64);
	s_seen = malloc(S_TOTAL * sizeof(*s_seen));
	ck_assert_ptr_nonnull(s_seen);
	for (unsigned i = 0; i < S_TOTAL; i++)
		atomic_init(&s_seen[i], 0);
	atomic_init(&s_dequeued, 0);
	ck_assert_int_eq(pthread_barrier_init(&s_start, NULL,
					      S_PRODUCERS + S_CONSUMERS),
			 0);
	for (unsigned i = 0; i < S_CONSUMERS; i++)
		ck_assert_int_eq(pthread_create(&ct[i], NULL, s_consume,
						&cons[i]),
				 0);
	for (unsigned i = 0; i < S_PRODUCERS; i++) {
		prod[i].id = i;
		prod[i].batches = _i == 1 && (i & 1);
		ck_assert_int_eq(pthread_create(&pt[i], NULL, s_produce,
						&prod[i]),
				 0);
	}
	for (unsigned i = 0; i < S_PRODUCERS; i++)
		pthread_join(pt[i], NULL);
	for (unsigned i = 0; i < S_CONSUMERS; i++)
		pthread_join(ct[i], NULL);

	for (unsigned i = 0; i < S_PRODUCERS; i++) {
		pushed_sum += prod[i].checksum;
		errors += prod[i].errors;
	}
	for (unsigned i = 0; i < S_CONSUMERS; i++) {
		popped_sum += cons[i].checksum;
		popped += cons[i].count;
		dup += cons[i].duplicates;
		disorder += cons[i].disorder;
		corrupt += cons[i].corrupt;
	}
	ck_assert_uint_eq(errors, 0);
	ck_assert_uint_eq(corrupt, 0);
	ck_assert_uint_eq(dup, 0);
	ck_assert_uint_eq(disorder, 0);
	ck_assert_uint_eq(popped, S_TOTAL);
	for (unsigned i = 0; i < S_TOTAL; i++)
		ck_assert_msg(atomic_load(&s_seen[i]) == 1,
			      "item %u dequeued %u times", i + 1,
			      (unsigned)atomic_load(&s_seen[i]));
	/* Values are 1..S_TOTAL, each once. */
	expected_sum = (uint64_t)S_TOTAL * (S_TOTAL + 1) / 2;
	ck_assert_uint_eq(pushed_sum, expected_sum);
	ck_assert_uint_eq(popped_sum, expected_sum);
	ck_assert(!aq__ring_pop(&s_ring, &it));
	ck_assert(!aq__ring_nonempty(&s_ring));

	pthread_barrier_destroy(&s_start);
	free(s_seen);
	aq__ring_fini(&s_ring);
}
END_TEST

/* ---- stress: close while producers push --------------------------------- */

#define C_PRODUCERS 4
#define C_CONSUMERS 2
#define C_MAX_PER 1000000u /* a producer stops here if never closed */

static atomic_int c_accepted;     /* pushes that returned 0 */
static atomic_uchar *c_seen;      /* per value: times it was dequeued */

struct c_producer {
	unsigned id;
	unsigned accepted; /* its pushes that returned 0 */
	unsigned errors;   /* results other than 0, -EAGAIN, -ESHUTDOWN */
	bool saw_shutdown; /* it stopped on -ESHUTDOWN */
};

struct c_consumer {
	unsigned count;      /* items it popped */
	unsigned duplicates; /* values popped twice */
	unsigned corrupt;    /* values out of range */
};

static void *c_produce(void *arg)
{
	struct c_producer *p = arg;

	for (unsigned seq = 0; seq < C_MAX_PER; seq++) {
		uintptr_t v = (uintptr_t)p->id * C_MAX_PER + seq + 1;
		int ret;

		while ((ret = aq__ring_push(&s_ring, item_of(0, v))) ==
		       -EAGAIN)
			sched_yield();
		if (ret == -ESHUTDOWN) {
			p->saw_shutdown = true;
			break;
		}
		if (ret != 0) {
			p->errors++;
			break;
		}
		p->accepted++;
		atomic_fetch_add(&c_accepted, 1);
	}
	return NULL;
}

static void *c_consume(void *arg)
{
	struct c_consumer *c = arg;

	/* Pop until the ring is closed and everything claimed is taken. */
	while (!aq__ring_drained(&s_ring)) {
		struct aq__ring_item it;
		uintptr_t v;

		if (!aq__ring_pop(&s_ring, &it)) {
			sched_yield();
			continue;
		}
		v = (uintptr_t)it.arg;
		if (v == 0 || v > (uintptr_t)C_PRODUCERS * C_MAX_PER) {
			c->corrupt++;
			continue;
		}
		if (atomic_fetch_add(&c_seen[v - 1], 1) != 0)
			c->duplicates++;
		c->count++;
	}
	return NULL;
}

START_TEST(test_stress_close)
{
	const size_t nvalues = (size_t)C_PRODUCERS * C_MAX_PER;
	pthread_t pt[C_PRODUCERS], ct[C_CONSUMERS];
	struct c_producer prod[C_PRODUCERS] = { { 0 } };
	struct c_consumer cons[C_CONSUMERS] = { { 0 } };
	unsigned accepted = 0, popped = 0;
	struct aq__ring_item it;

	ring_init_ok(&s_ring, 32);
	c_seen = malloc(nvalues * sizeof(*c_seen));
	ck_assert_ptr_nonnull(c_seen);
	for (size_t i = 0; i < nvalues; i++)
		atomic_init(&c_seen[i], 0);
	atomic_init(&c_accepted, 0);
	for (unsigned i = 0; i < C_CONSUMERS; i++)
		ck_assert_int_eq(pthread_create(&ct[i], NULL, c_consume,
						&cons[i]),
				 0);
	for (unsigned i = 0; i < C_PRODUCERS; i++) {
		prod[i].id = i;
		ck_assert_int_eq(pthread_create(&pt[i], NULL, c_produce,
						&prod[i]),
				 0);
	}
	/* Close in the middle of the traffic. */
	ck_assert(th_poll_int_ge(&c_accepted, 20000));
	aq__ring_close(&s_ring);
	for (unsigned i = 0; i < C_PRODUCERS; i++)
		pthread_join(pt[i], NULL);
	for (unsigned i = 0; i < C_CONSUMERS; i++)
		pthread_join(ct[i], NULL);

	for (unsigned i = 0; i < C_PRODUCERS; i++) {
		ck_assert_uint_eq(prod[i].errors, 0);
		/* Stopped by the close, or (on a very odd schedule) by
		 * running out of values first. */
		ck_assert(prod[i].saw_shutdown ||
			  prod[i].accepted == C_MAX_PER);
		accepted += prod[i].accepted;
	}
	for (unsigned i = 0; i < C_CONSUMERS; i++) {
		ck_assert_uint_eq(cons[i].corrupt, 0);
		ck_assert_uint_eq(cons[i].duplicates, 0);
		popped += cons[i].count;
	}
	/* Every accepted item came out exactly once; nothing else did. */
	ck_assert_uint_eq(popped, accepted);
	for (unsigned p = 0; p < C_PRODUCERS; p++)
		for (size_t seq = 0; seq < C_MAX_PER; seq++) {
			unsigned want = seq < prod[p].accepted ? 1 : 0;
			size_t v = (size_t)p * C_MAX_PER + seq;

			ck_assert_msg(atomic_load(&c_seen[v]) == want,
				      "producer %u item %zu seen %u times",
				      p, seq, (unsigned)atomic_load(&c_seen[v]));
		}
	ck_assert(aq__ring_drained(&s_ring));
	ck_assert(!aq__ring_pop(&s_ring, &it));
	free(c_seen);
	aq__ring_fini(&s_ring);
}
END_TEST

Suite *ring_suite(void)
{
	Suite *s = suite_create("ring");
	TCase *tc = tcase_create("basic");
	TCase *stress = tcase_create("stress");

	tcase_set_timeout(tc, TH_TIMEOUT);
	tcase_add_test(tc, test_capacity_rounding);
	tcase_add_test(tc, test_full_at_capacity);
	tcase_add_test(tc, test_fifo_both_words);
	tcase_add_test(tc, test_pop_empty);
	tcase_add_test(tc, test_nonempty_has_space);
	tcase_add_test(tc, test_close_empty);
	tcase_add_test(tc, test_close_with_items);
	tcase_add_test(tc, test_close_full);
	tcase_add_test(tc, test_wraparound);
	tcase_add_test(tc, test_push_n_partial);
	tcase_add_test(tc, test_push_n_laps);
	tcase_add_test(tc, test_push_n_closed);
	tcase_add_test(tc, test_push_closed_full);
	suite_add_tcase(s, tc);

	tcase_set_timeout(stress, TH_TIMEOUT_STRESS);
	tcase_add_loop_test(stress, test_stress_mpmc, 0, 2);
	tcase_add_test(stress, test_stress_close);
	suite_add_tcase(s, stress);
	return s;
}
