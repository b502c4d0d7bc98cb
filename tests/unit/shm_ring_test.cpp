#include "transport/shm_ring.hpp"  // first: the header is self-contained

#include <gtest/gtest.h>
#include <sys/mman.h>
#include <unistd.h>

#include <atomic>
#include <cstring>
#include <fstream>
#include <random>
#include <thread>
#include <vector>

#include "transport/shm_region.hpp"

namespace meshy::detail {
namespace {

/// A frame as the wire has it: u32 length of what follows, then `size - 4` bytes of `fill`.
std::vector<std::byte> frame_of(std::size_t size, unsigned fill) {
    std::vector<std::byte> f(size);
    const auto len = static_cast<std::uint32_t>(size - 4);
    std::memcpy(f.data(), &len, 4);
    for (std::size_t i = 4; i < size; ++i) {
        f[i] = std::byte(static_cast<unsigned char>(fill + i));
    }
    return f;
}

struct Ring {
    explicit Ring(std::size_t capacity = ShmRingLayout::min_capacity)
        : memory(ShmRingLayout::mapping_size(capacity)), writer(memory), reader(memory) {}
    std::vector<std::byte> memory;
    ShmRingWriter writer;
    ShmRingReader reader;

    std::uint64_t& index(std::size_t offset) { return *reinterpret_cast<std::uint64_t*>(memory.data() + offset); }
};

std::vector<std::byte> drain(ShmRingReader& reader) {
    std::vector<std::byte> out;
    std::byte chunk[1000];
    std::string why;
    for (;;) {
        const auto r = reader.read(chunk, why);
        EXPECT_FALSE(r.bad_peer) << why;
        if (r.bytes == 0) {
            return out;
        }
        out.insert(out.end(), chunk, chunk + r.bytes);
    }
}

TEST(ShmRingLayout, AcceptsAPageOfHeaderAndAPowerOfTwo) {
    EXPECT_TRUE(ShmRingLayout::valid_size(4096 + 4096));
    EXPECT_TRUE(ShmRingLayout::valid_size(4096 + (4u << 20)));
    EXPECT_FALSE(ShmRingLayout::valid_size(4096 + 5000));
    EXPECT_FALSE(ShmRingLayout::valid_size(4096));
    EXPECT_FALSE(ShmRingLayout::valid_size(0));
    EXPECT_FALSE(ShmRingLayout::valid_size(4096 + 2048));
    EXPECT_EQ(ShmRingLayout::mapping_size(5000), 4096u + 8192u);
}

TEST(ShmRing, CarriesFramesInOrderAcrossTheWrap) {
    Ring sut;
    std::vector<std::byte> sent, got;
    for (unsigned i = 0; i < 200; ++i) {
        const auto f = frame_of(5 + (i * 37) % 900, i);
        const auto w = sut.writer.write(f);
        ASSERT_FALSE(w.bad_peer);
        sent.insert(sent.end(), f.begin(), f.begin() + static_cast<std::ptrdiff_t>(w.taken));
        if (w.taken < f.size()) {
            const auto more = drain(sut.reader);
            got.insert(got.end(), more.begin(), more.end());
            const auto rest = sut.writer.write(std::span(f).subspan(w.taken));
            ASSERT_EQ(rest.taken, f.size() - w.taken);
            sent.insert(sent.end(), f.begin() + static_cast<std::ptrdiff_t>(w.taken), f.end());
        }
    }
    const auto more = drain(sut.reader);
    got.insert(got.end(), more.begin(), more.end());
    EXPECT_EQ(got, sent);
}

TEST(ShmRing, ABatchOfPartsGoesInAsOneWriteAndStopsWhereTheRingIsFull) {
    Ring sut;
    // Frames split as a writer's batch holds them (a header part, then its body), more of them
    // than the ring holds: the first write takes what fits, ending inside a part.
    std::vector<std::vector<std::byte>> frames;
    std::vector<std::span<const std::byte>> parts;
    std::vector<std::byte> sent;
    for (unsigned i = 0; sent.size() < 2 * sut.writer.capacity(); ++i) {
        frames.push_back(frame_of(5 + (i * 53) % 700, i));
        const std::span<const std::byte> f(frames.back());
        parts.push_back(f.first(5));
        parts.push_back(f.subspan(5));
        sent.insert(sent.end(), f.begin(), f.end());
    }
    std::span<std::span<const std::byte>> left(parts);
    std::vector<std::byte> got;
    for (int rounds = 0; !left.empty() && rounds < 100; ++rounds) {
        const auto w = sut.writer.write(left);
        ASSERT_FALSE(w.bad_peer);
        ASSERT_GT(w.taken, 0u);
        auto taken = w.taken;
        while (!left.empty() && taken >= left.front().size()) {
            taken -= left.front().size();
            left = left.subspan(1);
        }
        if (!left.empty()) {
            EXPECT_EQ(sut.writer.room(), 0u);  // it stopped only because the ring was full
            left.front() = left.front().subspan(taken);
        }
        const auto more = drain(sut.reader);
        got.insert(got.end(), more.begin(), more.end());
    }
    const auto more = drain(sut.reader);
    got.insert(got.end(), more.begin(), more.end());
    EXPECT_EQ(got, sent);
}

TEST(ShmRing, APartFrameIsNotVisible) {
    Ring sut;
    const auto f = frame_of(1000, 7);
    ASSERT_EQ(sut.writer.write(std::span(f).first(3)).taken, 3u);  // part of the prefix
    EXPECT_FALSE(sut.reader.readable());
    ASSERT_EQ(sut.writer.write(std::span(f).subspan(3, 500)).taken, 500u);
    EXPECT_FALSE(sut.reader.readable());
    ASSERT_EQ(sut.writer.write(std::span(f).subspan(503)).taken, f.size() - 503);
    EXPECT_TRUE(sut.reader.readable());
    EXPECT_EQ(drain(sut.reader), f);
}

TEST(ShmRing, AFrameLargerThanTheRingStreamsInPieces) {
    Ring sut;
    const auto f = frame_of(3 * sut.writer.capacity() + 123, 3);
    std::size_t at = 0;
    std::vector<std::byte> got;
    for (int rounds = 0; at < f.size() && rounds < 100; ++rounds) {
        const auto w = sut.writer.write(std::span(f).subspan(at));
        ASSERT_FALSE(w.bad_peer);
        at += w.taken;
        const auto more = drain(sut.reader);
        EXPECT_FALSE(more.empty());
        got.insert(got.end(), more.begin(), more.end());
    }
    EXPECT_EQ(got, f);
    // The frame after it is whole again before it shows.
    const auto g = frame_of(100, 1);
    ASSERT_EQ(sut.writer.write(std::span(g).first(50)).taken, 50u);
    EXPECT_FALSE(sut.reader.readable());
}

TEST(ShmRing, AnImpossibleWriteIndexIsAnError) {
    Ring sut;
    std::string why;
    std::byte into[64];
    sut.index(ShmRingLayout::write_offset) = sut.writer.capacity() + 1;  // more than the ring holds
    auto r = sut.reader.read(into, why);
    EXPECT_TRUE(r.bad_peer);
    EXPECT_NE(why.find("write index"), std::string::npos);
    EXPECT_EQ(r.bytes, 0u);
    Ring backwards;
    const auto f = frame_of(100, 1);
    backwards.writer.write(f);
    drain(backwards.reader);
    backwards.index(ShmRingLayout::write_offset) = 10;  // behind what was read
    EXPECT_TRUE(backwards.reader.read(into, why).bad_peer);
}

TEST(ShmRing, AnImpossibleReadIndexIsAnError) {
    Ring sut;
    const auto f = frame_of(100, 1);
    sut.writer.write(f);
    sut.index(ShmRingLayout::read_offset) = 5000;  // beyond what was published
    EXPECT_TRUE(sut.writer.write(f).bad_peer);
    EXPECT_EQ(sut.writer.room(), 0u);
}

TEST(ShmRing, TheReaderIsWokenOnlyWhenItSaidItSleeps) {
    Ring sut;
    const auto f = frame_of(64, 1);
    EXPECT_FALSE(sut.writer.write(f).wake_reader);
    drain(sut.reader);
    EXPECT_FALSE(sut.reader.announce_waiting());
    EXPECT_TRUE(sut.writer.write(f).wake_reader);
    EXPECT_FALSE(sut.writer.write(f).wake_reader);  // woken once
    EXPECT_TRUE(sut.reader.announce_waiting());     // bytes wait: no sleep
}

TEST(ShmRing, TheWriterIsWokenWhenRoomFreesUp) {
    Ring sut;
    const auto f = frame_of(1024, 1);
    while (sut.writer.write(f).taken == f.size()) {
    }
    // The last frame went in part: finish it once there is room.
    EXPECT_FALSE(sut.writer.announce_waiting());
    std::byte into[512];
    std::string why;
    EXPECT_TRUE(sut.reader.read(into, why).wake_writer);
    EXPECT_FALSE(sut.reader.read(into, why).wake_writer);
}

TEST(ShmRing, TwoThreadsStreamManyFramesInOrder) {
    Ring sut(64 * 1024);
    constexpr int frames = 5000;
    std::vector<std::byte> sent;
    std::mt19937 rng(42);
    for (int i = 0; i < frames; ++i) {
        const auto f = frame_of(5 + rng() % (i % 100 == 0 ? 150000 : 3000), static_cast<unsigned>(i));
        sent.insert(sent.end(), f.begin(), f.end());
    }
    std::atomic<bool> failed{false};
    std::thread producer([&] {
        std::size_t at = 0;
        const auto until = std::chrono::steady_clock::now() + std::chrono::seconds(30);
        while (at < sent.size() && std::chrono::steady_clock::now() < until) {
            const auto w = sut.writer.write(std::span(sent).subspan(at, std::min<std::size_t>(sent.size() - at, 7000)));
            if (w.bad_peer) {
                failed = true;
                return;
            }
            at += w.taken;
        }
    });
    std::vector<std::byte> got;
    got.reserve(sent.size());
    std::vector<std::byte> chunk(5000);
    std::string why;
    const auto until = std::chrono::steady_clock::now() + std::chrono::seconds(30);
    while (got.size() < sent.size() && std::chrono::steady_clock::now() < until && !failed) {
        const auto r = sut.reader.read(chunk, why);
        ASSERT_FALSE(r.bad_peer) << why;
        got.insert(got.end(), chunk.begin(), chunk.begin() + static_cast<std::ptrdiff_t>(r.bytes));
    }
    producer.join();
    EXPECT_FALSE(failed);
    EXPECT_TRUE(got == sent);
}

bool maps_name(const std::string& name) {
    std::ifstream maps("/proc/self/maps");
    std::string line;
    while (std::getline(maps, line)) {
        if (line.find(name) != std::string::npos) {
            return true;
        }
    }
    return false;
}

TEST(ShmRegion, IsSharedBetweenItsMappingsAndGoesWithThem) {
    std::string error;
    {
        auto made = ShmRegion::create(ShmRingLayout::mapping_size(8192), "meshy-unit-test", error);
        ASSERT_TRUE(made) << error;
        auto mapped = ShmRegion::adopt(::dup(made.fd()), 1u << 20, &ShmRingLayout::valid_size, error);
        ASSERT_TRUE(mapped) << error;
        made.close_fd();
        made.bytes()[5000] = std::byte{42};
        EXPECT_EQ(mapped.bytes()[5000], std::byte{42});
        EXPECT_TRUE(maps_name("/memfd:meshy-unit-test"));
    }
    EXPECT_FALSE(maps_name("/memfd:meshy-unit-test"));
}

TEST(ShmRegion, RefusesWhatItCannotTrust) {
    std::string error;
    auto made = ShmRegion::create(ShmRingLayout::mapping_size(1u << 20), "meshy-unit-test", error);
    ASSERT_TRUE(made) << error;
    EXPECT_FALSE(ShmRegion::adopt(::dup(made.fd()), 64 * 1024, &ShmRingLayout::valid_size, error));
    EXPECT_NE(error.find("at most"), std::string::npos);

    const int unsealed = ::memfd_create("meshy-unit-test", MFD_CLOEXEC);
    ASSERT_GE(unsealed, 0);
    ASSERT_EQ(::ftruncate(unsealed, 8192), 0);
    EXPECT_FALSE(ShmRegion::adopt(unsealed, 1u << 20, &ShmRingLayout::valid_size, error));
    EXPECT_NE(error.find("sealed"), std::string::npos);

    int pipe_fds[2];
    ASSERT_EQ(::pipe(pipe_fds), 0);
    ::close(pipe_fds[1]);
    EXPECT_FALSE(ShmRegion::adopt(pipe_fds[0], 1u << 20, &ShmRingLayout::valid_size, error));
}

}  // namespace
}  // namespace meshy::detail
