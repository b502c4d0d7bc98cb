// Internal: what `meshy node list` and `node info` show of the peers: the topology as NodeInfo,
// with the transport of the connection that reaches each peer.
#pragma once

#include <string>
#include <vector>

#include "meshy/node.hpp"
#include "node/peer_links.hpp"
#include "topology/peer_table.hpp"

namespace meshy::detail {

/// The peers of `topology`, in its order; a peer's transport is that of the link this node
/// dialed to it, else of a connection it dialed to this node, else empty.
std::vector<NodeInfo> describe_peers(const Topology& topology, const PeerLinks& links, const std::string& domain);

/// `p` as the public API shows it.
PublicationInfo publication_info(const wire::InfoPublication& p);

}  // namespace meshy::detail
