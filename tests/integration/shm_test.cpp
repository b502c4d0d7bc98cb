// Shared-memory links between real processes (docs/shm.md): this binary is both the test and, with
// --role, the nodes it starts (a sender, a listener, a service provider, a caller), so that the
// payloads can be checked byte for byte. Local discovery in a private directory and domain; every
// node has NodeOptions::allow_shm set through MESHY_SHM.
#include <gtest/gtest.h>
#include <signal.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <cstdint>
#include <cstdio>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <map>
#include <meshy/meshy.hpp>
#include <optional>
#include <string>
#include <thread>
#include <vector>

#include "process.hpp"
#include "role_support.hpp"

namespace meshy::test {
namespace {

namespace fs = std::filesystem;
using namespace std::chrono_literals;

// ---- the nodes (--role) ---------------------------------------------------------------------------

/// Payload `seq` of `size` bytes: the sequence number, then bytes that depend on both.
std::vector<std::byte> payload_of(std::uint64_t seq, std::size_t size) {
    std::vector<std::byte> p(std::max<std::size_t>(size, 8));
    std::memcpy(p.data(), &seq, 8);
    for (std::size_t i = 8; i < p.size(); ++i) {
        p[i] = std::byte(static_cast<unsigned char>(seq * 131 + i * 7));
    }
    return p;
}

bool payload_intact(std::span<const std::byte> p, std::uint64_t& seq) {
    if (p.size() < 8) {
        return false;
    }
    std::memcpy(&seq, p.data(), 8);
    for (std::size_t i = 8; i < p.size(); ++i) {
        if (p[i] != std::byte(static_cast<unsigned char>(seq * 131 + i * 7))) {
            return false;
        }
    }
    return true;
}

/// The transport to the first peer this node sees ("" while none).
std::string peer_transport(const Node& node) {
    for (const auto& n : node.nodes()) {
        if (!n.is_self && !n.transport.empty()) {
            return n.transport;
        }
    }
    return {};
}

NodeOptions options_from(const std::vector<std::string>& args) {
    NodeOptions o;
    o.name = arg(args, "--name", "shm-node");
    o.shm_ring_bytes = std::stoull(arg(args, "--ring", std::to_string(4u << 20)));
    o.outbox_full = arg(args, "--outbox", "drop") == "wait" ? OutboxFull::wait : OutboxFull::drop_oldest;
    o.outbox_capacity = std::stoull(arg(args, "--capacity", "1024"));
    return o;
}

/// listen TOPIC [--expect-bytes N] [--slow-ms MS] [--say-from SEQ]: checks every payload and the order; says
/// "LINK <transport>" at the first message, "GOT <count> <bytes>" now and then, and
/// "DONE <count> <bytes>" once N bytes arrived (or on SIGTERM).
int role_listen(const std::vector<std::string>& args) {
    const std::string topic = args.at(1);
    const std::uint64_t expect = std::stoull(arg(args, "--expect-bytes", "0"));
    const int slow_ms = std::stoi(arg(args, "--slow-ms", "0"));
    const std::uint64_t say_from = std::stoull(arg(args, "--say-from", "18446744073709551615"));
    std::atomic<std::uint64_t> count{0}, bytes{0}, last_seq{0}, corrupt{0}, disorder{0};
    std::atomic<bool> done{false};
    std::map<std::string, std::uint64_t, std::less<>> last;  // per sender (listener thread only)
    std::string link;                                        // likewise
    Node node(options_from(args));                           // after what its listener uses
    node.listen_raw(topic, [&](const RawMessage& m) {
        std::uint64_t seq = 0;
        if (!payload_intact(m.payload, seq)) {
            ++corrupt;
            say("CORRUPT size=" + std::to_string(m.payload.size()));
        }
        auto [it, fresh] = last.try_emplace(std::string(m.sender_id), seq);
        if (!fresh) {
            if (seq <= it->second) {
                ++disorder;
                say("DISORDER " + std::to_string(seq) + " after " + std::to_string(it->second));
            }
            it->second = seq;
        }
        // The link starts on the Unix socket and moves to shared memory: say each change.
        if (fresh) {
            link.clear();  // a new sender: say its link
        }
        if (fresh || count % 8 == 0) {
            if (auto now = peer_transport(node); now != link) {
                link = now;
                say("LINK " + link);
            }
        }
        ++count;
        bytes += m.payload.size();
        last_seq = seq;
        if (seq >= say_from) {
            say("SEQ " + std::to_string(seq));
        }
        if (count % 64 == 0) {
            say("GOT " + std::to_string(count.load()) + " " + std::to_string(bytes.load()) + " last " +
                std::to_string(seq));
        }
        if (slow_ms > 0) {
            std::this_thread::sleep_for(std::chrono::milliseconds(slow_ms));  // a slow consumer, on purpose
        }
        if (expect != 0 && bytes >= expect && !done.exchange(true)) {
            say("DONE " + std::to_string(count.load()) + " " + std::to_string(bytes.load()) + " corrupt " +
                std::to_string(corrupt.load()) + " disorder " + std::to_string(disorder.load()));
        }
    });
    say("READY " + std::to_string(::getpid()));
    wait_for_stop();
    node.stop();  // no callback runs after this
    say("FINAL " + std::to_string(count.load()) + " " + std::to_string(bytes.load()) + " last " +
        std::to_string(last_seq.load()) + " corrupt " + std::to_string(corrupt.load()) + " disorder " +
        std::to_string(disorder.load()));
    return 0;
}

/// send TOPIC --sizes A,B,... [--count N] [--interval-us U] [--tail N]: waits for a listener, then
/// sends N messages (0: until killed) whose sizes cycle through the list, then `tail` more 10 ms
/// apart; says "LINK <transport>" once the first went out and "SENT <count>" at the end.
int role_send(const std::vector<std::string>& args) {
    Node node(options_from(args));
    const std::string topic = args.at(1);
    std::vector<std::size_t> sizes;
    {
        std::string list = arg(args, "--sizes", "1024");
        for (std::size_t at = 0; at <= list.size();) {
            const auto comma = std::min(list.find(',', at), list.size());
            sizes.push_back(std::stoull(list.substr(at, comma - at)));
            at = comma + 1;
        }
    }
    const std::uint64_t count = std::stoull(arg(args, "--count", "0"));
    const auto interval = std::chrono::microseconds(std::stoll(arg(args, "--interval-us", "0")));
    const std::uint64_t tail = std::stoull(arg(args, "--tail", "0"));
    node.wait_for_listener_blocking(topic, std::chrono::seconds(20));
    std::uint64_t seq = 0;
    auto send_one = [&] {
        const auto p = payload_of(seq, sizes[seq % sizes.size()]);
        node.send_raw(topic, CodecId::raw, p);
        ++seq;
    };
    std::string link;
    const auto until = std::chrono::steady_clock::now() + std::chrono::seconds(60);
    while ((count == 0 || seq < count) && std::chrono::steady_clock::now() < until) {
        send_one();
        if (link.empty() || link == "unix") {
            if (auto now = peer_transport(node); now != link) {
                link = now;
                say("LINK " + link);
            }
        }
        if (interval.count() > 0) {
            std::this_thread::sleep_for(interval);  // a paced stream, not a wait for a condition
        }
    }
    for (std::uint64_t i = 0; i < tail; ++i) {
        std::this_thread::sleep_for(10ms);  // the tail is paced too: messages a while apart, not a wait
        send_one();
    }
    say("SENT " + std::to_string(seq) + " last " + std::to_string(seq - 1));
    wait_for_stop();
    return 0;
}

/// provide: a service "echo" that returns its request.
int role_provide(const std::vector<std::string>& args) {
    Node node(options_from(args));
    node.add_service_raw("echo", [](const RawMessage& m) {
        RawPayload reply{m.codec, {}};
        reply.bytes.append(m.payload.data(), m.payload.size());
        return reply;
    });
    say("READY " + std::to_string(::getpid()));
    wait_for_stop();
    return 0;
}

/// call --sizes A,B: calls "echo" with payloads of these sizes (each 20 times), checks each reply.
int role_call(const std::vector<std::string>& args) {
    Node node(options_from(args));
    node.wait_for_service_provider_blocking("echo", std::chrono::seconds(20));
    std::string list = arg(args, "--sizes", "1024");
    std::uint64_t seq = 0;
    for (std::size_t at = 0; at <= list.size();) {
        const auto comma = std::min(list.find(',', at), list.size());
        const std::size_t size = std::stoull(list.substr(at, comma - at));
        at = comma + 1;
        for (int i = 0; i < 20; ++i, ++seq) {
            const auto p = payload_of(seq, size);
            Buffer request;
            request.append(p.data(), p.size());
            const auto reply = node.call_raw_blocking("echo", CodecId::raw, std::move(request), CallOptions{});
            std::uint64_t got = 0;
            if (!payload_intact(reply.bytes.bytes(), got) || got != seq || reply.bytes.size() != p.size()) {
                say("CALL_BAD size " + std::to_string(size));
                return 1;
            }
        }
        say("CALL_OK " + std::to_string(size) + " " + peer_transport(node));
    }
    return 0;
}

// ---- the tests ------------------------------------------------------------------------------------

/// True while /proc/<pid>/maps maps a meshy ring.
bool maps_ring(pid_t pid) {
    std::ifstream maps("/proc/" + std::to_string(pid) + "/maps");
    std::string line;
    while (std::getline(maps, line)) {
        if (line.find("/memfd:meshy-shm") != std::string::npos) {
            return true;
        }
    }
    return false;
}

class ShmTest : public RoleNodesTest {
protected:
    ShmTest() : RoleNodesTest("mshm") {}

    std::unique_ptr<Process> start(std::vector<std::string> role, bool shm, const std::string& label) {
        return start_role(std::move(role), shm, label);
    }
};

constexpr Millis startup{15000};
constexpr Millis transfer{60000};

TEST_F(ShmTest, EightMegabytesArriveIntactAndInOrder) {
    constexpr std::uint64_t total = 8u << 20;
    // Messages of several sizes, one of them larger than the ring (it streams through in pieces).
    auto listener =
        start({"listen", "bulk", "--expect-bytes", std::to_string(total + (5u << 20)), "--name", "sink"}, true, "sink");
    ASSERT_TRUE(listener->wait_for_line("READY", startup)) << out(*listener);
    auto sender =
        start({"send", "bulk", "--sizes", "65536,1000,300000,5242880,8,131072", "--count", "48", "--name", "source"},
              true, "source");
    ASSERT_TRUE(sender->wait_for_line("SENT", transfer)) << out(*sender);
    const auto done = listener->wait_for_line("DONE", transfer);
    ASSERT_TRUE(done) << out(*listener);
    EXPECT_NE(done->find("corrupt 0 disorder 0"), std::string::npos) << *done;
    EXPECT_TRUE(listener->wait_for_line("LINK shm", 1000ms)) << out(*listener);
    EXPECT_TRUE(sender->wait_for_line("LINK shm", 1000ms)) << out(*sender);
    expect_clean_stop(*sender);
    expect_clean_stop(*listener);
}

TEST_F(ShmTest, AKilledSenderLeavesNoMappingAndTheListenerGoesOn) {
    auto listener = start({"listen", "stream", "--name", "sink"}, true, "sink");
    ASSERT_TRUE(listener->wait_for_line("READY", startup)) << out(*listener);
    auto sender =
        start({"send", "stream", "--sizes", "4096,70000", "--interval-us", "200", "--name", "source"}, true, "source");
    ASSERT_TRUE(listener->wait_for_line("LINK shm", startup)) << out(*listener) << out(*sender);
    std::size_t at = 0;
    ASSERT_TRUE(listener->wait_for_line("GOT", transfer, 0, &at));
    ASSERT_TRUE(maps_ring(listener->pid()));
    sender->kill();
    EXPECT_TRUE(eventually([&] { return !maps_ring(listener->pid()); }, 10000ms)) << "the ring is still mapped";
    // A new sender is heard, over a new ring.
    auto second = start({"send", "stream", "--sizes", "512", "--count", "200", "--name", "source2"}, true, "source2");
    ASSERT_TRUE(second->wait_for_line("SENT", transfer)) << out(*second);
    EXPECT_TRUE(listener->wait_for_line("LINK shm", startup, at + 1)) << out(*listener);
    EXPECT_TRUE(eventually([&] { return maps_ring(listener->pid()); }, 5000ms));
    expect_clean_stop(*listener);
    const auto final_line = listener->wait_for_line("FINAL", 10000ms);
    ASSERT_TRUE(final_line) << out(*listener);
    EXPECT_NE(final_line->find("corrupt 0 disorder 0"), std::string::npos) << *final_line;
}

TEST_F(ShmTest, AKilledListenerLeavesNoMappingAndTheSenderGoesOn) {
    auto listener = start({"listen", "stream", "--name", "sink"}, true, "sink");
    ASSERT_TRUE(listener->wait_for_line("READY", startup)) << out(*listener);
    auto sender =
        start({"send", "stream", "--sizes", "4096,70000", "--interval-us", "200", "--name", "source"}, true, "source");
    ASSERT_TRUE(sender->wait_for_line("LINK shm", startup)) << out(*sender);
    ASSERT_TRUE(listener->wait_for_line("GOT", transfer));
    ASSERT_TRUE(maps_ring(sender->pid()));
    listener->kill();
    EXPECT_TRUE(eventually([&] { return !maps_ring(sender->pid()); }, 10000ms)) << "the ring is still mapped";
    auto second = start({"listen", "stream", "--name", "sink2"}, true, "sink2");
    EXPECT_TRUE(second->wait_for_line("LINK shm", startup)) << out(*second) << out(*sender);
    EXPECT_TRUE(second->wait_for_line("GOT", transfer)) << out(*second);
    expect_clean_stop(*second);
    const auto final_line = second->wait_for_line("FINAL", 10000ms);
    ASSERT_TRUE(final_line) << out(*second);
    EXPECT_NE(final_line->find("corrupt 0 disorder 0"), std::string::npos) << *final_line;
}

TEST_F(ShmTest, ANodeWithoutSharedMemoryTalksOverUnix) {
    for (const bool listener_shm : {false, true}) {
        SCOPED_TRACE(listener_shm ? "the sender has shared memory off" : "the listener has shared memory off");
        auto listener = start(
            {"listen", listener_shm ? "t1" : "t2", "--expect-bytes", std::to_string(100 * 2048), "--name", "sink"},
            listener_shm, "sink");
        ASSERT_TRUE(listener->wait_for_line("READY", startup)) << out(*listener);
        auto sender =
            start({"send", listener_shm ? "t1" : "t2", "--sizes", "2048", "--count", "100", "--name", "source"},
                  !listener_shm, "source");
        const auto done = listener->wait_for_line("DONE", transfer);
        ASSERT_TRUE(done) << out(*listener) << out(*sender);
        EXPECT_NE(done->find("corrupt 0 disorder 0"), std::string::npos);
        EXPECT_TRUE(listener->wait_for_line("LINK unix", 1000ms)) << out(*listener);
        // A dialer that allows shared memory maps its ring before it offers it, and unmaps it once
        // the refusal is read (either end may be the dialer).
        EXPECT_TRUE(eventually([&] { return !maps_ring(listener->pid()); }, 5000ms)) << out(*listener);
        EXPECT_TRUE(eventually([&] { return !maps_ring(sender->pid()); }, 5000ms)) << out(*sender);
    }
}

TEST_F(ShmTest, AFullRingDoesNotDeadlockUnderEitherOutboxPolicy) {
    for (const std::string policy : {"wait", "drop"}) {
        SCOPED_TRACE("outbox_full " + policy);
        const std::string topic = "full-" + policy;
        // A 64 KiB ring and a listener that takes 2 ms per message: the ring and the outbox fill.
        auto listener =
            start({"listen", topic, "--slow-ms", "2", "--say-from", "600", "--ring", "65536", "--name", "sink"}, true,
                  "sink");
        ASSERT_TRUE(listener->wait_for_line("READY", startup)) << out(*listener);
        auto sender = start({"send", topic, "--sizes", "16384,100,40000", "--count", "600", "--tail", "20", "--ring",
                             "65536", "--outbox", policy, "--capacity", "64", "--name", "source"},
                            true, "source");
        const auto sent = sender->wait_for_line("SENT", transfer);
        ASSERT_TRUE(sent) << out(*sender);
        EXPECT_TRUE(sender->wait_for_line("LINK shm", 1000ms)) << out(*sender);
        // The last message arrives: nothing is stuck behind a full ring.
        EXPECT_TRUE(listener->wait_for_line("SEQ 619", transfer)) << out(*listener);
        expect_clean_stop(*listener);
        const auto final_line = listener->wait_for_line("FINAL", 10000ms);
        ASSERT_TRUE(final_line) << out(*listener);
        EXPECT_NE(final_line->find("corrupt 0 disorder 0"), std::string::npos) << *final_line;
        if (policy == "wait") {
            EXPECT_NE(final_line->find("FINAL 620 "), std::string::npos) << "nothing is dropped: " << *final_line;
        }
    }
}

TEST_F(ShmTest, ServiceCallsGoThroughSharedMemory) {
    auto provider = start({"provide", "--name", "echo"}, true, "provider");
    ASSERT_TRUE(provider->wait_for_line("READY", startup)) << out(*provider);
    auto caller = start({"call", "--sizes", "0,1000,1048576", "--name", "caller"}, true, "caller");
    const auto status = caller->wait_exit(transfer);
    ASSERT_TRUE(status && status->success()) << out(*caller);
    EXPECT_TRUE(caller->wait_for_line("CALL_OK 1048576 shm", 1000ms)) << out(*caller);
    expect_clean_stop(*provider);
}

}  // namespace
}  // namespace meshy::test

int main(int argc, char** argv) {
    using namespace meshy::test;
    return run_role_or_tests(
        argc, argv, {{"listen", role_listen}, {"send", role_send}, {"provide", role_provide}, {"call", role_call}});
}
