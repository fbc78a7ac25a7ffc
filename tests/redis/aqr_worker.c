/* SPDX-License-Identifier: MIT */
/*
 * aqr_worker.c - the worker process the Redis suite starts: it joins a
 * queue with the job types below, logs what its jobs do (one line per
 * event, "event id pid", appended with one write so lines never mix), and
 * on SIGTERM stops gracefully and logs its statistics.
 *
 *   aqr_worker port=P queue=Q [conc=N] [vis=MS] [hb=MS] [maxdeliv=N]
 *              [drain=MS] [log=PATH] [pass=PW] [user=U] [maxpay=BYTES]
 *              [threads=N]   (a pool of N threads instead of conc)
 */
#include <errno.h>
#include <stdbool.h>
#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include <asyncq_redis.h>

static int log_fd = -1;

static void log_event(const char *event, const char *id)
{
	char line[300];
	int n = snprintf(line, sizeof(line), "%s %s %ld\n", event, id,
			 (long)getpid());

	if (log_fd >= 0 && write(log_fd, line, (size_t)n) != n)
		_exit(3);
}

/* The payload's text, as a NUL-terminated string (it is one). */
static const char *text(void *arg)
{
	return ((struct aq_redis_result *)arg)->data;
}

static int text_result(const char *s, void **result)
{
	*result = strdup(s);
	return *result ? 0 : ENOMEM;
}

static int encode_text(void *result, void **data, size_t *len, void *user)
{
	(void)user;
	*len = strlen(result);
	*data = strdup(result);
	return *data ? 0 : ENOMEM;
}

static void free_text(void *p, void *user)
{
	(void)user;
	free(p);
}

static int job_add(void *arg, void **result)
{
	long long x = 0, y = 0;
	char buf[48];

	if (sscanf(text(arg), "%lld %lld", &x, &y) != 2)
		return EINVAL;
	snprintf(buf, sizeof(buf), "%lld", x + y);
	return text_result(buf, result);
}

/* Binary-safe: the result is the payload's bytes. */
static int job_echo(void *arg, void **result)
{
	*result = arg;
	return 0;
}

static int encode_echo(void *result, void **data, size_t *len, void *user)
{
	const struct aq_redis_result *blob = result;

	(void)user;
	*data = malloc(blob->len ? blob->len : 1);
	if (!*data)
		return ENOMEM;
	memcpy(*data, blob->data, blob->len);
	*len = blob->len;
	return 0;
}

/* "ms id": sleep ms; the result is our pid. */
static int job_sleep(void *arg, void **result)
{
	char id[200], pid[24];
	long ms = 0;
	struct timespec ts;

	if (sscanf(text(arg), "%ld %199s", &ms, id) != 2)
		return EINVAL;
	log_event("start", id);
	ts.tv_sec = ms / 1000;
	ts.tv_nsec = (ms % 1000) * 1000000L;
	while (nanosleep(&ts, &ts) == -1 && errno == EINTR)
		;
	log_event("end", id);
	snprintf(pid, sizeof(pid), "%ld", (long)getpid());
	return text_result(pid, result);
}

/* Sleep in steps of 5 ms until a stop condition or 120 s. */
static void wait_until(bool (*done)(const char *), const char *arg)
{
	struct timespec ts = { 0, 5000000L };

	for (int i = 0; i < 24000 && !done(arg); i++)
		nanosleep(&ts, NULL);
}

static bool file_exists(const char *path)
{
	return access(path, F_OK) == 0;
}

static bool cancel_asked(const char *unused)
{
	(void)unused;
	return aq_current_cancelled() != 0;
}

/* "path id [fail]": wait until the file path exists; the result is our
 * pid, or with "fail" a failure (code 7). */
static int job_gate(void *arg, void **result)
{
	char path[400], id[200], pid[24], how[8] = "";

	if (sscanf(text(arg), "%399s %199s %7s", path, id, how) < 2)
		return EINVAL;
	log_event("start", id);
	wait_until(file_exists, path);
	log_event("end", id);
	if (strcmp(how, "fail") == 0)
		return 7;
	snprintf(pid, sizeof(pid), "%ld", (long)getpid());
	return text_result(pid, result);
}

/* "id": run until asked to cancel (aq_current_cancelled()). */
static int job_cancellable(void *arg, void **result)
{
	(void)result;
	log_event("start", text(arg));
	wait_until(cancel_asked, NULL);
	log_event(aq_current_cancelled() ? "cancelled" : "timeout", text(arg));
	return aq_current_cancelled() ? AQ_JOB_CANCELLED : ETIMEDOUT;
}

/* The payload twice (a result larger than the payload). */
static int job_dup(void *arg, void **result)
{
	size_t n = strlen(text(arg));
	char *two = malloc(2 * n + 1);

	if (!two)
		return ENOMEM;
	memcpy(two, text(arg), n);
	memcpy(two + n, text(arg), n + 1);
	*result = two;
	return 0;
}

static int job_log(void *arg, void **result)
{
	log_event("run", text(arg));
	return text_result(text(arg), result);
}

static int job_fail(void *arg, void **result)
{
	(void)result;
	log_event("fail", text(arg));
	aq_current_fail_msg("flaky");
	return 7;
}

static int job_abort(void *arg, void **result)
{
	(void)result;
	log_event("abort", text(arg));
	abort();
}

static int decode_strict(const void *data, size_t len, void **arg, void *user)
{
	(void)user;
	if (len < 2 || memcmp(data, "ok", 2) != 0)
		return EBADMSG;
	*arg = NULL;
	return 0;
}

static int job_strict(void *arg, void **result)
{
	(void)arg;
	return text_result("strict", result);
}

static const struct aq_redis_type types[] = {
	{ .name = "add", .fn = job_add, .encode = encode_text,
	  .free_result = free_text },
	{ .name = "echo", .fn = job_echo, .encode = encode_echo },
	{ .name = "sleep", .fn = job_sleep, .encode = encode_text,
	  .free_result = free_text },
	{ .name = "dup", .fn = job_dup, .encode = encode_text,
	  .free_result = free_text },
	{ .name = "log", .fn = job_log, .encode = encode_text,
	  .free_result = free_text },
	{ .name = "gate", .fn = job_gate, .encode = encode_text,
	  .free_result = free_text },
	{ .name = "cancellable", .fn = job_cancellable },
	{ .name = "fail", .fn = job_fail },
	{ .name = "abort", .fn = job_abort },
	{ .name = "strict", .fn = job_strict, .decode = decode_strict,
	  .encode = encode_text, .free_result = free_text },
};

static const char *opt(int argc, char **argv, const char *key)
{
	size_t k = strlen(key);

	for (int i = 1; i < argc; i++)
		if (strncmp(argv[i], key, k) == 0 && argv[i][k] == '=')
			return argv[i] + k + 1;
	return NULL;
}

static long opt_long(int argc, char **argv, const char *key, long def)
{
	const char *v = opt(argc, argv, key);

	return v ? strtol(v, NULL, 10) : def;
}

int main(int argc, char **argv)
{
	struct aq_redis_conn conn = { 0 };
	struct aq_redis_worker_config cfg = {
		.types = types, .ntypes = sizeof(types) / sizeof(types[0]),
	};
	struct aq_redis_stats st;
	aq_redis_worker *w;
	aq_pool *pool = NULL;
	sigset_t set;
	char line[300];
	int sig, rc, handed;

	sigemptyset(&set);
	sigaddset(&set, SIGTERM);
	sigaddset(&set, SIGINT);
	pthread_sigmask(SIG_BLOCK, &set, NULL);
	conn.port = (unsigned)opt_long(argc, argv, "port", 6379);
	conn.queue = opt(argc, argv, "queue");
	conn.password = opt(argc, argv, "pass");
	conn.user = opt(argc, argv, "user");
	conn.max_payload = (size_t)opt_long(argc, argv, "maxpay", 0);
	cfg.concurrency = (unsigned)opt_long(argc, argv, "conc", 4);
	cfg.visibility_ms = opt_long(argc, argv, "vis", 0);
	cfg.heartbeat_ms = opt_long(argc, argv, "hb", 0);
	cfg.max_deliveries = (unsigned)opt_long(argc, argv, "maxdeliv", 0);
	if (opt(argc, argv, "log"))
		log_fd = open(opt(argc, argv, "log"),
			      O_WRONLY | O_APPEND | O_CREAT, 0644);
	if (opt(argc, argv, "threads")) {
		struct aq_pool_config pc = {
			.workers = (unsigned)opt_long(argc, argv, "threads", 1)
		};

		if (aq_pool_create(&pool, &pc) != 0)
			return 1;
		cfg.pool = pool;
	}
	rc = aq_redis_worker_create(&w, &conn, &cfg);
	if (rc) {
		fprintf(stderr, "aqr_worker: create: %d\n", rc);
		return 1;
	}
	log_event("ready", "-");
	sigwait(&set, &sig);
	handed = aq_redis_worker_stop(w, opt_long(argc, argv, "drain", 10000));
	aq_redis_worker_stats(w, &st);
	snprintf(line, sizeof(line), "h%d-f%llu-c%llu", handed,
		 (unsigned long long)st.fenced,
		 (unsigned long long)st.completed);
	log_event("stats", line);
	aq_redis_worker_destroy(w);
	aq_pool_destroy(pool);
	return 0;
}
