#include "bridge/rest_latest_cache.hpp"

namespace meshy::cli::bridge {

std::vector<std::string> LatestCache::track(const std::string& topic) {
    std::vector<std::string> evicted;
    const auto it = entries_.find(topic);
    if (it != entries_.end()) {
        order_.splice(order_.begin(), order_, it->second.order);
        return evicted;
    }
    while (!entries_.empty() && entries_.size() >= max_topics_) {
        evict_one(evicted);
    }
    order_.push_front(topic);
    entries_.emplace(topic, Entry{std::nullopt, order_.begin()});
    return evicted;
}

void LatestCache::evict_one(std::vector<std::string>& evicted) {
    const std::string topic = order_.back();
    order_.pop_back();
    const auto it = entries_.find(topic);
    if (it->second.message) {
        bytes_ -= it->second.message->payload.size();
    }
    entries_.erase(it);
    evicted.push_back(topic);
}

bool LatestCache::store(const std::string& topic, LatestMessage message) {
    const auto it = entries_.find(topic);
    if (it == entries_.end() || message.payload.size() > max_bytes_) {
        return false;
    }
    auto& slot = it->second.message;
    const std::size_t old = slot ? slot->payload.size() : 0;
    // Make room by forgetting the messages of the topics asked for least recently (they stay
    // tracked: their next message is kept again).
    for (auto o = order_.rbegin(); bytes_ - old + message.payload.size() > max_bytes_ && o != order_.rend(); ++o) {
        auto& other = entries_.find(*o)->second.message;
        if (*o != topic && other) {
            bytes_ -= other->payload.size();
            other.reset();
        }
    }
    bytes_ = bytes_ - old + message.payload.size();
    slot = std::move(message);
    return true;
}

const LatestMessage* LatestCache::find(const std::string& topic) const {
    const auto it = entries_.find(topic);
    return it == entries_.end() || !it->second.message ? nullptr : &*it->second.message;
}

}  // namespace meshy::cli::bridge
