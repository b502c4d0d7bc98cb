// The chaos suite's shared machinery: nodes as real processes (meshy_test_node) discovering each
// other through the real avahi-daemon, a measured stream between two stable nodes, and what a test
// reads of a process from /proc (resident memory, open descriptors).
//
// Isolation: every test has its own domain ID (test name + pid) and its own runtime directory, so
// tests running beside it on the same avahi-daemon never see its nodes.
#pragma once

#include <gtest/gtest.h>
#include <signal.h>
#include <unistd.h>

#include <algorithm>
#include <cctype>
#include <cerrno>
#include <cstdint>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <functional>
#include <iostream>
#include <map>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "process.hpp"

namespace meshy::chaos {

using meshy::test::Millis;
using meshy::test::Process;
using namespace std::chrono_literals;
namespace fs = std::filesystem;

inline constexpr Millis startup_timeout{15000};
inline constexpr Millis discovery_timeout{10000};
inline constexpr Millis exit_timeout{15000};

/// `key=value` out of a record line ("READY id=.. tcp=.."); empty when absent.
inline std::string field(const std::string& line, const std::string& key) {
    const std::string needle = key + "=";
    std::size_t at = 0;
    while ((at = line.find(needle, at)) != std::string::npos) {
        if (at == 0 || line[at - 1] == ' ') {
            const std::size_t start = at + needle.size();
            return line.substr(start, line.find(' ', start) - start);
        }
        at += needle.size();
    }
    return {};
}

/// A "<field>: <n> kB" line of /proc/<pid>/status, in KiB; 0 when absent or the process is gone.
inline std::uint64_t status_kib(pid_t pid, const std::string& field) {
    std::ifstream in("/proc/" + std::to_string(pid) + "/status");
    std::string line;
    while (std::getline(in, line)) {
        if (line.rfind(field + ":", 0) == 0) {
            return std::stoull(line.substr(field.size() + 1));
        }
    }
    return 0;
}

/// Resident memory of a process in KiB (VmRSS); 0 when it is gone.
inline std::uint64_t rss_kib(pid_t pid) {
    return status_kib(pid, "VmRSS");
}

/// Resident memory of a process by kind ("anon=.. file=.. shmem=.." in KiB), for a figure.
inline std::string rss_parts(pid_t pid) {
    return "anon=" + std::to_string(status_kib(pid, "RssAnon")) +
           " file=" + std::to_string(status_kib(pid, "RssFile")) +
           " shmem=" + std::to_string(status_kib(pid, "RssShmem"));
}

/// Open descriptors of a process.
inline std::size_t fd_count(pid_t pid) {
    std::error_code ec;
    std::size_t n = 0;
    for (fs::directory_iterator it("/proc/" + std::to_string(pid) + "/fd", ec), end; !ec && it != end;
         it.increment(ec)) {
        ++n;
    }
    return n;
}

/// One line for docs/reliability.md's table: `CHAOS-FIGURE <test> <name>=<value>`.
inline void figure(const std::string& name, const std::string& value) {
    const auto* info = testing::UnitTest::GetInstance()->current_test_info();
    std::cout << "CHAOS-FIGURE " << info->test_suite_name() << "." << info->name() << " " << name << "=" << value
              << std::endl;
    testing::Test::RecordProperty(name, value);
}

// ---- the wire protocol, written by hand (src/wire/frame.hpp) ---------------------------------------

inline std::string u16le(unsigned v) {
    return {static_cast<char>(v & 0xff), static_cast<char>((v >> 8) & 0xff)};
}
inline std::string u32le(std::uint32_t v) {
    return u16le(v & 0xffff) + u16le(v >> 16);
}
inline std::string str8(const std::string& s) {
    return std::string(1, static_cast<char>(s.size())) + s;
}
/// A version-1 handshake (src/wire/frame.hpp): "MSHY" | u16 version | u16 body length | body.
inline std::string handshake(const std::string& domain,
                             const std::string& id = "00000000-0000-4000-8000-0000c4a05bad",
                             const std::string& magic = "MSHY",
                             unsigned version = 1) {
    const std::string body = str8(id) + str8(domain) + str8("chaos-client") + str8("localhost");
    return magic + u16le(version) + u16le(static_cast<unsigned>(body.size())) + body;
}
/// What a count-only listener reported when stopped.
struct Final {
    std::int64_t total = -1, senders = -1, violations = -1, missing = -1;
};

class ChaosTest : public testing::Test {
protected:
    void SetUp() override {
        const auto* info = testing::UnitTest::GetInstance()->current_test_info();
        std::string name = std::string(info->test_suite_name()) + "." + info->name();
        for (auto& c : name) {
            c = std::isalnum(static_cast<unsigned char>(c)) ? c : '-';
        }
        domain_ = "chaos-" + name + "-" + std::to_string(::getpid());
        if (domain_.size() > 60) {
            domain_ = "chaos-" + std::to_string(std::hash<std::string>{}(name)) + "-" + std::to_string(::getpid());
        }
        char tmpl[] = "/tmp/meshy-chaos-XXXXXX";
        ASSERT_NE(::mkdtemp(tmpl), nullptr) << "mkdtemp: " << std::strerror(errno);
        tmp_ = tmpl;
        if (const auto& problem = meshy::test::avahi_problem(MESHY_TEST_NODE_PATH, env())) {
            FAIL() << *problem;
        }
    }

    void TearDown() override {
        for (auto& p : procs_) {
            if (p->running()) {
                p->send_signal(SIGINT);
            }
        }
        for (auto& p : procs_) {
            if (p->running()) {
                p->wait_exit(exit_timeout);
            }
        }
        if (HasFailure()) {
            std::cout << "== domain " << domain_ << "\n";
            for (auto& p : procs_) {
                std::cout << tail(*p, 60);
            }
        }
        procs_.clear();
        std::error_code ignored;
        fs::remove_all(tmp_, ignored);
    }

    /// A process's last `n` lines (a soak's listener prints thousands).
    static std::string tail(const Process& p, std::size_t n) {
        const auto lines = p.lines();
        std::string out = "---- " + p.label() + " (last " + std::to_string(std::min(n, lines.size())) + " of " +
                          std::to_string(lines.size()) + " lines)\n";
        for (std::size_t i = lines.size() > n ? lines.size() - n : 0; i < lines.size(); ++i) {
            out += lines[i] + "\n";
        }
        return out;
    }

    std::map<std::string, std::string> env() const {
        return {{"MESHY_DISCOVERY", "avahi"},
                {"MESHY_DOMAIN_ID", domain_},
                {"XDG_RUNTIME_DIR", tmp_.string()},
                {"MESHY_LOG", "warn"}};
    }

    /// Starts meshy_test_node with `args`; `prefix` (e.g. prlimit) runs it.
    Process& spawn(std::vector<std::string> args, const std::string& label, std::vector<std::string> prefix = {}) {
        args.insert(args.begin(), MESHY_TEST_NODE_PATH);
        args.insert(args.begin(), prefix.begin(), prefix.end());
        procs_.push_back(std::make_unique<Process>(std::move(args), env(), label));
        return *procs_.back();
    }

    /// Starts one and waits for READY. @returns the READY line (empty on timeout, with a failure).
    std::string spawn_ready(Process*& out,
                            std::vector<std::string> args,
                            const std::string& label,
                            std::vector<std::string> prefix = {}) {
        out = &spawn(std::move(args), label, std::move(prefix));
        auto line = out->wait_for_line("READY ", startup_timeout);
        EXPECT_TRUE(line) << label << " not ready:\n" << out->dump();
        return line.value_or("");
    }

    /// Stops a count-only listener (SIGTERM) and reads its FINAL record.
    static Final stop_listener(Process& p) {
        p.send_signal(SIGTERM);
        Final f;
        if (const auto line = p.wait_for_line("FINAL ", exit_timeout)) {
            f.total = std::stoll(field(*line, "total"));
            f.senders = std::stoll(field(*line, "senders"));
            f.violations = std::stoll(field(*line, "violations"));
            f.missing = std::stoll(field(*line, "missing"));
        }
        p.wait_exit(exit_timeout);
        return f;
    }

    /// Stops an endless sender (SIGTERM). @returns how many it sent (-1: no SENT line).
    static std::int64_t stop_sender(Process& p) {
        p.send_signal(SIGTERM);
        const auto line = p.wait_for_line("SENT ", exit_timeout);
        p.wait_exit(exit_timeout);
        return line ? std::stoll(line->substr(5)) : -1;
    }

    /// Waits until a count-only listener (report-every dividing `n`) has reported `n` messages.
    static bool wait_count(Process& p, std::int64_t n, Millis timeout) {
        const std::string want = "COUNT " + std::to_string(n);
        return p.wait_for_match([&](const std::string& l) { return l == want; }, timeout).has_value();
    }

    /// Sum of the numbers in the node's "dropped N message(s) to <peer>" warnings about `peer`.
    static std::int64_t reported_drops(const Process& p, const std::string& peer) {
        std::int64_t sum = 0;
        for (const auto& l : p.lines()) {
            const auto at = l.find("dropped ");
            if (at == std::string::npos || l.find(" message(s) to " + peer) == std::string::npos) {
                continue;
            }
            sum += std::stoll(l.substr(at + 8));
        }
        return sum;
    }

    std::string domain_;
    fs::path tmp_;
    std::vector<std::unique_ptr<Process>> procs_;
};

}  // namespace meshy::chaos
