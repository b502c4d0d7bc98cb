// The receive buffer alone: growth with the bytes that arrived, the receive budget, reuse.
#include "transport/read_buffer.hpp"

#include <gtest/gtest.h>

#include <cstring>
#include <memory>

namespace meshy::detail {
namespace {

/// Pretends `n` bytes arrived, as a read would put them.
void arrive(ReadBuffer& sut, std::size_t n) {
    while (n > 0) {
        std::span<std::byte> into;
        ASSERT_TRUE(sut.next_read(into));
        ASSERT_FALSE(into.empty());
        const std::size_t k = std::min(n, into.size());
        std::memset(into.data(), 0x5a, k);
        sut.received(k);
        n -= k;
    }
}

/// Like arrive(), but says whether the budget let the buffer hold it all.
bool feed(ReadBuffer& sut, std::size_t n) {
    while (n > 0) {
        std::span<std::byte> into;
        if (!sut.next_read(into)) {
            return false;
        }
        const std::size_t k = std::min(n, into.size());
        std::memset(into.data(), 0x5a, k);
        sut.received(k);
        n -= k;
    }
    return true;
}

TEST(ReadBuffer, GrowsWithWhatArrivedNotWithTheClaim) {
    ReadBuffer sut;
    sut.start(read_chunk);
    arrive(sut, 100);
    const std::size_t claim = 200u * 1024 * 1024;
    ASSERT_TRUE(sut.frame_needs(claim));
    EXPECT_LE(sut.buffer()->capacity(), 8 * read_chunk);  // nowhere near 200 MiB
    arrive(sut, 2 * read_chunk);
    ASSERT_TRUE(sut.frame_needs(claim));
    EXPECT_LT(sut.buffer()->capacity(), 16 * read_chunk);
    EXPECT_EQ(sut.pending().size(), 100 + 2 * read_chunk);
}

TEST(ReadBuffer, ALargeFrameIsReadToItsEndAndTheNextOneFitsWithoutACopy) {
    ReadBuffer sut;
    sut.start(read_chunk);
    const std::size_t frame = 1024u * 1024;
    arrive(sut, 16);
    while (sut.pending().size() < frame) {
        ASSERT_TRUE(sut.frame_needs(frame));
        std::span<std::byte> into;
        ASSERT_TRUE(sut.next_read(into));
        ASSERT_LE(into.size(), frame - sut.pending().size());  // never past the frame's end
        sut.received(std::min(into.size(), frame - sut.pending().size()));
    }
    sut.consume(frame);
    // The next read goes into a buffer with room for a frame as large.
    std::span<std::byte> into;
    ASSERT_TRUE(sut.next_read(into));
    EXPECT_GE(sut.buffer()->capacity(), frame);
}

TEST(ReadBuffer, TheBudgetRefusesWhatItCannotHold) {
    auto budget = std::make_shared<ReceiveBudget>(4u * 1024 * 1024);
    ReadBuffer sut(budget);
    sut.start(read_chunk);
    const std::size_t claim = 64u * 1024 * 1024;
    ASSERT_TRUE(feed(sut, 16));
    bool refused = false;
    std::size_t fed = 16;
    for (int i = 0; i < 64 && !refused; ++i) {
        refused = !sut.frame_needs(claim) || !feed(sut, read_chunk);
        fed += refused ? 0 : read_chunk;
        EXPECT_LE(budget->in_use(), budget->limit());
    }
    EXPECT_TRUE(refused) << fed << " bytes of a " << claim << " byte frame held within a 4 MiB budget";
    EXPECT_GT(fed, 1u * 1024 * 1024);  // it held what the budget allows first (two buffers while it grows)
}

TEST(ReadBuffer, GivesItsBudgetBack) {
    auto budget = std::make_shared<ReceiveBudget>(64u * 1024 * 1024);
    {
        ReadBuffer sut(budget);
        sut.start(read_chunk);
        arrive(sut, read_chunk);
        ASSERT_TRUE(sut.frame_needs(8u * 1024 * 1024));
        EXPECT_GT(budget->in_use(), 0u);
        EXPECT_EQ(budget->in_use(), sut.charged());
    }
    EXPECT_EQ(budget->in_use(), 0u);
}

TEST(ReadBuffer, ASharedBufferIsNeverWrittenAgain) {
    ReadBuffer sut;
    sut.start(read_chunk);
    arrive(sut, 64);
    const auto held = sut.buffer();  // a listener keeps the frame's bytes
    const std::byte* frame_end = sut.pending().data() + 64;
    sut.consume(64);
    for (int i = 0; i < 8; ++i) {
        std::span<std::byte> into;
        ASSERT_TRUE(sut.next_read(into));
        const bool inside = into.data() >= held->data() && into.data() < held->data() + held->capacity();
        EXPECT_TRUE(!inside || into.data() >= frame_end);
        sut.received(into.size());
        sut.consume(into.size());
    }
}

TEST(ReadBuffer, ReadsLandAtPageOffset512) {
    Buffer b;
    b.resize(8192);
    const auto at = ReadBuffer::aligned_read_start(b, 100);
    EXPECT_EQ((reinterpret_cast<std::uintptr_t>(b.data()) + at + 100) % 4096, 512u);
}

}  // namespace
}  // namespace meshy::detail
