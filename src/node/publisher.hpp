// Internal: sending to a topic. Routes each message to the topic's listeners (one per name group
// by default, see load_balancer.hpp), this node's own listener included; keeps what this node
// publishes (advertised with an optional type) and the last message of latched topics.
#pragma once

#include <cstdint>
#include <functional>
#include <map>
#include <memory>
#include <mutex>
#include <set>
#include <span>
#include <string>
#include <string_view>
#include <vector>

#include "meshy/load_balancer.hpp"
#include "meshy/node_options.hpp"
#include "node/routing.hpp"
#include "wire/frame.hpp"

namespace meshy::detail {

/// Sends a message as a loan through one connection (Connection::send_loaned). @returns false when
/// that connection cannot take it: the message's bytes go instead.
using LoanedSend = std::function<bool(Connection& conn)>;

class Publisher {
public:
    /// @param publications_changed called (without a lock held) when what this node publishes changed
    /// @param on_own_thread whether the calling thread is the node's own (which never waits for room)
    Publisher(const NodeOptions& options,
              std::string self_id,
              std::string self_name,
              std::string self_host,
              PeerLinks& links,
              Subscriptions& subscriptions,
              std::function<void()> publications_changed,
              std::function<bool()> on_own_thread);

    /// Declares a topic this node sends, with its type; see AdvertiseOptions.
    void advertise(std::string topic, const AdvertiseOptions& options);
    /// Records `topic` as one this node sends (untyped if new). @returns true when it is new.
    bool announce(std::string_view topic);
    /// What this node publishes, sorted by topic.
    std::vector<wire::InfoPublication> publications() const;

    /// Begins a message frame in `frame`. @returns false when nobody listens (nothing to send);
    /// a first send advertises the topic.
    bool begin_message(std::string_view topic, CodecId codec, Buffer& frame);
    /// Sends the frame begun by begin_message(); `tail`, when given, is the end of its payload,
    /// which is only read during the call. Connections whose outbox is full now are added to
    /// `full` (OutboxFull::wait) when it is given; without it the calling thread waits for room
    /// itself (never the node's own thread). `loaned`, when given, offers a large `tail` (a loan's
    /// bytes) to each connected listener as a loan first.
    void finish_message(std::string_view topic,
                        Buffer&& frame,
                        std::span<const std::byte> tail,
                        std::vector<std::shared_ptr<Connection>>* full = nullptr,
                        const LoanedSend* loaned = nullptr);
    /// The routing changed: sends and latched values follow the new one.
    void set_routing(std::shared_ptr<const Routing> routing);
    /// A link to a peer became ready or closed: sends follow its connection.
    void links_changed();
    /// The current routing.
    std::shared_ptr<const Routing> routing() const;
    /// Forgets every latched value (the node stops).
    void stop();

private:
    struct Latched {
        SharedFrame frame;
        std::set<std::string> delivered;  // peers that listened when it was sent, or got it since
        bool delivered_here = false;      // this node's own listener
    };
    /// With mutex_ held: the last message of a latched topic goes to the listeners that have not
    /// had it.
    void deliver_latched_locked(const std::string& topic, Latched& latched);
    /// With mutex_ held: records `topic` as published; `key`, when given, is set to its lasting
    /// copy. @returns true when it is new.
    bool publish_locked(std::string_view topic, std::string_view* key = nullptr);
    /// With mutex_ held: the routing's targets take their links' connections (RouteTarget::ready).
    void look_at_links_locked();

    NodeOptions options_;
    std::string id_, name_, host_;
    std::shared_ptr<const std::string> id_shared_;
    PeerLinks& links_;
    Subscriptions& subscriptions_;
    std::function<void()> publications_changed_;
    std::function<bool()> on_own_thread_;
    std::shared_ptr<TopicLoadBalancer> balancer_;

    std::atomic<std::uint64_t> generation_;
    mutable std::mutex mutex_;  // guards everything below; the balancer is called under it
    std::shared_ptr<const Routing> routing_;
    std::map<std::string, wire::InfoPublication, std::less<>> publications_;
    std::map<std::string, Latched, std::less<>> latched_;
    std::vector<PeerRef> refs_scratch_;
    std::vector<PeerLink*> targets_scratch_;
    std::vector<std::size_t> chosen_scratch_;
};

}  // namespace meshy::detail
