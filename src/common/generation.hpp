// Internal: generations of the node's tables, from one counter for all nodes of the process, so
// that a (node, generation) pair that a per-thread cache holds is never reused by a later node at
// the same address.
#pragma once

#include <atomic>
#include <cstdint>

namespace meshy::detail {

inline std::uint64_t next_generation() {
    static std::atomic<std::uint64_t> counter{1};
    return counter.fetch_add(1, std::memory_order_relaxed);
}

}  // namespace meshy::detail
