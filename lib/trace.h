/* SPDX-License-Identifier: MIT */
/*
 * trace.h - USDT probes (provider "libasyncq"), for bpftrace, perf and
 * SystemTap: AQ__TRACE(name, args...) marks a point of the library that a
 * tracer can attach to. The probes and their arguments are documented in
 * libasyncq(7); a new probe goes there and into tests/usdt.sh.
 *
 * With <sys/sdt.h> (Debian's systemtap-sdt-dev; the Makefile defines
 * AQ_HAVE_SDT when it finds it) a probe is one nop instruction and a note
 * in the ELF file naming where its arguments are (a register, a memory
 * operand or a constant): no semaphore, no branch, no call. The tracer
 * replaces the nop with a breakpoint while it is attached. Arguments
 * should be values the code already has at hand, so that the compiler
 * need not compute anything for a probe nobody is tracing.
 *
 * Without the header a probe compiles to nothing; its arguments are still
 * type-checked and count as used, but are never evaluated.
 */
#ifndef AQ_TRACE_H
#define AQ_TRACE_H

#ifdef AQ_HAVE_SDT
#include <sys/sdt.h>
/* STAP_PROBEn for n arguments, 1 to 6 (sdt.h's own variadic form needs a
 * GNU extension). */
#define AQ__TRACE_COUNT(a1, a2, a3, a4, a5, a6, n, ...) n
#define AQ__TRACE_PASTE(a, b) a##b
#define AQ__TRACE_PROBE(n) AQ__TRACE_PASTE(STAP_PROBE, n)
#ifdef __clang__
/* sdt.h's own macros pass an empty variadic argument, which clang's
 * -Wpedantic names a GNU extension; the warning is about sdt.h. */
#define AQ__TRACE_QUIET_BEGIN                                                  \
	_Pragma("clang diagnostic push") _Pragma(                              \
		"clang diagnostic ignored \"-Wgnu-zero-variadic-macro-arguments\"")
#define AQ__TRACE_QUIET_END _Pragma("clang diagnostic pop")
#else
#define AQ__TRACE_QUIET_BEGIN
#define AQ__TRACE_QUIET_END
#endif
#define AQ__TRACE(name, ...)                                                   \
	do {                                                                   \
		AQ__TRACE_QUIET_BEGIN                                          \
		AQ__TRACE_PROBE(                                               \
			AQ__TRACE_COUNT(__VA_ARGS__, 6, 5, 4, 3, 2, 1, 0))     \
		(libasyncq, name, __VA_ARGS__);                                \
		AQ__TRACE_QUIET_END                                            \
	} while (0)
#else
static inline void aq__trace_off(int unused, ...)
{
	(void)unused;
}
#define AQ__TRACE(name, ...)                                                   \
	do {                                                                   \
		if (0)                                                         \
			aq__trace_off(0, __VA_ARGS__);                         \
	} while (0)
#endif

#endif
