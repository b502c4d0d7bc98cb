// RFC 6455 framing: a pure parser of one frame from bytes (masking, 7/16/64-bit lengths, control
// frame rules, size limit), a frame encoder, and the assembly of fragmented messages with UTF-8
// checks of text messages and close reasons. No I/O: the fuzz target drives these directly.
#pragma once

#include <cstddef>
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>

namespace meshy::cli::bridge {

/// Frame opcodes.
enum class Opcode : std::uint8_t {
    continuation = 0x0,
    text = 0x1,
    binary = 0x2,
    close = 0x8,
    ping = 0x9,
    pong = 0xA,
};

/// Close status codes used by the bridge.
namespace close_code {
inline constexpr std::uint16_t normal = 1000;
inline constexpr std::uint16_t going_away = 1001;
inline constexpr std::uint16_t protocol_error = 1002;
inline constexpr std::uint16_t unsupported_data = 1003;
inline constexpr std::uint16_t no_status = 1005;  ///< never sent: "the close frame had no code"
inline constexpr std::uint16_t invalid_payload = 1007;
inline constexpr std::uint16_t policy_violation = 1008;
inline constexpr std::uint16_t message_too_big = 1009;
inline constexpr std::uint16_t internal_error = 1011;
inline constexpr std::uint16_t unauthorized = 4001;  ///< application code: missing or wrong token
}  // namespace close_code

/// One frame, payload unmasked.
struct Frame {
    bool fin = true;
    Opcode opcode = Opcode::text;
    bool masked = false;
    std::string payload;
};

/// The outcome of parse_frame().
struct FrameParse {
    enum class Status { incomplete, complete, error };
    Status status = Status::incomplete;
    Frame frame;               ///< when complete
    std::size_t consumed = 0;  ///< bytes of the frame when complete
    std::uint16_t close = 0;   ///< close code to send when error
    std::string error;         ///< why, when error
};

/// Parses one frame from the start of `bytes`. `max_payload` bounds the payload length (over it:
/// error 1009, decided from the header alone); `from_client` requires masked frames (RFC 6455 5.1).
/// No extensions are negotiated, so RSV bits are errors.
FrameParse parse_frame(std::string_view bytes, std::uint64_t max_payload, bool from_client);

/// Encodes one frame; `mask` (client side) masks the payload with that key.
std::string encode_frame(Opcode opcode,
                         std::string_view payload,
                         bool fin = true,
                         std::optional<std::uint32_t> mask = std::nullopt);
/// The payload of a close frame: the code, big-endian, then the reason (cut to fit 123 bytes).
std::string close_payload(std::uint16_t code, std::string_view reason);

/// A complete message, or a control frame, or a protocol error, from MessageAssembler.
struct WsEvent {
    enum class Kind { none, message, ping, pong, close, error };
    Kind kind = Kind::none;
    bool binary = false;     ///< message: binary (else text)
    std::string data;        ///< message data, ping/pong payload, close reason
    std::uint16_t code = 0;  ///< close: the peer's code (1005 when none); error: the code to send
};

/// Joins fragments into messages (RFC 6455 5.4) and checks what frames may follow which.
class MessageAssembler {
public:
    /// @param max_message largest message, all fragments together (over it: error 1009)
    explicit MessageAssembler(std::size_t max_message) : max_message_(max_message) {}
    /// Takes the next frame; returns what it completes (Kind::none for a non-final fragment).
    WsEvent on_frame(Frame&& frame);

private:
    std::size_t max_message_;
    bool in_message_ = false;
    bool binary_ = false;
    std::string buffer_;
};

}  // namespace meshy::cli::bridge
