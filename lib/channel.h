/* SPDX-License-Identifier: MIT */
/*
 * channel.h - completion channels as a queue of nodes (see channel.c).
 * The channel knows nothing of futures: a node carries the function that
 * runs it, so the layer above (future.c) posts and is called back.
 */
#ifndef AQ__CHANNEL_H
#define AQ__CHANNEL_H

#include "asyncq.h"

/* One queued callback; embedded at the start of its owner's struct. */
struct aq__chan_node {
	void (*run)(struct aq__chan_node *node); /* runs and frees it */
	struct aq__chan_node *next; /* the owner's list, then the queue */
};

/* Queue a node on its channel; aq_channel_dispatch() runs it. */
void aq__channel_post(aq_channel *channel, struct aq__chan_node *node);

#endif
