#include "meshy/load_balancer.hpp"

#include <map>
#include <mutex>
#include <random>
#include <string>

namespace meshy {
namespace {

/// Calls `each_group(first, last)` for runs of candidates sharing a name. Candidates arrive
/// sorted by id, so groups are found by name with a small map (groups are few).
template <class F>
void for_each_group(std::span<const PeerRef> candidates, F&& each_group) {
    std::map<std::string_view, std::vector<std::size_t>> groups;
    for (std::size_t i = 0; i < candidates.size(); ++i) {
        groups[candidates[i].name].push_back(i);
    }
    for (auto& [name, members] : groups) {
        each_group(name, members);
    }
}

class RoundRobinTopics final : public TopicLoadBalancer {
public:
    void choose(std::string_view topic,
                std::span<const PeerRef> candidates,
                std::vector<std::size_t>& chosen) override {
        if (candidates.size() == 1) {  // the common case, kept free of allocations
            chosen.push_back(0);
            return;
        }
        std::lock_guard lock(mutex_);
        for_each_group(candidates, [&](std::string_view name, const std::vector<std::size_t>& members) {
            if (members.size() == 1) {
                chosen.push_back(members.front());
                return;
            }
            auto& next = turn_[key(topic, name)];
            chosen.push_back(members[next % members.size()]);
            ++next;
        });
    }

private:
    static std::string key(std::string_view topic, std::string_view name) {
        std::string k(topic);
        k.push_back('\0');
        k.append(name);
        return k;
    }
    std::mutex mutex_;
    std::map<std::string, std::size_t, std::less<>> turn_;
};

class AllListeners final : public TopicLoadBalancer {
public:
    void choose(std::string_view, std::span<const PeerRef> candidates, std::vector<std::size_t>& chosen) override {
        for (std::size_t i = 0; i < candidates.size(); ++i) {
            chosen.push_back(i);
        }
    }
};

class RandomTopics final : public TopicLoadBalancer {
public:
    void choose(std::string_view, std::span<const PeerRef> candidates, std::vector<std::size_t>& chosen) override {
        std::lock_guard lock(mutex_);
        for_each_group(candidates, [&](std::string_view, const std::vector<std::size_t>& members) {
            std::uniform_int_distribution<std::size_t> pick(0, members.size() - 1);
            chosen.push_back(members[pick(rng_)]);
        });
    }

private:
    std::mutex mutex_;
    std::minstd_rand rng_{std::random_device{}()};
};

class RoundRobinServices final : public ServiceLoadBalancer {
public:
    std::size_t choose(std::string_view service, std::span<const PeerRef> candidates) override {
        std::lock_guard lock(mutex_);
        auto it = turn_.find(service);
        if (it == turn_.end()) {
            it = turn_.emplace(std::string(service), 0).first;
        }
        return it->second++ % candidates.size();
    }

private:
    std::mutex mutex_;
    std::map<std::string, std::size_t, std::less<>> turn_;
};

class RandomServices final : public ServiceLoadBalancer {
public:
    std::size_t choose(std::string_view, std::span<const PeerRef> candidates) override {
        std::lock_guard lock(mutex_);
        std::uniform_int_distribution<std::size_t> pick(0, candidates.size() - 1);
        return pick(rng_);
    }

private:
    std::mutex mutex_;
    std::minstd_rand rng_{std::random_device{}()};
};

}  // namespace

std::shared_ptr<TopicLoadBalancer> round_robin_topic_balancer() {
    return std::make_shared<RoundRobinTopics>();
}
std::shared_ptr<TopicLoadBalancer> all_listeners_balancer() {
    return std::make_shared<AllListeners>();
}
std::shared_ptr<TopicLoadBalancer> random_topic_balancer() {
    return std::make_shared<RandomTopics>();
}
std::shared_ptr<ServiceLoadBalancer> round_robin_service_balancer() {
    return std::make_shared<RoundRobinServices>();
}
std::shared_ptr<ServiceLoadBalancer> random_service_balancer() {
    return std::make_shared<RandomServices>();
}

}  // namespace meshy
