#include "bridge/http_request.hpp"

#include <cctype>

namespace meshy::cli::bridge {
namespace {

bool is_tchar(char c) {
    const auto u = static_cast<unsigned char>(c);
    if (std::isalnum(u)) {
        return true;
    }
    switch (c) {
        case '!':
        case '#':
        case '$':
        case '%':
        case '&':
        case '\'':
        case '*':
        case '+':
        case '-':
        case '.':
        case '^':
        case '_':
        case '`':
        case '|':
        case '~':
            return true;
        default:
            return false;
    }
}

bool is_token(std::string_view s) {
    if (s.empty()) {
        return false;
    }
    for (const char c : s) {
        if (!is_tchar(c)) {
            return false;
        }
    }
    return true;
}

std::string_view trim(std::string_view s) {
    while (!s.empty() && (s.front() == ' ' || s.front() == '\t')) {
        s.remove_prefix(1);
    }
    while (!s.empty() && (s.back() == ' ' || s.back() == '\t')) {
        s.remove_suffix(1);
    }
    return s;
}

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

std::string percent_decode(std::string_view s) {
    std::string out;
    for (std::size_t i = 0; i < s.size(); ++i) {
        if (s[i] == '%' && i + 2 < s.size()) {
            const int hi = hex_value(s[i + 1]);
            const int lo = hex_value(s[i + 2]);
            if (hi >= 0 && lo >= 0) {
                out += static_cast<char>(hi * 16 + lo);
                i += 2;
                continue;
            }
        }
        out += s[i] == '+' ? ' ' : s[i];
    }
    return out;
}

HttpParse fail(std::string why) {
    HttpParse p;
    p.status = HttpParse::Status::error;
    p.error = std::move(why);
    return p;
}

}  // namespace

bool iequals(std::string_view a, std::string_view b) noexcept {
    if (a.size() != b.size()) {
        return false;
    }
    for (std::size_t i = 0; i < a.size(); ++i) {
        if (std::tolower(static_cast<unsigned char>(a[i])) != std::tolower(static_cast<unsigned char>(b[i]))) {
            return false;
        }
    }
    return true;
}

const std::string* HttpRequest::header(std::string_view name) const {
    for (const auto& [k, v] : headers) {
        if (iequals(k, name)) {
            return &v;
        }
    }
    return nullptr;
}

bool HttpRequest::header_has_token(std::string_view name, std::string_view token) const {
    for (const auto& [k, v] : headers) {
        if (!iequals(k, name)) {
            continue;
        }
        std::string_view rest = v;
        while (!rest.empty()) {
            const std::size_t comma = rest.find(',');
            const std::string_view item = trim(rest.substr(0, comma));
            if (iequals(item, token)) {
                return true;
            }
            if (comma == std::string_view::npos) {
                break;
            }
            rest.remove_prefix(comma + 1);
        }
    }
    return false;
}

std::string_view HttpRequest::path() const {
    std::string_view t = target;
    return t.substr(0, t.find('?'));
}

std::optional<std::string> HttpRequest::query_param(std::string_view name) const {
    const std::size_t q = target.find('?');
    if (q == std::string::npos) {
        return std::nullopt;
    }
    std::string_view rest = std::string_view(target).substr(q + 1);
    rest = rest.substr(0, rest.find('#'));
    while (!rest.empty()) {
        const std::size_t amp = rest.find('&');
        const std::string_view item = rest.substr(0, amp);
        const std::size_t eq = item.find('=');
        const std::string key = percent_decode(item.substr(0, eq));
        if (key == name) {
            return eq == std::string_view::npos ? std::string() : percent_decode(item.substr(eq + 1));
        }
        if (amp == std::string_view::npos) {
            break;
        }
        rest.remove_prefix(amp + 1);
    }
    return std::nullopt;
}

HttpParse parse_http_request(std::string_view bytes, std::size_t max_size) {
    const std::size_t end = bytes.find("\r\n\r\n");
    if (end == std::string_view::npos) {
        if (bytes.size() > max_size) {
            return fail("request head larger than " + std::to_string(max_size) + " bytes");
        }
        // A head must start with a method token; reject garbage early instead of waiting for more.
        for (const char c : bytes.substr(0, bytes.find(' '))) {
            if (!is_tchar(c) && c != '\r' && c != '\n') {
                return fail("malformed request line");
            }
        }
        return {};
    }
    if (end + 4 > max_size) {
        return fail("request head larger than " + std::to_string(max_size) + " bytes");
    }
    HttpParse out;
    std::string_view head = bytes.substr(0, end + 2);  // every line ends in CRLF
    auto next_line = [&head]() -> std::optional<std::string_view> {
        const std::size_t eol = head.find("\r\n");
        if (eol == std::string_view::npos) {
            return std::nullopt;
        }
        std::string_view line = head.substr(0, eol);
        head.remove_prefix(eol + 2);
        return line;
    };
    const auto request_line = next_line();
    if (!request_line) {
        return fail("malformed request line");
    }
    const std::size_t sp1 = request_line->find(' ');
    const std::size_t sp2 = sp1 == std::string_view::npos ? sp1 : request_line->find(' ', sp1 + 1);
    if (sp1 == std::string_view::npos || sp2 == std::string_view::npos ||
        request_line->find(' ', sp2 + 1) != std::string_view::npos) {
        return fail("malformed request line");
    }
    const std::string_view method = request_line->substr(0, sp1);
    const std::string_view target = request_line->substr(sp1 + 1, sp2 - sp1 - 1);
    const std::string_view version = request_line->substr(sp2 + 1);
    if (!is_token(method)) {
        return fail("malformed method");
    }
    if (target.empty()) {
        return fail("empty request target");
    }
    for (const char c : target) {
        const auto u = static_cast<unsigned char>(c);
        if (u <= 0x20 || u == 0x7f) {
            return fail("invalid character in request target");
        }
    }
    if (version != "HTTP/1.1" && version != "HTTP/1.0") {
        return fail("unsupported HTTP version");
    }
    out.request.method = method;
    out.request.target = target;
    out.request.version = version;
    while (auto line = next_line()) {
        if (line->empty()) {
            break;
        }
        const std::size_t colon = line->find(':');
        if (colon == std::string_view::npos) {
            return fail("malformed header line");
        }
        const std::string_view name = line->substr(0, colon);
        if (!is_token(name)) {
            return fail("malformed header name");
        }
        const std::string_view value = trim(line->substr(colon + 1));
        for (const char c : value) {
            const auto u = static_cast<unsigned char>(c);
            if ((u < 0x20 && c != '\t') || u == 0x7f) {
                return fail("invalid character in header value");
            }
        }
        if (out.request.headers.size() >= 100) {
            return fail("too many headers");
        }
        out.request.headers.emplace_back(std::string(name), std::string(value));
    }
    out.status = HttpParse::Status::complete;
    out.consumed = end + 4;
    return out;
}

}  // namespace meshy::cli::bridge
