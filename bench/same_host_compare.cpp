// Same-host peers: meshy against Cyclone DDS and iceoryx on one host, each peer driven the way its
// own project measures it, in one run and the same placement (issue 21). Prints Markdown tables,
// pinned (every process of a measurement on CPU 0, like `taskset -c 0`) and unpinned, the median
// of --runs runs (default 3).
//
// Workloads:
//  - ping-pong at 0 B and 1 kB, p50 and p99 of the round trip. Cyclone DDS as `ddsperf ping` /
//    `ddsperf pong` do it: its default topic's shape (a sequence number, a key, a sequence of
//    octets), reliable, KEEP_LAST 1, a listener on each side that takes the sample and writes the
//    next one from the callback (ddsperf's default trigger mode); on loopback only (the `lo`
//    interface, no multicast, unicast discovery to 127.0.0.1). meshy: a service call to an echo
//    provider over its same-host link (a Unix socket upgraded to shared memory, docs/shm.md).
//  - one-way at 1 MB and 8 MB: latency (p50/p99 of the time from the sender's stamp, written after
//    it filled the message, to the receiver having read the last byte in place) and throughput
//    (messages as fast as the transport takes them, losslessly, counted and timed at the
//    receiver). iceoryx through loans, as its iceperf does: the publisher loans a chunk, fills it
//    and publishes it; the subscriber takes it, reads it in place and releases it, polling take()
//    for a latency message (iceperf's mode) when it has a CPU of its own, else (and within a
//    stream) waiting in a WaitSet. meshy twice: the sender fills a buffer and sends it (a copy into
//    the ring), and through loans (loan_blocking, fill, send_loaned_blocking; the receiver reads
//    the sender's pool in place); the receiver reads the payload where the callback gets it. A
//    sender is a Source (acquire a buffer, publish it): one for copies, one for loans.
//    The receiver answers through a pipe (one record per latency message, one per stream), which
//    paces the latency messages and is not timed.
// Every peer's sessions are set up once per run and then take turns in slices (like
// bench/peer_compare): the host's speed drifts over seconds, and peers measured one after the
// other saw different hosts.
//
// The peers run in fork()ed children; every loop is bounded in count and time. RouDi (iceoryx's
// daemon, `iox-roudi`) is started here with a config that has pools for the large messages, and
// stopped at the end or on failure; children die with this process (PR_SET_PDEATHSIG). Traffic
// stays on loopback and in shared memory.
#include <dds/dds.h>
#include <dds/version.h>
#include <poll.h>
#include <pwd.h>
#include <sched.h>
#include <signal.h>
#include <sys/prctl.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <array>
#include <asio/co_spawn.hpp>
#include <asio/use_future.hpp>
#include <atomic>
#include <chrono>
#include <condition_variable>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <functional>
#include <iceoryx_hoofs/log/logmanager.hpp>
#include <iceoryx_posh/popo/untyped_publisher.hpp>
#include <iceoryx_posh/popo/untyped_subscriber.hpp>
#include <iceoryx_posh/popo/wait_set.hpp>
#include <iceoryx_posh/runtime/posh_runtime.hpp>
#include <iceoryx_versions.hpp>
#include <meshy/codecs/raw.hpp>
#include <meshy/log.hpp>
#include <meshy/node.hpp>
#include <mutex>
#include <optional>
#include <string>
#include <thread>
#include <vector>

#include "bench_stats.hpp"
#include "same_host_types.h"

namespace {

using namespace meshy_bench;

constexpr auto time_limit = std::chrono::seconds(20);  // per peer and workload, slices added up
constexpr auto serve_limit = 4 * time_limit;           // a child that is never told to stop
constexpr std::size_t warm_up = 10;                    // round trips or messages per session, not recorded

std::int64_t now_ns() {
    return std::chrono::duration_cast<std::chrono::nanoseconds>(Clock::now().time_since_epoch()).count();
}

// --- processes -----------------------------------------------------------------------------------
//
// The main process keeps the ids of its live children and of RouDi, so that a failure (an exit, or
// a signal) kills them and stops RouDi, which then removes its shared memory: nothing is left in
// /dev/shm. A child dies with the main process (PR_SET_PDEATHSIG), even after kill -9, and so
// does RouDi, which removes its shared memory on the SIGTERM it gets.

pid_t main_pid = 0;
std::array<std::atomic<pid_t>, 32> live_children{};  // 0: a free slot; read by the signal handler
std::atomic<pid_t> roudi_pid{0};
std::string roudi_config;  // the config file RouDi was started with, removed with it

void remember_child(pid_t pid) {
    for (auto& slot : live_children) {
        pid_t free = 0;
        if (slot.compare_exchange_strong(free, pid)) {
            return;
        }
    }
}

void forget_child(pid_t pid) {
    for (auto& slot : live_children) {
        pid_t p = pid;
        slot.compare_exchange_strong(p, 0);
    }
}

/// Waits for `pid` up to `limit` (async-signal-safe). @returns true once it is reaped; `status`
/// gets its wait status (-1 if another wait reaped it).
bool reap_within(pid_t pid, std::chrono::milliseconds limit, int* status = nullptr) {
    for (auto left = limit.count(); left >= 0; left -= 10) {
        int s = 0;
        const pid_t r = ::waitpid(pid, &s, WNOHANG);
        if (r == pid || (r < 0 && errno == ECHILD)) {
            if (status) {
                *status = r == pid ? s : -1;
            }
            return true;
        }
        const timespec ten_ms{0, 10'000'000};
        ::nanosleep(&ten_ms, nullptr);
    }
    return false;
}

bool roudi_failed = false;  // RouDi did not end cleanly: it may have left its files

/// Stops RouDi: SIGTERM lets it remove its shared memory; SIGKILL only if it does not go.
void stop_roudi() {
    const pid_t pid = roudi_pid.exchange(0);
    if (pid <= 0) {
        return;
    }
    ::kill(pid, SIGTERM);
    int status = 0;
    if (!reap_within(pid, std::chrono::milliseconds(10000), &status)) {
        ::kill(pid, SIGKILL);
        reap_within(pid, std::chrono::milliseconds(2000));
        roudi_failed = true;
    } else if (!WIFEXITED(status) || WEXITSTATUS(status) != 0) {
        roudi_failed = true;
    }
}

/// SIGTERM first: a child removes the files its iceoryx runtime made under /tmp.
void kill_children() {
    std::array<pid_t, live_children.size()> pids{};
    for (std::size_t i = 0; i < pids.size(); ++i) {
        pids[i] = live_children[i].exchange(0);
        if (pids[i] > 0) {
            ::kill(pids[i], SIGTERM);
        }
    }
    for (const pid_t pid : pids) {
        if (pid > 0 && !reap_within(pid, std::chrono::milliseconds(2000))) {
            ::kill(pid, SIGKILL);
            reap_within(pid, std::chrono::milliseconds(2000));
        }
    }
}

// A child's iceoryx runtime has a socket and a lock file under /tmp, which it removes when it ends
// normally. Killed (by the main process, or by PR_SET_PDEATHSIG when the main process dies), the
// child removes them in its SIGTERM handler.
std::array<std::array<char, 128>, 2> runtime_files{};

extern "C" void on_child_signal(int sig) {
    for (const auto& f : runtime_files) {
        if (f[0] != 0) {
            ::unlink(f.data());
        }
    }
    // RouDi, stopping, signals its apps and aborts (leaving its shared memory) if one is gone
    // already: when the main process dies, RouDi and the children get their SIGTERM at once, so a
    // child stays until RouDi has signalled it.
    if (runtime_files[0][0] != 0) {
        const timespec a_while{0, 300'000'000};
        ::nanosleep(&a_while, nullptr);
    }
    ::_exit(128 + sig);
}

// What RouDi makes, removed by this process if RouDi died without removing them (it did not run
// before: start_roudi() checks). The user's segment is named after the user.
std::array<char, 64> roudi_user_segment{};

void remove_roudi_leftovers() {
    if (!roudi_failed) {
        return;
    }
    const std::array<const char*, 4> files{"/dev/shm/iceoryx_mgmt", roudi_user_segment.data(), "/tmp/roudi",
                                           "/tmp/roudi.lock"};
    for (const char* f : files) {
        if (f[0] != 0 && ::unlink(f) == 0) {
            static constexpr char note[] = "same_host_compare: removed a file RouDi left\n";
            [[maybe_unused]] auto n = ::write(2, note, sizeof note - 1);
        }
    }
}

/// RouDi first, while its apps (children) live: it signals them and waits for them to go.
void stop_everything() {
    stop_roudi();
    kill_children();
    remove_roudi_leftovers();
}

void clean_up() {
    if (::getpid() != main_pid) {
        return;  // a child that exits runs the atexit handlers it inherited
    }
    stop_everything();
    if (!roudi_config.empty()) {
        ::unlink(roudi_config.c_str());
    }
}

extern "C" void on_signal(int sig) {
    if (::getpid() == main_pid) {
        stop_everything();
    }
    ::_exit(128 + sig);
}

[[noreturn]] void die(const std::string& what) {
    std::fprintf(stderr, "same_host_compare: %s\n", what.c_str());
    std::exit(1);  // clean_up() runs
}

/// Runs `body` in a fork()ed child that dies (SIGTERM) with this process; @returns its pid. The child ends
/// with _Exit(), or with exit() when `exit_handlers` (iceoryx's runtime tells RouDi it is gone from
/// a static destructor).
pid_t spawn(const std::function<void()>& body, bool exit_handlers) {
    std::fflush(nullptr);
    const pid_t parent = ::getpid();
    const pid_t pid = ::fork();
    if (pid < 0) {
        die(std::string("fork: ") + std::strerror(errno));
    }
    if (pid == 0) {
        ::signal(SIGINT, SIG_DFL);
        ::signal(SIGTERM, on_child_signal);
        ::prctl(PR_SET_PDEATHSIG, SIGTERM);
        if (::getppid() != parent) {
            std::_Exit(1);  // the parent died before the line above
        }
        body();
        if (exit_handlers) {
            std::exit(0);
        }
        std::fflush(nullptr);
        std::_Exit(0);
    }
    remember_child(pid);
    return pid;
}

/// A child that the destructor reaps (or kills, if it does not end within a few seconds).
class Child {
public:
    explicit Child(const std::function<void()>& body, bool exit_handlers = false) : pid_(spawn(body, exit_handlers)) {}
    ~Child() {
        if (!reap_within(pid_, std::chrono::milliseconds(10000))) {
            std::fprintf(stderr, "same_host_compare: child %d did not end, killed\n", static_cast<int>(pid_));
            ::kill(pid_, SIGKILL);
            reap_within(pid_, std::chrono::milliseconds(2000));
        }
        forget_child(pid_);
    }
    Child(const Child&) = delete;
    Child& operator=(const Child&) = delete;

private:
    pid_t pid_;
};

/// A pipe carrying small fixed-size records (at most PIPE_BUF bytes, so each write is atomic).
class Pipe {
public:
    Pipe() {
        if (::pipe2(fds_, O_CLOEXEC) != 0) {
            die(std::string("pipe: ") + std::strerror(errno));
        }
    }
    ~Pipe() {
        close_reader();
        close_writer();
    }
    Pipe(const Pipe&) = delete;
    Pipe& operator=(const Pipe&) = delete;

    template <class T>
    bool put(const T& value) {
        static_assert(sizeof(T) <= PIPE_BUF);
        for (;;) {
            const auto n = ::write(fds_[1], &value, sizeof value);
            if (n == static_cast<ssize_t>(sizeof value)) {
                return true;
            }
            if (n < 0 && errno == EINTR) {
                continue;
            }
            return false;
        }
    }
    /// Waits up to `limit` for a record; false on time out, EOF (no writer left) or error.
    template <class T>
    bool get(T& value, Clock::duration limit) {
        const auto deadline = Clock::now() + limit;
        pollfd p{fds_[0], POLLIN, 0};
        for (;;) {
            const auto left = std::chrono::duration_cast<std::chrono::milliseconds>(deadline - Clock::now()).count();
            const int r = ::poll(&p, 1, static_cast<int>(std::max<std::int64_t>(left, 0)));
            if (r < 0 && errno == EINTR) {
                continue;
            }
            if (r <= 0) {
                return false;
            }
            const auto n = ::read(fds_[0], &value, sizeof value);
            if (n < 0 && errno == EINTR) {
                continue;
            }
            return n == static_cast<ssize_t>(sizeof value);
        }
    }
    /// Whether a record (or EOF) is waiting, without reading it.
    bool ready() {
        pollfd p{fds_[0], POLLIN, 0};
        return ::poll(&p, 1, 0) > 0;
    }
    /// Each process closes the end it does not use, so that the other's exit is EOF, not a hang.
    void close_reader() { close_end(0); }
    void close_writer() { close_end(1); }

private:
    void close_end(int i) {
        if (fds_[i] >= 0) {
            ::close(fds_[i]);
            fds_[i] = -1;
        }
    }
    int fds_[2];
};

// --- results ---------------------------------------------------------------------------------------

/// A peer's time in all, slices added up, and whether it failed (then it takes no more turns).
class Budget {
public:
    Clock::duration left() const { return ok_ ? std::max(Clock::duration{}, time_limit - spent_) : Clock::duration{}; }
    void charge(Clock::time_point slice_start) { spent_ += Clock::now() - slice_start; }
    void fail(const std::string& why) {
        if (ok_) {
            std::fprintf(stderr, "same_host_compare: %s\n", why.c_str());
        }
        ok_ = false;
    }
    bool ok() const { return ok_ && left() > Clock::duration{}; }
    bool failed() const { return !ok_; }

private:
    Clock::duration spent_{};
    bool ok_ = true;
};

int session_counter = 0;

std::string unique_name(const char* what) {
    return std::string("same_host_") + what + "_" + std::to_string(::getpid()) + "_" +
           std::to_string(++session_counter);
}

// --- meshy -------------------------------------------------------------------------------------------

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

std::string meshy_link_seen = "?";  // what the last meshy session's link was, for the table

// --- ping-pong: Cyclone DDS --------------------------------------------------------------------------

/// Loopback only: the `lo` interface, no multicast, discovery by unicast to 127.0.0.1 (which needs
/// participant indices: ports a peer can guess). Set as CYCLONEDDS_URI before any participant.
constexpr const char* cyclone_config =
    "<CycloneDDS><Domain id=\"any\"><General><Interfaces><NetworkInterface name=\"lo\"/></Interfaces>"
    "<AllowMulticast>false</AllowMulticast></General><Discovery><ParticipantIndex>auto</ParticipantIndex>"
    "<MaxAutoParticipantIndex>32</MaxAutoParticipantIndex><Peers><Peer address=\"127.0.0.1\"/></Peers>"
    "</Discovery><Tracing><Verbosity>warning</Verbosity><OutputFile>stderr</OutputFile></Tracing></Domain></"
    "CycloneDDS>";

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

class CyclonePingPong {
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
    void round_trips(std::size_t count, std::size_t skip, std::vector<double>& rtt_ns) {
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

// --- ping-pong: meshy ----------------------------------------------------------------------------------

/// A service call to an echo provider in a child, which serves until told to stop.
class MeshyPingPong {
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
    void round_trips(std::size_t count, std::size_t skip, std::vector<double>& rtt_ns) {
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

struct PingPongResult {
    Latency cyclone, meshy;
};

/// Both peers' ping-pongs, taken in slices, in turns.
PingPongResult run_pingpong(std::size_t size, std::size_t k, bool want_cyclone, bool want_meshy) {
    const std::size_t slices = std::clamp<std::size_t>(k / 15, 1, 20);
    // Cyclone's session first: meshy's starts a node (threads that take locks) in this process, and
    // a child fork()ed after that could inherit a lock held. Cyclone's threads are harmless to the
    // meshy child, which does not use Cyclone DDS.
    std::optional<CyclonePingPong> dds;
    std::optional<MeshyPingPong> mesh;
    if (want_cyclone) {
        dds.emplace(size);
    }
    if (want_meshy) {
        mesh.emplace(size);
    }
    std::vector<double> dds_rtt, mesh_rtt;
    dds_rtt.reserve(k);
    mesh_rtt.reserve(k);
    for (std::size_t s = 0; s < slices; ++s) {
        const std::size_t n = k * (s + 1) / slices - k * s / slices;
        // One round trip more than recorded: the first of a slice finds the caches used by the other.
        if (dds) {
            dds->round_trips(n + 1, 1, dds_rtt);
        }
        if (mesh) {
            mesh->round_trips(n + 1, 1, mesh_rtt);
        }
    }
    mesh.reset();
    dds.reset();
    return {summarize(dds_rtt), summarize(mesh_rtt)};
}

// --- one-way: what the sender stamps and the receiver reads ----------------------------------------

constexpr std::uint64_t iceoryx_chunks = 16;                // in the pool of each message size
constexpr std::size_t warm_up_stream = iceoryx_chunks + 4;  // messages streamed per session, not recorded

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
void fill(std::uint8_t* data, std::size_t size, std::uint32_t index) {
    std::memset(data, static_cast<int>(index & 0xff), size);
}

std::atomic<std::uint64_t> read_sink{0};

/// Reads every byte of a message in place, as a consumer would (8 at a time).
std::uint64_t read_all(const std::uint8_t* data, std::size_t size) {
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

// --- one-way: iceoryx ----------------------------------------------------------------------------------

/// Whether this process may run on more than one CPU (a poller then has a CPU of its own).
bool has_cpus_to_spare() {
    cpu_set_t set;
    return ::sched_getaffinity(0, sizeof set, &set) == 0 && CPU_COUNT(&set) > 1;
}

/// Each pool holds a message of its size plus iceoryx's chunk header; a sender holds at most one
/// chunk on loan and a subscriber's queue four more.
constexpr std::uint64_t iceoryx_queue = 4;
static_assert(iceoryx_chunks > iceoryx_queue + 2);

std::string iceoryx_config(const std::vector<std::size_t>& sizes) {
    std::string toml = "[general]\nversion = 1\n\n[[segment]]\n\n";
    auto pool = [&](std::uint64_t size, std::uint64_t count) {
        toml += "[[segment.mempool]]\nsize = " + std::to_string(size) + "\ncount = " + std::to_string(count) + "\n\n";
    };
    pool(128, 1000);  // RouDi's own small messages (introspection)
    pool(1024, 200);
    pool(16384, 20);
    std::vector<std::size_t> sorted = sizes;
    std::sort(sorted.begin(), sorted.end());
    for (const auto s : sorted) {
        pool((s + 4096 + 63) / 64 * 64, iceoryx_chunks);
    }
    return toml;
}

/// Starts `iox-roudi` with pools for `sizes`, unless one runs already (then iceoryx is skipped:
/// RouDi's shared memory has fixed names, one RouDi per host). @returns whether it runs.
bool start_roudi(const std::vector<std::size_t>& sizes) {
    if (std::filesystem::exists("/dev/shm/iceoryx_mgmt")) {
        std::fprintf(stderr, "same_host_compare: a RouDi runs already (/dev/shm/iceoryx_mgmt): iceoryx skipped\n");
        return false;
    }
    char path[] = "/tmp/same-host-roudi-XXXXXX.toml";
    const int fd = ::mkstemps(path, 5);
    if (fd < 0) {
        die(std::string("mkstemps: ") + std::strerror(errno));
    }
    roudi_config = path;
    const std::string toml = iceoryx_config(sizes);
    if (::write(fd, toml.data(), toml.size()) != static_cast<ssize_t>(toml.size())) {
        die("writing the RouDi config");
    }
    ::close(fd);
    std::fflush(nullptr);
    const pid_t parent = ::getpid();
    const pid_t pid = ::fork();
    if (pid < 0) {
        die(std::string("fork: ") + std::strerror(errno));
    }
    if (pid == 0) {
        ::prctl(PR_SET_PDEATHSIG, SIGTERM);  // RouDi removes its shared memory on SIGTERM
        if (::getppid() != parent) {
            std::_Exit(1);
        }
        // -k 2: at its SIGTERM, RouDi waits that long for apps that do not answer (killed ones).
        ::execlp("iox-roudi", "iox-roudi", "-c", path, "-l", "warning", "-k", "2", static_cast<char*>(nullptr));
        std::fprintf(stderr, "same_host_compare: cannot run iox-roudi: %s\n", std::strerror(errno));
        std::_Exit(127);
    }
    roudi_pid = pid;
    if (const passwd* user = ::getpwuid(::geteuid())) {
        std::snprintf(roudi_user_segment.data(), roudi_user_segment.size(), "/dev/shm/%s", user->pw_name);
    }
    // Ready once its management segment and its socket exist.
    const auto deadline = Clock::now() + std::chrono::seconds(10);
    while (Clock::now() < deadline) {
        int status = 0;
        if (::waitpid(pid, &status, WNOHANG) == pid) {
            roudi_pid = 0;
            std::fprintf(stderr, "same_host_compare: iox-roudi exited at start: iceoryx skipped\n");
            return false;
        }
        if (std::filesystem::exists("/dev/shm/iceoryx_mgmt") && std::filesystem::exists("/tmp/roudi")) {
            // RouDi has read its config: nothing is left of it even if this process is killed.
            ::unlink(roudi_config.c_str());
            roudi_config.clear();
            std::this_thread::sleep_for(std::chrono::milliseconds(100));
            return true;
        }
        std::this_thread::sleep_for(std::chrono::milliseconds(20));
    }
    std::fprintf(stderr, "same_host_compare: iox-roudi did not come up within 10 s: iceoryx skipped\n");
    stop_roudi();
    return false;
}

void iceoryx_runtime(const char* role) {
    const std::string name = std::string("same-host-") + role + "-" + std::to_string(::getpid());
    std::snprintf(runtime_files[0].data(), runtime_files[0].size(), "/tmp/%s", name.c_str());
    std::snprintf(runtime_files[1].data(), runtime_files[1].size(), "/tmp/%s.lock", name.c_str());
    iox::log::LogManager::GetLogManager().SetDefaultLogLevel(iox::log::LogLevel::kWarn);  // not a line per app
    iox::runtime::PoshRuntime::initRuntime(iox::RuntimeName_t(iox::cxx::TruncateToCapacity, name.c_str()));
}

iox::capro::ServiceDescription iceoryx_service(const std::string& instance) {
    return {"SameHost", iox::capro::IdString_t(iox::cxx::TruncateToCapacity, instance.c_str()), "Data"};
}

/// Loans: acquire() loans a chunk, publish() publishes it.
class IceoryxSource {
public:
    IceoryxSource(iox::popo::UntypedPublisher& publisher, std::size_t size) : publisher_(publisher), size_(size) {}
    std::uint8_t* acquire() {
        const auto deadline = Clock::now() + std::chrono::seconds(5);
        while (Clock::now() < deadline) {
            auto chunk = publisher_.loan(static_cast<std::uint32_t>(size_), 64);
            if (!chunk.has_error()) {
                return static_cast<std::uint8_t*>(chunk.value());
            }
            std::this_thread::yield();  // all chunks of the pool in flight
        }
        return nullptr;
    }
    bool publish(std::uint8_t* data) {
        publisher_.publish(data);  // waits while the subscriber's queue is full (WAIT_FOR_SUBSCRIBER)
        return true;
    }
    std::string link() const { return "loans"; }

private:
    iox::popo::UntypedPublisher& publisher_;
    std::size_t size_;
};

std::unique_ptr<OneWaySession> iceoryx_session(std::size_t size) {
    const std::string instance = unique_name("data");
    auto receive = [instance, size](Pipe& acks, Pipe& ready, Pipe& done) {
        iceoryx_runtime("receiver");
        iox::popo::SubscriberOptions options;
        options.queueCapacity = iceoryx_queue;
        options.queueFullPolicy = iox::popo::QueueFullPolicy::BLOCK_PRODUCER;
        iox::popo::UntypedSubscriber subscriber(iceoryx_service(instance), options);
        Receiver receiver(acks);
        // iceperf polls take() for its latencies; a poller that has no CPU of its own (pinned) would
        // only take the sender's, and in a stream it slows the sender down (1 MB: 1.8 against
        // 9.2 GB/s on a loaded 2-vCPU VM). So: poll while a latency message is due and a CPU is
        // spare, else wait in a WaitSet (iceoryx's own way to sleep until data comes).
        const bool may_poll = has_cpus_to_spare();
        iox::popo::WaitSet<> waitset;
        waitset.attachState(subscriber, iox::popo::SubscriberState::HAS_DATA).or_else([](auto) {
            die("iceoryx: cannot attach the subscriber to a WaitSet");
        });
        ready.put('k');
        const auto deadline = Clock::now() + serve_limit;
        std::uint64_t idle = 0;
        while (Clock::now() < deadline) {
            auto taken = subscriber.take();
            if (!taken.has_error()) {
                const void* chunk = taken.value();
                receiver.on_message(static_cast<const std::uint8_t*>(chunk), size);
                subscriber.release(chunk);
                continue;
            }
            if (may_poll && !receiver.in_stream()) {
                if ((++idle & 0xffff) == 0 && done.ready()) {
                    break;
                }
                continue;
            }
            waitset.timedWait(iox::units::Duration::fromMilliseconds(100));
            if (done.ready()) {
                break;
            }
        }
        waitset.detachState(subscriber, iox::popo::SubscriberState::HAS_DATA);
    };
    auto send = [instance, size](Pipe& commands, Pipe& replies, Pipe& acks, Pipe& ready) {
        iceoryx_runtime("sender");
        iox::popo::PublisherOptions options;
        options.subscriberTooSlowPolicy = iox::popo::ConsumerTooSlowPolicy::WAIT_FOR_CONSUMER;
        iox::popo::UntypedPublisher publisher(iceoryx_service(instance), options);
        const auto deadline = Clock::now() + std::chrono::seconds(10);
        while (!publisher.hasSubscribers() && Clock::now() < deadline) {
            std::this_thread::sleep_for(std::chrono::milliseconds(1));
        }
        if (!publisher.hasSubscribers()) {
            return;
        }
        ready.put('k');
        IceoryxSource source(publisher, size);
        sender_loop(source, size, commands, replies, acks);
    };
    return std::make_unique<OneWaySession>("iceoryx", receive, send, true);
}

// --- one-way: meshy ------------------------------------------------------------------------------------

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

// --- the comparison --------------------------------------------------------------------------------

std::string only;       // --only cyclone|iceoryx|meshy: run just that peer (for profiling)
std::string only_test;  // --test pingpong|oneway: run just that workload
bool roudi_up = false;

bool wanted(const char* peer) {
    return only.empty() || only == peer;
}

std::size_t scaled(double base, double scale) {
    return static_cast<std::size_t>(std::max(1.0, base * scale));
}

// A default run takes about a minute on a 2-vCPU VM.
std::size_t pingpong_count(double scale) {
    return scaled(10000, scale);
}
std::size_t latency_count(std::size_t size, double scale) {
    return scaled(size > 4 * 1024 * 1024 ? 200 : 500, scale);
}
std::size_t stream_count(std::size_t size, double scale) {
    return scaled(size > 4 * 1024 * 1024 ? 400 : 2000, scale);
}

struct OneWayResult {
    Latency iceoryx, meshy, loans;
    double iceoryx_rate = 0, meshy_rate = 0, meshy_received = 0, meshy_sent = 0, iceoryx_received = 0, iceoryx_sent = 0;
    double loans_rate = 0, loans_received = 0, loans_sent = 0;
    std::string meshy_link = "-";
};

/// Both peers' one-way sessions: the latency messages in slices, in turns, then the streams.
OneWayResult run_oneway(std::size_t size, double scale) {
    std::unique_ptr<OneWaySession> ice, mesh, lent;
    if (roudi_up && wanted("iceoryx")) {
        ice = iceoryx_session(size);
    }
    if (wanted("meshy")) {
        mesh = meshy_session(size, false);
        lent = meshy_session(size, true);
    }
    const auto l = static_cast<std::uint32_t>(latency_count(size, scale));
    const std::uint32_t slices = std::clamp<std::uint32_t>(l / 10, 1, 10);
    for (std::uint32_t s = 0; s < slices; ++s) {
        const std::uint32_t n = l * (s + 1) / slices - l * s / slices;
        for (auto* session : {ice.get(), mesh.get(), lent.get()}) {
            if (session) {
                session->latency(n + 1, 1);  // the first of a slice finds the caches used by the other
            }
        }
    }
    const auto total = static_cast<std::uint32_t>(stream_count(size, scale));
    const std::uint32_t parts = std::clamp<std::uint32_t>(total / 40, 1, 5);
    for (std::uint32_t s = 0; s < parts; ++s) {
        const std::uint32_t n = total * (s + 1) / parts - total * s / parts;
        for (auto* session : {ice.get(), mesh.get(), lent.get()}) {
            if (session) {
                session->stream(n);
            }
        }
    }
    OneWayResult r;
    if (ice) {
        r.iceoryx = ice->finish(r.iceoryx_rate, r.iceoryx_received, r.iceoryx_sent);
    }
    if (mesh) {
        r.meshy = mesh->finish(r.meshy_rate, r.meshy_received, r.meshy_sent);
        r.meshy_link = mesh->link();
    }
    if (lent) {
        r.loans = lent->finish(r.loans_rate, r.loans_received, r.loans_sent);
    }
    lent.reset();
    mesh.reset();
    ice.reset();
    return r;
}

double ratio(double a, double b) {
    return b > 0 ? a / b : 0;
}

void compare(bool pinned, int runs, double scale) {
    cpu_set_t original;
    ::sched_getaffinity(0, sizeof original, &original);
    if (pinned) {
        cpu_set_t one;
        CPU_ZERO(&one);
        CPU_SET(0, &one);
        ::sched_setaffinity(0, sizeof one, &one);  // inherited by every child: like taskset -c 0
    }
    std::printf("\n### %s, median of %d runs\n", pinned ? "Pinned (every process on CPU 0)" : "Unpinned", runs);
    if (only_test.empty() || only_test == "pingpong") {
        std::printf(
            "\nRound trip, p50 / p99 in us (Cyclone DDS: ddsperf-style ping-pong; meshy: service call):\n\n"
            "| size | Cyclone DDS | meshy call | meshy link | meshy/Cyclone p50 | meshy/Cyclone p99 |\n"
            "|---|---|---|---|---|---|\n");
        for (const std::size_t size : {std::size_t{0}, std::size_t{1024}}) {
            std::vector<double> c50, c99, m50, m99;
            for (int r = 0; r < runs; ++r) {
                const auto p = run_pingpong(size, pingpong_count(scale), wanted("cyclone"), wanted("meshy"));
                c50.push_back(p.cyclone.p50_us);
                c99.push_back(p.cyclone.p99_us);
                m50.push_back(p.meshy.p50_us);
                m99.push_back(p.meshy.p99_us);
            }
            std::printf("| %s | %.1f / %.1f | %.1f / %.1f | %s | %.2f | %.2f |\n", size_text(size).c_str(), median(c50),
                        median(c99), median(m50), median(m99), meshy_link_seen.c_str(), ratio(median(m50), median(c50)),
                        ratio(median(m99), median(c99)));
            std::fflush(stdout);
        }
    }
    if (only_test.empty() || only_test == "oneway") {
        std::printf(
            "\nOne-way (stamp after filling -> receiver has read the last byte in place), p50 / p99 in us, and a "
            "lossless stream's throughput (iceoryx: loans; meshy: send of a filled buffer; meshy loans: loan_blocking "
            "-> fill -> send_loaned_blocking, read in place):\n\n"
            "| size | iceoryx latency | meshy latency | meshy loans latency | meshy/iceoryx p50 | loans/iceoryx p50 | "
            "iceoryx MB/s | meshy MB/s | meshy loans MB/s | meshy link | received/sent (iceoryx, meshy, loans) "
            "|\n|---|---|---|---|---|---|---|---|---|---|---|\n");
        for (const std::size_t size : {std::size_t{1} << 20, std::size_t{8} << 20}) {
            std::vector<double> i50, i99, m50, m99, irate, mrate, igot, mgot, l50, l99, lrate, lgot;
            double isent = 0, msent = 0, lsent = 0;
            std::string link = "-";
            for (int r = 0; r < runs; ++r) {
                const auto o = run_oneway(size, scale);
                i50.push_back(o.iceoryx.p50_us);
                i99.push_back(o.iceoryx.p99_us);
                m50.push_back(o.meshy.p50_us);
                m99.push_back(o.meshy.p99_us);
                irate.push_back(o.iceoryx_rate);
                mrate.push_back(o.meshy_rate);
                igot.push_back(o.iceoryx_received);
                mgot.push_back(o.meshy_received);
                l50.push_back(o.loans.p50_us);
                l99.push_back(o.loans.p99_us);
                lrate.push_back(o.loans_rate);
                lgot.push_back(o.loans_received);
                isent = o.iceoryx_sent;
                msent = o.meshy_sent;
                lsent = o.loans_sent;
                link = o.meshy_link;
            }
            const double mb = static_cast<double>(size) / 1e6;
            std::printf(
                "| %s | %.0f / %.0f | %.0f / %.0f | %.0f / %.0f | %.2f | %.2f | %.0f | %.0f | %.0f | %s | %.0f/%.0f, "
                "%.0f/%.0f, %.0f/%.0f |\n",
                size_text(size).c_str(), median(i50), median(i99), median(m50), median(m99), median(l50), median(l99),
                ratio(median(m50), median(i50)), ratio(median(l50), median(i50)), median(irate) * mb,
                median(mrate) * mb, median(lrate) * mb, link.c_str(), median(igot), isent, median(mgot), msent,
                median(lgot), lsent);
            std::fflush(stdout);
        }
    }
    ::sched_setaffinity(0, sizeof original, &original);
}

std::vector<std::string> dev_shm() {
    std::vector<std::string> names;
    std::error_code ec;
    for (const auto& e : std::filesystem::directory_iterator("/dev/shm", ec)) {
        names.push_back(e.path().filename().string());
    }
    std::sort(names.begin(), names.end());
    return names;
}

}  // namespace

int main(int argc, char** argv) {
    int runs = 3;
    double scale = 1;
    std::string which = "both";
    for (int i = 1; i < argc; ++i) {
        const std::string a = argv[i];
        if (a == "--runs" && i + 1 < argc) {
            runs = std::max(1, std::atoi(argv[++i]));
        } else if (a == "--scale" && i + 1 < argc) {
            scale = std::atof(argv[++i]);
        } else if (a == "--pinned") {
            which = "pinned";
        } else if (a == "--unpinned") {
            which = "unpinned";
        } else if (a == "--only" && i + 1 < argc) {
            only = argv[++i];
        } else if (a == "--test" && i + 1 < argc) {
            only_test = argv[++i];
        } else {
            std::fprintf(stderr,
                         "usage: same_host_compare [--runs N] [--scale F] [--pinned|--unpinned]\n"
                         "                         [--only cyclone|iceoryx|meshy] [--test pingpong|oneway]\n");
            return 2;
        }
    }
    main_pid = ::getpid();
    std::atexit(clean_up);
    ::signal(SIGINT, on_signal);
    ::signal(SIGTERM, on_signal);
    ::signal(SIGPIPE, SIG_IGN);  // a peer that failed closed its pipes: a write then fails, and says so
    ::setenv("CYCLONEDDS_URI", cyclone_config, 1);
    meshy::set_log_level(meshy::LogLevel::warn);
    const auto shm_before = dev_shm();

    std::printf("same_host_compare: Cyclone DDS %s, iceoryx %s, meshy; %u CPUs\n", DDS_VERSION,
                ICEORYX_LATEST_RELEASE_VERSION, std::thread::hardware_concurrency());
    std::printf(
        "- Cyclone DDS: ddsperf's ping-pong on its C API: a keyed sample (seq, key, sequence<octet>), reliable, "
        "KEEP_LAST 1, a data-available listener on each side that takes and writes the next sample; UDP on lo only "
        "(no multicast, unicast discovery to 127.0.0.1)\n"
        "- iceoryx: loans through RouDi (iox-roudi, started here): loan -> fill -> publish; take -> read in place -> "
        "release; subscriber queue %llu, BLOCK_PRODUCER / WAIT_FOR_CONSUMER (lossless); the subscriber polls take() "
        "like iceperf for latency messages when it may run on 2+ CPUs, else (and in streams) waits in a WaitSet\n"
        "- meshy: nodes with Unix sockets only, upgraded to shared memory (allow_shm), raw codec, OutboxFull::wait; "
        "ping-pong: call_raw as a coroutine on the node's executor to an echo service; one-way: send_blocking of a "
        "filled buffer, and (meshy loans) loan_blocking -> fill -> send_loaned_blocking; the listener reads the "
        "payload where its callback gets it (in the sender's pool, for loans)\n",
        static_cast<unsigned long long>(iceoryx_queue));
    std::printf(
        "counts (--scale %.2g): ping-pong %zu round trips; one-way 1 MB %zu latency + %zu stream messages, 8 MB "
        "%zu + %zu\n",
        scale, pingpong_count(scale), latency_count(1 << 20, scale), stream_count(1 << 20, scale),
        latency_count(8 << 20, scale), stream_count(8 << 20, scale));
    if ((only_test.empty() || only_test == "oneway") && wanted("iceoryx")) {
        roudi_up = start_roudi({std::size_t{1} << 20, std::size_t{8} << 20});
    }
    if (which != "unpinned") {
        compare(true, runs, scale);
    }
    if (which != "pinned") {
        compare(false, runs, scale);
    }
    clean_up();
    const auto shm_after = dev_shm();
    std::vector<std::string> left;
    std::set_difference(shm_after.begin(), shm_after.end(), shm_before.begin(), shm_before.end(),
                        std::back_inserter(left));
    for (const auto& name : left) {
        std::fprintf(stderr, "same_host_compare: left in /dev/shm: %s\n", name.c_str());
    }
    return left.empty() ? 0 : 1;
}
