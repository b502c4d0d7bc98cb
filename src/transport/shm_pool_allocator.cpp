#include "transport/shm_pool_allocator.hpp"

#include <algorithm>

namespace meshy::detail {
namespace {

std::size_t rounded(std::size_t size) {
    return (size + ShmPoolAllocator::alignment - 1) / ShmPoolAllocator::alignment * ShmPoolAllocator::alignment;
}

}  // namespace

ShmPoolAllocator::ShmPoolAllocator(std::size_t bytes, std::size_t max_slots)
    : bytes_(bytes / alignment * alignment), free_bytes_(bytes_), slots_(max_slots) {
    if (bytes_ > 0) {
        free_.emplace(0, bytes_);
    }
    free_slots_.reserve(max_slots);
    for (std::size_t i = max_slots; i-- > 0;) {
        free_slots_.push_back(static_cast<std::uint32_t>(i));
    }
}

bool ShmPoolAllocator::fits(std::size_t size) const noexcept {
    return size > 0 && size <= bytes_ && !slots_.empty();
}

std::optional<ShmPoolAllocator::Block> ShmPoolAllocator::allocate(std::size_t size) {
    if (size == 0 || size > bytes_ || free_slots_.empty()) {
        return std::nullopt;
    }
    const std::size_t span = rounded(size);
    // First fit: the lowest free range that is large enough keeps the top of the pool free for
    // large messages longest.
    const auto it = std::find_if(free_.begin(), free_.end(), [&](const auto& range) { return range.second >= span; });
    if (it == free_.end()) {
        return std::nullopt;
    }
    const std::size_t offset = it->first;
    const std::size_t left = it->second - span;
    free_.erase(it);
    if (left > 0) {
        free_.emplace(offset + span, left);
    }
    const std::uint32_t index = free_slots_.back();
    free_slots_.pop_back();
    Slot& s = slots_[index];
    s.live = true;
    s.offset = offset;
    s.span = span;
    s.holders.assign(1, owner);
    free_bytes_ -= span;
    ++live_;
    return Block{index, s.generation, offset, size};
}

ShmPoolAllocator::Slot* ShmPoolAllocator::live_slot(std::uint32_t slot, std::uint32_t generation) {
    if (slot >= slots_.size()) {
        return nullptr;
    }
    Slot& s = slots_[slot];
    return s.live && s.generation == generation ? &s : nullptr;
}

bool ShmPoolAllocator::hold(std::uint32_t slot, std::uint32_t generation, std::uint64_t holder) {
    Slot* s = live_slot(slot, generation);
    if (!s || std::find(s->holders.begin(), s->holders.end(), holder) != s->holders.end()) {
        return false;
    }
    s->holders.push_back(holder);
    return true;
}

bool ShmPoolAllocator::release(std::uint32_t slot, std::uint32_t generation, std::uint64_t holder) {
    Slot* s = live_slot(slot, generation);
    if (!s) {
        return false;
    }
    const auto it = std::find(s->holders.begin(), s->holders.end(), holder);
    if (it == s->holders.end()) {
        return false;
    }
    s->holders.erase(it);
    if (s->holders.empty()) {
        free_slot(slot);
    }
    return true;
}

std::size_t ShmPoolAllocator::release_holder(std::uint64_t holder) {
    std::size_t count = 0;
    for (std::uint32_t i = 0; i < slots_.size(); ++i) {
        Slot& s = slots_[i];
        if (!s.live) {
            continue;
        }
        const auto it = std::find(s.holders.begin(), s.holders.end(), holder);
        if (it == s.holders.end()) {
            continue;
        }
        ++count;
        s.holders.erase(it);
        if (s.holders.empty()) {
            free_slot(i);
        }
    }
    return count;
}

std::size_t ShmPoolAllocator::holds_of(std::uint64_t holder) const {
    return static_cast<std::size_t>(std::count_if(slots_.begin(), slots_.end(), [&](const Slot& s) {
        return s.live && std::find(s.holders.begin(), s.holders.end(), holder) != s.holders.end();
    }));
}

void ShmPoolAllocator::free_slot(std::uint32_t index) {
    Slot& s = slots_[index];
    s.live = false;
    ++s.generation;  // an id of the block just freed never names the next one
    s.holders.clear();
    free_bytes_ += s.span;
    --live_;
    // Back to the free list, merged with its neighbours.
    std::size_t offset = s.offset;
    std::size_t size = s.span;
    auto next = free_.lower_bound(offset);
    if (next != free_.begin()) {
        auto prev = std::prev(next);
        if (prev->first + prev->second == offset) {
            offset = prev->first;
            size += prev->second;
            free_.erase(prev);
        }
    }
    if (next != free_.end() && offset + size == next->first) {
        size += next->second;
        free_.erase(next);
    }
    free_.emplace(offset, size);
    free_slots_.push_back(index);
}

}  // namespace meshy::detail
