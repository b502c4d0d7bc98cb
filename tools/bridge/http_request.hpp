// An HTTP/1.1 request head (request line and headers), parsed from untrusted bytes by a pure
// function: the WebSocket upgrade and the dashboard's GET requests of `meshy bridge`.
#pragma once

#include <cstddef>
#include <optional>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

namespace meshy::cli::bridge {

/// A parsed request head.
struct HttpRequest {
    std::string method;                                        ///< "GET"
    std::string target;                                        ///< "/path?query" as sent
    std::string version;                                       ///< "HTTP/1.1"
    std::vector<std::pair<std::string, std::string>> headers;  ///< in order, values trimmed

    /// The first header of that name (case-insensitive), or nullptr.
    const std::string* header(std::string_view name) const;
    /// True when a comma-separated header contains `token` (case-insensitive).
    bool header_has_token(std::string_view name, std::string_view token) const;
    /// The target's path (before '?').
    std::string_view path() const;
    /// A query parameter's value, percent-decoded; nullopt when absent.
    std::optional<std::string> query_param(std::string_view name) const;
};

/// The outcome of parse_http_request().
struct HttpParse {
    enum class Status { incomplete, complete, error };
    Status status = Status::incomplete;
    HttpRequest request;       ///< when complete
    std::size_t consumed = 0;  ///< bytes of the head, CRLFCRLF included, when complete
    std::string error;         ///< when error
};

/// Parses a request head from the start of `bytes`. Incomplete while no blank line has arrived and
/// `bytes` is within `max_size`; an error for anything malformed or a head over `max_size`.
HttpParse parse_http_request(std::string_view bytes, std::size_t max_size = 16 * 1024);

/// True when two ASCII strings are equal ignoring case.
bool iequals(std::string_view a, std::string_view b) noexcept;

}  // namespace meshy::cli::bridge
