// bench/peer_compare, the Asio floor: what any service call built on Asio costs at least (raw's
// frames, each end a coroutine on Asio's reactor). A ping-pong peer only.
#include <netinet/in.h>
#include <sys/socket.h>
#include <unistd.h>

#include <algorithm>
#include <asio/co_spawn.hpp>
#include <asio/detached.hpp>
#include <asio/experimental/as_tuple.hpp>
#include <asio/generic/stream_protocol.hpp>
#include <asio/io_context.hpp>
#include <asio/use_awaitable.hpp>
#include <asio/write.hpp>
#include <cerrno>
#include <cstdint>
#include <cstring>
#include <memory>
#include <optional>
#include <vector>

#include "common.hpp"

namespace peer_compare {
namespace {

/// Asio: the floor under any service call built on Asio, meshy's included. The same frames as raw;
/// both ends run a coroutine on an io_context of one thread that sends with a plain send() (as
/// meshy's direct writes do) and waits for the answer with co_await async_read_some (as meshy's
/// reader does). No framing layer, no lock, no lookup: what is left is Asio's reactor and the
/// coroutine's resumption.
class AsioPingPong final : public PingPongSession {
public:
    using Socket = asio::generic::stream_protocol::socket;

    AsioPingPong(bool tcp, std::size_t size, std::size_t serve_count)
        : pair_(connect_pair(tcp)), tcp_(tcp), frame_(size + 4, 0x5a), in_(size + 4), child_([this, serve_count] {
              serve(serve_count);
          }) {
        ::close(pair_.child);
        parent_only_fds.push_back(pair_.parent);
        const auto len = static_cast<std::uint32_t>(size);
        std::memcpy(frame_.data(), &len, 4);
        socket_.emplace(io_, protocol(tcp), pair_.parent);
        std::vector<double> ignored;
        round_trips(warm_up, warm_up, ignored);
    }
    ~AsioPingPong() {
        forget_parent_fd(pair_.parent);
        socket_.reset();  // closes pair_.parent: the child reads EOF and exits; child_ reaps it
    }
    AsioPingPong(const AsioPingPong&) = delete;
    AsioPingPong& operator=(const AsioPingPong&) = delete;

    /// Takes `count` round trips and records all but the first `skip` in `rtt_ns`.
    void round_trips(std::size_t count, std::size_t skip, std::vector<double>& rtt_ns) override {
        auto loop = [&]() -> asio::awaitable<void> {
            const auto start = Clock::now();
            for (std::size_t i = 0; i < count && budget_.left(start); ++i) {
                const auto t0 = Clock::now();
                if (!co_await send_all(*socket_, frame_) || !co_await read_frame(*socket_, in_)) {
                    budget_.fail();
                    break;
                }
                if (i >= skip) {
                    rtt_ns.push_back(ns_since(t0));
                }
            }
            budget_.charge(start);
        };
        io_.restart();
        asio::co_spawn(io_, loop(), asio::detached);
        io_.run();
    }

private:
    static asio::generic::stream_protocol protocol(bool tcp) {
        return tcp ? asio::generic::stream_protocol(AF_INET, IPPROTO_TCP) : asio::generic::stream_protocol(AF_UNIX, 0);
    }
    /// One frame: a plain send(), and Asio's async_write for what did not fit.
    static asio::awaitable<bool> send_all(Socket& s, const std::vector<std::uint8_t>& frame) {
        const auto n = ::send(s.native_handle(), frame.data(), frame.size(), MSG_NOSIGNAL);
        if (n < 0 && errno != EAGAIN && errno != EWOULDBLOCK) {
            co_return false;
        }
        const auto sent = static_cast<std::size_t>(std::max<ssize_t>(n, 0));
        if (sent < frame.size()) {
            auto [ec, unused] = co_await asio::async_write(s, asio::buffer(frame.data() + sent, frame.size() - sent),
                                                           asio::experimental::as_tuple(asio::use_awaitable));
            co_return !ec;
        }
        co_return true;
    }
    /// One whole frame into `in` (sized for it; one frame is in flight at a time). False at EOF.
    static asio::awaitable<bool> read_frame(Socket& s, std::vector<std::uint8_t>& in) {
        std::size_t have = 0;
        for (;;) {
            if (have >= 4) {
                std::uint32_t len = 0;
                std::memcpy(&len, in.data(), 4);
                if (have >= 4 + std::size_t{len}) {
                    co_return true;
                }
            }
            auto [ec, n] = co_await s.async_read_some(asio::buffer(in.data() + have, in.size() - have),
                                                      asio::experimental::as_tuple(asio::use_awaitable));
            if (ec) {
                co_return false;
            }
            have += n;
        }
    }
    void serve(std::size_t serve_count) {
        ::close(pair_.parent);
        asio::io_context io(1);
        Socket s(io, protocol(tcp_), pair_.child);
        std::vector<std::uint8_t> in(in_.size());
        auto loop = [&]() -> asio::awaitable<void> {
            const auto deadline = Clock::now() + serve_limit;
            for (std::size_t i = 0; i < serve_count && Clock::now() < deadline; ++i) {
                if (!co_await read_frame(s, in) || !co_await send_all(s, in)) {
                    break;  // EOF: the parent is done (or gone)
                }
            }
        };
        asio::co_spawn(io, loop(), asio::detached);
        io.run();
    }

    SocketPair pair_;
    bool tcp_;
    std::vector<std::uint8_t> frame_, in_;
    asio::io_context io_{1};
    std::optional<Socket> socket_;
    Budget budget_;
    ServerChild child_;
};

}  // namespace

std::unique_ptr<PingPongSession> asio_pingpong(bool tcp, std::size_t size, std::size_t serve_count) {
    return std::make_unique<AsioPingPong>(tcp, size, serve_count);
}

}  // namespace peer_compare
