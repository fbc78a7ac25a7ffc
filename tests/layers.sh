#!/bin/sh
# SPDX-License-Identifier: MIT
# layers.sh - the layering rule of lib/ and of lib/redis/ (README
# "Architecture", libasyncq(7)), checked on the include graph, run by
# `make check`: a file includes only headers of its own layer or of lower
# ones, each directory's module graph has no cycle, and no file in either
# is over 600 lines.
#
# lib/:
#   0 primitives   compat clock deque fault park ring stats.h trace.h
#   1 channel      channel
#   2 records      future cache promise
#   3 timer        timer
#   4 pool core    pool.h threads job current
#   5 services     queue retry deps scheduler sched_* steal opts
#   6 workers      worker help run
#   7 API          pool.c submit.c wait.c stats.c error.c metrics.c
# lib/redis/ (libasyncq-redis; its public header asyncq_redis.h, like
# asyncq.h, sits below every layer):
#   0 connection   redis.h (config, link, arguments) link scripts table
#   1 handles      client.h worker.h (the structs)
#   2 sides        reply (reply thread) reclaim worker.c (fetch thread)
#   3 API          client.c worker_ctl.c (lifecycle, control thread)
set -u
cd "$(dirname "$0")/.." || exit 1

rank_lib() {
	case $1 in
	compat.h | clock.h | deque.[ch] | fault.[ch] | park.[ch] | ring.[ch] | \
		stats.h | \
		trace.h) echo 0 ;;
	channel.[ch]) echo 1 ;;
	future.[ch] | cache.[ch] | promise.[ch]) echo 2 ;;
	timer.[ch]) echo 3 ;;
	pool.h | threads.[ch] | job.[ch] | current.[ch]) echo 4 ;;
	queue.[ch] | retry.[ch] | deps.[ch] | scheduler.[ch] | sched_*.c | \
		steal.[ch] | opts.[ch]) echo 5 ;;
	worker.[ch] | help.[ch] | run.[ch]) echo 6 ;;
	pool.c | submit.c | wait.c | stats.c | error.c | metrics.c) echo 7 ;;
	*) echo X ;;
	esac
}

node_lib() {
	case $1 in
	pool.[ch] | stats.[ch]) echo "$1" ;;
	*) echo "${1%.*}" ;;
	esac
}

rank_redis() {
	case $1 in
	redis.h | link.c | scripts.c | table.[ch]) echo 0 ;;
	client.h | worker.h) echo 1 ;;
	reply.[ch] | reclaim.[ch] | worker.c) echo 2 ;;
	client.c | worker_ctl.c) echo 3 ;;
	*) echo X ;;
	esac
}

node_redis() {
	case $1 in
	client.[ch] | worker.[ch]) echo "$1" ;;
	*) echo "${1%.*}" ;;
	esac
}

# The layer and the module-graph node of a file of the tree being checked.
rank() {
	case $tree in
	lib) rank_lib "$1" ;;
	redis) rank_redis "$1" ;;
	esac
}

node() {
	case $tree in
	lib) node_lib "$1" ;;
	redis) node_redis "$1" ;;
	esac
}

fail=0
edges=$(mktemp) || exit 1
trap 'rm -f "$edges"' EXIT

# check DIR TREE: the files of DIR against the layers of TREE (lib, redis).
check() {
	dir=$1
	tree=$2
	: >"$edges"
	for f in "$dir"/*.c "$dir"/*.h; do
		b=${f#"$dir"/}
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
			case $tree:$h in *:asyncq.h | redis:asyncq_redis.h) continue ;; esac
			hr=$(rank "$h")
			if [ "$hr" = X ] || [ "$hr" -gt "$r" ]; then
				echo "layers: $f (layer $r) includes $h (layer $hr)"
				fail=1
			fi
			# Module graph: foo.c and foo.h are one node, except
			# where the two sit in different layers (pool, stats;
			# client, worker).
			echo "$(node "$b") $(node "$h")" >>"$edges"
		done
	done
	# tsort takes "a a" as a lone node, so a module may include its own
	# header.
	if ! tsort "$edges" >/dev/null 2>&1; then
		echo "layers: the include graph of $dir/ has a cycle:"
		tsort "$edges" 2>&1 >/dev/null | sed 's/^/  /'
		fail=1
	fi
}

check lib lib
check lib/redis redis
[ "$fail" = 0 ] && echo "  layers: include graphs acyclic, layers respected"
exit "$fail"
