// Reads an MCAP file held in memory (a MappedFile, or bytes a fuzzer made up): the summary through the
// Footer, without touching the data; or the data section record by record, which also works on a
// file whose writer was killed (it stops at the first incomplete or corrupt record and says why).
//
// Every length and offset comes from untrusted bytes: each is checked against the input before use,
// and a chunk may not claim more than ReaderOptions::max_chunk_size uncompressed bytes.
#pragma once

#include <functional>
#include <map>
#include <optional>
#include <string>
#include <vector>

#include "bag/compression.hpp"
#include "bag/mcap_format.hpp"

namespace meshy::bag {

struct ReaderOptions {
    /// Uncompressed bytes a chunk may claim; a larger claim is treated as corruption (no allocation).
    std::uint64_t max_chunk_size = std::uint64_t{1} << 30;
};

/// The summary section, as the Footer points to it.
struct Summary {
    mcap::Footer footer;
    std::optional<mcap::Statistics> statistics;
    std::map<std::uint16_t, mcap::Schema> schemas;
    std::map<std::uint16_t, mcap::Channel> channels;
    std::vector<mcap::ChunkIndex> chunk_indexes;
    std::vector<mcap::SummaryOffset> summary_offsets;
};

/// One complete chunk met by a scan.
struct ChunkInfo {
    std::uint64_t offset = 0;  ///< of the Chunk record in the file
    std::uint64_t length = 0;  ///< of the whole record
    std::string compression;   ///< "", "zstd", "lz4"
    std::uint64_t compressed_size = 0;
    std::uint64_t uncompressed_size = 0;
    std::uint64_t message_count = 0;
};

/// What a scan reports to its caller, in file order. Any member may be empty.
struct ScanHandler {
    std::function<void(const mcap::Schema&)> on_schema;
    std::function<void(const mcap::Channel&)> on_channel;
    /// Each message with its channel. Return false to stop the scan.
    std::function<bool(const mcap::Channel&, const mcap::MessageView&)> on_message;
    /// After the messages of a chunk.
    std::function<void(const ChunkInfo&)> on_chunk;
};

struct ScanResult {
    std::uint64_t data_end = 0;  ///< offset just past the last whole, valid record read
    bool complete = false;       ///< the data section ended with its DataEnd record
    bool stopped = false;        ///< on_message returned false
    std::string problem;         ///< why reading ended before DataEnd ("" when complete or stopped)
    std::uint64_t chunks = 0;
    std::uint64_t messages = 0;
};

class McapReader {
public:
    /// Checks the leading magic and reads the Header.
    /// @throws mcap::McapError when `file` does not start like an MCAP file
    explicit McapReader(mcap::ByteView file, ReaderOptions options = {});

    const mcap::Header& header() const noexcept { return header_; }
    /// Offset of the first record after the Header.
    std::uint64_t data_start() const noexcept { return data_start_; }

    /// Reads the summary through the Footer at the end of the file. It reads nothing of the data.
    /// @returns nullopt when there is no valid Footer or summary; `why` then says what is missing.
    std::optional<Summary> read_summary(std::string* why = nullptr) const;

    /// Reads the data section from its start. A chunk is delivered only once all of it checked out
    /// (length, decompression, CRC, its records); its messages come in file order, or sorted by log
    /// time when `sort_chunk_messages`. Never throws for bad data: the result says where it ended.
    ScanResult scan(const ScanHandler& handler, bool sort_chunk_messages = false) const;

    /// The compression of the first chunk ("" if none or no chunk), found without decompressing.
    std::optional<std::string> first_chunk_compression() const;

private:
    mcap::ByteView file_;
    ReaderOptions options_;
    mcap::Header header_;
    std::uint64_t data_start_ = 0;
};

}  // namespace meshy::bag
