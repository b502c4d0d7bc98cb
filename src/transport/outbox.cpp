#include "transport/outbox.hpp"

#include <algorithm>
#include <cerrno>
#include <utility>

#include "common/system.hpp"

namespace meshy::detail {
namespace {

// Bounds of one coalesced write: enough to amortise the syscall, small enough to stay fair.
constexpr std::size_t max_batch_frames = 256;
constexpr std::size_t max_batch_bytes = 4u * 1024 * 1024;
// Bytes of small messages the arena holds at most (offsets are 32-bit); beyond, they queue as
// shared frames.
constexpr std::size_t max_arena_size = std::size_t{1} << 30;
// Capacity of an arena that the writer keeps for reuse: a burst's arena is not kept for ever.
constexpr std::size_t max_arena_kept = 16u * 1024 * 1024;

SharedFrame joined(std::span<const std::byte> head, std::span<const std::byte> body) {
    auto frame = std::make_shared<Buffer>();
    frame->reserve(head.size() + body.size());
    frame->append(head.data(), head.size());
    frame->append(body.data(), body.size());
    return frame;
}

}  // namespace

Outbox::Outbox(OutboxOptions options) : options_(options) {
}

Outbox::Pushed Outbox::push_control(SharedFrame frame) {
    std::lock_guard lock(mutex_);
    control_.push_back(std::move(frame));
    return {std::exchange(writer_idle_, false), false, 0};
}

std::uint64_t Outbox::admit_locked(Clock::time_point now) {
    if (messages_.size() < options_.capacity * (options_.wait_when_full ? 2 : 1)) {
        return 0;
    }
    if (!messages_.front().frame) {
        --arena_queued_;  // its bytes stay in the arena; the writer skips them
        arena_gaps_ = true;
    }
    messages_.pop_front();
    dropped_.fetch_add(1, std::memory_order_relaxed);
    return drops_.drop(now);
}

Outbox::Pushed Outbox::queued_message_locked(Pushed pushed) {
    pushed.full = full_locked();
    pushed.wake = std::exchange(writer_idle_, false);
    return pushed;
}

Outbox::Pushed Outbox::push_message(SharedFrame frame, Clock::time_point now) {
    std::lock_guard lock(mutex_);
    Pushed pushed;
    pushed.drops = admit_locked(now);
    messages_.push_back({std::move(frame), now});
    return queued_message_locked(pushed);
}

Outbox::Pushed Outbox::copy_message(std::span<const std::byte> head,
                                    std::span<const std::byte> body,
                                    Clock::time_point now) {
    const std::size_t size = head.size() + body.size();
    if (size > small_message_max) {
        return push_message(joined(head, body), now);
    }
    std::lock_guard lock(mutex_);
    Pushed pushed;
    pushed.drops = admit_locked(now);
    if (arena_.size() + size > max_arena_size) {
        // An outbox configured far beyond its default: the rest of this burst is shared frames.
        messages_.push_back({joined(head, body), now});
    } else {
        const auto offset = static_cast<std::uint32_t>(arena_.size());
        arena_.append(head.data(), head.size());
        arena_.append(body.data(), body.size());
        messages_.push_back({nullptr, now, offset, static_cast<std::uint32_t>(size)});
        ++arena_queued_;
    }
    return queued_message_locked(pushed);
}

void Outbox::push_last(SharedFrame last) {
    std::lock_guard lock(mutex_);
    last_frame_ = std::move(last);
    writer_idle_ = false;
}

bool Outbox::begin_direct(Clock::time_point deadline) {
    std::unique_lock lock(mutex_);
    auto ready = [&] {
        return closed_ || socket_free_locked();
    };
    if (!ready()) {
        ++room_waiters_;
        room_.wait_until(lock, deadline, ready);
        --room_waiters_;
    }
    if (closed_ || !socket_free_locked()) {
        return false;
    }
    writer_idle_ = false;
    direct_active_ = true;
    return true;
}

Outbox::Pushed Outbox::end_direct(SharedFrame rest, bool begun, Clock::time_point now, Rest kind) {
    std::lock_guard lock(mutex_);
    direct_active_ = false;
    Pushed pushed;
    if (closed_) {
        return pushed;
    }
    if (rest) {
        if (begun || kind == Rest::sealed) {
            control_.push_front(std::move(rest));  // the end of a frame begun on the socket goes first
            front_presealed_ = kind == Rest::sealed;
        } else {
            pushed.drops = admit_locked(now);
            messages_.push_back({std::move(rest), now});
            pushed.full = full_locked();
        }
    }
    pushed.wake = !control_.empty() || !messages_.empty() || last_frame_;
    if (!pushed.wake) {
        writer_idle_ = true;
        if (room_waiters_) {
            room_.notify_all();
        }
    }
    return pushed;
}

void Outbox::take(Batch& batch, bool linger) {
    batch.parts.clear();
    batch.frames.clear();
    batch.arena.clear();
    batch.bytes = 0;
    batch.expired = 0;
    batch.closing = false;
    batch.presealed = 0;
    if (batch.arena.capacity() > max_arena_kept) {
        batch.arena = Buffer{};
    }
    std::vector<std::shared_ptr<RoomWaiter>> woken;
    {
        std::lock_guard lock(mutex_);
        auto& parts = batch.parts;
        if (front_presealed_ && !direct_active_ && !control_.empty()) {
            batch.presealed = 1;  // taken first, below
            front_presealed_ = false;
        }
        while (!direct_active_ && !control_.empty() && parts.size() < max_batch_frames) {
            batch.bytes += control_.front()->size();
            parts.push_back(control_.front()->bytes());
            batch.frames.push_back(std::move(control_.front()));
            control_.pop_front();
        }
        // Messages wait until the peer's handshake is in: before it we do not know it is a peer.
        bool took_arena = false;
        const bool ready = peer_ready_.load(std::memory_order_acquire) && !direct_active_;
        if (ready && parts.empty() && !messages_.empty() && arena_queued_ == messages_.size() && !arena_gaps_ &&
            arena_.size() <= max_batch_bytes && messages_.front().queued_at >= coarse_now() - options_.ttl) {
            // Only small messages, none dropped, none too old (the oldest is not): the arena is
            // written whole, with no per-message work but emptying the queue's slots.
            batch.bytes = arena_.size();
            parts.emplace_back(arena_.data(), arena_.size());
            messages_.clear_entries_holding_nothing();  // no frames: all lie in the arena
            arena_queued_ = 0;
            std::swap(batch.arena, arena_);
        } else if (ready) {
            const auto oldest_allowed = coarse_now() - options_.ttl;
            const std::byte* run_end = nullptr;  // end of the last part when it lies in the arena
            while (!messages_.empty() && parts.size() < max_batch_frames && batch.bytes < max_batch_bytes) {
                auto& q = messages_.front();
                if (!q.frame) {
                    --arena_queued_;
                    took_arena = true;
                }
                if (q.queued_at < oldest_allowed) {
                    ++batch.expired;
                } else if (q.frame) {
                    batch.bytes += q.frame->size();
                    parts.push_back(q.frame->bytes());
                    batch.frames.push_back(std::move(q.frame));
                    run_end = nullptr;
                } else {
                    // Consecutive small messages go out as one piece of the arena.
                    const std::byte* at = arena_.data() + q.offset;
                    batch.bytes += q.size;
                    if (run_end == at) {
                        parts.back() = {parts.back().data(), parts.back().size() + q.size};
                    } else {
                        parts.emplace_back(at, q.size);
                    }
                    run_end = at + q.size;
                }
                messages_.pop_front();
            }
        }
        if (took_arena) {
            // The writer takes the arena; small messages still queued move to a fresh one.
            arena_gaps_ = false;
            if (arena_queued_ == 0) {
                std::swap(batch.arena, arena_);
            } else {
                Buffer rest;
                for (std::size_t i = 0; i < messages_.size(); ++i) {
                    auto& q = messages_[i];
                    if (!q.frame) {
                        const auto offset = static_cast<std::uint32_t>(rest.size());
                        rest.append(arena_.data() + q.offset, q.size);
                        q.offset = offset;
                    }
                }
                batch.arena = std::move(arena_);
                arena_ = std::move(rest);
            }
        }
        if (batch.expired) {
            dropped_.fetch_add(batch.expired, std::memory_order_relaxed);
        }
        if (room_waiters_ && !full_locked()) {
            room_.notify_all();
        }
        if (parts.empty() && !direct_active_) {
            if (last_frame_) {
                // Everything queued is out: the goodbye goes last, then the link closes.
                parts.push_back(last_frame_->bytes());
                batch.bytes += last_frame_->size();
                batch.frames.push_back(std::move(last_frame_));
                batch.closing = true;
            } else if (!linger) {
                writer_idle_ = true;
                if (room_waiters_) {
                    room_.notify_all();  // begin_direct() waits for an idle writer
                }
            }
        }
        if (!parked_.empty() && !full_locked()) {
            collect_waiters_locked(woken);
        }
    }
    wake_all(woken, {});
}

void Outbox::collect_waiters_locked(std::vector<std::shared_ptr<RoomWaiter>>& woken) {
    for (auto& w : parked_) {
        if (!w->done()) {
            woken.push_back(std::move(w));
        }
    }
    parked_.clear();
}

void Outbox::wake_all(std::vector<std::shared_ptr<RoomWaiter>>& woken, std::error_code ec) {
    for (auto& w : woken) {
        w->wake(ec);
    }
    woken.clear();
}

bool Outbox::full() const {
    std::lock_guard lock(mutex_);
    return full_locked();
}

std::size_t Outbox::queued() const {
    std::lock_guard lock(mutex_);
    return messages_.size();
}

void Outbox::wait_for_room(Clock::time_point deadline) {
    std::unique_lock lock(mutex_);
    if (!full_locked() || closed_) {
        return;
    }
    ++room_waiters_;
    room_.wait_until(lock, deadline, [&] { return !full_locked() || closed_; });
    --room_waiters_;
}

bool Outbox::park(std::shared_ptr<RoomWaiter> waiter, bool& closed) {
    std::lock_guard lock(mutex_);
    closed = closed_;
    if (closed_ || !full_locked()) {
        return false;
    }
    // Waiters whose deadline passed are forgotten here, so a link that stays full does not
    // collect them.
    std::erase_if(parked_, [](const auto& w) { return w->done(); });
    parked_.push_back(std::move(waiter));
    return true;
}

std::size_t Outbox::close() {
    std::vector<std::shared_ptr<RoomWaiter>> woken;
    std::size_t unsent = 0;
    {
        std::lock_guard lock(mutex_);
        closed_ = true;
        unsent = messages_.size();
        control_.clear();
        messages_.clear();
        last_frame_.reset();
        arena_ = Buffer{};
        arena_queued_ = 0;
        arena_gaps_ = false;
        collect_waiters_locked(woken);
    }
    room_.notify_all();
    wake_all(woken, std::error_code(ENOTCONN, std::system_category()));
    return unsent;
}

std::uint64_t Outbox::take_unreported_drops() {
    std::lock_guard lock(mutex_);
    return drops_.take();
}

}  // namespace meshy::detail
