// Integration tests: real meshy_test_node (and example) processes talking over loopback, each test
// once per discovery backend (MESHY_DISCOVERY=avahi / local in the children's environment).
//
// Isolation: every test has its own domain ID (test name + pid) and its own temp directory (local
// discovery files, Unix sockets through XDG_RUNTIME_DIR), so tests may run in parallel.
// Avahi: the tests need a reachable avahi-daemon; scripts/test.sh provides a private loopback one.
// Without it the Avahi variants fail (on purpose: a silent skip would hide a broken setup).
// Waits are bounded and poll for an outcome; none sleeps for a fixed time.
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
namespace {

namespace fs = std::filesystem;

enum class Backend { avahi, local };

const char* backend_name(Backend b) {
    return b == Backend::avahi ? "avahi" : "local";
}

// Names the parameter in ctest's test names ("# GetParam() = avahi").
void PrintTo(Backend b, std::ostream* os) {
    *os << backend_name(b);
}

std::string param_name(const testing::TestParamInfo<Backend>& info) {
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

std::string expect_line(Process& p, const std::string& substring, Millis timeout, std::size_t from = 0) {
    if (auto line = p.wait_for_line(substring, timeout, from)) {
        return *line;
    }
    throw Missing(p.label() + ": no line containing \"" + substring + "\" within " + std::to_string(timeout.count()) +
                  " ms");
}

using Match = std::function<bool(const std::string&)>;

std::string expect_line(Process& p, const Match& match, const std::string& what, Millis timeout, std::size_t from = 0) {
    if (auto line = p.wait_for_match(match, timeout, from)) {
        return *line;
    }
    throw Missing(p.label() + ": no line matching " + what + " within " + std::to_string(timeout.count()) + " ms");
}

ExitStatus expect_exit(Process& p, Millis timeout) {
    if (auto status = p.wait_exit(timeout)) {
        return *status;
    }
    throw Missing(p.label() + ": still running after " + std::to_string(timeout.count()) + " ms");
}

/// The value of `key=value` in a line ("" when absent).
std::string field(const std::string& line, const std::string& key) {
    const std::string k = key + "=";
    std::size_t at = line.rfind(k, 0) == 0 ? 0 : line.find(" " + k);
    if (at == std::string::npos) {
        return {};
    }
    at = line.find('=', at) + 1;
    return line.substr(at, line.find(' ', at) - at);
}

std::size_t count_prefix(const std::vector<std::string>& lines, const std::string& prefix) {
    std::size_t n = 0;
    for (const auto& l : lines) {
        n += l.rfind(prefix, 0) == 0 ? 1 : 0;
    }
    return n;
}

bool has_lines(const std::vector<Line>& lines, const std::string& prefix, std::size_t at_least = 1) {
    std::size_t n = 0;
    for (const auto& l : lines) {
        n += l.text.rfind(prefix, 0) == 0 ? 1 : 0;
    }
    return n >= at_least;
}

/// A LISTENERS line (send's topology report) that lists node `id` reached over unix or tcp.
Match lists_connected(const std::string& id) {
    return [id](const std::string& l) {
        return l.rfind("LISTENERS ", 0) == 0 &&
               (l.find(id + ":unix") != std::string::npos || l.find(id + ":shm") != std::string::npos ||
                l.find(id + ":tcp") != std::string::npos);
    };
}

double seconds_since(Clock::time_point t0) {
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
    /// without that flag an example's TCP server listens on 0.0.0.0 (NodeOptions' default).
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

std::string u16le(unsigned v) {
    return {static_cast<char>(v & 0xff), static_cast<char>((v >> 8) & 0xff)};
}
std::string u32le(std::uint32_t v) {
    return u16le(v & 0xffff) + u16le(v >> 16);
}
std::string str8(const std::string& s) {
    return std::string(1, static_cast<char>(s.size())) + s;
}
/// A well-formed version-2 handshake (see src/wire/frame.hpp).
std::string handshake(const std::string& magic,
                      const std::string& domain,
                      const std::string& id = "00000000-0000-4000-8000-00000000beef") {
    const std::string body = str8(id) + str8(domain) + str8("raw-client") + str8("localhost");
    return magic + u16le(2) + u16le(static_cast<unsigned>(body.size())) + body;
}

// ---- topics ------------------------------------------------------------------------------------

TEST_P(MeshTest, TopicRoundTripOverTcp) {
    // Without Unix sockets on either side, the only way is TCP on 127.0.0.1.
    round_trip({"--no-unix"}, "tcp");
}

TEST_P(MeshTest, TopicRoundTripOverUnix) {
    // Both transports enabled, shared memory off: nodes on one host prefer the Unix socket.
    round_trip({"--no-shm"}, "unix");
}

TEST_P(MeshTest, TopicRoundTripOverSharedMemory) {
    // The defaults: nodes on one host move their Unix link to shared memory.
    round_trip({}, "shm");
}

TEST_P(MeshTest, SameNameListenersShareMessagesEvenly) {
    // rosy's round-robin: one message per name group, rotating among the group's nodes.
    std::vector<Process*> workers;
    for (int i = 0; i < 3; ++i) {
        workers.push_back(spawn_ready({"listen", "work", "--name", "worker"}, "worker" + std::to_string(i)).first);
    }
    Process& sender = spawn({"send", "work", "300", "--wait-listeners", "3", "--name", "boss"}, "sender");
    const auto status = expect_exit(sender, startup_timeout + discovery_timeout() + delivery_timeout);
    EXPECT_TRUE(status.success()) << status.describe();
    expect_line(sender, "SENT 300", Millis(0));

    auto received = [&] {
        std::size_t total = 0;
        for (auto* w : workers) {
            total += count_prefix(w->lines(), "RECV work ");
        }
        return total;
    };
    eventually([&] { return received() >= 300; }, delivery_timeout);
    EXPECT_EQ(received(), 300u) << "messages lost (or duplicated) on the way to the workers";
    for (auto* w : workers) {
        const auto n = count_prefix(w->lines(), "RECV work ");
        EXPECT_GE(n, 99u) << w->label();
        EXPECT_LE(n, 101u) << w->label();
    }
}

TEST_P(MeshTest, KilledListenerLeavesTopologyAndOthersKeepReceiving) {
    auto [doomed, doomed_ready] = spawn_ready({"listen", "beat", "--name", "doomed"}, "doomed");
    auto [survivor, survivor_ready] = spawn_ready({"listen", "beat", "--name", "survivor"}, "survivor");
    const std::string survivor_id = field(survivor_ready, "id");
    Process& sender = spawn({"send", "beat", "0", "--interval-ms", "20", "--wait-listeners", "2"}, "sender");
    const Millis first_message = startup_timeout + discovery_timeout();
    expect_line(*doomed, "RECV beat ", first_message);
    expect_line(*survivor, "RECV beat ", first_message);

    const std::size_t sender_mark = sender.line_count();
    const auto t0 = Clock::now();
    doomed->send_signal(SIGKILL);
    killed(*doomed);
    expect_exit(*doomed, exit_timeout);  // reaped: a zombie would still look alive to a pid probe

    // Gone from the sender's topology within a few seconds (the peer timeout is 2.5 s).
    expect_line(
        sender, [&](const std::string& l) { return l.rfind("LISTENERS 1 " + survivor_id + ":", 0) == 0; },
        "LISTENERS 1 <survivor>", Millis(6000), sender_mark);
    std::cout << "[ info ] killed listener left the sender's topology after " << seconds_since(t0) << " s\n";

    // And the sender keeps serving the survivor.
    const std::size_t survivor_mark = survivor->line_count();
    EXPECT_TRUE(survivor->wait_until(
        [&](const std::vector<Line>& l) {
            std::size_t n = 0;
            for (std::size_t i = survivor_mark; i < l.size(); ++i) {
                n += l[i].text.rfind("RECV beat ", 0) == 0 ? 1 : 0;
            }
            return n >= 10;
        },
        delivery_timeout))
        << "the survivor stopped receiving after the other listener died";
    EXPECT_TRUE(sender.running()) << "the sender died with its listener";
}

TEST_P(MeshTest, RestartedListenerReceivesAgain) {
    auto [first, first_ready] = spawn_ready({"listen", "again", "--name", "phoenix"}, "listener#1");
    Process& sender = spawn({"send", "again", "0", "--interval-ms", "20"}, "sender");
    expect_line(*first, "RECV again ", startup_timeout + discovery_timeout());

    first->send_signal(SIGKILL);
    killed(*first);
    expect_exit(*first, exit_timeout);

    // Same name, new process (so a new node id): found, connected, and fed again.
    const std::size_t sender_mark = sender.line_count();
    auto [second, second_ready] = spawn_ready({"listen", "again", "--name", "phoenix"}, "listener#2");
    const std::string second_id = field(second_ready, "id");
    expect_line(*second, "RECV again ", discovery_timeout() + delivery_timeout);
    // The sender's topology report polls every 10 ms: it may come just after the first message.
    expect_line(sender, lists_connected(second_id), "LISTENERS with listener#2", delivery_timeout, sender_mark);
    EXPECT_TRUE(sender.running());
}

TEST_P(MeshTest, TenThousandMessagesArriveInOrder) {
    auto [listener, ready] = spawn_ready({"listen", "stream", "--count-only", "--report-every", "1000"}, "listener");
    // Paced slightly (at most 100 messages per millisecond): an unpaced burst of 10,000 from
    // send_blocking() outruns the writer and overflows the sender's outbox (1024 messages per peer,
    // drop-oldest), which loses most of the burst by design.
    Process& sender = spawn({"send", "stream", "10000", "--burst", "100", "--interval-ms", "1"}, "sender");
    const auto status = expect_exit(sender, startup_timeout + discovery_timeout() + Millis(10000));
    EXPECT_TRUE(status.success()) << status.describe();
    const bool all = listener->wait_for_line("COUNT 10000", Millis(10000)).has_value();
    listener->send_signal(SIGINT);
    expect_exit(*listener, exit_timeout);
    const std::string final_line = expect_line(*listener, "FINAL ", Millis(0));
    EXPECT_TRUE(all) << "not every message arrived: " << final_line << " (see the sender's warnings below)";
    EXPECT_EQ(field(final_line, "total"), "10000");
    EXPECT_EQ(field(final_line, "violations"), "0") << "messages from one sender arrived out of order";
    EXPECT_EQ(field(final_line, "missing"), "0");
    EXPECT_EQ(field(final_line, "senders"), "1");
    EXPECT_EQ(listener->count_lines("ORDER_OK 10000"), 1u);
}

// Stopping a node right after a burst must not lose the burst's tail: the goodbye frame goes after
// the queued messages. (Before c23e353 it could overtake them: about 1 sender in 8 lost its tail.)
TEST_P(MeshTest, MessagesQueuedBeforeStopAreDelivered) {
    auto [listener, ready] = spawn_ready({"listen", "tail", "--count-only", "--report-every", "1000"}, "listener");
    for (int round = 1; round <= 5; ++round) {
        SCOPED_TRACE("sender #" + std::to_string(round));
        // 1000 messages fit the outbox (1024): none may be dropped; the sender stops right after.
        Process& sender = spawn({"send", "tail", "1000"}, "sender#" + std::to_string(round));
        EXPECT_TRUE(expect_exit(sender, startup_timeout + discovery_timeout()).success());
        const std::string count = "COUNT " + std::to_string(round * 1000);
        ASSERT_TRUE(listener->wait_for_line(count, delivery_timeout).has_value())
            << "a sender's last messages were lost when it stopped: no \"" << count << "\"";
    }
}

TEST_P(MeshTest, DomainsDoNotSeeEachOther) {
    const std::string a = domain_ + "-a", b = domain_ + "-b";
    auto [la, la_ready] = spawn_ready({"listen", "news", "--name", "la"}, "listener-a", a);
    auto [lb, lb_ready] = spawn_ready({"listen", "news", "--name", "lb"}, "listener-b", b);
    Process& sa = spawn({"send", "news", "20", "--text", "from-a", "--stay", "--name", "sa"}, "sender-a", a);
    Process& sb = spawn({"send", "news", "20", "--text", "from-b", "--stay", "--name", "sb"}, "sender-b", b);
    expect_line(sa, "SENT 20", startup_timeout + discovery_timeout());
    expect_line(sb, "SENT 20", startup_timeout + discovery_timeout());
    EXPECT_TRUE(la->wait_until([](const auto& l) { return has_lines(l, "RECV news ", 20); }, delivery_timeout));
    EXPECT_TRUE(lb->wait_until([](const auto& l) { return has_lines(l, "RECV news ", 20); }, delivery_timeout));

    // A third node in domain a, once it knows both nodes of a, lists nobody else.
    Process& watcher = spawn({"nodes", "--expect", "2"}, "nodes-a", a);
    EXPECT_TRUE(expect_exit(watcher, startup_timeout + discovery_timeout()).success());
    expect_line(watcher, "NODES_END count=3", Millis(0));
    EXPECT_EQ(watcher.count_lines(field(lb_ready, "id")), 0u);
    EXPECT_EQ(watcher.count_lines("name=sb"), 0u);

    EXPECT_EQ(la->count_lines("from-b"), 0u);
    EXPECT_EQ(lb->count_lines("from-a"), 0u);
    EXPECT_EQ(la->count_lines("RECV news "), 20u);
    EXPECT_EQ(lb->count_lines("RECV news "), 20u);
    // Each sender only ever saw its own domain's listener.
    EXPECT_EQ(sa.count_lines(field(lb_ready, "id")), 0u);
    EXPECT_EQ(sb.count_lines(field(la_ready, "id")), 0u);
}

TEST_P(MeshTest, MalformedInputIsDroppedAndNodeKeepsServing) {
    auto [listener, ready] = spawn_ready({"listen", "robust"}, "listener");
    const int port = std::stoi(field(ready, "tcp"));
    ASSERT_GT(port, 0);

    struct Case {
        std::string what;
        std::string bytes;
        std::vector<std::string> logged;  // substrings of the node's warning
    };
    const std::vector<Case> cases{
        {"garbage bytes",
         std::string("GET / HTTP/1.1\r\n\r\n\x00\xff\x13", 21),
         {"malformed handshake", "wrong magic"}},
        {"a wrong magic", handshake("MSHX", domain_), {"malformed handshake", "wrong magic"}},
        {"an oversize handshake length",
         std::string("MSHY") + u16le(1) + u16le(0xffff),
         {"malformed handshake", "handshake too long"}},
        {"an oversize frame length after a valid handshake",
         handshake("MSHY", domain_) + u32le(0xfffffff0u) + std::string(1, '\x02'),
         {"malformed frame", "exceeds the maximum"}},
        {"an unknown frame type after a valid handshake",
         handshake("MSHY", domain_) + u32le(1) + std::string(1, '\x7f'),
         {"malformed frame", "unknown frame type"}},
    };
    for (const auto& c : cases) {
        SCOPED_TRACE(c.what);
        const std::size_t mark = listener->line_count();
        RawClient client(port);
        client.send(c.bytes);
        EXPECT_TRUE(client.wait_closed(Millis(3000))) << "the node kept a connection that sent " << c.what;
        std::string wanted;
        for (const auto& part : c.logged) {
            wanted += (wanted.empty() ? "\"" : " ... \"") + part + "\"";
        }
        // The parts, in this order, in one line.
        const auto logged = [&](const std::string& l) {
            std::size_t at = 0;
            for (const auto& part : c.logged) {
                if ((at = l.find(part, at)) == std::string::npos) {
                    return false;
                }
            }
            return true;
        };
        const auto line = listener->wait_for_match(logged, Millis(3000), mark);
        EXPECT_TRUE(line.has_value()) << "no warning with " << wanted << " on the node's stderr";
        if (line) {
            EXPECT_NE(line->find("warn"), std::string::npos) << *line;
        }
        ASSERT_TRUE(listener->running()) << "the node died on " << c.what;
    }
    {
        // A peer that connects and leaves without a word is not worth a crash either.
        RawClient silent(port);
    }

    // The node still serves a well-behaved peer.
    spawn({"send", "robust", "3", "--stay"}, "sender");
    for (int seq = 0; seq < 3; ++seq) {
        expect_line(*listener, "RECV robust " + std::to_string(seq) + " msg", delivery_timeout);
    }
}

// ---- identity, latched topics -------------------------------------------------------------------

/// The sequence numbers of `topic`'s RECV lines, in order.
std::vector<std::int64_t> received(const Process& p, const std::string& topic) {
    std::vector<std::int64_t> out;
    const std::string prefix = "RECV " + topic + " ";
    for (const auto& l : p.lines()) {
        if (l.rfind(prefix, 0) == 0) {
            out.push_back(std::stoll(l.substr(prefix.size())));
        }
    }
    return out;
}

TEST_P(MeshTest, ForgedByeAndInfoFromAStrangerLeaveTheStreamIntact) {
    auto [listener, listener_ready] = spawn_ready({"listen", "stream", "--name", "listener"}, "listener");
    Process& sender = spawn({"send", "stream", "0", "--interval-ms", "5", "--name", "sender"}, "sender");
    const std::string sender_id = field(expect_line(sender, "READY ", startup_timeout), "id");
    const std::string listener_id = field(listener_ready, "id");
    const int listener_port = std::stoi(field(listener_ready, "tcp"));
    ASSERT_TRUE(
        eventually([&] { return received(*listener, "stream").size() >= 20; }, discovery_timeout() + delivery_timeout));

    // A stranger claims the sender's id towards the listener: an Info with no topics, then a goodbye.
    const std::string empty_info =
        u32le(1 + 4 + 4 + 4 + 4) + std::string(1, '\x01') + u32le(99) + u32le(0) + u32le(0) + u32le(0);
    const std::string bye = u32le(1) + std::string(1, '\x06');
    {
        RawClient forger(listener_port);
        forger.send(handshake("MSHY", domain_, sender_id) + empty_info + bye);
        EXPECT_TRUE(forger.wait_closed(Millis(3000)));
    }
    // And towards the sender, claiming the listener's id (the sender must not stop sending to it).
    if (const int sender_port = std::stoi(field(expect_line(sender, "READY ", Millis(0)), "tcp")); sender_port > 0) {
        RawClient forger(sender_port);
        forger.send(handshake("MSHY", domain_, listener_id) + empty_info + bye);
        EXPECT_TRUE(forger.wait_closed(Millis(3000)));
    }
    // Over Unix, a connection from another process than the advertised one is refused outright.
    if (const auto path = field(listener_ready, "unix"); !path.empty() && path != "-") {
        const std::size_t mark = listener->line_count();
        RawUnixClient forger(path);
        forger.send(handshake("MSHY", domain_, sender_id) + bye);
        EXPECT_TRUE(forger.wait_closed(Millis(3000)));
        EXPECT_TRUE(listener->wait_for_line("claims the id", Millis(3000), mark).has_value());
    }
    const std::size_t before = received(*listener, "stream").size();
    ASSERT_TRUE(eventually([&] { return received(*listener, "stream").size() >= before + 100; }, Millis(10000)))
        << "the stream stopped after the forged frames";
    const auto seqs = received(*listener, "stream");
    for (std::size_t i = 1; i < seqs.size(); ++i) {
        ASSERT_EQ(seqs[i], seqs[i - 1] + 1) << "lost or reordered at " << i;
    }
}

TEST_P(MeshTest, LatchedValueReachesALateListenerFirstAndOnce) {
    Process& sender = spawn({"send", "latest", "3", "--latched", "--wait-listeners", "0", "--stay"}, "sender");
    expect_line(sender, "SENT 3", startup_timeout);
    auto [first, first_ready] = spawn_ready({"listen", "latest", "--name", "first"}, "first");
    expect_line(*first, "RECV latest 2 msg", discovery_timeout() + delivery_timeout);
    // A second late listener changes the mesh: the first must not get the value again.
    auto [second, second_ready] = spawn_ready({"listen", "latest", "--name", "second"}, "second");
    expect_line(*second, "RECV latest 2 msg", discovery_timeout() + delivery_timeout);
    EXPECT_EQ(received(*first, "latest"), std::vector<std::int64_t>{2});
    EXPECT_EQ(received(*second, "latest"), std::vector<std::int64_t>{2});
}

// ---- services ----------------------------------------------------------------------------------

TEST_P(MeshTest, ServiceCallReturnsTheResult) {
    spawn_ready({"provide"}, "provider");
    Process& caller = spawn({"call", "multiply", "6", "7"}, "caller");
    const auto status = expect_exit(caller, startup_timeout + discovery_timeout() + delivery_timeout);
    EXPECT_TRUE(status.success()) << status.describe();
    expect_line(caller, "RESULT 42", Millis(0));
}

TEST_P(MeshTest, ServiceExceptionReachesCallerAsRemoteError) {
    spawn_ready({"provide"}, "provider");
    Process& caller = spawn({"call", "fail"}, "caller");
    const auto status = expect_exit(caller, startup_timeout + discovery_timeout() + delivery_timeout);
    EXPECT_EQ(status.describe(), "exit 1");
    const std::string line = expect_line(caller, "ERROR ", Millis(0));
    EXPECT_EQ(line.rfind("ERROR remote_error ", 0), 0u) << line;
    EXPECT_NE(line.find("boom from provider"), std::string::npos) << line;
}

TEST_P(MeshTest, SlowServiceCallTimesOut) {
    auto [provider, ready] = spawn_ready({"provide"}, "provider");
    Process& caller = spawn({"call", "slow", "3000", "--timeout-ms", "300"}, "caller");
    expect_line(*provider, "CALLED slow", startup_timeout + discovery_timeout());
    const auto called = Clock::now();
    const auto status = expect_exit(caller, Millis(2500));  // well before the 3 s reply
    EXPECT_EQ(status.describe(), "exit 1");
    const std::string line = expect_line(caller, "ERROR ", Millis(0));
    EXPECT_EQ(line.rfind("ERROR timeout ", 0), 0u) << line;
    std::cout << "[ info ] timed-out call returned " << seconds_since(called) << " s after the provider got it\n";

    // The provider is fine afterwards.
    Process& again = spawn({"call", "multiply", "3", "4"}, "caller#2");
    EXPECT_TRUE(expect_exit(again, startup_timeout + discovery_timeout() + delivery_timeout).success());
    expect_line(again, "RESULT 12", Millis(0));
}

TEST_P(MeshTest, CallToMissingServiceReportsNoProvider) {
    spawn_ready({"provide"}, "provider");
    // Wait for the provider of "multiply" first, so "missing" is known to be absent, not just not yet found.
    Process& caller = spawn({"call", "missing", "1", "--wait-provider", "multiply"}, "caller");
    const auto status = expect_exit(caller, startup_timeout + discovery_timeout() + delivery_timeout);
    EXPECT_EQ(status.describe(), "exit 1");
    const std::string line = expect_line(caller, "ERROR ", Millis(0));
    EXPECT_EQ(line.rfind("ERROR no_provider ", 0), 0u) << line;
}

// ---- the examples ------------------------------------------------------------------------------

TEST_P(MeshTest, ExampleTopicSenderReachesTopicListener) {
    if (!examples_bind_loopback()) {
        GTEST_SKIP() << "the examples have no --listen-host option (examples/example_args.hpp), so they would "
                        "listen on 0.0.0.0; these tests only run nodes bound to 127.0.0.1";
    }
    Process& listener = spawn_example("topic_listener", {}, "topic_listener");
    expect_line(listener, "Listening...", startup_timeout);
    Process& sender = spawn_example("topic_sender", {}, "topic_sender");
    const auto status = expect_exit(sender, startup_timeout + discovery_timeout() + delivery_timeout);
    EXPECT_TRUE(status.success()) << status.describe();
    expect_line(listener, "Received \"hello world\" on topic=some-topic", delivery_timeout);
}

TEST_P(MeshTest, ExampleServiceCallerGetsResult) {
    if (!examples_bind_loopback()) {
        GTEST_SKIP() << "the examples have no --listen-host option (examples/example_args.hpp), so they would "
                        "listen on 0.0.0.0; these tests only run nodes bound to 127.0.0.1";
    }
    Process& provider = spawn_example("service_provider", {}, "service_provider");
    expect_line(provider, "Started service...", startup_timeout);
    Process& caller = spawn_example("service_caller", {}, "service_caller");
    const auto status = expect_exit(caller, startup_timeout + discovery_timeout() + delivery_timeout);
    EXPECT_TRUE(status.success()) << status.describe();
    expect_line(caller, "Calculating 2 * 2...", Millis(0));
    expect_line(caller, "Result: 4", Millis(0));
    expect_line(provider, "Calculating 2 * 2...", delivery_timeout);
}

// ---- avahi-daemon restart ----------------------------------------------------------------------

TEST_P(AvahiDaemonTest, NewNodeIsDiscoveredAfterDaemonRestart) {
    const char* ctl = std::getenv("MESHY_TEST_AVAHI_CTL");
    if (ctl == nullptr || *ctl == '\0') {
        GTEST_SKIP() << "MESHY_TEST_AVAHI_CTL is not set (scripts/test.sh sets it when it runs a private "
                        "avahi-daemon that may be restarted)";
    }
    // Nodes from before the restart: a listener, and a sender that reports who listens.
    auto [old_listener, old_ready] = spawn_ready({"listen", "after", "--name", "old-listener"}, "old-listener");
    Process& old_sender = spawn({"send", "after", "0", "--interval-ms", "50", "--text", "old"}, "old-sender");
    expect_line(*old_listener, "RECV after ", startup_timeout + discovery_timeout());

    const auto restart = run_command({ctl, "restart"}, Millis(30000));
    ASSERT_TRUE(restart.status && restart.status->success())
        << ctl << " restart failed (" << (restart.status ? restart.status->describe() : "hung") << ")";
    const auto t0 = Clock::now();

    // A node started after the restart finds the old one, and the old one finds it.
    const std::size_t mark = old_sender.line_count();
    auto [new_listener, new_ready] = spawn_ready({"listen", "after", "--name", "new-listener"}, "new-listener");
    Process& new_sender = spawn({"send", "after", "0", "--interval-ms", "50", "--text", "new"}, "new-sender");
    expect_line(*new_listener, "RECV after ", Millis(10000));
    expect_line(old_sender, lists_connected(field(new_ready, "id")), "LISTENERS with new-listener", Millis(10000),
                mark);
    expect_line(
        *old_listener, [](const std::string& l) { return l.rfind("RECV after ", 0) == 0 && l.ends_with(" new"); },
        "RECV from new-sender", Millis(10000));
    std::cout << "[ info ] discovery across the daemon restart took " << seconds_since(t0) << " s\n";
    EXPECT_TRUE(new_sender.running());
}

// Issue 20: links are made only for what is sent, so an idle mesh costs little whatever its size.
// Bounds are generous (the targets are 5 % of a core for 200 nodes and 10 fds a node beyond links;
// bench/idle_mesh.sh measures them); what is asserted is that nothing grows with the mesh.
TEST_P(MeshTest, HundredIdleNodesConvergeAndStayCheap) {
    // Under AddressSanitizer a node's start and its leak check at exit cost about a second of CPU
    // each: 30 nodes there keep the suite's time in bounds, and the behaviour checked is the same.
    const int count = address_sanitizer ? 30 : 100;
    std::vector<Process*> nodes;
    for (int i = 0; i < count; ++i) {
        nodes.push_back(&spawn({"listen", "idle/" + std::to_string(i), "--count-only"}, "idle-" + std::to_string(i)));
    }
    for (auto* node : nodes) {
        expect_line(*node, "READY ", startup_timeout);
    }
    // One more node sees all of them, with their topics.
    auto& observer =
        spawn({"nodes", "--expect", std::to_string(count), "--with-topics", "--wait-timeout-ms", "60000"}, "observer");
    const auto status = observer.wait_exit(Millis(90000));
    ASSERT_TRUE(status && status->success()) << observer.dump();
    EXPECT_EQ(observer.count_lines("topics=idle/"), static_cast<std::size_t>(count)) << observer.dump();
    // Idle: CPU over a window and descriptors (no links: nothing was sent).
    double before = 0;
    for (auto* node : nodes) {
        before += cpu_seconds_of(node->pid());
    }
    const auto window_start = std::chrono::steady_clock::now();
    std::this_thread::sleep_for(Millis(3000));  // the measurement window, not a wait for a condition
    const double window = std::chrono::duration<double>(std::chrono::steady_clock::now() - window_start).count();
    double after = 0;
    std::size_t most_fds = 0;
    for (auto* node : nodes) {
        after += cpu_seconds_of(node->pid());
        most_fds = std::max(most_fds, fds_of(node->pid()));
        EXPECT_TRUE(node->running()) << node->dump();
    }
    const double cores = (after - before) / window;
    std::printf("%d idle nodes (%s): %.3f of a core in all, at most %zu fds a node\n", count, backend_name(GetParam()),
                cores, most_fds);
    EXPECT_LT(cores, 0.5);
    EXPECT_LE(most_fds, 32u);
    // All stop at once: one deadline for all of them, not TearDown's per process.
    for (auto* node : nodes) {
        node->send_signal(SIGINT);
    }
    const auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(120);
    for (auto* node : nodes) {
        const auto left = std::chrono::duration_cast<Millis>(deadline - std::chrono::steady_clock::now());
        const auto exit = node->wait_exit(std::max(left, Millis(0)));
        EXPECT_TRUE(exit && exit->success()) << node->label() << ": " << (exit ? exit->describe() : "hung");
    }
}

INSTANTIATE_TEST_SUITE_P(Discovery, MeshTest, testing::Values(Backend::avahi, Backend::local), param_name);
INSTANTIATE_TEST_SUITE_P(Discovery, AvahiDaemonTest, testing::Values(Backend::avahi), param_name);

}  // namespace
}  // namespace meshy::test
