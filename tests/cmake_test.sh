#!/bin/sh
# SPDX-License-Identifier: MIT
# The CMake package of a staged install, for check-install: a consumer built
# with find_package(libasyncq) as C and as C++ and run against the staged
# library, the versions the package accepts, and the redis component, which
# exists exactly when its library is installed (checked on the stage as it
# is and on a copy given a stand-in libasyncq-redis).
#
#   sh tests/cmake_test.sh STAGED_PREFIX VERSION
#
# STAGED_PREFIX is DESTDIR + prefix (build/stage/opt/libasyncq); the
# package must be at STAGED_PREFIX/lib/cmake/libasyncq.
set -u
prefix=$1
version=$2
work=build/cmake-test
pass=0
fail=0

ok() { pass=$((pass + 1)); }
bad() { fail=$((fail + 1)); echo "  FAIL  $1"; }
# expect NAME WANT GOT
expect() {
	if [ "$2" = "$3" ]; then ok; else bad "$1: want '$2', got '$3'"; fi
}
# answer LOG NAME: what tests/cmake/CMakeLists.txt reported for NAME.
answer() { sed -n "s/^-- answer $2 //p" "$1"; }

command -v cmake >/dev/null 2>&1 ||
	{ echo "cmake: not installed (apt-get install cmake)"; exit 1; }
rm -rf "$work"
mkdir -p "$work"
# The consumer's make must not join this one's jobserver.
unset MAKEFLAGS MAKELEVEL MFLAGS

# configure DIR PREFIX [CMAKE ARGS...]: configure the consumer into
# $work/DIR against PREFIX; the log is $work/DIR.log.
configure() {
	dir=$1
	p=$2
	shift 2
	cmake -S tests/cmake -B "$work/$dir" -DCMAKE_PREFIX_PATH="$p" \
		-DSTAGE="$p" "$@" >"$work/$dir.log" 2>&1
}

# ---- the consumer, C and C++ ------------------------------------------------
if configure consumer "$prefix" -DQUICKSTART="$PWD/examples/quickstart.c" \
	-DREDIS_ADD="$PWD/examples/redis_add.c" &&
	cmake --build "$work/consumer" >>"$work/consumer.log" 2>&1; then
	ok
	log=$work/consumer.log
	expect "found in the stage" "$prefix/lib/cmake/libasyncq" \
		"$(answer "$log" dir)"
	expect "version" "$version" "$(answer "$log" version)"
	expect "libasyncq::libasyncq" yes \
		"$(answer "$log" libasyncq::libasyncq)"
	expect "libasyncq::libasyncq brings the threads" Threads::Threads \
		"$(answer "$log" links)"
	for lang in c cxx; do
		out=$(LD_LIBRARY_PATH="$prefix/lib" \
			"$work/consumer/quickstart-$lang" 2>&1)
		expect "quickstart-$lang runs" "0 job 2 succeeded: 4" \
			"$? $(printf '%s\n' "$out" | grep '^job 2 ')"
		# It runs the staged library, not some other copy.
		lib=$(LD_LIBRARY_PATH="$prefix/lib" ldd \
			"$work/consumer/quickstart-$lang" |
			sed -n 's/.*libasyncq\.so\.[0-9.]* => \([^ ]*\).*/\1/p')
		expect "quickstart-$lang links the staged library" \
			"$(realpath "$prefix/lib")" "$(dirname "$(realpath "$lib")")"
	done
	for q in 0.2 0.2.0_EXACT 0.2...\<1.0 0.0...0.2; do
		expect "find_package(libasyncq ${q%%_*}) accepts $version" \
			found "$(answer "$log" "find($q)")"
	done
	for q in 0.0 0.1 0.3 1.0 0.3...1.0 COMPONENTS_nosuch; do
		expect "find_package(libasyncq $q) refuses $version" \
			not-found "$(answer "$log" "find($q)")"
	done
	# The redis component is there exactly when its library is.
	if [ -e "$prefix/lib/libasyncq-redis.so" ]; then want=yes; found=found
	else want=no; found=not-found; fi
	expect "libasyncq::redis as installed ($want)" "$want" \
		"$(answer "$log" libasyncq::redis)"
	expect "COMPONENTS redis as installed" "$found" \
		"$(answer "$log" 'find(COMPONENTS_redis)')"
	# With it, a program links libasyncq::redis alone and runs on the
	# staged libraries: redis_add, sent to a port nobody listens on,
	# reports the failed connect with exit code 1.
	if [ "$want" = yes ]; then
		bin=$work/consumer/redis_add
		LD_LIBRARY_PATH="$prefix/lib" "$bin" submit 1 127.0.0.1 1 \
			>/dev/null 2>&1
		expect "redis_add (libasyncq::redis) runs" 1 "$?"
		lib=$(LD_LIBRARY_PATH="$prefix/lib" ldd "$bin" |
			sed -n 's/.*libasyncq-redis\.so\.[0-9.]* => \([^ ]*\).*/\1/p')
		expect "redis_add links the staged libasyncq-redis" \
			"$(realpath "$prefix/lib")" "$(dirname "$(realpath "$lib")")"
	fi
else
	bad "consumer: configure or build failed:"
	tail -20 "$work/consumer.log"
fi

# ---- the redis component on a copy with a stand-in library ------------------
fake=$work/with-redis
mkdir -p "$fake"
cp -a "$prefix/." "$fake/"
if [ ! -e "$fake/lib/libasyncq-redis.so" ]; then
	echo 'int aq_redis_stand_in;' >"$work/stand_in.c"
	${CC:-cc} -shared -fPIC -o "$fake/lib/libasyncq-redis.so" \
		"$work/stand_in.c"
	: >"$fake/include/asyncq_redis.h"
fi
fake=$(realpath "$fake")
if configure with-redis "$fake"; then
	log=$work/with-redis.log
	expect "with its library: libasyncq::redis" yes \
		"$(answer "$log" libasyncq::redis)"
	expect "with its library: at" "$fake/lib/libasyncq-redis.so" \
		"$(answer "$log" redis-location)"
	expect "with its library: COMPONENTS redis" found \
		"$(answer "$log" 'find(COMPONENTS_redis)')"
else
	bad "with-redis: configure failed:"
	tail -20 "$work/with-redis.log"
fi

echo "  cmake: $pass passed, $fail failed"
[ "$fail" -eq 0 ]
