#!/bin/sh
# Builds the libFuzzer targets (tests/fuzz/fuzz_*.c) with clang, ASan and
# UBSan, and runs each for a while from its seed corpus.
#   scripts/fuzz.sh [seconds per target (30)] [build dir (build-fuzz)] [target...]
# Targets are named without "fuzz_" (http1 chunked config jwt schema); all by
# default. Ends with one line per target: seconds, executions, corpus size
# (seeds plus what the run added), and the result. Crashes are left in the
# build directory as <target>-crash-<sha1> (see docs/fuzzing.md).
set -eu
cd "$(dirname "$0")/.."
SECONDS_PER_TARGET=${1:-30}
BUILD=${2:-build-fuzz}
[ $# -gt 2 ] && shift 2 || set --

cmake -S . -B "$BUILD" -DCMAKE_C_COMPILER=clang -DCMAKE_BUILD_TYPE=Debug \
    -DRINGGATE_FUZZ=ON -DRINGGATE_SANITIZE=ON -DRINGGATE_WERROR=ON >/dev/null
cmake --build "$BUILD" -j"$(nproc)" >/dev/null

if [ $# -eq 0 ]; then
    for src in tests/fuzz/fuzz_*.c; do
        name=$(basename "$src" .c)
        set -- "$@" "${name#fuzz_}"
    done
fi

status=0
summary=""
for target in "$@"; do
    name=fuzz_$target
    seeds="tests/fuzz/corpus/$target"
    work=$(mktemp -d)
    [ -d "$seeds" ] && cp -r "$seeds"/. "$work"/
    echo "fuzzing $name for ${SECONDS_PER_TARGET}s"
    if ! "$BUILD/$name" -max_total_time="$SECONDS_PER_TARGET" -timeout=10 -rss_limit_mb=2048 \
        -print_final_stats=1 -artifact_prefix="$BUILD/$name-" "$work" >"$BUILD/$name.log" 2>&1; then
        echo "$name found a problem:" >&2
        tail -n 60 "$BUILD/$name.log" >&2
        result="FAILED (see $BUILD/$name.log and $BUILD/$name-*)"
        status=1
    else
        result="ok"
    fi
    runs=$(sed -n 's/^stat::number_of_executed_units: *//p' "$BUILD/$name.log")
    corpus=$(find "$work" -type f | wc -l)
    summary="$summary$(printf '%-10s %6ss %12s executions %6s inputs  %s' \
        "$target" "$SECONDS_PER_TARGET" "${runs:-?}" "$corpus" "$result")
"
    rm -rf "$work"
done
printf '\n%s' "$summary"
exit $status
