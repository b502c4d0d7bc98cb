// Two simulated hosts (network namespaces joined by a veth pair, each with its own dbus-daemon and
// avahi-daemon, set up by tests/chaos/netns.sh): a stream from host b to host a while the link goes
// down and up, and while host b's avahi-daemon, then its D-Bus, are killed and restarted. Needs root;
// the shared avahi-daemon of the other tests is never touched.
#include <unistd.h>

#include <cstdio>
#include <string>
#include <thread>

#include "chaos_fixture.hpp"

namespace meshy::chaos {
namespace {

using Clock = std::chrono::steady_clock;
const std::string netns_script = std::string(MESHY_SOURCE_DIR) + "/tests/chaos/netns.sh";

class TwoHostTest : public ChaosTest {
protected:
    void SetUp() override {
        ChaosTest::SetUp();
        if (HasFatalFailure()) {
            return;
        }
        if (::geteuid() != 0) {
            GTEST_SKIP() << "needs root (network namespaces)";
        }
        // A prefix and a /24 of its own per test process, so parallel runs never collide.
        const int tag = ::getpid() % 200 + 20;
        prefix_ = "mch" + std::to_string(::getpid());
        subnet_ = "10.214." + std::to_string(tag);
        // Outside the test's directory: ChaosTest::TearDown removes that before netns.sh down runs.
        state_ =
            "/tmp/meshy-chaos-net-" + prefix_ + "-" + testing::UnitTest::GetInstance()->current_test_info()->name();
        const auto up = netns({"up", prefix_, subnet_}, 60s);
        ASSERT_TRUE(up.status && up.status->success()) << "netns.sh up failed:\n" << meshy::test::joined(up.lines);
        up_ = true;
    }
    void TearDown() override {
        ChaosTest::TearDown();  // the nodes first: they live in the namespaces
        if (!state_.empty()) {  // also after a failed `up`: whatever it made is taken down
            const auto down = netns({"down"}, 60s);
            EXPECT_TRUE(down.status && down.status->success()) << meshy::test::joined(down.lines);
        }
    }

    meshy::test::RunResult netns(std::vector<std::string> args, Millis timeout) {
        args.insert(args.begin(), {netns_script, state_});
        return meshy::test::run_command(std::move(args), timeout);
    }

    /// Starts meshy_test_node on host `host` (a: .1, b: .2), TCP on its veth address only.
    Process& spawn_on(char host, std::vector<std::string> args, const std::string& label) {
        args.insert(args.begin(), MESHY_TEST_NODE_PATH);
        args.insert(args.begin(), {netns_script, state_, "run", std::string(1, host)});
        args.insert(args.end(), {"--listen-host", subnet_ + (host == 'a' ? ".1" : ".2"), "--no-unix"});
        auto e = env();
        procs_.push_back(std::make_unique<Process>(std::move(args), e, label));
        return *procs_.back();
    }

    /// The sender's latest LISTENERS record, as printed.
    static std::string latest_listeners(const Process& sender) {
        const auto lines = sender.lines();
        for (auto it = lines.rbegin(); it != lines.rend(); ++it) {
            if (it->rfind("LISTENERS ", 0) == 0) {
                return *it;
            }
        }
        return {};
    }

    /// Waits until the sender's latest LISTENERS record satisfies `ok`. @returns the time it took.
    static std::optional<Millis> wait_listeners(Process& sender,
                                                const std::function<bool(const std::string&)>& ok,
                                                Millis timeout) {
        const auto t0 = Clock::now();
        while (Clock::now() - t0 < timeout) {
            if (ok(latest_listeners(sender))) {
                return std::chrono::duration_cast<Millis>(Clock::now() - t0);
            }
            sender.wait_for_line("LISTENERS ", 50ms, sender.line_count());
        }
        return std::nullopt;
    }

    std::string prefix_, subnet_, state_;
    bool up_ = false;
};

TEST_F(TwoHostTest, LinkLossIsDetectedAndTheLinkIsReused) {
    Process& listener = spawn_on('a', {"listen", "loss", "--count-only", "--report-every", "10"}, "listener@a");
    const auto ready = listener.wait_for_line("READY ", startup_timeout);
    ASSERT_TRUE(ready) << listener.dump();
    const std::string id = field(*ready, "id");
    Process& sender =
        spawn_on('b', {"send", "loss", "0", "--interval-ms", "10", "--wait-timeout-ms", "30000"}, "sender@b");
    const std::string connected = id + ":tcp";
    ASSERT_TRUE(wait_listeners(
        sender, [&](const std::string& l) { return l.find(connected) != std::string::npos; }, discovery_timeout))
        << tail(sender, 20);
    ASSERT_TRUE(listener.wait_for_line("COUNT ", 10s)) << tail(listener, 10);

    const auto down = netns({"link", "down"}, 10s);
    ASSERT_TRUE(down.status && down.status->success());
    const auto detected = wait_listeners(
        sender, [&](const std::string& l) { return l.find(connected) == std::string::npos; }, 15s);
    figure("detected_ms", detected ? std::to_string(detected->count()) : "never (15 s)");
    EXPECT_TRUE(detected && *detected <= 3000ms) << "link loss not detected within 3 s\n" << tail(sender, 20);

    std::this_thread::sleep_for(2s);  // the outage itself
    const std::size_t count_before = listener.line_count();
    const auto up = netns({"link", "up"}, 10s);
    ASSERT_TRUE(up.status && up.status->success());
    const auto back = wait_listeners(
        sender, [&](const std::string& l) { return l.find(connected) != std::string::npos; }, 15s);
    figure("reconnected_ms", back ? std::to_string(back->count()) : "never (15 s)");
    EXPECT_TRUE(back && *back <= 1000ms) << "not reconnected within 1 s of the link coming back\n" << tail(sender, 20);
    EXPECT_TRUE(listener.wait_for_line("COUNT ", 10s, count_before)) << "no messages after the link came back";
}

TEST_F(TwoHostTest, StreamGoesOnThroughAvahiAndDbusRestarts) {
    Process& listener = spawn_on('a', {"listen", "restarts", "--count-only", "--report-every", "10"}, "listener@a");
    ASSERT_TRUE(listener.wait_for_line("READY ", startup_timeout)) << listener.dump();
    Process& sender = spawn_on('b',
                               {"send", "restarts", "0", "--interval-ms", "10", "--burst", "10", "--outbox-wait",
                                "--wait-timeout-ms", "30000"},
                               "sender@b");
    ASSERT_TRUE(sender.wait_for_line("LISTENERS 1", discovery_timeout)) << tail(sender, 20);
    ASSERT_TRUE(listener.wait_for_line("COUNT ", 10s)) << tail(listener, 10);

    int late_nodes = 0;
    for (const std::string what : {"avahi-restart", "dbus-restart"}) {
        const std::size_t from = listener.line_count();
        const auto restart = netns({what, "b"}, 60s);
        ASSERT_TRUE(restart.status && restart.status->success()) << what << ":\n" << meshy::test::joined(restart.lines);
        const auto back = Clock::now();
        // The stream went on through it.
        EXPECT_TRUE(listener.wait_for_line("COUNT ", 5s, from)) << "stream stalled across " << what;
        // A node started on host a now is seen by the sender on host b within 3 s of the daemon
        // being back (its own start-up and first announcement included).
        Process& late = spawn_on(
            'a', {"listen", "restarts", "--count-only", "--report-every", "1000000", "--name", "late" + what}, "late");
        ++late_nodes;
        const std::string want = "LISTENERS " + std::to_string(1 + late_nodes);
        const auto seen = wait_listeners(
            sender, [&](const std::string& l) { return l.rfind(want, 0) == 0; }, 15s);
        const auto since_back = std::chrono::duration_cast<Millis>(Clock::now() - back);
        figure(what + "_new_node_seen_ms", seen ? std::to_string(since_back.count()) : "never (15 s)");
        EXPECT_TRUE(seen && since_back <= 3000ms)
            << "a new node not seen within 3 s of the daemon being back after " << what << "\n"
            << tail(sender, 20) << tail(late, 10);
    }
    const std::int64_t sent = stop_sender(sender);
    EXPECT_TRUE(wait_count(listener, sent, 20s)) << "messages lost across the restarts";
    const Final f = stop_listener(listener);
    figure("sent", std::to_string(sent));
    figure("received", std::to_string(f.total));
    EXPECT_EQ(f.total, sent);
    EXPECT_EQ(f.violations, 0);
}

}  // namespace
}  // namespace meshy::chaos
