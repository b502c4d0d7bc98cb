/// @file
/// `meshy::NodeOptions`: everything a node is built from, as one aggregate with defaults.
///
/// @code
/// meshy::Node node({.name = "talker", .domain_id = "lab"});
/// @endcode
#pragma once

#include <chrono>
#include <cstddef>
#include <cstdint>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "meshy/codec.hpp"
#include "meshy/load_balancer.hpp"

namespace meshy {

/// How a node finds its peers.
enum class DiscoveryMode {
    automatic,     ///< Avahi when an avahi-daemon is reachable, else same-host discovery (with a notice)
    avahi,         ///< mDNS/DNS-SD through the Avahi client; fails when no daemon is reachable
    local,         ///< same host only, no daemon needed
    static_peers,  ///< only NodeOptions::peers and what they tell (no mDNS, no daemon needed)
};

/// What `send` does when a peer's outbox is full (see NodeOptions::outbox_full).
enum class OutboxFull {
    drop_oldest,  ///< drop the oldest queued message, with a warning: fire-and-forget (the default)
    wait,         ///< the sending thread waits for room (at most `outbox_ttl`): lossless while the peer keeps up
};

/// Options of a node. Validated once, when the node is built (meshy::Error(errc::invalid_argument)).
/// The environment variable `MESHY_DISCOVERY=avahi|local|static` overrides `discovery`.
struct NodeOptions {
    /// The node's name. Names need not be unique: nodes sharing a name share load.
    std::string name = "meshy";
    /// Only nodes of one domain form a mesh. Unset: `MESHY_DOMAIN_ID`, else "default".
    std::optional<std::string> domain_id{};
    /// Accept connections on a Unix socket (used by peers on the same host).
    bool allow_unix = true;
    /// Upgrade Unix-socket links to shared memory (docs/shm.md) when the peer allows it too: a ring
    /// each way in a memfd, set up over the socket, which then only signals that the peer is alive.
    /// Unset: `MESHY_SHM` (`1` on, `0` off), else on. A link with a domain key moves once both ends
    /// are authenticated; its frames are then not sealed in the rings, which only the two ends map
    /// (docs/security.md): set false to keep every frame sealed on the socket.
    std::optional<bool> allow_shm{};
    /// The data bytes of each shared-memory ring (a power of two, 4 KiB to 1 GiB; rounded up). A
    /// peer's offer of larger rings is refused: it cannot make this node map more than twice this.
    /// A link's two rings are resident from its start; a larger message streams through in pieces.
    std::size_t shm_ring_bytes = 2u * 1024 * 1024;
    /// The bytes of this node's loan pool (Node::loan, docs/shm.md): one memfd, created with the
    /// first loan or shared-memory link, offered to shared-memory peers, which map it read-only. A
    /// multiple of 4 KiB from 64 KiB to 16 GiB. A peer's pool larger than this is not mapped (its
    /// loans then come as copies): a peer cannot make this node map more than this per link.
    std::size_t shm_pool_bytes = 64u * 1024 * 1024;
    /// Accept connections over TCP (used by peers on other hosts, and when Unix is off).
    bool allow_tcp = true;
    /// Address the TCP server binds to. When left at "0.0.0.0", the `MESHY_LISTEN_HOST` environment
    /// variable, if set, replaces it (`MESHY_LISTEN_HOST=127.0.0.1` keeps a node on loopback).
    std::string listen_host = "0.0.0.0";
    /// TCP port to bind; 0 picks a free one.
    std::uint16_t listen_port = 0;
    /// Address peers should dial. Empty: the address discovery resolves for this host.
    std::string advertise_host{};
    /// Directory for the Unix socket. Empty: $XDG_RUNTIME_DIR/meshy, else /tmp.
    std::string unix_socket_dir{};
    /// Codec of outgoing messages and replies (`send`, `call` and handlers without an explicit codec).
    CodecId codec = CodecId::msgpack;
    /// Chooses listeners per message. Null: round_robin_topic_balancer() (rosy's default).
    std::shared_ptr<TopicLoadBalancer> topic_load_balancer{};
    /// Chooses a provider per call. Null: round_robin_service_balancer().
    std::shared_ptr<ServiceLoadBalancer> service_load_balancer{};
    /// How to find peers.
    DiscoveryMode discovery = DiscoveryMode::automatic;
    /// Static peers, dialed whatever discovery finds: "tcp/HOST:PORT" or "unix/PATH". The
    /// environment variable `MESHY_PEERS` (comma-separated) adds to them. Each is dialed with
    /// backoff, all at once, and tells this node the adverts it knows, so that one well-known node
    /// (a fixed `listen_port`) is enough to join a mesh that multicast does not reach. See docs/reach.md.
    std::vector<std::string> peers{};
    /// Default timeout of `call` when a call gives none. Zero: wait until a reply or a lost connection.
    std::chrono::milliseconds call_timeout{0};
    /// Largest frame accepted or sent, in bytes. A peer announcing a larger one is disconnected.
    std::size_t max_frame_size = 256u * 1024 * 1024;
    /// Messages queued per peer while it is slow or unreachable; beyond it the oldest are dropped
    /// with a warning.
    std::size_t outbox_capacity = 1024;
    /// When an outbox is full: drop its oldest message (default), or make `send` wait for room
    /// (backpressure). A sender also waits while 256 KiB of small messages are queued, so that a
    /// burst stays in the CPU's cache on its way out. Waiting never happens on the node's own
    /// thread(s) nor while a peer is being connected to; there, and after waiting `outbox_ttl`, a
    /// second outbox's worth queues before the oldest is dropped.
    OutboxFull outbox_full = OutboxFull::drop_oldest;
    /// Queued messages older than this are dropped (with a warning) instead of being sent late.
    std::chrono::milliseconds outbox_ttl{5000};
    /// How long `stop()` waits at most for what was sent before it to go out: messages to peers
    /// still being connected to, then the queued frames and the goodbye. A script that sends and
    /// stops at once loses nothing to a reachable peer on a busy machine; a peer that cannot be
    /// reached ends its part of the wait when its dial fails (its messages are dropped with a
    /// warning).
    std::chrono::milliseconds linger{3000};
    /// Messages queued per listened topic while its callback is busy; beyond it the oldest are
    /// dropped with a warning.
    std::size_t inbox_capacity = 4096;
    /// SO_SNDBUF and SO_RCVBUF of every connection, in bytes (the kernel doubles them); 0 keeps the
    /// kernel's defaults (TCP: its auto-tuning). What a peer has not read yet waits there, so it bounds
    /// the latency of a saturated stream (4 MiB held 30-90 ms of queued small messages, 256 KiB
    /// 2-7 ms) and keeps large messages in the CPU's cache between the kernel's two copies (1 MB
    /// messages moved 1.6x faster than with 4 MiB on one CPU). Raise it for links whose bandwidth
    /// times round trip is larger (10 Gb/s over 1 ms: about 1.25 MB).
    std::size_t socket_buffer_size = 256u * 1024;
    /// Memory all connections together may hold for frames being received, beyond a first 256 KiB
    /// each, in bytes. A receive buffer grows with the bytes that arrived, never with the length a
    /// frame announces; a frame that would take the node past this budget closes its connection
    /// (with a warning naming the peer). Keep it above `max_frame_size` to receive frames that large.
    std::size_t receive_budget = 512u * 1024 * 1024;
    /// Connections peers may have open to this node at once (links are lazy: a peer connects when
    /// it has something to send or call). Beyond it a new connection is closed as soon as it is
    /// accepted, with a warning. Every connection a node has held at once leaves about a page of
    /// memory behind when it closes (the socket reactor keeps its per-socket state for reuse), so
    /// this also bounds what a flood of connections leaves: about 8 MB at the default.
    std::size_t max_inbound_connections = 2048;
    /// The domain key's file (make one with `meshy key generate > lab.key`): with a key, every link
    /// starts with a mutual authentication that proves both ends hold it, and everything after it
    /// is encrypted; a peer without the same key is refused. Empty: `MESHY_DOMAIN_KEY_FILE`, else
    /// no key (links in the clear). The file must not be readable by group or others (see
    /// docs/security.md).
    std::string domain_key_file{};
    /// Idle connections send a heartbeat this often.
    std::chrono::milliseconds heartbeat_interval{500};
    /// A connection silent for this long is considered dead and its peer leaves the topology.
    std::chrono::milliseconds peer_timeout{2500};
};

/// What a node says about a topic it sends (Node::advertise).
struct AdvertiseOptions {
    /// Type name, e.g. "geometry/Pose" or "foxglove.Log"; empty: untyped.
    std::string type{};
    /// Encoding of `schema`, e.g. "jsonschema"; empty when there is no schema.
    std::string schema_encoding{};
    /// The type's schema (sent to peers over links, not in discovery records).
    std::string schema{};
    /// Keep the last message sent on the topic: a listener that joins later gets it first, once,
    /// then the live stream (ROS 2's transient local durability; for maps, static transforms).
    bool latched = false;
};

/// Options of one service call.
struct CallOptions {
    /// Deadline for the reply. Zero: the node's `call_timeout`.
    std::chrono::milliseconds timeout{0};
};

}  // namespace meshy
