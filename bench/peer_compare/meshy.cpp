// bench/peer_compare, meshy: a topic with OutboxFull::wait and the raw codec (stream), a service call
// to an echo provider (ping-pong); local discovery, one transport allowed at a time.
#include <unistd.h>

#include <asio/co_spawn.hpp>
#include <asio/use_awaitable.hpp>
#include <asio/use_future.hpp>
#include <atomic>
#include <chrono>
#include <cstdio>
#include <memory>
#include <meshy/codecs/raw.hpp>
#include <meshy/node.hpp>
#include <optional>
#include <string>
#include <thread>
#include <vector>

#include "common.hpp"

namespace peer_compare {
namespace {

int domain_counter = 0;

meshy::NodeOptions meshy_options(bool tcp, const std::string& name, const std::string& domain) {
    meshy::NodeOptions o;
    o.name = name;
    o.domain_id = domain;
    o.allow_unix = !tcp;
    o.allow_tcp = tcp;
    o.listen_host = "127.0.0.1";
    o.discovery = meshy::DiscoveryMode::local;
    o.codec = meshy::CodecId::raw;
    o.outbox_full = meshy::OutboxFull::wait;
    return o;
}

meshy::NodeOptions meshy_options(bool tcp, const std::string& name, const std::string& domain, std::size_t size) {
    auto o = meshy_options(tcp, name, domain);
    if (size >= 64 * 1024) {
        o.outbox_capacity = 64;  // a full default outbox of 1 MB messages would be 1 GB
    }
    return o;
}

/// meshy: a service call to an echo provider in the child, which serves until the done pipe says so
/// (or closes, when the parent is gone).
class MeshyPingPong final : public PingPongSession {
public:
    MeshyPingPong(bool tcp, std::size_t size)
        : domain_("peer-compare-" + std::to_string(::getpid()) + "-" + std::to_string(++domain_counter)),
          payload_(size, 0x5a),
          child_([this, tcp] { serve(tcp); }) {
        ready_.close_writer();
        done_.close_reader();
        parent_only_fds.push_back(done_.fds[1]);
        ready_.get();
        node_.emplace(meshy_options(tcp, "caller", domain_));
        try {
            node_->wait_for_service_provider_blocking("echo", std::chrono::seconds(10));
        } catch (const std::exception& e) {
            std::fprintf(stderr, "peer_compare: no echo provider: %s\n", e.what());
            budget_.fail();
        }
        std::vector<double> ignored;
        round_trips(warm_up, warm_up, ignored);
    }
    ~MeshyPingPong() {
        if (node_) {
            node_->stop();
            node_.reset();
        }
        forget_parent_fd(done_.fds[1]);
        done_.put("done");  // the provider stops; child_ reaps it
    }
    MeshyPingPong(const MeshyPingPong&) = delete;
    MeshyPingPong& operator=(const MeshyPingPong&) = delete;

    /// Takes `count` round trips and records all but the first `skip` in `rtt_ns`. The calls run as
    /// a coroutine on the node's executor (meshy's own API; the _blocking form adds a hand-over to
    /// the calling thread and back per call), one coroutine per slice.
    void round_trips(std::size_t count, std::size_t skip, std::vector<double>& rtt_ns) override {
        const meshy::CallOptions call{.timeout = std::chrono::seconds(5)};
        auto loop = [&]() -> asio::awaitable<void> {
            const auto start = Clock::now();
            for (std::size_t i = 0; i < count && budget_.left(start); ++i) {
                const auto t0 = Clock::now();
                meshy::Buffer request;
                request.append(payload_.data(), payload_.size());
                meshy::RawPayload reply;
                try {
                    reply = co_await node_->call_raw("echo", meshy::CodecId::raw, std::move(request), call);
                } catch (const std::exception& e) {
                    std::fprintf(stderr, "peer_compare: echo failed: %s\n", e.what());
                    budget_.fail();
                    break;
                }
                if (reply.bytes.size() != payload_.size()) {
                    std::fprintf(stderr, "peer_compare: echo replied %zu bytes\n", reply.bytes.size());
                    budget_.fail();
                    break;
                }
                if (i >= skip) {
                    rtt_ns.push_back(ns_since(t0));
                }
            }
            budget_.charge(start);
        };
        asio::co_spawn(node_->get_executor(), loop(), asio::use_future).get();
    }

private:
    void serve(bool tcp) {
        ready_.close_reader();
        done_.close_writer();  // so that a parent that dies is EOF here
        meshy::Node node(meshy_options(tcp, "provider", domain_));
        node.add_service_raw("echo", [](const meshy::RawMessage& m) {
            meshy::RawPayload reply;
            reply.codec = m.codec;
            reply.bytes.append(m.payload.data(), m.payload.size());
            return reply;
        });
        ready_.put("ok");
        done_.wait(serve_limit);
        node.stop();
    }

    std::string domain_;
    Payload payload_;
    EndpointPipe ready_, done_;
    Budget budget_;
    ServerChild child_;
    std::optional<meshy::Node> node_;  // the caller, started once the provider is
};

}  // namespace

StreamResult meshy_stream(bool tcp, std::size_t size, std::size_t count) {
    const std::string domain = "peer-compare-" + std::to_string(::getpid()) + "-" + std::to_string(++domain_counter);
    EndpointPipe ready;
    return with_child<StreamResult>(
        [&] {
            StreamResult res;
            std::atomic<std::size_t> got{0};
            Clock::time_point first{}, last{};
            {
                meshy::Node node(meshy_options(tcp, "receiver", domain));
                node.listen_raw("stream", [&](const meshy::RawMessage&) {
                    // Like the other receivers: the clock is read at the first and the last message
                    // (and every 1024th, in case some never come).
                    const auto n = got.load(std::memory_order_relaxed) + 1;
                    if (n == 1) {
                        first = Clock::now();
                    }
                    if (n == count || (n & 1023) == 0) {
                        last = Clock::now();
                    }
                    got.store(n, std::memory_order_release);
                });
                ready.put("ok");
                const auto deadline = Clock::now() + time_limit;
                std::size_t seen = 0;
                auto quiet_since = Clock::now();
                while (got.load(std::memory_order_acquire) < count && Clock::now() < deadline) {
                    std::this_thread::sleep_for(std::chrono::milliseconds(1));
                    const auto now = got.load(std::memory_order_acquire);
                    if (now != seen) {
                        seen = now;
                        quiet_since = Clock::now();
                    } else if (seen > 0 && Clock::now() - quiet_since > std::chrono::seconds(2)) {
                        break;  // the sender is done and some were lost
                    }
                }
                node.stop();
            }
            res.count = static_cast<double>(got.load());
            res.seconds = std::chrono::duration<double>(last - first).count();
            return res;
        },
        [&] {
            ready.get();
            meshy::Node node(meshy_options(tcp, "sender", domain, size));
            node.wait_for_listener_blocking("stream", std::chrono::seconds(10));
            const Payload payload(size, 0x5a);
            const auto deadline = Clock::now() + time_limit;
            for (std::size_t i = 0; i < count; ++i) {
                node.send_blocking<meshy::RawCodec>("stream", payload);
                if ((i & 255) == 0 && Clock::now() > deadline) {
                    break;
                }
            }
            // Let the outbox drain before the node closes (stop() sends what is queued first).
            node.stop();
        });
}

std::unique_ptr<PingPongSession> meshy_pingpong(bool tcp, std::size_t size) {
    return std::make_unique<MeshyPingPong>(tcp, size);
}

}  // namespace peer_compare
