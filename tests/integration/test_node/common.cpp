// meshy_test_node: output records, arguments and the helpers every role shares.
#include <signal.h>
#include <time.h>

#include <cstdio>
#include <cstdlib>
#include <mutex>
#include <string>

#include "test_node.hpp"

namespace test_node {

// ---- output ------------------------------------------------------------------------------------

namespace {
std::mutex out_mutex;
}  // namespace

// One record per line, flushed at once: the harness reads a pipe, where stdout is block-buffered.
void emit(const std::string& line) {
    std::lock_guard lock(out_mutex);
    std::fwrite(line.data(), 1, line.size(), stdout);
    std::fputc('\n', stdout);
    std::fflush(stdout);
}

namespace {

const char* errc_name(meshy::errc e) {
    switch (e) {
        case meshy::errc::no_provider:
            return "no_provider";
        case meshy::errc::timeout:
            return "timeout";
        case meshy::errc::connection_lost:
            return "connection_lost";
        case meshy::errc::remote_error:
            return "remote_error";
        case meshy::errc::codec_mismatch:
            return "codec_mismatch";
        case meshy::errc::decode_error:
            return "decode_error";
        case meshy::errc::protocol_error:
            return "protocol_error";
        case meshy::errc::frame_too_large:
            return "frame_too_large";
        case meshy::errc::domain_mismatch:
            return "domain_mismatch";
        case meshy::errc::version_mismatch:
            return "version_mismatch";
        case meshy::errc::invalid_argument:
            return "invalid_argument";
        case meshy::errc::not_running:
            return "not_running";
        case meshy::errc::would_deadlock:
            return "would_deadlock";
        case meshy::errc::discovery_unavailable:
            return "discovery_unavailable";
        case meshy::errc::io_error:
            return "io_error";
        case meshy::errc::pool_exhausted:
            return "pool_exhausted";
        case meshy::errc::loan_spent:
            return "loan_spent";
    }
    return "unknown";
}

}  // namespace

std::string error_line(const std::exception& e) {
    if (const auto* me = dynamic_cast<const meshy::Error*>(&e)) {
        if (me->code().category() == meshy::error_category()) {
            return std::string("ERROR ") + errc_name(me->code_value()) + " " + me->what();
        }
    }
    return std::string("ERROR exception ") + e.what();
}

// ---- arguments ---------------------------------------------------------------------------------

[[noreturn]] void usage(const std::string& problem) {
    std::fprintf(
        stderr,
        "error: %s\n"
        "usage: meshy_test_node COMMAND [ARGS] [OPTIONS]\n"
        "  listen TOPIC [--echo TOPIC] [--count-only] [--report-every N]\n"
        "  send TOPIC COUNT [--wait-listeners N] [--interval-ms I] [--burst B] [--text T] [--stay]\n"
        "                   [--latched]\n"
        "                   [--reply-topic R --until-replies K]   (COUNT 0: until stopped)\n"
        "  provide\n"
        "  call SERVICE [INT...] [--timeout-ms T] [--wait-provider S | --no-wait]\n"
        "  blobs BYTES COUNT [--stream]   (calls to a provider's blob services, checked; --stream: then\n"
        "                   COUNT blobs on topic blob_stream, which the provider checks)\n"
        "  nodes [--expect N] [--with-topics] [--stay]   (--with-topics: a peer counts once its advert lists topics)\n"
        "  probe\n"
        "common: [--name N] [--domain-id D] [--listen-host H] [--listen-port P] [--peer tcp/H:P]... "
        "[--no-unix] [--no-shm] [--no-tcp] [--outbox-wait]\n"
        "        [--log LEVEL] [--receive-budget BYTES] [--max-inbound N] [--wait-timeout-ms W]\n",
        problem.c_str());
    std::exit(2);
}

std::int64_t parse_int(const std::string& text, const char* what) {
    try {
        std::size_t used = 0;
        const long long v = std::stoll(text, &used);
        if (used == text.size()) {
            return v;
        }
    } catch (const std::exception&) {
    }
    usage(std::string(what) + ": not an integer: '" + text + "'");
}

Args parse(int argc, char** argv) {
    if (argc < 2) {
        usage("missing command");
    }
    Args a;
    a.command = argv[1];
    a.options.name = "test-" + a.command;
    a.options.listen_host = "127.0.0.1";  // loopback only, always
    for (int i = 2; i < argc; ++i) {
        const std::string arg = argv[i];
        auto value = [&]() -> std::string {
            if (i + 1 >= argc) {
                usage(arg + " needs a value");
            }
            return argv[++i];
        };
        if (arg == "--name") {
            a.options.name = value();
        } else if (arg == "--domain-id") {
            a.options.domain_id = value();
        } else if (arg == "--listen-host") {
            a.options.listen_host = value();
        } else if (arg == "--listen-port") {
            a.options.listen_port = static_cast<std::uint16_t>(parse_int(value(), "--listen-port"));
        } else if (arg == "--peer") {
            a.options.peers.push_back(value());
        } else if (arg == "--no-unix") {
            a.options.allow_unix = false;
        } else if (arg == "--no-shm") {
            a.options.allow_shm = false;
        } else if (arg == "--no-tcp") {
            a.options.allow_tcp = false;
        } else if (arg == "--outbox-wait") {
            a.options.outbox_full = meshy::OutboxFull::wait;
        } else if (arg == "--log") {
            meshy::LogLevel level{};
            const std::string text = value();
            if (!meshy::parse_log_level(text, level)) {
                usage("unknown log level '" + text + "'");
            }
            meshy::set_log_level(level);
        } else if (arg == "--receive-budget") {
            a.options.receive_budget = static_cast<std::size_t>(parse_int(value(), "--receive-budget"));
        } else if (arg == "--max-inbound") {
            a.options.max_inbound_connections = static_cast<std::size_t>(parse_int(value(), "--max-inbound"));
        } else if (arg == "--wait-timeout-ms") {
            a.wait_timeout = Millis(parse_int(value(), "--wait-timeout-ms"));
        } else if (arg == "--echo") {
            a.echo_topic = value();
        } else if (arg == "--count-only") {
            a.count_only = true;
        } else if (arg == "--report-every") {
            a.report_every = parse_int(value(), "--report-every");
        } else if (arg == "--wait-listeners") {
            a.wait_listeners = static_cast<std::size_t>(parse_int(value(), "--wait-listeners"));
        } else if (arg == "--interval-ms") {
            a.interval = Millis(parse_int(value(), "--interval-ms"));
        } else if (arg == "--burst") {
            a.burst = parse_int(value(), "--burst");
        } else if (arg == "--text") {
            a.text = value();
        } else if (arg == "--stay") {
            a.stay = true;
        } else if (arg == "--latched") {
            a.latched = true;
        } else if (arg == "--stream") {
            a.blob_stream = true;
        } else if (arg == "--reply-topic") {
            a.reply_topic = value();
        } else if (arg == "--until-replies") {
            a.until_replies = parse_int(value(), "--until-replies");
        } else if (arg == "--timeout-ms") {
            a.call_timeout = Millis(parse_int(value(), "--timeout-ms"));
        } else if (arg == "--wait-provider") {
            a.wait_provider = value();
        } else if (arg == "--no-wait") {
            a.wait_provider = std::string();
        } else if (arg == "--expect") {
            a.expect = static_cast<std::size_t>(parse_int(value(), "--expect"));
        } else if (arg == "--with-topics") {
            a.with_topics = true;
        } else if (arg.starts_with("--")) {
            usage("unknown option " + arg);
        } else {
            a.positional.push_back(arg);
        }
    }
    if (a.burst < 1 || a.report_every < 1) {
        usage("--burst and --report-every must be at least 1");
    }
    return a;
}

// ---- helpers -----------------------------------------------------------------------------------

void emit_ready(const meshy::Node& node) {
    std::string tcp = "0", unix_path = "-";
    for (const auto& n : node.nodes()) {
        if (!n.is_self) {
            continue;
        }
        if (!n.tcp_endpoint.empty()) {
            tcp = n.tcp_endpoint.substr(n.tcp_endpoint.rfind(':') + 1);
        }
        if (!n.unix_endpoint.empty()) {
            unix_path = n.unix_endpoint;
        }
    }
    emit("READY id=" + node.id() + " name=" + node.name() + " backend=" + node.discovery_backend() + " tcp=" + tcp +
         " unix=" + unix_path);
}

// Blocking-API commands handle SIGINT/SIGTERM synchronously: blocked in every thread (the node's
// threads inherit the mask), taken with sigtimedwait. That doubles as the bounded pause of a poll.
namespace {
sigset_t stop_signals() {
    sigset_t set;
    sigemptyset(&set);
    sigaddset(&set, SIGINT);
    sigaddset(&set, SIGTERM);
    return set;
}
}  // namespace

void block_stop_signals() {
    const sigset_t set = stop_signals();
    pthread_sigmask(SIG_BLOCK, &set, nullptr);
}

// Waits up to `wait` for SIGINT/SIGTERM. @returns true when one came.
bool stop_requested(Millis wait) {
    const sigset_t set = stop_signals();
    timespec ts{};
    ts.tv_sec = static_cast<time_t>(wait.count() / 1000);
    ts.tv_nsec = static_cast<long>((wait.count() % 1000) * 1000000);
    return sigtimedwait(&set, nullptr, &ts) > 0;
}

// ---- blobs -------------------------------------------------------------------------------------

std::string make_blob(std::int64_t n) {
    std::string blob(static_cast<std::size_t>(std::clamp<std::int64_t>(n, 0, 16 << 20)), '\0');
    for (std::size_t i = 0; i < blob.size(); ++i) {
        blob[i] = static_cast<char>((i * 31 + i / 251) & 0xff);
    }
    return blob;
}

std::int64_t blob_sum(const std::string& blob) {
    std::uint64_t sum = blob.size();
    for (std::size_t i = 0; i < blob.size(); ++i) {
        sum = sum * 1099511628211u + static_cast<unsigned char>(blob[i]);
    }
    return static_cast<std::int64_t>(sum >> 1);
}

}  // namespace test_node
