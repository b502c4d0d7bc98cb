// Internal: this node's links to its peers. A link is the connection this node dials to a peer,
// lazily: when it has a message or a call for it (or must fetch lists the peer's advert could not
// carry). What is sent while the link is being dialed waits in it, bounded by the outbox's
// capacity and TTL. Connections peers dial to this node (inbound) are kept here too, for stop().
#pragma once

#include <asio/any_io_executor.hpp>
#include <asio/awaitable.hpp>
#include <asio/strand.hpp>
#include <atomic>
#include <chrono>
#include <deque>
#include <functional>
#include <memory>
#include <mutex>
#include <optional>
#include <set>
#include <string>
#include <string_view>
#include <unordered_map>
#include <vector>

#include "common/drop_counter.hpp"
#include "discovery/discovery.hpp"
#include "meshy/node_options.hpp"
#include "transport/connection.hpp"

namespace meshy::detail {

/// A frame waiting for a link to be dialed.
struct Parked {
    SharedFrame frame;
    std::chrono::steady_clock::time_point at;
};

/// The way from this node to one peer.
struct PeerLink : std::enable_shared_from_this<PeerLink> {
    explicit PeerLink(std::string peer_id) : id(std::move(peer_id)) {}
    const std::string id;

    std::mutex mutex;                    // guards everything below
    std::string name;                    // for logs
    std::optional<Advert> advert;        // where to dial; absent once withdrawn
    std::shared_ptr<Connection> dialed;  // the connection this node dialed: connecting or open
    std::shared_ptr<Connection> ready;   // `dialed`, once its handshake is done
    /// A dial under way, or the pause before a redial (after a failed dial): either way nothing
    /// else dials meanwhile.
    enum class Dial { none, under_way, waiting_to_redial };
    Dial dial_state = Dial::none;
    bool leaving = false;  // the peer said goodbye on this link: never redialed
    int redial_ms = 0;
    std::deque<Parked> parked;  // frames waiting for `ready`
    DropCounter parked_drops;   // frames dropped from parked

    std::atomic<bool> up{false};  // `ready` is set: readable without the lock (routing decisions)
    // `ready`, readable without the lock: the publisher sends through its own reference to the
    // connection while this still names it (see RouteTarget::ready).
    std::atomic<Connection*> current{nullptr};

    bool connected() const noexcept { return ready != nullptr; }
    /// With mutex held: sets `ready`.
    void set_ready(std::shared_ptr<Connection> conn) {
        ready = std::move(conn);
        current.store(ready.get(), std::memory_order_release);
        up.store(ready != nullptr, std::memory_order_release);
    }
};

/// Connects a socket to `ep` within 2 s: `connected` on success, else `last_error` says why.
asio::awaitable<bool> connect_bounded(asio::any_io_executor executor,
                                      asio::generic::stream_protocol::endpoint ep,
                                      std::optional<Connection::Socket>& connected,
                                      std::string& last_error);

/// Lock order: PeerLinks' own lock before a PeerLink's, never the other way round.
class PeerLinks {
public:
    /// Wraps a connected socket into a started Connection (the node is its handler).
    using Adopt = std::function<std::shared_ptr<Connection>(Connection::Socket, bool is_unix, std::string peer_id)>;
    /// A peer could not be reached (dial failed, or its link was lost with nothing to take over):
    /// what was meant for it (calls) fails.
    using Unreachable = std::function<void(const std::string& peer_id, const std::string& why)>;

    /// What keeps the links' owner alive while a dial or a redial timer is pending (null: it is going).
    using KeepAlive = std::function<std::shared_ptr<void>()>;

    PeerLinks(asio::any_io_executor executor,
              const NodeOptions& options,
              std::string host,
              Adopt adopt,
              Unreachable lost,
              KeepAlive keep_alive);

    /// The link to `id`, made on first use.
    std::shared_ptr<PeerLink> obtain(const std::string& id);
    /// The link to `id`, or null.
    std::shared_ptr<PeerLink> find(std::string_view id) const;
    /// `advert` is where its peer is now.
    void advert_changed(const Advert& advert);
    /// The peer withdrew: its link is closed and forgotten.
    void withdrawn(std::string_view id);

    /// With link.mutex held: queues `frame` on the link's connection, or parks it and dials.
    /// `used`: the connection that took it (null while parked). @returns true when the outbox is
    /// full now (see OutboxFull::wait).
    bool deliver_locked(PeerLink& link,
                        const SharedFrame& frame,
                        const Connection** used = nullptr,
                        bool urgent = false);
    /// With link.mutex held: dials the peer unless connected or dialing.
    void dial_locked(PeerLink& link);

    /// An outbound connection finished its handshake: its link is ready, parked frames go out.
    void on_ready(const std::shared_ptr<Connection>& conn);
    /// The peer said goodbye on a connection this node dialed.
    void on_goodbye(const std::shared_ptr<Connection>& conn);
    /// A peer dialed this node.
    void add_inbound(const std::shared_ptr<Connection>& conn);
    /// A connection closed (either way).
    void on_closed(const std::shared_ptr<Connection>& conn, const std::string& reason);
    /// The connections peers dialed to this node.
    std::vector<std::shared_ptr<Connection>> inbound() const;
    /// How many there are.
    std::size_t inbound_count() const;

    /// False once stop() was called.
    bool running() const;
    /// True while some link holds frames and is being dialed (they go out once it is up).
    bool flushing() const;
    /// Ends dialing; @returns every connection (dialed and inbound), for a goodbye.
    std::vector<std::shared_ptr<Connection>> stop();

private:
    asio::awaitable<void> dial(std::shared_ptr<PeerLink> link, Advert advert, std::shared_ptr<void> hold);
    void schedule_redial_locked(PeerLink& link);
    /// With link.mutex held: drops parked frames older than the TTL (all of them when `all`).
    void expire_parked_locked(PeerLink& link, bool all, const std::string& why);

    asio::any_io_executor exec_;
    asio::strand<asio::any_io_executor> strand_;
    NodeOptions options_;
    std::string host_;
    Adopt adopt_;
    Unreachable lost_;
    KeepAlive keep_alive_;
    mutable std::mutex mutex_;  // guards the members below
    bool running_ = true;
    std::unordered_map<std::string, std::shared_ptr<PeerLink>> links_;
    std::set<std::shared_ptr<Connection>> inbound_;
};

}  // namespace meshy::detail
