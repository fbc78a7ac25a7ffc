/* SPDX-License-Identifier: MIT */
/*
 * http_parse.h - the HTTP/1.x request-head parser of examples/http_server.c,
 * kept apart so that it can be read, tested and fuzzed on its own.
 *
 * parse_request() is a pure function of its input: it keeps no state between
 * calls and touches no memory outside buf and *out. The server calls it on
 * whatever bytes it has buffered; PARSE_INCOMPLETE means "read more and call
 * again", so partial reads need no special handling, and PARSE_COMPLETE says
 * in out->length how many bytes the head took, so pipelined requests are
 * parsed one after another from the same buffer. Re-parsing from the start on
 * every read costs at most HTTP_MAX_HEAD bytes a time; a stateless parser is
 * worth that.
 *
 * It follows RFC 9112 strictly where leniency would be risky (one space
 * between the parts of the request line, no space before a header's colon,
 * no folded header lines, no control characters, at most one Host, a
 * Content-Length that is a plain number, never both Content-Length and
 * Transfer-Encoding) and leniently where RFC 9112 allows it (empty lines
 * before a request are skipped; a bare LF ends a line as well as CRLF). Only
 * origin-form targets ("/path?query") are accepted: this is not a proxy.
 * The head is limited to HTTP_MAX_HEAD bytes; bodies are only detected, not
 * read (the server takes GET and HEAD only).
 *
 * Include it in one .c file; everything is static inline.
 */
#ifndef HTTP_PARSE_H
#define HTTP_PARSE_H

#include <stdbool.h>
#include <stddef.h>
#include <string.h>

/* The most bytes a request head (request line and headers, with their line
 * ends and any empty lines before it) may take. */
#define HTTP_MAX_HEAD 8192

enum parse_result {
	PARSE_COMPLETE,	  /* *out describes one whole request head */
	PARSE_INCOMPLETE, /* no error so far; more bytes are needed */
	PARSE_BAD,	  /* malformed: answer 400 and close */
	PARSE_TOO_LARGE	  /* head longer than HTTP_MAX_HEAD: 431 and close */
};

/* One request head. The pointers point into the parsed buffer. */
struct request {
	const char *method; /* a token, e.g. "GET"; not NUL-terminated */
	size_t method_len;
	const char *path; /* the target up to '?', starts with '/' */
	size_t path_len;
	const char *query; /* the target after '?'; NULL if there is none */
	size_t query_len;
	int minor_version; /* 0 or 1: HTTP/1.0 or HTTP/1.1 */
	bool keep_alive;   /* may the connection carry another request?
			      (1.1 unless "Connection: close"; 1.0 only
			      with "Connection: keep-alive") */
	bool has_body;	   /* Content-Length > 0, or Transfer-Encoding */
	size_t length;	   /* bytes of buf the head took; the next request
			      (or this one's body) starts there */
};

/* RFC 9110 tchar: the characters of a method or a header name. */
static inline bool http_is_tchar(unsigned char c)
{
	if ((c >= '0' && c <= '9') || (c >= 'a' && c <= 'z') ||
	    (c >= 'A' && c <= 'Z'))
		return true;
	return c != '\0' && strchr("!#$%&'*+-.^_`|~", c) != NULL;
}

/* A character allowed in a header value: VCHAR, SP, HTAB or obs-text. */
static inline bool http_is_value_char(unsigned char c)
{
	return c == ' ' || c == '\t' || (c >= 0x21 && c != 0x7f);
}

/* Is s[0..len) the lowercase ASCII literal lit, ignoring case? */
static inline bool http_token_is(const char *s, size_t len, const char *lit)
{
	size_t i;

	for (i = 0; i < len && lit[i]; i++) {
		unsigned char c = (unsigned char)s[i];

		if (c >= 'A' && c <= 'Z')
			c = (unsigned char)(c - 'A' + 'a');
		if (c != (unsigned char)lit[i])
			return false;
	}
	return i == len && lit[i] == '\0';
}

/*
 * Find the line that starts at buf[pos], looking no further than limit.
 * Returns the position just past its '\n' and its length without the line
 * end in *line_len, or 0 when no '\n' is there yet (a line never ends at 0).
 */
static inline size_t http_next_line(const char *buf, size_t limit, size_t pos,
				    size_t *line_len)
{
	const char *nl = memchr(buf + pos, '\n', limit - pos);
	size_t len;

	if (!nl)
		return 0;
	len = (size_t)(nl - (buf + pos));
	if (len > 0 && buf[pos + len - 1] == '\r')
		len--; /* CRLF; a bare LF is accepted too */
	*line_len = len;
	return (size_t)(nl - buf) + 1;
}

/* "GET /path?query HTTP/1.1": fill the request-line fields of *out. */
static inline bool http_parse_request_line(const char *line, size_t len,
					   struct request *out)
{
	size_t i = 0, start;

	while (i < len && http_is_tchar((unsigned char)line[i]))
		i++;
	if (i == 0 || i == len || line[i] != ' ')
		return false;
	out->method = line;
	out->method_len = i++;

	/* The target: visible ASCII, origin-form only. */
	start = i;
	while (i < len && line[i] > ' ' && line[i] < 0x7f)
		i++;
	if (i == start || i == len || line[i] != ' ' || line[start] != '/')
		return false;
	out->path = line + start;
	out->path_len = i - start;
	for (size_t q = start; q < i; q++) {
		if (line[q] == '?') {
			out->path_len = q - start;
			out->query = line + q + 1;
			out->query_len = i - q - 1;
			break;
		}
	}
	i++;

	/* The version, exactly "HTTP/1.0" or "HTTP/1.1". */
	if (len - i != 8 || memcmp(line + i, "HTTP/1.", 7) != 0)
		return false;
	if (line[i + 7] != '0' && line[i + 7] != '1')
		return false;
	out->minor_version = line[i + 7] - '0';
	return true;
}

/* What the headers say, gathered while they are parsed. */
struct http_header_facts {
	bool conn_close, conn_keep_alive; /* tokens of Connection */
	bool has_length, has_chunked; /* Content-Length, Transfer-Encoding */
	unsigned long long content_length;
	unsigned hosts; /* Host headers seen */
};

/* The comma-separated tokens of a Connection header. */
static inline void http_connection_tokens(const char *v, size_t len,
					  struct http_header_facts *facts)
{
	size_t i = 0;

	while (i < len) {
		size_t start, end;

		while (i < len && (v[i] == ' ' || v[i] == '\t' || v[i] == ','))
			i++;
		start = i;
		while (i < len && v[i] != ',')
			i++;
		end = i;
		while (end > start && (v[end - 1] == ' ' || v[end - 1] == '\t'))
			end--;
		if (http_token_is(v + start, end - start, "close"))
			facts->conn_close = true;
		else if (http_token_is(v + start, end - start, "keep-alive"))
			facts->conn_keep_alive = true;
	}
}

/* One "Name: value" line. */
static inline bool http_parse_header(const char *line, size_t len,
				     struct http_header_facts *facts)
{
	size_t name_len = 0, v, end;

	while (name_len < len && http_is_tchar((unsigned char)line[name_len]))
		name_len++;
	/* No empty name, no space before the colon, no folded line. */
	if (name_len == 0 || name_len == len || line[name_len] != ':')
		return false;
	v = name_len + 1;
	for (size_t i = v; i < len; i++)
		if (!http_is_value_char((unsigned char)line[i]))
			return false;
	while (v < len && (line[v] == ' ' || line[v] == '\t'))
		v++;
	end = len;
	while (end > v && (line[end - 1] == ' ' || line[end - 1] == '\t'))
		end--;

	if (http_token_is(line, name_len, "connection")) {
		http_connection_tokens(line + v, end - v, facts);
	} else if (http_token_is(line, name_len, "content-length")) {
		unsigned long long n = 0;

		/* 1*DIGIT, at most 18 of them (no overflow); a repeated
		 * header must repeat the value. */
		if (end == v || end - v > 18)
			return false;
		for (size_t i = v; i < end; i++) {
			if (line[i] < '0' || line[i] > '9')
				return false;
			n = n * 10 + (unsigned long long)(line[i] - '0');
		}
		if (facts->has_length && facts->content_length != n)
			return false;
		facts->has_length = true;
		facts->content_length = n;
	} else if (http_token_is(line, name_len, "transfer-encoding")) {
		facts->has_chunked = true;
	} else if (http_token_is(line, name_len, "host")) {
		facts->hosts++;
	}
	return true;
}

/*
 * Parse the request head at the start of buf[0..len). PARSE_COMPLETE fills
 * *out; the other results leave it zeroed or partly filled.
 */
static inline enum parse_result parse_request(const char *buf, size_t len,
					      struct request *out)
{
	struct http_header_facts facts = {0};
	size_t limit = len < HTTP_MAX_HEAD ? len : HTTP_MAX_HEAD;
	/* Out of bytes: within the limit we wait, past it we give up. */
	enum parse_result more =
	    len >= HTTP_MAX_HEAD ? PARSE_TOO_LARGE : PARSE_INCOMPLETE;
	size_t pos = 0, next, line_len;

	memset(out, 0, sizeof(*out));

	/* Empty lines before the request line are skipped (RFC 9112 2.2). */
	for (;;) {
		next = http_next_line(buf, limit, pos, &line_len);
		if (!next)
			return more;
		if (line_len > 0)
			break;
		pos = next;
	}
	if (!http_parse_request_line(buf + pos, line_len, out))
		return PARSE_BAD;
	pos = next;

	/* Headers, up to the empty line that ends the head. */
	for (;;) {
		next = http_next_line(buf, limit, pos, &line_len);
		if (!next)
			return more;
		if (line_len == 0)
			break;
		if (!http_parse_header(buf + pos, line_len, &facts))
			return PARSE_BAD;
		pos = next;
	}
	pos = next;

	/* RFC 9112 3.2: HTTP/1.1 needs exactly one Host. Both framing
	 * headers at once is a request-smuggling attempt (6.3). */
	if (facts.hosts > 1 || (out->minor_version == 1 && facts.hosts != 1))
		return PARSE_BAD;
	if (facts.has_chunked && (facts.has_length || out->minor_version == 0))
		return PARSE_BAD;

	out->has_body = facts.has_chunked || facts.content_length > 0;
	if (out->minor_version == 1)
		out->keep_alive = !facts.conn_close;
	else
		out->keep_alive = facts.conn_keep_alive && !facts.conn_close;
	out->length = pos;
	return PARSE_COMPLETE;
}

#endif /* HTTP_PARSE_H */
