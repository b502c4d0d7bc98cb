#!/usr/bin/env bash
# Idle cost of a mesh of N processes on one host, per discovery backend (issue 20: 200 idle nodes
# <= 5% of one core in total, <= 10 fds a node beyond its links, every node sees a new node within
# 1.5 s, `meshy node list` lists all of them).
#
# Usage: bench/idle_mesh.sh [-n N] [-b local|avahi|both] [-m discovery|node|both] [-w SECONDS] [-d BUILD_DIR]
#   -n N        processes (default 200)
#   -b BACKEND  discovery backend(s) (default both)
#   -m MODE     discovery: bench/idle_discovery, the discovery backend alone (no node, no links);
#               node: examples/topic_listener, a whole node (today's core dials every peer)
#               (default both)
#   -w SECONDS  CPU sampling window, 10-30 (default 15)
#   -d DIR      build directory (default build); needs idle_discovery, topic_listener, meshy
#
# For each mode and backend: starts N processes in a domain of their own, waits (at most 180 s)
# until every one sees the N-1 others (discovery mode) or `meshy node list` lists N (node mode),
# samples utime+stime from /proc/<pid>/stat over the window and counts /proc/<pid>/fd, then starts
# one more and times until all N saw it. Prints one table row each. Avahi needs a reachable
# avahi-daemon (eval "$(scripts/avahi-lo.sh ensure)"); its CPU over the window is reported too (on
# a shared daemon it includes whatever else uses it). Every process started is stopped on exit.
set -euo pipefail

N=200
BACKENDS=both
MODES=both
WINDOW=15
BUILD=build
while getopts "n:b:m:w:d:h" opt; do
    case $opt in
        n) N=$OPTARG ;;
        b) BACKENDS=$OPTARG ;;
        m) MODES=$OPTARG ;;
        w) WINDOW=$OPTARG ;;
        d) BUILD=$OPTARG ;;
        *)
            sed -n '2,/^set -euo/p' "$0" | sed '$d; s/^# \{0,1\}//'
            exit 2
            ;;
    esac
done
[[ $N =~ ^[0-9]+$ ]] && ((N >= 2 && N <= 1000)) || {
    echo "idle_mesh: -n must be 2..1000" >&2
    exit 2
}
[[ $WINDOW =~ ^[0-9]+$ ]] && ((WINDOW >= 1 && WINDOW <= 60)) || {
    echo "idle_mesh: -w must be 1..60" >&2
    exit 2
}
[[ $BACKENDS == both ]] && BACKENDS="local avahi"
[[ $MODES == both ]] && MODES="discovery node"
IDLE=$BUILD/bench/idle_discovery
LISTENER=$BUILD/examples/topic_listener
MESHY=$BUILD/tools/meshy
CONVERGE_LIMIT=180
JOIN_LIMIT=30
TICKS=$(getconf CLK_TCK)

TMP=$(mktemp -d /tmp/meshy-idle-mesh.XXXXXX)
PIDS=()
stop_all() {
    local pid i
    ((${#PIDS[@]} == 0)) && return 0
    kill -TERM "${PIDS[@]}" 2>/dev/null || true
    for ((i = 0; i < 100; i++)); do # bounded: 10 s, then SIGKILL
        local alive=0
        for pid in "${PIDS[@]}"; do
            kill -0 "$pid" 2>/dev/null && alive=1 && break
        done
        ((alive)) || break
        sleep 0.1
    done
    kill -KILL "${PIDS[@]}" 2>/dev/null || true
    wait "${PIDS[@]}" 2>/dev/null || true
    PIDS=()
}
trap 'stop_all; rm -rf "$TMP"' EXIT
trap 'exit 130' INT TERM

now_ns() { date +%s%N; }
cpu_ticks() { # PID... -> sum of utime+stime (fields 14, 15; parsed after the last ')')
    local pid total=0 stat rest
    for pid in "$@"; do
        stat=$(cat "/proc/$pid/stat" 2>/dev/null) || continue
        rest=${stat##*) }
        # shellcheck disable=SC2086
        set -- $rest
        total=$((total + ${12} + ${13}))
    done
    echo "$total"
}
daemon_pid() { # NAME -> pid recorded by scripts/avahi-lo.sh, if that is what runs
    local state=${MESHY_LO_STATE:-/tmp/meshy-lo-$(id -u)} pid
    [[ -f $state/$1.pid ]] || return 0
    read -r pid _ <"$state/$1.pid" || return 0
    [[ $pid =~ ^[0-9]+$ ]] && kill -0 "$pid" 2>/dev/null && echo "$pid"
}

# discovery mode: how many processes have seen all the others (ups minus downs, per output file)
converged_count() { # OUTDIR N
    awk -v want=$(($2 - 1)) '
        FNR == 1 { if (file != "") done += (n >= want); file = FILENAME; n = 0; delete up }
        $1 == "up" && !($2 in up) { up[$2] = 1; n++ }
        $1 == "down" && ($2 in up) { delete up[$2]; n-- }
        END { if (file != "") done += (n >= want); print done + 0 }' "$1"/out.*
}

node_list_count() { # DOMAIN BACKEND
    MESHY_DISCOVERY=$2 timeout 30 "$MESHY" --domain-id "$1" --discovery-time 3 node list 2>/dev/null |
        awk 'NR == 1 { print $1 + 0; exit }'
}

start_one() { # MODE BACKEND DOMAIN INDEX OUTDIR
    if [[ $1 == discovery ]]; then
        "$IDLE" "$2" "$3" >"$5/out.$4" 2>"$5/err.$4" &
    else
        MESHY_DISCOVERY=$2 "$LISTENER" --domain-id "$3" --name "idle$4" >"$5/out.$4" 2>"$5/err.$4" &
    fi
    PIDS+=($!)
}

printf '%-9s %-6s %5s %10s %9s %9s %8s %7s %9s %10s\n' mode backend nodes converge_s cpu%_all cpu%_node \
    fds_mean fds_max join_ms daemon_cpu%
for mode in $MODES; do
    for backend in $BACKENDS; do
        [[ $mode == discovery && ! -x $IDLE ]] && {
            echo "idle_mesh: $IDLE missing (cmake --build $BUILD --target idle_discovery)" >&2
            exit 1
        }
        [[ $mode == node && (! -x $LISTENER || ! -x $MESHY) ]] && {
            echo "idle_mesh: $LISTENER or $MESHY missing (cmake --build $BUILD --target topic_listener meshy_cli)" >&2
            exit 1
        }
        out=$TMP/$mode-$backend
        mkdir -p "$out"
        domain="idle-mesh-$$-$mode-$backend"
        export MESHY_LOCAL_DISCOVERY_DIR=$TMP/local-dir
        t0=$(now_ns)
        for ((i = 0; i < N; i++)); do
            start_one "$mode" "$backend" "$domain" "$i" "$out"
        done
        # Converge: every process sees every other (bounded).
        seen=0
        for ((tries = 0; tries < CONVERGE_LIMIT * 2; tries++)); do
            if [[ $mode == discovery ]]; then
                seen=$(converged_count "$out" "$N")
            else
                seen=$(node_list_count "$domain" "$backend")
            fi
            ((seen >= N)) && break
            (($(now_ns) - t0 > CONVERGE_LIMIT * 1000000000)) && break
            sleep 0.5
        done
        converge=$(awk -v ns=$(($(now_ns) - t0)) 'BEGIN { printf "%.1f", ns / 1e9 }')
        ((seen >= N)) || converge="no($seen)"
        # Idle: CPU over the window, and descriptors.
        avahi=$([[ $backend == avahi ]] && daemon_pid avahi || true)
        c0=$(cpu_ticks "${PIDS[@]}")
        d0=$([[ -n $avahi ]] && cpu_ticks "$avahi" || echo 0)
        w0=$(now_ns)
        sleep "$WINDOW"
        c1=$(cpu_ticks "${PIDS[@]}")
        d1=$([[ -n $avahi ]] && cpu_ticks "$avahi" || echo 0)
        w1=$(now_ns)
        fds=()
        for pid in "${PIDS[@]}"; do
            fds+=("$(find /proc/"$pid"/fd -mindepth 1 -maxdepth 1 2>/dev/null | wc -l)")
        done
        read -r fd_mean fd_max < <(printf '%s\n' "${fds[@]}" | awk '{ s += $1; if ($1 > m) m = $1 } END { printf "%.1f %d\n", s / NR, m }')
        read -r cpu_all cpu_node daemon < <(awk -v c=$((c1 - c0)) -v d=$((d1 - d0)) -v t="$TICKS" -v w=$((w1 - w0)) \
            -v n="$N" 'BEGIN { a = 100 * c / t / (w / 1e9); printf "%.2f %.3f %.2f\n", a, a / n, 100 * d / t / (w / 1e9) }')
        [[ -n $avahi ]] || daemon="-"
        # Join: one more process; time until all N have seen it (discovery) or node list shows N+1.
        j0=$(now_ns)
        start_one "$mode" "$backend" "$domain" "$N" "$out"
        join="-"
        if [[ $mode == discovery ]]; then
            newid=""
            for ((tries = 0; tries < JOIN_LIMIT * 100; tries++)); do
                newid=$(awk '$1 == "self" { print $2; exit }' "$out/out.$N" 2>/dev/null || true)
                [[ -n $newid ]] && break
                sleep 0.01
            done
            have=0
            for ((tries = 0; tries < JOIN_LIMIT * 20 && ${#newid} > 0; tries++)); do
                have=$({ grep -l "^up $newid " "$out"/out.* 2>/dev/null || true; } | wc -l)
                ((have >= N)) && break
                sleep 0.05
            done
            if ((have >= N)); then
                last=$(grep -h "^up $newid " "$out"/out.* | awk '{ if ($3 > m) m = $3 } END { print m }')
                join=$(((last - j0) / 1000000))
            else
                join="no($have)"
            fi
        else
            for ((tries = 0; tries < JOIN_LIMIT / 3; tries++)); do
                seen=$(node_list_count "$domain" "$backend")
                if ((seen >= N + 1)); then
                    join="<=$((($(now_ns) - j0) / 1000000))"
                    break
                fi
            done
        fi
        printf '%-9s %-6s %5s %10s %9s %9s %8s %7s %9s %10s\n' "$mode" "$backend" "$N" "$converge" "$cpu_all" \
            "$cpu_node" "$fd_mean" "$fd_max" "$join" "$daemon"
        stop_all
    done
done
