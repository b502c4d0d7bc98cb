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
#include "eventually.hpp"

namespace meshy::detail::testing {

/// meshy::test::eventually with the discovery tests' 3 s default.
inline bool eventually(const std::function<bool()>& condition,
                       std::chrono::milliseconds limit = std::chrono::seconds(3)) {
    return meshy::test::eventually(condition, limit);
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
