// `meshy launch` with real processes: the meshy binary supervising meshy_test_node, the examples
// and small shell scripts. Each test writes its launch.yaml into a fresh temporary directory and
// uses a domain of its own; every node discovers through that directory (the local backend, so the
// tests need no avahi-daemon) and binds loopback only. Nothing sleeps for a fixed time: every wait
// is for a line or an exit, with a deadline.
#include <gtest/gtest.h>
#include <signal.h>
#include <stdlib.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <climits>
#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <iterator>
#include <map>
#include <set>
#include <string>
#include <thread>
#include <vector>

#include "process.hpp"

using namespace std::chrono_literals;
using meshy::test::Clock;
using meshy::test::has_line;
using meshy::test::joined;
using meshy::test::Millis;
using meshy::test::Process;
using meshy::test::run_command;

namespace fs = std::filesystem;

namespace {

const std::string cli = MESHY_CLI_PATH;
const std::string test_node = MESHY_TEST_NODE_PATH;
const std::string examples = MESHY_EXAMPLES_DIR;
const std::string source_dir = MESHY_SOURCE_DIR;

// Generous for a loaded machine; a passing test takes a fraction of them.
constexpr Millis start_timeout{10000};
constexpr Millis flow_timeout{15000};
constexpr Millis exit_timeout{15000};

std::string host_name() {
    char buf[HOST_NAME_MAX + 1] = {};
    ::gethostname(buf, sizeof buf - 1);
    return buf;
}

/// The pid in "[launch] started LABEL (pid N)".
pid_t started_pid(const std::string& line) {
    const auto at = line.rfind("(pid ");
    return at == std::string::npos ? -1 : static_cast<pid_t>(std::atoi(line.c_str() + at + 5));
}

/// Waits (bounded) until no process has the pid.
bool gone(pid_t pid, Millis timeout) {
    const auto deadline = Clock::now() + timeout;
    for (;;) {
        if (::kill(pid, 0) != 0 && errno == ESRCH) {
            return true;
        }
        if (Clock::now() >= deadline) {
            return false;
        }
        std::this_thread::sleep_for(10ms);  // a poll period, not a wait for an outcome
    }
}

/// Waits (bounded) until the pid has ended: no such process, or a zombie. After a kill -9 of launch
/// its nodes are reparented to init, and whether (and when) init reaps them is not launch's doing.
bool ended(pid_t pid, Millis timeout) {
    const auto deadline = Clock::now() + timeout;
    for (;;) {
        if (::kill(pid, 0) != 0 && errno == ESRCH) {
            return true;
        }
        std::ifstream stat("/proc/" + std::to_string(pid) + "/stat");
        std::string text((std::istreambuf_iterator<char>(stat)), std::istreambuf_iterator<char>());
        const auto paren = text.rfind(") ");
        if (paren != std::string::npos && paren + 2 < text.size() && text[paren + 2] == 'Z') {
            return true;
        }
        if (Clock::now() >= deadline) {
            return false;
        }
        std::this_thread::sleep_for(10ms);  // a poll period, not a wait for an outcome
    }
}

std::size_t count_prefix(const std::vector<std::string>& lines, const std::string& prefix) {
    return static_cast<std::size_t>(
        std::count_if(lines.begin(), lines.end(), [&](const auto& l) { return l.starts_with(prefix); }));
}

class LaunchTest : public ::testing::Test {
protected:
    void SetUp() override {
        char tmpl[] = "/tmp/meshy-launch-test.XXXXXX";
        ASSERT_NE(::mkdtemp(tmpl), nullptr) << "mkdtemp: " << std::strerror(errno);
        tmp_ = fs::canonical(tmpl);
        domain_ = std::string("launch-") + ::testing::UnitTest::GetInstance()->current_test_info()->name() + "-" +
                  std::to_string(::getpid());
        env_ = {{"MESHY_DISCOVERY", "local"},
                {"MESHY_LOCAL_DISCOVERY_DIR", (tmp_ / "discovery").string()},
                {"MESHY_LISTEN_HOST", "127.0.0.1"},
                {"XDG_RUNTIME_DIR", tmp_.string()},
                {"MESHY_DOMAIN_ID", "not-this-one"}};  // the file's domain_id wins
    }

    void TearDown() override {
        if (HasFailure() && launch_) {
            std::cout << launch_->dump();
        }
        launch_.reset();  // kills and reaps launch if it still runs; its children get SIGTERM
        std::error_code ignored;
        fs::remove_all(tmp_, ignored);
    }

    /// Writes launch.yaml (or `name`) into the test's directory: "domain_id: <domain>" + `nodes`.
    std::string write_file(const std::string& body, const std::string& name = "launch.yaml") {
        const std::string path = (tmp_ / name).string();
        std::ofstream(path) << body;
        return path;
    }
    std::string write_launch(const std::string& nodes, const std::string& name = "launch.yaml") {
        return write_file("domain_id: " + domain_ + "\nnodes:\n" + nodes, name);
    }

    /// Starts `meshy ARGS...` (launch_ keeps it).
    Process& start(std::vector<std::string> args) {
        args.insert(args.begin(), cli);
        launch_ = std::make_unique<Process>(std::move(args), env_, "meshy launch");
        return *launch_;
    }
    /// `meshy ARGS...` to completion.
    meshy::test::RunResult run(std::vector<std::string> args, Millis timeout = exit_timeout) {
        args.insert(args.begin(), cli);
        return run_command(std::move(args), timeout, env_);
    }

    std::string expect_line(Process& p, const std::string& text, Millis timeout = start_timeout) {
        const auto line = p.wait_for_line(text, timeout);
        EXPECT_TRUE(line) << "no line containing '" << text << "'";
        return line.value_or("");
    }

    meshy::test::ExitStatus expect_exit(Process& p, Millis timeout = exit_timeout) {
        const auto status = p.wait_exit(timeout);
        EXPECT_TRUE(status) << "meshy launch did not exit";
        return status.value_or(meshy::test::ExitStatus{});
    }

    /// A YAML flow list of the words, each double-quoted.
    static std::string list(const std::vector<std::string>& words) {
        std::string out = "[";
        for (const auto& w : words) {
            std::string quoted;
            for (const char ch : w) {
                quoted += ch == '"' || ch == '\\' ? std::string("\\") + ch : std::string(1, ch);
            }
            out += (out.size() > 1 ? ", " : "") + ("\"" + quoted + "\"");
        }
        return out + "]";
    }

    fs::path tmp_;
    std::string domain_;
    std::map<std::string, std::string> env_;
    std::unique_ptr<Process> launch_;
};

}  // namespace

TEST_F(LaunchTest, DemoLaunchFileRunsAndMessagesFlow) {
    // As examples/launch.yaml says to run it: the examples by bare name on PATH. --domain-id beats the file's.
    env_["PATH"] = examples + ":" + std::string(std::getenv("PATH") ? std::getenv("PATH") : "/usr/bin:/bin");
    Process& p = start({"--domain-id", domain_, "launch", source_dir + "/examples/launch.yaml"});
    expect_line(p, "domain " + domain_ + " (from --domain-id)");
    expect_line(p, "[topic_listener] Listening...");
    expect_line(p, "[service_provider] Started service...");
    expect_line(p, "[topic_listener] Received \"hello world\" on topic=some-topic", flow_timeout);
    expect_line(p, "[topic_sender] Sent \"hello world\"", flow_timeout);
    expect_line(p, "[service_caller] Result: 4", flow_timeout);
    expect_line(p, "[service_provider] Calculating 2 * 2...", flow_timeout);
    for (const std::string client : {"topic_sender", "service_caller"}) {
        EXPECT_TRUE(p.wait_for_match(
            [&](const std::string& l) {
                return l.starts_with("[launch] " + client + " (pid ") && l.ends_with(") ended: exit 0");
            },
            flow_timeout))
            << client << " did not end with exit 0";
    }
    EXPECT_TRUE(p.running()) << "the listener and the provider run until Ctrl-C";

    p.send_signal(SIGINT);
    const auto status = expect_exit(p);
    EXPECT_TRUE(status.success()) << status.describe();
    const auto lines = p.lines();
    EXPECT_TRUE(has_line(lines, "[launch]   topic_sender: exit 0")) << joined(lines);
    EXPECT_TRUE(has_line(lines, "[launch]   service_caller: exit 0")) << joined(lines);
    // Both servers end on SIGINT: cleanly (exit 0), or killed by the SIGINT launch sent.
    for (const std::string node : {"topic_listener", "service_provider"}) {
        EXPECT_TRUE(has_line(lines, "[launch]   " + node + ": exit 0") ||
                    has_line(lines, "[launch]   " + node + ": stopped (SIGINT)"))
            << node << "\n"
            << joined(lines);
    }
}

TEST_F(LaunchTest, NumberStartsCopiesThatShareLoadRoundRobin) {
    const std::string file = write_launch("  workers:\n    command: " + list({test_node, "listen", "jobs"}) +
                                          "\n    number: 3\n"
                                          "  boss:\n    command: " +
                                          list({test_node, "send", "jobs", "30", "--wait-listeners", "3"}) + "\n");
    Process& p = start({"launch", file});
    // Three copies, each with its own prefix, all named by `--name workers`: one load-sharing group.
    for (const std::string label : {"workers#1", "workers#2", "workers#3"}) {
        expect_line(p, "[launch] started " + label + " (pid ");
        expect_line(p, "[" + label + "] READY id=");
    }
    EXPECT_EQ(p.count_lines("name=workers backend=local"), 3u) << p.dump();
    expect_line(p, "[boss] SENT 30", flow_timeout);
    ASSERT_TRUE(p.wait_until(
        [](const auto& lines) {
            return std::count_if(lines.begin(), lines.end(),
                                 [](const auto& l) { return l.text.find("] RECV jobs ") != std::string::npos; }) >= 30;
        },
        flow_timeout));
    p.send_signal(SIGINT);
    const auto status = expect_exit(p);
    EXPECT_TRUE(status.success()) << status.describe();

    const auto lines = p.lines();
    std::size_t total = 0;
    for (const std::string label : {"workers#1", "workers#2", "workers#3"}) {
        const auto n = count_prefix(lines, "[" + label + "] RECV jobs ");
        total += n;
        // Round-robin: 10 each (one off at most, if the rotation starts mid-way).
        EXPECT_GE(n, 9u) << label;
        EXPECT_LE(n, 11u) << label;
    }
    EXPECT_EQ(total, 30u);
    EXPECT_EQ(count_prefix(lines, "[launch]   workers#"), 3u) << joined(lines);
}

TEST_F(LaunchTest, OnHostStartsOnlyOnThatHost) {
    const std::string file =
        write_launch("  here:\n    command: [sh, -c, 'echo ran-here']\n    on_host: " + host_name() +
                     "\n"
                     "  there:\n    command: [sh, -c, 'echo ran-there']\n"
                     "    on_host: no-such-host.invalid\n");
    Process& p = start({"launch", file});
    const auto status = expect_exit(p);
    EXPECT_TRUE(status.success()) << status.describe();
    const auto lines = p.lines();
    EXPECT_TRUE(has_line(lines, "[here] ran-here")) << joined(lines);
    EXPECT_FALSE(has_line(lines, "ran-there")) << joined(lines);
    EXPECT_TRUE(has_line(lines, "[launch] skipped there: on_host is no-such-host.invalid, this host is " + host_name()))
        << joined(lines);
    EXPECT_FALSE(has_line(lines, "started there")) << joined(lines);
}

TEST_F(LaunchTest, DisabledAndExcludedNodesDoNotStart) {
    const std::string file = write_launch(
        "  kept:\n    command: [sh, -c, 'echo ran-kept']\n"
        "  off:\n    command: [sh, -c, 'echo ran-off']\n    disabled: true\n"
        "  cut:\n    command: [sh, -c, 'echo ran-cut']\n"
        "  also_cut:\n    command: [sh, -c, 'echo ran-also-cut']\n");
    Process& p = start({"launch", file, "-e", "cut", "also_cut"});
    const auto status = expect_exit(p);
    EXPECT_TRUE(status.success()) << status.describe();
    const auto lines = p.lines();
    EXPECT_TRUE(has_line(lines, "[kept] ran-kept")) << joined(lines);
    for (const std::string name : {"off", "cut", "also-cut"}) {
        EXPECT_FALSE(has_line(lines, "ran-" + name)) << joined(lines);
    }
    EXPECT_TRUE(has_line(lines, "[launch] skipped off: disabled")) << joined(lines);
    EXPECT_TRUE(has_line(lines, "[launch] skipped cut: excluded")) << joined(lines);
    EXPECT_TRUE(has_line(lines, "[launch] skipped also_cut: excluded")) << joined(lines);

    // An --exclude that names no node is a typo, not a no-op.
    const auto typo = run({"launch", file, "--exclude", "nobody"});
    ASSERT_TRUE(typo.status);
    EXPECT_EQ(typo.status->code, 2) << joined(typo.lines);
    EXPECT_TRUE(has_line(typo.lines, "--exclude nobody")) << joined(typo.lines);
}

TEST_F(LaunchTest, RespawnRestartsUpToTheLimit) {
    const std::string file = write_launch(
        "  flaky:\n    command: [sh, -c, 'echo run; exit 3']\n"
        "    respawn: true\n    respawn_delay: 0.05\n    max_restarts: 2\n");
    Process& p = start({"launch", file});
    const auto status = expect_exit(p);
    // The last run failed too: launch fails.
    EXPECT_TRUE(status.exited && status.code == 1) << status.describe();
    const auto lines = p.lines();
    EXPECT_EQ(count_prefix(lines, "[flaky] run"), 3u) << joined(lines);  // the first run and 2 restarts
    EXPECT_EQ(count_prefix(lines, "[launch] started flaky (pid "), 3u) << joined(lines);
    EXPECT_TRUE(has_line(lines, "restarting in 0.05 s (restart 1 of 2)")) << joined(lines);
    EXPECT_TRUE(has_line(lines, "not restarting: max_restarts (2) reached")) << joined(lines);
    EXPECT_TRUE(has_line(lines, "[launch]   flaky: exit 3, restarted 2 times")) << joined(lines);
}

TEST_F(LaunchTest, RespawnStopsOnCtrlC) {
    // A node that keeps exiting, with a long respawn delay: Ctrl-C cancels the pending restart.
    const std::string file = write_launch(
        "  blinker:\n    command: [sh, -c, 'echo up; exit 0']\n"
        "    respawn: true\n    respawn_delay: 30\n    max_restarts: -1\n");
    Process& p = start({"launch", file});
    expect_line(p, "restarting in 30 s (restart 1)");
    p.send_signal(SIGINT);
    const auto status = expect_exit(p, 5000ms);
    EXPECT_TRUE(status.success()) << status.describe();
    EXPECT_EQ(p.count_lines("[launch] started blinker"), 1u) << p.dump();
}

TEST_F(LaunchTest, CtrlCLeavesNoChildBehind) {
    // A clean node, one that ignores SIGINT (SIGTERM ends it), one that ignores SIGINT and SIGTERM
    // (only SIGKILL ends it), and a shell string whose node is a grandchild of launch. Each script
    // says "armed" once its traps are set, so the stop cannot come before them.
    const std::string file =
        write_launch("  listener:\n    command: " + list({test_node, "listen", "anything"}) +
                     "\n"
                     "  stubborn:\n    command: [sh, -c, 'trap \"\" INT; echo armed $$; sleep 30']\n"
                     "  hard:\n    command: [sh, -c, 'trap \"\" INT TERM; echo armed $$; sleep 30']\n"
                     "  wrapped:\n    command: sh -c 'trap \"\" INT; echo armed $$; sleep 30'\n");
    Process& p = start({"launch", file, "--grace", "0.5"});
    expect_line(p, "[listener] READY ");
    std::vector<pid_t> pids;
    for (const std::string label : {"listener", "stubborn", "hard", "wrapped"}) {
        pids.push_back(started_pid(expect_line(p, "[launch] started " + label + " (pid ")));
    }
    for (const std::string label : {"stubborn", "hard", "wrapped"}) {
        // "armed <pid of the script's shell>": for `wrapped` that is a grandchild of launch.
        const std::string line = expect_line(p, "[" + label + "] armed ");
        pids.push_back(static_cast<pid_t>(std::atoi(line.c_str() + line.rfind(' ') + 1)));
    }
    for (const pid_t pid : pids) {
        ASSERT_GT(pid, 0) << p.dump();
        ASSERT_EQ(::kill(pid, 0), 0) << "pid " << pid << " should be running\n" << p.dump();
    }

    const auto t0 = Clock::now();
    p.send_signal(SIGINT);
    const auto status = expect_exit(p);
    const auto took = std::chrono::duration_cast<Millis>(Clock::now() - t0);
    // `hard` needed SIGKILL: that is a failure.
    EXPECT_TRUE(status.exited && status.code == 1) << status.describe();
    EXPECT_LT(took, 5000ms) << "grace 0.5 s: SIGINT, 0.5 s, SIGTERM, 0.5 s, SIGKILL";
    for (const pid_t pid : pids) {
        EXPECT_TRUE(gone(pid, 2000ms)) << "pid " << pid << " outlived meshy launch";
    }
    const auto lines = p.lines();
    EXPECT_TRUE(has_line(lines, "[launch]   listener: exit 0")) << joined(lines);
    EXPECT_TRUE(has_line(lines, "[launch]   stubborn: stopped (SIGTERM)")) << joined(lines);
    EXPECT_TRUE(has_line(lines, "[launch]   hard: killed (SIGKILL)")) << joined(lines);
    EXPECT_TRUE(has_line(lines, "sending SIGTERM")) << joined(lines);
    EXPECT_TRUE(has_line(lines, "sending SIGKILL")) << joined(lines);
    EXPECT_TRUE(has_line(lines, "[listener] FINAL total=0")) << "the listener's last lines are printed\n"
                                                             << joined(lines);
}

TEST_F(LaunchTest, SigtermStopsLikeCtrlC) {
    const std::string file = write_launch("  listener:\n    command: " + list({test_node, "listen", "x"}) + "\n");
    Process& p = start({"launch", file});
    const pid_t child = started_pid(expect_line(p, "[launch] started listener (pid "));
    expect_line(p, "[listener] READY ");
    p.send_signal(SIGTERM);
    const auto status = expect_exit(p);
    EXPECT_TRUE(status.success()) << status.describe();
    EXPECT_TRUE(gone(child, 2000ms));
    EXPECT_TRUE(has_line(p.lines(), "[launch] got SIGTERM: stopping every node")) << p.dump();
}

TEST_F(LaunchTest, EnvCwdAndArgsReachTheNode) {
    fs::create_directory(tmp_ / "work");
    const std::string file = write_launch(
        "  listed:\n"
        "    command: [sh, -c, 'echo \"FOO=$FOO DOMAIN=$MESHY_DOMAIN_ID\"; pwd; echo \"args:$*\"']\n"
        "    env: {FOO: bar baz, NUMBER: 42}\n"
        "    cwd: work\n"
        "    args: [one, two words]\n"
        "  shelled:\n"
        "    command: echo \"N=$NUMBER\"; echo got\n"
        "    env:\n      NUMBER: 7\n"
        "    args: \"x 'y z'\"\n");
    Process& p = start({"launch", file});
    const auto status = expect_exit(p);
    EXPECT_TRUE(status.success()) << status.describe();
    const auto lines = p.lines();
    EXPECT_TRUE(has_line(lines, "[listed] FOO=bar baz DOMAIN=" + domain_)) << joined(lines);
    EXPECT_TRUE(has_line(lines, "[listed] " + (tmp_ / "work").string())) << joined(lines);
    // sh -c SCRIPT --name listed one 'two words': $0 is --name, then the rest.
    EXPECT_TRUE(has_line(lines, "[listed] args:listed one two words")) << joined(lines);
    EXPECT_TRUE(has_line(lines, "[shelled] N=7")) << joined(lines);
    // A shell string gets ` --name NAME` and the args appended, quoted.
    EXPECT_TRUE(has_line(lines, "[shelled] got --name shelled x y z")) << joined(lines);
}

TEST_F(LaunchTest, FailedNodeMakesLaunchFail) {
    const std::string file = write_launch(
        "  good:\n    command: [sh, -c, 'exit 0']\n"
        "  bad:\n    command: [sh, -c, 'echo oops >&2; exit 1']\n"
        "  missing:\n    command: [no-such-command-for-meshy-launch]\n");
    Process& p = start({"launch", file});
    const auto status = expect_exit(p);
    EXPECT_TRUE(status.exited && status.code == 1) << status.describe();
    const auto lines = p.lines();
    EXPECT_TRUE(has_line(lines, "[bad] oops")) << "stderr lines are prefixed too\n" << joined(lines);
    EXPECT_TRUE(has_line(lines, "[launch]   good: exit 0")) << joined(lines);
    EXPECT_TRUE(has_line(lines, "[launch]   bad: exit 1")) << joined(lines);
    EXPECT_TRUE(
        has_line(lines, "[launch]   missing: failed to start: 'no-such-command-for-meshy-launch': command not found"))
        << joined(lines);
    EXPECT_TRUE(has_line(lines, "meshy: error: 2 of 3 node processes failed")) << joined(lines);
}

TEST_F(LaunchTest, LinesArePrefixedWholeAndNeverInterleaved) {
    // Two copies writing long lines as fast as they can, in pieces: every line launch prints must
    // be one whole line of one copy.
    const std::string line(200, 'x');
    const std::string file = write_launch(
        "  spam:\n    command: [sh, -c, 'i=0; while [ $i -lt 300 ]; do printf \"%d \" $i; printf \"" + line +
        "\\n\"; i=$((i+1)); done; printf \"no newline\"']\n"
        "    number: 2\n");
    Process& p = start({"launch", file});
    const auto status = expect_exit(p);
    EXPECT_TRUE(status.success()) << status.describe();
    std::map<std::string, std::set<int>> seen;
    for (const auto& l : p.lines(meshy::test::Stream::out)) {
        if (l.starts_with("[launch]")) {
            continue;
        }
        const auto close = l.find("] ");
        ASSERT_TRUE(l.starts_with("[spam#") && close != std::string::npos) << l;
        const std::string label = l.substr(1, close - 1);
        const std::string text = l.substr(close + 2);
        if (text == "no newline") {
            seen[label].insert(-1);  // the unfinished last line, flushed at exit
            continue;
        }
        const auto space = text.find(' ');
        ASSERT_NE(space, std::string::npos) << l;
        ASSERT_EQ(text.substr(space + 1), line) << l;
        seen[label].insert(std::atoi(text.c_str()));
    }
    ASSERT_EQ(seen.size(), 2u);
    for (const auto& [label, numbers] : seen) {
        EXPECT_EQ(numbers.size(), 301u) << label;
    }
}

TEST_F(LaunchTest, DryRunPrintsThePlanAndStartsNothing) {
    const std::string marker = (tmp_ / "marker").string();
    const std::string file = write_launch("  talker:\n    command: touch " + marker +
                                          "\n    number: 2\n    pre_delay: 0.5\n    env: {A: b}\n    cwd: /tmp\n"
                                          "    respawn: true\n"
                                          "  elsewhere:\n    command: [touch, " +
                                          marker +
                                          "]\n    on_host: no-such-host.invalid\n"
                                          "  off:\n    command: touch " +
                                          marker +
                                          "\n    disabled: true\n"
                                          "  cut:\n    command: touch " +
                                          marker + "\n");
    const auto result = run({"launch", "--dry-run", file, "-e", "cut"});
    ASSERT_TRUE(result.status);
    EXPECT_TRUE(result.status->success()) << joined(result.lines);
    const auto& lines = result.lines;
    const std::string host = host_name();
    EXPECT_TRUE(has_line(lines, "domain_id: " + domain_ + " (from the file)")) << joined(lines);
    EXPECT_TRUE(has_line(lines, "  talker (line 3): on host " + host + ": start")) << joined(lines);
    // A simple shell command runs through `exec`: the node is the process launch watches.
    EXPECT_TRUE(has_line(lines, "argv: [\"/bin/sh\", \"-c\", \"exec touch " + marker + " --name talker\"]"))
        << joined(lines);
    EXPECT_TRUE(has_line(lines, "copies: 2")) << joined(lines);
    EXPECT_TRUE(has_line(lines, "pre_delay: 0.5 s, post_delay: 0 s")) << joined(lines);
    EXPECT_TRUE(has_line(lines, "env: A=b")) << joined(lines);
    EXPECT_TRUE(has_line(lines, "cwd: /tmp")) << joined(lines);
    EXPECT_TRUE(has_line(lines, "respawn: yes, respawn_delay 1 s, max_restarts 3")) << joined(lines);
    EXPECT_TRUE(has_line(lines, "elsewhere (line 10): skipped: on_host is no-such-host.invalid, this host is " + host))
        << joined(lines);
    EXPECT_TRUE(has_line(lines, "argv: [\"touch\", \"" + marker + "\", \"--name\", \"elsewhere\"]")) << joined(lines);
    EXPECT_TRUE(has_line(lines, "off (line 13): skipped: disabled")) << joined(lines);
    EXPECT_TRUE(has_line(lines, "cut (line 16): skipped: excluded")) << joined(lines);
    EXPECT_FALSE(has_line(lines, "started")) << joined(lines);
    EXPECT_FALSE(fs::exists(marker)) << "--dry-run started something";
}

TEST_F(LaunchTest, ConfigDefaultsToLaunchYamlInTheWorkingDirectory) {
    write_launch("  only:\n    command: [true]\n");
    const auto result = run_command(
        {"/bin/sh", "-c", "cd '" + tmp_.string() + "' && exec '" + cli + "' launch --dry-run"}, exit_timeout, env_);
    ASSERT_TRUE(result.status);
    EXPECT_TRUE(result.status->success()) << joined(result.lines);
    EXPECT_TRUE(has_line(result.lines, "launch file: launch.yaml")) << joined(result.lines);
    EXPECT_TRUE(has_line(result.lines, "only (line 3)")) << joined(result.lines);
}

TEST_F(LaunchTest, SchemaErrorsNameFileLineAndKey) {
    struct Case {
        std::string body;
        std::string expected;  // after "<file>:"
    };
    const std::vector<Case> cases = {
        {"nodes:\n  talker:\n    command: x\n    numbr: 3\n",
         "4: nodes.talker.numbr: unknown key (expected one of: command, shell, disabled, on_host, number, "
         "pre_delay, post_delay, env, cwd, respawn, respawn_delay, max_restarts, args, pass_name)"},
        {"domain: x\nnodes:\n  t: {command: x}\n",
         "1: domain: unknown key (expected one of: domain_id, domain_key_file, peers, nodes)"},
        {"peers: [udp/h:1]\nnodes:\n  t: {command: x}\n", "1: peers: 'udp/h:1' is not tcp/HOST:PORT or unix/PATH"},
        {"nodes:\n  talker:\n    shell: true\n", "2: nodes.talker: missing key 'command'"},
        {"nodes:\n  a:\n    command: x\n    number: 0\n", "4: nodes.a.number: must be at least 1, got 0"},
        {"nodes:\n  a:\n    command: x\n    number: three\n", "4: nodes.a.number: expected an integer, got 'three'"},
        {"nodes:\n  a:\n    command: x\n    post_delay: -2\n", "4: nodes.a.post_delay: must not be negative"},
        {"nodes:\n  a:\n    command: x\n    respawn: sometimes\n", "4: nodes.a.respawn: expected true or false"},
        {"nodes:\n  a:\n    command: x\n    env: [A]\n", "4: nodes.a.env: expected a map of NAME: value"},
        {"nodes:\n  a:\n    command: x\n  a:\n    command: y\n", "4: nodes.a: duplicate node name"},
        {"nodes:\n  a:\n    command: [x\n    shell: false\n", "YAML syntax error"},
        {"nodes:\n  a:\n    command: x\n   bad indent: 1\n", "YAML syntax error"},
        {"", "the file is empty"},
    };
    for (const auto& c : cases) {
        SCOPED_TRACE(c.body);
        const std::string file = write_file(c.body, "bad.yaml");
        const auto result = run({"launch", file});
        ASSERT_TRUE(result.status);
        EXPECT_EQ(result.status->code, 2) << joined(result.lines);
        ASSERT_EQ(result.lines.size(), 1u) << joined(result.lines);
        EXPECT_TRUE(result.lines[0].starts_with("meshy: error: " + file + ":")) << result.lines[0];
        EXPECT_NE(result.lines[0].find(c.expected), std::string::npos) << result.lines[0];
    }
    // A syntax error names its line too.
    const std::string file = write_file("nodes:\n  a:\n    command: x\n   bad indent: 1\n", "bad.yaml");
    const auto syntax = run({"launch", file});
    ASSERT_EQ(syntax.lines.size(), 1u);
    EXPECT_NE(syntax.lines[0].find(file + ":4: YAML syntax error"), std::string::npos) << syntax.lines[0];

    const auto missing = run({"launch", (tmp_ / "nope.yaml").string()});
    ASSERT_TRUE(missing.status);
    EXPECT_EQ(missing.status->code, 2);
    ASSERT_EQ(missing.lines.size(), 1u) << joined(missing.lines);
    EXPECT_NE(missing.lines[0].find("nope.yaml: No such file or directory"), std::string::npos) << missing.lines[0];
}

TEST_F(LaunchTest, KillNineOfLaunchLeavesNoOrphan) {
    // kill -9 gives launch no chance to stop anything: its guardian does. A plain node, a shell
    // string run through `exec`, a shell script whose node is a grandchild of launch, and one that
    // ignores SIGTERM (the guardian's SIGKILL after the grace period ends it).
    const std::string file =
        write_launch("  listener:\n    command: " + list({test_node, "listen", "anything"}) +
                     "\n"
                     "  execed:\n    command: sleep 30\n    pass_name: false\n"
                     "  wrapped:\n    command: echo started; sh -c 'echo armed $$; sleep 30'\n"
                     "    pass_name: false\n"
                     "  hard:\n    command: [sh, -c, 'trap \"\" INT TERM; echo armed $$; sleep 30']\n");
    Process& p = start({"launch", file, "--grace", "0.5"});
    expect_line(p, "[listener] READY ");
    std::vector<pid_t> pids;
    for (const std::string label : {"listener", "execed", "wrapped", "hard"}) {
        pids.push_back(started_pid(expect_line(p, "[launch] started " + label + " (pid ")));
    }
    for (const std::string label : {"wrapped", "hard"}) {
        const std::string line = expect_line(p, "[" + label + "] armed ");
        pids.push_back(static_cast<pid_t>(std::atoi(line.c_str() + line.rfind(' ') + 1)));
    }
    for (const pid_t pid : pids) {
        ASSERT_GT(pid, 0) << p.dump();
        ASSERT_EQ(::kill(pid, 0), 0) << "pid " << pid << " should be running\n" << p.dump();
    }
    p.send_signal(SIGKILL);
    const auto status = expect_exit(p);
    EXPECT_FALSE(status.exited) << status.describe();
    for (const pid_t pid : pids) {
        EXPECT_TRUE(ended(pid, 5000ms)) << "pid " << pid << " outlived a kill -9 of meshy launch";
    }
}

TEST_F(LaunchTest, TheMeshyCliRunsAsANode) {
    // `--name NAME` is not appended to the meshy CLI (its commands take none), nor where
    // pass_name: false says so.
    const std::string file =
        write_launch("  echo:\n    command: " + list({cli, "topic", "echo", "from-launch", "--once"}) +
                     "\n"
                     "  send:\n    command: " +
                     list({cli, "topic", "send", "from-launch", "hi"}) +
                     "\n"
                     "  plain:\n    command: echo plain\n    pass_name: false\n");
    const auto plan = run({"launch", "--dry-run", file});
    ASSERT_TRUE(plan.status && plan.status->success()) << joined(plan.lines);
    EXPECT_FALSE(has_line(plan.lines, "--name")) << joined(plan.lines);
    EXPECT_TRUE(has_line(plan.lines, "argv: [\"/bin/sh\", \"-c\", \"exec echo plain\"]")) << joined(plan.lines);

    Process& p = start({"launch", file});
    const auto status = expect_exit(p, flow_timeout);
    EXPECT_TRUE(status.success()) << status.describe();
    const auto lines = p.lines();
    EXPECT_TRUE(has_line(lines, "[echo]   args: (\"hi\")")) << joined(lines);
    EXPECT_TRUE(has_line(lines, "[plain] plain")) << joined(lines);
}

namespace {

// launch.yaml's domain_key_file (relative to the file) reaches every node: a keyed listener and
// sender talk; a node outside the launch without the key is refused by the listener. A key file
// open to others stops the launch before any node starts.
TEST_F(LaunchTest, DomainKeyFileReachesEveryNode) {
    const auto made = run_command(
        {"/bin/sh", "-c", "umask 022 && \"$0\" key generate > \"$1\"", cli, (tmp_ / "lab.key").string()}, exit_timeout);
    ASSERT_TRUE(made.status && made.status->success()) << joined(made.lines);
    const std::string file =
        write_file("domain_id: " + domain_ + "\ndomain_key_file: lab.key\nnodes:\n  listener:\n" +
                   "    command: " + list({test_node, "listen", "keyed"}) + "\n  talker:\n" +
                   "    command: " + list({test_node, "send", "keyed", "3", "--text", "k"}) + "\n");
    Process& p = start({"launch", file});
    expect_line(p, "[listener] RECV keyed 2 k", flow_timeout);
    auto outsider_env = env_;
    outsider_env["MESHY_DOMAIN_ID"] = domain_;
    const auto outsider =
        run_command({test_node, "send", "keyed", "1", "--wait-timeout-ms", "3000"}, flow_timeout, outsider_env);
    EXPECT_FALSE(outsider.status && outsider.status->success()) << joined(outsider.lines);
    EXPECT_TRUE(p.wait_for_line("domain key mismatch", flow_timeout)) << p.dump();
    p.send_signal(SIGINT);
    expect_exit(p);

    ::chmod((tmp_ / "lab.key").c_str(), 0644);
    const auto refused = run({"launch", file});
    ASSERT_TRUE(refused.status);
    EXPECT_FALSE(refused.status->success());
    EXPECT_EQ(refused.lines.size(), 1u) << joined(refused.lines);
    EXPECT_NE(joined(refused.lines).find("chmod 600"), std::string::npos) << joined(refused.lines);
}

}  // namespace
