// Chunk compression for MCAP: zstd (libzstd) and lz4 (liblz4, the LZ4 *frame* format, as MCAP
// readers expect), or none. One compressor or decompressor keeps its library context between
// chunks, so a recording allocates it once.
#pragma once

#include <memory>
#include <optional>
#include <string_view>

#include "bag/mcap_format.hpp"

namespace meshy::bag {

enum class Compression { none, zstd, lz4 };

/// The Chunk record's `compression` field: "", "zstd" or "lz4".
std::string_view mcap_compression_name(Compression c) noexcept;
/// The command line's name: "none", "zstd" or "lz4".
std::string_view compression_option_name(Compression c) noexcept;
/// "none"/"zstd"/"lz4" (command line) or ""/"zstd"/"lz4" (file). nullopt for anything else.
std::optional<Compression> parse_compression(std::string_view name) noexcept;

/// Compresses chunk records. Not thread-safe; one per thread that compresses.
class Compressor {
public:
    /// @param level 0: the library's fast default for recording (zstd 1; lz4 has one speed here)
    explicit Compressor(Compression compression, int level = 0);
    ~Compressor();
    Compressor(const Compressor&) = delete;
    Compressor& operator=(const Compressor&) = delete;

    Compression compression() const noexcept { return compression_; }
    /// Replaces `out` with the compressed form of `in` (for none: a copy). `fast` trades ratio for
    /// speed (zstd level -10, lz4 acceleration 20: 3-5 times faster), for a writer that fell behind.
    /// @throws mcap::McapError
    void compress(mcap::ByteView in, mcap::Bytes& out, bool fast = false);

private:
    struct Contexts;
    Compression compression_;
    int level_;
    std::unique_ptr<Contexts> contexts_;
};

/// Decompresses chunk records of any supported compression. Not thread-safe.
class Decompressor {
public:
    Decompressor();
    ~Decompressor();
    Decompressor(const Decompressor&) = delete;
    Decompressor& operator=(const Decompressor&) = delete;

    /// Replaces `out` with exactly `uncompressed_size` bytes decompressed from `in`.
    /// @param compression the Chunk's field: "", "zstd" or "lz4"
    /// @throws mcap::McapError for an unknown compression, bad data, or a size other than promised
    void decompress(std::string_view compression, mcap::ByteView in, std::uint64_t uncompressed_size, mcap::Bytes& out);

private:
    struct Contexts;
    std::unique_ptr<Contexts> contexts_;
};

}  // namespace meshy::bag
