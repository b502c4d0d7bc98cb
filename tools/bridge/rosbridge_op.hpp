// rosbridge v2 ops from clients: parsed and validated from one WebSocket message (JSON text or
// CBOR binary) without any network or node, so the fuzz target can drive it.
#pragma once

#include <cstddef>
#include <meshy/buffer.hpp>
#include <optional>
#include <string>
#include <string_view>

namespace meshy::cli::bridge {

/// What a client asks for.
enum class OpKind {
    auth,
    advertise,
    unadvertise,
    publish,
    subscribe,
    unsubscribe,
    call_service,
    advertise_service,
    unadvertise_service,
    service_response,
    set_level,
};

/// One validated op. Only the fields of its kind are set.
struct Op {
    OpKind kind = OpKind::publish;
    std::string id;     ///< "id", as text (numbers are printed), empty when absent
    std::string name;   ///< topic or service, as the client wrote it
    std::string type;   ///< "type" of advertise/subscribe/advertise_service
    Buffer payload;     ///< publish msg / call_service args / service_response values, as msgpack
    std::string token;  ///< auth: "token", else "mac"
    std::string level;  ///< set_level
    // subscribe
    unsigned throttle_rate = 0;     ///< ms
    unsigned queue_length = 0;      ///< 0: no per-topic bound
    std::size_t fragment_size = 0;  ///< 0: no fragments
    std::string compression = "none";
    // call_service
    std::optional<double> timeout_s;
    std::string rosapi_arg;  ///< args.topic / args.service / args.node, for /rosapi/* services
    // service_response
    bool result = true;
    std::string error_text;  ///< service_response with result false: the values as text
};

/// The outcome of parse_op().
struct OpParse {
    std::optional<Op> op;  ///< set when valid
    std::string error;     ///< why not, for a status op
    std::string id;        ///< the op's id when it could be read (for the status op)
    std::string op_name;   ///< the op's name when it could be read
};

/// Parses a client message. `cbor`: a binary frame holding the op as CBOR.
OpParse parse_op(std::string_view message, bool cbor);

/// Strips one leading '/' (rosbridge name -> meshy name).
std::string meshy_name(std::string_view rosbridge_name);
/// Adds a leading '/' when missing (meshy name -> rosbridge name).
std::string rosbridge_name(std::string_view meshy_name);

}  // namespace meshy::cli::bridge
