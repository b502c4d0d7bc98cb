// Internal: where messages and calls go, as one immutable snapshot built from the topology, the
// links and this node's own listeners. Rebuilt whenever one of them changes (RouteTarget::ready
// aside, which follows the links).
#pragma once

#include <cstdint>
#include <map>
#include <memory>
#include <string>
#include <vector>

#include "node/peer_links.hpp"
#include "node/subscriptions.hpp"
#include "topology/peer_table.hpp"

namespace meshy::detail {

/// A peer to send to: its link, and what the balancers see of it.
struct RouteTarget {
    std::shared_ptr<PeerLink> link;
    std::shared_ptr<const PeerRecord> peer;
    // The link's connection when the publisher last looked (Publisher::links_changed), guarded by
    // the publisher's lock, not the link's: while `link->current` still names it, a message goes
    // to it without taking the link's lock. It keeps a closed connection's object alive until the
    // next look, never a socket (closing one frees that).
    mutable std::shared_ptr<Connection> ready;
};

struct Routing {
    std::uint64_t generation = 0;
    std::shared_ptr<const Topology> topology;
    // topic / service -> peers that listen / provide, sorted by id
    std::map<std::string, std::vector<RouteTarget>, std::less<>> listeners;
    std::map<std::string, std::vector<RouteTarget>, std::less<>> providers;
    // this node's own listeners, by topic
    std::map<std::string, std::shared_ptr<Subscription>, std::less<>> own;
};

}  // namespace meshy::detail
