// The `meshy` CLI against real nodes (the examples and other CLI processes) over the real
// avahi-daemon, mirroring rosy's CLI tests.
#include <gtest/gtest.h>
#include <signal.h>
#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <cstdlib>
#include <filesystem>
#include <string>
#include <thread>
#include <vector>

#include "process.hpp"

using namespace std::chrono_literals;
using meshy::test::has_line;
using meshy::test::joined;
using meshy::test::Process;
using meshy::test::run_command;

namespace {

const std::string cli = MESHY_CLI_PATH;
const std::string test_node = MESHY_TEST_NODE_PATH;
const std::string examples = MESHY_EXAMPLES_DIR;

class CliTest : public ::testing::Test {
protected:
    void SetUp() override {
        domain_ = std::string("cli-") + ::testing::UnitTest::GetInstance()->current_test_info()->name() + "-" +
                  std::to_string(::getpid());
        // Every node of these tests (CLI and examples) binds loopback only.
        env_ = {{"MESHY_DOMAIN_ID", domain_}, {"MESHY_DISCOVERY", "avahi"}, {"MESHY_LISTEN_HOST", "127.0.0.1"}};
        if (const auto& problem = meshy::test::avahi_problem(test_node, env_)) {
            FAIL() << *problem;
        }
    }

    /// A long-running `meshy ARGS...` or example.
    std::unique_ptr<Process> start(std::vector<std::string> argv, const std::string& label) {
        return std::make_unique<Process>(std::move(argv), env_, label);
    }
    std::unique_ptr<Process> start_cli(std::vector<std::string> args, const std::string& label) {
        args.insert(args.begin(), cli);
        return start(std::move(args), label);
    }
    /// `meshy ARGS...` to completion.
    meshy::test::RunResult run(std::vector<std::string> args, std::chrono::milliseconds timeout = 20s) {
        args.insert(args.begin(), cli);
        return run_command(std::move(args), timeout, env_);
    }

    /// Waits until `meshy topic list` shows `topic` (its listener's advert reached the daemon).
    bool wait_listed(const std::string& topic, std::chrono::seconds timeout) {
        const auto deadline = std::chrono::steady_clock::now() + timeout;
        while (std::chrono::steady_clock::now() < deadline) {
            if (has_line(run({"topic", "list", "--discovery-time", "0.5"}).lines, topic)) {
                return true;
            }
        }
        return false;
    }

    /// A `topic echo TOPIC --once` whose advert the daemon has, then stopped (SIGSTOP): a listener
    /// the mesh knows that answers nothing until it is continued. Null (with a failure) if it
    /// did not get that far.
    std::unique_ptr<Process> stopped_echo(const std::string& topic) {
        auto echo = start_cli({"topic", "echo", topic, "--once"}, "echo");
        if (!echo->wait_for_line("Listening to topics: " + topic, 10s) || !wait_listed(topic, 15s) ||
            !echo->send_signal(SIGSTOP)) {
            ADD_FAILURE() << echo->dump();
            return nullptr;
        }
        return echo;
    }

    std::string domain_;
    std::map<std::string, std::string> env_;
};

}  // namespace

TEST_F(CliTest, SendThenEchoShowsArgsAndKwargs) {
    auto echo = start_cli({"topic", "echo", "chatter", "--once"}, "echo");
    ASSERT_TRUE(echo->wait_for_line("Listening to topics: chatter", 10s)) << echo->dump();
    // As a shell passes: 42 hello '"text"' '[1,2]' mode=fast n=3
    const auto sent = run({"topic", "send", "chatter", "42", "hello", "\"text\"", "[1,2]", "mode=fast", "n=3"});
    ASSERT_TRUE(sent.status && sent.status->success()) << joined(sent.lines);
    EXPECT_TRUE(has_line(sent.lines, "on topic=chatter")) << joined(sent.lines);
    ASSERT_TRUE(echo->wait_for_line(R"(args: (42, "hello", "text", [1, 2], {"mode": "fast", "n": 3}))", 10s))
        << echo->dump();
    const auto status = echo->wait_exit(5s);
    ASSERT_TRUE(status) << echo->dump();
    EXPECT_TRUE(status->success()) << status->describe();
}

TEST_F(CliTest, SendWithIntervalAndEchoCount) {
    auto echo = start_cli({"topic", "echo", "ticks", "-n", "3", "--json"}, "echo");
    ASSERT_TRUE(echo->wait_for_line("Listening to topics: ticks", 10s)) << echo->dump();
    auto sender = start_cli({"topic", "send", "ticks", "7", "--interval", "0.1"}, "sender");
    const auto status = echo->wait_exit(15s);
    ASSERT_TRUE(status) << echo->dump();
    EXPECT_TRUE(status->success()) << status->describe();
    EXPECT_EQ(echo->count_lines("\"topic\": \"ticks\""), 3u) << echo->dump();
    EXPECT_EQ(echo->count_lines("\"args\": [7]"), 3u) << echo->dump();
    // An interval send ends quietly, with status 0, on Ctrl-C.
    sender->send_signal(SIGINT);
    const auto sent = sender->wait_exit(5s);
    ASSERT_TRUE(sent) << sender->dump();
    EXPECT_TRUE(sent->success()) << sent->describe() << sender->dump();
}

TEST_F(CliTest, TopicListShowsTopicsOfTwoEchoes) {
    auto a = start_cli({"topic", "echo", "alpha"}, "echo-a");
    auto b = start_cli({"topic", "echo", "beta", "gamma"}, "echo-b");
    ASSERT_TRUE(a->wait_for_line("Listening to topics", 10s));
    ASSERT_TRUE(b->wait_for_line("Listening to topics", 10s));
    const auto list = run({"topic", "list", "--discovery-time", "2.5"});
    ASSERT_TRUE(list.status && list.status->success()) << joined(list.lines);
    std::vector<std::string> topics;
    for (const auto& l : list.lines) {
        if (l == "alpha" || l == "beta" || l == "gamma") {
            topics.push_back(l);
        }
    }
    EXPECT_EQ(topics, (std::vector<std::string>{"alpha", "beta", "gamma"})) << joined(list.lines);
    const auto verbose = run({"topic", "list", "-v", "--discovery-time", "2.5"});
    EXPECT_TRUE(has_line(verbose.lines, "beta (0 publishers, 1 listener)")) << joined(verbose.lines);
    // Ctrl-C ends echo quietly with status 0.
    a->send_signal(SIGINT);
    const auto status = a->wait_exit(5s);
    ASSERT_TRUE(status);
    EXPECT_TRUE(status->success()) << status->describe();
}

TEST_F(CliTest, KeywordBeforePositionalIsAnError) {
    const auto result = run({"topic", "send", "t", "a=1", "2", "--no-wait"});
    ASSERT_TRUE(result.status);
    EXPECT_EQ(result.status->code, 2) << joined(result.lines);
    ASSERT_EQ(result.lines.size(), 1u) << joined(result.lines);
    EXPECT_NE(result.lines[0].find("error"), std::string::npos);
}

TEST_F(CliTest, BadArgumentsExitWithTwo) {
    for (const auto& args : std::vector<std::vector<std::string>>{
             {"topic", "echo"}, {"topic", "hz", "t", "-w", "zero"}, {"nonsense"}, {"service", "call"}}) {
        const auto result = run(args);
        ASSERT_TRUE(result.status);
        EXPECT_EQ(result.status->code, 2) << joined(result.lines);
        EXPECT_EQ(result.lines.size(), 1u) << joined(result.lines);
    }
}

TEST_F(CliTest, ServiceCallAgainstTheExampleProvider) {
    auto provider = start({examples + "/service_provider"}, "provider");
    ASSERT_TRUE(provider->wait_for_line("Started service...", 10s)) << provider->dump();
    const auto once = run({"service", "call", "multiply", "3", "4"});
    ASSERT_TRUE(once.status && once.status->success()) << joined(once.lines);
    EXPECT_TRUE(has_line(once.lines, "Calling multiply(3, 4)")) << joined(once.lines);
    EXPECT_TRUE(has_line(once.lines, "Response: 12")) << joined(once.lines);
    EXPECT_TRUE(provider->wait_for_line("Calculating 3 * 4...", 5s)) << provider->dump();

    auto repeated = start_cli({"service", "call", "multiply", "2", "5", "-i", "0.1"}, "caller");
    ASSERT_TRUE(repeated->wait_until(
        [](const auto& lines) {
            return std::count_if(lines.begin(), lines.end(),
                                 [](const auto& l) { return l.text.find("Response: 10") != std::string::npos; }) >= 3;
        },
        15s))
        << repeated->dump();
    repeated->send_signal(SIGINT);
    const auto status = repeated->wait_exit(5s);
    ASSERT_TRUE(status);
    EXPECT_TRUE(status->success()) << status->describe();
}

TEST_F(CliTest, ServiceErrorsAndTimeouts) {
    const auto missing = run({"service", "call", "nobody-provides-this", "--no-wait"});
    ASSERT_TRUE(missing.status);
    EXPECT_EQ(missing.status->code, 1) << joined(missing.lines);

    auto provider = start({examples + "/service_provider"}, "provider");
    ASSERT_TRUE(provider->wait_for_line("Started service...", 10s));
    // The provider multiplies numbers: a string is a remote error.
    const auto remote = run({"service", "call", "multiply", "two", "3"});
    ASSERT_TRUE(remote.status);
    EXPECT_EQ(remote.status->code, 1) << joined(remote.lines);
    EXPECT_TRUE(has_line(remote.lines, "error")) << joined(remote.lines);

    // meshy_test_node provides `fail` (throws "boom from provider") and `slow MS`.
    auto tester = start({test_node, "provide", "--listen-host", "127.0.0.1"}, "test-provider");
    ASSERT_TRUE(tester->wait_for_line("READY", 10s)) << tester->dump();
    const auto failed = run({"service", "call", "fail"});
    ASSERT_TRUE(failed.status);
    EXPECT_EQ(failed.status->code, 1) << joined(failed.lines);
    EXPECT_TRUE(has_line(failed.lines, "boom from provider")) << joined(failed.lines);

    const auto late = run({"service", "call", "slow", "3000", "--timeout", "0.3"});
    ASSERT_TRUE(late.status);
    EXPECT_EQ(late.status->code, 3) << joined(late.lines);
    EXPECT_TRUE(has_line(late.lines, "timed out")) << joined(late.lines);
}

TEST_F(CliTest, ServiceListAndNodeList) {
    auto provider = start({examples + "/service_provider", "--name", "calc"}, "provider");
    auto echo = start_cli({"topic", "echo", "watched"}, "echo");
    ASSERT_TRUE(provider->wait_for_line("Started service...", 10s));
    ASSERT_TRUE(echo->wait_for_line("Listening to topics", 10s));

    const auto services = run({"service", "list", "--discovery-time", "2.5"});
    ASSERT_TRUE(services.status && services.status->success()) << joined(services.lines);
    EXPECT_TRUE(has_line(services.lines, "multiply")) << joined(services.lines);
    const auto verbose_services = run({"service", "list", "-v", "--discovery-time", "2.5"});
    EXPECT_TRUE(has_line(verbose_services.lines, "multiply: calc@")) << joined(verbose_services.lines);

    const auto nodes = run({"node", "list", "--discovery-time", "2.5"});
    ASSERT_TRUE(nodes.status && nodes.status->success()) << joined(nodes.lines);
    EXPECT_TRUE(has_line(nodes.lines, "2 nodes in domain '" + domain_ + "' (avahi discovery):")) << joined(nodes.lines);
    EXPECT_TRUE(has_line(nodes.lines, "calc@")) << joined(nodes.lines);
    // The CLI's nodes are named per process: meshy-cli-echo-<pid>.
    EXPECT_TRUE(has_line(nodes.lines, "meshy-cli-echo-" + std::to_string(echo->pid()) + "@")) << joined(nodes.lines);
    EXPECT_TRUE(has_line(nodes.lines, "services: multiply")) << joined(nodes.lines);
    EXPECT_TRUE(has_line(nodes.lines, "topics: watched")) << joined(nodes.lines);

    const auto verbose = run({"node", "list", "-v", "--discovery-time", "2.5"});
    EXPECT_TRUE(has_line(verbose.lines, "id: ")) << joined(verbose.lines);
    EXPECT_TRUE(has_line(verbose.lines, "endpoints: tcp:")) << joined(verbose.lines);

    const auto info = run({"node", "info", "calc", "--discovery-time", "2.5"});
    ASSERT_TRUE(info.status && info.status->success()) << joined(info.lines);
    EXPECT_TRUE(has_line(info.lines, "reached over: unix")) << joined(info.lines);
}

TEST_F(CliTest, EmptyMeshSaysWhereItLooked) {
    const auto nodes = run({"node", "list", "--discovery-time", "1"});
    ASSERT_TRUE(nodes.status && nodes.status->success()) << joined(nodes.lines);
    EXPECT_TRUE(has_line(nodes.lines, "0 nodes in domain '" + domain_ + "' (avahi discovery)")) << joined(nodes.lines);
    EXPECT_TRUE(has_line(nodes.lines, "--domain-id")) << "a hint on what to check\n" << joined(nodes.lines);

    const auto info = run({"node", "info", "nosuch", "--discovery-time", "1"});
    ASSERT_TRUE(info.status);
    EXPECT_EQ(info.status->code, 1) << joined(info.lines);
    ASSERT_EQ(info.lines.size(), 1u) << joined(info.lines);
    EXPECT_NE(info.lines[0].find("no node named 'nosuch' in domain '" + domain_ + "'"), std::string::npos)
        << info.lines[0];
}

TEST_F(CliTest, HzMeasuresAKnownInterval) {
    auto sender = start_cli({"topic", "send", "rate", "1", "--interval", "0.05"}, "sender");  // 20 Hz
    auto hz = start_cli({"topic", "hz", "rate"}, "hz");
    // Wait for a report over a full window of at least 20 intervals.
    std::optional<std::string> report;
    ASSERT_TRUE(hz->wait_until(
        [&](const auto& lines) {
            for (std::size_t i = 0; i + 1 < lines.size(); ++i) {
                if (lines[i].text.rfind("average rate: ", 0) == 0 &&
                    lines[i + 1].text.find("window: ") != std::string::npos &&
                    std::stoi(lines[i + 1].text.substr(lines[i + 1].text.find("window: ") + 8)) >= 20) {
                    report = lines[i].text;
                }
            }
            return report.has_value();
        },
        15s))
        << hz->dump();
    const double rate = std::stod(report->substr(std::string("average rate: ").size()));
    EXPECT_NEAR(rate, 20.0, 2.0) << *report;
    hz->send_signal(SIGINT);
    const auto status = hz->wait_exit(5s);
    ASSERT_TRUE(status);
    EXPECT_TRUE(status->success()) << status->describe();
}

TEST_F(CliTest, VersionAndHelp) {
    const auto version = run({"--version"});
    ASSERT_TRUE(version.status && version.status->success());
    ASSERT_FALSE(version.lines.empty());
    EXPECT_EQ(version.lines[0].rfind("meshy ", 0), 0u);
    for (const auto& args : std::vector<std::vector<std::string>>{{"--help"},
                                                                  {"topic", "--help"},
                                                                  {"topic", "send", "--help"},
                                                                  {"node", "list", "--help"},
                                                                  {"service", "call", "--help"}}) {
        const auto help = run(args);
        ASSERT_TRUE(help.status && help.status->success()) << joined(help.lines);
        EXPECT_TRUE(has_line(help.lines, "Usage")) << joined(help.lines);
    }
}

TEST_F(CliTest, ParallelEchoesEachGetEveryMessage) {
    // Three echoes of one topic: each is a node of its own name, so none shares load with another.
    std::vector<std::unique_ptr<Process>> echoes;
    for (int i = 0; i < 3; ++i) {
        echoes.push_back(start_cli({"topic", "echo", "fanout", "-n", "5", "--json"}, "echo-" + std::to_string(i)));
    }
    for (auto& echo : echoes) {
        ASSERT_TRUE(echo->wait_for_line("Listening to topics: fanout", 10s)) << echo->dump();
    }
    auto sender = start_cli({"topic", "send", "fanout", "1", "-w", "3", "--interval", "0.05"}, "sender");
    for (auto& echo : echoes) {
        const auto status = echo->wait_exit(20s);
        ASSERT_TRUE(status) << echo->dump() << sender->dump();
        EXPECT_TRUE(status->success()) << status->describe();
        EXPECT_EQ(echo->count_lines("\"topic\": \"fanout\""), 5u) << echo->dump();
    }
    sender->send_signal(SIGINT);
    ASSERT_TRUE(sender->wait_exit(5s)) << sender->dump();
}

TEST_F(CliTest, OneShotSendReachesListenersStartedTogether) {
    // No -w: the send waits for the first listener, then for the others discovery finds with it.
    std::vector<std::unique_ptr<Process>> echoes;
    for (int i = 0; i < 3; ++i) {
        echoes.push_back(start_cli({"topic", "echo", "together", "--once"}, "echo-" + std::to_string(i)));
    }
    for (auto& echo : echoes) {
        ASSERT_TRUE(echo->wait_for_line("Listening to topics: together", 10s)) << echo->dump();
    }
    const auto sent = run({"topic", "send", "together", "hello"});
    ASSERT_TRUE(sent.status && sent.status->success()) << joined(sent.lines);
    for (auto& echo : echoes) {
        const auto status = echo->wait_exit(10s);
        ASSERT_TRUE(status) << echo->dump() << joined(sent.lines);
        EXPECT_TRUE(status->success()) << status->describe();
        EXPECT_TRUE(echo->wait_for_line("args: (\"hello\")", 1s)) << echo->dump();
    }
}

TEST_F(CliTest, AOneShotSendWaitsForAListenerSlowToAnswer) {
    // A busy machine, played by a listener that is stopped while the send dials it: the send's
    // node lingers on stop() until the link is up, and the message arrives.
    auto echo = stopped_echo("slow_answer");
    ASSERT_TRUE(echo);
    auto sender = start_cli({"topic", "send", "slow_answer", "late"}, "sender");
    const bool sent = sender->wait_for_line("on topic=slow_answer", 15s).has_value();
    // Longer than stop() used to wait (1 s), well within the dial's handshake timeout (2 s).
    std::this_thread::sleep_for(1200ms);
    ASSERT_TRUE(echo->send_signal(SIGCONT));
    ASSERT_TRUE(sent) << sender->dump();
    const auto status = sender->wait_exit(10s);
    ASSERT_TRUE(status) << sender->dump();
    EXPECT_TRUE(status->success()) << status->describe() << sender->dump();
    EXPECT_TRUE(echo->wait_for_line(R"(args: ("late"))", 10s)) << echo->dump() << sender->dump();
}

TEST_F(CliTest, AMessageAStoppingNodeCouldNotDeliverIsReported) {
    // The listener never answers the handshake: the send's message is dropped, with a warning.
    auto echo = stopped_echo("no_answer");
    ASSERT_TRUE(echo);
    auto sender = start_cli({"topic", "send", "no_answer", "lost"}, "sender");
    const auto status = sender->wait_exit(20s);
    ASSERT_TRUE(echo->send_signal(SIGCONT));
    ASSERT_TRUE(status) << sender->dump();
    EXPECT_TRUE(sender->wait_for_line("dropped 1 message(s) to meshy-cli-echo", 0s)) << sender->dump();
    EXPECT_FALSE(echo->wait_for_line(R"(args: ("lost"))", 1s)) << echo->dump();
}

TEST_F(CliTest, AFloatStaysAFloat) {
    auto echo = start_cli({"topic", "echo", "floats", "--once"}, "echo");
    ASSERT_TRUE(echo->wait_for_line("Listening to topics: floats", 10s)) << echo->dump();
    const auto sent = run({"topic", "send", "floats", "1.0", "2", "[1.5, 3.0]", "x=-0.0"});
    ASSERT_TRUE(sent.status && sent.status->success()) << joined(sent.lines);
    ASSERT_TRUE(echo->wait_for_line(R"(args: (1.0, 2, [1.5, 3.0], {"x": -0.0}))", 10s)) << echo->dump();
}

TEST_F(CliTest, TimeoutBoundsTheWholeCall) {
    // Nobody provides the service: --timeout covers the wait for a provider too.
    const auto t0 = std::chrono::steady_clock::now();
    const auto result = run({"service", "call", "nobody-here", "--timeout", "1"});
    const auto took = std::chrono::steady_clock::now() - t0;
    ASSERT_TRUE(result.status);
    EXPECT_EQ(result.status->code, 3) << joined(result.lines);
    EXPECT_TRUE(has_line(result.lines, "timed out: no provider of 'nobody-here' in domain '" + domain_ + "'"))
        << joined(result.lines);
    // A bound, not a speed: the call ended because of its timeout (1 s), not after the default 10 s.
    EXPECT_GE(took, 900ms);
    EXPECT_LT(took, 8s);
}

TEST_F(CliTest, CtrlCBeforeTheCallIsNotSuccess) {
    auto caller = start_cli({"service", "call", "nobody-here"}, "caller");
    ASSERT_TRUE(caller->wait_for_line("Waiting for providers...", 10s)) << caller->dump();
    caller->send_signal(SIGINT);
    const auto status = caller->wait_exit(5s);
    ASSERT_TRUE(status) << caller->dump();
    EXPECT_TRUE(status->exited && status->code == 130) << status->describe() << caller->dump();

    auto sender = start_cli({"topic", "send", "nobody-listens", "1"}, "sender");
    ASSERT_TRUE(sender->wait_for_line("Waiting for listeners...", 10s)) << sender->dump();
    sender->send_signal(SIGINT);
    const auto sent = sender->wait_exit(5s);
    ASSERT_TRUE(sent) << sender->dump();
    EXPECT_TRUE(sent->exited && sent->code == 130) << sent->describe() << sender->dump();
}

TEST_F(CliTest, NoWaitGivesDiscoveryItsFirstRound) {
    auto provider = start({examples + "/service_provider"}, "provider");
    ASSERT_TRUE(provider->wait_for_line("Started service...", 10s)) << provider->dump();
    // A fresh process knows nobody at first: --no-wait still finds the provider.
    const auto result = run({"service", "call", "multiply", "6", "7", "--no-wait"});
    ASSERT_TRUE(result.status && result.status->success()) << joined(result.lines);
    EXPECT_TRUE(has_line(result.lines, "Response: 42")) << joined(result.lines);
}

TEST_F(CliTest, TyposGetASuggestionAndSaneMessages) {
    const auto typo = run({"topci", "list"});
    ASSERT_TRUE(typo.status);
    EXPECT_EQ(typo.status->code, 2) << joined(typo.lines);
    ASSERT_EQ(typo.lines.size(), 1u) << joined(typo.lines);
    EXPECT_NE(typo.lines[0].find("unknown command 'topci'; did you mean 'topic'?"), std::string::npos) << typo.lines[0];

    const auto sub = run({"--domain-id", "x", "topic", "lsit"});
    ASSERT_TRUE(sub.status);
    EXPECT_EQ(sub.status->code, 2) << joined(sub.lines);
    ASSERT_EQ(sub.lines.size(), 1u) << joined(sub.lines);
    EXPECT_NE(sub.lines[0].find("did you mean 'topic list'?"), std::string::npos) << sub.lines[0];

    // A count of 0 says what is wrong in a short line (not a 300-digit range).
    const auto zero = run({"topic", "echo", "t", "-n", "0"});
    ASSERT_TRUE(zero.status);
    EXPECT_EQ(zero.status->code, 2) << joined(zero.lines);
    ASSERT_EQ(zero.lines.size(), 1u) << joined(zero.lines);
    EXPECT_LT(zero.lines[0].size(), 160u) << zero.lines[0];
    EXPECT_NE(zero.lines[0].find("greater than 0"), std::string::npos) << zero.lines[0];
}

TEST_F(CliTest, BagCommandsTakeTheFileAsAPositionalArgument) {
    char tmpl[] = "/tmp/meshy-cli-bag.XXXXXX";
    ASSERT_NE(::mkdtemp(tmpl), nullptr);
    const std::string bag = std::string(tmpl) + "/take.mcap";
    auto recorder = start_cli({"bag", "record", "recorded", "-o", bag}, "recorder");
    ASSERT_TRUE(recorder->wait_for_line("Listening to topics: recorded", 10s)) << recorder->dump();
    const auto sent = run({"topic", "send", "recorded", "2.5"});
    ASSERT_TRUE(sent.status && sent.status->success()) << joined(sent.lines);
    // Away from a terminal the recorder prints a dot a message: stop it once the message is in.
    ASSERT_TRUE(recorder->wait_for_match([](const std::string& l) { return l == "."; }, 10s)) << recorder->dump();
    recorder->send_signal(SIGINT);
    const auto stopped = recorder->wait_exit(10s);
    ASSERT_TRUE(stopped && stopped->success()) << recorder->dump();

    const auto info = run({"bag", "info", bag});
    ASSERT_TRUE(info.status && info.status->success()) << joined(info.lines);
    EXPECT_TRUE(has_line(info.lines, "recorded")) << joined(info.lines);
    const auto by_option = run({"bag", "info", "-i", bag});
    ASSERT_TRUE(by_option.status && by_option.status->success()) << joined(by_option.lines);
    EXPECT_EQ(info.lines, by_option.lines);

    auto echo = start_cli({"topic", "echo", "recorded", "--once"}, "echo");
    ASSERT_TRUE(echo->wait_for_line("Listening to topics: recorded", 10s)) << echo->dump();
    const auto played = run({"bag", "play", bag, "--no-log"});
    ASSERT_TRUE(played.status && played.status->success()) << joined(played.lines);
    // The float recorded as a float plays back as one.
    EXPECT_TRUE(echo->wait_for_line("args: (2.5)", 10s)) << echo->dump();

    const auto reindexed = run({"bag", "reindex", bag, "-o", std::string(tmpl) + "/copy.mcap"});
    EXPECT_TRUE(reindexed.status && reindexed.status->success()) << joined(reindexed.lines);
    std::error_code ignored;
    std::filesystem::remove_all(tmpl, ignored);
}

TEST_F(CliTest, SendersAreVisibleInTopicListAndInfo) {
    // A node that only sends: nobody listens, yet its topic shows, with its publisher.
    auto sender = start_cli({"topic", "send", "only-sent", "1", "-i", "0.2", "--no-wait"}, "sender");
    const auto listed = [&] {
        const auto list = run({"topic", "list", "-v", "--discovery-time", "2.5"});
        return has_line(list.lines, "only-sent (1 publisher, 0 listeners)");
    };
    bool seen = false;
    for (int i = 0; i < 4 && !(seen = listed()); ++i) {
    }
    EXPECT_TRUE(seen) << sender->dump();
    const auto info = run({"topic", "info", "only-sent", "--discovery-time", "2.5"});
    EXPECT_TRUE(has_line(info.lines, "Publishers: 1")) << joined(info.lines);
    EXPECT_TRUE(has_line(info.lines, "Listeners: 0")) << joined(info.lines);
    const auto typed = run({"topic", "list", "-t", "--discovery-time", "2.5"});
    EXPECT_TRUE(has_line(typed.lines, "only-sent [untyped]")) << joined(typed.lines);
}

TEST_F(CliTest, DoctorIsHealthyWithTheDaemonAndNamesWhatIsWrong) {
    auto healthy = run({"doctor"});
    ASSERT_TRUE(healthy.status && healthy.status->success()) << joined(healthy.lines);
    EXPECT_NE(joined(healthy.lines).find("ok    avahi-daemon: "), std::string::npos) << joined(healthy.lines);
    EXPECT_NE(joined(healthy.lines).find("healthy"), std::string::npos);

    // A static peer that answers, and one that does not (found in parallel, each bounded).
    auto provider = start({test_node, "provide", "--listen-host", "127.0.0.1"}, "provider");
    const auto ready = provider->wait_for_line("READY", 10s);
    ASSERT_TRUE(ready);
    const auto at = ready->find("tcp=");
    const std::string port = ready->substr(at + 4, ready->find(' ', at) - at - 4);
    auto peers = run({"--peer", "tcp/127.0.0.1:" + port, "--peer", "tcp/127.0.0.1:1", "doctor"});
    ASSERT_TRUE(peers.status && peers.status->exited && peers.status->code == 1) << joined(peers.lines);
    EXPECT_NE(joined(peers.lines).find("ok    static peer tcp/127.0.0.1:" + port), std::string::npos)
        << joined(peers.lines);
    EXPECT_NE(joined(peers.lines).find("FAIL  static peer tcp/127.0.0.1:1: Connection refused"), std::string::npos)
        << joined(peers.lines);

    // A domain key file others can read fails the check, naming the file; a good one passes.
    char tmpl[] = "/tmp/meshy-cli-doctor.XXXXXX";
    ASSERT_NE(::mkdtemp(tmpl), nullptr);
    const std::string key = std::string(tmpl) + "/lab.key";
    const auto made = run_command({"/bin/sh", "-c", "umask 022 && \"$0\" key generate > \"$1\"", cli, key}, 20s);
    ASSERT_TRUE(made.status && made.status->success()) << joined(made.lines);
    auto keyed = run({"--domain-key-file", key, "doctor"});
    ASSERT_TRUE(keyed.status && keyed.status->success()) << joined(keyed.lines);
    EXPECT_NE(joined(keyed.lines).find("ok    domain key: " + key), std::string::npos) << joined(keyed.lines);
    std::filesystem::permissions(key, std::filesystem::perms::group_read | std::filesystem::perms::others_read,
                                 std::filesystem::perm_options::add);
    auto loose = run({"--domain-key-file", key, "doctor"});
    std::error_code ignored;
    std::filesystem::remove_all(tmpl, ignored);
    ASSERT_TRUE(loose.status && loose.status->exited && loose.status->code == 1) << joined(loose.lines);
    EXPECT_NE(joined(loose.lines).find("FAIL  domain key: "), std::string::npos) << joined(loose.lines);

    // The daemon out of reach: the first problem names the bus it tried.
    env_["DBUS_SYSTEM_BUS_ADDRESS"] = "unix:path=/nonexistent/meshy-doctor-test.sock";
    auto broken = run({"doctor"});
    ASSERT_TRUE(broken.status && broken.status->exited && broken.status->code == 1) << joined(broken.lines);
    EXPECT_NE(joined(broken.lines)
                  .find("meshy: error: doctor: avahi-daemon: not reachable on the system bus "
                        "unix:path=/nonexistent/meshy-doctor-test.sock"),
              std::string::npos)
        << joined(broken.lines);
}
