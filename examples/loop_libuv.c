/* SPDX-License-Identifier: MIT */
/*
 * loop_libuv.c - libasyncq inside a libuv loop. The loop thread hands jobs
 * to a pool, keeping up to IN_FLIGHT of them under way; each job's
 * completion callback is posted to a completion channel, whose descriptor
 * a uv_poll_t watches, so that the callbacks run on the loop thread, a
 * budget of them per wake, between the loop's other events.
 * Build: cc loop_libuv.c $(pkg-config --cflags --libs libasyncq libuv);
 * in this tree `make` builds it when libuv1-dev is installed.
 *
 *     loop_libuv [JOBS [BUDGET]]     (1000 jobs, 16 a wake; 0 = no limit)
 *
 * It checks what it shows, and tests/loops_test.sh runs it: every callback
 * must run exactly once, on the loop thread, and see its job's outcome
 * (every tenth job fails on purpose). It exits 0 if so, 1 if not.
 */
#include <pthread.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>

#include <asyncq.h>
#include <uv.h>

#define JOB_FAILED  7	  /* the failure code of every tenth job */
#define IN_FLIGHT   64	  /* jobs under way at once */
#define WATCHDOG_MS 30000 /* give up (and fail) if not done by then */

struct app;

struct task { /* one job, owned by the loop thread */
	struct app *app;
	long n;		  /* the input: the job squares it */
	pthread_t worker; /* the thread that ran the job */
	int completions;  /* how many times done() ran for it */
};

struct app {
	aq_pool *pool;
	aq_channel *channel;
	uv_poll_t channel_watch; /* readable while callbacks wait */
	uv_timer_t watchdog;
	pthread_t loop_thread;
	unsigned budget; /* callbacks per dispatch; 0 = all */
	struct task *tasks;
	long jobs, submitted; /* tasks[submitted] is the next to go */
	long remaining;	      /* callbacks still to come */
	/* What the checks count: dispatches, and callbacks that broke a
	 * rule (ran off the loop thread, job ran on it, wrong outcome). */
	long dispatches, empty_dispatches, largest_batch;
	long off_loop, not_offloaded, wrong;
	int failed; /* the watchdog fired, or a call failed */
};

static int job_fails(long n)
{
	return n % 10 == 9;
}

/* The job, on a worker of the pool: square n, or fail on purpose. */
static int square(void *arg, void **result)
{
	struct task *t = arg;

	t->worker = pthread_self();
	if (job_fails(t->n))
		return JOB_FAILED;
	*result = (void *)(intptr_t)(t->n * t->n);
	return 0;
}

static void stop(struct app *app)
{
	uv_poll_stop(&app->channel_watch);
	uv_timer_stop(&app->watchdog); /* no active handle: uv_run returns */
}

static void done(aq_future *fut, void *user);

/* Hand the next task to the pool; done() will run on the loop thread. */
static int offload(struct app *app)
{
	struct task *t = &app->tasks[app->submitted];
	aq_future *fut;
	int rc;

	t->app = app;
	t->n = app->submitted;
	/* The ring has room: at most IN_FLIGHT jobs are ever in it. A loop
	 * that cannot bound its jobs must handle -EAGAIN, not block. */
	rc = aq_submit(app->pool, square, t, NULL, &fut);
	if (rc < 0)
		return rc;
	rc = aq_future_then(fut, done, t, app->channel);
	aq_future_release(fut); /* the callback holds its own reference */
	if (rc == 0)
		app->submitted++;
	return rc;
}

/* The completion, on whichever thread dispatches the channel: ours. */
static void done(aq_future *fut, void *user)
{
	struct task *t = user;
	struct app *app = t->app;
	void *result = NULL;
	int rc = aq_future_get(fut, &result, 0); /* resolved: no wait */

	t->completions++;
	if (!pthread_equal(pthread_self(), app->loop_thread))
		app->off_loop++;
	if (pthread_equal(t->worker, app->loop_thread))
		app->not_offloaded++;
	if (job_fails(t->n) ? rc != JOB_FAILED
			    : rc != 0 || (intptr_t)result != t->n * t->n)
		app->wrong++;
	if (--app->remaining == 0)
		stop(app);
	else if (app->submitted < app->jobs && (rc = offload(app)) < 0) {
		fprintf(stderr, "submit: %s\n", aq_strerror(rc));
		app->failed = 1;
		stop(app);
	}
}

/* libuv says the channel's descriptor is readable: run a budget of
 * callbacks. Any left keep it readable, so libuv calls again on its next
 * iteration, after the loop's other ready events. */
static void on_channel(uv_poll_t *watch, int status, int events)
{
	struct app *app = watch->data;
	int ran;

	(void)events;
	ran = status < 0 ? status
			 : aq_channel_dispatch(app->channel, app->budget);
	if (ran < 0) {
		fprintf(stderr, "channel: %s\n",
			status < 0 ? uv_strerror(ran) : aq_strerror(ran));
		app->failed = 1;
		stop(app);
		return;
	}
	app->dispatches++;
	app->empty_dispatches += ran == 0; /* a wake for nothing */
	if (ran > app->largest_batch)
		app->largest_batch = ran;
}

static void on_watchdog(uv_timer_t *timer)
{
	struct app *app = timer->data;

	fprintf(stderr, "watchdog: %ld callback(s) never came\n",
		app->remaining);
	app->failed = 1;
	stop(app);
}

/* Prints the verdict; returns the exit status. */
static int report(const struct app *app)
{
	long jobs = app->jobs, once = 0;

	for (long i = 0; i < jobs; i++)
		once += app->tasks[i].completions == 1;
	printf("libuv: %ld jobs, %ld completed exactly once, %ld off the "
	       "loop thread, %ld run on it, %ld wrong; %ld dispatches "
	       "(%ld empty), largest %ld (budget %u)\n",
	       jobs, once, app->off_loop, app->not_offloaded, app->wrong,
	       app->dispatches, app->empty_dispatches, app->largest_batch,
	       app->budget);
	if (app->failed || once != jobs || app->off_loop ||
	    app->not_offloaded || app->wrong ||
	    (app->budget && app->largest_batch > (long)app->budget)) {
		printf("loop_libuv: FAIL\n");
		return 1;
	}
	printf("loop_libuv: ok\n");
	return 0;
}

int main(int argc, char **argv)
{
	struct aq_pool_config cfg = { 0 };
	struct app app = { 0 };
	uv_loop_t *loop = uv_default_loop();
	long jobs = argc > 1 ? strtol(argv[1], NULL, 10) : 1000;
	long budget = argc > 2 ? strtol(argv[2], NULL, 10) : 16;
	int rc, status;

	if (argc > 3 || jobs < 1 || jobs > 10000000 || budget < 0 ||
	    budget > 1000000) {
		fprintf(stderr, "usage: loop_libuv [JOBS [BUDGET]]\n");
		return 2;
	}
	app.budget = (unsigned)budget;
	app.jobs = app.remaining = jobs;
	app.loop_thread = pthread_self(); /* uv_run() runs on this thread */
	app.tasks = calloc((size_t)jobs, sizeof(*app.tasks));
	cfg.workers = 2;
	if (!app.tasks || (rc = aq_pool_create(&app.pool, &cfg)) < 0 ||
	    (rc = aq_channel_create(&app.channel, 0)) < 0) {
		fprintf(stderr, "setup: %s\n",
			app.tasks ? aq_strerror(rc) : "out of memory");
		return 1;
	}

	/* Watch the channel like a socket: level-triggered, readable while
	 * callbacks wait. uv_poll_init() takes any descriptor on Linux. */
	uv_poll_init(loop, &app.channel_watch, aq_channel_fd(app.channel));
	app.channel_watch.data = &app;
	uv_poll_start(&app.channel_watch, UV_READABLE, on_channel);
	uv_timer_init(loop, &app.watchdog);
	app.watchdog.data = &app;
	uv_timer_start(&app.watchdog, on_watchdog, WATCHDOG_MS, 0);

	/* The first IN_FLIGHT jobs; each completion then sends the next. */
	while (app.submitted < jobs && app.submitted < IN_FLIGHT) {
		if ((rc = offload(&app)) < 0) {
			fprintf(stderr, "submit: %s\n", aq_strerror(rc));
			app.failed = 1;
			break;
		}
	}
	if (!app.failed)
		uv_run(loop, UV_RUN_DEFAULT); /* until stop() */

	aq_pool_destroy(app.pool);	 /* nothing posts to the channel now */
	aq_channel_destroy(app.channel); /* runs what a failure left */
	uv_close((uv_handle_t *)&app.channel_watch, NULL);
	uv_close((uv_handle_t *)&app.watchdog, NULL);
	uv_run(loop, UV_RUN_DEFAULT); /* completes the closes */
	uv_loop_close(loop);
	status = report(&app);
	free(app.tasks);
	return status;
}
