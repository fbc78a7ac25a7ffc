#!/bin/sh
# SPDX-License-Identifier: MIT
# make bench-redis: libasyncq-redis against Celery 5 and BullMQ on one
# redis-server (loopback, AOF off, the same for all), 2 worker processes
# each, no-op add jobs. End-to-end jobs/s with results (medians of
# BENCH_RUNS interleaved rounds), round trip p50/p99 at half that load,
# libasyncq-redis without results, and redis-benchmark XADD as the ceiling
# (measured between the rounds, interleaved like the rest). The rounds go
# to $B/raw.txt, the table to stdout, the picture to redis.svg (plot.sh:
# docs/bench/ for a full run, every system and at least 3 rounds).
# Peers that are missing are installed as root (apt-get python3-celery,
# npm bullmq@5 under build/), else skipped with a message.
set -u
B=${B:-build/bench-redis}
RUNS=${BENCH_RUNS:-3}
N_AQ=${N_AQ:-100000}
N_CELERY=${N_CELERY:-3000}
N_BULL=${N_BULL:-20000}
PY=/usr/bin/python3
mkdir -p "$B"
HERE=tests/bench/redis

have_celery() { $PY -c 'import celery, redis' 2>/dev/null; }
have_bull() { [ -d "$B/node/node_modules/bullmq" ]; }
if ! have_celery && [ "$(id -u)" = 0 ]; then
	DEBIAN_FRONTEND=noninteractive apt-get install -y -qq python3-celery \
		python3-redis >/dev/null 2>&1
fi
if ! have_bull && command -v npm >/dev/null 2>&1; then
	npm install --silent --prefix "$B/node" bullmq@5 >/dev/null 2>&1
	cp $HERE/bull_worker.mjs $HERE/bull_bench.mjs "$B/node/"
fi
have_bull && cp $HERE/bull_worker.mjs $HERE/bull_bench.mjs "$B/node/"
have_celery || echo "  SKIP    celery: python3-celery not installed"
have_bull || echo "  SKIP    bullmq: npm install bullmq failed"

PORT=$($PY -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')
export REDIS_PORT=$PORT
DIR=$(mktemp -d)
redis-server --port "$PORT" --bind 127.0.0.1 --save '' --appendonly no \
	--dir "$DIR" >"$DIR/log" 2>&1 &
RPID=$!
trap 'kill $RPID 2>/dev/null; kill $(jobs -p) 2>/dev/null; rm -rf "$DIR"' EXIT
trap 'exit 130' INT TERM # through the EXIT trap: nothing left running
for i in $(seq 100); do redis-cli -p "$PORT" ping >/dev/null 2>&1 && break; sleep 0.05; done

WPIDS=
start_workers() { # system
	WPIDS=
	for w in 1 2; do
		case $1 in
		aq) $B/bench_worker "$PORT" & ;;
		celery) (cd $HERE && exec $PY -m celery -A celery_tasks worker \
			-P solo -l WARNING --without-heartbeat --without-gossip \
			--without-mingle -n "w$w@%h" >/dev/null 2>&1) & ;;
		bull) (cd "$B/node" && exec node bull_worker.mjs) & ;;
		esac
		WPIDS="$WPIDS $!"
	done
	sleep 2
}
stop_workers() {
	for p in $WPIDS; do kill -TERM "$p" 2>/dev/null; done
	for p in $WPIDS; do wait "$p" 2>/dev/null; done
	redis-cli -p "$PORT" flushall >/dev/null
}
run() { # system mode n [rate]
	case $1 in
	aq) $B/bench_redis "$PORT" "$2" "$3" ${4:-} ;;
	celery) (cd $HERE && $PY celery_bench.py "$2" "$3" ${4:-}) ;;
	bull) (cd "$B/node" && node bull_bench.mjs "$2" "$3" ${4:-}) ;;
	esac
}
median() { sort -n | awk '{a[NR]=$1} END {print a[int((NR+1)/2)]}'; }
get() { grep "^$1 $2 " "$B/raw.txt" | awk -v f="$3" '{print $f}' | median; }

SYSTEMS="aq"
have_celery && SYSTEMS="$SYSTEMS celery"
have_bull && SYSTEMS="$SYSTEMS bull"
{
	echo "when $(date -u +%Y-%m-%d), $(nproc) cores, load average" \
		"$(cut -d' ' -f1 /proc/loadavg) at the start;"
} >"$B/raw.txt"
xadd() {
	redis-benchmark -p "$PORT" -n 300000 -P 32 -q XADD aqbench '*' f v |
		sed -n 's/.*: \([0-9.]*\) requests per second.*/\1/p' | cut -d. -f1
	redis-cli -p "$PORT" del aqbench >/dev/null
}
for r in $(seq "$RUNS"); do
	for s in $SYSTEMS; do
		case $s in aq) n=$N_AQ ;; celery) n=$N_CELERY ;; bull) n=$N_BULL ;; esac
		start_workers $s
		tput=$(run $s results $n)
		lat=$(run $s latency $((n / 50)) $((tput / 2)))
		echo "$s results $tput" >>"$B/raw.txt"
		echo "$s latency $lat" >>"$B/raw.txt"
		if [ $s = aq ]; then
			echo "aq noresult $(run aq noresult $((2 * n)))" >>"$B/raw.txt"
		fi
		stop_workers
		echo "  round $r $s: $tput jobs/s, p50/p99 $lat us"
	done
	echo "xadd ceiling $(xadd)" >>"$B/raw.txt"
done
[ "$RUNS" -ge 3 ] && [ "$SYSTEMS" = "aq celery bull" ] &&
	echo "full yes" >>"$B/raw.txt"
XADD=$(get xadd ceiling 3)

# The median over rounds of aq's jobs/s over x's in the same round.
ratio() { # system
	awk -v s="$1" '$2 == "results" && $1 == "aq" { a[++na] = $3 }
		$2 == "results" && $1 == s { b[++nb] = $3 }
		END { for (i = 1; i <= nb; i++) print a[i] / b[i] }' \
		"$B/raw.txt" | median | awk '{ printf "%.1f", $1 }'
}
AQ=$(get aq results 3)
printf '\n%-18s %12s %10s %10s %8s\n' system "jobs/s" "p50 us" "p99 us" "aq/x"
for s in $SYSTEMS; do
	t=$(get $s results 3)
	name=$s; [ $s = aq ] && name=libasyncq-redis; [ $s = bull ] && name=bullmq
	[ $s = celery ] && name="celery 5"
	printf '%-18s %12s %10s %10s %8s\n' "$name" "$t" "$(get $s latency 3)" \
		"$(get $s latency 4)" "$(ratio $s)"
done
echo "(jobs/s and latencies: medians of $RUNS rounds; aq/x: the median of" \
	"the same-round ratios)"
NR=$(get aq noresult 3)
pct() { awk -v a="$1" -v b="$XADD" 'BEGIN{printf "%.1f", 100*a/b}'; }
printf '%-18s %12s   (%s%% of the XADD ceiling)\n' "aq, no results" "$NR" \
	"$(pct "$NR")"
printf '%-18s %12s   (aq with results at %s%% of it)\n' "XADD ceiling" \
	"$XADD" "$(pct "$AQ")"
sh $HERE/plot.sh "$B/raw.txt"
