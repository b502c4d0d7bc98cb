// Google Benchmark micro-benchmarks of meshy's hot paths: codec encode/decode (msgpack, cereal,
// raw), frame encode/parse, topology lookup and load-balancer choice.
#include <benchmark/benchmark.h>

#include <cstdint>
#include <meshy/codecs/cereal.hpp>
#include <meshy/codecs/msgpack.hpp>
#include <meshy/codecs/raw.hpp>
#include <meshy/load_balancer.hpp>
#include <meshy/node.hpp>
#include <string>
#include <vector>

#include "wire/frame.hpp"

namespace {

using Payload = std::vector<std::uint8_t>;
namespace wire = meshy::detail::wire;

template <class C>
void BM_Encode(benchmark::State& state) {
    const Payload payload(static_cast<std::size_t>(state.range(0)), 0x5a);
    meshy::Buffer out;
    for (auto _ : state) {
        out.clear();
        C::encode(out, payload);
        benchmark::DoNotOptimize(out.data());
    }
    state.SetBytesProcessed(static_cast<std::int64_t>(state.iterations()) * state.range(0));
}

template <class C>
void BM_Decode(benchmark::State& state) {
    const Payload payload(static_cast<std::size_t>(state.range(0)), 0x5a);
    meshy::Buffer encoded;
    C::encode(encoded, payload);
    for (auto _ : state) {
        auto decoded = C::template decode<Payload>(encoded.bytes());
        benchmark::DoNotOptimize(std::get<0>(decoded).data());
    }
    state.SetBytesProcessed(static_cast<std::int64_t>(state.iterations()) * state.range(0));
}

BENCHMARK_TEMPLATE(BM_Encode, meshy::MsgpackCodec)->Arg(0)->Arg(1024)->Arg(1 << 20);
BENCHMARK_TEMPLATE(BM_Decode, meshy::MsgpackCodec)->Arg(0)->Arg(1024)->Arg(1 << 20);
BENCHMARK_TEMPLATE(BM_Encode, meshy::CerealCodec)->Arg(0)->Arg(1024)->Arg(1 << 20);
BENCHMARK_TEMPLATE(BM_Decode, meshy::CerealCodec)->Arg(0)->Arg(1024)->Arg(1 << 20);
BENCHMARK_TEMPLATE(BM_Encode, meshy::RawCodec)->Arg(0)->Arg(1024)->Arg(1 << 20);
BENCHMARK_TEMPLATE(BM_Decode, meshy::RawCodec)->Arg(0)->Arg(1024)->Arg(1 << 20);

// A whole message frame: header, payload, length patch.
void BM_FrameEncode(benchmark::State& state) {
    const std::vector<std::byte> payload(static_cast<std::size_t>(state.range(0)), std::byte{0x5a});
    meshy::Buffer frame;
    for (auto _ : state) {
        frame.clear();
        wire::begin_message(frame, meshy::CodecId::raw, 123456789, "speedtest");
        frame.append(payload.data(), payload.size());
        wire::finish_frame(frame);
        benchmark::DoNotOptimize(frame.data());
    }
    state.SetBytesProcessed(static_cast<std::int64_t>(state.iterations()) * state.range(0));
}
BENCHMARK(BM_FrameEncode)->Arg(0)->Arg(1024)->Arg(1 << 20);

// Finding and decoding the frames of a receive buffer full of messages.
void BM_FrameParse(benchmark::State& state) {
    const std::vector<std::byte> payload(static_cast<std::size_t>(state.range(0)), std::byte{0x5a});
    meshy::Buffer stream;
    constexpr int frames = 64;
    for (int i = 0; i < frames; ++i) {
        meshy::Buffer frame;
        wire::begin_message(frame, meshy::CodecId::raw, 123456789, "speedtest");
        frame.append(payload.data(), payload.size());
        wire::finish_frame(frame);
        stream.append(frame.data(), frame.size());
    }
    std::string reason;
    for (auto _ : state) {
        auto in = stream.bytes();
        while (!in.empty()) {
            wire::FrameView view;
            std::size_t used = 0, needed = 0;
            if (wire::next_frame(in, 256u << 20, view, used, needed, reason) != wire::Parse::ok) {
                state.SkipWithError("parse failed");
                break;
            }
            wire::Message m;
            benchmark::DoNotOptimize(wire::decode_message(view.body, m));
            in = in.subspan(used);
        }
    }
    state.SetItemsProcessed(static_cast<std::int64_t>(state.iterations()) * frames);
}
BENCHMARK(BM_FrameParse)->Arg(0)->Arg(1024);

// Topology lookup: does anyone listen to a topic (the check every send starts with)?
void BM_TopologyLookup(benchmark::State& state) {
    meshy::Node node(
        {.name = "bench", .domain_id = "bench-lookup", .allow_tcp = false, .discovery = meshy::DiscoveryMode::local});
    for (int i = 0; i < state.range(0); ++i) {
        node.listen_raw("topic-" + std::to_string(i), [](const meshy::RawMessage&) {});
    }
    const std::string topic = "topic-" + std::to_string(state.range(0) / 2);
    for (auto _ : state) {
        benchmark::DoNotOptimize(node.topic_has_listeners(topic));
    }
}
BENCHMARK(BM_TopologyLookup)->Arg(1)->Arg(100);

// Load-balancer choice among `n` listeners in n/2 name groups.
void BM_TopicBalancer(benchmark::State& state) {
    auto balancer = meshy::round_robin_topic_balancer();
    std::vector<std::string> ids, names;
    for (int i = 0; i < state.range(0); ++i) {
        ids.push_back("node-" + std::to_string(i));
        names.push_back("group-" + std::to_string(i / 2));
    }
    std::vector<meshy::PeerRef> refs;
    for (std::size_t i = 0; i < ids.size(); ++i) {
        refs.push_back({ids[i], names[i], "host", false});
    }
    std::vector<std::size_t> chosen;
    for (auto _ : state) {
        chosen.clear();
        balancer->choose("topic", refs, chosen);
        benchmark::DoNotOptimize(chosen.data());
    }
}
BENCHMARK(BM_TopicBalancer)->Arg(1)->Arg(8)->Arg(64);

void BM_ServiceBalancer(benchmark::State& state) {
    auto balancer = meshy::round_robin_service_balancer();
    std::vector<std::string> ids;
    for (int i = 0; i < state.range(0); ++i) {
        ids.push_back("node-" + std::to_string(i));
    }
    std::vector<meshy::PeerRef> refs;
    for (const auto& id : ids) {
        refs.push_back({id, "provider", "host", false});
    }
    for (auto _ : state) {
        benchmark::DoNotOptimize(balancer->choose("service", refs));
    }
}
BENCHMARK(BM_ServiceBalancer)->Arg(1)->Arg(8);

}  // namespace
