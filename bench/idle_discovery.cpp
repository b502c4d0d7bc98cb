// One idle discovery participant for bench/idle_mesh.sh: discovery alone (no node, no sockets, no
// links), so that the idle cost of discovery is measured apart from the node core's links.
//
// usage: idle_discovery local|avahi DOMAIN [TOPICS]
// Prints "self <id>" once started, then "up <id> <realtime ns>" and "down <id> <realtime ns>" for
// each peer event, until SIGINT or SIGTERM. TOPICS > 0 publishes that many listened topics with
// update() after start (the advert's lists, as a node with that many listen() calls would).
#include <signal.h>
#include <unistd.h>

#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <exception>
#include <mutex>
#include <string>
#include <string_view>

#include "common/system.hpp"
#include "discovery/discovery.hpp"

namespace {

std::mutex output_mutex;

long long realtime_ns() {
    return std::chrono::duration_cast<std::chrono::nanoseconds>(std::chrono::system_clock::now().time_since_epoch())
        .count();
}

void print(const char* event, const std::string& id) {
    std::lock_guard lock(output_mutex);
    std::printf("%s %s %lld\n", event, id.c_str(), realtime_ns());
    std::fflush(stdout);
}

}  // namespace

int main(int argc, char** argv) {
    using namespace meshy::detail;
    if (argc < 3) {
        std::fprintf(stderr, "usage: %s local|avahi DOMAIN [TOPICS]\n", argv[0]);
        return 2;
    }
    const std::string_view backend = argv[1];
    if (backend != "local" && backend != "avahi") {
        std::fprintf(stderr, "error: backend must be 'local' or 'avahi', not '%s'\n", argv[1]);
        return 2;
    }
    const int topics = argc > 3 ? std::atoi(argv[3]) : 0;

    // Block the stop signals before any thread starts, so only sigwait() below receives them.
    sigset_t stop_signals;
    sigemptyset(&stop_signals);
    sigaddset(&stop_signals, SIGINT);
    sigaddset(&stop_signals, SIGTERM);
    pthread_sigmask(SIG_BLOCK, &stop_signals, nullptr);

    Advert self;
    self.id = make_uuid();
    self.name = "idle";
    self.host = host_name();
    self.domain = argv[2];
    self.protocol = 2;  // wire::protocol_version, without the wire header's includes
    self.unix_path = default_socket_dir() + "/" + self.id + ".sock";
    self.pid = ::getpid();
    try {
        auto discovery = backend == "avahi" ? make_avahi_discovery() : make_local_discovery();
        discovery->start(self, {[](const Advert& peer) { print("up", peer.id); },
                                [](const std::string& id) {
                                    print("down", id);
                                }});
        if (topics > 0) {
            for (int i = 0; i < topics; ++i) {
                self.topics.push_back("idle/topic/" + std::to_string(i));
            }
            self.revision = 1;
            discovery->update(self);
        }
        print("self", self.id);
        int signal = 0;
        sigwait(&stop_signals, &signal);
        discovery->stop();
    } catch (const std::exception& e) {
        std::fprintf(stderr, "error: %s\n", e.what());
        return 1;
    }
    return 0;
}
