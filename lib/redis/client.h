/* SPDX-License-Identifier: MIT */
/*
 * client.h - a client's state, shared by its submit side (client.c) and
 * its reply side (reply.c).
 */
#ifndef AQR_CLIENT_H
#define AQR_CLIENT_H

#include <pthread.h>
#include <stdatomic.h>

#include "redis.h"
#include "table.h"

struct aq_redis_client {
	struct aqr_cfg cfg;
	char id[17]; /* this client's random name */
	char reply_key[AQR_PREFIX_MAX + 24];
	_Atomic uint64_t seq; /* job ids are <client id>-<seq> */

	pthread_mutex_t submit_mu; /* the submit link and its args */
	struct aqr_link link;
	struct aqr_args *args;

	struct aqr_table table; /* job id -> futures (own lock) */

	pthread_t reader;
	_Atomic bool stop;
	struct aqr_link rlink; /* the reply thread's own */
	struct aqr_args *rargs;

	_Atomic uint64_t submitted, duplicates, resolved, reconnects;
};

#endif
