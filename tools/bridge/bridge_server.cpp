#include "bridge/bridge_server.hpp"

#include <openssl/crypto.h>

#include <algorithm>
#include <asio/co_spawn.hpp>
#include <asio/detached.hpp>
#include <asio/ip/tcp.hpp>
#include <asio/redirect_error.hpp>
#include <asio/ssl/context.hpp>
#include <asio/steady_timer.hpp>
#include <asio/use_awaitable.hpp>
#include <deque>
#include <meshy/log.hpp>
#include <meshy/node.hpp>
#include <nlohmann/json.hpp>

#include "bridge/foxglove_protocol.hpp"
#include "bridge/foxglove_server.hpp"
#include "bridge/message_mapping.hpp"
#include "bridge/rest_api.hpp"
#include "bridge/rest_route.hpp"
#include "bridge/rosbridge_op.hpp"
#include "bridge/subscription_rules.hpp"
#include "bridge/token_bucket.hpp"
#include "bridge/web_assets.hpp"
#include "bridge/websocket_frame.hpp"
#include "bridge/websocket_handshake.hpp"
#include "common/rate_limited_log.hpp"

namespace meshy::cli::bridge {

using json = nlohmann::json;
using Clock = std::chrono::steady_clock;

namespace {

std::string dump(const json& j) {
    return j.dump(-1, ' ', false, json::error_handler_t::replace);
}

int level_rank(std::string_view level) {
    if (level == "none") {
        return 0;
    }
    if (level == "error") {
        return 1;
    }
    if (level == "warning") {
        return 2;
    }
    return 3;  // info
}

bool same_secret(std::string_view a, std::string_view b) {
    return a.size() == b.size() && CRYPTO_memcmp(a.data(), b.data(), a.size()) == 0;
}

const char* const rosapi_services[] = {"/rosapi/topics",       "/rosapi/services",   "/rosapi/nodes",
                                       "/rosapi/node_details", "/rosapi/topic_type", "/rosapi/service_type",
                                       "/rosapi/publishers"};

}  // namespace

// Connections in their handshake (TLS, HTTP request) are counted apart from clients: a flood of
// half-open sockets can hold at most `max_handshaking` of them, each for at most
// WebSocketSession::handshake_timeout, and a new connection takes the slot of the oldest one
// rather than being refused, so a legitimate client still gets in during the flood.
struct BridgeServer::Acceptor {
    static constexpr std::size_t max_handshaking = 64;
    // After EMFILE/ENFILE the listening socket stays readable: wait before accepting again.
    static constexpr std::chrono::milliseconds retry_after_error{100};

    explicit Acceptor(asio::any_io_executor ex) : acceptor(ex), retry(ex) {}

    /// Forgets sessions that finished their handshake or are gone. @returns how many are left.
    std::size_t prune() {
        std::erase_if(handshaking, [](const std::weak_ptr<WebSocketSession>& w) {
            const auto s = w.lock();
            return !s || !s->handshaking();
        });
        return handshaking.size();
    }
    /// Closes the oldest connection still in its handshake. @returns false when there is none.
    bool evict_oldest() {
        while (!handshaking.empty()) {
            const auto oldest = handshaking.front().lock();
            handshaking.pop_front();
            if (oldest && oldest->handshaking()) {
                meshy::detail::log_rate_limited(LogLevel::warn, "bridge: handshake slot taken",
                                                "bridge: " + oldest->peer() +
                                                    ": closed, still in its handshake while " +
                                                    std::to_string(max_handshaking) + " newer connections came");
                oldest->abort();
                return true;
            }
        }
        return false;
    }

    asio::ip::tcp::acceptor acceptor;
    asio::steady_timer retry;
    std::deque<std::weak_ptr<WebSocketSession>> handshaking;  ///< oldest first
};

struct BridgeServer::Subscription {
    std::string client_name;  ///< the name the client subscribed with
    std::map<std::string, SubscribeParams> by_id;
    unsigned throttle_rate = 0;
    unsigned queue_length = 0;
    std::size_t fragment_size = 0;
    bool cbor = false;
    Clock::time_point last_sent{};
    std::deque<std::vector<std::shared_ptr<const std::string>>> pending;
    std::unique_ptr<asio::steady_timer> timer;
    bool timer_armed = false;
};

struct BridgeServer::PendingCall {
    explicit PendingCall(asio::any_io_executor ex) : timer(ex) {}
    asio::steady_timer timer;
    bool done = false;
    bool ok = false;
    Buffer reply;
    std::string error;
};

struct BridgeServer::Client {
    Client(std::shared_ptr<WebSocketSession> s, asio::any_io_executor ex, const BridgeOptions& o)
        : session(std::move(s)), auth_timer(ex), msgs(o.rate_limit_msgs, 0), bytes(o.rate_limit_bytes, 0) {}
    std::shared_ptr<WebSocketSession> session;
    bool authenticated = false;
    asio::steady_timer auth_timer;
    int level = 1;                                                 // error
    std::map<std::string, Subscription> subs;                      ///< meshy topic -> subscription
    std::map<std::string, std::string> advertised;                 ///< meshy topic -> type
    std::set<std::string> services;                                ///< meshy services it provides
    std::map<std::string, std::shared_ptr<PendingCall>> incoming;  ///< bridge call id -> call
    std::size_t pending_calls = 0;
    TokenBucket msgs;
    TokenBucket bytes;
    Clock::time_point last_rate_warning{};
    std::uint64_t rate_dropped = 0;
};

BridgeServer::BridgeServer(asio::any_io_executor executor, Node& node, BridgeOptions options)
    : executor_(std::move(executor)),
      node_(node),
      options_(std::move(options)),
      topics_(options_.topics_glob),
      publish_(options_.publish_glob.empty() ? options_.topics_glob : options_.publish_glob),
      services_(options_.services_glob),
      acceptor_(std::make_unique<Acceptor>(executor_)),
      foxglove_(std::make_unique<FoxgloveServer>(executor_,
                                                 node_,
                                                 options_,
                                                 TopicTap{[this](const std::string& t) { listen_topic(t); },
                                                          [this](const std::string& t) {
                                                              release_topic(t);
                                                          }})) {
    if (!options_.certfile.empty() || !options_.keyfile.empty()) {
        if (options_.certfile.empty() || options_.keyfile.empty()) {
            throw std::runtime_error("TLS needs both --certfile and --keyfile");
        }
        tls_ = std::make_unique<asio::ssl::context>(asio::ssl::context::tls_server);
        tls_->set_options(asio::ssl::context::default_workarounds | asio::ssl::context::no_sslv2 |
                          asio::ssl::context::no_sslv3 | asio::ssl::context::no_tlsv1 | asio::ssl::context::no_tlsv1_1);
        try {
            tls_->use_certificate_chain_file(options_.certfile);
            tls_->use_private_key_file(options_.keyfile, asio::ssl::context::pem);
        } catch (const std::system_error& e) {
            throw std::runtime_error("cannot load TLS certificate/key: " + std::string(e.what()));
        }
    }
    const auto address = asio::ip::make_address(options_.address == "localhost" ? "127.0.0.1" : options_.address);
    const asio::ip::tcp::endpoint endpoint(address, options_.port);
    auto& a = acceptor_->acceptor;
    a.open(endpoint.protocol());
    a.set_option(asio::socket_base::reuse_address(true));
    a.bind(endpoint);
    a.listen(asio::socket_base::max_listen_connections);
    port_ = a.local_endpoint().port();
    // REST and MJPEG share the one listener per topic with the WebSocket clients.
    const auto listen = [this](const std::string& topic) {
        listen_topic(topic);
    };
    const auto unlisten = [this](const std::string& topic) {
        release_topic(topic);
    };
    const auto advertised = [this] {
        std::map<std::string, std::string> out;
        for (const auto& [id, c] : clients_) {
            out.insert(c->advertised.begin(), c->advertised.end());
        }
        return out;
    };
    rest_ = std::make_unique<RestApi>(executor_, node_, options_,
                                      RestApi::Hooks{listen, unlisten, advertised, &topic_types_, &service_types_});
}

BridgeServer::~BridgeServer() {
    *alive_ = false;
    stop();
}

std::string BridgeServer::url() const {
    std::string host = options_.address;
    if (host.find(':') != std::string::npos) {
        host = "[" + host + "]";
    }
    return std::string(tls_ ? "wss://" : "ws://") + host + ":" + std::to_string(port_);
}

std::size_t BridgeServer::client_count() const noexcept {
    return clients_.size() + foxglove_->client_count();
}

void BridgeServer::listen_topic(const std::string& topic) {
    if (listening_.insert(topic).second) {
        node_.listen_raw(topic, [this, alive = alive_](const RawMessage& m) {
            if (*alive) {
                on_topic(m);
                foxglove_->on_topic(m);
            }
        });
    }
}

void BridgeServer::release_topic(const std::string& topic) {
    if (!topic_listeners_.count(topic) && !foxglove_->wants(topic) && !(rest_ && rest_->wants(topic)) &&
        listening_.erase(topic) && !stopped_) {
        node_.stop_listening(topic);
    }
}

void BridgeServer::start() {
    accept_next();
}

void BridgeServer::accept_next() {
    if (stopped_) {
        return;
    }
    acceptor_->acceptor.async_accept([this, alive = alive_](std::error_code ec, asio::ip::tcp::socket socket) {
        if (!*alive || stopped_) {
            return;
        }
        auto& a = *acceptor_;
        if (!ec) {
            if (a.prune() >= Acceptor::max_handshaking) {
                a.evict_oldest();
            }
        }
        // Clients are bounded by --max-clients (503 at the upgrade), handshakes by max_handshaking;
        // the rest is sockets in their closing handshake (at most 2 s each).
        if (!ec && *connections_ >= options_.max_clients + 2 * Acceptor::max_handshaking) {
            meshy::detail::log_rate_limited(LogLevel::warn, "bridge: connection refused",
                                            "bridge: refused a connection, " + std::to_string(*connections_) +
                                                " sockets open (--max-clients " + std::to_string(options_.max_clients) +
                                                " and connections closing)");
            std::error_code ignored;
            socket.close(ignored);
        } else if (!ec) {
            std::error_code ignored;
            socket.set_option(asio::ip::tcp::no_delay(true), ignored);
            auto session =
                std::make_shared<WebSocketSession>(std::move(socket), tls_.get(), *this, options_, ++next_session_id_);
            ++*connections_;
            session->hold(std::shared_ptr<void>(nullptr, [count = connections_](void*) { --*count; }));
            a.handshaking.push_back(session);
            session->start();
        } else if (ec != asio::error::operation_aborted) {
            meshy::detail::log_rate_limited(LogLevel::warn, "bridge: accept failed",
                                            "bridge: accept failed: " + ec.message());
            if (ec == asio::error::no_descriptors || ec.value() == ENFILE) {
                // Out of descriptors: free one held by a handshake if there is one, else wait a little
                // (the listening socket stays readable, so accepting at once would spin).
                if (!a.evict_oldest()) {
                    a.retry.expires_after(Acceptor::retry_after_error);
                    a.retry.async_wait([this, alive = alive_](std::error_code wait_ec) {
                        if (!wait_ec && *alive) {
                            accept_next();
                        }
                    });
                    return;
                }
            }
        }
        accept_next();
    });
}

void BridgeServer::stop() {
    if (stopped_) {
        return;
    }
    stopped_ = true;
    std::error_code ec;
    acceptor_->acceptor.close(ec);
    rest_->stop();
    acceptor_->retry.cancel();
    std::vector<std::shared_ptr<WebSocketSession>> sessions;
    for (auto& [id, c] : clients_) {
        sessions.push_back(c->session);
    }
    for (auto& s : sessions) {
        s->close(close_code::going_away, "bridge shutting down");
    }
    for (auto& s : sessions) {
        s->abort();
    }
    clients_.clear();
    foxglove_->stop();
    for (const auto& topic : listening_) {
        node_.stop_listening(topic);
    }
    listening_.clear();
    topic_listeners_.clear();
    for (const auto& [service, id] : provided_) {
        node_.remove_service(service);
    }
    provided_.clear();
}

BridgeServer::Client* BridgeServer::find_client(std::uint64_t id) {
    const auto it = clients_.find(id);
    return it == clients_.end() ? nullptr : it->second.get();
}

bool BridgeServer::origin_allowed(const HttpRequest& request) const {
    const std::string* origin = request.header("Origin");
    if (!origin) {
        return true;  // not a browser
    }
    for (const auto& allowed : options_.allow_origin) {
        if (allowed == "*" || iequals(allowed, *origin)) {
            return true;
        }
    }
    // Same origin: the built-in dashboard, served from this very host:port.
    std::string_view o = *origin;
    for (std::string_view scheme : {"http://", "https://"}) {
        if (o.size() > scheme.size() && iequals(o.substr(0, scheme.size()), scheme)) {
            o.remove_prefix(scheme.size());
            const std::string* host = request.header("Host");
            return host && iequals(o, *host);
        }
    }
    return false;
}

bool BridgeServer::publish_allowed(const std::string& name) const {
    return publish_.allows(name);
}

HttpDecision BridgeServer::on_request(WebSocketSession& session, const HttpRequest& request) {
    HttpDecision d;
    if (!origin_allowed(request)) {
        const std::string* origin = request.header("Origin");
        meshy::detail::log_rate_limited(
            LogLevel::warn, "bridge: origin not allowed",
            "bridge: " + session.peer() + ": origin '" + (origin ? *origin : "") + "' not allowed (--allow-origin)");
        d.response = http_response(403, "text/plain", "origin not allowed\n");
        return d;
    }
    if (is_rest_path(request.path())) {
        return rest_->on_request(session, request);
    }
    if (is_websocket_upgrade(request)) {
        const UpgradeCheck check = check_websocket_upgrade(request);
        if (!check.ok) {
            meshy::detail::log_rate_limited(LogLevel::warn, "bridge: bad upgrade request",
                                            "bridge: " + session.peer() + ": bad upgrade request: " + check.error);
            d.response = http_response(check.status, "text/plain", check.error + "\n",
                                       check.status == 426 ? "Sec-WebSocket-Version: 13\r\n" : "");
            return d;
        }
        if (stopped_ || client_count() >= options_.max_clients) {
            meshy::detail::log_rate_limited(LogLevel::warn, "bridge: too many clients",
                                            "bridge: " + session.peer() + ": refused, " +
                                                std::to_string(clients_.size()) + " clients connected (--max-clients)");
            d.response = http_response(503, "text/plain", "too many clients\n");
            return d;
        }
        d.upgrade = true;
        d.response = websocket_upgrade_response(check.accept);
        // Foxglove clients offer foxglove.websocket.v1 and get that protocol; roslibjs offers none.
        const std::string* offered = request.header("Sec-WebSocket-Protocol");
        const std::string subprotocol = offered ? select_foxglove_subprotocol(*offered) : std::string();
        if (!subprotocol.empty()) {
            d.response.insert(d.response.size() - 2, "Sec-WebSocket-Protocol: " + subprotocol + "\r\n");
        }
        return d;
    }
    if (request.method != "GET" && request.method != "HEAD") {
        d.response = http_response(405, "text/plain", "method not allowed\n", "Allow: GET\r\n");
        return d;
    }
    std::string_view path = request.path();
    if (path == "/") {
        path = "/index.html";
    }
    const WebAsset* asset = path.size() > 1 ? find_web_asset(path.substr(1)) : nullptr;
    if (!asset) {
        d.response = http_response(404, "text/plain", "not found\n");
        return d;
    }
    d.response = http_response(200, asset->content_type, request.method == "HEAD" ? std::string_view{} : asset->data);
    return d;
}

void BridgeServer::on_open(WebSocketSession& session, const HttpRequest& request) {
    const std::string* offered = request.header("Sec-WebSocket-Protocol");
    if (offered && !select_foxglove_subprotocol(*offered).empty()) {
        foxglove_->on_open(session, request);
        return;
    }
    auto shared = session.shared_from_this();
    auto client = std::make_unique<Client>(shared, executor_, options_);
    Client& c = *client;
    clients_[session.id()] = std::move(client);
    log(LogLevel::info,
        "bridge: client " + session.peer() + " connected (" + std::to_string(clients_.size()) + " clients)");
    if (options_.token.empty()) {
        c.authenticated = true;
        return;
    }
    // The token may come as ?token= in the URL; else the first op must be auth.
    const auto token = request.query_param("token");
    if (token && same_secret(*token, options_.token)) {
        c.authenticated = true;
        return;
    }
    if (token) {
        log(LogLevel::warn, "bridge: " + session.peer() + ": wrong token in the URL");
        session.close(close_code::unauthorized, "unauthorized");
        return;
    }
    c.auth_timer.expires_after(options_.auth_timeout);
    c.auth_timer.async_wait([this, alive = alive_, id = session.id()](std::error_code ec) {
        if (ec || !*alive) {
            return;
        }
        Client* cl = find_client(id);
        if (cl && !cl->authenticated) {
            log(LogLevel::warn, "bridge: " + cl->session->peer() + ": no auth op in time");
            cl->session->close(close_code::unauthorized, "authentication timeout");
        }
    });
}

void BridgeServer::on_closed(WebSocketSession& session) {
    if (foxglove_->on_closed(session)) {
        return;
    }
    const auto it = clients_.find(session.id());
    if (it == clients_.end()) {
        return;
    }
    std::unique_ptr<Client> client = std::move(it->second);
    clients_.erase(it);
    log(LogLevel::info,
        "bridge: client " + session.peer() + " disconnected (" + std::to_string(clients_.size()) + " clients)");
    client->auth_timer.cancel();
    for (auto& [topic, sub] : client->subs) {
        auto l = topic_listeners_.find(topic);
        if (l != topic_listeners_.end()) {
            l->second.erase(session.id());
            if (l->second.empty()) {
                topic_listeners_.erase(l);
                release_topic(topic);
            }
        }
    }
    for (const auto& service : client->services) {
        remove_provided_service(service);
    }
    for (auto& [id, call] : client->incoming) {
        call->done = true;
        call->ok = false;
        call->error = "the bridge client providing the service disconnected";
        call->timer.cancel();
    }
}

void BridgeServer::status(Client& client, const char* level, const std::string& msg, const std::string& id) {
    if (level_rank(level) > client.level) {
        return;
    }
    json op = {{"op", "status"}, {"level", level}, {"msg", msg}};
    if (!id.empty()) {
        op["id"] = id;
    }
    client.session->send(dump(op));
}

void BridgeServer::on_message(WebSocketSession& session, std::string&& data, bool binary) {
    if (foxglove_->owns(session.id())) {
        foxglove_->on_message(session, std::move(data), binary);
        return;
    }
    Client* client = find_client(session.id());
    if (!client) {
        return;
    }
    Client& c = *client;
    const auto now = Clock::now();
    if (!c.msgs.take(1, now) || !c.bytes.take(static_cast<double>(data.size()), now)) {
        ++c.rate_dropped;
        if (now - c.last_rate_warning > std::chrono::seconds(1)) {
            c.last_rate_warning = now;
            log(LogLevel::warn, "bridge: " + session.peer() + ": rate limit exceeded, " +
                                    std::to_string(c.rate_dropped) + " message(s) dropped so far");
            status(c, "warning", "rate limit exceeded: message dropped");
        }
        return;
    }
    OpParse parsed = parse_op(data, binary);
    if (!c.authenticated) {
        if (parsed.op && parsed.op->kind == OpKind::auth && same_secret(parsed.op->token, options_.token)) {
            c.authenticated = true;
            c.auth_timer.cancel();
            return;
        }
        log(LogLevel::warn, "bridge: " + session.peer() + ": " +
                                (parsed.op && parsed.op->kind == OpKind::auth ? "wrong token" : "op before auth"));
        session.close(close_code::unauthorized, "unauthorized");
        return;
    }
    if (!parsed.op) {
        status(c, "error", parsed.error, parsed.id);
        return;
    }
    try {
        dispatch(c, std::move(*parsed.op));
    } catch (const std::exception& e) {
        status(c, "error", parsed.op_name + ": " + e.what(), parsed.id);
    }
}

void BridgeServer::dispatch(Client& c, Op&& op) {
    const std::string meshy = meshy_name(op.name);
    switch (op.kind) {
        case OpKind::auth:
            return;  // already authenticated
        case OpKind::advertise:
            if (!publish_allowed(op.name)) {
                status(c, "error", "not allowed: publishing to '" + op.name + "' (--publish-glob/--topics-glob)",
                       op.id);
                return;
            }
            c.advertised[meshy] = op.type;
            if (!op.type.empty()) {
                topic_types_[meshy] = op.type;
            }
            return;
        case OpKind::unadvertise:
            c.advertised.erase(meshy);
            return;
        case OpKind::publish:
            if (!publish_allowed(op.name)) {
                status(c, "error", "not allowed: publishing to '" + op.name + "' (--publish-glob/--topics-glob)",
                       op.id);
                return;
            }
            node_.send_raw(meshy, CodecId::msgpack, op.payload.bytes());
            return;
        case OpKind::subscribe:
            subscribe(c, op);
            return;
        case OpKind::unsubscribe:
            unsubscribe(c, op);
            return;
        case OpKind::call_service:
            call_service(c, std::move(op));
            return;
        case OpKind::advertise_service:
            advertise_service(c, op);
            return;
        case OpKind::unadvertise_service:
            if (c.services.erase(meshy)) {
                remove_provided_service(meshy);
            }
            return;
        case OpKind::service_response:
            service_response(c, std::move(op));
            return;
        case OpKind::set_level:
            c.level = level_rank(op.level);
            return;
    }
}

void BridgeServer::subscribe(Client& c, Op& op) {
    if (!topics_.allows(op.name)) {
        status(c, "error", "not allowed: subscribing to '" + op.name + "' (--topics-glob)", op.id);
        return;
    }
    const std::string meshy = meshy_name(op.name);
    bool cbor = false;
    if (op.compression == "cbor") {
        cbor = true;
    } else if (op.compression != "none") {
        status(c, "warning", "compression '" + op.compression + "' not supported, using none", op.id);
    }
    auto [it, inserted] = c.subs.try_emplace(meshy);
    Subscription& sub = it->second;
    if (inserted) {
        sub.client_name = op.name;
        sub.timer = std::make_unique<asio::steady_timer>(executor_);
    }
    sub.by_id[op.id] = {op.throttle_rate, op.queue_length, op.fragment_size};
    sub.cbor = cbor;
    const SubscribeParams effective = combine_subscriptions(sub.by_id);
    sub.throttle_rate = effective.throttle_rate;
    sub.queue_length = effective.queue_length;
    sub.fragment_size = effective.fragment_size;
    if (!op.type.empty()) {
        topic_types_[meshy] = op.type;
    }
    auto& listeners = topic_listeners_[meshy];
    const bool first = listeners.empty();
    listeners.insert(c.session->id());
    if (first) {
        listen_topic(meshy);
    }
}

void BridgeServer::unsubscribe(Client& c, const Op& op) {
    const std::string meshy = meshy_name(op.name);
    const auto it = c.subs.find(meshy);
    if (it == c.subs.end()) {
        return;
    }
    if (!op.id.empty()) {
        it->second.by_id.erase(op.id);
        if (!it->second.by_id.empty()) {
            // The remaining subscriptions decide.
            auto& sub = it->second;
            const SubscribeParams effective = combine_subscriptions(sub.by_id);
            sub.throttle_rate = effective.throttle_rate;
            sub.queue_length = effective.queue_length;
            sub.fragment_size = effective.fragment_size;
            return;
        }
    }
    drop_subscription(c, meshy);
}

void BridgeServer::drop_subscription(Client& c, const std::string& topic) {
    c.subs.erase(topic);
    auto l = topic_listeners_.find(topic);
    if (l == topic_listeners_.end()) {
        return;
    }
    l->second.erase(c.session->id());
    if (l->second.empty()) {
        topic_listeners_.erase(l);
        release_topic(topic);
    }
}

void BridgeServer::on_topic(const RawMessage& m) {
    rest_->on_topic(m);
    const auto l = topic_listeners_.find(std::string(m.topic));
    if (l == topic_listeners_.end()) {
        return;
    }
    const std::string topic(m.topic);
    std::optional<json> as_json;
    std::optional<json> as_cbor;
    // One encoded frame per (name, mode, fragment size), shared by every client that wants it.
    std::map<std::tuple<std::string, bool, std::size_t>, std::vector<std::shared_ptr<const std::string>>> frames;
    const std::vector<std::uint64_t> ids(l->second.begin(), l->second.end());
    for (const std::uint64_t id : ids) {
        Client* c = find_client(id);
        if (!c || !c->authenticated) {
            continue;
        }
        const auto s = c->subs.find(topic);
        if (s == c->subs.end()) {
            continue;
        }
        Subscription& sub = s->second;
        const std::size_t fragment = sub.cbor ? 0 : sub.fragment_size;
        auto key = std::make_tuple(sub.client_name, sub.cbor, fragment);
        auto f = frames.find(key);
        if (f == frames.end()) {
            std::vector<std::shared_ptr<const std::string>> out;
            auto& msg = sub.cbor ? as_cbor : as_json;
            if (!msg) {
                msg = payload_to_json(m.codec, m.payload, sub.cbor);
            }
            json op = {{"op", "publish"}, {"topic", sub.client_name}, {"msg", *msg}};
            if (sub.cbor) {
                const std::vector<std::uint8_t> bytes = json::to_cbor(op);
                out.push_back(std::make_shared<const std::string>(encode_frame(
                    Opcode::binary, std::string_view(reinterpret_cast<const char*>(bytes.data()), bytes.size()))));
            } else {
                const std::string text = dump(op);
                if (fragment == 0 || text.size() <= fragment) {
                    out.push_back(std::make_shared<const std::string>(encode_frame(Opcode::text, text)));
                } else {
                    // rosbridge fragments: pieces of the op's JSON text, cut on UTF-8 boundaries.
                    std::vector<std::string> parts;
                    std::size_t pos = 0;
                    while (pos < text.size()) {
                        std::size_t len = std::min(fragment, text.size() - pos);
                        while (pos + len < text.size() && len > 1 &&
                               (static_cast<unsigned char>(text[pos + len]) & 0xC0) == 0x80) {
                            --len;
                        }
                        parts.push_back(text.substr(pos, len));
                        pos += len;
                    }
                    const std::string fid = "publish:" + sub.client_name + ":" + std::to_string(++next_call_id_);
                    for (std::size_t i = 0; i < parts.size(); ++i) {
                        json frag = {
                            {"op", "fragment"}, {"id", fid}, {"data", parts[i]}, {"num", i}, {"total", parts.size()}};
                        out.push_back(std::make_shared<const std::string>(encode_frame(Opcode::text, dump(frag))));
                    }
                }
            }
            f = frames.emplace(std::move(key), std::move(out)).first;
        }
        deliver(*c, sub, topic, f->second);
    }
}

void BridgeServer::deliver(Client& c,
                           Subscription& sub,
                           const std::string& topic,
                           const std::vector<std::shared_ptr<const std::string>>& frames) {
    const auto send_now = [&](const std::vector<std::shared_ptr<const std::string>>& fs) {
        for (const auto& f : fs) {
            c.session->send_topic_frame(f, topic, sub.queue_length * fs.size());
        }
    };
    if (sub.throttle_rate == 0) {
        send_now(frames);
        return;
    }
    const auto now = Clock::now();
    const auto period = std::chrono::milliseconds(sub.throttle_rate);
    if (!sub.timer_armed && now - sub.last_sent >= period) {
        sub.last_sent = now;
        send_now(frames);
        return;
    }
    sub.pending.push_back(frames);
    const std::size_t cap = std::max<std::size_t>(sub.queue_length, 1);
    while (sub.pending.size() > cap) {
        sub.pending.pop_front();
    }
    if (!sub.timer_armed) {
        sub.timer_armed = true;
        sub.timer->expires_at(sub.last_sent + period);
        sub.timer->async_wait([this, alive = alive_, id = c.session->id(), topic](std::error_code ec) {
            if (!ec && *alive) {
                flush_throttled(id, topic);
            }
        });
    }
}

void BridgeServer::flush_throttled(std::uint64_t client_id, const std::string& topic) {
    Client* c = find_client(client_id);
    if (!c) {
        return;
    }
    const auto s = c->subs.find(topic);
    if (s == c->subs.end()) {
        return;
    }
    Subscription& sub = s->second;
    sub.timer_armed = false;
    if (sub.pending.empty()) {
        return;
    }
    const auto frames = std::move(sub.pending.front());
    sub.pending.pop_front();
    sub.last_sent = Clock::now();
    for (const auto& f : frames) {
        c->session->send_topic_frame(f, topic, sub.queue_length * frames.size());
    }
    if (!sub.pending.empty()) {
        sub.timer_armed = true;
        sub.timer->expires_at(sub.last_sent + std::chrono::milliseconds(sub.throttle_rate));
        sub.timer->async_wait([this, alive = alive_, client_id, topic](std::error_code ec) {
            if (!ec && *alive) {
                flush_throttled(client_id, topic);
            }
        });
    }
}

void BridgeServer::call_service(Client& c, Op&& op) {
    // roslibjs names them "/rosapi/topics" or "rosapi/topics" (older versions).
    if (meshy_name(op.name).rfind("rosapi/", 0) == 0 && rosapi(c, op)) {
        return;
    }
    json response = {{"op", "service_response"}, {"service", op.name}};
    if (!op.id.empty()) {
        response["id"] = op.id;
    }
    if (!services_.allows(op.name)) {
        response["values"] = "not allowed: calling '" + op.name + "' (--services-glob)";
        response["result"] = false;
        status(c, "error", response["values"].get<std::string>(), op.id);
        c.session->send(dump(response));
        return;
    }
    if (c.pending_calls >= options_.max_pending_calls) {
        response["values"] = "too many calls in flight (" + std::to_string(options_.max_pending_calls) + ")";
        response["result"] = false;
        c.session->send(dump(response));
        return;
    }
    ++c.pending_calls;
    const std::chrono::milliseconds timeout =
        op.timeout_s && *op.timeout_s > 0
            ? std::chrono::milliseconds(static_cast<std::int64_t>(*op.timeout_s * 1000.0 + 0.5))
            : options_.service_timeout;
    const bool by_keyword = keywords_only(op.payload.bytes());
    asio::co_spawn(
        executor_,
        [this, alive = alive_, id = c.session->id(), service = meshy_name(op.name), request = std::move(op.payload),
         timeout, by_keyword, response = std::move(response)]() mutable -> asio::awaitable<void> {
            bool cbor = false;
            try {
                RawPayload reply =
                    co_await node_.call_raw(service, CodecId::msgpack, std::move(request), CallOptions{timeout});
                response["values"] = payload_to_json(reply.codec, reply.bytes.bytes(), cbor);
                response["result"] = true;
            } catch (const Error& e) {
                // A provider that could not take keyword arguments: say how to call it.
                response["values"] = call_failure_text(e.what(), by_keyword && e.code() == errc::remote_error);
                response["result"] = false;
            } catch (const std::exception& e) {
                response["values"] = e.what();
                response["result"] = false;
            }
            if (!*alive) {
                co_return;
            }
            if (Client* cl = find_client(id)) {
                --cl->pending_calls;
                cl->session->send(dump(response));
            }
        },
        asio::detached);
}

bool BridgeServer::rosapi(Client& c, const Op& op) {
    const std::string what = meshy_name(op.name).substr(7);
    const auto nodes = node_.nodes();
    const auto topic_visible = [this](const std::string& t) {
        return topics_.allows(t) || publish_allowed(t);
    };
    json values = json::object();
    if (what == "topics") {
        std::set<std::string> names;
        std::map<std::string, std::string> advertised_types;  // from the publishers' adverts
        for (const auto& n : nodes) {
            names.insert(n.topics.begin(), n.topics.end());
            for (const auto& p : n.publications) {
                names.insert(p.topic);
                if (!p.type.empty()) {
                    advertised_types.emplace(p.topic, p.type);
                }
            }
        }
        for (const auto& [id, cl] : clients_) {
            for (const auto& [t, type] : cl->advertised) {
                names.insert(t);
            }
        }
        json topics = json::array();
        json types = json::array();
        for (const auto& t : names) {
            if (topic_visible(t)) {
                topics.push_back(rosbridge_name(t));
                const auto type = topic_types_.find(t);
                const auto advertised = advertised_types.find(t);
                types.push_back(type != topic_types_.end()             ? type->second
                                : advertised != advertised_types.end() ? advertised->second
                                                                       : std::string());
            }
        }
        values["topics"] = std::move(topics);
        values["types"] = std::move(types);
    } else if (what == "services") {
        std::set<std::string> names;
        for (const auto& n : nodes) {
            names.insert(n.services.begin(), n.services.end());
        }
        json services = json::array();
        for (const char* r : rosapi_services) {
            services.push_back(r);
        }
        for (const auto& s : names) {
            if (services_.allows(s)) {
                services.push_back(rosbridge_name(s));
            }
        }
        values["services"] = std::move(services);
    } else if (what == "nodes") {
        std::set<std::string> names;
        for (const auto& n : nodes) {
            names.insert(rosbridge_name(n.name));
        }
        values["nodes"] = json(std::vector<std::string>(names.begin(), names.end()));
    } else if (what == "node_details") {
        const std::string name = meshy_name(op.rosapi_arg);
        std::set<std::string> subscribing, services, publishing;
        for (const auto& n : nodes) {
            if (n.name != name) {
                continue;
            }
            for (const auto& t : n.topics) {
                if (topic_visible(t)) {
                    subscribing.insert(rosbridge_name(t));
                }
            }
            for (const auto& s : n.services) {
                if (services_.allows(s)) {
                    services.insert(rosbridge_name(s));
                }
            }
            for (const auto& p : n.publications) {
                if (topic_visible(p.topic)) {
                    publishing.insert(rosbridge_name(p.topic));
                }
            }
            if (n.is_self) {
                for (const auto& [id, cl] : clients_) {
                    for (const auto& [t, type] : cl->advertised) {
                        if (topic_visible(t)) {
                            publishing.insert(rosbridge_name(t));
                        }
                    }
                }
            }
        }
        values["subscribing"] = json(std::vector<std::string>(subscribing.begin(), subscribing.end()));
        values["publishing"] = json(std::vector<std::string>(publishing.begin(), publishing.end()));
        values["services"] = json(std::vector<std::string>(services.begin(), services.end()));
    } else if (what == "topic_type") {
        const std::string t = meshy_name(op.rosapi_arg);
        const auto type = topic_types_.find(t);
        values["type"] = type == topic_types_.end() || !topic_visible(t) ? std::string() : type->second;
    } else if (what == "service_type") {
        const std::string s = meshy_name(op.rosapi_arg);
        const auto type = service_types_.find(s);
        values["type"] = type == service_types_.end() || !services_.allows(s) ? std::string() : type->second;
    } else if (what == "publishers") {
        const std::string t = meshy_name(op.rosapi_arg);
        json publishers = json::array();
        if (topic_visible(t)) {
            std::set<std::string> names;
            for (const auto& n : node_.nodes()) {
                for (const auto& p : n.publications) {
                    if (p.topic == t && !n.is_self) {
                        names.insert(rosbridge_name(n.name));
                    }
                }
            }
            for (const auto& [id, cl] : clients_) {
                if (cl->advertised.count(t)) {
                    names.insert(rosbridge_name(node_.name()));
                    break;
                }
            }
            publishers = json(std::vector<std::string>(names.begin(), names.end()));
        }
        values["publishers"] = std::move(publishers);
    } else {
        return false;
    }
    json response = {{"op", "service_response"}, {"service", op.name}, {"values", values}, {"result", true}};
    if (!op.id.empty()) {
        response["id"] = op.id;
    }
    c.session->send(dump(response));
    return true;
}

void BridgeServer::advertise_service(Client& c, const Op& op) {
    if (!services_.allows(op.name)) {
        status(c, "error", "not allowed: providing '" + op.name + "' (--services-glob)", op.id);
        return;
    }
    const std::string service = meshy_name(op.name);
    const auto it = provided_.find(service);
    if (it != provided_.end() && it->second != c.session->id()) {
        status(c, "error", "service '" + op.name + "' is already provided by another bridge client", op.id);
        return;
    }
    if (!op.type.empty()) {
        service_types_[service] = op.type;
    }
    provided_[service] = c.session->id();
    c.services.insert(service);
    const std::string client_name = op.name;
    node_.add_service_raw(
        service, [this, alive = alive_, service, client_name](const RawMessage& m) -> asio::awaitable<RawPayload> {
            if (!*alive) {
                throw std::runtime_error("the bridge stopped");
            }
            const auto p = provided_.find(service);
            Client* c = p == provided_.end() ? nullptr : find_client(p->second);
            if (!c) {
                throw std::runtime_error("the bridge client providing the service is gone");
            }
            const std::string call_id = "meshy_bridge:" + std::to_string(++next_call_id_);
            json op = {{"op", "call_service"},
                       {"id", call_id},
                       {"service", client_name},
                       {"args", payload_to_json(m.codec, m.payload, false)}};
            auto pending = std::make_shared<PendingCall>(executor_);
            pending->timer.expires_after(options_.service_timeout);
            c->incoming[call_id] = pending;
            const std::uint64_t client_id = c->session->id();
            c->session->send(dump(op));
            std::error_code ec;
            co_await pending->timer.async_wait(asio::redirect_error(asio::use_awaitable, ec));
            if (*alive) {
                if (Client* cl = find_client(client_id)) {
                    cl->incoming.erase(call_id);
                }
            }
            if (!pending->done) {
                throw std::runtime_error("no service_response from the bridge client within " +
                                         std::to_string(options_.service_timeout.count()) + " ms");
            }
            if (!pending->ok) {
                throw std::runtime_error(pending->error);
            }
            co_return RawPayload{CodecId::msgpack, std::move(pending->reply)};
        });
}

void BridgeServer::remove_provided_service(const std::string& service) {
    if (provided_.erase(service) && !stopped_) {
        node_.remove_service(service);
    }
}

void BridgeServer::service_response(Client& c, Op&& op) {
    const auto it = c.incoming.find(op.id);
    if (it == c.incoming.end()) {
        status(c, "warning", "service_response for an unknown call id '" + op.id + "'", op.id);
        return;
    }
    auto call = it->second;
    c.incoming.erase(it);
    call->done = true;
    call->ok = op.result;
    call->reply = std::move(op.payload);
    call->error = op.error_text;
    call->timer.cancel();
}

}  // namespace meshy::cli::bridge
