// libFuzzer target: the WebSocket frame parser with message assembly, and the HTTP request parser
// with the upgrade check, of `meshy bridge` (tools/bridge). Bytes come straight from a socket.
#include <cstddef>
#include <cstdint>
#include <string_view>

#include "bridge/http_request.hpp"
#include "bridge/websocket_frame.hpp"
#include "bridge/websocket_handshake.hpp"

using namespace meshy::cli::bridge;

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
    if (size == 0) {
        return 0;
    }
    // The first byte picks the mode, like the server's read loop: frames after the handshake,
    // or a request head before it.
    const bool frames = data[0] & 1;
    std::string_view bytes(reinterpret_cast<const char*>(data + 1), size - 1);
    if (frames) {
        MessageAssembler assembler(64 * 1024);
        const bool from_client = (data[0] & 2) == 0;
        while (!bytes.empty()) {
            FrameParse p = parse_frame(bytes, 64 * 1024, from_client);
            if (p.status != FrameParse::Status::complete) {
                break;
            }
            if (p.consumed == 0 || p.consumed > bytes.size()) {
                __builtin_trap();
            }
            bytes.remove_prefix(p.consumed);
            const WsEvent e = assembler.on_frame(std::move(p.frame));
            if (e.kind == WsEvent::Kind::error) {
                break;
            }
            // What the server would send back must parse again.
            const std::string echo = encode_frame(Opcode::binary, e.data);
            if (parse_frame(echo, UINT64_MAX >> 1, false).status != FrameParse::Status::complete) {
                __builtin_trap();
            }
        }
    } else {
        const HttpParse p = parse_http_request(bytes);
        if (p.status == HttpParse::Status::complete) {
            if (p.consumed > bytes.size()) {
                __builtin_trap();
            }
            (void)p.request.path();
            (void)p.request.query_param("token");
            (void)is_websocket_upgrade(p.request);
            (void)check_websocket_upgrade(p.request);
        }
    }
    return 0;
}
