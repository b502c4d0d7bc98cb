// What the discovery tests share: a deadline-bound wait and a recorder of a backend's events.
#pragma once

#include <algorithm>
#include <chrono>
#include <functional>
#include <map>
#include <mutex>
#include <string>
#include <thread>
#include <vector>

#include "discovery/discovery.hpp"

namespace meshy::detail::testing {

/// Polls `condition` every 10 ms until it holds or `limit` has passed; never a guessed sleep.
inline bool eventually(const std::function<bool()>& condition,
                       std::chrono::milliseconds limit = std::chrono::seconds(3)) {
    const auto deadline = std::chrono::steady_clock::now() + limit;
    while (std::chrono::steady_clock::now() < deadline) {
        if (condition()) {
            return true;
        }
        std::this_thread::sleep_for(std::chrono::milliseconds(10));
    }
    return condition();
}

/// Collects what one backend reports; the backend calls it from its own thread.
class Recorder {
public:
    DiscoveryEvents events() {
        return {[this](const Advert& advert) {
                    std::lock_guard lock(mutex_);
                    up_[advert.id] = advert;
                    ++up_count_[advert.id];
                },
                [this](const std::string& id) {
                    std::lock_guard lock(mutex_);
                    up_.erase(id);
                    downs_.push_back(id);
                }};
    }

    bool sees(const std::string& id) const {
        std::lock_guard lock(mutex_);
        return up_.contains(id);
    }

    Advert advert(const std::string& id) const {
        std::lock_guard lock(mutex_);
        const auto it = up_.find(id);
        return it == up_.end() ? Advert{} : it->second;
    }

    int up_count(const std::string& id) const {
        std::lock_guard lock(mutex_);
        const auto it = up_count_.find(id);
        return it == up_count_.end() ? 0 : it->second;
    }

    bool saw_down(const std::string& id) const {
        std::lock_guard lock(mutex_);
        return std::find(downs_.begin(), downs_.end(), id) != downs_.end();
    }

private:
    mutable std::mutex mutex_;
    std::map<std::string, Advert> up_;
    std::map<std::string, int> up_count_;
    std::vector<std::string> downs_;
};

}  // namespace meshy::detail::testing
