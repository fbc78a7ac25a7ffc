/* SPDX-License-Identifier: MIT */
/*
 * check_metrics.c - aq_pool_metrics(): OpenMetrics text checked line by
 * line, values equal to aq_pool_stats() for a known workload, cumulative
 * buckets equal to the library's own, no window taken, truncation and bad
 * arguments.
 */
#include <errno.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <check.h>

#include "fault.h"
#include "helpers.h"
#include "pool.h" /* aq__stats_read(): the raw buckets to compare with */
#include "stats.h"
#include "suites.h"
#include "vclock.h"

/* ---- a strict reader of the text ----------------------------------------- */

#define MAX_SAMPLES 1024
#define MAX_FAMILIES 64

struct sample {
	char name[96];
	char labels[160]; /* between the braces, as written */
	char value[40];
	int family;       /* index into families */
};

struct family {
	char name[96];
	char type[16];
};

struct scrape {
	struct sample s[MAX_SAMPLES];
	unsigned n;
	struct family f[MAX_FAMILIES];
	unsigned nf;
};

static bool name_ok(const char *s, size_t len)
{
	if (!len || !(s[0] == '_' || s[0] == ':' ||
		      (s[0] >= 'a' && s[0] <= 'z') || (s[0] >= 'A' && s[0] <= 'Z')))
		return false;
	for (size_t i = 1; i < len; i++)
		if (!(s[i] == '_' || s[i] == ':' || (s[i] >= 'a' && s[i] <= 'z') ||
		      (s[i] >= 'A' && s[i] <= 'Z') || (s[i] >= '0' && s[i] <= '9')))
			return false;
	return true;
}

/* A non-negative decimal: digits, optionally '.' and digits. */
static bool number_ok(const char *s)
{
	size_t i = 0;

	while (s[i] >= '0' && s[i] <= '9')
		i++;
	if (i == 0)
		return false;
	if (s[i] == '.') {
		size_t j = ++i;

		while (s[i] >= '0' && s[i] <= '9')
			i++;
		if (i == j)
			return false;
	}
	return s[i] == '\0';
}

/* The suffixes a sample of a family of this type may have. */
static bool suffix_ok(const char *type, const char *suffix)
{
	if (!strcmp(type, "counter"))
		return !strcmp(suffix, "_total");
	if (!strcmp(type, "gauge"))
		return !strcmp(suffix, "");
	if (!strcmp(type, "histogram"))
		return !strcmp(suffix, "_bucket") || !strcmp(suffix, "_count") ||
		       !strcmp(suffix, "_sum");
	if (!strcmp(type, "summary"))
		return !strcmp(suffix, "_count") || !strcmp(suffix, "_sum");
	return false;
}

/*
 * Labels: name="value" pairs, comma separated, values with only \\, \" and
 * \n escapes; the first is pool=.
 */
static bool labels_ok(const char *l)
{
	bool first = true;

	while (*l) {
		const char *eq = strchr(l, '=');

		if (!eq || !name_ok(l, (size_t)(eq - l)) || eq[1] != '"')
			return false;
		if (first && strncmp(l, "pool=", 5))
			return false;
		l = eq + 2;
		while (*l != '"') {
			if (!*l || *l == '\n')
				return false;
			if (*l == '\\') {
				if (l[1] != '\\' && l[1] != '"' && l[1] != 'n')
					return false;
				l++;
			}
			l++;
		}
		l++;
		if (*l == ',')
			l++;
		else if (*l)
			return false;
		first = false;
	}
	return !first;
}

/* Check every line of text and collect its samples; fails the test on the
 * first line that is not a HELP, TYPE, UNIT, sample or the final EOF. */
static void scrape_parse(struct scrape *sc, const char *text, size_t len)
{
	const char *p = text, *end = text + len;
	int cur = -1;
	bool eof = false;

	memset(sc, 0, sizeof(*sc));
	ck_assert_uint_eq(strlen(text), len);
	ck_assert_msg(len > 0 && text[len - 1] == '\n', "no final newline");
	while (p < end) {
		const char *nl = memchr(p, '\n', (size_t)(end - p));
		char line[512];
		size_t n;

		ck_assert_ptr_nonnull(nl);
		n = (size_t)(nl - p);
		ck_assert_uint_lt(n, sizeof(line));
		memcpy(line, p, n);
		line[n] = '\0';
		p = nl + 1;
		ck_assert_msg(!eof, "a line after # EOF: %s", line);
		if (!strcmp(line, "# EOF")) {
			eof = true;
		} else if (!strncmp(line, "# TYPE ", 7)) {
			char *sp = strchr(line + 7, ' ');
			struct family *f = &sc->f[sc->nf];

			ck_assert_msg(sp && name_ok(line + 7, (size_t)(sp - line - 7)),
				      "bad TYPE: %s", line);
			ck_assert_uint_lt(sc->nf, MAX_FAMILIES);
			*sp = '\0';
			for (unsigned i = 0; i < sc->nf; i++)
				ck_assert_msg(strcmp(sc->f[i].name, line + 7),
					      "family %s twice", line + 7);
			ck_assert_msg(suffix_ok(sp + 1, "_count") ||
					      suffix_ok(sp + 1, "") ||
					      suffix_ok(sp + 1, "_total"),
				      "bad type %s", sp + 1);
			ck_assert_uint_lt(strlen(line + 7), sizeof(f->name));
			ck_assert_uint_lt(strlen(sp + 1), sizeof(f->type));
			snprintf(f->name, sizeof(f->name), "%.95s", line + 7);
			snprintf(f->type, sizeof(f->type), "%.15s", sp + 1);
			cur = (int)sc->nf++;
		} else if (!strncmp(line, "# HELP ", 7) ||
			   !strncmp(line, "# UNIT ", 7)) {
			size_t fl;

			ck_assert_msg(cur >= 0, "metadata before TYPE: %s", line);
			fl = strlen(sc->f[cur].name);
			ck_assert_msg(!strncmp(line + 7, sc->f[cur].name, fl) &&
					      line[7 + fl] == ' ' && line[8 + fl],
				      "metadata of another family: %s", line);
			if (line[2] == 'U')
				ck_assert_str_eq(line + 8 + fl, "seconds");
		} else {
			struct sample *s = &sc->s[sc->n];
			char *brace = strchr(line, '{'), *close, *suffix;
			size_t fl;

			ck_assert_msg(cur >= 0 && line[0] != '#' && brace,
				      "not a sample: %s", line);
			close = strstr(brace, "} ");
			ck_assert_msg(close && !strchr(close + 2, ' '),
				      "bad sample: %s", line);
			ck_assert_uint_lt(sc->n, MAX_SAMPLES);
			*brace = *close = '\0';
			ck_assert_msg(name_ok(line, strlen(line)), "name: %s", line);
			fl = strlen(sc->f[cur].name);
			ck_assert_msg(!strncmp(line, sc->f[cur].name, fl),
				      "sample %s outside its family", line);
			suffix = line + fl;
			ck_assert_msg(suffix_ok(sc->f[cur].type, suffix),
				      "%s in a %s", line, sc->f[cur].type);
			ck_assert_msg(labels_ok(brace + 1), "labels: %s", brace + 1);
			ck_assert_msg(number_ok(close + 2), "value: %s", close + 2);
			ck_assert_uint_lt(strlen(line), sizeof(s->name));
			ck_assert_uint_lt(strlen(brace + 1), sizeof(s->labels));
			ck_assert_uint_lt(strlen(close + 2), sizeof(s->value));
			snprintf(s->name, sizeof(s->name), "%.95s", line);
			snprintf(s->labels, sizeof(s->labels), "%.159s", brace + 1);
			snprintf(s->value, sizeof(s->value), "%.39s", close + 2);
			s->family = cur;
			sc->n++;
		}
	}
	ck_assert_msg(eof, "no # EOF");
}

/* An exact decimal of seconds as nanoseconds. */
static uint64_t value_ns(const char *v)
{
	const char *dot = strchr(v, '.');
	uint64_t ns = strtoull(v, NULL, 10) * 1000000000u;

	if (dot) {
		uint64_t scale = 100000000u;

		for (const char *d = dot + 1; *d; d++, scale /= 10) {
			ck_assert_uint_gt(scale, 0);
			ns += (uint64_t)(*d - '0') * scale;
		}
	}
	return ns;
}

static const struct sample *find(const struct scrape *sc, const char *name,
				 const char *labels)
{
	for (unsigned i = 0; i < sc->n; i++)
		if (!strcmp(sc->s[i].name, name) &&
		    !strcmp(sc->s[i].labels, labels))
			return &sc->s[i];
	ck_abort_msg("no sample %s{%s}", name, labels);
	return NULL;
}

static uint64_t get(const struct scrape *sc, const char *name,
		    const char *labels)
{
	const struct sample *s = find(sc, name, labels);

	ck_assert_msg(!strchr(s->value, '.'), "%s is not an integer", name);
	return strtoull(s->value, NULL, 10);
}

/* aq_pool_metrics() of the pools into a fresh buffer, parsed. */
static struct scrape *scrape(aq_pool *const *pools, unsigned n)
{
	struct scrape *sc = malloc(sizeof(*sc));
	int len = aq_pool_metrics(pools, n, NULL, 0);
	char *buf;

	ck_assert_ptr_nonnull(sc);
	ck_assert_int_gt(len, 0);
	buf = malloc((size_t)len + 1);
	ck_assert_ptr_nonnull(buf);
	/* Idle pools: the text has not grown since. */
	ck_assert_int_eq(aq_pool_metrics(pools, n, buf, (size_t)len + 1), len);
	scrape_parse(sc, buf, (size_t)len);
	free(buf);
	return sc;
}

/* The figures of st as metrics of pool="name". */
static void assert_equal(const struct scrape *sc, const char *name,
			 const struct aq_pool_stats *st)
{
	char l[128], lo[160];
	static const char *const outcome[] = { "succeeded", "failed",
					       "cancelled", "expired",
					       "skipped" };
	const uint64_t resolved[] = { st->succeeded, st->failed, st->cancelled,
				      st->expired, st->skipped };

	snprintf(l, sizeof(l), "pool=\"%s\"", name);
	ck_assert_uint_eq(get(sc, "libasyncq_jobs_submitted_total", l),
			  st->submitted);
	ck_assert_uint_eq(get(sc, "libasyncq_jobs_started_total", l),
			  st->started);
	for (int i = 0; i < 5; i++) {
		snprintf(lo, sizeof(lo), "%s,outcome=\"%s\"", l, outcome[i]);
		ck_assert_uint_eq(get(sc, "libasyncq_jobs_resolved_total", lo),
				  resolved[i]);
	}
	ck_assert_uint_eq(get(sc, "libasyncq_job_retries_total", l),
			  st->retried);
	ck_assert_uint_eq(get(sc, "libasyncq_jobs_rejected_total", l),
			  st->rejected);
	ck_assert_uint_eq(value_ns(find(sc, "libasyncq_worker_busy_seconds_total",
					l)->value),
			  st->busy_ns);
	ck_assert_uint_eq(get(sc, "libasyncq_jobs_queued", l), st->queued);
	ck_assert_uint_eq(get(sc, "libasyncq_jobs_delayed", l), st->delayed);
	ck_assert_uint_eq(get(sc, "libasyncq_jobs_running", l), st->running);
	ck_assert_uint_eq(get(sc, "libasyncq_workers", l), st->workers);
	ck_assert_uint_eq(get(sc, "libasyncq_workers_busy", l),
			  st->workers_busy);
	ck_assert_uint_eq(get(sc, "libasyncq_job_wait_seconds_count", l),
			  st->wait.count);
	ck_assert_uint_eq(get(sc, "libasyncq_job_run_seconds_count", l),
			  st->run.count);
	ck_assert_uint_eq(get(sc, "libasyncq_job_time_in_system_seconds_count",
			      l),
			  st->timed_done);
	ck_assert_uint_eq(value_ns(find(sc,
					"libasyncq_job_time_in_system_seconds_sum",
					l)->value),
			  st->sojourn_ns);
}

/*
 * The buckets of histogram `name` for pool="pool": ascending le, counts
 * cumulative, +Inf last and equal to _count, each equal to the number of
 * durations below le + 1 ns in the library's own buckets (raw), and _sum
 * equal to raw_sum.
 */
static void assert_buckets(const struct scrape *sc, const char *name,
			   const char *pool, const uint64_t *raw,
			   uint64_t raw_sum)
{
	char bucket[128], count[128], sum[128], prefix[128], pl[96];
	uint64_t prev_le = 0, prev = 0, n = 0;
	bool inf = false;

	snprintf(bucket, sizeof(bucket), "%s_bucket", name);
	snprintf(count, sizeof(count), "%s_count", name);
	snprintf(sum, sizeof(sum), "%s_sum", name);
	snprintf(pl, sizeof(pl), "pool=\"%s\"", pool);
	snprintf(prefix, sizeof(prefix), "%s,le=\"", pl);
	for (unsigned i = 0; i < sc->n; i++) {
		const struct sample *s = &sc->s[i];
		const char *le;
		uint64_t v = strtoull(s->value, NULL, 10);

		if (strcmp(s->name, bucket) ||
		    strncmp(s->labels, prefix, strlen(prefix)))
			continue;
		ck_assert_msg(!inf, "a bucket after +Inf");
		ck_assert_uint_ge(v, prev);
		le = s->labels + strlen(prefix);
		if (!strcmp(le, "+Inf\"")) {
			inf = true;
			ck_assert_uint_eq(v, get(sc, count, pl));
		} else {
			char num[40];
			uint64_t le_ns, below = 0;

			snprintf(num, sizeof(num), "%.*s",
				 (int)(strlen(le) - 1), le);
			ck_assert(number_ok(num));
			le_ns = value_ns(num);
			ck_assert_uint_gt(le_ns, prev_le);
			/* A boundary of the library's buckets: 2^j - 1. */
			ck_assert_uint_eq(le_ns & (le_ns + 1), 0);
			for (int k = 0; k < AQ__HIST_BUCKETS &&
					(UINT64_C(1) << k) <= le_ns; k++)
				below += raw[k];
			ck_assert_uint_eq(v, below);
			prev_le = le_ns;
		}
		prev = v;
		n++;
	}
	ck_assert(inf);
	ck_assert_uint_ge(n, 20);
	ck_assert_uint_eq(value_ns(find(sc, sum, pl)->value), raw_sum);
}

/* Every counter sample of b is at least its value in a. */
static void assert_monotonic(const struct scrape *a, const struct scrape *b)
{
	unsigned counters = 0;

	for (unsigned i = 0; i < a->n; i++) {
		const struct sample *s = &a->s[i];
		const char *type = a->f[s->family].type;

		if (!strcmp(type, "gauge"))
			continue;
		ck_assert_uint_ge(value_ns(find(b, s->name, s->labels)->value),
				  value_ns(s->value));
		counters++;
	}
	ck_assert_uint_gt(counters, 20);
}

/* ---- the workload ----------------------------------------------------------- */

struct pool_quiet_ctx {
	aq_pool *pool;
	uint64_t delayed;
};

static bool pool_quiet(void *arg)
{
	struct pool_quiet_ctx *c = arg;
	struct aq_pool_stats st;

	return aq_pool_stats(c->pool, &st) == 0 && st.queued == 0 &&
	       st.running == 0 && st.delayed == c->delayed &&
	       st.submitted == st.succeeded + st.failed + st.cancelled +
				       st.expired + st.skipped + c->delayed;
}

static aq_pool *metrics_pool(const char *name, struct vclock *vc,
			     unsigned flags)
{
	struct aq_clock clock = { vclock_now, vc };
	struct aq_pool_config cfg = { .workers = 1,
				      .flags = flags,
				      .clock = &clock,
				      .name = name };
	aq_pool *pool = NULL;

	atomic_init(&vc->now, T0);
	ck_assert_int_eq(aq_pool_create(&pool, &cfg), 0);
	return pool;
}

static int fail_job(void *arg, void **result)
{
	(void)arg;
	(void)result;
	return 7;
}

START_TEST(test_metrics_known_workload)
{
	static const struct aq_retry_policy thrice = { .max_attempts = 3 };
	struct vclock vc;
	aq_pool *pool = metrics_pool("known", &vc, AQ_POOL_TIMING);
	struct th_gate gate;
	struct aq_job_opts retry = { .retry = &thrice };
	struct aq_job_opts deadline = { .deadline_ns = T0 + 10 };
	struct aq_job_opts later = { .delay_ns = 3600 * SEC };
	struct pool_quiet_ctx quiet = { pool, 1 };
	aq_future *held, *doomed, *delayed;
	atomic_long count = 0;
	struct aq_pool_stats st;
	struct aq__hists raw;
	struct scrape *first, *second;

	/* One worker held at a gate, and behind it what is known. */
	th_gate_init(&gate);
	ck_assert_int_eq(aq_submit(pool, th_gate_job, &gate, NULL, &held), 0);
	ck_assert(th_gate_wait_entered(&gate, 1));
	for (int i = 0; i < 5; i++)
		ck_assert_int_eq(aq_submit(pool, th_count_job, &count, NULL,
					   NULL),
				 0);
	ck_assert_int_eq(aq_submit(pool, fail_job, NULL, &retry, NULL), 0);
	ck_assert_int_eq(aq_submit(pool, marker_fn, NULL, &deadline, NULL), 0);
	ck_assert_int_eq(aq_submit(pool, marker_fn, NULL, &later, &delayed), 0);
	ck_assert_int_eq(aq_submit(pool, marker_fn, NULL, NULL, &doomed), 0);
	ck_assert_int_eq(aq_future_cancel(doomed), 0);

	first = scrape(&pool, 1);
	ck_assert_int_eq(aq_pool_stats(pool, &st), 0);
	ck_assert_uint_eq(st.submitted, 10);
	ck_assert_uint_eq(st.started, 1);
	ck_assert_uint_eq(st.queued, 8);
	ck_assert_uint_eq(st.delayed, 1);
	ck_assert_uint_eq(st.running, 1);
	ck_assert_uint_eq(st.cancelled, 1);
	assert_equal(first, "known", &st);

	/* The deadline passes; the rest runs. */
	vclock_set(pool, &vc, T0 + 100);
	th_gate_open(&gate);
	ck_assert(th_poll(pool_quiet, &quiet));
	ck_assert_int_eq(aq_future_cancel(delayed), 0);
	quiet.delayed = 0;
	ck_assert(th_poll(pool_quiet, &quiet));

	second = scrape(&pool, 1);
	ck_assert_int_eq(aq_pool_stats(pool, &st), 0);
	ck_assert_uint_eq(st.submitted, 10);
	ck_assert_uint_eq(st.started, 7);
	ck_assert_uint_eq(st.succeeded, 6);
	ck_assert_uint_eq(st.failed, 1);
	ck_assert_uint_eq(st.retried, 2);
	ck_assert_uint_eq(st.cancelled, 2);
	ck_assert_uint_eq(st.expired, 1);
	ck_assert_uint_eq(st.run.count, 9); /* 1 + 5 + 3 attempts */
	assert_equal(second, "known", &st);
	assert_monotonic(first, second);

	aq__stats_read(pool, &st, &raw);
	assert_buckets(second, "libasyncq_job_run_seconds", "known", raw.run,
		       raw.run_sum);
	assert_buckets(second, "libasyncq_job_wait_seconds", "known", raw.wait,
		       raw.wait_sum);
	ck_assert_uint_eq(raw.run_sum, st.busy_ns);

	free(first);
	free(second);
	aq_future_release(held);
	aq_future_release(delayed);
	aq_future_release(doomed);
	aq_pool_destroy(pool);
	th_gate_destroy(&gate);
}
END_TEST

/* Several pools: each family once, a sample per pool, the default name. */
START_TEST(test_metrics_several_pools)
{
	struct vclock va, vb;
	aq_pool *pools[2];
	atomic_long count = 0;
	struct pool_quiet_ctx quiet;
	struct aq_pool_stats st;
	struct scrape *sc;

	pools[0] = metrics_pool(NULL, &va, 0);
	pools[1] = metrics_pool("b", &vb, 0);
	for (int i = 0; i < 3; i++)
		ck_assert_int_eq(aq_submit(pools[1], th_count_job, &count, NULL,
					   NULL),
				 0);
	quiet = (struct pool_quiet_ctx){ pools[1], 0 };
	ck_assert(th_poll(pool_quiet, &quiet));
	sc = scrape(pools, 2);
	ck_assert_uint_eq(sc->nf, 14);
	for (unsigned i = 0; i < sc->nf; i++) {
		unsigned a = 0, b = 0;

		for (unsigned j = 0; j < sc->n; j++) {
			if (sc->s[j].family != (int)i)
				continue;
			a += !strncmp(sc->s[j].labels, "pool=\"default\"", 14);
			b += !strncmp(sc->s[j].labels, "pool=\"b\"", 8);
		}
		ck_assert_uint_gt(a, 0);
		ck_assert_uint_eq(a, b);
	}
	ck_assert_int_eq(aq_pool_stats(pools[1], &st), 0);
	assert_equal(sc, "b", &st);
	ck_assert_uint_eq(st.succeeded, 3);
	ck_assert_int_eq(aq_pool_stats(pools[0], &st), 0);
	assert_equal(sc, "default", &st);
	ck_assert_uint_eq(st.submitted, 0);
	/* Without timing the distributions are empty, not missing. */
	ck_assert_uint_eq(get(sc, "libasyncq_job_run_seconds_count",
			      "pool=\"b\""),
			  0);
	free(sc);
	aq_pool_destroy(pools[0]);
	aq_pool_destroy(pools[1]);
}
END_TEST

/* Metrics close no window: aq_pool_stats() windows run on across them. */
START_TEST(test_metrics_take_no_window)
{
	struct vclock vc;
	aq_pool *pool = metrics_pool("w", &vc, 0);
	struct aq_pool_stats a, b;
	char buf[64];

	ck_assert_int_eq(aq_pool_stats(pool, &a), 0);
	ck_assert_int_gt(aq_pool_metrics(&pool, 1, buf, sizeof(buf)), 0);
	ck_assert_int_gt(aq_pool_metrics(&pool, 1, NULL, 0), 0);
	ck_assert_int_eq(aq_pool_stats(pool, &b), 0);
	ck_assert_int_eq(b.window_ns, b.taken_ns - a.taken_ns);
	aq_pool_destroy(pool);
}
END_TEST

/* snprintf's contract: the length is returned whatever the size; the
 * buffer holds its first size - 1 bytes and a NUL. */
START_TEST(test_metrics_truncation)
{
	struct vclock vc;
	aq_pool *pool = metrics_pool("t", &vc, 0);
	const size_t sizes[] = { 1, 2, 10, 100, 1000 };
	int len = aq_pool_metrics(&pool, 1, NULL, 0);
	char *full, *part;

	ck_assert_int_gt(len, 1000);
	full = malloc((size_t)len + 1);
	part = malloc((size_t)len + 1);
	ck_assert_ptr_nonnull(full);
	ck_assert_ptr_nonnull(part);
	ck_assert_int_eq(aq_pool_metrics(&pool, 1, full, (size_t)len + 1),
			 len);
	ck_assert_uint_eq(strlen(full), (size_t)len);
	ck_assert_str_eq(full + len - 6, "# EOF\n");
	for (size_t i = 0; i < sizeof(sizes) / sizeof(sizes[0]); i++) {
		memset(part, 'x', (size_t)len + 1);
		ck_assert_int_eq(aq_pool_metrics(&pool, 1, part, sizes[i]),
				 len);
		ck_assert_uint_eq(strlen(part), sizes[i] - 1);
		ck_assert_int_eq(memcmp(part, full, sizes[i] - 1), 0);
		ck_assert_int_eq(part[sizes[i]], 'x'); /* nothing past size */
	}
	/* One byte short: all but the last newline. */
	ck_assert_int_eq(aq_pool_metrics(&pool, 1, part, (size_t)len), len);
	ck_assert_uint_eq(strlen(part), (size_t)len - 1);
	/* size 0: nothing written, not even the NUL. */
	part[0] = 'x';
	ck_assert_int_eq(aq_pool_metrics(&pool, 1, part, 0), len);
	ck_assert_int_eq(part[0], 'x');
	free(full);
	free(part);
	aq_pool_destroy(pool);
}
END_TEST

/* Label values: \, " and newline escaped, bytes that are not UTF-8 '?'. */
START_TEST(test_metrics_label_escaping)
{
	struct vclock vc;
	aq_pool *pool = metrics_pool("a\\b\"c\nd\xff\xc3\xa9\xe0\x80", &vc, 0);
	struct scrape *sc = scrape(&pool, 1);

	ck_assert_str_eq(sc->s[0].labels, "pool=\"a\\\\b\\\"c\\nd?\xc3\xa9??\"");
	free(sc);
	aq_pool_destroy(pool);
}
END_TEST

START_TEST(test_metrics_bad_input)
{
	struct vclock va, vb;
	aq_pool *pools[3] = { NULL, NULL, NULL };
	char buf[16] = "untouched";

	pools[0] = metrics_pool("same", &va, 0);
	ck_assert_int_eq(aq_pool_metrics(NULL, 1, buf, sizeof(buf)), -EINVAL);
	ck_assert_int_eq(aq_pool_metrics(pools, 0, buf, sizeof(buf)), -EINVAL);
	ck_assert_int_eq(aq_pool_metrics(pools, 1, NULL, 1), -EINVAL);
	ck_assert_int_eq(aq_pool_metrics(pools, 2, buf, sizeof(buf)), -EINVAL);
	/* Two pools of one name would give two series of one label set. */
	pools[1] = metrics_pool("same", &vb, 0);
	ck_assert_int_eq(aq_pool_metrics(pools, 2, buf, sizeof(buf)), -EINVAL);
	pools[2] = pools[0];
	ck_assert_int_eq(aq_pool_metrics(pools + 1, 2, buf, sizeof(buf)),
			 -EINVAL);
	ck_assert_str_eq(buf, "untouched");
	aq_pool_destroy(pools[0]);
	aq_pool_destroy(pools[1]);
}
END_TEST

/* No memory for the reading: -ENOMEM, buf untouched, nothing leaked. */
START_TEST(test_metrics_enomem)
{
	struct vclock vc;
	aq_pool *pool = metrics_pool("f", &vc, 0);
	char buf[8] = "sentinl";

	aq__fault_arm(AQ__FAULT_ALLOC, 1);
	ck_assert_int_eq(aq_pool_metrics(&pool, 1, buf, sizeof(buf)), -ENOMEM);
	aq__fault_arm(AQ__FAULT_ALLOC, 0);
	ck_assert_str_eq(buf, "sentinl");
	ck_assert_int_gt(aq_pool_metrics(&pool, 1, buf, sizeof(buf)), 0);
	aq_pool_destroy(pool);
}
END_TEST

Suite *metrics_suite(void)
{
	Suite *s = suite_create("metrics");
	TCase *tc = tcase_create("metrics");

	tcase_set_timeout(tc, TH_TIMEOUT);
	tcase_add_test(tc, test_metrics_known_workload);
	tcase_add_test(tc, test_metrics_several_pools);
	tcase_add_test(tc, test_metrics_take_no_window);
	tcase_add_test(tc, test_metrics_truncation);
	tcase_add_test(tc, test_metrics_label_escaping);
	tcase_add_test(tc, test_metrics_bad_input);
	tcase_add_test(tc, test_metrics_enomem);
	suite_add_tcase(s, tc);
	return s;
}
