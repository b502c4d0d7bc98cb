// Bags Foxglove can decode: msgpack messages recorded with message encoding `json` and schema
// encoding `jsonschema`, and turned back into the very same msgpack bytes by `meshy bag play`.
//
// A message's JSON is the bridge's (payload_to_ordered_json: a trailing string-keyed map gives the
// members, in their order; other arguments go to "args"; bin is base64). Its channel's schema is the
// type its publisher advertised (with a JSON Schema, or a well-known type's name), else the message's
// well-known type (recognised by its fields), else one inferred from the messages. A typed message's
// JSON is read with its schema (typed_message: an array packed by position gets the field names), and
// must validate against it, or that sender's messages stay msgpack. Playing
// packs the JSON again guided by the schema (base64 strings back to bin). When that would not give
// the recorded bytes (a float32, a non-minimal integer, NaN, an "args" member...), the recorder adds
// the original bytes as a base64 member "_meshy_msgpack", which play sends instead: every message
// comes back byte for byte.
#pragma once

#include <cstddef>
#include <memory>
#include <meshy/buffer.hpp>
#include <meshy/codec.hpp>
#include <optional>
#include <span>
#include <string>
#include <string_view>

#include "bag/mcap_format.hpp"

namespace meshy::bag {

class McapWriter;

/// The member holding a message's original msgpack (base64) when its JSON alone cannot restore it.
inline constexpr std::string_view json_original_member = "_meshy_msgpack";
/// Channel metadata key: "json" on channels recorded as JSON (their meshy.codec stays 1, msgpack).
inline constexpr std::string_view metadata_encoding = "meshy.encoding";

/// A schema a JSON channel is recorded with.
struct JsonSchema {
    std::string name;  ///< a well-known type's name, or "<topic> (inferred)"
    std::string text;  ///< JSON Schema
    bool inferred = false;
};

/// The type a publisher advertised for its topic (PublicationInfo), as the recorder uses it.
struct AdvertisedType {
    std::string name;    ///< e.g. "foxglove.Log"
    std::string schema;  ///< its JSON Schema text
};

/// The schema state of one JSON channel while recording.
class JsonChannelSchema {
public:
    JsonChannelSchema();
    ~JsonChannelSchema();
    JsonChannelSchema(JsonChannelSchema&&) noexcept;
    JsonChannelSchema& operator=(JsonChannelSchema&&) noexcept;

    /// Takes a message into account. @returns the schema to record it with when it changed (the
    /// first message, or an inferred schema that had to widen): the caller starts a new channel.
    /// nullopt also when the message has no JSON form: check json_ok().
    std::optional<JsonSchema> observe(std::string_view topic, std::span<const std::byte> payload);
    /// False after a message without a JSON form (non-string map keys, ext): record it as msgpack.
    bool json_ok() const noexcept { return json_ok_; }

private:
    struct State;
    std::unique_ptr<State> state_;
    bool json_ok_ = true;
};

/// One sender's msgpack messages on one topic, written as JSON channels: a first channel with the
/// schema of its first message, and a new one whenever an inferred schema had to widen (an MCAP
/// channel's schema is fixed), so that every message validates against its own channel's schema.
class JsonChannelWriter {
public:
    /// @param metadata of each channel it adds (meshy.encoding: json is added)
    /// @param advertised the sender's advertised type: its one channel has that schema (a schema
    ///        that is not a JSON object is ignored: the schema is inferred then)
    JsonChannelWriter(std::string topic, mcap::KeyValues metadata, std::optional<AdvertisedType> advertised = {});
    ~JsonChannelWriter();
    JsonChannelWriter(JsonChannelWriter&&) noexcept;
    JsonChannelWriter& operator=(JsonChannelWriter&&) noexcept;
    /// Writes one message. @returns false (writing nothing) when it has no JSON form, or does not
    /// fit the advertised type: from then on json_ok() is false, failure() says why, and the caller
    /// records this sender's messages as msgpack.
    bool write(McapWriter& writer,
               std::span<const std::byte> payload,
               std::uint64_t log_time,
               std::uint64_t publish_time);
    bool json_ok() const noexcept { return schema_.json_ok() && typed_ok_; }
    /// Why json_ok() is false, for the recorder's one warning.
    std::string failure() const;
    /// JSON channels added so far.
    std::size_t channels() const noexcept { return channels_; }

private:
    bool write_typed(McapWriter& writer,
                     std::span<const std::byte> payload,
                     std::uint64_t log_time,
                     std::uint64_t publish_time);

    std::string topic_;
    mcap::KeyValues metadata_;
    JsonChannelSchema schema_;
    struct Typed;
    std::unique_ptr<Typed> typed_;  ///< the advertised type's parsed schema, when typed
    std::string type_name_;
    bool typed_ok_ = true;
    std::string schema_text_;
    std::uint16_t channel_ = 0;
    std::uint32_t sequence_ = 0;
    std::size_t channels_ = 0;
};

/// The JSON text to record for a msgpack payload: exact (see the file comment). `schema` is the
/// channel's schema text. nullopt when the payload has no JSON form.
std::optional<std::string> encode_json_message(std::span<const std::byte> payload, std::string_view schema);

/// The msgpack bytes of a recorded JSON message. @throws std::runtime_error for bad JSON
Buffer decode_json_message(std::span<const std::byte> json_text, std::string_view schema);

}  // namespace meshy::bag
