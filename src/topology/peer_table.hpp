// Internal: the mesh topology as this node knows it. Peers come and go with their discovery
// adverts, which carry what each listens to, provides and sends; a peer whose advert could not
// carry its lists is completed by the Info frame it sends over a link this node dialed. Pure data,
// no sockets: routing reads immutable snapshots (Topology) without a lock.
#pragma once

#include <cstdint>
#include <map>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "discovery/discovery.hpp"
#include "wire/frame.hpp"

namespace meshy::detail {

/// One peer: its advert, the Info it sent (if any), and the lists that hold for it.
struct PeerRecord {
    std::string id;
    std::string name;
    std::string host;
    Advert advert;
    std::optional<wire::Info> info;  ///< from a link this node dialed (identity checked)
    // The lists in force: the advert's, or the Info's when it is newer or the advert has none.
    std::vector<std::string> topics;
    std::vector<std::string> services;
    std::vector<wire::InfoPublication> publications;
    bool lists_known = false;  ///< false: the advert could not carry them and no Info came yet
};

/// The topology at one moment; never changed once built.
struct Topology {
    using Peers = std::vector<std::shared_ptr<const PeerRecord>>;
    Peers peers;  ///< sorted by id
    // topic or service -> peers, sorted by id
    std::map<std::string, Peers, std::less<>> listeners;
    std::map<std::string, Peers, std::less<>> providers;
    std::map<std::string, Peers, std::less<>> publishers;

    /// The peer of `id`, or null.
    const PeerRecord* find(std::string_view id) const;
};

/// The peers and their lists. Thread-safe; its own lock.
class PeerTable {
public:
    PeerTable();
    /// A peer appeared or changed its advert. @returns true when the topology changed.
    bool upsert(const Advert& advert);
    /// A peer withdrew (or said goodbye on a link this node dialed). @returns true when it was known.
    bool remove(std::string_view id);
    /// The lists `id` sent in an Info frame over a link this node dialed. One older than what is
    /// held is ignored. @returns true when the topology changed.
    bool set_info(std::string_view id, wire::Info info);
    /// True when `id`'s advert does not carry its lists and no Info as new has come: fetch it.
    bool needs_info(std::string_view id) const;
    /// Peers whose advert names a type for a topic in `topics` (sorted) while no Info as new as the
    /// advert has come: schemas travel only in Info frames, which a listener gets by dialing.
    std::vector<std::string> lacking_schemas(const std::vector<std::string>& topics) const;
    /// The advert of `id`, if known.
    std::optional<Advert> advert(std::string_view id) const;
    /// The current topology.
    std::shared_ptr<const Topology> view() const;
    /// Forgets everything.
    void clear();

private:
    /// Sets the lists in force from the advert and the Info.
    static void settle(PeerRecord& record);
    void rebuild_locked();

    mutable std::mutex mutex_;  // guards everything below
    std::map<std::string, std::shared_ptr<const PeerRecord>, std::less<>> peers_;
    std::shared_ptr<const Topology> view_;
};

}  // namespace meshy::detail
