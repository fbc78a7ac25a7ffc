#!/bin/sh
# SPDX-License-Identifier: MIT
# The event-loop examples (examples/loop_*.c), for check-loops: each is run
# with several dispatch budgets and must report every completion run
# exactly once, on its loop thread, with its job's outcome, no dispatch
# over the budget, and no wake of the loop with nothing to dispatch.
#
#   sh tests/loops_test.sh build/examples/loop_libuv ...
#
# Each run is bounded by `timeout` (the examples also stop themselves after
# 30 s); a run takes milliseconds.
set -u
pass=0
fail=0

ok() { pass=$((pass + 1)); }
bad() { fail=$((fail + 1)); echo "  FAIL  $1"; }

[ $# -gt 0 ] || { echo "usage: loops_test.sh EXAMPLE..."; exit 2; }
for prog in "$@"; do
	name=${prog##*/}
	[ -x "$prog" ] || { bad "$prog: not built"; continue; }
	# JOBS BUDGET: the default budget, one at a time (every other
	# callback waits for the loop's next turn), no limit, a long run.
	for run in "1000 16" "1000 1" "1000 0" "50000 64"; do
		jobs=${run% *}
		budget=${run#* }
		out=$(timeout 60 "$prog" "$jobs" "$budget" 2>&1)
		status=$?
		# "NAME: J jobs, O completed exactly once, X off the loop
		# thread, Y run on it, W wrong; D dispatches (E empty),
		# largest L (budget B)": its nine numbers.
		line=$(printf '%s\n' "$out" | grep ' jobs, ' | head -1)
		read -r j once off on wrong disp empty largest b more <<-END
		$(printf '%s\n' "$line" | tr -c '0-9\n' ' ')
		END
		what="$name $jobs jobs, budget $budget"
		if [ "$status" -ne 0 ] || [ -z "${b:-}" ] || [ -n "$more" ]
		then
			bad "$what: exit $status: $out"
		elif [ "$j $once $off $on $wrong $b" != \
			"$jobs $jobs 0 0 0 $budget" ]; then
			bad "$what: $line"
		elif [ "$empty" -ne 0 ]; then
			bad "$what: woke with nothing to dispatch: $line"
		elif [ "$budget" -gt 0 ] && [ "$largest" -gt "$budget" ]; then
			bad "$what: over the budget: $line"
		elif [ "$budget" -eq 1 ] && [ "$disp" -ne "$jobs" ]; then
			bad "$what: not one dispatch a callback: $line"
		# The examples keep at most 64 jobs in flight, so no
		# dispatch can find more than 64 callbacks waiting.
		elif [ "$disp" -lt $(((jobs + 63) / 64)) ] ||
			[ "$disp" -gt "$jobs" ]; then
			bad "$what: $disp dispatches: $line"
		else
			ok
		fi
	done
done
echo "  loops: $pass passed, $fail failed"
[ "$fail" -eq 0 ]
