// bench/same_host_compare, Cyclone DDS: the ping-pong as `ddsperf ping` / `ddsperf pong` do it, on
// its C API: its default topic's shape, reliable, KEEP_LAST 1, a listener on each side that takes the
// sample and writes the next one from the callback; on loopback only.
#include <dds/dds.h>

#include <chrono>
#include <condition_variable>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <vector>

#include "common.hpp"
#include "same_host_types.h"

namespace same_host {

/// Loopback only: the `lo` interface, no multicast, discovery by unicast to 127.0.0.1 (which needs
/// participant indices: ports a peer can guess). Set as CYCLONEDDS_URI before any participant.
extern const char* const cyclone_config =
    "<CycloneDDS><Domain id=\"any\"><General><Interfaces><NetworkInterface name=\"lo\"/></Interfaces>"
    "<AllowMulticast>false</AllowMulticast></General><Discovery><ParticipantIndex>auto</ParticipantIndex>"
    "<MaxAutoParticipantIndex>32</MaxAutoParticipantIndex><Peers><Peer address=\"127.0.0.1\"/></Peers>"
    "</Discovery><Tracing><Verbosity>warning</Verbosity><OutputFile>stderr</OutputFile></Tracing></Domain></"
    "CycloneDDS>";

namespace {

dds_domainid_t cyclone_domain() {
    return static_cast<dds_domainid_t>(1 + main_pid % 200);  // apart from other runs (0: the default)
}

/// ddsperf's ping-pong QoS: reliable, KEEP_LAST 1.
dds_qos_t* cyclone_qos() {
    dds_qos_t* q = dds_create_qos();
    dds_qset_reliability(q, DDS_RELIABILITY_RELIABLE, DDS_SECS(10));
    dds_qset_history(q, DDS_HISTORY_KEEP_LAST, 1);
    return q;
}

/// A participant with the ping and pong topics; deleting it deletes everything under it.
struct CycloneParticipant {
    dds_entity_t participant = 0, ping = 0, pong = 0;
    CycloneParticipant(const std::string& ping_name, const std::string& pong_name) {
        participant = dds_create_participant(cyclone_domain(), nullptr, nullptr);
        if (participant < 0) {
            die(std::string("dds_create_participant: ") + dds_strretcode(participant));
        }
        dds_qos_t* q = cyclone_qos();
        ping = dds_create_topic(participant, &same_host_Sample_desc, ping_name.c_str(), q, nullptr);
        pong = dds_create_topic(participant, &same_host_Sample_desc, pong_name.c_str(), q, nullptr);
        dds_delete_qos(q);
        if (ping < 0 || pong < 0) {
            die("dds_create_topic failed");
        }
    }
    ~CycloneParticipant() { dds_delete(participant); }
    CycloneParticipant(const CycloneParticipant&) = delete;
    CycloneParticipant& operator=(const CycloneParticipant&) = delete;

    dds_entity_t writer(dds_entity_t topic) const {
        dds_qos_t* q = cyclone_qos();
        const dds_entity_t w = dds_create_writer(participant, topic, q, nullptr);
        dds_delete_qos(q);
        if (w < 0) {
            die(std::string("dds_create_writer: ") + dds_strretcode(w));
        }
        return w;
    }
    dds_entity_t reader(dds_entity_t topic, dds_on_data_available_fn on_data, void* arg) const {
        dds_qos_t* q = cyclone_qos();
        dds_listener_t* l = dds_create_listener(arg);
        dds_lset_data_available(l, on_data);
        const dds_entity_t r = dds_create_reader(participant, topic, q, l);
        dds_delete_listener(l);
        dds_delete_qos(q);
        if (r < 0) {
            die(std::string("dds_create_reader: ") + dds_strretcode(r));
        }
        return r;
    }
};

/// The pong side: each ping taken in the reader's listener is written back from there.
void cyclone_pong_on_data(dds_entity_t reader, void* arg) {
    const dds_entity_t writer = *static_cast<dds_entity_t*>(arg);
    void* samples[1] = {nullptr};
    dds_sample_info_t info[1];
    while (dds_take(reader, samples, info, 1, 1) > 0) {
        if (info[0].valid_data) {
            dds_write(writer, samples[0]);
        }
        dds_return_loan(reader, samples, 1);
    }
}

class CyclonePingPong final : public PingPongSession {
public:
    explicit CyclonePingPong(std::size_t size)
        : ping_name_(unique_name("ping")),
          pong_name_(unique_name("pong")),
          payload_(size, 0x5a),
          child_([this] { serve(); }) {
        ready_.close_writer();
        done_.close_reader();
        char ok = 0;
        if (!ready_.get(ok, std::chrono::seconds(10))) {
            budget_.fail("Cyclone DDS: the pong side did not start");
            return;
        }
        dds_.emplace(ping_name_, pong_name_);
        writer_ = dds_->writer(dds_->ping);
        reader_ = dds_->reader(dds_->pong, &CyclonePingPong::on_data, this);
        sample_.keyval = 0;
        sample_.baggage._buffer = payload_.data();
        sample_.baggage._length = sample_.baggage._maximum = static_cast<std::uint32_t>(size);
        sample_.baggage._release = false;
        connect();
    }
    ~CyclonePingPong() {
        dds_.reset();  // waits for a listener callback that runs
        done_.put('x');
    }
    CyclonePingPong(const CyclonePingPong&) = delete;
    CyclonePingPong& operator=(const CyclonePingPong&) = delete;

    /// Takes `count` round trips and records all but the first `skip` in `rtt_ns`: the listener
    /// writes the next ping when it takes a pong, as ddsperf's ping does; this thread waits.
    void round_trips(std::size_t count, std::size_t skip, std::vector<double>& rtt_ns) override {
        if (!budget_.ok() || count == 0) {
            return;
        }
        const auto start = Clock::now();
        std::unique_lock lock(mutex_);
        remaining_ = count;
        skip_ = skip;
        out_ = &rtt_ns;
        index_ = 0;
        send_ping();
        if (!done_cv_.wait_for(lock, budget_.left(), [this] { return remaining_ == 0; })) {
            remaining_ = 0;  // a pong still on its way is ignored
            budget_.fail("Cyclone DDS: round trips took longer than the time limit");
        }
        out_ = nullptr;
        budget_.charge(start);
    }

private:
    /// A sample written before the two sides have found each other is lost (volatile, reliable
    /// only towards matched readers): ping every 100 ms until a pong comes back, then warm up.
    void connect() {
        const auto deadline = Clock::now() + std::chrono::seconds(10);
        std::vector<double> ignored;
        std::unique_lock lock(mutex_);
        while (Clock::now() < deadline) {
            remaining_ = 1;
            skip_ = 1;
            out_ = &ignored;
            index_ = 0;
            send_ping();
            if (done_cv_.wait_for(lock, std::chrono::milliseconds(100), [this] { return remaining_ == 0; })) {
                lock.unlock();
                round_trips(warm_up, warm_up, ignored);
                return;
            }
        }
        remaining_ = 0;
        budget_.fail("Cyclone DDS: the two participants did not find each other within 10 s");
    }

    void send_ping() {
        sample_.seq = ++seq_;
        sent_ = Clock::now();
        dds_write(writer_, &sample_);
    }

    static void on_data(dds_entity_t reader, void* arg) { static_cast<CyclonePingPong*>(arg)->on_pong(reader); }

    void on_pong(dds_entity_t reader) {
        void* samples[1] = {nullptr};
        dds_sample_info_t info[1];
        while (dds_take(reader, samples, info, 1, 1) > 0) {
            const bool valid = info[0].valid_data;
            const auto seq = valid ? static_cast<const same_host_Sample*>(samples[0])->seq : 0;
            dds_return_loan(reader, samples, 1);
            std::lock_guard lock(mutex_);
            if (!valid || remaining_ == 0 || seq != seq_) {
                continue;  // a late pong of a slice that gave up, or of a retried first ping
            }
            const double rtt = ns_since(sent_);
            if (index_++ >= skip_ && out_) {
                out_->push_back(rtt);
            }
            if (--remaining_ > 0) {
                send_ping();
            } else {
                done_cv_.notify_one();
            }
        }
    }

    void serve() {
        ready_.close_reader();
        done_.close_writer();
        dds_entity_t writer = 0;  // outlives the participant, whose listener reads it
        {
            CycloneParticipant dds(ping_name_, pong_name_);
            writer = dds.writer(dds.pong);
            dds.reader(dds.ping, cyclone_pong_on_data, &writer);
            ready_.put('k');
            char stop = 0;
            done_.get(stop, serve_limit);
        }
    }

    std::string ping_name_, pong_name_;
    std::vector<std::uint8_t> payload_;
    Pipe ready_, done_;
    Budget budget_;
    Child child_;
    std::optional<CycloneParticipant> dds_;
    dds_entity_t writer_ = 0, reader_ = 0;
    same_host_Sample sample_{};
    std::mutex mutex_;
    std::condition_variable done_cv_;
    std::size_t remaining_ = 0, skip_ = 0, index_ = 0;
    std::uint32_t seq_ = 0;
    Clock::time_point sent_{};
    std::vector<double>* out_ = nullptr;
};

}  // namespace

std::unique_ptr<PingPongSession> cyclone_pingpong(std::size_t size) {
    return std::make_unique<CyclonePingPong>(size);
}

}  // namespace same_host
