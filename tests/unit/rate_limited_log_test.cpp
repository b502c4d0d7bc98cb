#include "common/rate_limited_log.hpp"

#include <gtest/gtest.h>

#include <chrono>
#include <meshy/log.hpp>
#include <string>
#include <vector>

namespace {

using namespace std::chrono_literals;
using meshy::LogLevel;
using meshy::detail::RateLimitedLog;

// Captures what reaches the sink, and restores the default sink and level afterwards.
class RateLimitedLogTest : public ::testing::Test {
protected:
    void SetUp() override {
        level_ = meshy::log_level();
        meshy::set_log_level(LogLevel::info);
        meshy::set_log_sink([this](LogLevel, std::string_view m) { lines_.emplace_back(m); });
    }
    void TearDown() override {
        meshy::set_log_sink({});
        meshy::set_log_level(level_);
    }
    std::vector<std::string> lines_;
    LogLevel level_{};
};

TEST_F(RateLimitedLogTest, OneRecordPerIntervalPerKindWithTheCountHeldBack) {
    RateLimitedLog sut(1s);
    const auto t0 = RateLimitedLog::Clock::now();
    EXPECT_TRUE(sut.log(LogLevel::warn, "bad frame", "bad frame from a", t0));
    for (int i = 0; i < 1000; ++i) {
        EXPECT_FALSE(sut.log(LogLevel::warn, "bad frame", "bad frame from b", t0 + 1ms * i));
    }
    EXPECT_EQ(sut.suppressed("bad frame"), 1000u);
    EXPECT_TRUE(sut.log(LogLevel::warn, "bad frame", "bad frame from c", t0 + 1s));
    EXPECT_EQ(sut.suppressed("bad frame"), 0u);
    ASSERT_EQ(lines_.size(), 2u);
    EXPECT_EQ(lines_[0], "bad frame from a");
    EXPECT_EQ(lines_[1], "bad frame from c (1000 similar suppressed)");
}

TEST_F(RateLimitedLogTest, KindsAreIndependent) {
    RateLimitedLog sut(1s);
    const auto t0 = RateLimitedLog::Clock::now();
    EXPECT_TRUE(sut.log(LogLevel::warn, "a", "first a", t0));
    EXPECT_TRUE(sut.log(LogLevel::warn, "b", "first b", t0));
    EXPECT_FALSE(sut.log(LogLevel::warn, "a", "second a", t0));
    EXPECT_EQ(lines_.size(), 2u);
}

TEST_F(RateLimitedLogTest, RecordsBelowTheLevelAreNeitherLoggedNorCounted) {
    RateLimitedLog sut(1s);
    EXPECT_FALSE(sut.log(LogLevel::debug, "quiet", "not shown"));
    EXPECT_EQ(sut.suppressed("quiet"), 0u);
    EXPECT_TRUE(sut.log(LogLevel::warn, "quiet", "shown"));
    EXPECT_EQ(lines_.size(), 1u);
}

TEST_F(RateLimitedLogTest, ManyKindsShareOneSlotPastTheBound) {
    RateLimitedLog sut(1s);
    const auto t0 = RateLimitedLog::Clock::now();
    for (std::size_t i = 0; i < RateLimitedLog::max_kinds + 100; ++i) {
        sut.log(LogLevel::warn, "kind " + std::to_string(i), "x", t0);
    }
    // The first max_kinds kinds each logged once, the 100 after them shared one slot: one more record.
    EXPECT_EQ(lines_.size(), RateLimitedLog::max_kinds + 1);
}

}  // namespace
