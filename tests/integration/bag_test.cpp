// `meshy bag` with real processes, mirroring rosy's bag tests: record (nothing, two sends, a killed
// recorder), info, play (into echo, at a rate, looping, chosen topics), reindex, errors; and the
// recordings read back by an independent MCAP reader (@mcap/core and @mcap/support under node, pinned
// by tests/bag/package-lock.json and installed by the test set-up with `npm ci`).
//
// Every process runs in a fresh working directory, discovers through the real avahi-daemon, listens on
// loopback, in a domain of its own. Nothing sleeps for a fixed time: every wait is for a condition.
#include <gtest/gtest.h>
#include <signal.h>
#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <cstdint>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <optional>
#include <string>
#include <thread>
#include <vector>

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
const std::string source_dir = MESHY_SOURCE_DIR;

/// The value after "key: " on the line that starts with it.
std::optional<std::string> field(const std::vector<std::string>& lines, const std::string& key) {
    for (const auto& l : lines) {
        if (l.rfind(key + ": ", 0) == 0) {
            return l.substr(key.size() + 2);
        }
    }
    return std::nullopt;
}

/// Messages a non-TTY recorder has reported: one dot each, a line of dots per tick ("..... (+N)" when many).
std::size_t dots(const std::vector<meshy::test::Line>& lines) {
    std::size_t n = 0;
    for (const auto& l : lines) {
        if (l.stream != meshy::test::Stream::out || l.text.empty() || l.text[0] != '.') {
            continue;
        }
        n += static_cast<std::size_t>(std::count(l.text.begin(), l.text.end(), '.'));
        if (const auto plus = l.text.find("(+"); plus != std::string::npos) {
            n += std::stoul(l.text.substr(plus + 2));
        }
    }
    return n;
}

/// `time_ns` of a `meshy topic echo --json` line.
std::uint64_t echo_time(const std::string& line) {
    const auto at = line.find("\"time_ns\": ");
    return at == std::string::npos ? 0 : std::stoull(line.substr(at + 11));
}

/// The msgpack bytes meshy_test_node sends, [seq, text] (seq < 128, text < 32 bytes), as hex.
std::string test_node_payload_hex(int seq, const std::string& text) {
    char buf[8];
    std::string hex = "92";
    std::snprintf(buf, sizeof buf, "%02x", seq);
    hex += buf;
    std::snprintf(buf, sizeof buf, "%02x", 0xa0 | static_cast<int>(text.size()));
    hex += buf;
    for (unsigned char c : text) {
        std::snprintf(buf, sizeof buf, "%02x", c);
        hex += buf;
    }
    return hex;
}

class BagTest : public ::testing::Test {
protected:
    void SetUp() override {
        const std::string name = ::testing::UnitTest::GetInstance()->current_test_info()->name();
        root_ = fs::temp_directory_path() / ("meshy-bag-test-" + std::to_string(::getpid()) + "-" + name);
        fs::remove_all(root_);
        work_ = root_ / "work";
        fs::create_directories(work_);
        // Discovery through the real avahi-daemon (the test harness's loopback one), like the CLI tests.
        env_ = {{"MESHY_DOMAIN_ID", "bag-" + name + "-" + std::to_string(::getpid())},
                {"MESHY_DISCOVERY", "avahi"},
                {"MESHY_LISTEN_HOST", "127.0.0.1"}};
        if (const auto& problem = meshy::test::avahi_problem(test_node, env_)) {
            FAIL() << *problem;
        }
    }
    void TearDown() override {
        std::error_code ec;
        fs::remove_all(root_, ec);
    }

    /// `meshy ARGS...` running in the working directory.
    std::unique_ptr<Process> start_cli(std::vector<std::string> args, const std::string& label) {
        args.insert(args.begin(), {"env", "-C", work_.string(), cli});
        return std::make_unique<Process>(std::move(args), env_, label);
    }
    /// `meshy ARGS...` in the working directory, to completion.
    meshy::test::RunResult run(std::vector<std::string> args, std::chrono::milliseconds timeout = 30s) {
        args.insert(args.begin(), {"env", "-C", work_.string(), cli});
        return run_command(std::move(args), timeout, env_);
    }
    /// A recorder that has set up its listeners.
    std::unique_ptr<Process> start_recorder(std::vector<std::string> args) {
        args.insert(args.begin(), {"bag", "record"});
        auto p = start_cli(std::move(args), "recorder");
        EXPECT_TRUE(p->wait_for_line("Recording to ", 15s)) << p->dump();
        return p;
    }
    static void wait_dots(Process& recorder, std::size_t n) {
        ASSERT_TRUE(recorder.wait_until([&](const auto& lines) { return dots(lines) >= n; }, 20s))
            << "expected " << n << " messages recorded\n"
            << recorder.dump();
    }
    /// Ctrl-C, and a clean exit.
    static void interrupt(Process& p) {
        p.send_signal(SIGINT);
        const auto status = p.wait_exit(20s);
        ASSERT_TRUE(status) << p.dump();
        EXPECT_TRUE(status->success()) << status->describe() << "\n" << p.dump();
    }
    void send(const std::string& topic, const std::string& value) {
        const auto sent = run({"topic", "send", topic, value});
        ASSERT_TRUE(sent.status && sent.status->success()) << joined(sent.lines);
    }
    std::vector<std::string> bags() const {
        std::vector<std::string> out;
        for (const auto& e : fs::directory_iterator(work_)) {
            if (e.path().extension() == ".mcap") {
                out.push_back(e.path().filename().string());
            }
        }
        return out;
    }
    /// Records `values` sent one after another on `topic` into `file`.
    void record_sends(const std::string& file, const std::string& topic, const std::vector<std::string>& values) {
        auto recorder = start_recorder({topic, "-o", file});
        for (std::size_t i = 0; i < values.size(); ++i) {
            send(topic, values[i]);
            wait_dots(*recorder, i + 1);  // in order, so log times follow the sends
        }
        interrupt(*recorder);
    }
    /// `meshy bag info` lines, asserting success.
    std::vector<std::string> info(const std::string& file) {
        const auto r = file.empty() ? run({"bag", "info"}) : run({"bag", "info", "-i", file});
        EXPECT_TRUE(r.status && r.status->success()) << joined(r.lines);
        return r.lines;
    }

    fs::path root_;
    fs::path work_;
    std::map<std::string, std::string> env_;
};

}  // namespace

TEST_F(BagTest, RecordNothingThenCtrlCLeavesNoFile) {
    auto recorder = start_recorder({"chatter"});
    ASSERT_TRUE(recorder->wait_for_line("Listening to topics: chatter", 5s)) << recorder->dump();
    interrupt(*recorder);
    EXPECT_EQ(recorder->count_lines("No messages recorded."), 1u) << recorder->dump();
    EXPECT_TRUE(bags().empty()) << "left " << joined(bags());
}

TEST_F(BagTest, RecordTwoSendsThenInfo) {
    auto recorder = start_recorder({"chatter"});
    send("chatter", "42");
    send("chatter", "hello");
    wait_dots(*recorder, 2);
    interrupt(*recorder);
    ASSERT_TRUE(recorder->wait_for_line("Recorded 2 messages", 1s)) << recorder->dump();
    const auto files = bags();
    ASSERT_EQ(files.size(), 1u);
    EXPECT_EQ(files[0].rfind("record_", 0), 0u) << files[0];  // record_YYYY-MM-DD-HH-MM-SS.mcap

    const auto lines = info("");  // the newest bag of the working directory
    EXPECT_EQ(field(lines, "path"), files[0]) << joined(lines);
    EXPECT_EQ(field(lines, "messages"), "2") << joined(lines);
    EXPECT_EQ(field(lines, "compression"), "zstd") << joined(lines);
    EXPECT_EQ(field(lines, "status"), "complete (read from its summary)") << joined(lines);
    EXPECT_TRUE(has_line(lines, "  chatter: 2 messages (100%)")) << joined(lines);
    EXPECT_TRUE(has_line(lines, ", json")) << joined(lines);  // msgpack recorded as JSON, by default
    for (const char* key : {"duration", "start", "end", "size"}) {
        EXPECT_TRUE(field(lines, key)) << key << "\n" << joined(lines);
    }
}

TEST_F(BagTest, PlayIntoEcho) {
    record_sends("two.mcap", "chatter", {"42", "hello"});
    auto echo = start_cli({"topic", "echo", "chatter", "-n", "2", "--json"}, "echo");
    ASSERT_TRUE(echo->wait_for_line("Listening to topics: chatter", 10s)) << echo->dump();
    const auto played = run({"bag", "play", "-i", "two.mcap"});
    ASSERT_TRUE(played.status && played.status->success()) << joined(played.lines);
    EXPECT_TRUE(has_line(played.lines, "chatter: (42)")) << joined(played.lines);
    EXPECT_TRUE(has_line(played.lines, "chatter: (\"hello\")")) << joined(played.lines);
    EXPECT_TRUE(has_line(played.lines, "Played 2 messages")) << joined(played.lines);
    const auto status = echo->wait_exit(10s);
    ASSERT_TRUE(status && status->success()) << echo->dump();
    EXPECT_EQ(echo->count_lines("\"args\": [42]"), 1u) << echo->dump();
    EXPECT_EQ(echo->count_lines("\"args\": [\"hello\"]"), 1u) << echo->dump();
    // The recorded codec went out again: echo decoded msgpack.
    EXPECT_EQ(echo->count_lines("\"codec\": \"msgpack\""), 2u) << echo->dump();

    // --no-log: no line per message.
    auto quiet_echo = start_cli({"topic", "echo", "chatter", "-n", "2"}, "echo2");
    ASSERT_TRUE(quiet_echo->wait_for_line("Listening to topics", 10s));
    const auto quiet = run({"bag", "play", "-i", "two.mcap", "--no-log"});
    ASSERT_TRUE(quiet.status && quiet.status->success()) << joined(quiet.lines);
    EXPECT_FALSE(has_line(quiet.lines, "chatter: (42)")) << joined(quiet.lines);
    EXPECT_TRUE(quiet_echo->wait_exit(10s)) << quiet_echo->dump();
}

TEST_F(BagTest, PlayAtRateTwoTakesHalfTheRecordedTime) {
    // Three messages 0.6 s apart.
    auto recorder = start_recorder({"ticks", "-o", "ticks.mcap"});
    auto sender = start_cli({"topic", "send", "ticks", "7", "-i", "0.6"}, "sender");
    wait_dots(*recorder, 3);
    interrupt(*recorder);
    interrupt(*sender);
    const auto lines = info("ticks.mcap");
    const auto duration_text = field(lines, "duration");
    ASSERT_TRUE(duration_text) << joined(lines);
    const double recorded = std::stod(*duration_text);
    const auto count = std::stoul(field(lines, "messages").value_or("0"));
    ASSERT_GE(count, 3u) << joined(lines);
    ASSERT_GT(recorded, 0.9) << joined(lines);

    auto echo = start_cli({"topic", "echo", "ticks", "-n", std::to_string(count), "--json"}, "echo");
    ASSERT_TRUE(echo->wait_for_line("Listening to topics", 10s)) << echo->dump();
    const auto played = run({"bag", "play", "-i", "ticks.mcap", "--rate", "2", "--no-log"});
    ASSERT_TRUE(played.status && played.status->success()) << joined(played.lines);
    ASSERT_TRUE(echo->wait_exit(10s)) << echo->dump();
    std::vector<std::uint64_t> times;
    for (const auto& l : echo->lines()) {
        if (const auto t = echo_time(l)) {
            times.push_back(t);
        }
    }
    ASSERT_EQ(times.size(), count) << echo->dump();
    // Sent at play time: the spread of the send times is the recorded spread halved.
    const double span = static_cast<double>(times.back() - times.front()) / 1e9;
    EXPECT_NEAR(span, recorded / 2, recorded * 0.15) << "recorded " << recorded << " s\n" << echo->dump();
}

TEST_F(BagTest, PlayOnlyTheChosenTopics) {
    auto recorder = start_recorder({"alpha", "beta", "-o", "ab.mcap"});
    send("alpha", "1");
    wait_dots(*recorder, 1);
    send("beta", "2");
    wait_dots(*recorder, 2);
    send("alpha", "3");
    wait_dots(*recorder, 3);
    interrupt(*recorder);
    const auto lines = info("ab.mcap");
    EXPECT_TRUE(has_line(lines, "  alpha: 2 messages (66.7%)")) << joined(lines);
    EXPECT_TRUE(has_line(lines, "  beta: 1 message (33.3%)")) << joined(lines);

    auto echo = start_cli({"topic", "echo", "alpha", "beta", "-n", "2", "--json"}, "echo");
    ASSERT_TRUE(echo->wait_for_line("Listening to topics", 10s)) << echo->dump();
    const auto played = run({"bag", "play", "-i", "ab.mcap", "--topics", "alpha"});
    ASSERT_TRUE(played.status && played.status->success()) << joined(played.lines);
    EXPECT_TRUE(has_line(played.lines, "Played 2 messages")) << joined(played.lines);
    const auto status = echo->wait_exit(10s);
    ASSERT_TRUE(status && status->success()) << echo->dump();
    EXPECT_EQ(echo->count_lines("\"topic\": \"alpha\""), 2u) << echo->dump();
    // beta was recorded between the two alpha messages: from one sender it would have come first.
    EXPECT_EQ(echo->count_lines("\"topic\": \"beta\""), 0u) << echo->dump();

    // A topic the bag does not have is an error.
    const auto none = run({"bag", "play", "-i", "ab.mcap", "--topics", "gamma"});
    ASSERT_TRUE(none.status);
    EXPECT_EQ(none.status->code, 1) << joined(none.lines);
}

TEST_F(BagTest, PlayLoopsUntilCtrlC) {
    record_sends("two.mcap", "chatter", {"1", "2"});
    auto echo = start_cli({"topic", "echo", "chatter", "-n", "5", "--json"}, "echo");
    ASSERT_TRUE(echo->wait_for_line("Listening to topics", 10s)) << echo->dump();
    auto player = start_cli({"bag", "play", "-i", "two.mcap", "--loop", "--no-log"}, "player");
    const auto status = echo->wait_exit(20s);
    ASSERT_TRUE(status && status->success()) << echo->dump() << player->dump();
    EXPECT_EQ(echo->count_lines("\"args\": [1]"), 3u) << echo->dump();
    EXPECT_EQ(echo->count_lines("\"args\": [2]"), 2u) << echo->dump();
    EXPECT_TRUE(player->running()) << player->dump();
    interrupt(*player);  // Ctrl-C ends play quietly with 0
}

TEST_F(BagTest, KilledRecordingIsReadableAndReindexes) {
    auto recorder = start_recorder({"chatter", "-o", "crash.mcap"});
    auto sender = start_cli({"topic", "send", "chatter", "42", "-i", "0.02"}, "sender");
    wait_dots(*recorder, 20);
    // Wait until a chunk has gone to the file (at most a second after its first message).
    const auto deadline = std::chrono::steady_clock::now() + 15s;
    const auto header_only = fs::file_size(work_ / "crash.mcap");
    while (fs::file_size(work_ / "crash.mcap") <= header_only && std::chrono::steady_clock::now() < deadline) {
        std::this_thread::sleep_for(20ms);  // a poll period, not a wait for an outcome
    }
    ASSERT_GT(fs::file_size(work_ / "crash.mcap"), header_only) << recorder->dump();
    recorder->send_signal(SIGKILL);
    const auto killed = recorder->wait_exit(10s);
    ASSERT_TRUE(killed);
    EXPECT_EQ(killed->signal, SIGKILL) << killed->describe();
    interrupt(*sender);

    const auto torn = info("crash.mcap");
    EXPECT_TRUE(has_line(torn, "status: incomplete")) << joined(torn);
    EXPECT_TRUE(has_line(torn, "repair: meshy bag reindex crash.mcap")) << joined(torn);
    const auto kept = std::stoul(field(torn, "messages").value_or("0"));
    EXPECT_GE(kept, 1u) << joined(torn);

    const auto reindexed = run({"bag", "reindex", "crash.mcap"});
    ASSERT_TRUE(reindexed.status && reindexed.status->success()) << joined(reindexed.lines);
    EXPECT_TRUE(has_line(reindexed.lines, "Wrote crash.reindexed.mcap: " + std::to_string(kept) + " messages"))
        << joined(reindexed.lines);
    const auto fixed = info("crash.reindexed.mcap");
    EXPECT_EQ(field(fixed, "status"), "complete (read from its summary)") << joined(fixed);
    EXPECT_EQ(field(fixed, "messages"), std::to_string(kept)) << joined(fixed);
    EXPECT_EQ(field(fixed, "compression"), "zstd") << joined(fixed);

    // `recover` is the same command; an existing output is not overwritten without --force.
    const auto again = run({"bag", "recover", "crash.mcap"});
    ASSERT_TRUE(again.status);
    EXPECT_EQ(again.status->code, 1) << joined(again.lines);
    const auto forced = run({"bag", "recover", "crash.mcap", "--force", "--compression", "lz4"});
    ASSERT_TRUE(forced.status && forced.status->success()) << joined(forced.lines);
    EXPECT_EQ(field(info("crash.reindexed.mcap"), "compression"), "lz4");

    // The readable part plays.
    auto echo = start_cli({"topic", "echo", "chatter", "-n", std::to_string(kept)}, "echo");
    ASSERT_TRUE(echo->wait_for_line("Listening to topics", 10s)) << echo->dump();
    const auto played = run({"bag", "play", "-i", "crash.mcap", "--rate", "100", "--no-log"});
    ASSERT_TRUE(played.status && played.status->success()) << joined(played.lines);
    EXPECT_TRUE(has_line(played.lines, "incomplete")) << joined(played.lines);
    EXPECT_TRUE(echo->wait_exit(10s)) << echo->dump();
}

TEST_F(BagTest, RecordAllPicksUpTopicsThatAppearLater) {
    auto recorder = start_recorder({"--all", "--exclude", "^ignored$", "-o", "all.mcap", "--compression", "lz4"});
    // Topics exist in the mesh when someone listens to them; these echoes come after the recorder.
    auto late = start_cli({"topic", "echo", "late", "ignored"}, "echo");
    ASSERT_TRUE(recorder->wait_for_line("Recording topic: late", 15s)) << recorder->dump();
    // Sent once both the echo and the recorder listen.
    const auto sent = run_command({test_node, "send", "late", "1", "--wait-listeners", "2"}, 30s, env_);
    ASSERT_TRUE(sent.status && sent.status->success()) << joined(sent.lines);
    send("ignored", "6");
    wait_dots(*recorder, 1);
    ASSERT_TRUE(late->wait_until(
        [](const auto& lines) {
            return std::count_if(lines.begin(), lines.end(),
                                 [](const auto& l) { return l.text.find("args") != std::string::npos; }) >= 2;
        },
        10s))
        << late->dump();
    interrupt(*recorder);
    EXPECT_EQ(recorder->count_lines("Recording topic: ignored"), 0u) << recorder->dump();
    const auto lines = info("all.mcap");
    EXPECT_EQ(field(lines, "messages"), "1") << joined(lines);
    EXPECT_TRUE(has_line(lines, "  late: 1 message (100%)")) << joined(lines);
    EXPECT_EQ(field(lines, "compression"), "lz4") << joined(lines);
}

TEST_F(BagTest, ErrorsAreOneLineWithAnExitCode) {
    struct Case {
        std::vector<std::string> args;
        int code;
    };
    {
        std::ofstream(work_ / "garbage.mcap") << "this is not a bag";
        std::ofstream(work_ / "exists.mcap") << "x";
    }
    for (const auto& c : std::vector<Case>{
             {{"bag", "info", "-i", "missing.mcap"}, 1},
             {{"bag", "info", "-i", "garbage.mcap"}, 1},
             {{"bag", "play", "-i", "missing.mcap"}, 1},
             {{"bag", "reindex", "garbage.mcap"}, 1},
             {{"bag", "record", "t", "-o", "exists.mcap"}, 1},
             {{"bag", "record"}, 2},
             {{"bag", "record", "t", "--compression", "gzip"}, 2},
             {{"bag", "record", "--regex", "("}, 2},
             {{"bag", "play", "-i", "x.mcap", "--rate", "0"}, 2},
             {{"bag", "play", "-i", "x.mcap", "--start-offset", "-1"}, 2},
             {{"bag", "reindex"}, 2},
             {{"bag"}, 2},
         }) {
        const auto r = run(c.args);
        ASSERT_TRUE(r.status) << joined(c.args);
        EXPECT_EQ(r.status->code, c.code) << joined(c.args) << joined(r.lines);
        ASSERT_EQ(r.lines.size(), 1u) << joined(c.args) << joined(r.lines);
        EXPECT_NE(r.lines[0].find("error"), std::string::npos) << r.lines[0];
    }
    // No bag in the directory: info and play say so.
    fs::remove(work_ / "garbage.mcap");
    fs::remove(work_ / "exists.mcap");
    const auto none = run({"bag", "info"});
    ASSERT_TRUE(none.status);
    EXPECT_EQ(none.status->code, 1);
    EXPECT_TRUE(has_line(none.lines, "no .mcap file")) << joined(none.lines);
}

TEST_F(BagTest, IndependentReaderReadsEveryCompression) {
    const fs::path validate = fs::path(source_dir) / "tests" / "bag" / "validate.mjs";
    const fs::path modules = fs::path(source_dir) / "tests" / "bag" / "node_modules";
    const auto node_version = run_command({"node", "--version"}, 10s);
    // scripts/test.sh installs both; in CI (CI set) their absence fails instead of skipping.
    const bool required = std::getenv("CI") != nullptr;
    if (!node_version.status || !node_version.status->success()) {
        if (required) {
            FAIL() << "node is not installed (scripts/deps.sh installs Node.js)";
        }
        GTEST_SKIP() << "node is not installed (the test set-up installs Node.js and runs `npm ci` in tests/bag)";
    }
    if (!fs::exists(modules / "@mcap" / "core") || !fs::exists(modules / "@mcap" / "support")) {
        if (required) {
            FAIL() << "@mcap/core and @mcap/support are not installed: run `npm ci` in " << validate.parent_path();
        }
        GTEST_SKIP() << "@mcap/core and @mcap/support are not installed: run `npm ci` in " << validate.parent_path();
    }
    for (const std::string compression : {"none", "zstd", "lz4"}) {
        SCOPED_TRACE(compression);
        const std::string file = compression + ".mcap";
        // The bytes as sent (the default records them as JSON, checked in foxglove_test.cpp).
        auto recorder =
            start_recorder({"alpha", "beta", "-o", file, "--compression", compression, "--encoding", "msgpack"});
        // An echo sees what was sent, with the sender's timestamps: the expectation.
        auto echo = start_cli({"topic", "echo", "alpha", "beta", "-n", "8", "--json"}, compression + "-echo");
        ASSERT_TRUE(echo->wait_for_line("Listening to topics", 10s)) << echo->dump();
        // Each sender waits until both the recorder and the echo listen, then sends its burst.
        for (const auto& [topic, count] : std::vector<std::pair<std::string, int>>{{"alpha", 5}, {"beta", 3}}) {
            const auto sent = run_command({test_node, "send", topic, std::to_string(count), "--wait-listeners", "2",
                                           "--text", "m-" + topic, "--name", "sender-" + topic},
                                          30s, env_);
            ASSERT_TRUE(sent.status && sent.status->success()) << joined(sent.lines);
        }
        const auto echoed = echo->wait_exit(15s);
        ASSERT_TRUE(echoed && echoed->success()) << echo->dump();
        wait_dots(*recorder, 8);
        interrupt(*recorder);

        std::string expected =
            "{\"compression\": \"" + std::string(compression == "none" ? "" : compression) + "\", \"messages\": [";
        int n = 0;
        for (const auto& l : echo->lines()) {
            const auto t = echo_time(l);
            if (t == 0) {
                continue;
            }
            const std::string topic = l.find("\"topic\": \"alpha\"") != std::string::npos ? "alpha" : "beta";
            // args: [seq, "m-topic"]
            const auto args = l.find("\"args\": [");
            ASSERT_NE(args, std::string::npos) << l;
            const int seq = std::stoi(l.substr(args + 9));
            expected += std::string(n++ ? ", " : "") + "{\"topic\": \"" + topic + "\", \"publish_time\": \"" +
                        std::to_string(t) + "\", \"data_hex\": \"" + test_node_payload_hex(seq, "m-" + topic) + "\"}";
        }
        expected += "]}";
        ASSERT_EQ(n, 8) << echo->dump();
        const fs::path expected_file = work_ / (compression + ".expected.json");
        std::ofstream(expected_file) << expected;

        const auto checked =
            run_command({"node", validate.string(), (work_ / file).string(), expected_file.string()}, 60s);
        ASSERT_TRUE(checked.status) << joined(checked.lines);
        EXPECT_TRUE(checked.status->success()) << joined(checked.lines);
        EXPECT_TRUE(has_line(checked.lines, "OK: 8 messages on 2 topic(s)")) << joined(checked.lines);
    }
}
