#!/bin/sh
# SPDX-License-Identifier: MIT
# plot.sh - the pictures of a benchmark run, drawn by gnuplot from the
# machine-readable results bench writes (results.txt):
#   throughput.svg  ff and ff2 jobs/s per contender (median, min-max bars)
#   latency.svg     rt p50 and p99 round-trip latency per contender
#                   (median, min-max bars; log scale)
# The direct call is left out of both (it is no pool: ~100 M jobs/s and
# ~0.03 us would flatten the bars) and named in the subtitle instead.
#
# A full run's results (bench writes "# full run: yes": every workload and
# contender, unscaled, at least 5 runs) go to docs/bench/, with a copy of
# results.txt beside them; a partial run's plots go to tests/bench/build/
# only, so a quick BENCH_ONLY run never replaces the published figures.
# Without gnuplot: as root with apt-get, install gnuplot-nox; else skip.
#
#   sh plot.sh [results.txt]      PLOT_DIR=dir overrides where they go
set -u

RESULTS=${1:-results.txt}
HERE=$(cd "$(dirname "$0")" && pwd)
DOCS=$HERE/../../docs/bench

if [ ! -f "$RESULTS" ]; then
	echo "  SKIP    plot: no $RESULTS (run make bench first)"
	exit 0
fi
if ! command -v gnuplot >/dev/null 2>&1; then
	if [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1; then
		echo "  plot: installing gnuplot-nox"
		export DEBIAN_FRONTEND=noninteractive
		apt-get install -y -qq --no-install-recommends gnuplot-nox \
			>/dev/null 2>&1 ||
			{ apt-get update -qq &&
				apt-get install -y -qq --no-install-recommends \
					gnuplot-nox; } >/dev/null 2>&1
	fi
	if ! command -v gnuplot >/dev/null 2>&1; then
		echo "  SKIP    plot: gnuplot is not installed (apt-get" \
			"install gnuplot-nox, or run make bench as root)"
		exit 0
	fi
fi

if grep -q '^# full run: yes' "$RESULTS"; then
	DIR=${PLOT_DIR:-$DOCS}
	FULL=1
else
	DIR=${PLOT_DIR:-$HERE/build}
	FULL=0
fi
mkdir -p "$DIR" || exit 1
TMP=$(mktemp -d) || exit 1
trap 'rm -rf "$TMP"' EXIT

# The contenders in the order bench listed them (the ff rows, else the rt
# rows), less direct.
CONTENDERS=$(awk '$1 == "ff" && $3 == "jobs_per_s" && $2 != "direct" \
	{ print $2 }' "$RESULTS")
if [ -z "$CONTENDERS" ]; then
	CONTENDERS=$(awk '$1 == "rt" && $3 == "p50_us" && $2 != "direct" \
		{ print $2 }' "$RESULTS")
fi
if [ -z "$CONTENDERS" ]; then
	echo "  SKIP    plot: $RESULTS has neither ff nor rt results"
	exit 0
fi

# One row per contender: name, then median min max of each metric asked
# for, NaN where a contender has none (libuv's ff2).
table() { # workload:metric...
	for ct in $CONTENDERS; do
		printf '"%s"' "$ct"
		for pair in "$@"; do
			awk -v wl="${pair%%:*}" -v ct="$ct" -v m="${pair#*:}" \
				-v scale="${SCALE:-1}" '
				$1 == wl && $2 == ct && $3 == m {
					f = 1
					if ($4 == "na")
						printf " NaN NaN NaN"
					else
						printf " %g %g %g", $4 / scale,
						       $5 / scale, $6 / scale
					exit
				}
				END { if (!f) printf " NaN NaN NaN" }' "$RESULTS"
		done
		echo
	done
}

SCALE=1000000 table ff:jobs_per_s ff2:jobs_per_s >"$TMP/tput.dat"
table rt:p50_us rt:p99_us >"$TMP/lat.dat"

# The run, in the words of results.txt's header.
WHEN=$(sed -n '1s/^# libasyncq benchmark, //p' "$RESULTS")
LOAD=$(sed -n 's/^# other processes used \([0-9]*%\) of a core.*/\1/p' \
	"$RESULTS" | head -n 1)
DIRECT_FF=$(awk '$1 == "ff" && $2 == "direct" && $3 == "jobs_per_s" \
	{ printf "%.0f M jobs/s", $4 / 1e6 }' "$RESULTS")
DIRECT_RT=$(awk '$1 == "rt" && $2 == "direct" && $3 == "p50_us" \
	{ printf "%.2f us", $4 }' "$RESULTS")
SUB="$WHEN; 2 workers each; other processes: ${LOAD:-?} of a core"

# Each picture needs its workload in the results (BENCH_ONLY may leave
# one out).
has() {
	awk -v wl="$1" -v m="$2" '$1 == wl && $3 == m && $4 != "na" { f = 1 }
		END { exit !f }' "$RESULTS"
}
MADE=""

cat >"$TMP/head.gp" <<EOF
set terminal svg size 900,520 dynamic enhanced font "sans,12" background "white"
set datafile missing "NaN"
set style data histogram
set style histogram errorbars gap 2 lw 1
set style fill solid 0.8 border -1
set boxwidth 0.9
set grid ytics
set key top right
set xtics nomirror scale 0
set ytics nomirror
set bars front
EOF

cat >"$TMP/tput.gp" <<EOF
set output "$DIR/throughput.svg"
set title "libasyncq and its peers: no-op fire-and-forget jobs per second\n{/*0.8 $SUB; median of the runs, bars min..max; direct call (not plotted): ${DIRECT_FF:-n/a}}"
set ylabel "million jobs/s (higher is better)"
set yrange [0:*]
plot "$TMP/tput.dat" using 2:3:4:xtic(1) title "ff: 1 producer" lc rgb "#3a6ea5", \
     "" using 5:6:7 title "ff2: 2 producers" lc rgb "#e69f00"
EOF

cat >"$TMP/lat.gp" <<EOF
set output "$DIR/latency.svg"
set title "Round trip: submit one job and wait for it (rt)\n{/*0.8 $SUB; median of the runs, bars min..max; direct call (not plotted): ${DIRECT_RT:-n/a}}"
set ylabel "microseconds, log scale (lower is better)"
set logscale y
set yrange [0.1:*]
plot "$TMP/lat.dat" using 2:3:4:xtic(1) title "p50" lc rgb "#3a6ea5", \
     "" using 5:6:7 title "p99" lc rgb "#c0392b"
EOF

cp "$TMP/head.gp" "$TMP/plot.gp" || exit 1
if has ff jobs_per_s; then
	cat "$TMP/tput.gp" >>"$TMP/plot.gp"
	MADE="$MADE throughput.svg"
fi
if has rt p50_us; then
	cat "$TMP/lat.gp" >>"$TMP/plot.gp"
	MADE="$MADE latency.svg"
fi
if [ -z "$MADE" ]; then
	echo "  SKIP    plot: $RESULTS has neither ff nor rt results"
	exit 0
fi
if ! gnuplot "$TMP/plot.gp" 2>"$TMP/err"; then
	echo "  plot: gnuplot failed:" >&2
	cat "$TMP/err" >&2
	exit 1
fi
if [ "$FULL" = 1 ] && [ -z "${PLOT_DIR:-}" ]; then
	cp "$RESULTS" "$DIR/results.txt" || exit 1
	echo "  PLOT    docs/bench/:$MADE (and results.txt, this full" \
		"run's results)"
elif [ "$FULL" = 1 ]; then
	echo "  PLOT    $DIR:$MADE"
else
	echo "  PLOT    $DIR:$MADE (a partial run: docs/bench/ is left as" \
		"it was)"
fi
