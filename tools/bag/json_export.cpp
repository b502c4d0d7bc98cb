#include "bag/json_export.hpp"

#include <map>
#include <memory>

#include "bag/codec_encoding.hpp"
#include "bag/json_encoding.hpp"
#include "bag/mcap_writer.hpp"

namespace meshy::bag {

ExportResult export_json(mcap::ByteView input, const std::string& output_path, const ExportOptions& options) {
    McapReader reader(input);
    ExportResult result;
    WriterOptions wo;
    wo.compression = options.compression;
    wo.profile = reader.header().profile;
    wo.library = options.library.empty() ? reader.header().library : options.library;
    wo.exclusive = options.exclusive;
    McapWriter writer(output_path, wo);

    std::map<std::uint16_t, mcap::Schema> schemas;                        // input schemas
    std::map<std::uint16_t, std::uint16_t> schema_ids;                    // input id -> output id (copies)
    std::map<std::uint16_t, std::uint16_t> channel_ids;                   // input id -> output id (copies)
    std::map<std::uint16_t, std::unique_ptr<JsonChannelWriter>> as_json;  // input id -> its JSON channels
    const auto copy_channel = [&](const mcap::Channel& c) {
        if (auto it = channel_ids.find(c.id); it != channel_ids.end()) {
            return it->second;
        }
        std::uint16_t schema = 0;
        if (const auto s = schemas.find(c.schema_id); s != schemas.end()) {
            auto [id, added] = schema_ids.try_emplace(s->first, 0);
            if (added) {
                id->second = writer.add_schema(s->second.name, s->second.encoding, s->second.data);
            }
            schema = id->second;
        }
        return channel_ids[c.id] = writer.add_channel(schema, c.topic, c.message_encoding, c.metadata);
    };
    ScanHandler handler;
    handler.on_schema = [&](const mcap::Schema& s) {
        schemas.try_emplace(s.id, s);
    };
    handler.on_channel = [&](const mcap::Channel& c) {
        if (c.message_encoding != "json" && channel_codec(c) == CodecId::msgpack && !as_json.contains(c.id)) {
            as_json[c.id] = std::make_unique<JsonChannelWriter>(c.topic, c.metadata);
        }
    };
    handler.on_message = [&](const mcap::Channel& c, const mcap::MessageView& m) {
        ++result.messages;
        if (auto j = as_json.find(c.id); j != as_json.end()) {
            const bool was_ok = j->second->json_ok();
            if (j->second->write(writer, m.data, m.log_time, m.publish_time)) {
                ++result.json_messages;
                return true;
            }
            if (was_ok && options.on_warning) {
                options.on_warning("topic '" + c.topic +
                                   "': a message has no JSON form (a map with keys that are not strings?); this "
                                   "channel's messages from here on stay msgpack");
            }
        }
        writer.add_message(copy_channel(c), m.sequence, m.log_time, m.publish_time, m.data);
        return true;
    };
    ScanResult scanned;
    try {
        scanned = reader.scan(handler, true);
        writer.close();
    } catch (...) {
        writer.discard();
        throw;
    }
    result.problem = scanned.problem;
    return result;
}

}  // namespace meshy::bag
