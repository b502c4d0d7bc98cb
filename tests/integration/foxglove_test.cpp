// Foxglove sees meshy: `meshy bridge` speaking the Foxglove WebSocket protocol to an independent
// client (@foxglove/ws-protocol's FoxgloveClient, tests/foxglove/ws_test.mjs) against real meshy
// nodes, and bags recorded as JSON read by @mcap/core with ajv (tests/foxglove/bag_check.mjs).
//
// Every test has its own bridge on a free loopback port and its own domain. The npm modules are
// installed by `npm ci` in tests/foxglove (scripts/test.sh); without them or node the tests skip, or
// fail when CI is set. Every wait is for a line or an exit, with a deadline.
#include <gtest/gtest.h>
#include <signal.h>
#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <cstdlib>
#include <filesystem>
#include <map>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "bridge/websocket_client.hpp"
#include "process.hpp"

using namespace std::chrono_literals;
using meshy::test::has_line;
using meshy::test::joined;
using meshy::test::Process;
using meshy::test::run_command;
namespace fs = std::filesystem;

namespace {

const std::string cli = MESHY_CLI_PATH;
const std::string test_node = MESHY_TEST_NODE_PATH;
const std::string examples = MESHY_EXAMPLES_DIR;
const fs::path clients = fs::path(MESHY_SOURCE_DIR) / "tests" / "foxglove";

const std::string log_yaml =
    "{timestamp: {sec: 1700000000, nsec: 5}, level: 2, message: hello, name: talker, file: talker.cpp, line: 7}";

std::optional<std::string> missing_clients() {
    const auto node = run_command({"node", "--version"}, 10s);
    if (!node.status || !node.status->success()) {
        return "node is not installed (scripts/deps.sh installs Node.js)";
    }
    for (const char* module : {"@foxglove/ws-protocol", "ws", "ajv", "@mcap/core", "@mcap/support"}) {
        if (!fs::exists(clients / "node_modules" / module / "package.json")) {
            return std::string(module) + " is not installed: run `npm ci` in " + clients.string();
        }
    }
    return std::nullopt;
}

/// Messages a non-TTY recorder reported on one line: one dot each ("..... (+N)" when many).
std::size_t dots(const std::string& line) {
    if (line.empty() || line[0] != '.') {
        return 0;
    }
    std::size_t n = static_cast<std::size_t>(std::count(line.begin(), line.end(), '.'));
    if (const auto plus = line.find("(+"); plus != std::string::npos) {
        n += std::stoul(line.substr(plus + 2));
    }
    return n;
}
std::size_t dots(const std::vector<meshy::test::Line>& lines) {
    std::size_t n = 0;
    for (const auto& l : lines) {
        n += l.stream == meshy::test::Stream::out ? dots(l.text) : 0;
    }
    return n;
}
/// Messages `recorder` has reported so far.
std::size_t recorded(Process& recorder) {
    std::size_t n = 0;
    recorder.wait_until(
        [&](const std::vector<meshy::test::Line>& lines) {
            n = dots(lines);
            return true;
        },
        0s);
    return n;
}

#define REQUIRE_CLIENTS()                             \
    do {                                              \
        if (const auto missing = missing_clients()) { \
            if (std::getenv("CI") != nullptr) {       \
                FAIL() << *missing;                   \
            }                                         \
            GTEST_SKIP() << *missing;                 \
        }                                             \
    } while (false)

class FoxgloveTest : public ::testing::Test {
protected:
    void SetUp() override {
        const std::string name = ::testing::UnitTest::GetInstance()->current_test_info()->name();
        root_ = fs::temp_directory_path() / ("meshy-foxglove-test-" + std::to_string(::getpid()) + "-" + name);
        fs::remove_all(root_);
        fs::create_directories(root_ / "discovery");
        env_ = {{"MESHY_DOMAIN_ID", "foxglove-" + name + "-" + std::to_string(::getpid())},
                {"MESHY_DISCOVERY", "local"},
                {"MESHY_LOCAL_DISCOVERY_DIR", (root_ / "discovery").string()},
                {"MESHY_LISTEN_HOST", "127.0.0.1"}};
    }
    void TearDown() override {
        processes_.clear();
        std::error_code ec;
        fs::remove_all(root_, ec);
    }
    void use_avahi() {
        env_["MESHY_DISCOVERY"] = "avahi";
        env_.erase("MESHY_LOCAL_DISCOVERY_DIR");
        if (const auto& problem = meshy::test::avahi_problem(test_node, env_)) {
            FAIL() << *problem;
        }
    }
    Process& start(std::vector<std::string> argv, const std::string& label) {
        processes_.push_back(std::make_unique<Process>(std::move(argv), env_, label));
        return *processes_.back();
    }
    Process& start_cli(std::vector<std::string> args, const std::string& label) {
        args.insert(args.begin(), {"env", "-C", root_.string(), cli});
        return start(std::move(args), label);
    }
    meshy::test::RunResult run_cli(std::vector<std::string> args, std::chrono::milliseconds timeout = 30s) {
        args.insert(args.begin(), {"env", "-C", root_.string(), cli});
        return run_command(std::move(args), timeout, env_);
    }
    Process& start_node(const std::string& script, std::vector<std::string> args, const std::string& label) {
        args.insert(args.begin(), {"node", (clients / script).string()});
        return start(std::move(args), label);
    }
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
    std::string ws_url() const { return "ws://127.0.0.1:" + std::to_string(port_) + "/"; }
    static void expect_success(Process& p, std::chrono::milliseconds timeout = 60s) {
        const auto status = p.wait_exit(timeout);
        ASSERT_TRUE(status) << "still running\n" << p.dump();
        EXPECT_TRUE(status->success()) << status->describe() << "\n" << p.dump();
    }
    static void interrupt(Process& p) {
        p.send_signal(SIGINT);
        const auto status = p.wait_exit(20s);
        ASSERT_TRUE(status) << p.dump();
        EXPECT_TRUE(status->success()) << status->describe() << "\n" << p.dump();
    }

    fs::path root_;
    std::map<std::string, std::string> env_;
    int port_ = 0;
    std::vector<std::unique_ptr<Process>> processes_;
};

}  // namespace

TEST_F(FoxgloveTest, SubscribesToATypedAndAnInferredTopicWhosePayloadsValidate) {
    REQUIRE_CLIENTS();
    ASSERT_NO_FATAL_FAILURE(use_avahi());
    start_bridge();
    // Topics are channels once a node of the mesh listens to them (publishers join with #20's adverts).
    auto& echo = start_cli({"topic", "echo", "fox_log", "plain"}, "echo");
    ASSERT_TRUE(echo.wait_for_line("Listening to topics", 15s)) << echo.dump();
    auto& log = start_cli({"topic", "send", "fox_log", log_yaml, "--interval", "0.2"}, "send-log");
    auto& plain =
        start_cli({"topic", "send", "plain", "{x: 1.5, n: 3, s: text, ok: true, list: [1, 2]}", "--interval", "0.2"},
                  "send-plain");
    auto& typed = start_node("ws_test.mjs", {ws_url(), "subscribe", "/fox_log", "foxglove.Log", "3"}, "typed");
    auto& inferred = start_node("ws_test.mjs", {ws_url(), "subscribe", "/plain", "inferred", "3"}, "inferred");
    expect_success(typed);
    expect_success(inferred);
    EXPECT_TRUE(has_line(typed.lines(), R"("message":"hello")")) << typed.dump();
    EXPECT_TRUE(has_line(inferred.lines(), R"("x":{"type":"number"})")) << inferred.dump();
    interrupt(log);
    interrupt(plain);
}

TEST_F(FoxgloveTest, ClientPublishReachesMeshyEchoWithBytesAsBin) {
    REQUIRE_CLIENTS();
    start_bridge();
    auto& echo = start_cli({"topic", "echo", "from_foxglove", "--once", "--json"}, "echo");
    ASSERT_TRUE(echo.wait_for_line("Listening to topics: from_foxglove", 15s)) << echo.dump();
    const std::string schema =
        R"({"type":"object","properties":{"data":{"type":"string","contentEncoding":"base64"},"n":{"type":"integer"}}})";
    auto& client = start_node("ws_test.mjs",
                              {ws_url(), "publish", "/from_foxglove", R"({"data":"aGk=","n":3})", schema}, "client");
    const auto line = echo.wait_for_line("\"n\": 3", 30s);
    ASSERT_TRUE(line) << echo.dump() << client.dump();
    // "hi" arrives as msgpack bin, not as the base64 text.
    EXPECT_EQ(line->find("aGk="), std::string::npos) << *line;
    expect_success(echo, 10s);
    client.send_signal(SIGTERM);
    expect_success(client, 10s);
}

TEST_F(FoxgloveTest, CallsTheExampleServiceProvider) {
    REQUIRE_CLIENTS();
    start_bridge();
    auto& provider = start({examples + "/service_provider"}, "provider");
    ASSERT_TRUE(provider.wait_for_line("Started service...", 15s)) << provider.dump();
    auto& client =
        start_node("ws_test.mjs", {ws_url(), "call", "/multiply", R"({"args":[3,4]})", R"({"args":[12]})"}, "client");
    expect_success(client);
    EXPECT_TRUE(provider.wait_for_line("Calculating 3 * 4...", 5s)) << provider.dump();
}

TEST_F(FoxgloveTest, ReadsTheConnectionGraph) {
    REQUIRE_CLIENTS();
    start_bridge();
    auto& echo = start_cli({"topic", "echo", "graph_topic"}, "echo");
    ASSERT_TRUE(echo.wait_for_line("Listening to topics", 15s)) << echo.dump();
    auto& provider = start({examples + "/service_provider"}, "provider");
    ASSERT_TRUE(provider.wait_for_line("Started service...", 15s)) << provider.dump();
    auto& client = start_node("ws_test.mjs", {ws_url(), "graph", "/graph_topic", "/multiply"}, "client");
    expect_success(client);
}

TEST_F(FoxgloveTest, TokenAndBadMessagesCloseOnlyThatConnection) {
    start_bridge({"--token", "s3cret"});
    const std::string offer = "Sec-WebSocket-Protocol: foxglove.websocket.v1\r\n";
    {
        meshy::cli::bridge::WebSocketClient sut("127.0.0.1", static_cast<std::uint16_t>(port_), "/", offer);
        const auto m = sut.receive(10s);
        EXPECT_EQ(m.kind, meshy::cli::bridge::ClientMessage::Kind::close);
        EXPECT_EQ(m.code, 4001);
    }
    meshy::cli::bridge::WebSocketClient good("127.0.0.1", static_cast<std::uint16_t>(port_), "/?token=s3cret", offer);
    const auto info = good.receive(10s);
    ASSERT_EQ(info.kind, meshy::cli::bridge::ClientMessage::Kind::text);
    EXPECT_NE(info.data.find("\"op\":\"serverInfo\""), std::string::npos) << info.data;
    {
        meshy::cli::bridge::WebSocketClient bad("127.0.0.1", static_cast<std::uint16_t>(port_), "/?token=s3cret",
                                                offer);
        bad.send_binary(std::string("\x07", 1));
        bool closed = false;
        for (int i = 0; i < 20 && !closed; ++i) {
            const auto m = bad.receive(10s);
            ASSERT_NE(m.kind, meshy::cli::bridge::ClientMessage::Kind::timeout);
            if (m.kind == meshy::cli::bridge::ClientMessage::Kind::close) {
                EXPECT_EQ(m.code, 1002);
                closed = true;
            }
        }
        EXPECT_TRUE(closed);
    }
    // The good client is still served.
    good.send_text(R"({"op":"subscribeConnectionGraph"})");
    bool graph = false;
    for (int i = 0; i < 20 && !graph; ++i) {
        const auto m = good.receive(10s);
        ASSERT_EQ(m.kind, meshy::cli::bridge::ClientMessage::Kind::text);
        graph = m.data.find("connectionGraphUpdate") != std::string::npos;
    }
    EXPECT_TRUE(graph);
}

TEST_F(FoxgloveTest, BagRecordedAsJsonValidatesAndPlaysBackTheSameBytes) {
    REQUIRE_CLIENTS();
    const auto json = root_ / "json.mcap";
    const auto msgpack = root_ / "msgpack.mcap";
    const auto replayed = root_ / "replayed.mcap";
    const std::vector<std::string> topics{"fox_log", "plain", "weird"};
    auto record = [&](const fs::path& file, const std::string& encoding, const std::string& label) -> Process& {
        std::vector<std::string> args{"bag", "record", "-o", file.string(), "--encoding", encoding};
        args.insert(args.end(), topics.begin(), topics.end());
        auto& p = start_cli(args, label);
        EXPECT_TRUE(p.wait_for_line("Recording to ", 15s)) << p.dump();
        return p;
    };
    auto& as_json = record(json, "json", "record-json");
    auto& as_msgpack = record(msgpack, "msgpack", "record-msgpack");
    // A sender repeats its payload until both recorders have taken it at least once (a new sender
    // may reach one listener before the other).
    const std::vector<std::pair<std::string, std::string>> sends{
        {"fox_log", log_yaml},
        {"plain", "{x: 1.5, n: -3, big: 5000000000, s: héllo, ok: true, none: null, list: [1, 2.5, x]}"},
        {"plain", "{x: 2, n: 300, s: '', ok: false, none: null, list: []}"},
        {"plain", "{x: 0.25, extra: {deep: [true]}}"},
        {"weird", "{1: one, two: 2}"},
        {"weird", "{three: 3}"}};
    for (const auto& [topic, value] : sends) {
        const std::size_t before_json = recorded(as_json);
        const std::size_t before_msgpack = recorded(as_msgpack);
        auto& sender = start_cli({"topic", "send", topic, value, "--interval", "0.1"}, "send-" + topic);
        // Three sends: this sender reached both recorders at least once even if one message of the
        // sender before it was still on its way when `before` was taken.
        ASSERT_TRUE(sender.wait_until(
            [](const auto& lines) {
                return std::count_if(lines.begin(), lines.end(),
                                     [](const auto& l) { return l.text.rfind("Sent ", 0) == 0; }) >= 3;
            },
            20s))
            << sender.dump();
        for (auto [recorder, before] : {std::pair{&as_json, before_json}, std::pair{&as_msgpack, before_msgpack}}) {
            ASSERT_TRUE(recorder->wait_until([&](const auto& lines) { return dots(lines) >= before + 2; }, 20s))
                << recorder->dump() << sender.dump();
        }
        interrupt(sender);
    }
    interrupt(as_json);
    interrupt(as_msgpack);
    EXPECT_TRUE(has_line(as_json.lines(), "'weird' carries a message without a JSON form")) << as_json.dump();

    // Play the JSON bag into a third recorder that keeps the bytes as they come.
    auto& again = record(replayed, "msgpack", "record-replayed");
    const auto played = run_cli({"bag", "play", "-i", json.string(), "--no-log"}, 60s);
    ASSERT_TRUE(played.status && played.status->success()) << joined(played.lines);
    const std::size_t json_messages = recorded(as_json);
    ASSERT_TRUE(again.wait_until([&](const auto& lines) { return dots(lines) >= json_messages; }, 20s))
        << again.dump() << joined(played.lines);
    interrupt(again);

    const auto checked = run_command(
        {"node", (clients / "bag_check.mjs").string(), json.string(), msgpack.string(), replayed.string(), "weird"},
        60s);
    ASSERT_TRUE(checked.status) << joined(checked.lines);
    EXPECT_TRUE(checked.status->success()) << joined(checked.lines);
    EXPECT_TRUE(has_line(checked.lines, "OK: ")) << joined(checked.lines);
    EXPECT_TRUE(has_line(checked.lines, "schema fox_log \"foxglove.Log\"")) << joined(checked.lines);

    // export --json turns the msgpack bag into one like the JSON recording.
    const auto exported =
        run_cli({"bag", "export", msgpack.string(), "--json", "-o", (root_ / "exported.mcap").string()});
    ASSERT_TRUE(exported.status && exported.status->success()) << joined(exported.lines);
    EXPECT_TRUE(has_line(exported.lines, "Wrote ")) << joined(exported.lines);
    const auto checked_export =
        run_command({"node", (clients / "bag_check.mjs").string(), (root_ / "exported.mcap").string(), msgpack.string(),
                     msgpack.string(), "weird"},
                    60s);
    ASSERT_TRUE(checked_export.status) << joined(checked_export.lines);
    EXPECT_TRUE(checked_export.status->success()) << joined(checked_export.lines);
}
