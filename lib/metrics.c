/* SPDX-License-Identifier: MIT */
/*
 * metrics.c - a pool's statistics as OpenMetrics 1.0 text, the format
 * Prometheus scrapes: counters, gauges and the wait and run histograms in
 * seconds, one sample per pool, labelled pool="<cfg.name>".
 *
 * The figures are cumulative, so the reading goes through aq__stats_read(),
 * which leaves the pool's aq_pool_stats() window alone: a scraper must not
 * shorten the window of a thread that prints rates. Every pool is read
 * once, before any text is written, so the families of one call describe
 * one reading of each pool. Durations are integers of nanoseconds; they
 * are printed as exact decimals of seconds, never through a double.
 *
 * The histogram buckets are the library's own (bucket k holds the
 * durations in [2^k, 2^(k+1)) ns): the bucket le="(2^j - 1) ns" is the
 * exact count of durations below 2^j ns. Only the boundaries j in
 * [METRICS_LE_FIRST, METRICS_LE_LAST] are written, a fixed set, so that
 * a series never appears or vanishes between two scrapes.
 */
#include <errno.h>
#include <limits.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "fault.h"
#include "pool.h"
#include "stats.h"

#define METRICS_LE_FIRST 8 /* le = 255 ns: every shorter bucket folded in */
#define METRICS_LE_LAST 37 /* le = 137.438953471 s; longer: only +Inf */
#define METRICS_NO_NAME "default" /* the label of a pool without cfg.name */

/* The text being written: snprintf's contract, over many calls. */
struct out {
	char *buf;
	size_t size;
	size_t len; /* the length of the whole text so far, written or not */
};

static void put(struct out *o, const char *fmt, ...)
	__attribute__((format(printf, 2, 3)));

static void put(struct out *o, const char *fmt, ...)
{
	size_t room = o->len < o->size ? o->size - o->len : 0;
	va_list ap;
	int n;

	va_start(ap, fmt);
	/* ap is started on the line above (a false positive). */
	// NOLINTNEXTLINE(clang-analyzer-valist.Uninitialized)
	n = vsnprintf(room ? o->buf + o->len : NULL, room, fmt, ap);
	va_end(ap);
	if (n > 0)
		o->len += (size_t)n;
}

/* ns as an exact decimal number of seconds: "0.000000255", "3", "1.5". */
static void put_seconds(struct out *o, uint64_t ns)
{
	uint64_t frac = ns % 1000000000u;
	char digits[16];
	int n;

	if (!frac) {
		put(o, "%llu", (unsigned long long)(ns / 1000000000u));
		return;
	}
	n = snprintf(digits, sizeof(digits), "%09llu",
		     (unsigned long long)frac);
	while (n > 1 && digits[n - 1] == '0')
		n--;
	put(o, "%llu.%.*s", (unsigned long long)(ns / 1000000000u), n, digits);
}

/* The length of the well-formed UTF-8 sequence at s, or 0. */
static size_t utf8_len(const unsigned char *s)
{
	unsigned char lo = 0x80, hi = 0xbf; /* the second byte's range */
	size_t n;

	if (s[0] < 0x80)
		return 1;
	if (s[0] >= 0xc2 && s[0] <= 0xdf)
		n = 2;
	else if (s[0] >= 0xe0 && s[0] <= 0xef)
		n = 3;
	else if (s[0] >= 0xf0 && s[0] <= 0xf4)
		n = 4;
	else
		return 0;
	/* No overlong forms, no surrogates, nothing past U+10FFFF. */
	if (s[0] == 0xe0)
		lo = 0xa0;
	else if (s[0] == 0xed)
		hi = 0x9f;
	else if (s[0] == 0xf0)
		lo = 0x90;
	else if (s[0] == 0xf4)
		hi = 0x8f;
	if (s[1] < lo || s[1] > hi)
		return 0;
	for (size_t i = 2; i < n; i++)
		if (s[i] < 0x80 || s[i] > 0xbf)
			return 0;
	return n;
}

/* A label value: backslash, quote and newline escaped, as the format
 * asks; a byte that is not part of well-formed UTF-8 becomes '?'. */
static void put_label(struct out *o, const char *value)
{
	const unsigned char *s = (const unsigned char *)value;

	while (*s) {
		size_t n = utf8_len(s);

		if (n == 0)
			put(o, "?");
		else if (*s == '\\' || *s == '"')
			put(o, "\\%c", *s);
		else if (*s == '\n')
			put(o, "\\n");
		else
			put(o, "%.*s", (int)n, (const char *)s);
		s += n ? n : 1;
	}
}

/* One pool's reading. */
struct snap {
	struct aq_pool_stats st;
	struct aq__hists hists;
	const char *label;
};

/* The start of a sample line: name{pool="..." (the caller closes it). */
static void put_sample(struct out *o, const char *name, const char *suffix,
		       const struct snap *s)
{
	put(o, "%s%s{pool=\"", name, suffix);
	put_label(o, s->label);
	put(o, "\"");
}

static void put_meta(struct out *o, const char *name, const char *type,
		     const char *unit, const char *help)
{
	put(o, "# TYPE %s %s\n", name, type);
	if (unit)
		put(o, "# UNIT %s %s\n", name, unit);
	put(o, "# HELP %s %s\n", name, help);
}

/* The counters and gauges: one field of struct aq_pool_stats each. */
static const struct scalar {
	const char *name, *help;
	size_t field; /* offsetof a uint64_t in struct aq_pool_stats */
	bool counter; /* else a gauge */
	bool seconds; /* the field counts nanoseconds */
} scalars[] = {
	{ "libasyncq_jobs_submitted", "Jobs the pool accepted.",
	  offsetof(struct aq_pool_stats, submitted), true, false },
	{ "libasyncq_jobs_started", "Jobs whose first attempt began.",
	  offsetof(struct aq_pool_stats, started), true, false },
	{ "libasyncq_job_retries", "Retries scheduled after failed attempts.",
	  offsetof(struct aq_pool_stats, retried), true, false },
	{ "libasyncq_jobs_rejected", "Submits refused for a well-formed job.",
	  offsetof(struct aq_pool_stats, rejected), true, false },
	{ "libasyncq_worker_busy_seconds",
	  "Time workers spent in job calls (needs timing).",
	  offsetof(struct aq_pool_stats, busy_ns), true, true },
	{ "libasyncq_jobs_queued", "Jobs waiting for a worker.",
	  offsetof(struct aq_pool_stats, queued), false, false },
	{ "libasyncq_jobs_delayed",
	  "Jobs in the timer: delayed, or waiting for a retry.",
	  offsetof(struct aq_pool_stats, delayed), false, false },
	{ "libasyncq_jobs_running", "Jobs being run by workers.",
	  offsetof(struct aq_pool_stats, running), false, false },
	{ "libasyncq_workers", "Live worker threads.",
	  offsetof(struct aq_pool_stats, workers), false, false },
	{ "libasyncq_workers_busy", "Workers running a job.",
	  offsetof(struct aq_pool_stats, workers_busy), false, false },
};

/* The outcomes of libasyncq_jobs_resolved_total. */
static const struct outcome {
	const char *label;
	size_t field;
} outcomes[] = {
	{ "succeeded", offsetof(struct aq_pool_stats, succeeded) },
	{ "failed", offsetof(struct aq_pool_stats, failed) },
	{ "cancelled", offsetof(struct aq_pool_stats, cancelled) },
	{ "expired", offsetof(struct aq_pool_stats, expired) },
	{ "skipped", offsetof(struct aq_pool_stats, skipped) },
};

static uint64_t field_of(const struct snap *s, size_t field)
{
	uint64_t v;

	memcpy(&v, (const char *)&s->st + field, sizeof(v));
	return v;
}

static void put_scalar(struct out *o, const struct scalar *m,
		       const struct snap *snaps, unsigned n)
{
	put_meta(o, m->name, m->counter ? "counter" : "gauge",
		 m->seconds ? "seconds" : NULL, m->help);
	for (unsigned i = 0; i < n; i++) {
		uint64_t v = field_of(&snaps[i], m->field);

		put_sample(o, m->name, m->counter ? "_total" : "", &snaps[i]);
		if (m->seconds) {
			put(o, "} ");
			put_seconds(o, v);
			put(o, "\n");
		} else {
			put(o, "} %llu\n", (unsigned long long)v);
		}
	}
}

static void put_outcomes(struct out *o, const struct snap *snaps, unsigned n)
{
	static const char name[] = "libasyncq_jobs_resolved";

	put_meta(o, name, "counter", NULL,
		 "Jobs resolved, by outcome (once each).");
	for (unsigned i = 0; i < n; i++)
		for (size_t k = 0; k < sizeof(outcomes) / sizeof(outcomes[0]);
		     k++) {
			put_sample(o, name, "_total", &snaps[i]);
			put(o, ",outcome=\"%s\"} %llu\n", outcomes[k].label,
			    (unsigned long long)field_of(&snaps[i],
							 outcomes[k].field));
		}
}

/* A histogram of the library's log2 buckets (see the top of the file). */
static void put_histogram(struct out *o, const char *name, const char *help,
			  const struct snap *snaps, unsigned n, bool run)
{
	put_meta(o, name, "histogram", "seconds", help);
	for (unsigned i = 0; i < n; i++) {
		const uint64_t *b =
			run ? snaps[i].hists.run : snaps[i].hists.wait;
		uint64_t below = 0; /* durations below 2^j ns */
		int k = 0;

		for (int j = METRICS_LE_FIRST; j <= METRICS_LE_LAST; j++) {
			while (k < j) /* bucket k ends at 2^(k+1) <= 2^j */
				below += b[k++];
			put_sample(o, name, "_bucket", &snaps[i]);
			put(o, ",le=\"");
			put_seconds(o, (UINT64_C(1) << j) - 1);
			put(o, "\"} %llu\n", (unsigned long long)below);
		}
		while (k < AQ__HIST_BUCKETS)
			below += b[k++];
		put_sample(o, name, "_bucket", &snaps[i]);
		put(o, ",le=\"+Inf\"} %llu\n", (unsigned long long)below);
		put_sample(o, name, "_count", &snaps[i]);
		put(o, "} %llu\n", (unsigned long long)below);
		put_sample(o, name, "_sum", &snaps[i]);
		put(o, "} ");
		put_seconds(o, run ? snaps[i].hists.run_sum
				   : snaps[i].hists.wait_sum);
		put(o, "\n");
	}
}

/* Time in system: a summary without quantiles (a sum and a count). */
static void put_sojourn(struct out *o, const struct snap *snaps, unsigned n)
{
	static const char name[] = "libasyncq_job_time_in_system_seconds";

	put_meta(o, name, "summary", "seconds",
		 "Submit to the end of the last call, per job that ran "
		 "(needs timing).");
	for (unsigned i = 0; i < n; i++) {
		put_sample(o, name, "_count", &snaps[i]);
		put(o, "} %llu\n", (unsigned long long)snaps[i].st.timed_done);
		put_sample(o, name, "_sum", &snaps[i]);
		put(o, "} ");
		put_seconds(o, snaps[i].st.sojourn_ns);
		put(o, "\n");
	}
}

static const char *pool_label(const struct aq_pool *pool)
{
	return pool->label ? pool->label : METRICS_NO_NAME;
}

AQ_API int aq_pool_metrics(aq_pool *const *pools, unsigned npools, char *buf,
			   size_t size)
{
	struct out o = { .buf = buf, .size = size, .len = 0 };
	struct snap *snaps;

	if (!pools || !npools || (!buf && size))
		return -EINVAL;
	for (unsigned i = 0; i < npools; i++) {
		if (!pools[i])
			return -EINVAL;
		/* One label set per series: two pools of one name clash. */
		for (unsigned j = 0; j < i; j++)
			if (!strcmp(pool_label(pools[i]), pool_label(pools[j])))
				return -EINVAL;
	}
	snaps = aq__calloc(npools, sizeof(*snaps));
	if (!snaps)
		return -ENOMEM;
	for (unsigned i = 0; i < npools; i++) {
		aq__stats_read(pools[i], &snaps[i].st, &snaps[i].hists);
		snaps[i].label = pool_label(pools[i]);
	}
	if (size)
		buf[0] = '\0';

	for (size_t m = 0; m < sizeof(scalars) / sizeof(scalars[0]); m++) {
		put_scalar(&o, &scalars[m], snaps, npools);
		if (m == 1) /* after started: what became of them */
			put_outcomes(&o, snaps, npools);
	}
	put_histogram(
		&o, "libasyncq_job_wait_seconds",
		"From ready to run to the start of a call (needs timing).",
		snaps, npools, false);
	put_histogram(&o, "libasyncq_job_run_seconds",
		      "The duration of one call of a job function (needs "
		      "timing).",
		      snaps, npools, true);
	put_sojourn(&o, snaps, npools);
	put(&o, "# EOF\n");
	free(snaps);
	return o.len > INT_MAX ? -EOVERFLOW : (int)o.len;
}
