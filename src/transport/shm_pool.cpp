#include "transport/shm_pool.hpp"

#include <utility>

namespace meshy::detail {

ShmLoanPool::ShmLoanPool(std::size_t bytes) : bytes_(bytes), allocator_(bytes) {
}

bool ShmLoanPool::ready(std::string& error) {
    std::lock_guard lock(mutex_);
    if (region_) {
        return true;
    }
    if (!create_error_.empty()) {
        error = create_error_;
        return false;
    }
    // Peers map it read-only: a listener can read a message in place, never change one.
    region_ = ShmRegion::create(bytes_, "meshy-pool", create_error_, true);
    if (!region_) {
        if (create_error_.empty()) {
            create_error_ = "cannot create the loan pool";
        }
        error = create_error_;
        return false;
    }
    return true;
}

int ShmLoanPool::fd() const {
    std::lock_guard lock(mutex_);
    return region_.fd();
}

std::span<std::byte> ShmLoanPool::bytes(const Block& block) const noexcept {
    // The region never changes once made, and a block exists only once it was.
    return region_.bytes().subspan(block.offset, block.size);
}

std::optional<ShmLoanPool::Block> ShmLoanPool::allocate(std::size_t size, std::function<void()> waiter) {
    std::lock_guard lock(mutex_);
    if (stopped_ || !region_) {
        return std::nullopt;
    }
    auto block = allocator_.allocate(size);
    if (!block && waiter) {
        waiters_.push_back(std::move(waiter));
    }
    return block;
}

bool ShmLoanPool::fits(std::size_t size) const noexcept {
    return allocator_.fits(size);  // constant once built
}

bool ShmLoanPool::hold(const Block& block, std::uint64_t holder) {
    std::lock_guard lock(mutex_);
    return allocator_.hold(block.slot, block.generation, holder);
}

bool ShmLoanPool::release(std::uint32_t slot, std::uint32_t generation, std::uint64_t holder) {
    std::unique_lock lock(mutex_);
    const auto live = allocator_.live_blocks();
    if (!allocator_.release(slot, generation, holder)) {
        return false;
    }
    if (allocator_.live_blocks() < live) {
        wake(lock);
    }
    return true;
}

std::size_t ShmLoanPool::release_holder(std::uint64_t holder) {
    std::unique_lock lock(mutex_);
    const auto live = allocator_.live_blocks();
    const auto count = allocator_.release_holder(holder);
    if (allocator_.live_blocks() < live) {
        wake(lock);
    }
    return count;
}

std::uint64_t ShmLoanPool::new_holder() noexcept {
    std::lock_guard lock(mutex_);
    return next_holder_++;
}

void ShmLoanPool::stop() {
    std::unique_lock lock(mutex_);
    stopped_ = true;
    wake(lock);
}

bool ShmLoanPool::stopped() const {
    std::lock_guard lock(mutex_);
    return stopped_;
}

std::size_t ShmLoanPool::live_blocks() const {
    std::lock_guard lock(mutex_);
    return allocator_.live_blocks();
}

std::size_t ShmLoanPool::holds_of(std::uint64_t holder) const {
    std::lock_guard lock(mutex_);
    return allocator_.holds_of(holder);
}

void ShmLoanPool::wake(std::unique_lock<std::mutex>& lock) {
    // Called without the lock: a waiter may allocate at once.
    auto waiters = std::exchange(waiters_, {});
    lock.unlock();
    for (auto& w : waiters) {
        w();
    }
}

}  // namespace meshy::detail
