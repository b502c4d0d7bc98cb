// The outbox alone, without a socket: order, drops, the arena, the idle writer and room waits.
#include "transport/outbox.hpp"

#include <gtest/gtest.h>

#include <asio/co_spawn.hpp>
#include <asio/detached.hpp>
#include <asio/experimental/as_tuple.hpp>
#include <asio/io_context.hpp>
#include <asio/use_awaitable.hpp>
#include <atomic>
#include <chrono>
#include <cstring>
#include <string>
#include <thread>

#include "transport/link.hpp"

namespace meshy::detail {
namespace {

using namespace std::chrono_literals;
using Clock = std::chrono::steady_clock;

SharedFrame frame_of(const std::string& text) {
    auto b = std::make_shared<Buffer>();
    b->append(text.data(), text.size());
    return b;
}

std::span<const std::byte> bytes_of(const std::string& text) {
    return std::as_bytes(std::span(text.data(), text.size()));
}

/// What one batch carries, joined.
std::string joined(const Outbox::Batch& batch) {
    std::string out;
    for (const auto& part : batch.parts) {
        out.append(reinterpret_cast<const char*>(part.data()), part.size());
    }
    return out;
}

class RecordingWaiter : public RoomWaiter {
public:
    void wake(std::error_code ec) override {
        result = ec;
        woken.store(true);
    }
    bool done() const noexcept override { return woken.load(); }
    std::atomic<bool> woken{false};
    std::error_code result;
};

TEST(Outbox, ControlFramesGoBeforeMessages) {
    Outbox sut({.capacity = 8});
    sut.set_peer_ready();
    const auto now = Clock::now();
    sut.push_message(frame_of("m1"), now);
    sut.push_control(frame_of("c1"));
    Outbox::Batch batch;
    sut.take(batch, false);
    EXPECT_EQ(joined(batch), "c1m1");  // control frames first, then messages
}

TEST(Outbox, MessagesWaitForThePeersHandshake) {
    Outbox sut({.capacity = 8});
    sut.push_message(frame_of("m"), Clock::now());
    sut.push_control(frame_of("hello"));
    Outbox::Batch batch;
    sut.take(batch, false);
    EXPECT_EQ(joined(batch), "hello");
    sut.take(batch, false);
    EXPECT_TRUE(batch.parts.empty());
    sut.set_peer_ready();
    sut.take(batch, false);
    EXPECT_EQ(joined(batch), "m");
}

TEST(Outbox, SmallMessagesShareOneArenaWrittenWhole) {
    Outbox sut({.capacity = 64});
    sut.set_peer_ready();
    const std::string head = "h", body = "-body";
    for (int i = 0; i < 10; ++i) {
        sut.copy_message(bytes_of(head), bytes_of(body), Clock::now());
    }
    Outbox::Batch batch;
    sut.take(batch, false);
    ASSERT_EQ(batch.parts.size(), 1u);  // one piece, no per-message frame
    EXPECT_EQ(batch.bytes, 60u);
    EXPECT_TRUE(batch.frames.empty());
    EXPECT_EQ(sut.queued(), 0u);
}

TEST(Outbox, FullDropsTheOldestAndCountsIt) {
    Outbox sut({.capacity = 3});
    sut.set_peer_ready();
    const auto now = Clock::now();
    Outbox::Pushed last;
    for (int i = 0; i < 5; ++i) {
        last = sut.push_message(frame_of("m" + std::to_string(i)), now);
    }
    EXPECT_TRUE(last.full);
    EXPECT_EQ(sut.dropped(), 2u);
    Outbox::Batch batch;
    sut.take(batch, false);
    EXPECT_EQ(joined(batch), "m2m3m4");
}

TEST(Outbox, ArenaMessagesDroppedAreSkipped) {
    Outbox sut({.capacity = 2});
    sut.set_peer_ready();
    for (const std::string m : {"a", "b", "c"}) {
        sut.copy_message(bytes_of(m), {}, Clock::now());
    }
    EXPECT_EQ(sut.dropped(), 1u);
    Outbox::Batch batch;
    sut.take(batch, false);
    EXPECT_EQ(joined(batch), "bc");
}

TEST(Outbox, WaitWhenFullDropsOnlyAtTwiceTheCapacity) {
    Outbox sut({.capacity = 2, .wait_when_full = true});
    sut.set_peer_ready();
    const auto now = Clock::now();
    EXPECT_FALSE(sut.push_message(frame_of("1"), now).full);
    EXPECT_TRUE(sut.push_message(frame_of("2"), now).full);
    sut.push_message(frame_of("3"), now);
    sut.push_message(frame_of("4"), now);
    EXPECT_EQ(sut.dropped(), 0u);
    sut.push_message(frame_of("5"), now);
    EXPECT_EQ(sut.dropped(), 1u);
}

TEST(Outbox, MessagesOlderThanTheTtlExpire) {
    Outbox sut({.capacity = 8, .ttl = 10ms});
    sut.set_peer_ready();
    sut.push_message(frame_of("old"), Clock::now() - 1s);
    sut.push_message(frame_of("new"), Clock::now() + 1s);
    Outbox::Batch batch;
    sut.take(batch, false);
    EXPECT_EQ(batch.expired, 1u);
    EXPECT_EQ(joined(batch), "new");
    EXPECT_EQ(sut.dropped(), 1u);
}

TEST(Outbox, WritesAtOnceOnlyWhenTheWriterIsIdle) {
    Outbox sut({.capacity = 8});
    sut.set_peer_ready();
    auto write_all = [] {
        return Outbox::Written{4, 4};
    };
    auto rest = [](std::size_t) {
        return frame_of("never");
    };
    // The writer is not idle before it first found nothing to do.
    EXPECT_EQ(sut.write_if_idle(write_all, rest), Outbox::Direct::no);
    Outbox::Batch batch;
    sut.take(batch, false);  // nothing: the writer goes idle
    EXPECT_EQ(sut.write_if_idle(write_all, rest), Outbox::Direct::written);
    sut.push_message(frame_of("queued"), Clock::now());
    EXPECT_EQ(sut.write_if_idle(write_all, rest), Outbox::Direct::no);  // never ahead of a queued one
}

TEST(Outbox, APartialWriteQueuesItsRestFirst) {
    Outbox sut({.capacity = 8});
    sut.set_peer_ready();
    Outbox::Batch batch;
    sut.take(batch, false);
    const auto direct = sut.write_if_idle(
        [] {
            return Outbox::Written{2, 6};
        },
        [](std::size_t written) { return frame_of(std::string("abcdef").substr(written)); });
    EXPECT_EQ(direct, Outbox::Direct::partial);
    sut.push_message(frame_of("next"), Clock::now());
    sut.take(batch, false);
    EXPECT_EQ(joined(batch), "cdefnext");
    EXPECT_EQ(batch.presealed, 0u);
}

TEST(Outbox, SealedBytesTheSocketTookNoneOfAreQueuedWhole) {
    Outbox sut({.capacity = 8});
    sut.set_peer_ready();
    Outbox::Batch batch;
    sut.take(batch, false);
    // Frame bytes: nothing written, nothing queued (the caller queues the frame).
    EXPECT_EQ(sut.write_if_idle(
                  [] {
                      return Outbox::Written{0, 6};
                  },
                  [](std::size_t) { return frame_of("never"); }),
              Outbox::Direct::no);
    // Sealed bytes: their nonce is spent, so they go out as they are.
    const auto direct = sut.write_if_idle(
        [] {
            return Outbox::Written{0, 6};
        },
        [](std::size_t written) { return frame_of(std::string("SEALED").substr(written)); }, Outbox::Rest::sealed);
    EXPECT_EQ(direct, Outbox::Direct::partial);
    sut.take(batch, false);
    EXPECT_EQ(joined(batch), "SEALED");
    EXPECT_EQ(batch.presealed, 1u);
}

TEST(Outbox, TheSealedRestOfAPartialWriteIsMarkedOnce) {
    Outbox sut({.capacity = 8});
    sut.set_peer_ready();
    Outbox::Batch batch;
    sut.take(batch, false);
    const auto direct = sut.write_if_idle(
        [] {
            return Outbox::Written{2, 6};
        },
        [](std::size_t written) { return frame_of(std::string("SEALED").substr(written)); }, Outbox::Rest::sealed);
    EXPECT_EQ(direct, Outbox::Direct::partial);
    sut.push_control(frame_of("ctl"));
    sut.take(batch, false);
    EXPECT_EQ(joined(batch), "ALEDctl");
    EXPECT_EQ(batch.presealed, 1u);  // the writer seals only what follows it
    sut.push_control(frame_of("more"));
    sut.take(batch, false);
    EXPECT_EQ(batch.presealed, 0u);
}

TEST(Outbox, TheLastFrameGoesAfterEverythingAndCloses) {
    Outbox sut({.capacity = 8});
    sut.set_peer_ready();
    sut.push_message(frame_of("m"), Clock::now());
    sut.push_last(frame_of("bye"));
    Outbox::Batch batch;
    sut.take(batch, false);
    EXPECT_EQ(joined(batch), "m");
    EXPECT_FALSE(batch.closing);
    sut.take(batch, false);
    EXPECT_EQ(joined(batch), "bye");
    EXPECT_TRUE(batch.closing);
}

TEST(Outbox, ADirectWriterKeepsTheWriterAway) {
    Outbox sut({.capacity = 8});
    sut.set_peer_ready();
    Outbox::Batch batch;
    sut.take(batch, false);
    ASSERT_TRUE(sut.begin_direct(Clock::now() + 1s));
    sut.push_control(frame_of("ping"));
    sut.take(batch, false);
    EXPECT_TRUE(batch.parts.empty());  // the frame being written goes first
    const auto pushed = sut.end_direct(frame_of("tail"), true, Clock::now());
    EXPECT_TRUE(pushed.wake);
    sut.take(batch, false);
    EXPECT_EQ(joined(batch), "tailping");
}

TEST(Outbox, ASealedRestOfADirectWriteGoesFirstAndPresealed) {
    Outbox sut({.capacity = 8});
    sut.set_peer_ready();
    Outbox::Batch batch;
    sut.take(batch, false);
    ASSERT_TRUE(sut.begin_direct(Clock::now() + 1s));
    sut.push_control(frame_of("ping"));
    // Sealed, none of it written: its nonces are spent, so it still goes first, as it is.
    const auto pushed = sut.end_direct(frame_of("sealed"), false, Clock::now(), Outbox::Rest::sealed);
    EXPECT_TRUE(pushed.wake);
    sut.take(batch, false);
    EXPECT_EQ(joined(batch), "sealedping");
    EXPECT_EQ(batch.presealed, 1u);
}

TEST(Outbox, BlockingWaitEndsWhenTheWriterMakesRoom) {
    Outbox sut({.capacity = 1, .wait_when_full = true});
    sut.set_peer_ready();
    ASSERT_TRUE(sut.push_message(frame_of("m"), Clock::now()).full);
    std::thread writer([&] {
        std::this_thread::sleep_for(20ms);  // the waiter is (most likely) blocked by now
        Outbox::Batch batch;
        sut.take(batch, false);
    });
    const auto started = Clock::now();
    sut.wait_for_room(started + 10s);
    EXPECT_LT(Clock::now() - started, 5s);
    EXPECT_FALSE(sut.full());
    writer.join();
}

TEST(Outbox, AParkedWaiterIsWokenByRoom) {
    Outbox sut({.capacity = 1, .wait_when_full = true});
    sut.set_peer_ready();
    auto waiter = std::make_shared<RecordingWaiter>();
    bool closed = false;
    EXPECT_FALSE(sut.park(waiter, closed));  // room now: not parked
    EXPECT_FALSE(closed);
    sut.push_message(frame_of("m"), Clock::now());
    ASSERT_TRUE(sut.park(waiter, closed));
    EXPECT_FALSE(waiter->woken);
    Outbox::Batch batch;
    sut.take(batch, false);
    EXPECT_TRUE(waiter->woken);
    EXPECT_FALSE(waiter->result);
}

TEST(Outbox, AParkedWaiterIsWokenByClose) {
    Outbox sut({.capacity = 1, .wait_when_full = true});
    sut.push_message(frame_of("m"), Clock::now());
    auto waiter = std::make_shared<RecordingWaiter>();
    bool closed = false;
    ASSERT_TRUE(sut.park(waiter, closed));
    EXPECT_EQ(sut.close(), 1u);
    EXPECT_TRUE(waiter->woken);
    EXPECT_TRUE(waiter->result);
    EXPECT_FALSE(sut.park(std::make_shared<RecordingWaiter>(), closed));
    EXPECT_TRUE(closed);
}

/// A link over a bare outbox, for the asynchronous room wait alone (no socket).
class OutboxLink final : public Link {
public:
    OutboxLink(asio::any_io_executor executor, OutboxOptions options)
        : executor_(std::move(executor)), outbox(options) {}
    bool send(std::span<const std::byte> head, std::span<const std::byte> body, SendMode, Clock::time_point) override {
        return outbox.copy_message(head, body, Clock::now()).full;
    }
    bool send(SharedFrame frame, SendMode) override { return outbox.push_message(std::move(frame), Clock::now()).full; }
    void wait_for_room(Clock::time_point deadline) override { outbox.wait_for_room(deadline); }
    bool park_room_waiter(std::shared_ptr<RoomWaiter> waiter, bool& closed) override {
        return outbox.park(std::move(waiter), closed);
    }
    void close(const std::string&) override { outbox.close(); }
    void close_after(SharedFrame, const std::string&) override { outbox.close(); }
    bool open() const noexcept override { return true; }
    bool outbound() const noexcept override { return false; }
    const wire::Handshake& peer() const noexcept override { return peer_; }
    const std::string& remote() const noexcept override { return remote_; }
    std::string_view kind() const noexcept override { return "test"; }
    asio::any_io_executor executor() const override { return executor_; }
    std::uint64_t dropped() const noexcept override { return outbox.dropped(); }

    asio::any_io_executor executor_;
    Outbox outbox;
    wire::Handshake peer_;
    std::string remote_ = "test";
};

constexpr auto use_tuple = asio::experimental::as_tuple(asio::use_awaitable);

/// A coroutine on `io` that waits for room on `link` until `deadline`, then sets `result`.
void spawn_room_wait(asio::io_context& io, Link& link, Clock::time_point deadline, std::error_code& result) {
    result = asio::error::would_block;  // not completed yet
    asio::co_spawn(
        io,
        [&link, deadline, &result]() -> asio::awaitable<void> {
            auto [ec] = co_await link.async_wait_for_room(deadline, use_tuple);
            result = ec;
        },
        asio::detached);
}

/// A coroutine on `io` that runs `f`, after those spawned before it started.
template <class F>
void spawn_then(asio::io_context& io, F f) {
    asio::co_spawn(
        io,
        [f]() -> asio::awaitable<void> {
            f();
            co_return;
        },
        asio::detached);
}

TEST(LinkRoomWait, SuspendsWithoutBlockingItsThreadAndResumesOnRoom) {
    asio::io_context io;
    OutboxLink sut(io.get_executor(), {.capacity = 1, .wait_when_full = true});
    sut.outbox.set_peer_ready();
    ASSERT_TRUE(sut.send(frame_of("m"), SendMode::message));
    std::error_code result;
    bool other_ran = false;
    spawn_room_wait(io, sut, Clock::now() + 10s, result);
    spawn_then(io, [&] {
        other_ran = true;  // the same thread runs on while the first coroutine waits
        Outbox::Batch batch;
        sut.outbox.take(batch, false);  // the writer makes room
    });
    io.run_for(5s);
    EXPECT_TRUE(other_ran);
    EXPECT_FALSE(result) << result.message();
}

TEST(LinkRoomWait, EndsAtTheDeadline) {
    asio::io_context io;
    OutboxLink sut(io.get_executor(), {.capacity = 1, .wait_when_full = true});
    sut.send(frame_of("m"), SendMode::message);
    std::error_code result;
    spawn_room_wait(io, sut, Clock::now() + 20ms, result);
    io.run_for(5s);
    EXPECT_EQ(result, asio::error::timed_out);
}

TEST(LinkRoomWait, EndsWhenTheLinkCloses) {
    asio::io_context io;
    OutboxLink sut(io.get_executor(), {.capacity = 1, .wait_when_full = true});
    sut.send(frame_of("m"), SendMode::message);
    std::error_code result;
    spawn_room_wait(io, sut, Clock::now() + 10s, result);
    spawn_then(io, [&] { sut.close("test"); });
    io.run_for(5s);
    EXPECT_EQ(result, asio::error::not_connected);
}

TEST(LinkRoomWait, CompletesAtOnceWithRoom) {
    asio::io_context io;
    OutboxLink sut(io.get_executor(), {.capacity = 4});
    std::error_code result;
    spawn_room_wait(io, sut, Clock::now() + 10s, result);
    io.run_for(5s);
    EXPECT_FALSE(result) << result.message();
}

}  // namespace
}  // namespace meshy::detail
