#!/bin/sh
# SPDX-License-Identifier: MIT
# plot.sh - the picture of a make bench-redis run, drawn by gnuplot from
# the rounds bench_redis.sh wrote (raw.txt: "system metric value..." per
# round): redis.svg, two panels on log scales, end-to-end jobs/s (with
# results; libasyncq-redis also without, and redis-benchmark's XADD as the
# ceiling) and the round trip p50/p99 at half load; medians of the
# rounds, bars min..max.
#
# A full run (every system present, at least 3 rounds: "full yes" in
# raw.txt) goes to docs/bench/redis.svg with a copy of its results beside
# it; any other run's plot stays under build/bench-redis/.
#
#   sh tests/bench/redis/plot.sh [raw.txt]
set -u
RAW=${1:-build/bench-redis/raw.txt}
HERE=$(cd "$(dirname "$0")" && pwd)
if [ ! -f "$RAW" ]; then
	echo "  SKIP    plot: no $RAW (run make bench-redis first)"
	exit 0
fi
if ! command -v gnuplot >/dev/null 2>&1; then
	if [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1; then
		DEBIAN_FRONTEND=noninteractive apt-get install -y -qq \
			--no-install-recommends gnuplot-nox >/dev/null 2>&1
	fi
	if ! command -v gnuplot >/dev/null 2>&1; then
		echo "  SKIP    plot: gnuplot is not installed (apt-get" \
			"install gnuplot-nox)"
		exit 0
	fi
fi
if grep -q '^full yes' "$RAW"; then
	DIR=$HERE/../../../docs/bench
else
	DIR=$(dirname "$RAW")
fi
TMP=$(mktemp -d) || exit 1
trap 'rm -rf "$TMP"' EXIT

# median min max of the values of "system metric" in field f
stat() { # system metric field
	awk -v s="$1" -v m="$2" -v f="$3" '$1 == s && $2 == m { print $f }' \
		"$RAW" | sort -n | awk '{ a[NR] = $1 }
		END { if (NR) print a[int((NR + 1) / 2)], a[1], a[NR];
		      else print "NaN NaN NaN" }'
}
# One row per bar: its label (\n is gnuplot's line break), then median
# min max; printf, since some shells' echo reads the backslash itself.
row() { printf '"%s" %s\n' "$1" "$2"; }
{
	row 'aq-redis' "$(stat aq results 3)"
	row 'aq-redis,\nno results' "$(stat aq noresult 3)"
	row 'Celery 5' "$(stat celery results 3)"
	row 'BullMQ 5' "$(stat bull results 3)"
	row 'XADD\nceiling' "$(stat xadd ceiling 3)"
} >"$TMP/tput.dat"
{
	row 'aq-redis' "$(stat aq latency 3) $(stat aq latency 4)"
	row 'Celery 5' "$(stat celery latency 3) $(stat celery latency 4)"
	row 'BullMQ 5' "$(stat bull latency 3) $(stat bull latency 4)"
} >"$TMP/lat.dat"
WHEN=$(sed -n 's/^when //p' "$RAW" | head -n 1)
ROUNDS=$(awk '$1 == "aq" && $2 == "results"' "$RAW" | wc -l)

cat >"$TMP/plot.gp" <<GP
set terminal svg size 1000,460 dynamic enhanced font "sans,11" background "white"
set output "$DIR/redis.svg"
set datafile missing "NaN"
set style data histogram
set style histogram errorbars gap 2 lw 1
set style fill solid 0.8 border -1
set boxwidth 0.9
set grid ytics
set xtics nomirror scale 0 font ",10"
set ytics nomirror
set logscale y
set bars front
set multiplot layout 1,2 title "make bench-redis: no-op jobs on one redis-server, 2 worker processes each (aq-redis: libasyncq-redis)\n{/*0.8 ${WHEN:-} median of $ROUNDS interleaved rounds, bars min..max}"
set bmargin 4
set title "end-to-end throughput (with results unless said)"
set ylabel "jobs/s, log scale (higher is better)"
set yrange [100:2000000]
set arrow 1 from graph 0, first 50000 to graph 1, first 50000 nohead dt 2 lc rgb "#555555"
set label 1 "50 000: the target without results" at graph 0.02, first 62000 font ",9"
plot "$TMP/tput.dat" using 2:3:4:xtic(1) notitle lc rgb "#3a6ea5"
unset arrow 1
unset label 1
set title "round trip, one job at a time at half that rate"
set ylabel "microseconds, log scale (lower is better)"
set yrange [100:*]
set key top left
plot "$TMP/lat.dat" using 2:3:4:xtic(1) title "p50" lc rgb "#3a6ea5", \
     "" using 5:6:7 title "p99" lc rgb "#c0392b"
unset multiplot
GP
if ! gnuplot "$TMP/plot.gp" 2>"$TMP/err"; then
	echo "  plot: gnuplot failed:" >&2
	cat "$TMP/err" >&2
	exit 1
fi
if grep -q '^full yes' "$RAW"; then
	cp "$RAW" "$DIR/redis-raw.txt"
	echo "  PLOT    docs/bench/redis.svg (and redis-raw.txt)"
else
	echo "  PLOT    $DIR/redis.svg (a partial run: docs/bench/ left as it was)"
fi
