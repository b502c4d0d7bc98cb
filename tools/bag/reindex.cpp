#include "bag/reindex.hpp"

#include <map>

#include "bag/mcap_writer.hpp"

namespace meshy::bag {

ReindexResult reindex(mcap::ByteView input, const std::string& output_path, const ReindexOptions& options) {
    McapReader reader(input);
    ReindexResult result;
    // Keep the input's compression; when not even its first chunk's header survived, use the recorder's default.
    const auto first = reader.first_chunk_compression();
    result.compression =
        options.compression.value_or(first ? parse_compression(*first).value_or(Compression::zstd) : Compression::zstd);

    WriterOptions wo;
    wo.compression = result.compression;
    wo.profile = reader.header().profile;
    wo.library = options.library.empty() ? reader.header().library : options.library;
    wo.exclusive = options.exclusive;
    // Chunks end where the input's did (flush_chunk() per input chunk); this only bounds a huge one.
    wo.chunk_size = std::size_t{64} << 20;
    McapWriter writer(output_path, wo);

    std::map<std::uint16_t, std::uint16_t> schema_ids;   // input id -> output id
    std::map<std::uint16_t, std::uint16_t> channel_ids;  // input id -> output id
    ScanHandler handler;
    handler.on_schema = [&](const mcap::Schema& s) {
        if (s.id != 0 && !schema_ids.contains(s.id)) {
            schema_ids[s.id] = writer.add_schema(s.name, s.encoding, s.data);
        }
    };
    handler.on_channel = [&](const mcap::Channel& c) {
        if (!channel_ids.contains(c.id)) {
            const auto schema = schema_ids.find(c.schema_id);
            channel_ids[c.id] = writer.add_channel(schema == schema_ids.end() ? 0 : schema->second, c.topic,
                                                   c.message_encoding, c.metadata);
        }
    };
    handler.on_message = [&](const mcap::Channel& c, const mcap::MessageView& m) {
        writer.add_message(channel_ids.at(c.id), m.sequence, m.log_time, m.publish_time, m.data);
        ++result.messages;
        return true;
    };
    handler.on_chunk = [&](const ChunkInfo&) {
        writer.flush_chunk();
    };

    ScanResult scanned;
    try {
        scanned = reader.scan(handler);
        writer.close();
    } catch (...) {
        writer.discard();
        throw;
    }
    result.chunks = scanned.chunks;
    result.problem = scanned.problem;
    result.dropped_bytes = scanned.complete ? 0 : input.size() - scanned.data_end;
    return result;
}

}  // namespace meshy::bag
