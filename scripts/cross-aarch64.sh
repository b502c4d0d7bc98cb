#!/usr/bin/env bash
# Cross-builds meshy for aarch64 (Jetson Orin Nano and other 64-bit ARM Linux boards) on an x86-64
# Debian 12 host, then runs the aarch64 unit tests and `meshy --version` under qemu-user.
# Usage: scripts/cross-aarch64.sh [--deps-only] [--no-run] [extra cmake configure args...]
#   --deps-only  only install the cross toolchain, qemu-user and the arm64 packages
#   --no-run     configure and build, but run nothing under qemu
# Steps: 1. `dpkg --add-architecture arm64`, apt-get installs g++-aarch64-linux-gnu, qemu-user and the arm64
#           -dev packages (multiarch, beside the host's); the Multi-Arch: no ones (libyaml-cpp-dev,
#           libcereal-dev) cannot sit beside their amd64 versions, so their arm64 .debs are unpacked into
#           build-aarch64/multiarch-extra instead.
#        2. `cmake --preset aarch64` (CMakePresets.json, cmake/toolchains/aarch64-linux-gnu.cmake) and build
#           everything (library, CLI, examples, tests) in build-aarch64.
#        3. `meshy --version` and `ctest -L unit` under qemu-aarch64 (ctest adds the emulator itself, through
#           CMAKE_CROSSCOMPILING_EMULATOR; no -L: the multiarch libc6:arm64 provides ld.so and libc as a pair).
# When qemu-user cannot be installed, step 3 prints "SKIPPED: ..." and the script exits 0 after building.
# Env: MESHY_JOBS (build/test parallelism, default 2). Needs root or sudo for step 1 (skipped when all is
# installed). Ubuntu hosts need arm64 apt sources (ports.ubuntu.com) before step 1; Debian needs nothing.
set -euo pipefail

ROOT=$(cd "$(dirname "$(readlink -f "${BASH_SOURCE[0]}")")/.." && pwd)
cd "$ROOT"
JOBS=${MESHY_JOBS:-2}
BUILD_DIR=build-aarch64 # fixed by the aarch64 preset
EXTRA_DIR=$BUILD_DIR/multiarch-extra
TRIPLE=aarch64-linux-gnu

deps_only=0
run=1
CMAKE_EXTRA=()
for a in "$@"; do
    case $a in
        --deps-only) deps_only=1 ;;
        --no-run) run=0 ;;
        -h | --help)
            sed -n '2,/^set -euo/p' "$0" | sed '$d; s/^# \{0,1\}//'
            exit 0
            ;;
        *) CMAKE_EXTRA+=("$a") ;;
    esac
done

T0=$SECONDS
step() { printf '\n==> %s (at %d s)\n' "$*" $((SECONDS - T0)); }
die() {
    printf 'cross-aarch64: error: %s\n' "$*" >&2
    exit 1
}

host_arch=$(dpkg --print-architecture 2>/dev/null) || die "dpkg not found: this script needs Debian 12 or Ubuntu 22.04+"
if [[ $host_arch == arm64 ]]; then
    die "this host is arm64 already: build natively (scripts/test.sh), no cross build needed"
fi

# --- 1. packages -------------------------------------------------------------------------------------
# Build tools and the arch-independent header-only libraries come from the host architecture: their
# headers in /usr/include are the same for every architecture (Multi-Arch: same requires it).
HOST_PACKAGES=(cmake ninja-build pkgconf file "g++-$TRIPLE" libasio-dev libcli11-dev libmsgpack-cxx-dev libcereal-dev
    nlohmann-json3-dev)
# Compiled libraries (and the cross pkg-config, aarch64-linux-gnu-pkg-config) for the target.
ARM64_PACKAGES=(libavahi-client-dev:arm64 libgtest-dev:arm64 libzstd-dev:arm64 liblz4-dev:arm64 zlib1g-dev:arm64
    libyaml-cpp0.7:arm64 libssl-dev:arm64 libsodium-dev:arm64 pkgconf:arm64)
# Multi-Arch: no in Debian 12, so installing them would remove the amd64 ones: unpacked instead.
UNPACKED_PACKAGES=(libyaml-cpp-dev:arm64 libyaml-cpp0.7:arm64 libcereal-dev:arm64)

if [[ $(id -u) -eq 0 ]]; then
    SUDO=()
elif command -v sudo >/dev/null 2>&1; then
    SUDO=(sudo)
else
    SUDO=(false) # only used when something is missing, where it fails with a message below
fi
apt_get() {
    "${SUDO[@]}" env DEBIAN_FRONTEND=noninteractive apt-get -y -qq -o Dpkg::Use-Pty=0 \
        -o Dpkg::Options::=--force-confdef -o Dpkg::Options::=--force-confold "$@" </dev/null
}
installed() { [[ $(dpkg-query -W -f='${Status}' "$1" 2>/dev/null) == "install ok installed" ]]; }

step "packages"
updated=0
apt_update_once() {
    if ((!updated)); then
        apt_get update
        updated=1
    fi
}
if ! grep -qx arm64 <<<"$(dpkg --print-foreign-architectures)"; then
    echo "adding the arm64 architecture (dpkg --add-architecture arm64)"
    [[ ${SUDO[0]:-} != false ]] || die "adding the arm64 architecture needs root or sudo"
    "${SUDO[@]}" dpkg --add-architecture arm64
fi
missing=()
for p in "${HOST_PACKAGES[@]}" "${ARM64_PACKAGES[@]}"; do
    installed "$p" || missing+=("$p")
done
if ((${#missing[@]})); then
    [[ ${SUDO[0]:-} != false ]] || die "missing packages (${missing[*]}), and neither root nor sudo to install them"
    echo "installing: ${missing[*]}"
    apt_update_once
    apt_get install --no-install-recommends "${missing[@]}" >/dev/null ||
        die "apt-get could not install ${missing[*]} (on Ubuntu, arm64 packages come from ports.ubuntu.com: add an
'Architectures: arm64' source for it first)"
else
    echo "cross toolchain and arm64 packages installed"
fi

# qemu-user is the one optional package: without it the build is still checked, the run is skipped.
qemu=""
for p in qemu-user qemu-user-static; do
    if installed "$p"; then
        qemu=$p
        break
    fi
done
if [[ -z $qemu ]]; then
    apt_update_once
    for p in qemu-user qemu-user-static; do
        if apt_get install --no-install-recommends "$p" >/dev/null; then
            qemu=$p
            break
        fi
    done
fi
[[ -n $qemu ]] && echo "qemu: $qemu ($(command -v qemu-aarch64 || command -v qemu-aarch64-static || echo 'binary not found'))"

# The unpacked packages, re-unpacked only when their versions change (a stamp records them).
stamp=""
for p in "${UNPACKED_PACKAGES[@]}"; do
    v=$(apt-cache policy "$p" 2>/dev/null | awk '/Candidate:/ {print $2}')
    [[ -n $v && $v != "(none)" ]] || {
        apt_update_once
        v=$(apt-cache policy "$p" 2>/dev/null | awk '/Candidate:/ {print $2}')
    }
    [[ -n $v && $v != "(none)" ]] || die "no candidate for $p"
    stamp+="$p=$v "
done
if [[ ! -f $EXTRA_DIR/.stamp || $(cat "$EXTRA_DIR/.stamp") != "$stamp" ]]; then
    echo "unpacking into $EXTRA_DIR: ${UNPACKED_PACKAGES[*]}"
    rm -rf "$EXTRA_DIR"
    mkdir -p "$EXTRA_DIR/debs"
    # apt-get download writes into the current directory; as root it warns that the download is unsandboxed.
    (
        cd "$EXTRA_DIR/debs"
        apt-get download -qq "${UNPACKED_PACKAGES[@]}" 2>&1 | { grep -v 'unsandboxed' || true; }
    )
    for deb in "$EXTRA_DIR"/debs/*.deb; do
        [[ -f $deb ]] || die "apt-get download fetched nothing"
        dpkg-deb -x "$deb" "$EXTRA_DIR"
    done
    rm -rf "$EXTRA_DIR/debs"
    printf '%s' "$stamp" >"$EXTRA_DIR/.stamp"
fi
((deps_only)) && exit 0

# --- 2. configure and build ----------------------------------------------------------------------------
step "configure $BUILD_DIR (cmake --preset aarch64)"
cmake --preset aarch64 "${CMAKE_EXTRA[@]}"

step "build $BUILD_DIR"
cmake --build --preset aarch64 -j"$JOBS"

CLI=$BUILD_DIR/tools/meshy
[[ -x $CLI ]] || die "$CLI was not built"
grep -q 'ARM aarch64' <<<"$(file -b "$CLI")" || die "$CLI is not an aarch64 executable: $(file -b "$CLI")"
echo "built: $CLI: $(file -b "$CLI" | cut -d, -f1-2)"
((run)) || exit 0

# --- 3. run under qemu-user ----------------------------------------------------------------------------
QEMU_BIN=$(command -v qemu-aarch64 || command -v qemu-aarch64-static || true)
if [[ -z $QEMU_BIN ]]; then
    echo "SKIPPED: aarch64 unit tests and 'meshy --version' under qemu: qemu-user could not be installed on this host"
    echo "(the cross build itself succeeded; elapsed $((SECONDS - T0)) s)"
    exit 0
fi
if grep -q "^MESHY_QEMU_AARCH64:FILEPATH=.*NOTFOUND" "$BUILD_DIR/CMakeCache.txt"; then
    cmake "$BUILD_DIR" >/dev/null # qemu came after the first configure: the toolchain finds it now
fi

# As the toolchain file does: -L only without the multiarch libc6:arm64 (its ld.so must match its libc).
QEMU=("$QEMU_BIN")
[[ -e /lib/ld-linux-aarch64.so.1 ]] || QEMU+=(-L "/usr/$TRIPLE")

step "meshy --version under ${QEMU[*]}"
want=$(sed -n 's/^CMAKE_PROJECT_VERSION:STATIC=//p' "$BUILD_DIR/CMakeCache.txt")
got=$("${QEMU[@]}" "$CLI" --version)
echo "$got"
[[ $got == "meshy $want" ]] || die "expected 'meshy $want' from meshy --version, got '$got'"

step "ctest -L unit under ${QEMU[*]}"
ctest --preset aarch64 -j"$JOBS"
echo "aarch64: build and qemu unit tests OK in $((SECONDS - T0)) s"
