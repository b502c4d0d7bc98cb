// Internal: meshy's wire protocol, version 2. Pure functions over bytes, so the fuzz target and
// the unit tests drive exactly what the transport runs.
//
// A connection starts with a handshake in each direction:
//   "MSHY" | u16 version | u16 body length | body
//   body = u8 len + node id | u8 len + domain | u8 len + name | u8 len + host
// then carries frames:
//   u32 length (of what follows) | u8 type | body
// All integers are little-endian. A frame longer than the receiver's maximum closes the
// connection before anything is allocated for it.
#pragma once

#include <cstddef>
#include <cstdint>
#include <span>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "meshy/buffer.hpp"
#include "meshy/codec.hpp"

namespace meshy::detail::wire {

inline constexpr std::uint16_t protocol_version = 2;
inline constexpr char magic[4] = {'M', 'S', 'H', 'Y'};
inline constexpr std::size_t handshake_prefix = 8;  // magic + version + body length
inline constexpr std::size_t max_handshake_body = 4 * 256;
inline constexpr std::size_t frame_prefix = 5;  // length + type

enum class FrameType : std::uint8_t {
    info = 1,     // the sender's topics and services
    message = 2,  // a topic message
    request = 3,  // a service call
    reply = 4,    // a service reply
    ping = 5,     // heartbeat
    bye = 6,      // clean close notice
    adverts = 7,  // adverts the sender knows (static peers: how a node learns the mesh from one peer)
};

enum class ReplyStatus : std::uint8_t { ok = 0, remote_error = 1, no_such_service = 2, bad_request = 3 };

struct Handshake {
    std::uint16_t version = protocol_version;
    std::string id;
    std::string domain;
    std::string name;
    std::string host;
};

/// Result of a decoding step.
enum class Parse { ok, need_more, error };

/// Appends a handshake. Fields longer than 255 bytes are truncated (ids, domains and names are
/// validated to fit when a node is built).
void encode_handshake(Buffer& out, const Handshake& hs);
/// Decodes a handshake from the start of `in`. On ok, `consumed` is its size. On error, `reason`
/// says why (wrong magic, oversize, truncated field). A version mismatch still parses (ok) so the
/// caller can log both versions.
Parse decode_handshake(std::span<const std::byte> in, Handshake& out, std::size_t& consumed, std::string& reason);

/// A frame inside a receive buffer; `body` points into that buffer.
struct FrameView {
    FrameType type{};
    std::span<const std::byte> body;
};

/// Finds the next complete frame at the start of `in`. On ok, `consumed` is its total size.
/// need_more: `needed` is the total size of the frame being received when its length is known
/// (0 otherwise). error: bad length (zero or above `max_frame`) or unknown type; `reason` says which.
Parse next_frame(std::span<const std::byte> in,
                 std::size_t max_frame,
                 FrameView& out,
                 std::size_t& consumed,
                 std::size_t& needed,
                 std::string& reason);

// --- frame bodies ---------------------------------------------------------------------------------

/// A topic the sender sends, with its optional type (name, schema and the schema's encoding).
struct InfoPublication {
    std::string topic;
    std::string type;
    std::string schema_encoding;  ///< e.g. "jsonschema"; empty without a schema
    std::string schema;
    bool latched = false;

    friend bool operator==(const InfoPublication&, const InfoPublication&) = default;
};

struct Info {
    std::uint32_t revision = 0;
    std::vector<std::string> topics;
    std::vector<std::string> services;
    std::vector<InfoPublication> publications;
};

/// One advert as key=value fields (the keys of discovery's AdvertFields).
using AdvertFieldList = std::vector<std::pair<std::string, std::string>>;

/// Limits of an Adverts frame; a frame beyond them is malformed.
inline constexpr std::size_t max_frame_adverts = 1024;  ///< adverts (and gone ids) in one frame
inline constexpr std::size_t max_advert_fields = 256;   ///< fields of one advert

/// The adverts a node knows, sent over a link (see docs/wire-protocol.md, "Adverts").
struct Adverts {
    /// The receiver should answer with every advert it knows, then keep sending changes.
    bool subscribe = false;
    /// Nodes that appeared or changed; the sender's own advert is among them when it changed.
    std::vector<AdvertFieldList> adverts;
    /// Ids of nodes the sender no longer knows.
    std::vector<std::string> gone;
};

struct Message {
    CodecId codec{};
    std::uint64_t sent_at_ns = 0;
    std::string_view topic;
    std::span<const std::byte> payload;
};

struct Request {
    std::uint64_t call_id = 0;
    CodecId codec{};
    std::string_view service;
    std::span<const std::byte> payload;
};

struct Reply {
    std::uint64_t call_id = 0;
    ReplyStatus status = ReplyStatus::ok;
    CodecId codec{};
    std::span<const std::byte> payload;  // the error text when status != ok
};

/// Offsets of a message's parts inside a whole frame (prefix included).
struct MessageLayout {
    std::size_t topic_offset = 0;
    std::size_t topic_size = 0;
    std::size_t payload_offset = 0;
};

// Encoders append a whole frame (prefix included).
void encode_info(Buffer& out, const Info& info);
void encode_request(
    Buffer& out, std::uint64_t call_id, CodecId codec, std::string_view service, std::span<const std::byte> payload);
void encode_reply(
    Buffer& out, std::uint64_t call_id, ReplyStatus status, CodecId codec, std::span<const std::byte> payload);
void encode_empty(Buffer& out, FrameType type);
/// Keys and ids longer than 255 bytes, values longer than 4 GiB and entries beyond the limits above
/// are the caller's to avoid (they would be cut, or refused by the receiver).
void encode_adverts(Buffer& out, const Adverts& adverts);
/// Append a request's or a reply's prefix and header only, for a payload of `payload_size` bytes
/// that the caller writes after them (a gathered write: the payload is not copied).
void encode_request_header(
    Buffer& out, std::uint64_t call_id, CodecId codec, std::string_view service, std::size_t payload_size);
void encode_reply_header(
    Buffer& out, std::uint64_t call_id, ReplyStatus status, CodecId codec, std::size_t payload_size);

/// Writes a message frame's prefix and header (everything but the payload) into an empty
/// buffer; the caller appends the payload, then calls finish_frame().
void begin_message(Buffer& out, CodecId codec, std::uint64_t sent_at_ns, std::string_view topic);
/// Patches the length prefix of the frame that starts the buffer.
/// `extra`: bytes of the frame that follow those in `out` (written from elsewhere).
void finish_frame(Buffer& out, std::size_t extra = 0);
/// Where a message frame's topic and payload start, for a frame begun with begin_message().
MessageLayout message_layout(std::string_view topic);

// Decoders of bodies (the FrameView::body of the matching type). false: malformed.
bool decode_info(std::span<const std::byte> body, Info& out);
bool decode_message(std::span<const std::byte> body, Message& out);
bool decode_request(std::span<const std::byte> body, Request& out);
bool decode_reply(std::span<const std::byte> body, Reply& out);
bool decode_adverts(std::span<const std::byte> body, Adverts& out);

/// Message frame header size before the topic (within the body): codec, flags, topic length, time.
inline constexpr std::size_t message_header = 1 + 1 + 2 + 8;

}  // namespace meshy::detail::wire
