// meshy speedtest recv | send | call | run: rosy-compatible throughput and latency measurement.
//
// Counting happens at the receiver. The sender reports how many messages it sent over a service
// (`<topic>/report`, a reliable request/reply) when it is done, so the receiver prints sent,
// received and dropped; nothing is hidden. One-way latency uses the send time every message frame
// carries (the sender's CLOCK_REALTIME): exact on one host, meaningful across hosts only when
// their clocks are synchronised (chrono/PTP), so `recv` prints it as "n/a" unless given
// --synced-clocks (which `run`, on one host, passes).
#include <spawn.h>
#include <sys/wait.h>
#include <unistd.h>

#include <CLI/CLI.hpp>
#include <algorithm>
#include <array>
#include <atomic>
#include <bit>
#include <cctype>
#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <fstream>
#include <map>
#include <meshy/codecs/cereal.hpp>
#include <meshy/codecs/msgpack.hpp>
#include <meshy/codecs/raw.hpp>
#include <meshy/log.hpp>
#include <mutex>
#include <sstream>
#include <string_view>
#include <thread>

#include "cli.hpp"

extern char** environ;

namespace meshy::cli {
namespace {

using Clock = std::chrono::steady_clock;
using Payload = std::vector<std::uint8_t>;

struct SpeedOptions {
    std::size_t message_size = 0;
    double run_time = 10;
    double sleep_time = 0;
    std::string topic = "speedtest";
    std::string codec = "msgpack";
    bool disable_unix = false;
    bool disable_tcp = false;
    bool disable_shm = false;
    bool shm = false;  // the children of `run` for the shm rows
    bool enable_load_balancer = false;
    bool synced_clocks = false;
    bool machine = false;
    bool no_backpressure = false;
    double timeout = 60;
    std::vector<std::size_t> sizes{0, 1024, 1024 * 1024};
};

std::uint64_t realtime_ns() {
    timespec ts{};
    clock_gettime(CLOCK_REALTIME, &ts);
    return static_cast<std::uint64_t>(ts.tv_sec) * 1000000000u + static_cast<std::uint64_t>(ts.tv_nsec);
}

/// Latencies in ns, in log-linear buckets (64 per power of two: about 1.5 % resolution).
class Histogram {
public:
    void add(std::uint64_t v) {
        ++counts_[index(v)];
        ++count_;
        sum_ += static_cast<double>(v);
    }
    std::uint64_t count() const { return count_; }
    double mean() const { return count_ ? sum_ / static_cast<double>(count_) : 0; }
    /// The value below which a fraction `q` of the samples lie (bucket midpoint).
    double quantile(double q) const {
        if (count_ == 0) {
            return 0;
        }
        const auto rank = static_cast<std::uint64_t>(std::ceil(q * static_cast<double>(count_)));
        std::uint64_t seen = 0;
        for (std::size_t i = 0; i < counts_.size(); ++i) {
            seen += counts_[i];
            if (seen >= rank && counts_[i]) {
                return midpoint(i);
            }
        }
        return midpoint(counts_.size() - 1);
    }

private:
    static constexpr std::size_t sub = 64;
    static std::size_t index(std::uint64_t v) {
        if (v < 2 * sub) {
            return static_cast<std::size_t>(v);
        }
        const int msb = 63 - std::countl_zero(v);  // >= 7
        const int shift = msb - 6;
        return 2 * sub + static_cast<std::size_t>(msb - 7) * sub + static_cast<std::size_t>((v >> shift) & (sub - 1));
    }
    static double midpoint(std::size_t i) {
        if (i < 2 * sub) {
            return static_cast<double>(i);
        }
        const std::size_t msb = (i - 2 * sub) / sub + 7;
        const std::size_t low = (i - 2 * sub) % sub;
        const double width = std::ldexp(1.0, static_cast<int>(msb) - 6);
        return std::ldexp(1.0, static_cast<int>(msb)) + (static_cast<double>(low) + 0.5) * width;
    }
    std::array<std::uint64_t, 2 * sub + 57 * sub> counts_{};
    std::uint64_t count_ = 0;
    double sum_ = 0;
};

CodecId parse_codec(const std::string& name) {
    if (name == "msgpack") {
        return CodecId::msgpack;
    }
    if (name == "cereal") {
        return CodecId::cereal;
    }
    if (name == "raw") {
        return CodecId::raw;
    }
    throw CliError("unknown codec '" + name + "' (msgpack, cereal or raw)", exit_usage);
}

std::string report_service(const SpeedOptions& o) {
    return o.topic + "/report";
}
std::string echo_service(const SpeedOptions& o) {
    return o.topic + "/echo";
}

std::unique_ptr<Node> make_speed_node(const GlobalOptions& globals, const SpeedOptions& o, const std::string& what) {
    NodeOptions options = cli_node_options(globals, "meshy-speedtest-" + what);
    options.allow_unix = !o.disable_unix;
    options.allow_tcp = !o.disable_tcp;
    if (o.disable_shm) {
        options.allow_shm = false;
    } else if (o.shm) {
        options.allow_shm = true;
    }
    options.codec = parse_codec(o.codec);
    options.topic_load_balancer = o.enable_load_balancer ? round_robin_topic_balancer() : all_listeners_balancer();
    // The sender is paced by its outbox (lossless while the receiver keeps up) unless told not to.
    options.outbox_full = o.no_backpressure ? OutboxFull::drop_oldest : OutboxFull::wait;
    // A burst of 1 MB messages is 4 GB in a full default outbox: keep big ones few.
    if (o.message_size >= 64 * 1024) {
        options.outbox_capacity = 64;
    }
    return std::make_unique<Node>(options);
}

/// The transport this node uses to reach the first other node it is connected to.
std::string transport_of(const Node& node) {
    for (const auto& n : node.nodes()) {
        if (!n.is_self && !n.transport.empty()) {
            return n.transport;
        }
    }
    return "?";
}

std::string fmt(double v, int precision = 1) {
    char text[64];
    std::snprintf(text, sizeof text, "%.*f", precision, v);
    return text;
}

std::string latency_text(const Histogram& h, bool known) {
    if (!known || h.count() == 0) {
        return "n/a";
    }
    return "mean " + fmt(h.mean() / 1000) + " us, p50 " + fmt(h.quantile(0.5) / 1000) + " us, p99 " +
           fmt(h.quantile(0.99) / 1000) + " us";
}

void wait_for_peer(Node& node, const std::function<bool()>& ready, double timeout, const char* what) {
    const auto deadline = Clock::now() + std::chrono::duration<double>(timeout);
    while (!ready()) {
        if (Clock::now() > deadline) {
            throw CliError(std::string("no ") + what + " appeared within " + fmt(timeout, 0) + " s", exit_timeout);
        }
        if (wait_for_signal(std::chrono::milliseconds(10))) {
            throw CliError("interrupted", exit_failure);
        }
    }
    (void)node;
}

// --- recv -------------------------------------------------------------------------------------------

void run_recv(const GlobalOptions& globals, const SpeedOptions& o) {
    const CodecId codec = parse_codec(o.codec);
    auto node = make_speed_node(globals, o, "recv");
    std::mutex mutex;  // guards the histogram and times (taken by the callback and the report)
    Histogram latency;
    std::uint64_t received = 0, bytes = 0, decode_failures = 0;
    Clock::time_point first{}, last{};
    std::atomic<std::uint64_t> received_atomic{0};
    std::atomic<bool> reported{false};
    std::atomic<std::uint64_t> sent{0};

    node->listen_raw(o.topic, [&](const RawMessage& m) {
        const auto now_real = realtime_ns();
        const auto now = Clock::now();
        std::size_t size = 0;
        try {
            // Decode as a user's callback would.
            switch (codec) {
                case CodecId::msgpack:
                    size = std::get<0>(MsgpackCodec::decode<Payload>(m.payload)).size();
                    break;
                case CodecId::cereal:
                    size = std::get<0>(CerealCodec::decode<Payload>(m.payload)).size();
                    break;
                default:
                    size = std::get<0>(RawCodec::decode<Payload>(m.payload)).size();
                    break;
            }
        } catch (const Error&) {
            std::lock_guard lock(mutex);
            ++decode_failures;
            return;
        }
        std::lock_guard lock(mutex);
        if (received == 0) {
            first = now;
        }
        last = now;
        ++received;
        bytes += size;
        latency.add(now_real > m.sent_at_ns ? now_real - m.sent_at_ns : 0);
        received_atomic.store(received, std::memory_order_release);
    });
    // The sender says which transport carried its messages: a node that only dialed this one may
    // be gone, or not yet discovered here, by the time this node looks.
    std::mutex transport_mutex;
    std::string reported_transport;
    node->add_service_blocking<MsgpackCodec>(report_service(o), [&](std::uint64_t count, std::string via) {
        {
            std::lock_guard lock(transport_mutex);
            reported_transport = std::move(via);
        }
        sent.store(count);
        reported.store(true);
        return true;
    });
    node->add_service_raw(echo_service(o), [](const RawMessage& m) {
        RawPayload reply;
        reply.codec = m.codec;
        reply.bytes.append(m.payload.data(), m.payload.size());
        return reply;
    });
    if (!o.machine) {
        std::printf("Waiting for a sender on '%s'...\n", o.topic.c_str());
        std::fflush(stdout);
    }
    std::string transport = "?";
    const auto deadline = Clock::now() + std::chrono::duration<double>(o.timeout);
    bool interrupted = false;
    while (!reported.load()) {
        if (transport == "?" || transport == "unix") {  // a Unix link may move to shared memory
            if (auto now = transport_of(*node); !now.empty()) {
                transport = std::move(now);
            }
        }
        if (o.timeout > 0 && Clock::now() > deadline) {
            throw CliError("no sender finished within " + fmt(o.timeout, 0) + " s", exit_timeout);
        }
        if (wait_for_signal(std::chrono::milliseconds(10))) {
            interrupted = true;
            break;
        }
    }
    // The report came after the messages on the same connection: wait for the listener to take
    // the ones already read (bounded: until none arrives for 0.5 s, at most 5 s).
    if (!interrupted) {
        const auto limit = Clock::now() + std::chrono::seconds(5);
        auto seen = received_atomic.load();
        auto quiet_since = Clock::now();
        while (seen < sent.load() && Clock::now() < limit &&
               Clock::now() - quiet_since < std::chrono::milliseconds(500)) {
            std::this_thread::sleep_for(std::chrono::milliseconds(2));
            const auto now = received_atomic.load();
            if (now != seen) {
                seen = now;
                quiet_since = Clock::now();
            }
        }
    }
    if (transport == "?") {
        transport = transport_of(*node);
    }
    if (std::lock_guard lock(transport_mutex); transport == "?" && !reported_transport.empty()) {
        transport = reported_transport;
    }
    node->stop();

    std::lock_guard lock(mutex);
    const double seconds = received > 1 ? std::chrono::duration<double>(last - first).count() : 0;
    const double rate = seconds > 0 ? static_cast<double>(received - 1) / seconds : 0;
    const double mbps = seconds > 0
                            ? static_cast<double>(bytes) *
                                  (static_cast<double>(received - 1) / static_cast<double>(received)) / seconds / 1e6
                            : 0;
    const std::uint64_t sent_count = reported ? sent.load() : 0;
    const std::uint64_t dropped = sent_count > received ? sent_count - received : 0;
    const bool clocks = o.synced_clocks;
    if (o.machine) {
        std::printf(
            "speedtest-result mode=topic transport=%s size=%zu codec=%s sent=%llu received=%llu dropped=%llu "
            "seconds=%.6f msgs_per_s=%.1f mb_per_s=%.3f lat_mean_us=%s lat_p50_us=%s lat_p99_us=%s\n",
            transport.c_str(), o.message_size, o.codec.c_str(), static_cast<unsigned long long>(sent_count),
            static_cast<unsigned long long>(received), static_cast<unsigned long long>(dropped), seconds, rate, mbps,
            clocks ? fmt(latency.mean() / 1000, 2).c_str() : "n/a",
            clocks ? fmt(latency.quantile(0.5) / 1000, 2).c_str() : "n/a",
            clocks ? fmt(latency.quantile(0.99) / 1000, 2).c_str() : "n/a");
    } else {
        std::printf("Received %llu messages of %zu B on '%s' over %s (%s) in %.3f s\n",
                    static_cast<unsigned long long>(received), o.message_size, o.topic.c_str(), transport.c_str(),
                    o.codec.c_str(), seconds);
        if (reported) {
            std::printf("  sent %llu, received %llu, dropped %llu (%.2f %%)\n",
                        static_cast<unsigned long long>(sent_count), static_cast<unsigned long long>(received),
                        static_cast<unsigned long long>(dropped),
                        sent_count ? 100.0 * static_cast<double>(dropped) / static_cast<double>(sent_count) : 0.0);
        } else {
            std::printf("  sent unknown (interrupted before the sender reported), received %llu\n",
                        static_cast<unsigned long long>(received));
        }
        std::printf("  %.1f messages/s, %.3f MB/s\n", rate, mbps);
        std::printf("  latency: %s%s\n", latency_text(latency, clocks).c_str(),
                    clocks ? "" : " (one-way latency needs synchronised clocks: pass --synced-clocks)");
        if (decode_failures) {
            std::printf("  %llu messages did not decode as %s\n", static_cast<unsigned long long>(decode_failures),
                        o.codec.c_str());
        }
    }
    std::fflush(stdout);
}

// --- send -------------------------------------------------------------------------------------------

template <class C>
void send_loop(Node& node, const SpeedOptions& o, std::uint64_t& sent) {
    const Payload payload(o.message_size, std::uint8_t{0x5a});
    const auto start = Clock::now();
    const auto end = start + std::chrono::duration<double>(o.run_time);
    const auto sleep = std::chrono::duration<double>(o.sleep_time);
    // Bounded in time (run time) and count (2^32 messages).
    while (sent < (1ull << 32)) {
        node.send_blocking<C>(o.topic, payload);
        ++sent;
        if (o.sleep_time > 0) {
            std::this_thread::sleep_for(sleep);
        }
        if ((sent & 63) == 0 || o.sleep_time > 0 || o.message_size >= 4096) {
            if (Clock::now() >= end) {
                break;
            }
        }
    }
}

void wait_for_receiver(Node& node, const SpeedOptions& o) {
    wait_for_peer(
        node, [&] { return node.topic_has_listeners(o.topic) && node.service_has_providers(report_service(o)); },
        o.timeout, "receiver");
    // Links are made when there is something to send: this one before the clock starts.
    node.wait_for_listener_blocking(o.topic, std::chrono::milliseconds(static_cast<long>(o.timeout * 1000)));
}

void report(Node& node, const SpeedOptions& o, std::uint64_t count, const std::string& transport) {
    const CallOptions call{.timeout = std::chrono::milliseconds(static_cast<long>(o.timeout * 1000))};
    node.call_blocking<bool, MsgpackCodec>(call, report_service(o), count, transport);
}

void run_send(const GlobalOptions& globals, const SpeedOptions& o) {
    auto node = make_speed_node(globals, o, "send");
    wait_for_receiver(*node, o);
    const std::string transport = transport_of(*node);
    if (!o.machine) {
        std::printf("Sending %zu B messages on '%s' over %s (%s) for %.1f s...\n", o.message_size, o.topic.c_str(),
                    transport.c_str(), o.codec.c_str(), o.run_time);
        std::fflush(stdout);
    }
    std::uint64_t sent = 0;
    const auto start = Clock::now();
    switch (parse_codec(o.codec)) {
        case CodecId::msgpack:
            send_loop<MsgpackCodec>(*node, o, sent);
            break;
        case CodecId::cereal:
            send_loop<CerealCodec>(*node, o, sent);
            break;
        default:
            send_loop<RawCodec>(*node, o, sent);
            break;
    }
    const double seconds = std::chrono::duration<double>(Clock::now() - start).count();
    report(*node, o, sent, transport_of(*node));  // a Unix link may have moved to shared memory since
    std::printf("%sSent %llu messages in %.3f s (%.1f messages/s offered)\n", o.machine ? "# " : "",
                static_cast<unsigned long long>(sent), seconds, static_cast<double>(sent) / seconds);
    std::fflush(stdout);
    node->stop();
}

// --- call (service round trips) ---------------------------------------------------------------------

template <class C>
void call_loop(Node& node, const SpeedOptions& o, Histogram& rtt, std::uint64_t& calls, double& seconds) {
    const Payload payload(o.message_size, std::uint8_t{0x5a});
    const CallOptions call{.timeout = std::chrono::milliseconds(static_cast<long>(o.timeout * 1000))};
    const auto service = echo_service(o);
    const auto sleep = std::chrono::duration<double>(o.sleep_time);
    // Warm-up: the first calls set up buffers on both sides.
    for (int i = 0; i < 10; ++i) {
        (void)node.call_blocking<Payload, C>(call, service, payload);
    }
    // The clock starts after the warm-up, and at least one call is measured however slow a call is.
    const auto start = Clock::now();
    const auto end = start + std::chrono::duration<double>(o.run_time);
    while ((calls == 0 || Clock::now() < end) && calls < (1ull << 32)) {
        const auto t0 = Clock::now();
        const auto reply = node.call_blocking<Payload, C>(call, service, payload);
        const auto t1 = Clock::now();
        if (reply.size() != payload.size()) {
            throw CliError("the echo service replied " + std::to_string(reply.size()) + " bytes, not " +
                               std::to_string(payload.size()),
                           exit_failure);
        }
        rtt.add(static_cast<std::uint64_t>(std::chrono::duration_cast<std::chrono::nanoseconds>(t1 - t0).count()));
        ++calls;
        if (o.sleep_time > 0) {
            std::this_thread::sleep_for(sleep);
        }
    }
    seconds = std::chrono::duration<double>(Clock::now() - start).count();
}

void run_call(const GlobalOptions& globals, const SpeedOptions& o) {
    auto node = make_speed_node(globals, o, "call");
    wait_for_peer(
        *node, [&] { return node->service_has_providers(echo_service(o)); }, o.timeout, "echo service provider");
    wait_for_receiver(*node, o);
    std::string transport = transport_of(*node);
    Histogram rtt;
    std::uint64_t calls = 0;
    double seconds = 0;
    switch (parse_codec(o.codec)) {
        case CodecId::msgpack:
            call_loop<MsgpackCodec>(*node, o, rtt, calls, seconds);
            break;
        case CodecId::cereal:
            call_loop<CerealCodec>(*node, o, rtt, calls, seconds);
            break;
        default:
            call_loop<RawCodec>(*node, o, rtt, calls, seconds);
            break;
    }
    transport = transport_of(*node);  // a Unix link may have moved to shared memory since
    report(*node, o, calls, transport);
    const double rate = seconds > 0 ? static_cast<double>(calls) / seconds : 0;
    if (o.machine) {
        std::printf(
            "speedtest-result mode=service transport=%s size=%zu codec=%s sent=%llu received=%llu dropped=0 "
            "seconds=%.6f msgs_per_s=%.1f mb_per_s=%.3f lat_mean_us=%.2f lat_p50_us=%.2f lat_p99_us=%.2f\n",
            transport.c_str(), o.message_size, o.codec.c_str(), static_cast<unsigned long long>(calls),
            static_cast<unsigned long long>(calls), seconds, rate,
            rate * 2.0 * static_cast<double>(o.message_size) / 1e6, rtt.mean() / 1000, rtt.quantile(0.5) / 1000,
            rtt.quantile(0.99) / 1000);
    } else {
        std::printf("%llu calls of %zu B to '%s' over %s (%s) in %.3f s: %.1f calls/s\n",
                    static_cast<unsigned long long>(calls), o.message_size, echo_service(o).c_str(), transport.c_str(),
                    o.codec.c_str(), seconds, rate);
        std::printf("  round trip: %s\n", latency_text(rtt, true).c_str());
    }
    std::fflush(stdout);
    node->stop();
}

// --- run --------------------------------------------------------------------------------------------

/// A child `meshy` whose stdout is collected.
struct Child {
    pid_t pid = -1;
    int out = -1;
    std::string output;
};

Child spawn_self(const std::vector<std::string>& args) {
    int fds[2];
    if (::pipe(fds) != 0) {
        throw CliError("pipe failed", exit_failure);
    }
    posix_spawn_file_actions_t actions;
    posix_spawn_file_actions_init(&actions);
    posix_spawn_file_actions_adddup2(&actions, fds[1], STDOUT_FILENO);
    posix_spawn_file_actions_addclose(&actions, fds[0]);
    posix_spawn_file_actions_addclose(&actions, fds[1]);
    std::vector<std::string> argv_text{"meshy"};
    argv_text.insert(argv_text.end(), args.begin(), args.end());
    std::vector<char*> argv;
    for (auto& a : argv_text) {
        argv.push_back(a.data());
    }
    argv.push_back(nullptr);
    Child child;
    const int rc = posix_spawn(&child.pid, "/proc/self/exe", &actions, nullptr, argv.data(), environ);
    posix_spawn_file_actions_destroy(&actions);
    ::close(fds[1]);
    if (rc != 0) {
        ::close(fds[0]);
        throw CliError("cannot start /proc/self/exe: " + std::string(std::strerror(rc)), exit_failure);
    }
    child.out = fds[0];
    return child;
}

/// Reads the child's output to its end and reaps it. @returns its exit code (-1: killed).
int finish(Child& child) {
    char chunk[4096];
    for (;;) {
        const auto n = ::read(child.out, chunk, sizeof chunk);
        if (n <= 0) {
            if (n < 0 && errno == EINTR) {
                continue;
            }
            break;
        }
        child.output.append(chunk, static_cast<std::size_t>(n));
    }
    ::close(child.out);
    int status = 0;
    while (::waitpid(child.pid, &status, 0) < 0 && errno == EINTR) {
    }
    return WIFEXITED(status) ? WEXITSTATUS(status) : -1;
}

std::map<std::string, std::string> parse_result(const std::string& output) {
    std::map<std::string, std::string> fields;
    std::istringstream lines(output);
    std::string line;
    while (std::getline(lines, line)) {
        if (line.rfind("speedtest-result ", 0) != 0) {
            continue;
        }
        std::istringstream words(line.substr(17));
        std::string word;
        while (words >> word) {
            if (auto eq = word.find('='); eq != std::string::npos) {
                fields[word.substr(0, eq)] = word.substr(eq + 1);
            }
        }
    }
    return fields;
}

std::string hardware() {
    std::ifstream cpuinfo("/proc/cpuinfo");
    std::string line, model;
    while (std::getline(cpuinfo, line)) {
        if (line.rfind("model name", 0) == 0 || (model.empty() && line.rfind("Model", 0) == 0)) {
            if (auto colon = line.find(':'); colon != std::string::npos) {
                model = line.substr(colon + 2);
                break;
            }
        }
    }
    if (model.empty()) {
        model = "unknown CPU";
    }
    return std::to_string(std::thread::hardware_concurrency()) + "x " + model;
}

std::string size_text(std::size_t size) {
    if (size >= 1024 * 1024 && size % (1024 * 1024) == 0) {
        return std::to_string(size / (1024 * 1024)) + " MB";
    }
    if (size >= 1024 && size % 1024 == 0) {
        return std::to_string(size / 1024) + " kB";
    }
    return std::to_string(size) + " B";
}

/// "4,123,456": counts with thousands separators.
std::string grouped(const std::string& digits) {
    std::string out;
    const std::size_t n = digits.size();
    for (std::size_t i = 0; i < n; ++i) {
        out += digits[i];
        if (std::isdigit(static_cast<unsigned char>(digits[i])) && n - i - 1 > 0 && (n - i - 1) % 3 == 0) {
            out += ',';
        }
    }
    return out;
}

/// "412.3k", "1.25M": a rate in k/M units, so the column stays narrow.
std::string scaled(const std::string& number) {
    double v = 0;
    try {
        v = std::stod(number);
    } catch (const std::exception&) {
        return number;
    }
    if (v >= 1e6) {
        return fmt(v / 1e6, 2) + "M";
    }
    if (v >= 1e4) {
        return fmt(v / 1e3, 1) + "k";
    }
    return fmt(v, 1);
}

/// "12.3": one decimal, or the text as it was ("n/a").
std::string decimal1(const std::string& number) {
    try {
        return fmt(std::stod(number), 1);
    } catch (const std::exception&) {
        return number;
    }
}

/// The table of `run`: hardware once above it, columns that fit 100 characters, aligned, still a
/// Markdown table to paste.
void print_table(std::vector<std::map<std::string, std::string>>& rows, const SpeedOptions& o) {
    std::printf("meshy speedtest on %s: %s codec, %.1f s per row\n", hardware().c_str(), o.codec.c_str(), o.run_time);
    std::printf(
        "Latency is one-way for topics and a round trip for services. At 0 B an unpaced sender keeps the\n"
        "socket buffers full, so topic latency there is queueing behind earlier messages, not the cost of\n"
        "one message (pace it with --sleep-time to see that). sent = received + dropped.\n\n");
    std::vector<std::vector<std::string>> table{
        {"mode", "via", "size", "msgs/s", "MB/s", "mean us", "p50 us", "p99 us", "received", "dropped"}};
    for (auto& r : rows) {
        table.push_back({r["mode"], r["transport"], size_text(std::stoull(r["size"])), scaled(r["msgs_per_s"]),
                         decimal1(r["mb_per_s"]), decimal1(r["lat_mean_us"]), decimal1(r["lat_p50_us"]),
                         decimal1(r["lat_p99_us"]), grouped(r["received"]), grouped(r["dropped"])});
    }
    std::vector<std::size_t> width(table.front().size(), 0);
    for (const auto& row : table) {
        for (std::size_t i = 0; i < row.size(); ++i) {
            width[i] = std::max(width[i], row[i].size());
        }
    }
    const auto print_row = [&](const std::vector<std::string>& row) {
        std::string line = "|";
        for (std::size_t i = 0; i < row.size(); ++i) {
            // Text left, numbers right, as a reader scans them.
            const std::string pad(width[i] - row[i].size(), ' ');
            line += " " + (i < 2 ? row[i] + pad : pad + row[i]) + " |";
        }
        std::printf("%s\n", line.c_str());
    };
    print_row(table.front());
    std::string rule = "|";
    for (std::size_t i = 0; i < width.size(); ++i) {
        rule += (i < 2 ? ":" : "-") + std::string(width[i], '-') + (i < 2 ? "-|" : ":|");
    }
    std::printf("%s\n", rule.c_str());
    for (std::size_t i = 1; i < table.size(); ++i) {
        print_row(table[i]);
    }
}

void run_all(const GlobalOptions& globals, const SpeedOptions& o) {
    std::vector<std::string> transports;
    // Shared memory rows unless it is off: --disable-shm, or MESHY_SHM=0 (as for a node).
    const char* shm_env = std::getenv("MESHY_SHM");
    const bool shm_allowed = o.shm || !(shm_env && *shm_env && std::string_view(shm_env) == "0");
    if (!o.disable_unix && !o.disable_shm && shm_allowed) {
        transports.emplace_back("shm");
    }
    if (!o.disable_unix) {
        transports.emplace_back("unix");
    }
    if (!o.disable_tcp) {
        transports.emplace_back("tcp");
    }
    if (transports.empty()) {
        throw CliError("--disable-unix and --disable-tcp leave nothing to measure", exit_usage);
    }
    const std::string base_domain =
        (globals.domain_id.empty() ? std::string("speedtest") : globals.domain_id) + "-" + std::to_string(::getpid());
    std::vector<std::map<std::string, std::string>> rows;
    int index = 0;
    for (const char* mode : {"topic", "service"}) {
        for (const auto& transport : transports) {
            for (const std::size_t size : o.sizes) {
                const std::string domain = base_domain + "-" + std::to_string(index++);
                std::vector<std::string> common{"--message-size", std::to_string(size),
                                                "--run-time",     fmt(o.run_time, 3),
                                                "--topic",        o.topic,
                                                "--codec",        o.codec,
                                                "--timeout",      fmt(o.timeout, 0),
                                                "--machine"};
                common.emplace_back(transport == "tcp" ? "--disable-unix" : "--disable-tcp");
                common.emplace_back(transport == "shm" ? "--shm" : "--disable-shm");
                if (o.sleep_time > 0) {
                    common.insert(common.end(), {"--sleep-time", fmt(o.sleep_time, 6)});
                }
                if (o.no_backpressure) {
                    common.emplace_back("--no-backpressure");
                }
                std::vector<std::string> head{"--domain-id", domain};
                if (!globals.log_level.empty()) {
                    head.insert(head.end(), {"--log", globals.log_level});
                }
                auto args_for = [&](const char* what) {
                    std::vector<std::string> a = head;
                    a.insert(a.end(), {"speedtest", what});
                    a.insert(a.end(), common.begin(), common.end());
                    return a;
                };
                std::vector<std::string> recv_args = args_for("recv");
                recv_args.emplace_back("--synced-clocks");
                Child receiver = spawn_self(recv_args);
                Child sender = spawn_self(args_for(std::string(mode) == "topic" ? "send" : "call"));
                const int sender_rc = finish(sender);
                const int receiver_rc = finish(receiver);
                if (sender_rc != 0 || receiver_rc != 0) {
                    throw CliError(std::string(mode) + " " + transport + " " + size_text(size) + ": sender exited " +
                                       std::to_string(sender_rc) + ", receiver exited " + std::to_string(receiver_rc),
                                   exit_failure);
                }
                auto fields = parse_result(std::string(mode) == "topic" ? receiver.output : sender.output);
                if (fields.empty()) {
                    throw CliError(std::string(mode) + " " + transport + " " + size_text(size) + ": no result",
                                   exit_failure);
                }
                fields["mode"] = mode;
                fields["expected_transport"] = transport;
                rows.push_back(std::move(fields));
                if (!o.machine) {
                    std::fprintf(stderr, "meshy speedtest: %s over %s, %s done\n", mode, transport.c_str(),
                                 size_text(size).c_str());
                }
            }
        }
    }
    print_table(rows, o);
    std::fflush(stdout);
}

void add_common(CLI::App* cmd, SpeedOptions& o) {
    cmd->add_option("--message-size", o.message_size, "Payload bytes per message (default 0)");
    cmd->add_option("--run-time", o.run_time, "Seconds to send (default 10)")->check(CLI::Range(0.0, 86400.0));
    cmd->add_option("--sleep-time", o.sleep_time, "Seconds to sleep after each message (default 0)")
        ->check(CLI::Range(0.0, 60.0));
    cmd->add_option("--topic", o.topic, "Topic (default speedtest); services <topic>/report and <topic>/echo");
    cmd->add_option("--codec", o.codec, "msgpack, raw or cereal (default msgpack)")
        ->check(CLI::IsMember({"msgpack", "raw", "cereal"}));
    cmd->add_flag("--disable-unix", o.disable_unix, "Do not use Unix sockets");
    cmd->add_flag("--disable-tcp", o.disable_tcp, "Do not use TCP");
    cmd->add_flag("--disable-shm", o.disable_shm, "Do not upgrade Unix-socket links to shared memory");
    cmd->add_flag("--shm", o.shm,
                  "Upgrade Unix-socket links to shared memory (NodeOptions::allow_shm; the default unless "
                  "MESHY_SHM=0); run: shm rows even with MESHY_SHM=0")
        ->excludes("--disable-shm");
    cmd->add_flag("--enable-load-balancer", o.enable_load_balancer,
                  "Round-robin among same-name receivers (default: every receiver gets every message)");
    cmd->add_flag("--no-backpressure", o.no_backpressure,
                  "Let the sender outrun the receiver: a full outbox drops its oldest messages (reported)");
    cmd->add_option("--timeout", o.timeout, "Seconds to wait for the other side (default 60)")
        ->check(CLI::Range(0.0, 86400.0));
    cmd->add_flag("--machine", o.machine, "Print one 'speedtest-result key=value...' line");
}

}  // namespace

void setup_speedtest(CLI::App& app, const GlobalOptions& globals) {
    auto* speed =
        app.add_subcommand("speedtest", "Measure throughput and latency: recv, send, call, run")->require_subcommand(1);
    auto o = std::make_shared<SpeedOptions>();

    auto* recv = speed->add_subcommand("recv", "Receive, count and report (also serves <topic>/echo)");
    add_common(recv, *o);
    recv->add_flag("--synced-clocks", o->synced_clocks,
                   "The sender's clock is synchronised with this one (same host, chrony, PTP): report latency");
    recv->callback([o, &globals] { run_recv(globals, *o); });

    auto* send = speed->add_subcommand("send", "Send messages as fast as allowed for --run-time seconds");
    add_common(send, *o);
    send->callback([o, &globals] { run_send(globals, *o); });

    auto* call = speed->add_subcommand("call", "Call <topic>/echo in a loop; report round-trip latency");
    add_common(call, *o);
    call->callback([o, &globals] { run_call(globals, *o); });

    auto* run =
        speed->add_subcommand("run", "Start a receiver and a sender for each size and transport; print a table");
    add_common(run, *o);
    run->add_option("--sizes", o->sizes, "Message sizes (default 0 1024 1048576)")->expected(1, 16);
    run->callback([o, &globals] { run_all(globals, *o); });
}

}  // namespace meshy::cli
