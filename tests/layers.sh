#!/bin/sh
# SPDX-License-Identifier: MIT
# layers.sh - the layering rule of lib/ (README "Architecture", libasyncq(7)),
# checked on the include graph, run by `make check`: a file includes only
# headers of its own layer or of lower ones, the module graph has no
# cycle, and no file in lib/ is over 600 lines.
#
#   0 primitives   compat clock deque fault park ring stats.h trace.h
#   1 channel      channel
#   2 records      future promise
#   3 timer        timer
#   4 pool core    pool.h threads job current
#   5 services     queue retry deps scheduler sched_* steal
#   6 workers      worker help run
#   7 API          pool.c submit.c wait.c stats.c error.c metrics.c
set -u
cd "$(dirname "$0")/.." || exit 1

rank() {
	case $1 in
	compat.h | clock.h | deque.[ch] | fault.[ch] | park.[ch] | ring.[ch] | \
		stats.h | \
		trace.h) echo 0 ;;
	channel.[ch]) echo 1 ;;
	future.[ch] | promise.[ch]) echo 2 ;;
	timer.[ch]) echo 3 ;;
	pool.h | threads.[ch] | job.[ch] | current.[ch]) echo 4 ;;
	queue.[ch] | retry.[ch] | deps.[ch] | scheduler.[ch] | sched_*.c | \
		steal.[ch]) echo 5 ;;
	worker.[ch] | help.[ch] | run.[ch]) echo 6 ;;
	pool.c | submit.c | wait.c | stats.c | error.c | metrics.c) echo 7 ;;
	*) echo X ;;
	esac
}

node() {
	case $1 in
	pool.[ch] | stats.[ch]) echo "$1" ;;
	*) echo "${1%.*}" ;;
	esac
}

fail=0
edges=$(mktemp) || exit 1
trap 'rm -f "$edges"' EXIT
for f in lib/*.c lib/*.h; do
	b=${f#lib/}
	r=$(rank "$b")
	if [ "$r" = X ]; then
		echo "layers: $f has no layer (add it to tests/layers.sh)"
		fail=1
		continue
	fi
	n=$(wc -l <"$f")
	if [ "$n" -gt 600 ]; then
		echo "layers: $f has $n lines (more than 600)"
		fail=1
	fi
	for h in $(sed -n 's/^#include "\([a-z_]*\.h\)"$/\1/p' "$f"); do
		[ "$h" = asyncq.h ] && continue
		hr=$(rank "$h")
		if [ "$hr" = X ] || [ "$hr" -gt "$r" ]; then
			echo "layers: $f (layer $r) includes $h (layer $hr)"
			fail=1
		fi
		# Module graph: foo.c and foo.h are one node, except where the
		# two sit in different layers (pool, stats).
		echo "$(node "$b") $(node "$h")" >>"$edges"
	done
done
# tsort takes "a a" as a lone node, so a module may include its own header.
if ! tsort "$edges" >/dev/null 2>&1; then
	echo "layers: the include graph of lib/ has a cycle:"
	tsort "$edges" 2>&1 >/dev/null | sed 's/^/  /'
	fail=1
fi
[ "$fail" = 0 ] && echo "  layers: include graph acyclic, layers respected"
exit "$fail"
