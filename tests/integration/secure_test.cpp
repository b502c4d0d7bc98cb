// Keyed domains (docs/security.md) with real meshy_test_node processes on loopback, local
// discovery in a private directory: same key works over TCP and Unix; another key or none never
// lets a message through and both ends say why; the bytes on the wire (read through a proxy in
// this test) never show a payload, and a tampered, replayed or duplicated record or handshake is
// refused; a forged goodbye from a stranger fails; a key file open to others is refused.
#include <arpa/inet.h>
#include <gtest/gtest.h>
#include <netinet/in.h>
#include <poll.h>
#include <signal.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <functional>
#include <map>
#include <memory>
#include <mutex>
#include <optional>
#include <regex>
#include <string>
#include <thread>
#include <vector>

#include "process.hpp"

namespace meshy::test {
namespace {

namespace fs = std::filesystem;
using namespace std::chrono_literals;

constexpr Millis startup_timeout{10000};
constexpr Millis delivery_timeout{10000};
// The key exchange's bytes from the dialing end (hello, finish) and from the listening end (reply).
constexpr std::size_t dialer_handshake_bytes = 41 + 32;  // docs/security.md
constexpr std::size_t record_overhead = 4 + 16;

/// A TCP proxy on loopback in front of one port: it copies both directions, keeps what passed
/// (per connection), and can alter the dialer's stream after the key exchange.
class Proxy {
public:
    enum class Alter { none, flip_byte, duplicate_record };

    Proxy(std::uint16_t target, Alter alter) : target_(target), alter_(alter) {
        listen_fd_ = ::socket(AF_INET, SOCK_STREAM, 0);
        sockaddr_in addr{};
        addr.sin_family = AF_INET;
        addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
        ::bind(listen_fd_, reinterpret_cast<sockaddr*>(&addr), sizeof addr);
        ::listen(listen_fd_, 16);
        socklen_t len = sizeof addr;
        ::getsockname(listen_fd_, reinterpret_cast<sockaddr*>(&addr), &len);
        port_ = ntohs(addr.sin_port);
        thread_ = std::thread([this] { run(); });
    }
    ~Proxy() {
        stop_ = true;
        thread_.join();
        ::close(listen_fd_);
    }
    std::uint16_t port() const { return port_; }
    /// Every byte the dialers sent, and the listener sent back, so far (all connections).
    std::string from_dialers() const {
        std::lock_guard lock(mutex_);
        return up_;
    }
    std::string from_listener() const {
        std::lock_guard lock(mutex_);
        return down_;
    }
    /// The first connection's bytes from its dialer.
    std::string first_session() const {
        std::lock_guard lock(mutex_);
        return first_up_;
    }

private:
    struct Pipe {
        int dialer = -1, listener = -1;
        std::string pending;   // the dialer's bytes not forwarded yet (while altering)
        std::size_t seen = 0;  // the dialer's bytes so far
        bool altered = false;
        bool first = false;
    };

    static int dial(std::uint16_t port) {
        const int fd = ::socket(AF_INET, SOCK_STREAM, 0);
        sockaddr_in addr{};
        addr.sin_family = AF_INET;
        addr.sin_port = htons(port);
        addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
        if (::connect(fd, reinterpret_cast<sockaddr*>(&addr), sizeof addr) != 0) {
            ::close(fd);
            return -1;
        }
        return fd;
    }

    static void send_all(int fd, const char* p, std::size_t n) {
        while (n > 0) {
            const auto w = ::send(fd, p, n, MSG_NOSIGNAL);
            if (w <= 0) {
                return;
            }
            p += w;
            n -= static_cast<std::size_t>(w);
        }
    }

    /// Forwards the dialer's bytes: the key exchange's at once, then its first record altered as
    /// asked (held back until it is whole), then the rest as it comes.
    void forward_up(Pipe& p, const char* data, std::size_t n) {
        if (alter_ == Alter::none || p.altered) {
            send_all(p.listener, data, n);
            return;
        }
        if (p.seen < dialer_handshake_bytes) {
            const std::size_t now = std::min(n, dialer_handshake_bytes - p.seen);
            send_all(p.listener, data, now);
            p.seen += now;
            data += now;
            n -= now;
        }
        p.pending.append(data, n);
        if (p.pending.size() < 4) {
            return;
        }
        const std::uint32_t len = static_cast<std::uint8_t>(p.pending[0]) |
                                  static_cast<std::uint8_t>(p.pending[1]) << 8 |
                                  static_cast<std::uint8_t>(p.pending[2]) << 16 |
                                  static_cast<std::uint32_t>(static_cast<std::uint8_t>(p.pending[3])) << 24;
        const std::size_t record = len + record_overhead;
        if (p.pending.size() < record) {
            return;
        }
        if (alter_ == Alter::flip_byte) {
            p.pending[4 + len / 2] ^= 0x20;  // inside the first record's ciphertext
        } else {
            p.pending.insert(record, p.pending.substr(0, record));  // the first record twice
        }
        p.altered = true;
        send_all(p.listener, p.pending.data(), p.pending.size());
        p.pending.clear();
    }

    void run() {
        std::vector<Pipe> pipes;
        char buf[65536];
        while (!stop_) {
            std::vector<pollfd> fds{{listen_fd_, POLLIN, 0}};
            for (const auto& p : pipes) {
                fds.push_back({p.dialer, POLLIN, 0});
                fds.push_back({p.listener, POLLIN, 0});
            }
            ::poll(fds.data(), fds.size(), 50);
            if (fds[0].revents & POLLIN) {
                Pipe p;
                p.dialer = ::accept(listen_fd_, nullptr, nullptr);
                p.listener = dial(target_);
                p.first = pipes.empty() && !had_first_;
                had_first_ = true;
                if (p.dialer >= 0 && p.listener >= 0) {
                    pipes.push_back(p);
                } else {
                    ::close(p.dialer);
                    ::close(p.listener);
                }
                continue;  // the vector of descriptors changed
            }
            std::vector<std::size_t> dead;
            for (std::size_t i = 0; i < pipes.size(); ++i) {
                auto& p = pipes[i];
                if (fds[1 + 2 * i].revents & (POLLIN | POLLHUP | POLLERR)) {
                    const auto n = ::recv(p.dialer, buf, sizeof buf, 0);
                    if (n <= 0) {
                        dead.push_back(i);
                        continue;
                    }
                    {
                        std::lock_guard lock(mutex_);
                        up_.append(buf, static_cast<std::size_t>(n));
                        if (p.first) {
                            first_up_.append(buf, static_cast<std::size_t>(n));
                        }
                    }
                    forward_up(p, buf, static_cast<std::size_t>(n));
                }
                if (fds[2 + 2 * i].revents & (POLLIN | POLLHUP | POLLERR)) {
                    const auto n = ::recv(p.listener, buf, sizeof buf, 0);
                    if (n <= 0) {
                        dead.push_back(i);
                        continue;
                    }
                    {
                        std::lock_guard lock(mutex_);
                        down_.append(buf, static_cast<std::size_t>(n));
                    }
                    send_all(p.dialer, buf, static_cast<std::size_t>(n));
                }
            }
            for (auto it = dead.rbegin(); it != dead.rend(); ++it) {
                ::close(pipes[*it].dialer);
                ::close(pipes[*it].listener);
                pipes.erase(pipes.begin() + static_cast<std::ptrdiff_t>(*it));
            }
        }
        for (auto& p : pipes) {
            ::close(p.dialer);
            ::close(p.listener);
        }
    }

    std::uint16_t target_;
    Alter alter_;
    int listen_fd_ = -1;
    std::uint16_t port_ = 0;
    std::atomic<bool> stop_{false};
    bool had_first_ = false;
    std::thread thread_;
    mutable std::mutex mutex_;
    std::string up_, down_, first_up_;
};

/// Writes `bytes` to a new connection to 127.0.0.1:`port`, then waits (bounded) for it to close.
/// @returns true when the node closed it.
bool send_and_wait_closed(std::uint16_t port, const std::string& bytes, Millis timeout) {
    const int fd = ::socket(AF_INET, SOCK_STREAM, 0);
    sockaddr_in addr{};
    addr.sin_family = AF_INET;
    addr.sin_port = htons(port);
    addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    if (::connect(fd, reinterpret_cast<sockaddr*>(&addr), sizeof addr) != 0) {
        ::close(fd);
        return false;
    }
    ::send(fd, bytes.data(), bytes.size(), MSG_NOSIGNAL);
    const auto deadline = Clock::now() + timeout;
    char buf[4096];
    bool closed = false;
    while (!closed && Clock::now() < deadline) {
        pollfd p{fd, POLLIN, 0};
        if (::poll(&p, 1, 50) == 1) {
            closed = ::recv(fd, buf, sizeof buf, 0) <= 0;
        }
    }
    ::close(fd);
    return closed;
}

std::string u32le(std::uint32_t v) {
    std::string s(4, '\0');
    for (int i = 0; i < 4; ++i) {
        s[static_cast<std::size_t>(i)] = static_cast<char>((v >> (8 * i)) & 0xff);
    }
    return s;
}

/// A plain (unkeyed) node handshake claiming `id` in `domain`.
std::string plain_handshake(const std::string& domain, const std::string& id) {
    std::string body;
    for (const std::string& field : {id, domain, std::string("forger"), std::string("localhost")}) {
        body += static_cast<char>(field.size());
        body += field;
    }
    return std::string("MSHY") + '\x02' + '\x00' + static_cast<char>(body.size() & 0xff) +
           static_cast<char>(body.size() >> 8) + body;
}

class SecureTest : public testing::Test {
protected:
    void SetUp() override {
        const auto* info = testing::UnitTest::GetInstance()->current_test_info();
        domain_ = std::string("secure-") + info->name() + "-" + std::to_string(::getpid());
        char tmpl[] = "/tmp/meshy-sec-XXXXXX";
        ASSERT_NE(::mkdtemp(tmpl), nullptr);
        tmp_ = tmpl;
        key_a_ = make_key("a.key");
        key_b_ = make_key("b.key");
    }
    void TearDown() override {
        for (auto& p : processes_) {
            if (p->running()) {
                p->send_signal(SIGINT);
                p->wait_exit(Millis(10000));
            }
            if (HasFailure()) {
                std::cout << p->dump();
            }
        }
        processes_.clear();
        std::error_code ignored;
        fs::remove_all(tmp_, ignored);
    }

    /// A key file made by the test node's library (`meshy key generate` needs the CLI).
    std::string make_key(const std::string& name) {
        const auto path = (tmp_ / name).string();
        // 32 bytes from the kernel, in the key file's text form.
        unsigned char bytes[32];
        std::ifstream("/dev/urandom", std::ios::binary).read(reinterpret_cast<char*>(bytes), sizeof bytes);
        static const char* b64 = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
        std::string text;
        for (std::size_t i = 0; i < 33; i += 3) {
            const unsigned v = bytes[i] << 16 | (i + 1 < 32 ? bytes[i + 1] << 8 : 0) | (i + 2 < 32 ? bytes[i + 2] : 0);
            text += b64[(v >> 18) & 63];
            text += b64[(v >> 12) & 63];
            text += i + 1 < 32 ? b64[(v >> 6) & 63] : '=';
            text += i + 2 < 32 ? b64[v & 63] : '=';
        }
        std::ofstream(path) << "meshy-domain-key-v1\n" << text << "\n";
        ::chmod(path.c_str(), 0600);
        return path;
    }

    /// Starts a test node; `key` empty: none. `discovery`: its local discovery directory.
    Process& start(std::vector<std::string> args,
                   const std::string& key,
                   const std::string& label,
                   const std::string& discovery = "discovery") {
        std::vector<std::string> argv{MESHY_TEST_NODE_PATH};
        argv.insert(argv.end(), args.begin(), args.end());
        std::map<std::string, std::string> env{
            {"MESHY_DISCOVERY", "local"},
            {"MESHY_DOMAIN_ID", domain_},
            {"MESHY_LISTEN_HOST", "127.0.0.1"},
            {"XDG_RUNTIME_DIR", tmp_.string()},
            {"MESHY_LOCAL_DISCOVERY_DIR", (tmp_ / discovery).string()},
            {"MESHY_LOG", "info"},
            {"MESHY_DOMAIN_KEY_FILE", key},
        };
        processes_.push_back(std::make_unique<Process>(argv, env, label));
        return *processes_.back();
    }

    /// The READY line's `field=` value.
    static std::string ready_field(Process& p, const std::string& field) {
        const auto ready = p.wait_for_line("READY ", startup_timeout);
        if (!ready) {
            ADD_FAILURE() << p.label() << ": no READY line";
            return {};
        }
        const auto at = ready->find(" " + field + "=");
        const auto from = at + field.size() + 2;
        return ready->substr(from, ready->find(' ', from) - from);
    }

    /// Makes `p`'s advert appear in `dir` with its TCP port replaced by `port` and no Unix path:
    /// a node discovering through `dir` reaches it only through the proxy.
    void advertise_through(Process& p, const std::string& dir, std::uint16_t port) {
        const std::string id = ready_field(p, "id");
        // Local discovery keeps a domain's adverts in a subdirectory of its directory.
        fs::path file;
        for (const auto& entry : fs::recursive_directory_iterator(tmp_ / "discovery")) {
            if (entry.path().filename() == id + ".node") {
                file = entry.path();
            }
        }
        ASSERT_FALSE(file.empty()) << "no advert file for " << id;
        std::ifstream in(file);
        std::string line, text;
        while (std::getline(in, line)) {
            if (line.starts_with("tcp=")) {
                line = "tcp=" + std::to_string(port);
            } else if (line.starts_with("unix=")) {
                line = "unix=";
            }
            text += line + "\n";
        }
        const auto to = tmp_ / dir / fs::relative(file.parent_path(), tmp_ / "discovery");
        fs::create_directories(to);
        std::ofstream(to / (id + ".tmp")) << text;
        fs::rename(to / (id + ".tmp"), to / (id + ".node"));
    }

    std::string domain_;
    fs::path tmp_;
    std::string key_a_, key_b_;
    std::vector<std::unique_ptr<Process>> processes_;
};

// On one host a keyed link moves to shared memory once the link is authenticated: the offer and
// its descriptors travel in a sealed record over the Unix socket (docs/security.md).
TEST_F(SecureTest, SameKeyCarriesMessagesAndCallsOverTcpUnixAndSharedMemory) {
    for (const std::string via : {"tcp", "unix", "shm"}) {
        SCOPED_TRACE(via);
        const std::string topic = "chat-" + via;
        std::vector<std::string> only;
        if (via == "tcp") {
            only = {"--no-unix"};
        } else if (via == "unix") {
            only = {"--no-tcp", "--no-shm"};
        } else {
            only = {"--no-tcp"};
        }
        auto listen_args = std::vector<std::string>{"listen", topic};
        listen_args.insert(listen_args.end(), only.begin(), only.end());
        auto& listener = start(listen_args, key_a_, "listener");
        ASSERT_FALSE(ready_field(listener, "id").empty());
        // --stay: the link outlives the messages, so that it is seen once it moved to the ring.
        auto send_args = std::vector<std::string>{"send", topic, "5", "--text", "keyed", "--stay"};
        send_args.insert(send_args.end(), only.begin(), only.end());
        auto& sender = start(send_args, key_a_, "sender");
        const auto link = sender.wait_for_line(std::regex("LISTENERS 1 .*:" + via), delivery_timeout);
        EXPECT_TRUE(link) << sender.dump();
        EXPECT_TRUE(listener.wait_for_line("RECV " + topic + " 4 keyed", delivery_timeout)) << listener.dump();

        auto provide_args = std::vector<std::string>{"provide"};
        provide_args.insert(provide_args.end(), only.begin(), only.end());
        auto& provider = start(provide_args, key_a_, "provider");
        ASSERT_FALSE(ready_field(provider, "id").empty());
        auto call_args = std::vector<std::string>{"call", "multiply", "6", "7"};
        call_args.insert(call_args.end(), only.begin(), only.end());
        auto& caller = start(call_args, key_a_, "caller");
        EXPECT_TRUE(caller.wait_for_line("RESULT 42", delivery_timeout));
        const auto status = caller.wait_exit(delivery_timeout);
        EXPECT_TRUE(status && status->success());
    }
}

// Requests, replies and messages larger than a socket takes at once: a sender seals and writes them
// itself a piece at a time (an idle writer), and the writer sends the sealed rest as it is.
TEST_F(SecureTest, LargeCallsAndMessagesArriveIntactOverTcpUnixAndSharedMemory) {
    for (const std::string via : {"tcp", "unix", "shm"}) {
        SCOPED_TRACE(via);
        std::vector<std::string> only{via == "tcp" ? "--no-unix" : "--no-tcp"};
        if (via == "unix") {
            only.push_back("--no-shm");
        }
        const auto with = [&](std::vector<std::string> args) {
            args.insert(args.end(), only.begin(), only.end());
            return args;
        };
        auto& provider = start(with({"provide"}), key_a_, "provider");
        ASSERT_FALSE(ready_field(provider, "id").empty());
        auto& caller = start(with({"blobs", "3000000", "4", "--stream", "--outbox-wait", "--timeout-ms", "20000"}),
                             key_a_, "caller");
        EXPECT_TRUE(caller.wait_for_line("BLOBS OK 4", Millis(60000)));
        for (int i = 0; i < 4; ++i) {
            EXPECT_TRUE(provider.wait_for_line("BLOB STREAM OK " + std::to_string(i), Millis(20000)));
        }
        EXPECT_FALSE(provider.wait_for_line("BLOB STREAM BAD", Millis(0)));
        const auto status = caller.wait_exit(delivery_timeout);
        EXPECT_TRUE(status && status->success());
        provider.send_signal(SIGINT);
        provider.wait_exit(delivery_timeout);
    }
}

TEST_F(SecureTest, AnotherKeyOrNoneLetsNothingThroughAndBothEndsSayWhy) {
    struct Case {
        std::string listener_key, sender_key, name;
    };
    const std::vector<Case> cases{
        {key_a_, key_b_, "other key"}, {key_a_, "", "sender without key"}, {"", key_a_, "listener without key"}};
    for (const auto& c : cases) {
        SCOPED_TRACE(c.name);
        const std::string topic = "chat-" + std::to_string(&c - cases.data());
        auto& listener = start({"listen", topic, "--no-unix"}, c.listener_key, "listener");
        ASSERT_FALSE(ready_field(listener, "id").empty());
        auto& sender = start({"send", topic, "3", "--no-unix", "--wait-timeout-ms", "4000"}, c.sender_key, "sender");
        const auto status = sender.wait_exit(Millis(15000));
        ASSERT_TRUE(status);
        EXPECT_FALSE(status->success()) << "the sender found a listener across keys";
        EXPECT_TRUE(sender.wait_for_line("domain key mismatch", Millis(1000))) << "the sender did not say why";
        EXPECT_TRUE(listener.wait_for_line("domain key mismatch", Millis(3000))) << "the listener did not say why";
        const auto line = listener.wait_for_line("domain key mismatch", Millis(1));
        ASSERT_TRUE(line);
        EXPECT_NE(line->find("tcp:127.0.0.1:"), std::string::npos) << "no remote address: " << *line;
        EXPECT_EQ(listener.count_lines("RECV "), 0u);
        // Each goes on serving others: a sender with the listener's key gets through.
        auto& friendly = start({"send", topic, "2", "--no-unix", "--text", "friend"}, c.listener_key, "friend");
        EXPECT_TRUE(listener.wait_for_line("RECV " + topic + " 1 friend", delivery_timeout));
        EXPECT_TRUE(friendly.wait_exit(delivery_timeout));
    }
}

TEST_F(SecureTest, PayloadNeverOnTheWire) {
    const std::string payload = "PLAINTEXT-CANARY-7f3a";
    auto& listener = start({"listen", "canary", "--no-unix"}, key_a_, "listener");
    const auto port = static_cast<std::uint16_t>(std::stoul(ready_field(listener, "tcp")));
    Proxy proxy(port, Proxy::Alter::none);
    advertise_through(listener, "through-proxy", proxy.port());
    auto& sender = start({"send", "canary", "20", "--no-unix", "--text", payload}, key_a_, "sender", "through-proxy");
    EXPECT_TRUE(listener.wait_for_line("RECV canary 19 " + payload, delivery_timeout));
    EXPECT_TRUE(sender.wait_exit(delivery_timeout));
    const auto up = proxy.from_dialers();
    EXPECT_GT(up.size(), 20 * payload.size()) << "the messages did not go through the proxy";
    EXPECT_EQ(up.find(payload), std::string::npos);
    EXPECT_EQ(up.find("canary"), std::string::npos) << "the topic name is on the wire";
    EXPECT_EQ(up.find(domain_), std::string::npos) << "the node handshake is on the wire";
    EXPECT_EQ(proxy.from_listener().find("canary"), std::string::npos);
}

TEST_F(SecureTest, TamperedOrDuplicatedRecordClosesTheLink) {
    for (const auto alter : {Proxy::Alter::flip_byte, Proxy::Alter::duplicate_record}) {
        const bool flip = alter == Proxy::Alter::flip_byte;
        SCOPED_TRACE(flip ? "flipped byte" : "duplicated record");
        const std::string topic = flip ? "tamper" : "duplicate";
        const std::string dir = "proxy-" + topic;
        auto& listener = start({"listen", topic, "--no-unix"}, key_a_, "listener");
        const auto port = static_cast<std::uint16_t>(std::stoul(ready_field(listener, "tcp")));
        Proxy proxy(port, alter);
        advertise_through(listener, dir, proxy.port());
        auto& sender = start({"send", topic, "0", "--no-unix", "--interval-ms", "20", "--wait-timeout-ms", "3000"},
                             key_a_, "sender", dir);
        EXPECT_TRUE(listener.wait_for_line("failed to authenticate", delivery_timeout));
        EXPECT_EQ(listener.count_lines("RECV "), 0u) << "a message crossed an altered link";
        sender.send_signal(SIGINT);
        sender.wait_exit(delivery_timeout);
    }
}

TEST_F(SecureTest, ReplayedHandshakeIsRefused) {
    auto& listener = start({"listen", "replay", "--no-unix"}, key_a_, "listener");
    const auto port = static_cast<std::uint16_t>(std::stoul(ready_field(listener, "tcp")));
    Proxy proxy(port, Proxy::Alter::none);
    advertise_through(listener, "proxy-replay", proxy.port());
    auto& sender = start({"send", "replay", "3", "--no-unix", "--text", "once"}, key_a_, "sender", "proxy-replay");
    ASSERT_TRUE(listener.wait_for_line("RECV replay 2 once", delivery_timeout));
    ASSERT_TRUE(sender.wait_exit(delivery_timeout));
    // The whole recorded session, replayed to the listener: its reply is fresh, so the recorded
    // finish fails, and the recorded messages never arrive a second time.
    const auto recorded = proxy.first_session();
    ASSERT_GT(recorded.size(), dialer_handshake_bytes);
    EXPECT_TRUE(send_and_wait_closed(port, recorded, Millis(5000)));
    EXPECT_TRUE(listener.wait_for_line("domain key mismatch", Millis(5000)));
    EXPECT_EQ(listener.count_lines("RECV replay"), 3u);
}

TEST_F(SecureTest, ForgedGoodbyeFailsOnAKeyedDomain) {
    auto& listener = start({"listen", "stream", "--no-unix"}, key_a_, "listener");
    const auto port = static_cast<std::uint16_t>(std::stoul(ready_field(listener, "tcp")));
    auto& sender =
        start({"send", "stream", "0", "--no-unix", "--interval-ms", "10", "--text", "tick"}, key_a_, "sender");
    const std::string sender_id = ready_field(sender, "id");
    ASSERT_TRUE(listener.wait_for_line("RECV stream 5 tick", delivery_timeout));
    // A stranger claims the sender's id with a correct node handshake, then says goodbye.
    const std::string bye = u32le(1) + std::string(1, '\x06');
    EXPECT_TRUE(send_and_wait_closed(port, plain_handshake(domain_, sender_id) + bye, Millis(5000)));
    EXPECT_TRUE(listener.wait_for_line("domain key mismatch (the peer has no domain key)", Millis(5000)));
    // The stream goes on.
    const auto before = listener.count_lines("RECV stream");
    EXPECT_TRUE(listener.wait_until(
        [&](const std::vector<Line>& lines) {
            const auto received = std::count_if(lines.begin(), lines.end(), [](const Line& l) {
                return l.text.find("RECV stream") != std::string::npos;
            });
            return static_cast<std::size_t>(received) > before + 20;
        },
        delivery_timeout))
        << "the stream stopped after the forged goodbye";
}

TEST_F(SecureTest, KeyFileOpenToOthersIsRefused) {
    ::chmod(key_a_.c_str(), 0644);
    auto& node = start({"listen", "x"}, key_a_, "node");
    const auto status = node.wait_exit(startup_timeout);
    ASSERT_TRUE(status);
    EXPECT_FALSE(status->success());
    EXPECT_EQ(node.count_lines("chmod 600"), 1u);
    EXPECT_EQ(node.count_lines("READY"), 0u);
}

}  // namespace
}  // namespace meshy::test
