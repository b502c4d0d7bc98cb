// `meshy bridge` throughput and latency, with real sockets on loopback: a meshy node sends 1 kB
// messages that the bridge fans out to 1, 10 and 100 WebSocket clients (a minimal blocking client,
// tools/bridge/websocket_client.hpp), and a WebSocket client's call_service round trip to a meshy
// service. The bridge runs in-process on its own io_context thread, exactly as `meshy bridge` does.
//
//   bridge_bench    (MESHY_DISCOVERY=local is set for the run: same-host discovery, no daemon)
//
// Fanout reports items_per_second = messages delivered to clients per second (messages x clients).
#include <benchmark/benchmark.h>
#include <unistd.h>

#include <asio/io_context.hpp>
#include <asio/post.hpp>
#include <cstdlib>
#include <memory>
#include <meshy/codecs/msgpack.hpp>
#include <meshy/log.hpp>
#include <meshy/node.hpp>
#include <stdexcept>
#include <string>
#include <thread>
#include <vector>

#include "bridge/bridge_server.hpp"
#include "bridge/websocket_client.hpp"

namespace {

using namespace meshy::cli::bridge;
using namespace std::chrono_literals;

constexpr int batch = 100;  // messages per benchmark iteration

/// The bridge with its node on one thread, a sending node and a service provider.
struct Rig {
    Rig() {
        ::setenv("MESHY_DISCOVERY", "local", 1);
        ::setenv("MESHY_DOMAIN_ID", ("bridge-bench-" + std::to_string(::getpid())).c_str(), 1);
        ::setenv("MESHY_LISTEN_HOST", "127.0.0.1", 1);
        meshy::set_log_level(meshy::LogLevel::error);
        node = std::make_unique<meshy::Node>(io.get_executor(), meshy::NodeOptions{.name = "meshy-bridge"});
        BridgeOptions options;
        options.port = 0;
        options.max_clients = 1000;
        server = std::make_unique<BridgeServer>(io.get_executor(), *node, options);
        server->start();
        loop = std::thread([this] { io.run(); });
        sender = std::make_unique<meshy::Node>(meshy::NodeOptions{.name = "bench-sender"});
        provider = std::make_unique<meshy::Node>(meshy::NodeOptions{.name = "bench-provider"});
        provider->add_service_blocking("bench_echo", [](int x) { return x; });
        // A 1 kB message: [{"data": "<1000 bytes>"}]
        meshy::Buffer b;
        msgpack::packer<meshy::Buffer> pk(b);
        pk.pack_array(1);
        pk.pack_map(1);
        pk.pack(std::string("data"));
        pk.pack(std::string(1000, 'x'));
        payload = std::move(b);
    }
    ~Rig() {
        sender->stop();
        provider->stop();
        asio::post(io, [this] { server->stop(); });
        node->stop();
        asio::post(io, [this] { io.stop(); });
        loop.join();
    }
    std::unique_ptr<WebSocketClient> client() { return std::make_unique<WebSocketClient>("127.0.0.1", server->port()); }

    asio::io_context io{1};
    std::unique_ptr<meshy::Node> node;
    std::unique_ptr<BridgeServer> server;
    std::thread loop;
    std::unique_ptr<meshy::Node> sender;
    std::unique_ptr<meshy::Node> provider;
    meshy::Buffer payload;
};

Rig& rig() {
    static Rig r;
    return r;
}

void BM_BridgeFanout(benchmark::State& state) {
    Rig& r = rig();
    const int n = static_cast<int>(state.range(0));
    const std::string topic = "fanout" + std::to_string(n);
    std::vector<std::unique_ptr<WebSocketClient>> clients;
    for (int i = 0; i < n; ++i) {
        clients.push_back(r.client());
        clients.back()->send_text(R"({"op":"subscribe","topic":"/)" + topic + R"("})");
    }
    // A rosapi round trip per client: its subscribe was handled before the answer.
    for (auto& c : clients) {
        c->send_text(R"({"op":"call_service","service":"/rosapi/nodes","id":"sync"})");
        if (c->receive(10s).kind != ClientMessage::Kind::text) {
            state.SkipWithError("no rosapi answer");
            return;
        }
    }
    r.sender->wait_for_listener_blocking(topic, 10s);
    r.sender->send_raw(topic, meshy::CodecId::msgpack, r.payload.bytes());
    for (auto& c : clients) {
        if (c->receive(10s).kind != ClientMessage::Kind::text) {
            state.SkipWithError("a client got no warm-up message");
            return;
        }
    }
    std::size_t received = 0;
    for (auto _ : state) {
        for (int i = 0; i < batch; ++i) {
            r.sender->send_raw(topic, meshy::CodecId::msgpack, r.payload.bytes());
        }
        for (auto& c : clients) {
            for (int i = 0; i < batch; ++i) {
                const auto m = c->receive(10s);
                if (m.kind != ClientMessage::Kind::text) {
                    state.SkipWithError("a message did not arrive within 10 s");
                    return;
                }
                received += m.data.size();
            }
        }
    }
    state.SetItemsProcessed(state.iterations() * batch * n);
    state.SetBytesProcessed(static_cast<std::int64_t>(received));
    state.counters["clients"] = n;
}
BENCHMARK(BM_BridgeFanout)->Arg(1)->Arg(10)->Arg(100)->UseRealTime()->Unit(benchmark::kMillisecond);

void BM_BridgeCallServiceRoundTrip(benchmark::State& state) {
    Rig& r = rig();
    auto c = r.client();
    r.node->wait_for_service_provider_blocking("bench_echo", 10s);
    int id = 0;
    for (auto _ : state) {
        c->send_text(R"({"op":"call_service","service":"/bench_echo","args":[7],"id":")" + std::to_string(++id) +
                     R"("})");
        const auto m = c->receive(10s);
        if (m.kind != ClientMessage::Kind::text || m.data.find("\"result\":true") == std::string::npos) {
            state.SkipWithError(("bad reply: " + m.data).c_str());
            return;
        }
    }
    state.SetItemsProcessed(state.iterations());
}
BENCHMARK(BM_BridgeCallServiceRoundTrip)->UseRealTime()->Unit(benchmark::kMicrosecond);

}  // namespace
