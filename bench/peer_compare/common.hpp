// What the drivers of bench/peer_compare share: the fork()ed children that results come back from,
// the pipe that passes an endpoint or a go-ahead between processes, the ping-pong sessions' frame
// (a server child, a time budget, slices of round trips), and each peer's entry points. One peer's
// driver per file: raw.cpp, asio_floor.cpp, zmq.cpp, meshy.cpp; main.cpp runs the comparison.
#pragma once

#include <poll.h>
#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cerrno>
#include <chrono>
#include <cstddef>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <functional>
#include <memory>
#include <meshy/node.hpp>
#include <string>
#include <vector>

#include "bench_stats.hpp"

namespace peer_compare {

using namespace meshy_bench;
using Payload = std::vector<std::uint8_t>;

inline constexpr auto time_limit = std::chrono::seconds(20);                       // per workload, either side
inline const std::size_t socket_buffer = meshy::NodeOptions{}.socket_buffer_size;  // raw sockets get meshy's default

[[noreturn]] inline void die(const std::string& what) {
    std::fprintf(stderr, "peer_compare: %s: %s\n", what.c_str(), std::strerror(errno));
    std::exit(1);
}

// --- options ----------------------------------------------------------------------------------------

inline std::string only;            // --only raw|asio|zmq|meshy: run just that peer (for profiling)
inline std::string only_test;       // --test stream|pingpong: run just that workload (for profiling)
inline std::string only_transport;  // --transport unix|tcp: run just that transport (for profiling)

inline bool wanted(const char* peer) {
    return only.empty() || only == peer;
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

/// A pipe between the parent and a child: an endpoint (ZeroMQ) or a go-ahead (meshy) goes through it.
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

// --- ping-pong sessions ------------------------------------------------------------------------------
//
// A session is one peer's ping-pong, set up once (its server child fork()ed, connected, warmed
// up) and then asked for round trips slice by slice, taking turns with the other peers' sessions.

inline constexpr std::size_t warm_up = 10;  // round trips per session at set-up, not recorded
// A server child serves until told to stop; this bounds it if never told: set-up plus each of the
// three peers' time_limit of round trips.
inline constexpr auto serve_limit = 4 * time_limit;

/// The parent's ends of the live sessions' sockets and pipes. A child fork()ed later closes its
/// copies, so that when the parent closes one, the child at the other end sees EOF at once.
inline std::vector<int> parent_only_fds;

inline void forget_parent_fd(int fd) {
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

/// One peer's ping-pong session, set up (and warmed up) by its driver's factory; run_pingpong()
/// takes its round trips slice by slice. Destroying it stops and reaps its server child.
class PingPongSession {
public:
    virtual ~PingPongSession() = default;
    /// Takes `count` round trips and records all but the first `skip` in `rtt_ns`.
    virtual void round_trips(std::size_t count, std::size_t skip, std::vector<double>& rtt_ns) = 0;
};

// --- the peers --------------------------------------------------------------------------------------

/// A connected pair: a Unix socketpair, or a TCP connection over 127.0.0.1 (raw.cpp; the Asio floor
/// uses it too).
struct SocketPair {
    int parent = -1, child = -1;
};
SocketPair connect_pair(bool tcp);

/// raw sockets (raw.cpp): length-prefixed frames written in batches; frames echoed for the ping-pong.
StreamResult raw_stream(bool tcp, std::size_t size, std::size_t count);
std::unique_ptr<PingPongSession> raw_pingpong(bool tcp, std::size_t size, std::size_t serve_count);

/// The Asio floor (asio_floor.cpp): raw's frames, each end a coroutine on Asio's reactor.
std::unique_ptr<PingPongSession> asio_pingpong(bool tcp, std::size_t size, std::size_t serve_count);

/// ZeroMQ (zmq.cpp): XPUB (no drop) to SUB for the stream, REQ/REP for the ping-pong.
StreamResult zmq_stream(bool tcp, std::size_t size, std::size_t count);
std::unique_ptr<PingPongSession> zmq_pingpong(bool tcp, std::size_t size, std::size_t serve_count);

/// meshy (meshy.cpp): a topic with OutboxFull::wait for the stream, a service call for the ping-pong.
StreamResult meshy_stream(bool tcp, std::size_t size, std::size_t count);
std::unique_ptr<PingPongSession> meshy_pingpong(bool tcp, std::size_t size);

}  // namespace peer_compare
