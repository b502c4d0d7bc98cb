#include "process.hpp"

#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <sys/eventfd.h>
#include <sys/prctl.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <sstream>
#include <stdexcept>

extern char** environ;

namespace meshy::test {
namespace {

constexpr Millis poll_period{10};
// After the child is gone its pipes normally reach EOF at once; a grandchild may keep them open.
constexpr Millis drain_timeout{2000};

std::string errno_text(int err) {
    return std::strerror(err);
}

void close_fd(int& fd) {
    if (fd >= 0) {
        ::close(fd);
        fd = -1;
    }
}

ExitStatus decode_status(int raw) {
    ExitStatus s;
    if (WIFEXITED(raw)) {
        s.exited = true;
        s.code = WEXITSTATUS(raw);
    } else if (WIFSIGNALED(raw)) {
        s.signal = WTERMSIG(raw);
    }
    return s;
}

}  // namespace

std::string ExitStatus::describe() const {
    if (exited) {
        return "exit " + std::to_string(code);
    }
    const char* name = ::strsignal(signal);
    return "signal " + std::to_string(signal) + " (" + (name ? name : "?") + ")";
}

Process::Process(std::vector<std::string> argv, std::map<std::string, std::string> env, std::string label)
    : argv_(std::move(argv)), label_(std::move(label)) {
    if (argv_.empty()) {
        throw std::runtime_error("Process: empty argv");
    }
    if (label_.empty()) {
        label_ = argv_[0];
    }

    // Everything the child needs is built before fork(): between fork and exec only
    // async-signal-safe calls are allowed (the parent has other threads).
    std::map<std::string, std::string> merged;
    for (char** e = environ; e != nullptr && *e != nullptr; ++e) {
        const std::string_view entry = *e;
        const auto eq = entry.find('=');
        if (eq != std::string_view::npos) {
            merged.emplace(std::string(entry.substr(0, eq)), std::string(entry.substr(eq + 1)));
        }
    }
    for (auto& [k, v] : env) {
        merged[k] = v;
    }
    std::vector<std::string> env_strings;
    env_strings.reserve(merged.size());
    for (auto& [k, v] : merged) {
        env_strings.push_back(k + "=" + v);
    }
    std::vector<char*> envp;
    for (auto& s : env_strings) {
        envp.push_back(s.data());
    }
    envp.push_back(nullptr);
    std::vector<char*> argp;
    for (auto& a : argv_) {
        argp.push_back(a.data());
    }
    argp.push_back(nullptr);
    const bool has_slash = argv_[0].find('/') != std::string::npos;

    int out[2] = {-1, -1}, err[2] = {-1, -1}, exec_err[2] = {-1, -1};
    if (::pipe2(out, O_CLOEXEC) != 0 || ::pipe2(err, O_CLOEXEC) != 0 || ::pipe2(exec_err, O_CLOEXEC) != 0) {
        const int e = errno;
        for (int* fds : {out, err, exec_err}) {
            close_fd(fds[0]);
            close_fd(fds[1]);
        }
        throw std::runtime_error("Process: pipe2: " + errno_text(e));
    }
    wake_fd_ = ::eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
    const int devnull = ::open("/dev/null", O_RDONLY | O_CLOEXEC);
    const pid_t parent = ::getpid();

    pid_ = ::fork();
    if (pid_ == 0) {
        // Child. If the test binary dies (crash, ctest timeout), take the child with it.
        ::prctl(PR_SET_PDEATHSIG, SIGKILL);
        if (::getppid() != parent) {
            ::_exit(127);
        }
        sigset_t none;
        sigemptyset(&none);
        ::sigprocmask(SIG_SETMASK, &none, nullptr);
        ::signal(SIGPIPE, SIG_DFL);
        ::signal(SIGINT, SIG_DFL);
        ::signal(SIGTERM, SIG_DFL);
        if (devnull >= 0) {
            ::dup2(devnull, 0);
        }
        ::dup2(out[1], 1);
        ::dup2(err[1], 2);
        if (has_slash) {
            ::execve(argp[0], argp.data(), envp.data());
        } else {
            ::execvpe(argp[0], argp.data(), envp.data());
        }
        const int e = errno;
        [[maybe_unused]] auto ignored = ::write(exec_err[1], &e, sizeof e);
        ::_exit(127);
    }
    const int fork_errno = errno;
    if (devnull >= 0) {
        ::close(devnull);
    }
    close_fd(out[1]);
    close_fd(err[1]);
    close_fd(exec_err[1]);
    if (pid_ < 0) {
        close_fd(out[0]);
        close_fd(err[0]);
        close_fd(exec_err[0]);
        close_fd(wake_fd_);
        throw std::runtime_error("Process: fork: " + errno_text(fork_errno));
    }
    // exec_err closes on a successful exec (CLOEXEC) and carries errno when exec failed.
    int child_errno = 0;
    ssize_t n = 0;
    do {
        n = ::read(exec_err[0], &child_errno, sizeof child_errno);
    } while (n < 0 && errno == EINTR);
    close_fd(exec_err[0]);
    if (n == static_cast<ssize_t>(sizeof child_errno)) {
        int raw = 0;
        ::waitpid(pid_, &raw, 0);
        status_ = decode_status(raw);
        close_fd(out[0]);
        close_fd(err[0]);
        close_fd(wake_fd_);
        throw std::runtime_error("Process: cannot execute " + argv_[0] + ": " + errno_text(child_errno));
    }
    reader_ = std::thread([this, o = out[0], e = err[0]] { reader_main(o, e); });
}

Process::~Process() {
    kill();
    {
        std::unique_lock lock(mutex_);
        changed_.wait_for(lock, drain_timeout, [&] { return eof_; });
    }
    if (wake_fd_ >= 0) {
        const std::uint64_t one = 1;
        [[maybe_unused]] auto ignored = ::write(wake_fd_, &one, sizeof one);
    }
    if (reader_.joinable()) {
        reader_.join();
    }
    close_fd(wake_fd_);
}

void Process::reader_main(int out_fd, int err_fd) {
    std::string partial[2];
    int fds[2] = {out_fd, err_fd};
    char chunk[8192];
    auto flush_lines = [&](int which, bool at_eof) {
        std::string& buf = partial[which];
        std::vector<Line> complete;
        std::size_t start = 0;
        for (std::size_t nl; (nl = buf.find('\n', start)) != std::string::npos; start = nl + 1) {
            complete.push_back({which == 0 ? Stream::out : Stream::err, buf.substr(start, nl - start)});
        }
        buf.erase(0, start);
        if (at_eof && !buf.empty()) {
            complete.push_back({which == 0 ? Stream::out : Stream::err, std::move(buf)});
            buf.clear();
        }
        if (!complete.empty()) {
            std::lock_guard lock(mutex_);
            for (auto& l : complete) {
                lines_.push_back(std::move(l));
            }
            changed_.notify_all();
        }
    };
    while (fds[0] >= 0 || fds[1] >= 0) {
        pollfd p[3] = {{fds[0], POLLIN, 0}, {fds[1], POLLIN, 0}, {wake_fd_, POLLIN, 0}};
        const int r = ::poll(p, 3, -1);
        if (r < 0) {
            if (errno == EINTR) {
                continue;
            }
            break;
        }
        if (p[2].revents != 0) {
            break;  // the owner gave up waiting for EOF
        }
        for (int i = 0; i < 2; ++i) {
            if (fds[i] < 0 || p[i].revents == 0) {
                continue;
            }
            const ssize_t n = ::read(fds[i], chunk, sizeof chunk);
            if (n > 0) {
                partial[i].append(chunk, static_cast<std::size_t>(n));
                flush_lines(i, false);
            } else if (n == 0 || (errno != EINTR && errno != EAGAIN)) {
                flush_lines(i, true);
                close_fd(fds[i]);
            }
        }
    }
    for (int i = 0; i < 2; ++i) {
        if (fds[i] >= 0) {
            flush_lines(i, true);
            close_fd(fds[i]);
        }
    }
    std::lock_guard lock(mutex_);
    eof_ = true;
    changed_.notify_all();
}

template <class Match>
std::optional<std::string> Process::wait_line(Match&& match, Millis timeout, std::size_t from, std::size_t* index) {
    const auto deadline = Clock::now() + timeout;
    std::unique_lock lock(mutex_);
    std::size_t next = from;
    for (;;) {
        for (; next < lines_.size(); ++next) {
            if (match(lines_[next].text)) {
                if (index) {
                    *index = next;
                }
                return lines_[next].text;
            }
        }
        if (eof_) {
            return std::nullopt;  // the child closed its output: nothing more will come
        }
        if (changed_.wait_until(lock, deadline) == std::cv_status::timeout && next == lines_.size()) {
            return std::nullopt;
        }
    }
}

std::optional<std::string> Process::wait_for_line(std::string_view substring,
                                                  Millis timeout,
                                                  std::size_t from,
                                                  std::size_t* index) {
    return wait_line([&](const std::string& l) { return l.find(substring) != std::string::npos; }, timeout, from,
                     index);
}

std::optional<std::string> Process::wait_for_line(const std::regex& pattern,
                                                  Millis timeout,
                                                  std::size_t from,
                                                  std::size_t* index) {
    return wait_line([&](const std::string& l) { return std::regex_search(l, pattern); }, timeout, from, index);
}

std::optional<std::string> Process::wait_for_match(const std::function<bool(const std::string&)>& match,
                                                   Millis timeout,
                                                   std::size_t from,
                                                   std::size_t* index) {
    return wait_line(match, timeout, from, index);
}

bool Process::wait_until(const std::function<bool(const std::vector<Line>&)>& ready, Millis timeout) {
    const auto deadline = Clock::now() + timeout;
    std::unique_lock lock(mutex_);
    for (;;) {
        if (ready(lines_)) {
            return true;
        }
        if (eof_) {
            return false;
        }
        if (changed_.wait_until(lock, deadline) == std::cv_status::timeout) {
            return ready(lines_);
        }
    }
}

std::vector<std::string> Process::lines() const {
    std::lock_guard lock(mutex_);
    std::vector<std::string> out;
    out.reserve(lines_.size());
    for (const auto& l : lines_) {
        out.push_back(l.text);
    }
    return out;
}

std::vector<std::string> Process::lines(Stream stream) const {
    std::lock_guard lock(mutex_);
    std::vector<std::string> out;
    for (const auto& l : lines_) {
        if (l.stream == stream) {
            out.push_back(l.text);
        }
    }
    return out;
}

std::size_t Process::line_count() const {
    std::lock_guard lock(mutex_);
    return lines_.size();
}

std::size_t Process::count_lines(std::string_view substring) const {
    std::lock_guard lock(mutex_);
    std::size_t n = 0;
    for (const auto& l : lines_) {
        n += l.text.find(substring) != std::string::npos ? 1 : 0;
    }
    return n;
}

bool Process::try_reap() {
    if (status_) {
        return true;
    }
    int raw = 0;
    const pid_t r = ::waitpid(pid_, &raw, WNOHANG);
    if (r == pid_) {
        status_ = decode_status(raw);
        return true;
    }
    if (r < 0 && errno == ECHILD) {
        status_ = ExitStatus{};  // reaped elsewhere; nothing is known
        return true;
    }
    return false;
}

bool Process::running() {
    return !try_reap();
}

bool Process::send_signal(int signal) {
    if (try_reap()) {
        return false;
    }
    return ::kill(pid_, signal) == 0;
}

std::optional<ExitStatus> Process::wait_exit(Millis timeout) {
    const auto deadline = Clock::now() + timeout;
    while (!try_reap()) {
        if (Clock::now() >= deadline) {
            return std::nullopt;
        }
        std::this_thread::sleep_for(poll_period);
    }
    std::unique_lock lock(mutex_);
    changed_.wait_for(lock, drain_timeout, [&] { return eof_; });
    return status_;
}

void Process::kill() {
    if (try_reap()) {
        return;
    }
    ::kill(pid_, SIGKILL);
    // SIGKILL ends a process at once unless it sits in an uninterruptible sleep: bound the wait anyway.
    const auto deadline = Clock::now() + Millis(10000);
    while (!try_reap() && Clock::now() < deadline) {
        std::this_thread::sleep_for(poll_period);
    }
}

std::string Process::dump() const {
    std::ostringstream os;
    os << "---- " << label_ << " (pid " << pid_ << "):";
    for (const auto& a : argv_) {
        os << ' ' << a;
    }
    os << "\n";
    std::lock_guard lock(mutex_);
    if (status_) {
        os << "     ended: " << status_->describe() << "\n";
    } else {
        os << "     still running\n";
    }
    for (const auto& l : lines_) {
        os << (l.stream == Stream::out ? "  out| " : "  err| ") << l.text << "\n";
    }
    return os.str();
}

RunResult run_command(std::vector<std::string> argv, Millis timeout, std::map<std::string, std::string> env) {
    Process p(std::move(argv), std::move(env));
    RunResult r;
    r.status = p.wait_exit(timeout);
    if (!r.status) {
        p.kill();
    }
    r.lines = p.lines();
    return r;
}

const std::optional<std::string>& avahi_problem(const std::string& test_node, std::map<std::string, std::string> env) {
    static const std::optional<std::string> problem = [&]() -> std::optional<std::string> {
        env["MESHY_DISCOVERY"] = "avahi";
        const auto result = run_command({test_node, "probe"}, Millis(15000), std::move(env));
        if (result.status && result.status->success()) {
            return std::nullopt;
        }
        std::string said;
        for (const auto& l : result.lines) {
            said += "\n    " + l;
        }
        return "This test needs a reachable avahi-daemon, and a node started with MESHY_DISCOVERY=avahi failed (" +
               (result.status ? result.status->describe() : std::string("hung")) + "):" + said +
               "\nRun the suite through scripts/test.sh, which starts a private loopback-only avahi-daemon "
               "(or start one with `eval \"$(scripts/avahi-lo.sh ensure)\"` and rerun in that shell).";
    }();
    return problem;
}

}  // namespace meshy::test
