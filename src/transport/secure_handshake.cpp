#include "transport/secure_handshake.hpp"

#include <sodium.h>

#if defined(__aarch64__)
#    include <asm/hwcap.h>
#    include <sys/auxv.h>
#endif

#include <cstring>
#include <stdexcept>

namespace meshy::detail::secure {
namespace {

constexpr char transcript_label[] = "meshy secure handshake v1";
constexpr char kdf_context[crypto_kdf_CONTEXTBYTES + 1] = "meshysk1";
enum : std::uint64_t {
    confirm_responder = 1,
    confirm_initiator = 2,
    initiator_to_responder = 3,
    responder_to_initiator = 4
};

constexpr unsigned char offer_aes256_gcm = 1;

const unsigned char* bytes_of(std::span<const std::byte> s) {
    return reinterpret_cast<const unsigned char*>(s.data());
}

void mac(unsigned char out[32], const unsigned char key[32], const unsigned char* data, std::size_t size) {
    crypto_generichash(out, 32, data, size, key, 32);
}

}  // namespace

bool aes256_gcm_available() noexcept {
#if defined(__aarch64__)
    // ARMv8's AES and PMULL instructions, which OpenSSL's GCM uses (libsodium 1.0.18 knows only x86's).
    const unsigned long caps = getauxval(AT_HWCAP);
    return (caps & HWCAP_AES) != 0 && (caps & HWCAP_PMULL) != 0;
#else
    return sodium_init() >= 0 && crypto_aead_aes256gcm_is_available() == 1;  // AES-NI and PCLMUL
#endif
}

bool starts_with_magic(std::span<const std::byte> bytes) noexcept {
    return bytes.size() >= magic_size && std::memcmp(bytes.data(), magic, magic_size) == 0;
}

Handshake::Handshake(const DomainKey& key, bool initiator, bool offer_aes)
    : initiator_(initiator), offer_(offer_aes ? offer_aes256_gcm : 0), psk_(key.bytes) {
    if (sodium_init() < 0) {
        throw std::runtime_error("libsodium failed to initialise");
    }
    crypto_kx_keypair(public_.data(), secret_.data());
}

Handshake::Handshake(const DomainKey& key, bool initiator, bool offer_aes, const EphemeralKey& ephemeral)
    : initiator_(initiator),
      offer_(offer_aes ? offer_aes256_gcm : 0),
      psk_(key.bytes),
      public_(ephemeral.public_key),
      secret_(ephemeral.secret_key) {
    if (sodium_init() < 0) {
        throw std::runtime_error("libsodium failed to initialise");
    }
}

Handshake::~Handshake() {
    sodium_memzero(psk_.data(), psk_.size());
    sodium_memzero(secret_.data(), secret_.size());
    sodium_memzero(&keys_, sizeof keys_);
}

void Handshake::hello(Buffer& out) {
    std::memcpy(hello_.data(), magic, magic_size);
    std::memcpy(hello_.data() + magic_size, public_.data(), public_.size());
    hello_[magic_size + 32] = offer_;
    out.append(hello_.data(), hello_.size());
}

bool Handshake::derive(const unsigned char* peer_public, unsigned char peer_offer) {
    // The reply's head is magic | e_r | offer_r whoever computes it.
    std::memcpy(reply_head_.data(), magic, magic_size);
    std::memcpy(reply_head_.data() + magic_size, initiator_ ? peer_public : public_.data(), 32);
    reply_head_[magic_size + 32] = initiator_ ? peer_offer : offer_;
    // Only the bit both ends know counts: a later end may offer more.
    keys_.cipher = (offer_ & peer_offer & offer_aes256_gcm) != 0 ? Cipher::aes256_gcm : Cipher::chacha20_poly1305;
    std::array<unsigned char, 32> c2s{}, s2c{};
    const int kx =
        initiator_ ? crypto_kx_client_session_keys(s2c.data(), c2s.data(), public_.data(), secret_.data(), peer_public)
                   : crypto_kx_server_session_keys(c2s.data(), s2c.data(), public_.data(), secret_.data(), peer_public);
    if (kx != 0) {
        return false;
    }
    unsigned char h[32];
    crypto_generichash_state st;
    crypto_generichash_init(&st, nullptr, 0, sizeof h);
    crypto_generichash_update(&st, reinterpret_cast<const unsigned char*>(transcript_label),
                              sizeof transcript_label - 1);
    crypto_generichash_update(&st, hello_.data(), hello_.size());
    crypto_generichash_update(&st, reply_head_.data(), reply_head_.size());
    crypto_generichash_final(&st, h, sizeof h);

    unsigned char prk[32];
    crypto_generichash_init(&st, psk_.data(), psk_.size(), sizeof prk);
    crypto_generichash_update(&st, c2s.data(), c2s.size());
    crypto_generichash_update(&st, s2c.data(), s2c.size());
    crypto_generichash_update(&st, h, sizeof h);
    crypto_generichash_final(&st, prk, sizeof prk);

    unsigned char k[32];
    crypto_kdf_derive_from_key(k, sizeof k, confirm_responder, kdf_context, prk);
    mac(confirm_r_.data(), k, h, sizeof h);
    crypto_kdf_derive_from_key(k, sizeof k, confirm_initiator, kdf_context, prk);
    mac(confirm_i_.data(), k, h, sizeof h);
    crypto_kdf_derive_from_key(initiator_ ? keys_.send.data() : keys_.receive.data(), 32, initiator_to_responder,
                               kdf_context, prk);
    crypto_kdf_derive_from_key(initiator_ ? keys_.receive.data() : keys_.send.data(), 32, responder_to_initiator,
                               kdf_context, prk);
    sodium_memzero(k, sizeof k);
    sodium_memzero(prk, sizeof prk);
    sodium_memzero(c2s.data(), c2s.size());
    sodium_memzero(s2c.data(), s2c.size());
    sodium_memzero(secret_.data(), secret_.size());  // forward secrecy: the ephemeral is used once
    derived_ = true;
    return true;
}

Handshake::Result Handshake::on_hello(std::span<const std::byte> in, Buffer& out) {
    if (derived_) {
        return Result::mismatch;  // one hello per handshake
    }
    if (in.size() != hello_size || !starts_with_magic(in)) {
        return Result::no_key;
    }
    std::memcpy(hello_.data(), in.data(), hello_size);
    if (!derive(bytes_of(in) + magic_size, bytes_of(in)[magic_size + 32])) {
        return Result::mismatch;
    }
    out.append(reply_head_.data(), reply_head_.size());
    out.append(confirm_r_.data(), confirm_r_.size());
    return Result::ok;
}

Handshake::Result Handshake::on_reply(std::span<const std::byte> in, Buffer& out) {
    if (in.size() != reply_size || !starts_with_magic(in)) {
        return Result::no_key;
    }
    const bool derived = !derived_ && derive(bytes_of(in) + magic_size, bytes_of(in)[magic_size + 32]);
    const bool confirmed =
        derived && sodium_memcmp(bytes_of(in) + hello_size, confirm_r_.data(), confirm_r_.size()) == 0;
    if (!confirmed) {
        // The responder must learn of the mismatch too: it gets a finish that cannot verify.
        std::array<unsigned char, finish_size> junk{};
        randombytes_buf(junk.data(), junk.size());
        out.append(junk.data(), junk.size());
        sodium_memzero(&keys_, sizeof keys_);
        return Result::mismatch;
    }
    out.append(confirm_i_.data(), confirm_i_.size());
    return Result::ok;
}

Handshake::Result Handshake::on_finish(std::span<const std::byte> in) {
    if (!derived_ || in.size() != finish_size ||
        sodium_memcmp(bytes_of(in), confirm_i_.data(), confirm_i_.size()) != 0) {
        sodium_memzero(&keys_, sizeof keys_);
        return Result::mismatch;
    }
    return Result::ok;
}

}  // namespace meshy::detail::secure
