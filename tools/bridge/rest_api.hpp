// The REST API and MJPEG streams of `meshy bridge`, on the WebSocket's port with its token and
// allowlists: GET /api/nodes|topics|services, POST /api/topics/{name} (publish), POST
// /api/services/{name} (call), GET /api/topics/{name}/latest, GET /api/openapi.json, GET
// /stream/{topic} (MJPEG), CORS preflight. docs/bridge-rest.md is the reference.
#pragma once

#include <asio/any_io_executor.hpp>
#include <asio/awaitable.hpp>
#include <chrono>
#include <functional>
#include <map>
#include <memory>
#include <string>

#include "bridge/allowlist.hpp"
#include "bridge/bridge_options.hpp"
#include "bridge/rest_latest_cache.hpp"
#include "bridge/websocket_session.hpp"

namespace meshy {
class Node;
struct RawMessage;
}  // namespace meshy

namespace meshy::cli::bridge {

class MjpegStreams;
struct RestRoute;

/// Serves the REST paths (see is_rest_path()). Lives on the bridge's executor.
class RestApi {
public:
    /// What the API needs from the bridge around it.
    struct Hooks {
        std::function<void(const std::string&)> listen;    ///< start listening to a topic (meshy name)
        std::function<void(const std::string&)> unlisten;  ///< stop, unless WebSocket clients want it
        /// Topics the bridge's WebSocket clients advertise (meshy name -> type).
        std::function<std::map<std::string, std::string>()> advertised;
        const std::map<std::string, std::string>* topic_types = nullptr;    ///< known from clients
        const std::map<std::string, std::string>* service_types = nullptr;  ///< known from clients
    };

    RestApi(asio::any_io_executor executor, Node& node, const BridgeOptions& options, Hooks hooks);
    ~RestApi();
    RestApi(const RestApi&) = delete;
    RestApi& operator=(const RestApi&) = delete;

    /// Answers a request whose path is_rest_path() (the origin was checked by the caller).
    HttpDecision on_request(WebSocketSession& session, const HttpRequest& request);
    /// A message of a topic the bridge listens to.
    void on_topic(const RawMessage& message);
    /// True while REST clients want `topic` (a latest cache entry or a stream).
    bool wants(const std::string& topic) const;
    /// Drops the streams and refuses new requests.
    void stop();

    /// Topics whose last message is kept at once, and their payload bytes in all.
    static constexpr std::size_t latest_topics = 64;
    static constexpr std::size_t latest_bytes = 16u * 1024 * 1024;

private:
    int auth_status(const HttpRequest& request) const;
    std::string cors_headers(const HttpRequest& request) const;
    std::string json_response(int status, const std::string& body, const HttpRequest& request) const;
    std::string error_response(int status, const std::string& message, const HttpRequest& request) const;
    bool topic_visible(const std::string& topic) const;
    std::string nodes_json() const;
    std::string topics_json() const;
    std::string services_json() const;
    HttpDecision latest(const RestRoute& route, const HttpRequest& request);
    asio::awaitable<void> wait_latest(WebSocketSession& session, HttpRequest request, std::string topic, double wait_s);
    std::string latest_body(const std::string& topic) const;
    asio::awaitable<void> publish(WebSocketSession& session, HttpRequest request, std::string topic);
    asio::awaitable<void> call(WebSocketSession& session, HttpRequest request, std::string service);
    asio::awaitable<bool> read_body(WebSocketSession& session, const HttpRequest& request, std::string& body);
    void note(const std::string& peer, const std::string& what);
    void want(const std::string& topic, bool wanted_before);
    void unwant(const std::string& topic);

    asio::any_io_executor executor_;
    Node& node_;
    const BridgeOptions& options_;
    Hooks hooks_;
    Allowlist topics_;
    Allowlist publish_;
    Allowlist services_;
    LatestCache latest_{latest_topics, latest_bytes};
    std::unique_ptr<MjpegStreams> streams_;
    struct Waiters;
    std::unique_ptr<Waiters> waiters_;
    bool stopped_ = false;
    std::shared_ptr<bool> alive_ = std::make_shared<bool>(true);
    std::chrono::steady_clock::time_point last_note_{};
    std::uint64_t unnoted_ = 0;
};

}  // namespace meshy::cli::bridge
