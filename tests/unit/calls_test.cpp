// The pending-call table alone: deadlines and failures, with no peer and no socket.
#include "node/calls.hpp"

#include <gtest/gtest.h>

#include <asio/io_context.hpp>
#include <optional>

#include "node_part_fakes.hpp"

namespace meshy::detail {
namespace {

struct CallsTest : testing::Test {
    asio::io_context io;
    NodeOptions options;
    IdleLinks links{io, options};
    Calls sut{io.get_executor()};
    std::shared_ptr<PeerLink> link = links.obtain("peer-1");  // no advert: never dialed, requests wait in it

    void call(std::optional<CallOutcome>& out, std::chrono::milliseconds timeout) {
        Buffer request;
        request.append("req", 3);
        sut.start(std::make_unique<RecordingWaiter>(&out), links, *link, "svc", CodecId::raw, request, timeout);
    }
};

TEST_F(CallsTest, AnUnansweredCallTimesOut) {
    std::optional<CallOutcome> out;
    call(out, std::chrono::milliseconds(20));
    EXPECT_FALSE(out);
    EXPECT_EQ(link->parked.size(), 1u);  // its request waits for the link
    io.run_for(std::chrono::milliseconds(500));
    ASSERT_TRUE(out);
    EXPECT_EQ(out->ec, make_error_code(errc::timeout));
}

TEST_F(CallsTest, ALostProviderFailsItsCallsOnly) {
    std::optional<CallOutcome> mine, other;
    call(mine, std::chrono::milliseconds(0));
    auto other_link = links.obtain("peer-2");
    Buffer request;
    sut.start(std::make_unique<RecordingWaiter>(&other), links, *other_link, "svc", CodecId::raw, request, {});
    sut.fail_peer("peer-1", errc::connection_lost, "gone");
    ASSERT_TRUE(mine);
    EXPECT_EQ(mine->ec, make_error_code(errc::connection_lost));
    EXPECT_FALSE(other);
    sut.stop();
    ASSERT_TRUE(other);
    EXPECT_EQ(other->ec, make_error_code(errc::not_running));
}

TEST_F(CallsTest, CallsAfterStopFailAtOnce) {
    sut.stop();
    std::optional<CallOutcome> out;
    call(out, {});
    ASSERT_TRUE(out);
    EXPECT_EQ(out->ec, make_error_code(errc::not_running));
}

}  // namespace
}  // namespace meshy::detail
