#!/bin/sh
# SPDX-License-Identifier: MIT
# examples/http_server under wrk: the same server offloading /primes to a
# libasyncq pool, and counting inline on its loop (-i). Each round drives
# one server with heavy requests and, at the same time, cheap /health ones,
# and measures both; rounds alternate offload, inline, offload, inline, ...
# and the table gives the medians over the rounds.
#
# Run by `make bench-http` (and by `make bench` when wrk is installed). As
# root with apt-get it installs wrk if missing; otherwise it skips. Knobs:
#   HTTP_BENCH_ROUNDS (3)  HTTP_BENCH_SECONDS (5)  HTTP_BENCH_N (200000)
#   HTTP_BENCH_WORKERS (0: one per CPU)  HTTP_SERVER (build/examples/...)
set -u

SERVER=${HTTP_SERVER:-build/examples/http_server}
ROUNDS=${HTTP_BENCH_ROUNDS:-3}
SECONDS_EACH=${HTTP_BENCH_SECONDS:-5}
N=${HTTP_BENCH_N:-200000}
WORKERS=${HTTP_BENCH_WORKERS:-0}

if ! command -v wrk >/dev/null 2>&1; then
	if [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1; then
		echo "  http-bench: installing wrk"
		export DEBIAN_FRONTEND=noninteractive
		apt-get install -y -qq wrk >/dev/null 2>&1 ||
			{ apt-get update -qq && apt-get install -y -qq wrk; } \
				>/dev/null 2>&1
	fi
	if ! command -v wrk >/dev/null 2>&1; then
		echo "  SKIP    http bench: wrk not installed" \
			"(apt-get install wrk)"
		exit 0
	fi
fi
[ -x "$SERVER" ] || { echo "http bench: $SERVER not built (make)"; exit 1; }

tmp=$(mktemp -d)
pids=
cleanup() {
	for p in $pids; do
		kill "$p" 2>/dev/null
	done
	rm -rf "$tmp"
}
trap cleanup EXIT
trap 'exit 1' INT TERM HUP

# start NAME ARGS...: a server in the background; its port in port_NAME.
start() {
	name=$1
	shift
	"$SERVER" -p 0 "$@" >"$tmp/$name.out" 2>"$tmp/$name.err" &
	pids="$pids $!"
	for _ in $(seq 100); do
		port=$(sed -n 's/^listening on 127\.0\.0\.1:\([0-9]*\)$/\1/p' \
			"$tmp/$name.out")
		if [ -n "$port" ]; then
			eval "port_$name=$port"
			return 0
		fi
		sleep 0.05
	done
	echo "http bench: the $name server did not start"
	cat "$tmp/$name.err"
	exit 1
}

# wrk_stats FILE: "req/s p50_ms p99_ms errors" from wrk --latency output.
wrk_stats() {
	awk '
	function ms(v) {
		if (v ~ /us$/) return v / 1000;
		if (v ~ /ms$/) return v + 0;
		if (v ~ /s$/) return v * 1000;
		return v + 0;
	}
	$1 == "50%" { p50 = ms($2) }
	$1 == "99%" { p99 = ms($2) }
	$1 == "Requests/sec:" { rps = $2 }
	/Non-2xx or 3xx responses:/ { errors += $NF }
	/Socket errors:/ {
		for (i = 1; i <= NF; i++) if ($i ~ /^[0-9]+,?$/) errors += $i
	}
	END { printf "%s %s %s %d\n", rps, p50, p99, errors }' "$1"
}

# median: of the numbers on stdin, one a line.
median() {
	sort -g | awk '{ v[NR] = $1 }
	END { if (NR % 2) print v[(NR + 1) / 2];
	      else print (v[NR / 2] + v[NR / 2 + 1]) / 2 }'
}

start offload -w "$WORKERS"
start inline -i
workers=$(sed -n 's/^http_server: \([0-9]*\) worker(s)$/\1/p' \
	"$tmp/offload.err")

echo "  BENCH   http_server under wrk: $ROUNDS rounds of ${SECONDS_EACH}s," \
	"$(nproc) CPU(s), pool of $workers worker(s)"
for round in $(seq "$ROUNDS"); do
	for mode in offload inline; do
		eval "port=\$port_$mode"
		wrk -t2 -c32 -d"${SECONDS_EACH}s" --latency \
			"http://127.0.0.1:$port/primes?n=$N" \
			>"$tmp/heavy.raw" 2>&1 &
		heavy_pid=$!
		wrk -t1 -c4 -d"${SECONDS_EACH}s" --latency \
			"http://127.0.0.1:$port/health" >"$tmp/health.raw" 2>&1
		wait "$heavy_pid"
		wrk_stats "$tmp/heavy.raw" >>"$tmp/$mode.heavy"
		wrk_stats "$tmp/health.raw" >>"$tmp/$mode.health"
		printf '  round %d %-8s heavy %s   health %s\n' \
			"$round" "$mode" \
			"$(tail -1 "$tmp/$mode.heavy")" \
			"$(tail -1 "$tmp/$mode.health")"
	done
done

# col FILE K: the median of column K over the rounds.
col() { cut -d' ' -f"$2" "$1" | median; }

echo
printf '  heavy = GET /primes?n=%s (wrk -t2 -c32), health = GET /health' "$N"
printf ' (wrk -t1 -c4), at once;\n  medians of %d rounds; latency in ms;' \
	"$ROUNDS"
printf ' errors = non-2xx + socket errors\n\n'
printf '  %-22s %10s %8s %8s   %10s %8s %8s %6s\n' server heavy/s p50 p99 \
	health/s p50 p99 errors
for mode in offload inline; do
	case $mode in
	offload) label="offload (libasyncq)" ;;
	inline) label="inline (-i)" ;;
	esac
	errors=$(awk '{ e += $4 } END { print e + 0 }' "$tmp/$mode.heavy" \
		"$tmp/$mode.health")
	printf '  %-22s %10.0f %8.3f %8.3f   %10.0f %8.3f %8.3f %6d\n' \
		"$label" \
		"$(col "$tmp/$mode.heavy" 1)" "$(col "$tmp/$mode.heavy" 2)" \
		"$(col "$tmp/$mode.heavy" 3)" "$(col "$tmp/$mode.health" 1)" \
		"$(col "$tmp/$mode.health" 2)" "$(col "$tmp/$mode.health" 3)" \
		"$errors"
done
awk -v a="$(col "$tmp/inline.health" 3)" \
	-v b="$(col "$tmp/offload.health" 3)" \
	-v c="$(col "$tmp/offload.heavy" 1)" \
	-v d="$(col "$tmp/inline.heavy" 1)" 'BEGIN {
	if (b > 0) printf "\n  health p99: inline / offload = %.1fx", a / b;
	if (d > 0) printf "; heavy req/s: offload / inline = %.2fx", c / d;
	printf "\n" }'
