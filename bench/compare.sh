#!/bin/sh
# Peer comparison (raw sockets, ZeroMQ, meshy; an Asio floor for calls) pinned to CPU 0 and unpinned, median of 3 runs each.
# Usage: bench/compare.sh [build dir] [extra peer_compare options]
# Needs a build with -DMESHY_BUILD_BENCHMARKS=ON (and libzmq3-dev).
set -eu
build=${1:-build}
[ $# -gt 0 ] && shift
exe="$build/bench/peer_compare"
[ -x "$exe" ] || { echo "compare.sh: $exe not found; configure with -DMESHY_BUILD_BENCHMARKS=ON" >&2; exit 1; }
echo "machine: $(nproc) CPUs, $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | sed 's/^ //')"
# Pinned: peer_compare pins itself and its fork()ed peer to CPU 0 (what `taskset -c 0` does for both).
exec "$exe" --runs 3 "$@"
