// libFuzzer target: the Foxglove WebSocket protocol's client messages as `meshy bridge` parses them —
// bytes as a text (JSON op) or, first byte odd, binary (opcode) message — then what the server does
// with a payload: JSON to msgpack (clientPublish, service calls), and msgpack back to JSON with its
// inferred schema (channels), and read with a schema as a typed message (a peer's advertised schema
// is untrusted too). Also the Sec-WebSocket-Protocol selection.
#include <cstddef>
#include <cstdint>
#include <nlohmann/json.hpp>
#include <string_view>

#include "bridge/foxglove_protocol.hpp"
#include "bridge/foxglove_schema.hpp"
#include "bridge/foxglove_typed.hpp"
#include "bridge/message_mapping.hpp"
#include "bridge/utf8.hpp"

using namespace meshy::cli::bridge;

namespace {

void transcode(std::string_view data) {
    const auto value = nlohmann::ordered_json::parse(data, nullptr, false);
    if (!value.is_discarded()) {
        try {
            const meshy::Buffer payload = json_to_payload(value, nlohmann::ordered_json::object());
            (void)payload_to_ordered_json(meshy::CodecId::msgpack, payload.bytes());
            // The value as a schema, and as a message of that schema.
            if (const auto typed = typed_message(meshy::CodecId::msgpack, payload.bytes(), value)) {
                (void)fits_schema(*typed, value);
            }
        } catch (const MappingError&) {
        }
        (void)match_known_type(value);
        (void)fits_schema(value, value);
    }
    const auto bytes = std::as_bytes(std::span(data.data(), data.size()));
    if (auto schema = infer_schema(meshy::CodecId::msgpack, bytes)) {
        const auto json = payload_to_ordered_json(meshy::CodecId::msgpack, bytes);
        if (const auto typed = typed_message(meshy::CodecId::msgpack, bytes, *schema)) {
            (void)fits_schema(*typed, *schema);
        }
        try {
            (void)json_to_payload(json, *schema);
        } catch (const MappingError&) {
        }
        (void)merge_schemas(*schema, *schema).dump(-1, ' ', false, nlohmann::json::error_handler_t::replace);
    }
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
    if (size == 0) {
        return 0;
    }
    const bool binary = data[0] & 1;
    const std::string_view bytes(reinterpret_cast<const char*>(data + 1), size - 1);
    (void)select_foxglove_subprotocol(bytes);
    if (!binary && !valid_utf8(bytes)) {
        return 0;  // the server closes the connection (1007) before parsing
    }
    const FoxgloveParse p = parse_foxglove_message(bytes, binary);
    if (p.op && (p.op->kind == FoxgloveOpKind::message_data || p.op->kind == FoxgloveOpKind::service_call)) {
        transcode(p.op->data);
    } else if (!p.op) {
        transcode(bytes);
    }
    return 0;
}
