#include "transport/acceptor.hpp"

#if defined(__GLIBC__)
#    include <malloc.h>
#endif

#include <algorithm>
#include <asio/co_spawn.hpp>
#include <asio/detached.hpp>
#include <asio/experimental/as_tuple.hpp>
#include <asio/post.hpp>
#include <asio/use_awaitable.hpp>
#include <cerrno>
#include <utility>

#include "transport/connection.hpp"
#include "transport/warn_limiter.hpp"

namespace meshy::detail {
namespace {

constexpr auto use_tuple = asio::experimental::as_tuple(asio::use_awaitable);
// Out of descriptors: pending handshakes closed at once to make room, and the pause before the
// next accept (their descriptors are freed on their own executor meanwhile).
constexpr std::size_t evict_on_exhaustion = 32;
constexpr auto pause_after_eviction = std::chrono::milliseconds(10);
constexpr auto pause_when_stuck = std::chrono::milliseconds(100);
// After this many accepted connections, a watch returns their memory once they are gone.
constexpr std::size_t flood_size = 1024;
constexpr auto release_check_interval = std::chrono::milliseconds(500);

bool out_of_descriptors(const std::error_code& ec) {
    return ec == std::error_code(EMFILE, std::system_category()) ||
           ec == std::error_code(ENFILE, std::system_category()) ||
           ec == std::error_code(ENOBUFS, std::system_category()) ||
           ec == std::error_code(ENOMEM, std::system_category());
}

}  // namespace

Acceptor::Acceptor(asio::any_io_executor executor,
                   asio::any_io_executor socket_executor,
                   std::string label,
                   AcceptorOptions options,
                   Adopt adopt)
    : executor_(std::move(executor)),
      socket_executor_(std::move(socket_executor)),
      label_(std::move(label)),
      options_(options),
      adopt_(std::move(adopt)),
      acceptor_(executor_),
      tokens_(static_cast<double>(options_.max_pending)),
      refilled_(std::chrono::steady_clock::now()) {
}

void Acceptor::listen(const Protocol::endpoint& endpoint, bool reuse_address, std::error_code& ec) {
    acceptor_.open(endpoint.protocol(), ec);
    if (!ec && reuse_address) {
        acceptor_.set_option(asio::socket_base::reuse_address(true), ec);
    }
    if (!ec) {
        acceptor_.bind(endpoint, ec);
    }
    if (!ec) {
        acceptor_.listen(asio::socket_base::max_listen_connections, ec);
    }
}

Acceptor::Protocol::endpoint Acceptor::local_endpoint() const {
    return acceptor_.local_endpoint();
}

void Acceptor::start() {
    asio::co_spawn(
        executor_, [self = shared_from_this()] { return self->accept_loop(); }, asio::detached);
}

void Acceptor::close() {
    closed_.store(true, std::memory_order_release);
    asio::post(executor_, [self = shared_from_this()] {
        std::error_code ignored;
        self->acceptor_.close(ignored);
    });
}

void Acceptor::prune() {
    while (!pending_.empty()) {
        auto conn = pending_.front().lock();
        if (conn && conn->open() && !conn->handshaken()) {
            break;
        }
        pending_.pop_front();
    }
    if (pending_.size() >= options_.max_pending) {
        forget_finished();  // the rest may hold finished ones too
        return;
    }
    pending_count_.store(pending_.size(), std::memory_order_relaxed);
}

std::size_t Acceptor::evict_oldest(std::size_t count, const char* why) {
    prune();
    std::size_t closed = 0;
    while (closed < count && !pending_.empty()) {
        if (auto conn = pending_.front().lock(); conn && conn->open() && !conn->handshaken()) {
            // Posted: its descriptor is freed on the connection's executor.
            conn->close("no handshake yet from " + conn->remote() + ", closed to make room: " + why);
            warn_limited(WarnKind::pending_evicted,
                         "closing connection from " + conn->remote() + " before its handshake arrived: " + why);
            ++closed;
        }
        pending_.pop_front();
    }
    pending_count_.store(pending_.size(), std::memory_order_relaxed);
    return closed;
}

asio::awaitable<void> Acceptor::take_token(asio::steady_timer& timer) {
    const double rate = static_cast<double>(options_.max_accepts_per_second);
    const double burst = static_cast<double>(options_.max_pending);
    for (;;) {
        const auto now = std::chrono::steady_clock::now();
        tokens_ = std::min(burst, tokens_ + std::chrono::duration<double>(now - refilled_).count() * rate);
        refilled_ = now;
        if (tokens_ >= 1) {
            tokens_ -= 1;
            co_return;
        }
        timer.expires_after(std::chrono::duration_cast<std::chrono::steady_clock::duration>(
            std::chrono::duration<double>((1 - tokens_) / rate)));
        co_await timer.async_wait(use_tuple);
        if (closed_.load(std::memory_order_acquire)) {
            co_return;
        }
    }
}

asio::awaitable<void> Acceptor::accept_loop() {
    auto self = shared_from_this();
    asio::steady_timer pause(executor_);
    while (!closed_.load(std::memory_order_acquire)) {
        co_await take_token(pause);
        auto [ec, socket] = co_await acceptor_.async_accept(socket_executor_, use_tuple);
        if (ec) {
            if (ec == asio::error::operation_aborted || closed_.load(std::memory_order_acquire)) {
                co_return;
            }
            // Never spin: the listening socket stays readable while accept() fails.
            std::size_t evicted = 0;
            if (out_of_descriptors(ec)) {
                evicted = evict_oldest(evict_on_exhaustion, "out of file descriptors");
            }
            warn_limited(WarnKind::accept_failed, "accept on " + label_ + " failed: " + ec.message() +
                                                      (evicted ? "; closed " + std::to_string(evicted) +
                                                                     " connection(s) still waiting for a handshake"
                                                               : std::string()));
            pause.expires_after(evicted ? pause_after_eviction : pause_when_stuck);
            co_await pause.async_wait(use_tuple);
            continue;
        }
        prune();
        if (pending_.size() >= options_.max_pending) {
            evict_oldest(pending_.size() - options_.max_pending + 1,
                         ("over " + std::to_string(options_.max_pending) + " connections waiting for one").c_str());
        }
        if (auto conn = adopt_(std::move(socket))) {
            pending_.push_back(conn);
            pending_count_.store(pending_.size(), std::memory_order_relaxed);
        }
        if (++accepted_since_release_ >= flood_size && !releasing_) {
            releasing_ = true;
            asio::co_spawn(
                executor_, [self] { return self->release_memory_after_flood(); }, asio::detached);
        }
    }
}

void Acceptor::forget_finished() {
    std::erase_if(pending_, [](const std::weak_ptr<Connection>& weak) {
        auto conn = weak.lock();
        return !conn || !conn->open() || conn->handshaken();
    });
    pending_count_.store(pending_.size(), std::memory_order_relaxed);
}

void Acceptor::release_memory() {
    // A weak reference to a connection keeps its memory (made with it: the caller forgot the
    // finished ones), and the allocator keeps what was freed unless told to give it back.
    pending_.shrink_to_fit();
#if defined(__GLIBC__)
    ::malloc_trim(0);
#endif
}

asio::awaitable<void> Acceptor::release_memory_after_flood() {
    auto self = shared_from_this();
    asio::steady_timer timer(executor_);
    std::size_t peak = Connection::live_count();
    while (!closed_.load(std::memory_order_acquire)) {
        timer.expires_after(release_check_interval);
        co_await timer.async_wait(use_tuple);
        const std::size_t accepted = std::exchange(accepted_since_release_, 0);
        const std::size_t live = Connection::live_count();
        peak = std::max(peak, live);
        forget_finished();
        if (accepted == 0 && pending_.empty()) {
            // The flood is over: nothing new came, and nothing waits for a handshake any more.
            if (live < peak) {
                release_memory();
            }
            break;
        }
        if (live * 2 <= peak && live < peak) {
            release_memory();  // most of the flood so far is gone; more may still come
            peak = live;
        }
    }
    accepted_since_release_ = 0;
    releasing_ = false;
}

}  // namespace meshy::detail
