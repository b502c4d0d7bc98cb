#include "node/advert_exchange.hpp"

#include <algorithm>
#include <utility>

namespace meshy::detail {

void AdvertExchange::discovered(const std::string& id) {
    std::lock_guard lock(mutex_);
    discovered_.insert(id);
    sources_.erase(id);
}

void AdvertExchange::undiscovered(const std::string& id) {
    std::lock_guard lock(mutex_);
    discovered_.erase(id);
}

bool AdvertExchange::accept(const std::string& id, const std::string& from, const Link* via) {
    std::lock_guard lock(mutex_);
    if (discovered_.contains(id)) {
        return false;
    }
    const auto it = sources_.find(id);
    const bool own = id == from;
    if (it == sources_.end()) {
        if (sources_.size() >= kMaxLearnedAdverts) {
            return false;
        }
        sources_.emplace(id, Source{from, via});
        return true;
    }
    // The peer itself outranks whoever relayed it; a relay never replaces the peer's own word nor
    // another relay's (the first source keeps it until it says the peer is gone, or its link closes).
    if (own || it->second.from == from) {
        it->second = Source{from, via};
        return true;
    }
    return false;
}

bool AdvertExchange::gone(const std::string& id, const std::string& from) {
    std::lock_guard lock(mutex_);
    const auto it = sources_.find(id);
    if (it == sources_.end() || it->second.from != from) {
        return false;
    }
    sources_.erase(it);
    return true;
}

std::vector<std::string> AdvertExchange::closed(const Link* via) {
    std::vector<std::string> ids;
    std::lock_guard lock(mutex_);
    for (auto it = sources_.begin(); it != sources_.end();) {
        if (it->second.via == via) {
            ids.push_back(it->first);
            it = sources_.erase(it);
        } else {
            ++it;
        }
    }
    subscribers_.erase(
        std::remove_if(subscribers_.begin(), subscribers_.end(), [via](const auto& link) { return link.get() == via; }),
        subscribers_.end());
    return ids;
}

void AdvertExchange::subscribe(std::shared_ptr<Link> link) {
    std::lock_guard lock(mutex_);
    if (std::find(subscribers_.begin(), subscribers_.end(), link) == subscribers_.end()) {
        subscribers_.push_back(std::move(link));
    }
}

std::vector<std::shared_ptr<Link>> AdvertExchange::subscribers() {
    std::lock_guard lock(mutex_);
    subscribers_.erase(
        std::remove_if(subscribers_.begin(), subscribers_.end(), [](const auto& link) { return !link->open(); }),
        subscribers_.end());
    return subscribers_;
}

wire::Adverts AdvertExchange::changes(const Topology& topology) {
    wire::Adverts out;
    std::lock_guard lock(mutex_);
    std::map<std::string, Told, std::less<>> now;
    for (const auto& peer : topology.peers) {
        const Advert& a = peer->advert;
        Told told{a.revision, a.tcp_address, a.tcp_port};
        const auto before = told_.find(peer->id);
        if (before == told_.end() || before->second.revision != told.revision ||
            before->second.address != told.address || before->second.port != told.port) {
            out.adverts.push_back(advert_to_fields(a));
        }
        now.emplace(peer->id, std::move(told));
    }
    for (const auto& [id, told] : told_) {
        if (!now.contains(id)) {
            out.gone.push_back(id);
        }
    }
    told_ = std::move(now);
    return out;
}

std::vector<wire::AdvertFieldList> AdvertExchange::all(const Topology& topology) {
    std::vector<wire::AdvertFieldList> out;
    out.reserve(topology.peers.size());
    for (const auto& peer : topology.peers) {
        out.push_back(advert_to_fields(peer->advert));
    }
    return out;
}

void AdvertExchange::clear() {
    std::lock_guard lock(mutex_);
    discovered_.clear();
    sources_.clear();
    subscribers_.clear();
    told_.clear();
}

std::vector<wire::Adverts> split_adverts(wire::Adverts adverts) {
    std::vector<wire::Adverts> frames;
    std::size_t a = 0, g = 0;
    do {
        wire::Adverts frame;
        frame.subscribe = adverts.subscribe;
        for (; a < adverts.adverts.size() && frame.adverts.size() < kAdvertsPerFrame; ++a) {
            frame.adverts.push_back(std::move(adverts.adverts[a]));
        }
        for (; g < adverts.gone.size() && frame.gone.size() < kAdvertsPerFrame; ++g) {
            frame.gone.push_back(std::move(adverts.gone[g]));
        }
        frames.push_back(std::move(frame));
        adverts.subscribe = false;  // asked once
    } while (a < adverts.adverts.size() || g < adverts.gone.size());
    return frames;
}

}  // namespace meshy::detail
