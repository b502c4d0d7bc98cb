// One Foxglove client's topic data waiting for its socket: a small queue per channel (the oldest
// frame goes when it is full) and channels served in turn, one frame each, so that a channel with
// large or many messages cannot starve the others on a slow connection.
#pragma once

#include <cstddef>
#include <cstdint>
#include <deque>
#include <map>
#include <memory>
#include <string>

namespace meshy::cli::bridge {

/// Frames per channel, served round-robin.
class FairQueue {
public:
    using Frame = std::shared_ptr<const std::string>;

    /// @param per_channel frames a channel may have waiting before its oldest is dropped (>= 1)
    explicit FairQueue(std::size_t per_channel) : per_channel_(per_channel > 0 ? per_channel : 1) {}

    /// Queues a frame of `channel`. @returns true when that dropped the channel's oldest frame.
    bool push(std::uint32_t channel, Frame frame) {
        auto& q = channels_[channel];
        q.push_back(std::move(frame));
        if (q.size() > per_channel_) {
            q.pop_front();
            ++dropped_;
            return true;
        }
        return false;
    }
    /// The next frame: the front of the channel after the one served last. nullptr when empty.
    Frame pop() {
        if (channels_.empty()) {
            return nullptr;
        }
        auto it = channels_.lower_bound(next_);
        if (it == channels_.end()) {
            it = channels_.begin();
        }
        Frame f = std::move(it->second.front());
        it->second.pop_front();
        next_ = it->first + 1;
        if (it->second.empty()) {
            channels_.erase(it);
        }
        return f;
    }
    /// Forgets the frames of `channel` (unsubscribed).
    void erase(std::uint32_t channel) { channels_.erase(channel); }
    bool empty() const noexcept { return channels_.empty(); }
    /// Frames dropped so far.
    std::uint64_t dropped() const noexcept { return dropped_; }

private:
    std::size_t per_channel_;
    std::map<std::uint32_t, std::deque<Frame>> channels_;
    std::uint32_t next_ = 0;  // round-robin cursor: the lowest channel id to serve next
    std::uint64_t dropped_ = 0;
};

}  // namespace meshy::cli::bridge
