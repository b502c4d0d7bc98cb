#!/usr/bin/env bash
# Convergence of a mesh joined by one static peer (issue 25: 50 nodes that know one static peer
# converge within 3 s). Loopback only, MESHY_DISCOVERY=static (no daemon).
#
# Usage: bench/static_peers.sh [-n N] [-r RUNS] [-p PORT] [-d BUILD_DIR]
#   -n N     nodes besides the well-known one (default 50)
#   -r RUNS  repetitions (default 3)
#   -p PORT  TCP port of the well-known node on 127.0.0.1 (default 17461)
#   -d DIR   build directory (default build); needs tests/integration/meshy_test_node
#
# Each run starts the well-known node (meshy_test_node provide --listen-port PORT), then N nodes at
# once, each given only that address (meshy_test_node nodes --expect N --stay: it prints NODES_END
# once it knows the N others, the well-known one included, and stays). The time is from starting
# the N to the last NODES_END, polled every 10 ms (bounded: 60 s). Every process started is
# stopped on exit.
set -euo pipefail

N=50
RUNS=3
PORT=17461
BUILD=build
while getopts "n:r:p:d:h" opt; do
    case $opt in
        n) N=$OPTARG ;;
        r) RUNS=$OPTARG ;;
        p) PORT=$OPTARG ;;
        d) BUILD=$OPTARG ;;
        *)
            sed -n '2,/^set -euo/p' "$0" | sed '$d; s/^# \{0,1\}//'
            exit 2
            ;;
    esac
done
NODE=$BUILD/tests/integration/meshy_test_node
[[ -x $NODE ]] || {
    echo "no $NODE (cmake --build $BUILD --target meshy_test_node)" >&2
    exit 2
}
DIR=$(mktemp -d /tmp/meshy-static-bench.XXXXXX)
PIDS=()
cleanup() {
    for pid in "${PIDS[@]}"; do kill "$pid" 2>/dev/null || true; done
    for pid in "${PIDS[@]}"; do wait "$pid" 2>/dev/null || true; done
    PIDS=()
}
trap 'cleanup; rm -rf "$DIR"' EXIT
export MESHY_DISCOVERY=static MESHY_LISTEN_HOST=127.0.0.1

echo "| nodes | run | converged (ms) |"
echo "|---|---|---|"
for ((run = 1; run <= RUNS; run++)); do
    export MESHY_DOMAIN_ID="static-bench-$$-$run"
    rm -f "$DIR"/*.log
    "$NODE" provide --name hub --listen-port "$PORT" >"$DIR/hub.log" 2>&1 &
    PIDS+=($!)
    for ((i = 0; i < 100; i++)); do
        grep -q READY "$DIR/hub.log" && break
        sleep 0.05
    done
    grep -q READY "$DIR/hub.log" || {
        cat "$DIR/hub.log" >&2
        exit 1
    }
    t0=$(date +%s%N)
    for ((i = 1; i <= N; i++)); do
        "$NODE" nodes --expect "$N" --stay --name "n$i" --wait-timeout-ms 60000 --peer "tcp/127.0.0.1:$PORT" \
            >"$DIR/n$i.log" 2>&1 &
        PIDS+=($!)
    done
    done_count=0
    deadline=$((t0 + 60 * 1000000000))
    while (($(date +%s%N) < deadline)); do
        done_count=$(cat "$DIR"/n*.log 2>/dev/null | grep -c NODES_END || true)
        ((done_count >= N)) && break
        sleep 0.01
    done
    t1=$(date +%s%N)
    if ((done_count < N)); then
        echo "| $N | $run | not converged within 60 s ($done_count of $N) |"
    else
        echo "| $N | $run | $(((t1 - t0) / 1000000)) |"
    fi
    cleanup
done
