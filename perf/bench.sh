#!/usr/bin/env bash
# Side-by-side benchmark: ringgate, nginx and HAProxy as reverse proxies in
# front of the same origin (an nginx answering a fixed body), one worker
# each, loaded in turn by wrk on 127.0.0.1 in the same run. Reports
# requests/s, CPU microseconds per request (the proxy process's user+system
# time from /proc over the run) and p99 latency, with ratios to ringgate.
#
#   perf/bench.sh [seconds-per-run (10)] [connections (50)] [body bytes (1024)]
#
# Needs: nginx-light haproxy wrk (scripts/install-deps.sh test, plus haproxy).
set -euo pipefail
cd "$(dirname "$0")/.."

DURATION=${1:-10}
CONNS=${2:-50}
BODY=${3:-1024}
BIN=${RINGGATE_BIN:-build/ringgate}
ORIGIN_PORT=19100
PORT_RG=19101
PORT_NGINX=19102
PORT_HAPROXY=19103
PERF_NAME=bench
. perf/lib.sh
perf_workdir ringgate-bench

need_tools nginx haproxy wrk
[ -x "$BIN" ] || { echo "bench: $BIN not built" >&2; exit 1; }

head -c "$BODY" /dev/zero | tr '\0' 'x' > "$WORK/body"

nginx_conf_server() { # $1: port, $2: server block body, $3: prefix
    nginx_conf "$WORK/$3.conf" "$3" 1 4096 <<NGX
    upstream origin { server 127.0.0.1:$ORIGIN_PORT; keepalive 64; }
    server { listen 127.0.0.1:$1 reuseport backlog=4096; $2 }
NGX
}

nginx_conf_server $ORIGIN_PORT "location / { root $WORK; try_files /body =404; default_type text/plain; }" origin
nginx_conf_server $PORT_NGINX "location / { proxy_pass http://origin; proxy_http_version 1.1; proxy_set_header Connection \"\"; }" proxy

haproxy_conf "$WORK/haproxy.cfg" 1 4096 <<HAP
frontend fe
    bind 127.0.0.1:$PORT_HAPROXY
    default_backend be
backend be
    server o1 127.0.0.1:$ORIGIN_PORT
HAP

ringgate_conf "$WORK/ringgate.yaml" 1 <<RG
listeners:
  - name: bench
    listen: 127.0.0.1:$PORT_RG
upstreams:
  - name: origin
    endpoints: [127.0.0.1:$ORIGIN_PORT]
    keepalive: 64
routes:
  - match: {prefix: /}
    upstream: origin
RG

start origin nginx -c "$WORK/origin.conf"
wait_port $ORIGIN_PORT

start ringgate "$BIN" -c "$WORK/ringgate.yaml"
rg_pid=$LAST_PID
start nginx nginx -c "$WORK/proxy.conf"
ng_master=$LAST_PID
ng_pid=$(child_of "$ng_master")
start haproxy haproxy -f "$WORK/haproxy.cfg"
hp_pid=$LAST_PID
wait_port $PORT_RG
wait_port $PORT_NGINX
wait_port $PORT_HAPROXY

declare -A RPS CPU P99

run() { # name pid port
    local name=$1 pid=$2 port=$3 out before after reqs
    wrk -t1 -c"$CONNS" -d1s "http://127.0.0.1:$port/" >/dev/null # warm-up
    before=$(cpu_ticks "$pid")
    out=$(wrk -t1 -c"$CONNS" -d"${DURATION}s" --latency "http://127.0.0.1:$port/")
    after=$(cpu_ticks "$pid")
    reqs=$(echo "$out" | awk '/requests in/ {print $1}')
    if echo "$out" | grep -q 'Non-2xx'; then
        echo "bench: $name answered errors:" >&2
        echo "$out" >&2
        exit 1
    fi
    RPS[$name]=$(echo "$out" | awk '/Requests\/sec/ {print $2}')
    CPU[$name]=$(awk -v t=$((after - before)) -v hz="$HZ" -v n="$reqs" 'BEGIN {printf "%.2f", t / hz * 1e6 / n}')
    P99[$name]=$(echo "$out" | awk '$1 == "99%" {v=$2; if (v ~ /us$/) {sub(/us/,"",v); v/=1000} else if (v ~ /ms$/) {sub(/ms/,"",v)} else if (v ~ /s$/) {sub(/s/,"",v); v*=1000}; printf "%.3f", v}')
}

run ringgate "$rg_pid" $PORT_RG
run nginx "$ng_pid" $PORT_NGINX
run haproxy "$hp_pid" $PORT_HAPROXY

echo "# ringgate vs nginx vs HAProxy: ${DURATION}s per run, $CONNS connections, ${BODY}-byte body, 1 worker each, wrk -t1"
printf "%-10s %12s %14s %10s\n" proxy "requests/s" "CPU-us/req" "p99 ms"
for n in ringgate nginx haproxy; do
    printf "%-10s %12s %14s %10s\n" "$n" "${RPS[$n]}" "${CPU[$n]}" "${P99[$n]}"
done
echo
echo "# ratios (ringgate / other): requests/s higher is better; CPU and p99 lower is better"
for n in nginx haproxy; do
    awk -v a="${RPS[ringgate]}" -v b="${RPS[$n]}" -v c="${CPU[ringgate]}" -v d="${CPU[$n]}" \
        -v e="${P99[ringgate]}" -v f="${P99[$n]}" -v name="$n" \
        'BEGIN {printf "vs %-8s requests/s x%.2f   CPU/req x%.2f   p99 x%.2f\n", name, a/b, c/d, e/f}'
done
