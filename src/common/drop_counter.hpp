// Internal: counts messages dropped by a bounded queue and says when to warn, at most once a
// second, so a flood of drops costs one log line a second and no drop goes unreported.
#pragma once

#include <chrono>
#include <cstdint>

namespace meshy::detail {

class DropCounter {
public:
    using Clock = std::chrono::steady_clock;

    /// Counts one drop. @returns the number to report now (0: not yet, a warning was given
    /// less than a second ago; take() reports the rest later).
    std::uint64_t drop(Clock::time_point now = Clock::now()) {
        ++pending_;
        ++total_;
        if (now - last_warning_ < std::chrono::seconds(1)) {
            return 0;
        }
        last_warning_ = now;
        return take();
    }
    /// The drops not reported yet, if a warning is due (none in the last second); else 0, and
    /// they wait for the next drop, the next due report or the final take(). For reports when a
    /// queue drains: one that fills and drains over and over still warns once a second.
    std::uint64_t take_due(Clock::time_point now = Clock::now()) {
        if (pending_ == 0 || now - last_warning_ < std::chrono::seconds(1)) {
            return 0;
        }
        last_warning_ = now;
        return take();
    }
    /// The drops not reported yet (0 if none), for a final report.
    std::uint64_t take() {
        const auto n = pending_;
        pending_ = 0;
        return n;
    }
    /// Every drop so far.
    std::uint64_t total() const { return total_; }

private:
    std::uint64_t pending_ = 0;
    std::uint64_t total_ = 0;
    Clock::time_point last_warning_{};
};

}  // namespace meshy::detail
