// Internal: a FIFO queue in one growing ring of slots, for hot queues that a deque would make
// allocate and free a block every few entries (from two threads, in the outbox's case).
#pragma once

#include <cstddef>
#include <utility>
#include <vector>

namespace meshy::detail {

template <class T>
class RingQueue {
public:
    bool empty() const noexcept { return size_ == 0; }
    std::size_t size() const noexcept { return size_; }
    T& front() noexcept { return slots_[head_]; }
    T& operator[](std::size_t i) noexcept { return slots_[(head_ + i) & (slots_.size() - 1)]; }

    void push_back(T value) {
        if (size_ == slots_.size()) {
            grow();
        }
        slots_[(head_ + size_) & (slots_.size() - 1)] = std::move(value);
        ++size_;
    }
    void pop_front() {
        slots_[head_] = T{};  // releases what the slot holds
        head_ = (head_ + 1) & (slots_.size() - 1);
        --size_;
    }
    /// Empties the queue at once, for entries that hold nothing to release (the caller knows
    /// they do): their slots are overwritten when reused. For a queue emptied under a lock that
    /// another thread waits for.
    void clear_entries_holding_nothing() noexcept {
        head_ = 0;
        size_ = 0;
    }
    /// Empties the queue; the slots are kept for reuse.
    void clear() {
        while (!empty()) {
            pop_front();
        }
        head_ = 0;
    }

private:
    void grow() {
        std::vector<T> bigger(slots_.empty() ? 16 : 2 * slots_.size());  // a power of two
        for (std::size_t i = 0; i < size_; ++i) {
            bigger[i] = std::move((*this)[i]);
        }
        slots_ = std::move(bigger);
        head_ = 0;
    }

    std::vector<T> slots_;
    std::size_t head_ = 0;
    std::size_t size_ = 0;
};

}  // namespace meshy::detail
