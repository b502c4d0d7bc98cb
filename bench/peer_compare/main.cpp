// Peer comparison: the same workloads, in one run, over raw sockets (the hardware limit), ZeroMQ
// and meshy, on Unix sockets and TCP loopback, at 0 B, 1 kB and 1 MB. Prints Markdown tables with
// each ratio, pinned to one CPU (both processes, like `taskset -c 0`) and unpinned, the median of
// --runs runs (default 3).
//
// Workloads:
//  - stream: the sender sends N messages as fast as the transport takes them, losslessly; the
//    receiver counts them and times first to last. raw: length-prefixed frames written in batches;
//    ZeroMQ: XPUB (ZMQ_XPUB_NODROP, so a full queue blocks instead of dropping) to SUB; meshy: a
//    topic with OutboxFull::wait, raw codec.
//  - ping-pong: one message there and back, K times; p50 and p99 of the round trip. raw: frames on
//    a socket; Asio floor: the same frames, each end a coroutine on Asio's reactor (what any
//    Asio-based call costs at least); ZeroMQ: REQ/REP; meshy: a service call. The peers run
//    interleaved: each one's session is set up (and warmed up) once, then the K round trips are
//    taken in slices (up to 20), round-robin: raw, Asio, ZeroMQ, meshy, raw, ...; the first round
//    trip of a slice is not recorded. Why: the host (a shared VM) drifts in speed by up to 2x over seconds, so peers
//    measured one after the other saw different hosts (meshy/raw of a single run ranged from 0.72
//    to 2.13); taking turns puts them under the same conditions.
// The receiver is a fork()ed child; every loop is bounded in count and time. All traffic stays on
// loopback and Unix sockets.
#include <sched.h>
#include <zmq.h>

#include <algorithm>
#include <cstdio>
#include <cstdlib>
#include <memory>
#include <meshy/log.hpp>
#include <string>
#include <thread>
#include <vector>

#include "common.hpp"

namespace peer_compare {
namespace {

struct PingPongResult {
    Latency raw, asio, zmq, meshy;
};

/// The ping-pong of every wanted peer, interleaved: all sessions are set up, then the K round trips
/// are taken in slices, round-robin (raw, Asio, ZeroMQ, meshy, raw, ...). The host's speed drifts by up
/// to 2x over seconds: peers measured one after the other saw different hosts, peers taking turns
/// see the same one.
PingPongResult run_pingpong(bool tcp, std::size_t size, std::size_t k) {
    // At least 15 round trips per slice (300 at 1 MB make 20 slices of 15).
    const std::size_t slices = std::clamp<std::size_t>(k / 15, 1, 20);
    const std::size_t serve_count = warm_up + k + slices;
    // meshy's session is set up last: it starts a node (threads that take locks) in this process,
    // and a child fork()ed after that could inherit a lock held. ZeroMQ's I/O threads are harmless
    // to the meshy child, which does not use ZeroMQ.
    std::unique_ptr<PingPongSession> raw, bare, zmq, mesh;
    if (wanted("raw")) {
        raw = raw_pingpong(tcp, size, serve_count);
    }
    if (wanted("asio")) {
        bare = asio_pingpong(tcp, size, serve_count);
    }
    if (wanted("zmq")) {
        zmq = zmq_pingpong(tcp, size, serve_count);
    }
    if (wanted("meshy")) {
        mesh = meshy_pingpong(tcp, size);
    }
    std::vector<double> raw_rtt, asio_rtt, zmq_rtt, mesh_rtt;
    for (auto* v : {&raw_rtt, &asio_rtt, &zmq_rtt, &mesh_rtt}) {
        v->reserve(k);
    }
    for (std::size_t s = 0; s < slices; ++s) {
        const std::size_t n = k * (s + 1) / slices - k * s / slices;
        // One round trip more than recorded: the first of a slice finds the caches used by another
        // peer.
        if (raw) {
            raw->round_trips(n + 1, 1, raw_rtt);
        }
        if (bare) {
            bare->round_trips(n + 1, 1, asio_rtt);
        }
        if (zmq) {
            zmq->round_trips(n + 1, 1, zmq_rtt);
        }
        if (mesh) {
            mesh->round_trips(n + 1, 1, mesh_rtt);
        }
    }
    mesh.reset();  // torn down in the reverse order, each child reaped
    zmq.reset();
    bare.reset();
    raw.reset();
    return {summarize(raw_rtt), summarize(asio_rtt), summarize(zmq_rtt), summarize(mesh_rtt)};
}

// --- the comparison ----------------------------------------------------------------------------------

std::size_t stream_count(std::size_t size, double scale) {
    const double base = size >= 1024 * 1024 ? 2000 : size >= 1024 ? 400000 : 1000000;
    return static_cast<std::size_t>(std::max(1.0, base * scale));
}
/// The stream workloads run interleaved like the ping-pongs: each peer's N messages are sent in
/// this many sessions of N/slices, round-robin (raw, ZeroMQ, meshy, raw, ...), so that the host's
/// drift over a run falls on all peers alike (one peer's single session came out 20-30% off
/// beside the others' in one run). At least 400 messages per slice.
std::size_t stream_slices(std::size_t count) {
    return std::clamp<std::size_t>(count / 400, 1, 5);
}

/// One peer's stream slices added up: its messages over its time, first to last of each slice.
struct StreamTotals {
    double counted = 0, seconds = 0, received = 0;
    void add(const StreamResult& r) {
        received += r.count;
        if (r.seconds > 0) {
            counted += r.count - 1;  // the first message of a slice starts its clock
            seconds += r.seconds;
        }
    }
    double rate() const { return seconds > 0 ? counted / seconds : 0; }
};

std::size_t pingpong_count(std::size_t size, double scale) {
    const double base = size >= 1024 * 1024 ? 300 : 10000;
    return static_cast<std::size_t>(std::max(1.0, base * scale));
}

void compare(bool pinned, int runs, double scale, const std::vector<std::size_t>& sizes) {
    cpu_set_t original;
    sched_getaffinity(0, sizeof original, &original);
    if (pinned) {
        cpu_set_t one;
        CPU_ZERO(&one);
        CPU_SET(0, &one);
        sched_setaffinity(0, sizeof one, &one);  // inherited by the fork()ed peer: like taskset -c 0
    }
    std::printf("\n### %s, median of %d runs\n\n", pinned ? "Pinned (both processes on CPU 0)" : "Unpinned", runs);
    std::printf(
        "| transport | size | raw msg/s | ZeroMQ msg/s | meshy msg/s | meshy MB/s | raw MB/s | meshy/ZeroMQ | "
        "meshy/raw | meshy received/sent |\n|---|---|---|---|---|---|---|---|---|---|\n");
    std::vector<std::string> latency_rows;
    for (const bool tcp : {false, true}) {
        if (!only_transport.empty() && only_transport != (tcp ? "tcp" : "unix")) {
            continue;
        }
        for (const std::size_t size : sizes) {
            const std::size_t n = stream_count(size, scale);
            std::vector<double> raw, zmq, mesh, mesh_got, zmq_got;
            std::vector<double> raw_p50, raw_p99, asio_p50, asio_p99, zmq_p50, zmq_p99, mesh_p50, mesh_p99;
            for (int r = 0; r < runs; ++r) {
                const bool stream = only_test.empty() || only_test == "stream";
                const bool pingpong = only_test.empty() || only_test == "pingpong";
                StreamTotals a, b, c;
                const std::size_t slices = stream ? stream_slices(n) : 0;
                for (std::size_t s = 0; s < slices; ++s) {
                    const std::size_t part = n * (s + 1) / slices - n * s / slices;
                    if (wanted("raw")) {
                        a.add(raw_stream(tcp, size, part));
                    }
                    if (wanted("zmq")) {
                        b.add(zmq_stream(tcp, size, part));
                    }
                    if (wanted("meshy")) {
                        c.add(meshy_stream(tcp, size, part));
                    }
                }
                raw.push_back(a.rate());
                zmq.push_back(b.rate());
                mesh.push_back(c.rate());
                mesh_got.push_back(c.received);
                zmq_got.push_back(b.received);
                const auto p = pingpong ? run_pingpong(tcp, size, pingpong_count(size, scale)) : PingPongResult{};
                raw_p50.push_back(p.raw.p50_us);
                raw_p99.push_back(p.raw.p99_us);
                asio_p50.push_back(p.asio.p50_us);
                asio_p99.push_back(p.asio.p99_us);
                zmq_p50.push_back(p.zmq.p50_us);
                zmq_p99.push_back(p.zmq.p99_us);
                mesh_p50.push_back(p.meshy.p50_us);
                mesh_p99.push_back(p.meshy.p99_us);
            }
            const double mb = static_cast<double>(size) / 1e6;
            const double m_raw = median(raw), m_zmq = median(zmq), m_mesh = median(mesh);
            std::printf("| %s | %s | %.0f | %.0f | %.0f | %.1f | %.1f | %.2f | %.2f | %.0f/%zu |\n",
                        tcp ? "tcp" : "unix", size_text(size).c_str(), m_raw, m_zmq, m_mesh, m_mesh * mb, m_raw * mb,
                        m_zmq > 0 ? m_mesh / m_zmq : 0, m_raw > 0 ? m_mesh / m_raw : 0, median(mesh_got), n);
            if (wanted("zmq") && only_test != "pingpong" && median(zmq_got) < static_cast<double>(n)) {
                // Its rate counts what arrived; a loss would make the comparison unfair either way.
                std::fprintf(stderr, "peer_compare: ZeroMQ delivered %.0f of %zu messages (%s, %s)\n", median(zmq_got),
                             n, tcp ? "tcp" : "unix", size_text(size).c_str());
            }
            std::fflush(stdout);
            char row[512];
            const double rp50 = median(raw_p50), rp99 = median(raw_p99);
            std::snprintf(row, sizeof row,
                          "| %s | %s | %.1f / %.1f | %.1f / %.1f | %.1f / %.1f | %.1f / %.1f | %.2f | %.2f | %.2f |",
                          tcp ? "tcp" : "unix", size_text(size).c_str(), rp50, rp99, median(asio_p50), median(asio_p99),
                          median(zmq_p50), median(zmq_p99), median(mesh_p50), median(mesh_p99),
                          rp50 > 0 ? median(mesh_p50) / rp50 : 0, rp99 > 0 ? median(mesh_p99) / rp99 : 0,
                          rp50 > 0 ? median(asio_p50) / rp50 : 0);
            latency_rows.emplace_back(row);
        }
    }
    std::printf(
        "\nRound trip (ping-pong; meshy: service call), p50 / p99 in us:\n\n| transport | size | raw | Asio floor | "
        "ZeroMQ REQ/REP | meshy call | meshy/raw p50 | meshy/raw p99 | Asio floor/raw p50 |\n"
        "|---|---|---|---|---|---|---|---|---|\n");
    for (const auto& row : latency_rows) {
        std::printf("%s\n", row.c_str());
    }
    std::fflush(stdout);
    sched_setaffinity(0, sizeof original, &original);
}

}  // namespace
}  // namespace peer_compare

int main(int argc, char** argv) {
    using namespace peer_compare;
    int runs = 3;
    double scale = 1;
    std::string which = "both";
    std::vector<std::size_t> sizes{0, 1024, 1024 * 1024};
    for (int i = 1; i < argc; ++i) {
        const std::string a = argv[i];
        if (a == "--only" && i + 1 < argc) {
            only = argv[++i];
            continue;
        }
        if (a == "--test" && i + 1 < argc) {
            only_test = argv[++i];
            continue;
        }
        if (a == "--transport" && i + 1 < argc) {
            only_transport = argv[++i];
            continue;
        }
        if (a == "--runs" && i + 1 < argc) {
            runs = std::max(1, std::atoi(argv[++i]));
        } else if (a == "--scale" && i + 1 < argc) {
            scale = std::atof(argv[++i]);
        } else if (a == "--pinned") {
            which = "pinned";
        } else if (a == "--unpinned") {
            which = "unpinned";
        } else if (a == "--sizes" && i + 1 < argc) {
            sizes.clear();
            for (const char* p = argv[++i]; *p;) {
                char* end = nullptr;
                sizes.push_back(std::strtoull(p, &end, 10));
                p = *end ? end + 1 : end;
            }
        } else {
            std::fprintf(
                stderr,
                "usage: peer_compare [--runs N] [--scale F] [--pinned|--unpinned] [--sizes 0,1024,1048576]\n"
                "                    [--only raw|asio|zmq|meshy] [--test stream|pingpong] [--transport unix|tcp]\n");
            return 2;
        }
    }
    meshy::set_log_level(meshy::LogLevel::warn);
    int major = 0, minor = 0, patch = 0;
    zmq_version(&major, &minor, &patch);
    std::printf("peer_compare: raw sockets vs ZeroMQ %d.%d.%d vs meshy (and an Asio floor for calls); %u CPUs\n", major,
                minor, patch, std::thread::hardware_concurrency());
    if (which != "unpinned") {
        compare(true, runs, scale, sizes);
    }
    if (which != "pinned") {
        compare(false, runs, scale, sizes);
    }
    return 0;
}
