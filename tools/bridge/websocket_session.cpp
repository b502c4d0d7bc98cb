#include "bridge/websocket_session.hpp"

#include <asio/co_spawn.hpp>
#include <asio/detached.hpp>
#include <asio/redirect_error.hpp>
#include <asio/ssl.hpp>
#include <asio/steady_timer.hpp>
#include <asio/use_awaitable.hpp>
#include <asio/write.hpp>
#include <meshy/log.hpp>

#include "bridge/websocket_frame.hpp"
#include "bridge/websocket_handshake.hpp"
#include "common/rate_limited_log.hpp"

namespace meshy::cli::bridge {

namespace {
constexpr std::size_t read_chunk = 16 * 1024;
constexpr std::chrono::milliseconds close_timeout{2000};
constexpr std::chrono::milliseconds tick{250};
}  // namespace

struct WebSocketSession::Stream {
    Stream(asio::ip::tcp::socket socket, asio::ssl::context* tls)
        : ssl(std::move(socket), tls ? *tls : fallback()), wake(ssl.get_executor()), ticker(ssl.get_executor()) {}
    static asio::ssl::context& fallback() {
        static asio::ssl::context ctx(asio::ssl::context::tls_server);
        return ctx;
    }
    asio::ssl::stream<asio::ip::tcp::socket> ssl;
    asio::steady_timer wake;
    asio::steady_timer ticker;
    std::vector<char> chunk = std::vector<char>(read_chunk);
};

struct WebSocketSession::Assembler : MessageAssembler {
    using MessageAssembler::MessageAssembler;
};

WebSocketSession::WebSocketSession(asio::ip::tcp::socket socket,
                                   asio::ssl::context* tls,
                                   SessionHost& host,
                                   const BridgeOptions& options,
                                   std::uint64_t id)
    : tls_(tls != nullptr), host_(host), options_(options), id_(id), queue_(options.send_queue_bytes) {
    std::error_code ec;
    const auto endpoint = socket.remote_endpoint(ec);
    peer_ = ec ? std::string("?") : endpoint.address().to_string() + ":" + std::to_string(endpoint.port());
    stream_ = std::make_unique<Stream>(std::move(socket), tls);
    assembler_ = std::make_unique<Assembler>(options_.max_message_size);
}

WebSocketSession::~WebSocketSession() = default;

void WebSocketSession::start() {
    const auto now = Clock::now();
    deadline_ = now + handshake_timeout;
    last_receive_ = last_ping_ = last_progress_ = now;
    auto self = shared_from_this();
    asio::co_spawn(
        stream_->ssl.get_executor(), [self]() { return self->run(); }, asio::detached);
    asio::co_spawn(
        stream_->ssl.get_executor(), [self]() { return self->watchdog(); }, asio::detached);
}

asio::awaitable<std::size_t> WebSocketSession::read_some(char* data, std::size_t size) {
    if (tls_) {
        co_return co_await stream_->ssl.async_read_some(asio::buffer(data, size), asio::use_awaitable);
    }
    co_return co_await stream_->ssl.next_layer().async_read_some(asio::buffer(data, size), asio::use_awaitable);
}

asio::awaitable<void> WebSocketSession::write_all(std::string_view data) {
    if (tls_) {
        co_await asio::async_write(stream_->ssl, asio::buffer(data.data(), data.size()), asio::use_awaitable);
    } else {
        co_await asio::async_write(stream_->ssl.next_layer(), asio::buffer(data.data(), data.size()),
                                   asio::use_awaitable);
    }
}

asio::awaitable<void> WebSocketSession::run() {
    auto self = shared_from_this();
    try {
        if (tls_) {
            co_await stream_->ssl.async_handshake(asio::ssl::stream_base::server, asio::use_awaitable);
        }
        // The HTTP request head.
        HttpParse parsed;
        for (;;) {
            const std::size_t n = co_await read_some(stream_->chunk.data(), stream_->chunk.size());
            inbuf_.append(stream_->chunk.data(), n);
            parsed = parse_http_request(inbuf_);
            if (parsed.status == HttpParse::Status::error) {
                meshy::detail::log_rate_limited(LogLevel::warn, "bridge: bad HTTP request",
                                                "bridge: " + peer_ + ": bad HTTP request: " + parsed.error);
                co_await write_all(http_response(400, "text/plain", parsed.error + "\n"));
                abort();
                co_return;
            }
            if (parsed.status == HttpParse::Status::complete) {
                break;
            }
        }
        inbuf_.erase(0, parsed.consumed);
        const HttpDecision decision = host_.on_request(*this, parsed.request);
        if (decision.handler) {
            deadline_ = Clock::time_point::max();
            co_await decision.handler(*this);
        }
        co_await write_all(decision.response);
        if (!decision.upgrade) {
            std::error_code ec;
            stream_->ssl.next_layer().shutdown(asio::ip::tcp::socket::shutdown_send, ec);
            abort();
            co_return;
        }
        ws_open_ = true;
        last_receive_ = last_ping_ = last_progress_ = Clock::now();
        asio::co_spawn(
            stream_->ssl.get_executor(), [self]() { return self->writer(); }, asio::detached);
        host_.on_open(*this, parsed.request);
        handle_frames();  // a client may send its first frame with the request
        while (!dead_ && !input_closed_) {
            const std::size_t n = co_await read_some(stream_->chunk.data(), stream_->chunk.size());
            last_receive_ = Clock::now();
            inbuf_.append(stream_->chunk.data(), n);
            handle_frames();
        }
        if (input_closed_ && !dead_) {
            // Closed for bad input: whatever else the peer sends (the rest of a 20 MB frame) is
            // not read. The writer sends the close frame; the watchdog ends it after close_timeout.
            co_return;
        }
    } catch (const std::system_error& e) {
        if (!dead_ && e.code() != asio::error::eof && e.code() != asio::error::operation_aborted &&
            e.code() != asio::error::connection_reset) {
            log(LogLevel::info, "bridge: " + peer_ + ": " + e.code().message());
        }
    }
    abort();
}

void WebSocketSession::handle_frames() {
    while (!dead_) {
        FrameParse p = parse_frame(inbuf_, options_.max_message_size, true);
        if (p.status == FrameParse::Status::incomplete) {
            return;
        }
        if (p.status == FrameParse::Status::error) {
            fail(p.close, p.error);
            return;
        }
        inbuf_.erase(0, p.consumed);
        WsEvent e = assembler_->on_frame(std::move(p.frame));
        switch (e.kind) {
            case WsEvent::Kind::none:
            case WsEvent::Kind::pong:
                break;
            case WsEvent::Kind::ping:
                if (!close_queued_) {
                    enqueue(
                        {std::make_shared<const std::string>(encode_frame(Opcode::pong, e.data)), {}, false, false});
                }
                break;
            case WsEvent::Kind::close:
                peer_closed_ = true;
                if (close_written_) {
                    abort();
                    return;
                }
                if (!close_queued_) {
                    close(e.code == close_code::no_status ? close_code::normal : e.code, {});
                }
                break;
            case WsEvent::Kind::error:
                fail(e.code, e.data);
                return;
            case WsEvent::Kind::message:
                if (!close_queued_) {
                    host_.on_message(*this, std::move(e.data), e.binary);
                }
                break;
        }
    }
}

void WebSocketSession::fail(std::uint16_t code, const std::string& why) {
    if (!input_closed_) {
        // One kind per close code (a handful): a flood of one kind does not hide another.
        meshy::detail::log_rate_limited(LogLevel::warn, "bridge: closing a client " + std::to_string(code),
                                        "bridge: " + peer_ + ": closing (" + std::to_string(code) + "): " + why);
    }
    // One line per connection: the read loop stops here, so the rest of the bad input is never parsed.
    input_closed_ = true;
    inbuf_.clear();
    close(code, why);
}

void WebSocketSession::disconnect(std::string_view kind, const std::string& why) {
    if (!dead_) {
        meshy::detail::log_rate_limited(LogLevel::warn, kind, "bridge: " + peer_ + ": disconnecting: " + why);
    }
    abort();
}

void WebSocketSession::wake_writer() {
    stream_->wake.cancel();
}

void WebSocketSession::send(std::string_view data, bool binary) {
    if (!is_open()) {
        return;
    }
    enqueue({std::make_shared<const std::string>(encode_frame(binary ? Opcode::binary : Opcode::text, data)),
             {},
             false,
             false});
}

void WebSocketSession::send_topic_frame(std::shared_ptr<const std::string> frame,
                                        const std::string& topic,
                                        std::size_t topic_cap) {
    if (!is_open()) {
        return;
    }
    enqueue({std::move(frame), topic, true, false}, topic_cap);
}

void WebSocketSession::close(std::uint16_t code, std::string_view reason) {
    if (dead_ || close_queued_) {
        return;
    }
    if (!ws_open_) {
        abort();
        return;
    }
    // Topic data still waiting is not worth delaying the close for.
    while (queue_.drop_oldest(nullptr)) {
    }
    enqueue({std::make_shared<const std::string>(encode_frame(Opcode::close, close_payload(code, reason))),
             {},
             false,
             true});
    close_queued_ = true;
    deadline_ = Clock::now() + close_timeout;
}

void WebSocketSession::abort(std::string_view why) {
    if (!why.empty() && !dead_) {
        meshy::detail::log_rate_limited(LogLevel::warn, "bridge: disconnecting",
                                        "bridge: " + peer_ + ": disconnecting: " + std::string(why));
    }
    dead_ = true;
    std::error_code ec;
    stream_->ssl.next_layer().close(ec);
    stream_->wake.cancel();
    stream_->ticker.cancel();
    if (ws_open_ && !closed_notified_) {
        closed_notified_ = true;
        host_.on_closed(*this);
    }
    queue_.clear();
}

void WebSocketSession::enqueue(SendQueue::Item item, std::size_t topic_cap) {
    if (dead_ || close_queued_) {
        return;
    }
    if (queue_.empty()) {
        last_progress_ = Clock::now();
    }
    queue_.push(std::move(item), topic_cap);
    if (queue_.bytes() > 2 * options_.send_queue_bytes + options_.max_message_size) {
        disconnect("bridge: send queue over its bound",
                   "send queue over " + std::to_string(queue_.bytes()) + " bytes (client too slow)");
        return;
    }
    wake_writer();
}

asio::awaitable<void> WebSocketSession::writer() {
    auto self = shared_from_this();
    while (!dead_) {
        if (queue_.empty()) {
            std::error_code ec;
            stream_->wake.expires_at(asio::steady_timer::time_point::max());
            co_await stream_->wake.async_wait(asio::redirect_error(asio::use_awaitable, ec));
            continue;
        }
        const std::shared_ptr<const std::string> data = queue_.front().data;
        const bool is_close = queue_.front().is_close;
        queue_.set_in_flight(true);
        try {
            co_await write_all(*data);
        } catch (const std::system_error&) {
            abort();
            co_return;
        }
        if (dead_) {
            co_return;
        }
        queue_.pop_front();
        last_progress_ = Clock::now();
        if (is_close) {
            close_written_ = true;
            if (peer_closed_) {
                abort();
                co_return;
            }
            if (input_closed_) {
                // Nothing more is read, so the peer's close frame would never be seen: send FIN and
                // let the watchdog drop the socket at the close deadline.
                std::error_code ec;
                stream_->ssl.next_layer().shutdown(asio::ip::tcp::socket::shutdown_send, ec);
            }
        }
    }
}

asio::awaitable<void> WebSocketSession::watchdog() {
    auto self = shared_from_this();
    while (!dead_) {
        std::error_code ec;
        stream_->ticker.expires_after(tick);
        co_await stream_->ticker.async_wait(asio::redirect_error(asio::use_awaitable, ec));
        if (dead_) {
            co_return;
        }
        const auto now = Clock::now();
        if (!ws_open_) {
            if (now > deadline_) {
                disconnect("bridge: handshake timeout",
                           "no complete HTTP request within " + std::to_string(handshake_timeout.count()) + " ms");
            }
            continue;
        }
        if (close_queued_) {
            if (now > deadline_) {
                abort();  // the peer did not answer the close in time
            }
            continue;
        }
        if (!queue_.empty() && now - last_progress_ > options_.stall_timeout) {
            disconnect("bridge: writes stalled", "writes stalled for " +
                                                     std::to_string(options_.stall_timeout.count()) + " ms with " +
                                                     std::to_string(queue_.bytes()) + " bytes queued");
            continue;
        }
        if (options_.idle_timeout.count() > 0 && now - last_receive_ > options_.idle_timeout) {
            fail(close_code::going_away, "idle timeout");
            continue;
        }
        if (options_.ping_interval.count() > 0 && now - last_ping_ >= options_.ping_interval) {
            last_ping_ = now;
            enqueue({std::make_shared<const std::string>(encode_frame(Opcode::ping, "meshy")), {}, false, false});
        }
    }
}

}  // namespace meshy::cli::bridge
