# Packaging: the pkg-config file (meshy.pc) and the Debian package (CPack DEB).
# Included at the end of the top-level CMakeLists.txt, after the install rules it packages.
#
#   cpack --config build-pkg/CPackConfig.cmake -B build-pkg      # or scripts/package.sh, which also tests it
#
# Build the .deb from a tree configured with CMAKE_INSTALL_PREFIX=/usr (the `package` preset): GNUInstallDirs
# picks the multiarch library directory (lib/x86_64-linux-gnu) only for that prefix. From another tree the
# package still works, with the library and CMake package in /usr/lib (scripts/package.sh refuses that).

# --- pkg-config ----------------------------------------------------------------------------------------
# The flags mirror what meshy::meshy gives a CMake consumer. Compile definitions and include directories are
# read from the targets, so they follow CMakeLists.txt and the Find modules; generator expressions (the
# clang-only Asio switches) cannot be expressed in a .pc file and are documented in it instead.
set(_meshy_pc_defs "")
set(_meshy_pc_incs "")
foreach(_target meshy Asio::Asio MsgpackCxx::MsgpackCxx cereal::cereal)
    get_target_property(_defs ${_target} INTERFACE_COMPILE_DEFINITIONS)
    foreach(_def IN LISTS _defs)
        if(_def AND NOT _def MATCHES "^\\$<" AND NOT _def MATCHES "-NOTFOUND$")
            list(APPEND _meshy_pc_defs "-D${_def}")
        endif()
    endforeach()
    get_target_property(_incs ${_target} INTERFACE_INCLUDE_DIRECTORIES)
    foreach(_inc IN LISTS _incs)
        # meshy's own directories are build-tree paths; the compiler searches the implicit ones anyway.
        if(_inc AND NOT _inc MATCHES "^\\$<|-NOTFOUND$" AND NOT _inc IN_LIST CMAKE_CXX_IMPLICIT_INCLUDE_DIRECTORIES)
            list(APPEND _meshy_pc_incs "-I${_inc}")
        endif()
    endforeach()
endforeach()
list(REMOVE_DUPLICATES _meshy_pc_defs)
list(REMOVE_DUPLICATES _meshy_pc_incs)
list(JOIN _meshy_pc_defs " " _meshy_pc_defs)
list(JOIN _meshy_pc_incs " " _meshy_pc_incs)
string(STRIP "${_meshy_pc_incs} ${_meshy_pc_defs} -pthread" MESHY_PC_CFLAGS)

# Avahi is a private dependency of the library: a shared libmeshy carries it, a static one (the default)
# leaves it to the final link, so there it is a public requirement (plain `pkg-config --libs` must work).
if(PC_AVAHI_CLIENT_FOUND)
    set(_meshy_pc_avahi_req "avahi-client")
    set(_meshy_pc_avahi_libs "")
else()
    set(_meshy_pc_avahi_req "")
    set(_meshy_pc_avahi_libs "-lavahi-client -lavahi-common")
endif()
# libsodium (the domain key's handshake) and libcrypto (its records) likewise; both ship a .pc file.
string(STRIP "${_meshy_pc_avahi_req} libsodium libcrypto" _meshy_pc_avahi_req)
if(BUILD_SHARED_LIBS)
    set(MESHY_PC_REQUIRES "")
    set(MESHY_PC_REQUIRES_PRIVATE "${_meshy_pc_avahi_req}")
    set(MESHY_PC_LIBS "-pthread")
    set(MESHY_PC_LIBS_PRIVATE "${_meshy_pc_avahi_libs}")
else()
    set(MESHY_PC_REQUIRES "${_meshy_pc_avahi_req}")
    set(MESHY_PC_REQUIRES_PRIVATE "")
    string(STRIP "-pthread ${_meshy_pc_avahi_libs}" MESHY_PC_LIBS)
    set(MESHY_PC_LIBS_PRIVATE "")
endif()
foreach(_dir LIBDIR INCLUDEDIR)
    if(IS_ABSOLUTE "${CMAKE_INSTALL_${_dir}}")
        set(MESHY_PC_${_dir} "${CMAKE_INSTALL_${_dir}}")
    else()
        set(MESHY_PC_${_dir} "\${prefix}/${CMAKE_INSTALL_${_dir}}")
    endif()
endforeach()

# The prefix is only known at install time (`cmake --install --prefix`, or /usr under cpack), so the file is
# configured twice: now with everything else, then by the install script with the prefix.
set(MESHY_PC_PREFIX "@MESHY_PC_PREFIX@")
configure_file(${CMAKE_CURRENT_LIST_DIR}/meshy.pc.in ${CMAKE_CURRENT_BINARY_DIR}/meshy.pc.configured @ONLY)
install(CODE "
    get_filename_component(MESHY_PC_PREFIX \"\${CMAKE_INSTALL_PREFIX}\" ABSOLUTE)
    configure_file(\"${CMAKE_CURRENT_BINARY_DIR}/meshy.pc.configured\" \"${CMAKE_CURRENT_BINARY_DIR}/meshy.pc\" @ONLY)
")
install(FILES ${CMAKE_CURRENT_BINARY_DIR}/meshy.pc DESTINATION ${CMAKE_INSTALL_LIBDIR}/pkgconfig)

# --- Debian package (CPack DEB) ----------------------------------------------------------------------------
# Only for meshy's own build: under add_subdirectory, include(CPack) would take over the parent's `package`
# target and CPackConfig.cmake.
if(NOT PROJECT_IS_TOP_LEVEL)
    return()
endif()

# One package holds everything `cmake --install` installs: the `meshy` CLI, the headers, the library, the
# CMake package and meshy.pc.
#   Depends:    the packages of the CLI's shared libraries, computed by dpkg-shlibdeps, so the list follows the
#               code (today libavahi-client3, libavahi-common3, libyaml-cpp0.7, libstdc++6, libgcc-s1, libc6).
#   Recommends: what compiling against the headers needs (header-only Asio, msgpack-c and cereal, and the
#               Avahi client library to link the static libmeshy), and avahi-daemon for discovery across
#               hosts. Recommends, not Depends: the CLI alone needs none of them, and
#               `apt install ./meshy_*.deb` installs Recommends by default.
set(CPACK_VERBATIM_VARIABLES ON) # CPackConfig.cmake gets the values as written here (regexes, newlines)
set(CPACK_GENERATOR DEB)
set(CPACK_PACKAGE_NAME meshy)
set(CPACK_PACKAGE_VERSION ${PROJECT_VERSION})
set(CPACK_PACKAGE_VENDOR "meshy")
# The project's maintainers, with the contact address the repository's own history carries; a
# distributor overrides both with -D on the command line.
set(MESHY_PACKAGE_MAINTAINER "meshy maintainers <maintainers@users.noreply.b-seed-7a9b046b.example>"
    CACHE STRING "Maintainer field of the .deb: 'Name <address>'")
set(MESHY_PACKAGE_HOMEPAGE "" CACHE STRING "Homepage field of the .deb (the project's public URL; empty: no field)")
set(CPACK_PACKAGE_CONTACT "${MESHY_PACKAGE_MAINTAINER}")
set(CPACK_DEBIAN_PACKAGE_MAINTAINER "${MESHY_PACKAGE_MAINTAINER}")
if(MESHY_PACKAGE_HOMEPAGE)
    set(CPACK_DEBIAN_PACKAGE_HOMEPAGE "${MESHY_PACKAGE_HOMEPAGE}")
endif()
set(CPACK_PACKAGE_DESCRIPTION_SUMMARY "${PROJECT_DESCRIPTION}")
set(CPACK_PACKAGE_DESCRIPTION
    "meshy is a brokerless publish/subscribe and service mesh for C++20 nodes that find each other over
mDNS/DNS-SD (Avahi) and talk directly over TCP or Unix sockets. This package contains the meshy
command line tool, the C++ headers, the library and its CMake and pkg-config files.")
set(CPACK_PACKAGING_INSTALL_PREFIX /usr)
set(CPACK_STRIP_FILES ON) # executables and shared libraries; the static library keeps its symbols
set(CPACK_DEBIAN_FILE_NAME DEB-DEFAULT) # meshy_<version>_<arch>.deb
set(CPACK_DEBIAN_PACKAGE_SECTION devel)
set(CPACK_DEBIAN_PACKAGE_PRIORITY optional)
set(CPACK_DEBIAN_PACKAGE_SHLIBDEPS ON)
set(CPACK_DEBIAN_PACKAGE_RECOMMENDS
    "avahi-daemon, libasio-dev (>= 1:1.22), libmsgpack-cxx-dev (>= 4), libcereal-dev, libavahi-client-dev, libsodium-dev, libssl-dev")
set(CPACK_DEBIAN_PACKAGE_SUGGESTS "cmake (>= 3.22), pkg-config, g++ (>= 4:12)")
if(BUILD_SHARED_LIBS)
    # dpkg-shlibdeps must find libmeshy.so.N inside the package being built, and its users need a shlibs entry.
    set(CPACK_DEBIAN_PACKAGE_SHLIBDEPS_PRIVATE_DIRS "${CPACK_PACKAGING_INSTALL_PREFIX}/${CMAKE_INSTALL_LIBDIR}")
    string(REGEX REPLACE "^/" "" CPACK_DEBIAN_PACKAGE_SHLIBDEPS_PRIVATE_DIRS
                         "${CPACK_DEBIAN_PACKAGE_SHLIBDEPS_PRIVATE_DIRS}")
    set(CPACK_DEBIAN_PACKAGE_GENERATE_SHLIBS ON)
    set(CPACK_DEBIAN_PACKAGE_GENERATE_SHLIBS_POLICY ">=")
endif()
# CPack asks dpkg for the architecture, which is the build host's: a cross build names its target instead.
if(CMAKE_CROSSCOMPILING)
    if(CMAKE_SYSTEM_PROCESSOR MATCHES "^(aarch64|arm64)$")
        set(CPACK_DEBIAN_PACKAGE_ARCHITECTURE arm64)
    elseif(CMAKE_SYSTEM_PROCESSOR MATCHES "^arm")
        set(CPACK_DEBIAN_PACKAGE_ARCHITECTURE armhf)
    elseif(CMAKE_SYSTEM_PROCESSOR MATCHES "^(x86_64|AMD64)$")
        set(CPACK_DEBIAN_PACKAGE_ARCHITECTURE amd64)
    endif()
endif()
# `package_source` would otherwise archive the build directories and .git too.
set(CPACK_SOURCE_GENERATOR TGZ)
set(CPACK_SOURCE_IGNORE_FILES "/\\.git/" "/build[^/]*/" "/\\.cache/")
include(CPack)
