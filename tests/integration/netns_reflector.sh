#!/usr/bin/env bash
# Two subnets joined by a router that reflects mDNS (Avahi's enable-reflector=yes), in network
# namespaces, for the reflector test (reach_test.cpp).
#
#   netns_reflector.sh up PREFIX NET STATE   hosts PREFIX-a (NET.1.2/24) and PREFIX-b (NET.2.2/24),
#                                            router PREFIX-r (NET.1.1, NET.2.1; IP forwarding on)
#   netns_reflector.sh run PREFIX STATE a|b|r CMD...   CMD on that host, with its own system bus
#   netns_reflector.sh down PREFIX NET STATE
#
# NET is two octets (10.232). Each namespace runs its own dbus-daemon and avahi-daemon: 'ip netns
# exec' gives a private mount namespace, where STATE/<host>/run-dbus and run-avahi are bind-mounted
# on /run/dbus and /run/avahi-daemon (the daemons' compiled-in paths). A blackhole route for
# NET.0.0/16 goes into the host namespace FIRST: nothing aimed at the test subnets leaves the
# machine. Needs root. Every wait is bounded.
set -euo pipefail
cmd=${1:-}
pfx=${2:?prefix}

run_in() { # HOST CMD...
    local host=$1 st=$2
    shift 2
    # The host's own bus (DBUS_SYSTEM_BUS_ADDRESS of a test run) is not this host's.
    exec env -u DBUS_SYSTEM_BUS_ADDRESS ip netns exec "$pfx-$host" sh -c \
        'mount --bind "$0/run-dbus" /run/dbus && mount --bind "$0/run-avahi" /run/avahi-daemon && exec "$@"' \
        "$st/$host" "$@"
}

case $cmd in
    up)
        net=${3:?net} st=${4:?state}
        ip route replace blackhole "$net.0.0/16"
        mkdir -p /run/dbus /run/avahi-daemon
        for h in a b r; do
            ip netns add "$pfx-$h"
            ip -n "$pfx-$h" link set lo up
            mkdir -p "$st/$h/run-dbus" "$st/$h/run-avahi"
        done
        ip link add veth-a netns "$pfx-a" type veth peer name ra netns "$pfx-r"
        ip link add veth-b netns "$pfx-b" type veth peer name rb netns "$pfx-r"
        ip -n "$pfx-a" addr add "$net.1.2/24" dev veth-a
        ip -n "$pfx-b" addr add "$net.2.2/24" dev veth-b
        ip -n "$pfx-r" addr add "$net.1.1/24" dev ra
        ip -n "$pfx-r" addr add "$net.2.1/24" dev rb
        for l in "a veth-a" "b veth-b" "r ra" "r rb"; do
            set -- $l
            ip -n "$pfx-$1" link set "$2" multicast on up
        done
        ip -n "$pfx-a" route add default via "$net.1.1"
        ip -n "$pfx-b" route add default via "$net.2.1"
        ip netns exec "$pfx-r" sysctl -qw net.ipv4.ip_forward=1
        for h in a b r; do
            ifaces=veth-$h reflect=no
            [[ $h == r ]] && ifaces=ra,rb reflect=yes
            cat >"$st/$h/avahi.conf" <<CONF
[server]
host-name=$pfx-$h
domain-name=local
use-ipv4=yes
use-ipv6=no
allow-interfaces=$ifaces
enable-dbus=yes
ratelimit-interval-usec=1000000
ratelimit-burst=1000
[wide-area]
enable-wide-area=no
[publish]
publish-hinfo=no
publish-workstation=no
[reflector]
enable-reflector=$reflect
CONF
            ("$0" run "$pfx" "$st" "$h" dbus-daemon --system --nosyslog --fork --print-pid >/dev/null)
            ("$0" run "$pfx" "$st" "$h" avahi-daemon -f "$st/$h/avahi.conf" --no-drop-root --no-chroot --no-rlimits \
                >"$st/$h/avahi.log" 2>&1 &)
        done
        for h in a b r; do
            for ((i = 0; i < 100; i++)); do
                grep -q 'Server startup complete' "$st/$h/avahi.log" 2>/dev/null && break
                sleep 0.1
            done
            grep -q 'Server startup complete' "$st/$h/avahi.log" || {
                cat "$st/$h/avahi.log" >&2
                exit 1
            }
        done
        ;;
    run)
        st=${3:?state} host=${4:?host}
        shift 4
        run_in "$host" "$st" "$@"
        ;;
    down)
        net=${3:?net} st=${4:?state}
        "$(dirname "$0")/netns_lab.sh" remove "$pfx"
        ip route del blackhole "$net.0.0/16" 2>/dev/null || true
        rm -rf "$st"
        ;;
    *)
        echo "usage: $0 up PREFIX NET STATE | run PREFIX STATE HOST CMD... | down PREFIX NET STATE" >&2
        exit 2
        ;;
esac
