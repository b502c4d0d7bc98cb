// Recording throughput of `meshy bag record`'s writer: 1 kB messages into an MCAP file with zstd, lz4
// or no chunk compression, compressed inline or on the writer's threads (the recorder's mode), with or
// without the fast mode a saturated writer switches to. Reports MB/s (bytes_per_second) and msgs/s
// (items_per_second), file included: each run ends with close(), so the last chunk, the summary and
// the write()s are counted.
//
//   bag_bench --benchmark_filter=Record    (files go to $TMPDIR, else /tmp)
//
// The payload looks like sensor data — a msgpack laser scan: a header and uint16 ranges with a few mm of
// noise — so compression does real work without the data being trivially repetitive.
#include <benchmark/benchmark.h>
#include <unistd.h>

#include <algorithm>
#include <cmath>
#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <memory>
#include <random>
#include <string>
#include <vector>

#include "bag/codec_encoding.hpp"
#include "bag/mcap_writer.hpp"

namespace {

using namespace meshy::bag;

constexpr std::size_t message_size = 1024;
constexpr int messages_per_run = 50000;  // 51 MB: many chunks, a few hundred ms per run

/// `count` payloads of exactly message_size bytes, like a laser scan: a msgpack array of a header
/// (sequence, frame, stamp) and 330 ranges in mm (uint16) along a smooth outline, with a few mm of noise.
std::vector<mcap::Bytes> make_payloads(int count) {
    std::mt19937_64 rng(1);
    std::normal_distribution<double> noise(0.0, 3.0);
    std::vector<mcap::Bytes> out;
    for (int n = 0; n < count; ++n) {
        mcap::Bytes p;
        auto put = [&](std::uint64_t v, int bytes) {
            for (int i = bytes - 1; i >= 0; --i) {
                p.push_back(static_cast<std::byte>((v >> (8 * i)) & 0xff));
            }
        };
        put(0xdc, 1);  // array 16
        put(3 + 334, 2);
        put(0xce, 1);  // uint32 sequence
        put(static_cast<std::uint64_t>(n), 4);
        put(0xa5, 1);  // "laser"
        for (char c : std::string("laser")) {
            put(static_cast<unsigned char>(c), 1);
        }
        put(0xcf, 1);  // uint64 stamp
        put(1'700'000'000'000'000'000ull + static_cast<std::uint64_t>(n) * 1'000'000, 8);
        for (int i = 0; p.size() + 3 <= message_size; ++i) {
            const double range = 4000.0 + 1500.0 * std::sin(0.02 * i + 0.01 * n) + noise(rng);
            put(0xcd, 1);  // uint16
            put(static_cast<std::uint64_t>(std::max(0.0, range)), 2);
        }
        p.resize(message_size, std::byte{0xc0});  // msgpack nil padding to exactly 1 kB
        out.push_back(std::move(p));
    }
    return out;
}

const std::vector<mcap::Bytes>& payloads() {
    static const std::vector<mcap::Bytes> p = make_payloads(4096);
    return p;
}

std::string bench_file() {
    const char* dir = std::getenv("TMPDIR");
    return (std::filesystem::path(dir && *dir ? dir : "/tmp") /
            ("meshy-bag-bench-" + std::to_string(::getpid()) + ".mcap"))
        .string();
}

/// state.range(0): compression 0 none, 1 zstd, 2 lz4.
/// state.range(1): compression threads; 0 = compress inline on the caller's thread.
/// state.range(2): 1 = fast_when_behind (the recorder's setting: a saturated writer lowers the ratio).
void BM_Record1kB(benchmark::State& state) {
    const auto compression = static_cast<Compression>(state.range(0));
    const auto threads = static_cast<unsigned>(state.range(1));
    const bool adaptive = state.range(2) != 0;
    const auto& data = payloads();
    const std::string file = bench_file();
    std::uint64_t file_bytes = 0;
    for (auto _ : state) {
        std::filesystem::remove(file);
        WriterOptions o;
        o.compression = compression;
        o.background = threads > 0;
        o.compression_threads = std::max(1u, threads);
        o.fast_when_behind = adaptive;
        McapWriter w(file, o);
        const auto schema = w.add_schema(schema_name(meshy::CodecId::msgpack), "");
        const auto channel = w.add_channel(schema, "scan", "msgpack", {{"meshy.codec", "1"}});
        std::uint64_t t = 1'700'000'000'000'000'000ull;
        for (int i = 0; i < messages_per_run; ++i) {
            t += 100'000;  // 10 kHz
            w.add_message(channel, static_cast<std::uint32_t>(i), t, t - 50'000,
                          data[static_cast<std::size_t>(i) % data.size()]);
        }
        w.close();
        file_bytes = w.stats().file_bytes;
    }
    std::filesystem::remove(file);
    state.SetItemsProcessed(state.iterations() * messages_per_run);
    state.SetBytesProcessed(state.iterations() * messages_per_run * static_cast<std::int64_t>(message_size));
    state.counters["ratio"] = static_cast<double>(file_bytes) / (double(messages_per_run) * double(message_size));
    state.SetLabel(std::string(compression_option_name(compression)) +
                   (threads == 0 ? ", inline" : ", " + std::to_string(threads) + " thread(s)") +
                   (adaptive ? ", fast when behind" : ""));
}

BENCHMARK(BM_Record1kB)
    ->ArgNames({"compression", "threads", "adaptive"})
    ->Args({0, 0, 0})
    ->Args({1, 0, 0})
    ->Args({2, 0, 0})
    ->Args({1, 1, 0})
    ->Args({2, 1, 0})
    ->Args({1, 2, 0})
    ->Args({2, 2, 0})
    ->Args({1, 1, 1})
    ->Args({2, 1, 1})
    ->Unit(benchmark::kMillisecond)
    ->UseRealTime();

/// What the node's thread pays per message in the recorder's mode: appending to the open chunk, with
/// compression and writing left to the writer's thread (measured on the caller's thread only).
void BM_AppendOnly1kB(benchmark::State& state) {
    const auto& data = payloads();
    const std::string file = bench_file();
    WriterOptions o;
    o.compression = Compression::zstd;
    o.background = true;
    o.max_queued_chunks = 1024;  // never wait for the writer thread: this measures the caller alone
    std::unique_ptr<McapWriter> w;
    std::uint16_t channel = 0;
    auto reopen = [&] {
        if (w) {
            w->close();
        }
        std::filesystem::remove(file);
        w = std::make_unique<McapWriter>(file, o);
        channel = w->add_channel(w->add_schema("meshy.msgpack", ""), "scan", "msgpack");
    };
    reopen();
    std::uint64_t t = 1'700'000'000'000'000'000ull;
    std::uint32_t i = 0;
    for (auto _ : state) {
        t += 100'000;
        w->add_message(channel, i, t, t, data[i % data.size()]);
        if (++i % 200'000 == 0) {  // bound the queue's memory
            state.PauseTiming();
            reopen();
            state.ResumeTiming();
        }
    }
    w->close();
    std::filesystem::remove(file);
    state.SetItemsProcessed(state.iterations());
    state.SetBytesProcessed(state.iterations() * static_cast<std::int64_t>(message_size));
}

BENCHMARK(BM_AppendOnly1kB);

}  // namespace
