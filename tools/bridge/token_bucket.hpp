// A token bucket: the per-client rate limits of `meshy bridge` (messages/s and bytes/s).
#pragma once

#include <chrono>

namespace meshy::cli::bridge {

/// Refills at `rate` tokens per second up to `burst`; take() spends tokens when there are enough.
/// A rate of 0 means unlimited.
class TokenBucket {
public:
    using Clock = std::chrono::steady_clock;

    TokenBucket() = default;
    /// @param rate tokens per second (0: unlimited)
    /// @param burst capacity; 0 picks `rate` (one second's worth)
    TokenBucket(double rate, double burst, Clock::time_point now = Clock::now())
        : rate_(rate), burst_(burst > 0 ? burst : rate), tokens_(burst > 0 ? burst : rate), last_(now) {}

    /// Spends `amount` tokens if available at `now`. @returns false (spending nothing) otherwise.
    bool take(double amount, Clock::time_point now = Clock::now()) {
        if (rate_ <= 0) {
            return true;
        }
        refill(now);
        // A single request larger than the burst can never fit: it is allowed once the bucket is full.
        const double need = amount > burst_ ? burst_ : amount;
        if (tokens_ < need) {
            return false;
        }
        tokens_ -= amount;  // may go negative for an oversized request: it pays it back over time
        return true;
    }
    /// Tokens available at `now`.
    double available(Clock::time_point now = Clock::now()) {
        refill(now);
        return tokens_;
    }
    bool unlimited() const noexcept { return rate_ <= 0; }

private:
    void refill(Clock::time_point now) {
        if (now > last_) {
            tokens_ += std::chrono::duration<double>(now - last_).count() * rate_;
            if (tokens_ > burst_) {
                tokens_ = burst_;
            }
            last_ = now;
        }
    }

    double rate_ = 0;
    double burst_ = 0;
    double tokens_ = 0;
    Clock::time_point last_{};
};

}  // namespace meshy::cli::bridge
