// `meshy bridge` security with a real bridge process and a minimal C++ WebSocket client on loopback:
// tokens, allowlists, size limits, malformed frames, rate limits, many idle clients and a slow reader.
// The mesh side is observed with `meshy topic echo`. Every wait has a deadline; nothing sleeps.
#include <gtest/gtest.h>
#include <poll.h>
#include <signal.h>
#include <sys/socket.h>
#include <unistd.h>

#include <chrono>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <map>
#include <memory>
#include <string>
#include <vector>

#include "bridge/websocket_client.hpp"
#include "process.hpp"
#include "sanitizer.hpp"

using namespace std::chrono_literals;
using meshy::cli::bridge::ClientMessage;
using meshy::cli::bridge::WebSocketClient;
using meshy::test::Process;
namespace fs = std::filesystem;

namespace {

const std::string cli = MESHY_CLI_PATH;

/// Resident memory of a process in kB, from /proc.
long vm_rss_kb(pid_t pid) {
    std::ifstream in("/proc/" + std::to_string(pid) + "/status");
    std::string line;
    while (std::getline(in, line)) {
        if (line.rfind("VmRSS:", 0) == 0) {
            return std::stol(line.substr(6));
        }
    }
    return -1;
}

/// Receives until a message containing `needle` (or a close) arrives, within `timeout`.
ClientMessage receive_until(WebSocketClient& c, const std::string& needle, std::chrono::milliseconds timeout) {
    const auto deadline = std::chrono::steady_clock::now() + timeout;
    for (;;) {
        const auto left =
            std::chrono::duration_cast<std::chrono::milliseconds>(deadline - std::chrono::steady_clock::now());
        if (left.count() <= 0) {
            return {ClientMessage::Kind::timeout, {}, 0};
        }
        ClientMessage m = c.receive(left);
        if (m.kind != ClientMessage::Kind::text && m.kind != ClientMessage::Kind::binary) {
            return m;
        }
        if (m.data.find(needle) != std::string::npos) {
            return m;
        }
    }
}

/// A rosapi round trip: proves the connection is open, authenticated and served.
bool answers_rosapi(WebSocketClient& c, const std::string& id) {
    c.send_text(R"({"op":"call_service","service":"/rosapi/nodes","id":")" + id + R"("})");
    const ClientMessage m = receive_until(c, "\"id\":\"" + id + "\"", 10s);
    return m.kind == ClientMessage::Kind::text && m.data.find("\"result\":true") != std::string::npos;
}

class BridgeSecurityTest : public ::testing::Test {
protected:
    void SetUp() override {
        const std::string name = ::testing::UnitTest::GetInstance()->current_test_info()->name();
        root_ = fs::temp_directory_path() / ("meshy-bridge-sec-" + std::to_string(::getpid()) + "-" + name);
        fs::remove_all(root_);
        fs::create_directories(root_ / "discovery");
        env_ = {{"MESHY_DOMAIN_ID", "bridge-sec-" + name + "-" + std::to_string(::getpid())},
                {"MESHY_DISCOVERY", "local"},
                {"MESHY_LOCAL_DISCOVERY_DIR", (root_ / "discovery").string()},
                {"MESHY_LISTEN_HOST", "127.0.0.1"}};
    }
    void TearDown() override {
        processes_.clear();
        std::error_code ec;
        fs::remove_all(root_, ec);
    }
    Process& start_cli(std::vector<std::string> args, const std::string& label) {
        args.insert(args.begin(), cli);
        processes_.push_back(std::make_unique<Process>(std::move(args), env_, label));
        return *processes_.back();
    }
    Process& start_bridge(std::vector<std::string> extra) {
        std::vector<std::string> args{"bridge", "--address", "127.0.0.1", "--port", "0"};
        args.insert(args.end(), extra.begin(), extra.end());
        auto& bridge = start_cli(std::move(args), "bridge");
        const auto line = bridge.wait_for_line("://127.0.0.1:", 20s);  // ws:// or wss://
        EXPECT_TRUE(line) << bridge.dump();
        if (line) {
            port_ = static_cast<std::uint16_t>(std::stoi(line->substr(line->find("127.0.0.1:") + 10)));
        }
        return bridge;
    }
    /// `meshy topic echo --json TOPICS...`, once it listens and the bridge's node sees it.
    Process& start_echo(const std::vector<std::string>& topics, WebSocketClient& probe) {
        std::vector<std::string> args{"topic", "echo", "--json"};
        args.insert(args.end(), topics.begin(), topics.end());
        auto& echo = start_cli(args, "echo");
        EXPECT_TRUE(echo.wait_for_line("Listening to topics", 20s)) << echo.dump();
        // Wait until the bridge's node knows the listener (rosapi/topics lists it).
        const auto deadline = std::chrono::steady_clock::now() + 20s;
        int n = 0;
        while (std::chrono::steady_clock::now() < deadline) {
            const std::string id = "topics-" + std::to_string(++n);
            probe.send_text(R"({"op":"call_service","service":"/rosapi/topics","id":")" + id + R"("})");
            const ClientMessage m = receive_until(probe, "\"id\":\"" + id + "\"", 5s);
            if (m.data.find("\"/" + topics.front() + "\"") != std::string::npos) {
                return echo;
            }
            probe.receive(200ms);  // paces the polling; returns early if anything arrives
        }
        ADD_FAILURE() << "the bridge never saw the echo's topics\n" << echo.dump();
        return echo;
    }
    std::unique_ptr<WebSocketClient> connect(const std::string& target = "/") {
        return std::make_unique<WebSocketClient>("127.0.0.1", port_, target);
    }

    fs::path root_;
    std::map<std::string, std::string> env_;
    std::uint16_t port_ = 0;
    std::vector<std::unique_ptr<Process>> processes_;
};

TEST_F(BridgeSecurityTest, NonLoopbackAddressWithoutTokenIsRefused) {
    auto result = meshy::test::run_command({cli, "bridge", "--address", "0.0.0.0", "--port", "0"}, 20s, env_);
    ASSERT_TRUE(result.status);
    EXPECT_EQ(result.status->code, 2);
    ASSERT_FALSE(result.lines.empty());
    EXPECT_NE(result.lines.back().find("meshy: error: refusing to bind 0.0.0.0"), std::string::npos)
        << result.lines.back();
}

TEST_F(BridgeSecurityTest, MissingOrWrongTokenIsClosedWith4001) {
    env_["MESHY_BRIDGE_TOKEN"] = "s3cret";
    auto& bridge = start_bridge({});
    {
        auto c = connect("/?token=wrong");
        const auto m = c->receive(10s);
        EXPECT_EQ(m.kind, ClientMessage::Kind::close);
        EXPECT_EQ(m.code, 4001);
        EXPECT_EQ(m.data, "unauthorized");
    }
    {
        auto c = connect();
        c->send_text(R"({"op":"subscribe","topic":"/chatter"})");
        const auto m = c->receive(10s);
        EXPECT_EQ(m.kind, ClientMessage::Kind::close);
        EXPECT_EQ(m.code, 4001);
    }
    {
        auto c = connect();
        c->send_text(R"({"op":"auth","token":"nope"})");
        const auto m = c->receive(10s);
        EXPECT_EQ(m.kind, ClientMessage::Kind::close);
        EXPECT_EQ(m.code, 4001);
    }
    {
        auto c = connect("/?token=s3cret");
        EXPECT_TRUE(answers_rosapi(*c, "query"));
    }
    {
        auto c = connect();
        c->send_text(R"({"op":"auth","token":"s3cret"})");
        EXPECT_TRUE(answers_rosapi(*c, "op"));
    }
    {
        // roslibjs authenticate(): the mac field carries the secret.
        auto c = connect();
        c->send_text(R"({"op":"auth","mac":"s3cret","client":"c","dest":"d","rand":"r","t":0,"level":"user","end":0})");
        EXPECT_TRUE(answers_rosapi(*c, "mac"));
    }
    EXPECT_TRUE(bridge.running()) << bridge.dump();
}

TEST_F(BridgeSecurityTest, OpsOutsideTheAllowlistsGetAStatusErrorAndReachNothing) {
    start_bridge({"--topics-glob", "/allowed*", "--services-glob", "/rosapi/*"});
    auto c = connect();
    auto& echo = start_echo({"allowed", "secret"}, *c);
    c->send_text(R"({"op":"set_level","level":"error"})");
    c->send_text(R"({"op":"publish","id":"p1","topic":"/secret","msg":{"data":"leak"}})");
    auto m = receive_until(*c, "\"op\":\"status\"", 10s);
    EXPECT_NE(m.data.find("not allowed"), std::string::npos) << m.data;
    EXPECT_NE(m.data.find("\"id\":\"p1\""), std::string::npos) << m.data;
    c->send_text(R"({"op":"subscribe","id":"s1","topic":"/secret"})");
    m = receive_until(*c, "\"op\":\"status\"", 10s);
    EXPECT_NE(m.data.find("not allowed"), std::string::npos) << m.data;
    c->send_text(R"({"op":"call_service","id":"c1","service":"/secret_service","args":{}})");
    m = receive_until(*c, "\"op\":\"service_response\"", 10s);
    EXPECT_NE(m.data.find("\"result\":false"), std::string::npos) << m.data;
    EXPECT_NE(m.data.find("not allowed"), std::string::npos) << m.data;
    // rosapi hides what is not allowed.
    c->send_text(R"({"op":"call_service","id":"t","service":"/rosapi/topics"})");
    m = receive_until(*c, "\"id\":\"t\"", 10s);
    EXPECT_NE(m.data.find("/allowed"), std::string::npos) << m.data;
    EXPECT_EQ(m.data.find("/secret"), std::string::npos) << m.data;
    // An allowed publish goes through after the refused one, on the same path: the echo sees only it.
    c->send_text(R"({"op":"publish","topic":"/allowed","msg":{"data":"fine"}})");
    ASSERT_TRUE(echo.wait_for_line("fine", 20s)) << echo.dump();
    EXPECT_EQ(echo.count_lines("leak"), 0u) << echo.dump();
}

TEST_F(BridgeSecurityTest, OversizeAndMalformedFramesCloseOnlyThatConnection) {
    auto& bridge = start_bridge({"--max-message-size", "4096"});
    auto bystander = connect();
    ASSERT_TRUE(answers_rosapi(*bystander, "before"));
    {
        auto c = connect();
        c->send_text(R"({"op":"publish","topic":"/big","msg":{"data":")" + std::string(8192, 'x') + "\"}}");
        const auto m = c->receive(10s);
        EXPECT_EQ(m.kind, ClientMessage::Kind::close);
        EXPECT_EQ(m.code, 1009);
    }
    {
        auto c = connect();
        c->send_raw(std::string("\x81\x05hello", 7));  // unmasked: a protocol error from a client
        const auto m = c->receive(10s);
        EXPECT_EQ(m.kind, ClientMessage::Kind::close);
        EXPECT_EQ(m.code, 1002);
    }
    {
        auto c = connect();
        c->send_text("this is not json");  // a bad op is not a bad frame: status error, connection stays
        const auto m = receive_until(*c, "\"op\":\"status\"", 10s);
        EXPECT_NE(m.data.find("malformed JSON"), std::string::npos) << m.data;
        EXPECT_TRUE(answers_rosapi(*c, "still-open"));
    }
    EXPECT_TRUE(answers_rosapi(*bystander, "after"));
    EXPECT_TRUE(bridge.wait_for_line("closing (1009)", 10s)) << bridge.dump();
    EXPECT_TRUE(bridge.wait_for_line("closing (1002)", 10s)) << bridge.dump();
}

TEST_F(BridgeSecurityTest, FloodIsThrottledToTheConfiguredRate) {
    start_bridge({"--rate-limit-msgs", "50"});
    auto probe = connect();
    auto& echo = start_echo({"flood"}, *probe);
    {
        auto flood = connect();
        for (int i = 0; i < 500; ++i) {
            flood->send_text(R"({"op":"publish","topic":"/flood","msg":{"data":"flood-msg"}})");
        }
        // The bridge reads a connection in order: its close reply comes after all 500 were handled.
        flood->send_close(1000);
        const auto m = receive_until(*flood, "\x01\x02", 20s);
        EXPECT_EQ(m.kind, ClientMessage::Kind::close);
    }
    probe->send_text(R"({"op":"publish","topic":"/flood","msg":{"data":"marker"}})");
    ASSERT_TRUE(echo.wait_for_line("marker", 20s)) << echo.dump();
    const std::size_t delivered = echo.count_lines("flood-msg");
    std::printf("flood: %zu of 500 messages reached the mesh (limit 50 msg/s)\n", delivered);
    EXPECT_GE(delivered, 1u);
    // A burst of one second's worth (50) plus what refills while the burst is read.
    EXPECT_LE(delivered, 100u) << delivered << " of 500 got through";
}

TEST_F(BridgeSecurityTest, IdleClientsAndASlowReaderLeaveTheBridgeResponsive) {
    if (meshy::test::address_sanitizer) {
        env_["ASAN_OPTIONS"] = meshy::test::asan_options_without_quarantine();
    }
    auto& bridge = start_bridge({"--max-clients", "300", "--send-queue-bytes", "65536", "--stall-timeout", "2"});
    std::vector<std::unique_ptr<WebSocketClient>> idle;
    for (int i = 0; i < 200; ++i) {
        idle.push_back(connect());
    }
    auto slow = connect();
    const int small = 4096;
    ::setsockopt(slow->fd(), SOL_SOCKET, SO_RCVBUF, &small, sizeof small);
    slow->send_text(R"({"op":"subscribe","topic":"/firehose"})");
    auto pump = connect();
    ASSERT_TRUE(answers_rosapi(*pump, "ready"));  // the subscribe was handled before this answer
    const long rss_before = vm_rss_kb(bridge.pid());
    ASSERT_GT(rss_before, 0);
    const std::string publish =
        R"({"op":"publish","topic":"/firehose","msg":{"data":")" + std::string(1000, 'f') + "\"}}";
    // Pump 1 kB messages (bounded: 200 batches) until the bridge drops the reader that never reads.
    bool dropped = false;
    for (int batch = 0; batch < 200 && !dropped; ++batch) {
        for (int i = 0; i < 200; ++i) {
            pump->send_text(publish);
        }
        ASSERT_TRUE(answers_rosapi(*pump, "batch-" + std::to_string(batch)));
        dropped = bridge.count_lines("writes stalled") > 0;
        if (!dropped) {
            dropped = bridge.wait_for_line("writes stalled", 50ms).has_value();
        }
    }
    EXPECT_TRUE(dropped || bridge.wait_for_line("writes stalled", 10s)) << bridge.dump();
    const long rss_after = vm_rss_kb(bridge.pid());
    EXPECT_LT(rss_after - rss_before, 64 * 1024) << "VmRSS grew from " << rss_before << " kB to " << rss_after << " kB";
    // A fresh client is served at once, the idle ones are still connected.
    auto fresh = connect();
    EXPECT_TRUE(answers_rosapi(*fresh, "fresh"));
    EXPECT_TRUE(answers_rosapi(*idle.front(), "idle-0"));
    EXPECT_TRUE(answers_rosapi(*idle.back(), "idle-199"));
    std::printf("bridge VmRSS: %ld kB with 200 idle clients, %ld kB after the slow reader was dropped\n", rss_before,
                rss_after);
}

TEST_F(BridgeSecurityTest, IdleClientIsClosedAndAPongingClientStays) {
    start_bridge({"--idle-timeout", "1", "--ping-interval", "0.2"});
    auto ponging = connect();
    {
        // Reads nothing and sends nothing: no pongs either (the raw socket is never read).
        auto silent = connect();
        pollfd p{silent->fd(), POLLIN, 0};
        // Its receive() would answer the pings; wait for the bytes first, then read them all at once.
        const auto deadline = std::chrono::steady_clock::now() + 20s;
        ClientMessage last;
        while (std::chrono::steady_clock::now() < deadline) {
            // Keep the other client alive meanwhile: receive() answers its pings.
            ponging->receive(100ms);
            if (::poll(&p, 1, 0) > 0) {
                char peek[4096];
                const ssize_t n = ::recv(silent->fd(), peek, sizeof peek, MSG_PEEK);
                if (n <= 0 || std::string_view(peek, static_cast<std::size_t>(n)).find("idle timeout") !=
                                  std::string_view::npos) {
                    break;
                }
            }
        }
        last = receive_until(*silent, "never", 5s);
        EXPECT_EQ(last.kind, ClientMessage::Kind::close);
        EXPECT_EQ(last.code, 1001);
        EXPECT_EQ(last.data, "idle timeout");
    }
    EXPECT_TRUE(answers_rosapi(*ponging, "still-here"));
}

TEST_F(BridgeSecurityTest, TlsServesWssWithTheGivenCertificate) {
    if (::access("/usr/bin/openssl", X_OK) != 0 || ::access("/usr/bin/python3", X_OK) != 0) {
        GTEST_SKIP() << "needs /usr/bin/openssl and Debian's /usr/bin/python3 with python3-websocket";
    }
    const std::string cert = (root_ / "cert.pem").string();
    const std::string key = (root_ / "key.pem").string();
    const auto made = meshy::test::run_command({"/usr/bin/openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes",
                                                "-keyout", key, "-out", cert, "-days", "1", "-subj", "/CN=127.0.0.1"},
                                               60s);
    ASSERT_TRUE(made.status && made.status->success());
    start_bridge({"--certfile", cert, "--keyfile", key, "--token", "tls-token"});
    const std::string script = R"(
import json, ssl, sys, websocket
ws = websocket.create_connection("wss://127.0.0.1:%s/?token=tls-token" % sys.argv[1],
                                 sslopt={"ca_certs": sys.argv[2], "check_hostname": False}, timeout=10)
ws.send(json.dumps({"op": "call_service", "service": "/rosapi/nodes", "id": "tls"}))
reply = json.loads(ws.recv())
assert reply["result"] is True and "/meshy-bridge" in reply["values"]["nodes"], reply
print("wss ok")
)";
    const auto result =
        meshy::test::run_command({"/usr/bin/python3", "-c", script, std::to_string(port_), cert}, 60s, env_);
    ASSERT_TRUE(result.status);
    std::string out;
    for (const auto& l : result.lines) {
        out += l + "\n";
    }
    EXPECT_TRUE(result.status->success()) << out;
    EXPECT_NE(out.find("wss ok"), std::string::npos) << out;
    // Plain WebSocket on the TLS port gets nowhere, and the bridge carries on.
    EXPECT_THROW(WebSocketClient("127.0.0.1", port_, "/", {}, 5s), std::runtime_error);
}

TEST_F(BridgeSecurityTest, OriginAllowlistAndClientLimit) {
    start_bridge({"--allow-origin", "http://dashboard.example", "--max-clients", "2"});
    const std::string host = "127.0.0.1:" + std::to_string(port_);
    // A foreign page: 403, for the dashboard files and for the WebSocket.
    const std::string evil = WebSocketClient::http_request(
        "127.0.0.1", port_, "GET / HTTP/1.1\r\nHost: " + host + "\r\nOrigin: http://evil.example\r\n\r\n");
    EXPECT_EQ(evil.rfind("HTTP/1.1 403", 0), 0u) << evil;
    EXPECT_THROW(WebSocketClient("127.0.0.1", port_, "/", "Origin: http://evil.example\r\n"), std::runtime_error);
    // The bridge's own page (same origin) and an allowed origin get through.
    auto own = std::make_unique<WebSocketClient>("127.0.0.1", port_, "/", "Origin: http://" + host + "\r\n");
    EXPECT_TRUE(answers_rosapi(*own, "own"));
    auto allowed = std::make_unique<WebSocketClient>("127.0.0.1", port_, "/", "Origin: http://dashboard.example\r\n");
    EXPECT_TRUE(answers_rosapi(*allowed, "allowed"));
    // A third client is over --max-clients 2.
    try {
        WebSocketClient third("127.0.0.1", port_);
        ADD_FAILURE() << "a third client was accepted";
    } catch (const std::runtime_error& e) {
        EXPECT_NE(std::string(e.what()).find("503"), std::string::npos) << e.what();
    }
    // The dashboard is served to a script (no Origin); unknown paths are 404.
    const std::string page =
        WebSocketClient::http_request("127.0.0.1", port_, "GET / HTTP/1.1\r\nHost: " + host + "\r\n\r\n");
    EXPECT_EQ(page.rfind("HTTP/1.1 200", 0), 0u) << page.substr(0, 200);
    EXPECT_NE(page.find("Content-Type: text/html"), std::string::npos);
    const std::string missing =
        WebSocketClient::http_request("127.0.0.1", port_, "GET /nope HTTP/1.1\r\nHost: " + host + "\r\n\r\n");
    EXPECT_EQ(missing.rfind("HTTP/1.1 404", 0), 0u) << missing;
}

}  // namespace
