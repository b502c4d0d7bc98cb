// Internal: the outbound queue of one link, apart from its socket. Control frames (never dropped)
// go before messages; messages obey a capacity (drop oldest) and a time to live; small messages
// are copied into one arena that the writer sends whole. Senders that must not lose messages
// wait for room, blocking or asynchronously. It has its own lock and no socket: the link asks it
// what to write next, or whether a sending thread may write to the socket itself.
#pragma once

#include <atomic>
#include <chrono>
#include <condition_variable>
#include <cstddef>
#include <cstdint>
#include <deque>
#include <memory>
#include <mutex>
#include <span>
#include <vector>

#include "common/adaptive_mutex.hpp"
#include "common/drop_counter.hpp"
#include "common/ring_queue.hpp"
#include "meshy/buffer.hpp"
#include "transport/room_waiter.hpp"

namespace meshy::detail {

using SharedFrame = std::shared_ptr<const Buffer>;

/// With OutboxOptions::wait_when_full, a sender also waits while this many bytes of small
/// messages are queued, so that a burst stays in the CPU's cache between the sender's copy and the
/// writer's (see docs/transport.md).
constexpr std::size_t wait_room_bytes = 256u * 1024;
/// Messages up to this size are copied into the outbox's arena rather than queued as frames.
constexpr std::size_t small_message_max = 2048;

struct OutboxOptions {
    std::size_t capacity = 1024;  ///< messages queued before the oldest is dropped
    /// NodeOptions::outbox_full is wait: senders wait for room, so the outbox is full at
    /// `capacity` (or wait_room_bytes of small messages) but drops only at twice the capacity.
    bool wait_when_full = false;
    std::chrono::milliseconds ttl{5000};  ///< messages older than this are dropped, not sent
};

class Outbox {
public:
    using Clock = std::chrono::steady_clock;

    /// What queueing did.
    struct Pushed {
        bool wake = false;        ///< the writer was idle: wake it
        bool full = false;        ///< the outbox is full now (a sender that may wait should)
        std::uint64_t drops = 0;  ///< messages dropped to report now (rate-limited)
    };

    /// What the writer writes next: `parts` in order; empty when there is nothing.
    struct Batch {
        std::vector<std::span<const std::byte>> parts;
        std::vector<SharedFrame> frames;  ///< keeps the shared frames of `parts` alive
        Buffer arena;                     ///< the arena being written (its capacity is reused)
        std::size_t bytes = 0;
        std::uint64_t expired = 0;  ///< messages dropped because they outlived the TTL
        bool closing = false;       ///< `parts` end with the goodbye: close once written
        std::size_t presealed = 0;  ///< the first parts are already sealed (Rest::sealed)
    };

    /// How the writer may proceed when there is nothing to write.
    enum class Direct { no, written, partial };
    /// What the rest of a partial direct write is: frame bytes, or bytes already sealed (a keyed
    /// link's writer sends those as they are; see Batch::presealed).
    enum class Rest { frame, sealed };

    explicit Outbox(OutboxOptions options);
    Outbox(const Outbox&) = delete;
    Outbox& operator=(const Outbox&) = delete;

    /// The peer's handshake is in: messages (not only control frames) may be written now.
    void set_peer_ready() noexcept { peer_ready_.store(true, std::memory_order_release); }
    bool peer_ready() const noexcept { return peer_ready_.load(std::memory_order_acquire); }

    /// Queues a frame that is never dropped (handshake, info, pings, replies), after the others.
    Pushed push_control(SharedFrame frame);
    /// Queues a message (capacity, TTL, drop oldest).
    Pushed push_message(SharedFrame frame, Clock::time_point now);
    /// Queues a copy of a message given as `head` then `body`: the caller keeps its buffers.
    /// Up to small_message_max bytes it goes into the arena (no frame object).
    Pushed copy_message(std::span<const std::byte> head, std::span<const std::byte> body, Clock::time_point now);
    /// Sends `last` after everything queued, then `Batch::closing` tells the writer to close.
    void push_last(SharedFrame last);

    /// What a direct write put on the socket: `written` of `size` bytes (< 0: nothing was written,
    /// or with Rest::frame, 0 either).
    struct Written {
        ssize_t written;
        std::size_t size;
    };
    /// When the writer is idle, nothing is queued and the peer is ready, the calling thread may
    /// write a frame to the socket itself: runs `write()` with the lock held (a Written). A partial
    /// write queues `rest(written)` (the unwritten end, a SharedFrame, of the kind `kind`) to go
    /// first, and the writer must then be woken.
    template <class Write, class MakeRest>
    Direct write_if_idle(Write&& write, MakeRest&& rest, Rest kind = Rest::frame) {
        std::lock_guard lock(mutex_);
        if (!socket_free_locked()) {
            return Direct::no;
        }
        const Written w = write();
        // Sealed bytes are spent even when the socket took none of them (their record's nonce is
        // used): they are queued whole. Frame bytes the socket did not take are the caller's to queue.
        if (w.written < 0 || (w.written == 0 && kind == Rest::frame)) {
            return Direct::no;
        }
        if (static_cast<std::size_t>(w.written) >= w.size) {
            return Direct::written;
        }
        control_.push_front(rest(static_cast<std::size_t>(w.written)));
        front_presealed_ = kind == Rest::sealed;
        writer_idle_ = false;
        return Direct::partial;
    }
    /// For a sender that writes a large frame itself: waits (at most until `deadline`) for the
    /// writer to be idle with nothing queued, then keeps the writer away until end_direct().
    /// @returns false (nothing taken) on timeout or once closed.
    bool begin_direct(Clock::time_point deadline);
    /// Ends begin_direct(): `rest` (null when all was written) is queued first if the frame was
    /// begun on the socket (`begun`), else as a message. A sealed rest (Rest::sealed) always goes
    /// first, begun or not: its records' nonces are spent.
    Pushed end_direct(SharedFrame rest, bool begun, Clock::time_point now, Rest kind = Rest::frame);
    /// Runs `f` with the lock held: no direct write runs meanwhile (for closing the socket).
    template <class F>
    void exclusive(F&& f) {
        std::lock_guard lock(mutex_);
        f();
    }

    /// Fills `batch` with what to write next, or marks the writer idle when there is nothing
    /// (unless `linger`: a write just ended and the writer looks once more before sleeping).
    /// Wakes the senders waiting for room when there is room.
    void take(Batch& batch, bool linger);

    /// True while the outbox holds `capacity` messages (or, with wait_when_full, wait_room_bytes
    /// of small ones).
    bool full() const;
    /// Blocks the calling thread until there is room, the outbox closes, or `deadline` passes.
    void wait_for_room(Clock::time_point deadline);
    /// Parks `waiter` until there is room or the outbox closes. @returns false (not parked) when
    /// there is room now or the outbox is closed: then the caller completes the wait itself
    /// (`closed` says which).
    bool park(std::shared_ptr<RoomWaiter> waiter, bool& closed);

    /// Empties the outbox for good and wakes every waiter. @returns the messages still queued.
    std::size_t close();
    /// Drops not yet reported (rate-limited reports take the rest later).
    std::uint64_t take_unreported_drops();
    /// Messages dropped (capacity or TTL) so far.
    std::uint64_t dropped() const noexcept { return dropped_.load(std::memory_order_relaxed); }
    /// Messages queued now.
    std::size_t queued() const;

private:
    /// A queued message: a shared frame, or (frame null) `size` bytes at `offset` in arena_.
    struct Queued {
        SharedFrame frame;
        Clock::time_point queued_at;
        std::uint32_t offset = 0;
        std::uint32_t size = 0;
    };

    bool socket_free_locked() const noexcept {
        return writer_idle_ && !direct_active_ && control_.empty() && messages_.empty() && !last_frame_ && !closed_ &&
               peer_ready_.load(std::memory_order_acquire);
    }
    bool full_locked() const noexcept {
        return messages_.size() >= options_.capacity || (options_.wait_when_full && arena_.size() >= wait_room_bytes);
    }
    /// Makes room for one more message (drop oldest). @returns drops to report now.
    std::uint64_t admit_locked(Clock::time_point now);
    Pushed queued_message_locked(Pushed pushed);
    /// Moves the parked waiters whose wait is over into `woken` (room, or closed).
    void collect_waiters_locked(std::vector<std::shared_ptr<RoomWaiter>>& woken);
    static void wake_all(std::vector<std::shared_ptr<RoomWaiter>>& woken, std::error_code ec);

    OutboxOptions options_;
    mutable AdaptiveMutex mutex_;
    std::deque<SharedFrame> control_;
    RingQueue<Queued> messages_;
    Buffer arena_;                  // the bytes of small queued messages, in order
    std::size_t arena_queued_ = 0;  // messages_ entries that lie in arena_
    bool arena_gaps_ = false;       // arena_ holds bytes of dropped messages
    SharedFrame last_frame_;        // push_last(): written once the queues are drained
    bool writer_idle_ = false;
    bool front_presealed_ = false;  // control_.front() is the sealed rest of a direct write
    bool direct_active_ = false;    // a sender is writing a frame itself (begin_direct)
    bool closed_ = false;
    std::size_t room_waiters_ = 0;  // threads blocked in wait_for_room() or begin_direct()
    std::condition_variable_any room_;
    std::vector<std::shared_ptr<RoomWaiter>> parked_;  // asynchronous waiters
    DropCounter drops_;
    std::atomic<bool> peer_ready_{false};
    std::atomic<std::uint64_t> dropped_{0};
};

}  // namespace meshy::detail
