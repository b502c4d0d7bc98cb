// Fuzz target: what a keyed link's peer sends before and after its proof — the key exchange's
// messages (either role) and the sealed records that follow. Both ends hold one fixed key, so an
// input may also carry a well-formed message; records are opened with fixed session keys, under
// either cipher.
#include <cstddef>
#include <cstdint>
#include <span>
#include <string>
#include <vector>

#include "transport/secure_channel.hpp"
#include "transport/secure_handshake.hpp"

using namespace meshy;
using namespace meshy::detail;
using namespace meshy::detail::secure;

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
    std::span<const std::byte> in(reinterpret_cast<const std::byte*>(data), size);
    if (in.empty()) {
        return 0;
    }
    const unsigned mode = std::to_integer<unsigned>(in[0]) % 3;
    // Records: AES-256-GCM for an odd quotient, where this CPU has it; ChaCha20-Poly1305 otherwise.
    const bool aes = (std::to_integer<unsigned>(in[0]) / 3) % 2 == 1 && aes256_gcm_available();
    in = in.subspan(1);
    DomainKey key;
    key.bytes.fill(7);
    Buffer out;
    auto take = [&](std::size_t n) {
        const auto part = in.first(std::min(n, in.size()));
        in = in.subspan(part.size());
        return part;
    };
    if (mode == 0) {
        secure::Handshake responder(key, false);
        if (responder.on_hello(take(hello_size), out) == secure::Handshake::Result::ok) {
            (void)responder.on_finish(take(finish_size));
        }
    } else if (mode == 1) {
        secure::Handshake initiator(key, true);
        initiator.hello(out);
        out.clear();
        (void)initiator.on_reply(take(reply_size), out);
    } else {
        SessionKeys keys;
        keys.send.fill(1);
        keys.receive.fill(2);
        keys.cipher = aes ? Cipher::aes256_gcm : Cipher::chacha20_poly1305;
        SecureChannel channel(keys);
        std::vector<std::byte> plain(4096);
        bool ok = true;
        std::string reason;
        while (ok && !in.empty()) {
            const auto space = channel.read_space();
            const auto chunk = take(space.size());
            std::copy(chunk.begin(), chunk.end(), space.begin());
            channel.received(chunk.size(), plain, ok, reason);
            while (channel.has_plaintext()) {
                channel.drain(plain);
            }
        }
    }
    return 0;
}
