// Fuzz target: what a keyed link's peer sends before and after its proof — the key exchange's
// messages (either role) and the sealed records that follow. Both ends hold one fixed key and one
// fixed ephemeral key pair (made once from a fixed seed), so an input may also carry a well-formed
// message and replays the same; records are opened with fixed session keys, under either cipher.
#include <sodium.h>

#include <array>
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

namespace {

const EphemeralKey& fixed_ephemeral() {
    static const EphemeralKey key = [] {
        EphemeralKey k;
        std::array<unsigned char, crypto_kx_SEEDBYTES> seed{};
        seed.fill(9);
        if (sodium_init() < 0 || crypto_kx_seed_keypair(k.public_key.data(), k.secret_key.data(), seed.data()) != 0) {
            __builtin_trap();
        }
        return k;
    }();
    return key;
}

/// One channel per cipher, restarted for each input: a new one would allocate its ciphertext
/// buffer every time. Each is made on first use (AES-256-GCM only where the CPU has it).
SecureChannel& channel_for(Cipher cipher) {
    const auto make = [](Cipher c) {
        SessionKeys keys;
        keys.send.fill(1);
        keys.receive.fill(2);
        keys.cipher = c;
        return new SecureChannel(keys);
    };
    static SecureChannel* const chacha = make(Cipher::chacha20_poly1305);
    SecureChannel* channel = chacha;
    if (cipher == Cipher::aes256_gcm) {
        static SecureChannel* const aes = make(Cipher::aes256_gcm);
        channel = aes;
    }
    channel->restart();
    return *channel;
}

}  // namespace

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
        secure::Handshake responder(key, false, aes256_gcm_available(), fixed_ephemeral());
        if (responder.on_hello(take(hello_size), out) == secure::Handshake::Result::ok) {
            (void)responder.on_finish(take(finish_size));
        }
    } else if (mode == 1) {
        secure::Handshake initiator(key, true, aes256_gcm_available(), fixed_ephemeral());
        initiator.hello(out);
        out.clear();
        (void)initiator.on_reply(take(reply_size), out);
    } else {
        SecureChannel& channel = channel_for(aes ? Cipher::aes256_gcm : Cipher::chacha20_poly1305);
        static std::vector<std::byte> plain(4096);
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
