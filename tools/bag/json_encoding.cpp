#include "bag/json_encoding.hpp"

#include <algorithm>
#include <nlohmann/json.hpp>
#include <stdexcept>

#include "bag/mcap_writer.hpp"
#include "bridge/base64.hpp"
#include "bridge/foxglove_schema.hpp"
#include "bridge/foxglove_typed.hpp"
#include "bridge/message_mapping.hpp"

namespace meshy::bag {

using ordered_json = nlohmann::ordered_json;
namespace bridge = meshy::cli::bridge;

namespace {

/// JSON text; strings that are not UTF-8 (msgpack does not check) get U+FFFD instead of throwing.
std::string dump(const ordered_json& j) {
    return j.dump(-1, ' ', false, nlohmann::json::error_handler_t::replace);
}

}  // namespace

struct JsonChannelSchema::State {
    bool started = false;
    bool typed = false;
    ordered_json inferred;
};

JsonChannelSchema::JsonChannelSchema() : state_(std::make_unique<State>()) {
}
JsonChannelSchema::~JsonChannelSchema() = default;
JsonChannelSchema::JsonChannelSchema(JsonChannelSchema&&) noexcept = default;
JsonChannelSchema& JsonChannelSchema::operator=(JsonChannelSchema&&) noexcept = default;

std::optional<JsonSchema> JsonChannelSchema::observe(std::string_view topic, std::span<const std::byte> payload) {
    auto schema = bridge::infer_schema(CodecId::msgpack, payload);
    if (!schema) {
        json_ok_ = false;
        return std::nullopt;
    }
    State& s = *state_;
    if (!s.started) {
        s.started = true;
        if (const auto* known = bridge::match_known_type(bridge::payload_to_ordered_json(CodecId::msgpack, payload))) {
            s.typed = true;
            return JsonSchema{known->name, known->schema, false};
        }
        s.inferred = std::move(*schema);
        return JsonSchema{bridge::inferred_schema_name(topic), dump(s.inferred), true};
    }
    if (s.typed) {
        return std::nullopt;  // its fields matched a well-known type; the type's schema stays
    }
    ordered_json merged = bridge::merge_schemas(s.inferred, *schema);
    if (merged == s.inferred) {
        return std::nullopt;
    }
    s.inferred = std::move(merged);
    return JsonSchema{bridge::inferred_schema_name(topic), dump(s.inferred), true};
}

struct JsonChannelWriter::Typed {
    ordered_json schema;
    std::string text;
};

JsonChannelWriter::JsonChannelWriter(std::string topic,
                                     mcap::KeyValues metadata,
                                     std::optional<AdvertisedType> advertised)
    : topic_(std::move(topic)), metadata_(std::move(metadata)) {
    metadata_.emplace_back(std::string(metadata_encoding), "json");
    if (advertised && !advertised->name.empty()) {
        ordered_json schema = ordered_json::parse(advertised->schema, nullptr, false);
        if (!schema.is_discarded() && schema.is_object()) {
            typed_ = std::make_unique<Typed>(Typed{std::move(schema), std::move(advertised->schema)});
            type_name_ = std::move(advertised->name);
        }
    }
}
JsonChannelWriter::~JsonChannelWriter() = default;
JsonChannelWriter::JsonChannelWriter(JsonChannelWriter&&) noexcept = default;
JsonChannelWriter& JsonChannelWriter::operator=(JsonChannelWriter&&) noexcept = default;

std::string JsonChannelWriter::failure() const {
    if (!typed_ok_) {
        return "a message that does not fit its advertised type '" + type_name_ + "'";
    }
    return json_ok() ? std::string() : "a message without a JSON form (a map with keys that are not strings?)";
}

namespace {

bool same_bytes(const Buffer& a, std::span<const std::byte> b) {
    const auto x = a.bytes();
    return x.size() == b.size() && std::equal(x.begin(), x.end(), b.begin());
}

/// The JSON text of `value`, the JSON of `payload`: with the original bytes added when packing the
/// text again with the schema would not give them (see the header's comment).
std::string exact_text(ordered_json value, std::span<const std::byte> payload, const ordered_json& schema) {
    std::string text = dump(value);
    // What play will do with it, done now: when it does not give these bytes, the bytes go along.
    bool exact = false;
    try {
        exact = same_bytes(bridge::json_to_payload(ordered_json::parse(text), schema), payload);
    } catch (const std::exception&) {
        exact = false;
    }
    if (!exact && value.is_object()) {
        value[std::string(json_original_member)] = bridge::base64_encode(payload);
        text = dump(value);
    } else if (!exact) {
        throw std::logic_error("a message's JSON is not an object");
    }
    return text;
}

}  // namespace

bool JsonChannelWriter::write_typed(McapWriter& writer,
                                    std::span<const std::byte> payload,
                                    std::uint64_t log_time,
                                    std::uint64_t publish_time) {
    auto value = bridge::typed_message(CodecId::msgpack, payload, typed_->schema);
    if (!value || !value->is_object() || !bridge::fits_schema(*value, typed_->schema)) {
        typed_ok_ = false;
        return false;
    }
    if (channels_ == 0) {
        // The advertised schema, whole: one channel, whatever the messages show.
        const auto* p = reinterpret_cast<const std::byte*>(typed_->text.data());
        const auto schema = writer.add_schema(type_name_, "jsonschema", mcap::Bytes(p, p + typed_->text.size()));
        channel_ = writer.add_channel(schema, topic_, "json", metadata_);
        channels_ = 1;
    }
    const std::string text = exact_text(std::move(*value), payload, typed_->schema);
    writer.add_message(channel_, sequence_++, log_time, publish_time,
                       std::as_bytes(std::span(text.data(), text.size())));
    return true;
}

bool JsonChannelWriter::write(McapWriter& writer,
                              std::span<const std::byte> payload,
                              std::uint64_t log_time,
                              std::uint64_t publish_time) {
    if (!json_ok()) {
        return false;
    }
    if (typed_) {
        return write_typed(writer, payload, log_time, publish_time);
    }
    auto changed = schema_.observe(topic_, payload);
    if (!schema_.json_ok()) {
        return false;
    }
    if (changed) {
        const auto* p = reinterpret_cast<const std::byte*>(changed->text.data());
        const auto schema = writer.add_schema(changed->name, "jsonschema", mcap::Bytes(p, p + changed->text.size()));
        channel_ = writer.add_channel(schema, topic_, "json", metadata_);
        sequence_ = 0;
        ++channels_;
        schema_text_ = std::move(changed->text);
    }
    const auto text = encode_json_message(payload, schema_text_);
    if (!text) {
        return false;
    }
    writer.add_message(channel_, sequence_++, log_time, publish_time,
                       std::as_bytes(std::span(text->data(), text->size())));
    return true;
}

namespace {

ordered_json parse_schema(std::string_view schema) {
    ordered_json s = ordered_json::parse(schema, nullptr, false);
    return s.is_discarded() || !s.is_object() ? ordered_json::object() : s;
}

}  // namespace

std::optional<std::string> encode_json_message(std::span<const std::byte> payload, std::string_view schema) {
    return exact_text(bridge::payload_to_ordered_json(CodecId::msgpack, payload), payload, parse_schema(schema));
}

Buffer decode_json_message(std::span<const std::byte> json_text, std::string_view schema) {
    const std::string_view text(reinterpret_cast<const char*>(json_text.data()), json_text.size());
    const ordered_json value = ordered_json::parse(text, nullptr, false);
    if (value.is_discarded()) {
        throw std::runtime_error("a message recorded as JSON is not valid JSON");
    }
    if (value.is_object()) {
        const auto original = value.find(std::string(json_original_member));
        if (original != value.end() && original->is_string()) {
            const auto bytes = bridge::base64_decode(original->get<std::string>());
            if (!bytes) {
                throw std::runtime_error("a message's " + std::string(json_original_member) + " is not base64");
            }
            Buffer out;
            out.append(bytes->data(), bytes->size());
            return out;
        }
    }
    return bridge::json_to_payload(value, parse_schema(schema));
}

}  // namespace meshy::bag
