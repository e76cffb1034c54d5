#!/bin/sh
# Installs the Debian packages ringgate needs that are missing.
#   scripts/install-deps.sh build   packages to build and run
#   scripts/install-deps.sh test    build packages plus what the tests use
#   scripts/install-deps.sh package build packages plus what CPack needs (deb, rpm)
#   scripts/install-deps.sh bench   build packages plus what perf/harness.sh (make bench) uses
set -eu

BUILD_PKGS="build-essential cmake pkg-config liburing-dev libyaml-dev libpcre2-dev libhiredis-dev android-libboringssl-dev libssl-dev"
TEST_PKGS="python3 python3-pytest python3-pytest-timeout python3-requests python3-jwt python3-cryptography python3-websockets python3-prometheus-client clang libclang-rt-14-dev curl openssl redis-server nginx-light haproxy wrk rpm file dpkg-dev"
PACKAGE_PKGS="rpm file dpkg-dev"
BENCH_PKGS="wrk nginx-light haproxy redis-server curl openssl time iproute2 util-linux python3 python3-jwt python3-matplotlib valgrind"

case "${1:-build}" in
  build) want="$BUILD_PKGS" ;;
  test) want="$BUILD_PKGS $TEST_PKGS" ;;
  package) want="$BUILD_PKGS $PACKAGE_PKGS" ;;
  bench) want="$BUILD_PKGS $BENCH_PKGS" ;;
  *) echo "usage: $0 build|test|package|bench" >&2; exit 2 ;;
esac

missing=""
for p in $want; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing="$missing $p"
done
[ -z "$missing" ] && exit 0

SUDO=""
[ "$(id -u)" -ne 0 ] && SUDO="sudo"
echo "installing:$missing"
export DEBIAN_FRONTEND=noninteractive
$SUDO apt-get update -qq || true
# shellcheck disable=SC2086
$SUDO apt-get install -y -qq --no-install-recommends $missing
