/* SPDX-License-Identifier: MIT */
/*
 * asyncq_redis.h - libasyncq-redis: libasyncq jobs across processes and
 * machines, through Redis Streams consumer groups (Redis >= 7.0).
 *
 * A client submits named jobs with opaque byte payloads and gets a local
 * aq_future (a promise, aq_future_create(3)) that resolves when a worker
 * anywhere finishes the job. A worker joins the queue's consumer group and
 * runs the jobs on a local aq_pool. Delivery is at least once: a job is
 * acknowledged only after it finished. man 7 libasyncq-redis gives the
 * model, the key layout and the wire format.
 */
#ifndef ASYNCQ_REDIS_H
#define ASYNCQ_REDIS_H

#include <stddef.h>
#include <stdint.h>

#include <asyncq.h>

#ifdef __cplusplus
extern "C" {
#endif

typedef struct aq_redis_client aq_redis_client; /* submits jobs */
typedef struct aq_redis_worker aq_redis_worker; /* runs them */

/* Where Redis is and which queue. All-zero = 127.0.0.1:6379, "default". */
struct aq_redis_conn {
	const char *host;      /* NULL = "127.0.0.1" */
	unsigned port;         /* 0 = 6379 */
	const char *unix_path; /* a Unix socket instead of host/port */
	const char *user;      /* ACL user (with password); NULL = default */
	const char *password;  /* AUTH when not NULL */
	const char *queue;     /* queue name (no '{' or '}'); NULL =
				  "default". Keys are aq:{queue}:... */
	int64_t timeout_ms;    /* connect and command timeout; 0 = 5000 */
	size_t max_payload;    /* largest payload or result in bytes;
				  0 = 1 MiB */
};

/* Priority levels (struct aq_redis_job_opts.priority). */
#define AQ_REDIS_PRIO_HIGH (-1)
#define AQ_REDIS_PRIO_NORMAL 0
#define AQ_REDIS_PRIO_LOW 1

/* Options of one submitted job; all-zero = the defaults. Times are in
 * milliseconds and judged by the Redis server's clock (TIME). */
struct aq_redis_job_opts {
	int priority;           /* AQ_REDIS_PRIO_* */
	int64_t delay_ms;       /* run no earlier than this after submit */
	int64_t run_at_ms;      /* ... or than this Unix time; 0 = not set */
	int64_t deadline_ms;    /* not started within this of submit (or of
				   a retry's due time): EXPIRED; 0 = none */
	unsigned max_attempts;  /* attempts in all; 0 or 1 = no retry */
	int64_t backoff_ms;     /* delay before attempt 2 */
	double backoff_factor;  /* delay n+1 = backoff * factor^(n-1); 0 = 1 */
	int64_t backoff_max_ms; /* cap; 0 = none */
	const char *idempotency_key; /* a second submit with the same key
					while the first is known runs
					nothing and resolves alike */
	int64_t result_ttl_ms;       /* keep the outcome in Redis this long;
					0 = not kept, or 1 h with a key */
};

/* One job of a batch. */
struct aq_redis_job {
	const char *type;    /* the registered wire name */
	const void *payload; /* may be NULL when len is 0 */
	size_t len;
};

/* What a job's future holds as its result (succeeded or failed): the
 * encoded bytes, NUL-terminated for convenience; valid while the future
 * is held. */
struct aq_redis_result {
	size_t len;
	const void *data;
};

/* Codes with which a dead-lettered job's future fails (besides the job's
 * own code when it kept failing). */
#define AQ_REDIS_E_UNKNOWN_TYPE 38 /* ENOSYS: no worker knows its type */
#define AQ_REDIS_E_UNDECODABLE 74  /* EBADMSG: its payload did not decode */
#define AQ_REDIS_E_TOO_LARGE 90    /* EMSGSIZE: payload above the maximum */
#define AQ_REDIS_E_CRASHED 130     /* EOWNERDEAD: it took workers down */

/* Connect (AUTH when configured); flags must be 0. -ECONNREFUSED,
 * -EHOSTUNREACH, -ETIMEDOUT, -EACCES (auth), -EINVAL, -ENOMEM. */
AQ_API int aq_redis_client_create(aq_redis_client **client,
				  const struct aq_redis_conn *conn,
				  unsigned flags);
/* Futures still pending resolve CANCELLED; then free everything. */
AQ_API void aq_redis_client_destroy(aq_redis_client *client);

/*
 * Submit one job. fut NULL = fire and forget: no result is sent back.
 * 0, -EMSGSIZE, -EINVAL, -ENOMEM, -ENOSPC when Redis is out of memory,
 * or -ENOTCONN when Redis cannot be reached (then the job is known not to
 * be queued, or, when the connection broke mid-call, -ECONNRESET: it may
 * have been).
 */
AQ_API int aq_redis_submit(aq_redis_client *client, const char *type,
			   const void *payload, size_t len,
			   const struct aq_redis_job_opts *opts,
			   aq_future **fut);
/* n jobs in one round trip (one script per 256), each with opts; futs
 * may be NULL. The number accepted (n, or fewer on a failure after
 * some), or an error. */
AQ_API int aq_redis_submit_batch(aq_redis_client *client,
				 const struct aq_redis_job *jobs, unsigned n,
				 const struct aq_redis_job_opts *opts,
				 aq_future **futs);

/*
 * Cancel a submitted job in Redis: 0 when no worker had it (it never runs;
 * fut resolves -ECANCELED before this returns); -EBUSY when a worker
 * holds it (not interrupted, not retried nor run again); -EALREADY,
 * -EINVAL, -ENOTCONN, -ECONNRESET. aq_future_cancel() is local only.
 */
AQ_API int aq_redis_cancel(aq_redis_client *client, aq_future *fut);

/* ---- Workers ------------------------------------------------------------- */

/*
 * A job type: fn runs decoded arguments; decode and encode translate the
 * payload and the result. decode returns 0 or a positive code (the job is
 * then dead-lettered as undecodable); NULL = the argument is a pointer to
 * the struct aq_redis_result of the payload itself. encode (NULL = no
 * result bytes) returns 0 and a malloc'ed *data, or a positive code;
 * free_arg and free_result (may be NULL) release what decode and fn made.
 */
struct aq_redis_type {
	const char *name;
	aq_job_fn fn;
	int (*decode)(const void *data, size_t len, void **arg, void *user);
	int (*encode)(void *result, void **data, size_t *len, void *user);
	void (*free_arg)(void *arg, void *user);
	void (*free_result)(void *result, void *user);
	void *user;
};

/* A worker's configuration; all-zero except types = the defaults. */
struct aq_redis_worker_config {
	const struct aq_redis_type *types; /* the registry; copied */
	unsigned ntypes;
	aq_pool *pool;           /* run jobs here; NULL = a pool of its own */
	unsigned concurrency;    /* jobs in flight at most; 0 = 4 */
	const char *consumer;    /* its name in the group; NULL = host-pid-n */
	int64_t visibility_ms;   /* a job not heard of this long is taken by
				    another worker; 0 = 30000 */
	int64_t heartbeat_ms;    /* 0 = visibility / 4 */
	unsigned max_deliveries; /* times a job's worker may die while it
				    ran alone there before it is
				    dead-lettered as crashing; 0 = 3 */
	unsigned dead_max;       /* dead-letter stream length kept (about);
				    0 = 10000 */
};

/* Join the group and start fetching. Errors as aq_redis_client_create(). */
AQ_API int aq_redis_worker_create(aq_redis_worker **worker,
				  const struct aq_redis_conn *conn,
				  const struct aq_redis_worker_config *cfg);
/*
 * Stop fetching, let running jobs finish for up to drain_ms (heartbeats
 * go on), then hand the unfinished ones back to the queue. Returns how
 * many were handed back, or -EINVAL, -EALREADY (stopped before).
 */
AQ_API int aq_redis_worker_stop(aq_redis_worker *worker, int64_t drain_ms);
/* Stop (drain 0) if not stopped, wait for running calls, free. */
AQ_API void aq_redis_worker_destroy(aq_redis_worker *worker);

/* ---- Statistics -------------------------------------------------------- */

struct aq_redis_stats {
	/* The queue, read from Redis now. */
	uint64_t lag;     /* queued, not yet delivered to any worker */
	uint64_t pending; /* delivered, not yet acknowledged */
	uint64_t delayed; /* waiting for their time or a retry */
	uint64_t dead;    /* entries in the dead-letter stream */
	/* This client or worker, since creation. */
	uint64_t submitted, duplicates; /* client: accepted; idempotent
					   submits that ran nothing new */
	uint64_t resolved;  /* client: futures resolved from Redis */
	uint64_t in_flight; /* worker: jobs it holds now */
	uint64_t completed, retried, dead_lettered, reclaimed, fenced,
		handed_back, reconnects; /* worker (reconnects: both) */
};

/* Fill *stats; -ENOTCONN leaves the queue figures 0. */
AQ_API int aq_redis_client_stats(aq_redis_client *client,
				 struct aq_redis_stats *stats);
AQ_API int aq_redis_worker_stats(aq_redis_worker *worker,
				 struct aq_redis_stats *stats);

#ifdef __cplusplus
}
#endif

#endif /* ASYNCQ_REDIS_H */
