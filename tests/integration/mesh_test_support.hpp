// Shared by the mesh integration tests (mesh_*_test.cpp): real meshy_test_node (and example)
// processes talking over loopback, each test once per discovery backend (MESHY_DISCOVERY=avahi /
// local in the children's environment).
//
// Isolation: every test has its own domain ID (test name + pid) and its own temp directory (local
// discovery files, Unix sockets through XDG_RUNTIME_DIR), so tests may run in parallel.
// Avahi: the tests need a reachable avahi-daemon; scripts/test.sh provides a private loopback one.
// Without it the Avahi variants fail (on purpose: a silent skip would hide a broken setup).
// Waits are bounded and poll for an outcome; none sleeps for a fixed time.
#pragma once

#include <arpa/inet.h>
#include <gtest/gtest.h>
#include <netinet/in.h>
#include <poll.h>
#include <signal.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

#include <algorithm>
#include <cctype>
#include <cerrno>
#include <chrono>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <functional>
#include <iostream>
#include <map>
#include <memory>
#include <optional>
#include <stdexcept>
#include <string>
#include <thread>
#include <vector>

#include "proc_stats.hpp"
#include "process.hpp"
#include "sanitizer.hpp"

#ifndef MESHY_TEST_NODE_PATH
#    error "MESHY_TEST_NODE_PATH must name the meshy_test_node binary"
#endif
#ifndef MESHY_EXAMPLES_DIR
#    error "MESHY_EXAMPLES_DIR must name the directory of the example binaries"
#endif

namespace meshy::test {

namespace fs = std::filesystem;

enum class Backend { avahi, local };

inline const char* backend_name(Backend b) {
    return b == Backend::avahi ? "avahi" : "local";
}

// Names the parameter in ctest's test names ("# GetParam() = avahi").
inline void PrintTo(Backend b, std::ostream* os) {
    *os << backend_name(b);
}

inline std::string param_name(const testing::TestParamInfo<Backend>& info) {
    return backend_name(info.param);
}

// Expected times on loopback: a process is up in well under a second (ASan included); discovery
// takes ~1 s with Avahi and 0.1-0.3 s with the local backend. Deadlines leave room for a loaded
// 2-core CI machine, and are only ever reached when something is broken.
constexpr Millis startup_timeout{10000};
constexpr Millis exit_timeout{5000};
constexpr Millis delivery_timeout{3000};  // between connected nodes

/// Thrown by the helpers below when an expected line does not come: gtest reports the exception
/// as a failure of the test, and TearDown dumps every process's output.
struct Missing : std::runtime_error {
    using std::runtime_error::runtime_error;
};

inline std::string expect_line(Process& p, const std::string& substring, Millis timeout, std::size_t from = 0) {
    if (auto line = p.wait_for_line(substring, timeout, from)) {
        return *line;
    }
    throw Missing(p.label() + ": no line containing \"" + substring + "\" within " + std::to_string(timeout.count()) +
                  " ms");
}

using Match = std::function<bool(const std::string&)>;

inline std::string expect_line(
    Process& p, const Match& match, const std::string& what, Millis timeout, std::size_t from = 0) {
    if (auto line = p.wait_for_match(match, timeout, from)) {
        return *line;
    }
    throw Missing(p.label() + ": no line matching " + what + " within " + std::to_string(timeout.count()) + " ms");
}

inline ExitStatus expect_exit(Process& p, Millis timeout) {
    if (auto status = p.wait_exit(timeout)) {
        return *status;
    }
    throw Missing(p.label() + ": still running after " + std::to_string(timeout.count()) + " ms");
}

/// The value of `key=value` in a line ("" when absent).
inline std::string field(const std::string& line, const std::string& key) {
    const std::string k = key + "=";
    std::size_t at = line.rfind(k, 0) == 0 ? 0 : line.find(" " + k);
    if (at == std::string::npos) {
        return {};
    }
    at = line.find('=', at) + 1;
    return line.substr(at, line.find(' ', at) - at);
}

inline std::size_t count_prefix(const std::vector<std::string>& lines, const std::string& prefix) {
    std::size_t n = 0;
    for (const auto& l : lines) {
        n += l.rfind(prefix, 0) == 0 ? 1 : 0;
    }
    return n;
}

inline bool has_lines(const std::vector<Line>& lines, const std::string& prefix, std::size_t at_least = 1) {
    std::size_t n = 0;
    for (const auto& l : lines) {
        n += l.text.rfind(prefix, 0) == 0 ? 1 : 0;
    }
    return n >= at_least;
}

/// A LISTENERS line (send's topology report) that lists node `id` reached over unix or tcp.
inline Match lists_connected(const std::string& id) {
    return [id](const std::string& l) {
        return l.rfind("LISTENERS ", 0) == 0 &&
               (l.find(id + ":unix") != std::string::npos || l.find(id + ":shm") != std::string::npos ||
                l.find(id + ":tcp") != std::string::npos);
    };
}

inline double seconds_since(Clock::time_point t0) {
    return std::chrono::duration<double>(Clock::now() - t0).count();
}

// ---- the fixture -------------------------------------------------------------------------------

class MeshTest : public testing::TestWithParam<Backend> {
protected:
    void SetUp() override {
        const auto* info = testing::UnitTest::GetInstance()->current_test_info();
        std::string name = std::string(info->test_suite_name()) + "." + info->name();
        for (auto& c : name) {
            c = std::isalnum(static_cast<unsigned char>(c)) ? c : '-';
        }
        domain_ = name + "-" + std::to_string(::getpid());
        char tmpl[] = "/tmp/meshy-it-XXXXXX";
        ASSERT_NE(::mkdtemp(tmpl), nullptr) << "mkdtemp: " << std::strerror(errno);
        tmp_ = tmpl;
        if (GetParam() == Backend::avahi) {
            if (const auto& problem = avahi_problem()) {
                FAIL() << *problem;
            }
        }
    }

    void TearDown() override {
        // Children still running are asked to stop cleanly: a crash or a sanitizer report at exit
        // shows up as a failure here.
        for (auto& p : procs_) {
            if (p->running()) {
                p->send_signal(SIGINT);
            }
        }
        for (auto& p : procs_) {
            if (!stopped_on_purpose(*p) && p->running()) {
                const auto status = p->wait_exit(exit_timeout);
                EXPECT_TRUE(status && status->success())
                    << p->label() << " did not exit cleanly on SIGINT: " << (status ? status->describe() : "hung");
            }
        }
        if (HasFailure()) {
            std::cout << "== domain " << domain_ << ", backend " << backend_name(GetParam()) << "\n";
            for (auto& p : procs_) {
                std::cout << p->dump();
            }
        }
        procs_.clear();  // kills and reaps anything left
        std::error_code ignored;
        fs::remove_all(tmp_, ignored);
    }

    /// The children's environment: backend, domain, private directories, debug logs (they are
    /// only printed when a test fails).
    std::map<std::string, std::string> env(const std::string& domain = {}) const {
        std::map<std::string, std::string> e{
            {"MESHY_DISCOVERY", backend_name(GetParam())},
            {"MESHY_DOMAIN_ID", domain.empty() ? domain_ : domain},
            {"XDG_RUNTIME_DIR", tmp_.string()},
            {"MESHY_LOG", "debug"},
        };
        if (GetParam() == Backend::local) {
            e["MESHY_LOCAL_DISCOVERY_DIR"] = (tmp_ / "discovery").string();
        }
        return e;
    }

    Millis discovery_timeout() const { return GetParam() == Backend::avahi ? Millis(8000) : Millis(4000); }

    /// Starts meshy_test_node with `args`.
    Process& spawn(std::vector<std::string> args, const std::string& label, const std::string& domain = {}) {
        args.insert(args.begin(), MESHY_TEST_NODE_PATH);
        procs_.push_back(std::make_unique<Process>(std::move(args), env(domain), label));
        return *procs_.back();
    }

    /// Starts meshy_test_node and waits for its READY line. @returns the process and the line.
    std::pair<Process*, std::string> spawn_ready(std::vector<std::string> args,
                                                 const std::string& label,
                                                 const std::string& domain = {}) {
        Process& p = spawn(std::move(args), label, domain);
        return {&p, expect_line(p, "READY ", startup_timeout)};
    }

    static std::string example_path(const std::string& name) { return std::string(MESHY_EXAMPLES_DIR) + "/" + name; }

    /// Whether the examples take `--listen-host` (their --help says so). Tests bind loopback only, and
    /// without that flag an example's TCP server listens on every address (NodeOptions' default).
    static bool examples_bind_loopback() {
        static const bool supported = [] {
            const auto help = run_command({example_path("topic_listener"), "--help"}, Millis(10000));
            for (const auto& line : help.lines) {
                if (line.find("--listen-host") != std::string::npos) {
                    return true;
                }
            }
            return false;
        }();
        return supported;
    }

    /// Starts an example binary (examples/*.cpp), bound to 127.0.0.1.
    Process& spawn_example(const std::string& name, std::vector<std::string> args, const std::string& label) {
        args.insert(args.begin(), {example_path(name), "--listen-host", "127.0.0.1"});
        procs_.push_back(std::make_unique<Process>(std::move(args), env(), label));
        return *procs_.back();
    }

    /// Marks a process the test killed itself, so TearDown does not judge its exit.
    void killed(Process& p) { killed_.push_back(&p); }
    bool stopped_on_purpose(Process& p) const { return std::find(killed_.begin(), killed_.end(), &p) != killed_.end(); }

    /// A round trip listener -> sender -> listener (echo), and how the sender reaches the listener.
    void round_trip(const std::vector<std::string>& transport_flags, const std::string& expected_transport) {
        std::vector<std::string> listen_args{"listen", "rt", "--echo", "rt-reply", "--name", "listener"};
        listen_args.insert(listen_args.end(), transport_flags.begin(), transport_flags.end());
        auto [listener, ready] = spawn_ready(listen_args, "listener");
        const std::string listener_id = field(ready, "id");

        // Keeps sending (every 20 ms) until 5 echoes came back, then exits 0.
        std::vector<std::string> send_args{
            "send", "rt",     "0",     "--interval-ms", "20", "--reply-topic", "rt-reply", "--until-replies",
            "5",    "--name", "sender"};
        send_args.insert(send_args.end(), transport_flags.begin(), transport_flags.end());
        Process& sender = spawn(send_args, "sender");
        const auto status = expect_exit(sender, startup_timeout + discovery_timeout() + delivery_timeout);
        EXPECT_TRUE(status.success()) << status.describe();
        EXPECT_EQ(sender.count_lines("REPLIES 5"), 1u);
        EXPECT_GE(count_prefix(sender.lines(), "RECV rt-reply "), 5u);
        // The first message went out only once the listener was known: nothing lost at the start.
        expect_line(*listener, "RECV rt 0 msg", delivery_timeout);
        // The sender reached the listener over the expected transport, never over the other one.
        expect_line(
            sender, [&](const std::string& l) { return l == "LISTENERS 1 " + listener_id + ":" + expected_transport; },
            "LISTENERS 1 <listener>:" + expected_transport, Millis(0));
        const std::string other = expected_transport == "tcp" ? ":unix" : ":tcp";
        for (const auto& l : sender.lines()) {
            if (l.rfind("LISTENERS ", 0) == 0) {
                EXPECT_EQ(l.find(other), std::string::npos) << "the sender used the other transport: " << l;
            }
        }
    }

    /// Why the Avahi variant cannot run here (probed once per test binary).
    const std::optional<std::string>& avahi_problem() {
        return meshy::test::avahi_problem(MESHY_TEST_NODE_PATH, env());
    }

    std::string domain_;
    fs::path tmp_;
    std::vector<std::unique_ptr<Process>> procs_;
    std::vector<Process*> killed_;
};

// Tests that need Avahi itself (daemon restarts); instantiated for the Avahi backend only.
class AvahiDaemonTest : public MeshTest {};

// ---- raw TCP client for malformed input ---------------------------------------------------------

/// A plain POSIX TCP connection to 127.0.0.1:port.
class RawClient {
public:
    explicit RawClient(int port) {
        fd_ = ::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
        if (fd_ < 0) {
            throw std::runtime_error(std::string("socket: ") + std::strerror(errno));
        }
        sockaddr_in addr{};
        addr.sin_family = AF_INET;
        addr.sin_port = htons(static_cast<std::uint16_t>(port));
        addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
        if (::connect(fd_, reinterpret_cast<const sockaddr*>(&addr), sizeof addr) != 0) {
            const int e = errno;
            ::close(fd_);
            throw std::runtime_error("connect to 127.0.0.1:" + std::to_string(port) + ": " + std::strerror(e));
        }
    }
    ~RawClient() { ::close(fd_); }
    RawClient(const RawClient&) = delete;
    RawClient& operator=(const RawClient&) = delete;

    void send(const std::string& bytes) {
        // MSG_NOSIGNAL: the node may already have closed; that must not kill the test with SIGPIPE.
        if (::send(fd_, bytes.data(), bytes.size(), MSG_NOSIGNAL) != static_cast<ssize_t>(bytes.size())) {
            throw std::runtime_error(std::string("send: ") + std::strerror(errno));
        }
    }

    /// Reads and discards until the peer closes (EOF or reset). @returns false on timeout.
    bool wait_closed(Millis timeout) {
        const auto deadline = Clock::now() + timeout;
        char buf[4096];
        for (;;) {
            const auto left = std::chrono::duration_cast<Millis>(deadline - Clock::now());
            if (left.count() <= 0) {
                return false;
            }
            pollfd p{fd_, POLLIN, 0};
            const int r = ::poll(&p, 1, static_cast<int>(left.count()));
            if (r < 0 && errno == EINTR) {
                continue;
            }
            if (r <= 0) {
                return false;
            }
            const ssize_t n = ::recv(fd_, buf, sizeof buf, 0);
            if (n == 0 || (n < 0 && errno != EINTR && errno != EAGAIN)) {
                return true;
            }
        }
    }

private:
    int fd_ = -1;
};

/// A plain POSIX connection to a Unix socket.
class RawUnixClient {
public:
    explicit RawUnixClient(const std::string& path) {
        fd_ = ::socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
        sockaddr_un addr{};
        addr.sun_family = AF_UNIX;
        std::snprintf(addr.sun_path, sizeof addr.sun_path, "%s", path.c_str());
        if (fd_ < 0 || ::connect(fd_, reinterpret_cast<const sockaddr*>(&addr), sizeof addr) != 0) {
            const int e = errno;
            if (fd_ >= 0) {
                ::close(fd_);
            }
            throw std::runtime_error("connect to " + path + ": " + std::strerror(e));
        }
    }
    ~RawUnixClient() { ::close(fd_); }
    RawUnixClient(const RawUnixClient&) = delete;
    RawUnixClient& operator=(const RawUnixClient&) = delete;
    void send(const std::string& bytes) { (void)::send(fd_, bytes.data(), bytes.size(), MSG_NOSIGNAL); }
    bool wait_closed(Millis timeout) {
        pollfd p{fd_, POLLIN, 0};
        const auto deadline = Clock::now() + timeout;
        char buf[4096];
        while (Clock::now() < deadline) {
            const auto left = std::chrono::duration_cast<Millis>(deadline - Clock::now());
            if (::poll(&p, 1, static_cast<int>(left.count())) > 0) {
                const ssize_t n = ::recv(fd_, buf, sizeof buf, 0);
                if (n == 0 || (n < 0 && errno != EINTR && errno != EAGAIN)) {
                    return true;
                }
            }
        }
        return false;
    }

private:
    int fd_ = -1;
};

inline std::string u16le(unsigned v) {
    return {static_cast<char>(v & 0xff), static_cast<char>((v >> 8) & 0xff)};
}
inline std::string u32le(std::uint32_t v) {
    return u16le(v & 0xffff) + u16le(v >> 16);
}
inline std::string str8(const std::string& s) {
    return std::string(1, static_cast<char>(s.size())) + s;
}
/// A well-formed version-2 handshake (see src/wire/frame.hpp).
inline std::string handshake(const std::string& magic,
                             const std::string& domain,
                             const std::string& id = "00000000-0000-4000-8000-00000000beef") {
    const std::string body = str8(id) + str8(domain) + str8("raw-client") + str8("localhost");
    return magic + u16le(2) + u16le(static_cast<unsigned>(body.size())) + body;
}

/// The sequence numbers of `topic`'s RECV lines, in order.
inline std::vector<std::int64_t> received(const Process& p, const std::string& topic) {
    std::vector<std::int64_t> out;
    const std::string prefix = "RECV " + topic + " ";
    for (const auto& l : p.lines()) {
        if (l.rfind(prefix, 0) == 0) {
            out.push_back(std::stoll(l.substr(prefix.size())));
        }
    }
    return out;
}

}  // namespace meshy::test
