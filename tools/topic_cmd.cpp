// meshy topic list | echo | send | hz | bw | info
#include <CLI/CLI.hpp>
#include <algorithm>
#include <atomic>
#include <cmath>
#include <cstdio>
#include <deque>
#include <map>
#include <mutex>
#include <nlohmann/json.hpp>
#include <set>

#include "bridge/foxglove_schema.hpp"
#include "bridge/foxglove_typed.hpp"
#include "cli.hpp"
#include "msgpack_json.hpp"

namespace meshy::cli {
namespace {

using Clock = std::chrono::steady_clock;

struct TopicCommandOptions {
    bool verbose = false;
    bool types = false;
    std::vector<std::string> topics;
    std::string topic;
    std::vector<std::string> args;
    bool once = false;
    int count = 0;
    bool json = false;
    double interval = 0;
    bool no_wait = false;
    int wait_listeners = 0;
    int window = 0;
};

std::string sender_name(const std::vector<NodeInfo>& nodes, std::string_view id) {
    for (const auto& n : nodes) {
        if (n.id == id) {
            return n.name + "@" + n.host;
        }
    }
    return std::string(id.substr(0, 8));
}

/// The type a sender advertised for a topic, as echo prints it.
struct EchoType {
    std::string name;               ///< "" while untyped
    nlohmann::ordered_json schema;  ///< null without a JSON Schema
    Clock::time_point looked_up{};  ///< untyped ones are looked up again after a while
};

/// The advertised type of `topic` from `sender` in `nodes`: its JSON Schema, or the well-known
/// type's when the publisher sent only the name.
EchoType find_echo_type(const std::vector<NodeInfo>& nodes, std::string_view sender, std::string_view topic) {
    EchoType out;
    out.looked_up = Clock::now();
    for (const auto& n : nodes) {
        if (n.id != sender) {
            continue;
        }
        for (const auto& p : n.publications) {
            if (p.topic != topic || p.type.empty()) {
                continue;
            }
            std::string text = p.schema_encoding == "jsonschema" ? p.schema : std::string();
            if (text.empty()) {
                if (const auto* known = bridge::find_known_type(p.type)) {
                    text = known->schema;
                }
            }
            auto schema = nlohmann::ordered_json::parse(text, nullptr, false);
            if (!schema.is_discarded() && schema.is_object()) {
                out.name = p.type;
                out.schema = std::move(schema);
            }
        }
    }
    return out;
}

/// A typed message's field value on one line: members in their order, scalars as json_text().
std::string field_text(const nlohmann::ordered_json& v) {
    if (v.is_object() || v.is_array()) {
        std::string out = v.is_object() ? "{" : "[";
        bool first = true;
        for (const auto& [key, item] : v.items()) {
            out += first ? "" : ", ";
            first = false;
            if (v.is_object()) {
                out += key + ": ";
            }
            out += field_text(item);
        }
        return out + (v.is_object() ? "}" : "]");
    }
    return json_text(nlohmann::json(v), false);
}

std::string json_dump(const nlohmann::ordered_json& v) {
    return v.dump(-1, ' ', false, nlohmann::json::error_handler_t::replace);
}

void run_echo(const GlobalOptions& globals, const TopicCommandOptions& o) {
    auto node = make_node(globals, "echo");
    const int limit = o.once ? 1 : o.count;
    std::mutex mutex;  // one message printed at a time, whole
    std::atomic<int> received{0};
    std::atomic<bool> done{false};
    std::vector<NodeInfo> known;
    std::map<std::pair<std::string, std::string>, EchoType> types;  // (sender, topic) -> its type
    for (const auto& topic : o.topics) {
        node->listen_raw(topic, [&, n = node.get()](const RawMessage& m) {
            std::lock_guard lock(mutex);
            if (done) {
                return;
            }
            if (std::none_of(known.begin(), known.end(), [&](const NodeInfo& k) { return k.id == m.sender_id; })) {
                known = n->nodes();
            }
            // The schema travels over the sender's link, maybe just after its first messages: an
            // untyped sender is asked again once a second.
            auto& type = types[{std::string(m.sender_id), std::string(m.topic)}];
            if (type.name.empty() && Clock::now() - type.looked_up > std::chrono::seconds(1)) {
                known = n->nodes();
                type = find_echo_type(known, m.sender_id, m.topic);
            }
            std::optional<nlohmann::ordered_json> typed;
            if (!type.name.empty()) {
                typed = bridge::typed_message(m.codec, m.payload, type.schema,
                                              o.json ? bridge::TypedBinary::base64 : bridge::TypedBinary::summary);
                if (typed && !typed->is_object()) {
                    typed.reset();
                }
            }
            const std::string from = sender_name(known, m.sender_id);
            if (o.json) {
                std::string typed_members;
                if (typed) {
                    typed_members = ", \"type\": " + json_quote(type.name) + ", \"message\": " + json_dump(*typed);
                }
                std::printf(
                    "{\"time\": %s, \"time_ns\": %llu, \"topic\": %s, \"sender\": %s, \"codec\": %s, "
                    "\"args\": %s%s}\n",
                    json_quote(timestamp_text(m.sent_at_ns)).c_str(), static_cast<unsigned long long>(m.sent_at_ns),
                    json_quote(m.topic).c_str(), json_quote(from).c_str(), json_quote(codec_name(m.codec)).c_str(),
                    payload_text(m.codec, m.payload, true).c_str(), typed_members.c_str());
            } else if (typed) {
                std::printf("[%s] %.*s from %s [%s]\n", timestamp_text(m.sent_at_ns).c_str(),
                            static_cast<int>(m.topic.size()), m.topic.data(), from.c_str(), type.name.c_str());
                for (const auto& [field, value] : typed->items()) {
                    std::printf("  %s: %s\n", field.c_str(), field_text(value).c_str());
                }
            } else {
                std::printf("[%s] %.*s from %s\n", timestamp_text(m.sent_at_ns).c_str(),
                            static_cast<int>(m.topic.size()), m.topic.data(), from.c_str());
                if (auto args = payload_args(m.codec, m.payload, false)) {
                    std::string line;
                    for (const auto& a : *args) {
                        line += (line.empty() ? "" : ", ") + a;
                    }
                    std::printf("  args: (%s)\n", line.c_str());
                } else {
                    std::printf("  %s\n", payload_text(m.codec, m.payload, false).c_str());
                }
            }
            std::fflush(stdout);
            if (limit > 0 && ++received >= limit) {
                done = true;
            }
        });
    }
    std::string list;
    for (const auto& t : o.topics) {
        list += (list.empty() ? "" : ", ") + t;
    }
    std::printf("Listening to topics: %s\n", list.c_str());
    std::fflush(stdout);
    while (!done) {
        if (wait_for_signal(std::chrono::milliseconds(20))) {
            break;  // Ctrl-C ends echo quietly
        }
    }
    node->stop();
}

/// Nodes other than `self` that listen to `topic`.
std::size_t listener_count(const Node& node, const std::string& topic) {
    std::size_t count = 0;
    for (const auto& n : node.nodes()) {
        if (!n.is_self && std::find(n.topics.begin(), n.topics.end(), topic) != n.topics.end()) {
            ++count;
        }
    }
    return count;
}

/// Waits for listeners before a send. With `wanted` > 0, until that many nodes listen. Else until
/// one does, and then until their number has held still for a while (at most `settle`): listeners
/// started together are found within a few hundred milliseconds of each other, and a one-shot send
/// to the first alone would miss the rest. @returns false on Ctrl-C.
bool wait_for_listeners(const Node& node, const std::string& topic, int wanted, std::chrono::milliseconds settle) {
    if (wanted > 0) {
        const auto enough = [&] {
            return listener_count(node, topic) >= static_cast<std::size_t>(wanted);
        };
        const std::string notice =
            "Waiting for " + std::to_string(wanted) + " listener" + (wanted == 1 ? "" : "s") + " on " + topic + "...";
        return wait_until(enough, notice.c_str());
    }
    if (!wait_until([&] { return listener_count(node, topic) > 0; }, "Waiting for listeners...")) {
        return false;
    }
    constexpr auto quiet = std::chrono::milliseconds(500);
    const auto deadline = Clock::now() + settle;
    std::size_t count = listener_count(node, topic);
    auto changed = Clock::now();
    while (Clock::now() < deadline && Clock::now() - changed < quiet) {
        if (wait_for_signal(std::chrono::milliseconds(20))) {
            return false;
        }
        if (const std::size_t now = listener_count(node, topic); now != count) {
            count = now;
            changed = Clock::now();
        }
    }
    return true;
}

void run_send(const GlobalOptions& globals, const TopicCommandOptions& o) {
    const ParsedArgs args = parse_args(o.args);
    auto node = make_node(globals, "send");
    const auto settle = std::chrono::milliseconds(static_cast<long>(globals.discovery_time * 1000));
    bool waited = false;
    for (;;) {
        // An interval send waits once: later rounds go to whoever listens by then.
        if (!o.no_wait && !waited) {
            if (!wait_for_listeners(*node, o.topic, o.wait_listeners, settle)) {
                node->stop();
                throw CliError("interrupted before anything was sent", exit_interrupted);
            }
            waited = true;
        }
        node->send_raw(o.topic, CodecId::msgpack, args.payload.bytes());
        std::printf("Sent %s on topic=%s\n", args.display.c_str(), o.topic.c_str());
        std::fflush(stdout);
        if (o.interval <= 0) {
            break;
        }
        if (wait_for_signal(std::chrono::milliseconds(static_cast<long>(o.interval * 1000)))) {
            break;
        }
    }
    // Let the frames go out before the node says goodbye.
    node->stop();
}

/// Arrival statistics over a window of intervals, printed every second, like `ros2 topic hz`/`bw`.
void run_rate(const GlobalOptions& globals, const TopicCommandOptions& o, bool bandwidth) {
    auto node = make_node(globals, bandwidth ? "bw" : "hz");
    std::mutex mutex;
    std::deque<std::pair<Clock::time_point, std::size_t>> arrivals;
    const std::size_t window = o.window > 0 ? static_cast<std::size_t>(o.window) : 10000;
    node->listen_raw(o.topic, [&](const RawMessage& m) {
        std::lock_guard lock(mutex);
        arrivals.emplace_back(Clock::now(), m.payload.size());
        while (arrivals.size() > window + 1) {
            arrivals.pop_front();
        }
    });
    std::printf("Subscribed to [%s]\n", o.topic.c_str());
    std::fflush(stdout);
    auto next = Clock::now() + std::chrono::seconds(1);
    for (;;) {
        const auto wait = std::chrono::duration_cast<std::chrono::milliseconds>(next - Clock::now());
        if (wait_for_signal(std::max(wait, std::chrono::milliseconds(0)))) {
            break;
        }
        next += std::chrono::seconds(1);
        std::lock_guard lock(mutex);
        if (bandwidth) {
            // Bytes in the last second (or the window, if shorter) and the mean message size.
            const auto horizon = Clock::now() - std::chrono::seconds(1);
            std::size_t bytes = 0, count = 0;
            for (const auto& [t, size] : arrivals) {
                if (t >= horizon) {
                    bytes += size;
                    ++count;
                }
            }
            if (count == 0) {
                std::printf("no new messages\n");
            } else {
                std::printf("%.2f B/s from %zu messages\n\tMessage size mean: %.2f B\n", static_cast<double>(bytes),
                            count, static_cast<double>(bytes) / static_cast<double>(count));
            }
        } else {
            if (arrivals.size() < 2) {
                std::printf("no new messages\n");
            } else {
                std::vector<double> gaps;
                for (std::size_t i = 1; i < arrivals.size(); ++i) {
                    gaps.push_back(std::chrono::duration<double>(arrivals[i].first - arrivals[i - 1].first).count());
                }
                double sum = 0;
                for (double g : gaps) {
                    sum += g;
                }
                const double mean = sum / static_cast<double>(gaps.size());
                double var = 0;
                for (double g : gaps) {
                    var += (g - mean) * (g - mean);
                }
                const double sd = std::sqrt(var / static_cast<double>(gaps.size()));
                std::printf("average rate: %.3f\n\tmin: %.3fs max: %.3fs std dev: %.5fs window: %zu\n",
                            mean > 0 ? 1.0 / mean : 0.0, *std::min_element(gaps.begin(), gaps.end()),
                            *std::max_element(gaps.begin(), gaps.end()), sd, gaps.size() + 1);
            }
        }
        std::fflush(stdout);
    }
    node->stop();
}

}  // namespace

void setup_topic(CLI::App& app, const GlobalOptions& globals) {
    auto* topic = app.add_subcommand("topic", "Topics: list, echo, send, hz, bw, info")->require_subcommand(1);
    auto o = std::make_shared<TopicCommandOptions>();

    auto* list = topic->add_subcommand("list", "List the topics sent or listened to, one per line, sorted");
    list->add_flag("-v,--verbose", o->verbose, "Add the number of publishing and listening nodes");
    list->add_flag("-t,--show-types", o->types, "Add each topic's type, as its publishers advertise it");
    list->callback([o, &globals] {
        struct Counts {
            int publishers = 0;
            int listeners = 0;
            std::string type;
        };
        std::map<std::string, Counts> topics;
        for (const auto& n : discover_mesh(globals, "topic-list")) {
            for (const auto& t : n.topics) {
                ++topics[t].listeners;
            }
            for (const auto& p : n.publications) {
                auto& c = topics[p.topic];
                ++c.publishers;
                if (c.type.empty()) {
                    c.type = p.type;
                }
            }
        }
        for (const auto& [t, c] : topics) {
            std::string line = t;
            if (o->types) {
                line += " [" + (c.type.empty() ? std::string("untyped") : c.type) + "]";
            }
            if (o->verbose) {
                line += " (" + std::to_string(c.publishers) + " publisher" + (c.publishers == 1 ? "" : "s") + ", " +
                        std::to_string(c.listeners) + " listener" + (c.listeners == 1 ? "" : "s") + ")";
            }
            std::printf("%s\n", line.c_str());
        }
    });

    auto* echo = topic->add_subcommand("echo", "Print the messages sent to topics");
    echo->add_option("topics", o->topics, "Topics to listen to")->required()->transform(mesh_name);
    echo->add_flag("--once", o->once, "Exit after the first message");
    echo->add_option("-n,--count", o->count, "Exit after COUNT messages")->check(positive_number());
    echo->add_flag("--json", o->json, "One JSON object per message and line");
    echo->callback([o, &globals] { run_echo(globals, *o); });

    auto* send = topic->add_subcommand("send", "Send a message: YAML/JSON arguments, then key=value keyword arguments");
    send->add_option("topic", o->topic, "Topic")->required()->transform(mesh_name);
    send->add_option("args", o->args,
                     "YAML/JSON values (42, 3.14, hello, '\"text\"', '{a: 1}', '[1,2]'), then key=value")
        ->expected(0, CLI::detail::expected_max_vector_size);
    send->add_option("-i,--interval", o->interval, "Send again every S seconds until Ctrl-C")->check(positive_number());
    send->add_flag("--no-wait", o->no_wait, "Send at once, even if no node listens yet");
    send->add_option("-w,--wait-listeners", o->wait_listeners,
                     "Wait until N nodes listen (default: until one does, then for the others found with it)")
        ->check(positive_number());
    send->callback([o, &globals] { run_send(globals, *o); });

    auto* hz = topic->add_subcommand("hz", "Print the rate of a topic every second");
    hz->add_option("topic", o->topic, "Topic")->required()->transform(mesh_name);
    hz->add_option("-w,--window", o->window, "Number of intervals the statistics cover")->check(positive_number());
    hz->callback([o, &globals] { run_rate(globals, *o, false); });

    auto* bw = topic->add_subcommand("bw", "Print the bandwidth of a topic every second");
    bw->add_option("topic", o->topic, "Topic")->required()->transform(mesh_name);
    bw->callback([o, &globals] { run_rate(globals, *o, true); });

    auto* info = topic->add_subcommand("info", "Show a topic's type, publishers and listeners");
    info->add_option("topic", o->topic, "Topic")->required()->transform(mesh_name);
    info->callback([o, &globals] {
        const auto nodes = discover_mesh(globals, "topic-info");
        std::vector<const NodeInfo*> listeners;
        std::vector<std::pair<const NodeInfo*, const meshy::PublicationInfo*>> publishers;
        for (const auto& n : nodes) {
            if (std::find(n.topics.begin(), n.topics.end(), o->topic) != n.topics.end()) {
                listeners.push_back(&n);
            }
            for (const auto& p : n.publications) {
                if (p.topic == o->topic) {
                    publishers.emplace_back(&n, &p);
                }
            }
        }
        std::string type;
        for (const auto& [n, p] : publishers) {
            type = type.empty() ? p->type : type;
        }
        std::printf("Topic: %s\nType: %s\n", o->topic.c_str(), type.empty() ? "untyped" : type.c_str());
        std::printf("Publishers: %zu\n", publishers.size());
        for (const auto& [n, p] : publishers) {
            std::printf("    %s@%s (%s)%s\n", n->name.c_str(), n->host.c_str(), n->id.substr(0, 8).c_str(),
                        p->latched ? " latched" : "");
        }
        std::printf("Listeners: %zu\n", listeners.size());
        for (const auto* n : listeners) {
            std::printf("    %s@%s (%s)\n", n->name.c_str(), n->host.c_str(), n->id.substr(0, 8).c_str());
        }
    });
}

}  // namespace meshy::cli
