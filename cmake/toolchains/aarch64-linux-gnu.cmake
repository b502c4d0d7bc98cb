# Cross-compiles meshy for 64-bit ARM Linux (Jetson Orin Nano on JetPack 6 / Ubuntu 22.04, Raspberry Pi OS
# 64-bit, ...) on an x86-64 Debian 12 / Ubuntu 22.04+ host with Debian's cross compiler
# (g++-aarch64-linux-gnu).
#
# The target's libraries come from Debian multiarch (`dpkg --add-architecture arm64`, then the `:arm64`
# -dev packages): they install beside the host's, in /usr/lib/aarch64-linux-gnu, so no separate sysroot
# is needed and the host's arch-independent headers (/usr/include) serve both. This mirrors what
# debhelper does for a Debian cross build. scripts/cross-aarch64.sh installs everything and builds;
# `cmake --preset aarch64` configures by hand (CMakePresets.json).
#
# The -dev packages that are "Multi-Arch: no" in Debian 12 (libyaml-cpp-dev, libcereal-dev) cannot be
# installed beside their amd64 versions; cross-aarch64.sh unpacks their arm64 versions into a directory
# that is passed in CMAKE_PREFIX_PATH.
#
# Tests and tools run under qemu-user: CMAKE_CROSSCOMPILING_EMULATOR makes ctest (and gtest_discover_tests)
# prefix every aarch64 executable with `qemu-aarch64` (see below for why without -L, mostly).
set(CMAKE_SYSTEM_NAME Linux)
set(CMAKE_SYSTEM_PROCESSOR aarch64)

set(MESHY_CROSS_TRIPLE aarch64-linux-gnu)
set(CMAKE_C_COMPILER ${MESHY_CROSS_TRIPLE}-gcc)
set(CMAKE_CXX_COMPILER ${MESHY_CROSS_TRIPLE}-g++)
# Multiarch: find_library and find_package look in /usr/lib/aarch64-linux-gnu and never in the host's
# /usr/lib/x86_64-linux-gnu. CMake would guess it from the compiler, but only after the toolchain file.
set(CMAKE_LIBRARY_ARCHITECTURE ${MESHY_CROSS_TRIPLE})

# pkgconf:arm64 provides aarch64-linux-gnu-pkg-config, which reads the arm64 .pc files (libzstd, liblz4,
# avahi-client); the host's pkg-config would hand out the amd64 ones.
if(EXISTS /usr/bin/${MESHY_CROSS_TRIPLE}-pkg-config)
    set(PKG_CONFIG_EXECUTABLE /usr/bin/${MESHY_CROSS_TRIPLE}-pkg-config CACHE FILEPATH "pkg-config for the target")
endif()

# The emulator must take the target's ld.so and libc.so.6 from one glibc build. The arm64 -dev packages pull in
# libc6:arm64, whose /lib/ld-linux-aarch64.so.1 qemu finds by itself. `-L /usr/aarch64-linux-gnu` would take
# ld.so from the cross libc (libc6-arm64-cross) but libc.so.6 from multiarch (found through ld.so.cache): a
# mismatched pair, and programs hang as they start their first thread. So -L only where the cross libc is all
# there is.
find_program(MESHY_QEMU_AARCH64 NAMES qemu-aarch64 qemu-aarch64-static)
if(MESHY_QEMU_AARCH64)
    if(EXISTS /lib/ld-linux-aarch64.so.1)
        set(CMAKE_CROSSCOMPILING_EMULATOR ${MESHY_QEMU_AARCH64})
    else()
        set(CMAKE_CROSSCOMPILING_EMULATOR ${MESHY_QEMU_AARCH64} -L /usr/${MESHY_CROSS_TRIPLE})
    endif()
endif()
