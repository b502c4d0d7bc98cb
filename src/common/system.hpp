// Internal: small facts about the process and the machine.
#pragma once

#include <time.h>

#include <chrono>
#include <cstdint>
#include <string>

namespace meshy::detail {

/// True when this process may run on more than one CPU (sched_getaffinity): a thread that waits
/// for another may then spin, as the other runs meanwhile.
bool runs_on_several_cpus() noexcept;
/// A random (version 4) UUID in canonical text form.
std::string make_uuid();
/// This machine's host name.
std::string host_name();
/// CLOCK_REALTIME in nanoseconds since the epoch.
std::uint64_t now_ns() noexcept;
/// now_ns() for message time stamps, at a fraction of the cost where the TSC is invariant
/// (x86-64): between precise readings at most 1 ms apart on one CPU, the time is the last reading
/// plus the TSC ticks since, at the rate measured by this thread's readings (within tens of ns of
/// now_ns()). A vDSO clock read costs 25-55 ns in some VMs, rdtsc ~11 ns; in a sender of small
/// messages the difference was a fifth of its time. Elsewhere: now_ns().
std::uint64_t stamp_ns() noexcept;
/// CLOCK_MONOTONIC_COARSE on the steady_clock's scale: it lags steady_clock::now() by at most
/// coarse_resolution (a kernel tick), and costs a fraction of it (about 9 ns here, against 42).
/// For outbox ages, silence checks and call deadlines, taken on every message or call.
inline std::chrono::steady_clock::time_point coarse_now() noexcept {
    timespec ts{};
    clock_gettime(CLOCK_MONOTONIC_COARSE, &ts);
    return std::chrono::steady_clock::time_point(std::chrono::seconds(ts.tv_sec) +
                                                 std::chrono::nanoseconds(ts.tv_nsec));
}
/// How far coarse_now() may lag: the clock's resolution (4 ms at HZ=250).
std::chrono::nanoseconds coarse_resolution() noexcept;
/// $XDG_RUNTIME_DIR/meshy, else /tmp/meshy-<uid>: where Unix sockets go by default (not created).
std::string default_socket_dir();
/// The directory for this process's Unix sockets: `preferred` if non-empty, else
/// $XDG_RUNTIME_DIR/meshy, else /tmp/meshy-<uid>; created (mode 0700) if missing.
std::string socket_dir(const std::string& preferred);

}  // namespace meshy::detail
