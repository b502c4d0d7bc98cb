#!/usr/bin/env bash
# Installs the dependencies, builds meshy and runs the whole test suite (ctest).
# Usage: scripts/test.sh [--sanitize] [extra ctest args...]
#   --sanitize   ASan+UBSan build in build-asan (MESHY_SANITIZERS=ON) instead of build
#   e.g.         scripts/test.sh -R discovery -V
# When no avahi-daemon is reachable on the system bus, a private loopback-only one is started through
# scripts/avahi-lo.sh (and stopped on exit); tests then get MESHY_TEST_AVAHI_CTL to restart it.
# Env: MESHY_JOBS (build/test parallelism, default 2). Exit status: ctest's.
set -euo pipefail

ROOT=$(cd "$(dirname "$(readlink -f "${BASH_SOURCE[0]}")")/.." && pwd)
cd "$ROOT"
JOBS=${MESHY_JOBS:-2}
AVAHI_LO="$ROOT/scripts/avahi-lo.sh"

BUILD_DIR=build
CMAKE_ARGS=(-DCMAKE_BUILD_TYPE=RelWithDebInfo -DMESHY_WARNINGS_AS_ERRORS=ON)
CTEST_EXTRA=()
SANITIZE=0
for a in "$@"; do
    case $a in
        --sanitize)
            BUILD_DIR=build-asan
            SANITIZE=1
            CMAKE_ARGS+=(-DMESHY_SANITIZERS=ON)
            export ASAN_OPTIONS=${ASAN_OPTIONS:-detect_leaks=1:abort_on_error=0}
            export UBSAN_OPTIONS=${UBSAN_OPTIONS:-print_stacktrace=1:halt_on_error=1}
            ;;
        -h | --help)
            sed -n '2,/^set -euo/p' "$0" | sed '$d; s/^# \{0,1\}//'
            exit 0
            ;;
        *) CTEST_EXTRA+=("$a") ;;
    esac
done

step() { printf '\n==> %s\n' "$*"; }

step "dependencies"
"$ROOT/scripts/deps.sh"

# The normal build also compiles the benchmarks (bench/), so they cannot rot; they are run by hand.
((SANITIZE)) || CMAKE_ARGS+=(-DMESHY_BUILD_BENCHMARKS=ON)

step "configure $BUILD_DIR"
if [[ -f $BUILD_DIR/CMakeCache.txt ]] && ! grep -q '^CMAKE_GENERATOR:INTERNAL=Ninja$' "$BUILD_DIR/CMakeCache.txt"; then
    echo "error: $BUILD_DIR was configured with another generator; remove it (rm -rf $BUILD_DIR) and rerun" >&2
    exit 1
fi
cmake -S . -B "$BUILD_DIR" -G Ninja "${CMAKE_ARGS[@]}"

step "build $BUILD_DIR"
cmake --build "$BUILD_DIR" -j"$JOBS"

# The independent MCAP reader the bag tests use (@mcap/core, @mcap/support), pinned by its package-lock.
if command -v npm >/dev/null 2>&1; then
    step "npm ci (tests/bag)"
    (cd tests/bag && npm ci --ignore-scripts --no-audit --no-fund --loglevel=error)
    # The bridge's independent clients (roslib, playwright-core driving Debian's chromium).
    step "npm ci (tests/bridge)"
    (cd tests/bridge && npm ci --ignore-scripts --no-audit --no-fund --loglevel=error)
    # Foxglove's side: @foxglove/ws-protocol's client, @mcap/core and ajv (tests/foxglove).
    step "npm ci (tests/foxglove)"
    (cd tests/foxglove && npm ci --ignore-scripts --no-audit --no-fund --loglevel=error)
fi

# Tests restart the private daemon through MESHY_TEST_AVAHI_CTL; that needs root (or password-less sudo,
# since ctest gives tests no terminal). Without it the restart tests skip.
export_ctl() {
    if [[ $(id -u) -eq 0 ]] || sudo -n true 2>/dev/null; then
        export MESHY_TEST_AVAHI_CTL="$AVAHI_LO"
    else
        unset MESHY_TEST_AVAHI_CTL
        echo "note: not root and no password-less sudo: avahi-daemon restart tests will skip"
    fi
}

step "avahi-daemon"
export MESHY_LO_STATE=${MESHY_LO_STATE:-/tmp/meshy-lo-$(id -u)}
avahi_started=0
ctest_pid=""
# shellcheck disable=SC2317 # invoked by the EXIT trap
cleanup() {
    local rc=$? i
    if [[ -n $ctest_pid ]] && kill -0 "$ctest_pid" 2>/dev/null; then
        # interrupted: stop ctest and the tests it runs (its own process group), bounded
        kill -TERM -- "-$ctest_pid" 2>/dev/null || true
        for ((i = 0; i < 50; i++)); do
            kill -0 -- "-$ctest_pid" 2>/dev/null || break
            sleep 0.1
        done
        kill -KILL -- "-$ctest_pid" 2>/dev/null || true
        wait "$ctest_pid" 2>/dev/null || true
    fi
    if ((avahi_started)); then
        "$AVAHI_LO" stop || true
    fi
    exit "$rc"
}
trap cleanup EXIT
trap 'exit 130' INT
trap 'exit 143' TERM

private_env=$("$AVAHI_LO" env)
if "$AVAHI_LO" probe; then
    if [[ -n $private_env && $private_env == "export DBUS_SYSTEM_BUS_ADDRESS=${DBUS_SYSTEM_BUS_ADDRESS:-}" ]]; then
        echo "using the private loopback avahi-daemon (${DBUS_SYSTEM_BUS_ADDRESS})"
        export_ctl
    else
        echo "using the avahi-daemon on the system bus (${DBUS_SYSTEM_BUS_ADDRESS:-default}); daemon-restart tests will skip"
        unset MESHY_TEST_AVAHI_CTL
    fi
else
    [[ -n $private_env ]] || avahi_started=1 # not running yet: this script starts it, so it stops it
    ensure_out=$("$AVAHI_LO" ensure)
    eval "$ensure_out"
    [[ -n ${DBUS_SYSTEM_BUS_ADDRESS:-} ]] || {
        echo "error: avahi-lo.sh ensure gave no bus address" >&2
        exit 1
    }
    export DBUS_SYSTEM_BUS_ADDRESS
    echo "using the private loopback avahi-daemon (${DBUS_SYSTEM_BUS_ADDRESS})"
    export_ctl
fi

step "ctest $BUILD_DIR"
rc=0
# ctest runs in its own process group (setsid) so that an interrupted run also stops the tests it started
# (ctest itself leaves them running when signalled); `wait` keeps this script responsive to INT/TERM.
setsid -w env --default-signal=INT ctest --test-dir "$BUILD_DIR" --output-on-failure --no-tests=error --timeout 300 \
    -j"$JOBS" "${CTEST_EXTRA[@]}" </dev/null &
ctest_pid=$!
wait "$ctest_pid" || rc=$?
ctest_pid=""
echo "ctest exit status: $rc"
exit "$rc"
