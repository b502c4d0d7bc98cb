#!/usr/bin/env bash
# Installs the Debian/Ubuntu packages meshy needs to build, test, fuzz and run the demo.
# Usage: scripts/deps.sh [extra-package ...]
# Idempotent: packages already installed are detected with dpkg-query and apt is skipped entirely when
# nothing is missing; `apt-get update` runs only when something must be installed. Uses sudo when not root.
set -euo pipefail

# The package list: add new build/test dependencies here.
MESHY_PACKAGES="build-essential cmake ninja-build pkg-config libasio-dev libavahi-client-dev avahi-daemon avahi-utils
dbus libmsgpack-cxx-dev libcereal-dev libcli11-dev libgtest-dev libgmock-dev libbenchmark-dev clang clang-format
libclang-rt-dev libsodium-dev libyaml-cpp-dev libzstd-dev liblz4-dev zlib1g-dev libssl-dev nlohmann-json3-dev nodejs npm
chromium python3-websocket libzmq3-dev libjpeg-dev python3-pil cyclonedds-dev cyclonedds-tools libiceoryx-posh-dev
iceoryx"

msg() { printf 'deps: %s\n' "$*" >&2; }

if ! command -v dpkg-query >/dev/null 2>&1 || ! command -v apt-get >/dev/null 2>&1; then
    msg "error: dpkg/apt-get not found; this script supports Debian 12 / Ubuntu 22.04+ only."
    msg "install the equivalent of: $MESHY_PACKAGES $*"
    exit 1
fi

# shellcheck disable=SC2206 # word splitting of the list is intended
wanted=($MESHY_PACKAGES "$@")
missing=()
native=$(dpkg --print-architecture)
for p in "${wanted[@]}"; do
    # Node.js from another source (NodeSource's nodejs bundles npm): what counts is that both run.
    if [[ $p == nodejs || $p == npm ]] && command -v node >/dev/null 2>&1 && command -v npm >/dev/null 2>&1; then
        continue
    fi
    # One line per installed architecture (multiarch, e.g. arm64 -dev packages for cross builds):
    # what counts is the native architecture's copy, or an arch-independent one.
    st=$(dpkg-query -W -f='${Status} ${Architecture}\n' "$p" 2>/dev/null) || st=""
    grep -Eq "^install ok installed ($native|all)\$" <<<"$st" || missing+=("$p")
done

if ((${#missing[@]} == 0)); then
    msg "all ${#wanted[@]} packages installed"
    exit 0
fi

if [[ $(id -u) -eq 0 ]]; then
    SUDO=()
elif command -v sudo >/dev/null 2>&1; then
    SUDO=(sudo)
else
    msg "error: missing packages (${missing[*]}) and not root, and sudo is not installed"
    exit 1
fi

msg "installing: ${missing[*]}"
"${SUDO[@]}" env DEBIAN_FRONTEND=noninteractive apt-get update -qq

# A package name unknown to this release (e.g. libclang-rt-dev on Ubuntu 22.04, where the runtime
# ships in libclang-common-*-dev) is skipped with a warning instead of failing the whole install.
installable=()
for p in "${missing[@]}"; do
    cand=$(apt-cache policy "$p" 2>/dev/null | awk '/Candidate:/ {print $2}')
    if [[ -z $cand || $cand == "(none)" ]]; then
        msg "warning: package '$p' is not available on this system; skipping it"
    else
        installable+=("$p")
    fi
done
((${#installable[@]} == 0)) && exit 0

"${SUDO[@]}" env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends \
    -o Dpkg::Use-Pty=0 -o Dpkg::Options::=--force-confdef -o Dpkg::Options::=--force-confold \
    "${installable[@]}" </dev/null >/dev/null
msg "done"
