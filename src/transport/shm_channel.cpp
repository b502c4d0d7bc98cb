#include "transport/shm_channel.hpp"

#include <fcntl.h>
#include <sched.h>
#include <sys/eventfd.h>
#include <sys/socket.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>

#include "common/system.hpp"

namespace meshy::detail {
namespace {

constexpr std::size_t max_received_fds = 8;

void close_all(std::span<const int> fds) noexcept {
    for (const int fd : fds) {
        if (fd >= 0) {
            ::close(fd);
        }
    }
}

int dup_or_throw(int fd) {
    const int copy = ::fcntl(fd, F_DUPFD_CLOEXEC, 0);
    if (copy < 0) {
        throw std::system_error(errno, std::system_category(), "dup");
    }
    return copy;
}

bool is_eventfd(int fd) noexcept {
    // An eventfd reads as "anon_inode:[eventfd]" in /proc/self/fd.
    char path[64];
    char target[64] = {};
    std::snprintf(path, sizeof path, "/proc/self/fd/%d", fd);
    const auto n = ::readlink(path, target, sizeof target - 1);
    return n > 0 && std::strcmp(target, "anon_inode:[eventfd]") == 0;
}

}  // namespace

ShmChannel::ShmChannel(const asio::any_io_executor& executor, ShmRegion tx, ShmRegion rx, std::array<int, 4> events)
    : tx_region_(std::move(tx)),
      rx_region_(std::move(rx)),
      tx_(tx_region_.bytes()),
      rx_(rx_region_.bytes()),
      tx_data_(events[0]),
      tx_room_(events[1]),
      rx_data_(events[2]),
      rx_room_(events[3]),
      room_waiter_(executor),
      data_waiter_(executor) {
    room_waiter_.assign(dup_or_throw(tx_room_));
    data_waiter_.assign(dup_or_throw(rx_data_));
    spin_useful_ = runs_on_several_cpus();
}

ShmChannel::~ShmChannel() {
    close();
    close_all(std::array{tx_data_, tx_room_, rx_data_, rx_room_});
}

std::unique_ptr<ShmChannel> ShmChannel::create(const asio::any_io_executor& executor,
                                               std::size_t ring_bytes,
                                               std::string& error) {
    const std::size_t size = ShmRingLayout::mapping_size(ring_bytes);
    auto tx = ShmRegion::create(size, "meshy-shm", error);
    if (!tx) {
        return nullptr;
    }
    auto rx = ShmRegion::create(size, "meshy-shm", error);
    if (!rx) {
        return nullptr;
    }
    std::array<int, 4> events{-1, -1, -1, -1};
    for (auto& fd : events) {
        fd = ::eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
        if (fd < 0) {
            error = std::string("eventfd: ") + std::strerror(errno);
            close_all(events);
            return nullptr;
        }
    }
    try {
        return std::unique_ptr<ShmChannel>(new ShmChannel(executor, std::move(tx), std::move(rx), events));
    } catch (const std::exception& e) {
        error = e.what();
        return nullptr;
    }
}

std::unique_ptr<ShmChannel> ShmChannel::adopt(const asio::any_io_executor& executor,
                                              std::span<const int> fds,
                                              std::size_t max_mapping_bytes,
                                              std::string& error) {
    if (fds.size() != shm::offer_fds) {
        error = "an offer with " + std::to_string(fds.size()) + " descriptors (" + std::to_string(shm::offer_fds) +
                " expected)";
        close_all(fds);
        return nullptr;
    }
    for (std::size_t i = 2; i < shm::offer_fds; ++i) {
        if (!is_eventfd(fds[i])) {
            error = "descriptor " + std::to_string(i) + " of the offer is not an eventfd";
            close_all(fds);
            return nullptr;
        }
    }
    // The dialer's outgoing ring is this end's incoming one, and the other way round.
    auto rx = ShmRegion::adopt(fds[0], max_mapping_bytes, &ShmRingLayout::valid_size, error);
    if (!rx) {
        close_all(fds.subspan(1));
        return nullptr;
    }
    auto tx = ShmRegion::adopt(fds[1], max_mapping_bytes, &ShmRingLayout::valid_size, error);
    if (!tx) {
        close_all(fds.subspan(2));
        return nullptr;
    }
    // Ring 0's data and room eventfds, then ring 1's: ring 1 is this end's outgoing ring.
    const std::array<int, 4> events{fds[4], fds[5], fds[2], fds[3]};
    try {
        auto channel = std::unique_ptr<ShmChannel>(new ShmChannel(executor, std::move(tx), std::move(rx), events));
        channel->tx_region_.close_fd();
        channel->rx_region_.close_fd();
        return channel;
    } catch (const std::exception& e) {
        error = e.what();
        close_all(events);
        return nullptr;
    }
}

std::array<int, shm::offer_fds> ShmChannel::offer_fds() const noexcept {
    return {tx_region_.fd(), rx_region_.fd(), tx_data_, tx_room_, rx_data_, rx_room_};
}

void ShmChannel::offered() noexcept {
    tx_region_.close_fd();
    rx_region_.close_fd();
}

void ShmChannel::signal(int eventfd) noexcept {
    const std::uint64_t one = 1;
    // EAGAIN only when the counter is near overflow: the peer is woken anyway.
    [[maybe_unused]] const auto n = ::write(eventfd, &one, sizeof one);
}

void ShmChannel::drain(int eventfd) noexcept {
    std::uint64_t count = 0;
    [[maybe_unused]] const auto n = ::read(eventfd, &count, sizeof count);
}

std::ptrdiff_t ShmChannel::write(std::span<const std::byte> bytes) noexcept {
    return write(std::span<const std::span<const std::byte>>(&bytes, 1));
}

std::ptrdiff_t ShmChannel::write(std::span<const std::span<const std::byte>> parts) noexcept {
    if (closed_) {
        return -1;
    }
    const auto wrote = tx_.write(parts);
    if (wrote.bad_peer) {
        return -1;
    }
    if (wrote.wake_reader) {
        signal(tx_data_);
    }
    return static_cast<std::ptrdiff_t>(wrote.taken);
}

void ShmChannel::room_wait_over() noexcept {
    if (!closed_) {
        drain(tx_room_);
        tx_.clear_waiting();
    }
}

ShmRingReader::Read ShmChannel::read(std::span<std::byte> into, std::string& why) noexcept {
    if (closed_) {
        ShmRingReader::Read r;
        r.bad_peer = true;
        why = "the shared-memory channel is closed";
        return r;
    }
    const auto r = rx_.read(into, why);
    if (r.wake_writer) {
        signal(rx_room_);
    }
    if (r.bytes > 0 && spin_missed_at_ != Clock::time_point{}) {
        // The bytes came after a spin that gave up. Soon after (within twice the longest spin, the
        // wake-up included): the peer answers at spinning pace, and a spin that misses by a little
        // would otherwise shrink itself for good; longer spins are worth it again.
        if (Clock::now() - spin_missed_at_ <= 2 * spin_limit_) {
            spin_budget_ = spin_limit_;
        }
        spin_missed_at_ = {};
    }
    return r;
}

bool ShmChannel::spin_for_data(std::chrono::nanoseconds limit) noexcept {
    if (!spin_useful_ || closed_) {
        return !closed_ && rx_.readable();
    }
    if (spin_budget_.count() < 0) {
        spin_budget_ = limit;
    }
    spin_limit_ = limit;
    const auto start = Clock::now();
    const auto until = start + std::min(spin_budget_, limit);
    for (unsigned i = 0;; ++i) {
        if (rx_.readable()) {
            spin_budget_ = limit;
            return true;
        }
        if ((i & 63) == 63 && Clock::now() >= until) {
            spin_budget_ = std::max(spin_budget_ / 2, limit / 16);
            spin_missed_at_ = start;
            return false;
        }
#if defined(__x86_64__) || defined(__i386__)
        __builtin_ia32_pause();
#elif defined(__aarch64__)
        asm volatile("yield");
#endif
    }
}

void ShmChannel::set_peer_gone() noexcept {
    peer_gone_ = true;
    std::error_code ignored;
    data_waiter_.cancel(ignored);  // the reader looks once more, then ends
}

void ShmChannel::close() noexcept {
    if (closed_) {
        return;
    }
    closed_ = true;
    std::error_code ignored;
    room_waiter_.cancel(ignored);
    data_waiter_.cancel(ignored);
    // The mappings go now, not when the link object does: a peer that died leaves nothing mapped.
    tx_region_ = ShmRegion{};
    rx_region_ = ShmRegion{};
}

std::ptrdiff_t send_with_fds(int sock, std::span<const std::byte> bytes, std::span<const int> fds) noexcept {
    iovec part{const_cast<std::byte*>(bytes.data()), bytes.size()};
    alignas(cmsghdr) char control[CMSG_SPACE(sizeof(int) * max_received_fds)] = {};
    msghdr msg{};
    msg.msg_iov = &part;
    msg.msg_iovlen = 1;
    const std::size_t fd_bytes = sizeof(int) * std::min(fds.size(), max_received_fds);
    msg.msg_control = control;
    msg.msg_controllen = CMSG_SPACE(fd_bytes);
    cmsghdr* c = CMSG_FIRSTHDR(&msg);
    c->cmsg_level = SOL_SOCKET;
    c->cmsg_type = SCM_RIGHTS;
    c->cmsg_len = CMSG_LEN(fd_bytes);
    std::memcpy(CMSG_DATA(c), fds.data(), fd_bytes);
    return ::sendmsg(sock, &msg, MSG_DONTWAIT | MSG_NOSIGNAL);
}

std::ptrdiff_t recv_with_fds(int sock, std::span<std::byte> into, std::vector<int>& fds) noexcept {
    iovec part{into.data(), into.size()};
    alignas(cmsghdr) char control[CMSG_SPACE(sizeof(int) * max_received_fds)];
    msghdr msg{};
    msg.msg_iov = &part;
    msg.msg_iovlen = 1;
    msg.msg_control = control;
    msg.msg_controllen = sizeof control;
    const auto n = ::recvmsg(sock, &msg, MSG_DONTWAIT | MSG_CMSG_CLOEXEC);
    if (n < 0) {
        return n;
    }
    for (cmsghdr* c = CMSG_FIRSTHDR(&msg); c != nullptr; c = CMSG_NXTHDR(&msg, c)) {
        if (c->cmsg_level != SOL_SOCKET || c->cmsg_type != SCM_RIGHTS) {
            continue;
        }
        const std::size_t count = (c->cmsg_len - CMSG_LEN(0)) / sizeof(int);
        for (std::size_t i = 0; i < count; ++i) {
            int fd = -1;
            std::memcpy(&fd, CMSG_DATA(c) + i * sizeof(int), sizeof fd);
            // A peer that floods descriptors gets them closed: an offer has a fixed number.
            if (fds.size() < max_received_fds) {
                fds.push_back(fd);
            } else {
                ::close(fd);
            }
        }
    }
    return n;
}

}  // namespace meshy::detail
