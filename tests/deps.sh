#!/bin/sh
# SPDX-License-Identifier: MIT
# Make sure what `make check` needs is here: pkg-config, Check (the test
# framework), groff (the man-page lint), curl and python3-prometheus-client
# (check-http), systemtap-sdt-dev (the USDT probes, check-usdt), a C++
# compiler and cmake (the staged install is built as C++ too, and through
# CMake), libuv, libevent and GLib (check-loops: the event-loop examples),
# and redis-server, redis-cli and libhiredis-dev (libasyncq-redis and its
# tests). As root with apt-get, install what is missing; otherwise print the
# exact command and fail.
#
# bpftrace is optional: make check-usdt (part of make check) traces a run
# with it only as root, and skips that half, saying why, without it or
# without root or where it cannot attach. So it is installed only as root,
# and if that fails make check goes on without the trace (and does not try
# again until make clean removes the note of the failure).
missing=
command -v pkg-config >/dev/null 2>&1 || missing="$missing pkg-config"
if command -v pkg-config >/dev/null 2>&1; then
	pkg-config --exists check 2>/dev/null || missing="$missing check"
	# The event-loop examples (examples/loop_*.c), by pkg-config name.
	pkg-config --exists libuv 2>/dev/null || missing="$missing libuv1-dev"
	pkg-config --exists libevent 2>/dev/null ||
		missing="$missing libevent-dev"
	pkg-config --exists glib-2.0 2>/dev/null ||
		missing="$missing libglib2.0-dev"
	# libasyncq-redis is built on hiredis.
	pkg-config --exists hiredis 2>/dev/null ||
		missing="$missing libhiredis-dev"
else
	missing="$missing check libuv1-dev libevent-dev libglib2.0-dev"
	missing="$missing libhiredis-dev"
fi
command -v groff >/dev/null 2>&1 || missing="$missing groff-base"
# The staged-install check also builds the example as C++.
command -v "${CXX:-c++}" >/dev/null 2>&1 || missing="$missing g++"
command -v curl >/dev/null 2>&1 || missing="$missing curl"
# check-http parses GET /metrics with prometheus_client's OpenMetrics parser
# (Debian's package is for the system python3).
/usr/bin/python3 -c 'import prometheus_client.openmetrics.parser' \
	>/dev/null 2>&1 || missing="$missing python3-prometheus-client"
# USDT probes (<sys/sdt.h>) and their check (make check-usdt).
echo '#include <sys/sdt.h>' | "${CC:-cc}" -E - >/dev/null 2>&1 ||
	missing="$missing systemtap-sdt-dev"
command -v cmake >/dev/null 2>&1 || missing="$missing cmake"
# libasyncq-redis: its tests start their own redis-server; it needs hiredis.
command -v redis-server >/dev/null 2>&1 || missing="$missing redis-server"
command -v redis-cli >/dev/null 2>&1 || missing="$missing redis-tools"
optional=
bpf_failed=build/deps-bpftrace.failed
command -v bpftrace >/dev/null 2>&1 || [ -e "$bpf_failed" ] ||
	optional=bpftrace
[ -z "$missing" ] && { [ -z "$optional" ] || [ "$(id -u)" != 0 ]; } && exit 0

if [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1; then
	export DEBIAN_FRONTEND=noninteractive
	apt-get update -qq >/dev/null
	if [ -n "$missing" ]; then
		echo "deps: installing$missing"
		apt-get install -y -qq $missing >/dev/null ||
			{ echo "deps: apt-get failed; run: apt-get install$missing" >&2; exit 1; }
	fi
	if [ -n "$optional" ]; then
		echo "deps: installing $optional (optional: the trace of check-usdt)"
		apt-get install -y -qq $optional >/dev/null || {
			echo "deps: apt-get install $optional failed; check-usdt" \
				"will skip its trace" >&2
			mkdir -p build && : >"$bpf_failed"
		}
	fi
	exit 0
fi
[ -z "$missing" ] && exit 0
echo "make check needs:$missing" >&2
echo "install them with:  sudo apt-get install$missing" >&2
exit 1
