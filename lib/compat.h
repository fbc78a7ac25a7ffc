/* SPDX-License-Identifier: MIT */
/*
 * compat.h - small portability and layout helpers shared by the sources.
 */
#ifndef AQ__COMPAT_H
#define AQ__COMPAT_H

#include <stdalign.h>

/*
 * 128 bytes, not 64: on x86-64 the adjacent-line prefetcher pulls cache
 * lines in pairs, so two hot counters 64 bytes apart still share traffic.
 */
#define AQ__CACHE_LINE 128
#define AQ__CACHE_ALIGNED alignas(AQ__CACHE_LINE)

#if defined(__GNUC__)
#define AQ__LIKELY(x) __builtin_expect(!!(x), 1)
#define AQ__UNLIKELY(x) __builtin_expect(!!(x), 0)
#else
#define AQ__LIKELY(x) (x)
#define AQ__UNLIKELY(x) (x)
#endif

/* A polite busy-wait step: tells the core (and its SMT sibling) we spin. */
static inline void aq__cpu_relax(void)
{
#if defined(__x86_64__) || defined(__i386__)
	__builtin_ia32_pause();
#elif defined(__aarch64__)
	__asm__ __volatile__("yield" ::: "memory");
#else
	__asm__ __volatile__("" ::: "memory");
#endif
}

#endif
