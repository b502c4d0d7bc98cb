// libFuzzer target: the CLI's display of received msgpack payloads (`meshy topic echo`, `service
// call`, `bag play`; tools/values.cpp). The bytes come from any node of the mesh, or from a bag.
#include <cstddef>
#include <cstdint>
#include <span>
#include <string>

#include "cli.hpp"

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
    if (size == 0) {
        return 0;
    }
    // The first byte picks the form (`--json` or not); the rest is the payload.
    const bool json = data[0] & 1;
    const std::span<const std::byte> payload(reinterpret_cast<const std::byte*>(data + 1), size - 1);
    const std::string text = meshy::cli::payload_text(meshy::CodecId::msgpack, payload, json);
    const auto args = meshy::cli::payload_args(meshy::CodecId::msgpack, payload, json);
    // Text grows at most linearly with the payload (each byte at most a quoted escape, a number or
    // a bracket pair); anything more is the blow-up a hostile payload must not cause.
    if (text.size() > 32 * size + 64) {
        __builtin_trap();
    }
    if (args && args->size() > payload.size()) {
        __builtin_trap();
    }
    return 0;
}
