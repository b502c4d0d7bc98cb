// Foxglove sees meshy: `meshy bridge` speaking the Foxglove WebSocket protocol to an independent
// client (@foxglove/ws-protocol's FoxgloveClient, tests/foxglove/ws_test.mjs) against real meshy
// nodes, under its security options (tests/foxglove/security_test.mjs); bags recorded as JSON read by
// @mcap/core with ajv (tests/foxglove/bag_check.mjs); typed topics (foxglove_sender: MESHY_TYPE
// structs advertised with their schema) in `meshy topic echo` and `meshy bag record`.
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
#include <fstream>
#include <map>
#include <memory>
#include <optional>
#include <string>
#include <thread>
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
const std::string sender = MESHY_FOXGLOVE_SENDER_PATH;
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
        const auto line = bridge.wait_for_line("://127.0.0.1:", 20s);  // ws:// or wss://
        EXPECT_TRUE(line) << bridge.dump();
        if (line) {
            port_ = std::stoi(line->substr(line->find("127.0.0.1:") + 10));
        }
        return bridge;
    }
    std::string ws_url() const { return "ws://127.0.0.1:" + std::to_string(port_) + "/"; }
    /// Runs `node tests/foxglove/SCRIPT ARGS...` to its end and expects success and a line with `ok`.
    static meshy::test::RunResult expect_script_ok(const std::string& script,
                                                   std::vector<std::string> args,
                                                   const std::string& ok) {
        args.insert(args.begin(), {"node", (clients / script).string()});
        auto result = run_command(std::move(args), 60s);
        EXPECT_TRUE(result.status && result.status->success()) << joined(result.lines);
        EXPECT_TRUE(has_line(result.lines, ok)) << joined(result.lines);
        return result;
    }
    /// `meshy bag record -o FILE --encoding ENCODING TOPICS...`, once it records.
    Process& start_recorder(const fs::path& file,
                            const std::string& encoding,
                            const std::vector<std::string>& topics,
                            const std::string& label) {
        std::vector<std::string> args{"bag", "record", "-o", file.string(), "--encoding", encoding};
        args.insert(args.end(), topics.begin(), topics.end());
        auto& p = start_cli(args, label);
        EXPECT_TRUE(p.wait_for_line("Recording to ", 15s)) << p.dump();
        return p;
    }
    /// foxglove_sender TOPIC SHAPE INTERVAL_MS SIZE, once it advertised its type.
    Process& start_sender(const std::string& topic,
                          const std::string& shape,
                          int interval_ms = 100,
                          std::size_t size = 1000) {
        auto& p = start({sender, topic, shape, std::to_string(interval_ms), std::to_string(size)}, "send-" + topic);
        EXPECT_TRUE(p.wait_for_line("READY", 15s)) << p.dump();
        return p;
    }
    /// The advertised schema a foxglove_sender printed, written to a file for bag_check.mjs.
    std::string schema_file(Process& sender_process, const std::string& name) {
        const auto line = sender_process.wait_for_line("SCHEMA ", 5s);
        EXPECT_TRUE(line) << sender_process.dump();
        const fs::path file = root_ / (name + ".schema.json");
        std::ofstream(file) << (line ? line->substr(line->find("SCHEMA ") + 7) : std::string());
        return file.string();
    }
    /// Waits until the bridge's node knows `topic` (its REST API lists it).
    bool bridge_knows(const std::string& topic) {
        const auto deadline = std::chrono::steady_clock::now() + 20s;
        while (std::chrono::steady_clock::now() < deadline) {
            const std::string host = "127.0.0.1:" + std::to_string(port_);
            const std::string reply = meshy::cli::bridge::WebSocketClient::http_request(
                "127.0.0.1", static_cast<std::uint16_t>(port_),
                "GET /api/topics HTTP/1.1\r\nHost: " + host + "\r\n\r\n");
            if (reply.find("\"/" + topic + "\"") != std::string::npos) {
                return true;
            }
            std::this_thread::sleep_for(200ms);  // the polling interval; the deadline bounds the wait
        }
        return false;
    }
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
        return start_recorder(file, encoding, topics, label);
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

/// The `n` stdout lines after the first one containing `header`.
std::vector<std::string> lines_after(Process& p, const std::string& header, std::size_t n) {
    std::vector<std::string> out;
    p.wait_until(
        [&](const std::vector<meshy::test::Line>& lines) {
            out.clear();
            bool found = false;
            for (const auto& l : lines) {
                if (l.stream != meshy::test::Stream::out) {
                    continue;
                }
                if (found && out.size() < n) {
                    out.push_back(l.text);
                } else if (!found && l.text.find(header) != std::string::npos) {
                    found = true;
                }
            }
            return out.size() == n;
        },
        20s);
    return out;
}

TEST_F(FoxgloveTest, EchoPrintsTypedMessagesByTheirFieldNames) {
    auto& echo = start_cli({"topic", "echo", "typed_pose", "typed_point", "typed_log", "untyped"}, "echo");
    ASSERT_TRUE(echo.wait_for_line("Listening to topics", 15s)) << echo.dump();
    auto& json = start_cli({"topic", "echo", "typed_point", "--json"}, "echo-json");
    ASSERT_TRUE(json.wait_for_line("Listening to topics", 15s)) << json.dump();
    start_sender("typed_pose", "pose");
    start_sender("typed_point", "point");
    start_sender("typed_log", "log");
    start_cli({"topic", "send", "untyped", "{a: 1}", "--interval", "0.2"}, "send-untyped");

    // A map of named fields (MSGPACK_DEFINE_MAP): its members, nested ones too, bytes summarised.
    const auto pose = lines_after(echo, "[test.Pose]", 4);
    ASSERT_EQ(pose.size(), 4u) << echo.dump();
    EXPECT_EQ(pose[0], R"(  frame: "map")");
    EXPECT_EQ(pose[1], "  position: {x: 1.5, y: -2.25, z: 0.5}");
    EXPECT_EQ(pose[2], R"(  snapshot: "<3 bytes: 010203>")");
    EXPECT_EQ(pose[3].rfind("  seq: ", 0), 0u) << pose[3];
    // Packed by position (MSGPACK_DEFINE): the schema's property names, in order.
    const auto point = lines_after(echo, "[test.Point]", 4);
    ASSERT_EQ(point.size(), 4u) << echo.dump();
    EXPECT_EQ(point[0].rfind("  seq: ", 0), 0u) << point[0];
    EXPECT_EQ(point[1], "  x: 0.5");
    EXPECT_EQ(point[2].rfind(R"(  label: "p)", 0), 0u) << point[2];
    EXPECT_EQ(point[3], "  values: [1.5, 2.5]");
    // A well-known Foxglove type.
    const auto log = lines_after(echo, "[foxglove.Log]", 6);
    ASSERT_EQ(log.size(), 6u) << echo.dump();
    EXPECT_EQ(log[0], "  timestamp: {sec: 1700000000, nsec: 5}");
    EXPECT_EQ(log[1], "  level: 3");
    EXPECT_EQ(log[2].rfind(R"(  message: "hello )", 0), 0u) << log[2];
    EXPECT_EQ(log[5], "  line: 7");
    // Untyped topics print as before: no type, the arguments.
    const auto untyped = echo.wait_for_line("] untyped from ", 20s);
    ASSERT_TRUE(untyped) << echo.dump();
    EXPECT_EQ(untyped->find(" ["), std::string::npos) << *untyped;
    EXPECT_EQ(lines_after(echo, "] untyped from ", 1).at(0).rfind("  args: ", 0), 0u) << echo.dump();
    // --json adds the type and the message by its fields (bytes as base64, as the schema says).
    EXPECT_TRUE(json.wait_for_line(R"("type": "test.Point", "message": {"seq":)", 20s)) << json.dump();
    EXPECT_TRUE(has_line(json.lines(), R"(,"x":0.5,"label":"p)")) << json.dump();
}

TEST_F(FoxgloveTest, AChannelOfAnAdvertisedTypeCarriesItsSchemaAndNamedFields) {
    REQUIRE_CLIENTS();
    start_bridge();
    start_sender("typed_point", "point", 50);  // packed by position (MSGPACK_DEFINE)
    // The bridge dials the publisher for the schema once a client subscribes (the channel is
    // re-advertised with it within its 1 s refresh); messages before that are generic JSON.
    auto& client = start_node("ws_test.mjs", {ws_url(), "subscribe", "/typed_point", "test.Point", "60"}, "client");
    expect_success(client);
    const auto ok = client.wait_for_line("OK 60 message(s)", 1s);
    ASSERT_TRUE(ok) << client.dump();
    EXPECT_NE(ok->find(R"("title":"test.Point")"), std::string::npos) << *ok;
    EXPECT_TRUE(has_line(client.lines(), R"(,"x":0.5,"label":"p)")) << client.dump();
}

TEST_F(FoxgloveTest, BagRecordsAdvertisedTypesWithTheirSchemaAndPlaysBackTheSameBytes) {
    REQUIRE_CLIENTS();
    const auto json = root_ / "typed.mcap";
    const auto msgpack = root_ / "typed-msgpack.mcap";
    const auto replayed = root_ / "typed-replayed.mcap";
    const std::vector<std::string> topics{"typed_pose", "typed_point", "typed_log", "misfit"};
    auto record = [&](const fs::path& file, const std::string& encoding, const std::string& label) -> Process& {
        return start_recorder(file, encoding, topics, label);
    };
    auto& as_json = record(json, "json", "record-json");
    auto& as_msgpack = record(msgpack, "msgpack", "record-msgpack");
    auto& pose = start_sender("typed_pose", "pose", 50);
    auto& point = start_sender("typed_point", "point", 50);
    auto& log = start_sender("typed_log", "log", 50);
    auto& misfit = start_sender("misfit", "misfit", 50);
    // Each sender repeats 4 payloads; 160 messages of 4 topics at 20 Hz hold each of them many times.
    for (auto* recorder : {&as_json, &as_msgpack}) {
        ASSERT_TRUE(recorder->wait_until([](const auto& lines) { return dots(lines) >= 160; }, 30s))
            << recorder->dump();
    }
    for (auto* s : {&pose, &point, &log, &misfit}) {
        interrupt(*s);  // before the play: the replay's recorder must hear only the bag
    }
    interrupt(as_json);
    interrupt(as_msgpack);
    EXPECT_TRUE(
        has_line(as_json.lines(), "'misfit' carries a message that does not fit its advertised type 'test.Pose'"))
        << as_json.dump();

    auto& again = record(replayed, "msgpack", "record-replayed");
    const auto played = run_cli({"bag", "play", "-i", json.string(), "--no-log"}, 60s);
    ASSERT_TRUE(played.status && played.status->success()) << joined(played.lines);
    const std::size_t json_messages = recorded(as_json);
    ASSERT_TRUE(again.wait_until([&](const auto& lines) { return dots(lines) >= json_messages; }, 20s))
        << again.dump() << joined(played.lines);
    interrupt(again);

    const std::string typed = "typed_pose=test.Pose=" + schema_file(pose, "pose") +
                              ",typed_point=test.Point=" + schema_file(point, "point") +
                              ",typed_log=foxglove.Log=" + schema_file(log, "log");
    expect_script_ok("bag_check.mjs", {json.string(), msgpack.string(), replayed.string(), "misfit", typed}, "OK: ");
}

TEST_F(FoxgloveTest, TokenIsRequiredInTheUrl) {
    REQUIRE_CLIENTS();
    start_bridge({"--token", "s3cret"});
    expect_script_ok("security_test.mjs", {"token", ws_url(), "s3cret"}, "OK token");
}

TEST_F(FoxgloveTest, ADisallowedOriginIsRefusedAtTheUpgrade) {
    REQUIRE_CLIENTS();
    start_bridge({"--allow-origin", "https://app.foxglove.dev"});
    expect_script_ok("security_test.mjs", {"origin", ws_url(), "http://evil.example", "https://app.foxglove.dev"},
                     "OK origin");
}

TEST_F(FoxgloveTest, TlsServesWssToAFoxgloveClientThatTrustsTheCertificate) {
    REQUIRE_CLIENTS();
    if (::access("/usr/bin/openssl", X_OK) != 0) {
        GTEST_SKIP() << "needs /usr/bin/openssl";
    }
    const std::string cert = (root_ / "cert.pem").string();
    const std::string key = (root_ / "key.pem").string();
    const auto made =
        run_command({"/usr/bin/openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-keyout", key, "-out", cert,
                     "-days", "1", "-subj", "/CN=127.0.0.1", "-addext", "subjectAltName=IP:127.0.0.1"},
                    60s);
    ASSERT_TRUE(made.status && made.status->success()) << joined(made.lines);
    start_bridge({"--certfile", cert, "--keyfile", key, "--token", "tls-token"});
    start_sender("typed_log", "log");
    auto& echo = start_cli({"topic", "echo", "typed_log"}, "echo");  // so that the bridge learns the topic now
    ASSERT_TRUE(echo.wait_for_line("Listening to topics", 15s)) << echo.dump();
    const std::string url = "wss://127.0.0.1:" + std::to_string(port_) + "/?token=tls-token";
    env_["MESHY_TEST_CA"] = cert;
    auto& client = start_node("ws_test.mjs", {url, "subscribe", "/typed_log", "foxglove.Log", "3"}, "wss-client");
    expect_success(client);
    EXPECT_TRUE(has_line(client.lines(), R"("message":"hello )")) << client.dump();
    // Without the CA the certificate is not trusted; plain ws:// on the TLS port gets nowhere.
    env_.erase("MESHY_TEST_CA");
    const auto untrusted = run_command({"node", (clients / "security_test.mjs").string(), "token", url, "x"}, 60s);
    ASSERT_TRUE(untrusted.status) << joined(untrusted.lines);
    EXPECT_FALSE(untrusted.status->success()) << joined(untrusted.lines);
    EXPECT_TRUE(has_line(untrusted.lines, "self-signed certificate")) << joined(untrusted.lines);
    const auto plain = run_command(
        {"node", (clients / "security_test.mjs").string(), "token", ws_url() + "?token=tls-token", "x"}, 60s);
    ASSERT_TRUE(plain.status) << joined(plain.lines);
    EXPECT_FALSE(plain.status->success()) << joined(plain.lines);
}

TEST_F(FoxgloveTest, AllowlistsHideChannelsAndServicesAndRefuseClientPublish) {
    REQUIRE_CLIENTS();
    start_bridge({"--topics-glob", "/open*", "--publish-glob", "/open_pub*", "--services-glob", "/multiply"});
    // One node listens to all four topics: the bridge learns them together.
    auto& echo = start_cli({"topic", "echo", "--json", "open_topic", "secret_topic", "open_pub", "secret_pub"}, "echo");
    ASSERT_TRUE(echo.wait_for_line("Listening to topics", 15s)) << echo.dump();
    auto& provider = start({test_node, "provide"}, "provider");  // multiply, fail and slow
    ASSERT_TRUE(provider.wait_for_line("READY", 15s)) << provider.dump();
    auto& client = start_node(
        "security_test.mjs",
        {"allowlist", ws_url(), "/open_topic", "/secret_topic", "/secret_pub", "/open_pub", "/multiply", "/fail"},
        "client");
    ASSERT_TRUE(client.wait_for_line("OK allowlist", 40s)) << client.dump();
    ASSERT_TRUE(echo.wait_for_line("allowed-marker", 20s)) << echo.dump();
    EXPECT_EQ(echo.count_lines("denied-marker"), 0u) << echo.dump();
    EXPECT_TRUE(provider.wait_for_line("CALLED multiply", 5s)) << provider.dump();
    client.send_signal(SIGTERM);
    expect_success(client, 10s);
}

TEST_F(FoxgloveTest, RateAndSizeLimitsWarnThrottleAndCloseOnlyThatConnection) {
    REQUIRE_CLIENTS();
    auto& bridge = start_bridge({"--rate-limit-msgs", "50", "--max-message-size", "65536"});
    auto& echo = start_cli({"topic", "echo", "--json", "flood"}, "echo");
    ASSERT_TRUE(echo.wait_for_line("Listening to topics", 15s)) << echo.dump();
    ASSERT_TRUE(bridge_knows("flood")) << bridge.dump();
    expect_script_ok("security_test.mjs", {"limits", ws_url(), "/flood", "500", "100000"}, "OK limits");
    EXPECT_TRUE(bridge.wait_for_line("rate limit exceeded", 5s)) << bridge.dump();
    EXPECT_TRUE(bridge.wait_for_line("closing (1009)", 5s)) << bridge.dump();
    // A burst of one second's worth (50) plus what refills while the burst is read; the flood's
    // messages that passed reached the mesh.
    ASSERT_TRUE(echo.wait_for_line("flood-msg", 10s)) << echo.dump();
    const std::size_t delivered = echo.count_lines("flood-msg");
    std::printf("foxglove flood: %zu of 500 messages reached the mesh (limit 50 msg/s)\n", delivered);
    EXPECT_LE(delivered, 100u) << delivered << " of 500 got through";
}

TEST_F(FoxgloveTest, ALargeFastTopicDoesNotStarveASmallOneForASlowClient) {
    REQUIRE_CLIENTS();
    start_bridge();
    // 1 MB every 20 ms, and a small typed topic at 20 Hz; the echo makes the bridge learn both now.
    auto& echo = start_cli({"topic", "echo", "--count", "1", "big", "small"}, "echo");
    ASSERT_TRUE(echo.wait_for_line("Listening to topics", 15s)) << echo.dump();
    start_sender("big", "blob", 20, 1000000);
    start_sender("small", "pose", 50);
    auto& client = start_node("security_test.mjs", {"slow", ws_url(), "/big", "/small", "20"}, "slow-client");
    expect_success(client, 60s);
    EXPECT_TRUE(has_line(client.lines(), "messages dropped") || has_line(client.lines(), "message(s) dropped"))
        << client.dump();
    std::printf("%s\n", client.lines().empty() ? "" : client.lines().back().c_str());
}
