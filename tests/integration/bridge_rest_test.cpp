// `meshy bridge`'s REST API, MJPEG streams and dashboard views, with independent clients: curl for
// every endpoint and error status (token, CORS preflight, allowlists), a Python client with Pillow for
// the MJPEG stream (tests/bridge/mjpeg_client.py), and Debian's Chromium through playwright-core for
// the plot, image view and teleop pad (tests/bridge/dashboard_views_test.mjs), against real meshy
// nodes (meshy_test_node, `meshy topic send/echo`, examples/camera_sender).
//
// Every test runs its own bridge on a free loopback port and its own domain; nodes bind loopback.
// Nothing sleeps for a fixed time except the slow MJPEG client, whose point is not to read: every
// other wait is for a line, an exit or a response, with a deadline.
#include <gtest/gtest.h>
#include <signal.h>
#include <unistd.h>

#include <chrono>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <map>
#include <memory>
#include <optional>
#include <string>
#include <thread>
#include <vector>

#include "process.hpp"
#include "sanitizer.hpp"

using namespace std::chrono_literals;
using meshy::test::joined;
using meshy::test::Process;
using meshy::test::run_command;
namespace fs = std::filesystem;

namespace {

const std::string cli = MESHY_CLI_PATH;
const std::string test_node = MESHY_TEST_NODE_PATH;
const std::string examples = MESHY_EXAMPLES_DIR;
const fs::path clients = fs::path(MESHY_SOURCE_DIR) / "tests" / "bridge";
const fs::path artifacts = MESHY_ARTIFACT_DIR;
const std::string system_python = "/usr/bin/python3";  // Debian's, with python3-pil
const std::string chromium = "/usr/bin/chromium";

std::optional<std::string> missing_curl() {
    const auto curl = run_command({"curl", "--version"}, 10s);
    if (!curl.status || !curl.status->success()) {
        return "curl is not installed";
    }
    return std::nullopt;
}

std::optional<std::string> missing_pillow() {
    const auto python = run_command({system_python, "-c", "import PIL"}, 10s);
    if (!python.status || !python.status->success()) {
        return system_python + " cannot import PIL (scripts/deps.sh installs python3-pil)";
    }
    return std::nullopt;
}

std::optional<std::string> missing_chromium() {
    if (!fs::exists(chromium)) {
        return chromium + " is missing (scripts/deps.sh installs chromium)";
    }
    const auto node = run_command({"node", "--version"}, 10s);
    if (!node.status || !node.status->success()) {
        return "node is not installed (scripts/deps.sh installs Node.js)";
    }
    if (!fs::exists(clients / "node_modules" / "playwright-core" / "package.json")) {
        return "playwright-core is not installed: run `npm ci` in " + clients.string();
    }
    return std::nullopt;
}

std::optional<std::string> missing_camera() {
    if (!fs::exists(examples + "/camera_sender")) {
        return "examples/camera_sender was not built (apt install libjpeg-dev)";
    }
    return std::nullopt;
}

// A missing client skips locally; in CI (CI set) it fails.
#define REQUIRE_CLIENT(why)                     \
    do {                                        \
        if (const auto missing = (why)) {       \
            if (std::getenv("CI") != nullptr) { \
                FAIL() << *missing;             \
            }                                   \
            GTEST_SKIP() << *missing;           \
        }                                       \
    } while (false)

/// One HTTP exchange as curl saw it.
struct Response {
    int status = 0;
    std::map<std::string, std::string> headers;  ///< lower-case names
    std::string body;
    std::string raw;  ///< everything curl printed, for failure messages

    std::string header(const std::string& name) const {
        const auto it = headers.find(name);
        return it == headers.end() ? std::string() : it->second;
    }
};

std::string lower(std::string s) {
    for (char& c : s) {
        c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
    }
    return s;
}

std::string trim(std::string s) {
    while (!s.empty() && (s.back() == '\r' || s.back() == '\n' || s.back() == ' ')) {
        s.pop_back();
    }
    while (!s.empty() && s.front() == ' ') {
        s.erase(0, 1);
    }
    return s;
}

class BridgeRestTest : public ::testing::Test {
protected:
    void SetUp() override {
        REQUIRE_CLIENT(missing_curl());
        const std::string name = ::testing::UnitTest::GetInstance()->current_test_info()->name();
        root_ = fs::temp_directory_path() / ("meshy-bridge-rest-" + std::to_string(::getpid()) + "-" + name);
        fs::remove_all(root_);
        fs::create_directories(root_ / "discovery");
        env_ = {{"MESHY_DOMAIN_ID", "rest-" + name + "-" + std::to_string(::getpid())},
                {"MESHY_DISCOVERY", "local"},
                {"MESHY_LOCAL_DISCOVERY_DIR", (root_ / "discovery").string()},
                {"MESHY_LISTEN_HOST", "127.0.0.1"}};
    }
    /// Switches this test to the Avahi backend (the private loopback daemon); fails when no node
    /// can use it here (call it under ASSERT_NO_FATAL_FAILURE).
    void use_avahi() {
        env_["MESHY_DISCOVERY"] = "avahi";
        env_.erase("MESHY_LOCAL_DISCOVERY_DIR");
        if (const auto& problem = meshy::test::avahi_problem(test_node, env_)) {
            FAIL() << *problem;
        }
    }
    void TearDown() override {
        processes_.clear();
        std::error_code ec;
        fs::remove_all(root_, ec);
    }

    Process& start(std::vector<std::string> argv, const std::string& label) {
        processes_.push_back(std::make_unique<Process>(std::move(argv), env_, label));
        return *processes_.back();
    }
    Process& start_cli(std::vector<std::string> args, const std::string& label) {
        args.insert(args.begin(), cli);
        return start(std::move(args), label);
    }
    /// `meshy bridge` on loopback (a free port); sets port_ from its "listening on" line.
    Process& start_bridge(std::vector<std::string> extra = {}) {
        std::vector<std::string> args{"bridge", "--address", "127.0.0.1", "--port", "0"};
        args.insert(args.end(), extra.begin(), extra.end());
        auto& bridge = start_cli(std::move(args), "bridge");
        const auto line = bridge.wait_for_line("listening on ws://127.0.0.1:", 20s);
        EXPECT_TRUE(line) << bridge.dump();
        if (line) {
            port_ = std::stoi(line->substr(line->find("127.0.0.1:") + 10));
        }
        return bridge;
    }
    std::string url(const std::string& path) const { return "http://127.0.0.1:" + std::to_string(port_) + path; }

    /// curl -i with `args` before the URL; the status, headers and body it printed.
    Response curl(const std::string& path, std::vector<std::string> args = {}) {
        std::vector<std::string> argv{"curl", "-sS", "-i", "--max-time", "40"};
        argv.insert(argv.end(), args.begin(), args.end());
        argv.push_back(url(path));
        const auto result = run_command(argv, 60s);
        Response r;
        r.raw = joined(result.lines);
        bool in_body = false;
        for (const auto& raw_line : result.lines) {
            const std::string line = trim(raw_line);
            if (in_body) {
                r.body += raw_line + "\n";
            } else if (line.starts_with("HTTP/1.1 ")) {
                r.status = std::stoi(line.substr(9, 3));
                r.headers.clear();  // after a "100 Continue", the real response
            } else if (line.empty()) {
                in_body = r.status >= 200;
            } else if (const auto colon = line.find(':'); colon != std::string::npos) {
                r.headers[lower(line.substr(0, colon))] = trim(line.substr(colon + 1));
            }
        }
        return r;
    }
    Response get(const std::string& path, const std::string& token = "secret") {
        return curl(path, token.empty() ? std::vector<std::string>{}
                                        : std::vector<std::string>{"-H", "Authorization: Bearer " + token});
    }
    Response post(const std::string& path, const std::string& body, const std::string& token = "secret") {
        std::vector<std::string> args{"-X", "POST", "-H", "Content-Type: application/json", "--data-binary", body};
        if (!token.empty()) {
            args.insert(args.end(), {"-H", "Authorization: Bearer " + token});
        }
        return curl(path, args);
    }
    /// GETs `path` until `ok` holds for the response (the mesh's view settles over discovery).
    Response get_until(const std::string& path,
                       const std::function<bool(const Response&)>& ok,
                       std::chrono::milliseconds timeout = 20s) {
        const auto deadline = std::chrono::steady_clock::now() + timeout;
        Response r;
        for (int i = 0; i < 400 && std::chrono::steady_clock::now() < deadline; ++i) {
            r = get(path);
            if (ok(r)) {
                return r;
            }
            std::this_thread::sleep_for(50ms);  // between polls of a condition, bounded by the deadline
        }
        return r;
    }

    static void interrupt(Process& p) {
        p.send_signal(SIGINT);
        const auto status = p.wait_exit(20s);
        ASSERT_TRUE(status) << p.dump();
        EXPECT_TRUE(status->success()) << status->describe() << "\n" << p.dump();
    }
    static void expect_success(Process& p, std::chrono::milliseconds timeout = 60s) {
        const auto status = p.wait_exit(timeout);
        ASSERT_TRUE(status) << "still running\n" << p.dump();
        EXPECT_TRUE(status->success()) << status->describe() << "\n" << p.dump();
    }
    /// The bridge's resident memory, kB (Linux /proc).
    static long rss_kb(pid_t pid) {
        std::ifstream in("/proc/" + std::to_string(pid) + "/status");
        std::string line;
        while (std::getline(in, line)) {
            if (line.starts_with("VmRSS:")) {
                return std::stol(line.substr(6));
            }
        }
        return -1;
    }

    fs::path root_;
    std::map<std::string, std::string> env_;
    int port_ = 0;
    std::vector<std::unique_ptr<Process>> processes_;
};

bool contains(const std::string& text, const std::string& part) {
    return text.find(part) != std::string::npos;
}

// Through Avahi: the lists are the mesh as real discovery shows it.
TEST_F(BridgeRestTest, ListsNodesTopicsAndServices) {
    ASSERT_NO_FATAL_FAILURE(use_avahi());
    start_bridge({"--token", "secret"});
    auto& provider = start({test_node, "provide", "--name", "rest-provider"}, "provider");
    ASSERT_TRUE(provider.wait_for_line("READY", 15s)) << provider.dump();
    auto& listener = start({test_node, "listen", "rest_listened", "--name", "rest-listener"}, "listener");
    ASSERT_TRUE(listener.wait_for_line("READY", 15s)) << listener.dump();

    const auto topics = get_until("/api/topics", [](const Response& r) {
        return r.status == 200 && contains(r.body, R"("name":"/rest_listened")");
    });
    EXPECT_EQ(topics.status, 200) << topics.raw;
    EXPECT_EQ(topics.header("content-type"), "application/json");
    EXPECT_TRUE(
        contains(topics.body, R"({"listeners":["rest-listener"],"name":"/rest_listened","publishers":[],"type":""})"))
        << topics.raw;

    const auto services =
        get_until("/api/services", [](const Response& r) { return contains(r.body, R"("name":"/multiply")"); });
    EXPECT_TRUE(contains(services.body, R"({"name":"/multiply","providers":["rest-provider"],"type":"")"))
        << services.raw;
    EXPECT_FALSE(contains(services.body, "rosapi")) << services.raw;

    const auto nodes = get("/api/nodes");
    EXPECT_EQ(nodes.status, 200) << nodes.raw;
    EXPECT_TRUE(contains(nodes.body, R"("name":"rest-provider")")) << nodes.raw;
    EXPECT_TRUE(contains(nodes.body, R"("listens":["/rest_listened"])")) << nodes.raw;
    EXPECT_TRUE(contains(nodes.body, R"("services":["/blob","/blob_sum","/fail","/multiply","/slow"])")) << nodes.raw;
    EXPECT_TRUE(contains(nodes.body, R"("name":"meshy-bridge")")) << nodes.raw;

    const auto openapi = get("/api/openapi.json", "");
    EXPECT_EQ(openapi.status, 200) << openapi.raw;
    EXPECT_TRUE(contains(openapi.body, R"("openapi": "3.0.3")")) << openapi.raw;
    EXPECT_TRUE(contains(openapi.body, R"("/stream/{name}")")) << openapi.raw;

    EXPECT_EQ(get("/api/nothing_here").status, 404);
    EXPECT_EQ(curl("/api/nodes", {"-X", "DELETE", "-H", "Authorization: Bearer secret"}).status, 405);
    interrupt(listener);
    interrupt(provider);
}

TEST_F(BridgeRestTest, TokenIsNeededAndChecked) {
    start_bridge({"--token", "secret"});
    const auto none = get("/api/nodes", "");
    EXPECT_EQ(none.status, 401) << none.raw;
    EXPECT_TRUE(contains(none.header("www-authenticate"), "Bearer")) << none.raw;
    EXPECT_TRUE(contains(none.body, R"("status":401)")) << none.raw;
    EXPECT_EQ(get("/api/topics", "wrong").status, 403);
    EXPECT_EQ(curl("/api/topics", {"-H", "Authorization: Basic c2VjcmV0"}).status, 403);
    EXPECT_EQ(get("/api/topics").status, 200);
    EXPECT_EQ(get("/api/topics?token=secret", "").status, 200);  // for <img src> and EventSource
    EXPECT_EQ(get("/api/topics?token=nope", "").status, 403);
    EXPECT_EQ(post("/api/topics/x", "1", "").status, 401);
    EXPECT_EQ(post("/api/services/multiply", "[1,2]", "wrong").status, 403);
    EXPECT_EQ(get("/stream/camera", "").status, 401);
    EXPECT_EQ(get("/api/topics/x/latest", "wrong").status, 403);
}

TEST_F(BridgeRestTest, PublishesAndCallsWithHttpStatuses) {
    start_bridge({"--token", "secret", "--service-timeout", "2", "--max-message-size", "65536"});
    auto& provider = start({test_node, "provide", "--name", "rest-provider"}, "provider");
    ASSERT_TRUE(provider.wait_for_line("READY", 15s)) << provider.dump();
    auto& echo = start_cli({"topic", "echo", "rest_in", "--json"}, "echo");
    ASSERT_TRUE(echo.wait_for_line("Listening to topics", 15s)) << echo.dump();
    // The bridge sends once it knows the listener: wait until it lists it.
    get_until("/api/topics", [](const Response& r) { return contains(r.body, R"("name":"/rest_in")"); });

    const auto sent = post("/api/topics/rest_in", R"({"linear": {"x": 0.5}, "angular": {"z": -1}})");
    EXPECT_EQ(sent.status, 200) << sent.raw;
    EXPECT_TRUE(echo.wait_for_line(R"("args": [{"angular": {"z": -1}, "linear": {"x": 0.5}}])", 10s)) << echo.dump();
    EXPECT_EQ(post("/api/topics/%2Frest_in", R"({"args": ["two", 2], "kwargs": {"k": true}})").status, 200);
    EXPECT_TRUE(echo.wait_for_line(R"("args": ["two", 2, {"k": true}])", 10s)) << echo.dump();
    EXPECT_EQ(post("/api/topics/rest_in", "\"plain\"").status, 200);
    EXPECT_TRUE(echo.wait_for_line(R"("args": ["plain"])", 10s)) << echo.dump();

    const auto bad = post("/api/topics/rest_in", "{not json");
    EXPECT_EQ(bad.status, 400) << bad.raw;
    EXPECT_TRUE(contains(bad.body, "bad body")) << bad.raw;
    EXPECT_EQ(post("/api/topics/rest_in", R"({"args": [1], "kwargs": {"args": 2}})").status, 400);
    EXPECT_EQ(post("/api/topics/bad%zzname", "1").status, 400);
    // Over --max-message-size: refused from the head (curl waits for "100 Continue" and gets the 413).
    const std::string big(100u * 1024, 'x');
    const auto too_big = curl("/api/topics/rest_in", {"-X", "POST", "-H", "Authorization: Bearer secret", "-H",
                                                      "Expect: 100-continue", "--data-binary", big});
    EXPECT_EQ(too_big.status, 413) << too_big.raw.substr(0, 300);
    EXPECT_EQ(curl("/api/topics/rest_in", {"-X", "POST", "-H", "Authorization: Bearer secret", "-H",
                                           "Transfer-Encoding: chunked", "--data-binary", "1"})
                  .status,
              411);

    const auto product = post("/api/services/multiply", R"({"args": [6, 7]})");
    EXPECT_EQ(product.status, 200) << product.raw;
    EXPECT_EQ(trim(product.body), R"({"args":[42]})") << product.raw;
    EXPECT_EQ(trim(post("/api/services/%2Fmultiply", R"({"args": [3, 4]})").body), R"({"args":[12]})");
    // A plain JSON value is the one argument: an array is not spread into two.
    EXPECT_EQ(post("/api/services/multiply", "[3, 4]").status, 502);

    const auto missing = post("/api/services/nobody_provides_this", "[]");
    EXPECT_EQ(missing.status, 404) << missing.raw;
    const auto failed = post("/api/services/fail", "");
    EXPECT_EQ(failed.status, 502) << failed.raw;
    EXPECT_TRUE(contains(failed.body, "boom from provider")) << failed.raw;
    const auto slow = post("/api/services/slow?timeout=0.3", "5000");
    EXPECT_EQ(slow.status, 504) << slow.raw;
    EXPECT_EQ(post("/api/services/slow?timeout=10", "10").status, 200);
    EXPECT_EQ(post("/api/services/slow?timeout=abc", "10").status, 400);
    EXPECT_EQ(post("/api/services/multiply", "[1,").status, 400);
    EXPECT_EQ(get("/api/services/multiply").status, 405);
    interrupt(echo);
    interrupt(provider);
}

TEST_F(BridgeRestTest, LatestSubscribesOnFirstRequest) {
    start_bridge({"--token", "secret"});
    const auto first = get("/api/topics/rest_latest/latest");
    EXPECT_EQ(first.status, 404) << first.raw;
    EXPECT_TRUE(contains(first.body, "listens to it from now on")) << first.raw;
    // The first request made the bridge listen: a sender that waits for a listener finds it.
    auto& sender = start_cli({"topic", "send", "rest_latest", "3.5", "seven", "--interval", "0.1"}, "sender");
    const auto latest = get("/api/topics/rest_latest/latest?wait=20");
    EXPECT_EQ(latest.status, 200) << latest.raw << sender.dump();
    EXPECT_TRUE(contains(latest.body, R"("msg":{"args":[3.5,"seven"]})")) << latest.raw;
    EXPECT_TRUE(contains(latest.body, R"("topic":"/rest_latest")")) << latest.raw;
    EXPECT_TRUE(contains(latest.body, R"("sent_at_ns":)")) << latest.raw;
    EXPECT_EQ(get("/api/topics/rest_latest/latest").status, 200);
    EXPECT_EQ(get("/api/topics/rest_latest/latest?wait=x").status, 400);
    // The bridge lists itself as a listener of the topic it caches.
    const auto topics = get("/api/topics");
    EXPECT_TRUE(contains(topics.body, R"("listeners":["meshy-bridge"],"name":"/rest_latest")")) << topics.raw;
    interrupt(sender);
}

TEST_F(BridgeRestTest, AllowlistsApplyToEveryEndpoint) {
    start_bridge(
        {"--token", "secret", "--topics-glob", "/ok*", "--publish-glob", "/ok_pub", "--services-glob", "/multiply"});
    auto& provider = start({test_node, "provide"}, "provider");
    ASSERT_TRUE(provider.wait_for_line("READY", 15s)) << provider.dump();
    auto& echo_ok = start_cli({"topic", "echo", "ok_topic"}, "echo-ok");
    auto& echo_hidden = start_cli({"topic", "echo", "hidden_topic"}, "echo-hidden");
    ASSERT_TRUE(echo_ok.wait_for_line("Listening to topics", 15s)) << echo_ok.dump();
    ASSERT_TRUE(echo_hidden.wait_for_line("Listening to topics", 15s)) << echo_hidden.dump();
    const auto topics = get_until("/api/topics", [](const Response& r) { return contains(r.body, "/ok_topic"); });
    EXPECT_TRUE(contains(topics.body, "/ok_topic")) << topics.raw;
    EXPECT_FALSE(contains(topics.body, "hidden_topic")) << topics.raw;
    const auto services = get_until("/api/services", [](const Response& r) { return contains(r.body, "/multiply"); });
    EXPECT_TRUE(contains(services.body, "/multiply")) << services.raw;
    EXPECT_FALSE(contains(services.body, "/fail")) << services.raw;
    EXPECT_FALSE(contains(get("/api/nodes").body, "hidden_topic"));

    EXPECT_EQ(get("/api/topics/hidden_topic/latest").status, 403);
    EXPECT_EQ(get("/api/topics/ok_topic/latest").status, 404);  // allowed, nothing yet
    EXPECT_EQ(get("/stream/hidden_topic").status, 403);
    const auto refused = post("/api/topics/ok_topic", "1");  // readable, not publishable
    EXPECT_EQ(refused.status, 403) << refused.raw;
    EXPECT_TRUE(contains(refused.body, "--publish-glob")) << refused.raw;
    EXPECT_EQ(post("/api/topics/ok_pub", "1").status, 200);
    EXPECT_EQ(post("/api/services/fail", "[]").status, 403);
    EXPECT_EQ(post("/api/services/multiply", R"({"args": [2, 3]})").status, 200);
    interrupt(echo_ok);
    interrupt(echo_hidden);
    interrupt(provider);
}

TEST_F(BridgeRestTest, CorsAllowsOnlyListedOrigins) {
    start_bridge({"--token", "secret", "--allow-origin", "http://good.example"});
    const std::vector<std::string> preflight_good{"-X", "OPTIONS",
                                                  "-H", "Origin: http://good.example",
                                                  "-H", "Access-Control-Request-Method: POST",
                                                  "-H", "Access-Control-Request-Headers: authorization, content-type"};
    const auto pre = curl("/api/services/multiply", preflight_good);
    EXPECT_EQ(pre.status, 204) << pre.raw;
    EXPECT_EQ(pre.header("access-control-allow-origin"), "http://good.example") << pre.raw;
    EXPECT_TRUE(contains(pre.header("access-control-allow-methods"), "POST")) << pre.raw;
    EXPECT_TRUE(contains(lower(pre.header("access-control-allow-headers")), "authorization")) << pre.raw;
    EXPECT_EQ(pre.header("vary"), "Origin") << pre.raw;

    const auto evil = curl("/api/services/multiply", {"-X", "OPTIONS", "-H", "Origin: http://evil.example", "-H",
                                                      "Access-Control-Request-Method: POST"});
    EXPECT_EQ(evil.status, 403) << evil.raw;
    EXPECT_EQ(evil.header("access-control-allow-origin"), "") << evil.raw;

    const auto simple = curl("/api/nodes", {"-H", "Origin: http://good.example", "-H", "Authorization: Bearer secret"});
    EXPECT_EQ(simple.status, 200) << simple.raw;
    EXPECT_EQ(simple.header("access-control-allow-origin"), "http://good.example") << simple.raw;
    // Errors carry the header too, so a page can read them.
    const auto unauthorized = curl("/api/nodes", {"-H", "Origin: http://good.example"});
    EXPECT_EQ(unauthorized.status, 401) << unauthorized.raw;
    EXPECT_EQ(unauthorized.header("access-control-allow-origin"), "http://good.example") << unauthorized.raw;
    // Same origin (the dashboard) needs no CORS header and gets none.
    const auto same = curl("/api/nodes", {"-H", "Origin: http://127.0.0.1:" + std::to_string(port_), "-H",
                                          "Authorization: Bearer secret"});
    EXPECT_EQ(same.status, 200) << same.raw;
    EXPECT_EQ(same.header("access-control-allow-origin"), "") << same.raw;
}

TEST_F(BridgeRestTest, NoOriginIsAllowedByDefault) {
    start_bridge();
    const auto pre = curl("/api/topics/x", {"-X", "OPTIONS", "-H", "Origin: http://good.example", "-H",
                                            "Access-Control-Request-Method: POST"});
    EXPECT_EQ(pre.status, 403) << pre.raw;
    EXPECT_EQ(curl("/api/nodes", {"-H", "Origin: http://good.example"}).status, 403);
    EXPECT_EQ(curl("/api/nodes").status, 200);  // no token set: open on loopback
}

TEST_F(BridgeRestTest, MjpegStreamCarriesDecodableFramesOfEveryShape) {
    REQUIRE_CLIENT(missing_camera());
    REQUIRE_CLIENT(missing_pillow());
    start_bridge({"--token", "secret"});
    for (const std::string shape : {"bin", "image", "raw"}) {
        SCOPED_TRACE(shape);
        const std::string topic = "camera_" + shape;
        auto& camera = start({examples + "/camera_sender", "--topic", topic, "--fps", "20", "--shape", shape, "--width",
                              "160", "--height", "120"},
                             "camera-" + shape);
        ASSERT_TRUE(camera.wait_for_line("Sending", 15s)) << camera.dump();
        auto& client = start({system_python, (clients / "mjpeg_client.py").string(), "read", "127.0.0.1",
                              std::to_string(port_), "/stream/" + topic + "?max_fps=100&token=secret", "10"},
                             "mjpeg-" + shape);
        expect_success(client);
        EXPECT_EQ(client.count_lines(" 160x120 "), 10u) << client.dump();
        interrupt(camera);
    }
    const auto head = curl("/stream/camera_bin", {"-I", "-H", "Authorization: Bearer secret"});
    EXPECT_EQ(head.status, 200) << head.raw;
    EXPECT_EQ(head.header("content-type"), "multipart/x-mixed-replace; boundary=meshyframe") << head.raw;
    const auto bad_fps = get("/stream/camera_bin?max_fps=fast");
    EXPECT_EQ(bad_fps.status, 400) << bad_fps.raw;
}

TEST_F(BridgeRestTest, SlowMjpegClientSkipsFramesAndGrowsNoQueue) {
    REQUIRE_CLIENT(missing_camera());
    REQUIRE_CLIENT(missing_pillow());
    env_["ASAN_OPTIONS"] = meshy::test::asan_options_without_quarantine();
    auto& bridge = start_bridge();
    // Large frames (about 280 kB with --noise) at up to 30 fps: a queue per client would grow by
    // megabytes a second.
    auto& camera = start({examples + "/camera_sender", "--topic", "big_camera", "--fps", "30", "--width", "1280",
                          "--height", "720", "--noise"},
                         "camera");
    ASSERT_TRUE(camera.wait_for_line("Sending", 15s)) << camera.dump();
    // A fast client first, to know frames flow (and the bridge listens).
    auto& warm = start({system_python, (clients / "mjpeg_client.py").string(), "read", "127.0.0.1",
                        std::to_string(port_), "/stream/big_camera", "5"},
                       "warm");
    expect_success(warm);
    const long before = rss_kb(bridge.pid());
    auto& slow = start({system_python, (clients / "mjpeg_client.py").string(), "stall", "127.0.0.1",
                        std::to_string(port_), "/stream/big_camera?max_fps=60", "6"},
                       "slow");
    ASSERT_TRUE(slow.wait_for_line("stalled", 20s)) << slow.dump();
    // Meanwhile another client is served at its own pace.
    auto& fast = start({system_python, (clients / "mjpeg_client.py").string(), "read", "127.0.0.1",
                        std::to_string(port_), "/stream/big_camera?max_fps=60", "20"},
                       "fast");
    expect_success(fast);
    ASSERT_TRUE(slow.wait_for_line("resumed", 30s)) << slow.dump();
    const long during = rss_kb(bridge.pid());
    expect_success(slow);
    EXPECT_TRUE(slow.wait_for_line("frame 3 after the stall", 0s)) << slow.dump();
    // 6 s of such frames queued would be 15 MB or more (even at 10 fps); the bridge keeps the newest
    // frame of the topic and the one each client is writing.
    RecordProperty("rss_before_kb", std::to_string(before));
    RecordProperty("rss_during_kb", std::to_string(during));
    EXPECT_LT(during - before, 8 * 1024) << "before " << before << " kB, after the stall " << during << " kB";
    interrupt(camera);
}

TEST_F(BridgeRestTest, DashboardPlotsShowsImagesAndDrivesTeleop) {
    REQUIRE_CLIENT(missing_camera());
    REQUIRE_CLIENT(missing_chromium());
    fs::create_directories(artifacts);
    start_bridge({"--token", "views-secret"});
    auto& numbers = start_cli({"topic", "send", "plot_topic", "1.5", "--interval", "0.1"}, "numbers");
    auto& camera =
        start({examples + "/camera_sender", "--topic", "view_camera", "--fps", "10", "--shape", "image"}, "camera");
    auto& echo = start_cli({"topic", "echo", "cmd_vel", "--json"}, "echo");
    ASSERT_TRUE(echo.wait_for_line("Listening to topics", 15s)) << echo.dump();
    auto& page = start({"node", (clients / "dashboard_views_test.mjs").string(),
                        "http://127.0.0.1:" + std::to_string(port_) + "/?token=views-secret", "/plot_topic", "args.0",
                        "/view_camera", "/cmd_vel", artifacts.string()},
                       "views");
    ASSERT_TRUE(page.wait_for_line("released", 90s)) << page.dump() << echo.dump();
    // While held: 10 Hz of forward commands; on release: one zero, the last message.
    ASSERT_TRUE(echo.wait_for_line(R"("angular": {"z": 0}, "linear": {"x": 0})", 15s)) << echo.dump();
    expect_success(page, 60s);
    std::size_t moving = 0;
    std::string last;
    for (const auto& line : echo.lines()) {
        if (contains(line, R"("linear": {"x": )")) {
            last = line;
            if (!contains(line, R"("linear": {"x": 0})")) {
                ++moving;
            }
        }
    }
    EXPECT_GE(moving, 5u) << echo.dump();
    EXPECT_TRUE(contains(last, R"("angular": {"z": 0}, "linear": {"x": 0})")) << echo.dump();
    EXPECT_FALSE(page.wait_for_line("foreign request", 0s)) << page.dump();
    for (const char* shot : {"dashboard-views.png", "dashboard-graph.png"}) {
        EXPECT_TRUE(fs::exists(artifacts / shot) && fs::file_size(artifacts / shot) > 0) << shot;
    }
    interrupt(numbers);
    interrupt(camera);
    interrupt(echo);
}

}  // namespace

// A keyed domain (docs/security.md): `meshy key generate` makes the key file private, and the
// bridge given it with --domain-key-file reaches a keyed `topic echo`.
TEST_F(BridgeRestTest, JoinsAKeyedDomain) {
    const auto key = (root_ / "lab.key").string();
    const auto made = run_command({"/bin/sh", "-c", "umask 022 && \"$0\" key generate > \"$1\"", cli, key}, 20s);
    ASSERT_TRUE(made.status && made.status->success()) << joined(made.lines);
    EXPECT_EQ(fs::status(key).permissions() & (fs::perms::group_all | fs::perms::others_all), fs::perms::none);
    auto& echo = start_cli({"--domain-key-file", key, "topic", "echo", "keyed_in", "--json"}, "echo");
    ASSERT_TRUE(echo.wait_for_line("Listening to topics", 15s)) << echo.dump();
    auto& bridge = start_cli(
        {"--domain-key-file", key, "bridge", "--address", "127.0.0.1", "--port", "0", "--token", "secret"}, "bridge");
    const auto line = bridge.wait_for_line("listening on ws://127.0.0.1:", 20s);
    ASSERT_TRUE(line) << bridge.dump();
    port_ = std::stoi(line->substr(line->find("127.0.0.1:") + 10));
    get_until("/api/topics", [](const Response& r) { return contains(r.body, R"("name":"/keyed_in")"); });
    EXPECT_EQ(post("/api/topics/keyed_in", R"({"args": ["through the key"]})").status, 200);
    EXPECT_TRUE(echo.wait_for_line(R"("args": ["through the key"])", 10s)) << echo.dump();
}
