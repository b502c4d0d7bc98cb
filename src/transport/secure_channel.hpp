// Internal: the record layer of a keyed link, after its handshake (secure_handshake.hpp). The
// byte stream of frames is cut into records, each sealed with ChaCha20-Poly1305 (IETF):
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

namespace meshy::detail::secure {

inline constexpr std::size_t record_header = 4;
inline constexpr std::size_t record_tag = 16;
inline constexpr std::size_t record_overhead = record_header + record_tag;
/// Plaintext bytes in one record at most: large enough that the per-record cost vanishes in bulk
/// transfers, small enough that a receiver's ciphertext buffer stays small.
inline constexpr std::size_t max_record = 64u * 1024;

/// Seals one direction's records.
class Sealer {
public:
    explicit Sealer(const std::array<unsigned char, 32>& key) : key_(key) {}
    ~Sealer();
    /// Appends the bytes of `parts`, in order, to `out` as records (out is not cleared).
    void seal(std::span<const std::span<const std::byte>> parts, Buffer& out);
    /// Records sealed so far.
    std::uint64_t count() const noexcept { return counter_; }

private:
    std::array<unsigned char, 32> key_;
    std::uint64_t counter_ = 0;
};

/// Opens one direction's records.
class Opener {
public:
    enum class Opened { ok, need_more, error };
    explicit Opener(const std::array<unsigned char, 32>& key) : key_(key) {}
    ~Opener();
    /// The record at the start of `in`: its size in total and of its plaintext once its header
    /// arrived (need_more before); error for a length above max_record.
    static Opened peek(std::span<const std::byte> in, std::size_t& total, std::size_t& plain);
    /// Opens the complete record `record` (peek()'s `total` bytes) into `plain` (peek()'s `plain`
    /// bytes; may not overlap). @returns false when it fails to authenticate (tampered, replayed,
    /// reordered, or sealed with another key): the link must close.
    bool open(std::span<const std::byte> record, std::byte* plain);

private:
    std::array<unsigned char, 32> key_;
    std::uint64_t counter_ = 0;
};

/// Both directions of a keyed link, and the receive side's buffers: ciphertext as read from the
/// socket, and plaintext opened beyond what the reader had room for.
class SecureChannel {
public:
    explicit SecureChannel(const SessionKeys& keys) : sealer_(keys.send), opener_(keys.receive) {}

    /// Seals `parts` into `out` (cleared first).
    void seal(std::span<const std::span<const std::byte>> parts, Buffer& out) {
        out.clear();
        sealer_.seal(parts, out);
    }

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

private:
    Sealer sealer_;
    Opener opener_;
    Buffer cipher_;  // received ciphertext: [cipher_begin_, cipher_.size()) not opened yet
    std::size_t cipher_begin_ = 0;
    Buffer kept_;  // opened plaintext the reader had no room for: [kept_begin_, kept_.size())
    std::size_t kept_begin_ = 0;
};

}  // namespace meshy::detail::secure
