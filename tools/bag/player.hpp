// Plays a bag into the mesh through a node: every message goes out with send_raw() on its topic and
// with its recorded codec, so listeners decode it as if it were live. Messages keep their recorded
// spacing (log time differences) divided by the rate, in log-time order within each chunk and chunk
// after chunk (the order meshy's recorder writes).
//
// The player does no waiting or printing of its own: the caller's hooks sleep (and say when to stop,
// e.g. on Ctrl-C) and report.
#pragma once

#include <chrono>
#include <cstdint>
#include <functional>
#include <meshy/node.hpp>
#include <string>
#include <string_view>
#include <vector>

#include "bag/mcap_reader.hpp"

namespace meshy::bag {

struct PlayOptions {
    double rate = 1.0;                              ///< > 0; 2 plays twice as fast
    bool loop = false;                              ///< start again after the last message, until stopped
    double start_offset = 0.0;                      ///< seconds of the bag to skip from its first message
    std::vector<std::string> topics;                ///< only these (empty: all)
    bool immediate = false;                         ///< do not wait for listeners first
    std::chrono::milliseconds listener_wait{5000};  ///< the longest wait for listeners
};

/// One message as it was sent.
struct PlayedMessage {
    std::string_view topic;
    CodecId codec = CodecId::msgpack;
    mcap::ByteView payload;
    std::uint64_t log_time = 0;  ///< recorded
    double bag_time = 0;         ///< seconds since the bag's first message
    unsigned loop = 0;           ///< 0 for the first pass
};

struct PlayHooks {
    /// Sleeps until `deadline` (which may be now). @returns false to stop playing (Ctrl-C).
    std::function<bool(std::chrono::steady_clock::time_point deadline)> sleep_until;
    /// Called once when the player starts waiting for listeners.
    std::function<void()> on_waiting;
    /// After each message was sent.
    std::function<void(const PlayedMessage&)> on_sent;
    /// Something the user should know that does not stop playing (a channel meshy cannot send, ...).
    std::function<void(const std::string&)> on_warning;
};

struct PlayResult {
    std::uint64_t sent = 0;
    unsigned loops = 0;        ///< complete passes
    bool interrupted = false;  ///< sleep_until returned false
    std::string problem;       ///< the bag's unreadable tail, if any (what was readable was played)
};

/// The topics a bag has, sorted (from its summary, else from a scan).
std::vector<std::string> bag_topics(const McapReader& reader);

/// Plays `reader`'s bag through `node` (which the caller stops afterwards, to flush).
PlayResult play_bag(Node& node, const McapReader& reader, const PlayOptions& options, const PlayHooks& hooks);

}  // namespace meshy::bag
