// Connection: the direct writes, where a sending thread writes its frame to the socket (or, after
// the switch, the shared-memory ring) itself while the link's writer is idle, instead of queueing
// it for the writer on the strand. A request or reply saves a hand-over per round trip, a large
// message that may wait is written from the caller's bytes without a copy.
//
// They share one rule with the writer (write_loop in connection.cpp): only one of them writes at a
// time, and frames leave in order. The outbox holds it: write_if_idle() runs under its lock,
// begin_direct()/end_direct() hold the writer off for a large frame, and what a sender could not
// write is queued to go first. On a keyed link the sender seals the frame itself, in nonce order,
// for the same reason. send_rest(), the non-blocking send they make, is here too (connection_shm.cpp
// sends its offer with it). Kept apart from the strand's side so that each can be read alone.

#include <poll.h>
#include <sys/socket.h>
#include <sys/syscall.h>
#include <sys/uio.h>
#include <unistd.h>

#include <algorithm>
#include <array>
#include <cerrno>
#include <chrono>
#include <cstring>
#include <system_error>

#include "common/system.hpp"
#include "transport/connection.hpp"
#include "transport/connection_internal.hpp"
#include "transport/secure_channel.hpp"
#include "transport/shm_channel.hpp"

namespace meshy::detail {
namespace {

// Urgent frames (requests, replies) up to this size are written by the sending thread itself
// when the writer is idle: one hand-over less per round trip.
constexpr std::size_t direct_write_max = 4u * 1024 * 1024;
// A frame written directly that did not fit the socket buffer grows it to the frame's size, up to
// this (see Connection::grow_send_buffer_locked).
constexpr std::size_t max_grown_send_buffer = 4u * 1024 * 1024;
// How long write_large_in_place() waits for the writer to become idle before it queues a copy.
constexpr auto idle_writer_wait = std::chrono::milliseconds(20);
// Up to this many bytes, send_rest() joins a frame's two parts and sends them with one send().
constexpr std::size_t join_parts_max = 4096;

/// What a sender writing a large frame itself does after a send() that returned `n` (errno `err`)
/// and left bytes to write.
enum class AfterWrite {
    again,  ///< interrupted: send again
    wait,   ///< the socket's buffer is full (a short write says so at once): wait for room
    fail,   ///< the socket failed: `error` says how
};
AfterWrite after_socket_write(ssize_t n, int err, int& error) {
    if (n > 0) {
        return AfterWrite::wait;
    }
    if (n < 0 && err == EINTR) {
        return AfterWrite::again;
    }
    if (n == 0 || (err != EAGAIN && err != EWOULDBLOCK)) {
        error = n < 0 ? err : EIO;
        return AfterWrite::fail;
    }
    return AfterWrite::wait;
}

/// Waits for room in socket `fd`, a poll of at most 100 ms. @returns false once `deadline` passed.
bool wait_for_socket_room(int fd, Connection::Clock::time_point deadline) {
    const auto left = std::chrono::duration_cast<std::chrono::milliseconds>(deadline - Connection::Clock::now());
    if (left.count() <= 0) {
        return false;
    }
    pollfd p{fd, POLLOUT, 0};
    ::poll(&p, 1, static_cast<int>(std::min<std::int64_t>(left.count(), 100)));
    return true;
}

}  // namespace

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
    // than joining two small parts here first (see docs/transport.md).
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

bool Connection::write_if_idle(std::span<const std::byte> head, std::span<const std::byte> body) {
    const std::size_t total = head.size() + body.size();
    if (total > direct_write_max) {
        return false;
    }
    // On a keyed link the frame is sealed here, with the outbox's lock held and its writer idle:
    // the records go out in the order of their nonces. What the socket does not take is then
    // already sealed, and the writer sends it as it is.
    thread_local Buffer sealed;
    const auto direct = outbox_.write_if_idle(
        [&]() -> Outbox::Written {
            if (!open()) {
                return {-1, 0};
            }
            if (!sealing()) {
                return {write_bytes(head, body, 0), head.size() + body.size()};
            }
            // Sealed and written a piece at a time while the socket takes them, so that the peer
            // opens the first records while the rest are sealed; what it does not take is sealed too.
            const std::span<const std::byte> parts[] = {head, body};
            sealed.clear();
            std::size_t plain = 0, written = 0;
            while (plain < total && written == sealed.size()) {
                const std::size_t piece = std::min(secure::seal_piece, total - plain);
                secure_->append_sealed(parts, plain, piece, sealed);
                plain += piece;
                written += static_cast<std::size_t>(std::max<ssize_t>(write_bytes(sealed.bytes(), {}, written), 0));
            }
            if (plain < total) {
                secure_->append_sealed(parts, plain, total - plain, sealed);
            }
            head = sealed.bytes();
            body = {};
            // Once sealed, the records must go out even if the socket is full now (see Outbox::Written).
            return {static_cast<ssize_t>(written), head.size()};
        },
        [&](std::size_t written) {
            grow_send_buffer_locked(head.size() + body.size());
            return rest_of(head, body, written);
        },
        // A rest marked sealed that the lambda wrote as a frame (the link switched to the ring
        // meanwhile) is still right: the ring's writer sends every part as it is.
        sealing() ? Outbox::Rest::sealed : Outbox::Rest::frame);
    if (direct == Outbox::Direct::no) {
        return false;
    }
    last_write_ns_.store(steady_ns(), std::memory_order_relaxed);
    if (direct == Outbox::Direct::partial) {
        ring();
    }
    return true;
}

bool Connection::write_now_or_queue(std::span<const std::byte> head, std::span<const std::byte> body, bool control) {
    if (write_if_idle(head, body)) {
        return false;
    }
    auto frame = rest_of(head, body, 0);
    return queued(control ? outbox_.push_control(std::move(frame))
                          : outbox_.push_message(std::move(frame), coarse_now()));
}

bool Connection::write_large_in_place(std::span<const std::byte> head,
                                      std::span<const std::byte> body,
                                      Clock::time_point deadline) {
    // A writer busy with a backlog (other threads' messages) is not waited for long: then the
    // frame is copied and queued like any other, and the caller waits for room if need be.
    if (!outbox_.begin_direct(std::min(deadline, Clock::now() + idle_writer_wait))) {
        return open() && write_now_or_queue(head, body, false);
    }
    const std::size_t total = head.size() + body.size();
    std::size_t done = 0;
    int error = 0;
    while (done < total) {
        int fd = -1;
        ssize_t n = -1;
        int err = 0;
        bool ring = false;
        bool room = false;
        // Under the outbox's lock, so that do_close() does not close the descriptor meanwhile.
        outbox_.exclusive([&] {
            if (open()) {
                ring = shm_tx_.load(std::memory_order_relaxed);
                fd = ring ? shm_->room_fd() : socket_.native_handle();
                n = write_bytes(head, body, done);
                err = errno;
                if (ring && n >= 0 && done + static_cast<std::size_t>(n) < total) {
                    room = shm_->prepare_room_wait();
                }
            }
        });
        if (fd < 0) {
            break;
        }
        if (ring) {
            // The ring: wait on the eventfd its reader signals once it freed room.
            if (n < 0) {
                error = EPIPE;
                break;
            }
            done += static_cast<std::size_t>(n);
            if (done == total) {
                break;
            }
            const auto left = std::chrono::duration_cast<std::chrono::milliseconds>(deadline - Clock::now());
            if (!room && left.count() > 0) {
                pollfd p{fd, POLLIN, 0};
                ::poll(&p, 1, static_cast<int>(std::min<std::int64_t>(left.count(), 100)));
            }
            outbox_.exclusive([&] {
                if (open()) {
                    shm_->room_wait_over();
                }
            });
            if (left.count() <= 0) {
                break;
            }
            continue;
        }
        if (n > 0) {
            done += static_cast<std::size_t>(n);
            if (done == total) {
                break;
            }
        }
        const auto next = after_socket_write(n, err, error);
        if (next == AfterWrite::again) {
            continue;
        }
        if (next == AfterWrite::fail || !wait_for_socket_room(fd, deadline)) {
            break;  // past the deadline, the rest is copied and queued below
        }
    }
    if (done > 0) {
        last_write_ns_.store(steady_ns(), std::memory_order_relaxed);
    }
    SharedFrame rest;
    if (error == 0 && done < total && open()) {
        rest = rest_of(head, body, done);
    }
    const auto pushed = outbox_.end_direct(std::move(rest), done > 0, coarse_now());
    if (error != 0) {
        close("write to " + remote_ + " failed: " + std::error_code(error, std::system_category()).message());
    }
    return queued(pushed);
}

bool Connection::write_large_sealed(std::span<const std::byte> head,
                                    std::span<const std::byte> body,
                                    Clock::time_point deadline) {
    if (!outbox_.begin_direct(std::min(deadline, Clock::now() + idle_writer_wait))) {
        return open() && write_now_or_queue(head, body, false);
    }
    if (!sealing()) {
        // The link switched to shared memory while this waited: no records from here on.
        queued(outbox_.end_direct(nullptr, false, coarse_now()));
        return write_large_in_place(head, body, deadline);
    }
    // The writer is held off, so this thread alone seals: the records go out in nonce order.
    thread_local Buffer sealed;
    const std::span<const std::byte> parts[] = {head, body};
    const std::size_t total = head.size() + body.size();
    std::size_t plain = 0;    // bytes of the frame sealed so far
    std::size_t written = 0;  // bytes of `sealed` written
    bool wrote = false;       // any bytes at all
    int error = 0;
    sealed.clear();
    for (;;) {
        if (written == sealed.size()) {
            if (plain == total) {
                break;
            }
            // The next piece is sealed once the last one is out: the peer opens that one meanwhile.
            const std::size_t piece = std::min(secure::seal_piece, total - plain);
            sealed.clear();
            written = 0;
            secure_->append_sealed(parts, plain, piece, sealed);
            plain += piece;
        }
        int fd = -1;
        ssize_t n = -1;
        int err = 0;
        outbox_.exclusive([&] {  // so that do_close() does not close the descriptor meanwhile
            if (open()) {
                fd = socket_.native_handle();
                n = write_bytes(sealed.bytes(), {}, written);
                err = errno;
            }
        });
        if (fd < 0) {
            break;
        }
        if (n > 0) {
            written += static_cast<std::size_t>(n);
            wrote = true;
            if (written == sealed.size()) {
                continue;  // the next piece
            }
        }
        const auto next = after_socket_write(n, err, error);
        if (next == AfterWrite::again) {
            continue;
        }
        if (next == AfterWrite::fail || !wait_for_socket_room(fd, deadline)) {
            break;  // past the deadline, the rest is sealed and queued below
        }
    }
    if (wrote) {
        last_write_ns_.store(steady_ns(), std::memory_order_relaxed);
    }
    SharedFrame rest;
    if (error == 0 && open() && (plain < total || written < sealed.size())) {
        if (plain < total) {
            secure_->append_sealed(parts, plain, total - plain, sealed);
        }
        rest = rest_of(sealed.bytes(), {}, written);
    }
    const auto pushed = outbox_.end_direct(std::move(rest), true, coarse_now(), Outbox::Rest::sealed);
    if (error != 0) {
        close("write to " + remote_ + " failed: " + std::error_code(error, std::system_category()).message());
    }
    return queued(pushed);
}

ssize_t Connection::write_bytes(std::span<const std::byte> head, std::span<const std::byte> body, std::size_t done) {
    if (!shm_tx_.load(std::memory_order_relaxed)) {
        return send_rest(socket_.native_handle(), head, body, done);
    }
    std::array<std::span<const std::byte>, 2> parts{head, body};
    if (done < head.size()) {
        parts[0] = head.subspan(done);
    } else {
        parts[0] = {};
        parts[1] = body.subspan(done - head.size());
    }
    return static_cast<ssize_t>(shm_->write(parts));
}

void Connection::grow_send_buffer_locked(std::size_t frame) {
    if (send_buffer_ == 0 || frame <= send_buffer_ || send_buffer_ >= max_grown_send_buffer) {
        return;  // the kernel's own size, already large enough, or as large as it grows
    }
    send_buffer_ = std::min(frame, max_grown_send_buffer);
    const int size = static_cast<int>(send_buffer_);  // the kernel doubles it: room for the frame and more
    ::setsockopt(socket_.native_handle(), SOL_SOCKET, SO_SNDBUF, &size, sizeof size);
}

}  // namespace meshy::detail
