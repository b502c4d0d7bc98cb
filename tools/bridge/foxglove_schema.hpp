// JSON Schemas of meshy messages for Foxglove (the bridge's channels) and for bags recorded as JSON:
// the well-known types of <meshy/msgs/foxglove.hpp>, recognised by name or by their fields, and
// schemas inferred from the messages of untyped topics. Only nlohmann's forward declarations here.
#pragma once

#include <cstddef>
#include <meshy/codec.hpp>
#include <nlohmann/json_fwd.hpp>
#include <optional>
#include <span>
#include <string>
#include <string_view>

namespace meshy::cli::bridge {

/// A message type a tool knows the schema of.
struct KnownType {
    std::string name;    ///< e.g. "foxglove.Log"
    std::string schema;  ///< its JSON Schema text
};

/// The well-known types (<meshy/msgs/foxglove.hpp>).
std::span<const KnownType> known_types();
/// The well-known type called `name`, or nullptr.
const KnownType* find_known_type(std::string_view name);
/// The well-known type whose fields are exactly the members of `message` (the JSON of one message),
/// or nullptr: how an untyped topic carrying e.g. meshy::msgs::foxglove::Log is recognised.
const KnownType* match_known_type(const nlohmann::ordered_json& message);

/// The JSON Schema of a payload's JSON form (see payload_to_ordered_json()), marked
/// "$comment": "inferred"; nullopt when the payload has no exact JSON form (another codec, not
/// msgpack, a map with keys that are not strings, an ext value).
std::optional<nlohmann::ordered_json> infer_schema(CodecId codec, std::span<const std::byte> payload);
/// A schema both `a` and `b` validate against (properties united, required intersected, integer
/// widened to number, other differences as anyOf).
nlohmann::ordered_json merge_schemas(const nlohmann::ordered_json& a, const nlohmann::ordered_json& b);

/// The schema name of a topic's inferred schema: "<topic> (inferred)".
std::string inferred_schema_name(std::string_view topic);

}  // namespace meshy::cli::bridge
