// The server side of the RFC 6455 opening handshake: checks an upgrade request and builds the
// 101 response (Sec-WebSocket-Accept = base64(SHA-1(key + GUID)), SHA-1 from OpenSSL).
#pragma once

#include <string>
#include <string_view>

#include "bridge/http_request.hpp"

namespace meshy::cli::bridge {

/// Sec-WebSocket-Accept for a Sec-WebSocket-Key.
std::string websocket_accept_key(std::string_view key);

/// True when the request asks for a WebSocket upgrade at all (Upgrade: websocket).
bool is_websocket_upgrade(const HttpRequest& request);

/// The outcome of check_websocket_upgrade().
struct UpgradeCheck {
    bool ok = false;
    int status = 400;    ///< HTTP status when not ok (400, 405, 426)
    std::string error;   ///< why, when not ok
    std::string accept;  ///< Sec-WebSocket-Accept when ok
};

/// Checks method, version, Upgrade/Connection tokens, Sec-WebSocket-Version 13 and a key of 16
/// base64-encoded bytes.
UpgradeCheck check_websocket_upgrade(const HttpRequest& request);

/// The 101 Switching Protocols response.
std::string websocket_upgrade_response(std::string_view accept);

/// A complete HTTP/1.1 response with Connection: close.
std::string http_response(int status,
                          std::string_view content_type,
                          std::string_view body,
                          std::string_view extra_headers = {});

/// "Not Found" for 404 and so on.
std::string_view http_reason(int status);

}  // namespace meshy::cli::bridge
