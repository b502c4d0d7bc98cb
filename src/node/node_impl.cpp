#include "node/node_impl.hpp"

#include <netinet/in.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

#include <algorithm>
#include <asio/associated_executor.hpp>
#include <asio/async_result.hpp>
#include <asio/co_spawn.hpp>
#include <asio/detached.hpp>
#include <asio/dispatch.hpp>
#include <asio/experimental/as_tuple.hpp>
#include <asio/ip/tcp.hpp>
#include <asio/local/stream_protocol.hpp>
#include <asio/post.hpp>
#include <asio/steady_timer.hpp>
#include <asio/this_coro.hpp>
#include <asio/use_awaitable.hpp>
#include <cstdlib>
#include <future>
#include <map>
#include <thread>

#include "common/system.hpp"
#include "meshy/log.hpp"
#include "node/node_list.hpp"
#include "node/resolved_options.hpp"
#include "topology/identity.hpp"
#include "transport/warn_limiter.hpp"

namespace meshy::detail {
namespace {

constexpr auto use_tuple = asio::experimental::as_tuple(asio::use_awaitable);

std::uint16_t port_of(const asio::generic::stream_protocol::endpoint& ep) {
    const auto* sa = reinterpret_cast<const sockaddr*>(ep.data());
    if (sa->sa_family == AF_INET) {
        return ntohs(reinterpret_cast<const sockaddr_in*>(sa)->sin_port);
    }
    if (sa->sa_family == AF_INET6) {
        return ntohs(reinterpret_cast<const sockaddr_in6*>(sa)->sin6_port);
    }
    return 0;
}

}  // namespace

NodeImpl::NodeImpl(asio::any_io_executor executor, NodeOptions options, bool own_loop)
    : options_(with_environment(std::move(options))),
      id_(make_uuid()),
      name_(options_.name),
      domain_(resolve_domain(options_.domain_id)),
      host_(host_name()),
      own_loop_(own_loop),
      exec_(std::move(executor)),
      strand_(asio::make_strand(exec_)),
      links_(
          exec_,
          options_,
          host_,
          [this](Connection::Socket socket, bool is_unix, std::string peer_id) {
              return adopt(std::move(socket), true, is_unix, std::move(peer_id));
          },
          [this](const std::string& peer_id, const std::string& why) { on_link_lost(peer_id, why); },
          [this]() -> std::shared_ptr<void> { return weak_from_this().lock(); }),
      subs_(exec_, options_.inbox_capacity, own_loop),
      services_(exec_, name_),
      calls_(strand_),
      publisher_(
          options_, id_, name_, host_, links_, subs_, [this] { lists_changed(); }, [this] { return on_own_thread(); }),
      router_(exec_, options_, id_, name_, host_, services_, publisher_, calls_, links_),
      dependencies_({[this](std::string_view topic) { return topic_has_listeners(topic); },
                     [this](std::string topic, ListenerFn fn) { listen(std::move(topic), std::move(fn)); },
                     [this](std::string_view topic) {
                         stop_listening(topic);
                     }}) {
    validate(options_, domain_);
    if (!options_.domain_key_file.empty()) {
        domain_key_ = std::make_shared<const DomainKey>(load_domain_key(options_.domain_key_file));
    }
}

NodeImpl::~NodeImpl() = default;

std::string NodeImpl::backend_name() const {
    return discovery_ ? discovery_->backend_name() : "none";
}

bool NodeImpl::on_own_thread() const {
    if (auto* io = exec_.target<asio::io_context::executor_type>()) {
        return io->running_in_this_thread();
    }
    return false;
}

// ------------------------------------------------------------------------------------------------
// start / stop

void NodeImpl::start() {
    running_ = true;
    try {
        receive_budget_ = std::make_shared<ReceiveBudget>(options_.receive_budget);
        make_static_peers();  // before any connection can ask for it
        open_servers();
        {
            std::lock_guard lock(mutex_);
            Advert& self = self_advert_;
            self.id = id_;
            self.name = name_;
            self.host = host_;
            self.domain = domain_;
            self.protocol = wire::protocol_version;
            self.tcp_port = tcp_port_;
            if (options_.allow_tcp) {
                self.tcp_address = !options_.advertise_host.empty()     ? options_.advertise_host
                                   : !is_wildcard(options_.listen_host) ? options_.listen_host
                                                                        : std::string();
            }
            self.unix_path = unix_path_;
            self.pid = ::getpid();
            self.revision = 1;
            self.complete = true;
        }
        discovery_ = make_discovery(backend_of(options_.discovery));
        std::weak_ptr<NodeImpl> weak = shared_from_this();
        DiscoveryEvents events;
        events.on_peer_up = [weak, this](const Advert& a) {
            if (auto self = weak.lock()) {
                asio::post(strand_, [self, a] {
                    self->exchange_.discovered(a.id);
                    self->on_peer_up(a);
                });
            }
        };
        events.on_peer_down = [weak, this](const std::string& peer_id) {
            if (auto self = weak.lock()) {
                asio::post(strand_, [self, peer_id] {
                    self->exchange_.undiscovered(peer_id);
                    self->on_peer_down(peer_id);
                });
            }
        };
        Advert self;
        {
            std::lock_guard lock(mutex_);
            self = self_advert_;
        }
        discovery_->start(advertised(std::move(self)), std::move(events));
        if (static_peers_) {
            static_peers_->start();
        }
    } catch (...) {
        stop();
        throw;
    }
    log(LogLevel::debug,
        "node " + name_ + " (" + id_ + ") started in domain '" + domain_ + "' with " + backend_name() + " discovery");
}

void NodeImpl::open_servers() {
    if (options_.allow_unix) {
        unix_path_ = socket_dir(options_.unix_socket_dir) + "/" + id_ + ".sock";
        if (unix_path_.size() >= sizeof(sockaddr_un::sun_path)) {
            throw Error(errc::invalid_argument, "Unix socket path too long: " + unix_path_);
        }
        ::unlink(unix_path_.c_str());
        asio::generic::stream_protocol::endpoint ep{asio::local::stream_protocol::endpoint(unix_path_)};
        std::error_code ec;
        unix_acceptor_ = make_acceptor("unix:" + unix_path_, true);
        unix_acceptor_->listen(ep, false, ec);
        if (ec) {
            throw Error(errc::io_error, "cannot listen on Unix socket " + unix_path_ + ": " + ec.message());
        }
        unix_acceptor_->start();
    }
    if (options_.allow_tcp) {
        std::error_code ec;
        const auto address = asio::ip::make_address(options_.listen_host, ec);
        if (ec) {
            throw Error(errc::invalid_argument, "listen_host '" + options_.listen_host + "' is not an IP address");
        }
        asio::generic::stream_protocol::endpoint ep{asio::ip::tcp::endpoint(address, options_.listen_port)};
        tcp_acceptor_ = make_acceptor("tcp:" + options_.listen_host, false);
        tcp_acceptor_->listen(ep, true, ec);
        if (ec) {
            throw Error(errc::io_error, "cannot listen on TCP " + options_.listen_host + ":" +
                                            std::to_string(options_.listen_port) + ": " + ec.message());
        }
        tcp_port_ = port_of(tcp_acceptor_->local_endpoint());
        tcp_acceptor_->start();
    }
}

std::shared_ptr<Acceptor> NodeImpl::make_acceptor(std::string label, bool is_unix) {
    std::weak_ptr<NodeImpl> weak = shared_from_this();
    return std::make_shared<Acceptor>(strand_, exec_, std::move(label), AcceptorOptions{},
                                      [weak, is_unix](Connection::Socket socket) -> std::shared_ptr<Connection> {
                                          auto self = weak.lock();
                                          if (!self || !self->running()) {
                                              return nullptr;
                                          }
                                          const std::size_t cap = self->options_.max_inbound_connections;
                                          if (self->links_.inbound_count() >= cap) {
                                              warn_limited(WarnKind::connection_limit,
                                                           "refusing a connection from " +
                                                               Connection::describe_remote(socket, is_unix) +
                                                               ": this node has " + std::to_string(cap) +
                                                               " connections from peers open "
                                                               "(NodeOptions::max_inbound_connections)");
                                              return nullptr;  // the socket closes here
                                          }
                                          auto conn = self->adopt(std::move(socket), false, is_unix, {});
                                          self->links_.add_inbound(conn);
                                          return conn;
                                      });
}

void NodeImpl::stop() {
    if (!running_.exchange(false)) {
        return;
    }
    if (discovery_) {
        try {
            discovery_->stop();
        } catch (const std::exception& e) {
            log(LogLevel::warn, std::string("discovery stop: ") + e.what());
        }
    }
    // What was sent before stop() goes out first (bounded by `linger`): a node that sends and stops
    // at once, as a script does, loses nothing it sent to a reachable peer.
    const auto linger_end = std::chrono::steady_clock::now() + options_.linger;
    if (!on_own_thread()) {
        while (links_.flushing() && std::chrono::steady_clock::now() < linger_end) {
            std::this_thread::sleep_for(std::chrono::milliseconds(2));
        }
    }
    auto conns = links_.stop();
    if (static_peers_) {
        auto more = static_peers_->stop();
        conns.insert(conns.end(), more.begin(), more.end());
    }
    exchange_.clear();
    loan_pool_->stop();  // loans waiting for room end (errc::not_running)
    calls_.stop();
    subs_.stop_all();
    services_.clear();
    publisher_.stop();
    peers_.clear();
    dependencies_.clear();
    auto bye = std::make_shared<Buffer>();
    wire::encode_empty(*bye, wire::FrameType::bye);
    for (auto& c : conns) {
        c->close_after(bye, "node stopping");
    }
    if (tcp_acceptor_) {
        tcp_acceptor_->close();
    }
    if (unix_acceptor_) {
        unix_acceptor_->close();
    }
    if (!unix_path_.empty()) {
        ::unlink(unix_path_.c_str());
    }
    if (own_loop_ && !on_own_thread()) {
        // Let the queued frames and the goodbyes go out (bounded) before the owner ends the loop.
        const auto deadline = std::max(linger_end, std::chrono::steady_clock::now() + std::chrono::milliseconds(500));
        while (std::chrono::steady_clock::now() < deadline &&
               std::any_of(conns.begin(), conns.end(), [](const auto& c) { return c->open(); })) {
            std::this_thread::sleep_for(std::chrono::milliseconds(2));
        }
    }
    log(LogLevel::debug, "node " + name_ + " stopped");
}

// ------------------------------------------------------------------------------------------------
// connections

ConnectionConfig NodeImpl::connection_config(std::string expected_id) const {
    ConnectionConfig c;
    c.self.id = id_;
    c.self.domain = domain_;
    c.self.name = name_;
    c.self.host = host_;
    c.expected_peer_id = std::move(expected_id);
    c.max_frame_size = options_.max_frame_size;
    c.outbox_capacity = options_.outbox_capacity;
    c.wait_when_full = options_.outbox_full == OutboxFull::wait;
    c.outbox_ttl = options_.outbox_ttl;
    c.heartbeat_interval = options_.heartbeat_interval;
    c.peer_timeout = options_.peer_timeout;
    c.socket_buffer_size = options_.socket_buffer_size;
    c.receive_budget = receive_budget_;
    c.one_thread = own_loop_;
    c.domain_key = domain_key_;
    c.allow_shm = options_.allow_shm.value_or(true);
    c.shm_ring_bytes = options_.shm_ring_bytes;
    c.loan_pool = c.allow_shm ? loan_pool_ : nullptr;
    c.shm_pool_bytes = options_.shm_pool_bytes;
    return c;
}

std::shared_ptr<Connection> NodeImpl::adopt(Connection::Socket socket,
                                            bool outbound,
                                            bool is_unix,
                                            std::string expected_id) {
    auto conn = std::make_shared<Connection>(std::move(socket), outbound, is_unix,
                                             connection_config(std::move(expected_id)), shared_from_this());
    conn->start();
    return conn;
}

// ------------------------------------------------------------------------------------------------
// discovery

void NodeImpl::on_peer_up(const Advert& advert) {
    if (!running() || advert.id == id_) {
        return;
    }
    bool changed = false;
    {
        std::lock_guard lock(mutex_);
        withdrawn_.erase(advert.id);
        links_.advert_changed(advert);
        changed = peers_.upsert(advert);
    }
    if (peers_.needs_info(advert.id)) {
        // Its lists did not fit its advert: they come in the Info frame of a link to it.
        auto link = links_.obtain(advert.id);
        std::lock_guard lock(link->mutex);
        links_.dial_locked(*link);
    }
    dial_for_schemas();
    if (changed) {
        rebuild_routing();
    }
}

void NodeImpl::dial_for_schemas() {
    // The schema of a typed topic this node listens to comes in the publisher's Info frame, on a
    // link this node dials (the publisher's own link to it does not speak for the publisher).
    auto topics = subs_.topics();
    std::sort(topics.begin(), topics.end());
    for (const auto& id : peers_.lacking_schemas(topics)) {
        auto link = links_.obtain(id);
        std::lock_guard lock(link->mutex);
        links_.dial_locked(*link);
    }
}

void NodeImpl::on_peer_down(const std::string& peer_id) {
    {
        std::lock_guard lock(mutex_);
        // A withdrawn advert is a goodbye only when no open link says otherwise (an avahi-daemon
        // restart withdraws every advert for a moment); the link's loss ends the peer then.
        if (auto link = links_.find(peer_id); link && link->up.load(std::memory_order_acquire)) {
            withdrawn_.insert(peer_id);
            return;
        }
        links_.withdrawn(peer_id);
        if (!peers_.remove(peer_id)) {
            return;
        }
    }
    calls_.fail_peer(peer_id, errc::connection_lost, "provider withdrew its advertisement");
    rebuild_routing();
}

void NodeImpl::on_link_lost(const std::string& peer_id, const std::string& why) {
    calls_.fail_peer(peer_id, errc::connection_lost, why);
    bool removed = false;
    {
        std::lock_guard lock(mutex_);
        if (withdrawn_.erase(peer_id) != 0) {
            links_.withdrawn(peer_id);
            removed = peers_.remove(peer_id);
        }
    }
    if (removed) {
        rebuild_routing();
    }
}

// ------------------------------------------------------------------------------------------------
// connection events

std::string NodeImpl::check_identity(const Connection& conn, const wire::Handshake& hs) const {
    const auto advert = peers_.advert(hs.id);
    if (!advert) {
        return {};  // not advertised (yet): it can only send, as any connection can
    }
    return identity_mismatch(*advert, ConnectionEnd{conn.is_unix(), conn.peer_pid(), conn.remote()}, host_);
}

bool NodeImpl::on_handshake(const std::shared_ptr<Connection>& conn, const wire::Handshake& hs, std::string& reason) {
    if (hs.id == id_) {
        reason = "refusing a connection from this node to itself";
        return false;
    }
    // A stopping node still completes the links it dialed for what it sent before stop().
    if (!running() && (!conn->outbound() || !links_.running())) {
        reason = "node stopping";
        return false;
    }
    if (!conn->outbound()) {
        // A connection only ever speaks for itself: what it sends reaches listeners and services
        // under the id it claims, and nothing it sends changes what this node knows of that peer.
        // One that contradicts the peer's advert is refused.
        if (auto why = check_identity(*conn, hs); !why.empty()) {
            reason = "refused " + conn->remote() + ": " + why;
            log(LogLevel::warn, reason);
            return false;
        }
    } else {
        links_.on_ready(conn);
        publisher_.links_changed();
    }
    conn->send(info_frame(), SendMode::control);
    if (conn->outbound()) {
        static_link_ready(conn);
    }
    log(LogLevel::debug, std::string(conn->outbound() ? "connected to " : "accepted ") + hs.name + "@" + hs.host +
                             " over " + (conn->is_unix() ? "unix" : "tcp"));
    return true;
}

void NodeImpl::on_frame(const std::shared_ptr<Connection>& conn, const wire::FrameView& frame) {
    switch (frame.type) {
        case wire::FrameType::message:
            if (!subs_.on_message(conn, frame.body)) {
                conn->close("malformed message frame from " + conn->peer().name);
            }
            break;
        case wire::FrameType::request:
            if (!services_.on_request(conn, frame.body)) {
                conn->close("malformed request frame from " + conn->peer().name);
            }
            break;
        case wire::FrameType::reply:
            if (!calls_.on_reply(conn, frame.body)) {
                conn->close("malformed reply frame from " + conn->peer().name);
            }
            break;
        case wire::FrameType::info: {
            wire::Info info;
            if (!wire::decode_info(frame.body, info)) {
                conn->close("malformed info frame from " + conn->peer().name);
                break;
            }
            // Only a link this node dialed speaks for the peer it dialed.
            if (conn->outbound() && peers_.set_info(conn->peer().id, std::move(info))) {
                rebuild_routing();
            }
            break;
        }
        case wire::FrameType::bye:
            if (conn->outbound()) {
                links_.on_goodbye(conn);
                {
                    std::lock_guard lock(mutex_);
                    withdrawn_.erase(conn->peer().id);
                    if (!peers_.remove(conn->peer().id)) {
                        break;
                    }
                }
                calls_.fail_peer(conn->peer().id, errc::connection_lost, "provider said goodbye");
                rebuild_routing();
            } else {
                conn->close("peer said goodbye");  // ends this connection, and only it
            }
            break;
        case wire::FrameType::adverts:
            on_adverts(conn, frame);
            break;
        case wire::FrameType::ping:
            break;
    }
}

void NodeImpl::on_loaned(const std::shared_ptr<Connection>& conn, LoanedMessage message) {
    subs_.on_loaned(conn, std::move(message));
}

void NodeImpl::on_frames_done(const std::shared_ptr<Connection>&) {
    subs_.on_frames_done();
}

void NodeImpl::on_closed(const std::shared_ptr<Connection>& conn, const std::string& reason) {
    calls_.fail_connection(conn.get(), errc::connection_lost, "connection to the provider lost: " + reason);
    links_.on_closed(conn, reason);
    if (conn->outbound()) {
        publisher_.links_changed();
    }
    exchange_link_closed(conn);
}

// ------------------------------------------------------------------------------------------------
// routing and what this node advertises

void NodeImpl::rebuild_routing() {
    std::lock_guard lock(mutex_);  // one rebuild at a time, in the order of the changes
    auto routing = std::make_shared<Routing>();
    routing->topology = peers_.view();
    auto targets = [&](const Topology::Peers& peers) {
        std::vector<RouteTarget> out;
        out.reserve(peers.size());
        for (const auto& p : peers) {
            out.push_back(RouteTarget{links_.obtain(p->id), p, nullptr});
        }
        return out;
    };
    for (const auto& [topic, peers] : routing->topology->listeners) {
        routing->listeners.emplace(topic, targets(peers));
    }
    for (const auto& [service, peers] : routing->topology->providers) {
        routing->providers.emplace(service, targets(peers));
    }
    for (const auto& topic : subs_.topics()) {
        if (auto sub = subs_.find(topic)) {
            routing->own.emplace(topic, std::move(sub));
        }
    }
    dial_listeners_locked(*routing);
    publisher_.set_routing(std::move(routing));
    push_adverts();
    if (!dependencies_.empty()) {
        asio::post(strand_, [self = shared_from_this()] { self->dependencies_.evaluate(); });
    }
}

void NodeImpl::dial_listeners_locked(const Routing& routing) {
    // A node that sends a topic will send to its listeners: their links are dialed as they
    // appear, so that the first messages do not wait for a connection.
    for (const auto& p : publisher_.publications()) {
        const auto listeners = routing.listeners.find(p.topic);
        if (listeners == routing.listeners.end()) {
            continue;
        }
        for (const auto& target : listeners->second) {
            if (!target.link->up.load(std::memory_order_acquire)) {
                std::lock_guard lock(target.link->mutex);
                links_.dial_locked(*target.link);
            }
        }
    }
}

SharedFrame NodeImpl::info_frame() const {
    wire::Info info;
    {
        std::lock_guard lock(mutex_);
        info.revision = self_advert_.revision;
    }
    info.topics = subs_.topics();
    info.services = services_.names();
    info.publications = publisher_.publications();
    auto frame = std::make_shared<Buffer>();
    wire::encode_info(*frame, info);
    return frame;
}

Advert NodeImpl::advertised(Advert advert) const {
    if (domain_key_) {
        // A keyed domain's discovery records say only how to connect: its topics, services and
        // publications travel in Info frames over the encrypted links (peers dial to fetch them).
        advert.topics.clear();
        advert.services.clear();
        advert.publications.clear();
        advert.complete = false;
    }
    return advert;
}

void NodeImpl::lists_changed() {
    if (!running()) {
        return;
    }
    Advert advert;
    {
        std::lock_guard lock(mutex_);
        ++self_advert_.revision;
        self_advert_.topics = subs_.topics();
        self_advert_.services = services_.names();
        self_advert_.publications.clear();
        for (const auto& p : publisher_.publications()) {
            self_advert_.publications.push_back(Publication{p.topic, p.type, p.latched});
        }
        advert = self_advert_;
    }
    if (discovery_) {
        discovery_->update(advertised(std::move(advert)));
    }
    push_own_advert(advert);
    {
        std::lock_guard lock(mutex_);
        dial_listeners_locked(*publisher_.routing());
    }
    dial_for_schemas();
    // Peers that dialed this node take its lists from the links too (they may not fit the advert).
    const auto frame = info_frame();
    for (auto& conn : links_.inbound()) {
        conn->send(frame, SendMode::control);
    }
}

// ------------------------------------------------------------------------------------------------
// topics

void NodeImpl::send_raw(std::string_view topic,
                        CodecId codec,
                        std::span<const std::byte> payload,
                        std::uint64_t sent_at_ns) {
    Buffer frame;
    if (!publisher_.begin_message(topic, codec, frame)) {
        return;
    }
    if (sent_at_ns != 0) {
        // Replayed messages keep their original time (bytes 9..16 of the frame).
        for (int i = 0; i < 8; ++i) {
            frame.data()[wire::frame_prefix + 4 + i] = static_cast<std::byte>(sent_at_ns >> (8 * i));
        }
    }
    finish_message(topic, std::move(frame), payload);  // copied once at most (see Publisher)
}

void NodeImpl::advertise(std::string topic, const AdvertiseOptions& options) {
    if (!running()) {
        throw Error(errc::not_running, "advertise('" + topic + "')");
    }
    publisher_.advertise(std::move(topic), options);
}

void NodeImpl::listen(std::string topic, ListenerFn fn) {
    if (topic.empty() || topic.size() > 0xffff) {
        throw Error(errc::invalid_argument, "topic name must have 1 to 65535 bytes");
    }
    if (!running()) {
        throw Error(errc::not_running, "listen('" + topic + "')");
    }
    if (subs_.listen(std::move(topic), std::move(fn))) {
        rebuild_routing();
        lists_changed();
    }
}

bool NodeImpl::stop_listening(std::string_view topic) {
    if (!subs_.stop_listening(topic)) {
        return false;
    }
    rebuild_routing();
    lists_changed();
    return true;
}

void NodeImpl::announce_sender(const std::string& topic) {
    if (publisher_.announce(topic)) {
        lists_changed();
    }
}

bool NodeImpl::listener_reachable(std::string_view topic) const {
    if (subs_.contains(topic)) {
        return true;
    }
    const auto routing = publisher_.routing();
    const auto listeners = routing->listeners.find(topic);
    if (listeners == routing->listeners.end()) {
        return false;
    }
    return std::any_of(listeners->second.begin(), listeners->second.end(),
                       [](const RouteTarget& t) { return t.link->up.load(std::memory_order_acquire); });
}

bool NodeImpl::topic_has_listeners(std::string_view topic) const {
    return subs_.contains(topic) || publisher_.routing()->listeners.contains(topic);
}

void NodeImpl::depends_on_listener(std::string downstream, std::string upstream, ListenerFn fn) {
    dependencies_.add(std::move(downstream), std::move(upstream), std::move(fn));
}

// ------------------------------------------------------------------------------------------------
// services and calls

void NodeImpl::add_service(std::string service, ServiceFn fn) {
    if (service.empty() || service.size() > 0xffff) {
        throw Error(errc::invalid_argument, "service name must have 1 to 65535 bytes");
    }
    if (!fn.plain == !fn.coroutine) {
        throw Error(errc::invalid_argument, "add_service('" + service + "'): give exactly one handler");
    }
    if (!running()) {
        throw Error(errc::not_running, "add_service('" + service + "')");
    }
    if (services_.add(std::move(service), std::move(fn))) {
        lists_changed();
    }
}

bool NodeImpl::remove_service(std::string_view service) {
    if (!services_.remove(service)) {
        return false;
    }
    lists_changed();
    return true;
}

bool NodeImpl::service_has_providers(std::string_view service) const {
    return router_.has_providers(service);
}

asio::awaitable<RawPayload> NodeImpl::call(std::string&& service,
                                           CodecId codec,
                                           Buffer&& request,
                                           CallOptions options) {
    // The call is registered and its request sent once the caller is suspended, so the reply may
    // resume it from any thread; no channel and no timer per call, and no coroutine of its own.
    // The arguments are moved once, into the awaitable, which passes them on as rvalues.
    return asio::async_initiate<const asio::use_awaitable_t<>&, void(std::exception_ptr, RawPayload)>(
        [this](auto handler, std::string&& service, CodecId codec, Buffer&& request,
               std::chrono::milliseconds timeout) {
            using Waiter = CallWaiterFor<std::decay_t<decltype(handler)>>;
            auto waiter = std::make_unique<Waiter>(std::move(handler), std::move(service), timeout);
            const std::string& name = waiter->service();  // lives as long as the waiter
            start_call(std::move(waiter), name, codec, request, timeout);
        },
        asio::use_awaitable, std::move(service), codec, std::move(request), call_timeout(options));
}

RawPayload NodeImpl::call_blocking(std::string service, CodecId codec, Buffer request, CallOptions options) {
    if (!running()) {
        throw Error(errc::not_running, "call('" + service + "')");
    }
    // The reply completes a promise this thread waits on: no coroutine on the node's thread.
    class Waiter final : public CallWaiter {
    public:
        std::promise<CallOutcome> promise;
        void complete(CallOutcome outcome, bool) override { promise.set_value(std::move(outcome)); }
    };
    auto waiter = std::make_unique<Waiter>();
    auto future = waiter->promise.get_future();
    const auto timeout = call_timeout(options);
    start_call(std::move(waiter), service, codec, request, timeout);
    return take_reply(future.get(), service, timeout);
}

void NodeImpl::start_call(std::unique_ptr<CallWaiter> waiter,
                          const std::string& service,
                          CodecId codec,
                          Buffer& request,
                          std::chrono::milliseconds timeout) {
    if (!running()) {
        waiter->complete(failed_call(errc::not_running, "call('" + service + "')"), false);
        return;
    }
    router_.start(std::move(waiter), service, codec, request, timeout);
}

// ------------------------------------------------------------------------------------------------
// topology

asio::awaitable<void> NodeImpl::wait_until(std::function<bool()> ready,
                                           std::chrono::milliseconds timeout,
                                           std::string what) {
    auto executor = co_await asio::this_coro::executor;
    const auto deadline = std::chrono::steady_clock::now() + timeout;
    asio::steady_timer timer(executor);
    while (!ready()) {
        if (!running()) {
            throw Error(errc::not_running, what);
        }
        if (timeout.count() > 0 && std::chrono::steady_clock::now() >= deadline) {
            throw Error(errc::timeout, what);
        }
        timer.expires_after(std::chrono::milliseconds(10));
        co_await timer.async_wait(use_tuple);
    }
}

std::vector<NodeInfo> NodeImpl::nodes() const {
    std::vector<NodeInfo> out;
    NodeInfo self;
    self.id = id_;
    self.name = name_;
    self.host = host_;
    self.domain = domain_;
    self.topics = subs_.topics();
    self.services = services_.names();
    for (auto& p : publisher_.publications()) {
        self.publications.push_back(publication_info(p));
    }
    if (options_.allow_tcp) {
        self.tcp_endpoint = (is_wildcard(options_.listen_host) ? std::string("*") : options_.listen_host) + ":" +
                            std::to_string(tcp_port_);
    }
    self.unix_endpoint = unix_path_;
    self.transport = "self";
    self.is_self = true;
    out.push_back(std::move(self));
    auto peers = describe_peers(*peers_.view(), links_, domain_);
    std::move(peers.begin(), peers.end(), std::back_inserter(out));
    std::sort(out.begin(), out.end(),
              [](const NodeInfo& a, const NodeInfo& b) { return std::tie(a.name, a.id) < std::tie(b.name, b.id); });
    return out;
}

}  // namespace meshy::detail
