#include "bridge/foxglove_server.hpp"

#include <openssl/crypto.h>

#include <asio/co_spawn.hpp>
#include <asio/detached.hpp>
#include <asio/steady_timer.hpp>
#include <chrono>
#include <deque>
#include <meshy/log.hpp>
#include <meshy/node.hpp>
#include <nlohmann/json.hpp>
#include <optional>
#include <type_traits>

#include "bridge/foxglove_fair_queue.hpp"
#include "bridge/foxglove_protocol.hpp"
#include "bridge/foxglove_schema.hpp"
#include "bridge/foxglove_typed.hpp"
#include "bridge/message_mapping.hpp"
#include "bridge/rosbridge_op.hpp"
#include "bridge/token_bucket.hpp"
#include "bridge/websocket_frame.hpp"
#include "bridge/websocket_session.hpp"

namespace meshy::cli::bridge {

using json = nlohmann::json;
using ordered_json = nlohmann::ordered_json;
using Clock = std::chrono::steady_clock;

namespace {

constexpr int status_warning = 1;
constexpr int status_error = 2;
/// Frames one channel may have waiting for one client before its oldest is dropped.
constexpr std::size_t channel_queue_frames = 16;

std::string dump(const ordered_json& j) {
    return j.dump(-1, ' ', false, json::error_handler_t::replace);
}

std::uint64_t realtime_ns() {
    return static_cast<std::uint64_t>(
        std::chrono::duration_cast<std::chrono::nanoseconds>(std::chrono::system_clock::now().time_since_epoch())
            .count());
}

/// A topic's type as its publisher advertises it.
struct Advertised {
    std::string type;    ///< type name, "" when untyped
    std::string schema;  ///< JSON Schema text, "" when not known
};

/// (topic, type) of each publication a NodeInfo lists, once nodes advertise them (issue 20's
/// `publications`): the members are looked for at compile time, so this builds before and after.
template <class Info, class Add>
void for_each_publication(const Info& n, Add&& add) {
    if constexpr (requires { n.publications; }) {
        for (const auto& p : n.publications) {
            Advertised a;
            if constexpr (requires { p.type; }) {
                a.type = std::string(p.type);
            }
            if constexpr (requires {
                              p.schema;
                              p.schema_encoding;
                          }) {
                if (p.schema_encoding == "jsonschema") {
                    a.schema = std::string(p.schema);
                }
            }
            if constexpr (requires { p.topic; }) {
                add(std::string(p.topic), std::move(a));
            } else if constexpr (requires { p.name; }) {
                add(std::string(p.name), std::move(a));
            }
        }
    }
}

/// A service as advertiseServices lists it: JSON in and out, with no schema (meshy services have none).
ordered_json service_definition(std::uint32_t id, const std::string& name) {
    const ordered_json def = {
        {"encoding", "json"}, {"schemaName", ""}, {"schemaEncoding", "jsonschema"}, {"schema", ""}};
    return {{"id", id}, {"name", rosbridge_name(name)}, {"type", ""}, {"request", def}, {"response", def}};
}

}  // namespace

struct FoxgloveServer::RefreshTimer {
    explicit RefreshTimer(asio::any_io_executor ex) : timer(ex) {}
    asio::steady_timer timer;
};

struct FoxgloveServer::Channel {
    std::uint32_t id = 0;
    std::string topic;  ///< meshy name
    std::string schema_name;
    std::string schema;        ///< JSON Schema text
    ordered_json inferred;     ///< the inferred schema so far (null when typed)
    ordered_json type_schema;  ///< the advertised type's schema, parsed: messages are read with it
    bool typed = false;        ///< a well-known or advertised type: the schema is fixed
    bool json_ok = true;       ///< false once a message had no JSON form
    bool in_mesh = true;       ///< still a topic of the mesh (else only while clients publish on it)
    std::set<std::uint64_t> subscribers;
};

struct FoxgloveServer::Client {
    Client(std::shared_ptr<WebSocketSession> s, asio::any_io_executor ex, const BridgeOptions& o)
        : session(std::move(s)),
          pending(channel_queue_frames),
          pump_timer(ex),
          msgs(o.rate_limit_msgs, 0),
          bytes(o.rate_limit_bytes, 0) {}
    std::shared_ptr<WebSocketSession> session;
    std::map<std::uint32_t, std::uint32_t> subs;            ///< subscription id -> channel id
    std::map<std::uint32_t, std::uint32_t> sub_of_channel;  ///< channel id -> subscription id
    std::map<std::uint32_t, FoxgloveClientChannel> advertised;
    std::map<std::uint32_t, ordered_json> advertised_schema;
    bool graph = false;
    FairQueue pending;  ///< topic data not yet handed to the session
    asio::steady_timer pump_timer;
    bool pump_armed = false;
    std::uint64_t dropped_reported = 0;
    Clock::time_point last_drop_warning{};
    std::size_t pending_calls = 0;
    TokenBucket msgs;
    TokenBucket bytes;
    Clock::time_point last_rate_warning{};
    Clock::time_point last_error_log{};
};

FoxgloveServer::FoxgloveServer(asio::any_io_executor executor, Node& node, const BridgeOptions& options, TopicTap tap)
    : executor_(std::move(executor)),
      node_(node),
      options_(options),
      tap_(std::move(tap)),
      topics_(options_.topics_glob),
      publish_(options_.publish_glob.empty() ? options_.topics_glob : options_.publish_glob),
      services_(options_.services_glob),
      refresh_timer_(std::make_unique<RefreshTimer>(executor_)) {
}

FoxgloveServer::~FoxgloveServer() {
    *alive_ = false;
}

void FoxgloveServer::stop() {
    stopped_ = true;
    refresh_timer_->timer.cancel();
    auto clients = std::move(clients_);
    clients_.clear();
    for (auto& [id, c] : clients) {
        c->pump_timer.cancel();
        c->session->close(close_code::going_away, "bridge shutting down");
    }
    for (auto& [id, c] : clients) {
        c->session->abort();
    }
    for (auto& [topic, ch] : channels_) {
        ch->subscribers.clear();
    }
}

FoxgloveServer::Client* FoxgloveServer::find_client(std::uint64_t id) {
    const auto it = clients_.find(id);
    return it == clients_.end() ? nullptr : it->second.get();
}

bool FoxgloveServer::publish_allowed(const std::string& meshy_topic) const {
    return publish_.allows(meshy_topic);
}

bool FoxgloveServer::wants(const std::string& topic) const {
    const auto it = channels_.find(topic);
    return it != channels_.end() && !it->second->subscribers.empty();
}

void FoxgloveServer::status(Client& client, int level, const std::string& message) {
    client.session->send(dump({{"op", "status"}, {"level", level}, {"message", message}}));
}

void FoxgloveServer::on_open(WebSocketSession& session, const HttpRequest& request) {
    if (!options_.token.empty()) {
        // Foxglove has no auth message: the token comes in the URL (ws://host:port/?token=...).
        const auto token = request.query_param("token");
        if (!token || token->size() != options_.token.size() ||
            CRYPTO_memcmp(token->data(), options_.token.data(), token->size()) != 0) {
            log(LogLevel::warn, "bridge: " + session.peer() + ": Foxglove client without the right ?token=");
            session.close(close_code::unauthorized, "unauthorized");
            return;
        }
    }
    auto client = std::make_unique<Client>(session.shared_from_this(), executor_, options_);
    Client& c = *client;
    clients_[session.id()] = std::move(client);
    log(LogLevel::info, "bridge: Foxglove client " + session.peer() + " connected");
    ordered_json info = {{"op", "serverInfo"},
                         {"name", "meshy bridge (" + node_.name() + ")"},
                         {"capabilities", {"clientPublish", "services", "connectionGraph"}},
                         {"supportedEncodings", {"json"}},
                         {"metadata", ordered_json::object()},
                         {"sessionId", std::to_string(realtime_ns())}};
    c.session->send(dump(info));
    // What is known already, then refresh() tells every client (this one too) what is new.
    for (const auto& [topic, ch] : channels_) {
        advertise_channel(*ch, &c);
    }
    if (!services_by_name_.empty()) {
        ordered_json services = ordered_json::array();
        for (const auto& [name, id] : services_by_name_) {
            services.push_back(service_definition(id, name));
        }
        c.session->send(dump({{"op", "advertiseServices"}, {"services", std::move(services)}}));
    }
    refresh();
    schedule_refresh();
}

bool FoxgloveServer::on_closed(WebSocketSession& session) {
    const auto it = clients_.find(session.id());
    if (it == clients_.end()) {
        return false;
    }
    std::unique_ptr<Client> client = std::move(it->second);
    clients_.erase(it);
    client->pump_timer.cancel();
    log(LogLevel::info, "bridge: Foxglove client " + session.peer() + " disconnected");
    for (const auto& [sub, channel_id] : client->subs) {
        const auto ch = channel_by_id_.find(channel_id);
        if (ch != channel_by_id_.end()) {
            ch->second->subscribers.erase(session.id());
            if (ch->second->subscribers.empty() && !stopped_) {
                tap_.release(ch->second->topic);
            }
        }
    }
    return true;
}

void FoxgloveServer::schedule_refresh() {
    if (stopped_) {
        return;
    }
    refresh_timer_->timer.expires_after(std::chrono::seconds(1));
    refresh_timer_->timer.async_wait([this, alive = alive_](std::error_code ec) {
        if (ec || !*alive || stopped_ || clients_.empty()) {
            return;
        }
        refresh();
        schedule_refresh();
    });
}

void FoxgloveServer::advertise_channel(const Channel& ch, Client* only) {
    ordered_json channel = {{"id", ch.id},         {"topic", rosbridge_name(ch.topic)},
                            {"encoding", "json"},  {"schemaName", ch.schema_name},
                            {"schema", ch.schema}, {"schemaEncoding", "jsonschema"}};
    const std::string text = dump({{"op", "advertise"}, {"channels", ordered_json::array({channel})}});
    if (only) {
        only->session->send(text);
        return;
    }
    for (auto& [id, c] : clients_) {
        c->session->send(text);
    }
}

void FoxgloveServer::refresh() {
    // Topics: what nodes listen to, what they publish (once adverts carry it), what clients publish.
    std::map<std::string, Advertised> topics;  // meshy topic -> its type, when advertised
    std::map<std::string, std::set<std::string>> subscribers, publishers, providers;
    for (const auto& n : node_.nodes()) {
        for (const auto& t : n.topics) {
            topics.try_emplace(t);
            subscribers[t].insert(n.id);
        }
        for_each_publication(n, [&](const std::string& topic, Advertised type) {
            auto& have = topics[topic];
            if (have.type.empty() || (have.schema.empty() && !type.schema.empty())) {
                have = std::move(type);
            }
            publishers[topic].insert(n.id);
        });
        for (const auto& s : n.services) {
            providers[s].insert(n.id);
        }
    }
    for (const auto& [id, c] : clients_) {
        for (const auto& [cid, ch] : c->advertised) {
            topics.try_emplace(meshy_name(ch.topic));
            publishers[meshy_name(ch.topic)].insert(node_.id());
        }
    }
    // New channels.
    for (const auto& [topic, advertised] : topics) {
        if (!topics_.allows(topic) && !publish_allowed(topic)) {
            continue;
        }
        // A well-known type's schema, else the one its publisher advertised with its type name.
        std::optional<KnownType> known;
        if (const KnownType* k = advertised.type.empty() ? nullptr : find_known_type(advertised.type)) {
            known = *k;
        } else if (!advertised.type.empty() && !advertised.schema.empty()) {
            known = KnownType{advertised.type, advertised.schema};
        }
        auto& slot = channels_[topic];
        if (slot) {
            slot->in_mesh = true;
            if (known && !slot->typed) {
                slot->typed = true;
                slot->schema_name = known->name;
                slot->schema = known->schema;
                slot->type_schema = ordered_json::parse(known->schema, nullptr, false);
                advertise_channel(*slot);
            }
            continue;
        }
        slot = std::make_unique<Channel>();
        slot->id = ++next_channel_id_;
        slot->topic = topic;
        if (known) {
            slot->typed = true;
            slot->schema_name = known->name;
            slot->schema = known->schema;
            slot->type_schema = ordered_json::parse(known->schema, nullptr, false);
        } else {
            // Until a message shows more: any object (`inferred` stays null until then, so the first
            // message can still be recognised as a well-known type).
            slot->schema_name = advertised.type.empty() ? inferred_schema_name(topic) : advertised.type;
            slot->schema = R"({"$comment":"inferred","type":"object"})";
        }
        channel_by_id_[slot->id] = slot.get();
        advertise_channel(*slot);
    }
    // Channels whose topic left the mesh (and nobody here subscribes to).
    std::vector<std::uint32_t> gone;
    for (auto it = channels_.begin(); it != channels_.end();) {
        if (!topics.count(it->first) && it->second->subscribers.empty()) {
            gone.push_back(it->second->id);
            channel_by_id_.erase(it->second->id);
            it = channels_.erase(it);
        } else {
            ++it;
        }
    }
    if (!gone.empty()) {
        const std::string text = dump({{"op", "unadvertise"}, {"channelIds", gone}});
        for (auto& [id, c] : clients_) {
            for (const auto cid : gone) {
                const auto s = c->sub_of_channel.find(cid);
                if (s != c->sub_of_channel.end()) {
                    c->subs.erase(s->second);
                    c->sub_of_channel.erase(s);
                }
                c->pending.erase(cid);
            }
            c->session->send(text);
        }
    }
    // Services.
    ordered_json added = ordered_json::array();
    std::vector<std::uint32_t> removed;
    for (const auto& [name, ids] : providers) {
        if (!services_.allows(name) || services_by_name_.count(name)) {
            continue;
        }
        const std::uint32_t id = ++next_service_id_;
        services_by_name_[name] = id;
        service_by_id_[id] = name;
        added.push_back(service_definition(id, name));
    }
    for (auto it = services_by_name_.begin(); it != services_by_name_.end();) {
        if (!providers.count(it->first)) {
            removed.push_back(it->second);
            service_by_id_.erase(it->second);
            it = services_by_name_.erase(it);
        } else {
            ++it;
        }
    }
    for (auto& [id, c] : clients_) {
        if (!added.empty()) {
            c->session->send(dump({{"op", "advertiseServices"}, {"services", added}}));
        }
        if (!removed.empty()) {
            c->session->send(dump({{"op", "unadvertiseServices"}, {"serviceIds", removed}}));
        }
    }
    // Connection graph: sent whole when it changed (removed names against the last one).
    const auto entries = [this](const std::map<std::string, std::set<std::string>>& m, const char* ids_key,
                                bool service) {
        ordered_json out = ordered_json::array();
        for (const auto& [name, ids] : m) {
            if (service ? !services_.allows(name) : (!topics_.allows(name) && !publish_allowed(name))) {
                continue;
            }
            out.push_back(
                {{"name", rosbridge_name(name)}, {ids_key, std::vector<std::string>(ids.begin(), ids.end())}});
        }
        return out;
    };
    ordered_json graph = {{"publishedTopics", entries(publishers, "publisherIds", false)},
                          {"subscribedTopics", entries(subscribers, "subscriberIds", false)},
                          {"advertisedServices", entries(providers, "providerIds", true)}};
    std::string text = dump(graph);
    if (text != graph_) {
        ordered_json removed_topics = ordered_json::array();
        ordered_json removed_services = ordered_json::array();
        if (!graph_.empty()) {
            const ordered_json old = ordered_json::parse(graph_);
            std::set<std::string> now_topics, now_services;
            for (const char* k : {"publishedTopics", "subscribedTopics"}) {
                for (const auto& e : graph[k]) {
                    now_topics.insert(e["name"].get<std::string>());
                }
            }
            for (const auto& e : graph["advertisedServices"]) {
                now_services.insert(e["name"].get<std::string>());
            }
            std::set<std::string> old_topics;
            for (const char* k : {"publishedTopics", "subscribedTopics"}) {
                for (const auto& e : old[k]) {
                    old_topics.insert(e["name"].get<std::string>());
                }
            }
            for (const auto& t : old_topics) {
                if (!now_topics.count(t)) {
                    removed_topics.push_back(t);
                }
            }
            for (const auto& e : old["advertisedServices"]) {
                if (!now_services.count(e["name"].get<std::string>())) {
                    removed_services.push_back(e["name"]);
                }
            }
        }
        graph_ = std::move(text);
        for (auto& [id, c] : clients_) {
            if (c->graph) {
                ordered_json update = {{"op", "connectionGraphUpdate"}};
                for (const auto& [k, v] : graph.items()) {
                    update[k] = v;
                }
                update["removedTopics"] = removed_topics;
                update["removedServices"] = removed_services;
                c->session->send(dump(update));
            }
        }
    }
}

void FoxgloveServer::send_graph(Client& c, bool full) {
    if (!full || graph_.empty()) {
        return;
    }
    ordered_json update = {{"op", "connectionGraphUpdate"}};
    const ordered_json graph = ordered_json::parse(graph_);
    for (const auto& [k, v] : graph.items()) {
        update[k] = v;
    }
    update["removedTopics"] = ordered_json::array();
    update["removedServices"] = ordered_json::array();
    c.session->send(dump(update));
}

void FoxgloveServer::on_message(WebSocketSession& session, std::string&& data, bool binary) {
    Client* client = find_client(session.id());
    if (!client) {
        return;
    }
    Client& c = *client;
    const auto now = Clock::now();
    if (!c.msgs.take(1, now) || !c.bytes.take(static_cast<double>(data.size()), now)) {
        if (now - c.last_rate_warning > std::chrono::seconds(1)) {
            c.last_rate_warning = now;
            log(LogLevel::warn, "bridge: Foxglove client " + session.peer() + ": rate limit exceeded, message dropped");
            status(c, status_warning, "rate limit exceeded: message dropped");
        }
        return;
    }
    FoxgloveParse parsed = parse_foxglove_message(data, binary);
    if (!parsed.op) {
        // A message that breaks the protocol ends this connection only, with one log line.
        log(LogLevel::warn, "bridge: Foxglove client " + session.peer() + ": " + parsed.error);
        status(c, status_error, parsed.error);
        session.close(close_code::protocol_error, parsed.error.substr(0, 100));
        return;
    }
    try {
        dispatch(c, std::move(*parsed.op));
    } catch (const std::exception& e) {
        status(c, status_error, e.what());
    }
}

void FoxgloveServer::dispatch(Client& c, FoxgloveClientOp&& op) {
    switch (op.kind) {
        case FoxgloveOpKind::subscribe:
            for (const auto& [sub, channel] : op.subscriptions) {
                subscribe(c, sub, channel);
            }
            return;
        case FoxgloveOpKind::unsubscribe:
            for (const auto id : op.ids) {
                unsubscribe(c, id);
            }
            return;
        case FoxgloveOpKind::advertise:
            for (auto& ch : op.channels) {
                if (!publish_allowed(meshy_name(ch.topic))) {
                    status(c, status_error,
                           "not allowed: publishing to '" + ch.topic + "' (--publish-glob/--topics-glob)");
                    continue;
                }
                if (ch.encoding != "json") {
                    status(c, status_error,
                           "channel '" + ch.topic + "': encoding '" + ch.encoding + "' not supported (json only)");
                    continue;
                }
                ordered_json schema = ordered_json::object();
                if (!ch.schema.empty() && (ch.schema_encoding.empty() || ch.schema_encoding == "jsonschema")) {
                    schema = ordered_json::parse(ch.schema, nullptr, false);
                    if (schema.is_discarded()) {
                        schema = ordered_json::object();
                    }
                }
                c.advertised_schema[ch.id] = std::move(schema);
                c.advertised[ch.id] = std::move(ch);
            }
            return;
        case FoxgloveOpKind::unadvertise:
            for (const auto id : op.ids) {
                c.advertised.erase(id);
                c.advertised_schema.erase(id);
            }
            return;
        case FoxgloveOpKind::message_data:
            client_publish(c, op);
            return;
        case FoxgloveOpKind::service_call:
            call_service(c, std::move(op));
            return;
        case FoxgloveOpKind::subscribe_connection_graph:
            c.graph = true;
            refresh();
            send_graph(c, true);
            return;
        case FoxgloveOpKind::unsubscribe_connection_graph:
            c.graph = false;
            return;
        case FoxgloveOpKind::unsupported:
            status(c, status_warning, "'" + op.op + "' is not supported by meshy bridge");
            return;
    }
}

void FoxgloveServer::subscribe(Client& c, std::uint32_t subscription_id, std::uint32_t channel_id) {
    const auto ch = channel_by_id_.find(channel_id);
    if (ch == channel_by_id_.end()) {
        status(c, status_error, "subscribe: unknown channel " + std::to_string(channel_id));
        return;
    }
    Channel& channel = *ch->second;
    if (!topics_.allows(channel.topic)) {
        status(c, status_error, "not allowed: subscribing to '" + rosbridge_name(channel.topic) + "' (--topics-glob)");
        return;
    }
    if (c.subs.count(subscription_id)) {
        status(c, status_error, "subscribe: subscription id " + std::to_string(subscription_id) + " is in use");
        return;
    }
    if (c.sub_of_channel.count(channel_id)) {
        status(c, status_warning, "subscribe: already subscribed to channel " + std::to_string(channel_id));
        return;
    }
    c.subs[subscription_id] = channel_id;
    c.sub_of_channel[channel_id] = subscription_id;
    const bool first = channel.subscribers.empty();
    channel.subscribers.insert(c.session->id());
    if (first) {
        tap_.listen(channel.topic);
    }
}

void FoxgloveServer::unsubscribe(Client& c, std::uint32_t subscription_id) {
    const auto it = c.subs.find(subscription_id);
    if (it == c.subs.end()) {
        status(c, status_warning, "unsubscribe: unknown subscription " + std::to_string(subscription_id));
        return;
    }
    const std::uint32_t channel_id = it->second;
    c.subs.erase(it);
    c.sub_of_channel.erase(channel_id);
    c.pending.erase(channel_id);
    const auto ch = channel_by_id_.find(channel_id);
    if (ch != channel_by_id_.end()) {
        ch->second->subscribers.erase(c.session->id());
        if (ch->second->subscribers.empty()) {
            tap_.release(ch->second->topic);
        }
    }
}

void FoxgloveServer::on_topic(const RawMessage& m) {
    const auto it = channels_.find(std::string(m.topic));
    if (it == channels_.end() || it->second->subscribers.empty()) {
        return;
    }
    Channel& ch = *it->second;
    // A typed channel's messages are read with its schema: a type packed by position (MSGPACK_DEFINE)
    // gets its field names. One that does not read so goes as the bridge's generic JSON.
    ordered_json value;
    if (ch.type_schema.is_object()) {
        if (auto typed = typed_message(m.codec, m.payload, ch.type_schema); typed && typed->is_object()) {
            value = std::move(*typed);
        }
    }
    if (value.is_null()) {
        value = payload_to_ordered_json(m.codec, m.payload);
    }
    if (!ch.typed && ch.json_ok) {
        // Learn the channel's schema from what it carries; clients hear of each change.
        bool changed = false;
        if (const KnownType* known = ch.inferred.is_null() ? match_known_type(value) : nullptr) {
            ch.typed = true;
            ch.schema_name = known->name;
            ch.schema = known->schema;
            changed = true;
        } else if (auto schema = infer_schema(m.codec, m.payload)) {
            ordered_json merged = ch.inferred.is_null() ? std::move(*schema) : merge_schemas(ch.inferred, *schema);
            if (merged != ch.inferred) {
                ch.inferred = std::move(merged);
                ch.schema = dump(ch.inferred);
                changed = true;
            }
        } else {
            ch.json_ok = false;
            log(LogLevel::warn, "bridge: topic '" + ch.topic +
                                    "' carries messages without an exact JSON form (e.g. maps with keys that are "
                                    "not strings); Foxglove sees them as meshy's bridge JSON");
        }
        if (changed) {
            advertise_channel(ch);
        }
    }
    const std::string text = dump(value);
    const std::uint64_t now = realtime_ns();
    for (const auto id : ch.subscribers) {
        Client* c = find_client(id);
        if (!c) {
            continue;
        }
        const auto sub = c->sub_of_channel.find(ch.id);
        if (sub == c->sub_of_channel.end()) {
            continue;
        }
        auto frame = std::make_shared<const std::string>(
            encode_frame(Opcode::binary, foxglove_message_data(sub->second, now, text)));
        c->pending.push(ch.id, std::move(frame));
        pump(*c);
    }
}

void FoxgloveServer::pump(Client& c) {
    // The session's queue holds at most about this much topic data; the rest waits per channel,
    // and channels take turns, one frame each.
    const std::size_t budget = std::max<std::size_t>(options_.send_queue_bytes / 4, 64 * 1024);
    while (c.session->queued_bytes() < budget && !c.pending.empty()) {
        c.session->send_topic_frame(c.pending.pop(), "foxglove", 0);
    }
    const std::uint64_t dropped = c.pending.dropped() + c.session->dropped();
    const auto now = Clock::now();
    if (dropped > c.dropped_reported && now - c.last_drop_warning > std::chrono::seconds(1)) {
        const std::uint64_t n = dropped - c.dropped_reported;
        c.dropped_reported = dropped;
        c.last_drop_warning = now;
        log(LogLevel::warn,
            "bridge: Foxglove client " + c.session->peer() + " is slow: " + std::to_string(n) + " message(s) dropped");
        status(c, status_warning, std::to_string(n) + " message(s) dropped: the connection is too slow");
    }
    if (!c.pending.empty() && !c.pump_armed) {
        c.pump_armed = true;
        c.pump_timer.expires_after(std::chrono::milliseconds(5));
        c.pump_timer.async_wait([this, alive = alive_, id = c.session->id()](std::error_code ec) {
            if (ec || !*alive) {
                return;
            }
            if (Client* cl = find_client(id)) {
                cl->pump_armed = false;
                if (cl->session->is_open()) {
                    pump(*cl);
                }
            }
        });
    }
}

void FoxgloveServer::client_publish(Client& c, FoxgloveClientOp& op) {
    const auto it = c.advertised.find(op.channel_id);
    if (it == c.advertised.end()) {
        status(c, status_error, "message data for channel " + std::to_string(op.channel_id) + " not advertised");
        return;
    }
    const ordered_json value = ordered_json::parse(op.data, nullptr, false);
    if (value.is_discarded()) {
        status(c, status_error, "message data on '" + it->second.topic + "' is not JSON");
        return;
    }
    Buffer payload;
    try {
        payload = json_to_payload(value, c.advertised_schema[op.channel_id]);
    } catch (const MappingError& e) {
        status(c, status_error, "message on '" + it->second.topic + "': " + e.what());
        return;
    }
    node_.send_raw(meshy_name(it->second.topic), CodecId::msgpack, payload.bytes());
}

void FoxgloveServer::call_service(Client& c, FoxgloveClientOp&& op) {
    const auto fail = [&](const std::string& message) {
        c.session->send(dump({{"op", "serviceCallFailure"},
                              {"serviceId", op.service_id},
                              {"callId", op.call_id},
                              {"message", message}}));
    };
    const auto it = service_by_id_.find(op.service_id);
    if (it == service_by_id_.end()) {
        fail("unknown service id " + std::to_string(op.service_id));
        return;
    }
    const std::string service = it->second;
    if (!services_.allows(service)) {
        fail("not allowed: calling '" + rosbridge_name(service) + "' (--services-glob)");
        return;
    }
    if (op.encoding != "json") {
        fail("encoding '" + op.encoding + "' not supported (json only)");
        return;
    }
    if (c.pending_calls >= options_.max_pending_calls) {
        fail("too many calls in flight (" + std::to_string(options_.max_pending_calls) + ")");
        return;
    }
    const ordered_json value = op.data.empty() ? ordered_json::object() : ordered_json::parse(op.data, nullptr, false);
    if (value.is_discarded()) {
        fail("the request is not JSON");
        return;
    }
    Buffer request;
    try {
        request = json_to_payload(value, ordered_json::object());
    } catch (const MappingError& e) {
        fail(e.what());
        return;
    }
    ++c.pending_calls;
    asio::co_spawn(
        executor_,
        [this, alive = alive_, id = c.session->id(), service, request = std::move(request), service_id = op.service_id,
         call_id = op.call_id]() mutable -> asio::awaitable<void> {
            std::string reply_text;
            std::string error;
            try {
                RawPayload reply = co_await node_.call_raw(service, CodecId::msgpack, std::move(request),
                                                           CallOptions{options_.service_timeout});
                reply_text = dump(payload_to_ordered_json(reply.codec, reply.bytes.bytes()));
            } catch (const std::exception& e) {
                error = e.what();
                if (error.empty()) {
                    error = "call failed";
                }
            }
            if (!*alive) {
                co_return;
            }
            if (Client* cl = find_client(id)) {
                --cl->pending_calls;
                if (error.empty()) {
                    cl->session->send(foxglove_service_response(service_id, call_id, "json", reply_text), true);
                } else {
                    cl->session->send(dump({{"op", "serviceCallFailure"},
                                            {"serviceId", service_id},
                                            {"callId", call_id},
                                            {"message", error}}));
                }
            }
        },
        asio::detached);
}

}  // namespace meshy::cli::bridge
