// bench/peer_compare, ZeroMQ: driven as libzmq's own perf tools drive it. XPUB (ZMQ_XPUB_NODROP) to SUB
// for the stream, REQ/REP for the ping-pong; ipc:// for Unix sockets, tcp:// over loopback.
#include <unistd.h>
#include <zmq.h>

#include <cerrno>
#include <memory>
#include <string>
#include <vector>

#include "common.hpp"

namespace peer_compare {
namespace {

/// The ipc socket file of this (bound) process; libzmq leaves it behind, so the binder removes it.
std::string zmq_ipc_path() {
    return "/tmp/meshy-peer-compare-" + std::to_string(::getpid());
}

std::string zmq_endpoint(bool tcp) {
    return tcp ? std::string("tcp://127.0.0.1:*") : "ipc://" + zmq_ipc_path();
}

/// Closes a bound socket and its context, and removes the ipc socket file if there is one.
void zmq_close_bound(void* ctx, void* socket, bool tcp) {
    zmq_close(socket);
    zmq_ctx_term(ctx);
    if (!tcp) {
        ::unlink(zmq_ipc_path().c_str());
    }
}

/// The endpoint a bound socket got, sent to the other process through a pipe.
std::string last_endpoint(void* socket) {
    char text[256] = {};
    std::size_t len = sizeof text;
    zmq_getsockopt(socket, ZMQ_LAST_ENDPOINT, text, &len);
    return text;
}

/// ZeroMQ: REQ/REP; the REP child echoes until a two-part message (every payload is one part, so no
/// --sizes can be mistaken for it).
class ZmqPingPong final : public PingPongSession {
public:
    ZmqPingPong(bool tcp, std::size_t size, std::size_t serve_count)
        : payload_(size, 0x5a),
          child_([this, tcp, serve_count, parent = ::getpid()] { serve(tcp, serve_count, parent); }) {
        endpoint_.close_writer();  // a child that fails before it binds is EOF, not a hang
        ctx_ = zmq_ctx_new();
        req_ = zmq_socket(ctx_, ZMQ_REQ);
        const int timeout_ms = 5000, linger = 0;
        zmq_setsockopt(req_, ZMQ_RCVTIMEO, &timeout_ms, sizeof timeout_ms);
        zmq_setsockopt(req_, ZMQ_LINGER, &linger, sizeof linger);
        zmq_connect(req_, endpoint_.get().c_str());
        zmq_msg_init(&reply_);
        std::vector<double> ignored;
        round_trips(warm_up, warm_up, ignored);
    }
    ~ZmqPingPong() {
        const int linger = 1000;  // time to deliver the stop message
        zmq_setsockopt(req_, ZMQ_LINGER, &linger, sizeof linger);
        const bool told = budget_.ok() && zmq_send(req_, "bye", 3, ZMQ_SNDMORE) == 3 && zmq_send(req_, "", 0, 0) == 0;
        zmq_msg_close(&reply_);
        zmq_close(req_);
        zmq_ctx_term(ctx_);
        if (!told) {
            child_.kill();  // a REQ socket whose reply timed out cannot send again
        }
    }
    ZmqPingPong(const ZmqPingPong&) = delete;
    ZmqPingPong& operator=(const ZmqPingPong&) = delete;

    /// Takes `count` round trips and records all but the first `skip` in `rtt_ns`.
    void round_trips(std::size_t count, std::size_t skip, std::vector<double>& rtt_ns) override {
        timed_round_trips(budget_, count, skip, rtt_ns, [this] {
            return zmq_send(req_, payload_.data(), payload_.size(), 0) >= 0 && zmq_msg_recv(&reply_, req_, 0) >= 0;
        });
    }

private:
    void serve(bool tcp, std::size_t serve_count, pid_t parent) {
        void* ctx = zmq_ctx_new();
        void* rep = zmq_socket(ctx, ZMQ_REP);
        const int timeout_ms = 2000;
        zmq_setsockopt(rep, ZMQ_RCVTIMEO, &timeout_ms, sizeof timeout_ms);
        if (zmq_bind(rep, zmq_endpoint(tcp).c_str()) != 0) {
            die("zmq_bind");
        }
        endpoint_.put(last_endpoint(rep));
        zmq_msg_t msg;
        zmq_msg_init(&msg);
        const auto deadline = Clock::now() + serve_limit;
        for (std::size_t i = 0; i <= serve_count && Clock::now() < deadline;) {  // and the stop message
            if (zmq_msg_recv(&msg, rep, 0) < 0) {
                // The receive timeout is a safety: idle while the other peers take their
                // slices, the child goes on as long as its parent lives.
                if ((errno == EAGAIN || errno == EINTR) && ::getppid() == parent) {
                    continue;
                }
                break;
            }
            if (zmq_msg_more(&msg) || zmq_msg_send(&msg, rep, 0) < 0) {
                break;  // the stop message, or the parent is gone
            }
            ++i;
        }
        zmq_msg_close(&msg);
        zmq_close_bound(ctx, rep, tcp);
    }

    EndpointPipe endpoint_;
    Payload payload_;
    void* ctx_ = nullptr;
    void* req_ = nullptr;
    zmq_msg_t reply_;
    Budget budget_;
    ServerChild child_;
};

}  // namespace

/// Driven as libzmq's perf/local_thr and remote_thr drive it: the receiver binds and the sender
/// connects and sends without pause, each with a context of one I/O thread; the receiver times the
/// first to the last message. PUB/SUB made lossless (XPUB with ZMQ_XPUB_NODROP: a send at the
/// high-water mark fails with EAGAIN instead of dropping, and the sender waits for room), as
/// meshy's stream with OutboxFull::wait is. (With the sender bound and the receiver connected,
/// libzmq 4.3.4 lost 0-17% of 200,000 messages over ipc:// here, with no EAGAIN at the sender.)
StreamResult zmq_stream(bool tcp, std::size_t size, std::size_t count) {
    EndpointPipe endpoint;
    return with_child<StreamResult>(
        [&] {
            endpoint.close_reader();
            void* ctx = zmq_ctx_new();
            void* sub = zmq_socket(ctx, ZMQ_SUB);
            const int timeout_ms = 2000;
            zmq_setsockopt(sub, ZMQ_RCVTIMEO, &timeout_ms, sizeof timeout_ms);
            zmq_setsockopt(sub, ZMQ_SUBSCRIBE, "", 0);
            if (zmq_bind(sub, zmq_endpoint(tcp).c_str()) != 0) {
                die("zmq_bind");
            }
            endpoint.put(last_endpoint(sub));
            StreamResult res;
            Clock::time_point first{}, last{};
            std::size_t got = 0;
            zmq_msg_t msg;
            zmq_msg_init(&msg);
            const auto deadline = Clock::now() + time_limit;
            while (got < count && Clock::now() < deadline) {
                if (zmq_msg_recv(&msg, sub, 0) < 0) {
                    if (errno == EINTR) {
                        continue;
                    }
                    break;
                }
                last = Clock::now();
                if (got++ == 0) {
                    first = last;
                }
            }
            zmq_msg_close(&msg);
            // First to last message: a session that lost messages must not count the receive
            // timeout that ended it.
            res.count = static_cast<double>(got);
            res.seconds = std::chrono::duration<double>(last - first).count();
            zmq_close_bound(ctx, sub, tcp);
            return res;
        },
        [&] {
            void* ctx = zmq_ctx_new();
            void* pub = zmq_socket(ctx, ZMQ_XPUB);
            const int one = 1, linger = 1000, timeout_ms = 5000;
            zmq_setsockopt(pub, ZMQ_XPUB_NODROP, &one, sizeof one);
            zmq_setsockopt(pub, ZMQ_LINGER, &linger, sizeof linger);
            zmq_setsockopt(pub, ZMQ_RCVTIMEO, &timeout_ms, sizeof timeout_ms);
            endpoint.close_writer();
            zmq_connect(pub, endpoint.get().c_str());
            char subscription[16];
            zmq_recv(pub, subscription, sizeof subscription, 0);  // the subscriber is in
            const Payload payload(size, 0x5a);
            const auto deadline = Clock::now() + time_limit;
            bool failed = false;
            for (std::size_t i = 0; i < count && !failed && Clock::now() < deadline; ++i) {
                while (zmq_send(pub, payload.data(), size, 0) < 0) {
                    if (errno == EAGAIN && Clock::now() < deadline) {
                        zmq_pollitem_t item{pub, 0, ZMQ_POLLOUT, 0};
                        zmq_poll(&item, 1, 100);
                    } else if (errno != EINTR) {
                        failed = true;
                        break;
                    }
                }
            }
            // Closed once the receiver is done (its exit closes the pipe), as remote_thr's user
            // would: closing at once lost the last messages over ipc:// (up to 8%), linger or not.
            endpoint.wait(time_limit);
            zmq_close(pub);
            zmq_ctx_term(ctx);
        });
}

std::unique_ptr<PingPongSession> zmq_pingpong(bool tcp, std::size_t size, std::size_t serve_count) {
    return std::make_unique<ZmqPingPong>(tcp, size, serve_count);
}

}  // namespace peer_compare
