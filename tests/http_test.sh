#!/bin/sh
# SPDX-License-Identifier: MIT
# examples/http_server driven over loopback with curl and raw bash /dev/tcp
# exchanges: routes, concurrency, keep-alive, pipelining, bad requests, a
# client that leaves mid-job, and a SIGTERM drain with jobs in flight.
#
# Started by `make check` (check-http) as `sh tests/http_test.sh`; it needs
# bash (for /dev/tcp) and curl, and skips without them. Every request is
# bounded by a timeout, a watchdog ends the whole run after WATCHDOG_S
# seconds, and the servers are killed on any exit path.
# shellcheck shell=bash

# /dev/tcp is bash's: re-run under bash when started by another sh.
if [ -z "${BASH_VERSION:-}" ]; then
	if ! command -v bash >/dev/null 2>&1; then
		echo "http: SKIP (bash not found; the raw-socket tests need it)"
		exit 0
	fi
	exec bash "$0" "$@"
fi
if ! command -v curl >/dev/null 2>&1; then
	echo "http: SKIP (curl not found; apt-get install curl)"
	exit 0
fi
set -u

SERVER=${HTTP_SERVER:-build/examples/http_server}
WATCHDOG_S=${WATCHDOG_S:-60}
[ -x "$SERVER" ] || { echo "http: $SERVER not built (make)"; exit 1; }

tmp=$(mktemp -d)
server_pid=
watchdog_pid=
pass=0
fail=0

cleanup() {
	if [ -n "$server_pid" ]; then
		# wait, so that bash reaps it without a "Killed" notice
		{ kill -KILL "$server_pid" && wait "$server_pid"; } 2>/dev/null
	fi
	[ -n "$watchdog_pid" ] && kill "$watchdog_pid" 2>/dev/null
	rm -rf "$tmp"
}
trap cleanup EXIT
trap 'echo "http: interrupted"; exit 1' INT TERM HUP

# The watchdog: a hang anywhere fails the run instead of blocking make. Its
# sleep holds no output descriptor, so it cannot keep a pipe open, and it
# is killed with the watchdog.
(
	trap 'kill "$sleep_pid" 2>/dev/null; exit 0' TERM
	sleep "$WATCHDOG_S" >/dev/null 2>&1 &
	sleep_pid=$!
	wait "$sleep_pid" && echo "http: FAIL watchdog: over ${WATCHDOG_S}s" &&
		kill -TERM $$
) &
watchdog_pid=$!

ok() { pass=$((pass + 1)); echo "  ok    $1"; }
bad() { fail=$((fail + 1)); echo "  FAIL  $1"; }
# expect NAME WANT GOT
expect() {
	if [ "$2" = "$3" ]; then ok "$1"; else bad "$1: want '$2', got '$3'"; fi
}

# start_server ARGS...: start it, set server_pid and PORT.
start_server() {
	"$SERVER" -p 0 "$@" >"$tmp/server.out" 2>"$tmp/server.err" &
	server_pid=$!
	PORT=
	for _ in $(seq 100); do
		PORT=$(sed -n 's/^listening on 127\.0\.0\.1:\([0-9]*\)$/\1/p' \
			"$tmp/server.out")
		[ -n "$PORT" ] && return 0
		kill -0 "$server_pid" 2>/dev/null || break
		sleep 0.05
	done
	echo "http: FAIL the server did not start:"
	cat "$tmp/server.err"
	exit 1
}

# wait_server: its exit status, or 124 if it has not exited in 10 s.
wait_server() {
	for _ in $(seq 200); do
		if ! kill -0 "$server_pid" 2>/dev/null; then
			wait "$server_pid"
			return $?
		fi
		sleep 0.05
	done
	return 124
}

# get PATH [CURL ARGS...]: "CODE BODY" (body on one line).
get() {
	local path="$1"
	shift
	local code
	code=$(curl -sS --max-time 10 -o "$tmp/body" -w '%{http_code}' "$@" \
		"http://127.0.0.1:$PORT$path") || code="curl-error"
	echo "$code $(tr '\n' ' ' <"$tmp/body" 2>/dev/null | sed 's/ $//')"
	rm -f "$tmp/body"
}

# counter NAME: one counter of GET /stats.
counter() {
	curl -sS --max-time 5 "http://127.0.0.1:$PORT/stats" |
		sed -n "s/^$1 //p"
}

# raw FD TEXT: send TEXT (printf escapes) on an open /dev/tcp descriptor.
# shellcheck disable=SC2059 # the format is the point: \r\n escapes
raw_send() { printf "$2" >&"$1"; }
# raw_read FD: everything until the server closes (10 s at most), CRs gone.
raw_read() { timeout 10 cat <&"$1" | tr -d '\r'; }

echo "  HTTP    $SERVER"
start_server

# ---- routes ------------------------------------------------------------------
expect "GET /health" "200 ok" "$(get /health)"
expect "GET /primes?n=1000" "200 168" "$(get '/primes?n=1000')"
expect "GET /primes?n=100000" "200 9592" "$(get '/primes?n=100000')"
expect "unknown path: 404" "404 not found" "$(get /nowhere)"
got=
for path in '/primes?n=0' '/primes?n=50000001' '/primes?n=12ab' /primes; do
	got="$got$(get "$path" | cut -c1-3) "
done
got=${got% }
expect "n out of range or malformed: 400" "400 400 400 400" "$got"
expect "POST: 405" "405 method not allowed" \
	"$(get /health -X POST -d 'some=body')"
big=$(printf '%9000s' '' | tr ' ' a)
expect "9000-byte header: 431" "431" \
	"$(get /health -H "X-Big: $big" | cut -d' ' -f1)"

# ---- heavy load: the loop stays responsive -----------------------------------
# 20 requests of n=2000000 (the check) and 6 of n=50000000 (enough work to
# keep the workers busy while /health is timed) at once.
load_pids=
for i in $(seq 20); do
	curl -sS --max-time 30 -o "$tmp/load.$i" \
		"http://127.0.0.1:$PORT/primes?n=2000000" 2>/dev/null &
	load_pids="$load_pids $!"
done
for i in $(seq 6); do
	curl -sS --max-time 30 -o "$tmp/long.$i" \
		"http://127.0.0.1:$PORT/primes?n=50000000" 2>/dev/null &
	load_pids="$load_pids $!"
done
slow=0
worst=0
for _ in $(seq 10); do
	t=$(curl -sS --max-time 5 -o "$tmp/h" -w '%{time_total}' \
		"http://127.0.0.1:$PORT/health") || t=9
	[ "$(cat "$tmp/h" 2>/dev/null)" = ok ] || t=9
	worst=$(awk -v a="$worst" -v b="$t" 'BEGIN { print (b > a) ? b : a }')
	awk -v t="$t" 'BEGIN { exit !(t < 1.0) }' || slow=$((slow + 1))
done
# shellcheck disable=SC2086
wait $load_pids
right=0
for i in $(seq 20); do
	[ "$(cat "$tmp/load.$i" 2>/dev/null)" = 148933 ] && right=$((right + 1))
done
for i in $(seq 6); do
	[ "$(cat "$tmp/long.$i" 2>/dev/null)" = 3001134 ] &&
		right=$((right + 1))
done
expect "26 concurrent heavy requests answered right" 26 "$right"
expect "10 /health under load, each under 1 s (slowest ${worst}s)" 0 "$slow"

# ---- GET /metrics ------------------------------------------------------------
# The pool's statistics as OpenMetrics text, after the 28 jobs above: a
# strict line check in awk (every line a TYPE, HELP, UNIT, sample or the
# final EOF; names valid; samples inside their family with the suffixes
# their type allows; buckets cumulative, +Inf equal to _count), figures
# that agree with /stats, then prometheus_client's own parser when the
# python3-prometheus-client package is there.
metrics_type=$(curl -sS --max-time 10 -o "$tmp/metrics" -w '%{content_type}' \
	"http://127.0.0.1:$PORT/metrics") || metrics_type=curl-error
expect "GET /metrics: OpenMetrics content type" \
	"application/openmetrics-text; version=1.0.0; charset=utf-8" \
	"$metrics_type"
submitted=$(counter submitted)
# shellcheck disable=SC2016 # awk's own $ fields
metrics_check=$(awk '
function fail(m) { print "line " NR ": " m ": " $0; err = 1 }
BEGIN { name = "^[a-zA-Z_:][a-zA-Z0-9_:]*$" }
eof { fail("a line after # EOF"); next }
$0 == "# EOF" { eof = 1; next }
/^# TYPE / {
	if (NF != 4 || $3 !~ name || ($3 in type) ||
	    $4 !~ /^(counter|gauge|histogram|summary)$/)
		fail("bad TYPE")
	type[$3] = $4; fam = $3; next
}
/^# (HELP|UNIT) / {
	if (NF < 4 || $3 != fam) fail("metadata of no current family")
	if ($2 == "UNIT" && $4 != "seconds") fail("bad UNIT")
	next
}
{
	if ($0 !~ /^[a-zA-Z_:][a-zA-Z0-9_:]*[{]pool="http"(,[a-z]+="[^"]*")?[}] [0-9]+([.][0-9]+)?$/) {
		fail("not a sample"); next
	}
	n = substr($0, 1, index($0, "{") - 1)
	if (fam == "" || substr(n, 1, length(fam)) != fam) {
		fail("sample outside its family"); next
	}
	sfx = substr(n, length(fam) + 1); t = type[fam]
	if (!((t == "counter" && sfx == "_total") || (t == "gauge" && sfx == "") ||
	      (t == "histogram" && sfx ~ /^_(bucket|count|sum)$/) ||
	      (t == "summary" && sfx ~ /^_(count|sum)$/)))
		fail("suffix \"" sfx "\" in a " t)
	v = $NF; key = substr($0, 1, length($0) - length(v) - 1); val[key] = v
	if (sfx == "_bucket") {
		if ((fam in last) && v + 0 < last[fam]) fail("buckets not cumulative")
		last[fam] = v + 0
		if (key ~ /le="[+]Inf"/) inf[fam] = v
	}
	if (t == "histogram" && sfx == "_count") cnt[fam] = v
	samples++
}
END {
	if (!eof) fail("no # EOF at the end")
	for (f in type)
		if (type[f] == "histogram" && (!(f in inf) || inf[f] != cnt[f]))
			fail(f ": +Inf bucket is not _count")
	printf "%s %d %s %s %s %s %s\n", err ? "bad" : "ok", samples,
	    val["libasyncq_jobs_submitted_total{pool=\"http\"}"],
	    val["libasyncq_jobs_resolved_total{pool=\"http\",outcome=\"succeeded\"}"],
	    cnt["libasyncq_job_run_seconds"],
	    val["libasyncq_jobs_queued{pool=\"http\"}"],
	    val["libasyncq_jobs_running{pool=\"http\"}"]
}' "$tmp/metrics")
printf '%s\n' "$metrics_check" | grep -v '^ok ' | sed 's/^/        /'
set -- $metrics_check
expect "GET /metrics: every line well-formed, ends in # EOF" ok "${1:-}"
expect "GET /metrics: submitted, succeeded, run count, queued, running" \
	"$submitted $submitted $submitted 0 0" "${3:-} ${4:-} ${5:-} ${6:-} ${7:-}"
expect "GET /metrics: ends with a newline" 1 \
	"$(tail -c 1 "$tmp/metrics" | wc -l | tr -d ' ')"
py=
for p in python3 /usr/bin/python3; do
	if command -v "$p" >/dev/null 2>&1 &&
		"$p" -c 'import prometheus_client.openmetrics.parser' 2>/dev/null; then
		py=$p
		break
	fi
done
if [ -n "$py" ]; then
	expect "GET /metrics: prometheus_client parses it, figures agree" \
		"$submitted $submitted" "$("$py" - "$tmp/metrics" <<'PY' 2>&1
import sys
from prometheus_client.openmetrics.parser import text_string_to_metric_families
got = {}
for fam in text_string_to_metric_families(open(sys.argv[1]).read()):
    for s in fam.samples:
        if s.name == "libasyncq_jobs_submitted_total":
            got["submitted"] = int(s.value)
        if s.name == "libasyncq_jobs_resolved_total":
            got["resolved"] = got.get("resolved", 0) + int(s.value)
print(got["submitted"], got["resolved"])
PY
)"
else
	echo "  SKIP  prometheus_client's parser: python3-prometheus-client" \
		"not installed (tests/deps.sh installs it as root)"
fi

# ---- connections -------------------------------------------------------------
# Two URLs on one curl command: the second reuses the first's connection
# (num_connects 0).
expect "keep-alive: second request on the same connection" "1 0" \
	"$(curl -sS --max-time 10 -o /dev/null -o /dev/null \
		-w '%{num_connects} ' "http://127.0.0.1:$PORT/health" \
		"http://127.0.0.1:$PORT/primes?n=1000" | sed 's/ $//')"

# Two pipelined requests sent before any answer is read, the first offloaded:
# answers come in order, and "Connection: close" on the second ends it.
exec 3<>"/dev/tcp/127.0.0.1/$PORT"
raw_send 3 'GET /primes?n=1000 HTTP/1.1\r\nHost: t\r\n\r\n'
raw_send 3 'GET /health HTTP/1.1\r\nHost: t\r\nConnection: close\r\n\r\n'
expect "pipelined: two answers in order, then close" \
	"HTTP/1.1 200 OK|168|HTTP/1.1 200 OK|ok" \
	"$(raw_read 3 | grep -E '^(HTTP|[0-9]+$|ok$)' | tr '\n' '|' |
		sed 's/|$//')"
exec 3<&-

# HTTP/1.0 without keep-alive: one answer, then the server closes.
exec 3<>"/dev/tcp/127.0.0.1/$PORT"
raw_send 3 'GET /health HTTP/1.0\r\n\r\n'
expect "HTTP/1.0: answered, Connection: close, closed" \
	"HTTP/1.1 200 OK|Connection: close|ok" \
	"$(raw_read 3 | grep -E '^(HTTP|Connection|ok$)' | tr '\n' '|' |
		sed 's/|$//')"
exec 3<&-

# HEAD: the head of the GET answer (Content-Length of its body), no body.
exec 3<>"/dev/tcp/127.0.0.1/$PORT"
raw_send 3 'HEAD /primes?n=1000 HTTP/1.1\r\nHost: t\r\n'
raw_send 3 'Connection: close\r\n\r\n'
raw_read 3 >"$tmp/head"
exec 3<&-
expect "HEAD /primes: Content-Length 4, no body" \
	"HTTP/1.1 200 OK|Content-Length: 4|0" \
	"$(grep -E '^(HTTP|Content-Length)' "$tmp/head" | tr '\n' '|')$(sed \
		'1,/^$/d' "$tmp/head" | wc -c)"

exec 3<>"/dev/tcp/127.0.0.1/$PORT"
raw_send 3 'GARBAGE\r\n\r\n'
expect "garbage request: 400, then closed" "HTTP/1.1 400 Bad Request" \
	"$(raw_read 3 | head -1)"
exec 3<&-

# A client that sends a heavy request and leaves at once: the job still
# runs and its callback finds the connection closed. The server must live.
before=$(counter submitted)
exec 3<>"/dev/tcp/127.0.0.1/$PORT"
raw_send 3 'GET /primes?n=50000000 HTTP/1.1\r\nHost: t\r\n\r\n'
exec 3<&-
for _ in $(seq 100); do
	[ "$(counter submitted)" != "$before" ] && [ "$(counter jobs)" = 0 ] &&
		break
	sleep 0.05
done
expect "client gone mid-job: job finished, server alive" "0 200 ok" \
	"$(counter jobs) $(get /health)"

# Idle shutdown: SIGTERM with nothing in flight, exit 0.
kill -TERM "$server_pid"
wait_server
expect "SIGTERM when idle: exit 0" 0 $?
server_pid=

# ---- SIGTERM with requests in flight -----------------------------------------
# One worker, five requests of about 50 ms each sent at once on five open
# connections, and SIGTERM as soon as /stats shows all five submitted. Each
# must be answered in full and the server must exit 0. The server logs how
# many jobs were in flight when the signal came; on the loop thread a job's
# answer is written either before the drain began (keep-alive, as the
# client asked) or after (Connection: close), so exactly that many answers
# say close. The drain path is only exercised if at least one job was still
# in flight: on a machine so slow that all five finished first, the round
# is run again (a precondition, not an outcome of the code under test).
drain_round() {
	start_server -w 1
	for fd in 3 4 5 6 7; do
		eval "exec $fd<>/dev/tcp/127.0.0.1/$PORT"
	done
	for fd in 3 4 5 6 7; do
		raw_send $fd 'GET /primes?n=50000000 HTTP/1.1\r\nHost: t\r\n\r\n'
	done
	for _ in $(seq 200); do
		[ "$(counter submitted)" = 5 ] && break
		sleep 0.01
	done
	kill -TERM "$server_pid"
	answered=0
	closes=0
	for fd in 3 4 5 6 7; do
		resp=$(raw_read $fd)
		eval "exec $fd<&-"
		printf '%s\n' "$resp" | grep -q '^HTTP/1.1 200 OK$' &&
			[ "$(printf '%s\n' "$resp" | tail -1)" = 3001134 ] &&
			answered=$((answered + 1))
		printf '%s\n' "$resp" | grep -q '^Connection: close$' &&
			closes=$((closes + 1))
	done
	wait_server
	status=$?
	server_pid=
	in_flight=$(sed -n 's/.*draining .*, \([0-9]*\) job(s)$/\1/p' \
		"$tmp/server.err")
}

rounds=0
while :; do
	rounds=$((rounds + 1))
	drain_round
	[ "${in_flight:-0}" -ge 1 ] || [ "$rounds" -ge 5 ] && break
done
expect "SIGTERM with ${in_flight:-?} of 5 jobs in flight: all 5 answered" \
	5 "$answered"
expect "SIGTERM: the ${in_flight:-?} answered after the drain began say close" \
	"${in_flight:-?}" "$closes"
expect "SIGTERM drain: exit 0" 0 "$status"
if [ "${in_flight:-0}" -ge 1 ]; then
	ok "SIGTERM came while jobs were in flight (round $rounds)"
else
	bad "SIGTERM came after the jobs were done in all $rounds rounds"
fi

echo "http: $pass passed, $fail failed"
[ "$fail" -eq 0 ]
