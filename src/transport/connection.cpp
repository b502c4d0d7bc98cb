#include "transport/connection.hpp"

#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <sched.h>
#include <sys/socket.h>
#include <sys/syscall.h>
#include <sys/uio.h>
#include <unistd.h>

#include <asio/bind_executor.hpp>
#include <asio/co_spawn.hpp>
#include <asio/detached.hpp>
#include <asio/experimental/as_tuple.hpp>
#include <asio/experimental/awaitable_operators.hpp>
#include <asio/post.hpp>
#include <asio/read.hpp>
#include <asio/steady_timer.hpp>
#include <asio/use_awaitable.hpp>
#include <asio/write.hpp>
#include <cstring>

#include "common/system.hpp"
#include "meshy/log.hpp"

namespace meshy::detail {
namespace {

using namespace asio::experimental::awaitable_operators;
constexpr auto use_tuple = asio::experimental::as_tuple(asio::use_awaitable);

// Bounds of one coalesced write: enough to amortise the syscall, small enough to stay fair.
constexpr std::size_t max_batch_frames = 256;
constexpr std::size_t max_batch_bytes = 4u * 1024 * 1024;
constexpr std::size_t read_chunk = 256u * 1024;
constexpr std::size_t yield_every_frames = 256;
constexpr std::size_t read_offset = 512;  // page offset of the bytes a read receives (see origin)
// Urgent frames (requests, replies) up to this size are written by the sending thread itself
// when the writer is idle: one hand-over less per round trip.
constexpr std::size_t direct_write_max = 4u * 1024 * 1024;
// A frame written directly that did not fit the socket buffer grows it to the frame's size, up to
// this (see Connection::grow_send_buffer_locked).
constexpr std::size_t max_grown_send_buffer = 4u * 1024 * 1024;
constexpr auto handshake_timeout = std::chrono::seconds(5);
// How long send_through() waits for the writer to become idle before it queues a copy instead.
constexpr auto idle_writer_wait = std::chrono::milliseconds(20);
// Bytes of small messages an outbox's arena holds at most (offsets are 32-bit); beyond, they queue
// as shared frames.
constexpr std::size_t max_arena_size = std::size_t{1} << 30;
// Capacity of a small messages' arena (see send_small) that the writer keeps for reuse.
constexpr std::size_t max_arena_kept = 16u * 1024 * 1024;

// Up to this many bytes, send_rest() joins a frame's two parts and sends them with one send().
constexpr std::size_t join_parts_max = 4096;

/// One non-blocking write of the bytes of a frame given as `head` then `body`, from `done` on.
/// @returns what send() or sendmsg() returns.
/// It makes the system call itself: glibc's wrappers are cancellation points, which in a process
/// of more than one thread (a node's always is) cost two atomic updates of the thread's
/// cancellation state around the call. meshy never cancels a thread.
ssize_t send_rest(int fd, std::span<const std::byte> head, std::span<const std::byte> body, std::size_t done) {
    iovec parts[2];
    std::size_t count = 0;
    if (done < head.size()) {
        parts[count++] = {const_cast<std::byte*>(head.data()) + done, head.size() - done};
        if (!body.empty()) {
            parts[count++] = {const_cast<std::byte*>(body.data()), body.size()};
        }
    } else {
        const std::size_t at = done - head.size();
        parts[count++] = {const_cast<std::byte*>(body.data()) + at, body.size() - at};
    }
    // A send() spares the kernel copying in a message header and its vector, which costs more
    // than joining two small parts here first (pinned 1 kB calls: 1.27-1.33x raw -> 1.24-1.26x).
    std::byte joined[join_parts_max];
    if (count == 2 && parts[0].iov_len + parts[1].iov_len <= join_parts_max) {
        std::memcpy(joined, parts[0].iov_base, parts[0].iov_len);
        std::memcpy(joined + parts[0].iov_len, parts[1].iov_base, parts[1].iov_len);
        parts[0] = {joined, parts[0].iov_len + parts[1].iov_len};
        count = 1;
    }
    if (count == 1) {
        return static_cast<ssize_t>(
            ::syscall(SYS_sendto, fd, parts[0].iov_base, parts[0].iov_len, MSG_DONTWAIT | MSG_NOSIGNAL, nullptr, 0));
    }
    msghdr msg{};
    msg.msg_iov = parts;
    msg.msg_iovlen = count;
    return static_cast<ssize_t>(::syscall(SYS_sendmsg, fd, &msg, MSG_DONTWAIT | MSG_NOSIGNAL));
}

/// A copy of the bytes of a frame given as `head` then `body` from `done` on.
SharedFrame rest_of(std::span<const std::byte> head, std::span<const std::byte> body, std::size_t done) {
    auto rest = std::make_shared<Buffer>();
    rest->reserve(head.size() + body.size() - done);
    if (done < head.size()) {
        rest->append(head.data() + done, head.size() - done);
        rest->append(body.data(), body.size());
    } else {
        rest->append(body.data() + (done - head.size()), body.size() - (done - head.size()));
    }
    return rest;
}

/// coarse_now() in ns, for the heartbeat and silence checks (taken on every read and write).
std::int64_t steady_ns() {
    return std::chrono::duration_cast<std::chrono::nanoseconds>(coarse_now().time_since_epoch()).count();
}

std::string describe(const Connection::Socket& s, bool is_unix) {
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

}  // namespace

Connection::Connection(
    Socket socket, bool outbound, bool is_unix, ConnectionConfig config, std::shared_ptr<ConnectionHandler> handler)
    : socket_(std::move(socket)),
      strand_(config.one_thread ? socket_.get_executor() : asio::make_strand(socket_.get_executor())),
      outbound_(outbound),
      is_unix_(is_unix),
      config_(std::move(config)),
      handler_(std::move(handler)),
      bell_(strand_, 1) {
    remote_ = describe(socket_, is_unix_);
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
}

Connection::~Connection() = default;

void Connection::start() {
    auto self = shared_from_this();
    auto handshake = std::make_shared<Buffer>();
    wire::encode_handshake(*handshake, config_.self);
    send_control(std::move(handshake));
    start_reader();
    asio::co_spawn(
        strand_, [self]() { return self->write_loop(); }, asio::detached);
    asio::co_spawn(
        strand_, [self]() { return self->watchdog(); }, asio::detached);
}

void Connection::ring() {
    ringer_cpu_.store(::sched_getcpu(), std::memory_order_relaxed);
    bell_.try_send(std::error_code{}, 0);
}

Connection::Direct Connection::try_write_locked(std::span<const std::byte> head, std::span<const std::byte> body) {
    const std::size_t total = head.size() + body.size();
    if (!socket_free_locked() || total > direct_write_max || closed_.load(std::memory_order_acquire)) {
        return Direct::no;
    }
    const auto n = send_rest(socket_.native_handle(), head, body, 0);
    if (n <= 0) {
        return Direct::no;  // full socket buffer, or an error the writer will meet and report
    }
    last_write_ns_.store(steady_ns(), std::memory_order_relaxed);
    const auto written = static_cast<std::size_t>(n);
    if (written == total) {
        return Direct::written;
    }
    grow_send_buffer_locked(total);
    control_.push_front(rest_of(head, body, written));  // the rest goes first, by the writer
    writer_idle_ = false;
    return Direct::partial;
}

void Connection::grow_send_buffer_locked(std::size_t frame) {
    if (send_buffer_ == 0 || frame <= send_buffer_ || send_buffer_ >= max_grown_send_buffer) {
        return;  // the kernel's own size, already large enough, or as large as it grows
    }
    send_buffer_ = std::min(frame, max_grown_send_buffer);
    const int size = static_cast<int>(send_buffer_);  // the kernel doubles it: room for the frame and more
    ::setsockopt(socket_.native_handle(), SOL_SOCKET, SO_SNDBUF, &size, sizeof size);
}

bool Connection::send_parts(std::span<const std::byte> head, std::span<const std::byte> body, bool control) {
    if (!open()) {
        return false;
    }
    bool wake = false, full = false;
    std::uint64_t report = 0;
    {
        std::lock_guard lock(mutex_);
        const Direct direct = try_write_locked(head, body);
        if (direct == Direct::written) {
            return false;
        }
        if (direct == Direct::partial) {
            wake = true;
        } else {
            auto frame = std::make_shared<Buffer>();
            frame->reserve(head.size() + body.size());
            frame->append(head.data(), head.size());
            frame->append(body.data(), body.size());
            if (control) {
                control_.push_back(std::move(frame));
            } else {
                const auto now = coarse_now();
                report = admit_locked(now);
                messages_.push_back({std::move(frame), now});
                full = full_locked();
            }
            wake = std::exchange(writer_idle_, false);
        }
    }
    warn_drops(report, "the outbox was full");
    if (wake) {
        ring();
    }
    return full;
}

bool Connection::send_through(std::span<const std::byte> head,
                              std::span<const std::byte> body,
                              std::chrono::steady_clock::time_point deadline) {
    if (!open()) {
        return false;
    }
    const std::size_t total = head.size() + body.size();
    std::unique_lock lock(mutex_);
    auto ready = [&] {
        return !open() || socket_free_locked();
    };
    if (!ready()) {
        // A writer busy with a backlog (other threads' messages) is not waited for long: then the
        // frame is copied and queued like any other, and the caller waits for room if need be.
        ++room_waiters_;
        room_.wait_until(lock, std::min(deadline, std::chrono::steady_clock::now() + idle_writer_wait), ready);
        --room_waiters_;
    }
    if (!open()) {
        return false;
    }
    if (!ready()) {
        lock.unlock();
        return send_parts(head, body, false);
    }
    // The writer is idle and stays away (direct_active_) while this thread writes the frame.
    writer_idle_ = false;
    direct_active_ = true;
    std::size_t done = 0;
    int error = 0;
    while (done < total && open()) {
        const int fd = socket_.native_handle();
        const auto n = send_rest(fd, head, body, done);
        if (n > 0) {
            done += static_cast<std::size_t>(n);
            if (done == total) {
                break;
            }
            // A short write filled the socket's buffer: wait for room at once, rather than learn
            // that from one more send() (EAGAIN).
        } else if (n < 0 && errno == EINTR) {
            continue;
        } else if (n == 0 || (errno != EAGAIN && errno != EWOULDBLOCK)) {
            error = n < 0 ? errno : EIO;
            break;
        }
        const auto left =
            std::chrono::duration_cast<std::chrono::milliseconds>(deadline - std::chrono::steady_clock::now());
        if (left.count() <= 0) {
            break;  // the rest is copied and queued below
        }
        // Wait for room without the lock (do_close() may close the socket meanwhile: the loop
        // checks open() again before the next write).
        lock.unlock();
        pollfd p{fd, POLLOUT, 0};
        ::poll(&p, 1, static_cast<int>(std::min<std::int64_t>(left.count(), 100)));
        lock.lock();
    }
    direct_active_ = false;
    if (done > 0) {
        last_write_ns_.store(steady_ns(), std::memory_order_relaxed);
    }
    bool wake = false, full = false;
    std::uint64_t report = 0;
    if (open() && error == 0) {
        if (done < total) {
            auto rest = rest_of(head, body, done);
            if (done == 0) {
                const auto now = coarse_now();
                report = admit_locked(now);
                messages_.push_back({std::move(rest), now});
                full = full_locked();
            } else {
                control_.push_front(std::move(rest));  // the end of a frame begun on the socket goes first
            }
        }
        wake = !control_.empty() || !messages_.empty() || last_frame_;
        if (!wake) {
            writer_idle_ = true;
            if (room_waiters_) {
                room_.notify_all();
            }
        }
    }
    lock.unlock();
    if (error != 0) {
        close("write to " + remote_ + " failed: " + std::error_code(error, std::system_category()).message());
    }
    warn_drops(report, "the outbox was full");
    if (wake) {
        ring();
    }
    return full;
}

void Connection::send_control(SharedFrame frame, bool urgent) {
    if (!open()) {
        return;
    }
    bool wake = false;
    {
        std::lock_guard lock(mutex_);
        const Direct direct = urgent ? try_write_locked(*frame) : Direct::no;
        if (direct == Direct::written) {
            return;
        }
        if (direct == Direct::partial) {
            wake = true;
        } else {
            control_.push_back(std::move(frame));
            wake = std::exchange(writer_idle_, false);
        }
    }
    if (wake) {
        ring();
    }
}

std::uint64_t Connection::admit_locked(std::chrono::steady_clock::time_point now) {
    if (messages_.size() < config_.outbox_capacity * (config_.wait_when_full ? 2 : 1)) {
        return 0;
    }
    if (!messages_.front().frame) {
        --arena_queued_;  // its bytes stay in the arena; the writer skips them
        arena_gaps_ = true;
    }
    messages_.pop_front();
    dropped_.fetch_add(1, std::memory_order_relaxed);
    return drops_.drop(now);
}

bool Connection::send_message(SharedFrame frame, bool urgent) {
    if (!open()) {
        return false;
    }
    bool wake = false, full = false;
    std::uint64_t report = 0;
    const auto now = coarse_now();
    {
        std::lock_guard lock(mutex_);
        const Direct direct = urgent ? try_write_locked(*frame) : Direct::no;
        if (direct == Direct::written) {
            return false;
        }
        if (direct == Direct::partial) {
            wake = true;  // the rest is queued as a control frame
        } else {
            report = admit_locked(now);
            messages_.push_back({std::move(frame), now});
            full = full_locked();
            wake = std::exchange(writer_idle_, false);
        }
    }
    warn_drops(report, "the outbox was full");
    if (wake) {
        ring();
    }
    return full;
}

bool Connection::send_small(std::span<const std::byte> head, std::span<const std::byte> body) {
    if (!open()) {
        return false;
    }
    const std::size_t size = head.size() + body.size();
    auto joined = [&] {
        auto shared = std::make_shared<Buffer>();
        shared->reserve(size);
        shared->append(head.data(), head.size());
        shared->append(body.data(), body.size());
        return shared;
    };
    if (size > max_arena_kept) {
        return send_message(joined());
    }
    bool wake = false, full = false;
    std::uint64_t report = 0;
    const auto now = coarse_now();
    {
        std::lock_guard lock(mutex_);
        report = admit_locked(now);
        if (arena_.size() + size > max_arena_size) {
            // An outbox configured far beyond its default: the rest of this burst is shared frames.
            messages_.push_back({joined(), now});
        } else {
            const auto offset = static_cast<std::uint32_t>(arena_.size());
            arena_.append(head.data(), head.size());
            arena_.append(body.data(), body.size());
            messages_.push_back({nullptr, now, offset, static_cast<std::uint32_t>(size)});
            ++arena_queued_;
        }
        full = full_locked();
        wake = std::exchange(writer_idle_, false);
    }
    warn_drops(report, "the outbox was full");
    if (wake) {
        ring();
    }
    return full;
}

void Connection::wait_for_room(std::chrono::steady_clock::time_point deadline) {
    std::unique_lock lock(mutex_);
    if (!full_locked()) {
        return;
    }
    ++room_waiters_;
    room_.wait_until(lock, deadline, [&] { return !full_locked() || !open(); });
    --room_waiters_;
}

void Connection::log_drops(std::uint64_t count, const char* why) {
    log(LogLevel::warn, "dropped " + std::to_string(count) + " message(s) to " +
                            (peer_.name.empty() ? remote_ : peer_.name) + " (" + remote_ + "): " + why);
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
        {
            std::lock_guard lock(self->mutex_);
            self->last_frame_ = std::move(last);
            self->close_reason_after_flush_ = reason;
            self->writer_idle_ = false;
        }
        self->ring();
    });
}

void Connection::do_close(const std::string& reason, bool abnormal) {
    if (closed_.exchange(true, std::memory_order_acq_rel)) {
        return;
    }
    log(abnormal ? LogLevel::warn : LogLevel::debug, "closing connection: " + reason);
    std::error_code ignored;
    {
        std::lock_guard lock(mutex_);  // no direct write (try_write_locked) runs on a closing descriptor
        socket_.shutdown(Socket::shutdown_both, ignored);
        socket_.close(ignored);
    }
    bell_.close();
    std::uint64_t unreported = 0, unsent = 0;
    {
        std::lock_guard lock(mutex_);
        unreported = drops_.take();
        unsent = messages_.size();
        control_.clear();
        messages_.clear();
        arena_ = Buffer{};
        arena_queued_ = 0;
        arena_gaps_ = false;
    }
    room_.notify_all();
    warn_drops(unreported, "the outbox was full");
    if (unsent && handshaken_.load(std::memory_order_acquire)) {
        warn_drops(unsent, "still queued when the connection closed");
    }
    handler_->on_closed(shared_from_this(), reason);
}

// The reader is a chain of completion handlers rather than a coroutine: per read, a coroutine's
// resumption cost about as much user-space work as handing the frames on (callgrind, 0 B service
// round trip: ~800 instructions of ~2700 on the provider's side).

std::size_t Connection::read_origin(const Buffer& b, std::size_t unparsed) {
    // Where to put `unparsed` bytes in `b` so that the next read lands at page offset 512: the
    // kernel copies into such a destination markedly faster than into one at a page's start.
    const auto next_read = reinterpret_cast<std::uintptr_t>(b.data()) + unparsed;
    return static_cast<std::size_t>((read_offset - next_read % 4096 + 4096) % 4096);
}

void Connection::fresh_read_buffer(std::size_t capacity) {
    // Received frames are handed on without a copy: listeners' inbox items share the receive
    // buffer. So a buffer still shared is never written below `end` again; a fresh one (or the
    // spare, once nothing refers to it) takes the unparsed bytes instead.
    capacity += 4096;  // room for the origin
    std::shared_ptr<Buffer> next;
    if (spare_buf_ && spare_buf_.use_count() == 1 && spare_buf_->capacity() >= capacity) {
        next = std::move(spare_buf_);
    } else {
        next = std::make_shared<Buffer>();
        next->reserve(capacity);
    }
    next->resize(next->capacity());
    const std::size_t at = read_origin(*next, rd_end_ - rd_begin_);
    if (rd_end_ > rd_begin_) {
        std::memcpy(next->data() + at, read_buf_->data() + rd_begin_, rd_end_ - rd_begin_);
    }
    rd_end_ = at + (rd_end_ - rd_begin_);
    rd_begin_ = at;
    spare_buf_ = std::move(read_buf_);
    read_buf_ = std::move(next);
}

void Connection::start_reader() {
    read_buf_ = std::make_shared<Buffer>();
    read_buf_->reserve(read_chunk);
    read_buf_->resize(read_buf_->capacity());
    rd_begin_ = rd_end_ = read_origin(*read_buf_, 0);
    asio::post(strand_, [self = shared_from_this()] { self->read_some(); });
}

void Connection::end_reader(const std::string& reason, bool abnormal) {
    if (!reason.empty()) {
        do_close(reason, abnormal);
    }
    // Whatever way the reader ends, the frames it handed on are delivered.
    handler_->on_frames_done(shared_from_this());
}

Connection::Taken Connection::take_handshake(std::span<const std::byte> pending) {
    std::size_t used = 0;
    wire::Handshake hs;
    std::string reason;
    const auto r = wire::decode_handshake(pending, hs, used, reason);
    if (r == wire::Parse::need_more) {
        return Taken::need_more;
    }
    if (r == wire::Parse::error) {
        end_reader("malformed handshake from " + remote_ + ": " + reason, true);
        return Taken::ended;
    }
    if (hs.version != wire::protocol_version) {
        end_reader("refusing peer " + hs.name + " (" + remote_ + "): protocol version " + std::to_string(hs.version) +
                       ", this node speaks " + std::to_string(wire::protocol_version),
                   true);
        return Taken::ended;
    }
    if (hs.domain != config_.self.domain) {
        end_reader("refusing peer " + hs.name + " (" + remote_ + "): domain '" + hs.domain + "', this node is in '" +
                       config_.self.domain + "'",
                   true);
        return Taken::ended;
    }
    if (!config_.expected_peer_id.empty() && hs.id != config_.expected_peer_id) {
        end_reader("refusing peer at " + remote_ + ": expected node " + config_.expected_peer_id + ", found " + hs.id,
                   true);
        return Taken::ended;
    }
    peer_ = std::move(hs);
    peer_id_ = std::make_shared<const std::string>(peer_.id);
    rd_begin_ += used;
    handshaken_.store(true, std::memory_order_release);
    if (!handler_->on_handshake(shared_from_this(), peer_, reason)) {
        end_reader(reason);
        return Taken::ended;
    }
    return Taken::handshake;
}

void Connection::on_read(const std::error_code& ec, std::size_t n) {
    if (ec) {
        end_reader(ec == asio::error::eof
                       ? "peer " + (peer_.name.empty() ? remote_ : peer_.name) + " closed the connection"
                       : "read from " + remote_ + " failed: " + ec.message());
        return;
    }
    rd_end_ += n;
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
    for (;;) {
        std::span<const std::byte> pending(read_buf_->data() + rd_begin_, rd_end_ - rd_begin_);
        if (!handshaken_.load(std::memory_order_relaxed)) {  // only this reader sets it
            const Taken taken = take_handshake(pending);
            if (taken == Taken::ended) {
                return;
            }
            if (taken == Taken::need_more) {
                break;
            }
            continue;
        }
        wire::FrameView frame;
        std::size_t used = 0, needed = 0;
        std::string reason;
        const auto r = wire::next_frame(pending, config_.max_frame_size, frame, used, needed, reason);
        if (r == wire::Parse::error) {
            end_reader("malformed frame from " + peer_.name + " (" + remote_ + "): " + reason, true);
            return;
        }
        if (r == wire::Parse::need_more) {
            rd_want_ = needed;
            if (needed > read_buf_->capacity() - rd_begin_) {
                // Make room for the whole frame; its size was checked against the maximum.
                fresh_read_buffer(needed > read_chunk ? needed + read_chunk : read_chunk);
            }
            break;
        }
        rd_begin_ += used;
        rd_want_ = 0;
        if (used >= read_chunk) {
            rd_large_hint_ = used;
        }
        if (frame.type == wire::FrameType::bye) {
            handler_->on_frame(self, frame);
            end_reader("peer " + peer_.name + " said goodbye");
            return;
        }
        if (frame.type != wire::FrameType::ping) {
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
                handler_->on_frames_done(self);
                asio::post(strand_, [self] { self->read_some(); });
                return;
            }
        }
    }
    handler_->on_frames_done(self);
    // Then read more, into a buffer with room.
    const bool shared = read_buf_.use_count() > 1;
    const std::size_t capacity = read_buf_->capacity();
    if (rd_begin_ == rd_end_ && !shared) {
        rd_begin_ = rd_end_ = read_origin(*read_buf_, 0);
    } else if (rd_begin_ == rd_end_ && capacity - rd_end_ < read_chunk) {
        // Listeners still hold this buffer and little room is left: the next read goes to another
        // one now, while there is nothing to copy (a large frame read here would otherwise be
        // copied once its length showed it does not fit).
        fresh_read_buffer(capacity - 4096);
    } else if (capacity - rd_end_ < read_chunk / 4 && rd_begin_ > 4096) {
        if (shared) {
            fresh_read_buffer(capacity - 4096);
        } else {
            const std::size_t at = read_origin(*read_buf_, rd_end_ - rd_begin_);
            std::memmove(read_buf_->data() + at, read_buf_->data() + rd_begin_, rd_end_ - rd_begin_);
            rd_end_ = at + (rd_end_ - rd_begin_);
            rd_begin_ = at;
        }
    }
    // Large frames (read_chunk and up) are read to their end exactly, and the next one starts a
    // read in a buffer with room for one as large: their bytes are never copied in user space.
    if (rd_begin_ == rd_end_ && rd_large_hint_ && read_buf_->capacity() - rd_end_ < rd_large_hint_ + read_chunk) {
        fresh_read_buffer(rd_large_hint_ + read_chunk);  // nothing to copy yet
    }
    if (read_buf_->capacity() == rd_end_) {
        fresh_read_buffer(rd_end_ - rd_begin_ + read_chunk);
    }
    std::size_t room = read_buf_->capacity() - rd_end_;
    if (rd_want_ >= read_chunk && rd_begin_ + rd_want_ > rd_end_) {
        room = std::min(room, rd_begin_ + rd_want_ - rd_end_);  // to the end of this large frame
    } else if (rd_want_ == 0 && rd_large_hint_) {
        room = std::min(room, rd_large_hint_);  // likely the end of the next one, if alike
    }
    const auto into = asio::buffer(read_buf_->data() + rd_end_, room);
    auto done = [self = std::move(self)](const std::error_code& ec, std::size_t n) {
        self->on_read(ec, n);
    };
    if (config_.one_thread) {
        socket_.async_read_some(into, std::move(done));  // completes on the socket's executor: strand_
    } else {
        socket_.async_read_some(into, asio::bind_executor(strand_, std::move(done)));
    }
}

asio::awaitable<void> Connection::write_loop() {
    auto self = shared_from_this();
    std::vector<SharedFrame> batch;  // keeps the shared frames being written
    std::vector<asio::const_buffer> buffers;
    Buffer writing;  // the arena being written (swapped with arena_)
    batch.reserve(max_batch_frames);
    buffers.reserve(max_batch_frames);
    std::uint64_t expired = 0;
    bool closing = false;
    bool linger = false;  // a write just ended

    while (open()) {
        batch.clear();
        buffers.clear();
        writing.clear();
        std::size_t bytes = 0;
        {
            std::lock_guard lock(mutex_);
            while (!direct_active_ && !control_.empty() && buffers.size() < max_batch_frames) {
                bytes += control_.front()->size();
                buffers.emplace_back(control_.front()->data(), control_.front()->size());
                batch.push_back(std::move(control_.front()));
                control_.pop_front();
            }
            // Messages wait until the peer's handshake is in: before it we do not know it is a peer.
            bool took_arena = false;
            const bool ready = handshaken_.load(std::memory_order_acquire) && !direct_active_;
            if (ready && buffers.empty() && !messages_.empty() && arena_queued_ == messages_.size() && !arena_gaps_ &&
                arena_.size() <= max_batch_bytes && messages_.front().queued_at >= coarse_now() - config_.outbox_ttl) {
                // Only small messages, none dropped, none too old (the oldest is not): the arena is
                // written whole, with no per-message work but emptying the queue's slots.
                bytes = arena_.size();
                buffers.emplace_back(arena_.data(), arena_.size());
                messages_.clear();
                arena_queued_ = 0;
                std::swap(writing, arena_);
            } else if (ready) {
                const auto oldest_allowed = coarse_now() - config_.outbox_ttl;
                const std::byte* run_end = nullptr;  // end of the last buffer when it lies in the arena
                while (!messages_.empty() && buffers.size() < max_batch_frames && bytes < max_batch_bytes) {
                    auto& q = messages_.front();
                    if (!q.frame) {
                        --arena_queued_;
                        took_arena = true;
                    }
                    if (q.queued_at < oldest_allowed) {
                        ++expired;
                    } else if (q.frame) {
                        bytes += q.frame->size();
                        buffers.emplace_back(q.frame->data(), q.frame->size());
                        batch.push_back(std::move(q.frame));
                        run_end = nullptr;
                    } else {
                        // Consecutive small messages go out as one piece of the arena.
                        const std::byte* at = arena_.data() + q.offset;
                        bytes += q.size;
                        if (run_end == at) {
                            buffers.back() = asio::const_buffer(buffers.back().data(), buffers.back().size() + q.size);
                        } else {
                            buffers.emplace_back(at, q.size);
                        }
                        run_end = at + q.size;
                    }
                    messages_.pop_front();
                }
            }
            if (took_arena) {
                // The writer takes the arena; small messages still queued move to a fresh one.
                arena_gaps_ = false;  // the arena's bytes all leave, or its messages move to a fresh one
                if (arena_queued_ == 0) {
                    std::swap(writing, arena_);
                } else {
                    Buffer rest;
                    for (std::size_t i = 0; i < messages_.size(); ++i) {
                        auto& q = messages_[i];
                        if (!q.frame) {
                            const auto offset = static_cast<std::uint32_t>(rest.size());
                            rest.append(arena_.data() + q.offset, q.size);
                            q.offset = offset;
                        }
                    }
                    writing = std::move(arena_);
                    arena_ = std::move(rest);
                }
            }
            if (room_waiters_ && !full_locked()) {
                room_.notify_all();
            }
            if (buffers.empty() && !direct_active_) {
                if (last_frame_) {
                    // Everything queued is out: the goodbye goes last, then the connection closes.
                    buffers.emplace_back(last_frame_->data(), last_frame_->size());
                    batch.push_back(std::move(last_frame_));
                    closing = true;
                } else if (!linger) {
                    writer_idle_ = true;
                    if (room_waiters_) {
                        room_.notify_all();  // send_through() waits for an idle writer
                    }
                }
            }
        }
        if (expired) {
            dropped_.fetch_add(expired, std::memory_order_relaxed);
            log(LogLevel::warn,
                "dropped " + std::to_string(expired) + " message(s) to " + peer_.name + " older than the outbox TTL");
            expired = 0;
        }
        if (buffers.empty() && linger) {
            // Just after a write, look once more after the other ready handlers ran: a sender on
            // another CPU has usually queued more by then, and is spared a wake-up of this writer.
            linger = false;
            if (const int cpu = ringer_cpu_.load(std::memory_order_relaxed); cpu >= 0 && cpu == ::sched_getcpu()) {
                // The thread that woke this writer runs on this CPU, and the wake-up preempted it
                // after a message or two. Yield to it once, so that it queues a batch: with both
                // processes of a 0 B stream on one CPU, 9.5k context switches per million
                // messages instead of 45k, and 3.6 M msg/s instead of 2.6 M.
                ::sched_yield();
            }
            co_await asio::post(strand_, asio::use_awaitable);
            continue;
        }
        if (buffers.empty()) {
            auto [ec, unused] = co_await bell_.async_receive(use_tuple);
            (void)unused;
            if (ec) {
                co_return;  // closed
            }
            continue;
        }
        auto [ec, n] = co_await asio::async_write(socket_, buffers, use_tuple);
        (void)n;
        if (ec) {
            do_close("write to " + remote_ + " failed: " + ec.message());
            co_return;
        }
        last_write_ns_.store(steady_ns(), std::memory_order_relaxed);
        linger = true;
        if (closing) {
            do_close(close_reason_after_flush_);
            co_return;
        }
        if (writing.capacity() > max_arena_kept) {
            writing = Buffer{};  // a burst's arena is not kept for ever
        }
    }
}

asio::awaitable<void> Connection::watchdog() {
    auto self = shared_from_this();
    asio::steady_timer timer(strand_);
    const auto started = std::chrono::steady_clock::now();
    auto ping = std::make_shared<Buffer>();
    wire::encode_empty(*ping, wire::FrameType::ping);
    const auto tick = config_.heartbeat_interval / 2;
    while (open()) {
        timer.expires_after(tick);
        auto [ec] = co_await timer.async_wait(use_tuple);
        if (ec || !open()) {
            co_return;
        }
        const auto now = steady_ns();
        if (!handshaken_.load(std::memory_order_acquire)) {
            if (std::chrono::steady_clock::now() - started > handshake_timeout) {
                do_close("no handshake from " + remote_ + " within 5 s", true);
                co_return;
            }
            continue;
        }
        const auto silent = std::chrono::nanoseconds(now - last_read_ns_.load(std::memory_order_relaxed));
        if (silent > config_.peer_timeout) {
            do_close("peer " + peer_.name + " (" + remote_ + ") silent for " +
                     std::to_string(std::chrono::duration_cast<std::chrono::milliseconds>(silent).count()) + " ms");
            co_return;
        }
        {
            std::uint64_t unreported = 0;
            {
                std::lock_guard lock(mutex_);
                unreported = drops_.take();
            }
            warn_drops(unreported, "the outbox was full");
        }
        const auto idle = std::chrono::nanoseconds(now - last_write_ns_.load(std::memory_order_relaxed));
        if (idle >= config_.heartbeat_interval) {
            last_write_ns_.store(now, std::memory_order_relaxed);
            send_control(ping);
        }
    }
}

}  // namespace meshy::detail
