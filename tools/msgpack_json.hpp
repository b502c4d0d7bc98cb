// The one converter between msgpack (meshy's default payloads) and JSON, on nlohmann's json value:
// `meshy topic echo` and `service call` display received messages with it (tools/values.cpp), and
// `meshy bridge` maps rosbridge's and Foxglove's JSON to and from the mesh, and `meshy bag` records
// JSON with it (tools/bridge/message_mapping.cpp).
// Command-line words keep their own path (YAML typing rules, values.cpp); they meet this one in the
// msgpack they produce.
#pragma once

#include <cstddef>
#include <meshy/buffer.hpp>
#include <meshy/codecs/msgpack.hpp>
#include <nlohmann/json_fwd.hpp>
#include <optional>
#include <span>
#include <stdexcept>
#include <string>
#include <string_view>

#include "json_quote.hpp"

namespace meshy::cli {

/// Deepest nesting converted either way; a deeper msgpack value becomes null, a deeper JSON value
/// is an error (untrusted input must not recurse without bound).
inline constexpr int max_value_depth = 64;

/// `payload` as exactly one msgpack value, unpacked within bounds that a lying header cannot pass
/// (no container claims more elements than there are bytes; nesting at most max_value_depth).
/// @returns nullopt for malformed bytes, or bytes left over after the value.
std::optional<msgpack::object_handle> unpack_payload(std::span<const std::byte> payload);

/// A JSON value that has no msgpack form here (nested deeper than max_value_depth).
struct JsonToMsgpackError : std::runtime_error {
    using std::runtime_error::runtime_error;
};

/// How a msgpack `bin` appears in JSON.
enum class BinaryForm {
    base64,   ///< a base64 string (rosbridge's JSON)
    bytes,    ///< a JSON binary value (CBOR byte string)
    summary,  ///< the text "<N bytes: 0a1b2c...>" (at most 32 bytes shown; for display)
};

/// msgpack -> JSON. Map keys become strings: a string as is, a nil, boolean or number as its JSON
/// text, a container as "<array>", "<map>", "<bin>" or "<ext>". ext values are null, and so is
/// anything nested deeper than max_value_depth. Floats stay floats, nan and inf included.
nlohmann::json msgpack_to_json(const msgpack::object& object, BinaryForm binary, int depth = 0);
/// msgpack_to_json() keeping the maps' key order: the JSON of Foxglove's channels and of bags
/// recorded as JSON, which `meshy bag play` turns back into the same bytes.
nlohmann::ordered_json msgpack_to_ordered_json(const msgpack::object& object, BinaryForm binary, int depth = 0);

/// JSON -> msgpack, appended to `out`. A JSON float is a msgpack float64 even when whole (1.0), a
/// JSON binary value a msgpack bin. @throws JsonToMsgpackError when nested deeper than
/// max_value_depth.
void json_to_msgpack(Buffer& out, const nlohmann::json& value, int depth = 0);
/// json_to_msgpack() guided by the value's JSON Schema (`schema` may be null): members keep their
/// order, and a string whose schema says contentEncoding base64 becomes a msgpack bin again.
void json_to_msgpack(Buffer& out,
                     const nlohmann::ordered_json& value,
                     const nlohmann::ordered_json* schema,
                     int depth = 0);

/// A double as msgpack float64, whatever its value (msgpack-c packs a whole double as an integer).
void pack_float64(Buffer& out, double value);

/// JSON as one line for people: ", " and ": " between items, strings quoted with json_quote() (bytes
/// that are not UTF-8 pass through), floats in their shortest exact form with a decimal point
/// (1.0). Non-finite floats are nan, inf and -inf; with `strict`, null (JSON has no such numbers).
std::string json_text(const nlohmann::json& value, bool strict);

/// "<N bytes: 0a1b2c...>" (at most the first 32 bytes in hex).
std::string bytes_summary(const std::byte* data, std::size_t size);

}  // namespace meshy::cli
