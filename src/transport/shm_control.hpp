// Internal: the messages that upgrade a Unix-socket link to shared memory (docs/shm.md). They
// travel as the body of a ping frame, which every version of meshy accepts and a node that does not
// know them ignores, so the wire protocol stays version 2 and compatible.
//
//   body = "MSHM" | u8 kind | (offer only) u64 ring bytes
//
// offer:  the dialer created two rings and four eventfds; they come with this frame (SCM_RIGHTS).
// switch: everything the sender sends after this frame goes through its ring, not the socket
//         (the answer to an offer, and the dialer's own switch once it saw the accepter's).
// refuse: the accepter will not use shared memory on this link.
#pragma once

#include <cstddef>
#include <cstdint>
#include <span>

#include "meshy/buffer.hpp"

namespace meshy::detail::shm {

enum class ControlKind : std::uint8_t { offer = 1, switch_over = 2, refuse = 3 };

struct Control {
    ControlKind kind{};
    std::uint64_t ring_bytes = 0;  ///< offer: the size of each ring's mapping
};

/// Descriptors an offer carries, in this order: the dialer-to-accepter ring, the accepter-to-dialer
/// ring, then per ring its "data" eventfd (its writer signals its reader) and "room" eventfd.
inline constexpr std::size_t offer_fds = 6;

/// True when a ping's body is a shared-memory control message (whether or not well-formed).
bool is_control(std::span<const std::byte> ping_body) noexcept;
/// Decodes a ping body. @returns false when malformed (wrong size, unknown kind).
bool decode_control(std::span<const std::byte> ping_body, Control& out) noexcept;
/// Appends a whole ping frame carrying `control`.
void encode_control(Buffer& out, const Control& control);

}  // namespace meshy::detail::shm
