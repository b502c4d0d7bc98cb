// What `meshy bag info` shows about a bag: from its summary when it has a valid one (reading none of
// the data), else from a scan of its data section (a recording that was killed).
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "bag/mcap_reader.hpp"

namespace meshy::bag {

struct TopicInfo {
    std::string topic;
    std::uint64_t count = 0;
    std::vector<std::string> encodings;  ///< message encodings of its channels, sorted, unique
};

struct BagInfo {
    std::uint64_t file_size = 0;
    bool indexed = false;                ///< read from the summary
    std::string why_not_indexed;         ///< when !indexed: what the summary lacks
    std::string problem;                 ///< when scanned: why the scan stopped early ("" if it read everything)
    std::uint64_t unreadable_bytes = 0;  ///< when scanned: bytes after the last good record
    std::string library;
    std::string profile;
    std::uint64_t message_count = 0;
    std::uint64_t start_time = 0;  ///< earliest log time, ns (0: no messages)
    std::uint64_t end_time = 0;
    std::uint64_t chunk_count = 0;
    std::uint64_t channel_count = 0;
    std::vector<std::string> compressions;  ///< of the chunks: "none", "zstd", "lz4"; sorted, unique
    std::vector<TopicInfo> topics;          ///< sorted by topic
};

/// @throws mcap::McapError when `file` is not MCAP at all (no magic, no Header)
BagInfo read_bag_info(mcap::ByteView file, const ReaderOptions& options = {});

}  // namespace meshy::bag
