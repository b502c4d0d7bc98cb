#include "transport/shm_pool.hpp"  // first: the header is self-contained

#include <gtest/gtest.h>
#include <sys/mman.h>
#include <unistd.h>

#include <atomic>
#include <cstring>
#include <vector>

#include "transport/shm_control.hpp"
#include "transport/shm_pool_allocator.hpp"
#include "transport/shm_region.hpp"
#include "wire/frame.hpp"

namespace meshy::detail {
namespace {

constexpr std::uint64_t peer_a = 7;
constexpr std::uint64_t peer_b = 8;

TEST(ShmPoolAllocator, AllocatesAlignedBlocksUntilFull) {
    ShmPoolAllocator sut(4096, 16);
    const auto a = sut.allocate(100);
    const auto b = sut.allocate(1);
    ASSERT_TRUE(a && b);
    EXPECT_EQ(a->offset, 0u);
    EXPECT_EQ(a->size, 100u);
    EXPECT_EQ(b->offset, 128u);  // 100 rounded up to the alignment
    EXPECT_EQ(b->offset % ShmPoolAllocator::alignment, 0u);
    EXPECT_FALSE(sut.allocate(4096 - 128));  // 64 bytes short
    EXPECT_TRUE(sut.allocate(4096 - 192));
    EXPECT_FALSE(sut.allocate(1));
    EXPECT_EQ(sut.free_bytes(), 0u);
    EXPECT_EQ(sut.live_blocks(), 3u);
}

TEST(ShmPoolAllocator, RefusesWhatNeverFits) {
    ShmPoolAllocator sut(4096, 2);
    EXPECT_FALSE(sut.fits(0));
    EXPECT_FALSE(sut.fits(4097));
    EXPECT_TRUE(sut.fits(4096));
    EXPECT_FALSE(sut.allocate(0));
    EXPECT_TRUE(sut.allocate(1));
    EXPECT_TRUE(sut.allocate(1));
    EXPECT_FALSE(sut.allocate(1));  // out of slots, not bytes
}

TEST(ShmPoolAllocator, FreesABlockWithItsLastHolder) {
    ShmPoolAllocator sut(4096, 4);
    const auto a = sut.allocate(4096);
    ASSERT_TRUE(a);
    EXPECT_TRUE(sut.hold(a->slot, a->generation, peer_a));
    EXPECT_TRUE(sut.hold(a->slot, a->generation, peer_b));
    EXPECT_FALSE(sut.hold(a->slot, a->generation, peer_b));  // once per holder
    EXPECT_TRUE(sut.release(a->slot, a->generation, ShmPoolAllocator::owner));
    EXPECT_TRUE(sut.release(a->slot, a->generation, peer_a));
    EXPECT_FALSE(sut.allocate(1));  // peer_b still reads it
    EXPECT_TRUE(sut.release(a->slot, a->generation, peer_b));
    EXPECT_EQ(sut.live_blocks(), 0u);
    EXPECT_EQ(sut.free_bytes(), 4096u);
    EXPECT_TRUE(sut.allocate(4096));  // the free ranges merged back into one
}

TEST(ShmPoolAllocator, RefusesReleasesOfBlocksNotHeld) {
    ShmPoolAllocator sut(4096, 4);
    const auto a = sut.allocate(64);
    ASSERT_TRUE(a);
    ASSERT_TRUE(sut.hold(a->slot, a->generation, peer_a));
    EXPECT_FALSE(sut.release(a->slot, a->generation, peer_b));      // not its hold
    EXPECT_FALSE(sut.release(a->slot, a->generation + 1, peer_a));  // another generation
    EXPECT_FALSE(sut.release(99, 0, peer_a));                       // no such slot
    EXPECT_FALSE(sut.release(0xffffffffu, 0, peer_a));
    EXPECT_TRUE(sut.release(a->slot, a->generation, peer_a));
    EXPECT_FALSE(sut.release(a->slot, a->generation, peer_a));  // twice
    // Freed and reused: the old id names nothing, not the new block.
    ASSERT_TRUE(sut.release(a->slot, a->generation, ShmPoolAllocator::owner));
    const auto b = sut.allocate(64);
    ASSERT_TRUE(b);
    EXPECT_EQ(b->slot, a->slot);
    EXPECT_NE(b->generation, a->generation);
    EXPECT_FALSE(sut.hold(a->slot, a->generation, peer_a));
    EXPECT_FALSE(sut.release(a->slot, a->generation, ShmPoolAllocator::owner));
}

TEST(ShmPoolAllocator, ReleasesEveryHoldOfAHolderThatWent) {
    ShmPoolAllocator sut(64 * 64, 64);
    std::vector<ShmPoolAllocator::Block> blocks;
    for (int i = 0; i < 10; ++i) {
        auto b = sut.allocate(64);
        ASSERT_TRUE(b);
        ASSERT_TRUE(sut.hold(b->slot, b->generation, peer_a));
        if (i % 2 == 0) {
            ASSERT_TRUE(sut.hold(b->slot, b->generation, peer_b));
        }
        ASSERT_TRUE(sut.release(b->slot, b->generation, ShmPoolAllocator::owner));
        blocks.push_back(*b);
    }
    EXPECT_EQ(sut.holds_of(peer_a), 10u);
    EXPECT_EQ(sut.release_holder(peer_a), 10u);
    EXPECT_EQ(sut.live_blocks(), 5u);  // those peer_b reads still
    EXPECT_EQ(sut.release_holder(peer_b), 5u);
    EXPECT_EQ(sut.live_blocks(), 0u);
    EXPECT_EQ(sut.free_bytes(), 64u * 64);
    EXPECT_TRUE(sut.allocate(64 * 64));
}

TEST(ShmPoolAllocator, MergesFreedRangesInAnyOrder) {
    ShmPoolAllocator sut(64 * 8, 8);
    std::vector<ShmPoolAllocator::Block> blocks;
    for (int i = 0; i < 8; ++i) {
        blocks.push_back(*sut.allocate(64));
    }
    for (const int i : {3, 1, 2, 7, 0, 5, 6, 4}) {
        ASSERT_TRUE(sut.release(blocks[i].slot, blocks[i].generation, ShmPoolAllocator::owner));
    }
    EXPECT_TRUE(sut.allocate(64 * 8));
}

TEST(ShmLoanPool, PeersMapItReadOnlyOnly) {
    ShmLoanPool sut(64 * 1024);
    std::string error;
    ASSERT_TRUE(sut.ready(error)) << error;
    const auto block = sut.allocate(5);
    ASSERT_TRUE(block);
    std::memcpy(sut.bytes(*block).data(), "hello", 5);
    // What a peer gets: a copy of the descriptor, mapped read-only.
    auto peer = ShmRegion::adopt_read_only(::dup(sut.fd()), 64 * 1024, error);
    ASSERT_TRUE(peer) << error;
    EXPECT_EQ(std::memcmp(peer.bytes().data() + block->offset, "hello", 5), 0);
    // It cannot have it writable, in a new mapping or by changing its own.
    void* writable = ::mmap(nullptr, 4096, PROT_READ | PROT_WRITE, MAP_SHARED, sut.fd(), 0);
    EXPECT_EQ(writable, MAP_FAILED);
    EXPECT_NE(::mprotect(peer.bytes().data(), 4096, PROT_READ | PROT_WRITE), 0);
    EXPECT_EQ(::write(sut.fd(), "x", 1), -1);
}

TEST(ShmLoanPool, APeerRefusesAPoolLargerThanItsCap) {
    ShmLoanPool sut(128 * 1024);
    std::string error;
    ASSERT_TRUE(sut.ready(error)) << error;
    EXPECT_FALSE(ShmRegion::adopt_read_only(::dup(sut.fd()), 64 * 1024, error));
    EXPECT_NE(error.find("at most"), std::string::npos) << error;
    // Nor anything but a sealed memfd.
    int pipe_fds[2];
    ASSERT_EQ(::pipe(pipe_fds), 0);
    ::close(pipe_fds[1]);
    EXPECT_FALSE(ShmRegion::adopt_read_only(pipe_fds[0], 64 * 1024, error));
}

TEST(ShmLoanPool, WakesAWaiterWhenABlockIsFreed) {
    ShmLoanPool sut(64 * 1024);
    std::string error;
    ASSERT_TRUE(sut.ready(error));
    const auto all = sut.allocate(64 * 1024);
    ASSERT_TRUE(all);
    ASSERT_TRUE(sut.hold(*all, peer_a));
    ASSERT_TRUE(sut.release(all->slot, all->generation, ShmPoolAllocator::owner));
    int woken = 0;
    EXPECT_FALSE(sut.allocate(1, [&] { ++woken; }));
    EXPECT_EQ(woken, 0);
    EXPECT_EQ(sut.release_holder(peer_a), 1u);  // its link closed
    EXPECT_EQ(woken, 1);
    EXPECT_TRUE(sut.allocate(1));
    EXPECT_FALSE(sut.allocate(64 * 1024, [&] { ++woken; }));
    sut.stop();  // the node stops: waiters end too
    EXPECT_EQ(woken, 2);
    EXPECT_FALSE(sut.allocate(1));
}

// ---- the loan control messages --------------------------------------------------------------------

shm::Control round_trip(const shm::Control& in, Buffer& frame) {
    frame.clear();
    shm::encode_control(frame, in);
    wire::FrameView view;
    std::size_t used = 0, needed = 0;
    std::string reason;
    EXPECT_EQ(wire::next_frame(frame.bytes(), 1 << 20, view, used, needed, reason), wire::Parse::ok) << reason;
    EXPECT_EQ(used, frame.size());
    EXPECT_EQ(view.type, wire::FrameType::ping);
    shm::Control out;
    EXPECT_TRUE(shm::decode_control(view.body, out));
    return out;
}

TEST(ShmLoanControl, RoundTrips) {
    Buffer frame;
    shm::Control pool{shm::ControlKind::pool};
    pool.pool_bytes = 64u << 20;
    EXPECT_EQ(round_trip(pool, frame).pool_bytes, 64u << 20);
    EXPECT_EQ(round_trip({shm::ControlKind::pool_mapped}, frame).kind, shm::ControlKind::pool_mapped);

    shm::Control loaned{shm::ControlKind::loaned};
    loaned.codec = CodecId::msgpack;
    loaned.sent_at_ns = 0x1122334455667788;
    loaned.slot = 3;
    loaned.generation = 0xdeadbeef;
    loaned.offset = 1u << 20;
    loaned.length = 8u << 20;
    loaned.topic = "camera";
    const auto got = round_trip(loaned, frame);
    EXPECT_EQ(got.kind, shm::ControlKind::loaned);
    EXPECT_EQ(got.codec, CodecId::msgpack);
    EXPECT_EQ(got.sent_at_ns, loaned.sent_at_ns);
    EXPECT_EQ(got.slot, 3u);
    EXPECT_EQ(got.generation, 0xdeadbeefu);
    EXPECT_EQ(got.offset, loaned.offset);
    EXPECT_EQ(got.length, loaned.length);
    EXPECT_EQ(got.topic, "camera");

    shm::Control release{shm::ControlKind::release};
    release.slot = 1023;
    release.generation = 9;
    const auto back = round_trip(release, frame);
    EXPECT_EQ(back.slot, 1023u);
    EXPECT_EQ(back.generation, 9u);
}

TEST(ShmLoanControl, RefusesMalformedBodies) {
    Buffer frame;
    shm::Control loaned{shm::ControlKind::loaned};
    loaned.topic = "t";
    shm::encode_control(frame, loaned);
    auto body = frame.bytes().subspan(wire::frame_prefix);
    shm::Control out;
    EXPECT_TRUE(shm::decode_control(body, out));
    EXPECT_FALSE(shm::decode_control(body.first(body.size() - 1), out));  // no topic
    frame.clear();
    shm::Control release{shm::ControlKind::release};
    shm::encode_control(frame, release);
    body = frame.bytes().subspan(wire::frame_prefix);
    EXPECT_FALSE(shm::decode_control(body.first(body.size() - 1), out));
    std::vector<std::byte> longer(body.begin(), body.end());
    longer.push_back(std::byte{0});
    EXPECT_FALSE(shm::decode_control(longer, out));
    longer = {body.begin(), body.end()};
    longer[4] = std::byte{99};  // an unknown kind
    EXPECT_FALSE(shm::decode_control(longer, out));
}

TEST(ShmLoanControl, ChecksWhereALoanLies) {
    EXPECT_TRUE(shm::loan_in_pool(0, 4096, 4096));
    EXPECT_TRUE(shm::loan_in_pool(4095, 1, 4096));
    EXPECT_FALSE(shm::loan_in_pool(4096, 1, 4096));
    EXPECT_FALSE(shm::loan_in_pool(0, 0, 4096));
    EXPECT_FALSE(shm::loan_in_pool(1, 4096, 4096));
    EXPECT_FALSE(shm::loan_in_pool(0xffffffffffffffff, 2, 4096));  // no wrap-around
    EXPECT_FALSE(shm::loan_in_pool(2, 0xffffffffffffffff, 4096));
}

}  // namespace
}  // namespace meshy::detail
