// Internal: the adverts a node exchanges with its static peers (wire::Adverts), as state: where
// each advert learned over a link came from, which connections asked to be kept informed, and what
// they were last told. A first-hand advert (from discovery, or from the peer itself over its link)
// is never overridden by one a third node relays. No sockets here beyond the subscribers' handles.
#pragma once

#include <cstddef>
#include <cstdint>
#include <map>
#include <memory>
#include <mutex>
#include <set>
#include <string>
#include <vector>

#include "discovery/discovery.hpp"
#include "topology/peer_table.hpp"
#include "transport/link.hpp"
#include "wire/frame.hpp"

namespace meshy::detail {

/// Adverts learned over links that one node keeps at most; beyond it new ones are ignored.
inline constexpr std::size_t kMaxLearnedAdverts = 4096;
/// Adverts an Adverts frame carries at most when this node sends one (a receiver accepts up to
/// wire::max_frame_adverts).
inline constexpr std::size_t kAdvertsPerFrame = 256;

class AdvertExchange {
public:
    /// Discovery reported `id` (first-hand): what links say of it is ignored from now on.
    void discovered(const std::string& id);
    /// Discovery no longer reports `id`.
    void undiscovered(const std::string& id);
    /// An advert of `id` came from peer `from` over connection `via` (the peer's own when
    /// id == from). @returns whether to apply it; if so, `via` is recorded as its source.
    bool accept(const std::string& id, const std::string& from, const Link* via);
    /// `from` says `id` is gone. @returns true when `id` was learned from `from` (forgotten now).
    bool gone(const std::string& id, const std::string& from);
    /// Connection `via` closed: @returns the ids learned over it (forgotten now).
    std::vector<std::string> closed(const Link* via);

    /// `link` asked to be kept informed.
    void subscribe(std::shared_ptr<Link> link);
    /// The links to keep informed (closed ones are dropped).
    std::vector<std::shared_ptr<Link>> subscribers();
    /// What changed in `topology` since the last call: adverts of new or changed peers (as the
    /// peer table holds them) and ids that left. The first call reports every peer.
    wire::Adverts changes(const Topology& topology);
    /// Every advert of `topology`, as fields.
    static std::vector<wire::AdvertFieldList> all(const Topology& topology);
    void clear();

private:
    struct Source {
        std::string from;
        const Link* via = nullptr;
    };
    struct Told {
        std::uint32_t revision = 0;
        std::string address;
        std::uint16_t port = 0;
    };
    std::mutex mutex_;  // guards everything below
    std::set<std::string, std::less<>> discovered_;
    std::map<std::string, Source, std::less<>> sources_;
    std::vector<std::shared_ptr<Link>> subscribers_;
    std::map<std::string, Told, std::less<>> told_;
};

/// Splits `adverts` into frames of at most kAdvertsPerFrame adverts and ids each.
std::vector<wire::Adverts> split_adverts(wire::Adverts adverts);

}  // namespace meshy::detail
