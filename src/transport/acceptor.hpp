// Internal: a node's listening socket (TCP or Unix) and its accept loop, bounded: connections that
// have not finished their handshake are capped (the oldest is closed to make room), so are new
// connections a second, and running out of descriptors closes pending handshakes and backs off
// instead of spinning.
#pragma once

#include <asio/any_io_executor.hpp>
#include <asio/awaitable.hpp>
#include <asio/basic_socket_acceptor.hpp>
#include <asio/generic/stream_protocol.hpp>
#include <asio/steady_timer.hpp>
#include <atomic>
#include <chrono>
#include <cstddef>
#include <deque>
#include <functional>
#include <memory>
#include <string>
#include <system_error>

namespace meshy::detail {

class Connection;

struct AcceptorOptions {
    /// Accepted connections whose handshake has not arrived yet; at the cap the oldest is closed.
    std::size_t max_pending = 256;
    /// New connections accepted a second (bursts up to max_pending).
    std::size_t max_accepts_per_second = 4096;
};

class Acceptor : public std::enable_shared_from_this<Acceptor> {
public:
    using Protocol = asio::generic::stream_protocol;
    using Socket = Protocol::socket;
    /// Makes a connection of an accepted socket and starts it; null if it cannot.
    using Adopt = std::function<std::shared_ptr<Connection>(Socket socket)>;

    /// @param executor runs the accept loop; @param socket_executor the accepted sockets' one.
    Acceptor(asio::any_io_executor executor,
             asio::any_io_executor socket_executor,
             std::string label,
             AcceptorOptions options,
             Adopt adopt);

    /// Opens, binds and listens on `endpoint`; `ec` says why not.
    void listen(const Protocol::endpoint& endpoint, bool reuse_address, std::error_code& ec);
    Protocol::endpoint local_endpoint() const;
    /// Starts accepting (after listen()).
    void start();
    /// Stops accepting and closes the listening socket (thread-safe).
    void close();
    /// Connections accepted and waiting for their handshake now (for tests and stats).
    std::size_t pending() const noexcept { return pending_count_.load(std::memory_order_relaxed); }

private:
    asio::awaitable<void> accept_loop();
    /// Forgets pending connections that handshook or closed.
    void prune();
    /// Closes up to `count` of the oldest pending connections. @returns how many it closed.
    std::size_t evict_oldest(std::size_t count, const char* why);
    /// Waits for a token of the accept rate.
    asio::awaitable<void> take_token(asio::steady_timer& timer);
    /// Forgets every pending connection that handshook or closed, wherever it is in the queue.
    void forget_finished();
    /// Returns what the allocator holds freed to the system (after forget_finished()).
    void release_memory();
    /// While a flood of connections closes, returns the freed memory to the system; ends once the
    /// flood is over (no accepts for an interval and nothing waiting for a handshake).
    asio::awaitable<void> release_memory_after_flood();

    asio::any_io_executor executor_;
    asio::any_io_executor socket_executor_;
    std::string label_;
    AcceptorOptions options_;
    Adopt adopt_;
    asio::basic_socket_acceptor<Protocol> acceptor_;
    std::deque<std::weak_ptr<Connection>> pending_;  // in accept order; on executor_ only
    double tokens_ = 0;
    std::chrono::steady_clock::time_point refilled_{};
    std::size_t accepted_since_release_ = 0;  // since the watch last looked, or since it ended
    bool releasing_ = false;
    std::atomic<bool> closed_{false};
    std::atomic<std::size_t> pending_count_{0};
};

}  // namespace meshy::detail
