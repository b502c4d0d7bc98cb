// `meshy bag reindex` (alias `recover`): writes a complete MCAP file — chunks, message indexes,
// summary, Footer — from the readable part of another one, typically a recording killed with SIGKILL.
// Every complete chunk that checks out (CRC, decompression, records) is kept, in order, with its
// schemas, channels, sequences and timestamps; a torn tail is dropped.
#pragma once

#include <optional>
#include <string>

#include "bag/compression.hpp"
#include "bag/mcap_reader.hpp"

namespace meshy::bag {

struct ReindexOptions {
    std::optional<Compression> compression;  ///< default: that of the input's first chunk
    std::string library;                     ///< Header library of the output ("meshy 0.1.0")
    bool exclusive = true;                   ///< fail when the output exists
};

struct ReindexResult {
    std::uint64_t messages = 0;
    std::uint64_t chunks = 0;         ///< chunks read from the input
    std::uint64_t dropped_bytes = 0;  ///< input bytes after the last good record
    std::string problem;              ///< why reading the input ended early ("" if it was complete)
    Compression compression = Compression::none;
};

/// @throws mcap::McapError when `input` is not MCAP, or the output cannot be written (then removed)
ReindexResult reindex(mcap::ByteView input, const std::string& output_path, const ReindexOptions& options);

}  // namespace meshy::bag
