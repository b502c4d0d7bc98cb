// What a test that measures a child's memory needs to know about AddressSanitizer.
#pragma once

#include <cstdlib>
#include <string>

namespace meshy::test {

#if defined(__SANITIZE_ADDRESS__)
inline constexpr bool address_sanitizer = true;
#elif defined(__has_feature)
#    if __has_feature(address_sanitizer)
inline constexpr bool address_sanitizer = true;
#    else
inline constexpr bool address_sanitizer = false;
#    endif
#else
inline constexpr bool address_sanitizer = false;
#endif

/// ASAN_OPTIONS for a child whose resident memory a test measures: ASan holds freed memory back in
/// a quarantine (256 MB by default), which VmRSS would count as the child's own.
inline std::string asan_options_without_quarantine() {
    const char* inherited = std::getenv("ASAN_OPTIONS");
    std::string options = inherited && *inherited ? std::string(inherited) + ":" : std::string();
    return options + "quarantine_size_mb=0:thread_local_quarantine_size_kb=0";
}

}  // namespace meshy::test
