// Internal: whether a connection may speak for the node whose id it claims. Without a domain key
// (which binds an id to a key holder, see docs/security.md) this is the structural check: a
// connection whose end contradicts the claimed node's advert (another process on this host,
// another address) is not that node.
#pragma once

#include <cstdint>
#include <string>

#include "discovery/discovery.hpp"

namespace meshy::detail {

/// The end of a connection as the kernel reports it.
struct ConnectionEnd {
    bool is_unix = false;
    std::int64_t pid = 0;  ///< Unix sockets: the peer's process (SO_PEERCRED), 0 if unknown
    std::string remote;    ///< "tcp:<addr>:<port>" for TCP (Connection::remote())
};

/// Why a connection from `end` that claims the id of the node advertised by `advert` is not that
/// node, or empty when nothing contradicts it. `self_host`: this node's host name (a TCP
/// connection over loopback from a node of this host is fine whatever address it advertises).
std::string identity_mismatch(const Advert& advert, const ConnectionEnd& end, const std::string& self_host);

/// The address part of a TCP remote ("tcp:<addr>:<port>"), else empty.
std::string tcp_remote_address(const std::string& remote);

/// 127.0.0.0/8 or ::1.
bool is_loopback(const std::string& address);

}  // namespace meshy::detail
