#include "bridge/mjpeg_stream.hpp"

#include <algorithm>
#include <asio/experimental/awaitable_operators.hpp>
#include <asio/redirect_error.hpp>
#include <asio/steady_timer.hpp>
#include <asio/use_awaitable.hpp>
#include <meshy/log.hpp>
#include <meshy/message.hpp>
#include <vector>

#include "bridge/mjpeg_frame.hpp"
#include "bridge/websocket_session.hpp"

namespace meshy::cli::bridge {

using Clock = std::chrono::steady_clock;

struct MjpegStreams::Client {
    explicit Client(asio::any_io_executor ex, WebSocketSession& s) : wake(ex), stall(ex), session(s) {}
    asio::steady_timer wake;   ///< waits for the next frame or the pacing deadline; cancelled by a new frame
    asio::steady_timer stall;  ///< bounds one write
    WebSocketSession& session;
};

struct MjpegStreams::Topic {
    std::shared_ptr<const std::string> part;  ///< the newest frame as a whole multipart part
    std::uint64_t seq = 0;                    ///< frames seen so far
    std::set<Client*> clients;
    std::uint64_t not_jpeg = 0;
    Clock::time_point last_warning{};
};

MjpegStreams::MjpegStreams(asio::any_io_executor executor, std::chrono::milliseconds stall_timeout, Hooks hooks)
    : executor_(std::move(executor)), stall_timeout_(stall_timeout), hooks_(std::move(hooks)) {
}

MjpegStreams::~MjpegStreams() {
    *alive_ = false;
}

bool MjpegStreams::streams(const std::string& topic) const {
    return topics_.count(topic) != 0;
}

std::size_t MjpegStreams::client_count() const noexcept {
    std::size_t n = 0;
    for (const auto& [name, t] : topics_) {
        n += t.clients.size();
    }
    return n;
}

void MjpegStreams::on_message(const RawMessage& m) {
    const auto it = topics_.find(std::string(m.topic));
    if (it == topics_.end()) {
        return;
    }
    Topic& t = it->second;
    const auto jpeg = jpeg_from_payload(m.codec, m.payload);
    if (!jpeg) {
        ++t.not_jpeg;
        const auto now = Clock::now();
        if (now - t.last_warning > std::chrono::seconds(10)) {
            t.last_warning = now;
            log(LogLevel::warn, "bridge: stream '" + it->first + "': " + std::to_string(t.not_jpeg) +
                                    " message(s) without a JPEG (raw bytes, a msgpack bin, or {data, format: jpeg})");
        }
        return;
    }
    // One copy per frame, shared by every client; the previous one lives on only while a client
    // is still writing it.
    std::string part = mjpeg_part_head(jpeg->size());
    part.reserve(part.size() + jpeg->size() + 2);
    part += *jpeg;
    part += "\r\n";
    t.part = std::make_shared<const std::string>(std::move(part));
    ++t.seq;
    for (Client* c : t.clients) {
        c->wake.cancel();
    }
}

asio::awaitable<void> MjpegStreams::serve(WebSocketSession& session,
                                          std::string topic,
                                          double max_fps,
                                          std::string extra_headers) {
    using namespace asio::experimental::awaitable_operators;
    if (stopped_) {
        co_return;
    }
    auto [it, first] = topics_.try_emplace(topic);
    Topic& t = it->second;
    Client client(executor_, session);
    t.clients.insert(&client);
    if (first && hooks_.listen) {
        hooks_.listen(topic);
    }
    // Leaves the topic however the stream ends (the client went, a write failed, the bridge stops).
    struct Leave {
        MjpegStreams* self;
        std::shared_ptr<bool> alive;
        std::string topic;
        Client* client;
        ~Leave() {
            if (!*alive) {
                return;
            }
            const auto it = self->topics_.find(topic);
            if (it == self->topics_.end()) {
                return;
            }
            it->second.clients.erase(client);
            if (it->second.clients.empty()) {
                self->topics_.erase(it);
                if (self->hooks_.unlisten && !self->stopped_) {
                    self->hooks_.unlisten(topic);
                }
            }
        }
    } leave{this, alive_, topic, &client};

    const double fps = std::clamp(max_fps, min_fps, max_fps_limit);
    const auto period = std::chrono::duration_cast<Clock::duration>(std::chrono::duration<double>(1.0 / fps));
    co_await session.write_all(mjpeg_response_head(extra_headers));
    std::uint64_t seen = 0;
    Clock::time_point last_sent{};
    const auto alive = alive_;
    while (*alive && !stopped_ && !session.is_dead()) {
        const auto now = Clock::now();
        const bool fresh = t.seq != seen && t.part;
        if (!fresh || now < last_sent + period) {
            // Wait for a frame, or for the pacing deadline (a new frame wakes early; then this loops).
            client.wake.expires_at(fresh ? last_sent + period : Clock::time_point::max());
            std::error_code ec;
            co_await client.wake.async_wait(asio::redirect_error(asio::use_awaitable, ec));
            continue;
        }
        const std::shared_ptr<const std::string> part = t.part;
        seen = t.seq;
        last_sent = now;
        client.stall.expires_after(stall_timeout_);
        auto done = co_await (session.write_all(*part) || client.stall.async_wait(asio::use_awaitable));
        if (done.index() == 1) {
            session.abort("stream '" + topic + "': a frame's write stalled for " +
                          std::to_string(stall_timeout_.count()) + " ms");
            co_return;
        }
    }
}

void MjpegStreams::stop() {
    stopped_ = true;
    std::vector<WebSocketSession*> sessions;
    for (auto& [name, t] : topics_) {
        for (Client* c : t.clients) {
            sessions.push_back(&c->session);
            c->wake.cancel();
        }
    }
    for (WebSocketSession* s : sessions) {
        s->abort();
    }
}

}  // namespace meshy::cli::bridge
