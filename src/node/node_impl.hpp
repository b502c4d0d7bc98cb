// Internal: the machinery behind meshy::Node, as wiring between its parts: the topology
// (topology/peer_table), the links to peers (peer_links), this node's listeners (subscriptions),
// its services (services), its pending calls (calls), where calls go (service_router), the routing
// of what it sends (publisher), the listeners that follow downstream ones (listener_dependencies)
// and where it accepts connections (node_servers). Each part keeps its own state under its own
// lock; NodeImpl connects the public API (node_impl.cpp), discovery and connections
// (node_events.cpp), static peers and exchanged adverts (node_gossip.cpp) to them.
#pragma once

#include <asio/any_io_executor.hpp>
#include <asio/awaitable.hpp>
#include <asio/generic/stream_protocol.hpp>
#include <asio/io_context.hpp>
#include <asio/strand.hpp>
#include <atomic>
#include <chrono>
#include <functional>
#include <memory>
#include <mutex>
#include <optional>
#include <set>
#include <string>
#include <vector>

#include "discovery/discovery.hpp"
#include "meshy/node.hpp"
#include "node/advert_exchange.hpp"
#include "node/calls.hpp"
#include "node/listener_dependencies.hpp"
#include "node/node_servers.hpp"
#include "node/peer_links.hpp"
#include "node/publisher.hpp"
#include "node/service_router.hpp"
#include "node/services.hpp"
#include "node/static_peers.hpp"
#include "node/subscriptions.hpp"
#include "topology/peer_table.hpp"
#include "transport/connection.hpp"
#include "transport/receive_budget.hpp"
#include "transport/shm_pool.hpp"
#include "wire/frame.hpp"

namespace meshy::detail {

class NodeImpl final : public ConnectionHandler, public std::enable_shared_from_this<NodeImpl> {
public:
    /// @param own_loop the executor belongs to the node's own thread (Node owns it)
    NodeImpl(asio::any_io_executor executor, NodeOptions options, bool own_loop);
    ~NodeImpl() override;

    void start();
    void stop();
    bool running() const noexcept { return running_.load(std::memory_order_acquire); }

    const std::string& id() const noexcept { return id_; }
    const std::string& name() const noexcept { return name_; }
    const std::string& domain() const noexcept { return domain_; }
    const std::string& host() const noexcept { return host_; }
    asio::any_io_executor executor() const noexcept { return exec_; }
    CodecId codec() const noexcept { return options_.codec; }
    const NodeOptions& options() const noexcept { return options_; }
    std::string backend_name() const;
    /// True on a thread running the node's io_context (its own thread, or one of the user's).
    bool on_own_thread() const;

    // topics
    bool begin_message(std::string_view topic, CodecId codec, Buffer& frame) {
        return publisher_.begin_message(topic, codec, frame);
    }
    /// See Publisher::finish_message.
    void finish_message(std::string_view topic,
                        Buffer&& frame,
                        std::span<const std::byte> tail = {},
                        std::vector<std::shared_ptr<Connection>>* full = nullptr,
                        const LoanedSend* loaned = nullptr) {
        publisher_.finish_message(topic, std::move(frame), tail, full, loaned);
    }
    /// The node's loan pool (Node::loan); its memory is made on first use.
    const std::shared_ptr<ShmLoanPool>& loan_pool() const noexcept { return loan_pool_; }
    void send_raw(std::string_view topic, CodecId codec, std::span<const std::byte> payload, std::uint64_t sent_at_ns);
    void advertise(std::string topic, const AdvertiseOptions& options);
    void listen(std::string topic, ListenerFn fn);
    bool stop_listening(std::string_view topic);
    std::vector<std::string> listened_topics() const { return subs_.topics(); }
    bool topic_has_listeners(std::string_view topic) const;
    /// This node will send `topic`: it is advertised (untyped, unless advertise() said more).
    void announce_sender(const std::string& topic);
    /// This node listens to `topic`, or a listener's link is up (a message would leave at once).
    bool listener_reachable(std::string_view topic) const;
    void depends_on_listener(std::string downstream, std::string upstream, ListenerFn fn);

    // services
    void add_service(std::string service, ServiceFn fn);
    bool remove_service(std::string_view service);
    std::vector<std::string> provided_services() const { return services_.names(); }
    bool service_has_providers(std::string_view service) const;
    asio::awaitable<RawPayload> call(std::string&& service, CodecId codec, Buffer&& request, CallOptions options);
    /// call() for a thread that may block (never the node's own): it sends the request itself and
    /// waits for the reply, with no hand-over to the node's thread.
    RawPayload call_blocking(std::string service, CodecId codec, Buffer request, CallOptions options);

    /// Waits until `ready()` holds, polling on topology changes. @throws Error(errc::timeout).
    asio::awaitable<void> wait_until(std::function<bool()> ready, std::chrono::milliseconds timeout, std::string what);

    std::vector<NodeInfo> nodes() const;

    // ConnectionHandler
    bool on_handshake(const std::shared_ptr<Connection>& conn, const wire::Handshake& hs, std::string& reason) override;
    void on_frame(const std::shared_ptr<Connection>& conn, const wire::FrameView& frame) override;
    void on_frames_done(const std::shared_ptr<Connection>& conn) override;
    void on_loaned(const std::shared_ptr<Connection>& conn, LoanedMessage message) override;
    void on_closed(const std::shared_ptr<Connection>& conn, const std::string& reason) override;

private:
    void open_servers();
    std::shared_ptr<Connection> adopt(Connection::Socket socket, bool outbound, bool is_unix, std::string expected_id);
    ConnectionConfig connection_config(std::string expected_id) const;

    void on_peer_up(const Advert& advert);
    void on_peer_down(const std::string& id);
    void on_link_lost(const std::string& peer_id, const std::string& why);
    /// Why an inbound connection claiming `hs.id` is refused, or empty to accept it.
    std::string check_identity(const Connection& conn, const wire::Handshake& hs) const;

    /// The topology or this node's listeners changed: a new routing for senders and callers.
    void rebuild_routing();
    /// With mutex_ held: dials the listeners of the topics this node sends.
    void dial_listeners_locked(const Routing& routing);
    /// Dials the publishers of typed topics this node listens to whose schemas it lacks (mutex_ not held).
    void dial_for_schemas();
    /// What this node listens to, provides or sends changed: a new advert and Info for peers.
    void lists_changed();
    /// What discovery publishes of `advert`: with a domain key, no lists (complete false).
    Advert advertised(Advert advert) const;
    SharedFrame info_frame() const;
    // Static peers and the adverts exchanged over links (node_gossip.cpp).
    void make_static_peers();
    /// A link this node dialed finished its handshake: a static peer's gets this node's advert.
    void static_link_ready(const std::shared_ptr<Connection>& conn);
    void on_adverts(const std::shared_ptr<Connection>& conn, const wire::FrameView& frame);
    void apply_adverts(const std::shared_ptr<Connection>& conn, wire::Adverts adverts);
    /// The topology changed: tell the links that asked.
    void push_adverts();
    /// This node's advert changed: tell the links that asked and the static peers.
    void push_own_advert(const Advert& self);
    void exchange_link_closed(const std::shared_ptr<Connection>& conn);

    /// Fails the call at once when the node is not running, else see ServiceRouter::start.
    void start_call(std::unique_ptr<CallWaiter> waiter,
                    const std::string& service,
                    CodecId codec,
                    Buffer& request,
                    std::chrono::milliseconds timeout);
    std::chrono::milliseconds call_timeout(const CallOptions& options) const {
        return options.timeout.count() > 0 ? options.timeout : options_.call_timeout;
    }

    NodeOptions options_;
    std::string id_, name_, domain_, host_;

    bool own_loop_ = false;
    asio::any_io_executor exec_;
    asio::strand<asio::any_io_executor> strand_;

    NodeServers servers_;
    std::shared_ptr<ReceiveBudget> receive_budget_;  // shared by the node's connections
    std::shared_ptr<const DomainKey> domain_key_;    // null: links in the clear
    std::shared_ptr<ShmLoanPool> loan_pool_ = std::make_shared<ShmLoanPool>(options_.shm_pool_bytes);
    std::unique_ptr<Discovery> discovery_;
    std::unique_ptr<StaticPeers> static_peers_;  // null without static peers
    AdvertExchange exchange_;
    std::atomic<bool> running_{false};

    // The parts (declared in the order they are built; Publisher refers to PeerLinks and Subscriptions).
    PeerTable peers_;
    PeerLinks links_;
    Subscriptions subs_;
    Services services_;
    Calls calls_;
    Publisher publisher_;
    ServiceRouter router_;
    ListenerDependencies dependencies_;

    mutable std::mutex mutex_;  // guards the wiring state below; taken before any part's lock
    Advert self_advert_;
    std::set<std::string> withdrawn_;  // peers that withdrew while a link to them was open
};

}  // namespace meshy::detail
