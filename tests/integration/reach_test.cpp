// Integration tests of static peers (issue 25): real meshy_test_node processes in network
// namespaces the test creates (netns_lab.sh: one private subnet behind a blackhole route in the
// host namespace, a bridge, no avahi-daemon), so that nodes reach each other over real TCP between
// simulated hosts and nothing but static peers can join them. Every node runs with
// MESHY_DISCOVERY=static and without Unix sockets (the namespaces share one file system and one
// host name; containers do not). Tests skip, saying why, when not run as root.
#include <gtest/gtest.h>
#include <unistd.h>

#include <memory>
#include <string>
#include <vector>

#include "process.hpp"

#ifndef MESHY_TEST_NODE_PATH
#    error "MESHY_TEST_NODE_PATH must name the meshy_test_node binary"
#endif
#ifndef MESHY_NETNS_REFLECTOR
#    error "MESHY_NETNS_REFLECTOR must name tests/integration/netns_reflector.sh"
#endif
#ifndef MESHY_NETNS_LAB
#    error "MESHY_NETNS_LAB must name tests/integration/netns_lab.sh"
#endif

namespace meshy::test {
namespace {

constexpr Millis startup_timeout{10000};
constexpr Millis join_timeout{15000};  // a static peer redials at most every 2 s
constexpr Millis script_timeout{30000};

class StaticPeersTest : public testing::Test {
protected:
    void SetUp() override {
        if (::geteuid() != 0) {
            GTEST_SKIP() << "needs root to create network namespaces (ip netns); run the suite as root";
        }
        const auto* info = testing::UnitTest::GetInstance()->current_test_info();
        // A prefix and a /24 of this run's own: tests of other runs may use namespaces at the same time.
        const int n = static_cast<int>(::getpid() % 200) + 20;
        prefix_ = "mrs" + std::to_string(::getpid() % 100000);
        subnet_ = "10.231." + std::to_string(n);
        domain_ = std::string("reach-") + info->name() + "-" + std::to_string(::getpid());
    }

    void TearDown() override {
        if (HasFailure()) {
            for (const auto& p : processes_) {
                std::cerr << p->dump() << "\n";
            }
        }
        processes_.clear();  // kills what still runs, before the namespaces go
        if (hosts_ > 0) {
            run_command({MESHY_NETNS_LAB, "down", prefix_, subnet_}, script_timeout);
        }
    }

    void hosts(int count) {
        hosts_ = count;
        const auto r = run_command({MESHY_NETNS_LAB, "up", prefix_, subnet_, std::to_string(count)}, script_timeout);
        ASSERT_TRUE(r.status && r.status->success()) << "netns_lab.sh up failed:\n" << joined(r.lines);
    }

    std::string address(int host) const { return subnet_ + "." + std::to_string(host); }
    std::string peer(int host) const { return "tcp/" + address(host) + ":7447"; }

    /// meshy_test_node ARGS on simulated host `host`, listening on all its addresses.
    Process& node(int host, std::vector<std::string> args, const std::string& label) {
        std::vector<std::string> argv = {"ip", "netns", "exec", prefix_ + "-" + std::to_string(host),
                                         MESHY_TEST_NODE_PATH};
        argv.insert(argv.end(), args.begin(), args.end());
        for (const char* extra : {"--listen-host", "0.0.0.0", "--no-unix", "--domain-id"}) {
            argv.emplace_back(extra);
        }
        argv.push_back(domain_);
        processes_.push_back(std::make_unique<Process>(
            std::move(argv), std::map<std::string, std::string>{{"MESHY_DISCOVERY", "static"}},
            label + "@" + std::to_string(host)));
        return *processes_.back();
    }

    static void expect(Process& p, const std::string& line, Millis timeout) {
        ASSERT_TRUE(p.wait_for_line(line, timeout)) << "no '" << line << "' from " << p.label();
    }

    std::string prefix_, subnet_, domain_;
    int hosts_ = 0;
    std::vector<std::unique_ptr<Process>> processes_;
};

// Three hosts, one address configured: the well-known node (host 1) tells the others about each
// other, and they exchange messages and calls directly.
TEST_F(StaticPeersTest, ThreeHostsKnowingOneAddressExchangeMessagesAndCalls) {
    hosts(3);
    auto& hub = node(1, {"provide", "--name", "hub", "--listen-port", "7447"}, "hub");
    expect(hub, "READY", startup_timeout);
    auto& listener2 = node(2, {"listen", "to-two", "--name", "two", "--peer", peer(1)}, "listen");
    auto& listener3 = node(3, {"listen", "to-three", "--name", "three", "--peer", peer(1)}, "listen");
    expect(listener2, "READY", startup_timeout);
    expect(listener3, "READY", startup_timeout);
    // Host 3 sends to host 2's listener and host 2 to host 3's: each learned the other from the hub.
    auto& send3 = node(3, {"send", "to-two", "5", "--peer", peer(1), "--wait-timeout-ms", "15000"}, "send");
    auto& send2 = node(2, {"send", "to-three", "5", "--peer", peer(1), "--wait-timeout-ms", "15000"}, "send");
    expect(listener2, "RECV to-two 4", join_timeout);
    expect(listener3, "RECV to-three 4", join_timeout);
    for (auto* sender : {&send2, &send3}) {
        const auto status = sender->wait_exit(join_timeout);
        ASSERT_TRUE(status && status->success()) << sender->label();
    }
    // Calls from hosts 2 and 3 to the hub's service.
    for (int host : {2, 3}) {
        auto& caller = node(host, {"call", "multiply", "6", "7", "--peer", peer(1), "--timeout-ms", "10000"}, "call");
        expect(caller, "RESULT 42", join_timeout);
    }
    // And a call from host 3 to a service of host 2, which only the hub told it of.
    auto& provider2 = node(2, {"provide", "--name", "provider-two", "--peer", peer(1)}, "provide");
    expect(provider2, "READY", startup_timeout);
    auto& caller3 = node(3, {"call", "multiply", "3", "5", "--peer", peer(1), "--timeout-ms", "10000"}, "call");
    expect(caller3, "RESULT 15", join_timeout);
}

// A static peer that is down when a node starts is joined once it comes up (retried with backoff).
TEST_F(StaticPeersTest, APeerDownAtStartIsJoinedWhenItComesUp) {
    hosts(3);
    auto& listener = node(2, {"listen", "late", "--peer", peer(1), "--log", "info"}, "listen");
    expect(listener, "READY", startup_timeout);
    expect(listener, "unreachable", join_timeout);  // it tried, and keeps trying
    auto& hub = node(1, {"provide", "--name", "hub", "--listen-port", "7447"}, "hub");
    expect(hub, "READY", startup_timeout);
    expect(listener, "static peer " + peer(1) + " reached", join_timeout);
    auto& sender = node(3, {"send", "late", "3", "--peer", peer(1), "--wait-timeout-ms", "15000"}, "send");
    expect(listener, "RECV late 2", join_timeout);
    auto& caller = node(2, {"call", "multiply", "2", "21", "--peer", peer(1), "--timeout-ms", "10000"}, "call");
    expect(caller, "RESULT 42", join_timeout);
    (void)sender;
}

// The containers recipe: two hosts with no multicast path, each listing the other.
TEST_F(StaticPeersTest, TwoHostsWithoutMulticastJoinByListingEachOther) {
    hosts(2);
    auto& a = node(1, {"provide", "--name", "a", "--listen-port", "7447", "--peer", peer(2)}, "provide");
    auto& listener = node(2, {"listen", "across", "--listen-port", "7447", "--peer", peer(1)}, "listen");
    expect(a, "READY", startup_timeout);
    expect(listener, "READY", startup_timeout);
    auto& sender = node(1, {"send", "across", "4", "--peer", peer(2), "--wait-timeout-ms", "15000"}, "send");
    expect(listener, "RECV across 3", join_timeout);
    auto& caller = node(2, {"call", "multiply", "7", "6", "--peer", peer(1), "--timeout-ms", "10000"}, "call");
    expect(caller, "RESULT 42", join_timeout);
    (void)sender;
}

// Two subnets joined by a router whose avahi-daemon reflects mDNS (enable-reflector=yes): each
// subnet has its own avahi-daemon and one node, which find each other through the reflector (the
// advert resolves to the other node's own address, reachable through the router) and connect
// directly across it.
class ReflectorTest : public testing::Test {
protected:
    void SetUp() override {
        if (::geteuid() != 0) {
            GTEST_SKIP() << "needs root to create network namespaces (ip netns); run the suite as root";
        }
        prefix_ = "mrf" + std::to_string(::getpid() % 100000);
        net_ = "10." + std::to_string(::getpid() % 40 + 160);
        state_ = "/tmp/meshy-reflector-" + std::to_string(::getpid());
        domain_ = "reach-reflector-" + std::to_string(::getpid());
        up_ = true;
        const auto r = run_command({MESHY_NETNS_REFLECTOR, "up", prefix_, net_, state_}, script_timeout);
        ASSERT_TRUE(r.status && r.status->success()) << "netns_reflector.sh up failed:\n" << joined(r.lines);
    }

    void TearDown() override {
        if (HasFailure()) {
            for (const auto& p : processes_) {
                std::cerr << p->dump() << "\n";
            }
        }
        processes_.clear();
        if (up_) {
            run_command({MESHY_NETNS_REFLECTOR, "down", prefix_, net_, state_}, script_timeout);
        }
    }

    Process& node(const std::string& host, std::vector<std::string> args, const std::string& label) {
        std::vector<std::string> argv = {MESHY_NETNS_REFLECTOR, "run", prefix_, state_, host, MESHY_TEST_NODE_PATH};
        argv.insert(argv.end(), args.begin(), args.end());
        for (const char* extra : {"--listen-host", "0.0.0.0", "--no-unix", "--domain-id"}) {
            argv.emplace_back(extra);
        }
        argv.push_back(domain_);
        processes_.push_back(std::make_unique<Process>(
            std::move(argv), std::map<std::string, std::string>{{"MESHY_DISCOVERY", "avahi"}}, label + "@" + host));
        return *processes_.back();
    }

    std::string prefix_, net_, state_, domain_;
    bool up_ = false;
    std::vector<std::unique_ptr<Process>> processes_;
};

TEST_F(ReflectorTest, MessagesAndCallsCrossTwoSubnets) {
    auto& listener = node("a", {"listen", "across"}, "listen");
    auto& provider = node("a", {"provide", "--name", "provider-a"}, "provide");
    ASSERT_TRUE(listener.wait_for_line("READY", startup_timeout)) << listener.dump();
    ASSERT_TRUE(provider.wait_for_line("READY", startup_timeout)) << provider.dump();
    auto& sender = node("b", {"send", "across", "3", "--wait-timeout-ms", "15000"}, "send");
    ASSERT_TRUE(listener.wait_for_line("RECV across 2", join_timeout)) << "no message crossed";
    auto& caller = node("b", {"call", "multiply", "6", "7", "--timeout-ms", "10000"}, "call");
    ASSERT_TRUE(caller.wait_for_line("RESULT 42", join_timeout)) << "no call crossed";
    (void)sender;
}

}  // namespace
}  // namespace meshy::test
