// Connection over a keyed link: the domain key's handshake before the node handshake, then the
// records every frame travels in, read and written (docs/security.md).
#include <algorithm>
#include <array>
#include <asio/async_result.hpp>
#include <asio/bind_executor.hpp>
#include <asio/co_spawn.hpp>
#include <asio/detached.hpp>
#include <asio/post.hpp>
#include <asio/read.hpp>
#include <asio/write.hpp>
#include <string>
#include <vector>

#include "transport/connection.hpp"
#include "transport/connection_internal.hpp"
#include "transport/secure_channel.hpp"
#include "transport/secure_handshake.hpp"
#include "transport/shm_channel.hpp"

namespace meshy::detail {

asio::awaitable<void> Connection::secure_start() {
    auto self = shared_from_this();
    using Result = secure::Handshake::Result;
    secure::Handshake hs(*config_.domain_key, outbound_);
    Buffer out;
    std::array<std::byte, secure::reply_size> in{};
    const auto refuse = [&](Result r) {
        do_close("refusing peer at " + remote_ + ": domain key mismatch" +
                     (r == Result::no_key ? " (the peer has no domain key)" : ""),
                 WarnKind::refused);
    };
    const auto failed = [&](const std::error_code& ec) {
        if (open()) {  // else the watchdog closed it (no handshake in time)
            do_close("secure handshake with " + remote_ + " failed: " +
                     (ec == asio::error::eof ? std::string("the peer closed the connection") : ec.message()));
        }
    };
    // Reads the peer's message of `size` bytes; its magic first, so that a peer without a key
    // (whose node handshake starts otherwise) is refused at once. @returns false when refused.
    const auto read_message = [&](std::size_t size, bool has_magic) -> asio::awaitable<bool> {
        std::size_t at = 0;
        if (has_magic) {
            auto [ec, n] = co_await asio::async_read(socket_, asio::buffer(in.data(), secure::magic_size), use_tuple);
            if (ec) {
                failed(ec);
                co_return false;
            }
            if (!secure::starts_with_magic(std::span<const std::byte>(in.data(), n))) {
                if (outbound_) {
                    refuse(Result::no_key);
                    co_return false;
                }
                // A peer without a key that dialed this node has seen nothing from it yet: it is
                // told why with the magic, and closes; the watchdog bounds the wait for that.
                const std::string reason =
                    "refusing peer at " + remote_ + ": domain key mismatch (the peer has no domain key)";
                warn_limited(WarnKind::refused, "closing connection: " + reason);
                co_await asio::async_write(socket_, asio::buffer(secure::magic, secure::magic_size), use_tuple);
                std::array<std::byte, 1024> sink;
                for (;;) {
                    auto [ec2, m] = co_await socket_.async_read_some(asio::buffer(sink), use_tuple);
                    (void)m;
                    if (ec2) {
                        break;
                    }
                }
                do_close(reason);
                co_return false;
            }
            at = n;
        }
        auto [ec, n] = co_await asio::async_read(socket_, asio::buffer(in.data() + at, size - at), use_tuple);
        (void)n;
        if (ec) {
            failed(ec);
            co_return false;
        }
        co_return true;
    };
    const auto write_out = [&]() -> asio::awaitable<bool> {
        auto [ec, n] = co_await asio::async_write(socket_, asio::buffer(out.data(), out.size()), use_tuple);
        (void)n;
        out.clear();
        if (ec) {
            failed(ec);
            co_return false;
        }
        co_return true;
    };
    if (outbound_) {
        hs.hello(out);
        if (!co_await write_out() || !co_await read_message(secure::reply_size, true)) {
            co_return;
        }
        const auto r = hs.on_reply(std::span<const std::byte>(in.data(), secure::reply_size), out);
        // The finish goes out even on a mismatch: the responder then refuses the link as well.
        if (!co_await write_out()) {
            co_return;
        }
        if (r != Result::ok) {
            refuse(r);
            co_return;
        }
    } else {
        if (!co_await read_message(secure::hello_size, true)) {
            co_return;
        }
        const auto r = hs.on_hello(std::span<const std::byte>(in.data(), secure::hello_size), out);
        if (r != Result::ok) {
            refuse(r);
            co_return;
        }
        if (!co_await write_out() || !co_await read_message(secure::finish_size, false)) {
            co_return;
        }
        if (const auto f = hs.on_finish(std::span<const std::byte>(in.data(), secure::finish_size)); f != Result::ok) {
            refuse(f);
            co_return;
        }
    }
    if (!open()) {
        co_return;
    }
    secure_ = std::make_unique<secure::SecureChannel>(hs.keys());
    start_reader();
    asio::co_spawn(
        strand_, [self]() { return self->write_loop(); }, asio::detached);
}

void Connection::read_sealed(std::span<std::byte> into) {
    auto self = shared_from_this();
    if (secure_->has_plaintext()) {
        // Records opened earlier beyond the reader's room: hand those on before reading more.
        reader_.received(secure_->drain(into));
        asio::post(strand_, [self] { self->read_some(); });
        return;
    }
    sealed_into_ = into;
    const auto space = secure_->read_space();
    if (reads_fds()) {
        read_with_fds(space, &Connection::on_sealed_read);  // the offer and the pool bring descriptors
        return;
    }
    socket_.async_read_some(asio::buffer(space.data(), space.size()),
                            asio::bind_executor(strand_, [self](const std::error_code& ec, std::size_t n) {
                                self->on_sealed_read(ec, n);
                            }));
}

void Connection::on_sealed_read(const std::error_code& ec, std::size_t n) {
    if (ec) {
        on_read(ec, 0);
        return;
    }
    bool ok = true;
    std::string reason;
    const std::size_t opened = secure_->received(n, sealed_into_, ok, reason);
    if (!ok) {
        end_reader(reason + " from " + who(), WarnKind::malformed);
        return;
    }
    on_read({}, opened);
}

asio::awaitable<bool> Connection::seal_for_write(const Outbox::Batch& batch,
                                                 std::vector<asio::const_buffer>& buffers,
                                                 Buffer& sealed) {
    // The rest of a frame a sender wrote itself is sealed already (write_if_idle).
    const std::span<const std::span<const std::byte>> parts(batch.parts);
    const auto presealed = parts.first(batch.presealed);
    for (const auto& part : presealed) {
        buffers.emplace_back(part.data(), part.size());
    }
    const auto rest = parts.subspan(presealed.size());
    std::size_t left = 0;
    for (const auto& part : rest) {
        left += part.size();
    }
    // A large batch is sealed and written a piece at a time: the peer opens one piece while the
    // next is sealed.
    for (std::size_t from = 0; left > 0;) {
        const std::size_t piece = std::min(secure::seal_piece, left);
        sealed.clear();
        secure_->append_sealed(rest, from, piece, sealed);
        from += piece, left -= piece;
        buffers.emplace_back(sealed.data(), sealed.size());
        if (left == 0) {
            break;  // the last piece goes out with the caller's write
        }
        auto [ec, n] = co_await asio::async_write(socket_, buffers, use_tuple);
        (void)n;
        if (ec) {
            do_close("write to " + remote_ + " failed: " + ec.message());
            co_return false;
        }
        buffers.clear();
    }
    co_return true;
}

}  // namespace meshy::detail
