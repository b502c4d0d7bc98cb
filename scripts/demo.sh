#!/usr/bin/env bash
# Installs the dependencies, builds the examples and runs a small demo mesh on this machine:
# topic_listener + service_provider in the background, then topic_sender and service_caller.
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
BIN="$ROOT/$BUILD_DIR/examples"
for t in "${EXAMPLES[@]}"; do
    [[ -x $BIN/$t ]] || {
        echo "error: $BIN/$t was not built (is MESHY_BUILD_EXAMPLES off?)" >&2
        exit 1
    }
done

# start_bg LABEL READY_REGEX PROGRAM ARGS...: runs PROGRAM in the background (line-buffered, default
# SIGINT disposition), shows its output prefixed with "[LABEL] ", waits (max 5 s) for READY_REGEX.
start_bg() {
    local label=$1 ready=$2 out="$TMP/$1.out" pid i
    shift 2
    : >"$out"
    env --default-signal=INT stdbuf -oL -eL "$@" >"$out" 2>&1 </dev/null &
    pid=$!
    bg_pids+=("$pid")
    tail -s 0.1 -n +1 -f --pid="$pid" "$out" | sed -u "s/^/[$label] /" &
    tail_pids+=("$!")
    for ((i = 0; i < 50; i++)); do
        grep -q -- "$ready" "$out" && return 0
        alive "$pid" || break
        sleep 0.1
    done
    echo "error: $label did not print '$ready' within 5 s" >&2
    return 1
}

# run_fg LABEL PROGRAM ARGS...: runs PROGRAM to completion (bounded), output prefixed; returns its status
run_fg() {
    local label=$1 rc=0
    shift
    timeout -k 2 "$CLIENT_TIMEOUT" env --default-signal=INT stdbuf -oL -eL "$@" </dev/null 2>&1 |
        sed -u "s/^/[$label] /" || rc=$?
    if ((rc == 124)); then echo "error: $label timed out after ${CLIENT_TIMEOUT} s" >&2; fi
    return "$rc"
}

# stop_bg: SIGINT, then SIGTERM after 2 s, then SIGKILL after 2 more s (all bounded)
stop_bg() {
    local p i sig any running
    for sig in INT TERM KILL; do
        running=()
        for p in "${bg_pids[@]}"; do
            if alive "$p"; then running+=("$p"); fi
        done
        ((${#running[@]})) || break
        [[ $sig == INT ]] || echo "demo: sending SIG$sig to ${running[*]}" >&2
        kill "-$sig" "${running[@]}" 2>/dev/null || true
        for ((i = 0; i < 20; i++)); do
            any=0
            for p in "${running[@]}"; do
                if alive "$p"; then any=1; fi
            done
            ((any)) || break
            sleep 0.1
        done
    done
    for p in "${bg_pids[@]}" "${tail_pids[@]}"; do wait "$p" 2>/dev/null || true; done
    bg_pids=()
    tail_pids=()
    return 0
}

# ---- everything below is bounded in time and cleaned up on exit ----
TMP=$(mktemp -d "${TMPDIR:-/tmp}/meshy-demo.XXXXXX")
export MESHY_LO_STATE=${MESHY_LO_STATE:-/tmp/meshy-lo-$(id -u)}
avahi_started=0
bg_pids=()  # background examples (ours)
tail_pids=() # their output followers
# shellcheck disable=SC2317 # invoked by the EXIT trap
cleanup() {
    local rc=$?
    stop_bg # bounded: INT, TERM, KILL
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

step "demo mesh (domain $DOMAIN)"
t0=$(now_ms)
cd "$BIN"
start_bg listener 'Listening\.\.\.' ./topic_listener --name listener --domain-id "$DOMAIN"
start_bg provider 'Started service\.\.\.' ./service_provider --name provider --domain-id "$DOMAIN"

sender_rc=0
caller_rc=0
run_fg sender ./topic_sender --name sender --domain-id "$DOMAIN" || sender_rc=$?
run_fg caller ./service_caller --name caller --domain-id "$DOMAIN" || caller_rc=$?

# give the listener a moment (bounded, 2 s) to print what it received
for ((i = 0; i < 20; i++)); do
    grep -q 'Received "hello world"' "$TMP/listener.out" && break
    sleep 0.1
done
stop_bg
cd "$ROOT"

step "summary ($(($(now_ms) - t0)) ms)"
if grep -q 'Received "hello world"' "$TMP/listener.out"; then
    echo "listener received the topic message"
else
    echo "warning: the listener did not report receiving the message"
fi
echo "topic_sender exit status: $sender_rc"
echo "service_caller exit status: $caller_rc"
if ((sender_rc == 0 && caller_rc == 0)); then
    echo "demo OK"
    exit 0
fi
echo "demo FAILED"
exit 1
