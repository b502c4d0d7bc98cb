// The DNS-SD service type and the key=value form of an Advert, shared by both backends so that a
// TXT record set and a local .node file carry exactly the same fields.
#include <charconv>
#include <cstdint>
#include <string>
#include <string_view>
#include <system_error>
#include <utility>
#include <vector>

#include "discovery/discovery.hpp"

namespace meshy::detail {

namespace {

template <typename Int>
bool parse_int(std::string_view text, Int& out) {
    if (text.empty()) {
        return false;
    }
    Int value{};
    const auto [end, ec] = std::from_chars(text.data(), text.data() + text.size(), value);
    if (ec != std::errc{} || end != text.data() + text.size()) {
        return false;
    }
    out = value;
    return true;
}

// A wildcard bind address is not something a peer can dial; leaving it out lets the reader fall
// back to the address it actually reached us on.
bool is_wildcard_address(std::string_view address) {
    return address == "0.0.0.0" || address == "::" || address == "[::]";
}

}  // namespace

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

AdvertFields advert_to_fields(const Advert& advert) {
    AdvertFields fields;
    fields.reserve(9);
    fields.emplace_back("v", std::to_string(advert.protocol));
    fields.emplace_back("id", advert.id);
    fields.emplace_back("name", advert.name);
    fields.emplace_back("host", advert.host);
    fields.emplace_back("domain", advert.domain);
    fields.emplace_back("tcp", std::to_string(advert.tcp_port));
    fields.emplace_back("unix", advert.unix_path);
    if (!advert.tcp_address.empty() && !is_wildcard_address(advert.tcp_address)) {
        fields.emplace_back("addr", advert.tcp_address);
    }
    fields.emplace_back("pid", std::to_string(advert.pid));
    return fields;
}

bool advert_from_fields(const AdvertFields& fields, Advert& out) {
    Advert advert;
    bool have_id = false;
    for (const auto& [key, value] : fields) {
        // Unknown keys are skipped so that a newer node can add fields without breaking older ones.
        if (key == "v") {
            if (!parse_int(value, advert.protocol)) {
                return false;
            }
        } else if (key == "id") {
            advert.id = value;
            have_id = !value.empty();
        } else if (key == "name") {
            advert.name = value;
        } else if (key == "host") {
            advert.host = value;
        } else if (key == "domain") {
            advert.domain = value;
        } else if (key == "tcp") {
            if (!parse_int(value, advert.tcp_port)) {
                return false;
            }
        } else if (key == "unix") {
            advert.unix_path = value;
        } else if (key == "addr") {
            advert.tcp_address = value;
        } else if (key == "pid") {
            if (!parse_int(value, advert.pid)) {
                return false;
            }
        }
    }
    if (!have_id) {
        return false;
    }
    out = std::move(advert);
    return true;
}

}  // namespace meshy::detail
