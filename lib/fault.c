/* SPDX-License-Identifier: MIT */
/*
 * fault.c - the counters behind the test-only fault-injection hooks of
 * fault.h. Compiled to nothing in the release library.
 */
#include "fault.h"

#ifdef AQ_TESTING
#include <stdatomic.h>

/* Process-global on purpose, and only in test builds: a test arms a site,
 * runs one API call, and reads how many calls that site saw. */
static _Atomic long fault_calls[AQ__FAULT_SITES];
static _Atomic long fault_nth[AQ__FAULT_SITES];

bool aq__fault(enum aq__fault_site site)
{
	long n = atomic_fetch_add(&fault_calls[site], 1) + 1;
	long nth = atomic_load(&fault_nth[site]);

	return nth > 0 && n == nth;
}

void aq__fault_arm(enum aq__fault_site site, long nth)
{
	atomic_store(&fault_nth[site], nth);
	atomic_store(&fault_calls[site], 0);
}

long aq__fault_calls(enum aq__fault_site site)
{
	return atomic_load(&fault_calls[site]);
}

/* The pause hook: user is stored before fn, so a caller that sees fn
 * sees its user (both seq_cst). */
static void (*_Atomic pause_fn)(enum aq__pause_site site, void *user);
static void *_Atomic pause_user;

void aq__pause(enum aq__pause_site site)
{
	void (*fn)(enum aq__pause_site, void *) = atomic_load(&pause_fn);

	if (fn)
		fn(site, atomic_load(&pause_user));
}

void aq__pause_set(void (*fn)(enum aq__pause_site site, void *user), void *user)
{
	atomic_store(&pause_fn, NULL);
	atomic_store(&pause_user, user);
	atomic_store(&pause_fn, fn);
}
#else
/* ISO C wants at least one declaration in a translation unit. */
typedef int aq__fault_unused;
#endif
