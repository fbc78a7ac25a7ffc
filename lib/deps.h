/* SPDX-License-Identifier: MIT */
/*
 * deps.h - jobs that run after others (see deps.c).
 */
#ifndef AQ__DEPS_H
#define AQ__DEPS_H

#include "asyncq.h"

struct aq_future;

/* opts.after for a new record: allocate and register; the record is
 * WAITING until its dependencies resolve. 0 or -ENOMEM (nothing done). */
int aq__deps_attach(struct aq_future *rec, aq_future *const *after,
		    unsigned count);
/* Submit is done registering: drop the guard count. */
void aq__deps_arm(struct aq_future *rec);

#endif
