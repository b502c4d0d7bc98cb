/// @file
/// Load balancing: which of the nodes listening to a topic get a message, and which provider
/// serves a call. rosy's default is kept: topic listeners are grouped by node name, every group
/// gets the message, and within a group the nodes take turns (round-robin). Service calls rotate
/// among providers. Strategies are pluggable: derive from `TopicLoadBalancer` or
/// `ServiceLoadBalancer`, or use the factories below. A balancer is called with the node's
/// topology lock held: it must be quick and must not call back into the node.
#pragma once

#include <cstddef>
#include <memory>
#include <span>
#include <string_view>
#include <vector>

namespace meshy {

/// A candidate node, as a balancer sees it. Views stay valid only during the call.
struct PeerRef {
    std::string_view id;    ///< the node's UUID
    std::string_view name;  ///< the node's name (nodes sharing a name share load)
    std::string_view host;  ///< the node's host
    bool is_self = false;   ///< the candidate is the calling node itself
};

/// Chooses the listeners of one message.
class TopicLoadBalancer {
public:
    virtual ~TopicLoadBalancer() = default;
    /// @param topic the topic being sent
    /// @param candidates the nodes listening to it, sorted by id (never empty)
    /// @param chosen receives the indexes (into candidates) of the nodes to send to
    virtual void choose(std::string_view topic,
                        std::span<const PeerRef> candidates,
                        std::vector<std::size_t>& chosen) = 0;
};

/// Chooses the provider of one call.
class ServiceLoadBalancer {
public:
    virtual ~ServiceLoadBalancer() = default;
    /// @param service the service being called
    /// @param candidates the nodes providing it, sorted by id (never empty)
    /// @returns the index of the provider to call
    virtual std::size_t choose(std::string_view service, std::span<const PeerRef> candidates) = 0;
};

/// rosy's default for topics: one node per name group, rotating within each group.
std::shared_ptr<TopicLoadBalancer> round_robin_topic_balancer();
/// Every listening node gets every message (no balancing).
std::shared_ptr<TopicLoadBalancer> all_listeners_balancer();
/// One node per name group, chosen at random.
std::shared_ptr<TopicLoadBalancer> random_topic_balancer();
/// Providers in turn (the default for services).
std::shared_ptr<ServiceLoadBalancer> round_robin_service_balancer();
/// A provider at random.
std::shared_ptr<ServiceLoadBalancer> random_service_balancer();

}  // namespace meshy
