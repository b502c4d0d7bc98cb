// Shared by the integration tests whose binary is also the nodes it starts (--role): what a role
// says, how it waits to be stopped, its arguments; and the test side's waits and checks.
#pragma once

#include <gtest/gtest.h>
#include <signal.h>
#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <functional>
#include <map>
#include <memory>
#include <meshy/domain_key.hpp>
#include <string>
#include <utility>
#include <vector>

#include "process.hpp"

namespace meshy::test {

/// A line on stdout, flushed: the test reads it as it comes.
inline void say(const std::string& line) {
    std::printf("%s\n", line.c_str());
    std::fflush(stdout);
}

/// The signals that end a role (the test's way to stop it).
inline sigset_t stop_signals() {
    sigset_t set;
    sigemptyset(&set);
    sigaddset(&set, SIGTERM);
    sigaddset(&set, SIGINT);
    return set;
}

/// Blocks until SIGTERM or SIGINT, which main() blocked before any thread started.
inline void wait_for_stop() {
    const sigset_t set = stop_signals();
    int sig = 0;
    ::sigwait(&set, &sig);
}

/// The value after `name` in a role's arguments, or `otherwise`.
inline std::string arg(const std::vector<std::string>& args, const std::string& name, const std::string& otherwise) {
    const auto it = std::find(args.begin(), args.end(), name);
    return it != args.end() && it + 1 != args.end() ? *(it + 1) : otherwise;
}

/// The last lines a child printed, for failure messages.
inline std::string out(const Process& p) {
    const auto lines = p.lines();
    std::string text = "--- " + p.label() + " ---\n";
    for (std::size_t i = lines.size() > 40 ? lines.size() - 40 : 0; i < lines.size(); ++i) {
        text += lines[i] + "\n";
    }
    return text;
}

/// Stops a child with SIGTERM and expects a clean exit (under ASan: no leak, no error report).
inline void expect_clean_stop(Process& p) {
    p.send_signal(SIGTERM);
    const auto status = p.wait_exit(Millis(20000));
    ASSERT_TRUE(status) << p.label() << " did not stop";
    EXPECT_TRUE(status->success()) << p.label() << ": " << status->describe() << "\n" << out(p);
}

/// A test whose nodes are roles of this binary, in a domain of their own on local discovery under a
/// directory of the test's own. The directory's name is short: the nodes' Unix socket paths lie
/// below it (at most 107 bytes).
class RoleNodesTest : public ::testing::Test {
protected:
    /// `prefix` names the test binary's directories and domain.
    explicit RoleNodesTest(std::string prefix) : prefix_(std::move(prefix)) {}

    void SetUp() override {
        static int test_index = 0;
        tmp_ = std::filesystem::temp_directory_path() /
               (prefix_ + "-" + std::to_string(::getpid()) + "-" + std::to_string(test_index++));
        std::filesystem::remove_all(tmp_);
        std::filesystem::create_directories(tmp_ / "discovery");
        std::filesystem::create_directories(tmp_ / "run");
    }
    void TearDown() override {
        std::error_code ec;
        std::filesystem::remove_all(tmp_, ec);
    }

    /// A role's environment, shared memory allowed (MESHY_SHM=1) or not.
    std::map<std::string, std::string> env(bool shm) const {
        return {{"MESHY_DISCOVERY", "local"},
                {"MESHY_LOCAL_DISCOVERY_DIR", (tmp_ / "discovery").string()},
                {"XDG_RUNTIME_DIR", (tmp_ / "run").string()},
                {"MESHY_DOMAIN_ID", prefix_ + "-" + std::to_string(::getpid())},
                {"MESHY_LISTEN_HOST", "127.0.0.1"},
                {"MESHY_SHM", shm ? "1" : "0"},
                {"MESHY_DOMAIN_KEY_FILE", domain_key_file_}};
    }

    /// Roles started from now on share a fresh domain key (a keyed domain).
    void use_domain_key() {
        domain_key_file_ = (tmp_ / "domain.key").string();
        std::ofstream(domain_key_file_) << meshy::generate_domain_key_text();
        std::filesystem::permissions(domain_key_file_, std::filesystem::perms::owner_read);
    }

    /// Starts this binary as the role `role` (its name, then its arguments).
    std::unique_ptr<Process> start_role(std::vector<std::string> role, bool shm, const std::string& label) const {
        role.insert(role.begin(), {std::filesystem::read_symlink("/proc/self/exe").string(), "--role"});
        return std::make_unique<Process>(std::move(role), env(shm), label);
    }

    std::filesystem::path tmp_;
    std::string domain_key_file_;  // empty: no key

private:
    std::string prefix_;
};

/// A role's entry point: its arguments after `--role`, the role's name first.
using Role = std::function<int(const std::vector<std::string>&)>;

/// The body of main() for a test binary that is also the nodes it starts: with `--role NAME ...` it
/// runs that role (with the stop signals blocked before any thread starts, so that they wait for
/// sigwait()), else the tests.
inline int run_role_or_tests(int argc, char** argv, const std::map<std::string, Role>& roles) {
    if (argc > 2 && std::string(argv[1]) == "--role") {
        const sigset_t stop = stop_signals();
        ::pthread_sigmask(SIG_BLOCK, &stop, nullptr);
        const std::vector<std::string> args(argv + 2, argv + argc);
        const auto role = roles.find(args[0]);
        if (role == roles.end()) {
            std::printf("ERROR unknown role %s\n", args[0].c_str());
            return 2;
        }
        try {
            return role->second(args);
        } catch (const std::exception& e) {
            std::printf("ERROR %s\n", e.what());
            return 1;
        }
    }
    ::testing::InitGoogleTest(&argc, argv);
    return RUN_ALL_TESTS();
}

}  // namespace meshy::test
