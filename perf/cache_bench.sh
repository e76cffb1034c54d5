#!/usr/bin/env bash
# Cache hits side by side: ringgate (routes[].cache), nginx (proxy_cache) and
# Varnish (malloc storage), each in front of the same origin (an nginx
# serving static 16 KiB and 1 MiB files with Cache-Control: max-age=3600),
# loaded in turn by wrk on 127.0.0.1 in the same run, with every request a
# cache hit (primed first, and checked: the origin must use no CPU during a
# run). Reports requests/s and CPU microseconds per request (the proxy's
# process tree, user+system from /proc over the run), with ratios to
# ringgate.
#
#   perf/cache_bench.sh [seconds-per-run (10)] [connections (50)] [rounds (1)]
#
# One worker each where the proxy has the notion (ringgate workers: 1, nginx
# worker_processes 1); Varnish has thread pools: with taskset, every proxy is
# pinned to CPU 0 and wrk to CPU 1, so each gets one core whatever its
# threads. nginx's proxy_cache keeps bodies in files (here under /tmp, read
# back through the page cache with sendfile); ringgate and Varnish keep them
# in memory.
#
# Needs: nginx wrk varnish curl (apt-get install nginx-light wrk varnish curl).
set -euo pipefail
cd "$(dirname "$0")/.."

DURATION=${1:-10}
CONNS=${2:-50}
ROUNDS=${3:-1}
BIN=${RINGGATE_BIN:-build/ringgate}
P_ORIGIN=19200
P_RG=19201
P_NG=19202
P_VA=19203
P_ADMIN=19204
PERF_NAME=cache_bench
. perf/lib.sh
perf_workdir ringgate-cache-bench

need_tools nginx wrk varnishd curl
[ -x "$BIN" ] || die "$BIN not built"
ports_free $P_ORIGIN $P_ADMIN
PIN_PROXY=()
PIN_LOAD=()
if command -v taskset >/dev/null && [ "$(nproc)" -ge 2 ]; then
    PIN_PROXY=(taskset -c 0)
    PIN_LOAD=(taskset -c 1)
fi

mkdir -p "$WORK/www"
head -c 16384 /dev/urandom > "$WORK/www/16k"
head -c 1048576 /dev/urandom > "$WORK/www/1m"

nginx_conf "$WORK/origin.conf" origin 1 4096 <<NGX
    sendfile on;
    keepalive_requests 1000000;
    server {
        listen 127.0.0.1:$P_ORIGIN;
        location / { root $WORK/www; default_type application/octet-stream;
                     add_header Cache-Control "public, max-age=3600"; }
    }
NGX

ringgate_conf "$WORK/ringgate.yaml" 1 $P_ADMIN <<YAML
listeners: [{name: bench, listen: "127.0.0.1:$P_RG"}]
limits: {max_connections: 0}
cache: {memory: 256MiB, max_object: 8MiB}
upstreams: [{name: origin, endpoints: ["127.0.0.1:$P_ORIGIN"], keepalive: 64}]
routes: [{upstream: origin, cache: true}]
YAML

nginx_conf "$WORK/nginx.conf" nginx 1 4096 <<NGX
    sendfile on;
    keepalive_requests 1000000;
    proxy_cache_path $WORK/nginx-cache levels=1:2 keys_zone=bench:16m max_size=256m inactive=1h;
    upstream origin { server 127.0.0.1:$P_ORIGIN; keepalive 64; }
    server {
        listen 127.0.0.1:$P_NG;
        location / {
            proxy_pass http://origin;
            proxy_http_version 1.1;
            proxy_set_header Connection "";
            proxy_cache bench;
            proxy_buffers 64 16k;
            add_header X-Cache \$upstream_cache_status;
        }
    }
NGX

cat > "$WORK/varnish.vcl" <<VCL
vcl 4.1;
backend origin { .host = "127.0.0.1"; .port = "$P_ORIGIN"; }
VCL

start origin nginx -c "$WORK/origin.conf"
ORIGIN_PID=$LAST_PID
wait_port $P_ORIGIN "$ORIGIN_PID"
start ringgate "${PIN_PROXY[@]}" "$BIN" -c "$WORK/ringgate.yaml"
RG_PID=$LAST_PID
start nginx "${PIN_PROXY[@]}" nginx -c "$WORK/nginx.conf"
NG_PID=$LAST_PID
start varnish "${PIN_PROXY[@]}" varnishd -F -j none -n "$WORK/varnish" -a "127.0.0.1:$P_VA" \
    -f "$WORK/varnish.vcl" -s malloc,256m -p thread_pools=1
VA_PID=$LAST_PID
wait_port $P_RG "$RG_PID"
wait_port $P_NG "$NG_PID"
wait_port $P_VA "$VA_PID"

port_of() { case $1 in ringgate) echo $P_RG ;; nginx) echo $P_NG ;; varnish) echo $P_VA ;; esac; }
pid_of() { case $1 in ringgate) echo "$RG_PID" ;; nginx) echo "$NG_PID" ;; varnish) echo "$VA_PID" ;; esac; }

# Two requests store the object; the third must be a hit.
prime() { # proxy path
    local url="http://127.0.0.1:$(port_of "$1")$2" head
    curl -s -o /dev/null "$url"
    curl -s -o /dev/null "$url"
    head=$(curl -s -D - -o /dev/null "$url" | tr -d '\r')
    case $1 in
    ringgate) grep -qi '^cache-status: ringgate; hit' <<<"$head" ;;
    nginx) grep -qi '^x-cache: HIT' <<<"$head" ;;
    varnish) grep -qiE '^x-varnish: [0-9]+ [0-9]+' <<<"$head" ;;
    esac || die "$1 $2: not a cache hit after priming:
$head"
}

declare -A RPS CPU
run() { # proxy path
    local pid out requests t0 t1 o0 o1 rps
    pid=$(pid_of "$1")
    prime "$1" "$2"
    "${PIN_LOAD[@]}" wrk -t1 -c"$CONNS" -d2s "http://127.0.0.1:$(port_of "$1")$2" > /dev/null
    t0=$(cpu_ticks "$pid")
    o0=$(cpu_ticks "$ORIGIN_PID")
    out=$("${PIN_LOAD[@]}" wrk -t1 -c"$CONNS" -d"${DURATION}s" "http://127.0.0.1:$(port_of "$1")$2")
    t1=$(cpu_ticks "$pid")
    o1=$(cpu_ticks "$ORIGIN_PID")
    requests=$(awk '/requests in/ {print $1}' <<<"$out")
    rps=$(awk '/^Requests\/sec:/ {print $2}' <<<"$out")
    grep -q "Non-2xx" <<<"$out" && die "$1 $2: non-2xx answers during the run:
$out"
    [ "$((o1 - o0))" -le "$HZ" ] ||
        warn "$1 $2: the origin used $(((o1 - o0) * 1000 / HZ)) ms of CPU during the run: not all hits?"
    RPS[$1$2]=$rps
    CPU[$1$2]=$(awk -v t=$((t1 - t0)) -v hz="$HZ" -v n="$requests" 'BEGIN {printf "%.2f", t / hz * 1e6 / n}')
}

echo "# cache hits, $ROUNDS round(s) of ${DURATION}s, $CONNS connections, wrk -t1$([ ${#PIN_LOAD[@]} -gt 0 ] && echo ', proxies on CPU 0, wrk on CPU 1')"
printf '%-6s %-9s %12s %14s %10s %10s\n' object proxy "requests/s" "CPU-us/req" "rps/rg" "cpu/rg"
for r in $(seq "$ROUNDS"); do
    for path in /16k /1m; do
        set -- ringgate nginx varnish
        for i in 0 1 2; do # the order rotates from round to round
            k=$(((i + r - 1) % 3 + 1))
            run "${!k}" "$path"
        done
        for p in ringgate nginx varnish; do
            printf '%-6s %-9s %12s %14s %10s %10s\n' "${path#/}" "$p" "${RPS[$p$path]}" \
                "${CPU[$p$path]}" \
                "$(awk -v a="${RPS[$p$path]}" -v b="${RPS[ringgate$path]}" 'BEGIN {printf "%.2f", a / b}')" \
                "$(awk -v a="${CPU[$p$path]}" -v b="${CPU[ringgate$path]}" 'BEGIN {printf "%.2f", a / b}')"
        done
    done
done
hits=$(ringgate_metric $P_ADMIN 'ringgate_cache_requests_total{result="hit"}')
echo "# ringgate counted $hits cache hits; ringgate_cache_bytes $(ringgate_metric $P_ADMIN ringgate_cache_bytes)"
