/* SPDX-License-Identifier: MIT */
/*
 * fuzz_http.c - a libFuzzer harness for parse_request() of
 * examples/http_parse.h, the request-head parser of the HTTP example.
 *
 * libFuzzer hands over a heap buffer of exactly the input's size, so
 * AddressSanitizer catches any read past len. Beyond that, the parser's
 * promises are checked (abort() on a violation):
 *   - the result is one of the four, and the same on a second call;
 *   - a COMPLETE head lies within the input and HTTP_MAX_HEAD: its length,
 *     method, path and query all point inside buf[0..length), the method
 *     is a token, the path starts with '/', the query follows a '?', the
 *     version is 1.0 or 1.1 and the head ends with an empty line;
 *   - the parser is a pure function of its prefix: over growing prefixes
 *     of the input the result is INCOMPLETE until it settles, and then it
 *     never changes (for COMPLETE: the same fields, whatever follows the
 *     head); a prefix shorter than a COMPLETE head is INCOMPLETE;
 *   - TOO_LARGE only once HTTP_MAX_HEAD bytes are there;
 *   - a pipelined request after a COMPLETE head parses on its own (the
 *     same checks, one level deep).
 */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "../../examples/http_parse.h"

#define CHECK(cond, what)                                                    \
	do {                                                                 \
		if (!(cond)) {                                               \
			fprintf(stderr, "fuzz_http: %s (line %d)\n", what,   \
				__LINE__);                                   \
			abort();                                             \
		}                                                            \
	} while (0)

/* Prefix lengths tried besides the boundaries. */
#define PREFIX_SAMPLES 12

/* A copy of buf[0..len) in a buffer of exactly len bytes, so that ASan
 * sees a read past the prefix as the overflow it is. */
static enum parse_result parse_copy(const uint8_t *buf, size_t len,
				    struct request *out, char **keep)
{
	char *copy = malloc(len ? len : 1);
	enum parse_result r;

	CHECK(copy != NULL, "out of memory");
	memcpy(copy, buf, len);
	r = parse_request(copy, len, out);
	*keep = copy;
	return r;
}

static bool within(const char *p, size_t n, const char *base, size_t len)
{
	return p >= base && p <= base + len && n <= (size_t)(base + len - p);
}

/* Everything a COMPLETE result promises about buf[0..len). */
static void check_complete(const char *buf, size_t len,
			   const struct request *rq)
{
	size_t L = rq->length;

	CHECK(L >= 2 && L <= len && L <= HTTP_MAX_HEAD, "length out of range");
	CHECK(buf[L - 1] == '\n', "the head does not end with a line end");
	CHECK(buf[L - 2] == '\n' || (L >= 3 && buf[L - 2] == '\r' &&
				     buf[L - 3] == '\n'),
	      "the head does not end with an empty line");
	CHECK(rq->method_len > 0 && within(rq->method, rq->method_len, buf, L),
	      "method outside the head");
	for (size_t i = 0; i < rq->method_len; i++)
		CHECK(http_is_tchar((unsigned char)rq->method[i]),
		      "method is not a token");
	CHECK(rq->path_len > 0 && within(rq->path, rq->path_len, buf, L),
	      "path outside the head");
	CHECK(rq->path[0] == '/', "path does not start with '/'");
	CHECK(rq->path > rq->method + rq->method_len, "path before method");
	for (size_t i = 0; i < rq->path_len; i++)
		CHECK(rq->path[i] > ' ' && rq->path[i] < 0x7f &&
		      rq->path[i] != '?', "bad character in the path");
	if (rq->query) {
		CHECK(within(rq->query, rq->query_len, buf, L),
		      "query outside the head");
		CHECK(rq->query == rq->path + rq->path_len + 1 &&
		      rq->query[-1] == '?', "query does not follow a '?'");
	} else {
		CHECK(rq->query_len == 0, "query length without a query");
	}
	CHECK(rq->minor_version == 0 || rq->minor_version == 1,
	      "version is not 1.0 or 1.1");
}

static bool same_request(const struct request *a, const char *abuf,
			 const struct request *b, const char *bbuf)
{
	/* Pointers compared as offsets: the two parses saw different
	 * copies of the same bytes. */
	return a->length == b->length && a->method - abuf == b->method - bbuf &&
	       a->method_len == b->method_len &&
	       a->path - abuf == b->path - bbuf && a->path_len == b->path_len &&
	       (a->query ? b->query && a->query - abuf == b->query - bbuf
			 : !b->query) &&
	       a->query_len == b->query_len &&
	       a->minor_version == b->minor_version &&
	       a->keep_alive == b->keep_alive && a->has_body == b->has_body;
}

/* The result for a prefix of length k, held against the full result. */
static void check_prefix(const uint8_t *data, size_t k,
			 enum parse_result full, const struct request *rq,
			 const char *fullbuf)
{
	struct request prq;
	char *copy;
	enum parse_result r = parse_copy(data, k, &prq, &copy);

	CHECK(r != PARSE_TOO_LARGE || k >= HTTP_MAX_HEAD,
	      "TOO_LARGE before HTTP_MAX_HEAD bytes");
	if (full == PARSE_COMPLETE) {
		if (k < rq->length) {
			CHECK(r == PARSE_INCOMPLETE,
			      "a prefix of a complete head is not INCOMPLETE");
		} else {
			CHECK(r == PARSE_COMPLETE &&
			      same_request(&prq, copy, rq, fullbuf),
			      "a longer prefix changed a COMPLETE result");
		}
	} else if (r != PARSE_INCOMPLETE) {
		/* Settled early: the full input must say the same. */
		CHECK(r == full, "a prefix settled on another result");
	}
	free(copy);
}

static void check_input(const uint8_t *data, size_t size, int depth)
{
	struct request rq, again;
	char *buf, *buf2;
	enum parse_result r = parse_copy(data, size, &rq, &buf);
	enum parse_result r2 = parse_copy(data, size, &again, &buf2);
	size_t samples[PREFIX_SAMPLES + 4];
	size_t n = 0;
	uint32_t h = 2166136261u; /* FNV-1a of the input picks prefixes */

	CHECK(r == PARSE_COMPLETE || r == PARSE_INCOMPLETE || r == PARSE_BAD ||
	      r == PARSE_TOO_LARGE, "unknown result");
	CHECK(r2 == r && (r != PARSE_COMPLETE ||
			  same_request(&rq, buf, &again, buf2)),
	      "two parses of the same bytes differ");
	free(buf2);
	CHECK(r != PARSE_TOO_LARGE || size >= HTTP_MAX_HEAD,
	      "TOO_LARGE before HTTP_MAX_HEAD bytes");
	if (r == PARSE_COMPLETE)
		check_complete(buf, size, &rq);

	samples[n++] = 0;
	samples[n++] = size / 2;
	if (size)
		samples[n++] = size - 1;
	if (r == PARSE_COMPLETE && rq.length > 0)
		samples[n++] = rq.length - 1;
	for (size_t i = 0; i < size; i++)
		h = (h ^ data[i]) * 16777619u;
	for (int i = 0; i < PREFIX_SAMPLES && size; i++) {
		h = h * 1103515245u + 12345u;
		samples[n++] = (h >> 8) % size;
	}
	for (size_t i = 0; i < n; i++)
		check_prefix(data, samples[i], r, &rq, buf);

	/* Pipelining: whatever follows a complete head is a request too. */
	if (r == PARSE_COMPLETE && depth == 0 && rq.length < size)
		check_input(data + rq.length, size - rq.length, depth + 1);
	free(buf);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	check_input(data, size, 0);
	return 0;
}
