// bench/same_host_compare, the one-way workload: what the sender stamps and the receiver reads, and
// both ends' loops, the same for every peer (a peer only says how it gets a message out and where
// the receiver finds it). A session is a receiver and a sender, each in a child; the main process
// sends it commands.
#pragma once

#include <algorithm>
#include <atomic>
#include <chrono>
#include <cstdint>
#include <cstdio>
#include <cstring>
#include <functional>
#include <string>
#include <vector>

#include "common.hpp"

namespace same_host {

inline constexpr std::uint64_t iceoryx_chunks = 16;                // in the pool of each message size
inline constexpr std::size_t warm_up_stream = iceoryx_chunks + 4;  // messages streamed per session, not recorded

enum class Kind : std::uint32_t { latency = 1, stream = 2 };

/// The first bytes of every one-way message.
struct Header {
    std::int64_t sent_ns = 0;  // the sender's clock once the message is filled, just before it goes
    Kind kind = Kind::latency;
    std::uint32_t index = 0;  // in its stream
    std::uint32_t count = 0;  // of its stream
};

/// The receiver's answer, through a pipe (not through the peer under test): one per latency
/// message, one at the end of a stream.
struct Ack {
    std::int64_t ns = 0;         // latency: stamp to read; stream: first to last message read
    std::uint64_t received = 0;  // messages of the stream received
};

/// Fills a message as a producer would: every byte written.
inline void fill(std::uint8_t* data, std::size_t size, std::uint32_t index) {
    std::memset(data, static_cast<int>(index & 0xff), size);
}

inline std::atomic<std::uint64_t> read_sink{0};

/// Reads every byte of a message in place, as a consumer would (8 at a time).
inline std::uint64_t read_all(const std::uint8_t* data, std::size_t size) {
    std::uint64_t sum = 0;
    std::size_t i = 0;
    for (; i + 8 <= size; i += 8) {
        std::uint64_t word;
        std::memcpy(&word, data + i, 8);
        sum += word;
    }
    for (; i < size; ++i) {
        sum += data[i];
    }
    return sum;
}

/// The receiving end's logic, the same for every peer: called with the message where the peer
/// holds it.
class Receiver {
public:
    explicit Receiver(Pipe& acks) : acks_(acks) {}
    void on_message(const std::uint8_t* data, std::size_t size) {
        if (size < sizeof(Header)) {
            return;
        }
        Header h;
        std::memcpy(&h, data, sizeof h);
        read_sink.fetch_add(read_all(data, size), std::memory_order_relaxed);
        const std::int64_t t = now_ns();
        if (h.kind == Kind::latency) {
            acks_.put(Ack{t - h.sent_ns, 1});
            return;
        }
        if (h.index == 0) {
            first_ns_ = t;
            received_ = 0;
        }
        ++received_;
        in_stream_ = h.index + 1 < h.count;
        if (!in_stream_) {
            acks_.put(Ack{t - first_ns_, received_});
        }
    }
    /// Whether more messages of a stream are due (else the next is a latency message, or none).
    bool in_stream() const { return in_stream_; }

private:
    bool in_stream_ = false;
    Pipe& acks_;
    std::int64_t first_ns_ = 0;
    std::uint64_t received_ = 0;
};

/// What the main process asks of a sender, and what it answers.
struct Command {
    enum Op : std::uint32_t { latency, stream, finish } op = finish;
    std::uint32_t count = 0, skip = 0;
};
struct Reply {
    bool ok = false;
    char link[16] = {};                          // how the sender reaches the receiver (meshy: "shm" once upgraded)
    double seconds = 0, received = 0;            // stream
    double p50_us = 0, p99_us = 0, samples = 0;  // finish: the latencies of all latency commands
};

/// The sending end's loop, the same for every peer. `Source` is how the peer gets a message out:
/// `std::uint8_t* acquire()` (a loan, or a buffer of its own), `bool publish(std::uint8_t*)` and
/// `std::string link()`. Each message is filled, stamped, published.
template <class Source>
void sender_loop(Source& source, std::size_t size, Pipe& commands, Pipe& replies, Pipe& acks) {
    std::vector<double> latencies;
    auto send = [&](Kind kind, std::uint32_t index, std::uint32_t count) {
        std::uint8_t* data = source.acquire();
        if (!data) {
            return false;
        }
        fill(data, size, index);
        const Header h{now_ns(), kind, index, count};
        std::memcpy(data, &h, sizeof h);
        return source.publish(data);
    };
    for (;;) {
        Command c;
        if (!commands.get(c, serve_limit)) {
            return;
        }
        Reply r;
        std::snprintf(r.link, sizeof r.link, "%s", source.link().c_str());
        if (c.op == Command::finish) {
            auto l = summarize(latencies);
            r.ok = true;
            r.p50_us = l.p50_us;
            r.p99_us = l.p99_us;
            r.samples = l.count;
            replies.put(r);
            return;
        }
        r.ok = true;
        if (c.op == Command::latency) {
            for (std::uint32_t i = 0; i < c.count && r.ok; ++i) {
                Ack a;
                r.ok = send(Kind::latency, i, c.count) && acks.get(a, std::chrono::seconds(5));
                if (r.ok && i >= c.skip) {
                    latencies.push_back(static_cast<double>(a.ns));
                }
            }
        } else {
            for (std::uint32_t i = 0; i < c.count && r.ok; ++i) {
                r.ok = send(Kind::stream, i, c.count);
            }
            Ack a;
            r.ok = r.ok && acks.get(a, time_limit);
            r.seconds = static_cast<double>(a.ns) / 1e9;
            r.received = static_cast<double>(a.received);
        }
        replies.put(r);
        if (!r.ok) {
            return;
        }
    }
}

/// A one-way session: a receiver and a sender, each in a child; the main process sends commands.
class OneWaySession {
public:
    /// `receive(acks, ready, done)` and `send(commands, replies, acks, ready)` run in the children.
    OneWaySession(std::string name,
                  const std::function<void(Pipe&, Pipe&, Pipe&)>& receive,
                  const std::function<void(Pipe&, Pipe&, Pipe&, Pipe&)>& send,
                  bool exit_handlers)
        : name_(std::move(name)),
          receiver_(
              [&] {
                  commands_.close_reader();
                  commands_.close_writer();
                  replies_.close_reader();
                  replies_.close_writer();
                  acks_.close_reader();
                  receiver_ready_.close_reader();
                  sender_ready_.close_reader();
                  sender_ready_.close_writer();
                  done_.close_writer();
                  receive(acks_, receiver_ready_, done_);
              },
              exit_handlers),
          sender_(
              [&] {
                  commands_.close_writer();
                  replies_.close_reader();
                  acks_.close_writer();
                  receiver_ready_.close_writer();
                  sender_ready_.close_reader();
                  done_.close_reader();
                  done_.close_writer();
                  char ok = 0;
                  if (!receiver_ready_.get(ok, std::chrono::seconds(10))) {
                      return;
                  }
                  send(commands_, replies_, acks_, sender_ready_);
              },
              exit_handlers) {
        acks_.close_reader();
        acks_.close_writer();
        receiver_ready_.close_reader();
        receiver_ready_.close_writer();
        sender_ready_.close_writer();
        done_.close_reader();
        commands_.close_reader();
        replies_.close_writer();
        char ok = 0;
        if (!sender_ready_.get(ok, std::chrono::seconds(20))) {
            budget_.fail(name_ + ": the sender and receiver did not connect");
            return;
        }
        // Warm-up: a few latency messages and a stream long enough to go through every chunk of
        // iceoryx's pool (its free list hands them out in turn), so that no measurement pays for
        // the first touch of a page of shared memory (8 MB: 2,048 page faults on each side).
        Reply r;
        if (!ask({Command::latency, static_cast<std::uint32_t>(warm_up), static_cast<std::uint32_t>(warm_up)}, r) ||
            !ask({Command::stream, static_cast<std::uint32_t>(warm_up_stream), 0}, r)) {
            budget_.fail(name_ + ": warm-up failed");
        }
        link_ = r.link;
    }
    ~OneWaySession() {
        if (!finished_) {
            commands_.put(Command{Command::finish, 0, 0});  // a sender that failed has gone already
        }
        done_.put('x');
    }
    OneWaySession(const OneWaySession&) = delete;
    OneWaySession& operator=(const OneWaySession&) = delete;

    void latency(std::uint32_t count, std::uint32_t skip) {
        Reply r;
        if (budget_.ok() && !ask({Command::latency, count, skip}, r)) {
            budget_.fail(name_ + ": latency messages failed");
        }
    }
    /// A stream of `count` messages; adds what the receiver timed to the totals.
    void stream(std::uint32_t count) {
        Reply r;
        if (!budget_.ok()) {
            return;
        }
        if (!ask({Command::stream, count, 0}, r)) {
            budget_.fail(name_ + ": a stream failed");
            return;
        }
        if (r.seconds > 0) {
            counted_ += r.received - 1;  // the first message of a stream starts its clock
            seconds_ += r.seconds;
        }
        received_ += r.received;
        sent_ += count;
    }
    /// Ends the session: the latencies, and the stream's messages/s.
    Latency finish(double& rate, double& received, double& sent) {
        Reply r;
        Latency l;
        // A sender that failed has gone (or is stuck): nothing to ask.
        if (!budget_.failed() && commands_.put(Command{Command::finish, 0, 0}) &&
            replies_.get(r, std::chrono::seconds(10)) && r.ok) {
            l = {r.p50_us, r.p99_us, r.samples};
        }
        finished_ = true;
        rate = seconds_ > 0 ? counted_ / seconds_ : 0;
        received = received_;
        sent = sent_;
        return l;
    }
    const std::string& link() const { return link_; }

private:
    bool ask(const Command& c, Reply& r) {
        const auto start = Clock::now();
        const bool ok = commands_.put(c) && replies_.get(r, budget_.left() + std::chrono::seconds(5)) && r.ok;
        budget_.charge(start);
        return ok;
    }

    std::string name_, link_;
    Pipe commands_, replies_, acks_, receiver_ready_, sender_ready_, done_;
    Budget budget_;
    double counted_ = 0, seconds_ = 0, received_ = 0, sent_ = 0;
    bool finished_ = false;
    Child receiver_, sender_;
};

}  // namespace same_host
