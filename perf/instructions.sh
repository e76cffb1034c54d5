#!/usr/bin/env bash
# User-space instructions per proxied request: ringgate under callgrind
# (valgrind) in front of an nginx origin, wrk on 127.0.0.1. Unlike CPU time,
# an instruction count does not move with the load of a shared machine: it
# shows what a change to the request path saves in ringgate's own code, where
# the harness's CPU-µs per request cannot resolve a few percent. The kernel's
# work (system calls, TCP) is not counted: the harness measures it.
#
#     perf/instructions.sh [binary (build/ringgate)] [seconds (10)] [connections (8)]
#
# Prints the requests measured, the instructions per request, the loop turns
# per request (callgrind slows ringgate, so its turns batch more requests
# than at full speed: compare builds with this script, not with the harness),
# and the functions costing most (their own instructions per request).
set -euo pipefail
cd "$(dirname "$0")/.."

PERF_NAME=instructions
# shellcheck source=perf/lib.sh
. perf/lib.sh

BIN=${1:-build/ringgate}
SECS=${2:-10}
CONNS=${3:-8}
ORIGIN_PORT=18200
PROXY_PORT=18201

need_tools valgrind callgrind_control callgrind_annotate nginx wrk
[ -x "$BIN" ] || die "no binary $BIN (make build)"
ports_free "$ORIGIN_PORT" "$PROXY_PORT"
perf_workdir ringgate-instructions

nginx_conf "$WORK/origin.conf" origin 1 1024 <<EOF
    keepalive_requests 1000000;
    server {
        listen 127.0.0.1:$ORIGIN_PORT;
        location / { default_type text/plain;
                     return 200 "ringgate perf origin: a fixed answer of 128 bytes 000000000000000000000000000000000000000000000000000000000000000000000000000000"; }
    }
EOF
start origin nginx -c "$WORK/origin.conf"
wait_port "$ORIGIN_PORT" "$LAST_PID"

ringgate_conf "$WORK/ringgate.yaml" 1 <<EOF
listeners:
  - {name: plain, listen: 127.0.0.1:$PROXY_PORT}
upstreams:
  - {name: origin, endpoints: [127.0.0.1:$ORIGIN_PORT], keepalive: 64}
routes:
  - {name: plain, match: {prefix: /}, upstream: origin}
EOF
start ringgate valgrind --tool=callgrind --callgrind-out-file="$WORK/callgrind.out" \
    "$BIN" -c "$WORK/ringgate.yaml"
RINGGATE=$LAST_PID
wait_port "$PROXY_PORT" "$RINGGATE"

url=http://127.0.0.1:$PROXY_PORT/small
timeout 60 wrk -t1 -c"$CONNS" -d2s "$url" > /dev/null # warm-up: pools, buffers
callgrind_control -z "$RINGGATE" > /dev/null 2>&1
timeout $((SECS + 60)) wrk -t1 -c"$CONNS" -d"${SECS}s" "$url" > "$WORK/wrk.out"
callgrind_control -d "$RINGGATE" > /dev/null 2>&1

requests=$(awk '/requests in/ {print $1}' "$WORK/wrk.out")
[ "${requests:-0}" -gt 0 ] || die "wrk made no request: $(cat "$WORK/wrk.out")"
dump=$WORK/callgrind.out.1
[ -s "$dump" ] || die "callgrind wrote no dump"
callgrind_annotate --inclusive=no --tree=none --threshold=100 "$dump" > "$WORK/annotate.txt" 2>/dev/null
total=$(awk '/PROGRAM TOTALS/ {gsub(",", "", $1); print $1}' "$WORK/annotate.txt")
turns=$(grep -A3 'io_uring_submit_and_wait_timeout$' "$dump" | awk -F'[= ]' '/^calls=/ {print $2; exit}')

echo "binary:   $BIN ($("$BIN" -V 2>/dev/null | head -1))"
echo "requests: $requests (wrk -t1 -c$CONNS, ${SECS}s, under callgrind)"
echo "instructions per request: $((total / requests))"
[ -n "$turns" ] && awk -v t="$turns" -v r="$requests" 'BEGIN {printf "loop turns per request: %.2f\n", t / r}'
echo "own instructions per request, by function:"
awk -v r="$requests" '
    /^ *[0-9,]+ +\(/ && !/PROGRAM TOTALS/ && !/clone|start_thread/ {
        n = $1; gsub(",", "", n); name = $(NF - 1); sub(/^.*:/, "", name)
        if (shown++ < 20) printf "  %7d  %s\n", n / r, name
    }' "$WORK/annotate.txt"
