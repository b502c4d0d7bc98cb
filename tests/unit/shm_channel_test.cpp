#include "transport/shm_channel.hpp"  // first: the header is self-contained

#include <gtest/gtest.h>
#include <sys/eventfd.h>
#include <unistd.h>

#include <asio/io_context.hpp>
#include <asio/steady_timer.hpp>
#include <chrono>
#include <cstring>
#include <vector>

namespace meshy::detail {
namespace {

using namespace std::chrono_literals;

/// Both ends of a channel in one process: the dialer's, and the accepter's made from copies of the
/// descriptors the dialer would pass.
struct Pair {
    explicit Pair(asio::io_context& io, std::size_t ring_bytes = 4096) {
        std::string error;
        dialer = ShmChannel::create(io.get_executor(), ring_bytes, error);
        EXPECT_TRUE(dialer) << error;
        std::vector<int> fds;
        for (const int fd : dialer->offer_fds()) {
            fds.push_back(::dup(fd));
        }
        dialer->offered();
        accepter = ShmChannel::adopt(io.get_executor(), fds, ShmRingLayout::mapping_size(ring_bytes), error);
        EXPECT_TRUE(accepter) << error;
    }
    std::unique_ptr<ShmChannel> dialer;
    std::unique_ptr<ShmChannel> accepter;
};

std::vector<std::byte> frame_of(std::size_t size) {
    std::vector<std::byte> f(size, std::byte{7});
    const auto len = static_cast<std::uint32_t>(size - 4);
    std::memcpy(f.data(), &len, 4);
    return f;
}

TEST(ShmChannel, ASleepingReaderIsWokenByTheEventfd) {
    asio::io_context io;
    Pair sut(io);
    bool woken = false;
    sut.accepter->async_wait_for_data([&](std::error_code ec) {
        EXPECT_FALSE(ec);
        woken = true;
    });
    io.poll();
    EXPECT_FALSE(woken);  // nothing sent: it sleeps
    const auto f = frame_of(100);
    ASSERT_EQ(sut.dialer->write(f), 100);
    asio::steady_timer deadline(io, 5s);
    deadline.async_wait([&](std::error_code) { io.stop(); });
    while (!woken && !io.stopped()) {
        io.run_one();
    }
    ASSERT_TRUE(woken);
    std::vector<std::byte> into(200);
    std::string why;
    const auto r = sut.accepter->read(into, why);
    EXPECT_EQ(r.bytes, 100u);
    EXPECT_TRUE(std::equal(f.begin(), f.end(), into.begin()));
}

TEST(ShmChannel, AFullRingWakesItsWriterWhenRoomFreesUp) {
    asio::io_context io;
    Pair sut(io);
    const auto f = frame_of(1024);
    while (sut.accepter->write(f) == 1024) {
    }
    bool room = false;
    sut.accepter->async_wait_for_room([&](std::error_code ec) {
        EXPECT_FALSE(ec);
        room = true;
    });
    io.poll();
    EXPECT_FALSE(room);
    std::vector<std::byte> into(2048);
    std::string why;
    EXPECT_GT(sut.dialer->read(into, why).bytes, 0u);
    asio::steady_timer deadline(io, 5s);
    deadline.async_wait([&](std::error_code) { io.stop(); });
    while (!room && !io.stopped()) {
        io.run_one();
    }
    EXPECT_TRUE(room);
}

TEST(ShmChannel, ClosingEndsTheWaitsAndTheMappings) {
    asio::io_context io;
    Pair sut(io);
    std::error_code got;
    sut.accepter->async_wait_for_data([&](std::error_code ec) { got = ec; });
    io.poll();
    sut.accepter->close();
    io.poll();
    EXPECT_EQ(got, asio::error::operation_aborted);
    EXPECT_EQ(sut.accepter->write(frame_of(8)), -1);
    std::string why;
    std::vector<std::byte> into(8);
    EXPECT_TRUE(sut.accepter->read(into, why).bad_peer);
}

TEST(ShmChannel, RefusesAnOfferThatIsNotOne) {
    asio::io_context io;
    std::string error;
    std::vector<int> fds;
    for (int i = 0; i < 6; ++i) {
        fds.push_back(::eventfd(0, EFD_CLOEXEC));  // no memory at all
    }
    EXPECT_FALSE(ShmChannel::adopt(io.get_executor(), fds, 1u << 20, error));
    EXPECT_FALSE(error.empty());
    EXPECT_FALSE(ShmChannel::adopt(io.get_executor(), std::vector<int>{::eventfd(0, 0)}, 1u << 20, error));
    EXPECT_NE(error.find("descriptors"), std::string::npos);

    const auto large = ShmChannel::create(io.get_executor(), 64 * 1024, error);  // more than the accepter allows
    ASSERT_TRUE(large) << error;
    std::vector<int> copies;
    for (const int fd : large->offer_fds()) {
        copies.push_back(::dup(fd));
    }
    EXPECT_FALSE(ShmChannel::adopt(io.get_executor(), copies, ShmRingLayout::mapping_size(4096), error));
    EXPECT_NE(error.find("at most"), std::string::npos) << error;
}

}  // namespace
}  // namespace meshy::detail
