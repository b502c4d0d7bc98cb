// Internal: one connection to a peer, over TCP or a Unix socket. It runs a handshake, then a
// reader (frames to the handler), a writer (coalescing queued frames into few writes) and a
// watchdog (heartbeats out, silence in). It never allocates for a frame above the maximum.
#pragma once

#include <asio/any_io_executor.hpp>
#include <asio/awaitable.hpp>
#include <asio/experimental/concurrent_channel.hpp>
#include <asio/generic/stream_protocol.hpp>
#include <asio/strand.hpp>
#include <atomic>
#include <chrono>
#include <condition_variable>
#include <cstdint>
#include <deque>
#include <memory>
#include <mutex>
#include <string>
#include <vector>

#include "common/drop_counter.hpp"
#include "common/ring_queue.hpp"
#include "meshy/buffer.hpp"
#include "wire/frame.hpp"

namespace meshy::detail {

class Connection;
using SharedFrame = std::shared_ptr<const Buffer>;

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
    /// The connection closed (once).
    virtual void on_closed(const std::shared_ptr<Connection>& conn, const std::string& reason) = 0;
};

/// With ConnectionConfig::wait_when_full, a sender also waits while this many bytes of small
/// messages are queued: a burst then stays in the CPU's cache between the sender's copy and the
/// writer's (a 1 MB burst did not, and a pinned 1 kB stream was ~15% slower).
constexpr std::size_t wait_room_bytes = 256u * 1024;

struct ConnectionConfig {
    wire::Handshake self;          ///< our handshake
    std::string expected_peer_id;  ///< for outbound connections: who we dialed
    std::size_t max_frame_size = 0;
    std::size_t outbox_capacity = 1024;
    bool wait_when_full = false;  ///< see NodeOptions::outbox_full: drop only at twice the capacity
    std::chrono::milliseconds outbox_ttl{5000};
    std::chrono::milliseconds heartbeat_interval{500};
    std::chrono::milliseconds peer_timeout{2500};
    std::size_t socket_buffer_size = 0;  ///< SO_SNDBUF and SO_RCVBUF; 0: the kernel's
    /// Only one thread runs the executor (the node's own loop): the connection's coroutines need
    /// no strand to take turns, and go without one (a strand costs allocations per operation).
    bool one_thread = false;
};

class Connection : public std::enable_shared_from_this<Connection> {
public:
    using Socket = asio::generic::stream_protocol::socket;

    Connection(Socket socket,
               bool outbound,
               bool is_unix,
               ConnectionConfig config,
               std::shared_ptr<ConnectionHandler> handler);
    ~Connection();

    /// Starts the handshake, reader, writer and watchdog.
    void start();
    /// Queues a frame that must not be dropped (handshake replies, info, requests' replies, pings).
    /// `urgent` (service requests and replies): written at once by the calling thread when
    /// nothing is queued and the writer is idle.
    void send_control(SharedFrame frame, bool urgent = false);
    /// Queues a topic message or request, subject to the outbox capacity and TTL (drop oldest).
    /// @returns true when the outbox is full now (for wait_for_room()).
    bool send_message(SharedFrame frame, bool urgent = false);
    /// An urgent frame given in two parts, `head` then `body` (a request or reply and the user's
    /// payload): written at once by the calling thread with one gathered write when the writer is
    /// idle and nothing is queued (no copy); otherwise joined and queued as a control frame
    /// (`control`) or a message. @returns as send_message().
    bool send_parts(std::span<const std::byte> head, std::span<const std::byte> body, bool control);
    /// A large message in two parts, `head` then `body`, where `body` (the user's payload) is only
    /// valid during the call. For OutboxFull::wait, never on the connection's executor: once the
    /// writer is idle and nothing is queued (it waits up to 20 ms for that, else it queues a copy
    /// like send_parts()), it writes the frame itself, without a copy, like a blocking socket
    /// write; what is still unwritten at `deadline` is copied and queued. @returns as
    /// send_message().
    bool send_through(std::span<const std::byte> head,
                      std::span<const std::byte> body,
                      std::chrono::steady_clock::time_point deadline);
    /// send_message() for a small frame, given as `head` then `body` (which may be empty): its
    /// bytes are copied into the outbox, so the caller keeps (and may reuse) its buffers and no
    /// frame object is allocated.
    bool send_small(std::span<const std::byte> head, std::span<const std::byte> body = {});
    /// The receive buffer the frame being handed to ConnectionHandler::on_frame lies in: keeping
    /// a reference keeps its bytes (the reader never overwrites a buffer still shared).
    const std::shared_ptr<Buffer>& read_buffer() const noexcept { return read_buf_; }
    /// With `wait_when_full`: blocks the calling thread until the outbox has room, the connection
    /// closes, or `deadline` passes. Never call it on the connection's executor.
    void wait_for_room(std::chrono::steady_clock::time_point deadline);
    /// Closes the connection (thread-safe, idempotent); `reason` is logged once.
    void close(const std::string& reason);
    /// Sends `last` after what is queued (a goodbye), then closes.
    void close_after(SharedFrame last, const std::string& reason);

    bool outbound() const noexcept { return outbound_; }
    bool is_unix() const noexcept { return is_unix_; }
    bool open() const noexcept { return !closed_.load(std::memory_order_acquire); }
    /// The peer's handshake; valid once on_handshake was called.
    const wire::Handshake& peer() const noexcept { return peer_; }
    /// The peer's id, shareable with queued messages; null before the handshake.
    const std::shared_ptr<const std::string>& peer_id() const noexcept { return peer_id_; }
    /// The process at the other end of a Unix socket (SO_PEERCRED), else 0.
    std::int64_t peer_pid() const noexcept { return peer_pid_; }
    /// "unix:<path>" or "tcp:<addr>:<port>", for logs.
    const std::string& remote() const noexcept { return remote_; }
    /// Messages dropped by the outbox policy so far.
    std::uint64_t dropped() const noexcept { return dropped_.load(std::memory_order_relaxed); }

private:
    // The reader: read_some() hands on the frames that have arrived, then starts a read into a
    // buffer with room; its completion, on_read(), calls read_some() again. end_reader() ends it.
    void start_reader();
    void read_some();
    void on_read(const std::error_code& ec, std::size_t n);
    void end_reader(const std::string& reason, bool abnormal = false);
    enum class Taken { need_more, handshake, ended };
    /// The peer's handshake, checked; a refusal ends the reader.
    Taken take_handshake(std::span<const std::byte> pending);
    /// Moves the unparsed bytes to a buffer of at least `capacity` (the spare, or a new one).
    void fresh_read_buffer(std::size_t capacity);
    /// Where in `b` to put `unparsed` bytes so that the next read lands at page offset 512.
    static std::size_t read_origin(const Buffer& b, std::size_t unparsed);
    asio::awaitable<void> write_loop();
    asio::awaitable<void> watchdog();
    void do_close(const std::string& reason, bool abnormal = false);
    void ring();
    /// With mutex_ held: the peer's handshake is in, the writer is idle and nothing is queued, so a
    /// frame may be written to the socket at once by the calling thread.
    bool socket_free_locked() const noexcept {
        return writer_idle_ && !direct_active_ && control_.empty() && messages_.empty() && !last_frame_ &&
               handshaken_.load(std::memory_order_acquire);
    }
    /// With mutex_ held: the outbox holds `outbox_capacity` messages or, with `wait_when_full`,
    /// `wait_room_bytes` of small messages (see send_small).
    bool full_locked() const noexcept {
        return messages_.size() >= config_.outbox_capacity ||
               (config_.wait_when_full && arena_.size() >= wait_room_bytes);
    }
    /// With mutex_ held: a frame of `frame` bytes was only partly written directly, its rest copied
    /// for the writer. A call's request or reply (or a message sent from the node's thread) cannot
    /// wait for room, so the send buffer grows to hold the next one this large whole (at most
    /// 4 MiB), and their bytes are no longer copied. Messages sent with OutboxFull::wait are written
    /// by their sender (send_through) and keep the small buffer, which holds their bytes in the
    /// CPU's cache between the kernel's two copies.
    void grow_send_buffer_locked(std::size_t frame);
    enum class Direct { no, written, partial };
    /// With mutex_ held: writes `frame` now if the writer is idle and nothing is queued.
    Direct try_write_locked(const Buffer& frame) { return try_write_locked(frame.bytes(), {}); }
    /// try_write_locked() of a frame in two parts; a partial write queues the rest first.
    Direct try_write_locked(std::span<const std::byte> head, std::span<const std::byte> body);
    /// Logs `count` dropped messages (no-op for 0, inline: the send paths call it per message).
    void warn_drops(std::uint64_t count, const char* why) {
        if (count != 0) {
            log_drops(count, why);
        }
    }
    void log_drops(std::uint64_t count, const char* why);

    /// A queued message: a shared frame, or (frame null) `size` bytes at `offset` in arena_.
    struct Queued {
        SharedFrame frame;
        std::chrono::steady_clock::time_point queued_at;
        std::uint32_t offset = 0;
        std::uint32_t size = 0;
    };
    /// With mutex_ held: makes room for a message (drop oldest). @returns drops to report.
    std::uint64_t admit_locked(std::chrono::steady_clock::time_point now);

    Socket socket_;
    asio::any_io_executor strand_;  // a strand, or the socket's executor itself (one_thread)
    bool outbound_;
    bool is_unix_;
    ConnectionConfig config_;
    std::shared_ptr<ConnectionHandler> handler_;
    wire::Handshake peer_;
    std::shared_ptr<const std::string> peer_id_;
    std::string remote_;
    std::int64_t peer_pid_ = 0;
    std::shared_ptr<Buffer> read_buf_;      // the reader's; see read_buffer()
    std::shared_ptr<Buffer> spare_buf_;     // the reader's previous buffer, reused once unshared
    std::size_t rd_begin_ = 0;              // start of the unparsed bytes in read_buf_
    std::size_t rd_end_ = 0;                // end of the received bytes
    std::size_t rd_want_ = 0;               // bytes of the frame being received, once known
    std::size_t rd_large_hint_ = 0;         // size of the last large frame
    std::size_t rd_since_yield_ = 0;        // frames handed on since the reader last let others run
    SharedFrame last_frame_;                // set by close_after(): written once the queues are drained
    std::string close_reason_after_flush_;  // then the connection closes with this reason

    std::mutex mutex_;             // guards the queues, writer_idle_ and send_buffer_
    std::size_t send_buffer_ = 0;  // SO_SNDBUF as set (0: the kernel's, never changed)
    std::deque<SharedFrame> control_;
    RingQueue<Queued> messages_;
    Buffer arena_;                  // the bytes of small queued messages (send_small), in order
    std::size_t arena_queued_ = 0;  // messages_ entries that lie in arena_
    bool arena_gaps_ = false;       // arena_ holds bytes of dropped messages
    bool writer_idle_ = false;
    bool direct_active_ = false;    // send_through() is writing: the writer leaves the socket alone
    std::size_t room_waiters_ = 0;  // threads in wait_for_room()
    std::condition_variable room_;
    DropCounter drops_;  // outbox drops (capacity and TTL); reported by warn_drops()
    asio::experimental::concurrent_channel<void(std::error_code, int)> bell_;

    std::atomic<bool> closed_{false};
    std::atomic<bool> handshaken_{false};
    std::atomic<std::int64_t> last_read_ns_{0};
    std::atomic<std::int64_t> last_write_ns_{0};
    std::atomic<std::uint64_t> dropped_{0};
    std::atomic<int> ringer_cpu_{-1};  // the CPU of the thread that last woke the writer (ring())
};

}  // namespace meshy::detail
