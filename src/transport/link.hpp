// Internal: the seam between the node and its transports. A Link is one established path to a
// peer (TCP and Unix sockets today: Connection; shared memory next): the node sends frames
// through it, says what each frame is (SendMode), and waits for room when the link is full.
#pragma once

#include <asio/any_io_executor.hpp>
#include <asio/associated_executor.hpp>
#include <asio/async_result.hpp>
#include <asio/error.hpp>
#include <asio/executor_work_guard.hpp>
#include <asio/post.hpp>
#include <asio/steady_timer.hpp>
#include <atomic>
#include <chrono>
#include <cstdint>
#include <memory>
#include <optional>
#include <span>
#include <string>
#include <string_view>
#include <system_error>

#include "meshy/buffer.hpp"
#include "transport/room_waiter.hpp"
#include "wire/frame.hpp"

namespace meshy::detail {

using SharedFrame = std::shared_ptr<const Buffer>;

/// What a frame is; the link picks how to carry it.
enum class SendMode {
    control,  ///< never dropped, queued in order (handshake, info, pings)
    reply,    ///< a call's reply: never dropped; written at once by the sending thread when the link is idle
    request,  ///< a call's request: written at once when the link is idle, else queued like a message
    message,  ///< a topic message: subject to the outbox's capacity and TTL (drop oldest)
    /// A topic message whose sender may wait (OutboxFull::wait, not on the link's executor): a large
    /// one is written by the sender itself, from its own bytes, until the deadline given with it.
    message_wait,
};

class Link {
public:
    using Clock = std::chrono::steady_clock;

    virtual ~Link() = default;

    /// Sends a frame given as `head` then `body` (the caller's bytes, valid during the call only).
    /// `deadline`: for SendMode::message_wait, how long the sender may write itself.
    /// @returns true when the link's outbox is full now (a sender that may wait should).
    virtual bool send(std::span<const std::byte> head,
                      std::span<const std::byte> body,
                      SendMode mode,
                      Clock::time_point deadline = {}) = 0;
    /// Sends a whole frame, shared (it may be queued for several links). @returns as above.
    virtual bool send(SharedFrame frame, SendMode mode) = 0;
    /// Blocks the calling thread until the outbox has room, the link closes, or `deadline` passes.
    /// Never call it on the link's executor.
    virtual void wait_for_room(Clock::time_point deadline) = 0;
    /// Parks `waiter` until the outbox has room or the link closes. @returns false when the wait
    /// is over at once (`closed` says why): the caller completes it.
    virtual bool park_room_waiter(std::shared_ptr<RoomWaiter> waiter, bool& closed) = 0;
    /// Closes the link (thread-safe, idempotent); `reason` is logged once.
    virtual void close(const std::string& reason) = 0;
    /// Sends `last` after what is queued (a goodbye), then closes.
    virtual void close_after(SharedFrame last, const std::string& reason) = 0;

    virtual bool open() const noexcept = 0;
    virtual bool outbound() const noexcept = 0;
    /// The peer's handshake; valid once the link's handler saw it.
    virtual const wire::Handshake& peer() const noexcept = 0;
    /// Where the peer is, for logs ("tcp:<addr>:<port>", "unix").
    virtual const std::string& remote() const noexcept = 0;
    /// The transport: "tcp", "unix".
    virtual std::string_view kind() const noexcept = 0;
    /// The executor the link runs on (its deadline timers, by default its completions).
    virtual asio::any_io_executor executor() const = 0;
    /// Messages dropped by the outbox policy so far.
    virtual std::uint64_t dropped() const noexcept = 0;

    /// Waits asynchronously until the outbox has room, the link closes (asio::error::not_connected)
    /// or `deadline` passes (asio::error::timed_out); completion signature void(std::error_code),
    /// on the handler's associated executor (by default the link's). Never blocks a thread.
    template <class Token>
    auto async_wait_for_room(Clock::time_point deadline, Token&& token);

private:
    template <class Handler>
    class AsyncRoomWait;
};

/// One asynchronous room wait: the handler, a work guard on its executor, and a deadline timer on
/// the link's executor. Room, closing and the deadline race; the first completes the handler.
template <class Handler>
class Link::AsyncRoomWait final : public RoomWaiter, public std::enable_shared_from_this<AsyncRoomWait<Handler>> {
public:
    using HandlerExecutor = asio::associated_executor_t<Handler, asio::any_io_executor>;

    AsyncRoomWait(Handler handler, asio::any_io_executor link_executor)
        : handler_(std::move(handler)),
          work_(asio::get_associated_executor(handler_, link_executor)),
          timer_(link_executor) {}

    void arm(Clock::time_point deadline) {
        timer_.expires_at(deadline);
        timer_.async_wait([self = this->shared_from_this()](const std::error_code& ec) {
            if (!ec) {
                self->complete(asio::error::timed_out);
            }
        });
    }
    void wake(std::error_code ec) override {
        if (complete(ec ? std::error_code(asio::error::not_connected) : ec)) {
            // The timer is not thread-safe: cancel it on its own executor.
            asio::post(timer_.get_executor(), [self = this->shared_from_this()] { self->timer_.cancel(); });
        }
    }
    bool done() const noexcept override { return done_.load(std::memory_order_acquire); }
    /// Completes the handler once, through its executor. @returns false when already completed.
    bool complete(std::error_code ec) {
        if (done_.exchange(true, std::memory_order_acq_rel)) {
            return false;
        }
        auto executor = work_->get_executor();
        asio::post(executor, [handler = std::move(handler_), ec]() mutable { std::move(handler)(ec); });
        work_.reset();
        return true;
    }

private:
    Handler handler_;
    std::optional<asio::executor_work_guard<HandlerExecutor>> work_;
    asio::steady_timer timer_;
    std::atomic<bool> done_{false};
};

template <class Token>
auto Link::async_wait_for_room(Clock::time_point deadline, Token&& token) {
    return asio::async_initiate<Token, void(std::error_code)>(
        [this, deadline](auto handler) {
            using Wait = AsyncRoomWait<std::decay_t<decltype(handler)>>;
            auto wait = std::make_shared<Wait>(std::move(handler), executor());
            wait->arm(deadline);  // before the wait is parked: a wake may cancel the timer at once
            bool closed = false;
            if (!park_room_waiter(wait, closed)) {
                wait->wake(closed ? std::error_code(asio::error::not_connected) : std::error_code{});
            }
        },
        token);
}

}  // namespace meshy::detail
