#!/usr/bin/env bash
# JWT verification cost per core, uncached and cached: builds perf/jwt_bench.c
# against build/libringgate_core.a and runs it on fresh keys and tokens.
#
#     perf/jwt_bench.sh [seconds-per-round] [rounds]
#
# Keys come from `openssl genpkey` and tokens from PyJWT, through
# tests/unit/jwt_fixtures.py run by /usr/bin/python3 (Debian's python3-jwt;
# the python3 first on PATH may lack it), into a temporary directory. Without
# them, or with FIXTURES=committed, the committed tests/unit/fixtures/jwt are
# used. BUILD names the build directory (build); CPU the core to pin to (0).
set -euo pipefail
cd "$(dirname "$0")/.."

SECONDS_PER_ROUND=${1:-0.4}
ROUNDS=${2:-5}
BUILD=${BUILD:-build}
CPU=${CPU:-0}
LIB=$BUILD/libringgate_core.a

if [ ! -f "$LIB" ]; then
    cmake -S . -B "$BUILD" >/dev/null
    cmake --build "$BUILD" -j2 --target ringgate_core
fi

cc -std=gnu11 -O2 -Wall -Wextra -Wshadow -D_GNU_SOURCE \
    -Ifilters -Igateway -I/usr/include/android \
    perf/jwt_bench.c "$LIB" -o "$BUILD/jwt_bench" \
    -L/usr/lib/x86_64-linux-gnu/android -Wl,-rpath,/usr/lib/x86_64-linux-gnu/android \
    -lssl -lcrypto -luring -lyaml -lpcre2-8 -lpthread -lm

dir=tests/unit/fixtures/jwt
tmp=
if [ "${FIXTURES:-fresh}" != committed ] && command -v openssl >/dev/null &&
    /usr/bin/python3 -c 'import jwt, cryptography' 2>/dev/null; then
    tmp=$(mktemp -d /tmp/ringgate-jwt-bench-XXXXXX)
    trap 'rm -rf "$tmp"' EXIT
    /usr/bin/python3 tests/unit/jwt_fixtures.py "$tmp"
    dir=$tmp
elif [ "${FIXTURES:-fresh}" != committed ]; then
    echo "no /usr/bin/python3 with jwt (python3-jwt) or no openssl: using $dir" >&2
fi

pin=()
if command -v taskset >/dev/null && taskset -c "$CPU" true 2>/dev/null; then
    pin=(taskset -c "$CPU")
fi
echo "$(uname -m), $(nproc) cores; $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2- | sed 's/^ //')"
"${pin[@]}" "$BUILD/jwt_bench" "$dir" "$SECONDS_PER_ROUND" "$ROUNDS"
