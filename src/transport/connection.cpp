#include "transport/connection.hpp"

#include <netinet/in.h>
#include <netinet/tcp.h>
#include <sched.h>
#include <sys/socket.h>
#include <unistd.h>

#include <algorithm>
#include <array>
#include <asio/bind_executor.hpp>
#include <asio/co_spawn.hpp>
#include <asio/detached.hpp>
#include <asio/experimental/as_tuple.hpp>
#include <asio/post.hpp>
#include <asio/read.hpp>
#include <asio/steady_timer.hpp>
#include <asio/use_awaitable.hpp>
#include <asio/write.hpp>
#include <cstring>
#include <vector>

#include "common/system.hpp"
#include "meshy/log.hpp"
#include "transport/connection_internal.hpp"
#include "transport/secure_channel.hpp"
#include "transport/shm_channel.hpp"
#include "transport/shm_control.hpp"
#include "transport/shm_pool.hpp"

namespace meshy::detail {
namespace {

constexpr std::size_t yield_every_frames = 256;
// Until the peer's handshake is in, a connection reads into this little: a flood of sockets that
// never handshake costs little memory.
constexpr std::size_t handshake_read_size = 4096;

std::atomic<std::size_t> live_connections{0};

}  // namespace

std::int64_t steady_ns() {
    return std::chrono::duration_cast<std::chrono::nanoseconds>(coarse_now().time_since_epoch()).count();
}

Connection::Connection(
    Socket socket, bool outbound, bool is_unix, ConnectionConfig config, std::shared_ptr<ConnectionHandler> handler)
    : socket_(std::move(socket)),
      strand_(config.one_thread ? socket_.get_executor() : asio::make_strand(socket_.get_executor())),
      keyed_(config.domain_key != nullptr),
      outbound_(outbound),
      is_unix_(is_unix),
      config_(std::move(config)),
      handler_(std::move(handler)),
      reader_(config_.receive_budget),
      outbox_(OutboxOptions{config_.outbox_capacity, config_.wait_when_full, config_.outbox_ttl}),
      bell_(strand_, 1),
      started_(Clock::now()) {
    live_connections.fetch_add(1, std::memory_order_relaxed);
    remote_ = describe_remote(socket_, is_unix_);
    if (is_unix_) {
        ucred cred{};
        socklen_t len = sizeof cred;
        if (::getsockopt(socket_.native_handle(), SOL_SOCKET, SO_PEERCRED, &cred, &len) == 0) {
            peer_pid_ = cred.pid;
        }
    } else {
        const int one = 1;
        ::setsockopt(socket_.native_handle(), IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
    }
    // See NodeOptions::socket_buffer_size (validated to fit an int).
    send_buffer_ = config_.socket_buffer_size;
    if (send_buffer_ > 0) {
        const int size = static_cast<int>(send_buffer_);
        ::setsockopt(socket_.native_handle(), SOL_SOCKET, SO_SNDBUF, &size, sizeof size);
        ::setsockopt(socket_.native_handle(), SOL_SOCKET, SO_RCVBUF, &size, sizeof size);
    }
    last_read_ns_ = steady_ns();
    last_write_ns_ = steady_ns();
    if (config_.loan_pool) {
        pool_holder_ = config_.loan_pool->new_holder();
    }
}

Connection::~Connection() {
    for (const int fd : received_fds_) {
        ::close(fd);
    }
    live_connections.fetch_sub(1, std::memory_order_relaxed);
}

std::size_t Connection::live_count() noexcept {
    return live_connections.load(std::memory_order_relaxed);
}

std::string Connection::describe_remote(const Socket& s, bool is_unix) {
    std::error_code ec;
    auto ep = s.remote_endpoint(ec);
    if (ec) {
        return is_unix ? "unix" : "tcp";
    }
    if (is_unix) {
        return "unix";
    }
    char host[64] = {};
    const auto* sa = reinterpret_cast<const sockaddr*>(ep.data());
    if (sa->sa_family == AF_INET) {
        const auto* in = reinterpret_cast<const sockaddr_in*>(sa);
        const auto a = ntohl(in->sin_addr.s_addr);
        std::snprintf(host, sizeof host, "%u.%u.%u.%u:%u", a >> 24, (a >> 16) & 0xff, (a >> 8) & 0xff, a & 0xff,
                      ntohs(in->sin_port));
        return std::string("tcp:") + host;
    }
    return "tcp";
}

void Connection::start() {
    auto self = shared_from_this();
    auto handshake = std::make_shared<Buffer>();
    wire::encode_handshake(*handshake, config_.self);
    send(std::move(handshake), SendMode::control);
    if (keyed_) {
        // The node handshake waits in the outbox: it goes out sealed, after the key exchange.
        asio::co_spawn(
            strand_, [self]() { return self->secure_start(); }, asio::detached);
    } else {
        start_reader();
        asio::co_spawn(
            strand_, [self]() { return self->write_loop(); }, asio::detached);
    }
    asio::co_spawn(
        strand_, [self]() { return self->watchdog(); }, asio::detached);
}

void Connection::ring() {
    ringer_cpu_.store(::sched_getcpu(), std::memory_order_relaxed);
    bell_.try_send(std::error_code{}, 0);
}

bool Connection::queued(const Outbox::Pushed& pushed) {
    warn_drops(pushed.drops, "the outbox was full");
    if (pushed.wake) {
        ring();
    }
    return pushed.full;
}

bool Connection::send(std::span<const std::byte> head,
                      std::span<const std::byte> body,
                      SendMode mode,
                      Clock::time_point deadline) {
    if (!open()) {
        return false;
    }
    note_call(head);
    const bool small = head.size() + body.size() <= small_message_max;
    switch (mode) {
        case SendMode::message:
            return small ? queued(outbox_.copy_message(head, body, coarse_now()))
                         : write_now_or_queue(head, body, false);
        case SendMode::message_wait:
            if (small) {
                return queued(outbox_.copy_message(head, body, coarse_now()));
            }
            return sealing() ? write_large_sealed(head, body, deadline) : write_large_in_place(head, body, deadline);
        case SendMode::request:
            return write_now_or_queue(head, body, false);
        case SendMode::reply:
            return write_now_or_queue(head, body, true);
        case SendMode::control:
            break;
    }
    return queued(outbox_.push_control(rest_of(head, body, 0)));
}

bool Connection::send(SharedFrame frame, SendMode mode) {
    if (!open()) {
        return false;
    }
    note_call(frame->bytes());
    switch (mode) {
        case SendMode::control:
            return queued(outbox_.push_control(std::move(frame)));
        case SendMode::message:
        case SendMode::message_wait:
            return queued(outbox_.push_message(std::move(frame), coarse_now()));
        case SendMode::request:
        case SendMode::reply:
            break;
    }
    // Written at once when the writer is idle; the frame's rest, if the socket took only part of
    // it, is queued first.
    if (write_if_idle(frame->bytes(), {})) {
        return false;
    }
    return queued(mode == SendMode::reply ? outbox_.push_control(std::move(frame))
                                          : outbox_.push_message(std::move(frame), coarse_now()));
}

void Connection::log_drops(std::uint64_t count, const char* why) {
    log(LogLevel::warn, "dropped " + std::to_string(count) + " message(s) to " + who() + ": " + why);
}

void Connection::close(const std::string& reason) {
    if (closed_.load(std::memory_order_acquire)) {
        return;
    }
    asio::post(strand_, [self = shared_from_this(), reason] { self->do_close(reason); });
}

void Connection::close_after(SharedFrame last, const std::string& reason) {
    if (!open()) {
        return;
    }
    asio::post(strand_, [self = shared_from_this(), last = std::move(last), reason]() mutable {
        self->close_reason_after_flush_ = reason;
        self->outbox_.push_last(std::move(last));
        self->ring();
    });
}

void Connection::do_close(const std::string& reason, WarnKind kind) {
    if (closed_.exchange(true, std::memory_order_acq_rel)) {
        return;
    }
    warn_limited(kind, "closing connection: " + reason);
    std::error_code ignored;
    // No direct write runs on a closing descriptor.
    outbox_.exclusive([&] {
        socket_.shutdown(Socket::shutdown_both, ignored);
        socket_.close(ignored);
        if (shm_) {
            shm_->close();  // the mappings go with the link
        }
    });
    peer_pool_.reset();  // the peer's pool stays mapped only while a listener holds one of its messages
    bell_.close();
    if (config_.loan_pool) {
        config_.loan_pool->release_holder(pool_holder_);  // the peer's loans, read or not (kill -9 too)
    }
    const auto unreported = outbox_.take_unreported_drops();
    const auto unsent = outbox_.close();
    warn_drops(unreported, "the outbox was full");
    if (unsent && handshaken_.load(std::memory_order_acquire)) {
        warn_drops(unsent, "still queued when the connection closed");
    }
    handler_->on_closed(shared_from_this(), reason);
}

// The reader is a chain of completion handlers rather than a coroutine: per read, a coroutine's
// resumption costs about as much user-space work as handing the frames on.

void Connection::start_reader() {
    reader_.start(handshake_read_size);
    asio::post(strand_, [self = shared_from_this()] { self->read_some(); });
}

void Connection::end_reader(const std::string& reason, WarnKind kind) {
    if (!reason.empty()) {
        do_close(reason, kind);
    }
    // Whatever way the reader ends, the frames it handed on are delivered.
    handler_->on_frames_done(shared_from_this());
}

Connection::Taken Connection::take_handshake(std::span<const std::byte> pending) {
    if (!keyed_) {
        // A keyed peer opens with the key exchange's magic, not a node handshake.
        const std::size_t seen = std::min(pending.size(), secure::magic_size);
        if (seen > 0 && std::memcmp(pending.data(), secure::magic, seen) == 0) {
            if (seen < secure::magic_size) {
                return Taken::need_more;
            }
            end_reader("refusing peer at " + remote_ +
                           ": domain key mismatch (the peer uses a domain key, this node has none)",
                       WarnKind::refused);
            return Taken::ended;
        }
    }
    std::size_t used = 0;
    wire::Handshake hs;
    std::string reason;
    const auto r = wire::decode_handshake(pending, hs, used, reason);
    if (r == wire::Parse::need_more) {
        return Taken::need_more;
    }
    if (r == wire::Parse::error) {
        end_reader("malformed handshake from " + remote_ + ": " + reason, WarnKind::malformed);
        return Taken::ended;
    }
    if (hs.version != wire::protocol_version) {
        end_reader("refusing peer " + hs.name + " (" + remote_ + "): protocol version " + std::to_string(hs.version) +
                       ", this node speaks " + std::to_string(wire::protocol_version),
                   WarnKind::refused);
        return Taken::ended;
    }
    if (hs.domain != config_.self.domain) {
        end_reader("refusing peer " + hs.name + " (" + remote_ + "): domain '" + hs.domain + "', this node is in '" +
                       config_.self.domain + "'",
                   WarnKind::refused);
        return Taken::ended;
    }
    if (!config_.expected_peer_id.empty() && hs.id != config_.expected_peer_id) {
        end_reader("refusing peer at " + remote_ + ": expected node " + config_.expected_peer_id + ", found " + hs.id,
                   WarnKind::refused);
        return Taken::ended;
    }
    peer_ = std::move(hs);
    peer_id_ = std::make_shared<const std::string>(peer_.id);
    reader_.consume(used);
    reader_.settle();
    handshaken_.store(true, std::memory_order_release);
    outbox_.set_peer_ready();
    if (!handler_->on_handshake(shared_from_this(), peer_, reason)) {
        end_reader(reason, WarnKind::refused);
        return Taken::ended;
    }
    offer_shm();
    return Taken::handshake;
}

void Connection::on_read(const std::error_code& ec, std::size_t n) {
    if (ec) {
        end_reader(ec == asio::error::eof
                       ? "peer " + (peer_.name.empty() ? remote_ : peer_.name) + " closed the connection"
                       : "read from " + remote_ + " failed: " + ec.message());
        return;
    }
    reader_.received(n);
    last_read_ns_.store(steady_ns(), std::memory_order_relaxed);
    read_some();
}

void Connection::read_some() {
    if (!open()) {
        end_reader({});
        return;
    }
    // Hand on what has arrived.
    auto self = shared_from_this();
    bool completed = false;  // a frame completed in this pass
    for (;;) {
        const auto pending = reader_.pending();
        if (!handshaken_.load(std::memory_order_relaxed)) {  // only this reader sets it
            const Taken taken = take_handshake(pending);
            if (taken == Taken::ended) {
                return;
            }
            if (taken == Taken::need_more) {
                break;
            }
            completed = true;
            continue;
        }
        wire::FrameView frame;
        std::size_t used = 0, needed = 0;
        std::string reason;
        const auto r = wire::next_frame(pending, config_.max_frame_size, frame, used, needed, reason);
        if (r == wire::Parse::error) {
            end_reader("malformed frame from " + who() + ": " + reason, WarnKind::malformed);
            return;
        }
        if (r == wire::Parse::need_more) {
            if (!reader_.frame_needs(needed)) {
                end_reader("a frame of " + std::to_string(needed) + " bytes from " + who() +
                               " does not fit the node's receive budget (" +
                               std::to_string(config_.receive_budget->limit()) + " bytes, " +
                               std::to_string(config_.receive_budget->in_use()) + " in use)",
                           WarnKind::receive_budget);
                return;
            }
            break;
        }
        reader_.consume(used);
        completed = true;
        if (frame.type == wire::FrameType::bye) {
            handler_->on_frame(self, frame);
            end_reader("peer " + peer_.name + " said goodbye");
            return;
        }
        if (frame.type == wire::FrameType::ping && shm::is_control(frame.body)) {
            if (!on_shm_control(frame.body, reader_.pending().size())) {
                return;
            }
            continue;
        }
        if (frame.type != wire::FrameType::ping) {
            note_call(frame.type);  // calls may take one link each way: both carry them
            handler_->on_frame(self, frame);
            if (!open()) {
                end_reader({});
                return;
            }
            // One read can hold thousands of small frames: let the listeners they woke (on this
            // executor too) take them before their inboxes overflow.
            // After a large frame too: its listener (on this thread, usually) is done with the
            // buffer before the next read, which then reuses it, still in the cache.
            if (++rd_since_yield_ >= yield_every_frames || used >= read_chunk) {
                rd_since_yield_ = 0;
                frame_began_ns_.store(0, std::memory_order_relaxed);
                handler_->on_frames_done(self);
                asio::post(strand_, [self] { self->read_some(); });
                return;
            }
        }
    }
    // A frame (or the handshake) begun and not complete: the watchdog times it from when its
    // first bytes were seen.
    if (reader_.pending().empty()) {
        frame_began_ns_.store(0, std::memory_order_relaxed);
    } else if (completed || frame_began_ns_.load(std::memory_order_relaxed) == 0) {
        frame_began_ns_.store(last_read_ns_.load(std::memory_order_relaxed), std::memory_order_relaxed);
    }
    frame_size_.store(reader_.frame_size(), std::memory_order_relaxed);
    handler_->on_frames_done(self);
    // Then read more, into a buffer with room.
    std::span<std::byte> into;
    if (!reader_.next_read(into)) {
        end_reader("the node's receive budget (" + std::to_string(config_.receive_budget->limit()) +
                       " bytes) cannot hold more from " + who(),
                   WarnKind::receive_budget);
        return;
    }
    if (shm_rx_) {
        read_ring(into);  // keyed or not: the ring holds frames (docs/security.md)
        return;
    }
    if (keyed_) {
        read_sealed(into);
        return;
    }
    if (reads_fds()) {
        read_with_fds(into, &Connection::on_read);
        return;
    }
    auto done = [self = std::move(self)](const std::error_code& ec, std::size_t n) {
        self->on_read(ec, n);
    };
    if (config_.one_thread) {
        socket_.async_read_some(asio::buffer(into.data(), into.size()), std::move(done));  // completes on strand_
    } else {
        socket_.async_read_some(asio::buffer(into.data(), into.size()), asio::bind_executor(strand_, std::move(done)));
    }
}

asio::awaitable<void> Connection::write_loop() {
    auto self = shared_from_this();
    // Its vectors grow with the first batches, not ahead: an idle link keeps them small.
    Outbox::Batch batch;
    std::vector<asio::const_buffer> buffers;
    Buffer sealed;        // keyed links: the batch as records
    bool linger = false;  // a write just ended

    while (open()) {
        outbox_.take(batch, linger);
        if (batch.expired) {
            log(LogLevel::warn,
                "dropped " + std::to_string(batch.expired) + " message(s) to " + who() + " older than the outbox TTL");
        }
        if (batch.parts.empty() && linger) {
            // Just after a write, look once more after the other ready handlers ran: a sender on
            // another CPU has usually queued more by then, and is spared a wake-up of this writer.
            linger = false;
            if (const int cpu = ringer_cpu_.load(std::memory_order_relaxed); cpu >= 0 && cpu == ::sched_getcpu()) {
                // The thread that woke this writer runs on this CPU, and the wake-up preempted it
                // after a message or two. Yield to it once, so that it queues a batch: far fewer
                // context switches when both ends share a CPU (see docs/transport.md).
                ::sched_yield();
            }
            co_await asio::post(strand_, asio::use_awaitable);
            continue;
        }
        if (batch.parts.empty() && shm_step_ != ShmStep::none) {
            // Idle: hold off the senders that write themselves while the step goes out.
            if (!outbox_.begin_direct(Clock::now() + std::chrono::milliseconds(1))) {
                co_await asio::post(strand_, asio::use_awaitable);  // a sender writes itself: soon again
                continue;
            }
            const bool sent = co_await send_shm_step();
            const auto pushed = outbox_.end_direct(nullptr, false, coarse_now());
            if (!sent) {
                co_return;
            }
            queued(pushed);
            continue;
        }
        if (batch.parts.empty()) {
            auto [ec, unused] = co_await bell_.async_receive(use_tuple);
            (void)unused;
            if (ec) {
                co_return;  // closed
            }
            continue;
        }
        if (shm_tx_.load(std::memory_order_relaxed)) {
            if (!co_await write_to_ring(batch.parts)) {
                co_return;
            }
        } else {
            buffers.clear();
            if (secure_) {
                if (!co_await seal_for_write(batch, buffers, sealed)) {
                    co_return;
                }
            } else {
                for (const auto& part : batch.parts) {
                    buffers.emplace_back(part.data(), part.size());
                }
            }
            auto [ec, n] = co_await asio::async_write(socket_, buffers, use_tuple);
            (void)n;
            if (ec) {
                do_close("write to " + remote_ + " failed: " + ec.message());
                co_return;
            }
            // Between two frames, busy (no sender writes itself): a link that never idles (a slow
            // peer, a steady stream) switches here.
            if (shm_step_ != ShmStep::none && !batch.closing && !co_await send_shm_step()) {
                co_return;
            }
        }
        last_write_ns_.store(steady_ns(), std::memory_order_relaxed);
        linger = true;
        if (batch.closing) {
            do_close(close_reason_after_flush_);
            co_return;
        }
    }
}

asio::awaitable<void> Connection::watchdog() {
    auto self = shared_from_this();
    asio::steady_timer timer(strand_);
    auto ping = std::make_shared<Buffer>();
    wire::encode_empty(*ping, wire::FrameType::ping);
    const auto tick = std::min(config_.heartbeat_interval / 2,
                               std::chrono::duration_cast<std::chrono::milliseconds>(config_.frame_grace / 4));
    while (open()) {
        timer.expires_after(tick);
        auto [ec] = co_await timer.async_wait(use_tuple);
        if (ec || !open()) {
            co_return;
        }
        const auto now = steady_ns();
        if (!handshaken_.load(std::memory_order_acquire)) {
            if (Clock::now() - started_ > config_.handshake_timeout) {
                do_close("no handshake from " + remote_ + " within " +
                             std::to_string(config_.handshake_timeout.count()) + " ms",
                         WarnKind::handshake_timeout);
                co_return;
            }
            continue;
        }
        if (const auto began = frame_began_ns_.load(std::memory_order_relaxed); began != 0) {
            // A frame begun must go on arriving: its bytes within the grace plus its size at the
            // minimum rate (a silence check alone lets a peer trickle one byte at a time).
            const std::size_t size = frame_size_.load(std::memory_order_relaxed);
            const auto allowed = std::chrono::duration_cast<std::chrono::nanoseconds>(config_.frame_grace) +
                                 std::chrono::nanoseconds(static_cast<std::int64_t>(
                                     static_cast<double>(size) / static_cast<double>(config_.min_frame_rate) * 1e9));
            const auto taken = std::chrono::nanoseconds(now - began);
            if (taken > allowed) {
                do_close("a frame of " + (size ? std::to_string(size) + " bytes" : std::string("unknown size")) +
                             " from " + who() + " is not complete after " +
                             std::to_string(std::chrono::duration_cast<std::chrono::milliseconds>(taken).count()) +
                             " ms (at least " + std::to_string(config_.min_frame_rate / 1024) +
                             " KiB/s after a grace of " + std::to_string(config_.frame_grace.count()) + " ms)",
                         WarnKind::slow_frame);
                co_return;
            }
        }
        const auto silent = std::chrono::nanoseconds(now - last_read_ns_.load(std::memory_order_relaxed));
        if (silent > config_.peer_timeout) {
            do_close("peer " + who() + " silent for " +
                     std::to_string(std::chrono::duration_cast<std::chrono::milliseconds>(silent).count()) + " ms");
            co_return;
        }
        warn_drops(outbox_.take_unreported_drops(), "the outbox was full");
        const auto idle = std::chrono::nanoseconds(now - last_write_ns_.load(std::memory_order_relaxed));
        if (idle >= config_.heartbeat_interval) {
            last_write_ns_.store(now, std::memory_order_relaxed);
            send(ping, SendMode::control);
        }
    }
}

}  // namespace meshy::detail
