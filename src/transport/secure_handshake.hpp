// Internal: the authenticated key exchange that opens every link of a keyed domain (see
// docs/security.md). It has the shape of Noise NNpsk0: both ends make an ephemeral X25519 key
// pair, and the session keys come from the DH result AND the domain key, over a transcript of
// both ephemerals; each end then proves it derived the same keys with a MAC of the transcript.
// Nothing in it reveals the domain key, a recorded handshake replayed to either end fails (the
// other end's ephemeral is fresh), and a reflected message fails (each MAC is bound to its role).
//
//   initiator -> responder  hello   "MESHYSK1" | e_i (32) | offer_i (1)                    41 bytes
//   responder -> initiator  reply   "MESHYSK1" | e_r (32) | offer_r (1) | confirm_r (32)   74 bytes
//   initiator -> responder  finish  confirm_i (32)                                         32 bytes
//
//   offer     = the record ciphers an end can run fast besides ChaCha20-Poly1305: bit 0, AES-256-GCM
//               (hardware AES); the records use AES-256-GCM when both offer it. The offers are in h,
//               so a man in the middle who strips one breaks the confirmations.
//   c2s, s2c  = crypto_kx session keys (X25519, then BLAKE2b-512 of q | e_i | e_r)
//   h         = BLAKE2b-256("meshy secure handshake v1" | hello | reply[0..41))
//   prk       = BLAKE2b-256 keyed with the domain key (c2s | s2c | h)
//   k1..k4    = crypto_kdf_derive_from_key(prk, id 1..4, "meshysk1")
//   confirm_r = BLAKE2b-256 keyed with k1 (h);  confirm_i = BLAKE2b-256 keyed with k2 (h)
//   records initiator->responder use k3, responder->initiator k4 (see secure_channel.hpp)
//
// Pure functions over bytes (no I/O), so the fuzz target drives exactly what a connection runs.
#pragma once

#include <array>
#include <cstddef>
#include <span>

#include "meshy/buffer.hpp"
#include "transport/domain_key.hpp"

namespace meshy::detail::secure {

/// The first bytes every keyed end sends (the plain wire handshake starts "MSHY").
inline constexpr char magic[8] = {'M', 'E', 'S', 'H', 'Y', 'S', 'K', '1'};
inline constexpr std::size_t magic_size = sizeof magic;
inline constexpr std::size_t hello_size = magic_size + 32 + 1;
inline constexpr std::size_t reply_size = hello_size + 32;
inline constexpr std::size_t finish_size = 32;

/// Whether `bytes` start with `magic` (false for fewer bytes).
bool starts_with_magic(std::span<const std::byte> bytes) noexcept;

/// The AEAD that seals a session's records.
enum class Cipher : unsigned char {
    chacha20_poly1305,  ///< everywhere (IETF variant)
    aes256_gcm,         ///< when both ends have hardware AES: several times faster there
};

/// Whether this CPU runs AES-256-GCM in hardware (what this end offers).
bool aes256_gcm_available() noexcept;

/// The record keys of one session, one per direction, and the cipher both ends chose.
struct SessionKeys {
    std::array<unsigned char, 32> send{};
    std::array<unsigned char, 32> receive{};
    Cipher cipher = Cipher::chacha20_poly1305;
};

/// An end's X25519 key pair for one handshake.
struct EphemeralKey {
    std::array<unsigned char, 32> public_key{};
    std::array<unsigned char, 32> secret_key{};
};

class Handshake {
public:
    enum class Result {
        ok,
        no_key,    ///< the peer's message lacks the magic: it has no domain key (plain meshy, or not meshy)
        mismatch,  ///< the peer's proof failed: another key, or a replayed or forged message
    };

    /// Makes this end's ephemeral key pair. `offer_aes`: offer AES-256-GCM for the records (by
    /// default when this CPU has hardware AES).
    Handshake(const DomainKey& key, bool initiator, bool offer_aes = aes256_gcm_available());
    /// With a key pair made beforehand: for the fuzz target, whose inputs must not depend on a
    /// random key (and which spares a key generation per input). A connection never uses it: an
    /// ephemeral key serves one handshake.
    Handshake(const DomainKey& key, bool initiator, bool offer_aes, const EphemeralKey& ephemeral);
    ~Handshake();
    Handshake(const Handshake&) = delete;
    Handshake& operator=(const Handshake&) = delete;

    /// Initiator: appends the hello.
    void hello(Buffer& out);
    /// Responder: takes the hello (hello_size bytes) and appends the reply.
    Result on_hello(std::span<const std::byte> in, Buffer& out);
    /// Initiator: takes the reply (reply_size bytes). Appends the finish even when the reply
    /// fails, so that the responder learns of the mismatch as well.
    Result on_reply(std::span<const std::byte> in, Buffer& out);
    /// Responder: takes the finish (finish_size bytes).
    Result on_finish(std::span<const std::byte> in);
    /// The session's record keys, once on_reply() (initiator) or on_finish() (responder) said ok.
    const SessionKeys& keys() const noexcept { return keys_; }

private:
    /// Derives the keys and both confirmations from the peer's ephemeral and offer. @returns false
    /// when the peer's public key is unusable (a low-order point).
    bool derive(const unsigned char* peer_public, unsigned char peer_offer);

    bool initiator_;
    unsigned char offer_;
    bool derived_ = false;  // derive() succeeded: the confirmations are set
    std::array<unsigned char, 32> psk_{};
    std::array<unsigned char, 32> public_{};
    std::array<unsigned char, 32> secret_{};
    std::array<unsigned char, hello_size> hello_{};
    std::array<unsigned char, hello_size> reply_head_{};  // reply without its confirmation
    std::array<unsigned char, 32> confirm_r_{};
    std::array<unsigned char, 32> confirm_i_{};
    SessionKeys keys_;
};

}  // namespace meshy::detail::secure
