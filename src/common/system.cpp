#include "common/system.hpp"

#include <sched.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <fstream>
#include <random>
#include <string>
#include <string_view>

#if defined(__x86_64__)
#    include <x86intrin.h>
#endif

#include "meshy/error.hpp"

namespace meshy::detail {

bool runs_on_several_cpus() noexcept {
    cpu_set_t set;
    CPU_ZERO(&set);
    if (::sched_getaffinity(0, sizeof set, &set) != 0) {
        return false;
    }
    return CPU_COUNT(&set) > 1;
}

std::string make_uuid() {
    std::random_device rd;
    std::uint8_t b[16];
    for (int i = 0; i < 16; i += 4) {
        const std::uint32_t r = rd();
        for (int j = 0; j < 4; ++j) {
            b[i + j] = static_cast<std::uint8_t>(r >> (8 * j));
        }
    }
    b[6] = static_cast<std::uint8_t>((b[6] & 0x0f) | 0x40);  // version 4
    b[8] = static_cast<std::uint8_t>((b[8] & 0x3f) | 0x80);  // RFC 4122 variant
    char text[37];
    std::snprintf(text, sizeof text, "%02x%02x%02x%02x-%02x%02x-%02x%02x-%02x%02x-%02x%02x%02x%02x%02x%02x", b[0], b[1],
                  b[2], b[3], b[4], b[5], b[6], b[7], b[8], b[9], b[10], b[11], b[12], b[13], b[14], b[15]);
    return text;
}

std::string host_name() {
    char name[256] = {};
    if (gethostname(name, sizeof name - 1) != 0 || name[0] == '\0') {
        return "localhost";
    }
    return name;
}

std::chrono::nanoseconds coarse_resolution() noexcept {
    static const std::chrono::nanoseconds resolution = [] {
        timespec res{};
        if (clock_getres(CLOCK_MONOTONIC_COARSE, &res) != 0) {
            return std::chrono::nanoseconds(std::chrono::milliseconds(10));
        }
        return std::chrono::seconds(res.tv_sec) + std::chrono::nanoseconds(res.tv_nsec);
    }();
    return resolution;
}

std::uint64_t now_ns() noexcept {
    return static_cast<std::uint64_t>(
        std::chrono::duration_cast<std::chrono::nanoseconds>(std::chrono::system_clock::now().time_since_epoch())
            .count());
}

#if defined(__x86_64__)
namespace {
/// Whether the TSC ticks at one rate whatever the CPU's power state (an invariant TSC): then the
/// ticks between two readings on one CPU measure the time between them. The kernel need not keep
/// time with the TSC for that (VMs keep it with kvm-clock, which is the TSC scaled, and may mark
/// the TSC unstable across CPUs): readings are only ever compared on the CPU that took them.
bool tsc_invariant() {
    static const bool invariant = [] {
        std::ifstream source("/sys/devices/system/clocksource/clocksource0/current_clocksource");
        std::string name;
        source >> name;
        if (name == "tsc") {
            return true;
        }
        std::ifstream cpuinfo("/proc/cpuinfo");
        for (std::string line; std::getline(cpuinfo, line);) {
            if (line.starts_with("flags")) {
                auto has = [&](std::string_view flag) {
                    return (" " + line + " ").find(" " + std::string(flag) + " ") != std::string::npos;
                };
                return has("constant_tsc") && has("nonstop_tsc");
            }
        }
        return false;
    }();
    return invariant;
}

struct TscClock {
    std::uint64_t tsc = 0, ns = 0;            // the last precise reading
    int cpu = -1;                             // the CPU it was taken on (-1: none to go from)
    std::uint64_t from_tsc = 0, from_ns = 0;  // the reading the rate is measured from
    int from_cpu = -1;
    double ns_per_tick = 0;  // 0 until 10 ms of readings on one CPU measured it
};
constexpr std::uint64_t reread_after_ns = 1'000'000;
constexpr std::uint64_t measure_over_ns = 10'000'000;
constexpr std::uint64_t remeasure_after_ns = 10'000'000'000;
/// A precise reading is paired with the TSC read just before and after it (a vDSO read takes
/// 50-150 ticks); a pair further apart than this (~1 us at 2 GHz: the thread was preempted or
/// interrupted between them) is not kept, so a kept pair is off by half of it at most.
constexpr std::uint64_t max_pair_ticks = 2'000;
}  // namespace

std::uint64_t stamp_ns() noexcept {
    if (!tsc_invariant()) {
        return now_ns();
    }
    thread_local TscClock c;
    const int cpu = ::sched_getcpu();
    if (cpu < 0) {
        return now_ns();
    }
    const std::uint64_t t = __rdtsc();
    if (c.ns_per_tick > 0 && cpu == c.cpu && t >= c.tsc) {
        const double since = static_cast<double>(t - c.tsc) * c.ns_per_tick;
        if (since < static_cast<double>(reread_after_ns)) {
            return c.ns + static_cast<std::uint64_t>(since);
        }
    }
    const std::uint64_t before = __rdtsc();
    const std::uint64_t ns = now_ns();
    const std::uint64_t after = __rdtsc();
    if (after - before > max_pair_ticks || ::sched_getcpu() != cpu) {
        c.cpu = -1;  // preempted or moved meanwhile: the next stamp reads the clock again
        return ns;
    }
    const std::uint64_t tsc = before + (after - before) / 2;
    if (c.from_ns == 0 || cpu != c.from_cpu || ns < c.from_ns || tsc <= c.from_tsc) {
        c.from_ns = ns;  // first reading, another CPU, or the clock was set back
        c.from_tsc = tsc;
        c.from_cpu = cpu;
    } else if (ns - c.from_ns >= measure_over_ns) {
        c.ns_per_tick = static_cast<double>(ns - c.from_ns) / static_cast<double>(tsc - c.from_tsc);
        if (ns - c.from_ns >= remeasure_after_ns) {
            c.from_ns = ns;  // follow NTP's slewing: measure over the last ~10 s
            c.from_tsc = tsc;
        }
    }
    c.tsc = tsc;
    c.ns = ns;
    c.cpu = cpu;
    return ns;
}
#else
std::uint64_t stamp_ns() noexcept {
    return now_ns();
}
#endif

namespace {
void make_dirs(const std::string& path) {
    std::string partial;
    for (std::size_t i = 0; i <= path.size(); ++i) {
        if (i == path.size() || (path[i] == '/' && i > 0)) {
            partial = path.substr(0, i);
            if (::mkdir(partial.c_str(), 0700) != 0 && errno != EEXIST) {
                throw Error(errc::io_error, "cannot create directory " + partial);
            }
        }
    }
}
}  // namespace

std::string default_socket_dir() {
    if (const char* xdg = std::getenv("XDG_RUNTIME_DIR"); xdg && *xdg) {
        return std::string(xdg) + "/meshy";
    }
    return "/tmp/meshy-" + std::to_string(::getuid());
}

std::string socket_dir(const std::string& preferred) {
    const std::string dir = preferred.empty() ? default_socket_dir() : preferred;
    make_dirs(dir);
    return dir;
}

}  // namespace meshy::detail
