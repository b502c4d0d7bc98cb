#include "bridge/rest_route.hpp"

#include <optional>

namespace meshy::cli::bridge {
namespace {

int hex_value(char c) {
    if (c >= '0' && c <= '9') {
        return c - '0';
    }
    if (c >= 'a' && c <= 'f') {
        return c - 'a' + 10;
    }
    if (c >= 'A' && c <= 'F') {
        return c - 'A' + 10;
    }
    return -1;
}

// Strict: a '%' not followed by two hex digits, or a decoded NUL, makes the name invalid.
std::optional<std::string> decode_name(std::string_view s) {
    std::string out;
    out.reserve(s.size());
    for (std::size_t i = 0; i < s.size(); ++i) {
        if (s[i] != '%') {
            out += s[i];
            continue;
        }
        if (i + 2 >= s.size()) {
            return std::nullopt;
        }
        const int hi = hex_value(s[i + 1]);
        const int lo = hex_value(s[i + 2]);
        if (hi < 0 || lo < 0 || (hi == 0 && lo == 0)) {
            return std::nullopt;
        }
        out += static_cast<char>(hi * 16 + lo);
        i += 2;
    }
    while (!out.empty() && out.front() == '/') {
        out.erase(0, 1);
    }
    if (out.empty()) {
        return std::nullopt;
    }
    return out;
}

bool starts_with(std::string_view s, std::string_view prefix) {
    return s.substr(0, prefix.size()) == prefix;
}

RestRoute with_method(RestRoute r, std::string_view method, const char* allowed) {
    r.allowed_method = allowed;
    r.method_ok = method == allowed || (r.allowed_method == "GET" && method == "HEAD");
    return r;
}

RestRoute named(RestEndpoint e, std::string_view encoded, std::string_view method, const char* allowed) {
    RestRoute r;
    const auto name = decode_name(encoded);
    if (!name) {
        r.endpoint = RestEndpoint::bad_name;
        return r;
    }
    r.endpoint = e;
    r.name = *name;
    return with_method(std::move(r), method, allowed);
}

}  // namespace

bool is_rest_path(std::string_view path) noexcept {
    return path == "/api" || starts_with(path, "/api/") || starts_with(path, "/stream/");
}

RestRoute parse_rest_route(std::string_view method, std::string_view path) {
    RestRoute r;
    if (!is_rest_path(path)) {
        return r;
    }
    r.endpoint = RestEndpoint::not_found;
    if (starts_with(path, "/stream/")) {
        return named(RestEndpoint::stream, path.substr(8), method, "GET");
    }
    if (path == "/api/nodes") {
        r.endpoint = RestEndpoint::nodes;
        return with_method(std::move(r), method, "GET");
    }
    if (path == "/api/topics") {
        r.endpoint = RestEndpoint::topics;
        return with_method(std::move(r), method, "GET");
    }
    if (path == "/api/services") {
        r.endpoint = RestEndpoint::services;
        return with_method(std::move(r), method, "GET");
    }
    if (path == "/api/openapi.json") {
        r.endpoint = RestEndpoint::openapi;
        return with_method(std::move(r), method, "GET");
    }
    if (starts_with(path, "/api/topics/")) {
        std::string_view rest = path.substr(12);
        constexpr std::string_view latest = "/latest";
        const bool is_get = method == "GET" || method == "HEAD" || method == "OPTIONS";
        if (is_get && rest.size() > latest.size() && rest.substr(rest.size() - latest.size()) == latest) {
            return named(RestEndpoint::latest, rest.substr(0, rest.size() - latest.size()), method, "GET");
        }
        return named(RestEndpoint::publish, rest, method, "POST");
    }
    if (starts_with(path, "/api/services/")) {
        return named(RestEndpoint::call, path.substr(14), method, "POST");
    }
    return r;
}

}  // namespace meshy::cli::bridge
