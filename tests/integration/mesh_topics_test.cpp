// Topics across real processes: every transport, load sharing, kills and restarts, order, latched values.
#include "mesh_test_support.hpp"

namespace meshy::test {

// ---- topics ------------------------------------------------------------------------------------

TEST_P(MeshTest, TopicRoundTripOverTcp) {
    // Without Unix sockets on either side, the only way is TCP on 127.0.0.1.
    round_trip({"--no-unix"}, "tcp");
}

TEST_P(MeshTest, TopicRoundTripOverUnix) {
    // Both transports enabled, shared memory off: nodes on one host prefer the Unix socket.
    round_trip({"--no-shm"}, "unix");
}

TEST_P(MeshTest, TopicRoundTripOverSharedMemory) {
    // The defaults: nodes on one host move their Unix link to shared memory.
    round_trip({}, "shm");
}

TEST_P(MeshTest, SameNameListenersShareMessagesEvenly) {
    // rosy's round-robin: one message per name group, rotating among the group's nodes.
    std::vector<Process*> workers;
    for (int i = 0; i < 3; ++i) {
        workers.push_back(spawn_ready({"listen", "work", "--name", "worker"}, "worker" + std::to_string(i)).first);
    }
    Process& sender = spawn({"send", "work", "300", "--wait-listeners", "3", "--name", "boss"}, "sender");
    const auto status = expect_exit(sender, startup_timeout + discovery_timeout() + delivery_timeout);
    EXPECT_TRUE(status.success()) << status.describe();
    expect_line(sender, "SENT 300", Millis(0));

    auto received = [&] {
        std::size_t total = 0;
        for (auto* w : workers) {
            total += count_prefix(w->lines(), "RECV work ");
        }
        return total;
    };
    eventually([&] { return received() >= 300; }, delivery_timeout);
    EXPECT_EQ(received(), 300u) << "messages lost (or duplicated) on the way to the workers";
    for (auto* w : workers) {
        const auto n = count_prefix(w->lines(), "RECV work ");
        EXPECT_GE(n, 99u) << w->label();
        EXPECT_LE(n, 101u) << w->label();
    }
}

TEST_P(MeshTest, KilledListenerLeavesTopologyAndOthersKeepReceiving) {
    auto [doomed, doomed_ready] = spawn_ready({"listen", "beat", "--name", "doomed"}, "doomed");
    auto [survivor, survivor_ready] = spawn_ready({"listen", "beat", "--name", "survivor"}, "survivor");
    const std::string survivor_id = field(survivor_ready, "id");
    Process& sender = spawn({"send", "beat", "0", "--interval-ms", "20", "--wait-listeners", "2"}, "sender");
    const Millis first_message = startup_timeout + discovery_timeout();
    expect_line(*doomed, "RECV beat ", first_message);
    expect_line(*survivor, "RECV beat ", first_message);

    const std::size_t sender_mark = sender.line_count();
    const auto t0 = Clock::now();
    doomed->send_signal(SIGKILL);
    killed(*doomed);
    expect_exit(*doomed, exit_timeout);  // reaped: a zombie would still look alive to a pid probe

    // Gone from the sender's topology within a few seconds (the peer timeout is 2.5 s).
    expect_line(
        sender, [&](const std::string& l) { return l.rfind("LISTENERS 1 " + survivor_id + ":", 0) == 0; },
        "LISTENERS 1 <survivor>", Millis(6000), sender_mark);
    std::cout << "[ info ] killed listener left the sender's topology after " << seconds_since(t0) << " s\n";

    // And the sender keeps serving the survivor.
    const std::size_t survivor_mark = survivor->line_count();
    EXPECT_TRUE(survivor->wait_until(
        [&](const std::vector<Line>& l) {
            std::size_t n = 0;
            for (std::size_t i = survivor_mark; i < l.size(); ++i) {
                n += l[i].text.rfind("RECV beat ", 0) == 0 ? 1 : 0;
            }
            return n >= 10;
        },
        delivery_timeout))
        << "the survivor stopped receiving after the other listener died";
    EXPECT_TRUE(sender.running()) << "the sender died with its listener";
}

TEST_P(MeshTest, RestartedListenerReceivesAgain) {
    auto [first, first_ready] = spawn_ready({"listen", "again", "--name", "phoenix"}, "listener#1");
    Process& sender = spawn({"send", "again", "0", "--interval-ms", "20"}, "sender");
    expect_line(*first, "RECV again ", startup_timeout + discovery_timeout());

    first->send_signal(SIGKILL);
    killed(*first);
    expect_exit(*first, exit_timeout);

    // Same name, new process (so a new node id): found, connected, and fed again.
    const std::size_t sender_mark = sender.line_count();
    auto [second, second_ready] = spawn_ready({"listen", "again", "--name", "phoenix"}, "listener#2");
    const std::string second_id = field(second_ready, "id");
    expect_line(*second, "RECV again ", discovery_timeout() + delivery_timeout);
    // The sender's topology report polls every 10 ms: it may come just after the first message.
    expect_line(sender, lists_connected(second_id), "LISTENERS with listener#2", delivery_timeout, sender_mark);
    EXPECT_TRUE(sender.running());
}

TEST_P(MeshTest, TenThousandMessagesArriveInOrder) {
    auto [listener, ready] = spawn_ready({"listen", "stream", "--count-only", "--report-every", "1000"}, "listener");
    // Paced slightly (at most 100 messages per millisecond): an unpaced burst of 10,000 from
    // send_blocking() outruns the writer and overflows the sender's outbox (1024 messages per peer,
    // drop-oldest), which loses most of the burst by design.
    Process& sender = spawn({"send", "stream", "10000", "--burst", "100", "--interval-ms", "1"}, "sender");
    const auto status = expect_exit(sender, startup_timeout + discovery_timeout() + Millis(10000));
    EXPECT_TRUE(status.success()) << status.describe();
    const bool all = listener->wait_for_line("COUNT 10000", Millis(10000)).has_value();
    listener->send_signal(SIGINT);
    expect_exit(*listener, exit_timeout);
    const std::string final_line = expect_line(*listener, "FINAL ", Millis(0));
    EXPECT_TRUE(all) << "not every message arrived: " << final_line << " (see the sender's warnings below)";
    EXPECT_EQ(field(final_line, "total"), "10000");
    EXPECT_EQ(field(final_line, "violations"), "0") << "messages from one sender arrived out of order";
    EXPECT_EQ(field(final_line, "missing"), "0");
    EXPECT_EQ(field(final_line, "senders"), "1");
    EXPECT_EQ(listener->count_lines("ORDER_OK 10000"), 1u);
}

// Stopping a node right after a burst must not lose the burst's tail: the goodbye frame goes after
// the queued messages. (Before c23e353 it could overtake them: about 1 sender in 8 lost its tail.)
TEST_P(MeshTest, MessagesQueuedBeforeStopAreDelivered) {
    auto [listener, ready] = spawn_ready({"listen", "tail", "--count-only", "--report-every", "1000"}, "listener");
    for (int round = 1; round <= 5; ++round) {
        SCOPED_TRACE("sender #" + std::to_string(round));
        // 1000 messages fit the outbox (1024): none may be dropped; the sender stops right after.
        Process& sender = spawn({"send", "tail", "1000"}, "sender#" + std::to_string(round));
        EXPECT_TRUE(expect_exit(sender, startup_timeout + discovery_timeout()).success());
        const std::string count = "COUNT " + std::to_string(round * 1000);
        ASSERT_TRUE(listener->wait_for_line(count, delivery_timeout).has_value())
            << "a sender's last messages were lost when it stopped: no \"" << count << "\"";
    }
}

TEST_P(MeshTest, LatchedValueReachesALateListenerFirstAndOnce) {
    Process& sender = spawn({"send", "latest", "3", "--latched", "--wait-listeners", "0", "--stay"}, "sender");
    expect_line(sender, "SENT 3", startup_timeout);
    auto [first, first_ready] = spawn_ready({"listen", "latest", "--name", "first"}, "first");
    expect_line(*first, "RECV latest 2 msg", discovery_timeout() + delivery_timeout);
    // A second late listener changes the mesh: the first must not get the value again.
    auto [second, second_ready] = spawn_ready({"listen", "latest", "--name", "second"}, "second");
    expect_line(*second, "RECV latest 2 msg", discovery_timeout() + delivery_timeout);
    EXPECT_EQ(received(*first, "latest"), std::vector<std::int64_t>{2});
    EXPECT_EQ(received(*second, "latest"), std::vector<std::int64_t>{2});
}

INSTANTIATE_TEST_SUITE_P(Discovery, MeshTest, testing::Values(Backend::avahi, Backend::local), param_name);

}  // namespace meshy::test
