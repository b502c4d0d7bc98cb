// Internal: a node's loan pool (docs/shm.md, "Loans"): one memfd, mapped read-write here and
// offered to each shared-memory peer, which maps it read-only. Loans (Node::loan) are blocks of it;
// a message sent from one reaches the peers that mapped the pool as a small "loaned" control frame
// (where its bytes are), and they send each block back when their listeners let go of it.
// Thread-safe: loans are taken on the user's threads, held and released on links' strands.
#pragma once

#include <cstddef>
#include <cstdint>
#include <functional>
#include <mutex>
#include <optional>
#include <span>
#include <string>
#include <vector>

#include "transport/shm_pool_allocator.hpp"
#include "transport/shm_region.hpp"

namespace meshy::detail {

class ShmLoanPool {
public:
    using Block = ShmPoolAllocator::Block;

    /// @param bytes the pool's size (NodeOptions::shm_pool_bytes); nothing is created yet
    explicit ShmLoanPool(std::size_t bytes);

    /// Creates the memfd on first use (later calls return what the first did).
    /// @returns false when it cannot be created (`error` says why).
    bool ready(std::string& error);
    /// The memfd, to pass to a peer; -1 before ready().
    int fd() const;
    /// The pool's size in bytes.
    std::size_t size() const noexcept { return bytes_; }
    /// The writable bytes of a block this node allocated.
    std::span<std::byte> bytes(const Block& block) const noexcept;

    /// A block of `size` bytes held by the loan (ShmPoolAllocator::owner); when none is free now,
    /// `waiter` (when given) is kept and called once a block was freed or the pool stopped: the
    /// caller then tries again. @returns nothing when the pool has no room now or is stopped.
    std::optional<Block> allocate(std::size_t size, std::function<void()> waiter = {});
    /// True when a block of `size` bytes could ever be allocated.
    bool fits(std::size_t size) const noexcept;
    /// See ShmPoolAllocator::hold.
    bool hold(const Block& block, std::uint64_t holder);
    /// See ShmPoolAllocator::release; wakes waiters when a block was freed.
    bool release(std::uint32_t slot, std::uint32_t generation, std::uint64_t holder);
    /// A peer's link closed: every block it held is released. @returns how many.
    std::size_t release_holder(std::uint64_t holder);
    /// A holder id of its own for a link (never ShmPoolAllocator::owner).
    std::uint64_t new_holder() noexcept;

    /// The node stops: waiters are called (and find the pool stopped), and no block is allocated.
    void stop();
    bool stopped() const;
    /// Blocks live now, and holds of `holder` (for tests and `meshy node info`).
    std::size_t live_blocks() const;
    std::size_t holds_of(std::uint64_t holder) const;

private:
    void wake(std::unique_lock<std::mutex>& lock);

    const std::size_t bytes_;
    mutable std::mutex mutex_;  // guards everything below
    ShmRegion region_;
    std::string create_error_;  // set when the first ready() failed
    ShmPoolAllocator allocator_;
    std::vector<std::function<void()>> waiters_;
    std::uint64_t next_holder_ = ShmPoolAllocator::owner + 1;
    bool stopped_ = false;
};

}  // namespace meshy::detail
