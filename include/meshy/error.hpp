/// @file
/// meshy's one error type: `meshy::errc` codes in their own `std::error_category`, thrown as
/// `meshy::Error`, a `std::system_error`.
#pragma once

#include <string>
#include <system_error>

namespace meshy {

/// Every error meshy reports. Normal outcomes (sending to a topic nobody listens to) are not errors.
enum class errc {
    no_provider = 1,        ///< a service call found no node providing the service
    timeout,                ///< a call or wait did not complete before its deadline
    connection_lost,        ///< the connection carrying a call closed before the reply came
    remote_error,           ///< the remote handler threw; what() carries the remote message
    codec_mismatch,         ///< a payload's codec cannot decode into the requested types
    decode_error,           ///< a payload could not be decoded by its codec
    protocol_error,         ///< a malformed frame or handshake
    frame_too_large,        ///< a frame length above the configured maximum
    domain_mismatch,        ///< a peer from another domain
    version_mismatch,       ///< a peer speaking another protocol version
    invalid_argument,       ///< a bad option or argument
    not_running,            ///< the node is stopped
    would_deadlock,         ///< a blocking call made from the node's own event-loop thread
    discovery_unavailable,  ///< the requested discovery backend cannot be reached
    io_error,               ///< a socket or file operation failed
    pool_exhausted,         ///< no room in the loan pool now (OutboxFull::drop_oldest; see Node::loan)
    loan_spent,             ///< a loan used after it was sent or moved from
};

/// The category of `meshy::errc`; its name() is "meshy".
const std::error_category& error_category() noexcept;

/// Makes an error_code from a meshy::errc (found by ADL, so `std::error_code ec = errc::timeout;` works).
inline std::error_code make_error_code(errc e) noexcept {
    return {static_cast<int>(e), error_category()};
}

/// The exception meshy throws. what() is "<detail>: <code message>" or the remote message.
class Error : public std::system_error {
public:
    /// @param code what went wrong
    /// @param detail context for a human (a topic, a service, a peer, the remote message)
    explicit Error(errc code, const std::string& detail = {}) : std::system_error(make_error_code(code), detail) {}
    /// The meshy code, or 0 cast to errc when this error carries a foreign category.
    errc code_value() const noexcept { return static_cast<errc>(code().value()); }
};

}  // namespace meshy

template <>
struct std::is_error_code_enum<meshy::errc> : std::true_type {};
