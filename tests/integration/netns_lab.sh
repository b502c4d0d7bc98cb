#!/usr/bin/env bash
# Network namespaces for the reach tests: simulated hosts on one private subnet, no multicast
# daemon, nothing routed off the machine.
#
#   netns_lab.sh up PREFIX SUBNET N   hosts PREFIX-1..N with SUBNET.1..N/24, joined by a bridge in PREFIX-sw
#   netns_lab.sh down PREFIX SUBNET   stops what runs in them (their own processes only), removes them
#   netns_lab.sh remove PREFIX        only that, for every namespace PREFIX-* (netns_reflector.sh)
#
# SUBNET is three octets (10.231.7). A blackhole route for SUBNET.0/24 goes into the host namespace
# FIRST, so that nothing the host sends to the test subnet can leave through a real interface.
# Needs root. Every wait is bounded.
set -euo pipefail
cmd=${1:-}
pfx=${2:?prefix}

stop_ns() { # stop what runs inside one namespace (TERM, then KILL after 2 s), then delete it
    local ns=$1 pid i
    grep -qw "$ns" <<<"$(ip netns list)" || return 0
    for pid in $(ip netns pids "$ns" 2>/dev/null); do kill "$pid" 2>/dev/null || true; done
    for ((i = 0; i < 20; i++)); do
        [[ -z $(ip netns pids "$ns" 2>/dev/null) ]] && break
        sleep 0.1
    done
    for pid in $(ip netns pids "$ns" 2>/dev/null); do kill -9 "$pid" 2>/dev/null || true; done
    ip netns del "$ns" 2>/dev/null || true
}

case $cmd in
    up)
        net=${3:?subnet (three octets)} n=${4:?count}
        ip route replace blackhole "$net.0/24"
        ip netns add "$pfx-sw"
        ip -n "$pfx-sw" link add br0 type bridge
        ip -n "$pfx-sw" link set br0 up
        for ((i = 1; i <= n; i++)); do
            ip netns add "$pfx-$i"
            ip -n "$pfx-$i" link set lo up
            ip link add "eth$i" netns "$pfx-$i" type veth peer name "p$i" netns "$pfx-sw"
            ip -n "$pfx-$i" link set "eth$i" name eth0
            ip -n "$pfx-$i" addr add "$net.$i/24" dev eth0
            ip -n "$pfx-$i" link set eth0 up
            ip -n "$pfx-sw" link set "p$i" master br0
            ip -n "$pfx-sw" link set "p$i" up
        done
        ;;
    down)
        net=${3:?subnet (three octets)}
        "$0" remove "$pfx"
        ip route del blackhole "$net.0/24" 2>/dev/null || true
        ;;
    remove)
        for ns in $(ip netns list | awk '{print $1}' | grep -E "^$pfx-[a-z0-9]+$" || true); do
            stop_ns "$ns"
        done
        ;;
    *)
        echo "usage: $0 up PREFIX SUBNET N | down PREFIX SUBNET | remove PREFIX" >&2
        exit 2
        ;;
esac
