// The bad input matrix: a live node (the victim, under `ulimit -n 1024`) takes bad bytes over TCP
// and over its Unix socket while it listens to a stream from a stable sender, beside a stable
// listener of the same stream. Each case asserts that the bad connection is closed, that the
// stream loses nothing at either listener, and that the victim's memory returns near its baseline.
#include <arpa/inet.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <poll.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <sys/un.h>

#include <cstdio>
#include <cstdlib>
#include <random>
#include <string>
#include <thread>
#include <utility>
#include <vector>

#include "chaos_fixture.hpp"

namespace meshy::chaos {
namespace {

using Clock = std::chrono::steady_clock;

enum class Transport { tcp, unix_socket };

/// A frame: u32 length of what follows | u8 type | body.
std::string frame(std::uint8_t type, const std::string& body) {
    return u32le(static_cast<std::uint32_t>(body.size() + 1)) + std::string(1, static_cast<char>(type)) + body;
}
constexpr std::uint8_t info_type = 1, message_type = 2, bye_type = 6;

constexpr Millis prompt{5000};  // a bad frame or handshake: closed at once (bounded here for a busy CI)

/// A client socket of the test; closed on destruction.
class Conn {
public:
    Conn() = default;
    explicit Conn(int fd) : fd_(fd) {}
    Conn(Conn&& o) noexcept : fd_(std::exchange(o.fd_, -1)) {}
    Conn& operator=(Conn&& o) noexcept {
        std::swap(fd_, o.fd_);
        return *this;
    }
    ~Conn() {
        if (fd_ >= 0) {
            ::close(fd_);
        }
    }
    int fd() const { return fd_; }
    bool ok() const { return fd_ >= 0; }

    bool send_all(const std::string& bytes) {
        std::size_t done = 0;
        while (done < bytes.size()) {
            const ssize_t n = ::send(fd_, bytes.data() + done, bytes.size() - done, MSG_NOSIGNAL);
            if (n <= 0) {
                return false;
            }
            done += static_cast<std::size_t>(n);
        }
        return true;
    }
    /// Reads and discards until the peer closes (EOF or reset). @returns whether it did in time.
    bool closed_within(Millis timeout) {
        const auto deadline = Clock::now() + timeout;
        char buf[4096];
        for (;;) {
            const auto left = std::chrono::duration_cast<Millis>(deadline - Clock::now()).count();
            if (left <= 0) {
                return false;
            }
            pollfd p{fd_, POLLIN, 0};
            if (::poll(&p, 1, static_cast<int>(left)) <= 0) {
                continue;
            }
            const ssize_t n = ::recv(fd_, buf, sizeof buf, MSG_DONTWAIT);
            if (n == 0 || (n < 0 && errno != EAGAIN && errno != EINTR)) {
                return true;
            }
        }
    }
    /// Whether the peer closed already (without waiting).
    bool closed_now() { return closed_within(Millis(1)); }

private:
    int fd_ = -1;
};

class BadInputTest : public ChaosTest, public testing::WithParamInterface<Transport> {
protected:
    void SetUp() override {
        ChaosTest::SetUp();
        if (HasFatalFailure()) {
            return;
        }
        // The test itself opens up to ~12k sockets.
        rlimit rl{};
        ::getrlimit(RLIMIT_NOFILE, &rl);
        rl.rlim_cur = std::min<rlim_t>(rl.rlim_max, 30000);
        ::setrlimit(RLIMIT_NOFILE, &rl);

        const std::vector<std::string> limit{"prlimit", "--nofile=1024:1024", "--"};
        const std::string ready = spawn_ready(
            victim_, {"listen", "chaos", "--count-only", "--report-every", "20", "--name", "victim"}, "victim", limit);
        tcp_port_ = std::atoi(field(ready, "tcp").c_str());
        unix_path_ = field(ready, "unix");
        spawn_ready(listener_, {"listen", "chaos", "--count-only", "--report-every", "20", "--name", "listener"},
                    "listener");
        const std::string sready = spawn_ready(sender_,
                                               {"send", "chaos", "0", "--wait-listeners", "2", "--burst", "20",
                                                "--interval-ms", "10", "--outbox-wait", "--name", "sender"},
                                               "sender");
        sender_id_ = field(sready, "id");
        ASSERT_TRUE(victim_->wait_for_line("COUNT ", discovery_timeout)) << tail(*sender_, 20);
        ASSERT_TRUE(listener_->wait_for_line("COUNT ", discovery_timeout)) << tail(*sender_, 20);
        std::this_thread::sleep_for(1s);  // warm-up period of the baseline measurement
        rss0_ = rss_kib(victim_->pid());
        rss_parts0_ = rss_parts(victim_->pid());
        fds0_ = fd_count(victim_->pid());
    }

    /// A new connection to the victim over the transport under test. `nonblocking`: for floods,
    /// a TCP connect still in progress (the victim's backlog full) counts as opened.
    Conn connect(bool nonblocking = false) const {
        const int flags = SOCK_STREAM | SOCK_CLOEXEC | (nonblocking ? SOCK_NONBLOCK : 0);
        if (GetParam() == Transport::tcp) {
            const int fd = ::socket(AF_INET, flags, 0);
            sockaddr_in a{};
            a.sin_family = AF_INET;
            a.sin_port = htons(static_cast<std::uint16_t>(tcp_port_));
            a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
            if (fd >= 0 && (::connect(fd, reinterpret_cast<sockaddr*>(&a), sizeof a) == 0 ||
                            (nonblocking && errno == EINPROGRESS))) {
                return Conn(fd);
            }
            if (fd >= 0) {
                ::close(fd);
            }
            return {};
        }
        const int fd = ::socket(AF_UNIX, flags, 0);
        sockaddr_un a{};
        a.sun_family = AF_UNIX;
        std::snprintf(a.sun_path, sizeof a.sun_path, "%s", unix_path_.c_str());
        if (fd >= 0 && ::connect(fd, reinterpret_cast<sockaddr*>(&a), sizeof a) == 0) {
            return Conn(fd);
        }
        if (fd >= 0) {
            ::close(fd);
        }
        return {};
    }

    /// Opens up to `count` connections (non-blocking), each sending `first` (may be empty).
    std::vector<Conn> flood(int count, const std::string& first) const {
        std::vector<Conn> conns;
        conns.reserve(static_cast<std::size_t>(count));
        for (int i = 0; i < count; ++i) {
            Conn c = connect(true);
            if (!c.ok()) {
                break;  // a Unix socket's backlog is full: the flood is as big as it gets
            }
            if (!first.empty()) {
                ::send(c.fd(), first.data(), first.size(), MSG_NOSIGNAL | MSG_DONTWAIT);
            }
            conns.push_back(std::move(c));
        }
        return conns;
    }

    /// Sends `bytes` one byte every 250 ms (slowloris). @returns whether the victim closed the
    /// connection before the last byte (a deadline cut it off, not the bytes being complete).
    bool trickle(Conn& c, const std::string& bytes) const {
        const auto t0 = Clock::now();
        bool closed = false;
        for (std::size_t i = 0; i + 1 < bytes.size() && Clock::now() - t0 < 30s && !closed; ++i) {
            c.send_all(bytes.substr(i, 1));
            closed = c.closed_within(250ms);
        }
        figure("close_ms",
               closed ? std::to_string(std::chrono::duration_cast<Millis>(Clock::now() - t0).count()) : "never");
        return closed;
    }

    /// The victim's warn-level lines so far.
    std::size_t victim_warnings() const {
        std::size_t warns = 0;
        for (const auto& line : victim_->lines(meshy::test::Stream::err)) {
            warns += line.find(" warn]") != std::string::npos ? 1 : 0;
        }
        return warns;
    }

    /// Every connection closed for bad input is logged: one warn line with the reason. The test
    /// may see the close before the victim's stderr line reaches the capture thread, so it waits.
    void expect_warned(const std::string& what) const {
        const bool warned =
            victim_
                ->wait_for_match([](const std::string& line) { return line.find(" warn]") != std::string::npos; },
                                 prompt)
                .has_value();
        EXPECT_TRUE(warned) << what << ": the victim closed it without a warning\n" << tail(*victim_, 20);
    }

    /// Sends `bytes` on a fresh connection and expects the victim to close it within `timeout`.
    void expect_closed_after(const std::string& bytes, Millis timeout, const std::string& what) {
        Conn c = connect();
        ASSERT_TRUE(c.ok()) << "cannot connect for " << what << ": " << std::strerror(errno);
        c.send_all(bytes);  // may fail half-way once the victim closed: that is the expected outcome
        const auto t0 = Clock::now();
        EXPECT_TRUE(c.closed_within(timeout))
            << what << ": the victim kept the connection open for " << timeout.count() << " ms";
        figure("close_ms", std::to_string(std::chrono::duration_cast<Millis>(Clock::now() - t0).count()));
        expect_warned(what);
    }

    /// The end of every case: the stream lost nothing at either listener, and the victim's memory
    /// came back near its baseline (at most 20% + 4 MiB above it within 10 s).
    void expect_stream_intact() {
        const auto deadline = Clock::now() + 10s;
        std::uint64_t rss = rss_kib(victim_->pid());
        while (static_cast<double>(rss) > rss0_ * 1.2 + 4096 && Clock::now() < deadline) {
            std::this_thread::sleep_for(100ms);  // poll period
            rss = rss_kib(victim_->pid());
        }
        figure("victim_rss_kib", std::to_string(rss0_) + "->" + std::to_string(rss));
        figure("victim_rss_parts", rss_parts0_ + " -> " + rss_parts(victim_->pid()));
        figure("victim_fds", std::to_string(fds0_) + "->" + std::to_string(fd_count(victim_->pid())));
        EXPECT_LE(static_cast<double>(rss), rss0_ * 1.2 + 4096) << "victim RSS " << rss0_ << " -> " << rss << " KiB";
        ASSERT_TRUE(victim_->running()) << "the victim died:\n" << tail(*victim_, 40);

        const std::int64_t sent = stop_sender(*sender_);
        ASSERT_GT(sent, 0);
        EXPECT_TRUE(wait_count(*victim_, sent, 20000ms)) << "victim short of " << sent << "\n" << tail(*victim_, 20);
        EXPECT_TRUE(wait_count(*listener_, sent, 20000ms)) << "listener short of " << sent;
        const Final v = stop_listener(*victim_), l = stop_listener(*listener_);
        figure("sent", std::to_string(sent));
        figure("victim_received", std::to_string(v.total));
        figure("listener_received", std::to_string(l.total));
        EXPECT_EQ(v.total, sent);
        EXPECT_EQ(v.violations, 0);
        EXPECT_EQ(l.total, sent);
        EXPECT_EQ(l.violations, 0);
        figure("victim_warn_lines", std::to_string(victim_warnings()));
    }

    std::string domain() const { return domain_; }

    Process* victim_ = nullptr;
    Process* listener_ = nullptr;
    Process* sender_ = nullptr;
    std::string sender_id_;
    int tcp_port_ = 0;
    std::string unix_path_;
    std::uint64_t rss0_ = 0;
    std::string rss_parts0_;
    std::size_t fds0_ = 0;
};

TEST_P(BadInputTest, Garbage) {
    std::mt19937 rng(26);
    std::string bytes(4096, '\0');
    for (auto& c : bytes) {
        c = static_cast<char>(rng());
    }
    expect_closed_after(bytes, prompt, "garbage");
    expect_stream_intact();
}

TEST_P(BadInputTest, WrongMagic) {
    expect_closed_after(handshake(domain(), "00000000-0000-4000-8000-0000c4a05bad", "HTTP"), prompt, "wrong magic");
    expect_stream_intact();
}

TEST_P(BadInputTest, WrongVersion) {
    expect_closed_after(handshake(domain(), "00000000-0000-4000-8000-0000c4a05bad", "MSHY", 99), prompt, "version 99");
    expect_stream_intact();
}

TEST_P(BadInputTest, WrongDomain) {
    expect_closed_after(handshake("another-domain"), prompt, "wrong domain");
    expect_stream_intact();
}

TEST_P(BadInputTest, FourGigabyteLength) {
    expect_closed_after(handshake(domain()) + u32le(0xffffffffu) + std::string(1, static_cast<char>(message_type)),
                        prompt, "4 GB length");
    expect_stream_intact();
}

TEST_P(BadInputTest, TruncatedFrame) {
    // A message frame that says 1000 bytes, 10 of them, then the end of the stream.
    Conn c = connect();
    ASSERT_TRUE(c.ok());
    c.send_all(handshake(domain()) + u32le(1000) + std::string(1, static_cast<char>(message_type)) +
               std::string(10, 'x'));
    ::shutdown(c.fd(), SHUT_WR);
    // The peer ended the stream itself: a close without a warning is right here.
    EXPECT_TRUE(c.closed_within(prompt)) << "truncated frame: connection kept";
    expect_stream_intact();
}

TEST_P(BadInputTest, MalformedInfoFrame) {
    // An info frame whose counts claim 4 billion topics in 8 bytes of body.
    expect_closed_after(handshake(domain()) + frame(info_type, u32le(1) + u32le(0xffffffffu)), prompt,
                        "malformed info");
    expect_stream_intact();
}

TEST_P(BadInputTest, SlowlorisBeforeHandshake) {
    // One byte of a handshake every 250 ms: it must not hold a connection for longer than the
    // handshake deadline.
    Conn c = connect();
    ASSERT_TRUE(c.ok());
    EXPECT_TRUE(trickle(c, handshake(domain()))) << "a handshake trickled a byte every 250 ms was never cut off";
    expect_warned("slow handshake");
    expect_stream_intact();
}

TEST_P(BadInputTest, SlowlorisAfterHandshake) {
    // A valid handshake, then a 100-byte message frame trickled a byte every 250 ms.
    Conn c = connect();
    ASSERT_TRUE(c.ok());
    c.send_all(handshake(domain()));
    EXPECT_TRUE(trickle(c, frame(message_type, std::string(99, 'x'))))
        << "a frame trickled a byte every 250 ms after the handshake was never cut off";
    expect_warned("slow frame");
    expect_stream_intact();
}

TEST_P(BadInputTest, BigMemoryClaims) {
    // 100 connections, each with a frame claiming 60 MiB and sending 64 KiB of it: the victim must
    // not reserve what a frame claims before the bytes are there.
    std::vector<Conn> conns;
    const std::string head = handshake(domain()) + u32le(60u << 20) + std::string(1, static_cast<char>(message_type));
    const std::string some(64 * 1024, 'x');
    for (int i = 0; i < 100; ++i) {
        Conn c = connect();
        if (!c.ok()) {
            break;
        }
        ::fcntl(c.fd(), F_SETFL, O_NONBLOCK);
        ::send(c.fd(), head.data(), head.size(), MSG_NOSIGNAL);
        ::send(c.fd(), some.data(), some.size(), MSG_NOSIGNAL);
        conns.push_back(std::move(c));
    }
    std::this_thread::sleep_for(1s);  // let the victim read what was sent before measuring
    const auto rss = rss_kib(victim_->pid());
    figure("connections", std::to_string(conns.size()));
    figure("victim_rss_during_kib", std::to_string(rss));
    EXPECT_LT(static_cast<double>(rss), rss0_ + 100.0 * 1024) << "claims of 100 x 60 MiB grew the victim's memory";
    conns.clear();
    expect_stream_intact();
}

TEST_P(BadInputTest, ForgedByeNamingAnotherNode) {
    // A connection that claims to be the stable sender, then says bye: the victim must not drop
    // the real sender (the stream below loses nothing).
    Conn c = connect();
    ASSERT_TRUE(c.ok());
    c.send_all(handshake(domain(), sender_id_) + frame(bye_type, ""));
    c.closed_within(prompt);
    Conn d = connect();
    ASSERT_TRUE(d.ok());
    d.send_all(handshake(domain(), sender_id_) + frame(info_type, u32le(7) + u32le(0) + u32le(0)));
    d.closed_within(prompt);
    expect_warned("a handshake naming a node that is already connected");
    expect_stream_intact();
}

/// Waits (bounded) until the victim closed every connection. @returns how many it closed.
std::size_t wait_all_closed(std::vector<Conn>& conns, Millis timeout) {
    std::vector<pollfd> open;
    for (const auto& c : conns) {
        open.push_back({c.fd(), POLLIN, 0});
    }
    const auto deadline = Clock::now() + timeout;
    std::size_t closed = 0;
    char buf[512];
    while (!open.empty() && Clock::now() < deadline) {
        if (::poll(open.data(), open.size(), 200) <= 0) {
            continue;
        }
        for (std::size_t i = 0; i < open.size();) {
            bool gone = false;
            if (open[i].revents & (POLLIN | POLLHUP | POLLERR)) {
                const ssize_t n = ::recv(open[i].fd, buf, sizeof buf, MSG_DONTWAIT);
                gone = n == 0 || (n < 0 && errno != EAGAIN && errno != EINTR);
            }
            open[i].revents = 0;
            if (gone) {
                ++closed;
                open[i] = open.back();
                open.pop_back();
            } else {
                ++i;
            }
        }
    }
    return closed;
}

TEST_P(BadInputTest, TenThousandIdleConnections) {
    // 10,000 connections that never send a byte; the victim holds at most 1024 descriptors, so
    // most wait in its backlog until it has closed earlier ones for saying nothing.
    std::vector<Conn> conns = flood(10000, {});
    figure("connections", std::to_string(conns.size()));
    const auto t0 = Clock::now();
    const std::size_t closed = wait_all_closed(conns, 120s);
    figure("closed_by_victim", std::to_string(closed));
    figure("all_closed_ms", std::to_string(std::chrono::duration_cast<Millis>(Clock::now() - t0).count()));
    EXPECT_EQ(closed, conns.size()) << "idle connections left open after 120 s";
    conns.clear();
    const std::size_t warns = victim_warnings();
    EXPECT_LE(warns, 200u) << "10,000 idle connections flooded the victim's log (rate-limit per kind)";
    expect_stream_intact();
}

TEST_P(BadInputTest, HalfOpenFloodAtTheDescriptorLimit) {
    // 3,000 connections with half a handshake each against a victim limited to 1024 descriptors:
    // the stream it listens to must go on, and it must accept a real peer again afterwards.
    std::vector<Conn> conns = flood(3000, handshake(domain()).substr(0, 10));
    figure("connections", std::to_string(conns.size()));
    const auto t0 = Clock::now();
    const std::size_t closed = wait_all_closed(conns, 60s);
    figure("closed_by_victim", std::to_string(closed));
    figure("all_closed_ms", std::to_string(std::chrono::duration_cast<Millis>(Clock::now() - t0).count()));
    EXPECT_EQ(closed, conns.size()) << "half-open connections left open after 60 s";
    conns.clear();
    // A node started after the flood connects to the victim (and the two others).
    Process& late = spawn({"nodes", "--expect", "3", "--name", "late"}, "late");
    const auto status = late.wait_exit(startup_timeout + discovery_timeout);
    EXPECT_TRUE(status && status->success()) << "a node started after the flood did not reach the victim\n"
                                             << late.dump();
    expect_stream_intact();
}

INSTANTIATE_TEST_SUITE_P(Tcp, BadInputTest, testing::Values(Transport::tcp));
INSTANTIATE_TEST_SUITE_P(Unix, BadInputTest, testing::Values(Transport::unix_socket));

}  // namespace
}  // namespace meshy::chaos
