// The outbox's FIFO ring (src/common/ring_queue.hpp).
#include "common/ring_queue.hpp"

#include <gtest/gtest.h>

#include <memory>

namespace {

using meshy::detail::RingQueue;

TEST(RingQueue, KeepsOrderAcrossWrapAndGrowth) {
    RingQueue<int> q;
    int next_in = 0, next_out = 0;
    // Interleaved pushes and pops wrap the ring many times and grow it while wrapped.
    for (int round = 0; round < 200; ++round) {
        for (int i = 0; i < round % 37 + 1; ++i) {
            q.push_back(next_in++);
        }
        for (int i = 0; i < round % 23 && !q.empty(); ++i) {
            ASSERT_EQ(q.front(), next_out++);
            q.pop_front();
        }
        for (std::size_t i = 0; i < q.size(); ++i) {
            ASSERT_EQ(q[i], next_out + static_cast<int>(i));
        }
    }
    EXPECT_EQ(q.size(), static_cast<std::size_t>(next_in - next_out));
    q.clear();
    EXPECT_TRUE(q.empty());
    q.push_back(7);
    EXPECT_EQ(q.front(), 7);
}

TEST(RingQueue, ReleasesWhatItHoldsWhenPoppedOrCleared) {
    auto shared = std::make_shared<int>(1);
    RingQueue<std::shared_ptr<int>> q;
    for (int i = 0; i < 40; ++i) {
        q.push_back(shared);
    }
    EXPECT_EQ(shared.use_count(), 41);
    q.pop_front();
    EXPECT_EQ(shared.use_count(), 40);
    q.clear();
    EXPECT_EQ(shared.use_count(), 1);
}

TEST(RingQueue, ClearedAtOnceItIsEmptyAndReusesItsSlots) {
    RingQueue<std::shared_ptr<int>> q;
    for (int i = 0; i < 20; ++i) {
        q.push_back(nullptr);
        q.pop_front();
        q.push_back(nullptr);
    }
    q.clear_entries_holding_nothing();
    EXPECT_TRUE(q.empty());
    auto shared = std::make_shared<int>(2);
    for (int i = 0; i < 40; ++i) {  // past the slots it had: it grows from an empty queue
        q.push_back(shared);
    }
    ASSERT_EQ(q.size(), 40u);
    EXPECT_EQ(q.front(), shared);
    EXPECT_EQ(shared.use_count(), 41);
    q.clear();
    EXPECT_EQ(shared.use_count(), 1);
}

}  // namespace
