// rosbridge's rules when one client subscribes to one topic several times (with different ids).
#pragma once

#include <algorithm>
#include <cstddef>
#include <map>
#include <string>

namespace meshy::cli::bridge {

/// What one subscribe op asked for.
struct SubscribeParams {
    unsigned throttle_rate = 0;     ///< ms between messages, 0: none
    unsigned queue_length = 0;      ///< frames of the topic that may wait, 0: no per-topic bound
    std::size_t fragment_size = 0;  ///< 0: no fragments
};

/// The effective parameters: the lowest throttle_rate, the longest queue_length, the smallest
/// fragment_size that is set. Empty input: all zero.
inline SubscribeParams combine_subscriptions(const std::map<std::string, SubscribeParams>& by_id) {
    SubscribeParams out;
    bool first = true;
    for (const auto& [id, p] : by_id) {
        out.throttle_rate = first ? p.throttle_rate : std::min(out.throttle_rate, p.throttle_rate);
        out.queue_length = std::max(out.queue_length, p.queue_length);
        if (p.fragment_size > 0 && (out.fragment_size == 0 || p.fragment_size < out.fragment_size)) {
            out.fragment_size = p.fragment_size;
        }
        first = false;
    }
    return out;
}

}  // namespace meshy::cli::bridge
