#include "bag/player.hpp"

#include <algorithm>
#include <map>
#include <optional>
#include <set>

#include "bag/codec_encoding.hpp"
#include "bag/json_encoding.hpp"

namespace meshy::bag {
namespace {

using SteadyClock = std::chrono::steady_clock;

/// The channels of a bag: from its summary, else from a scan.
std::map<std::uint16_t, mcap::Channel> bag_channels(const McapReader& reader) {
    if (auto summary = reader.read_summary()) {
        return summary->channels;
    }
    std::map<std::uint16_t, mcap::Channel> channels;
    ScanHandler handler;
    handler.on_channel = [&](const mcap::Channel& c) {
        channels[c.id] = c;
    };
    reader.scan(handler);
    return channels;
}

/// The codec a channel's messages are sent with: JSON channels (meshy's, or another tool's) go out as
/// msgpack, rebuilt from their JSON.
std::optional<CodecId> playable_codec(const mcap::Channel& channel) {
    if (channel.message_encoding == "json") {
        return CodecId::msgpack;
    }
    return channel_codec(channel);
}

}  // namespace

std::vector<std::string> bag_topics(const McapReader& reader) {
    std::set<std::string> topics;
    for (const auto& [id, channel] : bag_channels(reader)) {
        topics.insert(channel.topic);
    }
    return {topics.begin(), topics.end()};
}

PlayResult play_bag(Node& node, const McapReader& reader, const PlayOptions& options, const PlayHooks& hooks) {
    PlayResult result;
    const std::set<std::string> only(options.topics.begin(), options.topics.end());
    auto selected = [&](const std::string& topic) {
        return only.empty() || only.contains(topic);
    };
    const double rate = options.rate > 0 ? options.rate : 1.0;

    // Which channels can be sent, and what to wait for.
    std::set<std::string> wait_for;
    std::set<std::uint16_t> warned;
    for (const auto& [id, channel] : bag_channels(reader)) {
        if (selected(channel.topic) && playable_codec(channel)) {
            wait_for.insert(channel.topic);
        }
    }

    if (!options.immediate && !wait_for.empty()) {
        // The player sends these topics: saying so dials their listeners, and a listener counts once
        // its link is up (a node that just stopped may still be advertised for a moment).
        for (const auto& t : wait_for) {
            node.advertise(t);
        }
        const auto reachable = [&](const std::string& t) {
            for (const auto& n : node.nodes()) {
                if (!n.is_self && !n.transport.empty() &&
                    std::find(n.topics.begin(), n.topics.end(), t) != n.topics.end()) {
                    return true;
                }
            }
            return false;
        };
        const auto deadline = SteadyClock::now() + options.listener_wait;
        bool noticed = false;
        for (;;) {
            const bool all = std::all_of(wait_for.begin(), wait_for.end(), reachable);
            if (all || SteadyClock::now() >= deadline) {
                break;
            }
            if (!noticed && hooks.on_waiting) {
                hooks.on_waiting();
                noticed = true;
            }
            if (!hooks.sleep_until(SteadyClock::now() + std::chrono::milliseconds(20))) {
                result.interrupted = true;
                return result;
            }
        }
    }

    std::optional<std::uint64_t> bag_start;
    if (auto summary = reader.read_summary(); summary && summary->statistics && summary->statistics->message_count) {
        bag_start = summary->statistics->message_start_time;
    }
    const auto offset_ns = static_cast<std::uint64_t>(std::max(0.0, options.start_offset) * 1e9);

    for (unsigned pass = 0;; ++pass) {
        const auto origin = SteadyClock::now();
        auto last_check = origin;
        std::uint64_t sent_this_pass = 0;
        ScanHandler handler;
        std::map<std::uint16_t, std::string> schemas;  // JSON channels' schemas, as the scan meets them
        handler.on_schema = [&](const mcap::Schema& s) {
            schemas[s.id] = std::string(reinterpret_cast<const char*>(s.data.data()), s.data.size());
        };
        handler.on_message = [&](const mcap::Channel& channel, const mcap::MessageView& m) {
            if (!bag_start) {
                bag_start = m.log_time;  // chunks come in time order: the first message is the earliest
            }
            const std::uint64_t from = *bag_start + offset_ns;
            if ((offset_ns > 0 && m.log_time < from) || !selected(channel.topic)) {
                return true;
            }
            // Without a summary, a later chunk may hold an earlier message: it goes out at once.
            const std::uint64_t since_from = m.log_time > from ? m.log_time - from : 0;
            const std::uint64_t since_start = m.log_time > *bag_start ? m.log_time - *bag_start : 0;
            const auto codec = playable_codec(channel);
            if (!codec) {
                if (warned.insert(channel.id).second && hooks.on_warning) {
                    hooks.on_warning("topic '" + channel.topic + "': encoding '" + channel.message_encoding +
                                     "' has no meshy codec; its messages are skipped");
                }
                return true;
            }
            const auto due = origin + std::chrono::duration_cast<SteadyClock::duration>(
                                          std::chrono::duration<double>(static_cast<double>(since_from) / 1e9 / rate));
            const auto now = SteadyClock::now();
            // Sleep until due; when behind, still look for Ctrl-C every 50 ms.
            if (due > now || now - last_check >= std::chrono::milliseconds(50)) {
                if (!hooks.sleep_until(std::max(due, now))) {
                    result.interrupted = true;
                    return false;
                }
                last_check = SteadyClock::now();
            }
            mcap::ByteView payload = m.data;
            Buffer decoded;
            if (channel.message_encoding == "json") {
                try {
                    decoded = decode_json_message(m.data, schemas[channel.schema_id]);
                } catch (const std::exception& e) {
                    if (warned.insert(channel.id).second && hooks.on_warning) {
                        hooks.on_warning("topic '" + channel.topic + "': " + e.what() + "; such messages are skipped");
                    }
                    return true;
                }
                payload = decoded.bytes();
            }
            node.send_raw(channel.topic, *codec, payload, 0);
            ++result.sent;
            ++sent_this_pass;
            if (hooks.on_sent) {
                hooks.on_sent(PlayedMessage{channel.topic, *codec, payload, m.log_time,
                                            static_cast<double>(since_start) / 1e9, pass});
            }
            return true;
        };
        const ScanResult scanned = reader.scan(handler, true);
        if (pass == 0) {
            result.problem = scanned.problem;
        }
        if (result.interrupted) {
            break;
        }
        ++result.loops;
        if (!options.loop || sent_this_pass == 0) {
            break;  // (a loop over nothing would spin)
        }
    }
    return result;
}

}  // namespace meshy::bag
