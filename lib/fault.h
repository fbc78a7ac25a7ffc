/* SPDX-License-Identifier: MIT */
/*
 * fault.h - fault injection for tests (SQLite's idea). Test builds
 * (-DAQ_TESTING) can make the Nth allocation or thread creation fail, so
 * the tests walk every error path; in the release library every hook is
 * the constant false and costs nothing.
 */
#ifndef AQ__FAULT_H
#define AQ__FAULT_H

#include <stdbool.h>
#include <stdlib.h>

enum aq__fault_site {
	AQ__FAULT_ALLOC,  /* aq__malloc(), aq__calloc(), ring cells */
	AQ__FAULT_THREAD, /* pthread_create() of a worker or timer thread */
	AQ__FAULT_FD,     /* the eventfd (or pipe) of a channel */
	AQ__FAULT_SITES
};

#ifdef AQ_TESTING
/* True when this call at site is the one armed to fail. */
bool aq__fault(enum aq__fault_site site);
/* Make the nth call (1-based) at site fail from now on; 0 disarms and
 * resets the count. */
void aq__fault_arm(enum aq__fault_site site, long nth);
/* Calls seen at site since it was last armed. */
long aq__fault_calls(enum aq__fault_site site);
#else
#define aq__fault(site) false
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
