// Fuzz target: the MCAP reader on untrusted bytes — a bag someone hands to `meshy bag info`, `play`
// or `reindex`. It reads the summary through the Footer and scans the data section (chunk lengths,
// zstd and lz4 decompression, CRCs, the records inside chunks), as those commands do.
#include <cstddef>
#include <cstdint>
#include <string>

#include "bag/mcap_reader.hpp"

using namespace meshy::bag;

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
    const mcap::ByteView in(reinterpret_cast<const std::byte*>(data), size);
    // Small enough that a chunk claiming a huge size is refused long before memory runs out. A
    // compressed chunk's claim is allocated and zero-filled before it is decompressed, so every input
    // that claims the most costs a memset of this much: 1 MiB holds anything a 64 KiB input (the
    // target's -max_len) decompresses to at any realistic ratio, and the refusal is still reached.
    ReaderOptions options;
    options.max_chunk_size = std::uint64_t{1} << 20;
    try {
        const McapReader reader(in, options);
        std::string why;
        if (auto summary = reader.read_summary(&why)) {
            for (const auto& [id, channel] : summary->channels) {
                (void)id;
                (void)channel.topic.size();
            }
        }
        (void)reader.first_chunk_compression();
        std::size_t bytes = 0;
        ScanHandler handler;
        handler.on_message = [&](const mcap::Channel& channel, const mcap::MessageView& m) {
            // Touch what a player sends: the channel and every payload byte.
            bytes += channel.topic.size() + m.data.size();
            for (const std::byte b : m.data) {
                bytes += std::to_integer<unsigned>(b) & 1u;
            }
            return true;
        };
        (void)reader.scan(handler, (size & 1) != 0);
    } catch (const mcap::McapError&) {
        // Not MCAP (no magic, no Header): the one error the reader reports by throwing.
    }
    return 0;
}
