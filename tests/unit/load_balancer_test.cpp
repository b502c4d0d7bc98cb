#include <gtest/gtest.h>

#include <map>
#include <meshy/load_balancer.hpp>
#include <vector>

using namespace meshy;

namespace {
std::vector<PeerRef> peers() {
    return {PeerRef{"1", "worker", "h", false}, PeerRef{"2", "worker", "h", false}, PeerRef{"3", "worker", "h", false},
            PeerRef{"4", "logger", "h", false}};
}
}  // namespace

TEST(RoundRobinTopics, OneNodePerNameGroupInTurn) {
    auto sut = round_robin_topic_balancer();
    const auto candidates = peers();
    std::map<std::string_view, int> counts;
    for (int i = 0; i < 300; ++i) {
        std::vector<std::size_t> chosen;
        sut->choose("t", candidates, chosen);
        ASSERT_EQ(chosen.size(), 2u);  // one worker, the logger
        for (auto c : chosen) {
            ++counts[candidates[c].id];
        }
    }
    EXPECT_EQ(counts["1"], 100);
    EXPECT_EQ(counts["2"], 100);
    EXPECT_EQ(counts["3"], 100);
    EXPECT_EQ(counts["4"], 300);
}

TEST(AllListeners, ChoosesEveryone) {
    auto sut = all_listeners_balancer();
    std::vector<std::size_t> chosen;
    sut->choose("t", peers(), chosen);
    EXPECT_EQ(chosen.size(), 4u);
}

TEST(RandomTopics, OneNodePerNameGroup) {
    auto sut = random_topic_balancer();
    std::vector<std::size_t> chosen;
    sut->choose("t", peers(), chosen);
    EXPECT_EQ(chosen.size(), 2u);
}

TEST(RoundRobinServices, RotatesAmongProviders) {
    auto sut = round_robin_service_balancer();
    const auto candidates = peers();
    std::vector<std::size_t> picks;
    for (int i = 0; i < 8; ++i) {
        picks.push_back(sut->choose("svc", candidates));
    }
    EXPECT_EQ(picks, (std::vector<std::size_t>{0, 1, 2, 3, 0, 1, 2, 3}));
}

TEST(RandomServices, StaysInRange) {
    auto sut = random_service_balancer();
    const auto candidates = peers();
    for (int i = 0; i < 100; ++i) {
        EXPECT_LT(sut->choose("svc", candidates), candidates.size());
    }
}
