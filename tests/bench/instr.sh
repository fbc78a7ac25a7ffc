#!/bin/sh
# SPDX-License-Identifier: MIT
# instr.sh - the instr workload of `make bench` (issue 7): instructions per
# job, counted by valgrind --tool=callgrind, which is exact and does not
# care how busy the machine is. For each contender and mode (ff: a no-op
# fire-and-forget job; fut: a future per job, or for peers a mutex+condvar
# cell) it runs build/instr with N = 1 and with N = BENCH_N (200000) and
# reports
#
#   total  (Ir(N) - Ir(1)) / (N - 1): every instruction of every thread
#          (submitter, workers), user space only (the kernel's side of a
#          futex or sched_yield is not seen), the job itself included;
#   own    the same difference summed over the contender's own functions
#          only, from callgrind_annotate's per-function (self) totals:
#          libasyncq: functions whose source is lib/*.c or lib/*.h (aq_*,
#          aq__* and the static ones, with what they inline); textbook:
#          peer_textbook.c; C-Thread-Pool: thpool.c; GThreadPool: code in
#          libglib; libuv: code in libuv; direct: peer_direct.c;
#   prog   the test program's own code: its submit loop (instr.c), the
#          adapters (peer_*.c) and the job's trampoline and body;
#   other  the rest: libc (malloc, mutexes, futex and sched_yield
#          wrappers, clock_gettime), ld.so.
#
# Ir(1) is the median of three runs (C-Thread-Pool's thpool_destroy polls
# for its threads, so its fixed cost varies a little).
#
# It speaks bench.c's line protocol on stdout (value, note, skip); run by
# hand it prints the same. Knobs: BENCH_N, BENCH_CONTENDER_LIST (comma
# list), INSTR_TIMEOUT (seconds per valgrind run, default 300), INSTR_BIN.
set -u

BIN=${INSTR_BIN:-./build/instr}
N=${BENCH_N:-200000}
TIMEOUT=${INSTR_TIMEOUT:-300}
WANT=${BENCH_CONTENDER_LIST:-}
OUT=build/callgrind
LIBDIR=$(cd "$(dirname "$0")/../../lib" 2>/dev/null && pwd)

if ! command -v valgrind >/dev/null 2>&1 ||
	! command -v callgrind_annotate >/dev/null 2>&1; then
	echo "skip valgrind is not installed (apt-get install valgrind)"
	exit 0
fi
if [ ! -x "$BIN" ]; then
	echo "skip $BIN is not built (make -C tests/bench)"
	exit 0
fi
mkdir -p "$OUT" || exit 1
command -v timeout >/dev/null 2>&1 && TO="timeout $TIMEOUT" || TO=

# Is $1 in the comma list $WANT (all when it is empty)?
wanted() {
	[ -z "$WANT" ] && return 0
	echo ",$WANT," | tr '[:upper:]' '[:lower:]' |
		grep -q ",$(echo "$1" | tr '[:upper:]' '[:lower:]'),"
}

# callgrind's total Ir of a profile, and the parts of it in own and program
# code, as "total own prog" (regexes on the source file and the object).
parts() {
	total=$(sed -n 's/^totals: *\([0-9]*\).*/\1/p' "$1")
	[ -n "$total" ] ||
		total=$(sed -n 's/^summary: *\([0-9]*\).*/\1/p' "$1")
	callgrind_annotate --auto=no --inclusive=no --threshold=100 "$1" 2>/dev/null |
		awk -v total="$total" -v own_file="$2" -v own_obj="$3" \
			-v prog_file='(^|/)(instr|peer_[a-z_]*|contender_[a-z_]*)\.c$' '
		/^ *[0-9][0-9,]* \( *[0-9.]*%\)  / && !/PROGRAM TOTALS/ {
			n = $1; gsub(",", "", n)
			rest = $0
			sub(/^ *[0-9,]+ \( *[0-9.]+%\) +/, "", rest)
			obj = ""
			if (match(rest, / \[[^]]*\]$/)) {
				obj = substr(rest, RSTART + 2, RLENGTH - 3)
				rest = substr(rest, 1, RSTART - 1)
			}
			file = rest
			sub(/:[^:]*$/, "", file)
			if ((own_file != "" && file ~ own_file) ||
			    (own_obj != "" && obj ~ own_obj))
				own += n
			else if (file ~ prog_file)
				prog += n
		}
		END { printf "%s %.0f %.0f\n", total, own, prog }'
}

# Run one profile: contender, mode, N -> its parts, or FAILED.
profile() {
	f="$OUT/$(echo "$1" | tr -c 'A-Za-z0-9\n' '_').$2.$3.out"
	if ! $TO valgrind --tool=callgrind --callgrind-out-file="$f" \
		"$BIN" "$1" "$2" "$3" >"$f.log" 2>&1; then
		echo "FAILED"
		return
	fi
	parts "$f" "$own_file" "$own_obj"
}

echo "instr: N = $N; profiles in tests/bench/$OUT" >&2
for ct in $("$BIN" --list); do
	wanted "$ct" || continue
	own_file='' own_obj=''
	case $ct in
	libasyncq|libasyncq-b64)
		own_file="^($LIBDIR|(\.\./\.\./)?lib)/[^/]*\.[ch]$" ;;
	textbook) own_file='(^|/)peer_textbook\.c$' ;;
	C-Thread-Pool) own_file='(^|/)thpool\.c$' ;;
	GThreadPool) own_obj='libglib-2\.0\.so' ;;
	libuv) own_obj='libuv\.so' ;;
	direct) own_file='(^|/)peer_direct\.c$' ;;
	esac
	for mode in ff fut; do
		[ "$ct" = direct ] && [ "$mode" = fut ] && continue
		echo "instr: $ct $mode" >&2
		big=$(profile "$ct" "$mode" "$N")
		s1=$(profile "$ct" "$mode" 1)
		s2=$(profile "$ct" "$mode" 1)
		s3=$(profile "$ct" "$mode" 1)
		case "$big $s1 $s2 $s3" in
		*FAILED*)
			echo "note FAILED: $ct $mode: build/instr under" \
				"valgrind failed or ran past ${TIMEOUT}s (a" \
				"lost job hangs it): see $OUT/*.log"
			continue ;;
		esac
		# The N=1 run with the median total, then the differences.
		small=$(printf '%s\n%s\n%s\n' "$s1" "$s2" "$s3" |
			sort -n -k1,1 | sed -n 2p)
		echo "$big $small" | awk -v ct="$ct" -v mode="$mode" -v n="$N" '{
			d = n - 1
			total = ($1 - $4) / d; own = ($2 - $5) / d
			prog = ($3 - $6) / d; other = total - own - prog
			printf "value %s %s_ir %.1f\n", ct, mode, total
			printf "value %s %s_own_ir %.1f\n", ct, mode, own
			printf "note %s %s: %.1f instructions per job = own " \
			       "code %.1f + program %.1f + libc and other %.1f" \
			       " (Ir %d at N=%d, %d at N=1)\n", ct, mode,
			       total, own, prog, other, $1, n, $4
		}'
	done
done
echo "note total: (Ir(N) - Ir(1)) / (N - 1), all threads, user space;" \
	"own code: the pool's own functions (libasyncq: lib/*.c and what" \
	"they inline); program: instr.c's loop, the peer_*.c adapters, the" \
	"job (a trampoline and one atomic add); fut: a future per job" \
	"(submit 256, then get and release each); peers: a mutex+condvar" \
	"cell per job"
exit 0
