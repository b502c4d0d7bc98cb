// The publisher alone: routing to this node's own listener, latched values and what it advertises,
// with no peer and no socket.
#include "node/publisher.hpp"

#include <gtest/gtest.h>

#include <asio/io_context.hpp>
#include <chrono>
#include <string>
#include <vector>

#include "node_part_fakes.hpp"

namespace meshy::detail {
namespace {

struct PublisherTest : testing::Test {
    asio::io_context io;
    NodeOptions options;
    IdleLinks links{io, options};
    Subscriptions subs{io.get_executor(), 16, true};
    int changes = 0;
    Publisher sut{options,
                  "id-self",
                  "self",
                  "host",
                  links,
                  subs,
                  [this] { ++changes; },
                  [] {
                      return true;
                  }};
    std::vector<std::string> got;

    void listen(const std::string& topic) {
        ListenerFn fn;
        fn.plain = [this](const RawMessage& m) {
            got.emplace_back(reinterpret_cast<const char*>(m.payload.data()), m.payload.size());
        };
        subs.listen(topic, std::move(fn));
        route();
    }
    void route() {
        auto r = std::make_shared<Routing>();
        for (const auto& t : subs.topics()) {
            r->own.emplace(t, subs.find(t));
        }
        sut.set_routing(std::move(r));
    }
    bool send(const std::string& topic, const std::string& text) {
        Buffer frame;
        if (!sut.begin_message(topic, CodecId::raw, frame)) {
            return false;
        }
        frame.append(text.data(), text.size());
        sut.finish_message(topic, std::move(frame), {});
        return true;
    }
    void drain() {
        io.restart();
        io.run_for(std::chrono::milliseconds(50));
    }
};

TEST_F(PublisherTest, NobodyListeningSendsNothingButAdvertisesTheTopic) {
    EXPECT_FALSE(send("t", "x"));
    ASSERT_EQ(sut.publications().size(), 1u);
    EXPECT_EQ(sut.publications()[0].topic, "t");
    EXPECT_EQ(changes, 1);
    EXPECT_FALSE(send("t", "y"));
    EXPECT_EQ(changes, 1);  // once per topic
}

TEST_F(PublisherTest, OwnListenerGetsTheMessage) {
    listen("t");
    EXPECT_TRUE(send("t", "hello"));
    drain();
    EXPECT_EQ(got, std::vector<std::string>{"hello"});
}

TEST_F(PublisherTest, LatchedValueReachesALateListenerOnce) {
    sut.advertise("map", {.type = "nav/Map", .latched = true});
    EXPECT_TRUE(send("map", "old"));
    EXPECT_TRUE(send("map", "new"));
    listen("map");
    drain();
    EXPECT_EQ(got, std::vector<std::string>{"new"});
    route();  // another change of the routing: no second delivery
    drain();
    EXPECT_EQ(got, std::vector<std::string>{"new"});
    EXPECT_TRUE(send("map", "live"));
    drain();
    EXPECT_EQ(got, (std::vector<std::string>{"new", "live"}));
    const auto pubs = sut.publications();
    ASSERT_EQ(pubs.size(), 1u);
    EXPECT_EQ(pubs[0].type, "nav/Map");
    EXPECT_TRUE(pubs[0].latched);
}

TEST_F(PublisherTest, ListenerThatLeavesAndReturnsGetsTheLatchedValueAgain) {
    sut.advertise("map", {.latched = true});
    send("map", "v");
    listen("map");
    drain();
    subs.stop_listening("map");
    route();
    listen("map");
    drain();
    EXPECT_EQ(got, (std::vector<std::string>{"v", "v"}));
}

}  // namespace
}  // namespace meshy::detail
