// Fuzz target: everything a peer's bytes reach before any application code — the handshake,
// frame splitting with a size limit, and every frame body decoder.
#include <cstddef>
#include <cstdint>
#include <span>
#include <string>

#include "wire/frame.hpp"

using namespace meshy::detail::wire;

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
    std::span<const std::byte> in(reinterpret_cast<const std::byte*>(data), size);
    std::string reason;
    // The first byte picks where the stream starts: at a handshake, or straight at frames.
    if (!in.empty() && (std::to_integer<unsigned>(in[0]) & 1) == 0) {
        Handshake hs;
        std::size_t used = 0;
        if (decode_handshake(in.subspan(1), hs, used, reason) != Parse::ok) {
            return 0;
        }
        in = in.subspan(1 + used);
    } else if (!in.empty()) {
        in = in.subspan(1);
    }
    // A small maximum so oversize lengths are exercised as often as valid ones.
    constexpr std::size_t max_frame = 4096;
    for (int frames = 0; frames < 1024 && !in.empty(); ++frames) {
        FrameView frame;
        std::size_t used = 0, needed = 0;
        if (next_frame(in, max_frame, frame, used, needed, reason) != Parse::ok) {
            return 0;
        }
        switch (frame.type) {
            case FrameType::info: {
                Info info;
                decode_info(frame.body, info);
                break;
            }
            case FrameType::message: {
                Message m;
                decode_message(frame.body, m);
                break;
            }
            case FrameType::request: {
                Request r;
                decode_request(frame.body, r);
                break;
            }
            case FrameType::reply: {
                Reply r;
                decode_reply(frame.body, r);
                break;
            }
            case FrameType::adverts: {
                Adverts a;
                decode_adverts(frame.body, a);
                break;
            }
            case FrameType::ping:
            case FrameType::bye:
                break;
        }
        in = in.subspan(used);
    }
    return 0;
}
