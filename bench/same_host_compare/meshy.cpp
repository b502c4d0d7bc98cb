// bench/same_host_compare, meshy: nodes with Unix sockets only, upgraded to shared memory. A service
// call to an echo provider (ping-pong); send of a filled buffer and loan -> fill -> send_loaned
// (one-way), the listener reading the payload where its callback gets it.
#include <asio/co_spawn.hpp>
#include <asio/use_future.hpp>
#include <chrono>
#include <cstdio>
#include <memory>
#include <meshy/codecs/raw.hpp>
#include <meshy/node.hpp>
#include <optional>
#include <string>
#include <vector>

#include "common.hpp"
#include "one_way.hpp"

namespace same_host {
namespace {

/// The same-host link: Unix sockets only (no TCP), upgraded to shared memory.
meshy::NodeOptions meshy_options(const std::string& name, const std::string& domain, std::size_t size = 0) {
    meshy::NodeOptions o;
    o.name = name;
    o.domain_id = domain;
    o.allow_unix = true;
    o.allow_tcp = false;
    o.allow_shm = true;
    o.listen_host = "127.0.0.1";
    o.discovery = meshy::DiscoveryMode::local;
    o.codec = meshy::CodecId::raw;
    o.outbox_full = meshy::OutboxFull::wait;
    if (size >= 64 * 1024) {
        o.outbox_capacity = 8;  // a full default outbox of 8 MB messages would be 8 GB
        // The loan pool holds as many messages as iceoryx lets be in flight (its subscriber queue of
        // 4, the chunk the publisher fills, the one the subscriber reads): a sender that runs further
        // ahead spreads its messages over more memory than the caches hold (a stream of 1 MB loans
        // through 64 blocks moved at less than half the rate of one through 4).
        o.shm_pool_bytes = (size + 4095) / 4096 * 4096 * 6;
    }
    return o;
}

/// How `node` reaches its peers: "shm" when the link was upgraded.
std::string meshy_link(const meshy::Node& node) {
    for (const auto& n : node.nodes()) {
        if (!n.is_self && !n.transport.empty()) {
            return n.transport;
        }
    }
    return "none";
}

/// A service call to an echo provider in a child, which serves until told to stop.
class MeshyPingPong final : public PingPongSession {
public:
    explicit MeshyPingPong(std::size_t size)
        : domain_(unique_name("calls")), payload_(size, 0x5a), child_([this] { serve(); }) {
        ready_.close_writer();
        done_.close_reader();
        char ok = 0;
        if (!ready_.get(ok, std::chrono::seconds(10))) {
            budget_.fail("meshy: the echo provider did not start");
            return;
        }
        node_.emplace(meshy_options("caller", domain_));
        try {
            node_->wait_for_service_provider_blocking("echo", std::chrono::seconds(10));
        } catch (const std::exception& e) {
            budget_.fail(std::string("meshy: no echo provider: ") + e.what());
        }
        std::vector<double> ignored;
        round_trips(warm_up, warm_up, ignored);
        meshy_link_seen = meshy_link(*node_);
    }
    ~MeshyPingPong() {
        if (node_) {
            node_->stop();
            node_.reset();
        }
        done_.put('x');
    }
    MeshyPingPong(const MeshyPingPong&) = delete;
    MeshyPingPong& operator=(const MeshyPingPong&) = delete;

    /// The calls run as a coroutine on the node's executor (meshy's own API; call_blocking adds a
    /// hand-over to the calling thread and back per call).
    void round_trips(std::size_t count, std::size_t skip, std::vector<double>& rtt_ns) override {
        if (!budget_.ok()) {
            return;
        }
        const meshy::CallOptions call{.timeout = std::chrono::seconds(5)};
        auto loop = [&]() -> asio::awaitable<void> {
            const auto start = Clock::now();
            for (std::size_t i = 0; i < count && Clock::now() - start < budget_.left(); ++i) {
                const auto t0 = Clock::now();
                meshy::Buffer request;
                request.append(payload_.data(), payload_.size());
                meshy::RawPayload reply;
                try {
                    reply = co_await node_->call_raw("echo", meshy::CodecId::raw, std::move(request), call);
                } catch (const std::exception& e) {
                    budget_.fail(std::string("meshy: echo failed: ") + e.what());
                    break;
                }
                if (reply.bytes.size() != payload_.size()) {
                    budget_.fail("meshy: echo replied " + std::to_string(reply.bytes.size()) + " bytes");
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
    void serve() {
        ready_.close_reader();
        done_.close_writer();
        meshy::Node node(meshy_options("provider", domain_));
        node.add_service_raw("echo", [](const meshy::RawMessage& m) {
            meshy::RawPayload reply;
            reply.codec = m.codec;
            reply.bytes.append(m.payload.data(), m.payload.size());
            return reply;
        });
        ready_.put('k');
        char stop = 0;
        done_.get(stop, serve_limit);
        node.stop();
    }

    std::string domain_;
    std::vector<std::uint8_t> payload_;
    Pipe ready_, done_;
    Budget budget_;
    Child child_;
    std::optional<meshy::Node> node_;  // the caller, started once the provider is
};

/// A buffer of the sender's own, copied by send.
class MeshyCopySource {
public:
    MeshyCopySource(meshy::Node& node, std::size_t size) : node_(node), buffer_(size) {}
    std::uint8_t* acquire() { return buffer_.data(); }
    bool publish(std::uint8_t*) {
        try {
            node_.send_blocking<meshy::RawCodec>("oneway", buffer_);  // waits while the outbox is full
        } catch (const std::exception& e) {
            std::fprintf(stderr, "same_host_compare: meshy send: %s\n", e.what());
            return false;
        }
        return true;
    }
    /// Links are set up on the first message and upgraded to shared memory right after.
    std::string link() const { return meshy_link(node_); }

private:
    meshy::Node& node_;
    std::vector<std::uint8_t> buffer_;
};

/// A loan from the node's shared-memory pool, filled in place and lent to the listener, which
/// reads it where it lies (docs/shm.md, "Loans"): iceoryx's way.
class MeshyLoanSource {
public:
    MeshyLoanSource(meshy::Node& node, std::size_t size) : node_(node), size_(size) {}
    std::uint8_t* acquire() {
        try {
            loan_ = node_.loan_blocking("oneway", size_);  // waits while the listener holds every block
        } catch (const std::exception& e) {
            std::fprintf(stderr, "same_host_compare: meshy loan: %s\n", e.what());
            return nullptr;
        }
        return reinterpret_cast<std::uint8_t*>(loan_.bytes().data());
    }
    bool publish(std::uint8_t*) {
        try {
            node_.send_loaned_blocking(std::move(loan_));
        } catch (const std::exception& e) {
            std::fprintf(stderr, "same_host_compare: meshy send_loaned: %s\n", e.what());
            return false;
        }
        return true;
    }
    std::string link() const { return meshy_link(node_); }

private:
    meshy::Node& node_;
    std::size_t size_;
    meshy::Loan loan_;
};

}  // namespace

std::unique_ptr<PingPongSession> meshy_pingpong(std::size_t size) {
    return std::make_unique<MeshyPingPong>(size);
}

std::unique_ptr<OneWaySession> meshy_session(std::size_t size, bool loans) {
    const std::string domain = unique_name("oneway");
    auto receive = [domain, size](Pipe& acks, Pipe& ready, Pipe& done) {
        Receiver receiver(acks);
        meshy::Node node(meshy_options("receiver", domain, size));
        node.listen_raw("oneway", [&](const meshy::RawMessage& m) {
            receiver.on_message(reinterpret_cast<const std::uint8_t*>(m.payload.data()), m.payload.size());
        });
        ready.put('k');
        char stop = 0;
        done.get(stop, serve_limit);
        node.stop();
    };
    auto send = [domain, size, loans](Pipe& commands, Pipe& replies, Pipe& acks, Pipe& ready) {
        meshy::Node node(meshy_options("sender", domain, size));
        try {
            node.wait_for_listener_blocking("oneway", std::chrono::seconds(10));
        } catch (const std::exception& e) {
            std::fprintf(stderr, "same_host_compare: meshy: no listener: %s\n", e.what());
            return;
        }
        ready.put('k');
        if (loans) {
            MeshyLoanSource source(node, size);
            sender_loop(source, size, commands, replies, acks);
        } else {
            MeshyCopySource source(node, size);
            sender_loop(source, size, commands, replies, acks);
        }
        node.stop();
    };
    return std::make_unique<OneWaySession>(loans ? "meshy loans" : "meshy", receive, send, false);
}

}  // namespace same_host
