// One connection to `meshy bridge`: optional TLS, the HTTP request (dashboard GET or WebSocket
// upgrade), then RFC 6455 frames in both directions with a bounded send queue, pings, an idle
// timeout and a stall timeout. What the messages mean is the SessionHost's business.
#pragma once

#include <asio/any_io_executor.hpp>
#include <asio/awaitable.hpp>
#include <asio/ip/tcp.hpp>
#include <chrono>
#include <cstdint>
#include <functional>
#include <memory>
#include <string>
#include <string_view>
#include <utility>

#include "bridge/bridge_options.hpp"
#include "bridge/http_request.hpp"
#include "bridge/send_queue.hpp"

namespace asio::ssl {
class context;
}

namespace meshy::cli::bridge {

class WebSocketSession;

/// What the HTTP request of a connection gets: an upgrade, or a response after which it closes.
struct HttpDecision {
    bool upgrade = false;
    std::string response;  ///< bytes to send (the 101 response when upgrading)
    /// When set (and `response` empty), it owns the connection after the request head: it reads a
    /// body, answers later or streams (REST, MJPEG); the connection closes when it returns. No
    /// handshake deadline applies then: the handler bounds its own waits.
    std::function<asio::awaitable<void>(WebSocketSession&)> handler;
};

/// The server side of sessions; every call comes on the sessions' executor.
class SessionHost {
public:
    virtual ~SessionHost() = default;
    /// Decides about the connection's HTTP request.
    virtual HttpDecision on_request(WebSocketSession& session, const HttpRequest& request) = 0;
    /// The WebSocket is open (after on_request chose to upgrade).
    virtual void on_open(WebSocketSession& session, const HttpRequest& request) = 0;
    /// A complete message.
    virtual void on_message(WebSocketSession& session, std::string&& data, bool binary) = 0;
    /// The connection is gone (only for sessions that were opened).
    virtual void on_closed(WebSocketSession& session) = 0;
};

/// One connection. Owned by shared_ptr; lives while its coroutines run.
class WebSocketSession : public std::enable_shared_from_this<WebSocketSession> {
public:
    /// @param tls the TLS context, or nullptr for plain TCP
    WebSocketSession(asio::ip::tcp::socket socket,
                     asio::ssl::context* tls,
                     SessionHost& host,
                     const BridgeOptions& options,
                     std::uint64_t id);
    ~WebSocketSession();
    WebSocketSession(const WebSocketSession&) = delete;
    WebSocketSession& operator=(const WebSocketSession&) = delete;

    /// Starts reading (TLS handshake, HTTP request, frames).
    void start();

    std::uint64_t id() const noexcept { return id_; }
    /// "address:port" of the peer.
    const std::string& peer() const noexcept { return peer_; }
    /// True while the WebSocket is open and no close was queued.
    bool is_open() const noexcept { return ws_open_ && !close_queued_ && !dead_; }
    /// True until the HTTP request (and TLS handshake) is done: the connection is not a client yet.
    bool handshaking() const noexcept { return !ws_open_ && !dead_; }

    /// Time a connection has from being accepted to a complete HTTP request (TLS handshake
    /// included). Short: a socket that sends nothing must not hold a slot for long.
    static constexpr std::chrono::milliseconds handshake_timeout{3000};

    /// Queues a text (or binary) message that must not be dropped (status, service responses).
    void send(std::string_view data, bool binary = false);
    /// Queues a pre-encoded frame of topic data: droppable (oldest first) when the queue is over its
    /// byte bound, and at most `topic_cap` (> 0) frames of `topic` wait at once (drop-oldest).
    void send_topic_frame(std::shared_ptr<const std::string> frame, const std::string& topic, std::size_t topic_cap);
    /// Starts the closing handshake with `code` and `reason` (queued data of topics is dropped).
    void close(std::uint16_t code, std::string_view reason);
    /// Drops the connection at once, no closing handshake.
    void abort(std::string_view why = {});

    /// Keeps `guard` until the session is destroyed (the server's connection count).
    void hold(std::shared_ptr<void> guard) { guard_ = std::move(guard); }

    /// Reads what arrives (for an HttpDecision handler). @throws std::system_error
    asio::awaitable<std::size_t> read_some(char* data, std::size_t size);
    /// Writes all of `data` (for an HttpDecision handler). @throws std::system_error
    asio::awaitable<void> write_all(std::string_view data);
    /// Takes the bytes received after the request head (the start of a body).
    std::string take_buffered() { return std::exchange(inbuf_, {}); }
    /// True once the connection was dropped.
    bool is_dead() const noexcept { return dead_; }

    /// Bytes waiting in the send queue.
    std::size_t queued_bytes() const noexcept { return queue_.bytes(); }
    /// Topic frames dropped so far.
    std::uint64_t dropped() const noexcept { return queue_.dropped(); }

private:
    struct Stream;
    using Clock = std::chrono::steady_clock;

    asio::awaitable<void> run();
    asio::awaitable<void> writer();
    asio::awaitable<void> watchdog();
    void enqueue(SendQueue::Item item, std::size_t topic_cap = 0);
    void handle_frames();
    void fail(std::uint16_t code, const std::string& why);
    void disconnect(std::string_view kind, const std::string& why);
    void wake_writer();

    std::unique_ptr<Stream> stream_;
    bool tls_;
    SessionHost& host_;
    const BridgeOptions& options_;
    std::uint64_t id_;
    std::string peer_;

    std::string inbuf_;
    SendQueue queue_;
    bool ws_open_ = false;
    bool close_queued_ = false;
    bool close_written_ = false;
    bool peer_closed_ = false;
    bool input_closed_ = false;  ///< closed for bad input: nothing more is read from the peer
    bool dead_ = false;
    bool closed_notified_ = false;
    Clock::time_point deadline_{};  ///< handshake deadline, then close-handshake deadline
    Clock::time_point last_receive_{};
    Clock::time_point last_ping_{};
    Clock::time_point last_progress_{};
    struct Assembler;
    std::unique_ptr<Assembler> assembler_;
    std::shared_ptr<void> guard_;
};

}  // namespace meshy::cli::bridge
