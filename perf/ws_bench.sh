#!/usr/bin/env bash
# WebSocket side-by-side benchmark: ringgate (a `websocket: true` route) and
# nginx (proxy_pass with the Upgrade/Connection headers) in front of the same
# echo origin (perf/ws_echo.c: one thread, epoll), one worker each, on
# 127.0.0.1, in the same run. The load is perf/ws_client.c: TUNNELS
# WebSocket tunnels, each sending a small masked text frame, waiting for its
# echo (checked byte for byte) and sending the next, for a fixed time. For
# each proxy: messages/s, p50/p99 round-trip latency, and the proxy's CPU
# microseconds per message (user+system time from /proc/PID/stat over the
# measured window; nginx: its worker). The same load straight to the origin
# ("direct") shows what the client and the origin can do without a proxy.
# Prints a table and the ratios ringgate/nginx.
#
#   perf/ws_bench.sh [seconds-per-run (10)] [tunnels (1000)] [message bytes (32)]
#
# Each measurement runs ROUNDS times (environment, 3), the order of direct,
# ringgate and nginx rotating from round to round, so that the load of a
# shared machine weighs on each alike: messages/s and CPU per message are
# totals over the rounds, latencies the median of the rounds' figures.
# About 2 minutes with the defaults. RINGGATE_BIN picks the binary
# (build/ringgate).
#
# Needs: nginx (nginx-light) curl cc (Debian packages).
set -euo pipefail
cd "$(dirname "$0")/.."

DURATION=${1:-10}
TUNNELS=${2:-1000}
SIZE=${3:-32}
ROUNDS=${ROUNDS:-3}
WARMUP=${WARMUP:-2}
BIN=${RINGGATE_BIN:-build/ringgate}
ORIGIN_PORT=19140
PORT_RG=19141
PORT_NGINX=19142
PORT_ADMIN=19143
PERF_NAME=ws_bench
. perf/lib.sh
perf_workdir ringgate-ws-bench

missing=()
for tool in nginx curl cc; do
    command -v "$tool" >/dev/null || missing+=("$tool")
done
if [ ${#missing[@]} -gt 0 ]; then
    echo "ws_bench: missing ${missing[*]} (apt-get install nginx-light curl gcc)" >&2
    exit 1
fi
[ -x "$BIN" ] || { echo "ws_bench: $BIN not built (cmake -S . -B build && cmake --build build)" >&2; exit 1; }

# Descriptors: a proxy holds 2 per tunnel, the client and the origin 1.
# The processes started below inherit this shell's soft limit.
NEED_FDS=$((2 * TUNNELS + 256))
soft=$(ulimit -Sn)
hard=$(ulimit -Hn)
if [ "$soft" != unlimited ] && [ "$soft" -lt "$NEED_FDS" ]; then
    if [ "$hard" != unlimited ] && [ "$hard" -lt "$NEED_FDS" ]; then
        echo "ws_bench: $TUNNELS tunnels need $NEED_FDS descriptors; the hard limit is $hard" >&2
        exit 1
    fi
    ulimit -Sn "$NEED_FDS"
    echo "# raised the soft descriptor limit from $soft to $NEED_FDS"
fi
read -r port_lo port_hi < /proc/sys/net/ipv4/ip_local_port_range
if [ $((port_hi - port_lo)) -lt $((3 * TUNNELS)) ]; then
    echo "ws_bench: WARNING: ip_local_port_range $port_lo-$port_hi is narrow for $TUNNELS tunnels" >&2
fi

cc -O2 -Wall -o "$WORK/ws_echo" perf/ws_echo.c -lpthread
cc -O2 -Wall -o "$WORK/ws_client" perf/ws_client.c

# nginx: 1 worker, enough connections and descriptors for every tunnel,
# no timeout that a 10 s run could meet. Temporary files in WORK.
nginx_conf "$WORK/nginx.conf" nginx 1 "$NEED_FDS" "$NEED_FDS" <<NGX
    server {
        listen 127.0.0.1:$PORT_NGINX reuseport backlog=4096;
        location / {
            proxy_pass http://127.0.0.1:$ORIGIN_PORT;
            proxy_http_version 1.1;
            proxy_set_header Upgrade \$http_upgrade;
            proxy_set_header Connection "upgrade";
            proxy_read_timeout 1h;
            proxy_send_timeout 1h;
        }
    }
NGX

# ringgate: 1 worker; the upstream's connection caps (1024 connections,
# 256 being opened, by default) lifted, as nginx has none.
ringgate_conf "$WORK/ringgate.yaml" 1 $PORT_ADMIN <<RG
listeners:
  - name: bench
    listen: 127.0.0.1:$PORT_RG
upstreams:
  - name: echo
    endpoints: [127.0.0.1:$ORIGIN_PORT]
    circuit_breaker: {max_connections: 0, max_pending: 0}
routes:
  - name: ws
    match: {prefix: /}
    upstream: echo
    websocket: true
RG

metric() { ringgate_metric $PORT_ADMIN "$1"; }

start origin "$WORK/ws_echo" $ORIGIN_PORT
origin_pid=$LAST_PID
wait_port $ORIGIN_PORT
"$BIN" -t -c "$WORK/ringgate.yaml" > "$WORK/check.out" 2>&1 ||
    { cat "$WORK/check.out" >&2; echo "ws_bench: ringgate rejects its configuration" >&2; exit 1; }
start ringgate "$BIN" -c "$WORK/ringgate.yaml"
rg_pid=$LAST_PID
start nginx nginx -c "$WORK/nginx.conf"
ng_pid=$(child_of "$LAST_PID")
for p in $PORT_RG $PORT_NGINX $PORT_ADMIN; do wait_port "$p"; done

declare -A PORT=([direct]=$ORIGIN_PORT [ringgate]=$PORT_RG [nginx]=$PORT_NGINX)
declare -A PID=([direct]=0 [ringgate]=$rg_pid [nginx]=$ng_pid)
declare -A RSS0=([direct]=0 [ringgate]=$(rss_kb "$rg_pid") [nginx]=$(rss_kb "$ng_pid"))

field() { echo "$1" | tr ' ' '\n' | awk -F= -v k="$2" '$1 == k {print $2}'; }

# Messages and close frames through ringgate, to check its byte counters.
all_msgs=0
closes=0

# One tunnel through each first: the handshake and an echo must work.
for k in direct ringgate nginx; do
    if ! out=$("$WORK/ws_client" -p "${PORT[$k]}" -n 1 -d 0.2 -w 0 2> "$WORK/check.out"); then
        echo "ws_bench: one tunnel through $k fails:" >&2
        cat "$WORK/check.out" >&2
        exit 1
    fi
    if [ "$k" = ringgate ]; then
        all_msgs=$((all_msgs + $(field "$out" all_msgs)))
        closes=$((closes + $(field "$out" closes_sent)))
    fi
done

# Totals over the rounds, by target: messages, seconds, CPU ticks of the
# proxy, of the origin and of the client (µs), and each round's latencies.
declare -A N T PT OT CT P50S P99S P999S OPENS RSS MINT MAXT BUSY
failed=0

echo "# ws_bench: $ROUNDS rounds of ${DURATION}s (after ${WARMUP}s of warm-up), $TUNNELS tunnels, ${SIZE}-byte text messages, 1 worker each, 127.0.0.1"
for r in $(seq "$ROUNDS"); do
    case $((r % 3)) in
    1) order="direct ringgate nginx" ;;
    2) order="ringgate nginx direct" ;;
    0) order="nginx direct ringgate" ;;
    esac
    for k in $order; do
        if ! out=$("$WORK/ws_client" -p "${PORT[$k]}" -n "$TUNNELS" -s "$SIZE" -d "$DURATION" \
                       -w "$WARMUP" -P "${PID[$k]}" -O "$origin_pid" 2> "$WORK/client.err"); then
            echo "ws_bench: round $r, $k: the client failed:" >&2
            cat "$WORK/client.err" >&2
            [ -n "$out" ] && echo "$out" >&2
            failed=1
            continue
        fi
        [ -s "$WORK/client.err" ] && sed "s/^/ws_bench: round $r, $k: /" "$WORK/client.err" >&2
        printf "round %d %-9s %s\n" "$r" "$k" "$(field "$out" rate) msg/s, p50 $(field "$out" p50_us) us, p99 $(field "$out" p99_us) us, proxy $(field "$out" proxy_pct)% origin $(field "$out" origin_pct)% client $(field "$out" client_pct)% of a core"
        N[$k]=$(( ${N[$k]:-0} + $(field "$out" msgs) ))
        T[$k]=$(awk -v s="${T[$k]:-0}" -v t="$(field "$out" secs)" 'BEGIN {printf "%.3f", s + t}')
        PT[$k]=$(( ${PT[$k]:-0} + $(field "$out" proxy_ticks) ))
        OT[$k]=$(( ${OT[$k]:-0} + $(field "$out" origin_ticks) ))
        CT[$k]=$(awk -v s="${CT[$k]:-0}" -v c="$(field "$out" client_cpu_us)" -v n="$(field "$out" msgs)" 'BEGIN {printf "%.0f", s + c * n}')
        P50S[$k]="${P50S[$k]:-} $(field "$out" p50_us)"
        P99S[$k]="${P99S[$k]:-} $(field "$out" p99_us)"
        P999S[$k]="${P999S[$k]:-} $(field "$out" p999_us)"
        OPENS[$k]="${OPENS[$k]:-} $(field "$out" handshake_s)"
        # The origin or the client at a full core: it, not the proxy, set the pace.
        for who in origin client; do
            [ "$k" != direct ] && [ "$(field "$out" ${who}_pct)" -ge 95 ] && BUSY[$k]="${BUSY[$k]:-} $who(round $r)"
        done
        RSS[$k]=$(field "$out" proxy_rss_kb)
        m=$(field "$out" per_tunnel_min); M=$(field "$out" per_tunnel_max)
        [ -z "${MINT[$k]:-}" ] || [ "$m" -lt "${MINT[$k]}" ] && MINT[$k]=$m
        [ -z "${MAXT[$k]:-}" ] || [ "$M" -gt "${MAXT[$k]}" ] && MAXT[$k]=$M
        if [ "$(field "$out" closed_clean)" != "$TUNNELS" ]; then
            echo "ws_bench: round $r, $k: $(field "$out" closed_clean) of $TUNNELS tunnels closed cleanly" >&2
        fi
        if [ "$k" = ringgate ]; then
            all_msgs=$((all_msgs + $(field "$out" all_msgs)))
            closes=$((closes + $(field "$out" closes_sent)))
        fi
    done
done
[ "$failed" = 0 ] || { echo "ws_bench: a run failed; no figures" >&2; exit 1; }

median() { echo "$@" | tr ' ' '\n' | sed '/^$/d' | sort -g | awk '{v[NR] = $1} END {print (NR % 2) ? v[(NR + 1) / 2] : (v[NR / 2] + v[NR / 2 + 1]) / 2}'; }

declare -A RATE CPU OCPU CCPU P50 P99 P999 OPEN
for k in direct ringgate nginx; do
    RATE[$k]=$(awk -v n="${N[$k]}" -v t="${T[$k]}" 'BEGIN {printf "%.0f", n / t}')
    CPU[$k]=$(awk -v c="${PT[$k]}" -v hz="$HZ" -v n="${N[$k]}" 'BEGIN {printf "%.2f", c / hz * 1e6 / n}')
    OCPU[$k]=$(awk -v c="${OT[$k]}" -v hz="$HZ" -v n="${N[$k]}" 'BEGIN {printf "%.2f", c / hz * 1e6 / n}')
    CCPU[$k]=$(awk -v c="${CT[$k]}" -v n="${N[$k]}" 'BEGIN {printf "%.2f", c / n}')
    P50[$k]=$(median "${P50S[$k]}")
    P99[$k]=$(median "${P99S[$k]}")
    P999[$k]=$(median "${P999S[$k]}")
    OPEN[$k]=$(median "${OPENS[$k]}")
done
[ "${CPU[direct]}" = 0.00 ] && CPU[direct]=-

echo
echo "# totals over $ROUNDS rounds; latencies: median of the rounds' percentiles (ms); CPU: µs per message"
printf "%-9s %10s %9s %9s %9s %11s %10s %10s %14s %8s\n" target "msgs/s" "p50 ms" "p99 ms" "p99.9 ms" "proxy CPU" "origin CPU" "client CPU" "msgs/tunnel" "open s"
for k in direct ringgate nginx; do
    printf "%-9s %10s %9.2f %9.2f %9.2f %11s %10s %10s %14s %8s\n" "$k" "${RATE[$k]}" \
        "$(awk -v v="${P50[$k]}" 'BEGIN {print v / 1000}')" "$(awk -v v="${P99[$k]}" 'BEGIN {print v / 1000}')" \
        "$(awk -v v="${P999[$k]}" 'BEGIN {print v / 1000}')" "${CPU[$k]}" "${OCPU[$k]}" "${CCPU[$k]}" \
        "${MINT[$k]}-${MAXT[$k]}" "${OPEN[$k]}"
done
echo "(msgs/tunnel: fewest and most messages one tunnel completed in a round's window;"
echo " open s: seconds to open the $TUNNELS tunnels, 100 handshakes at a time, median of the rounds)"
for k in ringgate nginx; do
    [ -n "${BUSY[$k]:-}" ] && echo "ws_bench: WARNING: through $k, a full core for:${BUSY[$k]}: the proxy was not the only limit" >&2
done
echo
echo "# proxy memory with $TUNNELS tunnels open (VmRSS at the end of the last window, less before the first)"
for k in ringgate nginx; do
    awk -v a="${RSS[$k]}" -v b="${RSS0[$k]}" -v n="$TUNNELS" -v k="$k" \
        'BEGIN {printf "%-9s %8d KiB (+%d KiB, %.1f KiB per tunnel)\n", k, a, a - b, (a - b) / n}'
done
echo
echo "# ratios (ringgate / nginx): messages/s higher is better, latency and CPU lower is better"
awk -v a="${RATE[ringgate]}" -v b="${RATE[nginx]}" -v c="${CPU[ringgate]}" -v d="${CPU[nginx]}" \
    -v e="${P50[ringgate]}" -v f="${P50[nginx]}" -v g="${P99[ringgate]}" -v h="${P99[nginx]}" \
    'BEGIN {printf "messages/s x%.2f   p50 x%.2f   p99 x%.2f   CPU/message x%.2f\n", a/b, e/f, g/h, c/d}'

# ringgate's own account: every tunnel closed, and the bytes it relayed are
# the frames the client sent (S+6 bytes a message, 8 a close) and received
# (S+2, 4 a close).
sleep 1
echo
echo "# ringgate after the runs"
active=$(metric ringgate_tunnels_active)
conns=$(metric ringgate_connections_active)
up=$(metric 'ringgate_tunnel_bytes_total{direction="upstream"}')
down=$(metric 'ringgate_tunnel_bytes_total{direction="downstream"}')
exp_up=$((all_msgs * (SIZE + 6) + closes * 8))
exp_down=$((all_msgs * (SIZE + 2) + closes * 4))
echo "ringgate_tunnels_active $active, ringgate_connections_active $conns (both 0 expected)"
echo "ringgate_tunnel_bytes_total upstream $up (frames sent: $exp_up), downstream $down (frames echoed: $exp_down)"
[ "$active" = 0 ] && [ "$conns" = 0 ] || echo "ws_bench: WARNING: ringgate still counts open tunnels or connections" >&2
[ "$up" = "$exp_up" ] && [ "$down" = "$exp_down" ] || echo "ws_bench: WARNING: ringgate's tunnel byte counts differ from the frames relayed" >&2
for f in ringgate.out nginx.err; do
    if [ -s "$WORK/$f" ]; then
        echo "# $f:"
        tail -n 10 "$WORK/$f"
    fi
done
