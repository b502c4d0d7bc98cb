#include "bag/codec_encoding.hpp"

#include <charconv>

namespace meshy::bag {
namespace {

std::optional<CodecId> parse_id(std::string_view text) {
    unsigned value = 0;
    const auto [end, ec] = std::from_chars(text.data(), text.data() + text.size(), value);
    if (ec != std::errc{} || end != text.data() + text.size() || value == 0 || value > 255) {
        return std::nullopt;
    }
    return static_cast<CodecId>(value);
}

}  // namespace

std::string message_encoding(CodecId codec) {
    switch (codec) {
        case CodecId::msgpack:
            return "msgpack";
        case CodecId::cereal:
            return "x-meshy-cereal";
        case CodecId::raw:
            return "x-meshy-raw";
    }
    return "x-meshy-codec-" + std::to_string(static_cast<unsigned>(codec));
}

std::string schema_name(CodecId codec) {
    switch (codec) {
        case CodecId::msgpack:
            return "meshy.msgpack";
        case CodecId::cereal:
            return "meshy.cereal";
        case CodecId::raw:
            return "meshy.raw";
    }
    return "meshy.codec-" + std::to_string(static_cast<unsigned>(codec));
}

std::optional<CodecId> channel_codec(const mcap::Channel& channel) {
    for (const auto& [key, value] : channel.metadata) {
        if (key == metadata_codec) {
            if (auto id = parse_id(value)) {
                return id;
            }
        }
    }
    const std::string_view e = channel.message_encoding;
    if (e == "msgpack") {
        return CodecId::msgpack;
    }
    if (e == "x-meshy-cereal") {
        return CodecId::cereal;
    }
    if (e == "x-meshy-raw") {
        return CodecId::raw;
    }
    constexpr std::string_view prefix = "x-meshy-codec-";
    if (e.starts_with(prefix)) {
        return parse_id(e.substr(prefix.size()));
    }
    return std::nullopt;
}

}  // namespace meshy::bag
