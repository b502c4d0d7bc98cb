#include "bridge/websocket_handshake.hpp"

#include <openssl/sha.h>

#include "bridge/base64.hpp"

namespace meshy::cli::bridge {

std::string websocket_accept_key(std::string_view key) {
    static constexpr std::string_view guid = "258EAFA5-E914-47DA-95CA-C5AB0DC85B11";
    std::string input(key);
    input += guid;
    unsigned char digest[SHA_DIGEST_LENGTH];
    SHA1(reinterpret_cast<const unsigned char*>(input.data()), input.size(), digest);
    return base64_encode(std::as_bytes(std::span(digest, sizeof digest)));
}

bool is_websocket_upgrade(const HttpRequest& request) {
    return request.header_has_token("Upgrade", "websocket");
}

UpgradeCheck check_websocket_upgrade(const HttpRequest& request) {
    UpgradeCheck out;
    if (request.method != "GET") {
        out.status = 405;
        out.error = "WebSocket upgrade needs GET";
        return out;
    }
    if (request.version != "HTTP/1.1") {
        out.error = "WebSocket upgrade needs HTTP/1.1";
        return out;
    }
    if (!request.header("Host")) {
        out.error = "missing Host header";
        return out;
    }
    if (!request.header_has_token("Upgrade", "websocket")) {
        out.error = "missing Upgrade: websocket";
        return out;
    }
    if (!request.header_has_token("Connection", "upgrade")) {
        out.error = "missing Connection: Upgrade";
        return out;
    }
    const std::string* version = request.header("Sec-WebSocket-Version");
    if (!version || *version != "13") {
        out.status = 426;
        out.error = "unsupported Sec-WebSocket-Version (13 required)";
        return out;
    }
    const std::string* key = request.header("Sec-WebSocket-Key");
    if (!key) {
        out.error = "missing Sec-WebSocket-Key";
        return out;
    }
    const auto decoded = base64_decode(*key);
    if (!decoded || decoded->size() != 16) {
        out.error = "invalid Sec-WebSocket-Key";
        return out;
    }
    out.ok = true;
    out.status = 101;
    out.accept = websocket_accept_key(*key);
    return out;
}

std::string websocket_upgrade_response(std::string_view accept) {
    std::string out =
        "HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Accept: ";
    out += accept;
    out += "\r\n\r\n";
    return out;
}

std::string_view http_reason(int status) {
    switch (status) {
        case 101:
            return "Switching Protocols";
        case 200:
            return "OK";
        case 204:
            return "No Content";
        case 400:
            return "Bad Request";
        case 401:
            return "Unauthorized";
        case 403:
            return "Forbidden";
        case 404:
            return "Not Found";
        case 405:
            return "Method Not Allowed";
        case 411:
            return "Length Required";
        case 413:
            return "Content Too Large";
        case 426:
            return "Upgrade Required";
        case 431:
            return "Request Header Fields Too Large";
        case 502:
            return "Bad Gateway";
        case 503:
            return "Service Unavailable";
        case 504:
            return "Gateway Timeout";
        default:
            return "Error";
    }
}

std::string http_response(int status,
                          std::string_view content_type,
                          std::string_view body,
                          std::string_view extra_headers) {
    std::string out = "HTTP/1.1 " + std::to_string(status) + " " + std::string(http_reason(status)) + "\r\n";
    out += "Content-Type: ";
    out += content_type;
    out += "\r\nContent-Length: " + std::to_string(body.size()) + "\r\n";
    out += "Connection: close\r\nX-Content-Type-Options: nosniff\r\nCache-Control: no-cache\r\n";
    out += extra_headers;
    out += "\r\n";
    out += body;
    return out;
}

}  // namespace meshy::cli::bridge
