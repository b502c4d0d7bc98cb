// Internal: the control messages of shared-memory links (docs/shm.md). They travel as the body of a
// ping frame, which every version of meshy accepts and a node that does not know them ignores, so
// the wire protocol stays version 2 and compatible.
//
//   body = "MSHM" | u8 kind | fields (little-endian)
//
// offer:       u64 ring bytes. The dialer created two rings and four eventfds; they come with this
//              frame (SCM_RIGHTS).
// switch:      everything the sender sends after this frame goes through its ring, not the socket
//              (the answer to an offer, and the dialer's own switch once it saw the accepter's).
// refuse:      the accepter will not use shared memory on this link.
// pool:        u64 pool bytes. The sender's loan pool comes with this frame (one memfd), just
//              before its switch; the receiver maps it read-only, or ignores it.
// pool_mapped: the receiver mapped the sender's pool: loans may reach it as `loaned` frames.
// loaned:      u8 codec | u64 sent_at_ns | u32 slot | u32 generation | u64 offset | u64 length |
//              topic (the rest, 1 to 65535 bytes). A topic message whose payload lies in the
//              sender's pool, at `offset`, `length` bytes; the receiver sends `release` once done.
// release:     u32 slot | u32 generation. The receiver let go of that loaned message.
#pragma once

#include <cstddef>
#include <cstdint>
#include <span>
#include <string_view>

#include "meshy/buffer.hpp"
#include "meshy/codec.hpp"

namespace meshy::detail::shm {

enum class ControlKind : std::uint8_t {
    offer = 1,
    switch_over = 2,
    refuse = 3,
    pool = 4,
    pool_mapped = 5,
    loaned = 6,
    release = 7,
};

struct Control {
    ControlKind kind{};
    std::uint64_t ring_bytes = 0;  ///< offer: the size of each ring's mapping
    std::uint64_t pool_bytes = 0;  ///< pool: its size
    // loaned and release: the block (loaned also where it lies and what it is)
    std::uint32_t slot = 0;
    std::uint32_t generation = 0;
    std::uint64_t offset = 0;
    std::uint64_t length = 0;
    CodecId codec{};
    std::uint64_t sent_at_ns = 0;
    std::string_view topic{};  ///< loaned: points into the decoded body
};

/// Descriptors an offer carries, in this order: the dialer-to-accepter ring, the accepter-to-dialer
/// ring, then per ring its "data" eventfd (its writer signals its reader) and "room" eventfd.
inline constexpr std::size_t offer_fds = 6;

/// True when a ping's body is a shared-memory control message (whether or not well-formed).
bool is_control(std::span<const std::byte> ping_body) noexcept;
/// Decodes a ping body. @returns false when malformed (wrong size, unknown kind, a loaned message
/// without a topic).
bool decode_control(std::span<const std::byte> ping_body, Control& out) noexcept;
/// Appends a whole ping frame carrying `control`.
void encode_control(Buffer& out, const Control& control);

/// True when `length` bytes at `offset` lie within a pool of `pool_bytes` (and `length` is not 0).
constexpr bool loan_in_pool(std::uint64_t offset, std::uint64_t length, std::uint64_t pool_bytes) noexcept {
    return length > 0 && offset <= pool_bytes && length <= pool_bytes - offset;
}

}  // namespace meshy::detail::shm
