#!/usr/bin/env bash
# Package test, in the manner of fmt's and CLI11's: installs meshy into a staging prefix, then configures,
# builds and runs a tiny consumer (tests/package/main.cpp: a node that talks to itself on loopback) in
# each supported way:
#   find_package      tests/package/find_package: find_package(meshy <version> EXACT REQUIRED) + meshy::meshy,
#                     against the staged install through CMAKE_PREFIX_PATH
#   add_subdirectory  tests/package/add_subdirectory: add_subdirectory(<meshy source> meshy)
#   pkg-config        c++ -std=c++20 main.cpp $(pkg-config --cflags --libs meshy), against the staged meshy.pc
# and checks the staged files (headers, library, CLI, CMake package with its Find modules, meshy.pc) and that
# `meshy --version`, the headers and the CMake package agree on the version. Then, unless --no-shared, it does
# it all again for a shared library (BUILD_SHARED_LIBS=ON, its own build tree, without the CLI).
# Usage: tests/package/run.sh [--no-shared] [--keep] [BUILD_DIR]
#   BUILD_DIR   a configured meshy build tree to build and install (default: build when it is configured,
#               else build-package, configured here with the tests and examples off)
#   --keep      keep the work directory (printed) instead of removing it on success
# Env: MESHY_JOBS (build parallelism, default 2). Exit status: 0 when everything passed.
set -euo pipefail

ROOT=$(cd "$(dirname "$(readlink -f "${BASH_SOURCE[0]}")")/../.." && pwd)
HERE=$ROOT/tests/package
JOBS=${MESHY_JOBS:-2}
shared=1
keep=0
BUILD=""
for a in "$@"; do
    case $a in
        --no-shared) shared=0 ;;
        --keep) keep=1 ;;
        -h | --help)
            sed -n '2,/^set -euo/p' "$0" | sed '$d; s/^# \{0,1\}//'
            exit 0
            ;;
        -*)
            echo "unknown option: $a" >&2
            exit 2
            ;;
        *) BUILD=$a ;;
    esac
done

T0=$SECONDS
step() { printf '\n==> %s (at %d s)\n' "$*" $((SECONDS - T0)); }
fail() {
    printf 'package test: FAILED: %s\n' "$*" >&2
    exit 1
}

WORK=$(mktemp -d "${TMPDIR:-/tmp}/meshy-package-test.XXXXXX")
# shellcheck disable=SC2317 # invoked by the EXIT trap
cleanup() {
    local rc=$?
    if ((rc == 0 && !keep)); then
        rm -rf "$WORK"
    else
        echo "work directory kept: $WORK"
    fi
    exit "$rc"
}
trap cleanup EXIT

if [[ -z $BUILD ]]; then
    if [[ -f $ROOT/build/CMakeCache.txt ]]; then
        BUILD=$ROOT/build
    else
        BUILD=$ROOT/build-package
    fi
fi
BUILD=$(readlink -f "$BUILD")
if [[ ! -f $BUILD/CMakeCache.txt ]]; then
    step "configure $BUILD"
    cmake -S "$ROOT" -B "$BUILD" -G Ninja -DCMAKE_BUILD_TYPE=RelWithDebInfo \
        -DMESHY_BUILD_TESTS=OFF -DMESHY_BUILD_EXAMPLES=OFF -DMESHY_BUILD_TOOLS=ON
fi
VERSION=$(sed -n 's/^CMAKE_PROJECT_VERSION:STATIC=//p' "$BUILD/CMakeCache.txt")
[[ -n $VERSION ]] || fail "no project version in $BUILD/CMakeCache.txt"
echo "meshy $VERSION, build tree $BUILD, work directory $WORK"

# Builds and runs one consumer project. $1: name, $2: source dir, then extra cmake arguments.
consumer() {
    local name=$1 src=$2
    shift 2
    local bin=$WORK/$name
    step "consumer: $name"
    cmake -S "$src" -B "$bin" -G Ninja -DCMAKE_BUILD_TYPE=RelWithDebInfo "$@" >"$bin.configure.log" 2>&1 || {
        cat "$bin.configure.log" >&2
        fail "$name: configure"
    }
    grep -E "found meshy" "$bin.configure.log" || true
    cmake --build "$bin" -j"$JOBS" >"$bin.build.log" 2>&1 || {
        tail -n 60 "$bin.build.log" >&2
        fail "$name: build"
    }
    "$bin/app" || fail "$name: the consumer exited with $?"
}

# Checks a staged install. $1: prefix, $2: 1 when the library is shared, $3: 1 when the CLI is expected.
check_stage() {
    local stage=$1 is_shared=$2 want_cli=$3 cmakedir libdir f
    step "staged files in $stage"
    cmakedir=$(dirname "$(find "$stage" -path '*/cmake/meshy/meshyConfig.cmake' | head -n1)")
    [[ $cmakedir != . ]] || fail "no lib*/cmake/meshy/meshyConfig.cmake under $stage"
    libdir=$(dirname "$(dirname "$cmakedir")")
    for f in "$stage/include/meshy/meshy.hpp" "$stage/include/meshy/node.hpp" "$stage/include/meshy/version.hpp" \
        "$stage/include/meshy/codecs/msgpack.hpp" "$stage/include/meshy/detail/codec_dispatch.hpp" \
        "$cmakedir/meshyConfigVersion.cmake" "$cmakedir/meshyTargets.cmake" "$cmakedir/FindAsio.cmake" \
        "$cmakedir/FindAvahi.cmake" "$cmakedir/FindMsgpackCxx.cmake" "$libdir/pkgconfig/meshy.pc"; do
        [[ -f $f ]] || fail "missing: ${f#"$stage"/}"
    done
    if ((is_shared)); then
        compgen -G "$libdir/libmeshy.so.*" >/dev/null || fail "no $libdir/libmeshy.so.*"
        [[ ! -e $libdir/libmeshy.a ]] || fail "a shared install holds libmeshy.a"
    else
        [[ -f $libdir/libmeshy.a ]] || fail "no $libdir/libmeshy.a"
    fi
    grep -q "^Version: $VERSION\$" "$libdir/pkgconfig/meshy.pc" || fail "meshy.pc: version is not $VERSION"
    grep -q "^prefix=$stage\$" "$libdir/pkgconfig/meshy.pc" || fail "meshy.pc: prefix is not $stage"
    grep -q "PACKAGE_VERSION \"$VERSION\"" "$cmakedir/meshyConfigVersion.cmake" ||
        fail "meshyConfigVersion.cmake: version is not $VERSION"
    if ((want_cli)); then
        [[ -x $stage/bin/meshy ]] || fail "no bin/meshy"
        local got
        got=$(LD_LIBRARY_PATH=$libdir "$stage/bin/meshy" --version) || fail "bin/meshy --version failed"
        [[ $got == "meshy $VERSION" ]] || fail "bin/meshy --version says '$got', not 'meshy $VERSION'"
        echo "bin/meshy --version: $got"
    fi
    echo "headers, library, CMake package (with FindAsio/FindAvahi/FindMsgpackCxx) and meshy.pc in place"
    PKG_LIBDIR=$libdir/pkgconfig
}

# Compiles main.cpp with the flags meshy.pc gives, nothing else. $1: pkgconfig dir, $2: output name.
pkgconfig_consumer() {
    local pcdir=$1 name=$2 flags
    step "consumer: $name (pkg-config)"
    command -v pkg-config >/dev/null || fail "pkg-config not installed"
    flags=$(PKG_CONFIG_PATH=$pcdir pkg-config --cflags --libs meshy) || fail "pkg-config --cflags --libs meshy"
    echo "pkg-config --cflags --libs meshy: $flags"
    # shellcheck disable=SC2086 # the flags are a word list
    "${CXX:-c++}" -std=c++20 -O1 -o "$WORK/$name" "$HERE/main.cpp" $flags -Wl,-rpath,"$(dirname "$pcdir")" ||
        fail "$name: compile and link with the pkg-config flags"
    "$WORK/$name" || fail "$name: the consumer exited with $?"
}

# --- static (the default) --------------------------------------------------------------------------------
step "build and install $BUILD"
cmake --build "$BUILD" -j"$JOBS"
want_cli=0
grep -q '^MESHY_BUILD_TOOLS:BOOL=ON$' "$BUILD/CMakeCache.txt" && want_cli=1
is_shared=0
grep -q '^BUILD_SHARED_LIBS:BOOL=ON$' "$BUILD/CMakeCache.txt" && is_shared=1
cmake --install "$BUILD" --prefix "$WORK/stage" >"$WORK/install.log"
check_stage "$WORK/stage" "$is_shared" "$want_cli"
consumer find_package "$HERE/find_package" -DCMAKE_PREFIX_PATH="$WORK/stage" -DMESHY_EXPECTED_VERSION="$VERSION"
pkgconfig_consumer "$PKG_LIBDIR" pkg-config
consumer add_subdirectory "$HERE/add_subdirectory" -DMESHY_SOURCE_DIR="$ROOT"

# --- shared -----------------------------------------------------------------------------------------------
if ((shared)); then
    step "configure, build and install a shared meshy ($WORK/shared-build)"
    cmake -S "$ROOT" -B "$WORK/shared-build" -G Ninja -DCMAKE_BUILD_TYPE=RelWithDebInfo -DBUILD_SHARED_LIBS=ON \
        -DMESHY_BUILD_TESTS=OFF -DMESHY_BUILD_EXAMPLES=OFF -DMESHY_BUILD_TOOLS=OFF >"$WORK/shared-configure.log"
    cmake --build "$WORK/shared-build" -j"$JOBS"
    cmake --install "$WORK/shared-build" --prefix "$WORK/shared-stage" >"$WORK/shared-install.log"
    check_stage "$WORK/shared-stage" 1 0
    consumer find_package-shared "$HERE/find_package" -DCMAKE_PREFIX_PATH="$WORK/shared-stage" \
        -DMESHY_EXPECTED_VERSION="$VERSION"
    grep -q "libmeshy.so" <<<"$(ldd "$WORK/find_package-shared/app")" || fail "the shared consumer does not load libmeshy.so"
    pkgconfig_consumer "$PKG_LIBDIR" pkg-config-shared
fi

printf '\npackage test: OK (%d s)\n' $((SECONDS - T0))
