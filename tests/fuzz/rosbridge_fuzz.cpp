// libFuzzer target: the rosbridge op parser/validator of `meshy bridge` without a network — bytes
// as a client's text (or, first byte odd, binary CBOR) message, then the JSON <-> msgpack mapping
// of whatever payload the op carries.
#include <cstddef>
#include <cstdint>
#include <nlohmann/json.hpp>
#include <string_view>

#include "bridge/message_mapping.hpp"
#include "bridge/rosbridge_op.hpp"
#include "bridge/utf8.hpp"

using namespace meshy::cli::bridge;

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
    if (size == 0) {
        return 0;
    }
    const bool cbor = data[0] & 1;
    const std::string_view bytes(reinterpret_cast<const char*>(data + 1), size - 1);
    if (!cbor && !valid_utf8(bytes)) {
        return 0;  // the server closes the connection (1007) before parsing
    }
    const OpParse p = parse_op(bytes, cbor);
    if (p.op) {
        const auto& payload = p.op->payload;
        if (!payload.empty()) {
            for (const bool binary : {false, true}) {
                const nlohmann::json j = payload_to_json(meshy::CodecId::msgpack, payload.bytes(), binary);
                (void)j.dump(-1, ' ', false, nlohmann::json::error_handler_t::replace);
                if (binary) {
                    (void)nlohmann::json::to_cbor(j);
                }
                try {
                    (void)json_to_payload(j);
                } catch (const MappingError&) {
                }
            }
        }
        (void)meshy_name(p.op->name);
    }
    // Arbitrary bytes as a mesh payload of any codec.
    for (const auto codec : {meshy::CodecId::msgpack, meshy::CodecId::raw}) {
        (void)payload_to_json(codec, std::as_bytes(std::span(bytes.data(), bytes.size())), cbor)
            .dump(-1, ' ', false, nlohmann::json::error_handler_t::replace);
    }
    return 0;
}
