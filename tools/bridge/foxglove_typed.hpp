// Messages of an advertised type shown by their fields: the JSON of a msgpack payload read with the
// type's JSON Schema (`meshy topic echo`, `meshy bag record`, the bridge's Foxglove channels), and a
// check that a JSON value fits such a schema. Only nlohmann's forward declarations here.
#pragma once

#include <cstddef>
#include <meshy/codec.hpp>
#include <nlohmann/json_fwd.hpp>
#include <optional>
#include <span>

namespace meshy::cli::bridge {

/// How a typed message's msgpack `bin` values appear.
enum class TypedBinary {
    base64,   ///< a base64 string (the JSON form, as the schema's contentEncoding says)
    summary,  ///< "<N bytes: 0a1b...>" (for people)
};

/// A msgpack payload as the JSON of its type. The message is the payload's one argument (with
/// several, the argument list). A map keeps its members in their order; an array where the schema
/// wants an object (MSGPACK_DEFINE, a tuple) gets the schema's property names, in their order, and
/// so do nested ones. @returns nullopt when the payload is not msgpack, has no JSON form (keys that
/// are not strings, ext values, too deep) or an array has more elements than its object schema has
/// properties.
std::optional<nlohmann::ordered_json> typed_message(CodecId codec,
                                                    std::span<const std::byte> payload,
                                                    const nlohmann::ordered_json& schema,
                                                    TypedBinary binary = TypedBinary::base64);

/// Whether `value` validates against `schema`, for the keywords meshy's and Foxglove's schemas use:
/// type, properties, required, additionalProperties, items, minItems, maxItems, minimum, maximum,
/// enum, const, anyOf and oneOf (as anyOf). Other keywords are not checked.
bool fits_schema(const nlohmann::ordered_json& value, const nlohmann::ordered_json& schema);

}  // namespace meshy::cli::bridge
