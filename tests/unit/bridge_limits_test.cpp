// Allowlists (globs), the token bucket, subscription rules and the send queue of `meshy bridge`.
#include <gtest/gtest.h>

#include "bridge/allowlist.hpp"
#include "bridge/send_queue.hpp"
#include "bridge/subscription_rules.hpp"
#include "bridge/token_bucket.hpp"

using namespace meshy::cli::bridge;
using namespace std::chrono_literals;

TEST(BridgeAllowlist, GlobsMatchRosbridgeNames) {
    EXPECT_TRUE(glob_match("/cam/*", "/cam/front/raw"));
    EXPECT_TRUE(glob_match("/chat?er", "/chatter"));
    EXPECT_TRUE(glob_match("/[ab]", "/a"));
    EXPECT_FALSE(glob_match("/cam/*", "/camera"));
    const Allowlist list({"/chatter", "/cam/*"});
    EXPECT_TRUE(list.allows("/chatter"));
    EXPECT_TRUE(list.allows("chatter")) << "a meshy name is matched with its leading slash";
    EXPECT_TRUE(list.allows("cam/front"));
    EXPECT_FALSE(list.allows("/secret"));
    EXPECT_FALSE(list.allows(std::string("/chatter\0x", 10)));
    EXPECT_TRUE(Allowlist().allows("/anything"));
}

TEST(BridgeTokenBucket, BurstThenRate) {
    const auto t0 = TokenBucket::Clock::now();
    TokenBucket b(10, 0, t0);  // 10/s, burst 10
    int taken = 0;
    for (int i = 0; i < 100; ++i) {
        taken += b.take(1, t0) ? 1 : 0;
    }
    EXPECT_EQ(taken, 10);
    EXPECT_FALSE(b.take(1, t0 + 50ms));
    EXPECT_TRUE(b.take(1, t0 + 100ms));
    EXPECT_FALSE(b.take(1, t0 + 100ms));
    EXPECT_NEAR(b.available(t0 + 10s), 10.0, 1e-9) << "refill stops at the burst";
}

TEST(BridgeTokenBucket, OversizedRequestPaysBack) {
    const auto t0 = TokenBucket::Clock::now();
    TokenBucket b(1000, 0, t0);
    EXPECT_TRUE(b.take(5000, t0));  // larger than the burst: allowed once, when full
    EXPECT_FALSE(b.take(1, t0 + 1s));
    EXPECT_TRUE(b.take(1, t0 + 5s));
}

TEST(BridgeTokenBucket, ZeroRateIsUnlimited) {
    TokenBucket b;
    for (int i = 0; i < 1000; ++i) {
        ASSERT_TRUE(b.take(1e9));
    }
}

TEST(BridgeSubscriptions, LowestThrottleLongestQueueWin) {
    std::map<std::string, SubscribeParams> subs;
    EXPECT_EQ(combine_subscriptions(subs).throttle_rate, 0u);
    subs["a"] = {1000, 1, 0};
    subs["b"] = {100, 10, 500};
    subs["c"] = {300, 5, 200};
    const auto e = combine_subscriptions(subs);
    EXPECT_EQ(e.throttle_rate, 100u);
    EXPECT_EQ(e.queue_length, 10u);
    EXPECT_EQ(e.fragment_size, 200u);
    subs["d"] = {0, 0, 0};
    EXPECT_EQ(combine_subscriptions(subs).throttle_rate, 0u) << "an unthrottled subscription unthrottles";
}

namespace {
SendQueue::Item frame(std::size_t size, std::string topic = {}, bool droppable = true) {
    return {std::make_shared<const std::string>(size, 'x'), std::move(topic), droppable, false};
}
}  // namespace

TEST(BridgeSendQueue, FullTopicQueueDropsItsOldest) {
    SendQueue q(1 << 20);
    for (int i = 0; i < 5; ++i) {
        q.push({std::make_shared<const std::string>(std::to_string(i)), "t", true, false}, 3);
    }
    q.push(frame(10, "other"), 3);
    EXPECT_EQ(q.count("t"), 3u);
    EXPECT_EQ(q.count("other"), 1u);
    EXPECT_EQ(q.dropped(), 2u);
    EXPECT_EQ(*q.front().data, "2") << "the oldest two went";
}

TEST(BridgeSendQueue, ByteBoundDropsOldestTopicDataButNotTheRest) {
    SendQueue q(100);
    q.push(frame(40, "", false));  // a service response: kept
    q.push(frame(40, "t"));
    q.push(frame(40, "t"));
    EXPECT_LE(q.bytes(), 100u);
    EXPECT_EQ(q.size(), 2u);
    EXPECT_FALSE(q.front().droppable);
    q.push(frame(200, "", false));  // over the bound with nothing left to drop: kept, the caller decides
    EXPECT_EQ(q.bytes(), 240u);
    EXPECT_FALSE(q.drop_oldest());
}

TEST(BridgeSendQueue, FrameInFlightIsNeverDropped) {
    SendQueue q(1 << 20);
    q.push(frame(10, "t"), 1);
    q.set_in_flight(true);
    q.push(frame(20, "t"), 1);  // cap 1, but the front is being written
    EXPECT_EQ(q.size(), 2u);
    EXPECT_EQ(q.front().data->size(), 10u);
    q.pop_front();
    EXPECT_EQ(q.size(), 1u);
    EXPECT_EQ(q.bytes(), 20u);
    EXPECT_EQ(q.count("t"), 1u);
}
