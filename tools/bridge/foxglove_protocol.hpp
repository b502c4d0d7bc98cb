// The Foxglove WebSocket protocol (subprotocol foxglove.websocket.v1): client messages parsed and
// validated from one WebSocket message (JSON ops in text frames, opcodes in binary frames) without
// any network or node, so the fuzz target can drive it; and the binary server messages.
// See docs/foxglove.md and https://github.com/foxglove/ws-protocol (spec).
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

namespace meshy::cli::bridge {

/// The subprotocols meshy bridge serves Foxglove on (the first is the one FoxgloveClient asks for).
inline constexpr std::string_view foxglove_subprotocols[] = {"foxglove.websocket.v1", "foxglove.sdk.v1"};

/// The subprotocol to answer a client's Sec-WebSocket-Protocol header with: the first Foxglove one it
/// offers, or empty (rosbridge).
std::string select_foxglove_subprotocol(std::string_view offered);

/// What a Foxglove client asks for.
enum class FoxgloveOpKind {
    subscribe,                   ///< subscriptions
    unsubscribe,                 ///< ids (subscription ids)
    advertise,                   ///< channels (client channels for clientPublish)
    unadvertise,                 ///< ids (client channel ids)
    message_data,                ///< channel_id, data (binary opcode 1)
    service_call,                ///< service_id, call_id, encoding, data (binary opcode 2)
    subscribe_connection_graph,  ///< no fields
    unsubscribe_connection_graph,
    unsupported,  ///< a known op of a capability meshy does not offer (parameters, assets): name in `op`
};

/// A channel a client advertises to publish on.
struct FoxgloveClientChannel {
    std::uint32_t id = 0;
    std::string topic;
    std::string encoding;
    std::string schema_name;
    std::string schema;           ///< may be empty
    std::string schema_encoding;  ///< may be empty
};

/// One validated client message. Only the fields of its kind are set.
struct FoxgloveClientOp {
    FoxgloveOpKind kind = FoxgloveOpKind::unsupported;
    std::string op;                                                      ///< the op's name (JSON) or "opcode N"
    std::vector<std::pair<std::uint32_t, std::uint32_t>> subscriptions;  ///< (subscription id, channel id)
    std::vector<std::uint32_t> ids;
    std::vector<FoxgloveClientChannel> channels;
    std::uint32_t channel_id = 0;
    std::uint32_t service_id = 0;
    std::uint32_t call_id = 0;
    std::string encoding;
    std::string data;  ///< message or request payload
};

/// The outcome of parse_foxglove_message().
struct FoxgloveParse {
    std::optional<FoxgloveClientOp> op;  ///< set when valid
    std::string error;                   ///< why not, for a status message
};

/// Parses one client message (`binary`: a binary frame).
FoxgloveParse parse_foxglove_message(std::string_view message, bool binary);

/// Binary server message: message data (opcode 1) for a subscription, `timestamp` in ns.
std::string foxglove_message_data(std::uint32_t subscription_id, std::uint64_t timestamp, std::string_view payload);
/// Binary server message: a service call's response (opcode 3).
std::string foxglove_service_response(std::uint32_t service_id,
                                      std::uint32_t call_id,
                                      std::string_view encoding,
                                      std::string_view payload);

}  // namespace meshy::cli::bridge
