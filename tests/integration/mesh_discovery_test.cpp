// Discovery across real processes: an avahi-daemon restart, a hundred idle nodes.
#include "mesh_test_support.hpp"

namespace meshy::test {

// ---- avahi-daemon restart ----------------------------------------------------------------------

TEST_P(AvahiDaemonTest, NewNodeIsDiscoveredAfterDaemonRestart) {
    const char* ctl = std::getenv("MESHY_TEST_AVAHI_CTL");
    if (ctl == nullptr || *ctl == '\0') {
        GTEST_SKIP() << "MESHY_TEST_AVAHI_CTL is not set (scripts/test.sh sets it when it runs a private "
                        "avahi-daemon that may be restarted)";
    }
    // Nodes from before the restart: a listener, and a sender that reports who listens.
    auto [old_listener, old_ready] = spawn_ready({"listen", "after", "--name", "old-listener"}, "old-listener");
    Process& old_sender = spawn({"send", "after", "0", "--interval-ms", "50", "--text", "old"}, "old-sender");
    expect_line(*old_listener, "RECV after ", startup_timeout + discovery_timeout());

    const auto restart = run_command({ctl, "restart"}, Millis(30000));
    ASSERT_TRUE(restart.status && restart.status->success())
        << ctl << " restart failed (" << (restart.status ? restart.status->describe() : "hung") << ")";
    const auto t0 = Clock::now();

    // A node started after the restart finds the old one, and the old one finds it.
    const std::size_t mark = old_sender.line_count();
    auto [new_listener, new_ready] = spawn_ready({"listen", "after", "--name", "new-listener"}, "new-listener");
    Process& new_sender = spawn({"send", "after", "0", "--interval-ms", "50", "--text", "new"}, "new-sender");
    expect_line(*new_listener, "RECV after ", Millis(10000));
    expect_line(old_sender, lists_connected(field(new_ready, "id")), "LISTENERS with new-listener", Millis(10000),
                mark);
    expect_line(
        *old_listener, [](const std::string& l) { return l.rfind("RECV after ", 0) == 0 && l.ends_with(" new"); },
        "RECV from new-sender", Millis(10000));
    std::cout << "[ info ] discovery across the daemon restart took " << seconds_since(t0) << " s\n";
    EXPECT_TRUE(new_sender.running());
}

// Issue 20: links are made only for what is sent, so an idle mesh costs little whatever its size.
// Bounds are generous (the targets are 5 % of a core for 200 nodes and 10 fds a node beyond links;
// bench/idle_mesh.sh measures them); what is asserted is that nothing grows with the mesh.
TEST_P(MeshTest, HundredIdleNodesConvergeAndStayCheap) {
    // Under AddressSanitizer a node's start and its leak check at exit cost about a second of CPU
    // each: 30 nodes there keep the suite's time in bounds, and the behaviour checked is the same.
    const int count = address_sanitizer ? 30 : 100;
    std::vector<Process*> nodes;
    for (int i = 0; i < count; ++i) {
        nodes.push_back(&spawn({"listen", "idle/" + std::to_string(i), "--count-only"}, "idle-" + std::to_string(i)));
    }
    for (auto* node : nodes) {
        expect_line(*node, "READY ", startup_timeout);
    }
    // One more node sees all of them, with their topics.
    auto& observer =
        spawn({"nodes", "--expect", std::to_string(count), "--with-topics", "--wait-timeout-ms", "60000"}, "observer");
    const auto status = observer.wait_exit(Millis(90000));
    ASSERT_TRUE(status && status->success()) << observer.dump();
    EXPECT_EQ(observer.count_lines("topics=idle/"), static_cast<std::size_t>(count)) << observer.dump();
    // Idle: CPU over a window and descriptors (no links: nothing was sent).
    double before = 0;
    for (auto* node : nodes) {
        before += cpu_seconds_of(node->pid());
    }
    const auto window_start = std::chrono::steady_clock::now();
    std::this_thread::sleep_for(Millis(3000));  // the measurement window, not a wait for a condition
    const double window = std::chrono::duration<double>(std::chrono::steady_clock::now() - window_start).count();
    double after = 0;
    std::size_t most_fds = 0;
    for (auto* node : nodes) {
        after += cpu_seconds_of(node->pid());
        most_fds = std::max(most_fds, fds_of(node->pid()));
        EXPECT_TRUE(node->running()) << node->dump();
    }
    const double cores = (after - before) / window;
    std::printf("%d idle nodes (%s): %.3f of a core in all, at most %zu fds a node\n", count, backend_name(GetParam()),
                cores, most_fds);
    EXPECT_LT(cores, 0.5);
    EXPECT_LE(most_fds, 32u);
    // All stop at once: one deadline for all of them, not TearDown's per process.
    for (auto* node : nodes) {
        node->send_signal(SIGINT);
    }
    const auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(120);
    for (auto* node : nodes) {
        const auto left = std::chrono::duration_cast<Millis>(deadline - std::chrono::steady_clock::now());
        const auto exit = node->wait_exit(std::max(left, Millis(0)));
        EXPECT_TRUE(exit && exit->success()) << node->label() << ": " << (exit ? exit->describe() : "hung");
    }
}

INSTANTIATE_TEST_SUITE_P(Discovery, AvahiDaemonTest, testing::Values(Backend::avahi), param_name);

}  // namespace meshy::test
