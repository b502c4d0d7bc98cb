// Internal: warnings that a peer can provoke at will (bad frames, floods of connections, refused
// requests) go through a per-kind limiter, so an attack costs at most one log line a second per
// kind and still says how many lines it held back.
#pragma once

#include <chrono>
#include <cstddef>
#include <cstdint>
#include <functional>
#include <map>
#include <meshy/log.hpp>
#include <mutex>
#include <string>
#include <string_view>

namespace meshy::detail {

/// At most one record per `interval` for each kind; the next record of a kind that goes out after
/// some were held back ends with "(N similar suppressed)". Thread-safe.
///
/// A kind is a fixed text chosen by the code ("bridge: bad HTTP request"), never one built from
/// what a peer sent or from its address: the set of kinds must stay small. Past `max_kinds`
/// distinct kinds, every further kind shares one slot, so memory stays bounded anyway.
class RateLimitedLog {
public:
    using Clock = std::chrono::steady_clock;

    /// @param interval the shortest gap between two records of one kind
    explicit RateLimitedLog(Clock::duration interval = std::chrono::seconds(1)) : interval_(interval) {}

    /// Logs `message` at `level` unless a record of `kind` went out less than the interval ago.
    /// A record below the log level is neither logged nor counted.
    /// @returns true when the record reached the log.
    bool log(LogLevel level, std::string_view kind, std::string_view message, Clock::time_point now = Clock::now());

    /// Records of `kind` held back since its last record went out.
    std::uint64_t suppressed(std::string_view kind) const;

    /// Distinct kinds remembered at most (the rest share one slot).
    static constexpr std::size_t max_kinds = 256;

private:
    struct Kind {
        Clock::time_point last{};
        bool logged = false;
        std::uint64_t suppressed = 0;
    };

    Clock::duration interval_;
    mutable std::mutex mutex_;
    std::map<std::string, Kind, std::less<>> kinds_;
};

/// The process-wide limiter (one record a second per kind), shared by the library and the tools.
RateLimitedLog& rate_limited_log();

/// `rate_limited_log().log(level, kind, message)`.
inline bool log_rate_limited(LogLevel level, std::string_view kind, std::string_view message) {
    return rate_limited_log().log(level, kind, message);
}

}  // namespace meshy::detail
