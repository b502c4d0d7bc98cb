// meshy_test_node's roles on the node's own thread with the blocking API: send, call, blobs, nodes.
#include <algorithm>
#include <atomic>
#include <chrono>
#include <cstdint>
#include <mutex>
#include <set>
#include <string>
#include <thread>
#include <vector>

#include "test_node.hpp"

namespace test_node {

using namespace std::chrono_literals;

// ---- send (own thread + blocking API) ----------------------------------------------------------

namespace {

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

}  // namespace

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

namespace {

std::string joined(const std::vector<std::string>& v) {
    std::string out;
    for (const auto& s : v) {
        out += (out.empty() ? "" : ",") + s;
    }
    return out.empty() ? "-" : out;
}

}  // namespace

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

}  // namespace test_node
