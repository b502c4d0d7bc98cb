// Node lifecycle and topology in process: redials, stop, listings, options.
#include "node_test_support.hpp"

using namespace meshy::test;

// A peer whose advert offers nothing to connect to (Unix sockets only, and its socket file gone,
// as after a crash) is redialled with back-off; the node must keep working meanwhile. It used to
// deadlock on its own lock at the first redial.
TEST_F(NodeTest, UnreachablePeerIsRedialledWithoutBlockingTheNode) {
    auto unix_only = [&](std::string name) {
        auto o = options(std::move(name));
        o.allow_tcp = false;
        return o;
    };
    Node gone(unix_only("gone"));
    for (const auto& entry : std::filesystem::directory_iterator(dir_)) {
        if (entry.path().extension() == ".sock") {
            std::filesystem::remove(entry.path());
        }
    }
    Node sut(unix_only("sut"));
    // Several redials (100, 200, 400 ms) while the node answers: each query takes the node's lock.
    const auto until = std::chrono::steady_clock::now() + 900ms;
    auto prober = std::async(std::launch::async, [&] {
        while (std::chrono::steady_clock::now() < until) {
            (void)sut.nodes();
        }
    });
    if (prober.wait_until(until + 3s) != std::future_status::ready) {
        ADD_FAILURE() << "the node's lock is held for good";
        std::abort();  // a deadlocked node cannot be destroyed
    }
    sut.listen_blocking("still-works", [](int) {});
    EXPECT_TRUE(sut.topic_has_listeners("still-works"));
}

TEST_F(NodeTest, StopWithdrawsFromPeers) {
    Node watcher(options("watcher"));
    auto leaving = std::make_unique<Node>(options("leaving"));
    leaving->listen_blocking("t", [](int) {});
    leaving->add_service_blocking("s", [] { return 1; });
    ASSERT_TRUE(eventually([&] { return watcher.topic_has_listeners("t") && watcher.service_has_providers("s"); }));
    const auto before = std::chrono::steady_clock::now();
    leaving->stop();
    ASSERT_TRUE(eventually([&] { return !watcher.topic_has_listeners("t"); }, 3s));
    EXPECT_LT(std::chrono::steady_clock::now() - before, 1500ms);
    EXPECT_FALSE(watcher.service_has_providers("s"));
    leaving.reset();
}

TEST_F(NodeTest, StopListeningUpdatesPeers) {
    Node listener(options("listener"));
    Node sender(options("sender"));
    listener.listen_blocking("t", [](int) {});
    ASSERT_TRUE(eventually([&] { return sender.topic_has_listeners("t"); }));
    EXPECT_TRUE(listener.stop_listening("t"));
    EXPECT_FALSE(listener.stop_listening("t"));
    EXPECT_TRUE(eventually([&] { return !sender.topic_has_listeners("t"); }));
}

TEST_F(NodeTest, DependsOnListenerFollowsTheDownstreamTopic) {
    Node relay(options("relay"));
    Node consumer(options("consumer"));
    relay.add_service_blocking("noop", [] {});
    await(relay, relay.depends_on_listener("processed", "raw", [](int) {}));
    EXPECT_FALSE(relay.topic_has_listeners("raw"));
    consumer.listen_blocking("processed", [](int) {});
    EXPECT_TRUE(eventually([&] { return relay.topic_has_listeners("raw"); }));
    consumer.stop_listening("processed");
    EXPECT_TRUE(eventually([&] { return !relay.topic_has_listeners("raw"); }));
}

TEST_F(NodeTest, TopologyListsNodesTopicsAndServices) {
    Node a(options("alpha"));
    Node b(options("beta"));
    a.listen_blocking("t1", [](int) {});
    b.add_service_blocking("s1", [] { return 0; });
    ASSERT_TRUE(eventually([&] { return a.service_has_providers("s1") && b.topic_has_listeners("t1"); }));
    EXPECT_EQ(a.call_blocking<int>("s1"), 0);  // links are made when needed: this call makes a's to b
    const auto nodes = a.nodes();
    ASSERT_EQ(nodes.size(), 2u);
    EXPECT_EQ(nodes[0].name, "alpha");
    EXPECT_TRUE(nodes[0].is_self);
    EXPECT_EQ(nodes[0].topics, std::vector<std::string>{"t1"});
    EXPECT_EQ(nodes[1].name, "beta");
    EXPECT_EQ(nodes[1].services, std::vector<std::string>{"s1"});
    // One host: the Unix link moves to shared memory (on by default) once both ends set it up, or
    // stays on the socket where shared memory cannot be set up (the unit tests also run under an
    // emulator; the integration tests require shm).
    eventually([&] { return a.nodes().at(1).transport == "shm"; });
    const auto transport = a.nodes().at(1).transport;
    EXPECT_TRUE(transport == "shm" || transport == "unix") << transport;
}

TEST_F(NodeTest, BadOptionsAreRefused) {
    auto o = options("x");
    o.allow_tcp = false;
    o.allow_unix = false;
    EXPECT_THROW(Node{o}, Error);
    EXPECT_THROW(Node{options("")}, Error);
    auto huge_buffers = options("x");
    huge_buffers.socket_buffer_size = std::size_t{3} << 30;
    EXPECT_THROW(Node{huge_buffers}, Error);
}

TEST_F(NodeTest, DomainComesFromTheEnvironment) {
    ::setenv("MESHY_DOMAIN_ID", "from-env", 1);
    NodeOptions o{.name = "env", .listen_host = "127.0.0.1"};
    Node sut(o);
    EXPECT_EQ(sut.domain_id(), "from-env");
    ::unsetenv("MESHY_DOMAIN_ID");
    Node other(NodeOptions{.name = "default", .listen_host = "127.0.0.1"});
    EXPECT_EQ(other.domain_id(), "default");
}
