// A WebSocket connection's bounded send queue: encoded frames waiting to be written, with
// drop-oldest for topic data (per topic at most `topic_cap` frames, and in all at most `max_bytes`
// while droppable frames remain). The frame being written (the front, in flight) is never dropped.
#pragma once

#include <cstddef>
#include <cstdint>
#include <deque>
#include <memory>
#include <string>
#include <unordered_map>

namespace meshy::cli::bridge {

/// The frames one connection still has to write.
class SendQueue {
public:
    /// One encoded frame.
    struct Item {
        std::shared_ptr<const std::string> data;
        std::string topic;       ///< topic data: its (meshy) topic; empty otherwise
        bool droppable = false;  ///< topic data may be dropped, other frames not
        bool is_close = false;   ///< the close frame
    };

    /// @param max_bytes bound of the queued bytes, kept by dropping the oldest droppable frames
    explicit SendQueue(std::size_t max_bytes) : max_bytes_(max_bytes) {}

    /// Queues a frame. For topic data with `topic_cap` > 0, the oldest frame of that topic goes first
    /// when `topic_cap` of them wait. Then the oldest droppable frames go while over max_bytes.
    void push(Item item, std::size_t topic_cap = 0);
    /// Drops the oldest droppable frame (of `topic` when given). @returns false when there is none.
    bool drop_oldest(const std::string* topic = nullptr);
    /// Marks the front as being written (not droppable) or not.
    void set_in_flight(bool in_flight) noexcept { in_flight_ = in_flight; }
    const Item& front() const { return items_.front(); }
    /// Removes the front (once written).
    void pop_front();
    void clear();

    bool empty() const noexcept { return items_.empty(); }
    std::size_t size() const noexcept { return items_.size(); }
    /// Bytes queued.
    std::size_t bytes() const noexcept { return bytes_; }
    /// Frames of `topic` queued.
    std::size_t count(const std::string& topic) const;
    /// Topic frames dropped so far.
    std::uint64_t dropped() const noexcept { return dropped_; }

private:
    void forget(const Item& item);

    std::size_t max_bytes_;
    std::deque<Item> items_;
    std::unordered_map<std::string, std::size_t> topic_counts_;
    std::size_t bytes_ = 0;
    std::uint64_t dropped_ = 0;
    bool in_flight_ = false;
};

}  // namespace meshy::cli::bridge
