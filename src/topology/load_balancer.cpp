#include "meshy/load_balancer.hpp"

#include <algorithm>
#include <map>
#include <mutex>
#include <random>
#include <string>
#include <vector>

namespace meshy {
namespace {

/// Calls `each_group(name, members)` for each name group of the candidates, in name order;
/// `members` are indexes into candidates in id order. `order` and `members` are scratch space
/// (kept by the caller, so a call allocates nothing once they have grown).
template <class F>
void for_each_group(std::span<const PeerRef> candidates,
                    std::vector<std::size_t>& order,
                    std::vector<std::size_t>& members,
                    F&& each_group) {
    order.resize(candidates.size());
    for (std::size_t i = 0; i < order.size(); ++i) {
        order[i] = i;
    }
    std::stable_sort(order.begin(), order.end(),
                     [&](std::size_t a, std::size_t b) { return candidates[a].name < candidates[b].name; });
    for (std::size_t first = 0; first < order.size();) {
        const std::string_view name = candidates[order[first]].name;
        members.clear();
        std::size_t last = first;
        while (last < order.size() && candidates[order[last]].name == name) {
            members.push_back(order[last++]);
        }
        each_group(name, static_cast<const std::vector<std::size_t>&>(members));
        first = last;
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
        for_each_group(candidates, order_, members_,
                       [&](std::string_view name, const std::vector<std::size_t>& members) {
                           if (members.size() == 1) {
                               chosen.push_back(members.front());
                               return;
                           }
                           key_.assign(topic);
                           key_.push_back('\0');
                           key_.append(name);
                           auto it = turn_.find(key_);
                           if (it == turn_.end()) {
                               it = turn_.emplace(key_, 0).first;
                           }
                           chosen.push_back(members[it->second % members.size()]);
                           ++it->second;
                       });
    }

private:
    std::mutex mutex_;  // guards everything below
    std::map<std::string, std::size_t, std::less<>> turn_;
    std::string key_;
    std::vector<std::size_t> order_, members_;
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
        for_each_group(candidates, order_, members_, [&](std::string_view, const std::vector<std::size_t>& members) {
            std::uniform_int_distribution<std::size_t> pick(0, members.size() - 1);
            chosen.push_back(members[pick(rng_)]);
        });
    }

private:
    std::vector<std::size_t> order_, members_;
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
