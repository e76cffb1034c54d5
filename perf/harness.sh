#!/usr/bin/env bash
# The performance harness of issue #12 (`make bench`): ringgate beside nginx
# and HAProxy, equivalent configurations, one worker each, the same origin,
# the same load, interleaved over rounds so that the drift of a shared
# machine weighs on each alike. Writes the raw per-round figures and, from
# them, perf/results/REPORT.md and PNG charts (perf/report.py).
#
#   perf/harness.sh                  # or: make bench
#
# Environment:
#   ROUNDS=3        rounds; each runs every scenario, targets in turn (A B C,
#                   then B C A, ...); the report takes the median over rounds
#   SECONDS=5       seconds of each measured wrk run (DURATION too), after a
#                   1 s warm-up on the same connections
#   SCENARIOS=...   a subset of: small 16k 1m close c1000 jwt ratelimit schema
#                   tls workers cache idle idle100k (default: all of them)
#   QUICK=1         1 round of 2 s, no idle100k: for development
#   IDLE_N=10000    idle keep-alive connections for `idle` (each proxy)
#   IDLE_BIG=100000 idle connections for `idle100k` (ringgate only)
#   RESULTS=perf/results   where the TSVs, REPORT.md and the PNGs go
#   RINGGATE_BIN=build/ringgate
#   BASELINE_BIN=   another ringgate binary (say, a build of the previous
#                   commit) measured beside it as target `ringgate-base` in
#                   small 16k 1m close c1000: an optimisation's before/after
#                   in one run
#   KEEP_WORK=1     keep the temporary directory (configurations, logs)
#   DEFERRED="ringgate haproxy"  the proxies whose plain listener defers accepting
#                   until the first bytes (ringgate `deferred_accept: 1s`,
#                   nginx `listen ... deferred`, HAProxy `defer-accept`): each
#                   proxy where it measured better (docs/performance.md)
#
# The default full run takes about 13 minutes. Everything is on 127.0.0.1
# (ports in 18000-18099), every process is started by this script, recorded by
# PID and stopped by PID at exit (perf/lib.sh), and every step is bounded in
# time. With 2 or more CPUs the proxy under test runs alone on CPU 1
# (taskset -c 1) and the origin and wrk share CPU 0; the `workers` scenario
# (1 and 2 workers) is not pinned.
#
# Needs (scripts/install-deps.sh bench): wrk nginx-light haproxy curl openssl
# gcc time python3-jwt python3-matplotlib (Debian packages).
set -euo pipefail
cd "$(dirname "$0")/.."

PERF_NAME=harness
PERF_SAY_CLEAN=1 # say at exit that no process was left
. perf/lib.sh

# SECONDS is bash's clock: read the caller's value from the environment.
ENV_SECONDS=$(printenv SECONDS || true)
QUICK=${QUICK:-0}
ALL_SCENARIOS="small 16k 1m close c1000 jwt ratelimit schema tls workers cache idle idle100k"
if [ "$QUICK" = 1 ]; then
    ROUNDS=${ROUNDS:-1}
    DUR=${DURATION:-${ENV_SECONDS:-2}}
    SCENARIOS=${SCENARIOS:-${ALL_SCENARIOS% idle100k}}
else
    ROUNDS=${ROUNDS:-3}
    DUR=${DURATION:-${ENV_SECONDS:-5}}
    SCENARIOS=${SCENARIOS:-$ALL_SCENARIOS}
fi
WARMUP=1
IDLE_N=${IDLE_N:-10000}
IDLE_BIG=${IDLE_BIG:-100000}
RESULTS=${RESULTS:-perf/results}
DEFERRED=${DEFERRED-ringgate haproxy}
deferred() { # proxy: true when its plain listener defers accepting
    case " $DEFERRED " in *" $1 "*) return 0 ;; esac
    return 1
}
BIN=${RINGGATE_BIN:-build/ringgate}
BASE_BIN=${BASELINE_BIN:-}
PY=/usr/bin/python3

case $ROUNDS$DUR$IDLE_N$IDLE_BIG in
*[!0-9]*) die "ROUNDS, SECONDS, IDLE_N and IDLE_BIG are whole numbers" ;;
esac
[ "$ROUNDS" -ge 1 ] && [ "$DUR" -ge 1 ] || die "ROUNDS and SECONDS must be at least 1"
for s in $SCENARIOS; do
    case " $ALL_SCENARIOS " in
    *" $s "*) ;;
    *) die "unknown scenario '$s' (known: $ALL_SCENARIOS)" ;;
    esac
done
want() { case " $SCENARIOS " in *" $1 "*) return 0 ;; esac; return 1; }

# Ports: 18000-18099.
P_ORIGIN=18000      # origin, 1 worker (CPU 0)
P_ORIGIN2=18001     # origin, 2 workers, not pinned (workers scenario)
P_RG=18010          # ringgate: plain, filter routes, TLS, admin
P_RG_TLS=18011
P_RG_ADMIN=18019
P_NG=18020
P_NG_TLS=18021
P_HP=18030
P_HP_TLS=18031
P_RG1W=18040        # workers scenario: not pinned, origin 2
P_RG2W=18041
P_NG1W=18042
P_NG2W=18043
P_IDLE_RG=18050     # idle scenarios: a fresh proxy each time
P_IDLE_NG=18051
P_IDLE_HP=18052
P_IDLE_BIG=18053
P_REDIS=18060       # Redis for the shared rate limit (CPU 0, with the load side)
P_BASE=18070        # BASELINE_BIN: plain listener, admin
P_BASE_ADMIN=18071
SMALL_BODY=$(printf 'ringgate perf origin: a fixed answer of 128 bytes %078d' 0)

need_tools nginx haproxy redis-server wrk curl openssl cc taskset ss /usr/bin/time
[ -x "$BIN" ] || die "$BIN is not built (make build)"
[ -z "$BASE_BIN" ] || [ -x "$BASE_BIN" ] || die "BASELINE_BIN $BASE_BIN is not an executable"
[ -x "$PY" ] && "$PY" -c 'import jwt' 2>/dev/null || die "/usr/bin/python3 with jwt is needed (python3-jwt)"
# Only the ports used here must be free (a leftover proxy sharing a
# SO_REUSEPORT port would take half the connections).
for p in $P_ORIGIN $P_ORIGIN2 $P_RG $P_RG_TLS $P_RG_ADMIN $P_NG $P_NG_TLS $P_HP $P_HP_TLS \
    $P_RG1W $P_RG2W $P_NG1W $P_NG2W $P_IDLE_RG $P_IDLE_NG $P_IDLE_HP $P_IDLE_BIG $P_REDIS \
    $P_BASE $P_BASE_ADMIN; do
    ports_free "$p" "$p"
done

NCPU=$(nproc)
PIN_PROXY=()
PIN_LOAD=()
PINNING="none: fewer than 2 CPUs (the proxy, wrk and the origin share the CPU)"
if [ "$NCPU" -ge 2 ] && taskset -c 1 true 2>/dev/null; then
    PIN_PROXY=(taskset -c 1)
    PIN_LOAD=(taskset -c 0)
    PINNING="proxy under test on CPU 1 (taskset -c 1); origin and wrk on CPU 0 (taskset -c 0)"
fi

# Descriptors: 1000-connection runs, and IDLE_N (IDLE_BIG) idle clients: the
# proxy holds one per client, the client tool one per connection.
NOFILE=65536
want idle && [ $((IDLE_N + 4096)) -gt $NOFILE ] && NOFILE=$((IDLE_N + 4096))
want idle100k && [ $((IDLE_BIG + 4096)) -gt $NOFILE ] && NOFILE=$((IDLE_BIG + 4096))
if ! raise_nofile "$NOFILE"; then
    warn "cannot raise ulimit -n to $NOFILE (hard limit $(ulimit -Hn)): fewer idle connections where they would not fit; see docs/performance.md"
    ulimit -Sn "$(ulimit -Hn)"
fi
NOFILE=$(ulimit -Sn)
[ "$NOFILE" = unlimited ] && NOFILE=1048576
# The most connections a proxy can hold here: one descriptor each (HAProxy
# counts two per connection in its maxconn), a margin for the rest.
max_conns() { # proxy
    local m
    if [ "$1" = haproxy ]; then m=$(( (NOFILE - 200) / 2 - 256 )); else m=$((NOFILE - 1024)); fi
    echo $(( m / 1000 * 1000 ))
}

perf_workdir ringgate-harness
OUT=$WORK/results
mkdir -p "$OUT" "$WORK/www" "$WORK/tls"
LOAD_START=$(cut -d' ' -f1-3 /proc/loadavg)
T_START=$(date +%s)

# ---------------------------------------------------------------- fixtures
cc -O2 -Wall -o "$WORK/idle_clients" perf/idle_clients.c
head -c 16384 /dev/zero | tr '\0' 'a' > "$WORK/www/16k"
head -c 1048576 /dev/zero | tr '\0' 'b' > "$WORK/www/1m"
openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -days 2 \
    -subj /CN=localhost -addext "subjectAltName=DNS:localhost,IP:127.0.0.1" \
    -keyout "$WORK/tls/key.pem" -out "$WORK/tls/cert.pem" 2>/dev/null
cat "$WORK/tls/cert.pem" "$WORK/tls/key.pem" > "$WORK/tls/both.pem"
chmod 644 "$WORK"/tls/*

# HS256: a 32-byte secret, one token valid for a day (the same token on
# every request: ringgate's per-worker cache of verified tokens answers).
JWT_SECRET=$(head -c 32 /dev/urandom | base64 | tr '+/' '-_' | tr -d '=\n')
JWT_TOKEN=$("$PY" -c '
import base64, sys, time, jwt
key = base64.urlsafe_b64decode(sys.argv[1] + "=" * (-len(sys.argv[1]) % 4))
now = int(time.time())
print(jwt.encode({"iss": "perf", "aud": "bench", "sub": "user-42", "iat": now, "exp": now + 86400},
                 key, algorithm="HS256"))' "$JWT_SECRET")

# Schema: a realistic 1 KiB order against perf/schemas/order.json (the body
# of perf/schema_bench.py), and an invalid variant to check the route.
"$PY" - "$WORK/order.json" "$WORK/order-bad.json" <<'PY'
import json, random, sys
sys.path.insert(0, "perf")
import schema_bench as s
rng = random.Random(20261129)
o = s.order(rng, 1)
while len(s.dumps(o)) > 1000:
    o = s.order(rng, 1)
body = s.pad(o, o, 1024)
open(sys.argv[1], "wb").write(body)
open(sys.argv[2], "wb").write(s.invalid_variant(body))
PY
cat > "$WORK/post.lua" <<LUA
local f = assert(io.open("$WORK/order.json", "rb"))
wrk.method = "POST"
wrk.body = f:read("*a")
f:close()
wrk.headers["Content-Type"] = "application/json"
LUA

# ---------------------------------------------------------------- configs
# The origin: nginx with a fixed answer, and static 16 KiB and 1 MiB files.
# multi_accept: by default nginx accepts one connection per turn of its
# loop, and then the new upstream connections a proxy opens under load
# (c1000: 1 000 clients, pools of 64) queue in the origin's backlog and set
# the proxy's tail latency; the faster the proxy, the longer the queue.
origin_conf() { # file name workers port
    nginx_conf "$1" "$2" "$3" 16384 "$NOFILE" "multi_accept on;" <<NGX
    sendfile on;
    tcp_nopush on;
    keepalive_requests 1000000;
    keepalive_timeout 120s;
    client_body_buffer_size 64k;
    server {
        listen 127.0.0.1:$4 reuseport backlog=4096;
        location = /16k { root $WORK/www; default_type application/octet-stream; }
        location = /1m { root $WORK/www; default_type application/octet-stream; }
        location /cache/ { default_type text/plain; add_header Cache-Control "max-age=3600";
                           return 200 "$SMALL_BODY"; }
        location / { default_type text/plain; return 200 "$SMALL_BODY"; }
    }
NGX
}

# nginx as the proxy: upstream keep-alive pool of 64, bodies in memory (no
# temporary files), the forwarding headers ringgate adds (X-Forwarded-*,
# X-Request-Id, the client's Host), keep-alive connections never capped by
# a request count.
nginx_proxy_conf() { # file name workers port tls-port(or -) origin-port connections
    local tls=""
    [ "$5" != - ] && tls="server { listen 127.0.0.1:$5 ssl reuseport backlog=4096;
        ssl_certificate $WORK/tls/cert.pem; ssl_certificate_key $WORK/tls/key.pem;
        location / { proxy_pass http://origin; } }"
    local rl=$(($7 * 2 + 1024))
    [ "$rl" -gt "$NOFILE" ] && rl=$NOFILE
    nginx_conf "$1" "$2" "$3" "$7" "$rl" <<NGX
    keepalive_requests 1000000;
    keepalive_timeout 75s;
    proxy_http_version 1.1;
    proxy_set_header Connection "";
    proxy_set_header Host \$http_host;
    proxy_set_header X-Forwarded-For \$proxy_add_x_forwarded_for;
    proxy_set_header X-Forwarded-Proto \$scheme;
    proxy_set_header X-Forwarded-Host \$http_host;
    proxy_set_header X-Request-Id \$request_id;
    proxy_buffer_size 16k;
    proxy_buffers 8 16k;
    proxy_max_temp_file_size 0;
    client_body_buffer_size 64k;
    proxy_cache_path $WORK/cache-$2 levels=1:2 keys_zone=cache_${2//-/_}:16m max_size=256m inactive=1h;
    upstream origin { server 127.0.0.1:$6; keepalive 64; keepalive_requests 1000000; keepalive_timeout 120s; }
    server { listen 127.0.0.1:$4 reuseport backlog=4096$(deferred nginx && echo " deferred"); location / { proxy_pass http://origin; }
             location /cache/ { proxy_pass http://origin; proxy_cache cache_${2//-/_};
                                add_header X-Cache \$upstream_cache_status; } }
    $tls
NGX
}

# HAProxy: one thread, http-reuse always, an idle server pool of 64, the
# same forwarding headers, no log.
haproxy_proxy_conf() { # file threads port tls-port(or -) origin-port maxconn
    local tls=""
    [ "$4" != - ] && tls="    bind 127.0.0.1:$4 ssl crt $WORK/tls/both.pem"
    haproxy_conf "$1" "$2" "$6" <<HAP
frontend fe
    bind 127.0.0.1:$3$(deferred haproxy && echo " defer-accept")
$tls
    option forwardfor
    http-request set-header X-Forwarded-Proto https if { ssl_fc }
    http-request set-header X-Forwarded-Proto http if !{ ssl_fc }
    http-request set-header X-Forwarded-Host %[req.hdr(host)]
    http-request set-header X-Request-Id %[uuid]
    default_backend be
backend be
    http-request set-var(txn.cached) bool(true) if { path_beg /cache/ }
    http-request cache-use bench if { var(txn.cached) -m bool }
    http-response cache-store bench if { var(txn.cached) -m bool }
    server o1 127.0.0.1:$5 pool-max-conn 64
cache bench
    total-max-size 64
    max-age 3600
HAP
}

# ringgate: keep-alive pool of 64, the upstream's connection caps lifted
# (nginx and HAProxy have none: 1000 clients would otherwise meet
# max_pending 256), and with `filters`, the JWT, rate-limit and schema
# routes and the TLS listener.
ringgate_proxy_conf() { # file workers port tls-port(or -) origin-port admin(or -) filters(0/1)
    local admin=$6
    [ "$admin" = - ] && admin=
    {
        echo "listeners:"
        echo "  - {name: plain, listen: 127.0.0.1:$3$(deferred ringgate && echo ", deferred_accept: 1s")}"
        [ "$4" != - ] && cat <<RG
  - name: tls
    listen: 127.0.0.1:$4
    tls:
      certificates: [{cert: $WORK/tls/cert.pem, key: $WORK/tls/key.pem}]
RG
        cat <<RG
upstreams:
  - name: origin
    endpoints: [127.0.0.1:$5]
    keepalive: 64
    circuit_breaker: {max_connections: 0, max_pending: 0}
RG
        if [ "$7" = 1 ]; then
            cat <<RG
jwt_providers:
  - name: perf
    secret: "$JWT_SECRET"
    issuer: perf
    audiences: [bench]
redis: {address: "127.0.0.1:$P_REDIS", timeout: 50ms}
cache: {memory: 64MiB}
rate_limits:
  - name: perf
    key: ip
    rate: 100000000/s
    burst: 100000000
  - name: perf_redis
    key: ip
    rate: 100000000/s
    burst: 1000000
    backend: redis
    on_redis_error: deny
schemas:
  - name: order
    file: $PWD/perf/schemas/order.json
routes:
  - {name: jwt, match: {prefix: /jwt/}, upstream: origin, jwt: perf}
  - {name: ratelimit, match: {prefix: /rl/}, upstream: origin, rate_limit: perf}
  - {name: ratelimit_redis, match: {prefix: /rlr/}, upstream: origin, rate_limit: perf_redis}
  - {name: schema, match: {prefix: /schema/}, upstream: origin, schema: order}
  - {name: cache, match: {prefix: /cache/}, upstream: origin, cache: true}
RG
        else
            echo "routes:"
        fi
        echo "  - {name: plain, match: {prefix: /}, upstream: origin}"
    } | ringgate_conf "$1" "$2" "$admin"
    "$BIN" -t -c "$1" > "$WORK/check.out" 2>&1 ||
        { cat "$WORK/check.out" >&2; die "ringgate rejects $1"; }
}

# ---------------------------------------------------------------- processes
declare -A T_PID T_URL T_PROXY T_WORKERS T_PINNED

origin_conf "$WORK/origin.conf" origin 1 $P_ORIGIN
start origin "${PIN_LOAD[@]}" nginx -c "$WORK/origin.conf"
ORIGIN_PID=$LAST_PID
wait_port $P_ORIGIN "$ORIGIN_PID"
# The shared rate limit's Redis: no persistence, on the load side's core.
start redis "${PIN_LOAD[@]}" redis-server --port $P_REDIS --bind 127.0.0.1 --save "" \
    --appendonly no --dir "$WORK"
REDIS_PID=$LAST_PID
wait_port $P_REDIS "$REDIS_PID"

ringgate_proxy_conf "$WORK/rg.yaml" 1 $P_RG $P_RG_TLS $P_ORIGIN $P_RG_ADMIN 1
nginx_proxy_conf "$WORK/ng.conf" ng 1 $P_NG $P_NG_TLS $P_ORIGIN 16384
haproxy_proxy_conf "$WORK/hp.cfg" 1 $P_HP $P_HP_TLS $P_ORIGIN 8192
start ringgate "${PIN_PROXY[@]}" "$BIN" -c "$WORK/rg.yaml"
RG_PID=$LAST_PID
start nginx "${PIN_PROXY[@]}" nginx -c "$WORK/ng.conf"
NG_PID=$LAST_PID
start haproxy "${PIN_PROXY[@]}" haproxy -f "$WORK/hp.cfg"
HP_PID=$LAST_PID
wait_port $P_RG "$RG_PID"
wait_port $P_RG_TLS "$RG_PID"
wait_port $P_NG "$NG_PID"
wait_port $P_NG_TLS "$NG_PID"
wait_port $P_HP "$HP_PID"
wait_port $P_HP_TLS "$HP_PID"

target() { # name proxy pid url workers pinned
    T_PROXY[$1]=$2
    T_PID[$1]=$3
    T_URL[$1]=$4
    T_WORKERS[$1]=$5
    T_PINNED[$1]=$6
}
pinned=0
[ ${#PIN_PROXY[@]} -gt 0 ] && pinned=1
target ringgate ringgate "$RG_PID" "http://127.0.0.1:$P_RG" 1 $pinned
target nginx nginx "$NG_PID" "http://127.0.0.1:$P_NG" 1 $pinned
target haproxy haproxy "$HP_PID" "http://127.0.0.1:$P_HP" 1 $pinned
target ringgate-jwt ringgate "$RG_PID" "http://127.0.0.1:$P_RG/jwt" 1 $pinned
target ringgate-ratelimit ringgate "$RG_PID" "http://127.0.0.1:$P_RG/rl" 1 $pinned
target ringgate-ratelimit-redis ringgate "$RG_PID" "http://127.0.0.1:$P_RG/rlr" 1 $pinned
target ringgate-post ringgate "$RG_PID" "http://127.0.0.1:$P_RG" 1 $pinned
target ringgate-schema ringgate "$RG_PID" "http://127.0.0.1:$P_RG/schema" 1 $pinned
target ringgate-tls ringgate "$RG_PID" "https://127.0.0.1:$P_RG_TLS" 1 $pinned
target nginx-tls nginx "$NG_PID" "https://127.0.0.1:$P_NG_TLS" 1 $pinned
target haproxy-tls haproxy "$HP_PID" "https://127.0.0.1:$P_HP_TLS" 1 $pinned
target ringgate-cache ringgate "$RG_PID" "http://127.0.0.1:$P_RG/cache" 1 $pinned
target nginx-cache nginx "$NG_PID" "http://127.0.0.1:$P_NG/cache" 1 $pinned
target haproxy-cache haproxy "$HP_PID" "http://127.0.0.1:$P_HP/cache" 1 $pinned
if [ -n "$BASE_BIN" ]; then
    ringgate_proxy_conf "$WORK/rg-base.yaml" 1 $P_BASE - $P_ORIGIN $P_BASE_ADMIN 0
    start ringgate-base "${PIN_PROXY[@]}" "$BASE_BIN" -c "$WORK/rg-base.yaml"
    BASE_PID=$LAST_PID
    wait_port $P_BASE "$BASE_PID"
    target ringgate-base ringgate "$BASE_PID" "http://127.0.0.1:$P_BASE" 1 $pinned
fi

ORIGIN2_PID=
if want workers; then
    origin_conf "$WORK/origin2.conf" origin2 2 $P_ORIGIN2
    start origin2 nginx -c "$WORK/origin2.conf"
    ORIGIN2_PID=$LAST_PID
    for w in 1 2; do
        if [ $w = 1 ]; then p_rg=$P_RG1W p_ng=$P_NG1W; else p_rg=$P_RG2W p_ng=$P_NG2W; fi
        ringgate_proxy_conf "$WORK/rg${w}w.yaml" $w "$p_rg" - $P_ORIGIN2 - 0
        nginx_proxy_conf "$WORK/ng${w}w.conf" "ng${w}w" $w "$p_ng" - $P_ORIGIN2 16384
        start "ringgate-${w}w" "$BIN" -c "$WORK/rg${w}w.yaml"
        target "ringgate-${w}w" ringgate "$LAST_PID" "http://127.0.0.1:$p_rg" $w 0
        start "nginx-${w}w" nginx -c "$WORK/ng${w}w.conf"
        target "nginx-${w}w" nginx "$LAST_PID" "http://127.0.0.1:$p_ng" $w 0
    done
    wait_port $P_ORIGIN2 "$ORIGIN2_PID"
    for t in ringgate-1w ringgate-2w nginx-1w nginx-2w; do
        wait_port "${T_URL[$t]##*:}" "${T_PID[$t]}"
    done
fi

# ---------------------------------------------------------------- checks
# Every target answers what it should before anything is measured, and each
# filter route is seen to work (it refuses what it must).
expect() { # description expected-"code size" curl-args...
    local what=$1 want=$2 got
    shift 2
    got=$(curl -sk --max-time 10 -o /dev/null -w '%{http_code} %{size_download}' "$@" || true)
    [ "$got" = "$want" ] || die "$what answered '$got', not '$want'"
}
BEARER="Authorization: Bearer $JWT_TOKEN"
for t in ringgate nginx haproxy ringgate-tls nginx-tls haproxy-tls ${BASE_BIN:+ringgate-base}; do
    expect "$t /small" "200 128" "${T_URL[$t]}/small"
    expect "$t /16k" "200 16384" "${T_URL[$t]}/16k"
    expect "$t /1m" "200 1048576" "${T_URL[$t]}/1m"
done
if want workers; then
    for t in ringgate-1w ringgate-2w nginx-1w nginx-2w; do expect "$t /small" "200 128" "${T_URL[$t]}/small"; done
fi
expect "the JWT route with the token" "200 128" -H "$BEARER" "${T_URL[ringgate-jwt]}/small"
got=$(curl -s --max-time 10 -o /dev/null -w '%{http_code}' "${T_URL[ringgate-jwt]}/small" || true)
[ "$got" = 401 ] || die "the JWT route let a request without a token through ($got)"
hdrs=$(curl -s --max-time 10 -D - -o /dev/null "${T_URL[ringgate-ratelimit]}/small" || true)
grep -qi '^ratelimit-limit:' <<< "$hdrs" || die "the rate-limit route sends no RateLimit-Limit"
# on_redis_error: deny: a 200 here is a verdict from Redis.
expect "the Redis rate-limit route" "200 128" "${T_URL[ringgate-ratelimit-redis]}/small"
expect "the schema route with a valid order" "200 128" -H 'Content-Type: application/json' \
    --data-binary "@$WORK/order.json" "${T_URL[ringgate-schema]}/post"
got=$(curl -s --max-time 10 -o /dev/null -w '%{http_code}' -H 'Content-Type: application/json' \
    --data-binary "@$WORK/order-bad.json" "${T_URL[ringgate-schema]}/post" || true)
[ "$got" = 400 ] || die "the schema route let an invalid order through ($got)"
expect "the plain route with the POST" "200 128" -H 'Content-Type: application/json' \
    --data-binary "@$WORK/order.json" "${T_URL[ringgate-post]}/post"

# ---------------------------------------------------------------- meta
{
    printf 'date\t%s\n' "$(date -u '+%Y-%m-%d %H:%M UTC')"
    printf 'host\t%s CPUs (nproc), %s, %s MiB RAM, Linux %s\n' "$NCPU" \
        "$(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2- | sed 's/^ *//')" \
        "$(awk '/^MemTotal:/ {printf "%d", $2 / 1024}' /proc/meminfo)" "$(uname -r)"
    printf 'nproc\t%s\n' "$NCPU"
    printf 'loadavg_start\t%s\n' "$LOAD_START"
    printf 'rounds\t%s\n' "$ROUNDS"
    printf 'seconds\t%s\n' "$DUR"
    printf 'warmup\t%s\n' "$WARMUP"
    printf 'scenarios\t%s\n' "$SCENARIOS"
    printf 'pinning\t%s\n' "$PINNING"
    dirty=
    case $(readlink -f "$BIN") in
    "$PWD"/*) git diff --quiet HEAD -- gateway filters CMakeLists.txt 2>/dev/null ||
        dirty=", work tree differs from HEAD in gateway/ filters/ CMakeLists.txt" ;;
    *) dirty=", binary built outside this work tree" ;;
    esac
    printf 'ringgate\t%s (%s, built %s; repository at %s%s)\n' "$("$BIN" -V 2>&1 | head -1)" "$BIN" \
        "$(date -u -r "$BIN" '+%Y-%m-%d %H:%M UTC')" "$(git rev-parse --short HEAD 2>/dev/null || echo '?')" "$dirty"
    [ -n "$BASE_BIN" ] && printf 'ringgate-base\t%s (%s, built %s)\n' "$("$BASE_BIN" -V 2>&1 | head -1)" \
        "$BASE_BIN" "$(date -u -r "$BASE_BIN" '+%Y-%m-%d %H:%M UTC')"
    printf 'nginx\t%s\n' "$(nginx -v 2>&1 | sed 's/^nginx version: //')"
    printf 'haproxy\t%s\n' "$(haproxy -v 2>&1 | head -1 | sed 's/ - https.*//')"
    printf 'wrk\t%s\n' "$(wrk -v 2>&1 | head -1 | awk '{print $2}')"
    printf 'idle_n\t%s\n' "$IDLE_N"
    printf 'idle_big\t%s\n' "$IDLE_BIG"
    printf 'nofile\t%s\n' "$(ulimit -Sn)"
    printf 'small_body\t%s\n' "${#SMALL_BODY}"
} > "$OUT/meta.tsv"

# ---------------------------------------------------------------- a wrk run
printf 'round\tscenario\ttarget\tproxy\tworkers\tpinned\tconns\tbody_bytes\trequests\tsecs\trps\tmbps\tp50_ms\tp99_ms\tcpu_us_per_req\tproxy_cpu_pct\torigin_cpu_pct\twrk_cpu_pct\tcpu0_busy_pct\tcpu1_busy_pct\tall_busy_pct\tpeak_rss_kb\terrors\tnon2xx\n' > "$OUT/runs.tsv"
printf 'round\tproxy\tconns\talive\tfailed\trss_before_kb\trss_mid_kb\trss_after_kb\tbytes_per_conn\tmarginal_bytes_per_conn\topen_secs\tpeak_rss_kb\n' > "$OUT/idle.tsv"
: > "$OUT/notes.tsv"

# Scenario parameters: PATH_ (request path), CONNS, THREADS, BODY (answer
# bytes), EXTRA (wrk arguments), TARGETS.
scenario() {
    EXTRA=()
    THREADS=1
    CONNS=64
    PATH_=/small
    BODY=128
    case $1 in
    small) TARGETS="ringgate nginx haproxy" ;;
    16k) TARGETS="ringgate nginx haproxy"; PATH_=/16k; BODY=16384 ;;
    1m) TARGETS="ringgate nginx haproxy"; PATH_=/1m; BODY=1048576; CONNS=16 ;;
    close) TARGETS="ringgate nginx haproxy"; EXTRA=(-H "Connection: close") ;;
    c1000) TARGETS="ringgate nginx haproxy"; CONNS=1000 ;;
    jwt) TARGETS="ringgate ringgate-jwt"; EXTRA=(-H "$BEARER") ;;
    ratelimit) TARGETS="ringgate ringgate-ratelimit ringgate-ratelimit-redis" ;;
    schema) TARGETS="ringgate-post ringgate-schema"; PATH_=/post; EXTRA=(-s "$WORK/post.lua") ;;
    tls) TARGETS="ringgate-tls nginx-tls haproxy-tls ringgate" ;;
    workers) TARGETS="ringgate-1w ringgate-2w nginx-1w nginx-2w"; THREADS=2 ;;
    cache) TARGETS="ringgate-cache nginx-cache haproxy-cache ringgate" ;;
    esac
    case $1 in
    small | 16k | 1m | close | c1000) [ -n "$BASE_BIN" ] && TARGETS="$TARGETS ringgate-base" ;;
    esac
    return 0
}

ms() { # a wrk duration (12.3us, 4.5ms, 1.2s, 2.0m) in ms
    awk -v v="$1" 'BEGIN {
        if (v ~ /us$/) {sub(/us$/, "", v); v /= 1000}
        else if (v ~ /ms$/) {sub(/ms$/, "", v)}
        else if (v ~ /m$/) {sub(/m$/, "", v); v *= 60000}
        else if (v ~ /s$/) {sub(/s$/, "", v); v *= 1000}
        printf "%.3f", v}'
}

run_one() { # round scenario target
    local r=$1 s=$2 t=$3 pid url origin load=() p0 p1 o0 o1 rc=0 hwm
    pid=${T_PID[$t]}
    url=${T_URL[$t]}$PATH_
    origin=$ORIGIN_PID
    [ "${T_PINNED[$t]}" = 1 ] && load=("${PIN_LOAD[@]}")
    [ "$s" = workers ] && origin=$ORIGIN2_PID
    alive "$pid" || die "$t (PID $pid) is not running any more: see $WORK/*.out"

    timeout $((WARMUP + 20)) "${load[@]}" wrk -t"$THREADS" -c"$CONNS" -d"${WARMUP}s" "${EXTRA[@]}" "$url" \
        > /dev/null 2>&1 || true
    hwm_reset "$pid"
    cpu_stat > "$WORK/stat.0"
    p0=$(cpu_ticks "$pid")
    o0=$(cpu_ticks "$origin")
    /usr/bin/time -f '%U %S %e' -o "$WORK/wrk.time" \
        "${load[@]}" timeout $((DUR + 30)) wrk -t"$THREADS" -c"$CONNS" -d"${DUR}s" --latency \
        "${EXTRA[@]}" "$url" > "$WORK/wrk.out" 2>&1 || rc=$?
    p1=$(cpu_ticks "$pid")
    o1=$(cpu_ticks "$origin")
    cpu_stat > "$WORK/stat.1"
    hwm=$(hwm_kb "$pid")
    if [ "$rc" != 0 ] || ! grep -q 'requests in' "$WORK/wrk.out"; then
        warn "round $r, $s, $t: wrk failed (exit $rc):"
        cat "$WORK/wrk.out" >&2
        printf '%s\t%s\t%s\twrk failed (exit %s)\n' "$r" "$s" "$t" "$rc" >> "$OUT/notes.tsv"
        return 0
    fi
    local p50 p99
    p50=$(ms "$(awk '$1 == "50%" {print $2}' "$WORK/wrk.out")")
    p99=$(ms "$(awk '$1 == "99%" {print $2}' "$WORK/wrk.out")")
    awk -v r="$r" -v s="$s" -v t="$t" -v proxy="${T_PROXY[$t]}" -v w="${T_WORKERS[$t]}" \
        -v pin="${T_PINNED[$t]}" -v c="$CONNS" -v body="$BODY" -v hz="$HZ" \
        -v pt=$((p1 - p0)) -v ot=$((o1 - o0)) -v p50="$p50" -v p99="$p99" -v hwm="$hwm" \
        -v wt="$(tail -1 "$WORK/wrk.time")" '
        FILENAME ~ /stat\.0$/ {split($0, a, " "); b0[a[1]] = a[2]; t0[a[1]] = a[3]; next}
        FILENAME ~ /stat\.1$/ {split($0, a, " "); b1[a[1]] = a[2]; t1[a[1]] = a[3]; next}
        /requests in/ {n = $1; secs = $4; sub(/s,$/, "", secs)}
        /Socket errors:/ {gsub(/,/, ""); err = $4 + $6 + $8 + $10}
        /Non-2xx/ {non2xx = $NF}
        END {
            split(wt, w3, " ")
            busy0 = ("cpu0" in t1) ? 100 * (b1["cpu0"] - b0["cpu0"]) / (t1["cpu0"] - t0["cpu0"]) : 0
            busy1 = ("cpu1" in t1) ? 100 * (b1["cpu1"] - b0["cpu1"]) / (t1["cpu1"] - t0["cpu1"]) : 0
            busyall = 100 * (b1["cpu"] - b0["cpu"]) / (t1["cpu"] - t0["cpu"])
            printf "%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%d\t%.2f\t%.0f\t%.1f\t%.3f\t%.3f\t%.2f\t%.0f\t%.0f\t%.0f\t%.0f\t%.0f\t%.0f\t%d\t%d\t%d\n",
                r, s, t, proxy, w, pin, c, body, n, secs, n / secs, n * body / secs / 1e6, p50, p99,
                pt / hz * 1e6 / n, 100 * pt / hz / secs, 100 * ot / hz / secs,
                100 * (w3[1] + w3[2]) / secs, busy0, busy1, busyall, hwm, err, non2xx
        }' "$WORK/stat.0" "$WORK/stat.1" "$WORK/wrk.out" > "$WORK/row"
    cat "$WORK/row" >> "$OUT/runs.tsv"
    awk -F'\t' '{printf "  %-8s %-18s %9.0f req/s %8.1f MB/s  p50 %7.3f ms  p99 %7.3f ms  %7.2f CPU-us/req  proxy %3d%%  origin %3d%%  wrk %3d%%  cpu0 %3d%%  cpu1 %3d%%%s\n",
        $2, $3, $11, $12, $13, $14, $15, $16, $17, $18, $19, $20, ($23 + $24 > 0) ? "  ERRORS " $23 "+" $24 : ""}' "$WORK/row"
}

# ---------------------------------------------------------------- idle memory
# A fresh proxy (so that nothing earlier counts), warmed up by 1 s of wrk,
# then N clients that each make one request and stay connected, idle: the
# growth of the proxy's RSS (all its processes) divided by N.
idle_one() { # round proxy n port
    local r=$1 proxy=$2 n=$3 port=$4 pid rss0 rss_mid rss1 hwm rc=0 sources line max mid
    max=$(max_conns "$proxy")
    local label=idle
    [ "$r" = 0 ] && label=idle100k
    if [ "$n" -gt "$max" ]; then
        printf '%s\t%s\t%s\t%s idle connections instead of %s: ulimit -n is %s here (hard limit; see docs/performance.md)\n' \
            "$r" "$label" "$proxy" "$max" "$n" "$NOFILE" >> "$OUT/notes.tsv"
        n=$max
    fi
    mid=$((n / 2))
    # nginx closes idle keep-alive connections once fewer than 1/16 of its
    # worker_connections are free: give it room, as an operator would.
    local conns=$((n + n / 8 + 512))
    case $proxy in
    ringgate)
        ringgate_proxy_conf "$WORK/idle-rg.yaml" 1 "$port" - $P_ORIGIN - 0
        start idle-ringgate "${PIN_PROXY[@]}" "$BIN" -c "$WORK/idle-rg.yaml" ;;
    nginx)
        nginx_proxy_conf "$WORK/idle-ng.conf" idle-ng 1 "$port" - $P_ORIGIN "$conns"
        start idle-nginx "${PIN_PROXY[@]}" nginx -c "$WORK/idle-ng.conf" ;;
    haproxy)
        haproxy_proxy_conf "$WORK/idle-hp.cfg" 1 "$port" - $P_ORIGIN $((n + 256))
        start idle-haproxy "${PIN_PROXY[@]}" haproxy -f "$WORK/idle-hp.cfg" ;;
    esac
    pid=$LAST_PID
    wait_port "$port" "$pid"
    # Warm-up on 64 connections: the proxy's buffers for 64 requests in
    # flight exist before the first reading; the clients keep at most 50.
    timeout 20 "${PIN_LOAD[@]}" wrk -t1 -c64 -d1s "http://127.0.0.1:$port/small" > /dev/null 2>&1 || true
    sleep 0.5
    rss0=$(rss_kb "$pid")
    sources=$(( (n + 19999) / 20000 ))
    start idle-clients "${PIN_LOAD[@]}" "$WORK/idle_clients" -p "$port" -n "$n" -c 50 -a "$sources" \
        -m "$mid" -P 2 -H 3 -t 150
    local ipid=$LAST_PID
    rss_mid=0
    rss1=0
    for _ in $(seq 1800); do
        if [ "$rss_mid" = 0 ] && grep -q '^mid' "$WORK/idle-clients.out" 2>/dev/null; then
            sleep 0.5
            rss_mid=$(rss_kb "$pid")
        fi
        grep -q '^ready' "$WORK/idle-clients.out" 2>/dev/null && break
        alive "$ipid" || break
        sleep 0.1
    done
    if grep -q '^ready' "$WORK/idle-clients.out"; then
        sleep 1
        rss1=$(rss_kb "$pid")
    fi
    hwm=$(hwm_kb "$pid")
    wait "$ipid" || rc=$?
    stop "$ipid"
    line=$(grep -E '^(done|timeout|error)' "$WORK/idle-clients.out" | tail -1 || true)
    stop "$pid"
    local alive_n failed open_secs
    alive_n=$(echo "$line" | tr ' ' '\n' | awk -F= '$1 == "alive" {print $2}')
    failed=$(echo "$line" | tr ' ' '\n' | awk -F= '$1 == "failed" {print $2}')
    open_secs=$(awk '/^ready/ {print $3}' "$WORK/idle-clients.out")
    if [ "$rc" != 0 ] || [ "$rss1" = 0 ]; then
        warn "round $r, idle $proxy ($n): the client tool says: ${line:-nothing} (exit $rc)"
        grep -vE '^(ready|mid)' "$WORK/idle-clients.out" | head -5 >&2 || true
        printf '%s\t%s\t%s\t%s connections: %s (exit %s)\n' "$r" "$label" "$proxy" "$n" "${line:-no answer}" "$rc" >> "$OUT/notes.tsv"
    fi
    [ "$rss1" = 0 ] && return 0
    printf '%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\n' "$r" "$proxy" "$n" "${alive_n:-0}" "${failed:-0}" \
        "$rss0" "$rss_mid" "$rss1" \
        "$(awk -v a="$rss0" -v b="$rss1" -v n="$n" 'BEGIN {printf "%.1f", (b - a) * 1024 / n}')" \
        "$(awk -v a="$rss_mid" -v b="$rss1" -v n=$((n - mid)) 'BEGIN {printf "%.1f", (a > 0) ? (b - a) * 1024 / n : -1}')" \
        "${open_secs:-0}" "$hwm" >> "$OUT/idle.tsv"
    printf '  idle     %-18s %6s connections: RSS %d -> %d -> %d KiB, %s bytes per connection, %s for the second half (%s alive, opened in %s s)\n' \
        "$proxy" "$n" "$rss0" "$rss_mid" "$rss1" "$(tail -1 "$OUT/idle.tsv" | cut -f9)" \
        "$(tail -1 "$OUT/idle.tsv" | cut -f10)" "${alive_n:-?}" "${open_secs:-?}"
    ports_free "$port" "$port"
}

# ---------------------------------------------------------------- cache
# The `cache` scenario measures hits: the origin marks /cache/ answers
# `max-age=3600`; each proxy stores them (ringgate `cache: true`, nginx
# proxy_cache, HAProxy's cache). Before the rounds each target is primed and
# must then answer from its cache (ringgate: Cache-Status hit; nginx:
# X-Cache HIT; HAProxy: an Age header, which only its cache adds).
cache_prime() {
    local t hdrs
    for t in ringgate-cache nginx-cache haproxy-cache; do
        curl -s --max-time 10 -o /dev/null "${T_URL[$t]}/small" || true
        curl -s --max-time 10 -o /dev/null "${T_URL[$t]}/small" || true
        hdrs=$(curl -s --max-time 10 -D - -o /dev/null "${T_URL[$t]}/small" || true)
        case $t in
        ringgate-cache) grep -qi '^cache-status:.*; hit' <<< "$hdrs" ;;
        nginx-cache) grep -qi '^x-cache: HIT' <<< "$hdrs" ;;
        haproxy-cache) grep -qi '^age:' <<< "$hdrs" ;;
        esac || die "$t does not answer /small from its cache; its answer was:
$hdrs"
    done
}

# ---------------------------------------------------------------- the rounds
echo "# harness: $ROUNDS round(s) of ${DUR}s runs (after ${WARMUP}s of warm-up); $NCPU CPUs; load average $LOAD_START"
echo "# pinning: $PINNING"
echo "# scenarios: $SCENARIOS"
want cache && cache_prime
for r in $(seq "$ROUNDS"); do
    echo "# round $r of $ROUNDS"
    for s in small 16k 1m close c1000 jwt ratelimit schema tls cache workers; do
        want "$s" || continue
        scenario "$s"
        # Rotate the order from round to round: A B C, B C A, C A B.
        set -- $TARGETS
        nt=$#
        for i in $(seq 0 $((nt - 1))); do
            k=$(( (i + r - 1) % nt + 1 ))
            run_one "$r" "$s" "${!k}"
        done
    done
    if want idle; then
        set -- ringgate nginx haproxy
        for i in 0 1 2; do
            k=$(( (i + r - 1) % 3 + 1 ))
            case ${!k} in
            ringgate) port=$P_IDLE_RG ;;
            nginx) port=$P_IDLE_NG ;;
            haproxy) port=$P_IDLE_HP ;;
            esac
            idle_one "$r" "${!k}" "$IDLE_N" "$port"
        done
    fi
done
if want idle100k; then
    echo "# ringgate with $IDLE_BIG idle connections"
    [ "$(max_conns ringgate)" -lt "$IDLE_BIG" ] &&
        warn "ulimit -n is $NOFILE (hard limit): $(max_conns ringgate) idle connections instead of $IDLE_BIG (docs/performance.md)"
    idle_one 0 ringgate "$IDLE_BIG" $P_IDLE_BIG
fi

printf 'loadavg_end\t%s\n' "$(cut -d' ' -f1-3 /proc/loadavg)" >> "$OUT/meta.tsv"
printf 'elapsed_s\t%s\n' $(( $(date +%s) - T_START )) >> "$OUT/meta.tsv"

# The proxies must still be the ones started (no crash, no restart).
for p in "$ORIGIN_PID" "$RG_PID" "$NG_PID" "$HP_PID" ${BASE_PID:-}; do
    alive "$p" || die "PID $p died during the run: see $WORK/*.out"
done
if [ -s "$WORK/ringgate.out" ]; then
    echo "# ringgate's output:"
    tail -n 5 "$WORK/ringgate.out"
fi

# Results: replace the previous run's files only now that this one is whole.
mkdir -p "$RESULTS"
rm -f "$RESULTS"/*.tsv "$RESULTS"/*.png "$RESULTS"/REPORT.md
cp "$OUT"/*.tsv "$RESULTS"/
if "$PY" -c 'import matplotlib' 2>/dev/null; then
    "$PY" perf/report.py "$RESULTS"
else
    warn "no python3-matplotlib: REPORT.md without charts"
    "$PY" perf/report.py --no-charts "$RESULTS"
fi
echo "# $(( $(date +%s) - T_START )) s; report: $RESULTS/REPORT.md"
