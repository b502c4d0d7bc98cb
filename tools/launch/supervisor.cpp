// The launch supervisor: one thread, one poll loop. Children run in process groups of their own,
// so a terminal's Ctrl-C reaches only launch, and stopping signals whole groups (which catches the
// grandchildren of `/bin/sh -c`).
#include "supervisor.hpp"

#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <sys/prctl.h>
#include <sys/signalfd.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <chrono>
#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <optional>
#include <stdexcept>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "guardian.hpp"

extern char** environ;

namespace meshy::cli::launch {
namespace {

using Clock = std::chrono::steady_clock;

// A child line longer than this is printed in pieces: the buffer of a child that never prints a
// newline must stay bounded.
constexpr std::size_t max_line = 64 * 1024;
// Reads per pipe and wake-up, so one chatty child cannot starve the others.
constexpr int reads_per_wakeup = 16;
// Longest poll: every wait is bounded, even with nothing scheduled.
constexpr auto max_poll = std::chrono::milliseconds(1000);
// While stopping, a group whose leader is gone is polled this often (its members are not our
// children: nothing wakes us when they end).
constexpr auto group_poll = std::chrono::milliseconds(50);
// After SIGKILL: how long to wait for the kernel to reap before giving up.
constexpr auto kill_wait = std::chrono::milliseconds(2000);

std::string seconds_text(double s) {
    char buf[32];
    std::snprintf(buf, sizeof buf, "%g s", s);
    return buf;
}

std::string signal_name(int sig) {
    const char* abbrev = ::sigabbrev_np(sig);
    return abbrev ? std::string("SIG") + abbrev : "signal " + std::to_string(sig);
}

Clock::duration to_duration(double seconds) {
    return std::chrono::duration_cast<Clock::duration>(std::chrono::duration<double>(seconds));
}

// ---- output ------------------------------------------------------------------------------------

/// Writes only whole lines, straight to the fd (no stdio buffer): launch is the only writer, so no
/// line ever mixes with another, and a pipe reader sees each line as soon as it is complete.
class Output {
public:
    Output() {
        const char* no_colour = std::getenv("NO_COLOR");
        const char* term = std::getenv("TERM");
        const bool allowed = (!no_colour || !*no_colour) && !(term && std::string_view(term) == "dumb");
        colour_[0] = allowed && ::isatty(1) == 1;
        colour_[1] = allowed && ::isatty(2) == 1;
    }

    /// "[LABEL] " for `fd` (1 or 2), in ANSI colour `colour` on a terminal.
    std::string prefix(int fd, const std::string& label, const char* colour) const {
        if (colour_[fd == 2 ? 1 : 0]) {
            return std::string("\x1b[") + colour + "m[" + label + "]\x1b[0m ";
        }
        return "[" + label + "] ";
    }

    /// launch's own status line, on stdout.
    void status(const std::string& text) { write(1, prefix(1, "launch", "1") + text + "\n"); }
    /// launch's own problem line, on stderr.
    void warning(const std::string& text) { write(2, prefix(2, "launch", "1;31") + text + "\n"); }

    /// Writes `text` (whole lines) to fd 1 or 2. A closed reader only silences that stream:
    /// the children still need supervising.
    void write(int fd, std::string_view text) {
        bool& broken = broken_[fd == 2 ? 1 : 0];
        while (!broken && !text.empty()) {
            const ssize_t n = ::write(fd, text.data(), text.size());
            if (n < 0 && errno == EINTR) {
                continue;
            }
            if (n <= 0) {
                broken = true;
                break;
            }
            text.remove_prefix(static_cast<std::size_t>(n));
        }
    }

private:
    bool colour_[2] = {false, false};
    bool broken_[2] = {false, false};
};

// Colours of the nodes, by start order (not red: that is for launch's warnings).
constexpr const char* palette[] = {"36", "32", "33", "35", "34", "96", "92", "93", "95", "94"};

// ---- children ----------------------------------------------------------------------------------

/// One pipe of a child (stdout or stderr) and the line it has not finished yet.
struct Stream {
    int fd = -1;
    int target = 1;  // where its lines go: launch's stdout or stderr
    std::string partial;
};

/// The process group of an ended run whose leader is gone but whose other members are not (the
/// node under a `/bin/sh -c` that died first, a background job). Its pipes stay open, so their last
/// lines are printed, and a stop signals it too.
struct Lingering {
    pid_t pgid = -1;
    Stream out, err;
};

/// One copy of a node: started, maybe restarted.
struct Copy {
    std::size_t node = 0;  // index into the planned nodes
    std::string label;     // "name", or "name#2" when there are several copies
    pid_t pid = -1;        // the running child (and its process group), -1 when there is none
    Stream out, err;
    std::vector<Lingering> lingering;
    int restarts = 0;
    std::optional<Clock::time_point> respawn_at;
    bool sent_int = false, sent_term = false, sent_kill = false;  // by launch, to this run
    std::string status = "running";
    bool ok = true;
};

/// What the child tells the parent through a close-on-exec pipe when it cannot exec.
struct ExecFailure {
    int stage = 0;  // 1 chdir, 2 exec
    int error = 0;
};

void close_fd(int& fd) {
    if (fd >= 0) {
        ::close(fd);
        fd = -1;
    }
}

/// The child side of fork(): launch is single-threaded, so this may allocate, but it does not need
/// to: everything was prepared before the fork.
[[noreturn]] void exec_child(
    char* const* argv, char** envp, const char* cwd, pid_t parent, int devnull, int out_fd, int err_fd, int report_fd) {
    ::setpgid(0, 0);
    // A launch killed by SIGKILL cannot stop its children; the kernel tells them instead.
    ::prctl(PR_SET_PDEATHSIG, SIGTERM);
    if (::getppid() != parent) {
        ::_exit(127);
    }
    // Default dispositions (an ignored SIGINT would survive exec) and an empty mask (launch blocks
    // SIGINT, SIGTERM and SIGCHLD, and a mask survives exec too).
    for (int sig = 1; sig < NSIG; ++sig) {
        if (sig != SIGKILL && sig != SIGSTOP) {
            ::signal(sig, SIG_DFL);
        }
    }
    sigset_t none;
    sigemptyset(&none);
    ::sigprocmask(SIG_SETMASK, &none, nullptr);
    ::dup2(devnull, 0);  // a child of a background process group must never read the terminal
    ::dup2(out_fd, 1);
    ::dup2(err_fd, 2);
    // Whatever launch inherited stays out of the nodes (best effort: needs Linux 5.11).
    ::close_range(3, ~0U, CLOSE_RANGE_CLOEXEC);
    ExecFailure failure;
    if (cwd && ::chdir(cwd) != 0) {
        failure = {1, errno};
    } else {
        environ = envp;  // execvp searches the PATH of the node's environment
        ::execvp(argv[0], argv);
        failure = {2, errno};
    }
    [[maybe_unused]] const auto ignored = ::write(report_fd, &failure, sizeof failure);
    ::_exit(127);
}

// ---- the supervisor ----------------------------------------------------------------------------

class Supervisor {
public:
    Supervisor(const std::vector<PlannedNode>& nodes, const SupervisorOptions& options)
        : nodes_(nodes), options_(options), grace_(to_duration(options.grace)) {}

    ~Supervisor() {
        // Only reached early on an exception: leave nothing running.
        for (auto& c : copies_) {
            if (c.pid > 0) {
                ::kill(-c.pid, SIGKILL);
                int raw = 0;
                ::waitpid(c.pid, &raw, 0);
            }
            close_fd(c.out.fd);
            close_fd(c.err.fd);
            for (auto& l : c.lingering) {
                close_fd(l.out.fd);
                close_fd(l.err.fd);
            }
        }
        close_fd(signal_fd_);
        close_fd(devnull_);
    }

    SupervisorResult run() {
        for (const auto& note : options_.notes) {
            output_.status(note);
        }
        if (nodes_.empty()) {
            output_.status("nothing to start on this host");
            return {};
        }
        setup();
        for (;;) {
            const auto now = Clock::now();
            if (stop_phase_ == 0) {
                advance_starter(now);
                respawn_due(now);
                for (auto& c : copies_) {
                    refresh_groups(c);
                }
            } else {
                stop_tick(now);
            }
            if (finished()) {
                break;
            }
            wait_and_handle(poll_timeout(Clock::now()));
        }
        guardian_.dismiss();
        return summary();
    }

private:
    void setup() {
        // SIGCHLD joins SIGINT/SIGTERM (blocked by main) in the signalfd; blocked, none of them
        // interrupts anything, and all arrive as readable events.
        sigset_t set;
        sigemptyset(&set);
        sigaddset(&set, SIGINT);
        sigaddset(&set, SIGTERM);
        sigaddset(&set, SIGCHLD);
        if (::pthread_sigmask(SIG_BLOCK, &set, nullptr) != 0) {
            throw std::runtime_error("launch: cannot block signals");
        }
        // An ignored signal is dropped before it could reach the signalfd, and a shell starts a
        // background job (`meshy launch ... &`) with SIGINT ignored: launch must still hear it. Being
        // blocked, the default action never runs.
        ::signal(SIGINT, SIG_DFL);
        ::signal(SIGTERM, SIG_DFL);
        ::signal(SIGCHLD, SIG_DFL);
        signal_fd_ = ::signalfd(-1, &set, SFD_NONBLOCK | SFD_CLOEXEC);
        if (signal_fd_ < 0) {
            throw std::runtime_error(std::string("launch: signalfd: ") + std::strerror(errno));
        }
        // Orphaned grandchildren (the node under a `/bin/sh -c` that died first) become our
        // children: reaped at once by reap(), instead of lingering as zombies that keep their
        // process group "alive" until some init gets round to them.
        ::prctl(PR_SET_CHILD_SUBREAPER, 1);
        // A reader of our output that goes away must not kill launch (and orphan the nodes).
        ::signal(SIGPIPE, SIG_IGN);
        devnull_ = ::open("/dev/null", O_RDONLY | O_CLOEXEC);
        if (devnull_ < 0) {
            throw std::runtime_error(std::string("launch: /dev/null: ") + std::strerror(errno));
        }
        guardian_.start(std::chrono::duration_cast<std::chrono::milliseconds>(grace_));
    }

    // ---- starting ----

    enum class StartPhase { pre_delay, spawn, post_delay };

    /// Walks the nodes in order: pre_delay, start the copies, post_delay, next.
    void advance_starter(Clock::time_point now) {
        while (next_node_ < nodes_.size()) {
            if (starter_wait_) {
                if (now < *starter_wait_) {
                    return;
                }
                starter_wait_.reset();
            }
            const NodeConfig& node = nodes_[next_node_].config;
            switch (start_phase_) {
                case StartPhase::pre_delay:
                    start_phase_ = StartPhase::spawn;
                    if (node.pre_delay > 0) {
                        starter_wait_ = now + to_duration(node.pre_delay);
                    }
                    break;
                case StartPhase::spawn:
                    for (int i = 1; i <= node.number; ++i) {
                        Copy c;
                        c.node = next_node_;
                        c.label = node.number > 1 ? node.name + "#" + std::to_string(i) : node.name;
                        copies_.push_back(std::move(c));
                        spawn(copies_.back());
                    }
                    now = Clock::now();  // spawning takes time: the post_delay counts from here
                    start_phase_ = StartPhase::post_delay;
                    if (node.post_delay > 0) {
                        starter_wait_ = now + to_duration(node.post_delay);
                    }
                    break;
                case StartPhase::post_delay:
                    start_phase_ = StartPhase::pre_delay;
                    ++next_node_;
                    break;
            }
        }
    }

    void respawn_due(Clock::time_point now) {
        for (auto& c : copies_) {
            if (c.respawn_at && now >= *c.respawn_at) {
                c.respawn_at.reset();
                ++c.restarts;
                spawn(c);
            }
        }
    }

    /// Starts one run of `c`. A failure to start (no such command, no such cwd) ends the copy.
    void spawn(Copy& c) {
        const PlannedNode& planned = nodes_[c.node];
        std::vector<std::string> argv_strings = planned.argv;
        std::vector<std::string> env_strings = planned.env;
        std::vector<char*> argv, envp;
        for (auto& s : argv_strings) {
            argv.push_back(s.data());
        }
        argv.push_back(nullptr);
        for (auto& s : env_strings) {
            envp.push_back(s.data());
        }
        envp.push_back(nullptr);
        const char* cwd = planned.config.cwd ? planned.config.cwd->c_str() : nullptr;

        int out[2] = {-1, -1}, err[2] = {-1, -1}, report[2] = {-1, -1};
        if (::pipe2(out, O_CLOEXEC) != 0 || ::pipe2(err, O_CLOEXEC) != 0 || ::pipe2(report, O_CLOEXEC) != 0) {
            const int e = errno;
            for (int* fds : {out, err, report}) {
                close_fd(fds[0]);
                close_fd(fds[1]);
            }
            start_failed(c, std::string("pipe: ") + std::strerror(e));
            return;
        }
        const pid_t parent = ::getpid();
        const pid_t pid = ::fork();
        if (pid == 0) {
            exec_child(argv.data(), envp.data(), cwd, parent, devnull_, out[1], err[1], report[1]);
        }
        const int fork_errno = errno;
        close_fd(out[1]);
        close_fd(err[1]);
        close_fd(report[1]);
        if (pid < 0) {
            close_fd(out[0]);
            close_fd(err[0]);
            close_fd(report[0]);
            start_failed(c, std::string("fork: ") + std::strerror(fork_errno));
            return;
        }
        // Also here: whichever of parent and child runs first, the group exists before anyone
        // signals it. (EACCES once the child has exec'd is harmless: it did it itself.)
        ::setpgid(pid, pid);
        guardian_.watch(pid);

        // The report pipe closes on exec; before that the child can only chdir and exec, so this
        // read ends quickly.
        ExecFailure failure;
        ssize_t n = 0;
        do {
            n = ::read(report[0], &failure, sizeof failure);
        } while (n < 0 && errno == EINTR);
        close_fd(report[0]);
        if (n == static_cast<ssize_t>(sizeof failure)) {
            int raw = 0;
            while (::waitpid(pid, &raw, 0) < 0 && errno == EINTR) {
            }
            close_fd(out[0]);
            close_fd(err[0]);
            const std::string what = failure.stage == 1 ? "cwd " + *planned.config.cwd : "'" + planned.argv[0] + "'";
            const bool not_found =
                failure.stage == 2 && failure.error == ENOENT && planned.argv[0].find('/') == std::string::npos;
            guardian_.forget(pid);
            start_failed(c, what + ": " + (not_found ? "command not found" : std::strerror(failure.error)));
            return;
        }
        ::fcntl(out[0], F_SETFL, ::fcntl(out[0], F_GETFL) | O_NONBLOCK);
        ::fcntl(err[0], F_SETFL, ::fcntl(err[0], F_GETFL) | O_NONBLOCK);
        c.pid = pid;
        c.sent_int = c.sent_term = c.sent_kill = false;
        c.out = Stream{out[0], 1, {}};
        c.err = Stream{err[0], 2, {}};
        c.status = "running";
        c.ok = true;
        output_.status("started " + c.label + " (pid " + std::to_string(pid) + ")");
    }

    void start_failed(Copy& c, const std::string& why) {
        c.status = "failed to start: " + why;
        c.ok = false;
        output_.warning("cannot start " + c.label + ": " + why);
    }

    // ---- output of the children ----

    /// Prints the complete lines of `s` (all of it at EOF), prefixed, with one write.
    void emit_lines(const Copy& c, Stream& s, bool at_eof) {
        std::string text;
        const std::string prefix = output_.prefix(s.target, c.label, palette[c.node % std::size(palette)]);
        std::size_t start = 0;
        for (std::size_t nl; (nl = s.partial.find('\n', start)) != std::string::npos; start = nl + 1) {
            text += prefix;
            text.append(s.partial, start, nl - start + 1);
        }
        s.partial.erase(0, start);
        if (!s.partial.empty() && (at_eof || s.partial.size() >= max_line)) {
            text += prefix + s.partial + "\n";
            s.partial.clear();
        }
        if (!text.empty()) {
            output_.write(s.target, text);
        }
    }

    /// Reads what `s` has (up to `max_reads` chunks; all of it when draining). Closes it at EOF.
    void read_stream(Copy& c, Stream& s, int max_reads) {
        char chunk[16384];
        for (int i = 0; s.fd >= 0 && (max_reads < 0 || i < max_reads); ++i) {
            const ssize_t n = ::read(s.fd, chunk, sizeof chunk);
            if (n > 0) {
                s.partial.append(chunk, static_cast<std::size_t>(n));
                emit_lines(c, s, false);
                continue;
            }
            if (n < 0 && errno == EINTR) {
                continue;
            }
            if (n < 0 && errno == EAGAIN) {
                return;
            }
            emit_lines(c, s, true);  // EOF or an error: what is left is the last line
            close_fd(s.fd);
        }
    }

    // ---- exits ----

    void reap() {
        for (;;) {
            int raw = 0;
            const pid_t pid = ::waitpid(-1, &raw, WNOHANG);
            if (pid <= 0) {
                return;  // 0: the others still run; -1 (ECHILD): no children at all
            }
            for (auto& c : copies_) {
                if (c.pid == pid) {
                    exited(c, raw);
                    break;
                }
            }
        }
    }

    void exited(Copy& c, int raw) {
        const pid_t pid = c.pid;
        c.pid = -1;
        // Everything the child wrote is in its pipes now: print it. When the rest of its group lives
        // on, the pipes stay open for the rest's lines; else what is left is the last line.
        Lingering rest{pid, std::exchange(c.out, Stream{}), std::exchange(c.err, Stream{})};
        read_stream(c, rest.out, -1);
        read_stream(c, rest.err, -1);
        c.lingering.push_back(std::move(rest));
        refresh_groups(c);
        if (WIFEXITED(raw)) {
            const int code = WEXITSTATUS(raw);
            c.status = "exit " + std::to_string(code);
            // A shell that dies of its child's SIGINT may exit 128+2 instead.
            c.ok = code == 0 || (code == 128 + SIGINT && c.sent_int) || (code == 128 + SIGTERM && c.sent_term);
            if (code != 0 && c.ok) {
                c.status += " (stopped)";
            }
        } else if (WIFSIGNALED(raw)) {
            const int sig = WTERMSIG(raw);
            if ((sig == SIGINT && c.sent_int) || (sig == SIGTERM && c.sent_term)) {
                c.status = "stopped (" + signal_name(sig) + ")";
                c.ok = true;
            } else if (sig == SIGKILL && c.sent_kill) {
                c.status = "killed (SIGKILL)";
                c.ok = false;
            } else {
                c.status = "killed by " + signal_name(sig) + (WCOREDUMP(raw) ? " (core dumped)" : "");
                c.ok = false;
            }
        }
        std::string line = c.label + " (pid " + std::to_string(pid) + ") ended: " + c.status;
        const NodeConfig& node = nodes_[c.node].config;
        if (stop_phase_ == 0 && node.respawn) {
            if (node.max_restarts < 0 || c.restarts < node.max_restarts) {
                c.respawn_at = Clock::now() + to_duration(node.respawn_delay);
                line += "; restarting in " + seconds_text(node.respawn_delay) + " (restart " +
                        std::to_string(c.restarts + 1) +
                        (node.max_restarts < 0 ? "" : " of " + std::to_string(node.max_restarts)) + ")";
            } else {
                line += "; not restarting: max_restarts (" + std::to_string(node.max_restarts) + ") reached";
            }
        }
        output_.status(line);
    }

    /// Forgets the lingering groups of `c` that have no member left, after printing the rest of
    /// their output. Checked on every wake-up, so a group id is never signalled long after it was
    /// freed (and maybe reused).
    void refresh_groups(Copy& c) {
        std::erase_if(c.lingering, [&](Lingering& l) {
            if (::kill(-l.pgid, 0) == 0 || errno != ESRCH) {
                return false;
            }
            for (Stream* s : {&l.out, &l.err}) {
                read_stream(c, *s, -1);
                emit_lines(c, *s, true);
                close_fd(s->fd);
            }
            guardian_.forget(l.pgid);
            return true;
        });
    }

    // ---- stopping ----

    void begin_stop(int sig) {
        if (stop_phase_ == 0) {
            output_.status("got " + signal_name(sig) + ": stopping every node (SIGINT, then SIGTERM after " +
                           seconds_text(seconds(grace_)) + ", then SIGKILL after " + seconds_text(seconds(grace_)) +
                           " more)");
            stopped_by_signal_ = true;
            for (auto& c : copies_) {
                c.respawn_at.reset();
            }
            escalate(SIGINT);
        } else if (stop_phase_ != SIGKILL) {
            // A second Ctrl-C means "now": skip the rest of the grace period.
            const int next = stop_phase_ == SIGINT ? SIGTERM : SIGKILL;
            output_.status("got " + signal_name(sig) + " again: sending " + signal_name(next));
            escalate(next);
        }
    }

    void escalate(int sig) {
        stop_phase_ = sig;
        stop_deadline_ =
            Clock::now() + (sig == SIGKILL ? std::chrono::duration_cast<Clock::duration>(kill_wait) : grace_);
        for (auto& c : copies_) {
            refresh_groups(c);
            if (c.pid > 0 && ::kill(-c.pid, sig) == 0) {
                (sig == SIGINT ? c.sent_int : sig == SIGTERM ? c.sent_term : c.sent_kill) = true;
            }
            for (const auto& l : c.lingering) {
                ::kill(-l.pgid, sig);
            }
        }
    }

    std::vector<std::string> remaining() {
        std::vector<std::string> labels;
        for (auto& c : copies_) {
            refresh_groups(c);
            if (c.pid > 0) {
                labels.push_back(c.label);
            } else if (!c.lingering.empty()) {
                labels.push_back(c.label + " (the rest of its process group)");
            }
        }
        return labels;
    }

    static std::string list(const std::vector<std::string>& labels) {
        std::string out;
        for (const auto& l : labels) {
            out += (out.empty() ? "" : ", ") + l;
        }
        return out;
    }

    void stop_tick(Clock::time_point now) {
        if (now < stop_deadline_ || gave_up_) {
            return;
        }
        const auto left = remaining();
        if (left.empty()) {
            return;
        }
        if (stop_phase_ == SIGINT) {
            output_.status("still running after " + seconds_text(seconds(grace_)) + ": " + list(left) +
                           "; sending SIGTERM");
            escalate(SIGTERM);
        } else if (stop_phase_ == SIGTERM) {
            output_.status("still running after " + seconds_text(seconds(grace_)) + ": " + list(left) +
                           "; sending SIGKILL");
            escalate(SIGKILL);
        } else {
            output_.warning("still not gone after SIGKILL: " + list(left) + "; giving up");
            gave_up_ = true;
        }
    }

    static double seconds(Clock::duration d) { return std::chrono::duration<double>(d).count(); }

    // ---- the loop ----

    bool finished() {
        if (stop_phase_ != 0) {
            return gave_up_ || remaining().empty();
        }
        if (next_node_ < nodes_.size()) {
            return false;
        }
        return std::none_of(copies_.begin(), copies_.end(), [](const Copy& c) { return c.pid > 0 || c.respawn_at; });
    }

    int poll_timeout(Clock::time_point now) const {
        Clock::time_point wake = now + max_poll;
        auto consider = [&](Clock::time_point t) {
            wake = std::min(wake, t);
        };
        if (stop_phase_ == 0) {
            if (starter_wait_ && next_node_ < nodes_.size()) {
                consider(*starter_wait_);
            }
            for (const auto& c : copies_) {
                if (c.respawn_at) {
                    consider(*c.respawn_at);
                }
            }
        } else {
            consider(stop_deadline_);
            if (std::any_of(copies_.begin(), copies_.end(), [](const Copy& c) { return !c.lingering.empty(); })) {
                consider(now + group_poll);
            }
        }
        if (wake <= now) {
            return 0;
        }
        // Rounded up: waking a little early would only mean another, zero-length, poll.
        const auto us = std::chrono::duration_cast<std::chrono::microseconds>(wake - now).count();
        return static_cast<int>((us + 999) / 1000);
    }

    void wait_and_handle(int timeout_ms) {
        std::vector<pollfd> fds;
        std::vector<std::pair<Copy*, Stream*>> owners;
        fds.push_back({signal_fd_, POLLIN, 0});
        owners.emplace_back(nullptr, nullptr);
        for (auto& c : copies_) {
            std::vector<Stream*> streams = {&c.out, &c.err};
            for (auto& l : c.lingering) {
                streams.insert(streams.end(), {&l.out, &l.err});
            }
            for (Stream* s : streams) {
                if (s->fd >= 0) {
                    fds.push_back({s->fd, POLLIN, 0});
                    owners.emplace_back(&c, s);
                }
            }
        }
        const int r = ::poll(fds.data(), fds.size(), timeout_ms);
        if (r < 0) {
            if (errno == EINTR) {
                return;
            }
            throw std::runtime_error(std::string("launch: poll: ") + std::strerror(errno));
        }
        // Output first: a child's last lines come before the news of its exit.
        for (std::size_t i = 1; i < fds.size(); ++i) {
            if (fds[i].revents != 0) {
                read_stream(*owners[i].first, *owners[i].second, reads_per_wakeup);
            }
        }
        if (fds[0].revents != 0) {
            handle_signals();
        }
    }

    void handle_signals() {
        signalfd_siginfo info;
        bool child = false;
        for (;;) {
            const ssize_t n = ::read(signal_fd_, &info, sizeof info);
            if (n != static_cast<ssize_t>(sizeof info)) {
                break;  // EAGAIN: all read
            }
            if (info.ssi_signo == SIGCHLD) {
                child = true;
            } else {
                begin_stop(static_cast<int>(info.ssi_signo));
            }
        }
        // Reaped after the stop signals were handled: a child that died of our SIGINT is judged
        // with sent_int already set. SIGCHLDs merge, so reap() collects every ended child.
        if (child) {
            reap();
        }
    }

    SupervisorResult summary() {
        SupervisorResult result;
        result.stopped_by_signal = stopped_by_signal_;
        result.copies = static_cast<int>(copies_.size());
        output_.status("summary:");
        for (auto& c : copies_) {
            if (c.pid > 0) {
                c.status = "still running (pid " + std::to_string(c.pid) + ")";
                c.ok = false;
            }
            std::string line = "  " + c.label + ": " + c.status;
            if (c.restarts > 0) {
                line += ", restarted " + std::to_string(c.restarts) + (c.restarts == 1 ? " time" : " times");
            }
            refresh_groups(c);
            if (!c.lingering.empty()) {
                // Left alone on a normal end (launch only stops what a stop signal asks it to).
                line += "; its process group still has processes";
                for (auto& l : c.lingering) {
                    for (Stream* s : {&l.out, &l.err}) {
                        read_stream(c, *s, -1);
                        emit_lines(c, *s, true);
                        close_fd(s->fd);
                    }
                }
            }
            output_.status(line);
            if (!c.ok) {
                result.failed.push_back(c.label + ": " + c.status);
            }
        }
        // Nodes a stop signal came before: not a failure, but the summary says so.
        for (std::size_t i = next_node_ + (start_phase_ == StartPhase::post_delay ? 1 : 0); i < nodes_.size(); ++i) {
            output_.status("  " + nodes_[i].config.name + ": not started");
        }
        return result;
    }

    const std::vector<PlannedNode>& nodes_;
    const SupervisorOptions& options_;
    const Clock::duration grace_;
    Output output_;
    std::vector<Copy> copies_;  // never shrinks; a Copy is referenced only during one call
    int signal_fd_ = -1;
    int devnull_ = -1;
    Guardian guardian_;  // stops the nodes should launch die without doing so (kill -9)

    std::size_t next_node_ = 0;
    StartPhase start_phase_ = StartPhase::pre_delay;
    std::optional<Clock::time_point> starter_wait_;

    int stop_phase_ = 0;  // 0, or the last signal sent to every group: SIGINT, SIGTERM, SIGKILL
    Clock::time_point stop_deadline_;
    bool stopped_by_signal_ = false;
    bool gave_up_ = false;
};

}  // namespace

SupervisorResult supervise(const std::vector<PlannedNode>& nodes, const SupervisorOptions& options) {
    Supervisor supervisor(nodes, options);
    return supervisor.run();
}

}  // namespace meshy::cli::launch
