#!/bin/sh
# SPDX-License-Identifier: MIT
# analyze.sh - static analysis of lib/, run by `make analyze`: gcc -fanalyzer
# (release and test configurations), cppcheck and clang-tidy (.clang-tidy at
# the top). Any finding fails the run. A false positive is suppressed where it
# is, narrowly: `/* cppcheck-suppress id -- reason */` or `// NOLINT(check):
# reason` on its line; gcc has no such comment, so its few are listed below by
# file, function and warning, each with its reason. As root with apt-get,
# missing tools are installed; otherwise the script says what to install.
#
# Logs are left in build/analyze/.
set -u
cd "$(dirname "$0")/.." || exit 1

LOG=build/analyze
CFLAGS_ANALYZE="-std=c11 -Wall -Wextra -Wpedantic -D_GNU_SOURCE -pthread \
-Iinclude -Ilib"

# gcc -fanalyzer false positives, one a line: file, function, warning, and
# why.
GCC_SUPPRESS='
lib/wait.c any_event_put -Wanalyzer-double-free refcounted: n + 1 puts in all, the last one frees
lib/future.c aq_future_then -Wanalyzer-malloc-leak then_deliver() with no channel runs the node at once: then_run() frees it through its node pointer
'

# ---- the tools ---------------------------------------------------------------
need=
command -v gcc >/dev/null 2>&1 || need="$need gcc"
command -v cppcheck >/dev/null 2>&1 || need="$need cppcheck"
command -v clang-tidy >/dev/null 2>&1 || need="$need clang-tidy"
if [ -n "$need" ]; then
	if [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1; then
		echo "  analyze: installing$need"
		export DEBIAN_FRONTEND=noninteractive
		{ apt-get update -qq && apt-get install -y -qq $need; } \
			>/dev/null || exit 1
	else
		echo "make analyze needs:$need" >&2
		echo "install them with:  sudo apt-get install$need" >&2
		exit 1
	fi
fi

mkdir -p "$LOG"
failed=0

# ---- gcc -fanalyzer ----------------------------------------------------------
# Print the warnings of a gcc log as "file function option text", one a line
# (gcc names the function in an "In function" line before them).
gcc_findings() {
	awk '
	/: In function / {
		fn = $0
		sub(/^.*In function [^a-zA-Z_]*/, "", fn)
		sub(/[^a-zA-Z0-9_].*$/, "", fn)
		next
	}
	/^[^ ]*:[0-9]+:[0-9]+: warning: / {
		opt = $0
		if (match(opt, /\[-W[^]]*\]$/))
			opt = substr(opt, RSTART + 1, RLENGTH - 2)
		else
			opt = "-W?"
		split($0, loc, ":")
		print loc[1], fn, opt, $0
	}' "$1"
}

gcc_total=0
gcc_suppressed=0
for config in release testing; do
	defs=
	[ "$config" = testing ] && defs=-DAQ_TESTING
	glog="$LOG/gcc-fanalyzer-$config.log"
	: >"$glog"
	for src in lib/*.c; do
		# shellcheck disable=SC2086
		gcc $CFLAGS_ANALYZE $defs -O2 -fanalyzer -c -o /dev/null \
			"$src" >>"$glog" 2>&1
	done
	gcc_findings "$glog" >"$glog.findings"
	while read -r file fn opt text; do
		[ -n "$file" ] || continue
		if printf '%s\n' "$GCC_SUPPRESS" |
			grep -q "^$file $fn $opt "; then
			gcc_suppressed=$((gcc_suppressed + 1))
			continue
		fi
		echo "  gcc -fanalyzer ($config): $text"
		gcc_total=$((gcc_total + 1))
	done <"$glog.findings"
done
echo "  ANALYZE gcc -fanalyzer: $gcc_total finding(s)" \
	"($gcc_suppressed known false positive(s) suppressed)"
[ "$gcc_total" = 0 ] || failed=1

# ---- cppcheck ------------------------------------------------------------------
# --force checks every preprocessor configuration (AQ_TESTING, __linux__, ...).
if cppcheck --enable=warning,performance,portability --inline-suppr \
	--error-exitcode=1 --std=c11 --force --library=posix -D_GNU_SOURCE \
	-Iinclude -Ilib --quiet \
	--template='{file}:{line}: {severity}: {message} [{id}]' \
	lib/ >"$LOG/cppcheck.log" 2>&1; then
	echo "  ANALYZE cppcheck: clean"
else
	sed 's/^/  cppcheck: /' "$LOG/cppcheck.log"
	echo "  ANALYZE cppcheck: findings above"
	failed=1
fi

# ---- clang-tidy ----------------------------------------------------------------
# The checks and the reasons for the ones left out are in .clang-tidy.
# shellcheck disable=SC2086
if clang-tidy --quiet lib/*.c -- $CFLAGS_ANALYZE \
	>"$LOG/clang-tidy.log" 2>&1; then
	echo "  ANALYZE clang-tidy: clean"
else
	grep -E '(warning|error):' "$LOG/clang-tidy.log" |
		sed "s|^$(pwd)/||; s/^/  clang-tidy: /"
	echo "  ANALYZE clang-tidy: findings above (log:" \
		"$LOG/clang-tidy.log)"
	failed=1
fi

exit $failed
