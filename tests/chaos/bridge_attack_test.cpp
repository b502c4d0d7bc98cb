// `meshy bridge` under attack while a roslibjs client keeps publishing into the mesh: a flood of
// half-open sockets (a request line and nothing more) must not lock legitimate clients out, and a
// 20 MB frame is closed with 1009 after one warning, without the bridge reading the rest of it.
#include <arpa/inet.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <poll.h>
#include <sys/resource.h>
#include <sys/socket.h>

#include <atomic>
#include <string>
#include <thread>
#include <vector>

#include "bridge/websocket_client.hpp"
#include "chaos_fixture.hpp"

namespace meshy::chaos {
namespace {

using Clock = std::chrono::steady_clock;
using meshy::cli::bridge::ClientMessage;
using meshy::cli::bridge::WebSocketClient;

const fs::path clients_dir = fs::path(MESHY_SOURCE_DIR) / "tests" / "bridge";

std::optional<std::string> missing_roslib() {
    const auto node = meshy::test::run_command({"node", "--version"}, 10s);
    if (!node.status || !node.status->success()) {
        return "node is not installed (scripts/deps.sh installs Node.js)";
    }
    if (!fs::exists(clients_dir / "node_modules" / "roslib" / "package.json")) {
        return "roslib is not installed: run `npm ci` in " + clients_dir.string();
    }
    return std::nullopt;
}

int raw_connect(std::uint16_t port) {
    const int fd = ::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    sockaddr_in a{};
    a.sin_family = AF_INET;
    a.sin_port = htons(port);
    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    if (fd >= 0 && ::connect(fd, reinterpret_cast<sockaddr*>(&a), sizeof a) == 0) {
        return fd;
    }
    if (fd >= 0) {
        ::close(fd);
    }
    return -1;
}

/// A rosapi round trip: the connection is open and served.
bool answers_rosapi(WebSocketClient& c, const std::string& id) {
    c.send_text(R"({"op":"call_service","service":"/rosapi/nodes","id":")" + id + R"("})");
    const auto deadline = Clock::now() + 10s;
    while (Clock::now() < deadline) {
        const ClientMessage m = c.receive(std::chrono::duration_cast<Millis>(deadline - Clock::now()));
        if (m.kind != ClientMessage::Kind::text && m.kind != ClientMessage::Kind::binary) {
            return false;
        }
        if (m.data.find("\"id\":\"" + id + "\"") != std::string::npos) {
            return m.data.find("\"result\":true") != std::string::npos;
        }
    }
    return false;
}

class BridgeAttackTest : public ChaosTest {
protected:
    Process& start_cli(std::vector<std::string> args, const std::string& label) {
        args.insert(args.begin(), MESHY_CLI_PATH);
        procs_.push_back(std::make_unique<Process>(std::move(args), env(), label));
        return *procs_.back();
    }
};

TEST_F(BridgeAttackTest, HalfOpenFloodAndOversizeFrameWhileRoslibKeepsPublishing) {
    if (const auto problem = missing_roslib()) {
        FAIL() << *problem;
    }
    rlimit rl{};
    ::getrlimit(RLIMIT_NOFILE, &rl);
    rl.rlim_cur = std::min<rlim_t>(rl.rlim_max, 8192);
    ::setrlimit(RLIMIT_NOFILE, &rl);

    Process& bridge =
        start_cli({"bridge", "--address", "127.0.0.1", "--port", "0", "--max-message-size", "1048576"}, "bridge");
    const auto url_line = bridge.wait_for_line("ws://127.0.0.1:", startup_timeout);
    ASSERT_TRUE(url_line) << bridge.dump();
    const auto port = static_cast<std::uint16_t>(std::stoi(url_line->substr(url_line->find("127.0.0.1:") + 10)));
    const std::string url = "ws://127.0.0.1:" + std::to_string(port);

    Process& echo = start_cli({"topic", "echo", "from_roslib", "--json"}, "echo");
    ASSERT_TRUE(echo.wait_for_line("Listening to topics", startup_timeout)) << echo.dump();
    procs_.push_back(
        std::make_unique<Process>(std::vector<std::string>{"node", (clients_dir / "roslib_test.mjs").string(), url,
                                                           "publish", "/from_roslib", R"({"data":"alive"})"},
                                  env(), "roslib"));
    Process& roslib = *procs_.back();
    ASSERT_TRUE(echo.wait_for_line("alive", 30s)) << echo.dump() << roslib.dump();

    // 200 half-open sockets: each sends a request line and nothing more.
    const std::size_t echoed_before = echo.count_lines("alive");
    std::vector<int> half_open;
    for (int i = 0; i < 200; ++i) {
        const int fd = raw_connect(port);
        if (fd < 0) {
            break;
        }
        const std::string line = "GET / HTTP/1.1\r\n";
        ::send(fd, line.data(), line.size(), MSG_NOSIGNAL);
        half_open.push_back(fd);
    }
    figure("half_open_sockets", std::to_string(half_open.size()));

    // 14 legitimate clients during the flood: every one gets in and is served.
    int admitted = 0;
    const auto flood_t0 = Clock::now();
    for (int i = 0; i < 14; ++i) {
        try {
            WebSocketClient c("127.0.0.1", port, "/", {}, 5000ms);
            admitted += answers_rosapi(c, "legit-" + std::to_string(i)) ? 1 : 0;
        } catch (const std::exception& e) {
            ADD_FAILURE() << "legitimate client " << i << " locked out: " << e.what();
        }
    }
    figure("legitimate_admitted", std::to_string(admitted) + "/14");
    figure("legitimate_ms", std::to_string(std::chrono::duration_cast<Millis>(Clock::now() - flood_t0).count()));
    EXPECT_EQ(admitted, 14);

    // The half-open sockets are closed by the bridge within its handshake deadline (3 s).
    std::size_t cut = 0;
    for (const int fd : half_open) {
        char buf[256];
        const auto deadline = Clock::now() + 10s;
        bool closed = false;
        while (!closed && Clock::now() < deadline) {
            pollfd p{fd, POLLIN, 0};
            if (::poll(&p, 1, 100) > 0) {
                const ssize_t n = ::recv(fd, buf, sizeof buf, MSG_DONTWAIT);
                closed = n == 0 || (n < 0 && errno != EAGAIN);
            }
        }
        cut += closed ? 1 : 0;
        ::close(fd);
    }
    figure("half_open_closed_by_bridge", std::to_string(cut));
    EXPECT_EQ(cut, half_open.size());

    // A 20 MB frame against a 1 MB limit: close 1009, one warning, the rest is never read.
    {
        const std::size_t before_lines = bridge.line_count();
        WebSocketClient c("127.0.0.1", port);
        const std::uint64_t size = 20u << 20;
        std::string header{'\x82', '\xff'};  // binary, masked, 64-bit length
        for (int shift = 56; shift >= 0; shift -= 8) {
            header.push_back(static_cast<char>((size >> shift) & 0xff));
        }
        header += std::string(4, '\x5a');  // mask key
        c.send_raw(header);
        // Push what the socket takes without blocking, bounded in time.
        ::fcntl(c.fd(), F_SETFL, ::fcntl(c.fd(), F_GETFL) | O_NONBLOCK);
        const std::string chunk(64 * 1024, 'x');
        std::uint64_t pushed = 0;
        const auto push_deadline = Clock::now() + 3s;
        while (pushed < size && Clock::now() < push_deadline) {
            const ssize_t n = ::send(c.fd(), chunk.data(), chunk.size(), MSG_NOSIGNAL);
            if (n > 0) {
                pushed += static_cast<std::uint64_t>(n);
            } else if (n < 0 && errno != EAGAIN) {
                break;
            } else {
                pollfd p{c.fd(), POLLOUT, 0};
                ::poll(&p, 1, 50);
            }
        }
        ::fcntl(c.fd(), F_SETFL, ::fcntl(c.fd(), F_GETFL) & ~O_NONBLOCK);
        const ClientMessage m = c.receive(10s);
        EXPECT_EQ(m.kind, ClientMessage::Kind::close);
        EXPECT_EQ(m.code, 1009);
        figure("oversize_bytes_pushed", std::to_string(pushed));
        ASSERT_TRUE(bridge.wait_for_line("closing (1009)", 10s, before_lines)) << tail(bridge, 20);
        std::size_t about_it = 0;
        const auto lines = bridge.lines();
        for (std::size_t i = before_lines; i < lines.size(); ++i) {
            about_it += lines[i].find("closing (") != std::string::npos ? 1 : 0;
        }
        figure("oversize_warning_lines", std::to_string(about_it));
        EXPECT_EQ(about_it, 1u) << "one oversize frame, one warning";
    }

    // roslib kept publishing through it all, on its one connection.
    const auto echo_deadline = Clock::now() + 15s;
    while (echo.count_lines("alive") < echoed_before + 10 && Clock::now() < echo_deadline) {
        echo.wait_for_line("alive", 200ms, echo.line_count());
    }
    ASSERT_GE(echo.count_lines("alive"), echoed_before + 10) << "roslib's messages stopped reaching the mesh\n"
                                                             << tail(roslib, 20);
    figure("roslib_messages_during_attack", std::to_string(echo.count_lines("alive") - echoed_before));
    EXPECT_EQ(roslib.count_lines("FAIL"), 0u) << roslib.dump();
    std::size_t warns = 0;
    for (const auto& l : bridge.lines()) {
        warns += l.find(" warn]") != std::string::npos ? 1 : 0;
    }
    figure("bridge_warn_lines", std::to_string(warns));
    EXPECT_LE(warns, 20u) << "the attack flooded the bridge's log\n" << tail(bridge, 40);
    roslib.send_signal(SIGTERM);
    const auto status = roslib.wait_exit(10s);
    EXPECT_TRUE(status && status->success()) << roslib.dump();
}

}  // namespace
}  // namespace meshy::chaos
