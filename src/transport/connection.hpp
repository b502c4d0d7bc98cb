// Internal: one connection to a peer, over TCP or a Unix socket: the Link the node sends through.
// It runs a handshake, then a reader (frames to the handler), a writer (the outbox's batches in
// few writes) and a watchdog (heartbeats out; silence, a missing handshake and frames that stall
// in). It never holds more receive memory than the bytes that arrived, within the node's budget.
#pragma once

#include <array>
#include <asio/any_io_executor.hpp>
#include <asio/awaitable.hpp>
#include <asio/buffer.hpp>
#include <asio/experimental/concurrent_channel.hpp>
#include <asio/generic/stream_protocol.hpp>
#include <asio/strand.hpp>
#include <atomic>
#include <chrono>
#include <cstdint>
#include <memory>
#include <span>
#include <string>
#include <string_view>
#include <vector>

#include "meshy/buffer.hpp"
#include "transport/domain_key.hpp"
#include "transport/link.hpp"
#include "transport/outbox.hpp"
#include "transport/read_buffer.hpp"
#include "transport/receive_budget.hpp"
#include "transport/shm_pool_allocator.hpp"
#include "transport/warn_limiter.hpp"
#include "wire/frame.hpp"

namespace meshy::detail {

namespace secure {
class SecureChannel;
}
namespace shm {
struct Control;
}
class ShmChannel;
class ShmLoanPool;
class ShmLoanView;
class ShmRegion;

class Connection;

/// A topic message lent by a shared-memory peer: its payload lies in that peer's pool (`view`).
struct LoanedMessage {
    std::string_view topic;
    CodecId codec{};
    std::uint64_t sent_at_ns = 0;
    std::shared_ptr<const ShmLoanView> view;
};

/// What a connection reports to its owner. Called on the connection's strand, never with the
/// connection's own lock held.
class ConnectionHandler {
public:
    virtual ~ConnectionHandler() = default;
    /// The peer's handshake arrived and passed the domain and version checks.
    /// @returns false to refuse the peer (the connection then closes with `reason`).
    virtual bool on_handshake(const std::shared_ptr<Connection>& conn,
                              const wire::Handshake& hs,
                              std::string& reason) = 0;
    /// A well-formed frame (bodies are checked by the handler, which closes on a bad one).
    virtual void on_frame(const std::shared_ptr<Connection>& conn, const wire::FrameView& frame) = 0;
    /// The frames of one read were handed to on_frame(): the reader is about to wait (for more
    /// bytes, or its turn) or to end. A handler that batches per read delivers its batch now.
    virtual void on_frames_done(const std::shared_ptr<Connection>& conn) { (void)conn; }
    /// A loaned message arrived (docs/shm.md, "Loans"). Dropping `message.view` gives the block back.
    virtual void on_loaned(const std::shared_ptr<Connection>& conn, LoanedMessage message) {
        (void)conn;
        (void)message;
    }
    /// The connection closed (once).
    virtual void on_closed(const std::shared_ptr<Connection>& conn, const std::string& reason) = 0;
};

struct ConnectionConfig {
    wire::Handshake self;          ///< our handshake
    std::string expected_peer_id;  ///< for outbound connections: who we dialed
    std::size_t max_frame_size = 0;
    std::size_t outbox_capacity = 1024;
    bool wait_when_full = false;  ///< see NodeOptions::outbox_full: drop only at twice the capacity
    std::chrono::milliseconds outbox_ttl{5000};
    std::chrono::milliseconds heartbeat_interval{500};
    std::chrono::milliseconds peer_timeout{2500};
    /// The peer's handshake must arrive within this time of the connection's start.
    std::chrono::milliseconds handshake_timeout{2000};
    /// A frame, once begun, must complete within `frame_grace` plus its size at `min_frame_rate`
    /// bytes a second.
    std::chrono::milliseconds frame_grace{1000};
    std::size_t min_frame_rate = 1024u * 1024;
    std::size_t socket_buffer_size = 0;  ///< SO_SNDBUF and SO_RCVBUF; 0: the kernel's
    /// The node's receive budget (NodeOptions::receive_budget), shared by its connections; null:
    /// unbounded. A frame it cannot hold closes the connection.
    std::shared_ptr<ReceiveBudget> receive_budget;
    /// Only one thread runs the executor (the node's own loop): the connection's coroutines need
    /// no strand to take turns, and go without one (a strand costs allocations per operation).
    bool one_thread = false;
    /// The domain key (NodeOptions::domain_key_file); null: none. With a key, the link starts with
    /// the authenticated key exchange of secure_handshake.hpp and every byte after it travels in
    /// sealed records (secure_channel.hpp); the node handshake goes inside.
    std::shared_ptr<const DomainKey> domain_key;
    /// NodeOptions::allow_shm: a Unix-socket link without a domain key is upgraded to shared memory
    /// when both ends allow it (the dialer offers, the accepter maps; see shm_channel.hpp).
    bool allow_shm = false;
    std::size_t shm_ring_bytes = 2u * 1024 * 1024;  ///< NodeOptions::shm_ring_bytes
    /// The node's loan pool, offered to shared-memory peers before the switch; null: none.
    std::shared_ptr<ShmLoanPool> loan_pool;
    /// The largest pool of a peer this node maps (NodeOptions::shm_pool_bytes).
    std::size_t shm_pool_bytes = 64u * 1024 * 1024;
};

class Connection final : public Link, public std::enable_shared_from_this<Connection> {
public:
    using Socket = asio::generic::stream_protocol::socket;

    Connection(Socket socket,
               bool outbound,
               bool is_unix,
               ConnectionConfig config,
               std::shared_ptr<ConnectionHandler> handler);
    ~Connection() override;

    /// Starts the handshake, reader, writer and watchdog.
    void start();

    bool send(std::span<const std::byte> head,
              std::span<const std::byte> body,
              SendMode mode,
              Clock::time_point deadline = {}) override;
    bool send(SharedFrame frame, SendMode mode) override;
    void wait_for_room(Clock::time_point deadline) override { outbox_.wait_for_room(deadline); }
    bool park_room_waiter(std::shared_ptr<RoomWaiter> waiter, bool& closed) override {
        return outbox_.park(std::move(waiter), closed);
    }
    void close(const std::string& reason) override;
    void close_after(SharedFrame last, const std::string& reason) override;

    bool open() const noexcept override { return !closed_.load(std::memory_order_acquire); }
    bool outbound() const noexcept override { return outbound_; }
    const wire::Handshake& peer() const noexcept override { return peer_; }
    const std::string& remote() const noexcept override { return remote_; }
    std::string_view kind() const noexcept override {
        return shm_tx_.load(std::memory_order_relaxed) ? "shm" : is_unix_ ? "unix" : "tcp";
    }
    asio::any_io_executor executor() const override { return strand_; }
    std::uint64_t dropped() const noexcept override { return outbox_.dropped(); }

    /// Sends a message whose payload is `block` of the node's loan pool as a `loaned` frame, when
    /// the peer mapped the pool; the peer holds the block until it sends it back (or the link
    /// closes). @returns false when it cannot (the caller sends the bytes instead).
    bool send_loaned(const ShmPoolAllocator::Block& block,
                     CodecId codec,
                     std::uint64_t sent_at_ns,
                     std::string_view topic);
    /// A loaned message of the peer's was let go of: sends the block back. Thread-safe.
    void release_loan(std::uint32_t slot, std::uint32_t generation);

    bool is_unix() const noexcept { return is_unix_; }
    /// True once the peer's handshake passed the checks.
    bool handshaken() const noexcept { return handshaken_.load(std::memory_order_acquire); }
    /// The peer's id, shareable with queued messages; null before the handshake.
    const std::shared_ptr<const std::string>& peer_id() const noexcept { return peer_id_; }
    /// The process at the other end of a Unix socket (SO_PEERCRED), else 0.
    std::int64_t peer_pid() const noexcept { return peer_pid_; }
    /// The receive buffer the frame being handed to ConnectionHandler::on_frame lies in: keeping
    /// a reference keeps its bytes (the reader never overwrites a buffer still shared).
    const std::shared_ptr<Buffer>& read_buffer() const noexcept { return reader_.buffer(); }

    /// Connections alive in this process (for releasing memory after a flood).
    static std::size_t live_count() noexcept;
    /// "tcp:ADDRESS:PORT" of a socket's remote end ("unix" for a Unix socket), for logs.
    static std::string describe_remote(const Socket& s, bool is_unix);

private:
    // The reader: read_some() hands on the frames that have arrived, then starts a read into a
    // buffer with room; its completion, on_read(), calls read_some() again. end_reader() ends it.
    void start_reader();
    void read_some();
    void on_read(const std::error_code& ec, std::size_t n);
    void end_reader(const std::string& reason, WarnKind kind = WarnKind::none);
    enum class Taken { need_more, handshake, ended };
    /// The peer's handshake, checked; a refusal ends the reader.
    Taken take_handshake(std::span<const std::byte> pending);
    asio::awaitable<void> write_loop();
    /// Keyed links: the authenticated key exchange, then the reader and writer over sealed records.
    asio::awaitable<void> secure_start();
    /// Keyed links: reads ciphertext; its records are opened into `into` (the reader's room).
    void read_sealed(std::span<std::byte> into);
    void on_sealed_read(const std::error_code& ec, std::size_t n);
    /// Whether frames are sealed before they go out: a keyed link until it writes to shared memory
    /// (the ring is mapped by the two ends alone; docs/security.md). Stable while the writer is
    /// held off or idle, which is where the switch happens.
    bool sealing() const noexcept { return keyed_ && !shm_tx_.load(std::memory_order_relaxed); }
    /// Keyed links, for the writer: puts `batch` into `buffers` as records (in `sealed`); a large
    /// batch's pieces but the last are written here, so the peer opens one while the next is
    /// sealed. @returns false when a write failed (the link is closed).
    asio::awaitable<bool> seal_for_write(const Outbox::Batch& batch,
                                         std::vector<asio::const_buffer>& buffers,
                                         Buffer& sealed);
    asio::awaitable<void> watchdog();
    // Shared memory (docs/shm.md). The dialer offers a channel once the peer's handshake is in; the
    // accepter maps it and answers with a switch; each end's writer sends its switch at a frame
    // boundary and writes to the ring from then on; each end's reader reads the ring once it saw
    // the peer's switch on the socket, which then only tells that the peer is alive.
    enum class ShmStep : std::uint8_t { none, offer, switch_over };
    void offer_shm();
    /// A shared-memory control message (a ping's body). @returns false when the reader ended.
    bool on_shm_control(std::span<const std::byte> body, std::size_t unparsed);
    /// The writer, between two frames: sends the offer or the switch on the socket, in order with
    /// every frame. @returns false when the link closed.
    asio::awaitable<bool> send_shm_step();
    /// The writer, once switched: writes `parts` into the ring, waiting for room as needed.
    /// @returns false when the link closed.
    asio::awaitable<bool> write_to_ring(std::span<std::span<const std::byte>> parts);
    /// Writes `frame` whole on the socket, with `fds` attached when given. @returns false when the
    /// link closed (what failed is logged).
    asio::awaitable<bool> send_on_socket(const Buffer& plain, std::span<const int> fds, const char* what);
    void refuse_shm(const std::string& why);
    /// The loan-pool messages (pool, pool_mapped, loaned, release). @returns false when the reader ended.
    bool on_loan_control(const shm::Control& control);
    /// The first descriptor that came with the socket's bytes, or -1.
    int take_received_fd();
    /// Writes the frame `head` + `body` on this thread when the writer is idle and nothing is
    /// queued (sealed first on a keyed link); a part the socket did not take is queued to go
    /// first. @returns false when it was not written (the caller queues it).
    bool write_if_idle(std::span<const std::byte> head, std::span<const std::byte> body);
    /// Writes bytes of a frame given as `head` then `body` from `done` on, to the socket or, after
    /// the switch, the ring. Outbox lock held or writer active. @returns bytes taken, -1 on error.
    ssize_t write_bytes(std::span<const std::byte> head, std::span<const std::byte> body, std::size_t done);
    using ReadDone = void (Connection::*)(const std::error_code&, std::size_t);
    /// The reads before the switch on a link that may be offered shared memory: one read into
    /// `into` with recvmsg, keeping the descriptors that came with it, then `done` (on_read, or
    /// on_sealed_read when `into` is a keyed link's ciphertext space).
    void read_with_fds(std::span<std::byte> into, ReadDone done);
    void read_ring(std::span<std::byte> into);
    /// A request or reply going out (the frame's first bytes) or coming in (its type): the link
    /// carries calls, and its ring reader spins for what comes next.
    void note_call(std::span<const std::byte> frame) noexcept;
    void note_call(wire::FrameType type) noexcept;
    /// Whether the ring reader may spin: a call went either way within the last calls_window.
    bool carries_calls() const noexcept;
    /// After the switch: the socket must stay silent; its end is the peer's.
    void watch_socket();
    bool reads_fds() const noexcept;
    void do_close(const std::string& reason, WarnKind kind = WarnKind::none);
    void ring();
    /// Reports what queueing did. @returns whether the outbox is full.
    bool queued(const Outbox::Pushed& pushed);
    /// A frame in two parts written at once by the calling thread when the writer is idle (no
    /// copy), else joined and queued as a control frame (`control`) or a message.
    bool write_now_or_queue(std::span<const std::byte> head, std::span<const std::byte> body, bool control);
    /// A large message whose sender may wait: once the writer is idle (it waits a little for
    /// that, else it queues a copy), the calling thread writes the frame itself, from the caller's
    /// bytes, like a blocking socket write; what is still unwritten at `deadline` is queued.
    bool write_large_in_place(std::span<const std::byte> head,
                              std::span<const std::byte> body,
                              Clock::time_point deadline);
    /// write_large_in_place() on a keyed link: the calling thread seals the frame a piece at a
    /// time from the caller's bytes and writes each piece; what is unwritten at `deadline` is
    /// sealed too and queued first.
    bool write_large_sealed(std::span<const std::byte> head,
                            std::span<const std::byte> body,
                            Clock::time_point deadline);
    /// With the outbox's lock held: a frame of `frame` bytes was only partly written at once, its
    /// rest copied for the writer. A call's request or reply (or a message sent from the node's
    /// thread) cannot wait for room, so the send buffer grows to hold the next one this large
    /// whole (at most 4 MiB). Messages whose sender waits (write_large_in_place) keep the small
    /// buffer, which holds their bytes in the CPU's cache between the kernel's two copies.
    void grow_send_buffer_locked(std::size_t frame);
    /// Logs `count` dropped messages (no-op for 0, inline: the send paths call it per message).
    void warn_drops(std::uint64_t count, const char* why) {
        if (count != 0) {
            log_drops(count, why);
        }
    }
    void log_drops(std::uint64_t count, const char* why);
    std::string who() const { return (peer_.name.empty() ? std::string("peer") : peer_.name) + " (" + remote_ + ")"; }

    Socket socket_;
    asio::any_io_executor strand_;  // a strand, or the socket's executor itself (one_thread)
    // Keyed links: set once the key exchange succeeded, before the reader and writer start. Every
    // frame is then queued for the writer, which seals it (no direct writes from senders).
    const bool keyed_;
    std::unique_ptr<secure::SecureChannel> secure_;
    std::span<std::byte> sealed_into_;  // where read_sealed() puts plaintext
    bool outbound_;
    bool is_unix_;
    ConnectionConfig config_;
    std::shared_ptr<ConnectionHandler> handler_;
    wire::Handshake peer_;
    std::shared_ptr<const std::string> peer_id_;
    std::string remote_;
    std::int64_t peer_pid_ = 0;
    ReadBuffer reader_;
    std::size_t rd_since_yield_ = 0;        // frames handed on since the reader last let others run
    std::string close_reason_after_flush_;  // set by close_after(), on the strand
    Outbox outbox_;
    std::size_t send_buffer_ = 0;  // SO_SNDBUF as set (0: the kernel's, never changed); outbox's lock
    asio::experimental::concurrent_channel<void(std::error_code, int)> bell_;
    Clock::time_point started_;

    std::atomic<bool> closed_{false};
    std::atomic<bool> handshaken_{false};
    std::atomic<std::int64_t> last_read_ns_{0};
    std::atomic<std::int64_t> last_write_ns_{0};
    std::atomic<std::int64_t> last_call_ns_{0};    // a request or reply last sent or read (steady_ns()); 0: never
    std::atomic<std::int64_t> frame_began_ns_{0};  // when the frame being received began; 0: none
    std::atomic<std::size_t> frame_size_{0};       // its size, once its prefix arrived
    std::atomic<int> ringer_cpu_{-1};              // the CPU of the thread that last woke the writer

    std::unique_ptr<ShmChannel> shm_;   // set on the strand; used by writers once shm_tx_
    ShmStep shm_step_ = ShmStep::none;  // what the writer sends next (strand)
    bool shm_rx_ = false;               // the reader reads the ring (strand)
    std::atomic<bool> shm_tx_{false};   // frames go to the ring (set while the writer is exclusive)
    std::vector<int> received_fds_;     // descriptors that came with the socket's bytes (strand)
    std::array<std::byte, 64> watch_buffer_{};
    // Loans (docs/shm.md): the node's pool is offered with the switch; the peer's is mapped here.
    std::uint64_t pool_holder_ = 0;               // this link's holder id in the node's pool
    bool pool_offered_ = false;                   // our pool went with our switch (strand)
    std::atomic<bool> peer_maps_pool_{false};     // the peer said it mapped it
    std::shared_ptr<const ShmRegion> peer_pool_;  // the peer's pool, read-only (strand)
};

}  // namespace meshy::detail
