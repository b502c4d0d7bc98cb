#include "transport/warn_limiter.hpp"

#include <array>
#include <chrono>
#include <cstdint>
#include <mutex>
#include <string>
#include <utility>

#include "meshy/log.hpp"

namespace meshy::detail {
namespace {

struct KindState {
    std::chrono::steady_clock::time_point last{};
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
        if (state.last != std::chrono::steady_clock::time_point{} && now - state.last < std::chrono::seconds(1)) {
            ++state.suppressed;
            return;
        }
        state.last = now;
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
