#!/usr/bin/env bash
# Two simulated hosts for the chaos suite: network namespaces <prefix>-a and <prefix>-b joined by a
# veth pair, each with its own dbus-daemon and avahi-daemon (never the machine's or the shared test
# daemon). Needs root. A blackhole route for the test subnet is installed FIRST in the host namespace,
# so nothing aimed at the namespaces can leave through a real interface.
#
# Usage: netns.sh STATE_DIR up PREFIX SUBNET      SUBNET as "10.214.7" (hosts .1 = a, .2 = b)
#        netns.sh STATE_DIR run a|b CMD...         runs CMD "on" that host (its own /run/dbus, /run/avahi-daemon)
#        netns.sh STATE_DIR link down|up           the veth of host a (host b sees its link go too)
#        netns.sh STATE_DIR avahi-restart a|b      kill -9 that host's avahi-daemon, start it again, wait for it
#        netns.sh STATE_DIR dbus-restart a|b       kill -9 that host's dbus-daemon and avahi-daemon, start both
#        netns.sh STATE_DIR down                   stop what `up` started (by recorded PID), remove all of it
set -euo pipefail
ST=$1
CMD=$2
shift 2

die() {
    echo "netns.sh: $*" >&2
    exit 1
}

# The command line that runs something "on" host $1: inside `ip netns exec`'s private mount namespace,
# with that host's /run/dbus and /run/avahi-daemon bind-mounted (so the default D-Bus path works).
ns_prefix() {
    local prefix
    prefix=$(cat "$ST/prefix")
    # shellcheck disable=SC2016 # $0 and $@ expand in the inner shell
    NS=(ip netns exec "$prefix-$1" env -u DBUS_SYSTEM_BUS_ADDRESS sh -c
        'mount --bind "$0/run-dbus" /run/dbus && mount --bind "$0/run-avahi" /run/avahi-daemon && exec "$@"'
        "$ST/$1")
}

nsrun() { # host cmd...
    ns_prefix "$1"
    shift
    "${NS[@]}" "$@"
}

wait_for_log() { # file text seconds
    local i
    for ((i = 0; i < $3 * 10; i++)); do
        grep -q "$2" "$1" 2>/dev/null && return 0
        sleep 0.1
    done
    return 1
}

start_dbus() {
    rm -f "$ST/$1/run-dbus/pid" "$ST/$1/run-dbus/system_bus_socket"
    nsrun "$1" dbus-daemon --system --nosyslog --fork --print-pid >"$ST/$1/dbus.pid"
}

start_avahi() {
    rm -f "$ST/$1/run-avahi/pid"
    : >"$ST/$1/avahi.log"
    nsrun "$1" avahi-daemon -f "$ST/$1/avahi.conf" --no-drop-root --no-chroot --no-rlimits \
        >>"$ST/$1/avahi.log" 2>&1 &
    wait_for_log "$ST/$1/avahi.log" 'Server startup complete' 10 || {
        cat "$ST/$1/avahi.log" >&2
        die "avahi-daemon of host $1 did not start"
    }
}

kill_recorded() { # pid file
    local pid
    pid=$(tr -dc '0-9' <"$1" 2>/dev/null || true)
    [[ -n $pid ]] || return 0
    kill -9 "$pid" 2>/dev/null || true
    for _ in $(seq 1 50); do
        kill -0 "$pid" 2>/dev/null || return 0
        sleep 0.1
    done
}

case $CMD in
    up)
        PREFIX=$1
        NET=$2
        mkdir -p "$ST" /run/dbus /run/avahi-daemon
        echo "$PREFIX" >"$ST/prefix"
        echo "$NET" >"$ST/subnet"
        ip route add blackhole "$NET.0/24" # first: host-side traffic to the test subnet never leaves
        ip netns add "$PREFIX-a"
        ip netns add "$PREFIX-b"
        ip link add mva netns "$PREFIX-a" type veth peer name mvb netns "$PREFIX-b"
        ip -n "$PREFIX-a" addr add "$NET.1/24" dev mva
        ip -n "$PREFIX-b" addr add "$NET.2/24" dev mvb
        for n in a b; do
            ip -n "$PREFIX-$n" link set lo up
            ip -n "$PREFIX-$n" link set "mv$n" up
            mkdir -p "$ST/$n/run-dbus" "$ST/$n/run-avahi"
            cat >"$ST/$n/avahi.conf" <<CONF
[server]
host-name=$PREFIX-$n
domain-name=local
use-ipv4=yes
use-ipv6=no
allow-interfaces=mv$n
use-iff-running=yes
enable-dbus=yes
ratelimit-interval-usec=1000000
ratelimit-burst=1000
[wide-area]
enable-wide-area=no
[publish]
publish-hinfo=no
publish-workstation=no
CONF
            start_dbus "$n"
            start_avahi "$n"
        done
        ;;
    run)
        # exec: the caller's process becomes the command (a test kills it by that pid)
        ns_prefix "$1"
        shift
        exec "${NS[@]}" "$@"
        ;;
    link)
        ip -n "$(cat "$ST/prefix")-a" link set mva "$1"
        ;;
    avahi-restart)
        kill_recorded "$ST/$1/run-avahi/pid"
        start_avahi "$1"
        ;;
    dbus-restart)
        kill_recorded "$ST/$1/run-avahi/pid"
        kill_recorded "$ST/$1/dbus.pid"
        start_dbus "$1"
        start_avahi "$1"
        ;;
    down)
        [[ -f $ST/prefix ]] || exit 0
        PREFIX=$(cat "$ST/prefix")
        NET=$(cat "$ST/subnet")
        for n in a b; do
            kill_recorded "$ST/$n/run-avahi/pid"
            kill_recorded "$ST/$n/dbus.pid"
        done
        ip netns del "$PREFIX-a" 2>/dev/null || true
        ip netns del "$PREFIX-b" 2>/dev/null || true
        ip route del blackhole "$NET.0/24" 2>/dev/null || true
        rm -rf "$ST"
        ;;
    *)
        die "unknown command $CMD"
        ;;
esac
