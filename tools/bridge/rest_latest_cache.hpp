// The last message of each topic that REST clients asked for (GET /api/topics/{name}/latest):
// bounded in topics and in bytes, least recently asked evicted first.
#pragma once

#include <chrono>
#include <cstddef>
#include <cstdint>
#include <list>
#include <map>
#include <meshy/codec.hpp>
#include <optional>
#include <span>
#include <string>
#include <vector>

namespace meshy::cli::bridge {

/// One remembered message.
struct LatestMessage {
    CodecId codec = CodecId::msgpack;
    std::string payload;                             ///< the encoded arguments
    std::uint64_t sent_at_ns = 0;                    ///< sender's clock, ns since the epoch (0: unknown)
    std::chrono::system_clock::time_point received;  ///< when the bridge got it
};

/// Topics -> their last message. Not thread-safe (the bridge's executor owns it).
class LatestCache {
public:
    /// @param max_topics topics remembered at once (>= 1)
    /// @param max_bytes payload bytes remembered in all (a larger message is not kept)
    LatestCache(std::size_t max_topics, std::size_t max_bytes) : max_topics_(max_topics), max_bytes_(max_bytes) {}

    /// Marks `topic` as wanted (most recently asked). @returns the topics evicted to make room,
    /// which the caller stops listening to; empty when `topic` was already tracked.
    std::vector<std::string> track(const std::string& topic);
    /// True when `topic` is tracked.
    bool tracks(const std::string& topic) const { return entries_.count(topic) != 0; }
    /// Stores a message of a tracked topic (ignored otherwise). @returns true when stored.
    bool store(const std::string& topic, LatestMessage message);
    /// The last message of `topic`, if any.
    const LatestMessage* find(const std::string& topic) const;
    /// Tracked topics.
    std::size_t size() const noexcept { return entries_.size(); }
    /// Payload bytes held.
    std::size_t bytes() const noexcept { return bytes_; }

private:
    struct Entry {
        std::optional<LatestMessage> message;
        std::list<std::string>::iterator order;
    };
    void evict_one(std::vector<std::string>& evicted);

    std::size_t max_topics_;
    std::size_t max_bytes_;
    std::size_t bytes_ = 0;
    std::map<std::string, Entry> entries_;
    std::list<std::string> order_;  ///< most recently asked first
};

}  // namespace meshy::cli::bridge
