/* SPDX-License-Identifier: MIT */
/*
 * channel.c - completion channels: a queue of then-callbacks that the
 * host's own event loop runs, and a file descriptor it can poll.
 *
 * The descriptor is an eventfd on Linux (a pipe elsewhere) and is readable
 * exactly while callbacks wait: a post that makes the queue non-empty
 * signals it, and a dispatch that empties the queue drains it, both under
 * the channel's mutex, so the queue and the descriptor never disagree. A
 * loop that dispatches with a budget leaves the descriptor readable when
 * callbacks remain, so level-triggered polling comes straight back; no
 * wake-up is lost and nothing spins.
 *
 * Callbacks run outside the lock, so they may register more callbacks,
 * submit jobs or cancel futures, on this channel or any other.
 */
#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <stdlib.h>
#include <unistd.h>

#include "channel.h"
#include "fault.h"

#if defined(__linux__)
#include <sys/eventfd.h>
#endif

struct aq_channel {
	pthread_mutex_t lock;
	struct aq__chan_node *head, *tail; /* waiting callbacks, oldest
					       first */
	int read_fd, write_fd;             /* the same eventfd on Linux */
};

static int channel_open_fds(struct aq_channel *ch)
{
	if (aq__fault(AQ__FAULT_FD))
		return -EMFILE;
#if defined(__linux__)
	ch->read_fd = ch->write_fd = eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC);
	return ch->read_fd < 0 ? -errno : 0;
#else
	int fds[2];

	if (pipe(fds) < 0)
		return -errno;
	for (int i = 0; i < 2; i++) {
		fcntl(fds[i], F_SETFL, fcntl(fds[i], F_GETFL) | O_NONBLOCK);
		fcntl(fds[i], F_SETFD, FD_CLOEXEC);
	}
	ch->read_fd = fds[0];
	ch->write_fd = fds[1];
	return 0;
#endif
}

/* Make the descriptor readable. Under ch->lock. */
static void channel_signal(struct aq_channel *ch)
{
#if defined(__linux__)
	uint64_t one = 1;
	ssize_t n = write(ch->write_fd, &one, sizeof(one));
#else
	char one = 1;
	ssize_t n = write(ch->write_fd, &one, 1);
#endif
	(void)n; /* a full counter or pipe is already readable */
}

/* Make the descriptor unreadable. Under ch->lock. */
static void channel_drain(struct aq_channel *ch)
{
	char buf[64];

	while (read(ch->read_fd, buf, sizeof(buf)) > 0)
		;
}

AQ_API int aq_channel_create(aq_channel **channel, unsigned flags)
{
	struct aq_channel *ch;
	int rc;

	if (!channel || flags)
		return -EINVAL;
	ch = aq__calloc(1, sizeof(*ch));
	if (!ch)
		return -ENOMEM;
	rc = channel_open_fds(ch);
	if (rc) {
		free(ch);
		return rc;
	}
	pthread_mutex_init(&ch->lock, NULL);
	*channel = ch;
	return 0;
}

AQ_API int aq_channel_fd(const aq_channel *channel)
{
	return channel ? channel->read_fd : -EINVAL;
}

void aq__channel_post(aq_channel *ch, struct aq__chan_node *node)
{
	pthread_mutex_lock(&ch->lock);
	node->next = NULL;
	if (ch->tail) {
		ch->tail->next = node;
	} else {
		ch->head = node;
		channel_signal(ch); /* empty -> non-empty */
	}
	ch->tail = node;
	pthread_mutex_unlock(&ch->lock);
}

AQ_API int aq_channel_dispatch(aq_channel *ch, unsigned max)
{
	struct aq__chan_node *batch, *last = NULL;
	int count = 0;

	if (!ch)
		return -EINVAL;
	pthread_mutex_lock(&ch->lock);
	batch = ch->head;
	for (struct aq__chan_node *t = batch;
	     t && (max == 0 || (unsigned)count < max); t = t->next) {
		last = t;
		count++;
	}
	if (last) {
		ch->head = last->next;
		last->next = NULL;
		if (!ch->head) {
			ch->tail = NULL;
			channel_drain(ch); /* non-empty -> empty */
		}
	} else {
		batch = NULL;
	}
	pthread_mutex_unlock(&ch->lock);

	while (batch) {
		struct aq__chan_node *next = batch->next;

		batch->run(batch);
		batch = next;
	}
	return count;
}

AQ_API void aq_channel_destroy(aq_channel *ch)
{
	if (!ch)
		return;
	/* Each callback runs once, even those queued while we run others. */
	while (aq_channel_dispatch(ch, 0) > 0)
		;
	close(ch->read_fd);
	if (ch->write_fd != ch->read_fd)
		close(ch->write_fd);
	pthread_mutex_destroy(&ch->lock);
	free(ch);
}
