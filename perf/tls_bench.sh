#!/usr/bin/env bash
# TLS side-by-side benchmark: ringgate and nginx each terminate TLS with the
# same certificate (from tests/unit/fixtures/tls/gen-certs.sh) and proxy to
# the same origin (an nginx answering a fixed body from a file), one worker
# each, on 127.0.0.1, in the same run. Measures
#   (a) full handshakes per second (no resumption: openssl s_time -new) for
#       TLS 1.3 and 1.2, ECDSA P-256 and RSA 2048, with the proxy's CPU
#       microseconds per handshake;
#   (b) bulk throughput of 1 MiB responses over keep-alive TLS connections
#       (wrk https://), with the proxy's CPU milliseconds per MiB;
# CPU is the proxy process's user+system time from /proc/PID/stat over the
# run (nginx: its worker). Prints a table and the ratios ringgate/nginx.
#
#   perf/tls_bench.sh [seconds-per-run (5)] [s_time clients (2)]
#                     [wrk connections (16)] [body bytes (1048576)]
#
# Each measurement runs ROUNDS times (environment, 3), ringgate and nginx
# alternating, and the totals are reported: about 4 minutes with the
# defaults. RINGGATE_BIN picks the binary (build/ringgate).
#
# s_time is single-threaded and its side of a handshake (ECDSA verify, key
# share) costs about as much as the server's: run several at once to load
# the proxy, and compare CPU per handshake more than handshakes/s.
#
# Needs: nginx (nginx-light) wrk openssl curl (Debian packages).
set -euo pipefail
cd "$(dirname "$0")/.."

DURATION=${1:-5}
CLIENTS=${2:-2}
CONNS=${3:-16}
BODY=${4:-1048576}
ROUNDS=${ROUNDS:-3}
BIN=${RINGGATE_BIN:-build/ringgate}
ORIGIN_PORT=19120
PORT_RG_EC=19121
PORT_RG_RSA=19122
PORT_NG_EC=19123
PORT_NG_RSA=19124
PORT_ADMIN=19125
PERF_NAME=tls_bench
. perf/lib.sh
perf_workdir ringgate-tls-bench

missing=()
for tool in nginx wrk openssl curl; do
    command -v "$tool" >/dev/null || missing+=("$tool")
done
if [ ${#missing[@]} -gt 0 ]; then
    echo "tls_bench: missing ${missing[*]} (apt-get install nginx-light wrk openssl curl)" >&2
    exit 1
fi
[ -x "$BIN" ] || { echo "tls_bench: $BIN not built (cmake -S . -B build && cmake --build build)" >&2; exit 1; }

sh tests/unit/fixtures/tls/gen-certs.sh "$WORK/certs" >/dev/null 2>&1 ||
    { echo "tls_bench: gen-certs.sh failed" >&2; exit 1; }
chmod 755 "$WORK/certs"
chmod 644 "$WORK"/certs/*
C=$WORK/certs
head -c "$BODY" /dev/zero | tr '\0' 'x' > "$WORK/body"

# The same protocol settings on both sides: ringgate's TLS 1.2 cipher list
# and groups (gateway/tls.c). ringgate follows the client's cipher order
# (it sets no server preference), so nginx does too (its default): both
# negotiate the same suite, checked below. Sessions are cached and tickets
# issued on both, as by ringgate. Proxied responses stay in memory (no temp
# files), as in ringgate.
TLS12_CIPHERS="ECDHE-ECDSA-AES128-GCM-SHA256:ECDHE-RSA-AES128-GCM-SHA256:ECDHE-ECDSA-CHACHA20-POLY1305:ECDHE-RSA-CHACHA20-POLY1305:ECDHE-ECDSA-AES256-GCM-SHA384:ECDHE-RSA-AES256-GCM-SHA384"

nginx_conf "$WORK/origin.conf" origin 1 4096 <<NGX
    server {
        listen 127.0.0.1:$ORIGIN_PORT reuseport backlog=4096;
        keepalive_requests 1000000;
        location / { root $WORK; try_files /body =404; default_type application/octet-stream; }
    }
NGX

tls_server() { # port cert key
    cat <<NGX
    server {
        listen 127.0.0.1:$1 ssl reuseport backlog=4096;
        ssl_certificate $2;
        ssl_certificate_key $3;
        location / { proxy_pass http://origin; proxy_http_version 1.1; proxy_set_header Connection ""; }
    }
NGX
}

nginx_conf "$WORK/proxy.conf" proxy 1 4096 <<NGX
    keepalive_requests 1000000;
    proxy_buffer_size 16k;
    proxy_buffers 8 16k;
    proxy_max_temp_file_size 0;
    ssl_protocols TLSv1.2 TLSv1.3;
    ssl_ciphers $TLS12_CIPHERS;
    ssl_prefer_server_ciphers off;
    ssl_ecdh_curve X25519:prime256v1:secp384r1;
    ssl_session_cache shared:TLS:20m;
    ssl_session_tickets on;
    upstream origin { server 127.0.0.1:$ORIGIN_PORT; keepalive 64; }
$(tls_server $PORT_NG_EC "$C/ecdsa.pem" "$C/ecdsa.key")
$(tls_server $PORT_NG_RSA "$C/rsa.pem" "$C/rsa.key")
NGX

ringgate_conf "$WORK/ringgate.yaml" 1 $PORT_ADMIN <<RG
listeners:
  - name: ecdsa
    listen: 127.0.0.1:$PORT_RG_EC
    tls:
      certificates: [{cert: $C/ecdsa.pem, key: $C/ecdsa.key}]
  - name: rsa
    listen: 127.0.0.1:$PORT_RG_RSA
    tls:
      certificates: [{cert: $C/rsa.pem, key: $C/rsa.key}]
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

"$BIN" -t -c "$WORK/ringgate.yaml" || { echo "tls_bench: ringgate rejects its configuration" >&2; exit 1; }
start ringgate "$BIN" -c "$WORK/ringgate.yaml"
rg_pid=$LAST_PID
start nginx nginx -c "$WORK/proxy.conf"
ng_pid=$(child_of "$LAST_PID")
for p in $PORT_RG_EC $PORT_RG_RSA $PORT_NG_EC $PORT_NG_RSA $PORT_ADMIN; do wait_port "$p"; done

# Every endpoint must answer the whole body through TLS, with the same
# certificate and the same protocol choices, before anything is measured.
declare -A PORT=([ringgate-ecdsa]=$PORT_RG_EC [ringgate-rsa]=$PORT_RG_RSA
                 [nginx-ecdsa]=$PORT_NG_EC [nginx-rsa]=$PORT_NG_RSA)
declare -A NEG
echo "# negotiated (openssl s_client, default client settings, as s_time and wrk)"
for k in ringgate-ecdsa nginx-ecdsa ringgate-rsa nginx-rsa; do
    got=$(curl -sk --max-time 10 -o /dev/null -w '%{http_code} %{size_download}' "https://127.0.0.1:${PORT[$k]}/")
    if [ "$got" != "200 $BODY" ]; then
        echo "tls_bench: $k answered '$got', not '200 $BODY'" >&2
        exit 1
    fi
    for v in tls1_3 tls1_2; do
        info=$(openssl s_client -connect "127.0.0.1:${PORT[$k]}" -"$v" -CAfile "$C/ca.pem" \
                   -verify_return_error </dev/null 2>&1 || true)
        NEG[$k.$v]=$(echo "$info" | awk '
            /^New, / {proto = $2; sub(/,$/, "", proto); cipher = $NF}
            /^Server Temp Key:/ {sub(/^Server Temp Key: /, ""); key = $0}
            /^Peer signature type:/ {sig = $NF}
            /^Verification: OK/ {ok = "verified"}
            /^Verify return code: 0/ {ok = "verified"}
            END {printf "%s %s key=%s sig=%s %s", proto, cipher, key, sig, ok ? ok : "NOT VERIFIED"}')
        printf "%-15s %-7s %s\n" "$k" "$v" "${NEG[$k.$v]}"
    done
done
for cert in ecdsa rsa; do
    for v in tls1_3 tls1_2; do
        [ "${NEG[ringgate-$cert.$v]}" = "${NEG[nginx-$cert.$v]}" ] ||
            echo "tls_bench: WARNING: ringgate and nginx negotiate differently ($cert $v)" >&2
    done
done
echo

# Totals over the rounds, by "proxy-cert.version" (handshakes) or
# "proxy-cert" (bulk): operations, wall seconds, proxy CPU ticks.
declare -A HS_N HS_T HS_CPU BK_N BK_T BK_CPU

metric() { ringgate_metric $PORT_ADMIN "$1"; }

# (a) CLIENTS s_time processes at once, full handshakes only. Connections
# are counted from s_time's report, over the wall time measured here.
handshakes() { # key pid port version
    local key=$1 pid=$2 port=$3 v=$4 before after t0 t1 n=0 i c clients=()
    before=$(cpu_ticks "$pid")
    t0=$(date +%s.%N)
    for i in $(seq "$CLIENTS"); do
        openssl s_time -connect "127.0.0.1:$port" -new -"$v" -time "$DURATION" \
            > "$WORK/stime.$i" 2>&1 &
        clients+=($!)
    done
    for i in "${clients[@]}"; do wait "$i" || true; done
    t1=$(date +%s.%N)
    after=$(cpu_ticks "$pid")
    for i in $(seq "$CLIENTS"); do
        c=$(awk '/connections in .* real seconds/ {print $1}' "$WORK/stime.$i")
        if [ -z "$c" ] || grep -qiE 'error|unable' "$WORK/stime.$i"; then
            echo "tls_bench: s_time against $key $v failed:" >&2
            cat "$WORK/stime.$i" >&2
            exit 1
        fi
        n=$((n + c))
    done
    HS_N[$key.$v]=$(( ${HS_N[$key.$v]:-0} + n ))
    HS_T[$key.$v]=$(awk -v s="${HS_T[$key.$v]:-0}" -v a="$t0" -v b="$t1" 'BEGIN {printf "%.3f", s + b - a}')
    HS_CPU[$key.$v]=$(( ${HS_CPU[$key.$v]:-0} + after - before ))
}

# (b) BODY-byte responses over CONNS keep-alive TLS 1.3 connections.
bulk() { # key pid port
    local key=$1 pid=$2 port=$3 out before after reqs secs
    wrk -t1 -c"$CONNS" -d1s "https://127.0.0.1:$port/" >/dev/null # warm-up
    before=$(cpu_ticks "$pid")
    out=$(wrk -t1 -c"$CONNS" -d"${DURATION}s" "https://127.0.0.1:$port/")
    after=$(cpu_ticks "$pid")
    if echo "$out" | grep -qE 'Non-2xx|Socket errors'; then
        echo "tls_bench: $key answered errors:" >&2
        echo "$out" >&2
        exit 1
    fi
    reqs=$(echo "$out" | awk '/requests in/ {print $1}')
    secs=$(echo "$out" | awk '/requests in/ {v = $4; sub(/s,$/, "", v); print v}')
    BK_N[$key]=$(( ${BK_N[$key]:-0} + reqs ))
    BK_T[$key]=$(awk -v s="${BK_T[$key]:-0}" -v t="$secs" 'BEGIN {printf "%.3f", s + t}')
    BK_CPU[$key]=$(( ${BK_CPU[$key]:-0} + after - before ))
}

# Rounds alternate ringgate and nginx (who goes first alternates too), so
# that the load of a shared machine weighs on both alike.
fail_before=$(metric ringgate_tls_handshake_failures_total)
for r in $(seq "$ROUNDS"); do
    order="ringgate nginx"
    [ $((r % 2)) -eq 0 ] && order="nginx ringgate"
    for cert in ecdsa rsa; do
        for v in tls1_3 tls1_2; do
            for p in $order; do
                pid=$rg_pid
                [ "$p" = nginx ] && pid=$ng_pid
                handshakes "$p-$cert" "$pid" "${PORT[$p-$cert]}" $v
            done
        done
        for p in $order; do
            pid=$rg_pid
            [ "$p" = nginx ] && pid=$ng_pid
            bulk "$p-$cert" "$pid" "${PORT[$p-$cert]}"
        done
    done
done
fail_after=$(metric ringgate_tls_handshake_failures_total)

declare -A HS HSCPU MBS MBCPU
for p in ringgate nginx; do
    for cert in ecdsa rsa; do
        for v in tls1_3 tls1_2; do
            k=$p-$cert.$v
            HS[$k]=$(awk -v n="${HS_N[$k]}" -v t="${HS_T[$k]}" 'BEGIN {printf "%.0f", n / t}')
            HSCPU[$k]=$(awk -v c="${HS_CPU[$k]}" -v hz="$HZ" -v n="${HS_N[$k]}" 'BEGIN {printf "%.0f", c / hz * 1e6 / n}')
        done
        k=$p-$cert
        MBS[$k]=$(awk -v n="${BK_N[$k]}" -v t="${BK_T[$k]}" -v b="$BODY" 'BEGIN {printf "%.0f", n * b / 1048576 / t}')
        MBCPU[$k]=$(awk -v c="${BK_CPU[$k]}" -v hz="$HZ" -v n="${BK_N[$k]}" -v b="$BODY" \
            'BEGIN {printf "%.2f", c / hz * 1e3 / (n * b / 1048576)}')
    done
done

echo "# ringgate vs nginx terminating TLS: $ROUNDS rounds of ${DURATION}s per run, 1 worker each, 127.0.0.1"
echo "# handshakes: $CLIENTS x openssl s_time -new (full handshakes, no resumption)"
printf "%-15s %-7s %14s %12s\n" proxy version "handshakes/s" "CPU-us/hs"
for cert in ecdsa rsa; do
    for v in tls1_3 tls1_2; do
        for p in ringgate nginx; do
            printf "%-15s %-7s %14s %12s\n" "$p-$cert" "$v" "${HS[$p-$cert.$v]}" "${HSCPU[$p-$cert.$v]}"
        done
    done
done
echo
echo "# bulk: wrk -t1 -c$CONNS, $BODY-byte responses over keep-alive TLS 1.3"
printf "%-15s %10s %12s\n" proxy "MiB/s" "CPU-ms/MiB"
for cert in ecdsa rsa; do
    for p in ringgate nginx; do
        printf "%-15s %10s %12s\n" "$p-$cert" "${MBS[$p-$cert]}" "${MBCPU[$p-$cert]}"
    done
done
echo
echo "# ratios (ringgate / nginx): rates higher is better, CPU lower is better"
for cert in ecdsa rsa; do
    for v in tls1_3 tls1_2; do
        awk -v a="${HS[ringgate-$cert.$v]}" -v b="${HS[nginx-$cert.$v]}" \
            -v c="${HSCPU[ringgate-$cert.$v]}" -v d="${HSCPU[nginx-$cert.$v]}" -v n="$cert $v" \
            'BEGIN {printf "%-13s handshakes/s x%.2f   CPU/handshake x%.2f\n", n, a/b, c/d}'
    done
    awk -v a="${MBS[ringgate-$cert]}" -v b="${MBS[nginx-$cert]}" \
        -v c="${MBCPU[ringgate-$cert]}" -v d="${MBCPU[nginx-$cert]}" -v n="$cert bulk" \
        'BEGIN {printf "%-13s MiB/s x%.2f          CPU/MiB x%.2f\n", n, a/b, c/d}'
done
echo
echo "ringgate_tls_handshake_failures_total during the runs: $((fail_after - fail_before))"
if [ -s "$WORK/ringgate.out" ]; then
    echo "# ringgate log:"
    tail -n 20 "$WORK/ringgate.out"
fi
