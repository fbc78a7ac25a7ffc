#!/bin/sh
# SPDX-License-Identifier: MIT
# peers.sh - make the benchmark's peers available before `make run` builds
# it: as root on a machine with apt-get, install the Debian packages of the
# missing ones; otherwise name each peer that will be skipped and why.

missing=""
need() { missing="$missing $1"; }

command -v pkg-config >/dev/null 2>&1 || need pkg-config
pkg-config --exists glib-2.0 2>/dev/null || need libglib2.0-dev
pkg-config --exists libuv 2>/dev/null || need libuv1-dev
{ test -f /usr/share/cthreadpool/thpool.c &&
	test -f /usr/include/cthreadpool/thpool.h; } || need cthreadpool-dev
test -f /usr/include/oneapi/tbb/task_group.h || need libtbb-dev

[ -z "$missing" ] && exit 0

if [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1; then
	echo "bench: installing missing peers:$missing"
	# shellcheck disable=SC2086 # the list is meant to split into words
	if apt-get update -qq >/dev/null &&
		DEBIAN_FRONTEND=noninteractive apt-get install -y -qq \
			--no-install-recommends $missing >/dev/null; then
		exit 0
	fi
	echo "bench: apt-get could not install:$missing"
fi
for pkg in $missing; do
	case $pkg in
	libglib2.0-dev) peer="GThreadPool (GLib)" ;;
	libuv1-dev) peer="libuv" ;;
	cthreadpool-dev) peer="C-Thread-Pool" ;;
	libtbb-dev) peer="oneTBB (forkjoin)" ;;
	*) continue ;; # a tool, not a peer
	esac
	echo "bench: skipping $peer: $pkg is not installed" \
		"(install it, or run make bench as root with apt-get)"
done
exit 0
