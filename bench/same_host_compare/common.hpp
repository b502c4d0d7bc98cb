// What the drivers of bench/same_host_compare share: the processes (fork()ed children that die with
// the main process, RouDi's pid, the clean-up that leaves nothing in /dev/shm), the pipes between
// them, a peer's time budget, and each peer's entry points. One peer's driver per file: cyclone.cpp,
// iceoryx.cpp, meshy.cpp; one_way.hpp is the one-way workload's two ends, the same for every peer;
// processes.cpp the process machinery; main.cpp runs the comparison.
#pragma once

#include <fcntl.h>
#include <limits.h>
#include <poll.h>
#include <signal.h>
#include <sys/types.h>
#include <unistd.h>

#include <algorithm>
#include <array>
#include <atomic>
#include <cerrno>
#include <chrono>
#include <cstddef>
#include <cstdint>
#include <cstdio>
#include <cstring>
#include <functional>
#include <memory>
#include <string>
#include <vector>

#include "bench_stats.hpp"

namespace same_host {

using namespace meshy_bench;

inline constexpr auto time_limit = std::chrono::seconds(20);  // per peer and workload, slices added up
inline constexpr auto serve_limit = 4 * time_limit;           // a child that is never told to stop
inline constexpr std::size_t warm_up = 10;                    // round trips or messages per session, not recorded

inline std::int64_t now_ns() {
    return std::chrono::duration_cast<std::chrono::nanoseconds>(Clock::now().time_since_epoch()).count();
}

// --- processes -----------------------------------------------------------------------------------
//
// The main process keeps the ids of its live children and of RouDi, so that a failure (an exit, or
// a signal) kills them and stops RouDi, which then removes its shared memory: nothing is left in
// /dev/shm. A child dies with the main process (PR_SET_PDEATHSIG), even after kill -9, and so
// does RouDi, which removes its shared memory on the SIGTERM it gets.

extern pid_t main_pid;
extern std::atomic<pid_t> roudi_pid;
extern std::string roudi_config;  // the config file RouDi was started with, removed with it
// What RouDi makes under /dev/shm for the user, removed if RouDi died without removing it.
extern std::array<char, 64> roudi_user_segment;
// A child's iceoryx runtime files under /tmp, which its SIGTERM handler removes.
extern std::array<std::array<char, 128>, 2> runtime_files;

void remember_child(pid_t pid);
void forget_child(pid_t pid);
/// Waits for `pid` up to `limit` (async-signal-safe). @returns true once it is reaped; `status`
/// gets its wait status (-1 if another wait reaped it).
bool reap_within(pid_t pid, std::chrono::milliseconds limit, int* status = nullptr);
/// Stops RouDi: SIGTERM lets it remove its shared memory; SIGKILL only if it does not go.
void stop_roudi();
/// At exit (atexit) in the main process: every child and RouDi stopped, RouDi's config removed.
void clean_up();
/// SIGINT and SIGTERM in the main process: everything stopped, then exit.
extern "C" void on_signal(int sig);
/// Prints `what` and exits (clean_up() runs).
[[noreturn]] void die(const std::string& what);
/// Runs `body` in a fork()ed child that dies (SIGTERM) with this process; @returns its pid. The child ends
/// with _Exit(), or with exit() when `exit_handlers` (iceoryx's runtime tells RouDi it is gone from
/// a static destructor).
pid_t spawn(const std::function<void()>& body, bool exit_handlers);

/// A child that the destructor reaps (or kills, if it does not end within a few seconds).
class Child {
public:
    explicit Child(const std::function<void()>& body, bool exit_handlers = false) : pid_(spawn(body, exit_handlers)) {}
    ~Child() {
        if (!reap_within(pid_, std::chrono::milliseconds(10000))) {
            std::fprintf(stderr, "same_host_compare: child %d did not end, killed\n", static_cast<int>(pid_));
            ::kill(pid_, SIGKILL);
            reap_within(pid_, std::chrono::milliseconds(2000));
        }
        forget_child(pid_);
    }
    Child(const Child&) = delete;
    Child& operator=(const Child&) = delete;

private:
    pid_t pid_;
};

/// A pipe carrying small fixed-size records (at most PIPE_BUF bytes, so each write is atomic).
class Pipe {
public:
    Pipe() {
        if (::pipe2(fds_, O_CLOEXEC) != 0) {
            die(std::string("pipe: ") + std::strerror(errno));
        }
    }
    ~Pipe() {
        close_reader();
        close_writer();
    }
    Pipe(const Pipe&) = delete;
    Pipe& operator=(const Pipe&) = delete;

    template <class T>
    bool put(const T& value) {
        static_assert(sizeof(T) <= PIPE_BUF);
        for (;;) {
            const auto n = ::write(fds_[1], &value, sizeof value);
            if (n == static_cast<ssize_t>(sizeof value)) {
                return true;
            }
            if (n < 0 && errno == EINTR) {
                continue;
            }
            return false;
        }
    }
    /// Waits up to `limit` for a record; false on time out, EOF (no writer left) or error.
    template <class T>
    bool get(T& value, Clock::duration limit) {
        const auto deadline = Clock::now() + limit;
        pollfd p{fds_[0], POLLIN, 0};
        for (;;) {
            const auto left = std::chrono::duration_cast<std::chrono::milliseconds>(deadline - Clock::now()).count();
            const int r = ::poll(&p, 1, static_cast<int>(std::max<std::int64_t>(left, 0)));
            if (r < 0 && errno == EINTR) {
                continue;
            }
            if (r <= 0) {
                return false;
            }
            const auto n = ::read(fds_[0], &value, sizeof value);
            if (n < 0 && errno == EINTR) {
                continue;
            }
            return n == static_cast<ssize_t>(sizeof value);
        }
    }
    /// Whether a record (or EOF) is waiting, without reading it.
    bool ready() {
        pollfd p{fds_[0], POLLIN, 0};
        return ::poll(&p, 1, 0) > 0;
    }
    /// Each process closes the end it does not use, so that the other's exit is EOF, not a hang.
    void close_reader() { close_end(0); }
    void close_writer() { close_end(1); }

private:
    void close_end(int i) {
        if (fds_[i] >= 0) {
            ::close(fds_[i]);
            fds_[i] = -1;
        }
    }
    int fds_[2];
};

// --- results ---------------------------------------------------------------------------------------

/// A peer's time in all, slices added up, and whether it failed (then it takes no more turns).
class Budget {
public:
    Clock::duration left() const { return ok_ ? std::max(Clock::duration{}, time_limit - spent_) : Clock::duration{}; }
    void charge(Clock::time_point slice_start) { spent_ += Clock::now() - slice_start; }
    void fail(const std::string& why) {
        if (ok_) {
            std::fprintf(stderr, "same_host_compare: %s\n", why.c_str());
        }
        ok_ = false;
    }
    bool ok() const { return ok_ && left() > Clock::duration{}; }
    bool failed() const { return !ok_; }

private:
    Clock::duration spent_{};
    bool ok_ = true;
};

inline int session_counter = 0;

inline std::string unique_name(const char* what) {
    return std::string("same_host_") + what + "_" + std::to_string(::getpid()) + "_" +
           std::to_string(++session_counter);
}

/// One peer's ping-pong session, set up (and warmed up) by its driver's factory; run_pingpong()
/// takes its round trips slice by slice. Destroying it stops and reaps its child.
class PingPongSession {
public:
    virtual ~PingPongSession() = default;
    /// Takes `count` round trips and records all but the first `skip` in `rtt_ns`.
    virtual void round_trips(std::size_t count, std::size_t skip, std::vector<double>& rtt_ns) = 0;
};

class OneWaySession;  // one_way.hpp

// --- the peers --------------------------------------------------------------------------------------

/// Cyclone DDS (cyclone.cpp): ddsperf's ping-pong. Its config, set as CYCLONEDDS_URI before any
/// participant: the loopback interface only.
extern const char* const cyclone_config;
std::unique_ptr<PingPongSession> cyclone_pingpong(std::size_t size);

/// iceoryx (iceoryx.cpp): one-way through loans, via RouDi.
/// Each pool holds a message of its size plus iceoryx's chunk header; a sender holds at most one
/// chunk on loan and a subscriber's queue four more.
inline constexpr std::uint64_t iceoryx_queue = 4;
/// Starts `iox-roudi` with pools for `sizes`, unless one runs already (then iceoryx is skipped:
/// RouDi's shared memory has fixed names, one RouDi per host). @returns whether it runs.
bool start_roudi(const std::vector<std::size_t>& sizes);
std::unique_ptr<OneWaySession> iceoryx_session(std::size_t size);

/// Raw Unix sockets (raw_unix.cpp): one-way, a filled buffer written whole and read whole.
std::unique_ptr<OneWaySession> raw_unix_session(std::size_t size);

/// meshy (meshy.cpp): a service call (ping-pong); send and send_loaned (one-way), all over its
/// same-host link.
std::unique_ptr<PingPongSession> meshy_pingpong(std::size_t size);
std::unique_ptr<OneWaySession> meshy_session(std::size_t size, bool loans);
inline std::string meshy_link_seen = "?";  // what the last meshy session's link was, for the table

}  // namespace same_host
