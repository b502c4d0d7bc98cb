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
#include <asio/experimental/awaitable_operators.hpp>
#include <asio/ip/tcp.hpp>
#include <asio/local/stream_protocol.hpp>
#include <asio/post.hpp>
#include <asio/steady_timer.hpp>
#include <asio/this_coro.hpp>
#include <asio/use_awaitable.hpp>
#include <asio/use_future.hpp>
#include <cstdlib>
#include <cstring>
#include <future>

#include "common/system.hpp"
#include "meshy/log.hpp"

namespace meshy::detail {
namespace {

using namespace asio::experimental::awaitable_operators;
constexpr auto use_tuple = asio::experimental::as_tuple(asio::use_awaitable);

constexpr auto connect_timeout = std::chrono::seconds(2);
// Inbox length from which received messages are copied out of the shared receive buffer.
constexpr std::size_t compact_backlog = 64;
// Requests from this size on are handed to their handler in the receive buffer, without a copy.
constexpr std::size_t share_request_min = 16u * 1024;
// A call's request buffer takes its reply when that fills more than half of it, or leaves at most
// this many bytes unused: a small reply never holds a large request's memory.
constexpr std::size_t reuse_slack = 4096;
// Topology generations come from one counter for all nodes, so a (node, generation) pair that a
// per-thread cache holds is never reused by a later node at the same address.
std::atomic<std::uint64_t> next_generation{1};

// Size of the last message frame this thread built (see begin_message), capped.
constexpr std::size_t max_size_hint = 8u * 1024 * 1024;
std::size_t& last_frame_size_hint() {
    thread_local std::size_t hint = 64;
    return hint;
}
// Message frames up to this size are copied into each connection's outbox (Outbox::copy_message)
// instead of being shared: no frame object per message, and the buffer serves the thread's next one.
constexpr std::size_t small_frame_max = small_message_max;
// What this thread last sent to: the topic's own subscription and its listening peers, valid while
// the node's generation is unchanged (checked under the node's lock before the pointers are used).
struct SendCache {
    const void* node = nullptr;
    std::uint64_t generation = 0;
    std::string topic;
    bool listened = false;
    const std::shared_ptr<Subscription>* sub = nullptr;
    const std::vector<std::shared_ptr<Peer>>* listeners = nullptr;
};
thread_local SendCache send_cache;
// What a service handler's exception says, for its caller (call in a catch block).
std::string current_failure() {
    try {
        throw;
    } catch (const std::exception& e) {
        return e.what();
    } catch (...) {
        return "unknown exception";
    }
}
// The buffer of this thread's last small frame, for its next message (see begin_message).
Buffer& spare_frame() {
    thread_local Buffer spare;
    return spare;
}
constexpr int max_redial_ms = 2000;

std::string resolve_domain(const std::optional<std::string>& configured) {
    if (configured) {
        return *configured;
    }
    if (const char* env = std::getenv("MESHY_DOMAIN_ID"); env && *env) {
        return env;
    }
    return "default";
}

bool is_wildcard(const std::string& host) {
    return host.empty() || host == "0.0.0.0" || host == "::";
}

DiscoveryBackend backend_of(DiscoveryMode mode) {
    switch (mode) {
        case DiscoveryMode::avahi:
            return DiscoveryBackend::avahi;
        case DiscoveryMode::local:
            return DiscoveryBackend::local;
        case DiscoveryMode::automatic:
            break;
    }
    return DiscoveryBackend::automatic;
}

void validate(const NodeOptions& o, const std::string& domain) {
    auto bad = [](const std::string& what) {
        throw Error(errc::invalid_argument, what);
    };
    if (o.name.empty() || o.name.size() > 200) {
        bad("node name must have 1 to 200 characters");
    }
    if (domain.empty() || domain.size() > 200) {
        bad("domain ID must have 1 to 200 characters");
    }
    if (!o.allow_tcp && !o.allow_unix) {
        bad("a node needs TCP or Unix sockets (both are disabled)");
    }
    if (o.max_frame_size < 1024 || o.max_frame_size > 0xffffffffu) {
        bad("max_frame_size must be between 1 KiB and 4 GiB");
    }
    if (o.outbox_capacity == 0 || o.inbox_capacity == 0) {
        bad("outbox_capacity and inbox_capacity must be at least 1");
    }
    if (o.socket_buffer_size > 0x7fffffff) {
        bad("socket_buffer_size must be at most 2 GiB");
    }
    if (o.heartbeat_interval.count() <= 0 || o.peer_timeout <= o.heartbeat_interval) {
        bad("peer_timeout must be longer than a positive heartbeat_interval");
    }
}

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

void sorted_unique(std::vector<std::string>& v) {
    std::sort(v.begin(), v.end());
    v.erase(std::unique(v.begin(), v.end()), v.end());
}

}  // namespace

NodeImpl::NodeImpl(asio::any_io_executor executor, NodeOptions options, bool own_loop)
    : options_(std::move(options)),
      id_(make_uuid()),
      name_(options_.name),
      domain_(resolve_domain(options_.domain_id)),
      host_(host_name()),
      id_shared_(std::make_shared<const std::string>(id_)),
      own_loop_(own_loop),
      exec_(std::move(executor)),
      strand_(asio::make_strand(exec_)),
      call_timer_(strand_),
      topic_balancer_(options_.topic_load_balancer ? options_.topic_load_balancer : round_robin_topic_balancer()),
      service_balancer_(options_.service_load_balancer ? options_.service_load_balancer
                                                       : round_robin_service_balancer()) {
    bump_generation();
    if (const char* env = std::getenv("MESHY_LISTEN_HOST"); env && *env && is_wildcard(options_.listen_host)) {
        options_.listen_host = env;  // e.g. 127.0.0.1 keeps every node of a test run on loopback
    }
    validate(options_, domain_);
}

NodeImpl::~NodeImpl() = default;

std::uint64_t NodeImpl::next_generation_value() {
    return next_generation.fetch_add(1, std::memory_order_relaxed);
}

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
        open_servers();
        Advert self;
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
        discovery_ = make_discovery(backend_of(options_.discovery));
        std::weak_ptr<NodeImpl> weak = shared_from_this();
        DiscoveryEvents events;
        events.on_peer_up = [weak, this](const Advert& a) {
            if (auto self = weak.lock()) {
                asio::post(strand_, [self, a] { self->on_peer_up(a); });
            }
        };
        events.on_peer_down = [weak, this](const std::string& peer_id) {
            if (auto self = weak.lock()) {
                asio::post(strand_, [self, peer_id] { self->on_peer_down(peer_id); });
            }
        };
        discovery_->start(self, std::move(events));
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
                                          return self->adopt(std::move(socket), false, is_unix, {});
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
    std::vector<std::shared_ptr<Connection>> conns;
    std::vector<std::pair<std::shared_ptr<Subscription>, std::uint64_t>> last_drops;
    {
        Lock lock(mutex_);
        for (auto& [pid, peer] : peers_) {
            if (peer->outbound) {
                conns.push_back(peer->outbound);
            }
            conns.insert(conns.end(), peer->inbound.begin(), peer->inbound.end());
        }
        peers_.clear();
        topic_index_.clear();
        service_index_.clear();
        bump_generation();
        for (auto& [cid, call] : pending_) {
            call.waiter->complete(CallOutcome{make_error_code(errc::not_running), {}}, false);
        }
        pending_.clear();
        call_timer_.cancel();
        for (auto& [topic, sub] : subs_) {
            std::lock_guard sl(sub->mutex);
            if (const auto unreported = sub->stop_locked()) {
                last_drops.emplace_back(sub, unreported);
            }
        }
        subs_.clear();
        dependencies_.clear();
    }
    for (const auto& [sub, count] : last_drops) {
        warn_inbox_drops(*sub, count);
    }
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
        // Let the goodbyes go out (bounded) before the owner ends the loop.
        const auto deadline = std::chrono::steady_clock::now() + std::chrono::milliseconds(500);
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
// discovery and dialing

void NodeImpl::on_peer_up(const Advert& advert) {
    if (!running() || advert.id == id_) {
        return;
    }
    Lock lock(mutex_);
    auto& slot = peers_[advert.id];
    if (!slot) {
        slot = std::make_shared<Peer>();
        slot->id = advert.id;
        log(LogLevel::debug, "discovered " + advert.name + "@" + advert.host + " (" + advert.id + ")");
    }
    slot->name = advert.name;
    slot->host = advert.host;
    slot->advert = advert;
    slot->redial_ms = 0;
    if (!slot->outbound && !slot->dialing) {
        dial_locked(*slot);
    }
}

void NodeImpl::on_peer_down(const std::string& peer_id) {
    Lock lock(mutex_);
    auto it = peers_.find(peer_id);
    if (it == peers_.end()) {
        return;
    }
    auto& peer = *it->second;
    peer.advert.reset();
    // A withdrawn advert is a goodbye only when no connection says otherwise.
    if (!peer.outbound && peer.inbound.empty()) {
        drop_peer_state_locked(peer, "withdrew its advertisement");
        peers_.erase(it);
    }
}

void NodeImpl::dial_locked(Peer& peer) {
    if (!peer.advert || peer.dialing || peer.outbound || !running()) {
        return;
    }
    peer.dialing = true;
    asio::co_spawn(strand_, dial(peer.id, *peer.advert), asio::detached);
}

asio::awaitable<void> NodeImpl::dial(std::string peer_id, Advert advert) {
    auto self = shared_from_this();
    // co_spawn starts this inline when called on strand_, as dial_locked() is, with mutex_ held: an
    // advert with nothing to try (no Unix socket file left, no TCP port) would otherwise reach the
    // lock below without having suspended once, and deadlock.
    co_await asio::post(strand_, asio::use_awaitable);
    std::optional<Connection::Socket> connected;
    bool is_unix = false;
    std::string last_error;

    auto attempt = [&](asio::generic::stream_protocol::endpoint ep) -> asio::awaitable<bool> {
        Connection::Socket socket(exec_);
        asio::steady_timer timer(strand_, connect_timeout);
        auto result = co_await (socket.async_connect(ep, use_tuple) || timer.async_wait(use_tuple));
        if (result.index() == 0 && !std::get<0>(std::get<0>(result))) {
            // A connect that had to wait (TCP) leaves EPOLLOUT in the descriptor's edge-triggered
            // registration for good (Asio never takes it out): the node's thread would then wake
            // for nothing each time a full send buffer drains, which a sender writing in place polls for
            // itself (two wake-ups a 1 MB message). A fresh registration asks for reads only.
            std::error_code ec;
            const auto fd = socket.release(ec);
            if (ec) {
                connected.emplace(std::move(socket));  // as it is, then
                co_return true;
            }
            Connection::Socket fresh(exec_);
            fresh.assign(ep.protocol(), fd, ec);
            if (ec) {
                ::close(fd);
                last_error = "cannot register the connected socket: " + ec.message();
                co_return false;
            }
            connected.emplace(std::move(fresh));
            co_return true;
        }
        last_error = result.index() == 0 ? std::get<0>(std::get<0>(result)).message() : "connect timed out";
        co_return false;
    };

    const bool same_host = advert.host == host_;
    if (same_host && !advert.unix_path.empty() && ::access(advert.unix_path.c_str(), F_OK) == 0) {
        is_unix = co_await attempt(asio::local::stream_protocol::endpoint(advert.unix_path));
    }
    if (!connected && advert.tcp_port != 0) {
        std::error_code ec;
        auto address = asio::ip::make_address(advert.tcp_address.empty() ? "127.0.0.1" : advert.tcp_address, ec);
        if (!ec) {
            co_await attempt(asio::ip::tcp::endpoint(address, advert.tcp_port));
        } else {
            last_error = "bad address '" + advert.tcp_address + "'";
        }
    }

    Lock lock(mutex_);
    auto it = peers_.find(peer_id);
    if (it == peers_.end() || !running()) {
        co_return;
    }
    auto& peer = *it->second;
    peer.dialing = false;
    if (!connected) {
        log(LogLevel::debug, "cannot reach " + advert.name + " (" + peer_id + "): " + last_error);
        schedule_redial_locked(peer);
        co_return;
    }
    peer.outbound = adopt(std::move(*connected), true, is_unix, peer_id);
}

void NodeImpl::schedule_redial_locked(Peer& peer) {
    if (!peer.advert || !running()) {
        return;
    }
    peer.redial_ms = peer.redial_ms == 0 ? 100 : std::min(peer.redial_ms * 2, max_redial_ms);
    const auto delay = std::chrono::milliseconds(peer.redial_ms);
    asio::co_spawn(
        strand_,
        [self = shared_from_this(), peer_id = peer.id, delay]() -> asio::awaitable<void> {
            asio::steady_timer timer(self->strand_, delay);
            co_await timer.async_wait(use_tuple);
            Lock lock(self->mutex_);
            auto it = self->peers_.find(peer_id);
            if (it != self->peers_.end()) {
                self->dial_locked(*it->second);
            }
        },
        asio::detached);
}

void NodeImpl::schedule_grace_check_locked(Peer& peer) {
    asio::co_spawn(
        strand_,
        [self = shared_from_this(), peer_id = peer.id, generation = peer.generation,
         grace = options_.peer_timeout]() -> asio::awaitable<void> {
            asio::steady_timer timer(self->strand_, grace);
            co_await timer.async_wait(use_tuple);
            Lock lock(self->mutex_);
            auto it = self->peers_.find(peer_id);
            if (it == self->peers_.end() || it->second->generation != generation || it->second->connected()) {
                co_return;
            }
            self->drop_peer_state_locked(*it->second, "unreachable for " + std::to_string(grace.count()) + " ms");
            if (!it->second->advert) {
                self->peers_.erase(it);
            }
        },
        asio::detached);
}

void NodeImpl::drop_peer_state_locked(Peer& peer, const std::string& why) {
    if (peer.info) {
        log(LogLevel::debug, "peer " + peer.name + "@" + peer.host + " (" + peer.id.substr(0, 8) + ") left: " + why);
    }
    peer.info.reset();
    if (const auto lost = peer.parked.size() + peer.parked_drops.take()) {
        log(LogLevel::warn, "dropped " + std::to_string(lost) + " message(s) to " + peer.name + " (" + why + ")");
    }
    peer.parked.clear();
    peer.send_conn.reset();
    fail_calls_locked([&](const PendingCall& c) { return c.peer->id == peer.id; }, errc::connection_lost,
                      "provider " + peer.name + " left: " + why);
    topology_changed_locked();
}

// ------------------------------------------------------------------------------------------------
// connection events

bool NodeImpl::on_handshake(const std::shared_ptr<Connection>& conn, const wire::Handshake& hs, std::string& reason) {
    if (hs.id == id_) {
        reason = "refusing a connection from this node to itself";
        return false;
    }
    Lock lock(mutex_);
    if (!running()) {
        reason = "node stopping";
        return false;
    }
    auto& slot = peers_[hs.id];
    if (!slot) {
        slot = std::make_shared<Peer>();
        slot->id = hs.id;
    }
    Peer& peer = *slot;
    peer.name = hs.name;
    peer.host = hs.host;
    if (!conn->outbound()) {
        peer.inbound.push_back(conn);
    }
    ++peer.generation;  // cancels a pending grace check
    peer.redial_ms = 0;
    if (!peer.connected()) {
        peer.send_conn = conn;
        const auto oldest_allowed = std::chrono::steady_clock::now() - options_.outbox_ttl;
        for (auto& p : peer.parked) {
            if (p.at >= oldest_allowed) {
                conn->send(std::move(p.frame), SendMode::message);
            }
        }
        peer.parked.clear();
        if (const auto report = peer.parked_drops.take()) {
            log(LogLevel::warn, "dropped " + std::to_string(report) + " message(s) to " + peer.name +
                                    " while connecting: the outbox was full");
        }
    }
    conn->send(info_frame_locked(), SendMode::control);
    log(LogLevel::debug, std::string(conn->outbound() ? "connected to " : "accepted ") + hs.name + "@" + hs.host +
                             " over " + (conn->is_unix() ? "unix" : "tcp"));
    return true;
}

void NodeImpl::on_frame(const std::shared_ptr<Connection>& conn, const wire::FrameView& frame) {
    switch (frame.type) {
        case wire::FrameType::message:
            handle_message(conn, frame.body);
            break;
        case wire::FrameType::request:
            handle_request(conn, frame.body);
            break;
        case wire::FrameType::reply:
            handle_reply(conn, frame.body);
            break;
        case wire::FrameType::info:
            handle_info(conn, frame.body);
            break;
        case wire::FrameType::bye: {
            Lock lock(mutex_);
            if (auto it = peers_.find(conn->peer().id); it != peers_.end()) {
                it->second->advert.reset();  // it is leaving: do not redial
                drop_peer_state_locked(*it->second, "said goodbye");
            }
            break;
        }
        case wire::FrameType::ping:
            break;
    }
}

void NodeImpl::on_closed(const std::shared_ptr<Connection>& conn, const std::string& reason) {
    Lock lock(mutex_);
    fail_calls_locked([&](const PendingCall& c) { return c.conn == conn.get(); }, errc::connection_lost,
                      "connection to the provider lost: " + reason);
    std::shared_ptr<Peer> peer;
    if (auto it = peers_.find(conn->peer().id); it != peers_.end()) {
        peer = it->second;
    } else if (conn->outbound()) {
        for (auto& [pid, p] : peers_) {
            if (p->outbound == conn) {
                peer = p;
                break;
            }
        }
    }
    if (!peer) {
        return;
    }
    const bool was_outbound = peer->outbound == conn;
    if (was_outbound) {
        peer->outbound.reset();
    }
    std::erase(peer->inbound, conn);
    if (peer->send_conn == conn) {
        peer->send_conn.reset();
        // Another open connection to the same peer takes over.
        if (peer->outbound && peer->outbound->open() && !peer->outbound->peer().id.empty()) {
            peer->send_conn = peer->outbound;
        } else if (!peer->inbound.empty()) {
            peer->send_conn = peer->inbound.front();
        }
    }
    if (!running()) {
        return;
    }
    if (!peer->outbound && peer->inbound.empty()) {
        if (!peer->advert && !peer->info) {
            peers_.erase(peer->id);
            return;
        }
        peer->lost_since = std::chrono::steady_clock::now();
        ++peer->generation;
        schedule_grace_check_locked(*peer);
    }
    if (was_outbound && peer->advert) {
        schedule_redial_locked(*peer);
    }
}

// ------------------------------------------------------------------------------------------------
// topics

bool NodeImpl::begin_message(std::string_view topic, CodecId codec, Buffer& frame) {
    if (topic.size() > 0xffff) {
        throw Error(errc::invalid_argument, "topic name longer than 65535 bytes");
    }
    // Whether anyone listens, cached per thread until the topology changes (no lock per send).
    SendCache& cache = send_cache;
    const auto generation = generation_.load(std::memory_order_acquire);
    if (cache.node != this || cache.generation != generation || cache.topic != topic) {
        Lock lock(mutex_);
        cache.node = this;
        cache.generation = generation_.load(std::memory_order_relaxed);
        cache.topic.assign(topic);
        const auto s = subs_.find(topic);
        cache.sub = s != subs_.end() ? &s->second : nullptr;
        const auto l = topic_index_.find(topic);
        cache.listeners = l != topic_index_.end() ? &l->second : nullptr;
        cache.listened = cache.sub || cache.listeners;
    }
    if (!cache.listened) {
        return false;
    }
    if (frame.capacity() == 0) {
        frame = std::move(spare_frame());  // empty when another frame of this thread holds it
    }
    frame.clear();
    // Room for a frame as big as this thread's last one: a stream of like messages costs one
    // allocation each, not a small one and then a grown one.
    frame.reserve(last_frame_size_hint());
    wire::begin_message(frame, codec, stamp_ns(), topic);
    return true;
}

void NodeImpl::send_raw(std::string_view topic,
                        CodecId codec,
                        std::span<const std::byte> payload,
                        std::uint64_t sent_at_ns) {
    Buffer frame;
    if (!begin_message(topic, codec, frame)) {
        return;
    }
    if (sent_at_ns != 0) {
        // Replayed messages keep their original time (bytes 9..16 of the frame).
        for (int i = 0; i < 8; ++i) {
            frame.data()[wire::frame_prefix + 4 + i] = static_cast<std::byte>(sent_at_ns >> (8 * i));
        }
    }
    finish_message(topic, std::move(frame), payload);  // copied once at most (see finish_message)
}

void NodeImpl::finish_message(std::string_view topic, Buffer&& frame, std::span<const std::byte> tail) {
    const std::size_t total = frame.size() + tail.size();
    if (total > options_.max_frame_size) {
        throw Error(errc::frame_too_large,
                    "message on '" + std::string(topic) + "' is " + std::to_string(total) + " bytes");
    }
    // A `tail` (the payload's last bytes, still the caller's) of a small frame is copied straight
    // into the outbox; of a large one (large_payload_min) written from where it is. Between the
    // two, it joins the frame, which is then shared.
    const bool small = total <= small_frame_max;
    if (!small && tail.size() < large_payload_min) {
        frame.append(tail.data(), tail.size());
        tail = {};
    }
    wire::finish_frame(frame, tail.size());
    last_frame_size_hint() = std::min<std::size_t>(frame.size(), max_size_hint);
    // A small frame is copied into each connection's outbox (with its `tail`, if any, the
    // caller's payload); it is shared (joined and copied once) only for this node's own listener
    // or a peer still connecting. A large one is always shared, except one with a `tail` (a large
    // payload): connected peers get it from the caller's bytes (SendMode::message_wait), and it
    // is joined into a shared copy only for the others.
    SharedFrame shared;
    if (!small && tail.empty()) {
        shared = std::make_shared<const Buffer>(std::move(frame));
    }
    auto share = [&]() -> const SharedFrame& {
        if (!shared) {
            auto joined = std::make_shared<Buffer>();
            joined->reserve(total);
            joined->append(frame.data(), frame.size());
            joined->append(tail.data(), tail.size());
            shared = std::move(joined);
        }
        return shared;
    };
    struct Recycle {
        Buffer& frame;
        bool keep;
        ~Recycle() {
            if (keep) {
                spare_frame() = std::move(frame);
            }
        }
    } recycle{frame, small || !tail.empty()};

    Lock lock(mutex_);
    refs_scratch_.clear();
    chosen_scratch_.clear();
    static const std::shared_ptr<Subscription> no_sub;
    const std::shared_ptr<Subscription>* own = nullptr;
    const std::vector<std::shared_ptr<Peer>>* listeners = nullptr;
    if (send_cache.node == this && send_cache.generation == generation_.load(std::memory_order_relaxed) &&
        send_cache.topic == topic) {
        own = send_cache.sub;  // looked up by begin_message() in this generation
        listeners = send_cache.listeners;
    } else {
        if (auto s = subs_.find(topic); s != subs_.end()) {
            own = &s->second;
        }
        if (auto it = topic_index_.find(topic); it != topic_index_.end()) {
            listeners = &it->second;
        }
    }
    const std::shared_ptr<Subscription>& self_sub = own ? *own : no_sub;
    // The common case, kept short: a small message, one listening peer, connected, no listener on
    // this node, and the built-in balancer (which picks a lone candidate).
    if (small && !self_sub && listeners && listeners->size() == 1 && !options_.topic_load_balancer &&
        listeners->front()->connected()) {
        const std::shared_ptr<Connection>& conn = listeners->front()->send_conn;
        if (conn->send(frame.bytes(), tail, SendMode::message) && options_.outbox_full == OutboxFull::wait &&
            !on_own_thread()) {
            const auto waiting = conn;  // backpressure, once the lock is released
            lock.unlock();
            waiting->wait_for_room(std::chrono::steady_clock::now() + options_.outbox_ttl);
        }
        return;
    }
    // Within a name group, connected nodes are preferred over ones being reconnected.
    auto group_has_connected = [&](std::string_view group) {
        if (self_sub && group == name_) {
            return true;
        }
        if (listeners) {
            for (const auto& p : *listeners) {
                if (p->name == group && p->connected()) {
                    return true;
                }
            }
        }
        return false;
    };
    std::vector<Peer*>& targets = targets_scratch_;
    targets.clear();
    bool self_added = !self_sub;
    auto add_self = [&] {
        refs_scratch_.push_back(PeerRef{id_, name_, host_, true});
        targets.push_back(nullptr);
        self_added = true;
    };
    if (listeners) {
        for (const auto& p : *listeners) {
            if (!p->connected() && listeners->size() + (self_sub ? 1 : 0) > 1 && group_has_connected(p->name)) {
                continue;
            }
            if (!self_added && id_ < p->id) {
                add_self();  // balancers see candidates sorted by id, this node among them
            }
            refs_scratch_.push_back(PeerRef{p->id, p->name, p->host, false});
            targets.push_back(p.get());
        }
    }
    if (!self_added) {
        add_self();
    }
    if (refs_scratch_.empty()) {
        return;
    }
    topic_balancer_->choose(topic, refs_scratch_, chosen_scratch_);
    // Backpressure (OutboxFull::wait): the connections to wait on, once the lock is released.
    thread_local std::vector<std::shared_ptr<Connection>> full;
    full.clear();
    // Connections that get a frame with a tail, once the lock is released (it may block).
    thread_local std::vector<std::shared_ptr<Connection>> through;
    through.clear();
    const bool may_wait = options_.outbox_full == OutboxFull::wait;
    for (std::size_t index : chosen_scratch_) {
        if (index >= targets.size()) {
            continue;
        }
        if (Peer* peer = targets[index]) {
            if (!small && !tail.empty() && peer->connected()) {
                through.push_back(peer->send_conn);
                continue;
            }
            const bool now_full = small && peer->connected()
                                      ? peer->send_conn->send(frame.bytes(), tail, SendMode::message)
                                      : deliver_locked(*peer, share());
            if (now_full && may_wait) {
                full.push_back(peer->send_conn);
            }
        } else {
            const SharedFrame& local = share();
            wire::Message header;
            wire::decode_message(local->bytes().subspan(wire::frame_prefix), header);
            const auto layout = wire::message_layout(topic);
            deliver_local(self_sub, InboxItem{local.get(), local, layout, header.codec, header.sent_at_ns,
                                              id_shared_.get(), id_shared_, local->size() - layout.payload_offset});
        }
    }
    lock.unlock();
    if (!through.empty()) {
        // Waiting (OutboxFull::wait) means writing the frame on this thread once the connection's
        // writer is idle, like a blocking socket write; never on the node's own thread.
        const bool blocking = may_wait && !on_own_thread();
        const auto deadline = std::chrono::steady_clock::now() + options_.outbox_ttl;
        for (const auto& conn : through) {
            if (!blocking) {
                conn->send(frame.bytes(), tail, SendMode::message);
            } else if (conn->send(frame.bytes(), tail, SendMode::message_wait, deadline)) {
                conn->wait_for_room(deadline);  // it was queued, and the outbox is full
            }
        }
        through.clear();
    }
    if (!full.empty()) {
        if (!on_own_thread()) {
            const auto deadline = std::chrono::steady_clock::now() + options_.outbox_ttl;
            for (const auto& conn : full) {
                conn->wait_for_room(deadline);
            }
        }
        full.clear();
    }
}

bool NodeImpl::deliver_locked(Peer& peer, const SharedFrame& frame, const Connection** used, bool urgent) {
    if (peer.connected()) {
        const bool full = peer.send_conn->send(frame, urgent ? SendMode::request : SendMode::message);
        if (used) {
            *used = peer.send_conn.get();
        }
        return full;
    }
    if (peer.parked.size() >= options_.outbox_capacity) {
        peer.parked.pop_front();
        if (const auto report = peer.parked_drops.drop()) {
            log(LogLevel::warn, "dropped " + std::to_string(report) + " message(s) to " + peer.name +
                                    " while connecting: the outbox was full");
        }
    }
    peer.parked.push_back({frame, std::chrono::steady_clock::now()});
    dial_locked(peer);
    return false;
}

std::uint64_t NodeImpl::enqueue_locked(Subscription& sub, InboxItem&& item, bool compact) {
    std::uint64_t report = 0;
    if (sub.queued() >= sub.capacity) {
        // Drop the oldest; its references go to the next item of its run (maybe this one).
        InboxItem& oldest = sub.inbox[sub.inbox_head++];
        oldest.pass_refs(sub.inbox_head < sub.inbox.size() ? sub.inbox[sub.inbox_head] : item);
        oldest = InboxItem{};
        report = sub.drops.drop();
        if (sub.inbox_head >= sub.capacity) {
            sub.inbox.erase(sub.inbox.begin(), sub.inbox.begin() + static_cast<std::ptrdiff_t>(sub.inbox_head));
            sub.inbox_head = 0;
        }
    }
    // Items share the receive buffer they arrived in. A listener that falls behind would keep
    // many such buffers alive for a few bytes each: its items get compact copies instead.
    if (compact && item.frame && item.bytes != sub.last_pinned && sub.queued() >= compact_backlog &&
        item.bytes->size() > 2 * (item.payload_size + item.layout.topic_size + 64)) {
        auto copy = std::make_shared<Buffer>();
        const auto* from = item.bytes->data() + item.layout.topic_offset;
        copy->append(from, item.layout.payload_offset + item.payload_size - item.layout.topic_offset);
        item.layout.payload_offset -= item.layout.topic_offset;
        item.layout.topic_offset = 0;
        item.bytes = copy.get();
        item.frame = std::move(copy);
    }
    sub.last_pinned = item.bytes;
    sub.inbox.push_back(std::move(item));
    return report;
}

void NodeImpl::deliver_local(const std::shared_ptr<Subscription>& sub, InboxItem item) {
    bool wake = false;
    std::uint64_t report = 0;
    {
        std::lock_guard lock(sub->mutex);
        if (sub->stopped) {
            return;
        }
        report = enqueue_locked(*sub, std::move(item), true);
        wake = std::exchange(sub->idle, false);
    }
    warn_inbox_drops(*sub, report);
    if (wake) {
        sub->bell.try_send(std::error_code{}, 0);
    }
}

void NodeImpl::deliver_local(const std::shared_ptr<Subscription>& sub, std::vector<InboxItem>& items) {
    bool wake = false;
    std::uint64_t report = 0;
    {
        std::lock_guard lock(sub->mutex);
        if (!sub->stopped) {
            // A listener that is behind gets compact copies: then every item holds references of
            // its own first (a copied item would otherwise split its run).
            const bool behind = sub->queued() >= compact_backlog;
            if (behind) {
                for (std::size_t i = 0; i + 1 < items.size(); ++i) {
                    items[i].share_refs(items[i + 1]);
                }
            }
            for (auto& item : items) {
                report += enqueue_locked(*sub, std::move(item), behind);
            }
            wake = std::exchange(sub->idle, false);
        }
    }
    items.clear();
    warn_inbox_drops(*sub, report);
    if (wake) {
        sub->bell.try_send(std::error_code{}, 0);
    }
}

void NodeImpl::warn_inbox_drops(const Subscription& sub, std::uint64_t count) {
    if (count) {
        log(LogLevel::warn, "listener of '" + sub.topic + "' is slow: dropped " + std::to_string(count) +
                                " message(s) from its full inbox");
    }
}

void NodeImpl::log_listener_failure(const Subscription& sub) {
    try {
        throw;
    } catch (const Error& e) {
        log(LogLevel::warn, "dropped a message on '" + sub.topic + "': " + e.what());
    } catch (const std::exception& e) {
        log(LogLevel::warn, "listener of '" + sub.topic + "' threw: " + e.what());
    } catch (...) {
        log(LogLevel::warn, "listener of '" + sub.topic + "' threw a non-standard exception");
    }
}

void NodeImpl::start_worker(const std::shared_ptr<Subscription>& sub) {
    asio::co_spawn(sub->strand, worker(sub), asio::detached);
}

asio::awaitable<void> NodeImpl::worker(std::shared_ptr<Subscription> sub) {
    std::shared_ptr<ListenerFn> fn;  // copied again only when listen() replaced it
    std::vector<InboxItem> batch;    // taken from the inbox (all of it, for a plain callback)
    for (;;) {
        std::size_t head = 0;
        std::uint64_t unreported = 0;
        batch.clear();
        {
            std::lock_guard lock(sub->mutex);
            if (sub->stopped.load(std::memory_order_relaxed)) {
                co_return;
            }
            if (sub->queued() == 0) {
                sub->idle = true;
                unreported = sub->drops.take_due();
            } else {
                if (fn != sub->fn) {
                    fn = sub->fn;
                }
                if (fn->plain) {
                    // A plain callback takes every queued item at once (one lock for all).
                    std::swap(batch, sub->inbox);
                    head = std::exchange(sub->inbox_head, 0);
                } else {
                    // A coroutine may be slow: it takes one at a time, so that its inbox keeps
                    // dropping the oldest while it works. The item keeps its references, and the
                    // rest of its run gets its own.
                    if (sub->inbox_head + 1 < sub->inbox.size()) {
                        sub->inbox[sub->inbox_head].share_refs(sub->inbox[sub->inbox_head + 1]);
                    }
                    batch.push_back(std::move(sub->inbox[sub->inbox_head++]));
                    if (sub->inbox_head == sub->inbox.size()) {
                        sub->clear_inbox();
                    } else if (sub->inbox_head >= compact_backlog && 2 * sub->inbox_head >= sub->inbox.size()) {
                        sub->inbox.erase(sub->inbox.begin(),
                                         sub->inbox.begin() + static_cast<std::ptrdiff_t>(sub->inbox_head));
                        sub->inbox_head = 0;
                    }
                }
            }
        }
        if (batch.empty()) {
            warn_inbox_drops(*sub, unreported);
            auto [ec, unused] = co_await sub->bell.async_receive(use_tuple);
            (void)unused;
            if (ec) {
                co_return;
            }
            continue;
        }
        for (std::size_t i = head; i < batch.size(); ++i) {
            if (sub->stopped.load(std::memory_order_relaxed)) {
                co_return;  // stop_listening() or stop(): no callback after it
            }
            InboxItem& item = batch[i];
            const auto* base = item.bytes->data();
            RawMessage m;
            m.topic = std::string_view(reinterpret_cast<const char*>(base + item.layout.topic_offset),
                                       item.layout.topic_size);
            m.payload = std::span<const std::byte>(base + item.layout.payload_offset, item.payload_size);
            m.sender_id = *item.sender_id;
            m.codec = item.codec;
            m.sent_at_ns = item.sent_at_ns;
            try {
                if (fn->plain) {
                    fn->plain(m);
                } else {
                    co_await fn->coroutine(m);
                }
            } catch (...) {
                log_listener_failure(*sub);
            }
            // Release the receive buffer now (the reader reuses a buffer nobody refers to), unless
            // the rest of the run still needs it.
            if (i + 1 < batch.size()) {
                item.pass_refs(batch[i + 1]);
            }
            item.frame.reset();
            item.sender.reset();
        }
    }
}

namespace {
/// The messages of one read for one subscription, delivered together (NodeImpl::on_frames_done):
/// one lock and one wake-up for the lot. A reader flushes it before it waits, so it never spans
/// two connections; it holds its subscription only while it holds items.
struct ReceiveBatch {
    const NodeImpl* node = nullptr;
    std::uint64_t generation = 0;
    std::string topic;
    std::shared_ptr<Subscription> sub;
    std::vector<InboxItem> items;
    // Set when the messages go straight to `sub`'s plain listener, on the thread that read them,
    // instead of through its inbox (see handle_message).
    std::shared_ptr<ListenerFn> direct;
};
thread_local ReceiveBatch receive_batch;
}  // namespace

void NodeImpl::on_frames_done(const std::shared_ptr<Connection>&) {
    ReceiveBatch& batch = receive_batch;
    if (batch.sub) {
        if (!batch.items.empty()) {
            deliver_local(batch.sub, batch.items);
        }
        batch.sub.reset();
        batch.direct.reset();
    }
}

void NodeImpl::handle_message(const std::shared_ptr<Connection>& conn, std::span<const std::byte> body) {
    wire::Message m;
    if (!wire::decode_message(body, m)) {
        conn->close("malformed message frame from " + conn->peer().name);
        return;
    }
    ReceiveBatch& batch = receive_batch;
    const auto generation = generation_.load(std::memory_order_acquire);
    if (!batch.sub || batch.node != this || batch.generation != generation || batch.topic != m.topic) {
        on_frames_done(conn);  // another topic (or node): the batch so far goes first
        {
            Lock lock(mutex_);
            auto it = subs_.find(m.topic);
            if (it == subs_.end()) {
                return;  // the sender's view of our topics is a moment old
            }
            batch.node = this;
            batch.generation = generation_.load(std::memory_order_relaxed);
            batch.topic.assign(m.topic);
            batch.sub = it->second;
        }
        if (own_loop_) {
            // On the node's own thread the worker runs on this very thread, so it cannot run
            // meanwhile. A plain listener whose worker waits with nothing queued (not inside a
            // coroutine callback that listen() replaced) is called right here, and spared the
            // inbox and the hand-over. Its messages keep their order.
            std::lock_guard sl(batch.sub->mutex);
            if (batch.sub->fn->plain && batch.sub->idle && batch.sub->queued() == 0) {
                batch.direct = batch.sub->fn;
            }
        }
    }
    if (batch.direct) {
        Subscription& sub = *batch.sub;
        if (sub.stopped.load(std::memory_order_relaxed)) {
            return;  // stop_listening() or stop(): no callback after it
        }
        RawMessage raw;
        raw.topic = m.topic;
        raw.payload = m.payload;
        raw.sender_id = *conn->peer_id();
        raw.codec = m.codec;
        raw.sent_at_ns = m.sent_at_ns;
        try {
            batch.direct->plain(raw);
        } catch (...) {
            log_listener_failure(sub);
        }
        return;
    }
    // The item shares the connection's receive buffer: no copy.
    const auto& buffer = conn->read_buffer();
    const auto body_offset = static_cast<std::size_t>(body.data() - buffer->data());
    // The first item of a run (the messages of one read) holds the references for the run.
    const bool run_goes_on = !batch.items.empty() && batch.items.back().bytes == buffer.get();
    InboxItem& item = batch.items.emplace_back();
    item.bytes = buffer.get();
    item.sender_id = conn->peer_id().get();
    if (!run_goes_on) {
        item.frame = buffer;
        item.sender = conn->peer_id();
    }
    item.layout.topic_offset = body_offset + wire::message_header;
    item.layout.topic_size = m.topic.size();
    item.layout.payload_offset = body_offset + wire::message_header + m.topic.size();
    item.payload_size = m.payload.size();
    item.codec = m.codec;
    item.sent_at_ns = m.sent_at_ns;
}

void NodeImpl::listen(std::string topic, ListenerFn fn) {
    if (topic.empty() || topic.size() > 0xffff) {
        throw Error(errc::invalid_argument, "topic name must have 1 to 65535 bytes");
    }
    auto shared_fn = std::make_shared<ListenerFn>(std::move(fn));
    Lock lock(mutex_);
    if (!running()) {
        throw Error(errc::not_running, "listen('" + topic + "')");
    }
    if (auto it = subs_.find(topic); it != subs_.end()) {
        std::lock_guard sl(it->second->mutex);
        it->second->fn = std::move(shared_fn);
        return;
    }
    auto sub = std::make_shared<Subscription>(exec_, topic, std::move(shared_fn), options_.inbox_capacity, own_loop_);
    subs_.emplace(std::move(topic), sub);
    bump_generation();
    start_worker(sub);
    info_changed_locked();
}

bool NodeImpl::stop_listening(std::string_view topic) {
    std::shared_ptr<Subscription> sub;
    std::uint64_t unreported = 0;
    {
        Lock lock(mutex_);
        auto it = subs_.find(topic);
        if (it == subs_.end()) {
            return false;
        }
        sub = it->second;
        {
            std::lock_guard sl(sub->mutex);
            unreported = sub->stop_locked();
        }
        subs_.erase(it);
        bump_generation();
        info_changed_locked();
    }
    warn_inbox_drops(*sub, unreported);
    return true;
}

std::vector<std::string> NodeImpl::listened_topics() const {
    Lock lock(mutex_);
    std::vector<std::string> out;
    for (const auto& [t, s] : subs_) {
        out.push_back(t);
    }
    return out;
}

bool NodeImpl::topic_has_listeners(std::string_view topic) const {
    Lock lock(mutex_);
    return subs_.contains(topic) || topic_index_.contains(topic);
}

void NodeImpl::depends_on_listener(std::string downstream, std::string upstream, ListenerFn fn) {
    {
        Lock lock(mutex_);
        dependencies_.push_back(
            {std::move(downstream), std::move(upstream), std::make_shared<ListenerFn>(std::move(fn)), false});
    }
    evaluate_dependencies();
}

void NodeImpl::evaluate_dependencies() {
    std::vector<std::pair<std::string, std::shared_ptr<ListenerFn>>> start;
    std::vector<std::string> stop;
    {
        Lock lock(mutex_);
        for (auto& d : dependencies_) {
            const bool needed = subs_.contains(d.downstream) || topic_index_.contains(d.downstream);
            if (needed && !d.active) {
                d.active = true;
                start.emplace_back(d.upstream, d.fn);
            } else if (!needed && d.active) {
                d.active = false;
                stop.push_back(d.upstream);
            }
        }
    }
    for (auto& [topic, fn] : start) {
        log(LogLevel::debug, "'" + topic + "' has a downstream listener again: listening");
        listen(topic, *fn);
    }
    for (auto& topic : stop) {
        log(LogLevel::debug, "nobody listens downstream of '" + topic + "': stopped listening");
        stop_listening(topic);
    }
}

// ------------------------------------------------------------------------------------------------
// services

void NodeImpl::add_service(std::string service, ServiceFn fn) {
    if (service.empty() || service.size() > 0xffff) {
        throw Error(errc::invalid_argument, "service name must have 1 to 65535 bytes");
    }
    if (!fn.plain == !fn.coroutine) {
        throw Error(errc::invalid_argument, "add_service('" + service + "'): give exactly one handler");
    }
    Lock lock(mutex_);
    if (!running()) {
        throw Error(errc::not_running, "add_service('" + service + "')");
    }
    const bool is_new = !services_.contains(service);
    services_[std::move(service)] = std::make_shared<ServiceFn>(std::move(fn));
    services_changed_locked();
    if (is_new) {
        info_changed_locked();
    }
}

bool NodeImpl::remove_service(std::string_view service) {
    Lock lock(mutex_);
    auto it = services_.find(service);
    if (it == services_.end()) {
        return false;
    }
    services_.erase(it);
    services_changed_locked();
    info_changed_locked();
    return true;
}

void NodeImpl::services_changed_locked() {
    call_lookup_ = {};  // invalid, and no longer holding a handler
    request_lookup_ = {};
}

const NodeImpl::ServiceLookup& NodeImpl::lookup_service_locked(ServiceLookup& cache, std::string_view service) {
    const auto generation = generation_.load(std::memory_order_relaxed);  // bumped under mutex_
    if (cache.valid && cache.generation == generation && cache.service == service) {
        return cache;
    }
    cache.valid = true;
    cache.generation = generation;
    cache.service.assign(service);
    const auto local = services_.find(service);
    cache.local = local != services_.end() ? local->second : nullptr;
    const auto remote = service_index_.find(service);
    cache.remote = remote != service_index_.end() ? &remote->second : nullptr;
    return cache;
}

std::vector<std::string> NodeImpl::provided_services() const {
    Lock lock(mutex_);
    std::vector<std::string> out;
    for (const auto& [s, f] : services_) {
        out.push_back(s);
    }
    return out;
}

bool NodeImpl::service_has_providers(std::string_view service) const {
    Lock lock(mutex_);
    return services_.contains(service) || service_index_.contains(service);
}

void NodeImpl::handle_request(const std::shared_ptr<Connection>& conn, std::span<const std::byte> body) {
    wire::Request r;
    if (!wire::decode_request(body, r)) {
        conn->close("malformed request frame from " + conn->peer().name);
        return;
    }
    std::shared_ptr<ServiceFn> fn;
    {
        Lock lock(mutex_);
        fn = lookup_service_locked(request_lookup_, r.service).local;
    }
    if (!fn) {
        auto reply = std::make_shared<Buffer>();
        const std::string text = "service '" + std::string(r.service) + "' is not provided by " + name_;
        wire::encode_reply(*reply, r.call_id, wire::ReplyStatus::no_such_service, CodecId::raw,
                           std::as_bytes(std::span(text.data(), text.size())));
        conn->send(std::move(reply), SendMode::control);
        return;
    }
    if (fn->plain) {
        // Runs here, on the reader, with the request where it was read (like a plain listener).
        RawMessage m;
        m.topic = r.service;
        m.codec = r.codec;
        m.payload = r.payload;
        m.sender_id = conn->peer().id;
        try {
            send_reply(*conn, r.call_id, fn->plain(m));
        } catch (...) {
            send_failure(*conn, r.call_id, current_failure());
        }
        return;
    }
    // A large request is read where it arrived (the coroutine shares the receive buffer); a small
    // one is copied (into the coroutine), so slow handlers never pin whole receive buffers.
    std::shared_ptr<const Buffer> shared;
    Buffer copy;
    if (r.payload.size() < share_request_min) {
        copy.append(r.payload.data(), r.payload.size());
    } else {
        shared = conn->read_buffer();
    }
    asio::co_spawn(
        exec_,
        [conn, fn, call_id = r.call_id, codec = r.codec, service = std::string(r.service), shared = std::move(shared),
         copy = std::move(copy), payload = r.payload]() -> asio::awaitable<void> {
            RawMessage m;
            m.topic = service;
            m.codec = codec;
            m.payload = shared ? payload : copy.bytes();
            m.sender_id = conn->peer().id;
            std::string failure;
            try {
                RawPayload result = co_await fn->coroutine(m);
                send_reply(*conn, call_id, result);
                co_return;
            } catch (...) {
                failure = current_failure();  // a catch block may not co_await; the reply needs none
            }
            send_failure(*conn, call_id, failure);
        },
        asio::detached);
}

void NodeImpl::send_reply(Connection& conn, std::uint64_t call_id, const RawPayload& result) {
    // The reply's header and the handler's bytes go out in one gathered write.
    thread_local Buffer head;
    head.clear();
    wire::encode_reply_header(head, call_id, wire::ReplyStatus::ok, result.codec, result.bytes.size());
    conn.send(head.bytes(), result.bytes.bytes(), SendMode::reply);
}

void NodeImpl::send_failure(Connection& conn, std::uint64_t call_id, const std::string& what) {
    auto reply = std::make_shared<Buffer>();
    wire::encode_reply(*reply, call_id, wire::ReplyStatus::remote_error, CodecId::raw,
                       std::as_bytes(std::span(what.data(), what.size())));
    conn.send(std::move(reply), SendMode::reply);
}

void NodeImpl::handle_reply(const std::shared_ptr<Connection>& conn, std::span<const std::byte> body) {
    wire::Reply r;
    if (!wire::decode_reply(body, r)) {
        conn->close("malformed reply frame from " + conn->peer().name);
        return;
    }
    std::unique_ptr<CallWaiter> waiter;
    Buffer storage;
    {
        Lock lock(mutex_);
        auto it = pending_.find(r.call_id);
        // Only the peer a call went to may answer it; anything else is late or foreign.
        if (it == pending_.end() || (it->second.conn != conn.get() && it->second.peer->id != conn->peer().id)) {
            log(LogLevel::debug, "ignoring a reply to unknown or expired call " + std::to_string(r.call_id));
            return;
        }
        auto node = pending_.extract(it);
        waiter = std::move(node.mapped().waiter);
        storage = std::move(node.mapped().storage);
        node.mapped() = PendingCall{};  // no longer refers to the peer
        spare_call_ = std::move(node);
    }
    CallOutcome outcome;
    outcome.reply.codec = r.codec;
    // The request's buffer holds the reply when it fits without wasting much of it.
    if (storage.capacity() >= r.payload.size() && storage.capacity() <= 2 * r.payload.size() + reuse_slack) {
        storage.clear();
        outcome.reply.bytes = std::move(storage);
    }
    outcome.reply.bytes.append(r.payload.data(), r.payload.size());
    switch (r.status) {
        case wire::ReplyStatus::ok:
            break;
        case wire::ReplyStatus::remote_error:
        case wire::ReplyStatus::bad_request:
            outcome.ec = make_error_code(errc::remote_error);
            break;
        case wire::ReplyStatus::no_such_service:
            outcome.ec = make_error_code(errc::no_provider);
            break;
    }
    // No lock is held here: a caller on this thread resumes at once (no trip through the queue).
    waiter->complete(std::move(outcome), true);
}

namespace {
/// A CallWaiter for an asio completion handler of signature void(std::exception_ptr, RawPayload)
/// (the caller's coroutine): the reply, or the call's failure as an Error.
template <class Handler>
class CallWaiterFor final : public CallWaiter {
public:
    CallWaiterFor(Handler handler, std::string service, std::chrono::milliseconds timeout)
        : handler_(std::move(handler)), service_(std::move(service)), timeout_(timeout) {}
    void complete(CallOutcome outcome, bool may_run_here) override {
        std::exception_ptr error;
        RawPayload reply;
        try {
            reply = NodeImpl::take_reply(std::move(outcome), service_, timeout_);
        } catch (...) {
            error = std::current_exception();
        }
        auto executor = asio::get_associated_executor(handler_);
        if (may_run_here) {
            // The reader that took the reply runs the caller's io_context on this thread: resume
            // it here, as dispatch() would, without wrapping it in a function object first.
            if (const auto* io = executor.template target<asio::io_context::executor_type>();
                io && io->running_in_this_thread()) {
                std::move(handler_)(error, std::move(reply));
                return;
            }
        }
        auto resume = [handler = std::move(handler_), error, reply = std::move(reply)]() mutable {
            std::move(handler)(error, std::move(reply));
        };
        if (may_run_here) {
            asio::dispatch(executor, std::move(resume));
        } else {
            asio::post(executor, std::move(resume));
        }
    }

    const std::string& service() const noexcept { return service_; }

private:
    Handler handler_;
    std::string service_;
    std::chrono::milliseconds timeout_;
};

CallOutcome failed_call(errc code, const std::string& text) {
    CallOutcome outcome;
    outcome.ec = make_error_code(code);
    outcome.reply.codec = CodecId::raw;
    outcome.reply.bytes.append(text.data(), text.size());
    return outcome;
}
}  // namespace

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

RawPayload NodeImpl::take_reply(CallOutcome&& outcome, const std::string& service, std::chrono::milliseconds timeout) {
    if (!outcome.ec) {
        return std::move(outcome.reply);
    }
    const auto& bytes = outcome.reply.bytes;
    std::string text(reinterpret_cast<const char*>(bytes.data()), bytes.size());
    if (outcome.ec == make_error_code(errc::timeout) && text.empty()) {
        text = "service '" + service + "' did not reply within " + std::to_string(timeout.count()) + " ms";
    }
    if (outcome.ec.category() == error_category()) {
        throw Error(static_cast<errc>(outcome.ec.value()), text.empty() ? "service '" + service + "'" : text);
    }
    throw Error(errc::not_running, "call to '" + service + "' abandoned: " + outcome.ec.message());
}

void NodeImpl::start_call(std::unique_ptr<CallWaiter> waiter,
                          const std::string& service,
                          CodecId codec,
                          Buffer& request,
                          std::chrono::milliseconds timeout) {
    std::shared_ptr<ServiceFn> local;
    {
        Lock lock(mutex_);
        if (!running()) {
            waiter->complete(failed_call(errc::not_running, "call('" + service + "')"), false);
            return;
        }
        auto& targets = call_targets_scratch_;  // null: this node
        targets.clear();
        const ServiceLookup& found = lookup_service_locked(call_lookup_, service);
        if (found.local) {
            targets.push_back(nullptr);
        }
        if (const auto* providers = found.remote) {
            const bool any_connected = !targets.empty() || std::any_of(providers->begin(), providers->end(),
                                                                       [](const auto& p) { return p->connected(); });
            for (const auto& p : *providers) {
                if (!any_connected || p->connected()) {
                    targets.push_back(&p);
                }
            }
        }
        if (targets.empty()) {
            waiter->complete(failed_call(errc::no_provider, "no node provides service '" + service + "'"), false);
            return;
        }
        // A lone provider needs no turn taken (a custom balancer is still asked), nor its PeerRef.
        std::size_t index = 0;
        if (targets.size() > 1 || options_.service_load_balancer) {
            refs_scratch_.clear();
            for (const auto* p : targets) {
                refs_scratch_.push_back(p ? PeerRef{(*p)->id, (*p)->name, (*p)->host, false}
                                          : PeerRef{id_, name_, host_, true});
            }
            index = service_balancer_->choose(service, refs_scratch_);
        }
        const std::shared_ptr<Peer>* target = targets[index < targets.size() ? index : 0];
        if (!target) {
            local = found.local;
        } else {
            Peer& peer = **target;
            const std::uint64_t call_id = next_call_id_++;
            PendingCall pending{std::move(waiter), *target, nullptr, {}, {}};
            if (timeout.count() > 0) {
                // Never early, at most a tick late, and a quarter of a precise clock read.
                pending.deadline = coarse_now() + coarse_resolution() + timeout;
                arm_call_timer_locked(pending.deadline);
            }
            if (peer.connected()) {
                // The request's header and the caller's bytes go out in one gathered write.
                thread_local Buffer head;
                head.clear();
                wire::encode_request_header(head, call_id, codec, service, request.size());
                peer.send_conn->send(head.bytes(), request.bytes(), SendMode::request);
                pending.conn = peer.send_conn.get();
            } else {
                auto frame = std::make_shared<Buffer>();
                wire::encode_request(*frame, call_id, codec, service, request.bytes());
                deliver_locked(peer, frame, &pending.conn, true);
            }
            pending.storage = std::move(request);  // sent (or copied): free for the reply
            if (spare_call_.empty()) {
                pending_.emplace(call_id, std::move(pending));
            } else {
                spare_call_.key() = call_id;
                spare_call_.mapped() = std::move(pending);
                pending_.insert(std::move(spare_call_));
            }
            return;
        }
    }
    // This node's own service: a plain handler runs now, a coroutine is spawned; either way the
    // caller resumes through its executor's queue.
    auto run = [self = shared_from_this(), local, service, codec, request = std::move(request),
                waiter = std::move(waiter)]() mutable -> asio::awaitable<void> {
        RawMessage m;
        m.topic = service;
        m.codec = codec;
        m.payload = request.bytes();
        m.sender_id = self->id_;
        m.sent_at_ns = now_ns();
        CallOutcome outcome;
        try {
            if (local->plain) {
                outcome.reply = local->plain(m);
            } else {
                outcome.reply = co_await local->coroutine(m);
            }
        } catch (...) {
            outcome = failed_call(errc::remote_error, current_failure());
        }
        waiter->complete(std::move(outcome), false);
    };
    asio::co_spawn(exec_, std::move(run), asio::detached);
}

void NodeImpl::arm_call_timer_locked(std::chrono::steady_clock::time_point deadline) {
    if (deadline >= call_timer_at_) {
        return;  // it fires earlier already; calls mostly share one timeout, so this is the rule
    }
    call_timer_at_ = deadline;
    call_timer_.expires_at(deadline);
    call_timer_.async_wait([weak = weak_from_this()](const std::error_code& ec) {
        if (ec) {
            return;  // re-armed earlier, or stopped
        }
        if (auto self = weak.lock()) {
            self->expire_calls();
        }
    });
}

void NodeImpl::expire_calls() {
    std::vector<std::unique_ptr<CallWaiter>> expired;
    {
        Lock lock(mutex_);
        if (!running()) {
            return;
        }
        call_timer_at_ = std::chrono::steady_clock::time_point::max();
        const auto now = std::chrono::steady_clock::now();
        auto next = std::chrono::steady_clock::time_point::max();
        for (auto it = pending_.begin(); it != pending_.end();) {
            if (it->second.deadline <= now) {
                expired.push_back(std::move(it->second.waiter));
                it = pending_.erase(it);
            } else {
                next = std::min(next, it->second.deadline);
                ++it;
            }
        }
        if (next != std::chrono::steady_clock::time_point::max()) {
            arm_call_timer_locked(next);
        }
    }
    for (auto& waiter : expired) {
        waiter->complete(CallOutcome{make_error_code(errc::timeout), {}}, false);  // call() words it
    }
}

void NodeImpl::fail_calls_locked(const std::function<bool(const PendingCall&)>& which,
                                 errc code,
                                 const std::string& why) {
    for (auto it = pending_.begin(); it != pending_.end();) {
        if (which(it->second)) {
            it->second.waiter->complete(failed_call(code, why), false);
            it = pending_.erase(it);
        } else {
            ++it;
        }
    }
}

// ------------------------------------------------------------------------------------------------
// topology

void NodeImpl::handle_info(const std::shared_ptr<Connection>& conn, std::span<const std::byte> body) {
    wire::Info info;
    if (!wire::decode_info(body, info)) {
        conn->close("malformed info frame from " + conn->peer().name);
        return;
    }
    sorted_unique(info.topics);
    sorted_unique(info.services);
    Lock lock(mutex_);
    auto it = peers_.find(conn->peer().id);
    if (it == peers_.end()) {
        return;
    }
    auto& peer = *it->second;
    if (peer.info && info.revision < peer.info->revision) {
        return;  // an older view that crossed a newer one
    }
    const bool joined = !peer.info;
    peer.info = std::move(info);
    if (joined) {
        log(LogLevel::debug, "peer " + peer.name + "@" + peer.host + " joined");
    }
    topology_changed_locked();
}

SharedFrame NodeImpl::info_frame_locked() const {
    wire::Info info;
    info.revision = info_revision_;
    for (const auto& [t, s] : subs_) {
        info.topics.push_back(t);
    }
    for (const auto& [s, f] : services_) {
        info.services.push_back(s);
    }
    auto frame = std::make_shared<Buffer>();
    wire::encode_info(*frame, info);
    return frame;
}

void NodeImpl::info_changed_locked() {
    ++info_revision_;
    auto frame = info_frame_locked();
    for (auto& [pid, peer] : peers_) {
        if (peer->outbound && !peer->outbound->peer().id.empty()) {
            peer->outbound->send(frame, SendMode::control);
        }
        for (auto& c : peer->inbound) {
            c->send(frame, SendMode::control);
        }
    }
    topology_changed_locked();
}

void NodeImpl::topology_changed_locked() {
    bump_generation();
    topic_index_.clear();
    service_index_.clear();
    for (auto& [pid, peer] : peers_) {
        if (!peer->info) {
            continue;
        }
        for (const auto& t : peer->info->topics) {
            topic_index_[t].push_back(peer);
        }
        for (const auto& s : peer->info->services) {
            service_index_[s].push_back(peer);
        }
    }
    auto by_id = [](const auto& a, const auto& b) {
        return a->id < b->id;
    };
    for (auto& [t, v] : topic_index_) {
        std::sort(v.begin(), v.end(), by_id);
    }
    for (auto& [s, v] : service_index_) {
        std::sort(v.begin(), v.end(), by_id);
    }
    if (!dependencies_.empty()) {
        asio::post(strand_, [self = shared_from_this()] { self->evaluate_dependencies(); });
    }
}

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
    Lock lock(mutex_);
    NodeInfo self;
    self.id = id_;
    self.name = name_;
    self.host = host_;
    self.domain = domain_;
    for (const auto& [t, s] : subs_) {
        self.topics.push_back(t);
    }
    for (const auto& [s, f] : services_) {
        self.services.push_back(s);
    }
    if (options_.allow_tcp) {
        self.tcp_endpoint = (is_wildcard(options_.listen_host) ? std::string("*") : options_.listen_host) + ":" +
                            std::to_string(tcp_port_);
    }
    self.unix_endpoint = unix_path_;
    self.transport = "self";
    self.is_self = true;
    out.push_back(std::move(self));
    for (const auto& [pid, peer] : peers_) {
        if (!peer->info && !peer->connected()) {
            continue;
        }
        NodeInfo n;
        n.id = peer->id;
        n.name = peer->name;
        n.host = peer->host;
        n.domain = domain_;
        if (peer->info) {
            n.topics = peer->info->topics;
            n.services = peer->info->services;
        }
        if (peer->advert) {
            if (peer->advert->tcp_port) {
                n.tcp_endpoint =
                    (peer->advert->tcp_address.empty() ? std::string("127.0.0.1") : peer->advert->tcp_address) + ":" +
                    std::to_string(peer->advert->tcp_port);
            }
            n.unix_endpoint = peer->advert->unix_path;
        }
        if (peer->connected()) {
            n.transport = peer->send_conn->is_unix() ? "unix" : "tcp";
        }
        out.push_back(std::move(n));
    }
    std::sort(out.begin(), out.end(),
              [](const NodeInfo& a, const NodeInfo& b) { return std::tie(a.name, a.id) < std::tie(b.name, b.id); });
    return out;
}

}  // namespace meshy::detail
