// Internal to the translation units of Connection: connection.cpp (handshake, reading, the
// writer, closing), connection_direct_write.cpp (senders writing their frames themselves while the
// writer is idle), connection_secure.cpp (the domain key's handshake) and connection_shm.cpp (the
// move to shared memory on a Unix link).
#pragma once

#include <sys/types.h>

#include <asio/experimental/as_tuple.hpp>
#include <asio/use_awaitable.hpp>
#include <cstddef>
#include <cstdint>
#include <span>

#include "transport/outbox.hpp"

namespace meshy::detail {

inline constexpr auto use_tuple = asio::experimental::as_tuple(asio::use_awaitable);

/// One non-blocking write of the bytes of a frame given as `head` then `body`, from `done` on.
/// @returns what send() or sendmsg() returns.
/// It makes the system call itself: glibc's wrappers are cancellation points, which in a process
/// of more than one thread (a node's always is) cost two atomic updates of the thread's
/// cancellation state around the call. meshy never cancels a thread.
ssize_t send_rest(int fd, std::span<const std::byte> head, std::span<const std::byte> body, std::size_t done);

/// A copy of the bytes of a frame given as `head` then `body` from `done` on: what a sender did not
/// write itself, or a whole frame (`done` 0) to queue.
SharedFrame rest_of(std::span<const std::byte> head, std::span<const std::byte> body, std::size_t done);

/// coarse_now() in ns, for the heartbeat and silence checks (taken on every read and write).
std::int64_t steady_ns();

}  // namespace meshy::detail
