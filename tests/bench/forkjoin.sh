#!/bin/sh
# SPDX-License-Identifier: MIT
# forkjoin.sh - the forkjoin workload of `make bench`: recursive fib at
# cutoffs 20, 15, 10 and 5 and a parallel merge sort of 2^22 ints, on
# libasyncq, OpenMP tasks and oneTBB task_group, with the same number of
# workers, runs interleaved (each round runs every contender once, in
# turn), then per case the median time, its ratio to the best median and
# the speed-up over the sequential code.
#
#   sh forkjoin.sh BUILD_DIR [OUT_FILE]
#
# Knobs: FJ_RUNS (rounds, 5), FJ_WORKERS (2), FJ_FIB_N (fib's n, 38, as issue 13),
# FJ_SORT_LOG2 (22), FJ_SORT_CUTOFF (elements sorted sequentially, 2048).
# A contender whose program was not built (no OpenMP, no libtbb-dev) is
# left out; a failed run is counted and printed as a failure.
set -u
dir=${1:?build directory}
out=${2:-/dev/null}
runs=${FJ_RUNS:-5}
workers=${FJ_WORKERS:-2}
fibn=${FJ_FIB_N:-38}
sortn=${FJ_SORT_LOG2:-22}
sortcut=${FJ_SORT_CUTOFF:-2048}

contenders=""
for c in asyncq omp tbb; do
	[ -x "$dir/fj_$c" ] && contenders="$contenders $c"
done
cases="fib:20 fib:15 fib:10 fib:5 sort:$sortcut"
raw=$(mktemp) || exit 1
trap 'rm -f "$raw"' EXIT

size_of() { [ "$1" = fib ] && echo "$fibn" || echo "$sortn"; }

r=0
while [ "$r" -lt "$runs" ]; do
	r=$((r + 1))
	for cs in $cases; do
		kind=${cs%%:*} cut=${cs#*:}
		size=$(size_of "$kind")
		# The sequential code once per round as well, interleaved.
		line=$("$dir/fj_asyncq" "seq$kind" "$size" "$cut" 1) || line=fail
		echo "$cs seq $line" >>"$raw"
		for c in $contenders; do
			line=$("$dir/fj_$c" "$kind" "$size" "$cut" "$workers") ||
				line=fail
			echo "$cs $c $line" >>"$raw"
		done
	done
done

{
	echo "forkjoin: $workers workers, $runs interleaved rounds, median" \
		"seconds; fib($fibn) at each cutoff, merge sort of 2^$sortn ints" \
		"(sequential below $sortcut); x best = time / best library's" \
		"time; speed-up = sequential / time"
	printf '%-12s %-7s %10s %8s %9s %s\n' case library median "x best" \
		speed-up failures
	for cs in $cases; do
		for c in seq $contenders; do
			awk -v cs="$cs" -v c="$c" \
				'$1 == cs && $2 == c { print $3 }' "$raw" |
				sort -g >"$raw.v"
			fails=$(grep -c fail "$raw.v")
			grep -v fail "$raw.v" >"$raw.ok"
			n=$(wc -l <"$raw.ok")
			med=$(awk -v n="$n" 'NR == int((n + 1) / 2) { a = $1 }
				NR == int(n / 2) + 1 { b = $1 }
				END { if (n) printf "%.4f", (a + b) / 2 }' \
				"$raw.ok")
			echo "$cs $c ${med:-nan} $fails"
		done
	done >"$raw.med"
	for cs in $cases; do
		best=$(awk -v cs="$cs" '$1 == cs && $2 != "seq" && $3 != "nan" {
			if (b == "" || $3 < b) b = $3 } END { print b }' \
			"$raw.med")
		seqt=$(awk -v cs="$cs" '$1 == cs && $2 == "seq" { print $3 }' \
			"$raw.med")
		awk -v cs="$cs" -v best="$best" -v seqt="$seqt" '
			$1 == cs && $2 != "seq" {
				if ($3 == "nan")
					printf "%-12s %-7s %10s %8s %9s %d\n", \
						cs, $2, "-", "-", "-", $4
				else
					printf "%-12s %-7s %10.4f %8.2f %9.2f %d\n", \
						cs, $2, $3, $3 / best, seqt / $3, $4
			}
			$1 == cs && $2 == "seq" {
				printf "%-12s %-7s %10.4f %8s %9s %d\n", \
					cs, "seq", $3, "", "1.00", $4 }' "$raw.med"
	done
	rm -f "$raw.v" "$raw.ok" "$raw.med"
} | tee -a "$out"
