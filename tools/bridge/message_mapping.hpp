// The mapping between rosbridge's JSON (`msg`, `args`, `values`) and meshy's msgpack messages (an
// array of positional arguments, optionally ending in a map of keyword arguments). See
// docs/bridge-protocol.md for the table. Only nlohmann's forward declarations are included here.
#pragma once

#include <cstddef>
#include <meshy/buffer.hpp>
#include <meshy/codec.hpp>
#include <nlohmann/json_fwd.hpp>
#include <span>
#include <stdexcept>
#include <string>

namespace meshy::cli::bridge {

/// A JSON value that has no meshy form (too deep, not an object or array where one is needed).
struct MappingError : std::runtime_error {
    using std::runtime_error::runtime_error;
};

/// JSON -> msgpack payload. An object maps to kwargs (its "args" array, if any, to positional
/// arguments), except {"data": x} alone, ROS's one-field message, which is the one argument x; an
/// array maps to positional arguments. @throws MappingError otherwise.
Buffer json_to_payload(const nlohmann::json& value);

/// json_to_payload() guided by the message's JSON Schema (may be empty): members keep their order,
/// and strings whose schema says contentEncoding base64 become msgpack bin again.
Buffer json_to_payload(const nlohmann::ordered_json& value, const nlohmann::ordered_json& schema);

/// msgpack payload -> JSON object (kwargs as members, positional arguments as "args"). Other codecs
/// and undecodable payloads become {"bytes": ..., "codec": ...}. `binary_as_bytes`: msgpack bin
/// becomes a JSON binary value (CBOR byte string) instead of a base64 string.
nlohmann::json payload_to_json(CodecId codec, std::span<const std::byte> payload, bool binary_as_bytes);

/// Whether a payload is only keyword arguments (an array of one string-keyed map), like
/// roslibjs's `callService({a: 3, b: 4})`.
bool keywords_only(std::span<const std::byte> payload);

/// The text a failed call reports to the client: `what`, and, for a call made by keyword whose
/// provider failed, how to call it by position instead (meshy handlers take positional arguments;
/// their parameter names are not known at run time).
std::string call_failure_text(const std::string& what, bool by_keyword);

/// payload_to_json() that keeps msgpack maps' key order (bin as base64): the JSON of Foxglove's
/// channels and of bags recorded as JSON, which `meshy bag play` turns back into the same bytes.
nlohmann::ordered_json payload_to_ordered_json(CodecId codec, std::span<const std::byte> payload);

}  // namespace meshy::cli::bridge
