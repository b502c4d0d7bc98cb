#include "node/node_list.hpp"

#include <map>

namespace meshy::detail {

PublicationInfo publication_info(const wire::InfoPublication& p) {
    return PublicationInfo{p.topic, p.type, p.schema_encoding, p.schema, p.latched};
}

std::vector<NodeInfo> describe_peers(const Topology& topology, const PeerLinks& links, const std::string& domain) {
    // How a peer is reached: the link this node dialed, else a connection the peer dialed to it.
    std::map<std::string, std::string, std::less<>> inbound_transport;
    for (const auto& conn : links.inbound()) {
        if (conn->open() && conn->handshaken()) {
            inbound_transport.emplace(conn->peer().id, std::string(conn->kind()));
        }
    }
    std::vector<NodeInfo> out;
    out.reserve(topology.peers.size());
    for (const auto& peer : topology.peers) {
        NodeInfo n;
        n.id = peer->id;
        n.name = peer->name;
        n.host = peer->host;
        n.domain = domain;
        n.topics = peer->topics;
        n.services = peer->services;
        for (const auto& p : peer->publications) {
            n.publications.push_back(publication_info(p));
        }
        if (peer->advert.tcp_port) {
            n.tcp_endpoint = (peer->advert.tcp_address.empty() ? std::string("127.0.0.1") : peer->advert.tcp_address) +
                             ":" + std::to_string(peer->advert.tcp_port);
        }
        n.unix_endpoint = peer->advert.unix_path;
        if (const auto link = links.find(peer->id)) {
            std::lock_guard lock(link->mutex);
            if (link->ready) {
                n.transport = std::string(link->ready->kind());
            }
        }
        if (n.transport.empty()) {
            if (const auto it = inbound_transport.find(peer->id); it != inbound_transport.end()) {
                n.transport = it->second;
            }
        }
        out.push_back(std::move(n));
    }
    return out;
}

}  // namespace meshy::detail
