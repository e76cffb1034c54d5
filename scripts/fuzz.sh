#!/bin/sh
# Builds the libFuzzer targets (tests/fuzz/fuzz_*.c) with clang, ASan and
# UBSan, and runs each for a while from its seed corpus.
#   scripts/fuzz.sh [seconds per target (30)] [build dir (build-fuzz)]
set -eu
cd "$(dirname "$0")/.."
SECONDS_PER_TARGET=${1:-30}
BUILD=${2:-build-fuzz}

cmake -S . -B "$BUILD" -DCMAKE_C_COMPILER=clang -DCMAKE_BUILD_TYPE=Debug \
    -DRINGGATE_FUZZ=ON -DRINGGATE_SANITIZE=ON -DRINGGATE_WERROR=ON >/dev/null
cmake --build "$BUILD" -j"$(nproc)" >/dev/null

status=0
for src in tests/fuzz/fuzz_*.c; do
    name=$(basename "$src" .c)
    seeds="tests/fuzz/corpus/${name#fuzz_}"
    work=$(mktemp -d)
    [ -d "$seeds" ] && cp -r "$seeds"/. "$work"/
    echo "fuzzing $name for ${SECONDS_PER_TARGET}s"
    if ! "$BUILD/$name" -max_total_time="$SECONDS_PER_TARGET" -timeout=10 -rss_limit_mb=2048 \
        -artifact_prefix="$BUILD/$name-" "$work" >"$BUILD/$name.log" 2>&1; then
        echo "$name found a problem:" >&2
        tail -n 60 "$BUILD/$name.log" >&2
        status=1
    else
        grep -E '^#[0-9]+.*DONE' "$BUILD/$name.log" || tail -n 1 "$BUILD/$name.log"
    fi
    rm -rf "$work"
done
exit $status
