// bench/same_host_compare, the processes: the children and RouDi, and the clean-up that stops them
// on every way out (an exit, a signal, the main process killed), so that nothing is left in /dev/shm
// or /tmp.
#include <pwd.h>
#include <signal.h>
#include <sys/prctl.h>
#include <sys/wait.h>
#include <unistd.h>

#include <array>
#include <atomic>
#include <cerrno>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <ctime>
#include <functional>
#include <string>

#include "common.hpp"

namespace same_host {

namespace {

std::array<std::atomic<pid_t>, 32> live_children{};  // 0: a free slot; read by the signal handler

}  // namespace

pid_t main_pid = 0;
std::atomic<pid_t> roudi_pid{0};
std::string roudi_config;
std::array<std::array<char, 128>, 2> runtime_files{};
std::array<char, 64> roudi_user_segment{};

void remember_child(pid_t pid) {
    for (auto& slot : live_children) {
        pid_t free = 0;
        if (slot.compare_exchange_strong(free, pid)) {
            return;
        }
    }
}

void forget_child(pid_t pid) {
    for (auto& slot : live_children) {
        pid_t p = pid;
        slot.compare_exchange_strong(p, 0);
    }
}

/// Waits for `pid` up to `limit` (async-signal-safe). @returns true once it is reaped; `status`
/// gets its wait status (-1 if another wait reaped it).
bool reap_within(pid_t pid, std::chrono::milliseconds limit, int* status) {
    for (auto left = limit.count(); left >= 0; left -= 10) {
        int s = 0;
        const pid_t r = ::waitpid(pid, &s, WNOHANG);
        if (r == pid || (r < 0 && errno == ECHILD)) {
            if (status) {
                *status = r == pid ? s : -1;
            }
            return true;
        }
        const timespec ten_ms{0, 10'000'000};
        ::nanosleep(&ten_ms, nullptr);
    }
    return false;
}

namespace {

bool roudi_failed = false;  // RouDi did not end cleanly: it may have left its files

}  // namespace

/// Stops RouDi: SIGTERM lets it remove its shared memory; SIGKILL only if it does not go.
void stop_roudi() {
    const pid_t pid = roudi_pid.exchange(0);
    if (pid <= 0) {
        return;
    }
    ::kill(pid, SIGTERM);
    int status = 0;
    if (!reap_within(pid, std::chrono::milliseconds(10000), &status)) {
        ::kill(pid, SIGKILL);
        reap_within(pid, std::chrono::milliseconds(2000));
        roudi_failed = true;
    } else if (!WIFEXITED(status) || WEXITSTATUS(status) != 0) {
        roudi_failed = true;
    }
}

namespace {

/// SIGTERM first: a child removes the files its iceoryx runtime made under /tmp.
void kill_children() {
    std::array<pid_t, live_children.size()> pids{};
    for (std::size_t i = 0; i < pids.size(); ++i) {
        pids[i] = live_children[i].exchange(0);
        if (pids[i] > 0) {
            ::kill(pids[i], SIGTERM);
        }
    }
    for (const pid_t pid : pids) {
        if (pid > 0 && !reap_within(pid, std::chrono::milliseconds(2000))) {
            ::kill(pid, SIGKILL);
            reap_within(pid, std::chrono::milliseconds(2000));
        }
    }
}

// A child's iceoryx runtime has a socket and a lock file under /tmp, which it removes when it ends
// normally. Killed (by the main process, or by PR_SET_PDEATHSIG when the main process dies), the
// child removes them in its SIGTERM handler.

extern "C" void on_child_signal(int sig) {
    for (const auto& f : runtime_files) {
        if (f[0] != 0) {
            ::unlink(f.data());
        }
    }
    // RouDi, stopping, signals its apps and aborts (leaving its shared memory) if one is gone
    // already: when the main process dies, RouDi and the children get their SIGTERM at once, so a
    // child stays until RouDi has signalled it.
    if (runtime_files[0][0] != 0) {
        const timespec a_while{0, 300'000'000};
        ::nanosleep(&a_while, nullptr);
    }
    ::_exit(128 + sig);
}

// What RouDi makes, removed by this process if RouDi died without removing them (it did not run
// before: start_roudi() checks). The user's segment is named after the user.

void remove_roudi_leftovers() {
    if (!roudi_failed) {
        return;
    }
    const std::array<const char*, 4> files{"/dev/shm/iceoryx_mgmt", roudi_user_segment.data(), "/tmp/roudi",
                                           "/tmp/roudi.lock"};
    for (const char* f : files) {
        if (f[0] != 0 && ::unlink(f) == 0) {
            static constexpr char note[] = "same_host_compare: removed a file RouDi left\n";
            [[maybe_unused]] auto n = ::write(2, note, sizeof note - 1);
        }
    }
}

/// RouDi first, while its apps (children) live: it signals them and waits for them to go.
void stop_everything() {
    stop_roudi();
    kill_children();
    remove_roudi_leftovers();
}

}  // namespace

void clean_up() {
    if (::getpid() != main_pid) {
        return;  // a child that exits runs the atexit handlers it inherited
    }
    stop_everything();
    if (!roudi_config.empty()) {
        ::unlink(roudi_config.c_str());
    }
}

extern "C" void on_signal(int sig) {
    if (::getpid() == main_pid) {
        stop_everything();
    }
    ::_exit(128 + sig);
}

[[noreturn]] void die(const std::string& what) {
    std::fprintf(stderr, "same_host_compare: %s\n", what.c_str());
    std::exit(1);  // clean_up() runs
}

pid_t spawn(const std::function<void()>& body, bool exit_handlers) {
    std::fflush(nullptr);
    const pid_t parent = ::getpid();
    const pid_t pid = ::fork();
    if (pid < 0) {
        die(std::string("fork: ") + std::strerror(errno));
    }
    if (pid == 0) {
        ::signal(SIGINT, SIG_DFL);
        ::signal(SIGTERM, on_child_signal);
        ::prctl(PR_SET_PDEATHSIG, SIGTERM);
        if (::getppid() != parent) {
            std::_Exit(1);  // the parent died before the line above
        }
        body();
        if (exit_handlers) {
            std::exit(0);
        }
        std::fflush(nullptr);
        std::_Exit(0);
    }
    remember_child(pid);
    return pid;
}

}  // namespace same_host
