// bench/same_host_compare, iceoryx: one-way through loans, as its iceperf does (loan a chunk, fill it,
// publish it; take it, read it in place, release it), with RouDi started here with pools for the
// large messages.
#include <pwd.h>
#include <sched.h>
#include <signal.h>
#include <sys/prctl.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <iceoryx_hoofs/log/logmanager.hpp>
#include <iceoryx_posh/popo/untyped_publisher.hpp>
#include <iceoryx_posh/popo/untyped_subscriber.hpp>
#include <iceoryx_posh/popo/wait_set.hpp>
#include <iceoryx_posh/runtime/posh_runtime.hpp>
#include <memory>
#include <string>
#include <thread>
#include <vector>

#include "common.hpp"
#include "one_way.hpp"

namespace same_host {
namespace {

/// Whether this process may run on more than one CPU (a poller then has a CPU of its own).
bool has_cpus_to_spare() {
    cpu_set_t set;
    return ::sched_getaffinity(0, sizeof set, &set) == 0 && CPU_COUNT(&set) > 1;
}

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

}  // namespace

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

namespace {

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

}  // namespace

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

}  // namespace same_host
