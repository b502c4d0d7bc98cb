// Peer comparison: the same workloads, in one run, over raw sockets (the hardware limit), ZeroMQ
// and meshy, on Unix sockets and TCP loopback, at 0 B, 1 kB and 1 MB. Prints Markdown tables with
// each ratio, pinned to one CPU (both processes, like `taskset -c 0`) and unpinned, the median of
// --runs runs (default 3).
//
// Workloads:
//  - stream: the sender sends N messages as fast as the transport takes them, losslessly; the
//    receiver counts them and times first to last. raw: length-prefixed frames written in batches;
//    ZeroMQ: XPUB (ZMQ_XPUB_NODROP, so a full queue blocks instead of dropping) to SUB; meshy: a
//    topic with OutboxFull::wait, raw codec.
//  - ping-pong: one message there and back, K times; p50 and p99 of the round trip. raw: frames on
//    a socket; Asio floor: the same frames, each end a coroutine on Asio's reactor (what any
//    Asio-based call costs at least); ZeroMQ: REQ/REP; meshy: a service call. The peers run
//    interleaved: each one's session is set up (and warmed up) once, then the K round trips are
//    taken in slices (up to 20), round-robin: raw, Asio, ZeroMQ, meshy, raw, ...; the first round
//    trip of a slice is not recorded. Why: the host (a shared VM) drifts in speed by up to 2x over seconds, so peers
//    measured one after the other saw different hosts (meshy/raw of a single run ranged from 0.72
//    to 2.13); taking turns puts them under the same conditions.
// The receiver is a fork()ed child; every loop is bounded in count and time. All traffic stays on
// loopback and Unix sockets.
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <sched.h>
#include <signal.h>
#include <sys/socket.h>
#include <sys/uio.h>
#include <sys/wait.h>
#include <unistd.h>
#include <zmq.h>

#include <algorithm>
#include <asio/co_spawn.hpp>
#include <asio/detached.hpp>
#include <asio/experimental/as_tuple.hpp>
#include <asio/generic/stream_protocol.hpp>
#include <asio/io_context.hpp>
#include <asio/use_awaitable.hpp>
#include <asio/use_future.hpp>
#include <asio/write.hpp>
#include <atomic>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <functional>
#include <map>
#include <meshy/codecs/raw.hpp>
#include <meshy/log.hpp>
#include <meshy/node.hpp>
#include <optional>
#include <string>
#include <thread>
#include <vector>

#include "bench_stats.hpp"

namespace {

using namespace meshy_bench;
using Payload = std::vector<std::uint8_t>;

constexpr auto time_limit = std::chrono::seconds(20);                       // per workload, either side
const std::size_t socket_buffer = meshy::NodeOptions{}.socket_buffer_size;  // raw sockets get meshy's default

[[noreturn]] void die(const std::string& what) {
    std::fprintf(stderr, "peer_compare: %s: %s\n", what.c_str(), std::strerror(errno));
    std::exit(1);
}

// --- child processes and their results --------------------------------------------------------------

struct StreamResult {
    double count = 0;    // messages received
    double seconds = 0;  // first to last
};

/// Runs `child` in a fork()ed process; it writes its result through a pipe. `parent` runs here.
/// @returns the child's result (count 0 when it failed).
template <class Result>
Result with_child(const std::function<Result()>& child, const std::function<void()>& parent) {
    int fds[2];
    if (::pipe(fds) != 0) {
        die("pipe");
    }
    std::fflush(nullptr);
    const pid_t pid = ::fork();
    if (pid < 0) {
        die("fork");
    }
    if (pid == 0) {
        ::close(fds[0]);
        const Result r = child();
        if (::write(fds[1], &r, sizeof r) != static_cast<ssize_t>(sizeof r)) {
            std::_Exit(2);
        }
        std::_Exit(0);
    }
    ::close(fds[1]);
    parent();
    Result r{};
    if (::read(fds[0], &r, sizeof r) != static_cast<ssize_t>(sizeof r)) {
        r = Result{};
    }
    ::close(fds[0]);
    int status = 0;
    ::waitpid(pid, &status, 0);
    return r;
}

// --- raw sockets -------------------------------------------------------------------------------------

struct SocketPair {
    int parent = -1, child = -1;
};

void tune(int fd, bool tcp) {
    const int size = static_cast<int>(socket_buffer);
    ::setsockopt(fd, SOL_SOCKET, SO_SNDBUF, &size, sizeof size);
    ::setsockopt(fd, SOL_SOCKET, SO_RCVBUF, &size, sizeof size);
    if (tcp) {
        const int one = 1;
        ::setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
    }
}

/// A connected pair: a Unix socketpair, or a TCP connection over 127.0.0.1.
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

// --- ZeroMQ ------------------------------------------------------------------------------------------

/// The ipc socket file of this (bound) process; libzmq leaves it behind, so the binder removes it.
std::string zmq_ipc_path() {
    return "/tmp/meshy-peer-compare-" + std::to_string(::getpid());
}

std::string zmq_endpoint(bool tcp) {
    return tcp ? std::string("tcp://127.0.0.1:*") : "ipc://" + zmq_ipc_path();
}

/// Closes a bound socket and its context, and removes the ipc socket file if there is one.
void zmq_close_bound(void* ctx, void* socket, bool tcp) {
    zmq_close(socket);
    zmq_ctx_term(ctx);
    if (!tcp) {
        ::unlink(zmq_ipc_path().c_str());
    }
}

/// The endpoint a bound socket got, sent to the other process through a pipe.
std::string last_endpoint(void* socket) {
    char text[256] = {};
    std::size_t len = sizeof text;
    zmq_getsockopt(socket, ZMQ_LAST_ENDPOINT, text, &len);
    return text;
}

struct EndpointPipe {
    int fds[2];
    EndpointPipe() {
        if (::pipe(fds) != 0) {
            die("pipe");
        }
    }
    void put(const std::string& text) {
        char buf[256] = {};
        std::snprintf(buf, sizeof buf, "%s", text.c_str());
        if (::write(fds[1], buf, sizeof buf) != static_cast<ssize_t>(sizeof buf)) {
            die("endpoint pipe");
        }
    }
    std::string get() {
        char buf[256] = {};
        if (::read(fds[0], buf, sizeof buf) != static_cast<ssize_t>(sizeof buf)) {
            die("endpoint pipe");
        }
        return buf;
    }
    /// Waits up to `limit` for a message, or for EOF once no process holds the write end.
    void wait(std::chrono::milliseconds limit) {
        const auto deadline = Clock::now() + limit;
        pollfd p{fds[0], POLLIN, 0};
        for (;;) {
            const auto left = std::chrono::duration_cast<std::chrono::milliseconds>(deadline - Clock::now());
            if (left.count() <= 0 || ::poll(&p, 1, static_cast<int>(left.count())) >= 0 || errno != EINTR) {
                return;
            }
        }
    }
    /// Each process closes the end it does not use, so that the other's exit is EOF, not a hang.
    void close_reader() { close_end(0); }
    void close_writer() { close_end(1); }
    ~EndpointPipe() {
        close_end(0);
        close_end(1);
    }

private:
    void close_end(int i) {
        if (fds[i] >= 0) {
            ::close(fds[i]);
            fds[i] = -1;
        }
    }
};

/// Driven as libzmq's perf/local_thr and remote_thr drive it: the receiver binds and the sender
/// connects and sends without pause, each with a context of one I/O thread; the receiver times the
/// first to the last message. PUB/SUB made lossless (XPUB with ZMQ_XPUB_NODROP: a send at the
/// high-water mark fails with EAGAIN instead of dropping, and the sender waits for room), as
/// meshy's stream with OutboxFull::wait is. (With the sender bound and the receiver connected,
/// libzmq 4.3.4 lost 0-17% of 200,000 messages over ipc:// here, with no EAGAIN at the sender.)
StreamResult zmq_stream(bool tcp, std::size_t size, std::size_t count) {
    EndpointPipe endpoint;
    return with_child<StreamResult>(
        [&] {
            endpoint.close_reader();
            void* ctx = zmq_ctx_new();
            void* sub = zmq_socket(ctx, ZMQ_SUB);
            const int timeout_ms = 2000;
            zmq_setsockopt(sub, ZMQ_RCVTIMEO, &timeout_ms, sizeof timeout_ms);
            zmq_setsockopt(sub, ZMQ_SUBSCRIBE, "", 0);
            if (zmq_bind(sub, zmq_endpoint(tcp).c_str()) != 0) {
                die("zmq_bind");
            }
            endpoint.put(last_endpoint(sub));
            StreamResult res;
            Clock::time_point first{}, last{};
            std::size_t got = 0;
            zmq_msg_t msg;
            zmq_msg_init(&msg);
            const auto deadline = Clock::now() + time_limit;
            while (got < count && Clock::now() < deadline) {
                if (zmq_msg_recv(&msg, sub, 0) < 0) {
                    if (errno == EINTR) {
                        continue;
                    }
                    break;
                }
                last = Clock::now();
                if (got++ == 0) {
                    first = last;
                }
            }
            zmq_msg_close(&msg);
            // First to last message: a session that lost messages must not count the receive
            // timeout that ended it.
            res.count = static_cast<double>(got);
            res.seconds = std::chrono::duration<double>(last - first).count();
            zmq_close_bound(ctx, sub, tcp);
            return res;
        },
        [&] {
            void* ctx = zmq_ctx_new();
            void* pub = zmq_socket(ctx, ZMQ_XPUB);
            const int one = 1, linger = 1000, timeout_ms = 5000;
            zmq_setsockopt(pub, ZMQ_XPUB_NODROP, &one, sizeof one);
            zmq_setsockopt(pub, ZMQ_LINGER, &linger, sizeof linger);
            zmq_setsockopt(pub, ZMQ_RCVTIMEO, &timeout_ms, sizeof timeout_ms);
            endpoint.close_writer();
            zmq_connect(pub, endpoint.get().c_str());
            char subscription[16];
            zmq_recv(pub, subscription, sizeof subscription, 0);  // the subscriber is in
            const Payload payload(size, 0x5a);
            const auto deadline = Clock::now() + time_limit;
            bool failed = false;
            for (std::size_t i = 0; i < count && !failed && Clock::now() < deadline; ++i) {
                while (zmq_send(pub, payload.data(), size, 0) < 0) {
                    if (errno == EAGAIN && Clock::now() < deadline) {
                        zmq_pollitem_t item{pub, 0, ZMQ_POLLOUT, 0};
                        zmq_poll(&item, 1, 100);
                    } else if (errno != EINTR) {
                        failed = true;
                        break;
                    }
                }
            }
            // Closed once the receiver is done (its exit closes the pipe), as remote_thr's user
            // would: closing at once lost the last messages over ipc:// (up to 8%), linger or not.
            endpoint.wait(time_limit);
            zmq_close(pub);
            zmq_ctx_term(ctx);
        });
}

// --- meshy -------------------------------------------------------------------------------------------

int domain_counter = 0;
std::string only;            // --only raw|asio|zmq|meshy: run just that peer (for profiling)
std::string only_test;       // --test stream|pingpong: run just that workload (for profiling)
std::string only_transport;  // --transport unix|tcp: run just that transport (for profiling)

bool wanted(const char* peer) {
    return only.empty() || only == peer;
}

meshy::NodeOptions meshy_options(bool tcp, const std::string& name, const std::string& domain) {
    meshy::NodeOptions o;
    o.name = name;
    o.domain_id = domain;
    o.allow_unix = !tcp;
    o.allow_tcp = tcp;
    o.listen_host = "127.0.0.1";
    o.discovery = meshy::DiscoveryMode::local;
    o.codec = meshy::CodecId::raw;
    o.outbox_full = meshy::OutboxFull::wait;
    return o;
}

meshy::NodeOptions meshy_options(bool tcp, const std::string& name, const std::string& domain, std::size_t size) {
    auto o = meshy_options(tcp, name, domain);
    if (size >= 64 * 1024) {
        o.outbox_capacity = 64;  // a full default outbox of 1 MB messages would be 1 GB
    }
    return o;
}

StreamResult meshy_stream(bool tcp, std::size_t size, std::size_t count) {
    const std::string domain = "peer-compare-" + std::to_string(::getpid()) + "-" + std::to_string(++domain_counter);
    EndpointPipe ready;
    return with_child<StreamResult>(
        [&] {
            StreamResult res;
            std::atomic<std::size_t> got{0};
            Clock::time_point first{}, last{};
            {
                meshy::Node node(meshy_options(tcp, "receiver", domain));
                node.listen_raw("stream", [&](const meshy::RawMessage&) {
                    // Like the other receivers: the clock is read at the first and the last message
                    // (and every 1024th, in case some never come).
                    const auto n = got.load(std::memory_order_relaxed) + 1;
                    if (n == 1) {
                        first = Clock::now();
                    }
                    if (n == count || (n & 1023) == 0) {
                        last = Clock::now();
                    }
                    got.store(n, std::memory_order_release);
                });
                ready.put("ok");
                const auto deadline = Clock::now() + time_limit;
                std::size_t seen = 0;
                auto quiet_since = Clock::now();
                while (got.load(std::memory_order_acquire) < count && Clock::now() < deadline) {
                    std::this_thread::sleep_for(std::chrono::milliseconds(1));
                    const auto now = got.load(std::memory_order_acquire);
                    if (now != seen) {
                        seen = now;
                        quiet_since = Clock::now();
                    } else if (seen > 0 && Clock::now() - quiet_since > std::chrono::seconds(2)) {
                        break;  // the sender is done and some were lost
                    }
                }
                node.stop();
            }
            res.count = static_cast<double>(got.load());
            res.seconds = std::chrono::duration<double>(last - first).count();
            return res;
        },
        [&] {
            ready.get();
            meshy::Node node(meshy_options(tcp, "sender", domain, size));
            node.wait_for_listener_blocking("stream", std::chrono::seconds(10));
            const Payload payload(size, 0x5a);
            const auto deadline = Clock::now() + time_limit;
            for (std::size_t i = 0; i < count; ++i) {
                node.send_blocking<meshy::RawCodec>("stream", payload);
                if ((i & 255) == 0 && Clock::now() > deadline) {
                    break;
                }
            }
            // Let the outbox drain before the node closes (stop() sends what is queued first).
            node.stop();
        });
}

// --- ping-pong sessions ------------------------------------------------------------------------------
//
// A session is one peer's ping-pong, set up once (its server child fork()ed, connected, warmed
// up) and then asked for round trips slice by slice, taking turns with the other peers' sessions.

constexpr std::size_t warm_up = 10;  // round trips per session at set-up, not recorded
// A server child serves until told to stop; this bounds it if never told: set-up plus each of the
// three peers' time_limit of round trips.
constexpr auto serve_limit = 4 * time_limit;

/// The parent's ends of the live sessions' sockets and pipes. A child fork()ed later closes its
/// copies, so that when the parent closes one, the child at the other end sees EOF at once.
std::vector<int> parent_only_fds;

void forget_parent_fd(int fd) {
    std::erase(parent_only_fds, fd);
}

/// A session's server: `serve` runs in a fork()ed child; the destructor reaps it.
class ServerChild {
public:
    explicit ServerChild(const std::function<void()>& serve) {
        std::fflush(nullptr);
        pid_ = ::fork();
        if (pid_ < 0) {
            die("fork");
        }
        if (pid_ == 0) {
            for (const int fd : parent_only_fds) {
                ::close(fd);
            }
            serve();
            std::_Exit(0);
        }
    }
    ~ServerChild() {
        int status = 0;
        ::waitpid(pid_, &status, 0);
    }
    ServerChild(const ServerChild&) = delete;
    ServerChild& operator=(const ServerChild&) = delete;

    /// For a child that can no longer be told to stop (its session failed).
    void kill() { ::kill(pid_, SIGKILL); }

private:
    pid_t pid_ = -1;
};

/// A peer's round trips stop after time_limit of its own time in all, slices added up (as when the
/// peers ran one after the other), or at its first failure.
class Budget {
public:
    bool left(Clock::time_point slice_start) const { return ok_ && spent_ + (Clock::now() - slice_start) < time_limit; }
    void charge(Clock::time_point slice_start) { spent_ += Clock::now() - slice_start; }
    void fail() { ok_ = false; }
    bool ok() const { return ok_; }

private:
    Clock::duration spent_{};
    bool ok_ = true;
};

/// Takes `count` round trips, each one call of `once` (false: it failed), within `budget`, and
/// records all but the first `skip` in `rtt_ns`.
template <class RoundTrip>
void timed_round_trips(
    Budget& budget, std::size_t count, std::size_t skip, std::vector<double>& rtt_ns, const RoundTrip& once) {
    const auto start = Clock::now();
    for (std::size_t i = 0; i < count && budget.left(start); ++i) {
        const auto t0 = Clock::now();
        if (!once()) {
            budget.fail();
            break;
        }
        if (i >= skip) {
            rtt_ns.push_back(ns_since(t0));
        }
    }
    budget.charge(start);
}

/// raw: length-prefixed frames on a socket, echoed by the child until EOF.
class RawPingPong {
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
    void round_trips(std::size_t count, std::size_t skip, std::vector<double>& rtt_ns) {
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

/// ZeroMQ: REQ/REP; the REP child echoes until a two-part message (every payload is one part, so no
/// --sizes can be mistaken for it).
class ZmqPingPong {
public:
    ZmqPingPong(bool tcp, std::size_t size, std::size_t serve_count)
        : payload_(size, 0x5a),
          child_([this, tcp, serve_count, parent = ::getpid()] { serve(tcp, serve_count, parent); }) {
        endpoint_.close_writer();  // a child that fails before it binds is EOF, not a hang
        ctx_ = zmq_ctx_new();
        req_ = zmq_socket(ctx_, ZMQ_REQ);
        const int timeout_ms = 5000, linger = 0;
        zmq_setsockopt(req_, ZMQ_RCVTIMEO, &timeout_ms, sizeof timeout_ms);
        zmq_setsockopt(req_, ZMQ_LINGER, &linger, sizeof linger);
        zmq_connect(req_, endpoint_.get().c_str());
        zmq_msg_init(&reply_);
        std::vector<double> ignored;
        round_trips(warm_up, warm_up, ignored);
    }
    ~ZmqPingPong() {
        const int linger = 1000;  // time to deliver the stop message
        zmq_setsockopt(req_, ZMQ_LINGER, &linger, sizeof linger);
        const bool told = budget_.ok() && zmq_send(req_, "bye", 3, ZMQ_SNDMORE) == 3 && zmq_send(req_, "", 0, 0) == 0;
        zmq_msg_close(&reply_);
        zmq_close(req_);
        zmq_ctx_term(ctx_);
        if (!told) {
            child_.kill();  // a REQ socket whose reply timed out cannot send again
        }
    }
    ZmqPingPong(const ZmqPingPong&) = delete;
    ZmqPingPong& operator=(const ZmqPingPong&) = delete;

    /// Takes `count` round trips and records all but the first `skip` in `rtt_ns`.
    void round_trips(std::size_t count, std::size_t skip, std::vector<double>& rtt_ns) {
        timed_round_trips(budget_, count, skip, rtt_ns, [this] {
            return zmq_send(req_, payload_.data(), payload_.size(), 0) >= 0 && zmq_msg_recv(&reply_, req_, 0) >= 0;
        });
    }

private:
    void serve(bool tcp, std::size_t serve_count, pid_t parent) {
        void* ctx = zmq_ctx_new();
        void* rep = zmq_socket(ctx, ZMQ_REP);
        const int timeout_ms = 2000;
        zmq_setsockopt(rep, ZMQ_RCVTIMEO, &timeout_ms, sizeof timeout_ms);
        if (zmq_bind(rep, zmq_endpoint(tcp).c_str()) != 0) {
            die("zmq_bind");
        }
        endpoint_.put(last_endpoint(rep));
        zmq_msg_t msg;
        zmq_msg_init(&msg);
        const auto deadline = Clock::now() + serve_limit;
        for (std::size_t i = 0; i <= serve_count && Clock::now() < deadline;) {  // and the stop message
            if (zmq_msg_recv(&msg, rep, 0) < 0) {
                // The receive timeout is a safety: idle while the other peers take their
                // slices, the child goes on as long as its parent lives.
                if ((errno == EAGAIN || errno == EINTR) && ::getppid() == parent) {
                    continue;
                }
                break;
            }
            if (zmq_msg_more(&msg) || zmq_msg_send(&msg, rep, 0) < 0) {
                break;  // the stop message, or the parent is gone
            }
            ++i;
        }
        zmq_msg_close(&msg);
        zmq_close_bound(ctx, rep, tcp);
    }

    EndpointPipe endpoint_;
    Payload payload_;
    void* ctx_ = nullptr;
    void* req_ = nullptr;
    zmq_msg_t reply_;
    Budget budget_;
    ServerChild child_;
};

/// Asio: the floor under any service call built on Asio, meshy's included. The same frames as raw;
/// both ends run a coroutine on an io_context of one thread that sends with a plain send() (as
/// meshy's direct writes do) and waits for the answer with co_await async_read_some (as meshy's
/// reader does). No framing layer, no lock, no lookup: what is left is Asio's reactor and the
/// coroutine's resumption.
class AsioPingPong {
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
    void round_trips(std::size_t count, std::size_t skip, std::vector<double>& rtt_ns) {
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

/// meshy: a service call to an echo provider in the child, which serves until the done pipe says so
/// (or closes, when the parent is gone).
class MeshyPingPong {
public:
    MeshyPingPong(bool tcp, std::size_t size)
        : domain_("peer-compare-" + std::to_string(::getpid()) + "-" + std::to_string(++domain_counter)),
          payload_(size, 0x5a),
          child_([this, tcp] { serve(tcp); }) {
        ready_.close_writer();
        done_.close_reader();
        parent_only_fds.push_back(done_.fds[1]);
        ready_.get();
        node_.emplace(meshy_options(tcp, "caller", domain_));
        try {
            node_->wait_for_service_provider_blocking("echo", std::chrono::seconds(10));
        } catch (const std::exception& e) {
            std::fprintf(stderr, "peer_compare: no echo provider: %s\n", e.what());
            budget_.fail();
        }
        std::vector<double> ignored;
        round_trips(warm_up, warm_up, ignored);
    }
    ~MeshyPingPong() {
        if (node_) {
            node_->stop();
            node_.reset();
        }
        forget_parent_fd(done_.fds[1]);
        done_.put("done");  // the provider stops; child_ reaps it
    }
    MeshyPingPong(const MeshyPingPong&) = delete;
    MeshyPingPong& operator=(const MeshyPingPong&) = delete;

    /// Takes `count` round trips and records all but the first `skip` in `rtt_ns`. The calls run as
    /// a coroutine on the node's executor (meshy's own API; the _blocking form adds a hand-over to
    /// the calling thread and back per call), one coroutine per slice.
    void round_trips(std::size_t count, std::size_t skip, std::vector<double>& rtt_ns) {
        const meshy::CallOptions call{.timeout = std::chrono::seconds(5)};
        auto loop = [&]() -> asio::awaitable<void> {
            const auto start = Clock::now();
            for (std::size_t i = 0; i < count && budget_.left(start); ++i) {
                const auto t0 = Clock::now();
                meshy::Buffer request;
                request.append(payload_.data(), payload_.size());
                meshy::RawPayload reply;
                try {
                    reply = co_await node_->call_raw("echo", meshy::CodecId::raw, std::move(request), call);
                } catch (const std::exception& e) {
                    std::fprintf(stderr, "peer_compare: echo failed: %s\n", e.what());
                    budget_.fail();
                    break;
                }
                if (reply.bytes.size() != payload_.size()) {
                    std::fprintf(stderr, "peer_compare: echo replied %zu bytes\n", reply.bytes.size());
                    budget_.fail();
                    break;
                }
                if (i >= skip) {
                    rtt_ns.push_back(ns_since(t0));
                }
            }
            budget_.charge(start);
        };
        asio::co_spawn(node_->get_executor(), loop(), asio::use_future).get();
    }

private:
    void serve(bool tcp) {
        ready_.close_reader();
        done_.close_writer();  // so that a parent that dies is EOF here
        meshy::Node node(meshy_options(tcp, "provider", domain_));
        node.add_service_raw("echo", [](const meshy::RawMessage& m) {
            meshy::RawPayload reply;
            reply.codec = m.codec;
            reply.bytes.append(m.payload.data(), m.payload.size());
            return reply;
        });
        ready_.put("ok");
        done_.wait(serve_limit);
        node.stop();
    }

    std::string domain_;
    Payload payload_;
    EndpointPipe ready_, done_;
    Budget budget_;
    ServerChild child_;
    std::optional<meshy::Node> node_;  // the caller, started once the provider is
};

struct PingPongResult {
    Latency raw, asio, zmq, meshy;
};

/// The ping-pong of every wanted peer, interleaved: all sessions are set up, then the K round trips
/// are taken in slices, round-robin (raw, Asio, ZeroMQ, meshy, raw, ...). The host's speed drifts by up
/// to 2x over seconds: peers measured one after the other saw different hosts, peers taking turns
/// see the same one.
PingPongResult run_pingpong(bool tcp, std::size_t size, std::size_t k) {
    // At least 15 round trips per slice (300 at 1 MB make 20 slices of 15).
    const std::size_t slices = std::clamp<std::size_t>(k / 15, 1, 20);
    const std::size_t serve_count = warm_up + k + slices;
    // meshy's session is set up last: it starts a node (threads that take locks) in this process,
    // and a child fork()ed after that could inherit a lock held. ZeroMQ's I/O threads are harmless
    // to the meshy child, which does not use ZeroMQ.
    std::optional<RawPingPong> raw;
    std::optional<AsioPingPong> bare;
    std::optional<ZmqPingPong> zmq;
    std::optional<MeshyPingPong> mesh;
    if (wanted("raw")) {
        raw.emplace(tcp, size, serve_count);
    }
    if (wanted("asio")) {
        bare.emplace(tcp, size, serve_count);
    }
    if (wanted("zmq")) {
        zmq.emplace(tcp, size, serve_count);
    }
    if (wanted("meshy")) {
        mesh.emplace(tcp, size);
    }
    std::vector<double> raw_rtt, asio_rtt, zmq_rtt, mesh_rtt;
    for (auto* v : {&raw_rtt, &asio_rtt, &zmq_rtt, &mesh_rtt}) {
        v->reserve(k);
    }
    for (std::size_t s = 0; s < slices; ++s) {
        const std::size_t n = k * (s + 1) / slices - k * s / slices;
        // One round trip more than recorded: the first of a slice finds the caches used by another
        // peer.
        if (raw) {
            raw->round_trips(n + 1, 1, raw_rtt);
        }
        if (bare) {
            bare->round_trips(n + 1, 1, asio_rtt);
        }
        if (zmq) {
            zmq->round_trips(n + 1, 1, zmq_rtt);
        }
        if (mesh) {
            mesh->round_trips(n + 1, 1, mesh_rtt);
        }
    }
    mesh.reset();  // torn down in the reverse order, each child reaped
    zmq.reset();
    bare.reset();
    raw.reset();
    return {summarize(raw_rtt), summarize(asio_rtt), summarize(zmq_rtt), summarize(mesh_rtt)};
}

// --- the comparison ----------------------------------------------------------------------------------

std::size_t stream_count(std::size_t size, double scale) {
    const double base = size >= 1024 * 1024 ? 2000 : size >= 1024 ? 400000 : 1000000;
    return static_cast<std::size_t>(std::max(1.0, base * scale));
}
/// The stream workloads run interleaved like the ping-pongs: each peer's N messages are sent in
/// this many sessions of N/slices, round-robin (raw, ZeroMQ, meshy, raw, ...), so that the host's
/// drift over a run falls on all peers alike (one peer's single session came out 20-30% off
/// beside the others' in one run). At least 400 messages per slice.
std::size_t stream_slices(std::size_t count) {
    return std::clamp<std::size_t>(count / 400, 1, 5);
}

/// One peer's stream slices added up: its messages over its time, first to last of each slice.
struct StreamTotals {
    double counted = 0, seconds = 0, received = 0;
    void add(const StreamResult& r) {
        received += r.count;
        if (r.seconds > 0) {
            counted += r.count - 1;  // the first message of a slice starts its clock
            seconds += r.seconds;
        }
    }
    double rate() const { return seconds > 0 ? counted / seconds : 0; }
};

std::size_t pingpong_count(std::size_t size, double scale) {
    const double base = size >= 1024 * 1024 ? 300 : 10000;
    return static_cast<std::size_t>(std::max(1.0, base * scale));
}

void compare(bool pinned, int runs, double scale, const std::vector<std::size_t>& sizes) {
    cpu_set_t original;
    sched_getaffinity(0, sizeof original, &original);
    if (pinned) {
        cpu_set_t one;
        CPU_ZERO(&one);
        CPU_SET(0, &one);
        sched_setaffinity(0, sizeof one, &one);  // inherited by the fork()ed peer: like taskset -c 0
    }
    std::printf("\n### %s, median of %d runs\n\n", pinned ? "Pinned (both processes on CPU 0)" : "Unpinned", runs);
    std::printf(
        "| transport | size | raw msg/s | ZeroMQ msg/s | meshy msg/s | meshy MB/s | raw MB/s | meshy/ZeroMQ | "
        "meshy/raw | meshy received/sent |\n|---|---|---|---|---|---|---|---|---|---|\n");
    std::vector<std::string> latency_rows;
    for (const bool tcp : {false, true}) {
        if (!only_transport.empty() && only_transport != (tcp ? "tcp" : "unix")) {
            continue;
        }
        for (const std::size_t size : sizes) {
            const std::size_t n = stream_count(size, scale);
            std::vector<double> raw, zmq, mesh, mesh_got, zmq_got;
            std::vector<double> raw_p50, raw_p99, asio_p50, asio_p99, zmq_p50, zmq_p99, mesh_p50, mesh_p99;
            for (int r = 0; r < runs; ++r) {
                const bool stream = only_test.empty() || only_test == "stream";
                const bool pingpong = only_test.empty() || only_test == "pingpong";
                StreamTotals a, b, c;
                const std::size_t slices = stream ? stream_slices(n) : 0;
                for (std::size_t s = 0; s < slices; ++s) {
                    const std::size_t part = n * (s + 1) / slices - n * s / slices;
                    if (wanted("raw")) {
                        a.add(raw_stream(tcp, size, part));
                    }
                    if (wanted("zmq")) {
                        b.add(zmq_stream(tcp, size, part));
                    }
                    if (wanted("meshy")) {
                        c.add(meshy_stream(tcp, size, part));
                    }
                }
                raw.push_back(a.rate());
                zmq.push_back(b.rate());
                mesh.push_back(c.rate());
                mesh_got.push_back(c.received);
                zmq_got.push_back(b.received);
                const auto p = pingpong ? run_pingpong(tcp, size, pingpong_count(size, scale)) : PingPongResult{};
                raw_p50.push_back(p.raw.p50_us);
                raw_p99.push_back(p.raw.p99_us);
                asio_p50.push_back(p.asio.p50_us);
                asio_p99.push_back(p.asio.p99_us);
                zmq_p50.push_back(p.zmq.p50_us);
                zmq_p99.push_back(p.zmq.p99_us);
                mesh_p50.push_back(p.meshy.p50_us);
                mesh_p99.push_back(p.meshy.p99_us);
            }
            const double mb = static_cast<double>(size) / 1e6;
            const double m_raw = median(raw), m_zmq = median(zmq), m_mesh = median(mesh);
            std::printf("| %s | %s | %.0f | %.0f | %.0f | %.1f | %.1f | %.2f | %.2f | %.0f/%zu |\n",
                        tcp ? "tcp" : "unix", size_text(size).c_str(), m_raw, m_zmq, m_mesh, m_mesh * mb, m_raw * mb,
                        m_zmq > 0 ? m_mesh / m_zmq : 0, m_raw > 0 ? m_mesh / m_raw : 0, median(mesh_got), n);
            if (wanted("zmq") && only_test != "pingpong" && median(zmq_got) < static_cast<double>(n)) {
                // Its rate counts what arrived; a loss would make the comparison unfair either way.
                std::fprintf(stderr, "peer_compare: ZeroMQ delivered %.0f of %zu messages (%s, %s)\n", median(zmq_got),
                             n, tcp ? "tcp" : "unix", size_text(size).c_str());
            }
            std::fflush(stdout);
            char row[512];
            const double rp50 = median(raw_p50), rp99 = median(raw_p99);
            std::snprintf(row, sizeof row,
                          "| %s | %s | %.1f / %.1f | %.1f / %.1f | %.1f / %.1f | %.1f / %.1f | %.2f | %.2f | %.2f |",
                          tcp ? "tcp" : "unix", size_text(size).c_str(), rp50, rp99, median(asio_p50), median(asio_p99),
                          median(zmq_p50), median(zmq_p99), median(mesh_p50), median(mesh_p99),
                          rp50 > 0 ? median(mesh_p50) / rp50 : 0, rp99 > 0 ? median(mesh_p99) / rp99 : 0,
                          rp50 > 0 ? median(asio_p50) / rp50 : 0);
            latency_rows.emplace_back(row);
        }
    }
    std::printf(
        "\nRound trip (ping-pong; meshy: service call), p50 / p99 in us:\n\n| transport | size | raw | Asio floor | "
        "ZeroMQ REQ/REP | meshy call | meshy/raw p50 | meshy/raw p99 | Asio floor/raw p50 |\n"
        "|---|---|---|---|---|---|---|---|---|\n");
    for (const auto& row : latency_rows) {
        std::printf("%s\n", row.c_str());
    }
    std::fflush(stdout);
    sched_setaffinity(0, sizeof original, &original);
}

}  // namespace

int main(int argc, char** argv) {
    int runs = 3;
    double scale = 1;
    std::string which = "both";
    std::vector<std::size_t> sizes{0, 1024, 1024 * 1024};
    for (int i = 1; i < argc; ++i) {
        const std::string a = argv[i];
        if (a == "--only" && i + 1 < argc) {
            only = argv[++i];
            continue;
        }
        if (a == "--test" && i + 1 < argc) {
            only_test = argv[++i];
            continue;
        }
        if (a == "--transport" && i + 1 < argc) {
            only_transport = argv[++i];
            continue;
        }
        if (a == "--runs" && i + 1 < argc) {
            runs = std::max(1, std::atoi(argv[++i]));
        } else if (a == "--scale" && i + 1 < argc) {
            scale = std::atof(argv[++i]);
        } else if (a == "--pinned") {
            which = "pinned";
        } else if (a == "--unpinned") {
            which = "unpinned";
        } else if (a == "--sizes" && i + 1 < argc) {
            sizes.clear();
            for (const char* p = argv[++i]; *p;) {
                char* end = nullptr;
                sizes.push_back(std::strtoull(p, &end, 10));
                p = *end ? end + 1 : end;
            }
        } else {
            std::fprintf(
                stderr,
                "usage: peer_compare [--runs N] [--scale F] [--pinned|--unpinned] [--sizes 0,1024,1048576]\n"
                "                    [--only raw|asio|zmq|meshy] [--test stream|pingpong] [--transport unix|tcp]\n");
            return 2;
        }
    }
    meshy::set_log_level(meshy::LogLevel::warn);
    int major = 0, minor = 0, patch = 0;
    zmq_version(&major, &minor, &patch);
    std::printf("peer_compare: raw sockets vs ZeroMQ %d.%d.%d vs meshy (and an Asio floor for calls); %u CPUs\n", major,
                minor, patch, std::thread::hardware_concurrency());
    if (which != "unpinned") {
        compare(true, runs, scale, sizes);
    }
    if (which != "pinned") {
        compare(false, runs, scale, sizes);
    }
    return 0;
}
