// Internal: small facts about the process and the machine.
#pragma once

#include <cstdint>
#include <string>

namespace meshy::detail {

/// A random (version 4) UUID in canonical text form.
std::string make_uuid();
/// This machine's host name.
std::string host_name();
/// CLOCK_REALTIME in nanoseconds since the epoch.
std::uint64_t now_ns() noexcept;
/// The directory for this process's Unix sockets: `preferred` if non-empty, else
/// $XDG_RUNTIME_DIR/meshy, else /tmp/meshy-<uid>; created (mode 0700) if missing.
std::string socket_dir(const std::string& preferred);

}  // namespace meshy::detail
