// Internal: the memory a node may hold in frames being received, shared by all its connections.
#pragma once

#include <atomic>
#include <cstddef>

namespace meshy::detail {

/// A node-wide cap on receive buffers (NodeOptions::receive_budget). Connections take bytes from
/// it before they grow a buffer for a frame in flight and give them back when they let it go.
class ReceiveBudget {
public:
    /// @param limit bytes that all connections together may hold beyond their first chunk.
    explicit ReceiveBudget(std::size_t limit) noexcept : limit_(limit) {}

    /// Takes `bytes` if that stays within the limit. @returns false (nothing taken) otherwise.
    bool try_take(std::size_t bytes) noexcept {
        std::size_t used = used_.load(std::memory_order_relaxed);
        do {
            if (bytes > limit_ || used > limit_ - bytes) {
                return false;
            }
        } while (!used_.compare_exchange_weak(used, used + bytes, std::memory_order_relaxed));
        return true;
    }
    /// Gives back bytes taken before.
    void give_back(std::size_t bytes) noexcept { used_.fetch_sub(bytes, std::memory_order_relaxed); }

    std::size_t in_use() const noexcept { return used_.load(std::memory_order_relaxed); }
    std::size_t limit() const noexcept { return limit_; }

private:
    const std::size_t limit_;
    std::atomic<std::size_t> used_{0};
};

}  // namespace meshy::detail
