// Internal: how nodes find each other. Two backends implement this interface:
// AvahiDiscovery (mDNS/DNS-SD through the Avahi client) and LocalDiscovery (same host, no daemon).
#pragma once

#include <chrono>
#include <cstddef>
#include <cstdint>
#include <functional>
#include <memory>
#include <string>
#include <string_view>
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
    std::string id;                         ///< node UUID, 36-char canonical text form
    std::string name;                       ///< node name (not unique)
    std::string host;                       ///< host name of the machine the node runs on
    std::string domain;                     ///< domain ID
    std::uint32_t protocol = 0;             ///< wire protocol version
    std::string tcp_address;                ///< address to dial for TCP; empty when TCP is disabled
    std::uint16_t tcp_port = 0;             ///< 0 when TCP is disabled
    std::string unix_path;                  ///< Unix socket path; empty when Unix is disabled
    std::int64_t pid = 0;                   ///< process id (used by the local backend for liveness)
    std::uint32_t revision = 0;             ///< bumps whenever the lists below change
    std::vector<std::string> topics;        ///< topics it listens to, sorted
    std::vector<std::string> services;      ///< services it provides, sorted
    std::vector<Publication> publications;  ///< topics it sends, sorted by topic
    bool complete = true;                   ///< false: the lists did not fit the record (fetch them over a link)

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
/// local .node file carry exactly these. Protocol 2 keys: v, id, name, host, domain, tcp, unix,
/// addr, pid, rev, c (0 when the lists were left out), and the lists cut into numbered pieces:
/// t0, t1, ... (listened topics), s0, ... (services), p0, ... (publications). Each list is one
/// text with items separated by ',' (a publication is topic[;type[;l]], l for latched), '\\', ','
/// and ';' escaped with '\\'; a piece ends anywhere but inside an escape.
using AdvertFields = std::vector<std::pair<std::string, std::string>>;

/// How advert_to_fields() lays the advert out.
struct AdvertLayout {
    /// Longest "key=value" string; a list longer than that is cut into several pieces.
    std::size_t max_string = static_cast<std::size_t>(-1);
    /// Total size of all strings, each counted with its length byte (as in a TXT record). When the
    /// lists would exceed it they are left out and the advert says so (c=0, complete false).
    std::size_t budget = static_cast<std::size_t>(-1);
};

/// The layout of the Avahi backend: DNS character strings of at most 255 bytes, and a TXT record
/// that keeps the whole announcement (SRV, TXT, PTR, A) within one 1500-byte mDNS packet.
inline constexpr AdvertLayout kTxtLayout{255, 1300};

/// Limits every reader enforces; an advert beyond them is malformed.
inline constexpr std::size_t kMaxAdvertText = 255;        ///< id, name, host, domain, addr, unix (bytes)
inline constexpr std::size_t kMaxAdvertItem = 65535;      ///< one topic, service or type name (bytes)
inline constexpr std::size_t kMaxAdvertItems = 100'000;   ///< items of one list
inline constexpr std::size_t kMaxAdvertBytes = 8u << 20;  ///< a whole advert as text (a .node file)

/// Throws meshy::Error(invalid_argument) when a field that must be exact (id, host, domain, addr,
/// unix) does not fit layout.max_string; the name is cut instead.
AdvertFields advert_to_fields(const Advert& advert, const AdvertLayout& layout = {});
/// @param reason when non-null, receives why the fields were refused.
/// @returns false when a required field is missing, a field is malformed or over a limit.
bool advert_from_fields(const AdvertFields& fields, Advert& out, std::string* reason = nullptr);
/// A TXT record's rdata as it arrives (character strings, each a length byte and its bytes) to its
/// strings. @returns false, with `out` cleared, when a string runs past the end.
bool txt_rdata_strings(std::string_view rdata, std::vector<std::string_view>& out);
/// TXT record strings to fields: each "key=value" (binary value); strings without '=' are skipped.
AdvertFields txt_strings_to_fields(const std::vector<std::string_view>& strings);
/// The text of a local .node file: one "key=value" line a field, '\\', '\n' and '\r' escaped.
std::string advert_to_file_text(const Advert& advert);
/// Parses a .node file's text (at most kMaxAdvertBytes). @returns false as advert_from_fields().
bool advert_from_file_text(std::string_view text, Advert& out, std::string* reason = nullptr);

/// Where this node expects a peer's Unix socket: the directory of its own socket and the default
/// one ($XDG_RUNTIME_DIR/meshy, else /tmp/meshy-<uid>, as for NodeOptions::unix_socket_dir).
std::vector<std::string> expected_socket_dirs(const Advert& self);
/// Checks a peer's advert before it is reported. A Unix socket path other than
/// <one of socket_dirs>/<id>.sock is cleared (a record must not make the node dial /etc/passwd).
/// @returns an empty string when the advert is usable as it now stands, else why it is refused
///          (protocol mismatch); `note` receives what was cleared, if anything.
std::string check_peer_advert(Advert& peer,
                              const Advert& self,
                              const std::vector<std::string>& socket_dirs,
                              std::string& note);

/// Cuts `text` to at most `max_bytes` at a UTF-8 character boundary (never a torn sequence).
std::string truncate_utf8(std::string text, std::size_t max_bytes);

/// Which backend to use.
enum class DiscoveryBackend { automatic, avahi, local, none };

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
/// ($MESHY_LOCAL_DISCOVERY_DIR, else $XDG_RUNTIME_DIR/meshy, else /tmp/meshy-<uid>), watched with
/// inotify; peers' processes are checked for liveness once a second.
std::unique_ptr<Discovery> make_local_discovery();

/// No discovery at all ("static"): the node finds only its static peers and what they tell it.
std::unique_ptr<Discovery> make_no_discovery();

/// Picks the backend: `MESHY_DISCOVERY=avahi|local|static` forces one (static: none); automatic
/// tries Avahi and falls back to local with a one-line notice when no avahi-daemon is reachable.
std::unique_ptr<Discovery> make_discovery(DiscoveryBackend requested);

}  // namespace meshy::detail
