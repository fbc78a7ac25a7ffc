/* SPDX-License-Identifier: MIT */
/*
 * fault.h - fault injection for tests (SQLite's idea). Test builds
 * (-DAQ_TESTING) can make the Nth allocation or thread creation fail, so
 * the tests walk every error path, and can hold a thread at a named place
 * to force a race; in the release library every hook compiles to nothing.
 */
#ifndef AQ__FAULT_H
#define AQ__FAULT_H

#include <stdbool.h>
#include <stdlib.h>

enum aq__fault_site {
	AQ__FAULT_ALLOC,  /* aq__malloc(), aq__calloc(), ring cells */
	AQ__FAULT_THREAD, /* pthread_create() of a worker or timer thread */
	AQ__FAULT_FD,     /* the eventfd (or pipe) of a channel */
	AQ__FAULT_FENCE,  /* membarrier(2) in aq__park_fence_heavy() */
	AQ__FAULT_SITES
};

/*
 * Places where a test may hold a thread to force an interleaving that is
 * otherwise a matter of nanoseconds (aq__pause()).
 */
enum aq__pause_site {
	AQ__PAUSE_CANCEL_READ,  /* aq_future_cancel() has read the state */
	AQ__PAUSE_STATS_SUMMED, /* aq__stats_read() has summed the counters,
				   not yet read the ring */
	AQ__PAUSE_IDLE_YIELD,   /* an idle worker yields before it parks */
	AQ__PAUSE_SITES
};

#ifdef AQ_TESTING
/* Call the function set by aq__pause_set(), if any, with site. */
void aq__pause(enum aq__pause_site site);
/* From now on aq__pause() calls fn(site, user); NULL stops it. */
void aq__pause_set(void (*fn)(enum aq__pause_site site, void *user),
		   void *user);
/* True when this call at site is the one armed to fail. */
bool aq__fault(enum aq__fault_site site);
/* Make the nth call (1-based) at site fail from now on; 0 disarms and
 * resets the count. */
void aq__fault_arm(enum aq__fault_site site, long nth);
/* Calls seen at site since it was last armed. */
long aq__fault_calls(enum aq__fault_site site);
#else
#define aq__fault(site) false
#define aq__pause(site) ((void)0)
#endif

static inline void *aq__malloc(size_t size)
{
	return aq__fault(AQ__FAULT_ALLOC) ? NULL : malloc(size);
}

static inline void *aq__calloc(size_t n, size_t size)
{
	return aq__fault(AQ__FAULT_ALLOC) ? NULL : calloc(n, size);
}

#endif
