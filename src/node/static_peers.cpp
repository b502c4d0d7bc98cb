#include "node/static_peers.hpp"

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
#include <charconv>
#include <cstdlib>
#include <optional>

#include "meshy/error.hpp"
#include "meshy/log.hpp"
#include "node/peer_links.hpp"

namespace meshy::detail {
namespace {

using namespace asio::experimental::awaitable_operators;
constexpr auto use_tuple = asio::experimental::as_tuple(asio::use_awaitable);
// Backoff between attempts, as ZeroMQ's reconnect interval grows: quick at first (a peer started a
// moment later is joined at once), then at most every 2 s per peer.
constexpr int first_retry_ms = 100;
constexpr int max_retry_ms = 2000;
constexpr auto resolve_timeout = std::chrono::seconds(2);
// A link that closes is noticed at once (on_closed wakes its loop); this bounds the wait should
// that wake-up have come before the loop waited.
constexpr auto closed_check = std::chrono::seconds(1);

[[noreturn]] void bad(std::string_view text, const std::string& why) {
    throw Error(errc::invalid_argument,
                "static peer '" + std::string(text) + "': " + why + " (expected tcp/HOST:PORT or unix/PATH)");
}

}  // namespace

PeerEndpoint parse_peer_endpoint(std::string_view text) {
    PeerEndpoint ep;
    ep.text = std::string(text);
    if (text.starts_with("unix/")) {
        ep.is_unix = true;
        ep.path = std::string(text.substr(5));
        if (ep.path.empty() || ep.path.front() != '/') {
            bad(text, "the path must be absolute");
        }
        if (ep.path.size() >= 108) {  // sockaddr_un::sun_path
            bad(text, "the path is too long for a Unix socket");
        }
        return ep;
    }
    if (!text.starts_with("tcp/")) {
        bad(text, "unknown transport");
    }
    std::string_view rest = text.substr(4);
    const auto colon = rest.rfind(':');
    if (colon == std::string_view::npos || colon == 0) {
        bad(text, "no port");
    }
    std::string_view host = rest.substr(0, colon);
    const std::string_view port = rest.substr(colon + 1);
    if (host.front() == '[') {
        if (host.size() < 3 || host.back() != ']') {
            bad(text, "unterminated [IPv6 address]");
        }
        host = host.substr(1, host.size() - 2);
    } else if (host.find(':') != std::string_view::npos) {
        bad(text, "an IPv6 address must be written in brackets");
    }
    unsigned value = 0;
    const auto [end, ec] = std::from_chars(port.data(), port.data() + port.size(), value);
    if (ec != std::errc() || end != port.data() + port.size() || value == 0 || value > 65535) {
        bad(text, "the port must be 1 to 65535");
    }
    if (host.size() > 253) {
        bad(text, "the host name is too long");
    }
    ep.host = std::string(host);
    ep.port = static_cast<std::uint16_t>(value);
    return ep;
}

std::vector<PeerEndpoint> static_peer_endpoints(const std::vector<std::string>& configured) {
    std::vector<std::string> texts = configured;
    if (const char* env = std::getenv("MESHY_PEERS"); env && *env) {
        std::string_view all = env;
        while (!all.empty()) {
            const auto comma = all.find(',');
            std::string_view item = all.substr(0, comma);
            while (!item.empty() && item.front() == ' ') {
                item.remove_prefix(1);
            }
            while (!item.empty() && item.back() == ' ') {
                item.remove_suffix(1);
            }
            if (!item.empty()) {
                texts.emplace_back(item);
            }
            all = comma == std::string_view::npos ? std::string_view() : all.substr(comma + 1);
        }
    }
    std::vector<PeerEndpoint> out;
    for (const auto& text : texts) {
        auto ep = parse_peer_endpoint(text);
        if (std::none_of(out.begin(), out.end(), [&](const PeerEndpoint& e) { return e.text == ep.text; })) {
            out.push_back(std::move(ep));
        }
    }
    return out;
}

struct StaticPeers::Slot {
    Slot(asio::any_io_executor exec, PeerEndpoint e) : endpoint(std::move(e)), timer(std::move(exec)) {}
    PeerEndpoint endpoint;
    asio::steady_timer timer;          // the loop's waits; used on the strand only
    std::shared_ptr<Connection> conn;  // guarded by StaticPeers::mutex_
};

StaticPeers::StaticPeers(asio::any_io_executor executor,
                         std::vector<PeerEndpoint> endpoints,
                         Adopt adopt,
                         KeepAlive keep_alive)
    : exec_(executor),
      strand_(asio::make_strand(executor)),
      endpoints_(std::move(endpoints)),
      adopt_(std::move(adopt)),
      keep_alive_(std::move(keep_alive)) {
}

void StaticPeers::start() {
    std::lock_guard lock(mutex_);
    if (running_) {
        return;
    }
    running_ = true;
    for (const auto& ep : endpoints_) {
        auto hold = keep_alive_ ? keep_alive_() : nullptr;
        auto slot = std::make_shared<Slot>(strand_, ep);
        slots_.push_back(slot);
        asio::co_spawn(strand_, run(slot, std::move(hold)), asio::detached);
    }
}

bool StaticPeers::running() const {
    std::lock_guard lock(mutex_);
    return running_;
}

// GCC 12's false positive on coroutine frames (see PeerLinks::dial).
#if defined(__GNUC__) && !defined(__clang__)
#    pragma GCC diagnostic push
#    pragma GCC diagnostic ignored "-Wmismatched-new-delete"
#endif
asio::awaitable<void> StaticPeers::run(std::shared_ptr<Slot> slot, std::shared_ptr<void> hold) {
    (void)hold;  // kept by this frame until the loop ends
    const PeerEndpoint& ep = slot->endpoint;
    int retry_ms = 0;
    std::string last_reported;  // the failure last logged: one line per change, not per attempt
    while (running()) {
        std::optional<Connection::Socket> connected;
        std::string error;
        if (ep.is_unix) {
            co_await connect_bounded(exec_, asio::local::stream_protocol::endpoint(ep.path), connected, error);
        } else {
            std::error_code ec;
            auto address = asio::ip::make_address(ep.host, ec);
            if (ec) {
                asio::ip::tcp::resolver resolver(exec_);
                asio::steady_timer timer(exec_, resolve_timeout);
                auto result = co_await (resolver.async_resolve(ep.host, std::to_string(ep.port), use_tuple) ||
                                        timer.async_wait(use_tuple));
                if (result.index() == 0) {
                    auto& [rec, results] = std::get<0>(result);
                    if (!rec && !results.empty()) {
                        address = results.begin()->endpoint().address();
                        ec.clear();
                    } else {
                        error = "cannot resolve " + ep.host + ": " + (rec ? rec.message() : "no address");
                    }
                } else {
                    error = "cannot resolve " + ep.host + " within 2 s";
                }
            }
            if (!ec) {
                co_await connect_bounded(exec_, asio::ip::tcp::endpoint(address, ep.port), connected, error);
            }
        }
        bool handshaken = false;
        if (connected) {
            auto conn = adopt_(std::move(*connected), ep.is_unix);
            {
                std::lock_guard lock(mutex_);
                if (!running_) {
                    co_return;  // the socket closes with the unstarted connection
                }
                slot->conn = conn;
            }
            conn->start();
            if (!last_reported.empty()) {
                log(LogLevel::info, "static peer " + ep.text + " reached");
                last_reported.clear();
            }
            while (conn->open() && running()) {
                slot->timer.expires_after(closed_check);
                co_await slot->timer.async_wait(use_tuple);
            }
            handshaken = conn->handshaken();
            std::lock_guard lock(mutex_);
            slot->conn.reset();
        } else if (error != last_reported) {
            log(LogLevel::info, "static peer " + ep.text + " unreachable (" + error + "); retrying");
            last_reported = error;
        }
        // A link that was up is redialed at once (the peer may have restarted); failures back off.
        retry_ms = handshaken ? 0 : (retry_ms == 0 ? first_retry_ms : std::min(retry_ms * 2, max_retry_ms));
        if (retry_ms != 0 && running()) {
            slot->timer.expires_after(std::chrono::milliseconds(retry_ms));
            co_await slot->timer.async_wait(use_tuple);
        }
    }
}
#if defined(__GNUC__) && !defined(__clang__)
#    pragma GCC diagnostic pop
#endif

std::vector<std::shared_ptr<Connection>> StaticPeers::stop() {
    std::vector<std::shared_ptr<Connection>> conns;
    std::vector<std::shared_ptr<Slot>> slots;
    {
        std::lock_guard lock(mutex_);
        running_ = false;
        for (auto& slot : slots_) {
            if (slot->conn) {
                conns.push_back(slot->conn);
            }
        }
        slots = std::move(slots_);
    }
    for (auto& slot : slots) {
        asio::post(strand_, [slot] { slot->timer.cancel(); });
    }
    return conns;
}

std::optional<PeerEndpoint> StaticPeers::endpoint_of(const Connection* conn) const {
    std::lock_guard lock(mutex_);
    for (const auto& slot : slots_) {
        if (slot->conn.get() == conn) {
            return slot->endpoint;
        }
    }
    return std::nullopt;
}

void StaticPeers::on_closed(const Connection* conn) {
    std::lock_guard lock(mutex_);
    for (const auto& slot : slots_) {
        if (slot->conn.get() == conn) {
            asio::post(strand_, [slot] { slot->timer.cancel(); });
        }
    }
}

std::vector<std::shared_ptr<Connection>> StaticPeers::connections() const {
    std::vector<std::shared_ptr<Connection>> out;
    std::lock_guard lock(mutex_);
    for (const auto& slot : slots_) {
        if (slot->conn && slot->conn->open()) {
            out.push_back(slot->conn);
        }
    }
    return out;
}

}  // namespace meshy::detail
