#include "bag/bag_info.hpp"

#include <algorithm>
#include <map>
#include <set>

namespace meshy::bag {
namespace {

std::string compression_label(const std::string& c) {
    return c.empty() ? "none" : c;
}

/// Fills the per-topic part from channels and their message counts.
void fill_topics(BagInfo& info,
                 const std::map<std::uint16_t, mcap::Channel>& channels,
                 const std::map<std::uint16_t, std::uint64_t>& counts) {
    std::map<std::string, TopicInfo> topics;
    std::map<std::string, std::set<std::string>> encodings;
    for (const auto& [id, channel] : channels) {
        auto& t = topics[channel.topic];
        t.topic = channel.topic;
        const auto it = counts.find(id);
        t.count += it == counts.end() ? 0 : it->second;
        encodings[channel.topic].insert(channel.message_encoding);
    }
    for (auto& [name, t] : topics) {
        t.encodings.assign(encodings[name].begin(), encodings[name].end());
        info.topics.push_back(std::move(t));
    }
    info.channel_count = channels.size();
}

}  // namespace

BagInfo read_bag_info(mcap::ByteView file, const ReaderOptions& options) {
    McapReader reader(file, options);
    BagInfo info;
    info.file_size = file.size();
    info.library = reader.header().library;
    info.profile = reader.header().profile;

    std::string why;
    if (auto summary = reader.read_summary(&why); summary && summary->statistics) {
        const auto& stats = *summary->statistics;
        info.indexed = true;
        info.message_count = stats.message_count;
        info.start_time = stats.message_start_time;
        info.end_time = stats.message_end_time;
        info.chunk_count = std::max<std::uint64_t>(stats.chunk_count, summary->chunk_indexes.size());
        std::set<std::string> compressions;
        for (const auto& ci : summary->chunk_indexes) {
            compressions.insert(compression_label(ci.compression));
        }
        info.compressions.assign(compressions.begin(), compressions.end());
        std::map<std::uint16_t, std::uint64_t> counts(stats.channel_message_counts.begin(),
                                                      stats.channel_message_counts.end());
        fill_topics(info, summary->channels, counts);
        return info;
    } else if (summary) {
        why = "the summary has no Statistics record";
    }

    info.why_not_indexed = why;
    std::map<std::uint16_t, mcap::Channel> channels;
    std::map<std::uint16_t, std::uint64_t> counts;
    std::set<std::string> compressions;
    ScanHandler handler;
    handler.on_channel = [&](const mcap::Channel& c) {
        channels[c.id] = c;
    };
    handler.on_message = [&](const mcap::Channel& c, const mcap::MessageView& m) {
        ++counts[c.id];
        if (info.message_count++ == 0) {
            info.start_time = info.end_time = m.log_time;
        } else {
            info.start_time = std::min(info.start_time, m.log_time);
            info.end_time = std::max(info.end_time, m.log_time);
        }
        return true;
    };
    handler.on_chunk = [&](const ChunkInfo& chunk) {
        compressions.insert(compression_label(chunk.compression));
    };
    const ScanResult scanned = reader.scan(handler);
    info.problem = scanned.problem;
    info.chunk_count = scanned.chunks;
    info.unreadable_bytes = scanned.complete ? 0 : info.file_size - scanned.data_end;
    info.compressions.assign(compressions.begin(), compressions.end());
    fill_topics(info, channels, counts);
    return info;
}

}  // namespace meshy::bag
