// foxglove_sender: a publisher of typed messages for tests/integration/foxglove_test.cpp, written as
// an application would: C++ structs given a type with MESHY_TYPE next to their msgpack definition,
// advertised with their type name and JSON Schema (Node::advertise) before they are sent.
//
//   foxglove_sender TOPIC SHAPE [INTERVAL_MS [SIZE]]
//     pose     test.Pose, a map of named fields (MSGPACK_DEFINE_MAP) with a nested test.Vec and bytes
//     point    test.Point, packed by position (MSGPACK_DEFINE): an array on the wire
//     log      foxglove.Log (<meshy/msgs/foxglove.hpp>)
//     blob     test.Blob {seq, data}: SIZE bytes of data (default 1000)
//     misfit   advertised as test.Pose, but sends {seq: "text"}: does not fit its own schema
//
// Sends every INTERVAL_MS (default 100) until SIGINT/SIGTERM. The payloads of every shape but blob
// repeat every 4 messages, so that two recorders started at different times see the same ones.
// Prints "SCHEMA <the advertised JSON Schema>", "READY", then "SENT <n>" after the first three
// messages and every 100th. The node takes MESHY_* from the environment.
#include <signal.h>

#include <atomic>
#include <chrono>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <meshy/codecs/msgpack.hpp>
#include <meshy/meshy.hpp>
#include <meshy/msgs/foxglove.hpp>
#include <meshy/type.hpp>
#include <string>
#include <thread>
#include <vector>

namespace {

struct Vec {
    double x = 0, y = 0, z = 0;
    MSGPACK_DEFINE_MAP(x, y, z)
    MESHY_TYPE("test.Vec", x, y, z);
};

struct Pose {
    std::string frame;
    Vec position;
    std::vector<std::uint8_t> snapshot;  // msgpack bin: base64 in JSON
    std::int64_t seq = 0;
    MSGPACK_DEFINE_MAP(frame, position, snapshot, seq)
    MESHY_TYPE("test.Pose", frame, position, snapshot, seq);
};

struct Point {
    std::int64_t seq = 0;
    double x = 0;
    std::string label;
    std::vector<double> values;
    MSGPACK_DEFINE(seq, x, label, values)
    MESHY_TYPE("test.Point", seq, x, label, values);
};

struct Blob {
    std::int64_t seq = 0;
    std::vector<std::uint8_t> data;
    MSGPACK_DEFINE_MAP(seq, data)
    MESHY_TYPE("test.Blob", seq, data);
};

struct Misfit {
    std::string seq;
    MSGPACK_DEFINE_MAP(seq)
};

std::atomic<bool> stop{false};

template <class T>
void advertise(meshy::Node& node, const std::string& topic) {
    const std::string schema = meshy::message_type<T>::schema();
    node.advertise(
        topic, {.type = std::string(meshy::message_type<T>::name), .schema_encoding = "jsonschema", .schema = schema});
    std::printf("SCHEMA %s\n", schema.c_str());
}

}  // namespace

int main(int argc, char** argv) {
    if (argc < 3) {
        std::fprintf(stderr, "usage: %s TOPIC pose|point|log|blob|misfit [INTERVAL_MS [SIZE]]\n", argv[0]);
        return 2;
    }
    const std::string topic = argv[1];
    const std::string shape = argv[2];
    const auto interval = std::chrono::milliseconds(argc > 3 ? std::atol(argv[3]) : 100);
    const std::size_t size = argc > 4 ? static_cast<std::size_t>(std::atol(argv[4])) : 1000;
    ::signal(SIGINT, [](int) { stop = true; });
    ::signal(SIGTERM, [](int) { stop = true; });

    meshy::Node node(meshy::NodeOptions{.name = "foxglove-sender-" + shape, .listen_host = "127.0.0.1"});
    if (shape == "pose" || shape == "misfit") {
        advertise<Pose>(node, topic);
    } else if (shape == "point") {
        advertise<Point>(node, topic);
    } else if (shape == "log") {
        advertise<meshy::msgs::foxglove::Log>(node, topic);
    } else if (shape == "blob") {
        advertise<Blob>(node, topic);
    } else {
        std::fprintf(stderr, "unknown shape '%s'\n", shape.c_str());
        return 2;
    }
    std::printf("READY\n");
    std::fflush(stdout);
    std::vector<std::uint8_t> data(size);
    for (std::size_t i = 0; i < size; ++i) {
        data[i] = static_cast<std::uint8_t>(i * 7);
    }
    for (std::int64_t n = 0; !stop; ++n) {
        const std::int64_t seq = shape == "blob" ? n : n % 4;
        if (shape == "pose") {
            node.send_blocking(topic, Pose{"map", {1.5, -2.25, 0.5}, {1, 2, 3}, seq});
        } else if (shape == "point") {
            node.send_blocking(topic, Point{seq, 0.5, "p" + std::to_string(seq), {1.5, 2.5}});
        } else if (shape == "log") {
            namespace fg = meshy::msgs::foxglove;
            node.send_blocking(topic, fg::Log{.timestamp = {1700000000, 5},
                                              .level = fg::Log::warning,
                                              .message = "hello " + std::to_string(seq),
                                              .name = "talker",
                                              .file = "talker.cpp",
                                              .line = 7});
        } else if (shape == "blob") {
            data[0] = static_cast<std::uint8_t>(seq);
            node.send_blocking(topic, Blob{seq, data});
        } else {
            node.send_blocking(topic, Misfit{"text"});
        }
        if (n < 3 || n % 100 == 0) {
            std::printf("SENT %lld\n", static_cast<long long>(n + 1));
            std::fflush(stdout);
        }
        const auto until = std::chrono::steady_clock::now() + interval;
        while (!stop && std::chrono::steady_clock::now() < until) {
            std::this_thread::sleep_for(std::min<std::chrono::steady_clock::duration>(
                std::chrono::milliseconds(10), until - std::chrono::steady_clock::now()));
        }
    }
    node.stop();
    return 0;
}
