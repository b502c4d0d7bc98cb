// Internal: where a call goes. Picks a provider of the service among this node's own handler and
// the peers that advertise it (connected ones first; the service balancer takes turns between
// several), then hands the call to Calls (a peer) or runs the handler (this node).
#pragma once

#include <asio/any_io_executor.hpp>
#include <chrono>
#include <memory>
#include <mutex>
#include <string>
#include <string_view>
#include <vector>

#include "meshy/load_balancer.hpp"
#include "meshy/node_options.hpp"
#include "node/calls.hpp"
#include "node/publisher.hpp"
#include "node/services.hpp"

namespace meshy::detail {

class ServiceRouter {
public:
    /// The parts it reads (`services`, the routing of `publisher`) and hands calls to (`calls`,
    /// over `links`) outlive it.
    ServiceRouter(asio::any_io_executor executor,
                  const NodeOptions& options,
                  std::string self_id,
                  std::string self_name,
                  std::string self_host,
                  Services& services,
                  const Publisher& publisher,
                  Calls& calls,
                  PeerLinks& links);

    /// Picks a provider of `service` (this node or a peer), registers the call and sends its
    /// request, or runs this node's own handler; the outcome reaches `waiter`. `service` may be the
    /// waiter's own: it is not used once the waiter is handed on.
    void start(std::unique_ptr<CallWaiter> waiter,
               const std::string& service,
               CodecId codec,
               Buffer& request,
               std::chrono::milliseconds timeout);
    /// This node or a known peer provides `service`.
    bool has_providers(std::string_view service) const;

private:
    asio::any_io_executor exec_;
    std::string id_, name_, host_;
    Services& services_;
    const Publisher& publisher_;
    Calls& calls_;
    PeerLinks& links_;
    const bool custom_balancer_;
    std::shared_ptr<ServiceLoadBalancer> balancer_;

    std::mutex mutex_;  // guards the balancer and refs_scratch_
    std::vector<PeerRef> refs_scratch_;
};

}  // namespace meshy::detail
