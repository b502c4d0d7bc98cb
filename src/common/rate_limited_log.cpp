#include "common/rate_limited_log.hpp"

namespace meshy::detail {

namespace {
constexpr std::string_view overflow_kind = "(other kinds)";
}  // namespace

bool RateLimitedLog::log(LogLevel level, std::string_view kind, std::string_view message, Clock::time_point now) {
    if (!log_enabled(level)) {
        return false;
    }
    std::uint64_t held_back = 0;
    {
        std::lock_guard lock(mutex_);
        auto it = kinds_.find(kind);
        if (it == kinds_.end()) {
            if (kinds_.size() >= max_kinds) {
                kind = overflow_kind;
                it = kinds_.find(kind);
            }
            if (it == kinds_.end()) {
                it = kinds_.emplace(std::string(kind), Kind{}).first;
            }
        }
        Kind& k = it->second;
        if (k.logged && now - k.last < interval_) {
            ++k.suppressed;
            return false;
        }
        k.logged = true;
        k.last = now;
        held_back = k.suppressed;
        k.suppressed = 0;
    }
    // Outside the lock: the sink may be slow, and may itself log.
    if (held_back == 0) {
        meshy::log(level, message);
    } else {
        meshy::log(level, std::string(message) + " (" + std::to_string(held_back) + " similar suppressed)");
    }
    return true;
}

std::uint64_t RateLimitedLog::suppressed(std::string_view kind) const {
    std::lock_guard lock(mutex_);
    const auto it = kinds_.find(kind);
    return it == kinds_.end() ? 0 : it->second.suppressed;
}

RateLimitedLog& rate_limited_log() {
    static RateLimitedLog instance;
    return instance;
}

}  // namespace meshy::detail
