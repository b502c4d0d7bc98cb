// meshy_test_node: one mesh node per process for the integration tests, driven by a subcommand and
// reporting through machine-readable lines on stdout (one record per line, flushed at once):
//
//   READY id=<uuid> name=<name> backend=<avahi|local> tcp=<port|0> unix=<path|->
//   RECV <topic> <seq> <text>            one per message received (listen; send --reply-topic)
//   COUNT <n>                            listen --count-only, every --report-every messages
//   FINAL total=<n> senders=<s> violations=<v> missing=<m>, then ORDER_OK <n> | ORDER_BAD <n>
//   LISTENERS <n> [<id>:<transport>...]  send: whenever the set of nodes listening to the topic changes
//   SENT <n>                             send: after the last message
//   REPLIES <n>                          send --until-replies: replies received
//   CALLED <service>                     provide: a request arrived
//   RESULT <value> | ERROR <errc-name> <what>   call (exit 0 / 1); any failure prints ERROR, exit 1
//   NODE id=.. name=.. transport=.. topics=a,b services=c,d  /  NODES_END count=<n>   (nodes)
//
// Messages on topics are (std::int64_t seq, std::string text). listen, provide and probe run the
// node on an io_context with the coroutine API; send, call and nodes run it on its own thread with
// the blocking API, so both halves of the public API are exercised. Every node binds 127.0.0.1.
#include <signal.h>
#include <time.h>

#include <algorithm>
#include <asio/co_spawn.hpp>
#include <asio/detached.hpp>
#include <asio/io_context.hpp>
#include <asio/signal_set.hpp>
#include <asio/steady_timer.hpp>
#include <asio/this_coro.hpp>
#include <asio/use_awaitable.hpp>
#include <atomic>
#include <chrono>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <exception>
#include <map>
#include <meshy/meshy.hpp>
#include <mutex>
#include <optional>
#include <set>
#include <stdexcept>
#include <string>
#include <string_view>
#include <thread>
#include <vector>

namespace {

using namespace std::chrono_literals;
using Millis = std::chrono::milliseconds;

// ---- output ------------------------------------------------------------------------------------

std::mutex out_mutex;

// One record per line, flushed at once: the harness reads a pipe, where stdout is block-buffered.
void emit(const std::string& line) {
    std::lock_guard lock(out_mutex);
    std::fwrite(line.data(), 1, line.size(), stdout);
    std::fputc('\n', stdout);
    std::fflush(stdout);
}

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

struct Args {
    std::string command;
    std::vector<std::string> positional;
    meshy::NodeOptions options;
    Millis wait_timeout{15000};
    // listen
    std::string echo_topic;
    bool count_only = false;
    std::int64_t report_every = 1000;
    // send
    std::size_t wait_listeners = 1;
    Millis interval{0};
    std::int64_t burst = 1;
    std::string text = "msg";
    bool stay = false;
    bool latched = false;  // send: advertise the topic latched first
    std::string reply_topic;
    std::int64_t until_replies = 0;
    // call
    Millis call_timeout{0};
    std::optional<std::string> wait_provider;  // unset: the called service; "" (--no-wait): none
    // nodes
    std::size_t expect = 0;
    bool with_topics = false;
    // blobs
    bool blob_stream = false;
};

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
sigset_t stop_signals() {
    sigset_t set;
    sigemptyset(&set);
    sigaddset(&set, SIGINT);
    sigaddset(&set, SIGTERM);
    return set;
}

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

/// Tracks per-sender order of (seq) streams: a seq not above the sender's last is a violation,
/// a jump over seqs counts the skipped ones as missing.
struct OrderTracker {
    std::map<std::string, std::int64_t, std::less<>> last;
    std::int64_t total = 0, violations = 0, missing = 0;

    void add(std::string_view sender, std::int64_t seq) {
        ++total;
        auto it = last.find(sender);
        const std::int64_t prev = it == last.end() ? -1 : it->second;
        if (seq <= prev) {
            ++violations;
        } else {
            missing += seq - prev - 1;
        }
        if (it == last.end()) {
            last.emplace(std::string(sender), seq);
        } else if (seq > prev) {
            it->second = seq;
        }
    }
    void emit_final() const {
        emit("FINAL total=" + std::to_string(total) + " senders=" + std::to_string(last.size()) +
             " violations=" + std::to_string(violations) + " missing=" + std::to_string(missing));
        emit((violations == 0 ? "ORDER_OK " : "ORDER_BAD ") + std::to_string(total));
    }
};

// ---- listen (io_context + coroutines) ----------------------------------------------------------

int cmd_listen(const Args& a) {
    if (a.positional.size() != 1) {
        usage("listen TOPIC");
    }
    const std::string topic = a.positional[0];
    asio::io_context io;
    meshy::Node node(io.get_executor(), a.options);
    OrderTracker order;  // only touched on the io_context's one thread
    auto finish = [&] {
        order.emit_final();
        node.stop();
        io.stop();
    };
    auto counted = [&](std::string_view sender, std::int64_t seq) {
        order.add(sender, seq);
        if (a.count_only && order.total % a.report_every == 0) {
            emit("COUNT " + std::to_string(order.total));
        }
    };
    asio::co_spawn(
        io,
        [&]() -> asio::awaitable<void> {
            if (a.count_only) {
                // Raw, to see the sender's id: order is per sender.
                node.listen_raw(topic, [&](const meshy::RawMessage& m) {
                    const auto message = meshy::MsgpackCodec::decode<std::int64_t, std::string>(m.payload);
                    counted(m.sender_id, std::get<0>(message));
                });
            } else {
                co_await node.listen(topic, [&](std::int64_t seq, const std::string& text) -> asio::awaitable<void> {
                    emit("RECV " + topic + " " + std::to_string(seq) + " " + text);
                    if (!a.echo_topic.empty()) {
                        co_await node.send(a.echo_topic, seq, text);
                    }
                    counted(text, seq);
                });
            }
            emit_ready(node);
        },
        [](std::exception_ptr e) {
            if (e) {
                std::rethrow_exception(e);
            }
        });
    asio::signal_set signals(io, SIGINT, SIGTERM);
    signals.async_wait([&](std::error_code ec, int) {
        if (!ec) {
            finish();
        }
    });
    io.run();
    return 0;
}

// ---- provide (io_context + coroutines) ---------------------------------------------------------

/// n bytes of a pattern that shows a lost, repeated or reordered piece.
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

int cmd_provide(const Args& a) {
    asio::io_context io;
    meshy::Node node(io.get_executor(), a.options);
    asio::co_spawn(
        io,
        [&]() -> asio::awaitable<void> {
            co_await node.add_service("multiply", [](std::int64_t x, std::int64_t y) {
                emit("CALLED multiply");
                return x * y;
            });
            co_await node.add_service("fail", []() -> std::int64_t {
                emit("CALLED fail");
                throw std::runtime_error("boom from provider");
            });
            // Large requests and replies (the `blobs` command): a blob's sum, and a blob of n bytes.
            co_await node.add_service("blob_sum", [](std::string blob) { return blob_sum(blob); });
            co_await node.add_service("blob", [](std::int64_t n) { return make_blob(n); });
            // Large messages (`blobs --stream`): each checked whole.
            co_await node.listen("blob_stream", [](std::int64_t seq, const std::string& blob) {
                emit(std::string(blob == make_blob(static_cast<std::int64_t>(blob.size())) ? "BLOB STREAM OK "
                                                                                           : "BLOB STREAM BAD ") +
                     std::to_string(seq));
            });
            co_await node.add_service("slow", [](std::int64_t ms) -> asio::awaitable<std::int64_t> {
                emit("CALLED slow");
                asio::steady_timer timer(co_await asio::this_coro::executor, Millis(ms));
                co_await timer.async_wait(asio::use_awaitable);
                co_return ms;
            });
            emit_ready(node);
        },
        [](std::exception_ptr e) {
            if (e) {
                std::rethrow_exception(e);
            }
        });
    asio::signal_set signals(io, SIGINT, SIGTERM);
    signals.async_wait([&](std::error_code ec, int) {
        if (!ec) {
            node.stop();
            io.stop();
        }
    });
    io.run();
    return 0;
}

// ---- probe -------------------------------------------------------------------------------------

int cmd_probe(const Args& a) {
    asio::io_context io;
    meshy::Node node(io.get_executor(), a.options);
    emit_ready(node);
    node.stop();
    return 0;
}

// ---- send (own thread + blocking API) ----------------------------------------------------------

/// Prints LISTENERS whenever the set of nodes listening to `topic` (or how they are reached) changes.
class ListenerMonitor {
public:
    ListenerMonitor(const meshy::Node& node, std::string topic) : node_(node), topic_(std::move(topic)) {
        thread_ = std::thread([this] { run(); });
    }
    ~ListenerMonitor() {
        done_ = true;
        thread_.join();
    }
    std::size_t count() const { return count_.load(); }

private:
    void run() {
        std::string shown;
        bool first = true;
        while (!done_) {
            std::set<std::string> now;
            std::size_t reachable = 0;  // listeners whose link is up: a node that stopped a moment
                                        // ago may still be advertised, but cannot be linked to
            for (const auto& n : node_.nodes()) {
                if (!n.is_self && std::find(n.topics.begin(), n.topics.end(), topic_) != n.topics.end()) {
                    now.insert(n.id + ":" + (n.transport.empty() ? "none" : n.transport));
                    reachable += n.transport.empty() ? 0 : 1;
                }
            }
            std::string line = "LISTENERS " + std::to_string(now.size());
            for (const auto& s : now) {
                line += " " + s;
            }
            if (first || line != shown) {
                emit(line);
                shown = line;
                first = false;
            }
            count_ = reachable;                 // after the line: a listener is reported before anything is sent to it
            std::this_thread::sleep_for(10ms);  // a poll period, not a wait for an outcome
        }
    }
    const meshy::Node& node_;
    std::string topic_;
    std::atomic<bool> done_{false};
    std::atomic<std::size_t> count_{0};
    std::thread thread_;
};

int cmd_send(const Args& a) {
    if (a.positional.size() != 2) {
        usage("send TOPIC COUNT");
    }
    const std::string topic = a.positional[0];
    const std::int64_t count = parse_int(a.positional[1], "COUNT");
    block_stop_signals();
    meshy::Node node(a.options);
    std::atomic<std::int64_t> replies{0};
    if (!a.reply_topic.empty()) {
        node.listen_blocking(a.reply_topic, [&](std::int64_t seq, const std::string& text) {
            emit("RECV " + a.reply_topic + " " + std::to_string(seq) + " " + text);
            ++replies;
        });
    }
    // Said before anything is sent: the topic's listeners are dialed as they appear.
    node.advertise(topic, {.latched = a.latched});
    ListenerMonitor monitor(node, topic);
    emit_ready(node);

    // Wait (bounded) until enough distinct nodes listen, so a burst is not sent into a half-known mesh.
    const auto wait_deadline = std::chrono::steady_clock::now() + a.wait_timeout;
    bool stopped = false;
    while (monitor.count() < a.wait_listeners) {
        if (std::chrono::steady_clock::now() >= wait_deadline) {
            emit("ERROR timeout fewer than " + std::to_string(a.wait_listeners) + " listeners on '" + topic +
                 "' after " + std::to_string(a.wait_timeout.count()) + " ms");
            return 1;
        }
        if (stop_requested(10ms)) {
            stopped = true;
            break;
        }
    }
    std::int64_t seq = 0;
    const auto reply_deadline = std::chrono::steady_clock::now() + a.wait_timeout;
    auto more = [&] {
        if (a.until_replies > 0) {
            return replies.load() < a.until_replies && std::chrono::steady_clock::now() < reply_deadline &&
                   (count == 0 || seq < count);
        }
        return count == 0 || seq < count;
    };
    while (!stopped && more()) {
        for (std::int64_t i = 0; i < a.burst && (count == 0 || seq < count); ++i) {
            node.send_blocking(topic, seq, a.text);
            ++seq;
        }
        if (a.interval.count() > 0 && stop_requested(a.interval)) {
            stopped = true;
        }
    }
    emit("SENT " + std::to_string(seq));
    if (a.until_replies > 0) {
        emit("REPLIES " + std::to_string(replies.load()));
    }
    while (a.stay && !stopped) {
        stopped = stop_requested(1000ms);
    }
    node.stop();
    return a.until_replies > 0 && replies.load() < a.until_replies ? 1 : 0;
}

// ---- call (own thread + blocking API) ----------------------------------------------------------

int cmd_call(const Args& a) {
    if (a.positional.empty() || a.positional.size() > 3) {
        usage("call SERVICE [INT [INT]]");
    }
    const std::string service = a.positional[0];
    std::vector<std::int64_t> ints;
    for (std::size_t i = 1; i < a.positional.size(); ++i) {
        ints.push_back(parse_int(a.positional[i], "argument"));
    }
    meshy::Node node(a.options);
    const std::string wait_for = a.wait_provider.value_or(service);
    if (!wait_for.empty()) {
        node.wait_for_service_provider_blocking(wait_for, a.wait_timeout);
    }
    const meshy::CallOptions options{.timeout = a.call_timeout};
    std::int64_t result = 0;
    switch (ints.size()) {
        case 0:
            result = node.call_blocking<std::int64_t>(options, service);
            break;
        case 1:
            result = node.call_blocking<std::int64_t>(options, service, ints[0]);
            break;
        default:
            result = node.call_blocking<std::int64_t>(options, service, ints[0], ints[1]);
            break;
    }
    emit("RESULT " + std::to_string(result));
    node.stop();
    return 0;
}

// blobs BYTES COUNT: COUNT calls of each way with BYTES: a blob sent (blob_sum) and one received
// (blob), each checked; prints BLOBS OK COUNT, or BLOBS BAD and what differed.
int cmd_blobs(const Args& a) {
    if (a.positional.size() != 2) {
        usage("blobs BYTES COUNT");
    }
    const auto bytes = parse_int(a.positional[0], "BYTES");
    const auto count = parse_int(a.positional[1], "COUNT");
    meshy::Node node(a.options);
    node.wait_for_service_provider_blocking("blob", a.wait_timeout);
    const meshy::CallOptions options{.timeout = a.call_timeout};
    const std::string blob = make_blob(bytes);
    for (std::int64_t i = 0; i < count; ++i) {
        if (const auto sum = node.call_blocking<std::int64_t>(options, "blob_sum", blob); sum != blob_sum(blob)) {
            emit("BLOBS BAD sum of call " + std::to_string(i));
            return 1;
        }
        if (node.call_blocking<std::string>(options, "blob", bytes) != blob) {
            emit("BLOBS BAD reply of call " + std::to_string(i));
            return 1;
        }
    }
    emit("BLOBS OK " + std::to_string(count));
    if (a.blob_stream) {
        ListenerMonitor monitor(node, "blob_stream");
        const auto deadline = std::chrono::steady_clock::now() + a.wait_timeout;
        while (monitor.count() < 1) {
            if (std::chrono::steady_clock::now() >= deadline) {
                emit("ERROR timeout no listener on 'blob_stream'");
                return 1;
            }
            std::this_thread::sleep_for(10ms);  // polls the condition, bounded by the deadline
        }
        for (std::int64_t i = 0; i < count; ++i) {
            node.send_blocking("blob_stream", i, blob);
        }
        emit("BLOBS SENT " + std::to_string(count));
    }
    node.stop();
    return 0;
}

// ---- nodes (own thread + blocking API) ---------------------------------------------------------

std::string joined(const std::vector<std::string>& v) {
    std::string out;
    for (const auto& s : v) {
        out += (out.empty() ? "" : ",") + s;
    }
    return out.empty() ? "-" : out;
}

int cmd_nodes(const Args& a) {
    block_stop_signals();
    meshy::Node node(a.options);
    emit_ready(node);
    // A peer counts once it is known (links are made only when there is something to send, so
    // `transport` stays empty here). Its advert may first be seen without the topics it listens
    // on: a node coalesces advert updates, so its first listen() is published a little later.
    auto known = [&] {
        std::size_t n = 0;
        for (const auto& info : node.nodes()) {
            n += !info.is_self && (!a.with_topics || !info.topics.empty()) ? 1 : 0;
        }
        return n;
    };
    const auto deadline = std::chrono::steady_clock::now() + a.wait_timeout;
    bool stopped = false;
    while (known() < a.expect && std::chrono::steady_clock::now() < deadline) {
        if (stop_requested(10ms)) {
            stopped = true;
            break;
        }
    }
    const auto all = node.nodes();
    const bool enough = known() >= a.expect;
    for (const auto& n : all) {
        emit("NODE id=" + n.id + " name=" + n.name + " self=" + (n.is_self ? "1" : "0") +
             " transport=" + (n.transport.empty() ? "none" : n.transport) + " topics=" + joined(n.topics) +
             " services=" + joined(n.services));
    }
    emit("NODES_END count=" + std::to_string(all.size()));
    while (a.stay && !stopped && !stop_requested(100ms)) {  // stays visible to the others (bench/static_peers.sh)
    }
    node.stop();
    return enough ? 0 : 1;
}

}  // namespace

int main(int argc, char** argv) {
    const Args args = parse(argc, argv);
    try {
        if (args.command == "listen") {
            return cmd_listen(args);
        }
        if (args.command == "send") {
            return cmd_send(args);
        }
        if (args.command == "provide") {
            return cmd_provide(args);
        }
        if (args.command == "call") {
            return cmd_call(args);
        }
        if (args.command == "blobs") {
            return cmd_blobs(args);
        }
        if (args.command == "nodes") {
            return cmd_nodes(args);
        }
        if (args.command == "probe") {
            return cmd_probe(args);
        }
        usage("unknown command '" + args.command + "'");
    } catch (const std::exception& e) {
        emit(error_line(e));
        return 1;
    }
}
