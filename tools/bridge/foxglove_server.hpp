// The Foxglove WebSocket protocol side of `meshy bridge`: the sessions that negotiated
// foxglove.websocket.v1 (or foxglove.sdk.v1) on the bridge's port are handed here by BridgeServer.
// Every topic of the mesh is a channel (encoding json, schemaEncoding jsonschema, with the schema of
// its well-known type or one inferred from its messages), every service a service; clients subscribe,
// publish (clientPublish), call services and read the connection graph, under the same token,
// allowlists and limits as rosbridge clients. Each client's topic data waits in one small queue per
// channel, served round-robin, so a large topic cannot starve a small one on a slow connection.
#pragma once

#include <asio/any_io_executor.hpp>
#include <cstdint>
#include <functional>
#include <map>
#include <memory>
#include <set>
#include <string>
#include <vector>

#include "bridge/allowlist.hpp"
#include "bridge/bridge_options.hpp"
#include "bridge/http_request.hpp"

namespace meshy {
class Node;
struct RawMessage;
}  // namespace meshy

namespace meshy::cli::bridge {

class WebSocketSession;
struct FoxgloveClientOp;

/// How the Foxglove side asks BridgeServer to listen to a topic (BridgeServer owns the node's
/// listeners: one per topic, shared with rosbridge clients) and to stop.
struct TopicTap {
    std::function<void(const std::string&)> listen;
    std::function<void(const std::string&)> release;
};

/// The Foxglove clients of one bridge. Runs on the bridge's executor.
class FoxgloveServer {
public:
    FoxgloveServer(asio::any_io_executor executor, Node& node, const BridgeOptions& options, TopicTap tap);
    ~FoxgloveServer();
    FoxgloveServer(const FoxgloveServer&) = delete;
    FoxgloveServer& operator=(const FoxgloveServer&) = delete;

    /// A session that negotiated a Foxglove subprotocol is open: checks its ?token=, sends serverInfo,
    /// the channels and services.
    void on_open(WebSocketSession& session, const HttpRequest& request);
    /// A message from one of its sessions.
    void on_message(WebSocketSession& session, std::string&& data, bool binary);
    /// @returns true when the session was a Foxglove client (now forgotten)
    bool on_closed(WebSocketSession& session);
    /// True when `session_id` is a Foxglove client.
    bool owns(std::uint64_t session_id) const { return clients_.count(session_id) != 0; }
    /// A message on a topic some Foxglove client subscribed to.
    void on_topic(const RawMessage& message);
    /// True while a Foxglove client is subscribed to the meshy topic.
    bool wants(const std::string& topic) const;
    /// Forgets every client (the bridge closes their sessions).
    void stop();
    /// Open Foxglove clients.
    std::size_t client_count() const noexcept { return clients_.size(); }

private:
    struct Client;
    struct Channel;

    void refresh();
    void schedule_refresh();
    Client* find_client(std::uint64_t id);
    void dispatch(Client& client, FoxgloveClientOp&& op);
    void status(Client& client, int level, const std::string& message);
    void advertise_channel(const Channel& channel, Client* only = nullptr);
    void subscribe(Client& client, std::uint32_t subscription_id, std::uint32_t channel_id);
    void unsubscribe(Client& client, std::uint32_t subscription_id);
    void client_publish(Client& client, FoxgloveClientOp& op);
    void call_service(Client& client, FoxgloveClientOp&& op);
    void send_graph(Client& client, bool full);
    void pump(Client& client);
    bool publish_allowed(const std::string& meshy_topic) const;

    asio::any_io_executor executor_;
    Node& node_;
    const BridgeOptions& options_;
    TopicTap tap_;
    Allowlist topics_;
    Allowlist publish_;
    Allowlist services_;
    std::shared_ptr<bool> alive_ = std::make_shared<bool>(true);
    std::map<std::uint64_t, std::unique_ptr<Client>> clients_;
    std::map<std::string, std::unique_ptr<Channel>> channels_;  ///< meshy topic -> channel
    std::map<std::uint32_t, Channel*> channel_by_id_;
    std::uint32_t next_channel_id_ = 0;
    std::map<std::string, std::uint32_t> services_by_name_;  ///< meshy service -> id
    std::map<std::uint32_t, std::string> service_by_id_;
    std::uint32_t next_service_id_ = 0;
    std::string graph_;  ///< the last connection graph sent (its JSON), to send only changes
    struct RefreshTimer;
    std::unique_ptr<RefreshTimer> refresh_timer_;
    bool stopped_ = false;
};

}  // namespace meshy::cli::bridge
