// Keyed links (docs/security.md): what the cryptography costs alone, in memory — one whole key
// exchange (both ends, as per link), and sealing then opening 1 kB and 1 MB of frames. End-to-end
// figures (sockets, threads) come from `meshy speedtest run` with and without a key.
#include <benchmark/benchmark.h>

#include <cstring>
#include <string>
#include <vector>

#include "transport/secure_channel.hpp"
#include "transport/secure_handshake.hpp"

namespace {

using namespace meshy;
using namespace meshy::detail;
using namespace meshy::detail::secure;

void BM_KeyExchangePerLink(benchmark::State& state) {
    const auto key = generate_domain_key();
    Buffer hello, reply, finish;
    for (auto _ : state) {
        hello.clear(), reply.clear(), finish.clear();
        secure::Handshake init(key, true), resp(key, false);
        init.hello(hello);
        resp.on_hello(hello.bytes(), reply);
        init.on_reply(reply.bytes(), finish);
        benchmark::DoNotOptimize(resp.on_finish(finish.bytes()));
    }
}
BENCHMARK(BM_KeyExchangePerLink)->Unit(benchmark::kMicrosecond);

/// Seals a batch of `count` frames of `size` bytes and opens it, as a writer and a reader do, with
/// the cipher `range(2)` (0 ChaCha20-Poly1305, 1 AES-256-GCM).
void BM_SealOpen(benchmark::State& state) {
    const auto size = static_cast<std::size_t>(state.range(0));
    const auto count = static_cast<std::size_t>(state.range(1));
    const Cipher cipher = state.range(2) == 1 ? Cipher::aes256_gcm : Cipher::chacha20_poly1305;
    if (cipher == Cipher::aes256_gcm && !aes256_gcm_available()) {
        state.SkipWithError("no hardware AES here");
        return;
    }
    SessionKeys a, b;
    a.send.fill(1), a.receive.fill(2), b.send.fill(2), b.receive.fill(1);
    a.cipher = b.cipher = cipher;
    SecureChannel sender(a), receiver(b);
    std::vector<std::byte> frame(size, std::byte{0x42});
    std::vector<std::span<const std::byte>> parts(count, std::span<const std::byte>(frame));
    std::vector<std::byte> plain(size * count + max_record);
    Buffer sealed;
    for (auto _ : state) {
        sender.seal(parts, sealed);
        std::size_t at = 0, got = 0;
        while (at < sealed.size()) {
            const auto space = receiver.read_space();
            const std::size_t n = std::min(space.size(), sealed.size() - at);
            std::memcpy(space.data(), sealed.data() + at, n);
            at += n;
            bool ok = true;
            std::string reason;
            got += receiver.received(n, std::span<std::byte>(plain).subspan(got), ok, reason);
            if (!ok) {
                state.SkipWithError(reason.c_str());
                return;
            }
        }
        benchmark::DoNotOptimize(got);
    }
    state.SetBytesProcessed(static_cast<std::int64_t>(state.iterations() * size * count));
    state.SetItemsProcessed(static_cast<std::int64_t>(state.iterations() * count));
}
// 64 frames of 1 kB per batch (a writer's batch under load), and one 1 MB frame.
BENCHMARK(BM_SealOpen)
    ->ArgNames({"size", "count", "aes"})
    ->ArgsProduct({{1024}, {64}, {0, 1}})
    ->ArgsProduct({{1024 * 1024}, {1}, {0, 1}})
    ->Unit(benchmark::kMicrosecond);

}  // namespace
