// The drop counter behind the inbox and outbox warnings (src/common/drop_counter.hpp): every drop
// is reported, at most once a second, whether a drop or a drained queue asks.
#include "common/drop_counter.hpp"

#include <gtest/gtest.h>

namespace {

using meshy::detail::DropCounter;
using namespace std::chrono_literals;

TEST(DropCounter, ReportsAtMostOnceASecondAndLosesNone) {
    DropCounter drops;
    const auto t0 = DropCounter::Clock::now();
    EXPECT_EQ(drops.drop(t0), 1u);  // the first drop is reported at once
    EXPECT_EQ(drops.drop(t0 + 100ms), 0u);
    EXPECT_EQ(drops.drop(t0 + 200ms), 0u);
    EXPECT_EQ(drops.take_due(t0 + 300ms), 0u);  // drained within the second: they wait
    EXPECT_EQ(drops.take_due(t0 + 900ms), 0u);
    EXPECT_EQ(drops.take_due(t0 + 1100ms), 2u);  // due now
    EXPECT_EQ(drops.take_due(t0 + 3s), 0u);      // nothing left
    EXPECT_EQ(drops.drop(t0 + 1200ms), 0u);      // the last report was 100 ms ago
    EXPECT_EQ(drops.drop(t0 + 2200ms), 2u);      // a drop after a second reports the waiting ones too
    EXPECT_EQ(drops.drop(t0 + 2300ms), 0u);
    EXPECT_EQ(drops.take(), 1u);  // the final report takes the rest, due or not
    EXPECT_EQ(drops.take(), 0u);
    EXPECT_EQ(drops.total(), 6u);
}

TEST(DropCounter, QueueThatFillsAndDrainsOftenWarnsOnceASecond) {
    DropCounter drops;
    const auto t0 = DropCounter::Clock::now();
    std::uint64_t reported = 0, reports = 0;
    auto report = [&](std::uint64_t n) {
        reported += n;
        reports += n ? 1 : 0;
    };
    // 10 s of a queue that drops 3 and drains every 10 ms: 1 000 cycles, 3 000 drops.
    for (int cycle = 0; cycle < 1000; ++cycle) {
        const auto at = t0 + cycle * 10ms;
        for (int i = 0; i < 3; ++i) {
            report(drops.drop(at));
        }
        report(drops.take_due(at + 5ms));
    }
    report(drops.take());
    EXPECT_EQ(reported, 3000u);
    EXPECT_LE(reports, 12u);  // one a second, and the final one
    EXPECT_GE(reports, 10u);
}

}  // namespace
