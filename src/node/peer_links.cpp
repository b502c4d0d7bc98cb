#include "node/peer_links.hpp"

#include <unistd.h>

#include <algorithm>
#include <asio/co_spawn.hpp>
#include <asio/detached.hpp>
#include <asio/experimental/as_tuple.hpp>
#include <asio/experimental/awaitable_operators.hpp>
#include <asio/ip/tcp.hpp>
#include <asio/local/stream_protocol.hpp>
#include <asio/post.hpp>
#include <asio/steady_timer.hpp>
#include <asio/use_awaitable.hpp>

#include "meshy/log.hpp"

namespace meshy::detail {
namespace {

using namespace asio::experimental::awaitable_operators;
constexpr auto use_tuple = asio::experimental::as_tuple(asio::use_awaitable);
constexpr auto connect_timeout = std::chrono::seconds(2);
constexpr int max_redial_ms = 2000;

}  // namespace

PeerLinks::PeerLinks(asio::any_io_executor executor,
                     const NodeOptions& options,
                     std::string host,
                     Adopt adopt,
                     Unreachable lost,
                     KeepAlive keep_alive)
    : exec_(executor),
      strand_(asio::make_strand(executor)),
      options_(options),
      host_(std::move(host)),
      adopt_(std::move(adopt)),
      lost_(std::move(lost)),
      keep_alive_(std::move(keep_alive)) {
}

std::shared_ptr<PeerLink> PeerLinks::obtain(const std::string& id) {
    std::lock_guard lock(mutex_);
    auto& slot = links_[id];
    if (!slot) {
        slot = std::make_shared<PeerLink>(id);
    }
    return slot;
}

std::shared_ptr<PeerLink> PeerLinks::find(std::string_view id) const {
    std::lock_guard lock(mutex_);
    const auto it = links_.find(std::string(id));
    return it != links_.end() ? it->second : nullptr;
}

void PeerLinks::advert_changed(const Advert& advert) {
    auto link = obtain(advert.id);
    std::lock_guard lock(link->mutex);
    link->name = advert.name;
    link->advert = advert;
    link->leaving = false;
    link->redial_ms = 0;
}

void PeerLinks::withdrawn(std::string_view id) {
    std::shared_ptr<PeerLink> link;
    {
        std::lock_guard lock(mutex_);
        const auto it = links_.find(std::string(id));
        if (it == links_.end()) {
            return;
        }
        link = it->second;
        links_.erase(it);
    }
    std::shared_ptr<Connection> conn;
    {
        std::lock_guard lock(link->mutex);
        link->advert.reset();
        expire_parked_locked(*link, true, "it withdrew its advertisement");
        conn = std::move(link->dialed);
        link->set_ready(nullptr);
    }
    if (conn) {
        conn->close("peer withdrew its advertisement");
    }
}

bool PeerLinks::deliver_locked(PeerLink& link, const SharedFrame& frame, const Connection** used, bool urgent) {
    if (link.ready) {
        const bool full = link.ready->send(frame, urgent ? SendMode::request : SendMode::message);
        if (used) {
            *used = link.ready.get();
        }
        return full;
    }
    if (link.parked.size() >= options_.outbox_capacity) {
        link.parked.pop_front();
        if (const auto report = link.parked_drops.drop()) {
            log(LogLevel::warn, "dropped " + std::to_string(report) + " message(s) to " + link.name +
                                    " while connecting: the outbox was full");
        }
    }
    link.parked.push_back({frame, std::chrono::steady_clock::now()});
    dial_locked(link);
    return false;
}

void PeerLinks::dial_locked(PeerLink& link) {
    if (!link.advert || link.leaving || link.dial_state != PeerLink::Dial::none || link.dialed) {
        return;
    }
    auto hold = keep_alive_ ? keep_alive_() : nullptr;
    if (keep_alive_ && !hold) {
        return;  // the node is going away
    }
    link.dial_state = PeerLink::Dial::under_way;
    asio::co_spawn(strand_, dial(link.shared_from_this(), *link.advert, std::move(hold)), asio::detached);
}

asio::awaitable<bool> connect_bounded(asio::any_io_executor executor,
                                      asio::generic::stream_protocol::endpoint ep,
                                      std::optional<Connection::Socket>& connected,
                                      std::string& last_error) {
    Connection::Socket socket(executor);
    asio::steady_timer timer(executor, connect_timeout);
    auto result = co_await (socket.async_connect(ep, use_tuple) || timer.async_wait(use_tuple));
    if (result.index() == 0 && !std::get<0>(std::get<0>(result))) {
        // A connect that had to wait (TCP) leaves EPOLLOUT in the descriptor's edge-triggered
        // registration for good (Asio never takes it out): the node's thread would then wake
        // for nothing each time a full send buffer drains. A fresh registration asks for reads.
        std::error_code ec;
        const auto fd = socket.release(ec);
        if (ec) {
            connected.emplace(std::move(socket));  // as it is, then
            co_return true;
        }
        Connection::Socket fresh(executor);
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
}

// GCC 12 takes the coroutine frame's own operator delete for a mismatch with the new that
// allocated it (a false positive of -Wmismatched-new-delete on this coroutine's inlined frame).
#if defined(__GNUC__) && !defined(__clang__)
#    pragma GCC diagnostic push
#    pragma GCC diagnostic ignored "-Wmismatched-new-delete"
#endif
asio::awaitable<void> PeerLinks::dial(std::shared_ptr<PeerLink> link, Advert advert, std::shared_ptr<void> hold) {
    (void)hold;  // kept by this frame until the dial ends
    // co_spawn may start this inline on the strand, where the caller holds the link's lock: the
    // first step leaves that call.
    co_await asio::post(strand_, asio::use_awaitable);
    std::optional<Connection::Socket> connected;
    bool is_unix = false;
    std::string last_error;

    const bool same_host = advert.host == host_;
    if (same_host && !advert.unix_path.empty() && ::access(advert.unix_path.c_str(), F_OK) == 0) {
        is_unix = co_await connect_bounded(exec_, asio::local::stream_protocol::endpoint(advert.unix_path), connected,
                                           last_error);
    }
    if (!connected && advert.tcp_port != 0) {
        std::error_code ec;
        auto address = asio::ip::make_address(advert.tcp_address.empty() ? "127.0.0.1" : advert.tcp_address, ec);
        if (!ec) {
            co_await connect_bounded(exec_, asio::ip::tcp::endpoint(address, advert.tcp_port), connected, last_error);
        } else {
            last_error = "bad address '" + advert.tcp_address + "'";
        }
    }

    std::shared_ptr<Connection> conn;
    if (connected) {
        conn = adopt_(std::move(*connected), is_unix, link->id);
    }
    bool unreachable = false;
    bool running = false;
    {
        std::lock_guard l(mutex_);  // before the link's: the order every path takes
        running = running_;
    }
    {
        std::lock_guard lock(link->mutex);
        link->dial_state = PeerLink::Dial::none;
        if (!conn) {
            log(LogLevel::debug, "cannot reach " + advert.name + " (" + link->id + "): " + last_error);
            unreachable = true;
            expire_parked_locked(*link, false, "unreachable: " + last_error);
            if (running) {
                schedule_redial_locked(*link);
            }
        } else {
            if (running && link->advert) {
                link->dialed = conn;
            } else {
                conn->close("not needed any more");
            }
        }
    }
    if (unreachable && lost_) {
        lost_(link->id, "cannot reach " + advert.name + ": " + last_error);
    }
}
#if defined(__GNUC__) && !defined(__clang__)
#    pragma GCC diagnostic pop
#endif

void PeerLinks::schedule_redial_locked(PeerLink& link) {
    if (!link.advert || link.leaving || link.parked.empty()) {
        return;  // links are dialed for what waits for them; nothing waits
    }
    link.redial_ms = link.redial_ms == 0 ? 100 : std::min(link.redial_ms * 2, max_redial_ms);
    const auto delay = std::chrono::milliseconds(link.redial_ms);
    auto hold = keep_alive_ ? keep_alive_() : nullptr;
    if (keep_alive_ && !hold) {
        return;  // the node is going away
    }
    link.dial_state = PeerLink::Dial::waiting_to_redial;  // until the timer fires
    asio::co_spawn(
        strand_,
        [this, target = link.shared_from_this(), delay, hold = std::move(hold)]() -> asio::awaitable<void> {
            asio::steady_timer timer(strand_, delay);
            co_await timer.async_wait(use_tuple);
            {
                std::lock_guard l(mutex_);
                if (!running_) {
                    co_return;
                }
            }
            std::lock_guard lock(target->mutex);
            target->dial_state = PeerLink::Dial::none;
            if (!target->parked.empty()) {
                dial_locked(*target);
            }
        },
        asio::detached);
}

void PeerLinks::expire_parked_locked(PeerLink& link, bool all, const std::string& why) {
    const auto oldest_allowed = std::chrono::steady_clock::now() - options_.outbox_ttl;
    std::size_t lost = 0;
    while (!link.parked.empty() && (all || link.parked.front().at < oldest_allowed)) {
        link.parked.pop_front();
        ++lost;
    }
    lost += link.parked_drops.take();
    if (lost != 0) {
        log(LogLevel::warn, "dropped " + std::to_string(lost) + " message(s) to " + link.name + " (" + why + ")");
    }
}

void PeerLinks::on_ready(const std::shared_ptr<Connection>& conn) {
    auto link = find(conn->peer().id);
    if (!link) {
        return;
    }
    std::lock_guard lock(link->mutex);
    if (link->dialed != conn) {
        return;
    }
    link->set_ready(conn);
    link->redial_ms = 0;
    const auto oldest_allowed = std::chrono::steady_clock::now() - options_.outbox_ttl;
    for (auto& p : link->parked) {
        if (p.at >= oldest_allowed) {
            conn->send(std::move(p.frame), SendMode::message);
        }
    }
    link->parked.clear();
    if (const auto report = link->parked_drops.take()) {
        log(LogLevel::warn, "dropped " + std::to_string(report) + " message(s) to " + link->name +
                                " while connecting: the outbox was full");
    }
}

void PeerLinks::on_goodbye(const std::shared_ptr<Connection>& conn) {
    auto link = find(conn->peer().id);
    if (!link) {
        return;
    }
    std::lock_guard lock(link->mutex);
    if (link->dialed == conn) {
        link->leaving = true;
        expire_parked_locked(*link, true, "it said goodbye");
    }
}

void PeerLinks::add_inbound(const std::shared_ptr<Connection>& conn) {
    std::lock_guard lock(mutex_);
    inbound_.insert(conn);
}

std::vector<std::shared_ptr<Connection>> PeerLinks::inbound() const {
    std::lock_guard lock(mutex_);
    return {inbound_.begin(), inbound_.end()};
}

std::size_t PeerLinks::inbound_count() const {
    std::lock_guard lock(mutex_);
    return inbound_.size();
}

void PeerLinks::on_closed(const std::shared_ptr<Connection>& conn, const std::string& reason) {
    if (!conn->outbound()) {
        std::lock_guard lock(mutex_);
        inbound_.erase(conn);
        return;
    }
    std::shared_ptr<PeerLink> link;
    {
        std::lock_guard lock(mutex_);
        for (const auto& [id, l] : links_) {
            // The handshake may not have named the peer: find the link by its connection.
            std::lock_guard ll(l->mutex);
            if (l->dialed == conn) {
                link = l;
                break;
            }
        }
    }
    if (!link) {
        return;
    }
    bool lost = false;
    {
        std::lock_guard lock(link->mutex);
        const bool was_ready = link->ready == conn;
        link->dialed.reset();
        link->set_ready(nullptr);
        if (link->leaving || !link->advert) {
            expire_parked_locked(*link, true, "it left");
        } else if (!link->parked.empty()) {
            if (was_ready) {
                dial_locked(*link);  // at once: the peer may have restarted or the network recovered
            } else {
                schedule_redial_locked(*link);  // refused before its handshake: back off
            }
        }
        lost = true;
    }
    if (lost && lost_) {
        lost_(link->id, "connection lost: " + reason);
    }
}

bool PeerLinks::running() const {
    std::lock_guard lock(mutex_);
    return running_;
}

bool PeerLinks::flushing() const {
    std::lock_guard lock(mutex_);
    for (const auto& [id, link] : links_) {
        std::lock_guard ll(link->mutex);
        // A link waiting to be redialed failed its last dial: nothing is on its way there.
        const bool connecting = link->dial_state == PeerLink::Dial::under_way || link->dialed;
        if (!link->parked.empty() && link->advert && !link->leaving && connecting) {
            return true;
        }
    }
    return false;
}

std::vector<std::shared_ptr<Connection>> PeerLinks::stop() {
    std::vector<std::shared_ptr<Connection>> conns;
    std::lock_guard lock(mutex_);
    running_ = false;
    for (auto& [id, link] : links_) {
        std::lock_guard ll(link->mutex);
        if (link->dialed) {
            conns.push_back(link->dialed);
        }
        if (const std::size_t lost = link->parked.size() + link->parked_drops.take()) {
            log(LogLevel::warn, "dropped " + std::to_string(lost) + " message(s) to " + link->name +
                                    ": the node stopped before the link was up");
        }
        link->parked.clear();
        link->advert.reset();
    }
    conns.insert(conns.end(), inbound_.begin(), inbound_.end());
    links_.clear();
    inbound_.clear();
    return conns;
}

}  // namespace meshy::detail
