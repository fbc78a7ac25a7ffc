#!/bin/sh
# SPDX-License-Identifier: MIT
# Make sure what `make check` needs is here: pkg-config, Check (the test
# framework), groff (the man-page lint), curl (check-http), a C++
# compiler (the staged install is built as C++ too), and redis-server,
# redis-cli and libhiredis-dev (libasyncq-redis and its tests). As root with
# apt-get, install what is missing; otherwise print the exact command and fail.
missing=
command -v pkg-config >/dev/null 2>&1 || missing="$missing pkg-config"
if command -v pkg-config >/dev/null 2>&1; then
	pkg-config --exists check 2>/dev/null || missing="$missing check"
else
	missing="$missing check"
fi
command -v groff >/dev/null 2>&1 || missing="$missing groff-base"
# The staged-install check also builds the example as C++.
command -v "${CXX:-c++}" >/dev/null 2>&1 || missing="$missing g++"
command -v curl >/dev/null 2>&1 || missing="$missing curl"
# libasyncq-redis: its tests start their own redis-server; it needs hiredis.
command -v redis-server >/dev/null 2>&1 || missing="$missing redis-server"
command -v redis-cli >/dev/null 2>&1 || missing="$missing redis-tools"
if command -v pkg-config >/dev/null 2>&1; then
	pkg-config --exists hiredis 2>/dev/null || missing="$missing libhiredis-dev"
fi
[ -z "$missing" ] && exit 0

if [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1; then
	echo "deps: installing$missing"
	export DEBIAN_FRONTEND=noninteractive
	{ apt-get update -qq && apt-get install -y -qq $missing; } >/dev/null ||
		{ echo "deps: apt-get failed; run: apt-get install$missing" >&2; exit 1; }
	exit 0
fi
echo "make check needs:$missing" >&2
echo "install them with:  sudo apt-get install$missing" >&2
exit 1
