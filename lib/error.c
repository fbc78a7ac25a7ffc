/* SPDX-License-Identifier: MIT */
/*
 * error.c - names for the library's return codes, and its version.
 */
#include <errno.h>
#include <string.h>

#include "asyncq.h"

#define STR_(x) #x
#define STR(x) STR_(x)

AQ_API const char *aq_strerror(int code)
{
	if (code > 0)
		return "Job failed with a job-defined code";
	switch (code) {
	case 0:
		return "Success";
	case -EINVAL:
		return "Invalid argument";
	case -EAGAIN:
		/* Both the ring (aq_submit) and pthread_create() (creating
		 * or resizing a pool, a first delayed job) say it. */
		return "Resource temporarily unavailable: queue full, or no "
		       "thread could be started; try again";
	case -ENOMEM:
		return "Out of memory";
	case -ESHUTDOWN:
		return "Pool is shut down";
	case -ETIMEDOUT:
		return "Timed out";
	case -ECANCELED:
		return "Job cancelled";
	case -EBUSY:
		return "Job is running";
	case -EALREADY:
		/* aq_future_cancel() of a resolved job, a second
		 * aq_future_complete() of a promise, a second stop. */
		return "Already done: the future has its outcome, or the call "
		       "was made before";
	case -ETIME:
		return "Job expired: its deadline passed before it started";
	case -EPIPE:
		return "Job skipped: a job it ran after did not succeed";
	case -EMFILE:
		return "Too many open files";
	case -EDEADLK:
		return "Would deadlock: the pool would wait for the calling thread";
	/* The codes of libasyncq-redis (asyncq_redis.h), worded for what
	 * they tell its caller: accepted or not, retry or not. */
	case -ENOTCONN:
		return "Not connected: the server cannot be reached; the request "
		       "was not accepted";
	case -ECONNRESET:
		return "Connection lost during the call: the request may have "
		       "been accepted";
	case -ECONNREFUSED:
		return "Connection refused: no server listens there";
	case -EHOSTUNREACH:
		return "Server host unreachable";
	case -EACCES:
		return "Access denied: the server refused the credentials or the "
		       "command";
	case -EPROTO:
		return "Protocol error: the server's reply was not understood";
	case -EMSGSIZE:
		return "Payload too large: above the configured maximum";
	case -ENOSPC:
		return "Server out of memory (maxmemory): the request was not "
		       "accepted";
	case -EIO:
		return "Input/output error: nothing was accepted";
	default:
		break;
	}
#if defined(__GLIBC__) && (__GLIBC__ > 2 || __GLIBC_MINOR__ >= 32)
	/* System errors passed through (from pthread_create(), eventfd(),
	 * a scheduler's init): glibc's static, thread-safe description. */
	if (code >= -4095) { /* the errno range; -INT_MIN would overflow */
		const char *desc = strerrordesc_np(-code);

		if (desc)
			return desc;
	}
#endif
	return "Unknown error";
}

AQ_API unsigned aq_version(void)
{
	return AQ_VERSION_HEX;
}

AQ_API const char *aq_version_string(void)
{
	return STR(AQ_VERSION_MAJOR) "." STR(AQ_VERSION_MINOR) "." STR(
		AQ_VERSION_PATCH);
}
