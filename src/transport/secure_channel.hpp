// Internal: the record layer of a keyed link, after its handshake (secure_handshake.hpp). The
// byte stream of frames is cut into records, each sealed with the session's AEAD (ChaCha20-Poly1305
// IETF, or AES-256-GCM when both ends have hardware AES; secure_handshake.hpp), run by OpenSSL's
// libcrypto, whose AEADs use the CPU's vector units (several times libsodium's rate here):
//   u32 plaintext length (little-endian, at most max_record) | ciphertext | 16-byte tag
// The length is the associated data, and the nonce is a per-direction counter (4 zero bytes then
// the record's number, little-endian), so a record replayed, reordered, dropped or altered fails
// to open, and a record reflected back fails too (each direction has its own key). Records do not
// follow frame boundaries: many small frames share one, a large one spans several.
#pragma once

#include <cstddef>
#include <cstdint>
#include <span>
#include <string>
#include <vector>

#include "meshy/buffer.hpp"
#include "transport/secure_handshake.hpp"

struct evp_cipher_ctx_st;  // <openssl/evp.h>'s EVP_CIPHER_CTX, kept out of the includers

namespace meshy::detail::secure {

inline constexpr std::size_t record_header = 4;
inline constexpr std::size_t record_tag = 16;
inline constexpr std::size_t record_overhead = record_header + record_tag;
/// Plaintext bytes in one record at most: large enough that the per-record cost vanishes in bulk
/// transfers, small enough that a receiver's ciphertext buffer stays small.
inline constexpr std::size_t max_record = 64u * 1024;
/// Plaintext sealed at a time before it is written, when a frame or batch is larger: the peer opens
/// one piece while the next is sealed, instead of waiting for all of it.
inline constexpr std::size_t seal_piece = 4 * max_record;

/// One direction's key and cipher, for sealing or for opening: an OpenSSL cipher context keyed once
/// (the key schedule), then given each record's nonce. One sealer or one opener uses it.
class RecordKey {
public:
    enum class Use { seal, open };
    /// Throws std::bad_alloc when libcrypto cannot make the context.
    RecordKey(const std::array<unsigned char, 32>& key, Cipher cipher, Use use);
    ~RecordKey();
    RecordKey(const RecordKey&) = delete;
    RecordKey& operator=(const RecordKey&) = delete;

    /// Seals `len` bytes at `m` into `c` (may be the same), the tag into `tag`; `ad` authenticated.
    void seal(std::byte* c,
              std::byte* tag,
              const std::byte* m,
              std::size_t len,
              const std::byte* ad,
              std::size_t ad_len,
              std::uint64_t counter);
    /// Opens `len` bytes at `c` with `tag` into `m`. @returns false when they fail to authenticate.
    bool open(std::byte* m,
              const std::byte* c,
              std::size_t len,
              const std::byte* tag,
              const std::byte* ad,
              std::size_t ad_len,
              std::uint64_t counter);
    Cipher cipher() const noexcept { return cipher_; }

private:
    Cipher cipher_;
    evp_cipher_ctx_st* ctx_;  // EVP_CIPHER_CTX
};

/// Seals one direction's records.
class Sealer {
public:
    Sealer(const std::array<unsigned char, 32>& key, Cipher cipher) : key_(key, cipher, RecordKey::Use::seal) {}
    /// Appends the bytes of `parts`, in order, to `out` as records (out is not cleared).
    void seal(std::span<const std::span<const std::byte>> parts, Buffer& out);
    /// Records sealed so far.
    std::uint64_t count() const noexcept { return counter_; }
    /// Starts again at the first record: reuses the nonces, so never on a live link (tests only).
    void restart() noexcept { counter_ = 0; }

private:
    RecordKey key_;
    std::uint64_t counter_ = 0;
};

/// Opens one direction's records.
class Opener {
public:
    enum class Opened { ok, need_more, error };
    Opener(const std::array<unsigned char, 32>& key, Cipher cipher) : key_(key, cipher, RecordKey::Use::open) {}
    /// The record at the start of `in`: its size in total and of its plaintext once its header
    /// arrived (need_more before); error for a length above max_record.
    static Opened peek(std::span<const std::byte> in, std::size_t& total, std::size_t& plain);
    /// Opens the complete record `record` (peek()'s `total` bytes) into `plain` (peek()'s `plain`
    /// bytes; may not overlap). @returns false when it fails to authenticate (tampered, replayed,
    /// reordered, or sealed with another key): the link must close.
    bool open(std::span<const std::byte> record, std::byte* plain);
    /// Starts again at the first record.
    void restart() noexcept { counter_ = 0; }

private:
    RecordKey key_;
    std::uint64_t counter_ = 0;
};

/// Both directions of a keyed link, and the receive side's buffers: ciphertext as read from the
/// socket, and plaintext opened beyond what the reader had room for.
class SecureChannel {
public:
    explicit SecureChannel(const SessionKeys& keys)
        : sealer_(keys.send, keys.cipher), opener_(keys.receive, keys.cipher) {}

    /// Seals `parts` into `out` (cleared first).
    void seal(std::span<const std::span<const std::byte>> parts, Buffer& out) {
        out.clear();
        sealer_.seal(parts, out);
    }
    /// Appends to `out`, sealed, the `length` bytes from `from` on of the bytes of `parts` in order:
    /// a large frame sealed piece by piece, so that the first piece goes out while the rest is sealed.
    void append_sealed(std::span<const std::span<const std::byte>> parts,
                       std::size_t from,
                       std::size_t length,
                       Buffer& out);

    /// Where the next socket read goes.
    std::span<std::byte> read_space();
    /// `n` bytes arrived in read_space(): opens the records now complete, their plaintext into
    /// `into` while it fits, the rest kept for drain(). @returns the bytes put into `into`, or
    /// false in `ok` (with `reason`) when a record is malformed or fails to authenticate.
    std::size_t received(std::size_t n, std::span<std::byte> into, bool& ok, std::string& reason);
    /// Plaintext kept from earlier records, moved into `into` as far as it fits. @returns bytes moved.
    std::size_t drain(std::span<std::byte> into);
    /// Whether plaintext waits for drain().
    bool has_plaintext() const noexcept { return kept_begin_ < kept_.size(); }
    /// Whether every byte received was opened and handed on (no record begun, no plaintext kept).
    bool idle() const noexcept { return !has_plaintext() && cipher_begin_ == cipher_.size(); }
    /// Back to the state of a new channel with the same keys, keeping the buffers' memory: the fuzz
    /// target starts each input on a new channel, and allocating the ciphertext buffer (256 KiB, past
    /// ASan's size classes: an mmap and munmap each time) was most of its time.
    void restart() noexcept {
        sealer_.restart();
        opener_.restart();
        cipher_.clear();
        cipher_begin_ = 0;
        kept_.clear();
        kept_begin_ = 0;
    }

private:
    Sealer sealer_;
    Opener opener_;
    Buffer cipher_;  // received ciphertext: [cipher_begin_, cipher_.size()) not opened yet
    std::size_t cipher_begin_ = 0;
    Buffer kept_;  // opened plaintext the reader had no room for: [kept_begin_, kept_.size())
    std::size_t kept_begin_ = 0;
};

}  // namespace meshy::detail::secure
