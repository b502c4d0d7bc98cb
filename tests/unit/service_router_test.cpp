// Where a call goes, alone: this node's own handler, a peer of the routing (its request waits in
// the peer's link, which is never dialed here), the balancer's choice; no socket.
#include "node/service_router.hpp"

#include <gtest/gtest.h>

#include <asio/io_context.hpp>
#include <list>
#include <optional>
#include <string>
#include <vector>

#include "node_part_fakes.hpp"

namespace meshy::detail {
namespace {

// Picks the candidate named `pick` and remembers what it was offered.
struct Picker final : ServiceLoadBalancer {
    std::string pick;
    std::vector<std::pair<std::string, bool>> seen;  // id, is_self
    std::size_t choose(std::string_view, std::span<const PeerRef> candidates) override {
        seen.clear();
        std::size_t chosen = 0;
        for (std::size_t i = 0; i < candidates.size(); ++i) {
            seen.emplace_back(std::string(candidates[i].id), candidates[i].is_self);
            if (candidates[i].id == pick) {
                chosen = i;
            }
        }
        return chosen;
    }
};

struct ServiceRouterTest : testing::Test {
    asio::io_context io;
    NodeOptions options;
    std::shared_ptr<Picker> picker = std::make_shared<Picker>();
    IdleLinks links{io, options};
    Subscriptions subs{io.get_executor(), 16, true};
    Services services{io.get_executor(), "self"};
    Calls calls{io.get_executor()};
    Publisher publisher{options,
                        "id-self",
                        "self",
                        "host",
                        links,
                        subs,
                        [] {},
                        [] {
                            return true;
                        }};
    std::optional<ServiceRouter> sut;

    void make(bool with_picker) {
        NodeOptions o = options;
        if (with_picker) {
            o.service_load_balancer = picker;
        }
        sut.emplace(io.get_executor(), o, "id-self", "self", "host", services, publisher, calls, links);
    }
    void provide_here(const std::string& service) {
        ServiceFn fn;
        fn.plain = [](const RawMessage& m) {
            RawPayload reply;
            reply.bytes.append("re:", 3);
            reply.bytes.append(m.payload.data(), m.payload.size());
            return reply;
        };
        services.add(service, std::move(fn));
    }
    void provide_on_peer(const std::string& service, const std::string& peer_id) {
        auto record = std::make_shared<PeerRecord>();
        record->id = peer_id;
        record->name = "peer";
        record->host = "host";
        auto routing = std::make_shared<Routing>();
        routing->providers[service].push_back(RouteTarget{links.obtain(peer_id), record, nullptr});
        publisher.set_routing(std::move(routing));
    }
    // Outcomes stay here until the test ends: a pending call's waiter keeps pointing at its own.
    std::list<std::optional<CallOutcome>> outcomes;
    const std::optional<CallOutcome>& call(const std::string& service) {
        auto& out = outcomes.emplace_back();
        Buffer request;
        request.append("hi", 2);
        sut->start(std::make_unique<RecordingWaiter>(&out), service, CodecId::raw, request, std::chrono::seconds(5));
        io.restart();
        io.run_for(std::chrono::milliseconds(50));
        return out;
    }
    static std::string text(const CallOutcome& o) {
        return {reinterpret_cast<const char*>(o.reply.bytes.data()), o.reply.bytes.size()};
    }
};

TEST_F(ServiceRouterTest, NoProviderFailsAtOnce) {
    make(false);
    EXPECT_FALSE(sut->has_providers("svc"));
    const auto out = call("svc");
    ASSERT_TRUE(out);
    EXPECT_EQ(out->ec, make_error_code(errc::no_provider));
}

TEST_F(ServiceRouterTest, ThisNodesHandlerAnswers) {
    make(false);
    provide_here("svc");
    EXPECT_TRUE(sut->has_providers("svc"));
    const auto out = call("svc");
    ASSERT_TRUE(out);
    EXPECT_FALSE(out->ec);
    EXPECT_EQ(text(*out), "re:hi");
}

TEST_F(ServiceRouterTest, APeersRequestWaitsInItsLink) {
    make(false);
    provide_on_peer("svc", "id-peer");
    EXPECT_TRUE(sut->has_providers("svc"));
    const auto out = call("svc");
    EXPECT_FALSE(out);  // pending: the link is never dialed here
    EXPECT_EQ(links.find("id-peer")->parked.size(), 1u);
    calls.stop();
}

TEST_F(ServiceRouterTest, AnUnconnectedPeerIsNotOfferedWhileThisNodeProvides) {
    make(true);
    provide_here("svc");
    provide_on_peer("svc", "id-peer");
    picker->pick = "id-peer";
    const auto out = call("svc");
    ASSERT_TRUE(out);
    EXPECT_EQ(text(*out), "re:hi");
    ASSERT_EQ(picker->seen.size(), 1u);
    EXPECT_TRUE(picker->seen[0].second);
}

TEST_F(ServiceRouterTest, TheBalancerSeesThisNodeAmongConnectedPeersAndChooses) {
    make(true);
    provide_here("svc");
    provide_on_peer("svc", "id-peer");
    links.find("id-peer")->up.store(true);  // as if connected (its requests still wait in the link)
    picker->pick = "id-self";
    const auto& first = call("svc");
    ASSERT_TRUE(first);
    EXPECT_EQ(text(*first), "re:hi");
    ASSERT_EQ(picker->seen.size(), 2u);
    EXPECT_EQ(picker->seen[0], std::make_pair(std::string("id-self"), true));
    EXPECT_EQ(picker->seen[1], std::make_pair(std::string("id-peer"), false));

    picker->pick = "id-peer";
    EXPECT_FALSE(call("svc"));
    EXPECT_EQ(links.find("id-peer")->parked.size(), 1u);
    calls.stop();
}

}  // namespace
}  // namespace meshy::detail
