// Internal: the static peers of a node (NodeOptions::peers, MESHY_PEERS): addresses it dials
// whatever discovery finds, each in its own loop with backoff, all at once (an unreachable peer
// never delays the others). Over such a link the two nodes exchange the adverts they know
// (wire::Adverts), which is how a node learns the mesh from one well-known peer (node_gossip.cpp).
#pragma once

#include <asio/any_io_executor.hpp>
#include <asio/awaitable.hpp>
#include <asio/strand.hpp>
#include <cstdint>
#include <functional>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "transport/connection.hpp"

namespace meshy::detail {

/// Where a static peer listens: "tcp/HOST:PORT" (HOST an IPv4 address, [IPv6] or a name resolved
/// at each dial) or "unix/PATH".
struct PeerEndpoint {
    std::string text;  ///< as configured, for logs
    bool is_unix = false;
    std::string host;  ///< tcp: address or name
    std::uint16_t port = 0;
    std::string path;  ///< unix: socket path
};

/// Parses one endpoint. @throws Error(invalid_argument) naming what is wrong.
PeerEndpoint parse_peer_endpoint(std::string_view text);
/// `configured` (NodeOptions::peers) followed by MESHY_PEERS (comma-separated), parsed, duplicates
/// dropped. @throws Error(invalid_argument) for a malformed entry.
std::vector<PeerEndpoint> static_peer_endpoints(const std::vector<std::string>& configured);

/// The dialing half: one loop per endpoint (connect, wait while the connection lasts, back off,
/// again) until stop().
class StaticPeers {
public:
    /// Wraps a connected socket into a Connection that is not started yet (StaticPeers records it first).
    using Adopt = std::function<std::shared_ptr<Connection>(Connection::Socket, bool is_unix)>;
    /// What keeps the owner alive while a loop runs (null: it is going).
    using KeepAlive = std::function<std::shared_ptr<void>()>;

    StaticPeers(asio::any_io_executor executor, std::vector<PeerEndpoint> endpoints, Adopt adopt, KeepAlive keep_alive);

    void start();
    /// Ends the loops. @returns the connections that are open, for a goodbye.
    std::vector<std::shared_ptr<Connection>> stop();
    /// The endpoint `conn` was dialed at; empty when it is not one of these links.
    std::optional<PeerEndpoint> endpoint_of(const Connection* conn) const;
    /// A connection closed: its loop redials (after backoff).
    void on_closed(const Connection* conn);
    /// Links that are open now.
    std::vector<std::shared_ptr<Connection>> connections() const;
    const std::vector<PeerEndpoint>& endpoints() const noexcept { return endpoints_; }

private:
    struct Slot;
    asio::awaitable<void> run(std::shared_ptr<Slot> slot, std::shared_ptr<void> hold);
    bool running() const;

    asio::any_io_executor exec_;
    asio::strand<asio::any_io_executor> strand_;
    std::vector<PeerEndpoint> endpoints_;
    Adopt adopt_;
    KeepAlive keep_alive_;
    mutable std::mutex mutex_;  // guards running_ and every slot's connection
    bool running_ = false;
    std::vector<std::shared_ptr<Slot>> slots_;
};

}  // namespace meshy::detail
