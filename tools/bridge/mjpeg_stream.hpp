// MJPEG streams of `meshy bridge` (GET /stream/{topic}): every client of a topic gets the newest
// frame when it is ready for one, at most `max_fps` a second. A frame is kept once per topic (shared
// by the clients); a slow client skips frames instead of queueing them, and one whose writes stall
// is dropped.
#pragma once

#include <asio/any_io_executor.hpp>
#include <asio/awaitable.hpp>
#include <chrono>
#include <cstdint>
#include <functional>
#include <map>
#include <memory>
#include <set>
#include <string>

namespace meshy {
struct RawMessage;
}

namespace meshy::cli::bridge {

class WebSocketSession;

/// The streams of every topic. Lives on the bridge's executor.
class MjpegStreams {
public:
    /// What the streams need from the bridge: to start and stop listening to a topic.
    struct Hooks {
        std::function<void(const std::string&)> listen;    ///< the first client of a topic came
        std::function<void(const std::string&)> unlisten;  ///< the last client of a topic left
    };

    /// @param stall_timeout how long one frame's write may take before the client is dropped
    MjpegStreams(asio::any_io_executor executor, std::chrono::milliseconds stall_timeout, Hooks hooks);
    ~MjpegStreams();
    MjpegStreams(const MjpegStreams&) = delete;
    MjpegStreams& operator=(const MjpegStreams&) = delete;

    /// Streams `topic` (a meshy name) to `session` until it goes or stop(). Writes the response head
    /// first, with `extra_headers` (complete lines).
    asio::awaitable<void> serve(WebSocketSession& session,
                                std::string topic,
                                double max_fps,
                                std::string extra_headers);
    /// A message of some topic: the newest frame of that topic when it carries a JPEG.
    void on_message(const RawMessage& message);
    /// True while some client streams `topic`.
    bool streams(const std::string& topic) const;
    /// Clients connected in all.
    std::size_t client_count() const noexcept;
    /// Drops every client.
    void stop();

    /// The frame rate clamp of ?max_fps=.
    static constexpr double min_fps = 0.1;
    static constexpr double max_fps_limit = 60.0;
    static constexpr double default_fps = 30.0;

private:
    struct Client;
    struct Topic;

    asio::any_io_executor executor_;
    std::chrono::milliseconds stall_timeout_;
    Hooks hooks_;
    std::map<std::string, Topic> topics_;
    bool stopped_ = false;
    std::shared_ptr<bool> alive_ = std::make_shared<bool>(true);
};

}  // namespace meshy::cli::bridge
