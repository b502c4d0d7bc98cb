// Churn: nodes killed with -9 and restarted around a stream between two stable nodes, and peers
// that connect and disconnect every 100 ms beside a stream of 100,000 messages. What a user cares
// about is asserted: nothing lost and in order (or every loss reported), and the stable nodes'
// descriptors and memory back where they were.
#include <arpa/inet.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <sys/socket.h>
#include <sys/un.h>

#include <algorithm>
#include <cstdio>
#include <cstdlib>
#include <string>
#include <thread>
#include <vector>

#include "chaos_fixture.hpp"

namespace meshy::chaos {
namespace {

using Clock = std::chrono::steady_clock;

// MESHY_CHAOS_SOAK_SECONDS overrides a soak's length (the issue asks 60-90 s).
int soak_seconds(int fallback) {
    if (const char* s = std::getenv("MESHY_CHAOS_SOAK_SECONDS")) {
        return std::max(10, std::atoi(s));
    }
    return fallback;
}

class SoakTest : public ChaosTest {
protected:
    /// 8 nodes: a stable sender and a stable listener streaming on "soak", six more listeners of
    /// which three are killed with -9 and restarted every 3 s for `seconds`.
    void soak(bool wait_mode, int seconds) {
        const std::string rate_flags_burst = "50";
        std::vector<std::string> mode;
        if (wait_mode) {
            mode.push_back("--outbox-wait");
        }
        Process* listener = nullptr;
        spawn_ready(listener, {"listen", "soak", "--count-only", "--report-every", "50", "--name", "stable-listener"},
                    "stable-listener");
        std::vector<Process*> churn(6, nullptr);
        auto start_churn = [&](std::size_t i) {
            return spawn_ready(
                churn[i],
                {"listen", "soak", "--count-only", "--report-every", "1000000", "--name", "churn" + std::to_string(i)},
                "churn" + std::to_string(i) + "@" + std::to_string(procs_.size()));
        };
        for (std::size_t i = 0; i < churn.size(); ++i) {
            start_churn(i);
        }
        std::vector<std::string> send_args{
            "send",          "soak", "0",      "--wait-listeners", "7",     "--burst", rate_flags_burst,
            "--interval-ms", "20",   "--name", "stable-sender",    "--log", "warn"};
        send_args.insert(send_args.end(), mode.begin(), mode.end());
        Process* sender = nullptr;
        spawn_ready(sender, send_args, "stable-sender");
        ASSERT_TRUE(sender->wait_for_line("LISTENERS 7", discovery_timeout)) << tail(*sender, 30);
        ASSERT_TRUE(listener->wait_for_line("COUNT ", discovery_timeout)) << tail(*listener, 30);

        // Baseline once everything is connected and streaming.
        std::this_thread::sleep_for(2s);  // warm-up period of the measurement, not a wait for an outcome
        const auto rss0_s = rss_kib(sender->pid()), rss0_l = rss_kib(listener->pid());
        const auto fd0_s = fd_count(sender->pid()), fd0_l = fd_count(listener->pid());

        // Kill -9 three of the six every 3 s (alternating halves) and restart them at once.
        const auto end = Clock::now() + std::chrono::seconds(seconds);
        int round = 0, kills = 0;
        while (Clock::now() < end) {
            const auto next = Clock::now() + 3s;
            for (std::size_t i = round % 2; i < churn.size(); i += 2) {
                churn[i]->send_signal(SIGKILL);
                churn[i]->wait_exit(exit_timeout);
                ++kills;
                start_churn(i);
            }
            ++round;
            std::this_thread::sleep_until(next);  // the churn period itself
        }
        // Every churned node back and known to the sender before the final measurement.
        EXPECT_TRUE(sender->wait_until(
            [](const std::vector<meshy::test::Line>& lines) {
                for (auto it = lines.rbegin(); it != lines.rend(); ++it) {
                    if (it->text.rfind("LISTENERS ", 0) == 0) {
                        return it->text.rfind("LISTENERS 7", 0) == 0;
                    }
                }
                return false;
            },
            discovery_timeout))
            << tail(*sender, 30);
        std::this_thread::sleep_for(3s);  // the same settling as the baseline had (reconnects, first sends)
        const auto rss1_s = rss_kib(sender->pid()), rss1_l = rss_kib(listener->pid());
        const auto fd1_s = fd_count(sender->pid()), fd1_l = fd_count(listener->pid());

        const std::int64_t sent = stop_sender(*sender);
        ASSERT_GT(sent, 0) << tail(*sender, 30);
        if (wait_mode) {
            EXPECT_TRUE(wait_count(*listener, sent, 30000ms)) << "stable listener short of " << sent;
        }
        const Final f = stop_listener(*listener);

        figure("seconds", std::to_string(seconds));
        figure("kills", std::to_string(kills));
        figure("sent", std::to_string(sent));
        figure("received", std::to_string(f.total));
        figure("missing", std::to_string(f.missing));
        figure("order_violations", std::to_string(f.violations));
        figure("sender_rss_kib", std::to_string(rss0_s) + "->" + std::to_string(rss1_s));
        figure("listener_rss_kib", std::to_string(rss0_l) + "->" + std::to_string(rss1_l));
        figure("sender_fds", std::to_string(fd0_s) + "->" + std::to_string(fd1_s));
        figure("listener_fds", std::to_string(fd0_l) + "->" + std::to_string(fd1_l));

        EXPECT_EQ(f.violations, 0) << "out of order at the stable listener";
        if (wait_mode) {
            EXPECT_EQ(f.total, sent) << "OutboxFull::wait: every message must reach the stable listener";
            EXPECT_EQ(f.missing, 0);
        } else {
            const std::int64_t lost = sent - f.total;
            const std::int64_t reported = reported_drops(*sender, "stable-listener");
            figure("lost", std::to_string(lost));
            figure("reported_drops", std::to_string(reported));
            // Drop-oldest may lose, never silently: every loss is in a drop warning.
            EXPECT_GE(reported, lost) << "messages lost without a drop warning";
        }
        auto within = [](double before, double after, double tolerance) {
            return after <= before * (1 + tolerance) && after >= before * (1 - tolerance);
        };
        EXPECT_TRUE(within(static_cast<double>(fd0_s), static_cast<double>(fd1_s), 0.10))
            << "sender fds " << fd0_s << " -> " << fd1_s;
        EXPECT_TRUE(within(static_cast<double>(fd0_l), static_cast<double>(fd1_l), 0.10))
            << "listener fds " << fd0_l << " -> " << fd1_l;
        EXPECT_LE(static_cast<double>(rss1_s), rss0_s * 1.10) << "sender RSS " << rss0_s << " -> " << rss1_s << " KiB";
        EXPECT_LE(static_cast<double>(rss1_l), rss0_l * 1.10)
            << "listener RSS " << rss0_l << " -> " << rss1_l << " KiB";
    }
};

TEST_F(SoakTest, WaitModeLosesNothingWhileNodesAreKilled) {
    soak(true, soak_seconds(60));
}

TEST_F(SoakTest, DropOldestReportsEveryLoss) {
    soak(false, soak_seconds(20) / 3 + 10);
}

// ---- intermittent links --------------------------------------------------------------------------

/// Connects to 127.0.0.1:port with a valid handshake of a made-up node, then closes: a peer that
/// comes and goes faster than discovery can announce one. @returns whether it connected.
bool flap_once(int port, const std::string& domain, int n) {
    const int fd = ::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    if (fd < 0) {
        return false;
    }
    sockaddr_in addr{};
    addr.sin_family = AF_INET;
    addr.sin_port = htons(static_cast<std::uint16_t>(port));
    addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    bool ok = ::connect(fd, reinterpret_cast<sockaddr*>(&addr), sizeof addr) == 0;
    if (ok) {
        char id[40];
        std::snprintf(id, sizeof id, "00000000-0000-4000-8000-%012d", n);
        const std::string hs = handshake(domain, id);
        ok = ::send(fd, hs.data(), hs.size(), MSG_NOSIGNAL) == static_cast<ssize_t>(hs.size());
    }
    ::close(fd);
    return ok;
}

TEST_F(ChaosTest, HundredThousandInOrderWhilePeersConnectAndDisconnect) {
    constexpr std::int64_t total = 100000;
    Process* listener = nullptr;
    spawn_ready(listener, {"listen", "flap", "--count-only", "--report-every", "1000", "--name", "stable-listener"},
                "stable-listener");
    Process* sender = nullptr;
    const std::string ready =
        spawn_ready(sender,
                    {"send", "flap", std::to_string(total), "--wait-listeners", "1", "--burst", "100", "--interval-ms",
                     "20", "--outbox-wait", "--name", "stable-sender", "--log", "warn"},
                    "stable-sender");
    const int sender_port = std::stoi(field(ready, "tcp"));

    // Two peers, each connecting and disconnecting every 100 ms until the stream is over: a real
    // node (started, killed with -9 100 ms after the sender lists it) and a raw handshake.
    int node_flaps = 0, raw_flaps = 0;
    const auto deadline = Clock::now() + 180s;
    Process* flapper = nullptr;
    std::size_t flapper_seen_from = 0;
    Clock::time_point flapper_started{};
    while (sender->running() && Clock::now() < deadline) {
        const auto next = Clock::now() + 100ms;
        if (flap_once(sender_port, domain_, raw_flaps)) {
            ++raw_flaps;
        }
        if (flapper == nullptr) {
            flapper_seen_from = sender->line_count();
            flapper_started = Clock::now();
            flapper = &spawn({"listen", "flap", "--count-only", "--report-every", "1000000", "--name", "flapper"},
                             "flapper" + std::to_string(node_flaps));
        } else if (Clock::now() - flapper_started > 3s ||
                   sender->wait_for_match([](const std::string& l) { return l.rfind("LISTENERS 2", 0) == 0; }, 0ms,
                                          flapper_seen_from)) {
            flapper->send_signal(SIGKILL);
            flapper->wait_exit(exit_timeout);
            flapper = nullptr;
            ++node_flaps;
        }
        std::this_thread::sleep_until(next);  // the flapping period
    }
    ASSERT_TRUE(sender->wait_for_line("SENT ", 1ms)) << "the sender did not finish in time\n" << tail(*sender, 30);
    EXPECT_TRUE(wait_count(*listener, total, 30000ms)) << tail(*listener, 10);
    const Final f = stop_listener(*listener);
    figure("sent", std::to_string(total));
    figure("received", std::to_string(f.total));
    figure("order_violations", std::to_string(f.violations));
    figure("node_flaps", std::to_string(node_flaps));
    figure("raw_flaps", std::to_string(raw_flaps));
    EXPECT_EQ(f.total, total);
    EXPECT_EQ(f.missing, 0);
    EXPECT_EQ(f.violations, 0);
    // At 5,000 messages a second the stream lasts about 20 s: some 200 raw flaps and several node flaps.
    EXPECT_GT(raw_flaps, 50) << "the stream ended before the peers flapped much";
}

}  // namespace
}  // namespace meshy::chaos
