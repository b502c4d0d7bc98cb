/// @file
/// Views of a received message and of the mesh topology, for tools and raw listeners.
#pragma once

#include <cstdint>
#include <memory>
#include <span>
#include <string>
#include <string_view>
#include <vector>

#include "meshy/codec.hpp"

namespace meshy {

/// A received message, undecoded. Views are valid only during the callback.
struct RawMessage {
    std::string_view topic;              ///< topic (or service) name
    CodecId codec = CodecId::msgpack;    ///< codec of the payload
    std::span<const std::byte> payload;  ///< encoded arguments
    std::string_view sender_id;          ///< UUID of the sending node
    std::uint64_t sent_at_ns = 0;        ///< sender's CLOCK_REALTIME when sent, in ns since the epoch
    /// Set when the payload is read in place from the sender's shared memory (Node::send_loaned,
    /// docs/shm.md): a copy of it keeps `payload` valid after the callback (and the sender's block
    /// taken, so let go soon). Null for other messages, whose payload is valid during the callback only.
    std::shared_ptr<const void> payload_owner;
};

/// An encoded payload with its codec, as a raw service handler returns it.
struct RawPayload {
    CodecId codec = CodecId::msgpack;
    Buffer bytes;
};

/// A topic a node sends, with the type it declared (Node::advertise), if any.
struct PublicationInfo {
    std::string topic;            ///< topic name
    std::string type;             ///< type name, e.g. "foxglove.Log"; empty when untyped
    std::string schema_encoding;  ///< e.g. "jsonschema"; empty when no schema is known here
    std::string schema;           ///< the schema text, once known (it travels over links, not in adverts)
    bool latched = false;         ///< late listeners get its last message first

    friend bool operator==(const PublicationInfo&, const PublicationInfo&) = default;
};

/// One node of the mesh, as this node knows it.
struct NodeInfo {
    std::string id;                             ///< UUID
    std::string name;                           ///< name (not unique)
    std::string host;                           ///< host name
    std::string domain;                         ///< domain ID
    std::vector<std::string> topics;            ///< topics it listens to, sorted
    std::vector<std::string> services;          ///< services it provides, sorted
    std::vector<PublicationInfo> publications;  ///< topics it sends, sorted by topic
    std::string tcp_endpoint;                   ///< "address:port", empty when TCP is off
    std::string unix_endpoint;                  ///< socket path, empty when Unix is off
    std::string transport;  ///< how this node reaches it: "shm", "unix", "tcp", "self" or "" (not connected)
    bool is_self = false;   ///< this entry is the node itself
};

}  // namespace meshy
