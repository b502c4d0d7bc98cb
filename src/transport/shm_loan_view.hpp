// Internal: a loaned message as a listener reads it, in place in the sender's pool (docs/shm.md,
// "Loans"). It keeps that pool mapped while anyone holds it, and sends the block back to the
// sender (a `release` through the link) when the last reference goes.
#pragma once

#include <cstddef>
#include <cstdint>
#include <memory>
#include <span>

#include "transport/shm_region.hpp"

namespace meshy::detail {

class Connection;

class ShmLoanView {
public:
    /// @param pool the sender's pool, mapped read-only by this node
    /// @param link the link it came by, to send the release through
    /// @param payload the message's bytes, within `pool` (checked by the caller)
    ShmLoanView(std::shared_ptr<const ShmRegion> pool,
                std::weak_ptr<Connection> link,
                std::uint32_t slot,
                std::uint32_t generation,
                std::span<const std::byte> payload) noexcept
        : pool_(std::move(pool)), link_(std::move(link)), slot_(slot), generation_(generation), payload_(payload) {}
    ~ShmLoanView();
    ShmLoanView(const ShmLoanView&) = delete;
    ShmLoanView& operator=(const ShmLoanView&) = delete;

    std::span<const std::byte> payload() const noexcept { return payload_; }
    /// True while the link it came by is open. Once it closed, the sender took the block back (or
    /// died): a message not yet delivered is dropped rather than read from a block that may be
    /// reused.
    bool intact() const noexcept;

private:
    std::shared_ptr<const ShmRegion> pool_;
    std::weak_ptr<Connection> link_;
    std::uint32_t slot_;
    std::uint32_t generation_;
    std::span<const std::byte> payload_;
};

}  // namespace meshy::detail
