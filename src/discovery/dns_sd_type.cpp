// The DNS-SD service type of a domain; the local backend names its per-domain directory after it too.
#include <cstdint>
#include <string>

#include "discovery/discovery.hpp"

namespace meshy::detail {

std::string dns_sd_service_type(const std::string& domain) {
    std::uint32_t hash = 2166136261u;
    for (const char c : domain) {
        hash ^= static_cast<unsigned char>(c);
        hash *= 16777619u;
    }
    static constexpr char kHex[] = "0123456789abcdef";
    std::string digits(8, '0');
    for (int i = 7; i >= 0; --i) {
        digits[static_cast<std::size_t>(i)] = kHex[hash & 0xfu];
        hash >>= 4;
    }
    return "_meshy-" + digits + "._tcp";
}

}  // namespace meshy::detail
