#!/usr/bin/env bash
# Builds meshy's Debian package with CPack and tests it without installing anything on this system.
# Usage: scripts/package.sh [--no-consumer]
#   --no-consumer  skip building tests/package/find_package against the unpacked package
# Steps: 1. `cmake --preset package` (build-pkg: Release, CMAKE_INSTALL_PREFIX=/usr so the library goes to the
#           multiarch directory, tests and examples off) and build.
#        2. cpack -G DEB: build-pkg/meshy_<version>_<arch>.deb.
#        3. The control file (dpkg-deb -f): name, version, architecture; Depends names the package of every
#           shared library the CLI loads (checked against readelf and dpkg -S, so the dpkg-shlibdeps result is
#           verified, not trusted), and each exists in the archive; Recommends has the -dev packages the
#           headers need.
#        4. The contents (dpkg-deb -c): the CLI, the headers in usr/include/meshy, libmeshy.a, the CMake package
#           in usr/lib/<multiarch>/cmake/meshy with its Find modules, meshy.pc; nothing outside usr/.
#        5. `apt-get install -s ./meshy_*.deb` against an empty dpkg status: apt resolves the dependencies as on
#           a clean system, with and without Recommends (a simulation: nothing is downloaded or changed).
#        6. Unpacks the .deb into a throwaway root (dpkg -x) and runs its `meshy --version`, then builds and runs
#           tests/package/find_package against that root (CMAKE_PREFIX_PATH=<root>/usr).
# Env: MESHY_JOBS (default 2). Exit status: 0 when the package passed every check.
set -euo pipefail

ROOT=$(cd "$(dirname "$(readlink -f "${BASH_SOURCE[0]}")")/.." && pwd)
cd "$ROOT"
JOBS=${MESHY_JOBS:-2}
BUILD=build-pkg # fixed by the package preset
consumer=1
case ${1:-} in
    --no-consumer) consumer=0 ;;
    "") ;;
    -h | --help)
        sed -n '2,/^set -euo/p' "$0" | sed '$d; s/^# \{0,1\}//'
        exit 0
        ;;
    *)
        echo "usage: $0 [--no-consumer]" >&2
        exit 2
        ;;
esac

T0=$SECONDS
step() { printf '\n==> %s (at %d s)\n' "$*" $((SECONDS - T0)); }
fail() {
    printf 'package: FAILED: %s\n' "$*" >&2
    exit 1
}
for tool in cpack dpkg-deb dpkg-shlibdeps readelf; do
    command -v "$tool" >/dev/null || fail "$tool not found (dpkg-dev and binutils are needed)"
done

WORK=$(mktemp -d "${TMPDIR:-/tmp}/meshy-deb-test.XXXXXX")
# shellcheck disable=SC2317 # invoked by the EXIT trap
cleanup() {
    local rc=$?
    if ((rc == 0)); then rm -rf "$WORK"; else echo "work directory kept: $WORK"; fi
    exit "$rc"
}
trap cleanup EXIT

# --- 1-2. build and package ----------------------------------------------------------------------------------
step "configure and build $BUILD (cmake --preset package)"
cmake --preset package >/dev/null
cmake --build --preset package -j"$JOBS"
VERSION=$(sed -n 's/^CMAKE_PROJECT_VERSION:STATIC=//p' "$BUILD/CMakeCache.txt")
MULTIARCH=$(sed -n 's/^CMAKE_INSTALL_LIBDIR:PATH=lib\///p' "$BUILD/CMakeCache.txt")
[[ -n $MULTIARCH ]] || fail "CMAKE_INSTALL_LIBDIR in $BUILD is not lib/<multiarch>"

step "cpack -G DEB"
rm -f "$BUILD"/meshy_*.deb
(cd "$BUILD" && cpack -G DEB) >"$WORK/cpack.log" 2>&1 || {
    cat "$WORK/cpack.log" >&2
    fail "cpack"
}
ARCH=$(dpkg --print-architecture)
DEB=$BUILD/meshy_${VERSION}_${ARCH}.deb
[[ -f $DEB ]] || fail "cpack made no $DEB: $(ls "$BUILD"/*.deb 2>/dev/null)"
echo "$DEB: $(du -h "$DEB" | cut -f1)"

# --- 3. control file ------------------------------------------------------------------------------------------
step "control file (dpkg-deb -f)"
dpkg-deb -f "$DEB" | sed 's/^/  /'
field() { dpkg-deb -f "$DEB" "$1"; }
[[ $(field Package) == meshy ]] || fail "Package is '$(field Package)'"
[[ $(field Version) == "$VERSION" ]] || fail "Version is '$(field Version)', not $VERSION"
[[ $(field Architecture) == "$ARCH" ]] || fail "Architecture is '$(field Architecture)', not $ARCH"
depends=$(field Depends)
recommends=$(field Recommends)
# The names in a relationship field, without versions and alternatives' bars.
names() { tr ',|' '\n' <<<"$1" | sed 's/(.*)//; s/:any//; s/[[:space:]]//g' | sed '/^$/d' | sort -u; }

# Every shared library the CLI needs must be provided by a package that Depends names.
dpkg-deb -x "$DEB" "$WORK/root"
CLI=$WORK/root/usr/bin/meshy
[[ -x $CLI ]] || fail "usr/bin/meshy is not in the package"
needed_pkgs=()
while read -r lib; do
    owner=""
    for d in "/usr/lib/$MULTIARCH" "/lib/$MULTIARCH" /usr/lib /lib; do
        owner=$(dpkg -S "$d/$lib" 2>/dev/null | grep -v '^diversion' | head -n1 | cut -d: -f1) && [[ -n $owner ]] && break
    done
    [[ -n $owner ]] || fail "no installed package provides $lib (needed by usr/bin/meshy)"
    needed_pkgs+=("$owner")
    printf '  %-28s %s\n' "$lib" "$owner"
done < <(readelf -d "$CLI" | sed -n 's/.*(NEEDED).*\[\(.*\)\]/\1/p')
for p in $(printf '%s\n' "${needed_pkgs[@]}" | sort -u); do
    grep -qx "$p" <<<"$(names "$depends")" || fail "Depends lacks $p (the CLI loads a library from it): $depends"
done
for p in libavahi-client3 libavahi-common3 libstdc++6 libc6; do
    grep -qx "$p" <<<"$(names "$depends")" || fail "Depends lacks $p: $depends"
done
for p in libasio-dev libmsgpack-cxx-dev libcereal-dev libavahi-client-dev; do
    grep -qx "$p" <<<"$(names "$recommends")" || fail "Recommends lacks $p: $recommends"
done
# A clean system must be able to get every package named: each needs a candidate in the archive.
for p in $(names "$depends") $(names "$recommends"); do
    cand=$(apt-cache policy "$p" 2>/dev/null | awk '/Candidate:/ {print $2}')
    [[ -n $cand && $cand != "(none)" ]] || fail "no package '$p' in this system's archive (named in the control file)"
done
echo "Depends covers the $(printf '%s\n' "${needed_pkgs[@]}" | sort -u | wc -l) packages of the CLI's libraries;" \
    "every named package exists in the archive"

# --- 4. contents ----------------------------------------------------------------------------------------------
step "contents (dpkg-deb -c)"
dpkg-deb -c "$DEB" | awk '{print $NF}' | sed 's|^\./||' >"$WORK/contents"
sed -n '1,200p' "$WORK/contents" | grep -v '/$' | sed 's/^/  /'
for f in usr/bin/meshy usr/include/meshy/meshy.hpp usr/include/meshy/node.hpp usr/include/meshy/version.hpp \
    usr/include/meshy/codecs/msgpack.hpp usr/include/meshy/detail/codec_dispatch.hpp \
    "usr/lib/$MULTIARCH/libmeshy.a" "usr/lib/$MULTIARCH/pkgconfig/meshy.pc" \
    "usr/lib/$MULTIARCH/cmake/meshy/meshyConfig.cmake" "usr/lib/$MULTIARCH/cmake/meshy/meshyConfigVersion.cmake" \
    "usr/lib/$MULTIARCH/cmake/meshy/meshyTargets.cmake" "usr/lib/$MULTIARCH/cmake/meshy/FindAsio.cmake" \
    "usr/lib/$MULTIARCH/cmake/meshy/FindAvahi.cmake" "usr/lib/$MULTIARCH/cmake/meshy/FindMsgpackCxx.cmake"; do
    grep -qx "$f" "$WORK/contents" || fail "the package lacks $f"
done
outside=$(grep -v -e '^usr/' -e '^$' "$WORK/contents" || true)
[[ -z $outside ]] || fail "files outside usr/: $(tr '\n' ' ' <<<"$outside")"
grep -qx "prefix=/usr" "$WORK/root/usr/lib/$MULTIARCH/pkgconfig/meshy.pc" || fail "meshy.pc: prefix is not /usr"

# --- 5. apt's view --------------------------------------------------------------------------------------------
# An empty dpkg status file makes apt plan the install as on a system with nothing installed: every Depends and
# Recommends must resolve from the archive alone. A simulation (-s): nothing is downloaded or changed.
step "apt-get install -s ./$(basename "$DEB") as on a clean system (simulation)"
if command -v apt-get >/dev/null; then
    : >"$WORK/empty-status"
    for mode in with-recommends --no-install-recommends; do
        opts=(-s -q -o Dir::State::status="$WORK/empty-status")
        [[ $mode == with-recommends ]] || opts+=("$mode")
        apt-get install "${opts[@]}" "$(readlink -f "$DEB")" >"$WORK/apt.log" 2>&1 || {
            cat "$WORK/apt.log" >&2
            fail "apt cannot install the package on a clean system ($mode)"
        }
        grep -q '^Inst meshy ' "$WORK/apt.log" || fail "apt would not install meshy: $(cat "$WORK/apt.log")"
        echo "$mode: apt would install meshy and $(($(grep -c '^Inst ' "$WORK/apt.log") - 1)) other packages"
        [[ $mode == with-recommends ]] || continue
        for p in avahi-daemon libasio-dev libmsgpack-cxx-dev libcereal-dev libavahi-client-dev libyaml-cpp0.7; do
            grep -q "^Inst $p " "$WORK/apt.log" || fail "apt would not install $p with meshy"
        done
    done
else
    echo "apt-get not found: skipped"
fi

# --- 6. run it from a throwaway root --------------------------------------------------------------------------
step "meshy --version from the unpacked package ($WORK/root)"
# Static libmeshy: the CLI needs only system libraries; LD_LIBRARY_PATH covers a shared build's libmeshy.so.
got=$(LD_LIBRARY_PATH="$WORK/root/usr/lib/$MULTIARCH" "$CLI" --version) || fail "meshy --version failed"
echo "$got"
[[ $got == "meshy $VERSION" ]] || fail "meshy --version says '$got', not 'meshy $VERSION'"

if ((consumer)); then
    step "tests/package/find_package against the unpacked package"
    cmake -S tests/package/find_package -B "$WORK/consumer" -G Ninja -DCMAKE_BUILD_TYPE=Release \
        -DCMAKE_PREFIX_PATH="$WORK/root/usr" -DMESHY_EXPECTED_VERSION="$VERSION" >"$WORK/consumer.log" 2>&1 || {
        cat "$WORK/consumer.log" >&2
        fail "the consumer project does not configure against the package"
    }
    grep -q "found meshy $VERSION in $WORK/root/usr/lib/$MULTIARCH/cmake/meshy" "$WORK/consumer.log" ||
        fail "the consumer found another meshy: $(grep 'found meshy' "$WORK/consumer.log")"
    cmake --build "$WORK/consumer" -j"$JOBS" >>"$WORK/consumer.log" 2>&1 || {
        tail -n 60 "$WORK/consumer.log" >&2
        fail "the consumer does not build against the package"
    }
    "$WORK/consumer/app" || fail "the consumer built against the package exited with $?"
fi

printf '\npackage: OK: %s (%d s)\n' "$DEB" $((SECONDS - T0))
