// Internal: a sender waiting asynchronously for room in a link's outbox.
#pragma once

#include <system_error>

namespace meshy::detail {

/// One asynchronous wait for room, parked in an outbox until the outbox drains below its
/// capacity, closes, or the waiter gives up by itself (its deadline).
class RoomWaiter {
public:
    virtual ~RoomWaiter() = default;
    /// Completes the wait: no error (room), or the link closed. Called at most once by the
    /// outbox, never with its lock held; a waiter that already completed (deadline) ignores it.
    virtual void wake(std::error_code ec) = 0;
    /// True once the wait completed (woken, or its deadline passed): the outbox may forget it.
    virtual bool done() const noexcept = 0;
};

}  // namespace meshy::detail
