// `meshy bag export --json`: a copy of a bag in which every msgpack channel is recorded as JSON with
// a JSON Schema (json_encoding.hpp), so that Foxglove decodes it; other channels (cereal, raw, JSON
// already, another tool's) are copied as they are, and so is a msgpack channel with a message that
// has no JSON form (maps with keys that are not strings), with one warning.
#pragma once

#include <cstdint>
#include <functional>
#include <string>

#include "bag/compression.hpp"
#include "bag/mcap_reader.hpp"

namespace meshy::bag {

struct ExportOptions {
    Compression compression = Compression::zstd;
    std::string library;    ///< Header library of the output
    bool exclusive = true;  ///< fail when the output exists
    /// Told once per channel that stays msgpack.
    std::function<void(const std::string&)> on_warning;
};

struct ExportResult {
    std::uint64_t messages = 0;
    std::uint64_t json_messages = 0;  ///< of them, written as JSON
    std::string problem;              ///< why reading the input ended early ("" if it was complete)
};

/// @throws mcap::McapError when `input` is not MCAP, or the output cannot be written (then removed)
ExportResult export_json(mcap::ByteView input, const std::string& output_path, const ExportOptions& options);

}  // namespace meshy::bag
