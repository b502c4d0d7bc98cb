// Internal: how nodes find each other. Two backends implement this interface:
// AvahiDiscovery (mDNS/DNS-SD through the Avahi client) and LocalDiscovery (same host, no daemon).
#pragma once

#include <chrono>
#include <cstdint>
#include <functional>
#include <memory>
#include <string>
#include <utility>
#include <vector>

namespace meshy::detail {

/// A topic a node sends, with its optional type name.
struct Publication {
    std::string topic;
    std::string type;  ///< e.g. "foxglove.Log"; empty when untyped (the schema travels in Info frames)
    bool latched = false;

    friend bool operator==(const Publication&, const Publication&) = default;
};

/// What one node advertises about itself: how to connect to it, and what it listens to, provides
/// and sends, so that peers can route to it without a connection. Lists that do not fit a
/// discovery record are left out (`complete` false): a peer then fetches them over a link (Info).
struct Advert {
    std::string id;              ///< node UUID, 36-char canonical text form
    std::string name;            ///< node name (not unique)
    std::string host;            ///< host name of the machine the node runs on
    std::string domain;          ///< domain ID
    std::uint32_t protocol = 0;  ///< wire protocol version
    std::string tcp_address;     ///< address to dial for TCP; empty when TCP is disabled
    std::uint16_t tcp_port = 0;  ///< 0 when TCP is disabled
    std::string unix_path;       ///< Unix socket path; empty when Unix is disabled
    std::int64_t pid = 0;        ///< process id (used by the local backend for liveness)
    std::uint32_t revision = 0;  ///< bumps whenever the lists below change
    std::vector<std::string> topics;        ///< topics it listens to, sorted
    std::vector<std::string> services;      ///< services it provides, sorted
    std::vector<Publication> publications;  ///< topics it sends, sorted by topic
    bool complete = true;  ///< false: the lists did not fit the record (fetch them over a link)

    friend bool operator==(const Advert&, const Advert&) = default;
};

/// Events a backend reports. They may be called from any thread (the backend's own thread);
/// the receiver must be thread-safe and must not call back into the backend synchronously.
struct DiscoveryEvents {
    /// A peer appeared, or its advert changed. Never reported for the node's own id.
    std::function<void(const Advert&)> on_peer_up;
    /// A peer withdrew its advert (clean exit / goodbye), the local backend saw its process die,
    /// or, after an avahi-daemon restart, it was not seen again within 5 s.
    std::function<void(const std::string& id)> on_peer_down;
};

/// An advert as key=value pairs: the TXT record strings of the Avahi backend and the lines of a
/// local .node file carry exactly these (v, id, name, host, domain, tcp, unix, addr, pid).
using AdvertFields = std::vector<std::pair<std::string, std::string>>;
AdvertFields advert_to_fields(const Advert& advert);
/// @returns false when a required field is missing or malformed.
bool advert_from_fields(const AdvertFields& fields, Advert& out);

/// Which backend to use.
enum class DiscoveryBackend { automatic, avahi, local };

/// A discovery backend. start() publishes `self` and begins browsing for peers of the same
/// domain; stop() withdraws the advert (peers see it leave within about 1 s) and stops browsing.
/// Both are idempotent. The destructor calls stop(). stop() waits for a callback that is running
/// (none runs after it returns), so never call it from a callback or while holding what one waits on.
/// Advert conventions: tcp_address is empty when tcp_port is 0; wildcard addresses are not
/// advertised (readers use the resolved address, or 127.0.0.1 for the local backend).
class Discovery {
public:
    virtual ~Discovery() = default;
    virtual void start(const Advert& self, DiscoveryEvents events) = 0;
    /// Publishes a new version of the node's advert (same id; its lists or revision changed).
    /// Thread-safe; may coalesce updates that follow each other closely.
    virtual void update(const Advert& self) = 0;
    virtual void stop() = 0;
    /// Short backend name for logs and `meshy node info`: "avahi" or "local" ("automatic" before start()).
    virtual const char* backend_name() const = 0;
};

/// The DNS-SD service type for a domain: "_meshy-XXXXXXXX._tcp", XXXXXXXX being 8 hex digits of
/// a 32-bit FNV-1a hash of the domain ID (the service name part stays within DNS-SD's 15 chars).
std::string dns_sd_service_type(const std::string& domain);

/// Avahi backend. Throws meshy::Error(errc::discovery_unavailable) from start() when no
/// avahi-daemon is reachable over D-Bus. Survives an avahi-daemon restart (reconnects by itself).
std::unique_ptr<Discovery> make_avahi_discovery();

/// Same-host backend with no daemon: one file per node in a per-domain directory
/// ($MESHY_LOCAL_DISCOVERY_DIR, else $XDG_RUNTIME_DIR/meshy, else /tmp/meshy-<uid>), polled.
std::unique_ptr<Discovery> make_local_discovery();

/// Picks the backend: `MESHY_DISCOVERY=avahi|local` forces one; automatic tries Avahi and falls
/// back to local with a one-line notice when no avahi-daemon is reachable.
std::unique_ptr<Discovery> make_discovery(DiscoveryBackend requested);

}  // namespace meshy::detail
