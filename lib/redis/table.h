/* SPDX-License-Identifier: MIT */
/*
 * table.h - the futures a client waits on, by job id (table.c).
 */
#ifndef AQR_TABLE_H
#define AQR_TABLE_H

#include <pthread.h>
#include <stddef.h>

#include "asyncq.h"

struct aqr_entry;

struct aqr_table {
	pthread_mutex_t mu;
	struct aqr_entry **buckets;
	size_t nbuckets; /* a power of two */
	size_t count;
};

int aqr_table_init(struct aqr_table *t);
/* Free the table; entries left are dropped without touching futures. */
void aqr_table_destroy(struct aqr_table *t);
/* Add fut under id (ids are unique). 0 or -ENOMEM. */
int aqr_table_put(struct aqr_table *t, const char *id, aq_future *fut);
/* Remove and return the future under id, or NULL. */
aq_future *aqr_table_take(struct aqr_table *t, const char *id);
/* The id fut waits under into id (size bytes): 0, or -ENOENT. */
int aqr_table_id_of(struct aqr_table *t, const aq_future *fut, char *id,
		    size_t size);
/* Remove every entry, calling fn on each future (outside the lock). */
void aqr_table_drain(struct aqr_table *t, void (*fn)(aq_future *, void *),
		     void *user);

#endif
