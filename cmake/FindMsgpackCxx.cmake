# FindMsgpackCxx: msgpack-c's header-only C++ API, used without Boost (MSGPACK_NO_BOOST), so a
# consumer needs neither Boost nor msgpack's own CMake package. Defines MsgpackCxx::MsgpackCxx.
find_path(MsgpackCxx_INCLUDE_DIR NAMES msgpack.hpp)
if(MsgpackCxx_INCLUDE_DIR AND EXISTS "${MsgpackCxx_INCLUDE_DIR}/msgpack/version_master.hpp")
    file(STRINGS "${MsgpackCxx_INCLUDE_DIR}/msgpack/version_master.hpp" _lines REGEX "#define MSGPACK_VERSION_")
    foreach(_part MAJOR MINOR REVISION)
        string(REGEX REPLACE ".*MSGPACK_VERSION_${_part} +([0-9]+).*" "\\1" _v_${_part} "${_lines}")
    endforeach()
    set(MsgpackCxx_VERSION "${_v_MAJOR}.${_v_MINOR}.${_v_REVISION}")
endif()
include(FindPackageHandleStandardArgs)
find_package_handle_standard_args(MsgpackCxx REQUIRED_VARS MsgpackCxx_INCLUDE_DIR VERSION_VAR MsgpackCxx_VERSION)
if(MsgpackCxx_FOUND AND NOT TARGET MsgpackCxx::MsgpackCxx)
    add_library(MsgpackCxx::MsgpackCxx INTERFACE IMPORTED)
    set_target_properties(MsgpackCxx::MsgpackCxx PROPERTIES INTERFACE_INCLUDE_DIRECTORIES "${MsgpackCxx_INCLUDE_DIR}"
                                                            INTERFACE_COMPILE_DEFINITIONS "MSGPACK_NO_BOOST")
endif()
mark_as_advanced(MsgpackCxx_INCLUDE_DIR)
