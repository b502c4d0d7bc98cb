// `meshy bridge`'s server: accepts WebSocket clients, speaks rosbridge v2 to them and relays between
// them and a meshy::Node on the same executor (topics, services, rosapi introspection), with the
// token, allowlists, rate limits and queue bounds of BridgeOptions.
#pragma once

#include <asio/any_io_executor.hpp>
#include <cstdint>
#include <map>
#include <memory>
#include <set>
#include <string>
#include <vector>

#include "bridge/allowlist.hpp"
#include "bridge/bridge_options.hpp"
#include "bridge/websocket_session.hpp"

namespace asio::ssl {
class context;
}

namespace meshy {
class Node;
struct RawMessage;
}  // namespace meshy

namespace meshy::cli::bridge {

struct Op;
class RestApi;
class FoxgloveServer;

/// The bridge. Build it and the node on one single-threaded executor; every member runs there.
class BridgeServer final : public SessionHost {
public:
    /// Binds the listening socket (and loads the TLS files when set).
    /// @throws std::system_error when it cannot bind; std::runtime_error for bad TLS files
    BridgeServer(asio::any_io_executor executor, Node& node, BridgeOptions options);
    ~BridgeServer() override;
    BridgeServer(const BridgeServer&) = delete;
    BridgeServer& operator=(const BridgeServer&) = delete;

    /// Starts accepting.
    void start();
    /// Stops accepting, closes every client (1001), withdraws the services clients provided.
    void stop();
    /// The bound port.
    std::uint16_t port() const noexcept { return port_; }
    /// "ws://address:port" (wss with TLS).
    std::string url() const;
    /// Open WebSocket clients.
    std::size_t client_count() const noexcept;

    // SessionHost
    HttpDecision on_request(WebSocketSession& session, const HttpRequest& request) override;
    void on_open(WebSocketSession& session, const HttpRequest& request) override;
    void on_message(WebSocketSession& session, std::string&& data, bool binary) override;
    void on_closed(WebSocketSession& session) override;

private:
    struct Client;
    struct Subscription;
    struct PendingCall;
    struct Acceptor;

    void accept_next();
    Client* find_client(std::uint64_t id);
    void dispatch(Client& client, Op&& op);
    void status(Client& client, const char* level, const std::string& msg, const std::string& id = {});
    void subscribe(Client& client, Op& op);
    void unsubscribe(Client& client, const Op& op);
    void drop_subscription(Client& client, const std::string& topic);
    void call_service(Client& client, Op&& op);
    bool rosapi(Client& client, const Op& op);
    void advertise_service(Client& client, const Op& op);
    void remove_provided_service(const std::string& service);
    void service_response(Client& client, Op&& op);
    void on_topic(const RawMessage& message);
    void deliver(Client& client,
                 Subscription& sub,
                 const std::string& topic,
                 const std::vector<std::shared_ptr<const std::string>>& frames);
    void flush_throttled(std::uint64_t client_id, const std::string& topic);
    bool origin_allowed(const HttpRequest& request) const;
    bool publish_allowed(const std::string& name) const;
    void listen_topic(const std::string& topic);   // the node's one listener, for both protocols
    void release_topic(const std::string& topic);  // ... stopped when neither needs it

    asio::any_io_executor executor_;
    Node& node_;
    BridgeOptions options_;
    Allowlist topics_;
    Allowlist publish_;
    Allowlist services_;
    std::unique_ptr<asio::ssl::context> tls_;
    std::unique_ptr<Acceptor> acceptor_;
    std::uint16_t port_ = 0;
    bool stopped_ = false;
    std::shared_ptr<bool> alive_ = std::make_shared<bool>(true);
    std::uint64_t next_session_id_ = 0;
    std::shared_ptr<std::size_t> connections_ = std::make_shared<std::size_t>(0);  ///< open sockets
    std::uint64_t next_call_id_ = 0;
    std::map<std::uint64_t, std::unique_ptr<Client>> clients_;
    std::map<std::string, std::set<std::uint64_t>> topic_listeners_;  ///< meshy topic -> clients
    std::map<std::string, std::uint64_t> provided_;                   ///< meshy service -> client
    std::map<std::string, std::string> topic_types_;                  ///< meshy topic -> type
    std::map<std::string, std::string> service_types_;                ///< meshy service -> type
    std::unique_ptr<RestApi> rest_;                                   ///< /api/... and /stream/...
    std::set<std::string> listening_;                                 ///< topics the node listens to for us
    std::unique_ptr<FoxgloveServer> foxglove_;                        ///< clients of foxglove.websocket.v1
};

}  // namespace meshy::cli::bridge
