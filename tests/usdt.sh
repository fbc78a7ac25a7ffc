#!/bin/sh
# SPDX-License-Identifier: MIT
# The USDT probes of libasyncq (lib/trace.h, libasyncq(7)), run by `make
# check-usdt` as  sh tests/usdt.sh LIBRARY PROGRAM:
#
#   1. readelf -n: the shared library's stapsdt notes name every probe of
#      provider libasyncq below, no other, none with a semaphore (a probe
#      costs one nop, never a test and branch), and libasyncq(7) documents
#      each;
#   2. where bpftrace can attach (root, a kernel with uprobes), a trace of
#      PROGRAM (tests/usdt_prog.c) counts what `PROGRAM -n` says it must:
#      how often each probe fired, and some of their arguments. Otherwise
#      it says why it skips.
#
# bpftrace 0.17 cannot place USDT probes of a shared library in a child it
# starts itself (-c), so it attaches to the library file, the program runs,
# and SIGINT ends the trace. Every wait is bounded.
set -u
LIB=${1:?usage: usdt.sh LIBRARY PROGRAM}
PROG=${2:?usage: usdt.sh LIBRARY PROGRAM}
PROBES="submit submit_batch start finish retry cancel expire park wake"
MAN=man/man7/libasyncq.7

if [ "${HAVE_SDT:-0}" != 1 ]; then
	echo "  SKIP    usdt: built without <sys/sdt.h> (HAVE_SDT=0; Debian:" \
		"apt-get install systemtap-sdt-dev)"
	exit 0
fi
command -v readelf >/dev/null 2>&1 ||
	{ echo "usdt: FAIL readelf not found (binutils)"; exit 1; }

tmp=$(mktemp -d) || exit 1
bt_pid=
cleanup() {
	[ -n "$bt_pid" ] && kill -KILL "$bt_pid" 2>/dev/null
	rm -rf "$tmp"
}
trap cleanup EXIT
fail=0

# ---- 1. the notes ---------------------------------------------------------------
readelf -n "$LIB" >"$tmp/notes" 2>&1 ||
	{ echo "usdt: FAIL readelf -n $LIB"; exit 1; }
awk '/Provider: / { prov = $2 } /Name: / && prov == "libasyncq" { print $2 }' \
	"$tmp/notes" | sort -u >"$tmp/found"
echo "$PROBES" | tr ' ' '\n' | sort -u >"$tmp/want"
if ! cmp -s "$tmp/found" "$tmp/want"; then
	echo "usdt: FAIL probes in $LIB differ from the documented ones:"
	diff "$tmp/want" "$tmp/found" | sed -n 's/^[<>] */        /p'
	fail=1
fi
sites=$(grep -c 'Provider: libasyncq' "$tmp/notes")
if grep -A3 'Provider: libasyncq' "$tmp/notes" | grep 'Semaphore:' |
	grep -qv 'Semaphore: 0x0*$'; then
	echo "usdt: FAIL a probe has a semaphore (a test on the hot path)"
	fail=1
fi
for p in $PROBES; do
	grep -q "^\.B $p\$" "$MAN" ||
		{ echo "usdt: FAIL probe $p is not documented in $MAN"; fail=1; }
done
[ $fail -eq 0 ] && echo "  usdt: $(wc -l <"$tmp/want") probes at $sites" \
	"sites in $(basename "$LIB"), no semaphores, all documented"

# ---- 2. a trace -----------------------------------------------------------------
skip() {
	echo "  SKIP    usdt trace: $1"
	exit $fail
}
command -v bpftrace >/dev/null 2>&1 ||
	skip "bpftrace not installed (apt-get install bpftrace)"
[ "$(id -u)" = 0 ] || skip "bpftrace needs root"
lib=$(readlink -f "$LIB")
u="usdt:$lib:libasyncq"
# Can bpftrace attach a uprobe to the library at all? If not, say why and
# skip; past this point a failure of the trace is a failure of the test.
timeout 30 bpftrace -e "uprobe:$lib:aq_version { } BEGIN { printf(\"ok\\n\"); exit(); }" \
	>"$tmp/bt.out" 2>"$tmp/bt.err"
if ! grep -q '^ok$' "$tmp/bt.out"; then
	reason=$(grep -v 'RLIMIT_MEMLOCK\|^Attaching' "$tmp/bt.err" | head -1)
	skip "bpftrace cannot attach here: ${reason:-no answer in 30 s}"
fi
# @c counts, @s sums of an argument (a map holds one kind).
cat >"$tmp/trace.bt" <<EOF
BEGIN { printf("ready\n"); }
$u:submit { @c["submit"] = count(); }
$u:submit_batch { @s["submit_batch"] = sum(arg1); }
$u:start { @c["start"] = count(); @s["start_attempts"] = sum(arg3); }
$u:finish {
	@c["finish"] = count();
	if (arg2 == 16) { @c["succeeded"] = count(); }
	if (arg2 == 17) { @c["failed"] = count(); @s["failed_code"] = sum(arg3); }
	if (arg2 == 18) { @c["cancelled"] = count(); }
	if (arg2 == 19) { @c["expired"] = count(); }
}
$u:retry { @c["retry"] = count(); @s["retry_attempts"] = sum(arg2); }
$u:expire { @c["expire"] = count(); }
$u:cancel { @c["cancel"] = count(); @s["cancel_rc"] = sum(arg2); }
$u:park { @c["park"] = count(); }
$u:wake { @c["wake"] = count(); }
EOF
bpftrace "$tmp/trace.bt" >"$tmp/bt.out" 2>"$tmp/bt.err" &
bt_pid=$!
i=0
until grep -q '^ready$' "$tmp/bt.out" 2>/dev/null; do
	i=$((i + 1))
	if ! kill -0 "$bt_pid" 2>/dev/null || [ $i -gt 300 ]; then
		echo "usdt: FAIL bpftrace did not start the trace:"
		grep -v 'RLIMIT_MEMLOCK' "$tmp/bt.err" | sed 's/^/        /'
		exit 1
	fi
	sleep 0.1
done
timeout 60 "$PROG" || { echo "usdt: FAIL $PROG"; fail=1; }
kill -INT "$bt_pid"
i=0
while kill -0 "$bt_pid" 2>/dev/null; do
	i=$((i + 1))
	[ $i -gt 300 ] && { echo "usdt: FAIL bpftrace did not stop"; exit 1; }
	sleep 0.1
done
wait "$bt_pid" 2>/dev/null
bt_pid=
sed -n 's/^@[cs]\[\(.*\)\]: \([0-9]*\)$/\1 \2/p' "$tmp/bt.out" | sort >"$tmp/got"
"$PROG" -n | sort >"$tmp/expected"
# Every expected count, exactly; park and wake in pairs.
while read -r name want; do
	got=$(sed -n "s/^$name //p" "$tmp/got")
	if [ "${got:-0}" != "$want" ]; then
		echo "usdt: FAIL $name fired ${got:-0} times (or summed so), want $want"
		fail=1
	fi
done <"$tmp/expected"
park=$(sed -n 's/^park //p' "$tmp/got")
wake=$(sed -n 's/^wake //p' "$tmp/got")
if [ "${park:-0}" != "${wake:-0}" ]; then
	echo "usdt: FAIL park fired ${park:-0} times, wake ${wake:-0}"
	fail=1
fi
[ $fail -eq 0 ] && echo "  usdt: bpftrace counted every probe of a run right" \
	"($(tr '\n' ' ' <"$tmp/got" | sed 's/ $//'))"
exit $fail
