// Connection: the move of a Unix link to shared memory after its handshake (docs/shm.md). The
// dialing end offers rings (their descriptors passed with SCM_RIGHTS in a ping body), the accepting
// end adopts them or refuses, and each end switches its writes over with a last frame on the socket.
#include <sys/socket.h>
#include <unistd.h>

#include <asio/bind_executor.hpp>
#include <asio/post.hpp>
#include <cerrno>
#include <string>
#include <system_error>

#include "meshy/log.hpp"
#include "transport/connection.hpp"
#include "transport/connection_internal.hpp"
#include "transport/shm_channel.hpp"
#include "transport/shm_control.hpp"

namespace meshy::detail {
namespace {

// A reader of shared memory spins this long for more bytes before it sleeps on its eventfd: about
// one hand-off of a call between two processes here (docs/shm.md), and no more than that, so that
// an idle link costs one short spin and then nothing.
constexpr auto shm_spin = std::chrono::microseconds(20);

}  // namespace

bool Connection::reads_fds() const noexcept {
    return config_.allow_shm && is_unix_ && !outbound_ && !keyed_;
}

void Connection::offer_shm() {
    if (!config_.allow_shm || !is_unix_ || !outbound_ || keyed_ || shm_) {
        return;
    }
    std::string error;
    shm_ = ShmChannel::create(strand_, config_.shm_ring_bytes, error);
    if (!shm_) {
        log(LogLevel::info, "shared memory with " + who() + " unavailable (" + error + "): staying on the Unix socket");
        return;
    }
    shm_step_ = ShmStep::offer;
    ring();
}

void Connection::refuse_shm(const std::string& why) {
    log(LogLevel::info, "shared memory with " + who() + " refused (" + why + "): staying on the Unix socket");
    auto frame = std::make_shared<Buffer>();
    shm::encode_control(*frame, {shm::ControlKind::refuse, 0});
    send(std::move(frame), SendMode::control);
}

asio::awaitable<bool> Connection::send_shm_step() {
    // The caller is the writer, between two frames, and no sender writes meanwhile (the writer is
    // busy, or holds them off with begin_direct()).
    Buffer frame;
    const bool offer = shm_step_ == ShmStep::offer;
    shm::encode_control(
        frame, {offer ? shm::ControlKind::offer : shm::ControlKind::switch_over, offer ? shm_->mapping_bytes() : 0});
    for (;;) {
        const int fd = socket_.native_handle();
        const ssize_t n =
            offer ? send_with_fds(fd, frame.bytes(), shm_->offer_fds()) : send_rest(fd, frame.bytes(), {}, 0);
        const int err = errno;
        if (n == static_cast<ssize_t>(frame.size())) {
            break;
        }
        if (n < 0 && (err == EAGAIN || err == EWOULDBLOCK || err == EINTR)) {
            // The socket's buffer is full (a slow peer): once it has room.
            auto [ec] = co_await socket_.async_wait(Socket::wait_write, use_tuple);
            if (ec || !open()) {
                co_return false;
            }
            continue;
        }
        // Part of a frame went out, or the socket failed: the stream cannot go on.
        do_close("sending the shared-memory " + std::string(offer ? "offer" : "switch") + " to " + who() +
                 " failed: " + (n < 0 ? std::error_code(err, std::system_category()).message() : "short write"));
        co_return false;
    }
    if (offer) {
        shm_->offered();  // the peer has its own descriptors now
    } else {
        shm_tx_.store(true, std::memory_order_relaxed);  // every frame after this one: the ring
    }
    shm_step_ = ShmStep::none;
    last_write_ns_.store(steady_ns(), std::memory_order_relaxed);
    co_return true;
}

bool Connection::on_shm_control(std::span<const std::byte> body, std::size_t unparsed) {
    shm::Control control;
    if (!shm::decode_control(body, control)) {
        end_reader("malformed shared-memory control message from " + who(), WarnKind::malformed);
        return false;
    }
    switch (control.kind) {
        case shm::ControlKind::offer: {
            auto fds = std::move(received_fds_);
            received_fds_.clear();
            if (!reads_fds() || shm_) {
                for (const int fd : fds) {
                    ::close(fd);
                }
                refuse_shm(config_.allow_shm ? "not on this link" : "this node does not allow it");
                return true;
            }
            std::string error;
            shm_ = ShmChannel::adopt(strand_, fds, ShmRingLayout::mapping_size(config_.shm_ring_bytes), error);
            if (!shm_) {
                refuse_shm(error);
                return true;
            }
            shm_step_ = ShmStep::switch_over;
            ring();
            return true;
        }
        case shm::ControlKind::switch_over:
            if (!shm_ || shm_rx_ || (outbound_ && shm_step_ == ShmStep::offer)) {
                end_reader("unexpected shared-memory switch from " + who(), WarnKind::malformed);
                return false;
            }
            if (unparsed != 0) {
                end_reader("bytes on the socket after the shared-memory switch from " + who(), WarnKind::malformed);
                return false;
            }
            // From here the peer's frames come through the ring; the socket only says it is alive.
            shm_rx_ = true;
            watch_socket();
            if (outbound_) {
                shm_step_ = ShmStep::switch_over;  // the accepter reads our ring: switch too
                ring();
            }
            log(LogLevel::debug, "link to " + who() + " reads shared memory");
            return true;
        case shm::ControlKind::refuse:
            if (outbound_ && shm_ && !shm_tx_.load(std::memory_order_relaxed) && shm_step_ == ShmStep::none) {
                log(LogLevel::info, "peer " + who() + " refused shared memory: staying on the Unix socket");
                outbox_.exclusive([&] {
                    shm_->close();
                    shm_.reset();
                });
            }
            return true;
    }
    return true;
}

void Connection::watch_socket() {
    socket_.async_read_some(
        asio::buffer(watch_buffer_),
        asio::bind_executor(strand_, [self = shared_from_this()](const std::error_code& ec, std::size_t n) {
            (void)n;
            if (!self->open()) {
                return;
            }
            if (ec == asio::error::eof) {
                self->shm_->set_peer_gone();  // what the peer put in the ring before it went is read first
            } else if (ec) {
                self->do_close("socket of " + self->who() + " failed: " + ec.message());
            } else {
                self->do_close("bytes on the socket after the shared-memory switch from " + self->who(),
                               WarnKind::malformed);
            }
        }));
}

void Connection::read_with_fds(std::span<std::byte> into) {
    auto self = shared_from_this();
    const auto n = recv_with_fds(socket_.native_handle(), into, received_fds_);
    if (n > 0) {
        asio::post(strand_, [self, n] { self->on_read({}, static_cast<std::size_t>(n)); });
        return;
    }
    if (n == 0) {
        on_read(asio::error::eof, 0);
        return;
    }
    if (errno == EAGAIN || errno == EWOULDBLOCK || errno == EINTR) {
        socket_.async_wait(Socket::wait_read, asio::bind_executor(strand_, [self, into](const std::error_code& ec) {
                               if (ec) {
                                   self->on_read(ec, 0);
                               } else if (!self->open()) {
                                   self->end_reader({});
                               } else {
                                   self->read_with_fds(into);
                               }
                           }));
        return;
    }
    on_read(std::error_code(errno, std::system_category()), 0);
}

void Connection::read_ring(std::span<std::byte> into) {
    auto self = shared_from_this();
    std::string why;
    auto r = shm_->read(into, why);
    if (!r.bad_peer && r.bytes == 0 && shm_->spin_for_data(shm_spin)) {
        r = shm_->read(into, why);
    }
    if (r.bad_peer) {
        end_reader(why + " (from " + who() + ")", WarnKind::malformed);
        return;
    }
    if (r.bytes > 0) {
        // Posted, not called: a steady stream would otherwise nest calls without end.
        asio::post(strand_, [self, n = r.bytes] { self->on_read({}, n); });
        return;
    }
    if (shm_->peer_gone()) {
        on_read(asio::error::eof, 0);  // everything it sent was read
        return;
    }
    shm_->async_wait_for_data([self, into](const std::error_code&) {
        if (!self->open()) {
            self->end_reader({});
            return;
        }
        self->read_ring(into);  // woken, or the peer went (set_peer_gone): look again
    });
}

}  // namespace meshy::detail
