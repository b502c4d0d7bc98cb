#include "bridge/send_queue.hpp"

namespace meshy::cli::bridge {

void SendQueue::push(Item item, std::size_t topic_cap) {
    if (!item.topic.empty() && topic_cap > 0 && count(item.topic) >= topic_cap) {
        drop_oldest(&item.topic);
    }
    bytes_ += item.data->size();
    if (!item.topic.empty()) {
        ++topic_counts_[item.topic];
    }
    items_.push_back(std::move(item));
    while (bytes_ > max_bytes_ && drop_oldest(nullptr)) {
    }
}

bool SendQueue::drop_oldest(const std::string* topic) {
    for (std::size_t i = in_flight_ ? 1 : 0; i < items_.size(); ++i) {
        const Item& item = items_[i];
        if (!item.droppable || (topic && item.topic != *topic)) {
            continue;
        }
        forget(item);
        items_.erase(items_.begin() + static_cast<std::ptrdiff_t>(i));
        ++dropped_;
        return true;
    }
    return false;
}

void SendQueue::pop_front() {
    forget(items_.front());
    items_.pop_front();
    in_flight_ = false;
}

void SendQueue::clear() {
    items_.clear();
    topic_counts_.clear();
    bytes_ = 0;
    in_flight_ = false;
}

std::size_t SendQueue::count(const std::string& topic) const {
    const auto it = topic_counts_.find(topic);
    return it == topic_counts_.end() ? 0 : it->second;
}

void SendQueue::forget(const Item& item) {
    bytes_ -= item.data->size();
    if (!item.topic.empty()) {
        const auto it = topic_counts_.find(item.topic);
        if (it != topic_counts_.end() && --it->second == 0) {
            topic_counts_.erase(it);
        }
    }
}

}  // namespace meshy::cli::bridge
