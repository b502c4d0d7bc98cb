// Same-host peers: meshy against Cyclone DDS and iceoryx on one host, each peer driven the way its
// own project measures it, in one run and the same placement (issue 21). Prints Markdown tables,
// pinned (every process of a measurement on CPU 0, like `taskset -c 0`) and unpinned, the median
// of --runs runs (default 3).
//
// Workloads:
//  - ping-pong at 0 B and 1 kB, p50 and p99 of the round trip. Cyclone DDS as `ddsperf ping` /
//    `ddsperf pong` do it: its default topic's shape (a sequence number, a key, a sequence of
//    octets), reliable, KEEP_LAST 1, a listener on each side that takes the sample and writes the
//    next one from the callback (ddsperf's default trigger mode); on loopback only (the `lo`
//    interface, no multicast, unicast discovery to 127.0.0.1). meshy: a service call to an echo
//    provider over its same-host link (a Unix socket upgraded to shared memory, docs/shm.md).
//  - one-way at 1 MB and 8 MB: latency (p50/p99 of the time from the sender's stamp, written after
//    it filled the message, to the receiver having read the last byte in place) and throughput
//    (messages as fast as the transport takes them, losslessly, counted and timed at the
//    receiver). iceoryx through loans, as its iceperf does: the publisher loans a chunk, fills it
//    and publishes it; the subscriber takes it, reads it in place and releases it, polling take()
//    for a latency message (iceperf's mode) when it has a CPU of its own, else (and within a
//    stream) waiting in a WaitSet. meshy twice: the sender fills a buffer and sends it (a copy into
//    the ring), and through loans (loan_blocking, fill, send_loaned_blocking; the receiver reads
//    the sender's pool in place); the receiver reads the payload where the callback gets it. A
//    sender is a Source (acquire a buffer, publish it): one for copies, one for loans. Raw Unix
//    sockets too, the floor for loans' throughput: the filled buffer written whole to a socket,
//    read whole into the receiver's buffer and read there.
//    The receiver answers through a pipe (one record per latency message, one per stream), which
//    paces the latency messages and is not timed.
// Every peer's sessions are set up once per run and then take turns in slices (like
// bench/peer_compare): the host's speed drifts over seconds, and peers measured one after the
// other saw different hosts.
//
// The peers run in fork()ed children; every loop is bounded in count and time. RouDi (iceoryx's
// daemon, `iox-roudi`) is started here with a config that has pools for the large messages, and
// stopped at the end or on failure; children die with this process (PR_SET_PDEATHSIG). Traffic
// stays on loopback and in shared memory.
#include <dds/version.h>
#include <sched.h>
#include <signal.h>
#include <unistd.h>

#include <algorithm>
#include <array>
#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <iceoryx_versions.hpp>
#include <iterator>
#include <memory>
#include <meshy/log.hpp>
#include <string>
#include <thread>
#include <vector>

#include "common.hpp"
#include "one_way.hpp"

namespace same_host {
namespace {

struct PingPongResult {
    Latency cyclone, meshy;
};

/// Both peers' ping-pongs, taken in slices, in turns.
PingPongResult run_pingpong(std::size_t size, std::size_t k, bool want_cyclone, bool want_meshy) {
    const std::size_t slices = std::clamp<std::size_t>(k / 15, 1, 20);
    // Cyclone's session first: meshy's starts a node (threads that take locks) in this process, and
    // a child fork()ed after that could inherit a lock held. Cyclone's threads are harmless to the
    // meshy child, which does not use Cyclone DDS.
    std::unique_ptr<PingPongSession> dds, mesh;
    if (want_cyclone) {
        dds = cyclone_pingpong(size);
    }
    if (want_meshy) {
        mesh = meshy_pingpong(size);
    }
    std::vector<double> dds_rtt, mesh_rtt;
    dds_rtt.reserve(k);
    mesh_rtt.reserve(k);
    for (std::size_t s = 0; s < slices; ++s) {
        const std::size_t n = k * (s + 1) / slices - k * s / slices;
        // One round trip more than recorded: the first of a slice finds the caches used by the other.
        if (dds) {
            dds->round_trips(n + 1, 1, dds_rtt);
        }
        if (mesh) {
            mesh->round_trips(n + 1, 1, mesh_rtt);
        }
    }
    mesh.reset();
    dds.reset();
    return {summarize(dds_rtt), summarize(mesh_rtt)};
}

// --- the comparison --------------------------------------------------------------------------------

std::string only;       // --only cyclone|iceoryx|meshy|raw: run just that peer (for profiling)
std::string only_test;  // --test pingpong|oneway: run just that workload
bool roudi_up = false;

bool wanted(const char* peer) {
    return only.empty() || only == peer;
}

std::size_t scaled(double base, double scale) {
    return static_cast<std::size_t>(std::max(1.0, base * scale));
}

// A default run takes about a minute on a 2-vCPU VM.
std::size_t pingpong_count(double scale) {
    return scaled(10000, scale);
}
std::size_t latency_count(std::size_t size, double scale) {
    return scaled(size > 4 * 1024 * 1024 ? 200 : 500, scale);
}
std::size_t stream_count(std::size_t size, double scale) {
    return scaled(size > 4 * 1024 * 1024 ? 400 : 2000, scale);
}

/// One peer's one-way figures in one run.
struct PeerOneWay {
    Latency latency;
    double rate = 0, received = 0, sent = 0;  // the stream's messages/s at the receiver
};

struct OneWayResult {
    PeerOneWay raw, iceoryx, meshy, loans;
    std::string meshy_link = "-";
};

/// Every peer's one-way sessions: the latency messages in slices, in turns, then the streams.
OneWayResult run_oneway(std::size_t size, double scale) {
    std::unique_ptr<OneWaySession> raw, ice, mesh, lent;
    if (wanted("raw")) {
        raw = raw_unix_session(size);
    }
    if (roudi_up && wanted("iceoryx")) {
        ice = iceoryx_session(size);
    }
    if (wanted("meshy")) {
        mesh = meshy_session(size, false);
        lent = meshy_session(size, true);
    }
    const std::array<OneWaySession*, 4> sessions{raw.get(), ice.get(), mesh.get(), lent.get()};
    const auto l = static_cast<std::uint32_t>(latency_count(size, scale));
    const std::uint32_t slices = std::clamp<std::uint32_t>(l / 10, 1, 10);
    for (std::uint32_t s = 0; s < slices; ++s) {
        const std::uint32_t n = l * (s + 1) / slices - l * s / slices;
        for (auto* session : sessions) {
            if (session) {
                session->latency(n + 1, 1);  // the first of a slice finds the caches used by the other
            }
        }
    }
    const auto total = static_cast<std::uint32_t>(stream_count(size, scale));
    const std::uint32_t parts = std::clamp<std::uint32_t>(total / 40, 1, 5);
    for (std::uint32_t s = 0; s < parts; ++s) {
        const std::uint32_t n = total * (s + 1) / parts - total * s / parts;
        for (auto* session : sessions) {
            if (session) {
                session->stream(n);
            }
        }
    }
    OneWayResult r;
    auto finish = [](std::unique_ptr<OneWaySession>& session, PeerOneWay& p) {
        if (session) {
            p.latency = session->finish(p.rate, p.received, p.sent);
        }
    };
    finish(raw, r.raw);
    finish(ice, r.iceoryx);
    finish(mesh, r.meshy);
    finish(lent, r.loans);
    if (mesh) {
        r.meshy_link = mesh->link();
    }
    lent.reset();
    mesh.reset();
    ice.reset();
    raw.reset();
    return r;
}

/// A peer's one-way figures over several runs, as medians.
struct PeerMedians {
    std::vector<double> p50, p99, rate, received;
    double sent = 0;
    void add(const PeerOneWay& p) {
        p50.push_back(p.latency.p50_us);
        p99.push_back(p.latency.p99_us);
        rate.push_back(p.rate);
        received.push_back(p.received);
        sent = p.sent;
    }
    std::string latency() const {
        char text[64];
        std::snprintf(text, sizeof text, "%.0f / %.0f", median(p50), median(p99));
        return text;
    }
    double mb_per_s(std::size_t size) const { return median(rate) * static_cast<double>(size) / 1e6; }
    std::string got() const {
        char text[64];
        std::snprintf(text, sizeof text, "%.0f/%.0f", median(received), sent);
        return text;
    }
};

double ratio(double a, double b) {
    return b > 0 ? a / b : 0;
}

void compare(bool pinned, int runs, double scale) {
    cpu_set_t original;
    ::sched_getaffinity(0, sizeof original, &original);
    if (pinned) {
        cpu_set_t one;
        CPU_ZERO(&one);
        CPU_SET(0, &one);
        ::sched_setaffinity(0, sizeof one, &one);  // inherited by every child: like taskset -c 0
    }
    std::printf("\n### %s, median of %d runs\n", pinned ? "Pinned (every process on CPU 0)" : "Unpinned", runs);
    if (only_test.empty() || only_test == "pingpong") {
        std::printf(
            "\nRound trip, p50 / p99 in us (Cyclone DDS: ddsperf-style ping-pong; meshy: service call):\n\n"
            "| size | Cyclone DDS | meshy call | meshy link | meshy/Cyclone p50 | meshy/Cyclone p99 |\n"
            "|---|---|---|---|---|---|\n");
        for (const std::size_t size : {std::size_t{0}, std::size_t{1024}}) {
            std::vector<double> c50, c99, m50, m99;
            for (int r = 0; r < runs; ++r) {
                const auto p = run_pingpong(size, pingpong_count(scale), wanted("cyclone"), wanted("meshy"));
                c50.push_back(p.cyclone.p50_us);
                c99.push_back(p.cyclone.p99_us);
                m50.push_back(p.meshy.p50_us);
                m99.push_back(p.meshy.p99_us);
            }
            std::printf("| %s | %.1f / %.1f | %.1f / %.1f | %s | %.2f | %.2f |\n", size_text(size).c_str(), median(c50),
                        median(c99), median(m50), median(m99), meshy_link_seen.c_str(), ratio(median(m50), median(c50)),
                        ratio(median(m99), median(c99)));
            std::fflush(stdout);
        }
    }
    if (only_test.empty() || only_test == "oneway") {
        std::printf(
            "\nOne-way (stamp after filling -> receiver has read the last byte in place), p50 / p99 in us, and a "
            "lossless stream's throughput (raw unix: a filled buffer written whole to a Unix socket, read whole into "
            "the receiver's; iceoryx: loans; meshy: send of a filled buffer; meshy loans: loan_blocking -> fill -> "
            "send_loaned_blocking, read in place):\n\n"
            "| size | raw unix latency | iceoryx latency | meshy latency | meshy loans latency | meshy/iceoryx p50 | "
            "loans/iceoryx p50 | raw unix MB/s | iceoryx MB/s | meshy MB/s | meshy loans MB/s | loans/raw MB/s | "
            "loans/iceoryx MB/s | meshy link | received/sent (raw, iceoryx, meshy, loans) "
            "|\n|---|---|---|---|---|---|---|---|---|---|---|---|---|---|---|\n");
        for (const std::size_t size : {std::size_t{1} << 20, std::size_t{8} << 20}) {
            PeerMedians raw, ice, mesh, lent;
            std::string link = "-";
            for (int r = 0; r < runs; ++r) {
                const auto o = run_oneway(size, scale);
                raw.add(o.raw);
                ice.add(o.iceoryx);
                mesh.add(o.meshy);
                lent.add(o.loans);
                link = o.meshy_link;
            }
            std::printf(
                "| %s | %s | %s | %s | %s | %.2f | %.2f | %.0f | %.0f | %.0f | %.0f | %.2f | %.2f | %s | %s, %s, %s, "
                "%s "
                "|\n",
                size_text(size).c_str(), raw.latency().c_str(), ice.latency().c_str(), mesh.latency().c_str(),
                lent.latency().c_str(), ratio(median(mesh.p50), median(ice.p50)),
                ratio(median(lent.p50), median(ice.p50)), raw.mb_per_s(size), ice.mb_per_s(size), mesh.mb_per_s(size),
                lent.mb_per_s(size), ratio(lent.mb_per_s(size), raw.mb_per_s(size)),
                ratio(lent.mb_per_s(size), ice.mb_per_s(size)), link.c_str(), raw.got().c_str(), ice.got().c_str(),
                mesh.got().c_str(), lent.got().c_str());
            std::fflush(stdout);
        }
    }
    ::sched_setaffinity(0, sizeof original, &original);
}

std::vector<std::string> dev_shm() {
    std::vector<std::string> names;
    std::error_code ec;
    for (const auto& e : std::filesystem::directory_iterator("/dev/shm", ec)) {
        names.push_back(e.path().filename().string());
    }
    std::sort(names.begin(), names.end());
    return names;
}

}  // namespace
}  // namespace same_host

int main(int argc, char** argv) {
    using namespace same_host;
    int runs = 3;
    double scale = 1;
    std::string which = "both";
    for (int i = 1; i < argc; ++i) {
        const std::string a = argv[i];
        if (a == "--runs" && i + 1 < argc) {
            runs = std::max(1, std::atoi(argv[++i]));
        } else if (a == "--scale" && i + 1 < argc) {
            scale = std::atof(argv[++i]);
        } else if (a == "--pinned") {
            which = "pinned";
        } else if (a == "--unpinned") {
            which = "unpinned";
        } else if (a == "--only" && i + 1 < argc) {
            only = argv[++i];
        } else if (a == "--test" && i + 1 < argc) {
            only_test = argv[++i];
        } else {
            std::fprintf(stderr,
                         "usage: same_host_compare [--runs N] [--scale F] [--pinned|--unpinned]\n"
                         "                         [--only cyclone|iceoryx|meshy|raw] [--test pingpong|oneway]\n");
            return 2;
        }
    }
    main_pid = ::getpid();
    std::atexit(clean_up);
    ::signal(SIGINT, on_signal);
    ::signal(SIGTERM, on_signal);
    ::signal(SIGPIPE, SIG_IGN);  // a peer that failed closed its pipes: a write then fails, and says so
    ::setenv("CYCLONEDDS_URI", cyclone_config, 1);
    meshy::set_log_level(meshy::LogLevel::warn);
    const auto shm_before = dev_shm();

    std::printf("same_host_compare: Cyclone DDS %s, iceoryx %s, meshy; %u CPUs\n", DDS_VERSION,
                ICEORYX_LATEST_RELEASE_VERSION, std::thread::hardware_concurrency());
    std::printf(
        "- Cyclone DDS: ddsperf's ping-pong on its C API: a keyed sample (seq, key, sequence<octet>), reliable, "
        "KEEP_LAST 1, a data-available listener on each side that takes and writes the next sample; UDP on lo only "
        "(no multicast, unicast discovery to 127.0.0.1)\n"
        "- iceoryx: loans through RouDi (iox-roudi, started here): loan -> fill -> publish; take -> read in place -> "
        "release; subscriber queue %llu, BLOCK_PRODUCER / WAIT_FOR_CONSUMER (lossless); the subscriber polls take() "
        "like iceperf for latency messages when it may run on 2+ CPUs, else (and in streams) waits in a WaitSet\n"
        "- meshy: nodes with Unix sockets only, upgraded to shared memory (allow_shm), raw codec, OutboxFull::wait; "
        "ping-pong: call_raw as a coroutine on the node's executor to an echo service; one-way: send_blocking of a "
        "filled buffer, and (meshy loans) loan_blocking -> fill -> send_loaned_blocking; the listener reads the "
        "payload where its callback gets it (in the sender's pool, for loans)\n"
        "- raw unix (one-way): the sender fills its buffer and writes it whole to a Unix socket; the receiver reads it "
        "whole (MSG_WAITALL) into its own buffer and reads it there; socket buffers as meshy's default\n",
        static_cast<unsigned long long>(iceoryx_queue));
    std::printf(
        "counts (--scale %.2g): ping-pong %zu round trips; one-way 1 MB %zu latency + %zu stream messages, 8 MB "
        "%zu + %zu\n",
        scale, pingpong_count(scale), latency_count(1 << 20, scale), stream_count(1 << 20, scale),
        latency_count(8 << 20, scale), stream_count(8 << 20, scale));
    if ((only_test.empty() || only_test == "oneway") && wanted("iceoryx")) {
        roudi_up = start_roudi({std::size_t{1} << 20, std::size_t{8} << 20});
    }
    if (which != "unpinned") {
        compare(true, runs, scale);
    }
    if (which != "pinned") {
        compare(false, runs, scale);
    }
    clean_up();
    const auto shm_after = dev_shm();
    std::vector<std::string> left;
    std::set_difference(shm_after.begin(), shm_after.end(), shm_before.begin(), shm_before.end(),
                        std::back_inserter(left));
    for (const auto& name : left) {
        std::fprintf(stderr, "same_host_compare: left in /dev/shm: %s\n", name.c_str());
    }
    return left.empty() ? 0 : 1;
}
