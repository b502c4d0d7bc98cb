#include "transport/warn_limiter.hpp"

#include <algorithm>
#include <array>
#include <chrono>
#include <cstdint>
#include <mutex>
#include <string>
#include <utility>

#include "meshy/log.hpp"

namespace meshy::detail {
namespace {

// A burst of a few goes out at once (a handful of bad peers are each worth a line), then one a
// second: a token bucket per kind.
constexpr double burst = 5;

struct KindState {
    double tokens = burst;
    std::chrono::steady_clock::time_point refilled{};
    std::uint64_t suppressed = 0;
};

std::mutex warn_mutex;
std::array<KindState, static_cast<std::size_t>(WarnKind::count_)> warn_states;

}  // namespace

void warn_limited(WarnKind kind, std::string_view message) {
    if (kind == WarnKind::none) {
        log(LogLevel::debug, message);
        return;
    }
    const auto now = std::chrono::steady_clock::now();
    std::uint64_t suppressed = 0;
    {
        std::lock_guard lock(warn_mutex);
        auto& state = warn_states[static_cast<std::size_t>(kind)];
        if (state.refilled != std::chrono::steady_clock::time_point{}) {
            state.tokens = std::min(burst, state.tokens + std::chrono::duration<double>(now - state.refilled).count());
        }
        state.refilled = now;
        if (state.tokens < 1) {
            ++state.suppressed;
            return;
        }
        state.tokens -= 1;
        suppressed = std::exchange(state.suppressed, 0);
    }
    if (suppressed == 0) {
        log(LogLevel::warn, message);
    } else {
        log(LogLevel::warn, std::string(message) + " (and " + std::to_string(suppressed) +
                                " like it in the last second(s), not shown)");
    }
}

}  // namespace meshy::detail
