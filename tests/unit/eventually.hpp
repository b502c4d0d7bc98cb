// The unit tests' wait for a condition: polled, bounded by a deadline, never a guessed sleep.
#pragma once

#include <chrono>
#include <functional>
#include <thread>

namespace meshy::test {

/// Polls `condition` every 5 ms until it holds or `limit` has passed; true when it held.
inline bool eventually(const std::function<bool()>& condition,
                       std::chrono::milliseconds limit = std::chrono::seconds(5)) {
    const auto until = std::chrono::steady_clock::now() + limit;
    while (std::chrono::steady_clock::now() < until) {
        if (condition()) {
            return true;
        }
        std::this_thread::sleep_for(std::chrono::milliseconds(5));
    }
    return condition();
}

}  // namespace meshy::test
