// A mesh against strangers: other domains, malformed input, forged frames naming another node.
#include "mesh_test_support.hpp"

namespace meshy::test {

TEST_P(MeshTest, DomainsDoNotSeeEachOther) {
    const std::string a = domain_ + "-a", b = domain_ + "-b";
    auto [la, la_ready] = spawn_ready({"listen", "news", "--name", "la"}, "listener-a", a);
    auto [lb, lb_ready] = spawn_ready({"listen", "news", "--name", "lb"}, "listener-b", b);
    Process& sa = spawn({"send", "news", "20", "--text", "from-a", "--stay", "--name", "sa"}, "sender-a", a);
    Process& sb = spawn({"send", "news", "20", "--text", "from-b", "--stay", "--name", "sb"}, "sender-b", b);
    expect_line(sa, "SENT 20", startup_timeout + discovery_timeout());
    expect_line(sb, "SENT 20", startup_timeout + discovery_timeout());
    EXPECT_TRUE(la->wait_until([](const auto& l) { return has_lines(l, "RECV news ", 20); }, delivery_timeout));
    EXPECT_TRUE(lb->wait_until([](const auto& l) { return has_lines(l, "RECV news ", 20); }, delivery_timeout));

    // A third node in domain a, once it knows both nodes of a, lists nobody else.
    Process& watcher = spawn({"nodes", "--expect", "2"}, "nodes-a", a);
    EXPECT_TRUE(expect_exit(watcher, startup_timeout + discovery_timeout()).success());
    expect_line(watcher, "NODES_END count=3", Millis(0));
    EXPECT_EQ(watcher.count_lines(field(lb_ready, "id")), 0u);
    EXPECT_EQ(watcher.count_lines("name=sb"), 0u);

    EXPECT_EQ(la->count_lines("from-b"), 0u);
    EXPECT_EQ(lb->count_lines("from-a"), 0u);
    EXPECT_EQ(la->count_lines("RECV news "), 20u);
    EXPECT_EQ(lb->count_lines("RECV news "), 20u);
    // Each sender only ever saw its own domain's listener.
    EXPECT_EQ(sa.count_lines(field(lb_ready, "id")), 0u);
    EXPECT_EQ(sb.count_lines(field(la_ready, "id")), 0u);
}

TEST_P(MeshTest, MalformedInputIsDroppedAndNodeKeepsServing) {
    auto [listener, ready] = spawn_ready({"listen", "robust"}, "listener");
    const int port = std::stoi(field(ready, "tcp"));
    ASSERT_GT(port, 0);

    struct Case {
        std::string what;
        std::string bytes;
        std::vector<std::string> logged;  // substrings of the node's warning
    };
    const std::vector<Case> cases{
        {"garbage bytes",
         std::string("GET / HTTP/1.1\r\n\r\n\x00\xff\x13", 21),
         {"malformed handshake", "wrong magic"}},
        {"a wrong magic", handshake("MSHX", domain_), {"malformed handshake", "wrong magic"}},
        {"an oversize handshake length",
         std::string("MSHY") + u16le(1) + u16le(0xffff),
         {"malformed handshake", "handshake too long"}},
        {"an oversize frame length after a valid handshake",
         handshake("MSHY", domain_) + u32le(0xfffffff0u) + std::string(1, '\x02'),
         {"malformed frame", "exceeds the maximum"}},
        {"an unknown frame type after a valid handshake",
         handshake("MSHY", domain_) + u32le(1) + std::string(1, '\x7f'),
         {"malformed frame", "unknown frame type"}},
    };
    for (const auto& c : cases) {
        SCOPED_TRACE(c.what);
        const std::size_t mark = listener->line_count();
        RawClient client(port);
        client.send(c.bytes);
        EXPECT_TRUE(client.wait_closed(Millis(3000))) << "the node kept a connection that sent " << c.what;
        std::string wanted;
        for (const auto& part : c.logged) {
            wanted += (wanted.empty() ? "\"" : " ... \"") + part + "\"";
        }
        // The parts, in this order, in one line.
        const auto logged = [&](const std::string& l) {
            std::size_t at = 0;
            for (const auto& part : c.logged) {
                if ((at = l.find(part, at)) == std::string::npos) {
                    return false;
                }
            }
            return true;
        };
        const auto line = listener->wait_for_match(logged, Millis(3000), mark);
        EXPECT_TRUE(line.has_value()) << "no warning with " << wanted << " on the node's stderr";
        if (line) {
            EXPECT_NE(line->find("warn"), std::string::npos) << *line;
        }
        ASSERT_TRUE(listener->running()) << "the node died on " << c.what;
    }
    {
        // A peer that connects and leaves without a word is not worth a crash either.
        RawClient silent(port);
    }

    // The node still serves a well-behaved peer.
    spawn({"send", "robust", "3", "--stay"}, "sender");
    for (int seq = 0; seq < 3; ++seq) {
        expect_line(*listener, "RECV robust " + std::to_string(seq) + " msg", delivery_timeout);
    }
}

TEST_P(MeshTest, ForgedByeAndInfoFromAStrangerLeaveTheStreamIntact) {
    auto [listener, listener_ready] = spawn_ready({"listen", "stream", "--name", "listener"}, "listener");
    Process& sender = spawn({"send", "stream", "0", "--interval-ms", "5", "--name", "sender"}, "sender");
    const std::string sender_id = field(expect_line(sender, "READY ", startup_timeout), "id");
    const std::string listener_id = field(listener_ready, "id");
    const int listener_port = std::stoi(field(listener_ready, "tcp"));
    ASSERT_TRUE(
        eventually([&] { return received(*listener, "stream").size() >= 20; }, discovery_timeout() + delivery_timeout));

    // A stranger claims the sender's id towards the listener: an Info with no topics, then a goodbye.
    const std::string empty_info =
        u32le(1 + 4 + 4 + 4 + 4) + std::string(1, '\x01') + u32le(99) + u32le(0) + u32le(0) + u32le(0);
    const std::string bye = u32le(1) + std::string(1, '\x06');
    {
        RawClient forger(listener_port);
        forger.send(handshake("MSHY", domain_, sender_id) + empty_info + bye);
        EXPECT_TRUE(forger.wait_closed(Millis(3000)));
    }
    // And towards the sender, claiming the listener's id (the sender must not stop sending to it).
    if (const int sender_port = std::stoi(field(expect_line(sender, "READY ", Millis(0)), "tcp")); sender_port > 0) {
        RawClient forger(sender_port);
        forger.send(handshake("MSHY", domain_, listener_id) + empty_info + bye);
        EXPECT_TRUE(forger.wait_closed(Millis(3000)));
    }
    // Over Unix, a connection from another process than the advertised one is refused outright.
    if (const auto path = field(listener_ready, "unix"); !path.empty() && path != "-") {
        const std::size_t mark = listener->line_count();
        RawUnixClient forger(path);
        forger.send(handshake("MSHY", domain_, sender_id) + bye);
        EXPECT_TRUE(forger.wait_closed(Millis(3000)));
        EXPECT_TRUE(listener->wait_for_line("claims the id", Millis(3000), mark).has_value());
    }
    const std::size_t before = received(*listener, "stream").size();
    ASSERT_TRUE(eventually([&] { return received(*listener, "stream").size() >= before + 100; }, Millis(10000)))
        << "the stream stopped after the forged frames";
    const auto seqs = received(*listener, "stream");
    for (std::size_t i = 1; i < seqs.size(); ++i) {
        ASSERT_EQ(seqs[i], seqs[i - 1] + 1) << "lost or reordered at " << i;
    }
}

}  // namespace meshy::test
