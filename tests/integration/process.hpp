// A child process for integration tests: spawned with argv and extra environment variables, its
// stdout and stderr read by a background thread into one line buffer the test can wait on.
// Every wait takes a timeout; nothing sleeps for a fixed time. The destructor kills (SIGKILL) and
// reaps a child that is still running, so a failing test never leaves processes behind.
#pragma once

#include <sys/types.h>

#include <chrono>
#include <condition_variable>
#include <cstddef>
#include <functional>
#include <map>
#include <mutex>
#include <optional>
#include <regex>
#include <string>
#include <string_view>
#include <thread>
#include <vector>

namespace meshy::test {

using Clock = std::chrono::steady_clock;
using Millis = std::chrono::milliseconds;

/// How a child ended.
struct ExitStatus {
    bool exited = false;  ///< true: it called exit (see code); false: a signal ended it
    int code = 0;         ///< exit code when exited
    int signal = 0;       ///< signal number when !exited

    bool success() const { return exited && code == 0; }
    /// "exit 0", "exit 1", "signal 9 (Killed)".
    std::string describe() const;
};

/// Which pipe a line came from.
enum class Stream { out, err };

/// One captured line (without its newline).
struct Line {
    Stream stream = Stream::out;
    std::string text;
};

class Process {
public:
    /// Starts `argv[0]` (a path; PATH is searched when it has no slash) with the parent's
    /// environment plus `env` (which overrides; an empty value still sets the variable).
    /// `label` names the process in failure output. @throws std::runtime_error when spawning fails.
    Process(std::vector<std::string> argv, std::map<std::string, std::string> env = {}, std::string label = {});
    ~Process();
    Process(const Process&) = delete;
    Process& operator=(const Process&) = delete;

    pid_t pid() const { return pid_; }
    const std::string& label() const { return label_; }

    /// Waits for a line (from `from` on, counting every captured line) that contains `substring`.
    /// @returns the line, or nullopt when `timeout` passes first. `index` receives its position.
    std::optional<std::string> wait_for_line(std::string_view substring,
                                             Millis timeout,
                                             std::size_t from = 0,
                                             std::size_t* index = nullptr);
    /// Same, for a line in which `pattern` matches (std::regex_search).
    std::optional<std::string> wait_for_line(const std::regex& pattern,
                                             Millis timeout,
                                             std::size_t from = 0,
                                             std::size_t* index = nullptr);
    /// Same, for a line `match` accepts. (Tests built with GCC 12 and -fsanitize=address trip a
    /// -Wmaybe-uninitialized false positive inside <regex> when they build a std::regex; this avoids it.)
    std::optional<std::string> wait_for_match(const std::function<bool(const std::string&)>& match,
                                              Millis timeout,
                                              std::size_t from = 0,
                                              std::size_t* index = nullptr);
    /// Waits until `ready(lines)` holds for the lines captured so far. @returns false on timeout.
    bool wait_until(const std::function<bool(const std::vector<Line>&)>& ready, Millis timeout);

    /// Every line captured so far, both streams, in arrival order.
    std::vector<std::string> lines() const;
    /// The lines of one stream.
    std::vector<std::string> lines(Stream stream) const;
    /// Number of lines captured so far.
    std::size_t line_count() const;
    /// How many captured lines contain `substring`.
    std::size_t count_lines(std::string_view substring) const;

    /// Sends a signal when the child has not been reaped yet. @returns false when it was already gone.
    bool send_signal(int signal);
    /// Waits for the child to end, then (bounded) for its pipes to drain so lines() is complete.
    /// @returns nullopt when it is still running after `timeout`.
    std::optional<ExitStatus> wait_exit(Millis timeout);
    /// SIGKILL and reap (bounded). Does nothing once reaped.
    void kill();
    /// True until the child has been reaped.
    bool running();

    /// The label, argv and every captured line, for failure messages.
    std::string dump() const;

private:
    void reader_main(int out_fd, int err_fd);
    bool try_reap();
    template <class Match>
    std::optional<std::string> wait_line(Match&& match, Millis timeout, std::size_t from, std::size_t* index);

    std::vector<std::string> argv_;
    std::string label_;
    pid_t pid_ = -1;
    std::optional<ExitStatus> status_;
    int wake_fd_ = -1;  // eventfd that tells the reader to give up (pipes kept open by a grandchild)

    mutable std::mutex mutex_;
    std::condition_variable changed_;
    std::vector<Line> lines_;
    bool eof_ = false;  // both pipes closed
    std::thread reader_;
};

/// Runs a command to completion (bounded): for helper scripts. On timeout the child is killed and
/// the result's status is nullopt.
struct RunResult {
    std::optional<ExitStatus> status;
    std::vector<std::string> lines;
};
RunResult run_command(std::vector<std::string> argv, Millis timeout, std::map<std::string, std::string> env = {});

/// Why a node cannot start with the Avahi backend here, found once per test binary by running
/// `test_node probe` with `env` and MESHY_DISCOVERY=avahi; nullopt when it can. The text says what
/// the probe printed and how to get a daemon (scripts/test.sh starts a private loopback one).
const std::optional<std::string>& avahi_problem(const std::string& test_node, std::map<std::string, std::string> env);

/// The lines as one text, each ending in '\n' (for failure messages).
inline std::string joined(const std::vector<std::string>& lines) {
    std::string out;
    for (const auto& l : lines) {
        out += l + "\n";
    }
    return out;
}

/// Whether any line contains `text`.
inline bool has_line(const std::vector<std::string>& lines, const std::string& text) {
    for (const auto& l : lines) {
        if (l.find(text) != std::string::npos) {
            return true;
        }
    }
    return false;
}

/// Polls `condition` every 10 ms until it holds or `timeout` passes: for a state no child prints
/// (wait_for_line() waits for one that does). @returns its last value.
template <class Condition>
bool eventually(Condition condition, Millis timeout) {
    const auto deadline = Clock::now() + timeout;
    while (!condition()) {
        if (Clock::now() >= deadline) {
            return false;
        }
        std::this_thread::sleep_for(Millis(10));
    }
    return true;
}

}  // namespace meshy::test
