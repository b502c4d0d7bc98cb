#include "node/node_impl.hpp"

#include <unistd.h>

#include <algorithm>
#include <asio/associated_executor.hpp>
#include <asio/async_result.hpp>
#include <asio/co_spawn.hpp>
#include <asio/detached.hpp>
#include <asio/dispatch.hpp>
#include <asio/experimental/as_tuple.hpp>
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
#include "transport/warn_limiter.hpp"

namespace meshy::detail {
namespace {

constexpr auto use_tuple = asio::experimental::as_tuple(asio::use_awaitable);

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
      servers_(strand_, exec_),
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
            self.tcp_port = servers_.tcp_port();
            if (options_.allow_tcp) {
                self.tcp_address = !options_.advertise_host.empty()     ? options_.advertise_host
                                   : !is_wildcard(options_.listen_host) ? options_.listen_host
                                                                        : std::string();
            }
            self.unix_path = servers_.unix_path();
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
    std::weak_ptr<NodeImpl> weak = shared_from_this();
    servers_.open(options_, id_, [weak](Connection::Socket socket, bool is_unix) -> std::shared_ptr<Connection> {
        auto self = weak.lock();
        if (!self || !self->running()) {
            return nullptr;
        }
        const std::size_t cap = self->options_.max_inbound_connections;
        if (self->links_.inbound_count() >= cap) {
            warn_limited(WarnKind::connection_limit,
                         "refusing a connection from " + Connection::describe_remote(socket, is_unix) +
                             ": this node has " + std::to_string(cap) +
                             " connections from peers open (NodeOptions::max_inbound_connections)");
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
    servers_.close();
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
                            std::to_string(servers_.tcp_port());
    }
    self.unix_endpoint = servers_.unix_path();
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
