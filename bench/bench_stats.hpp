// What the peer comparisons (peer_compare, same_host_compare) share: their clock, latency
// percentiles, medians and size labels, so that both report a figure the same way.
#pragma once

#include <algorithm>
#include <chrono>
#include <cstddef>
#include <string>
#include <vector>

namespace meshy_bench {

using Clock = std::chrono::steady_clock;  // CLOCK_MONOTONIC: one clock for all processes of the host

inline double ns_since(Clock::time_point t0) {
    return static_cast<double>(std::chrono::duration_cast<std::chrono::nanoseconds>(Clock::now() - t0).count());
}

struct Latency {
    double p50_us = 0, p99_us = 0, count = 0;
};

/// p50 and p99 of `ns` (sorted in place), in microseconds.
inline Latency summarize(std::vector<double>& ns) {
    Latency l;
    if (ns.empty()) {
        return l;
    }
    std::sort(ns.begin(), ns.end());
    l.p50_us = ns[ns.size() / 2] / 1000;
    l.p99_us = ns[std::min(ns.size() - 1, ns.size() * 99 / 100)] / 1000;
    l.count = static_cast<double>(ns.size());
    return l;
}

inline double median(std::vector<double> v) {
    if (v.empty()) {
        return 0;
    }
    std::sort(v.begin(), v.end());
    return v[v.size() / 2];
}

/// "0 B", "1 kB", "1 MB".
inline std::string size_text(std::size_t size) {
    return size >= 1024 * 1024 ? std::to_string(size >> 20) + " MB"
           : size >= 1024      ? std::to_string(size >> 10) + " kB"
                               : std::to_string(size) + " B";
}

}  // namespace meshy_bench
