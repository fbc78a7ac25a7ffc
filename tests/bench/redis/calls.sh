#!/bin/sh
# SPDX-License-Identifier: MIT
# calls.sh - Redis commands per job of libasyncq-redis, counted by the
# server (INFO commandstats, reset before each run): N no-op jobs with
# results, then 2N without, through 2 bench_worker processes. Commands run
# inside Lua scripts are counted too, under their own names; "evalsha" is
# the number of script calls. A few of the commands are the driver's own
# polling (xinfo, zcard, xlen of the no-results run) and the workers'
# idle-time timers (promote, reclaim), not per-job work.
#
#   sh tests/bench/redis/calls.sh [N]      (after make bench-redis's build)
set -u
B=${B:-build/bench-redis}
N=${1:-20000}
PORT=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')
DIR=$(mktemp -d)
redis-server --port "$PORT" --bind 127.0.0.1 --save '' --appendonly no \
	--dir "$DIR" >"$DIR/log" 2>&1 &
RPID=$!
trap 'kill $RPID $W1 $W2 2>/dev/null; rm -rf "$DIR"' EXIT
W1= W2=
for i in $(seq 100); do redis-cli -p "$PORT" ping >/dev/null 2>&1 && break; sleep 0.05; done
$B/bench_worker "$PORT" & W1=$!
$B/bench_worker "$PORT" & W2=$!
sleep 1
count() { # mode n
	redis-cli -p "$PORT" config resetstat >/dev/null
	r=$($B/bench_redis "$PORT" "$1" "$2")
	redis-cli -p "$PORT" info commandstats | tr -d '\r' |
		sed -n 's/^cmdstat_\([^:]*\):calls=\([0-9]*\),.*/\1 \2/p' |
		sort -k2 -nr | awk -v n="$2" -v m="$1" -v r="$r" '
		BEGIN { printf "%s: %d jobs, %s jobs/s\n", m, n, r }
		$1 !~ /^config/ && $1 != "info" {
			printf "  %-12s %9d  %6.3f per job\n", $1, $2, $2 / n
			t += $2 }
		END { printf "  %-12s %9d  %6.3f per job\n", "all", t, t / n }'
}
count results "$N"
count noresult $((2 * N))
