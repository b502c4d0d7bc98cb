# FindAvahi: the Avahi client library (avahi-client + avahi-common); Avahi ships no CMake package.
# Defines Avahi::Client and Avahi_FOUND.
find_package(PkgConfig QUIET)
if(PkgConfig_FOUND)
    pkg_check_modules(PC_AVAHI_CLIENT QUIET avahi-client)
endif()
find_path(Avahi_INCLUDE_DIR NAMES avahi-client/client.h HINTS ${PC_AVAHI_CLIENT_INCLUDE_DIRS})
find_library(Avahi_CLIENT_LIBRARY NAMES avahi-client HINTS ${PC_AVAHI_CLIENT_LIBRARY_DIRS})
find_library(Avahi_COMMON_LIBRARY NAMES avahi-common HINTS ${PC_AVAHI_CLIENT_LIBRARY_DIRS})
set(Avahi_VERSION ${PC_AVAHI_CLIENT_VERSION})
include(FindPackageHandleStandardArgs)
find_package_handle_standard_args(Avahi REQUIRED_VARS Avahi_CLIENT_LIBRARY Avahi_COMMON_LIBRARY Avahi_INCLUDE_DIR
                                  VERSION_VAR Avahi_VERSION)
if(Avahi_FOUND AND NOT TARGET Avahi::Client)
    add_library(Avahi::Common UNKNOWN IMPORTED)
    set_target_properties(Avahi::Common PROPERTIES IMPORTED_LOCATION "${Avahi_COMMON_LIBRARY}"
                                                   INTERFACE_INCLUDE_DIRECTORIES "${Avahi_INCLUDE_DIR}")
    add_library(Avahi::Client UNKNOWN IMPORTED)
    set_target_properties(Avahi::Client PROPERTIES IMPORTED_LOCATION "${Avahi_CLIENT_LIBRARY}"
                                                   INTERFACE_INCLUDE_DIRECTORIES "${Avahi_INCLUDE_DIR}"
                                                   INTERFACE_LINK_LIBRARIES Avahi::Common)
endif()
mark_as_advanced(Avahi_INCLUDE_DIR Avahi_CLIENT_LIBRARY Avahi_COMMON_LIBRARY)
