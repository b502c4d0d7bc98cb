// A minimal blocking WebSocket client (RFC 6455 client side, plain TCP) for the bridge's tests and
// benchmark: connect and upgrade, send masked frames (or raw bytes), receive messages with a timeout.
#pragma once

#include <chrono>
#include <cstdint>
#include <string>
#include <string_view>

namespace meshy::cli::bridge {

/// One received message or event.
struct ClientMessage {
    enum class Kind { text, binary, close, timeout, closed };
    Kind kind = Kind::timeout;
    std::string data;        ///< message data or close reason
    std::uint16_t code = 0;  ///< close code
};

/// A blocking client on one TCP connection.
class WebSocketClient {
public:
    /// Connects to host:port and sends the upgrade request for `target` (e.g. "/?token=x") with
    /// `extra_headers` ("Name: value\r\n" lines). @throws std::runtime_error when the connection or
    /// the upgrade fails (the message holds the HTTP status line).
    WebSocketClient(const std::string& host,
                    std::uint16_t port,
                    const std::string& target = "/",
                    const std::string& extra_headers = {},
                    std::chrono::milliseconds timeout = std::chrono::milliseconds(5000));
    ~WebSocketClient();
    WebSocketClient(const WebSocketClient&) = delete;
    WebSocketClient& operator=(const WebSocketClient&) = delete;

    /// Sends a text message (masked, one frame).
    void send_text(std::string_view text);
    /// Sends a binary message.
    void send_binary(std::string_view data);
    /// Sends bytes as they are (malformed-frame tests). @returns false when the socket failed.
    bool send_raw(std::string_view bytes);
    /// Sends a close frame.
    void send_close(std::uint16_t code, std::string_view reason = {});
    /// Receives the next message; answers pings. Kind::timeout when nothing came in `timeout`,
    /// Kind::closed when the connection ended without a close frame.
    ClientMessage receive(std::chrono::milliseconds timeout);
    /// The socket.
    int fd() const noexcept { return fd_; }

    /// Sends an HTTP request and returns the whole response (until the server closes).
    static std::string http_request(const std::string& host,
                                    std::uint16_t port,
                                    const std::string& request,
                                    std::chrono::milliseconds timeout = std::chrono::milliseconds(5000));

private:
    bool write_all(std::string_view bytes);
    int fd_ = -1;
    std::string inbuf_;
    std::uint32_t mask_seed_ = 0x9e3779b9u;
};

}  // namespace meshy::cli::bridge
