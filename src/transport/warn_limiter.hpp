// Internal: connection-level warnings, rate-limited per kind, so that a flood of bad peers costs
// one log line a second per kind, and no suppressed line goes uncounted.
#pragma once

#include <string_view>

namespace meshy::detail {

/// What a warning is about; each kind has its own rate.
enum class WarnKind {
    none,               ///< not a warning: logged at debug, never limited
    malformed,          ///< a malformed handshake or frame
    refused,            ///< a peer refused at its handshake (domain, version, identity)
    handshake_timeout,  ///< no handshake in time
    slow_frame,         ///< a frame begun and not completed at the minimum rate
    receive_budget,     ///< a frame the node's receive budget cannot hold
    pending_evicted,    ///< a connection closed to make room for new ones before its handshake
    accept_failed,      ///< accept() failed (out of descriptors, ...)
    connection_limit,   ///< a connection refused: the node holds NodeOptions::max_inbound_connections
    count_,
};

/// Logs `message` at warn, unless this `kind` has used up its rate: a burst of five, then one a
/// second. A warning over the rate is counted, and the next one logged says how many were
/// suppressed. Thread-safe.
void warn_limited(WarnKind kind, std::string_view message);

}  // namespace meshy::detail
