// bench/peer_compare, raw sockets: the hardware limit. Length-prefixed frames on a Unix socketpair or
// a TCP connection over loopback, written in batches (stream) or echoed one at a time (ping-pong).
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <sys/socket.h>
#include <sys/uio.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstdint>
#include <cstring>
#include <memory>
#include <vector>

#include "common.hpp"

namespace peer_compare {
namespace {

void tune(int fd, bool tcp) {
    const int size = static_cast<int>(socket_buffer);
    ::setsockopt(fd, SOL_SOCKET, SO_SNDBUF, &size, sizeof size);
    ::setsockopt(fd, SOL_SOCKET, SO_RCVBUF, &size, sizeof size);
    if (tcp) {
        const int one = 1;
        ::setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
    }
}

}  // namespace

SocketPair connect_pair(bool tcp) {
    SocketPair p;
    if (!tcp) {
        int fds[2];
        if (::socketpair(AF_UNIX, SOCK_STREAM, 0, fds) != 0) {
            die("socketpair");
        }
        p.parent = fds[0];
        p.child = fds[1];
    } else {
        const int listener = ::socket(AF_INET, SOCK_STREAM, 0);
        sockaddr_in addr{};
        addr.sin_family = AF_INET;
        addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
        socklen_t len = sizeof addr;
        if (::bind(listener, reinterpret_cast<sockaddr*>(&addr), sizeof addr) != 0 || ::listen(listener, 1) != 0 ||
            ::getsockname(listener, reinterpret_cast<sockaddr*>(&addr), &len) != 0) {
            die("tcp listen");
        }
        p.parent = ::socket(AF_INET, SOCK_STREAM, 0);
        tune(p.parent, true);
        if (::connect(p.parent, reinterpret_cast<sockaddr*>(&addr), sizeof addr) != 0) {
            die("tcp connect");
        }
        p.child = ::accept(listener, nullptr, nullptr);
        ::close(listener);
    }
    tune(p.parent, tcp);
    tune(p.child, tcp);
    return p;
}

namespace {

bool write_all(int fd, const iovec* iov, int count) {
    std::vector<iovec> v(iov, iov + count);
    std::size_t at = 0;
    while (at < v.size()) {
        const auto n = ::writev(fd, v.data() + at, static_cast<int>(std::min<std::size_t>(v.size() - at, 1024)));
        if (n < 0) {
            if (errno == EINTR) {
                continue;
            }
            return false;
        }
        auto left = static_cast<std::size_t>(n);
        while (at < v.size() && left >= v[at].iov_len) {
            left -= v[at].iov_len;
            ++at;
        }
        if (at < v.size()) {
            v[at].iov_base = static_cast<char*>(v[at].iov_base) + left;
            v[at].iov_len -= left;
        }
    }
    return true;
}

/// A receive buffer for frames; the body of a large read lands at page offset 512 (faster copies).
class FrameReader {
public:
    explicit FrameReader(std::size_t capacity) : storage_(capacity + 4096 + 512) {
        base_ = storage_.data() + (512 - reinterpret_cast<std::uintptr_t>(storage_.data()) % 4096 + 4096) % 4096;
        capacity_ = capacity;
    }
    /// Calls `on_frame(span)` for each complete frame; @returns false on EOF/error or time out.
    template <class F>
    bool pump(int fd, F&& on_frame) {
        for (;;) {
            if (end_ - begin_ >= 4) {
                std::uint32_t len = 0;
                std::memcpy(&len, base_ + begin_, 4);
                if (end_ - begin_ >= 4 + len) {
                    on_frame(base_ + begin_ + 4, len);
                    begin_ += 4 + len;
                    return true;
                }
                if (begin_ + 4 + len > capacity_) {
                    std::memmove(base_, base_ + begin_, end_ - begin_);
                    end_ -= begin_;
                    begin_ = 0;
                }
            }
            if (begin_ == end_) {
                begin_ = end_ = 0;
            }
            const auto n = ::read(fd, base_ + end_, capacity_ - end_);
            if (n <= 0) {
                if (n < 0 && errno == EINTR) {
                    continue;
                }
                return false;
            }
            end_ += static_cast<std::size_t>(n);
        }
    }

private:
    std::vector<std::uint8_t> storage_;
    std::uint8_t* base_;
    std::size_t capacity_;
    std::size_t begin_ = 0, end_ = 0;
};

/// raw: length-prefixed frames on a socket, echoed by the child until EOF.
class RawPingPong final : public PingPongSession {
public:
    RawPingPong(bool tcp, std::size_t size, std::size_t serve_count)
        : pair_(connect_pair(tcp)),
          reader_(size + 4 + 64 * 1024),
          frame_(size + 4, 0x5a),
          child_([this, size, serve_count] { serve(size, serve_count); }) {
        ::close(pair_.child);
        parent_only_fds.push_back(pair_.parent);
        const auto len = static_cast<std::uint32_t>(size);
        std::memcpy(frame_.data(), &len, 4);
        std::vector<double> ignored;
        round_trips(warm_up, warm_up, ignored);
    }
    ~RawPingPong() {
        forget_parent_fd(pair_.parent);
        ::close(pair_.parent);  // the child reads EOF and exits; child_ reaps it
    }
    RawPingPong(const RawPingPong&) = delete;
    RawPingPong& operator=(const RawPingPong&) = delete;

    /// Takes `count` round trips and records all but the first `skip` in `rtt_ns`.
    void round_trips(std::size_t count, std::size_t skip, std::vector<double>& rtt_ns) override {
        timed_round_trips(budget_, count, skip, rtt_ns, [this] {
            const iovec v{frame_.data(), frame_.size()};
            return write_all(pair_.parent, &v, 1) &&
                   reader_.pump(pair_.parent, [](const std::uint8_t*, std::uint32_t) {});
        });
    }

private:
    // No receive timeout on the echo's socket: it would arm a timer on every blocking read of the
    // baseline. EOF ends the loop, and a parent that dies closes its end too.
    void serve(std::size_t size, std::size_t serve_count) {
        ::close(pair_.parent);
        FrameReader reader(size + 4 + 64 * 1024);
        std::vector<std::uint8_t> echo(size + 4);
        const auto deadline = Clock::now() + serve_limit;
        for (std::size_t i = 0; i < serve_count && Clock::now() < deadline; ++i) {
            std::uint32_t got = 0;
            if (!reader.pump(pair_.child, [&](const std::uint8_t* data, std::uint32_t len) {
                    std::memcpy(echo.data(), &len, 4);
                    std::memcpy(echo.data() + 4, data, len);
                    got = len + 4;
                })) {
                break;
            }
            const iovec v{echo.data(), got};
            if (!write_all(pair_.child, &v, 1)) {
                break;
            }
        }
    }

    SocketPair pair_;
    FrameReader reader_;
    std::vector<std::uint8_t> frame_;
    Budget budget_;
    ServerChild child_;
};

}  // namespace

StreamResult raw_stream(bool tcp, std::size_t size, std::size_t count) {
    const SocketPair p = connect_pair(tcp);
    auto r = with_child<StreamResult>(
        [&] {
            ::close(p.parent);
            FrameReader reader(std::max<std::size_t>(size + 4, 256 * 1024) * 2);
            StreamResult res;
            Clock::time_point first{};
            std::size_t got = 0;
            const auto deadline = Clock::now() + time_limit;
            while (got < count && Clock::now() < deadline) {
                if (!reader.pump(p.child, [&](const std::uint8_t*, std::uint32_t) {})) {
                    break;
                }
                if (got++ == 0) {
                    first = Clock::now();
                }
            }
            res.count = static_cast<double>(got);
            res.seconds = ns_since(first) / 1e9;
            return res;
        },
        [&] {
            ::close(p.child);
            const Payload payload(size, 0x5a);
            // Batches of up to 64 frames, or as many bytes as the socket buffer, per writev.
            std::vector<iovec> iov;
            const std::uint32_t len = static_cast<std::uint32_t>(size);
            std::size_t sent = 0;
            const auto deadline = Clock::now() + time_limit;
            while (sent < count && Clock::now() < deadline) {
                iov.clear();
                std::size_t bytes = 0;
                while (sent < count && iov.size() < 128 && bytes < socket_buffer) {
                    iov.push_back({const_cast<std::uint32_t*>(&len), 4});
                    if (size) {
                        iov.push_back({const_cast<std::uint8_t*>(payload.data()), size});
                    }
                    bytes += 4 + size;
                    ++sent;
                }
                if (!write_all(p.parent, iov.data(), static_cast<int>(iov.size()))) {
                    break;
                }
            }
            ::close(p.parent);
        });
    return r;
}

std::unique_ptr<PingPongSession> raw_pingpong(bool tcp, std::size_t size, std::size_t serve_count) {
    return std::make_unique<RawPingPong>(tcp, size, serve_count);
}

}  // namespace peer_compare
