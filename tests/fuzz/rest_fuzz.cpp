// libFuzzer target: what `meshy bridge`'s REST API and MJPEG streams read from untrusted bytes: the
// route of a request (method and path from a socket) and the JPEG inside a topic message (any node of
// the mesh sends it), tools/bridge/rest_route.cpp and mjpeg_frame.cpp.
#include <cstddef>
#include <cstdint>
#include <span>
#include <string_view>

#include "bridge/mjpeg_frame.hpp"
#include "bridge/rest_route.hpp"

using namespace meshy::cli::bridge;

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
    if (size == 0) {
        return 0;
    }
    // The first byte picks the mode: a route (method selected by the byte), or a message payload
    // under one of the codecs.
    const std::uint8_t mode = data[0];
    const std::string_view bytes(reinterpret_cast<const char*>(data + 1), size - 1);
    if ((mode & 1) == 0) {
        static constexpr std::string_view methods[] = {"GET", "POST", "HEAD", "OPTIONS"};
        const RestRoute r = parse_rest_route(methods[(mode >> 1) & 3], bytes);
        const bool named = r.endpoint == RestEndpoint::publish || r.endpoint == RestEndpoint::latest ||
                           r.endpoint == RestEndpoint::call || r.endpoint == RestEndpoint::stream;
        if (named && (r.name.empty() || r.name.front() == '/')) {
            __builtin_trap();  // names are meshy names: never empty, no leading '/'
        }
        return 0;
    }
    const auto codec = (mode & 2) ? meshy::CodecId::raw : meshy::CodecId::msgpack;
    const auto payload = std::as_bytes(std::span(bytes.data(), bytes.size()));
    if (const auto jpeg = jpeg_from_payload(codec, payload)) {
        // The JPEG points into the payload and starts with SOI.
        if (jpeg->data() < bytes.data() || jpeg->data() + jpeg->size() > bytes.data() + bytes.size() ||
            jpeg->size() < 4 || static_cast<unsigned char>((*jpeg)[0]) != 0xFF) {
            __builtin_trap();
        }
        const auto head = mjpeg_part_head(jpeg->size());
        if (head.empty()) {
            __builtin_trap();
        }
    }
    return 0;
}
