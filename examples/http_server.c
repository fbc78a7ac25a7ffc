/* SPDX-License-Identifier: MIT */
/*
 * http_server.c - libasyncq embedded in a server that owns its event loop:
 * a small HTTP/1.1 server on one epoll loop, with no framework, that hands
 * CPU-heavy requests to a pool and writes their answers when the pool's
 * completion channel says they are done. Cheap requests are answered on the
 * loop at once, so they stay fast while the heavy ones run.
 *
 *   http_server [-p PORT] [-w WORKERS] [-i]
 *
 *   -p PORT     listen on 127.0.0.1:PORT (default 8080; 0 = any free port).
 *               "listening on 127.0.0.1:NNNN" is printed on stdout.
 *   -w WORKERS  pool workers (default 0 = one per online CPU)
 *   -i          count primes inline on the loop instead (the "before" of
 *               the comparison in tests/bench/http_bench.sh)
 *
 *   GET /health        "ok\n", on the loop
 *   GET /primes?n=N    the number of primes below N, 1 <= N <= 50000000,
 *                      counted by a pool worker
 *   GET /stats         open connections, jobs in flight, jobs submitted,
 *                      answers queued (tests wait on these)
 *   GET /metrics       the pool's statistics for Prometheus
 *                      (aq_pool_metrics(), OpenMetrics text; 404 with -i)
 *   HEAD of each; other methods 405; other paths 404; malformed 400.
 *
 * The loop. One thread, one level-triggered epoll set holding the listening
 * socket, a signalfd, the completion channel's fd and every connection.
 * Level-triggered because it makes back-pressure trivial: a connection that
 * must not be read now (its buffer is full, or it waits for a job) just
 * leaves EPOLLIN out of its interest set, and the channel, dispatched with a
 * budget of DISPATCH_BUDGET callbacks a wake-up, stays readable while more
 * wait, so epoll comes straight back to it with nothing to remember.
 *
 * A connection reads into a fixed buffer and calls parse_request()
 * (http_parse.h) on it; each complete head is answered in order, so
 * pipelined requests work. A /primes request submits a job, registers
 * aq_future_then(fut, primes_done, conn, channel) and stops parsing that
 * connection until primes_done() runs on the loop and appends the answer:
 * answers leave in request order. Each job holds a reference on its
 * connection, so a client that disconnects while its job runs only leaves a
 * closed connection object for the callback to drop. Objects that die while
 * an epoll batch is being handled are freed after the batch, because a later
 * event in the same batch may still name them.
 *
 * Shutdown. SIGTERM or SIGINT (through a signalfd: the library's workers
 * block every signal, and the loop blocks these two) closes the listening
 * socket, closes idle connections, and marks the others to close after
 * their answer; every request already being served is answered. When no
 * connection and no job is left, the pool and the channel are destroyed and
 * the program exits 0. After DRAIN_MS, or on a second signal, whatever is
 * left is closed and queued jobs are cancelled.
 *
 * Closing after an answer is a "lingering close", as in Apache and nginx:
 * shut down our sending side, then read and discard until the client closes
 * or LINGER_MS passes. Closing at once with unread bytes in the socket
 * would send a reset that can destroy the answer before the client reads it.
 */
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <arpa/inet.h>
#include <signal.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/signalfd.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include <asyncq.h>

#include "http_parse.h"

/* The input buffer: one head of the largest size and then some pipelined
 * bytes. */
#define IN_CAP (2 * HTTP_MAX_HEAD)
/* Queued output above which we stop parsing: a client that pipelines
 * requests but does not read the answers cannot make us grow. */
#define OUT_HIGH	(64 * 1024)
#define IDLE_MS		15000 /* close a connection silent this long */
#define LINGER_MS	2000  /* longest lingering close */
#define DRAIN_MS	30000 /* longest graceful shutdown */
#define DISPATCH_BUDGET 64u   /* completion callbacks per wake-up */
#define ACCEPT_BUDGET	64    /* new connections per wake-up */
#define MAX_EVENTS	128
#define PRIMES_MAX	50000000UL

struct server;

struct conn {
	struct server *srv;
	int fd;
	unsigned refs;		/* one while open, plus one per job in flight */
	uint32_t events;	/* the epoll interest set now */
	bool closed;		/* fd closed; only a job's reference is left */
	bool peer_eof;		/* the client sent FIN: nothing more to read */
	bool close_after_write; /* close once the output is written */
	bool lingering;		/* answered, SHUT_WR sent, discarding input */
	bool job_pending;	/* a /primes job runs; parsing waits for it */
	bool job_head;		/* ... for a HEAD request */
	bool job_keep_alive;	/* ... whose client wants keep-alive */
	int64_t deadline_ms;	/* idle or linger timeout, on now_ms() */
	struct conn *prev, *next; /* in srv->live or srv->linger, by deadline */
	struct conn *next_dead;	  /* srv->dead: to free after this batch */
	size_t in_len;		  /* bytes in in[] */
	char *out;		  /* answers not yet written */
	size_t out_off, out_len, out_cap; /* written, queued, allocated */
	char in[IN_CAP];
};

/* A list of connections in deadline order: each timeout is a constant, so
 * appending at the tail keeps it sorted and the head expires first. */
struct conn_list {
	struct conn *head, *tail;
	unsigned count;
};

struct server {
	int epfd, listen_fd, signal_fd, spare_fd;
	aq_pool *pool;	     /* NULL with -i */
	aq_channel *channel; /* where job completions are delivered */
	bool inline_primes;  /* -i */
	bool draining;	     /* a signal came: no new work */
	int64_t drain_deadline_ms;
	struct conn_list live;	      /* open connections, idle timeout */
	struct conn_list linger;      /* closing connections, linger timeout */
	struct conn *dead;	      /* unreferenced, freed after each batch */
	unsigned jobs_in_flight;      /* submitted, callback not yet run */
	unsigned long long submitted; /* jobs submitted in all */
	unsigned long long answered;  /* responses queued */
};

/* Markers for the epoll entries that are not connections. */
static char tag_listen, tag_signal, tag_channel;

static int64_t now_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

/* ---- The heavy work ----------------------------------------------------- */

/* Set bits in a 64-bit word (portable SWAR popcount). */
static unsigned bits_set(uint64_t x)
{
	x = x - ((x >> 1) & 0x5555555555555555ULL);
	x = (x & 0x3333333333333333ULL) + ((x >> 2) & 0x3333333333333333ULL);
	x = (x + (x >> 4)) & 0x0f0f0f0f0f0f0f0fULL;
	return (unsigned)((x * 0x0101010101010101ULL) >> 56);
}

/*
 * The number of primes p < n, by a sieve of Eratosthenes over the odd
 * numbers only, one bit each (n / 16 bytes: about 3 MB at the largest n).
 * Returns -1 if the bit array cannot be allocated.
 */
static long count_primes_below(unsigned long n)
{
	unsigned long odds = n / 2; /* bit i stands for 2i + 1, below n */
	size_t words = odds / 64 + 1;
	uint64_t *composite;
	long count;

	if (n <= 2)
		return 0;
	composite = calloc(words, sizeof(*composite));
	if (!composite)
		return -1;
	composite[0] = 1; /* 1 is not a prime */
	for (unsigned long i = 1; (2 * i + 1) * (2 * i + 1) < n; i++) {
		unsigned long p = 2 * i + 1;

		if (composite[i / 64] >> (i % 64) & 1)
			continue;
		/* Odd multiples of p from p*p: bit (p*p)/2, step p. */
		for (unsigned long j = p * p / 2; j < odds; j += p)
			composite[j / 64] |= (uint64_t)1 << (j % 64);
	}
	/* Bits past odds are not numbers below n: mark them composite. */
	for (unsigned long i = odds; i < words * 64; i++)
		composite[i / 64] |= (uint64_t)1 << (i % 64);
	count = 1; /* 2, the one even prime */
	for (size_t w = 0; w < words; w++)
		count += 64 - (long)bits_set(composite[w]);
	free(composite);
	return count;
}

/* The job: its argument is n itself, so it shares nothing with the loop
 * and may outlive the connection that asked for it. */
static int primes_job(void *arg, void **result)
{
	long count = count_primes_below((unsigned long)(uintptr_t)arg);

	if (count < 0)
		return ENOMEM; /* our failure code: the future says FAILED */
	*result = (void *)(uintptr_t)count;
	return 0;
}

/* ---- Connection lists and lifetime --------------------------------------- */

static void list_remove(struct conn_list *l, struct conn *c)
{
	if (c->prev)
		c->prev->next = c->next;
	else
		l->head = c->next;
	if (c->next)
		c->next->prev = c->prev;
	else
		l->tail = c->prev;
	c->prev = c->next = NULL;
	l->count--;
}

static void list_append(struct conn_list *l, struct conn *c, int64_t deadline)
{
	c->deadline_ms = deadline;
	c->next = NULL;
	c->prev = l->tail;
	if (l->tail)
		l->tail->next = c;
	else
		l->head = c;
	l->tail = c;
	l->count++;
}

/* The list an open connection is on. */
static struct conn_list *conn_list_of(struct conn *c)
{
	return c->lingering ? &c->srv->linger : &c->srv->live;
}

/* Activity: push the idle deadline back. */
static void conn_touch(struct conn *c)
{
	if (c->closed || c->lingering)
		return;
	list_remove(&c->srv->live, c);
	list_append(&c->srv->live, c, now_ms() + IDLE_MS);
}

static void conn_put(struct conn *c)
{
	if (--c->refs > 0)
		return;
	/* Not freed yet: a later event of this batch may name it. */
	c->next_dead = c->srv->dead;
	c->srv->dead = c;
}

static void reap(struct server *srv)
{
	while (srv->dead) {
		struct conn *c = srv->dead;

		srv->dead = c->next_dead;
		free(c->out);
		free(c);
	}
}

static void conn_close(struct conn *c)
{
	if (c->closed)
		return;
	list_remove(conn_list_of(c), c);
	close(c->fd); /* also leaves the epoll set: the fd is not shared */
	c->closed = true;
	conn_put(c);
}

static struct conn *conn_new(struct server *srv, int fd)
{
	struct conn *c = malloc(sizeof(*c));
	struct epoll_event ev = {.events = EPOLLIN};

	if (!c)
		return NULL;
	memset(c, 0, offsetof(struct conn, in)); /* not the 16 KiB buffer */
	c->srv = srv;
	c->fd = fd;
	c->refs = 1;
	c->events = EPOLLIN;
	ev.data.ptr = c;
	if (epoll_ctl(srv->epfd, EPOLL_CTL_ADD, fd, &ev) < 0) {
		free(c);
		return NULL;
	}
	list_append(&srv->live, c, now_ms() + IDLE_MS);
	return c;
}

/* ---- Output ------------------------------------------------------------- */

static size_t out_pending(const struct conn *c)
{
	return c->out_len - c->out_off;
}

static bool out_append(struct conn *c, const char *data, size_t len)
{
	if (c->out_len + len > c->out_cap) {
		size_t cap = c->out_cap ? c->out_cap : 1024;
		char *grown;

		/* Written bytes first make room; then the buffer grows. */
		if (c->out_off) {
			memmove(c->out, c->out + c->out_off, out_pending(c));
			c->out_len -= c->out_off;
			c->out_off = 0;
		}
		while (cap < c->out_len + len)
			cap *= 2;
		if (cap != c->out_cap) {
			grown = realloc(c->out, cap);
			if (!grown)
				return false;
			c->out = grown;
			c->out_cap = cap;
		}
	}
	memcpy(c->out + c->out_len, data, len);
	c->out_len += len;
	return true;
}

static const char *status_reason(int status)
{
	switch (status) {
	case 200:
		return "OK";
	case 400:
		return "Bad Request";
	case 404:
		return "Not Found";
	case 405:
		return "Method Not Allowed";
	case 431:
		return "Request Header Fields Too Large";
	case 500:
		return "Internal Server Error";
	case 503:
		return "Service Unavailable";
	default:
		return "Unknown";
	}
}

/*
 * The Date header's value (RFC 9110 6.6.1: an origin server with a clock
 * must send it), formatted once a second. strftime() in the "C" locale,
 * which is ours since we never call setlocale(), gives the English names.
 */
static const char *http_date(void)
{
	static char date[64];
	static time_t formatted = -1;
	time_t now = time(NULL);
	struct tm tm;

	if (now != formatted && gmtime_r(&now, &tm)) {
		strftime(date, sizeof(date), "%a, %d %b %Y %H:%M:%S GMT", &tm);
		formatted = now;
	}
	return date;
}

/*
 * Queue one answer. keep_alive is what the request allows; the connection
 * closes after it anyway when the server drains or the client sent FIN.
 * HTTP/1.1 keeps connections open by default, but saying so costs little
 * and is what an HTTP/1.0 client that asked for keep-alive needs to hear.
 */
static void respond_as(struct conn *c, int status, const char *type,
		       const char *body, size_t body_len, bool head_only,
		       bool keep_alive)
{
	char head[512];
	int n;

	if (c->srv->draining || c->close_after_write || c->peer_eof)
		keep_alive = false;
	n = snprintf(head, sizeof(head),
		     "HTTP/1.1 %d %s\r\n"
		     "Date: %s\r\n"
		     "Content-Type: %s\r\n"
		     "Content-Length: %zu\r\n"
		     "%s"
		     "Connection: %s\r\n\r\n",
		     status, status_reason(status), http_date(), type, body_len,
		     status == 405 ? "Allow: GET, HEAD\r\n" : "",
		     keep_alive ? "keep-alive" : "close");
	if (!out_append(c, head, (size_t)n) ||
	    (!head_only && !out_append(c, body, body_len))) {
		/* Out of memory: the only honest thing is to hang up. */
		c->out_off = c->out_len = 0;
		keep_alive = false;
	}
	if (!keep_alive)
		c->close_after_write = true;
	c->srv->answered++;
}

static void respond(struct conn *c, int status, const char *body,
		    bool head_only, bool keep_alive)
{
	respond_as(c, status, "text/plain", body, strlen(body), head_only,
		   keep_alive);
}

/* Write what we can. Returns false if the connection was closed. */
static bool conn_flush(struct conn *c)
{
	while (out_pending(c) > 0) {
		ssize_t n = send(c->fd, c->out + c->out_off, out_pending(c),
				 MSG_NOSIGNAL);

		if (n > 0) {
			c->out_off += (size_t)n;
			conn_touch(c);
		} else if (n < 0 && errno == EINTR) {
			continue;
		} else if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK)) {
			return true; /* EPOLLOUT will tell us */
		} else {
			conn_close(c); /* EPIPE, ECONNRESET: the client left */
			return false;
		}
	}
	c->out_off = c->out_len = 0;
	return true;
}

/* The answer is out and the connection must end: linger (see the top). */
static void conn_linger(struct conn *c)
{
	struct server *srv = c->srv;

	if (c->peer_eof || shutdown(c->fd, SHUT_WR) < 0) {
		conn_close(c);
		return;
	}
	list_remove(&srv->live, c);
	c->lingering = true;
	list_append(&srv->linger, c, now_ms() + LINGER_MS);
}

/* ---- Requests ----------------------------------------------------------- */

/*
 * The n of a query string "n=123" (other parameters are ignored): 0 and
 * *n, or -1 when n is missing, not a plain decimal number, or out of range.
 */
static int query_n(const char *q, size_t len, unsigned long *n)
{
	size_t i = 0;

	while (i < len) {
		size_t end = i;

		while (end < len && q[end] != '&')
			end++;
		if (end - i > 2 && q[i] == 'n' && q[i + 1] == '=') {
			unsigned long v = 0;

			for (size_t d = i + 2; d < end; d++) {
				if (q[d] < '0' || q[d] > '9')
					return -1;
				v = v * 10 + (unsigned long)(q[d] - '0');
				if (v > PRIMES_MAX)
					return -1; /* also stops overflow */
			}
			if (v < 1)
				return -1;
			*n = v;
			return 0;
		}
		i = end + 1;
	}
	return -1;
}

static void primes_done(aq_future *fut, void *user);

/* Hand the counting to the pool. Answers at once only on failure. */
static void primes_offload(struct conn *c, unsigned long n, bool head_only,
			   bool keep_alive)
{
	struct server *srv = c->srv;
	aq_future *fut;
	int rc;

	rc = aq_submit(srv->pool, primes_job, (void *)(uintptr_t)n, NULL, &fut);
	if (rc) {
		/* -EAGAIN: the ring is full. Shed load rather than wait. */
		respond(c, 503, "busy, try again\n", head_only, keep_alive);
		return;
	}
	c->refs++; /* the job's reference, dropped by primes_done() */
	c->job_pending = true;
	c->job_head = head_only;
	c->job_keep_alive = keep_alive;
	srv->jobs_in_flight++;
	srv->submitted++;
	rc = aq_future_then(fut, primes_done, c, srv->channel);
	if (rc) {
		/* No callback will come. The job only holds n, so it may run
		 * or not; nobody waits for it. */
		aq_future_cancel(fut);
		c->refs--;
		c->job_pending = false;
		srv->jobs_in_flight--;
		srv->submitted--;
		respond(c, 503, "out of memory\n", head_only, keep_alive);
	}
	aq_future_release(fut); /* the registration holds its own */
}

/*
 * GET /metrics: the pool's statistics as OpenMetrics text. The length is
 * asked first; the text may grow by a few digits before the second call,
 * so it gets some room and, if that was not enough, another try.
 */
static void metrics_respond(struct conn *c, bool head, bool keep)
{
	static const char type[] =
		"application/openmetrics-text; version=1.0.0; charset=utf-8";
	aq_pool *pool = c->srv->pool;
	int len = aq_pool_metrics(&pool, 1, NULL, 0);

	for (int tries = 0; len >= 0 && tries < 3; tries++) {
		size_t size = (size_t)len + 256;
		char *text = malloc(size);

		if (!text)
			break;
		len = aq_pool_metrics(&pool, 1, text, size);
		if (len >= 0 && (size_t)len < size) {
			respond_as(c, 200, type, text, (size_t)len, head, keep);
			free(text);
			return;
		}
		free(text);
	}
	respond(c, 500, "metrics unavailable\n", head, keep);
}

/* Answer one parsed request, or start to. */
static void route(struct conn *c, const struct request *req)
{
	struct server *srv = c->srv;
	/* Methods are case-sensitive (RFC 9110 9.1). */
	bool head = req->method_len == 4 && memcmp(req->method, "HEAD", 4) == 0;
	bool get = req->method_len == 3 && memcmp(req->method, "GET", 3) == 0;
	bool keep = req->keep_alive;
	char body[192];
	unsigned long n;

	if (!get && !head) {
		/* A body we will not read ends the connection. */
		respond(c, 405, "method not allowed\n", false,
			keep && !req->has_body);
		return;
	}
	if (req->has_body) {
		respond(c, 400, "GET and HEAD take no body here\n", head,
			false);
		return;
	}
	if (req->path_len == 7 && memcmp(req->path, "/health", 7) == 0) {
		respond(c, 200, "ok\n", head, keep);
	} else if (req->path_len == 7 && memcmp(req->path, "/primes", 7) == 0) {
		if (!req->query ||
		    query_n(req->query, req->query_len, &n) < 0) {
			respond(c, 400,
				"want /primes?n=N, 1 <= N <= 50000000\n", head,
				keep);
		} else if (srv->inline_primes) {
			long count = count_primes_below(n);

			if (count < 0) {
				respond(c, 500, "out of memory\n", head, keep);
			} else {
				snprintf(body, sizeof(body), "%ld\n", count);
				respond(c, 200, body, head, keep);
			}
		} else {
			primes_offload(c, n, head, keep);
		}
	} else if (req->path_len == 6 && memcmp(req->path, "/stats", 6) == 0) {
		snprintf(body, sizeof(body),
			 "connections %u\njobs %u\nsubmitted %llu\n"
			 "answered %llu\n",
			 srv->live.count + srv->linger.count,
			 srv->jobs_in_flight, srv->submitted, srv->answered);
		respond(c, 200, body, head, keep);
	} else if (req->path_len == 8 &&
		   memcmp(req->path, "/metrics", 8) == 0 && srv->pool) {
		metrics_respond(c, head, keep);
	} else {
		respond(c, 404, "not found\n", head, keep);
	}
}

/* The epoll interest set this connection needs now. */
static void conn_watch(struct conn *c)
{
	uint32_t want = 0;
	struct epoll_event ev;

	if (c->lingering) {
		want = EPOLLIN;
	} else {
		if (!c->peer_eof && !c->close_after_write &&
		    c->in_len < IN_CAP && out_pending(c) < OUT_HIGH)
			want |= EPOLLIN;
		if (out_pending(c) > 0)
			want |= EPOLLOUT;
	}
	if (want == c->events)
		return;
	ev.events = want;
	ev.data.ptr = c;
	if (epoll_ctl(c->srv->epfd, EPOLL_CTL_MOD, c->fd, &ev) < 0)
		conn_close(c);
	else
		c->events = want;
}

/*
 * Move a connection forward after anything happened to it: answer the
 * complete requests it holds (in order, stopping at a job), write, then
 * close, linger or choose what to wait for.
 */
static void conn_run(struct conn *c)
{
	/* A stale EPOLLOUT of this batch may reach a connection that began
	 * its lingering close in the meantime: it has nothing left to do. */
	if (c->closed || c->lingering)
		return;
	while (!c->closed && !c->job_pending && !c->close_after_write &&
	       c->in_len > 0 && out_pending(c) < OUT_HIGH) {
		struct request req;
		enum parse_result r = parse_request(c->in, c->in_len, &req);

		if (r == PARSE_INCOMPLETE)
			break;
		if (r == PARSE_BAD) {
			respond(c, 400, "bad request\n", false, false);
			break;
		}
		if (r == PARSE_TOO_LARGE) {
			respond(c, 431, "request head over 8 KiB\n", false,
				false);
			break;
		}
		route(c, &req); /* req points into c->in: consume after */
		c->in_len -= req.length;
		memmove(c->in, c->in + req.length, c->in_len);
	}
	if (c->closed || !conn_flush(c))
		return;
	if (out_pending(c) == 0 && !c->job_pending) {
		if (c->close_after_write) {
			conn_linger(c);
			if (c->closed)
				return;
		} else if (c->peer_eof) {
			conn_close(c); /* a partial request can never end */
			return;
		}
	}
	conn_watch(c);
}

/* The completion callback, run by aq_channel_dispatch() on the loop. */
static void primes_done(aq_future *fut, void *user)
{
	struct conn *c = user;
	void *result = NULL;
	int rc = aq_future_get(fut, &result, 0); /* resolved: no wait */
	char body[64];

	c->srv->jobs_in_flight--;
	c->job_pending = false;
	if (!c->closed) {
		if (rc == 0) {
			snprintf(body, sizeof(body), "%lu\n",
				 (unsigned long)(uintptr_t)result);
			respond(c, 200, body, c->job_head, c->job_keep_alive);
		} else {
			/* ENOMEM from the job, or -ECANCELED at a forced
			 * shutdown. */
			snprintf(body, sizeof(body), "job: %s\n",
				 rc > 0 ? strerror(rc) : aq_strerror(rc));
			respond(c, rc == -ECANCELED ? 503 : 500, body,
				c->job_head, c->job_keep_alive);
		}
		conn_run(c); /* send it; go on with pipelined requests */
	}
	conn_put(c);
}

/* ---- Events ------------------------------------------------------------- */

static void conn_readable(struct conn *c)
{
	ssize_t n;

	if (c->lingering) {
		char discard[4096];

		n = recv(c->fd, discard, sizeof(discard), 0);
		if (n == 0 || (n < 0 && errno != EAGAIN && errno != EINTR))
			conn_close(c);
		return;
	}
	if (c->in_len == IN_CAP)
		return; /* not asked for; conn_run() will make room */
	n = recv(c->fd, c->in + c->in_len, IN_CAP - c->in_len, 0);
	if (n > 0) {
		c->in_len += (size_t)n;
		conn_touch(c);
	} else if (n == 0) {
		c->peer_eof = true;
	} else if (errno != EAGAIN && errno != EWOULDBLOCK && errno != EINTR) {
		conn_close(c);
		return;
	}
	conn_run(c);
}

static void conn_event(struct conn *c, uint32_t events)
{
	if (c->closed)
		return; /* closed earlier in this batch */
	if (events & (EPOLLERR | EPOLLHUP)) {
		/* A reset, or both directions shut: nobody to answer. */
		conn_close(c);
		return;
	}
	if (events & EPOLLIN)
		conn_readable(c);
	if (!c->closed && (events & EPOLLOUT))
		conn_run(c);
}

static void accept_ready(struct server *srv)
{
	for (int i = 0; i < ACCEPT_BUDGET; i++) {
		int one = 1;
		int fd = accept4(srv->listen_fd, NULL, NULL,
				 SOCK_NONBLOCK | SOCK_CLOEXEC);

		if (fd < 0) {
			if (errno == EINTR || errno == ECONNABORTED)
				continue;
			if ((errno == EMFILE || errno == ENFILE) &&
			    srv->spare_fd >= 0) {
				/* Out of descriptors: the pending connection
				 * would keep the level-triggered listener
				 * ready forever. Free the spare, refuse it,
				 * take the spare back. */
				close(srv->spare_fd);
				fd = accept(srv->listen_fd, NULL, NULL);
				if (fd >= 0)
					close(fd);
				srv->spare_fd =
				    open("/dev/null", O_RDONLY | O_CLOEXEC);
				continue;
			}
			return; /* EAGAIN: all taken */
		}
		setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
		if (!conn_new(srv, fd))
			close(fd);
	}
}

/* SIGTERM or SIGINT: begin draining; a second one cuts it short. */
static void signal_ready(struct server *srv)
{
	struct signalfd_siginfo si;
	struct conn *c, *next;

	if (read(srv->signal_fd, &si, sizeof(si)) != (ssize_t)sizeof(si))
		return;
	if (srv->draining) {
		fprintf(stderr, "http_server: second signal, closing now\n");
		srv->drain_deadline_ms = now_ms();
		return;
	}
	fprintf(
	    stderr, "http_server: %s: draining %u connection(s), %u job(s)\n",
	    strsignal((int)si.ssi_signo), srv->live.count, srv->jobs_in_flight);
	srv->draining = true;
	srv->drain_deadline_ms = now_ms() + DRAIN_MS;
	close(srv->listen_fd); /* new clients are refused from now on */
	srv->listen_fd = -1;
	for (c = srv->live.head; c; c = next) {
		next = c->next;
		if (c->job_pending || out_pending(c) > 0) {
			/* Being served: answer, then close. */
			c->close_after_write = true;
			conn_watch(c);
		} else {
			conn_close(c); /* idle, or a request half-sent */
		}
	}
}

/* Close connections whose deadline passed; all of them when forced. */
static void expire(struct server *srv, int64_t now, bool forced)
{

	while (srv->linger.head &&
	       (forced || srv->linger.head->deadline_ms <= now))
		conn_close(srv->linger.head);
	while (srv->live.head &&
	       (forced || srv->live.head->deadline_ms <= now)) {
		struct conn *c = srv->live.head;

		if (c->job_pending && !forced)
			conn_touch(c); /* busy, not idle: the job will end */
		else
			conn_close(c);
	}
}

/* How long epoll_wait() may sleep: until the earliest deadline. */
static int wait_timeout(const struct server *srv, int64_t now)
{
	int64_t next = INT64_MAX;

	if (srv->live.head)
		next = srv->live.head->deadline_ms;
	if (srv->linger.head && srv->linger.head->deadline_ms < next)
		next = srv->linger.head->deadline_ms;
	if (srv->draining && srv->drain_deadline_ms < next)
		next = srv->drain_deadline_ms;
	if (next == INT64_MAX)
		return -1;
	if (next <= now)
		return 0;
	return next - now > INT_MAX ? INT_MAX : (int)(next - now);
}

static void serve(struct server *srv)
{
	struct epoll_event events[MAX_EVENTS];

	for (;;) {
		int64_t now = now_ms();
		int n;

		if (srv->draining &&
		    ((srv->live.count == 0 && srv->linger.count == 0 &&
		      srv->jobs_in_flight == 0) ||
		     now >= srv->drain_deadline_ms))
			break;
		n = epoll_wait(srv->epfd, events, MAX_EVENTS,
			       wait_timeout(srv, now));
		if (n < 0 && errno != EINTR) {
			perror("epoll_wait");
			break;
		}
		for (int i = 0; i < n; i++) {
			void *p = events[i].data.ptr;

			if (p == &tag_listen) {
				if (srv->listen_fd >= 0)
					accept_ready(srv);
			} else if (p == &tag_signal) {
				signal_ready(srv);
			} else if (p == &tag_channel) {
				/* Callbacks run here, on the loop thread; a
				 * budget keeps the loop responsive, and the
				 * fd stays readable while more wait. */
				aq_channel_dispatch(srv->channel,
						    DISPATCH_BUDGET);
			} else {
				conn_event(p, events[i].events);
			}
		}
		now = now_ms();
		expire(srv, now,
		       srv->draining && now >= srv->drain_deadline_ms);
		reap(srv);
	}
	expire(srv, now_ms(), true); /* past the deadline: close the rest */
	reap(srv);
}

/* ---- Setup -------------------------------------------------------------- */

static int listen_on(unsigned port)
{
	struct sockaddr_in addr = {.sin_family = AF_INET};
	socklen_t len = sizeof(addr);
	int one = 1;
	int fd = socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);

	if (fd < 0) {
		perror("socket");
		return -1;
	}
	addr.sin_port = htons((uint16_t)port);
	addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one));
	if (bind(fd, (struct sockaddr *)&addr, sizeof(addr)) < 0 ||
	    listen(fd, SOMAXCONN) < 0 ||
	    getsockname(fd, (struct sockaddr *)&addr, &len) < 0) {
		perror("bind/listen");
		close(fd);
		return -1;
	}
	printf("listening on 127.0.0.1:%u\n", (unsigned)ntohs(addr.sin_port));
	fflush(stdout); /* a test reads the port from a pipe */
	return fd;
}

static int watch(int epfd, int fd, void *tag)
{
	struct epoll_event ev = {.events = EPOLLIN};

	ev.data.ptr = tag;
	return epoll_ctl(epfd, EPOLL_CTL_ADD, fd, &ev);
}

static int parse_number(const char *s, unsigned long max, unsigned long *out)
{
	char *end;
	unsigned long v;

	errno = 0;
	v = strtoul(s, &end, 10);
	if (errno || end == s || *end || v > max || s[0] == '-')
		return -1;
	*out = v;
	return 0;
}

static void usage(const char *prog)
{
	fprintf(stderr, "usage: %s [-p PORT] [-w WORKERS] [-i]\n", prog);
	exit(2);
}

int main(int argc, char **argv)
{
	struct server srv = {.epfd = -1, .listen_fd = -1, .signal_fd = -1};
	struct aq_pool_config cfg = {0};
	unsigned long port = 8080, workers = 0;
	sigset_t stop_signals;
	int opt, rc;

	while ((opt = getopt(argc, argv, "p:w:i")) != -1) {
		if (opt == 'p' && parse_number(optarg, 65535, &port) == 0)
			continue;
		if (opt == 'w' &&
		    parse_number(optarg, AQ_WORKERS_MAX, &workers) == 0)
			continue;
		if (opt == 'i') {
			srv.inline_primes = true;
			continue;
		}
		usage(argv[0]);
	}
	if (optind != argc)
		usage(argv[0]);

	/* Block the stop signals before any thread exists, so that only
	 * the signalfd sees them; a write to a vanished client must not
	 * kill us either (send() has MSG_NOSIGNAL; this is belt and
	 * braces). */
	sigemptyset(&stop_signals);
	sigaddset(&stop_signals, SIGTERM);
	sigaddset(&stop_signals, SIGINT);
	sigprocmask(SIG_BLOCK, &stop_signals, NULL);
	signal(SIGPIPE, SIG_IGN);

	if (!srv.inline_primes) {
		cfg.workers = (unsigned)workers; /* 0 = online CPUs */
		cfg.name = "http";       /* pool="http" in GET /metrics */
		cfg.flags = AQ_POOL_TIMING; /* its wait and run histograms */
		rc = aq_pool_create(&srv.pool, &cfg);
		if (rc) {
			fprintf(stderr, "aq_pool_create: %s\n",
				aq_strerror(rc));
			return 1;
		}
		rc = aq_channel_create(&srv.channel, 0);
		if (rc) {
			fprintf(stderr, "aq_channel_create: %s\n",
				aq_strerror(rc));
			aq_pool_destroy(srv.pool);
			return 1;
		}
	}

	srv.spare_fd = open("/dev/null", O_RDONLY | O_CLOEXEC);
	srv.signal_fd = signalfd(-1, &stop_signals, SFD_NONBLOCK | SFD_CLOEXEC);
	srv.epfd = epoll_create1(EPOLL_CLOEXEC);
	srv.listen_fd = listen_on((unsigned)port);
	if (srv.signal_fd < 0 || srv.epfd < 0 || srv.listen_fd < 0 ||
	    watch(srv.epfd, srv.listen_fd, &tag_listen) < 0 ||
	    watch(srv.epfd, srv.signal_fd, &tag_signal) < 0 ||
	    (srv.channel &&
	     watch(srv.epfd, aq_channel_fd(srv.channel), &tag_channel) < 0)) {
		perror("http_server: setup");
		return 1;
	}
	if (srv.pool)
		fprintf(stderr, "http_server: %d worker(s)\n",
			aq_pool_workers(srv.pool));
	else
		fprintf(stderr, "http_server: primes counted inline\n");

	serve(&srv);

	if (srv.pool) {
		/* Past the drain deadline, queued jobs are not worth it. */
		if (srv.jobs_in_flight > 0)
			aq_pool_shutdown(srv.pool, AQ_SHUTDOWN_CANCEL);
		aq_pool_destroy(srv.pool);
		/* Runs the callbacks of jobs that outlived their clients;
		 * they only drop their connection references. */
		aq_channel_destroy(srv.channel);
		reap(&srv);
	}
	fprintf(stderr, "http_server: %llu answer(s), exiting\n", srv.answered);
	close(srv.epfd);
	close(srv.signal_fd);
	if (srv.spare_fd >= 0)
		close(srv.spare_fd);
	return 0;
}
