// NodeImpl's static peers and the adverts it exchanges over links (wire::Adverts): a node that
// dials a static peer sends its own advert and asks for every advert the peer knows, then hears
// of changes; it applies what it hears through the same path as discovery (on_peer_up), where
// what a third node relays never overrides a first-hand advert (AdvertExchange).
#include <cstdlib>
#include <string_view>
#include <utility>

#include "meshy/log.hpp"
#include "node/node_impl.hpp"
#include "topology/identity.hpp"

namespace meshy::detail {
namespace {

void send_all(Link& link, wire::Adverts adverts) {
    for (auto& frame : split_adverts(std::move(adverts))) {
        auto buffer = std::make_shared<Buffer>();
        wire::encode_adverts(*buffer, frame);
        link.send(std::move(buffer), SendMode::control);
    }
}

}  // namespace

void NodeImpl::make_static_peers() {
    auto endpoints = static_peer_endpoints(options_.peers);
    const char* forced = std::getenv("MESHY_DISCOVERY");
    if (endpoints.empty() &&
        (forced ? std::string_view(forced) == "static" : options_.discovery == DiscoveryMode::static_peers)) {
        log(LogLevel::info, "static discovery without static peers: only nodes that list this one will find it");
    }
    if (endpoints.empty()) {
        return;
    }
    std::weak_ptr<NodeImpl> weak = shared_from_this();
    static_peers_ = std::make_unique<StaticPeers>(
        exec_, std::move(endpoints),
        [weak](Connection::Socket socket, bool is_unix) -> std::shared_ptr<Connection> {
            auto self = weak.lock();
            if (!self) {
                return nullptr;
            }
            return std::make_shared<Connection>(std::move(socket), true, is_unix, self->connection_config({}), self);
        },
        [weak]() -> std::shared_ptr<void> { return weak.lock(); });
}

void NodeImpl::static_link_ready(const std::shared_ptr<Connection>& conn) {
    if (!static_peers_ || !static_peers_->endpoint_of(conn.get())) {
        return;
    }
    wire::Adverts hello;
    hello.subscribe = true;
    {
        std::lock_guard lock(mutex_);
        hello.adverts.push_back(advert_to_fields(self_advert_));
    }
    send_all(*conn, std::move(hello));
}

void NodeImpl::on_adverts(const std::shared_ptr<Connection>& conn, const wire::FrameView& frame) {
    wire::Adverts adverts;
    if (!wire::decode_adverts(frame.body, adverts)) {
        conn->close("malformed adverts frame from " + conn->peer().name);
        return;
    }
    asio::post(strand_, [self = shared_from_this(), conn, adverts = std::move(adverts)]() mutable {
        self->apply_adverts(conn, std::move(adverts));
    });
}

void NodeImpl::apply_adverts(const std::shared_ptr<Connection>& conn, wire::Adverts adverts) {
    if (!running() || !conn->open()) {
        return;
    }
    const std::string& from = conn->peer().id;
    Advert self;
    {
        std::lock_guard lock(mutex_);
        self = self_advert_;
    }
    const auto socket_dirs = expected_socket_dirs(self);
    const auto endpoint = static_peers_ ? static_peers_->endpoint_of(conn.get()) : std::nullopt;
    // Where this node sees the sender: its own advert's address when it gave none, and that of the
    // nodes it relays without one (they listen on its host, reached over loopback there).
    const std::string seen_at = tcp_remote_address(conn->remote());
    for (const auto& fields : adverts.adverts) {
        Advert advert;
        std::string why;
        if (!advert_from_fields(fields, advert, &why)) {
            conn->close("malformed advert from " + conn->peer().name + ": " + why);
            return;
        }
        if (advert.id == id_ || advert.domain != domain_) {
            continue;
        }
        std::string note;
        if (const auto refused = check_peer_advert(advert, self, socket_dirs, note); !refused.empty()) {
            log(LogLevel::debug,
                "ignoring the advert of " + advert.name + " from " + conn->peer().name + ": " + refused);
            continue;
        }
        const bool own = advert.id == from;
        if (own && endpoint && endpoint->is_unix) {
            advert.unix_path = endpoint->path;  // the path this node was configured to dial
        }
        if (advert.tcp_port != 0 && advert.tcp_address.empty()) {
            advert.tcp_address = seen_at;
        }
        if (exchange_.accept(advert.id, from, conn.get())) {
            on_peer_up(advert);
        }
    }
    for (const auto& id : adverts.gone) {
        if (id != from && exchange_.gone(id, from)) {
            on_peer_down(id);
        }
    }
    if (adverts.subscribe) {
        exchange_.subscribe(conn);
        wire::Adverts known;
        known.adverts.push_back(advert_to_fields(self));
        auto others = AdvertExchange::all(*peers_.view());
        known.adverts.insert(known.adverts.end(), std::make_move_iterator(others.begin()),
                             std::make_move_iterator(others.end()));
        send_all(*conn, std::move(known));
    }
}

void NodeImpl::push_adverts() {
    auto subscribers = exchange_.subscribers();
    if (subscribers.empty()) {
        return;
    }
    auto changes = exchange_.changes(*peers_.view());
    if (changes.adverts.empty() && changes.gone.empty()) {
        return;
    }
    for (const auto& link : subscribers) {
        send_all(*link, changes);
    }
}

void NodeImpl::push_own_advert(const Advert& self) {
    std::vector<std::shared_ptr<Link>> targets = exchange_.subscribers();
    if (static_peers_) {
        for (auto& conn : static_peers_->connections()) {
            targets.push_back(std::move(conn));
        }
    }
    if (targets.empty()) {
        return;
    }
    wire::Adverts update;
    update.adverts.push_back(advert_to_fields(self));
    for (const auto& link : targets) {
        send_all(*link, update);
    }
}

void NodeImpl::exchange_link_closed(const std::shared_ptr<Connection>& conn) {
    if (static_peers_) {
        static_peers_->on_closed(conn.get());
    }
    auto ids = exchange_.closed(conn.get());
    if (ids.empty()) {
        return;
    }
    // What was learned over this link only is forgotten with it; a peer whose own link is up
    // stays until that link ends (on_peer_down), and a static peer's link is redialed at once.
    asio::post(strand_, [self = shared_from_this(), ids = std::move(ids)] {
        for (const auto& id : ids) {
            self->on_peer_down(id);
        }
    });
}

}  // namespace meshy::detail
