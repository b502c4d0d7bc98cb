// Process and machine helpers (src/common/system.hpp).
#include "common/system.hpp"

#include <gtest/gtest.h>
#include <sched.h>

#include <chrono>
#include <condition_variable>
#include <cstdint>
#include <mutex>
#include <thread>
#include <vector>

#include "common/adaptive_mutex.hpp"

namespace {

std::int64_t gap(std::uint64_t a, std::uint64_t b) {
    return static_cast<std::int64_t>(a - b);
}

// Message stamps may be read through the TSC between precise readings: over 60 ms of a busy
// thread (past the 10 ms it takes to measure the tick rate), they stay within 50 us of now_ns()
// and never run backwards by more than that.
TEST(StampClock, FollowsTheRealTimeClock) {
    using namespace std::chrono_literals;
    const auto until = std::chrono::steady_clock::now() + 60ms;
    std::uint64_t last = 0;
    std::int64_t worst = 0, back = 0;
    std::size_t readings = 0;
    while (std::chrono::steady_clock::now() < until && readings < 50'000'000) {
        const std::uint64_t before = meshy::detail::now_ns();
        const std::uint64_t stamp = meshy::detail::stamp_ns();
        const std::uint64_t after = meshy::detail::now_ns();
        worst = std::max({worst, gap(before, stamp), gap(stamp, after)});
        if (last != 0) {
            back = std::max(back, gap(last, stamp));
        }
        last = stamp;
        ++readings;
    }
    EXPECT_GT(readings, 0u);
    EXPECT_LT(worst, 50'000) << "ns outside [before, after]";
    EXPECT_LT(back, 50'000) << "ns backwards";
}

// A thread that stamps seldom reads the precise clock each time.
TEST(StampClock, SeldomReadingsArePrecise) {
    for (int i = 0; i < 5; ++i) {
        const std::uint64_t quiet_from = meshy::detail::now_ns();
        while (meshy::detail::now_ns() - quiet_from < 1'100'000) {
            // until more than the 1 ms between precise readings has passed (since this thread's
            // last stamp, perhaps in another test)
        }
        const std::uint64_t before = meshy::detail::now_ns();
        const std::uint64_t stamp = meshy::detail::stamp_ns();
        const std::uint64_t after = meshy::detail::now_ns();
        EXPECT_LE(before, stamp);
        EXPECT_LE(stamp, after);
    }
}

// Readings through the TSC are only extrapolated on the CPU that took the last precise one: on
// another CPU (whose TSC may not be in step) the first stamp is a precise reading.
TEST(StampClock, OnAnotherCpuTheFirstStampIsPrecise) {
    cpu_set_t original;
    ASSERT_EQ(::sched_getaffinity(0, sizeof original, &original), 0);
    std::vector<int> cpus;
    for (int cpu = 0; cpu < CPU_SETSIZE && cpus.size() < 2; ++cpu) {
        if (CPU_ISSET(cpu, &original)) {
            cpus.push_back(cpu);
        }
    }
    if (cpus.size() < 2) {
        GTEST_SKIP() << "one CPU here";
    }
    std::thread([&] {
        for (int round = 0; round < 4; ++round) {
            cpu_set_t one;
            CPU_ZERO(&one);
            CPU_SET(cpus[round % 2], &one);
            if (::sched_setaffinity(0, sizeof one, &one) != 0) {
                GTEST_SKIP() << "this thread may not change its affinity";
            }
            const std::uint64_t before = meshy::detail::now_ns();
            const std::uint64_t stamp = meshy::detail::stamp_ns();
            const std::uint64_t after = meshy::detail::now_ns();
            EXPECT_LE(before, stamp) << "round " << round;
            EXPECT_LE(stamp, after) << "round " << round;
            // 15 ms of stamps on this CPU: past the 10 ms the tick rate takes to measure
            const auto until = std::chrono::steady_clock::now() + std::chrono::milliseconds(15);
            for (int i = 0; i < 10'000'000 && std::chrono::steady_clock::now() < until; ++i) {
                (void)meshy::detail::stamp_ns();
            }
        }
    }).join();
}

TEST(RunsOnSeveralCpus, FollowsTheAffinity) {
    cpu_set_t original;
    ASSERT_EQ(::sched_getaffinity(0, sizeof original, &original), 0);
    cpu_set_t one;
    CPU_ZERO(&one);
    for (int cpu = 0; cpu < CPU_SETSIZE; ++cpu) {
        if (CPU_ISSET(cpu, &original)) {
            CPU_SET(cpu, &one);
            break;
        }
    }
    if (::sched_setaffinity(0, sizeof one, &one) != 0) {
        GTEST_SKIP() << "this process may not change its affinity";
    }
    EXPECT_FALSE(meshy::detail::runs_on_several_cpus());
    ASSERT_EQ(::sched_setaffinity(0, sizeof original, &original), 0);
    EXPECT_EQ(meshy::detail::runs_on_several_cpus(), CPU_COUNT(&original) > 1);
}

// Two threads that take turns through a condition variable, and count under the lock.
TEST(AdaptiveMutex, ExcludesAndWaitsWithAConditionVariable) {
    meshy::detail::AdaptiveMutex mutex;
    std::condition_variable_any turn;
    int count = 0;
    bool first_turn = true;
    constexpr int rounds = 5000;
    auto play = [&](bool mine) {
        for (int i = 0; i < rounds; ++i) {
            std::unique_lock lock(mutex);
            ASSERT_TRUE(turn.wait_for(lock, std::chrono::seconds(10), [&] { return first_turn == mine; }));
            ++count;
            first_turn = !mine;
            turn.notify_all();
        }
    };
    std::thread other(play, false);
    play(true);
    other.join();
    EXPECT_EQ(count, 2 * rounds);
    EXPECT_TRUE(mutex.try_lock());
    mutex.unlock();
}

}  // namespace
