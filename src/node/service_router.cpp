#include "node/service_router.hpp"

#include <algorithm>
#include <asio/co_spawn.hpp>
#include <asio/detached.hpp>

#include "common/system.hpp"

namespace meshy::detail {

ServiceRouter::ServiceRouter(asio::any_io_executor executor,
                             const NodeOptions& options,
                             std::string self_id,
                             std::string self_name,
                             std::string self_host,
                             Services& services,
                             const Publisher& publisher,
                             Calls& calls,
                             PeerLinks& links)
    : exec_(std::move(executor)),
      id_(std::move(self_id)),
      name_(std::move(self_name)),
      host_(std::move(self_host)),
      services_(services),
      publisher_(publisher),
      calls_(calls),
      links_(links),
      custom_balancer_(options.service_load_balancer != nullptr),
      balancer_(options.service_load_balancer ? options.service_load_balancer : round_robin_service_balancer()) {
}

bool ServiceRouter::has_providers(std::string_view service) const {
    return services_.contains(service) || publisher_.routing()->providers.contains(service);
}

void ServiceRouter::start(std::unique_ptr<CallWaiter> waiter,
                          const std::string& service,
                          CodecId codec,
                          Buffer& request,
                          std::chrono::milliseconds timeout) {
    std::shared_ptr<ServiceFn> local = services_.find(service);
    const auto routing = publisher_.routing();
    const auto providers = routing->providers.find(service);
    // null: this node
    thread_local std::vector<const RouteTarget*> targets;
    targets.clear();
    if (local) {
        targets.push_back(nullptr);
    }
    if (providers != routing->providers.end()) {
        const auto& all = providers->second;
        const bool any_connected =
            !targets.empty() || std::any_of(all.begin(), all.end(), [](const auto& t) { return t.link->up.load(); });
        for (const auto& t : all) {
            if (!any_connected || t.link->up.load(std::memory_order_acquire)) {
                targets.push_back(&t);
            }
        }
    }
    if (targets.empty()) {
        waiter->complete(failed_call(errc::no_provider, "no node provides service '" + service + "'"), false);
        return;
    }
    // A lone provider needs no turn taken (a custom balancer is still asked), nor its PeerRef.
    std::size_t index = 0;
    if (targets.size() > 1 || custom_balancer_) {
        std::lock_guard lock(mutex_);
        refs_scratch_.clear();
        for (const auto* t : targets) {
            refs_scratch_.push_back(t ? PeerRef{t->peer->id, t->peer->name, t->peer->host, false}
                                      : PeerRef{id_, name_, host_, true});
        }
        index = balancer_->choose(service, refs_scratch_);
    }
    const RouteTarget* target = targets[index < targets.size() ? index : 0];
    if (target) {
        calls_.start(std::move(waiter), links_, *target->link, service, codec, request, timeout);
        return;
    }
    // This node's own service: a plain handler runs now, a coroutine is spawned; either way the
    // caller resumes through its executor's queue.
    auto run = [id = id_, local, service, codec, request = std::move(request),
                waiter = std::move(waiter)]() mutable -> asio::awaitable<void> {
        RawMessage m;
        m.topic = service;
        m.codec = codec;
        m.payload = request.bytes();
        m.sender_id = id;
        m.sent_at_ns = now_ns();
        CallOutcome outcome;
        try {
            if (local->plain) {
                outcome.reply = local->plain(m);
            } else {
                outcome.reply = co_await local->coroutine(m);
            }
        } catch (...) {
            outcome = failed_call(errc::remote_error, current_failure());
        }
        waiter->complete(std::move(outcome), false);
    };
    asio::co_spawn(exec_, std::move(run), asio::detached);
}

}  // namespace meshy::detail
