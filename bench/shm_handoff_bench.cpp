// What a hand-off between two processes costs on this machine, without meshy: a ping-pong through
// one shared page, where the waiting side either spins on the word (spin) or sleeps on an eventfd
// (eventfd, the shared-memory link's wake-up when the reader sleeps). Prints the round trip's
// median and p99 (docs/shm.md). Place it with taskset: both on one CPU, or apart.
//
//   shm_handoff_bench [spin|eventfd] [round trips]
#include <sys/eventfd.h>
#include <sys/mman.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <string>
#include <vector>

namespace {

using Clock = std::chrono::steady_clock;

struct Shared {
    alignas(64) std::atomic<std::uint64_t> ping{0};
    alignas(64) std::atomic<std::uint64_t> pong{0};
};

void wait_word(const std::atomic<std::uint64_t>& word, std::uint64_t value) {
    while (word.load(std::memory_order_acquire) != value) {
#if defined(__x86_64__)
        __builtin_ia32_pause();
#endif
    }
}

void wait_event(int fd) {
    std::uint64_t n = 0;
    while (::read(fd, &n, sizeof n) != sizeof n) {
    }
}

void signal_event(int fd) {
    const std::uint64_t one = 1;
    [[maybe_unused]] const auto n = ::write(fd, &one, sizeof one);
}

}  // namespace

int main(int argc, char** argv) {
    const std::string mode = argc > 1 ? argv[1] : "eventfd";
    const long rounds = argc > 2 ? std::atol(argv[2]) : 100000;
    if ((mode != "spin" && mode != "eventfd") || rounds <= 0) {
        std::fprintf(stderr, "usage: shm_handoff_bench [spin|eventfd] [round trips]\n");
        return 2;
    }
    void* page = ::mmap(nullptr, sizeof(Shared), PROT_READ | PROT_WRITE, MAP_SHARED | MAP_ANONYMOUS, -1, 0);
    if (page == MAP_FAILED) {
        std::perror("mmap");
        return 1;
    }
    auto* shared = new (page) Shared;
    const int to_child = ::eventfd(0, 0);
    const int to_parent = ::eventfd(0, 0);
    const bool spin = mode == "spin";
    const pid_t child = ::fork();
    if (child == 0) {
        for (std::uint64_t i = 1; i <= static_cast<std::uint64_t>(rounds); ++i) {
            if (spin) {
                wait_word(shared->ping, i);
                shared->pong.store(i, std::memory_order_release);
            } else {
                wait_event(to_child);
                signal_event(to_parent);
            }
        }
        std::_Exit(0);
    }
    std::vector<double> rtt;
    rtt.reserve(static_cast<std::size_t>(rounds));
    for (std::uint64_t i = 1; i <= static_cast<std::uint64_t>(rounds); ++i) {
        const auto t0 = Clock::now();
        if (spin) {
            shared->ping.store(i, std::memory_order_release);
            wait_word(shared->pong, i);
        } else {
            signal_event(to_child);
            wait_event(to_parent);
        }
        rtt.push_back(std::chrono::duration<double, std::micro>(Clock::now() - t0).count());
    }
    ::waitpid(child, nullptr, 0);
    std::sort(rtt.begin(), rtt.end());
    const auto at = [&](double q) {
        return rtt[static_cast<std::size_t>(q * static_cast<double>(rtt.size() - 1))];
    };
    std::printf("%s round trip: p50 %.2f us, p99 %.2f us (%ld round trips; one hand-off is half)\n", mode.c_str(),
                at(0.5), at(0.99), rounds);
    return 0;
}
