// Internal: the bookkeeping of a node's loan pool (docs/shm.md, "Loans"): which bytes of the pool
// each loaned message takes, and who still holds it. Pure (no memory, no locks, no system calls),
// so that unit tests and the fuzz target drive exactly what the node runs.
//
// A block is one message. Its slot id (an index and a generation, so that a stale or forged id
// never matches a reused slot) travels to the listeners; each listener's link is a holder until it
// sends the slot back. The sender itself holds a block while it builds it (holder 0). A block's
// bytes go back to the free list when its last holder lets go.
#pragma once

#include <cstddef>
#include <cstdint>
#include <map>
#include <optional>
#include <vector>

namespace meshy::detail {

class ShmPoolAllocator {
public:
    /// The holder that allocated a block (the sender's loan).
    static constexpr std::uint64_t owner = 0;
    /// Blocks start on this boundary (a cache line), and their sizes are rounded up to it.
    static constexpr std::size_t alignment = 64;

    struct Block {
        std::uint32_t slot = 0;
        std::uint32_t generation = 0;
        std::size_t offset = 0;  ///< from the start of the pool
        std::size_t size = 0;    ///< as asked (the block may be a little larger)
    };

    /// @param bytes the pool's size
    /// @param max_slots blocks live at once at most (each a loaned message not yet released)
    explicit ShmPoolAllocator(std::size_t bytes, std::size_t max_slots = 1024);

    /// A block of `size` bytes (at least 1), held by `owner`. @returns nothing when no free range
    /// or slot is large enough now.
    std::optional<Block> allocate(std::size_t size);
    /// True when a block of `size` bytes could be allocated in an empty pool.
    bool fits(std::size_t size) const noexcept;
    /// Adds `holder`'s hold on a live block. @returns false when the id names no live block or
    /// `holder` holds it already.
    bool hold(std::uint32_t slot, std::uint32_t generation, std::uint64_t holder);
    /// Drops `holder`'s hold; the block is freed with its last one. @returns false when `holder`
    /// does not hold that block (a peer's release that names another block, or one twice).
    bool release(std::uint32_t slot, std::uint32_t generation, std::uint64_t holder);
    /// Drops every hold of `holder` (its link closed). @returns how many it had.
    std::size_t release_holder(std::uint64_t holder);

    std::size_t capacity() const noexcept { return bytes_; }
    std::size_t free_bytes() const noexcept { return free_bytes_; }
    std::size_t live_blocks() const noexcept { return live_; }
    /// Holds of `holder` on live blocks.
    std::size_t holds_of(std::uint64_t holder) const;

private:
    struct Slot {
        std::uint32_t generation = 0;
        bool live = false;
        std::size_t offset = 0;
        std::size_t span = 0;                // bytes taken from the free list
        std::vector<std::uint64_t> holders;  // a few: the owner and the listeners on this host
    };
    Slot* live_slot(std::uint32_t slot, std::uint32_t generation);
    void free_slot(std::uint32_t index);

    std::size_t bytes_;
    std::size_t free_bytes_;
    std::size_t live_ = 0;
    std::map<std::size_t, std::size_t> free_;  // offset -> size, coalesced
    std::vector<Slot> slots_;
    std::vector<std::uint32_t> free_slots_;  // unused indices, the next one last
};

}  // namespace meshy::detail
