#include "topology/peer_table.hpp"

#include <algorithm>
#include <utility>

namespace meshy::detail {
namespace {

void sorted_unique(std::vector<std::string>& v) {
    std::sort(v.begin(), v.end());
    v.erase(std::unique(v.begin(), v.end()), v.end());
}

bool same_lists(const PeerRecord& a, const PeerRecord& b) {
    return a.topics == b.topics && a.services == b.services && a.publications == b.publications &&
           a.lists_known == b.lists_known && a.name == b.name && a.host == b.host;
}

}  // namespace

const PeerRecord* Topology::find(std::string_view id) const {
    const auto it = std::lower_bound(peers.begin(), peers.end(), id,
                                     [](const auto& p, std::string_view key) { return p->id < key; });
    return it != peers.end() && (*it)->id == id ? it->get() : nullptr;
}

PeerTable::PeerTable() : view_(std::make_shared<const Topology>()) {
}

void PeerTable::settle(PeerRecord& r) {
    const bool advert_holds = r.advert.complete && (!r.info || r.info->revision <= r.advert.revision);
    r.topics.clear();
    r.services.clear();
    r.publications.clear();
    if (advert_holds) {
        r.topics = r.advert.topics;
        r.services = r.advert.services;
        for (const auto& p : r.advert.publications) {
            wire::InfoPublication pub{p.topic, p.type, {}, {}, p.latched};
            // Schemas travel only in Info frames: keep the one a link brought for this type.
            if (r.info) {
                for (const auto& known : r.info->publications) {
                    if (known.topic == p.topic && known.type == p.type) {
                        pub.schema_encoding = known.schema_encoding;
                        pub.schema = known.schema;
                    }
                }
            }
            r.publications.push_back(std::move(pub));
        }
        r.lists_known = true;
    } else if (r.info) {
        r.topics = r.info->topics;
        r.services = r.info->services;
        r.publications = r.info->publications;
        r.lists_known = true;
    } else {
        r.lists_known = false;
    }
    sorted_unique(r.topics);
    sorted_unique(r.services);
    std::sort(r.publications.begin(), r.publications.end(),
              [](const auto& a, const auto& b) { return a.topic < b.topic; });
}

bool PeerTable::upsert(const Advert& advert) {
    std::lock_guard lock(mutex_);
    auto record = std::make_shared<PeerRecord>();
    const auto it = peers_.find(advert.id);
    if (it != peers_.end()) {
        *record = *it->second;
    }
    record->id = advert.id;
    record->name = advert.name;
    record->host = advert.host;
    record->advert = advert;
    settle(*record);
    const bool changed = it == peers_.end() || !same_lists(*it->second, *record);
    peers_[advert.id] = std::move(record);
    if (changed) {
        rebuild_locked();
    }
    return changed;
}

bool PeerTable::remove(std::string_view id) {
    std::lock_guard lock(mutex_);
    const auto it = peers_.find(id);
    if (it == peers_.end()) {
        return false;
    }
    peers_.erase(it);
    rebuild_locked();
    return true;
}

bool PeerTable::set_info(std::string_view id, wire::Info info) {
    std::lock_guard lock(mutex_);
    const auto it = peers_.find(id);
    if (it == peers_.end()) {
        return false;  // not advertised (any more): an Info alone does not make a peer
    }
    if (it->second->info && info.revision < it->second->info->revision) {
        return false;  // an older view that crossed a newer one
    }
    auto record = std::make_shared<PeerRecord>(*it->second);
    record->info = std::move(info);
    settle(*record);
    const bool changed = !same_lists(*it->second, *record);
    it->second = std::move(record);
    if (changed) {
        rebuild_locked();
    }
    return changed;
}

bool PeerTable::needs_info(std::string_view id) const {
    std::lock_guard lock(mutex_);
    const auto it = peers_.find(id);
    if (it == peers_.end()) {
        return false;
    }
    const PeerRecord& r = *it->second;
    return !r.advert.complete && (!r.info || r.info->revision < r.advert.revision);
}

std::vector<std::string> PeerTable::lacking_schemas(const std::vector<std::string>& topics) const {
    std::lock_guard lock(mutex_);
    std::vector<std::string> out;
    for (const auto& [id, r] : peers_) {
        if (r->info && r->info->revision >= r->advert.revision) {
            continue;
        }
        for (const auto& p : r->advert.publications) {
            if (!p.type.empty() && std::binary_search(topics.begin(), topics.end(), p.topic)) {
                out.push_back(id);
                break;
            }
        }
    }
    return out;
}

std::optional<Advert> PeerTable::advert(std::string_view id) const {
    std::lock_guard lock(mutex_);
    const auto it = peers_.find(id);
    if (it == peers_.end()) {
        return std::nullopt;
    }
    return it->second->advert;
}

std::shared_ptr<const Topology> PeerTable::view() const {
    std::lock_guard lock(mutex_);
    return view_;
}

void PeerTable::clear() {
    std::lock_guard lock(mutex_);
    peers_.clear();
    rebuild_locked();
}

void PeerTable::rebuild_locked() {
    auto view = std::make_shared<Topology>();
    view->peers.reserve(peers_.size());
    for (const auto& [id, record] : peers_) {  // a std::map: sorted by id, and so is every list below
        view->peers.push_back(record);
        for (const auto& t : record->topics) {
            view->listeners[t].push_back(record);
        }
        for (const auto& s : record->services) {
            view->providers[s].push_back(record);
        }
        for (const auto& p : record->publications) {
            view->publishers[p.topic].push_back(record);
        }
    }
    view_ = std::move(view);
}

}  // namespace meshy::detail
