/* SPDX-License-Identifier: MIT */
/*
 * table.c - a chained hash table from job id to the future waiting for
 * that job, under one mutex: the submitting threads add, the reply thread
 * takes. It doubles when the load passes one entry per bucket.
 */
#include <errno.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "table.h"

struct aqr_entry {
	struct aqr_entry *next;
	aq_future *fut;
	char id[]; /* NUL-terminated */
};

static size_t hash(const char *s)
{
	uint64_t h = 1469598103934665603ull; /* FNV-1a */

	while (*s)
		h = (h ^ (unsigned char)*s++) * 1099511628211ull;
	return (size_t)h;
}

int aqr_table_init(struct aqr_table *t)
{
	t->nbuckets = 1024;
	t->count = 0;
	t->buckets = calloc(t->nbuckets, sizeof(*t->buckets));
	if (!t->buckets)
		return -ENOMEM;
	pthread_mutex_init(&t->mu, NULL);
	return 0;
}

void aqr_table_destroy(struct aqr_table *t)
{
	if (!t->buckets)
		return;
	for (size_t i = 0; i < t->nbuckets; i++)
		while (t->buckets[i]) {
			struct aqr_entry *e = t->buckets[i];

			t->buckets[i] = e->next;
			free(e);
		}
	free(t->buckets);
	t->buckets = NULL;
	pthread_mutex_destroy(&t->mu);
}

/* Double the buckets (lock held); on no memory, stay as we are. */
static void table_grow(struct aqr_table *t)
{
	size_t n = t->nbuckets * 2;
	struct aqr_entry **b = calloc(n, sizeof(*b));

	if (!b)
		return;
	for (size_t i = 0; i < t->nbuckets; i++)
		while (t->buckets[i]) {
			struct aqr_entry *e = t->buckets[i];
			size_t j = hash(e->id) & (n - 1);

			t->buckets[i] = e->next;
			e->next = b[j];
			b[j] = e;
		}
	free(t->buckets);
	t->buckets = b;
	t->nbuckets = n;
}

int aqr_table_put(struct aqr_table *t, const char *id, aq_future *fut)
{
	size_t len = strlen(id);
	struct aqr_entry *e = malloc(sizeof(*e) + len + 1);
	size_t i;

	if (!e)
		return -ENOMEM;
	memcpy(e->id, id, len + 1);
	e->fut = fut;
	pthread_mutex_lock(&t->mu);
	if (t->count >= t->nbuckets)
		table_grow(t);
	i = hash(id) & (t->nbuckets - 1);
	e->next = t->buckets[i];
	t->buckets[i] = e;
	t->count++;
	pthread_mutex_unlock(&t->mu);
	return 0;
}

aq_future *aqr_table_take(struct aqr_table *t, const char *id)
{
	struct aqr_entry **p, *e = NULL;
	aq_future *fut = NULL;

	pthread_mutex_lock(&t->mu);
	for (p = &t->buckets[hash(id) & (t->nbuckets - 1)]; *p; p = &(*p)->next)
		if (strcmp((*p)->id, id) == 0) {
			e = *p;
			*p = e->next;
			t->count--;
			break;
		}
	pthread_mutex_unlock(&t->mu);
	if (e) {
		fut = e->fut;
		free(e);
	}
	return fut;
}

void aqr_table_drain(struct aqr_table *t, void (*fn)(aq_future *, void *),
		     void *user)
{
	for (;;) {
		struct aqr_entry *e = NULL;

		pthread_mutex_lock(&t->mu);
		for (size_t i = 0; i < t->nbuckets && !e; i++)
			if ((e = t->buckets[i]) != NULL) {
				t->buckets[i] = e->next;
				t->count--;
			}
		pthread_mutex_unlock(&t->mu);
		if (!e)
			return;
		fn(e->fut, user);
		free(e);
	}
}

int aqr_table_id_of(struct aqr_table *t, const aq_future *fut, char *id,
		    size_t size)
{
	int rc = -ENOENT;

	/* A scan: cancels are rare, and a second index would cost every
	 * submit. */
	pthread_mutex_lock(&t->mu);
	for (size_t i = 0; i < t->nbuckets && rc; i++)
		for (struct aqr_entry *e = t->buckets[i]; e; e = e->next)
			if (e->fut == fut && strlen(e->id) < size) {
				memcpy(id, e->id, strlen(e->id) + 1);
				rc = 0;
				break;
			}
	pthread_mutex_unlock(&t->mu);
	return rc;
}
