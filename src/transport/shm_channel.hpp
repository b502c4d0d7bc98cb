// Internal: the shared-memory byte channel of a link upgraded from a Unix socket (docs/shm.md):
// a ring each way, and the eventfds that wake a sleeping reader (data) or writer (room). The
// dialer creates it and passes its descriptors over the socket; the accepter checks and maps them.
// The Connection stays the Link: after the switch its reader and writer move their bytes through
// this channel instead of the socket, with the same outbox, frames and budget.
#pragma once

#include <array>
#include <asio/any_io_executor.hpp>
#include <asio/posix/stream_descriptor.hpp>
#include <asio/post.hpp>
#include <chrono>
#include <cstddef>
#include <memory>
#include <span>
#include <string>
#include <system_error>
#include <vector>

#include "transport/shm_control.hpp"
#include "transport/shm_region.hpp"
#include "transport/shm_ring.hpp"

namespace meshy::detail {

class ShmChannel {
public:
    using Clock = std::chrono::steady_clock;

    ~ShmChannel();
    ShmChannel(const ShmChannel&) = delete;
    ShmChannel& operator=(const ShmChannel&) = delete;

    /// The dialer's side: two rings of `ring_bytes` of data each, and four eventfds.
    /// @returns null on failure (`error` says why).
    static std::unique_ptr<ShmChannel> create(const asio::any_io_executor& executor,
                                              std::size_t ring_bytes,
                                              std::string& error);
    /// The accepter's side, from the descriptors of an offer (adopted: closed on failure too).
    /// Each ring's mapping must be at most `max_mapping_bytes`. @returns null on failure.
    static std::unique_ptr<ShmChannel> adopt(const asio::any_io_executor& executor,
                                             std::span<const int> fds,
                                             std::size_t max_mapping_bytes,
                                             std::string& error);

    /// The descriptors an offer carries (see shm::offer_fds for their order).
    std::array<int, shm::offer_fds> offer_fds() const noexcept;
    /// The offer went out: the memory descriptors are not needed any more (the mappings stay).
    void offered() noexcept;
    /// Each ring's mapping size.
    std::size_t mapping_bytes() const noexcept { return tx_region_.bytes().size(); }

    /// Sending: copies what fits of `bytes` into the outgoing ring and wakes the peer's reader if it
    /// sleeps. One writer at a time (the link's writer, or a sender while the writer is idle).
    /// @returns the bytes taken, or -1 when the peer corrupted the ring or the channel is closed.
    std::ptrdiff_t write(std::span<const std::byte> bytes) noexcept;
    /// write() of `parts` one after the other (see ShmRingWriter's), waking the reader once.
    std::ptrdiff_t write(std::span<const std::span<const std::byte>> parts) noexcept;
    /// A sender's thread about to wait for room (see room_fd()): says so in the ring's header.
    /// @returns true when there is room after all (do not wait).
    bool prepare_room_wait() noexcept { return closed_ || tx_.announce_waiting(); }
    /// The eventfd the peer's reader signals when it freed room (to poll; open until destruction).
    int room_fd() const noexcept { return tx_room_; }
    /// The wait prepare_room_wait() began is over.
    void room_wait_over() noexcept;
    /// Calls `handler(std::error_code)` once the outgoing ring has room (at once if it has).
    template <class Handler>
    void async_wait_for_room(Handler&& handler);

    /// Receiving: copies up to `into.size()` bytes out of the incoming ring; wakes the peer's
    /// writer if it waits for room. On bad_peer `why` says what the peer did.
    ShmRingReader::Read read(std::span<std::byte> into, std::string& why) noexcept;
    /// Spins while nothing arrived, for at most `limit` (not at all on a single allowed CPU), and
    /// less after spins that ended empty-handed (halved each time, down to a sixteenth): a link
    /// whose peer answers slower than the spin stops burning the CPU that peer may need. Bytes
    /// that arrive within twice `limit` of a spin that gave up restore the whole spin (read()): a
    /// peer that answers about that fast is caught by it again.
    /// @returns true when bytes arrived.
    bool spin_for_data(std::chrono::nanoseconds limit) noexcept;
    /// Calls `handler(std::error_code)` once bytes arrived in the incoming ring (at once if some
    /// have); sleeps on the data eventfd meanwhile: an idle channel costs no CPU.
    template <class Handler>
    void async_wait_for_data(Handler&& handler);

    /// The peer's end of the socket closed: what it published before is still read (a goodbye,
    /// a last reply), then the link ends. Wakes a reader that sleeps.
    void set_peer_gone() noexcept;
    bool peer_gone() const noexcept { return peer_gone_; }

    /// Unmaps both rings and ends the waits (they complete with operation_aborted). The caller
    /// makes sure no read or write runs meanwhile; afterwards they fail.
    void close() noexcept;
    bool closed() const noexcept { return closed_; }

private:
    ShmChannel(const asio::any_io_executor& executor, ShmRegion tx, ShmRegion rx, std::array<int, 4> events);
    static void drain(int eventfd) noexcept;
    /// Announces the wait in `ring`'s header, then sleeps on `waiter` (a dup of `eventfd`).
    template <class Ring, class Handler>
    void async_wait(Ring& ring, asio::posix::stream_descriptor& waiter, int eventfd, Handler&& handler);
    static void signal(int eventfd) noexcept;

    ShmRegion tx_region_;
    ShmRegion rx_region_;
    ShmRingWriter tx_;
    ShmRingReader rx_;
    // Eventfds: the outgoing ring's data (we signal) and room (we wait), the incoming ring's data
    // (we wait) and room (we signal). Kept open until destruction: a sender may still poll one.
    int tx_data_ = -1;
    int tx_room_ = -1;
    int rx_data_ = -1;
    int rx_room_ = -1;
    asio::posix::stream_descriptor room_waiter_;  // dup of tx_room_
    asio::posix::stream_descriptor data_waiter_;  // dup of rx_data_
    bool closed_ = false;
    bool peer_gone_ = false;
    // Asked once a channel, on the thread that sets it up (its reader's, usually), not once a
    // process: a process may be pinned to one CPU for a while and then let go (or the reverse).
    bool spin_useful_ = false;
    std::chrono::nanoseconds spin_budget_{-1};  // see spin_for_data(); -1: not set yet
    std::chrono::nanoseconds spin_limit_{0};    // the last spin's `limit`
    Clock::time_point spin_missed_at_{};        // when the last spin that gave up began; {}: none since
};

/// Sends `bytes` with `fds` attached (SCM_RIGHTS) on Unix socket `sock`, without blocking.
/// @returns what sendmsg() returns.
std::ptrdiff_t send_with_fds(int sock, std::span<const std::byte> bytes, std::span<const int> fds) noexcept;
/// Receives into `into` from Unix socket `sock` without blocking; descriptors that came along are
/// appended to `fds` (close-on-exec), at most a few. @returns what recvmsg() returns.
std::ptrdiff_t recv_with_fds(int sock, std::span<std::byte> into, std::vector<int>& fds) noexcept;

template <class Ring, class Handler>
void ShmChannel::async_wait(Ring& ring, asio::posix::stream_descriptor& waiter, int eventfd, Handler&& handler) {
    if (closed_ || ring.announce_waiting()) {
        asio::post(waiter.get_executor(), [h = std::forward<Handler>(handler), closed = closed_]() mutable {
            h(closed ? std::error_code(asio::error::operation_aborted) : std::error_code{});
        });
        return;
    }
    waiter.async_wait(asio::posix::stream_descriptor::wait_read,
                      [this, &ring, eventfd, h = std::forward<Handler>(handler)](std::error_code ec) mutable {
                          if (!ec && !closed_) {
                              drain(eventfd);
                              ring.clear_waiting();
                          }
                          h(closed_ ? std::error_code(asio::error::operation_aborted) : ec);
                      });
}

template <class Handler>
void ShmChannel::async_wait_for_room(Handler&& handler) {
    async_wait(tx_, room_waiter_, tx_room_, std::forward<Handler>(handler));
}

template <class Handler>
void ShmChannel::async_wait_for_data(Handler&& handler) {
    async_wait(rx_, data_waiter_, rx_data_, std::forward<Handler>(handler));
}

}  // namespace meshy::detail
