#!/usr/bin/env bash
# Private D-Bus system bus + avahi-daemon restricted to the loopback interface, for tests and the demo.
#
# Usage: scripts/avahi-lo.sh {start|stop|restart|status|env|ensure|probe}
#   start    start a private dbus-daemon (--system, own socket) and an avahi-daemon on lo (no-op if running)
#   stop     stop both, by recorded PID only (PID, start time and command line must match)
#   restart  restart only the avahi-daemon (same config, same bus) and wait for "Server startup complete"
#   status   print state; exit 0 when the private daemons run, 3 when not
#   env      print "export DBUS_SYSTEM_BUS_ADDRESS=unix:path=$STATE/bus.sock" when the private daemon runs
#   ensure   exit 0 if an avahi-daemon is reachable on the current system bus; otherwise start the private one.
#            Prints the export line (stdout) whenever the private daemon is the one in use, so
#            `eval "$(scripts/avahi-lo.sh ensure)"` works.
#   probe    exit 0 iff an avahi-daemon is reachable (and running) on the current system bus
#
# Environment: MESHY_LO_STATE    state dir (default /tmp/meshy-lo-$(id -u)): config, logs, pid files, bus.sock
#              MESHY_LO_HOSTNAME mDNS host name of the private daemon (default meshy-lo)
# Needs root for start/stop/restart (re-runs itself through sudo otherwise). Loopback only: the daemon
# is restricted to "lo" (allow-interfaces=lo, use-ipv6=no), so no mDNS packet leaves the machine.
set -euo pipefail

SELF=$(readlink -f "${BASH_SOURCE[0]}")
ST=${MESHY_LO_STATE:-/tmp/meshy-lo-$(id -u)}
LO_HOSTNAME=${MESHY_LO_HOSTNAME:-meshy-lo}
ADDR="unix:path=$ST/bus.sock"

msg() { printf 'avahi-lo: %s\n' "$*" >&2; }
die() {
    msg "error: $*"
    exit 1
}
now_ms() { echo $(($(date +%s%N) / 1000000)); }

# ---- process bookkeeping: pid files hold "PID STARTTIME" so a recycled PID is never mistaken for ours ----
proc_starttime() { # PID -> field 22 of /proc/PID/stat (comm may contain spaces: parse after the last ')')
    local stat rest
    stat=$(cat "/proc/$1/stat" 2>/dev/null) || return 1
    rest=${stat##*) }
    # shellcheck disable=SC2086
    set -- $rest
    shift 19
    echo "$1"
}
alive() { # PID -> 0 while the process exists and is not a zombie (a reparented daemon stays a zombie until
    # PID 1 reaps it, which some container inits do late)
    local stat rest
    stat=$(cat "/proc/$1/stat" 2>/dev/null) || return 1
    rest=${stat##*) }
    [[ ${rest:0:1} != [ZX] ]]
}
record_pid() { # PIDFILE PID
    local t
    t=$(proc_starttime "$2") || return 1
    echo "$2 $t" >"$1"
}
live_pid() { # PIDFILE NAME -> prints PID when the recorded process is alive and is NAME
    local pid t cur
    [[ -f $1 ]] || return 1
    read -r pid t <"$1" || true
    [[ $pid =~ ^[0-9]+$ ]] || return 1
    alive "$pid" || return 1
    cur=$(proc_starttime "$pid") || return 1
    [[ -z $t || $cur == "$t" ]] || return 1
    grep -q -- "$2" <<<"$(tr '\0' ' ' <"/proc/$pid/cmdline" 2>/dev/null)" || return 1
    echo "$pid"
}
stop_pid() { # PIDFILE NAME: TERM, then KILL after 3 s (bounded)
    local pid i
    if pid=$(live_pid "$1" "$2"); then
        kill "$pid" 2>/dev/null || true
        for ((i = 0; i < 30; i++)); do
            alive "$pid" || break
            sleep 0.1
        done
        if alive "$pid"; then
            msg "$2 (pid $pid) did not exit after SIGTERM; sending SIGKILL"
            kill -9 "$pid" 2>/dev/null || true
            for ((i = 0; i < 20; i++)); do
                alive "$pid" || break
                sleep 0.1
            done
        fi
    fi
    rm -f "$1"
}

dbus_running() { live_pid "$ST/dbus.pid" dbus-daemon >/dev/null; }
avahi_running() { live_pid "$ST/avahi.pid" avahi-daemon >/dev/null; }
running() { dbus_running && avahi_running; }

# ---- reachability probe: pure D-Bus calls (no mDNS query, no bus activation), fails fast without a bus ----
probe_bus() { # [ADDRESS] -> 0 iff org.freedesktop.Avahi is owned on that bus and its server state is RUNNING (2)
    local out
    local -a bus=(--system)
    [[ -n ${1:-} ]] && bus=(--bus="$1")
    out=$(timeout 3 dbus-send "${bus[@]}" --print-reply=literal --reply-timeout=2000 --dest=org.freedesktop.DBus \
        /org/freedesktop/DBus org.freedesktop.DBus.NameHasOwner string:org.freedesktop.Avahi 2>/dev/null) || return 1
    [[ $out == *true* ]] || return 1
    out=$(timeout 3 dbus-send "${bus[@]}" --print-reply=literal --reply-timeout=2000 --dest=org.freedesktop.Avahi \
        / org.freedesktop.Avahi.Server.GetState 2>/dev/null) || return 1
    [[ $out =~ (^|[[:space:]])2[[:space:]]*$ ]]
}

# ---- privileges ----
is_root() { [[ $(id -u) -eq 0 ]]; }
as_root() { # re-run this script with CMD as root (same state dir)
    if is_root; then
        "$SELF" "$@"
    elif command -v sudo >/dev/null 2>&1; then
        local -a s=(sudo)
        [[ -t 0 ]] || s+=(-n)
        "${s[@]}" env MESHY_LO_STATE="$ST" MESHY_LO_HOSTNAME="$LO_HOSTNAME" "$SELF" "$@"
    else
        die "'$1' needs root (and sudo is not installed)"
    fi
}

prepare_state() {
    [[ -d $ST ]] || mkdir -m 0755 "$ST"
    [[ -d $ST && ! -L $ST ]] || die "$ST is not a directory"
    local owner
    owner=$(stat -c %u "$ST")
    [[ $owner == 0 || $owner == "$(id -u)" || $owner == "${SUDO_UID:-x}" ]] ||
        die "$ST is owned by uid $owner; refusing to use it (set MESHY_LO_STATE)"
    exec 9>"$ST/lock"
    flock -w 60 9 || die "could not lock $ST/lock within 60 s"
}

write_config() {
    cat >"$ST/avahi.conf.tmp" <<CONF
# generated by scripts/avahi-lo.sh: loopback-only avahi-daemon for meshy tests/demo
[server]
host-name=$LO_HOSTNAME
domain-name=local
use-ipv4=yes
use-ipv6=no
allow-interfaces=lo
enable-dbus=yes
disallow-other-stacks=no
ratelimit-interval-usec=1000000
ratelimit-burst=1000
# Limits for meshes of hundreds of nodes on one host (bench/idle_mesh.sh runs 200): each node is one
# client with a browser and one resolver a peer (defaults: 4096 clients, 1024 objects a client).
clients-max=4096
objects-per-client-max=4096
[wide-area]
enable-wide-area=no
[publish]
publish-hinfo=no
publish-workstation=no
publish-addresses=yes
publish-aaaa-on-ipv4=no
publish-domain=no
[reflector]
enable-reflector=no
CONF
    mv -f "$ST/avahi.conf.tmp" "$ST/avahi.conf"
}

# The system bus configuration with room for hundreds of clients: each meshy node using Avahi holds
# one connection, and every process here runs as the same user (default limit 256 a user).
write_dbus_config() {
    cat >"$ST/dbus.conf.tmp" <<'CONF'
<!DOCTYPE busconfig PUBLIC "-//freedesktop//DTD D-Bus Bus Configuration 1.0//EN"
 "http://www.freedesktop.org/standards/dbus/1.0/busconfig.dtd">
<busconfig>
  <include>/usr/share/dbus-1/system.conf</include>
  <limit name="max_connections_per_user">2048</limit>
  <limit name="max_completed_connections">4096</limit>
</busconfig>
CONF
    mv -f "$ST/dbus.conf.tmp" "$ST/dbus.conf"
}

start_dbus() {
    local pid i t0
    t0=$(now_ms)
    rm -f "$ST/bus.sock"
    write_dbus_config
    # own system bus on a private socket (no clash with /run/dbus); it forks, setsid()s and drops to messagebus
    dbus-daemon --config-file="$ST/dbus.conf" --address="$ADDR" --nopidfile --nosyslog --fork --print-pid \
        >"$ST/dbus.pid.new" 2>"$ST/dbus.log" </dev/null 9>&- || {
        cat "$ST/dbus.log" >&2
        die "dbus-daemon failed to start"
    }
    pid=$(head -n1 "$ST/dbus.pid.new")
    rm -f "$ST/dbus.pid.new"
    [[ $pid =~ ^[0-9]+$ ]] || die "dbus-daemon printed no pid"
    record_pid "$ST/dbus.pid" "$pid" || die "dbus-daemon (pid $pid) exited right away: $(cat "$ST/dbus.log")"
    for ((i = 0; i < 50; i++)); do # bounded: 5 s
        timeout 2 dbus-send --bus="$ADDR" --print-reply --dest=org.freedesktop.DBus /org/freedesktop/DBus \
            org.freedesktop.DBus.GetId >/dev/null 2>&1 && break
        sleep 0.1
    done
    ((i < 50)) || die "private D-Bus on $ADDR did not answer within 5 s"
    msg "dbus-daemon pid $pid on $ADDR ($(($(now_ms) - t0)) ms)"
}

start_avahi() {
    local pid i t0 st=""
    t0=$(now_ms)
    [[ -f $ST/avahi.log ]] && mv -f "$ST/avahi.log" "$ST/avahi.log.prev"
    : >"$ST/avahi.log"
    local -a av=(avahi-daemon -f "$ST/avahi.conf" --no-drop-root --no-chroot --no-rlimits)
    # The wrapper closes inherited descriptors (lock fd, test harness sockets) before exec'ing the daemon.
    # avahi-daemon's pid file path (/run/avahi-daemon/pid) is compiled in: give it a private tmpfs there in
    # a private mount namespace when we may (unshare -m needs CAP_SYS_ADMIN); setsid detaches it from the
    # caller's process group (Ctrl-C / ctest kills). Neither forks here, and 'exec' keeps $! == daemon pid.
    # shellcheck disable=SC2016
    local wrap='for f in /proc/self/fd/*; do f=${f##*/}; case $f in 0|1|2) ;; *) eval "exec $f>&-" 2>/dev/null;; esac; done'
    mkdir -p /run/avahi-daemon
    if unshare -m --propagation private true 2>/dev/null; then
        DBUS_SYSTEM_BUS_ADDRESS=$ADDR setsid unshare -m --propagation private bash -c \
            "$wrap"'; mount -t tmpfs -o mode=0755,size=1m tmpfs /run/avahi-daemon && exec "$@"' avahi-lo "${av[@]}" \
            >>"$ST/avahi.log" 2>&1 </dev/null 9>&- &
    else
        msg "warning: no private mount namespace (unshare -m failed); using the shared /run/avahi-daemon"
        DBUS_SYSTEM_BUS_ADDRESS=$ADDR setsid bash -c "$wrap"'; exec "$@"' avahi-lo "${av[@]}" \
            >>"$ST/avahi.log" 2>&1 </dev/null 9>&- &
    fi
    pid=$!
    # bounded wait (10 s) for the startup line; bail out early if the process died
    for ((i = 0; i < 100; i++)); do
        if grep -q 'Server startup complete' "$ST/avahi.log"; then
            st=ok
            break
        fi
        # Two mDNS responders cannot share lo: both claim the reverse record of 127.0.0.1, and the later
        # one renames itself forever. Fail fast instead of waiting out the timeout.
        if grep -q 'Host name conflict' "$ST/avahi.log"; then
            st=conflict
            break
        fi
        alive "$pid" || break
        sleep 0.1
    done
    if [[ $st != ok ]]; then
        kill "$pid" 2>/dev/null || true
        for ((i = 0; i < 30; i++)); do # bounded: 3 s
            alive "$pid" || break
            sleep 0.1
        done
        alive "$pid" && kill -9 "$pid" 2>/dev/null
        sed 's/^/  avahi.log: /' "$ST/avahi.log" >&2
        if [[ $st == conflict ]]; then
            msg "another mDNS responder is already active on the loopback interface, but no avahi-daemon is"
            msg "reachable on this D-Bus (${DBUS_SYSTEM_BUS_ADDRESS:-system bus}). Two responders cannot share lo."
            msg "Point DBUS_SYSTEM_BUS_ADDRESS at that daemon's bus, or stop it. avahi-daemon processes:"
            pgrep -a avahi-daemon | sed 's/^/  /' >&2 || true
            die "host name conflict on lo"
        fi
        die "avahi-daemon did not report 'Server startup complete' within 10 s"
    fi
    record_pid "$ST/avahi.pid" "$pid" || die "avahi-daemon (pid $pid) exited right after startup"
    live_pid "$ST/avahi.pid" avahi-daemon >/dev/null || die "pid $pid is not avahi-daemon (setsid forked?)"
    for ((i = 0; i < 50; i++)); do # bounded: 5 s, until reachable over D-Bus
        probe_bus "$ADDR" && break
        sleep 0.1
    done
    ((i < 50)) || die "avahi-daemon started but is not reachable on $ADDR"
    msg "avahi-daemon pid $pid on lo ($(($(now_ms) - t0)) ms)"
}

print_env() { echo "export DBUS_SYSTEM_BUS_ADDRESS=$ADDR"; }

cmd_start() {
    is_root || {
        as_root start
        return
    }
    prepare_state
    write_config
    if ! dbus_running; then
        stop_pid "$ST/avahi.pid" avahi-daemon # an avahi-daemon without its bus is useless (it exits anyway)
        # if the avahi-daemon then fails to come up, do not leave the bus we just started behind
        trap 'if (($? != 0)); then stop_pid "$ST/dbus.pid" dbus-daemon; rm -f "$ST/bus.sock"; fi' EXIT
        start_dbus
    fi
    if avahi_running && ! probe_bus "$ADDR"; then
        local i
        for ((i = 0; i < 50; i++)); do # it may just be starting up: bounded 5 s
            probe_bus "$ADDR" && break
            sleep 0.1
        done
        ((i < 50)) || stop_pid "$ST/avahi.pid" avahi-daemon
    fi
    if avahi_running; then
        msg "already running (dbus pid $(live_pid "$ST/dbus.pid" dbus-daemon), avahi pid $(live_pid "$ST/avahi.pid" avahi-daemon))"
    else
        start_avahi
    fi
    trap - EXIT
    print_env
}

cmd_stop() {
    if ! is_root; then
        if dbus_running || avahi_running; then
            as_root stop
        fi
        return 0
    fi
    [[ -d $ST ]] || return 0
    prepare_state
    stop_pid "$ST/avahi.pid" avahi-daemon
    stop_pid "$ST/dbus.pid" dbus-daemon
    rm -f "$ST/bus.sock"
    msg "stopped (logs kept in $ST)"
}

cmd_restart() {
    is_root || {
        as_root restart
        return
    }
    dbus_running || die "private D-Bus is not running (use: $0 start)"
    prepare_state
    local t0
    t0=$(now_ms)
    stop_pid "$ST/avahi.pid" avahi-daemon
    start_avahi
    msg "restart took $(($(now_ms) - t0)) ms"
}

cmd_status() {
    local d a
    d=$(live_pid "$ST/dbus.pid" dbus-daemon) || d=""
    a=$(live_pid "$ST/avahi.pid" avahi-daemon) || a=""
    echo "state dir: $ST"
    echo "dbus-daemon:  ${d:-not running}${d:+ (pid $d, $ADDR)}"
    echo "avahi-daemon: ${a:-not running}${a:+ (pid $a)}"
    if probe_bus "$ADDR"; then echo "private avahi reachable: yes"; else echo "private avahi reachable: no"; fi
    if probe_bus; then
        echo "avahi reachable on current system bus (${DBUS_SYSTEM_BUS_ADDRESS:-default}): yes"
    else
        echo "avahi reachable on current system bus (${DBUS_SYSTEM_BUS_ADDRESS:-default}): no"
    fi
    [[ -n $d && -n $a ]] || return 3
}

cmd_env() {
    if running; then print_env; fi
}

cmd_ensure() {
    if probe_bus; then
        # something answers on the current bus; if that bus is ours, keep clients pointed at it
        [[ ${DBUS_SYSTEM_BUS_ADDRESS:-} != "$ADDR" ]] || print_env
        return 0
    fi
    if running && probe_bus "$ADDR"; then
        print_env
        return 0
    fi
    as_root start >/dev/null
    if ! running || ! probe_bus "$ADDR"; then
        die "private avahi-daemon is not reachable after start"
    fi
    print_env
}

case ${1:-} in
    start) cmd_start ;;
    stop) cmd_stop ;;
    restart) cmd_restart ;;
    status) cmd_status ;;
    env) cmd_env ;;
    ensure) cmd_ensure ;;
    probe) probe_bus ;;
    -h | --help | help)
        sed -n '2,/^set -euo/p' "$SELF" | sed '$d; s/^# \{0,1\}//'
        ;;
    *)
        echo "usage: $0 {start|stop|restart|status|env|ensure|probe}" >&2
        exit 2
        ;;
esac
