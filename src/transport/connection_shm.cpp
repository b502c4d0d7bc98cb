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
#include "transport/secure_channel.hpp"
#include "transport/shm_channel.hpp"
#include "transport/shm_control.hpp"
#include "transport/shm_loan_view.hpp"
#include "transport/shm_pool.hpp"

namespace meshy::detail {
namespace {

// A reader of shared memory spins this long for more bytes before it sleeps on its eventfd. Longer
// than a sleeping peer takes to wake up and answer (docs/shm.md): a shorter spin misses whenever
// the peer slept, and then makes the peer miss in turn, and a call pays two wake-ups each time.
// An idle link spins less and less (see ShmChannel::spin_for_data), so it costs nothing.
constexpr auto shm_spin = std::chrono::microseconds(50);
// Only a link that carried a call this recently spins. A stream's reader does not: its next
// message comes when the sender has made it, and a spin there takes the CPU that the sender (or
// the listener's callback) needs; on two CPUs, 1 MB loans moved at half the rate with it.
// Longer than coarse_now()'s resolution, so that a link in a call's rhythm never looks idle.
constexpr auto calls_window = std::chrono::milliseconds(20);

}  // namespace

bool Connection::reads_fds() const noexcept {
    // The accepter until the dialer's switch (the offer, then the dialer's pool); the dialer once
    // it offered, until the accepter's switch (the accepter's pool).
    return config_.allow_shm && is_unix_ && (!outbound_ || shm_ != nullptr);
}

void Connection::offer_shm() {
    if (!config_.allow_shm || !is_unix_ || !outbound_ || shm_) {
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
    const bool offer = shm_step_ == ShmStep::offer;
    Buffer frame;
    std::vector<int> fds;
    if (offer) {
        shm::encode_control(frame, {shm::ControlKind::offer, shm_->mapping_bytes()});
        const auto offered = shm_->offer_fds();
        fds.assign(offered.begin(), offered.end());
    } else {
        // The node's loan pool goes just before the switch, while the peer still reads the socket
        // with its descriptors (docs/shm.md, "Loans").
        std::string error;
        if (config_.loan_pool && config_.loan_pool->ready(error)) {
            shm::Control pool{shm::ControlKind::pool};
            pool.pool_bytes = config_.loan_pool->size();
            shm::encode_control(frame, pool);
            const int pool_fd[] = {config_.loan_pool->fd()};
            const bool sent = co_await send_on_socket(frame, pool_fd, "loan pool");
            if (!sent) {
                co_return false;
            }
            pool_offered_ = true;
            frame.clear();
        } else if (config_.loan_pool) {
            log(LogLevel::info, "no loan pool for " + who() + " (" + error + "): loans to it are copied");
        }
        shm::encode_control(frame, {shm::ControlKind::switch_over});
    }
    if (!co_await send_on_socket(frame, fds, offer ? "offer" : "switch")) {
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

asio::awaitable<bool> Connection::write_to_ring(std::span<std::span<const std::byte>> parts) {
    // The whole batch in one write (one publication, one wake-up), as a socket takes it in one
    // writev; what does not fit waits for room.
    std::span<std::span<const std::byte>> left(parts);
    while (!left.empty()) {
        const auto n = shm_->write(left);
        if (n < 0) {
            do_close("the shared-memory ring to " + who() + " is corrupt (its read index is impossible)",
                     WarnKind::malformed);
            co_return false;
        }
        auto taken = static_cast<std::size_t>(n);
        while (!left.empty() && taken >= left.front().size()) {
            taken -= left.front().size();
            left = left.subspan(1);
        }
        if (left.empty()) {
            break;
        }
        left.front() = left.front().subspan(taken);
        auto [ec] = co_await asio::async_initiate<decltype(use_tuple), void(std::error_code)>(
            [this](auto handler) { shm_->async_wait_for_room(std::move(handler)); }, use_tuple);
        if (ec || !open()) {
            co_return false;
        }
    }
    co_return true;
}

asio::awaitable<bool> Connection::send_on_socket(const Buffer& plain, std::span<const int> fds, const char* what) {
    // On a keyed link the step is a record like any other frame (the writer seals in nonce order;
    // senders are held off), and its descriptors ride with that record.
    Buffer sealed;
    if (secure_) {
        const std::span<const std::byte> parts[] = {plain.bytes()};
        secure_->seal(parts, sealed);
    }
    const Buffer& frame = secure_ ? sealed : plain;
    for (;;) {
        const int fd = socket_.native_handle();
        const ssize_t n = fds.empty() ? send_rest(fd, frame.bytes(), {}, 0) : send_with_fds(fd, frame.bytes(), fds);
        const int err = errno;
        if (n == static_cast<ssize_t>(frame.size())) {
            co_return true;
        }
        if (n < 0 && (err == EAGAIN || err == EWOULDBLOCK || err == EINTR)) {
            // The socket's buffer is full (a slow peer): once it has room.
            auto [ec] = co_await socket_.async_wait(Socket::wait_write, use_tuple);
            if (ec || !open()) {
                co_return false;
            }
            continue;
        }
        if (n < 0 && (err == EPIPE || err == ECONNRESET)) {
            // The peer closed its end (a node that sent and stopped): what it sent before is still
            // to be read, and the reader ends the link at the end of it. Nothing more goes out.
            co_return false;
        }
        // Part of a frame went out, or the socket failed: the stream cannot go on.
        do_close("sending the shared-memory " + std::string(what) + " to " + who() +
                 " failed: " + (n < 0 ? std::error_code(err, std::system_category()).message() : "short write"));
        co_return false;
    }
}

bool Connection::on_shm_control(std::span<const std::byte> body, std::size_t unparsed) {
    shm::Control control;
    if (!shm::decode_control(body, control)) {
        end_reader("malformed shared-memory control message from " + who(), WarnKind::malformed);
        return false;
    }
    switch (control.kind) {
        case shm::ControlKind::offer: {
            std::vector<int> fds;
            while (fds.size() < shm::offer_fds && !received_fds_.empty()) {
                fds.push_back(take_received_fd());
            }
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
            if (unparsed != 0 || (secure_ && !secure_->idle())) {
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
        case shm::ControlKind::pool:
        case shm::ControlKind::pool_mapped:
        case shm::ControlKind::loaned:
        case shm::ControlKind::release:
            return on_loan_control(control);
    }
    return true;
}

int Connection::take_received_fd() {
    if (received_fds_.empty()) {
        return -1;
    }
    const int fd = received_fds_.front();
    received_fds_.erase(received_fds_.begin());
    return fd;
}

bool Connection::on_loan_control(const shm::Control& control) {
    switch (control.kind) {
        case shm::ControlKind::pool: {
            const int fd = take_received_fd();
            if (fd < 0 || peer_pool_ || !shm_) {
                if (fd >= 0) {
                    ::close(fd);
                }
                // Without a pool mapped here the peer sends its loans' bytes: nothing is lost.
                log(LogLevel::debug, "ignoring a loan pool from " + who() + " (none attached, or not expected)");
                return true;
            }
            std::string error;
            auto pool = ShmRegion::adopt_read_only(fd, config_.shm_pool_bytes, error);
            if (!pool) {
                log(LogLevel::info,
                    "not mapping the loan pool of " + who() + " (" + error + "): its loans come as copies");
                return true;
            }
            peer_pool_ = std::make_shared<const ShmRegion>(std::move(pool));
            auto frame = std::make_shared<Buffer>();
            shm::encode_control(*frame, {shm::ControlKind::pool_mapped});
            send(std::move(frame), SendMode::control);
            return true;
        }
        case shm::ControlKind::pool_mapped:
            if (!pool_offered_ || peer_maps_pool_.load(std::memory_order_relaxed)) {
                end_reader("unexpected loan-pool answer from " + who(), WarnKind::malformed);
                return false;
            }
            peer_maps_pool_.store(true, std::memory_order_release);
            log(LogLevel::debug, "link to " + who() + " takes loans");
            return true;
        case shm::ControlKind::loaned: {
            if (!peer_pool_) {
                end_reader("a loaned message from " + who() + " without a loan pool", WarnKind::malformed);
                return false;
            }
            const auto pool = peer_pool_->bytes();
            if (!shm::loan_in_pool(control.offset, control.length, pool.size()) ||
                control.length > config_.max_frame_size) {
                end_reader("a loaned message from " + who() + " outside its pool (" + std::to_string(control.length) +
                               " bytes at " + std::to_string(control.offset) + ")",
                           WarnKind::malformed);
                return false;
            }
            const auto payload = std::span<const std::byte>(pool).subspan(control.offset, control.length);
            handler_->on_loaned(shared_from_this(), LoanedMessage{control.topic, control.codec, control.sent_at_ns,
                                                                  std::make_shared<const ShmLoanView>(
                                                                      peer_pool_, weak_from_this(), control.slot,
                                                                      control.generation, payload)});
            return true;
        }
        case shm::ControlKind::release:
            if (!config_.loan_pool || !config_.loan_pool->release(control.slot, control.generation, pool_holder_)) {
                end_reader("a release from " + who() + " of a loan it does not hold", WarnKind::malformed);
                return false;
            }
            return true;
        default:
            return true;
    }
}

bool Connection::send_loaned(const ShmPoolAllocator::Block& block,
                             CodecId codec,
                             std::uint64_t sent_at_ns,
                             std::string_view topic) {
    // The loaned frame goes with the control frames, ahead of queued messages: while this link has
    // messages queued, the loan's bytes go as one of them instead, so that messages keep their order.
    if (!peer_maps_pool_.load(std::memory_order_acquire) || !open() || outbox_.queued() != 0 ||
        !config_.loan_pool->hold(block, pool_holder_)) {
        return false;
    }
    // A link that closed meanwhile may have released its holds before this one: take it back.
    if (!open()) {
        config_.loan_pool->release(block.slot, block.generation, pool_holder_);
        return false;
    }
    shm::Control loaned{shm::ControlKind::loaned};
    loaned.codec = codec;
    loaned.sent_at_ns = sent_at_ns;
    loaned.slot = block.slot;
    loaned.generation = block.generation;
    loaned.offset = block.offset;
    loaned.length = block.size;
    loaned.topic = topic;
    thread_local Buffer frame;
    frame.clear();
    shm::encode_control(frame, loaned);
    // Never dropped (the block would stay held): written at once when the link is idle, else
    // queued with the control frames.
    send(frame.bytes(), {}, SendMode::reply);
    return true;
}

void Connection::release_loan(std::uint32_t slot, std::uint32_t generation) {
    if (!open()) {
        return;  // the peer took its blocks back when the link closed
    }
    shm::Control release{shm::ControlKind::release};
    release.slot = slot;
    release.generation = generation;
    thread_local Buffer frame;  // one a message: no allocation each (send() copies what it queues)
    frame.clear();
    shm::encode_control(frame, release);
    send(frame.bytes(), {}, SendMode::control);
}

ShmLoanView::~ShmLoanView() {
    if (auto link = link_.lock()) {
        link->release_loan(slot_, generation_);
    }
}

bool ShmLoanView::intact() const noexcept {
    const auto link = link_.lock();
    return link && link->open();
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

void Connection::read_with_fds(std::span<std::byte> into, ReadDone done) {
    auto self = shared_from_this();
    const auto n = recv_with_fds(socket_.native_handle(), into, received_fds_);
    if (n > 0) {
        asio::post(strand_, [self, n, done] { (self.get()->*done)({}, static_cast<std::size_t>(n)); });
        return;
    }
    if (n == 0) {
        (this->*done)(asio::error::eof, 0);
        return;
    }
    if (errno == EAGAIN || errno == EWOULDBLOCK || errno == EINTR) {
        socket_.async_wait(Socket::wait_read,
                           asio::bind_executor(strand_, [self, into, done](const std::error_code& ec) {
                               if (ec) {
                                   (self.get()->*done)(ec, 0);
                               } else if (!self->open()) {
                                   self->end_reader({});
                               } else {
                                   self->read_with_fds(into, done);
                               }
                           }));
        return;
    }
    (this->*done)(std::error_code(errno, std::system_category()), 0);
}

void Connection::note_call(std::span<const std::byte> frame) noexcept {
    // Every frame starts with its length (4 bytes) and its type.
    if (frame.size() >= wire::frame_prefix) {
        note_call(static_cast<wire::FrameType>(frame[4]));
    }
}

void Connection::note_call(wire::FrameType type) noexcept {
    if (type == wire::FrameType::request || type == wire::FrameType::reply) {
        last_call_ns_.store(steady_ns(), std::memory_order_relaxed);
    }
}

bool Connection::carries_calls() const noexcept {
    const std::int64_t last = last_call_ns_.load(std::memory_order_relaxed);
    return last != 0 && steady_ns() - last <= std::chrono::nanoseconds(calls_window).count();
}

void Connection::read_ring(std::span<std::byte> into) {
    auto self = shared_from_this();
    std::string why;
    auto r = shm_->read(into, why);
    if (!r.bad_peer && r.bytes == 0 && carries_calls() && shm_->spin_for_data(shm_spin)) {
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
