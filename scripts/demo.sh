#!/usr/bin/env bash
# Installs the dependencies, builds the examples and the CLI, and runs the demo mesh with
# `meshy launch examples/launch.yaml`: topic_listener, service_provider, topic_sender, service_caller.
# Usage: scripts/demo.sh
# Ends by itself (about 10 s after the build). Uses a private loopback-only avahi-daemon when none is
# reachable (scripts/avahi-lo.sh; stopped again on exit) and a unique domain id, so it never mixes with
# other meshes. Env: MESHY_JOBS (build parallelism, default 2), MESHY_DEMO_TIMEOUT (per client, default 8 s).
set -euo pipefail

ROOT=$(cd "$(dirname "$(readlink -f "${BASH_SOURCE[0]}")")/.." && pwd)
cd "$ROOT"
JOBS=${MESHY_JOBS:-2}
CLIENT_TIMEOUT=${MESHY_DEMO_TIMEOUT:-8}
AVAHI_LO="$ROOT/scripts/avahi-lo.sh"
BUILD_DIR=build
EXAMPLES=(topic_listener topic_sender service_provider service_caller)
DOMAIN="demo-$$"

step() { printf '\n==> %s\n' "$*"; }
alive() { # PID -> 0 while it runs (a zombie does not count)
    local stat
    stat=$(cat "/proc/$1/stat" 2>/dev/null) || return 1
    stat=${stat##*) }
    [[ ${stat:0:1} != [ZX] ]]
}
now_ms() { echo $(($(date +%s%N) / 1000000)); }

case ${1:-} in
    "") ;;
    -h | --help)
        sed -n '2,/^set -euo/p' "$0" | sed '$d; s/^# \{0,1\}//'
        exit 0
        ;;
    *)
        echo "usage: $0" >&2
        exit 2
        ;;
esac

step "dependencies"
"$ROOT/scripts/deps.sh"

step "configure + build $BUILD_DIR"
if [[ -f $BUILD_DIR/CMakeCache.txt ]] && ! grep -q '^CMAKE_GENERATOR:INTERNAL=Ninja$' "$BUILD_DIR/CMakeCache.txt"; then
    echo "error: $BUILD_DIR was configured with another generator; remove it (rm -rf $BUILD_DIR) and rerun" >&2
    exit 1
fi
cmake -S . -B "$BUILD_DIR" -G Ninja -DCMAKE_BUILD_TYPE=RelWithDebInfo -DMESHY_WARNINGS_AS_ERRORS=ON
targets=()
known=$(ninja -C "$BUILD_DIR" -t targets all 2>/dev/null | sed -n 's/^\([^:]*\):.*/\1/p') || known=""
for t in "${EXAMPLES[@]}"; do
    if grep -qx -- "$t" <<<"$known"; then targets+=("$t"); fi
done
if ((${#targets[@]} == ${#EXAMPLES[@]})); then
    cmake --build "$BUILD_DIR" -j"$JOBS" --target "${targets[@]}"
else
    cmake --build "$BUILD_DIR" -j"$JOBS"
fi
cmake --build "$BUILD_DIR" -j"$JOBS" --target meshy_cli
BIN="$ROOT/$BUILD_DIR/examples"
MESHY="$ROOT/$BUILD_DIR/tools/meshy"
[[ -x $MESHY ]] || {
    echo "error: $MESHY was not built (is MESHY_BUILD_TOOLS off?)" >&2
    exit 1
}
for t in "${EXAMPLES[@]}"; do
    [[ -x $BIN/$t ]] || {
        echo "error: $BIN/$t was not built (is MESHY_BUILD_EXAMPLES off?)" >&2
        exit 1
    }
done

# ---- everything below is bounded in time and cleaned up on exit ----
TMP=$(mktemp -d "${TMPDIR:-/tmp}/meshy-demo.XXXXXX")
export MESHY_LO_STATE=${MESHY_LO_STATE:-/tmp/meshy-lo-$(id -u)}
avahi_started=0
launch_pid=""
# shellcheck disable=SC2317 # invoked by the EXIT trap
cleanup() {
    local rc=$?
    # bounded: launch itself escalates INT -> TERM -> KILL within its grace periods
    if [[ -n $launch_pid ]]; then
        kill -INT "$launch_pid" 2>/dev/null || true
        wait "$launch_pid" 2>/dev/null || true
    fi
    if ((avahi_started)); then "$AVAHI_LO" stop || true; fi
    rm -rf "$TMP"
    exit "$rc"
}
trap cleanup EXIT
trap 'exit 130' INT
trap 'exit 143' TERM

step "avahi-daemon"
private_env=$("$AVAHI_LO" env)
if "$AVAHI_LO" probe; then
    echo "using the avahi-daemon on the current system bus (${DBUS_SYSTEM_BUS_ADDRESS:-default})"
else
    [[ -n $private_env ]] || avahi_started=1
    ensure_out=$("$AVAHI_LO" ensure)
    eval "$ensure_out"
    export DBUS_SYSTEM_BUS_ADDRESS
    echo "using the private loopback avahi-daemon (${DBUS_SYSTEM_BUS_ADDRESS:-?})"
fi

step "demo mesh (domain $DOMAIN): meshy launch examples/launch.yaml"
t0=$(now_ms)
out="$TMP/launch.out"
: >"$out"
PATH="$BIN:$PATH" "$MESHY" --domain-id "$DOMAIN" launch "$ROOT/examples/launch.yaml" >"$out" 2>&1 </dev/null &
launch_pid=$!
tail -s 0.1 -n +1 -f --pid="$launch_pid" "$out" &
tail_pid=$!
for ((i = 0; i < CLIENT_TIMEOUT * 10; i++)); do # both clients end by themselves (bounded)
    grep -q '^\[launch\] topic_sender (pid [0-9]*) ended' "$out" &&
        grep -q '^\[launch\] service_caller (pid [0-9]*) ended' "$out" && break
    kill -0 "$launch_pid" 2>/dev/null || break
    sleep 0.1
done
kill -INT "$launch_pid" 2>/dev/null || true
launch_rc=0
wait "$launch_pid" || launch_rc=$?
launch_pid=""
wait "$tail_pid" 2>/dev/null || true

step "summary ($(($(now_ms) - t0)) ms)"
ok=1
if grep -q '^\[topic_listener\] Received "hello world"' "$out"; then
    echo "listener received the topic message"
else
    echo "the listener did not report the message"
    ok=0
fi
if grep -q '^\[service_caller\] Result: 4' "$out"; then
    echo "service_caller got 2 * 2 = 4"
else
    echo "service_caller got no result"
    ok=0
fi
echo "meshy launch exit status: $launch_rc"
if ((ok && launch_rc == 0)); then
    echo "demo OK"
    echo
    echo "Binaries: the CLI is $MESHY, the examples are in $BIN/; put them on your PATH with"
    echo "  export PATH=$ROOT/$BUILD_DIR/tools:$BIN:\$PATH"
    echo "Next: 'meshy topic echo chatter' in one terminal, 'meshy topic send chatter hi' in another (README: Five minutes with meshy)"
    exit 0
fi
echo "demo FAILED"
exit 1
