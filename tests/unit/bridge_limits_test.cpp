// Allowlists (globs) and the token bucket of `meshy bridge`.
#include <gtest/gtest.h>

#include "bridge/allowlist.hpp"
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
