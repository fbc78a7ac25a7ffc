/* SPDX-License-Identifier: MIT */
/*
 * peer_textbook.c - the thread pool from the textbook, as a benchmark peer:
 * one mutex and one condition variable guard a singly linked FIFO of job
 * nodes; submit mallocs a node, appends it and signals; a worker pops a
 * node, runs it outside the lock and frees it. This is what most C programs
 * carry when they need "a pool", so it is the baseline everything else has
 * to beat.
 */
#include <pthread.h>
#include <stdlib.h>
#include <string.h>

#include "bench.h"

struct tb_node {
	struct tb_node *next;
	struct bench_job *job;
};

struct tb_pool {
	pthread_mutex_t lock; /* guards head, tail and stopping */
	pthread_cond_t ready; /* signalled when a node is queued or on stop */
	struct tb_node *head; /* oldest queued node; NULL when empty */
	struct tb_node *tail; /* newest queued node (valid when head != NULL) */
	int stopping;         /* destroy has begun: exit once the list is empty */
	unsigned nthreads;
	pthread_t *threads;
};

static void *tb_worker(void *arg)
{
	struct tb_pool *p = arg;

	for (;;) {
		struct tb_node *node;

		pthread_mutex_lock(&p->lock);
		while (!p->head && !p->stopping)
			pthread_cond_wait(&p->ready, &p->lock);
		node = p->head;
		if (!node) { /* stopping and drained */
			pthread_mutex_unlock(&p->lock);
			return NULL;
		}
		p->head = node->next;
		pthread_mutex_unlock(&p->lock);

		node->job->fn(node->job);
		free(node);
	}
}

static void *tb_create(unsigned workers)
{
	struct tb_pool *p = calloc(1, sizeof(*p));
	unsigned i;
	int rc;

	if (!p || !(p->threads = calloc(workers, sizeof(pthread_t))))
		bench_die("textbook: out of memory");
	pthread_mutex_init(&p->lock, NULL);
	pthread_cond_init(&p->ready, NULL);
	for (i = 0; i < workers; i++) {
		rc = pthread_create(&p->threads[i], NULL, tb_worker, p);
		if (rc)
			bench_die("textbook: pthread_create: %s", strerror(rc));
		p->nthreads++;
	}
	return p;
}

static void tb_submit(void *pool, struct bench_job *job)
{
	struct tb_pool *p = pool;
	struct tb_node *node = malloc(sizeof(*node));

	if (!node)
		bench_die("textbook: out of memory");
	node->next = NULL;
	node->job = job;
	pthread_mutex_lock(&p->lock);
	if (p->head)
		p->tail->next = node;
	else
		p->head = node;
	p->tail = node;
	pthread_cond_signal(&p->ready);
	pthread_mutex_unlock(&p->lock);
}

static void tb_destroy(void *pool)
{
	struct tb_pool *p = pool;
	unsigned i;

	pthread_mutex_lock(&p->lock);
	p->stopping = 1;
	pthread_cond_broadcast(&p->ready);
	pthread_mutex_unlock(&p->lock);
	for (i = 0; i < p->nthreads; i++)
		pthread_join(p->threads[i], NULL);
	pthread_cond_destroy(&p->ready);
	pthread_mutex_destroy(&p->lock);
	free(p->threads);
	free(p);
}

const struct contender contender_textbook = {
	.name = "textbook",
	.descr = "one mutex, one condvar, linked list, malloc per job",
	.flags = CT_MT_SUBMIT,
	.create = tb_create,
	.submit = tb_submit,
	.destroy = tb_destroy,
};
