// Loans over shared memory between real processes (docs/shm.md, "Loans"): this binary is both the
// test and, with --role, the nodes it starts (a sender that builds its messages in loans, listeners
// that check every payload and where it lies). Local discovery in a private directory and domain;
// every node allows shared memory (MESHY_SHM=1).
#include <gtest/gtest.h>
#include <signal.h>
#include <unistd.h>

#include <algorithm>
#include <asio/co_spawn.hpp>
#include <asio/io_context.hpp>
#include <asio/steady_timer.hpp>
#include <asio/use_awaitable.hpp>
#include <asio/use_future.hpp>
#include <atomic>
#include <chrono>
#include <cstdint>
#include <cstdio>
#include <cstring>
#include <deque>
#include <filesystem>
#include <fstream>
#include <map>
#include <meshy/meshy.hpp>
#include <sstream>
#include <string>
#include <thread>
#include <vector>

#include "process.hpp"
#include "role_support.hpp"

namespace meshy::test {
namespace {

namespace fs = std::filesystem;
using namespace std::chrono_literals;

std::byte pattern(std::uint64_t seq, std::size_t i) {
    return std::byte(static_cast<unsigned char>(seq * 131 + i * 7));
}

/// Writes message `seq` into `into`: the sequence number, then bytes that depend on both.
void fill(std::span<std::byte> into, std::uint64_t seq) {
    std::memcpy(into.data(), &seq, 8);
    for (std::size_t i = 8; i < into.size(); ++i) {
        into[i] = pattern(seq, i);
    }
}

bool intact(std::span<const std::byte> p, std::uint64_t& seq) {
    if (p.size() < 8) {
        return false;
    }
    std::memcpy(&seq, p.data(), 8);
    for (std::size_t i = 8; i < p.size(); ++i) {
        if (p[i] != pattern(seq, i)) {
            return false;
        }
    }
    return true;
}

/// True when `at` lies in a read-only shared mapping of a meshy loan pool (/proc/self/maps): the
/// payload is read in place, in the sender's memory, not in a copy.
bool in_peer_pool(const void* at) {
    std::ifstream maps("/proc/self/maps");
    std::string line;
    const auto address = reinterpret_cast<std::uintptr_t>(at);
    while (std::getline(maps, line)) {
        if (line.find("/memfd:meshy-pool") == std::string::npos) {
            continue;
        }
        std::uintptr_t from = 0, to = 0;
        char perms[5] = {};
        if (std::sscanf(line.c_str(), "%lx-%lx %4s", &from, &to, perms) == 3 && address >= from && address < to) {
            return std::string_view(perms) == "r--s";
        }
    }
    return false;
}

/// Peer pools this process maps (read-only meshy-pool mappings).
std::size_t peer_pools(pid_t pid) {
    std::ifstream maps("/proc/" + std::to_string(pid) + "/maps");
    std::string line;
    std::size_t n = 0;
    while (std::getline(maps, line)) {
        if (line.find("/memfd:meshy-pool") != std::string::npos && line.find(" r--s ") != std::string::npos) {
            ++n;
        }
    }
    return n;
}

NodeOptions options_from(const std::vector<std::string>& args) {
    NodeOptions o;
    o.name = arg(args, "--name", "loan-node");
    o.outbox_full = arg(args, "--outbox", "wait") == "wait" ? OutboxFull::wait : OutboxFull::drop_oldest;
    o.shm_pool_bytes = std::stoull(arg(args, "--pool", std::to_string(64u << 20)));
    return o;
}

/// listen TOPIC [--hold N] [--typed yes|msgpack]: checks each payload, its order and whether it is read in place; keeps
/// the last N messages (holding their loans). Says "GOT <count> inplace <n>" now and then, "HELD <n>"
/// as the loans it holds grow, and "FINAL ..." on SIGTERM. Empty payloads (warm-ups) are ignored.
int role_listen(const std::vector<std::string>& args) {
    const std::string topic = args.at(1);
    const std::size_t hold = std::stoull(arg(args, "--hold", "0"));
    std::uint64_t count = 0, bytes = 0, inplace = 0, copied_after = 0, corrupt = 0, disorder = 0;
    std::uint64_t last_seq = 0;
    bool seen = false;
    std::deque<std::shared_ptr<const void>> held;
    std::mutex mutex;
    Node node(options_from(args));
    // `owner` is null for a typed listener, which cannot keep the message past its callback.
    auto take = [&](std::span<const std::byte> payload, const std::shared_ptr<const void>* owner) {
        if (payload.empty()) {
            return;
        }
        std::lock_guard lock(mutex);
        std::uint64_t seq = 0;
        if (!intact(payload, seq)) {
            ++corrupt;
            say("CORRUPT size=" + std::to_string(payload.size()));
        }
        if (seen && seq <= last_seq) {
            ++disorder;
            say("DISORDER " + std::to_string(seq) + " after " + std::to_string(last_seq));
        }
        seen = true;
        last_seq = seq;
        const bool here = in_peer_pool(payload.data());
        if (owner && here != (*owner != nullptr)) {
            say("OWNER MISMATCH");
            ++corrupt;
        }
        if (here) {
            ++inplace;
        } else if (inplace > 0) {
            ++copied_after;  // once loans flow, every message comes as one
        }
        ++count;
        bytes += payload.size();
        if (hold > 0 && owner && *owner) {
            held.push_back(*owner);
            if (held.size() > hold) {
                held.pop_front();
            }
            say("HELD " + std::to_string(held.size()));
        }
        say("GOT " + std::to_string(count) + " seq " + std::to_string(seq) + " inplace " + std::to_string(inplace));
    };
    if (const auto typed = arg(args, "--typed", "no"); typed == "yes") {
        // A typed listener of a view: the raw codec hands it the payload where it lies.
        node.listen_blocking<RawCodec>(topic, [&](std::span<const std::byte> payload) { take(payload, nullptr); });
    } else if (typed == "msgpack") {
        // The same through msgpack: a view of the message's one bin argument, where it lies.
        node.listen_blocking<MsgpackCodec>(topic, [&](std::span<const std::byte> bin) { take(bin, nullptr); });
    } else {
        node.listen_raw(topic, [&](const RawMessage& m) { take(m.payload, &m.payload_owner); });
    }
    say("READY " + std::to_string(::getpid()));
    wait_for_stop();
    node.stop();
    std::lock_guard lock(mutex);
    held.clear();
    say("FINAL " + std::to_string(count) + " " + std::to_string(bytes) + " inplace " + std::to_string(inplace) +
        " copied_after " + std::to_string(copied_after) + " corrupt " + std::to_string(corrupt) + " disorder " +
        std::to_string(disorder));
    return 0;
}

/// The peers that listen to `topic` over shared memory.
std::size_t shm_listeners(const Node& node, const std::string& topic) {
    std::size_t n = 0;
    for (const auto& info : node.nodes()) {
        if (!info.is_self && info.transport == "shm" &&
            std::find(info.topics.begin(), info.topics.end(), topic) != info.topics.end()) {
            ++n;
        }
    }
    return n;
}

/// send TOPIC --size S --count N [--listeners K] [--codec msgpack]: warms up until K listeners are linked over shared
/// memory, then sends N messages built in loans; says "LOAN <n>" and "LENT <n>" around each loan,
/// "EXHAUSTED <n>" when one is refused (drop policy; it tries again every 20 ms), "SENT <n>" at the end.
int role_send(const std::vector<std::string>& args) {
    Node node(options_from(args));
    const std::string topic = args.at(1);
    const std::size_t size = std::stoull(arg(args, "--size", "1048576"));
    const std::uint64_t count = std::stoull(arg(args, "--count", "10"));
    const std::size_t listeners = std::stoull(arg(args, "--listeners", "1"));
    const LoanOptions loan_options{.codec = arg(args, "--codec", "raw") == "msgpack" ? CodecId::msgpack : CodecId::raw};
    node.wait_for_listener_blocking(topic, std::chrono::seconds(20));
    // Links are made when there is something to send: empty messages until they are up.
    const auto until = std::chrono::steady_clock::now() + std::chrono::seconds(20);
    while (shm_listeners(node, topic) < listeners) {
        if (std::chrono::steady_clock::now() > until) {
            say("NO LINKS");
            return 1;
        }
        node.send_raw(topic, CodecId::raw, {});
        std::this_thread::sleep_for(20ms);  // a paced warm-up, not a wait for a condition
    }
    say("LINKED");
    auto run = [&]() -> asio::awaitable<void> {
        asio::steady_timer timer(co_await asio::this_coro::executor);
        const auto give_up = std::chrono::steady_clock::now() + std::chrono::seconds(60);
        for (std::uint64_t seq = 0; seq < count;) {
            say("LOAN " + std::to_string(seq));
            Loan loan;
            bool exhausted = false;
            try {
                loan = co_await node.loan(topic, size, loan_options);
            } catch (const Error& e) {
                if (e.code_value() != errc::pool_exhausted || std::chrono::steady_clock::now() > give_up) {
                    throw;
                }
                exhausted = true;
            }
            if (exhausted) {
                say("EXHAUSTED " + std::to_string(seq));
                timer.expires_after(20ms);  // tries again, paced
                co_await timer.async_wait(asio::use_awaitable);
                continue;
            }
            say("LENT " + std::to_string(seq));
            fill(loan.bytes(), seq);
            co_await node.send_loaned(std::move(loan));
            ++seq;
        }
    };
    // On an io_context of its own, as an application's loop would be: the node's thread stays free
    // to read its links meanwhile.
    asio::io_context io;
    auto done = asio::co_spawn(io, run(), asio::use_future);
    io.run();
    done.get();
    say("SENT " + std::to_string(count));
    wait_for_stop();
    return 0;
}

/// misuse: a loan used after it was sent, and sent twice, is refused with errc::loan_spent.
int role_misuse(const std::vector<std::string>& args) {
    Node node(options_from(args));
    auto run = [&]() -> asio::awaitable<void> {
        auto loan = co_await node.loan("nobody-listens", 1 << 20);
        fill(loan.bytes(), 1);
        co_await node.send_loaned(std::move(loan));
        try {
            (void)loan.bytes();
            say("USED AFTER SEND");
        } catch (const Error& e) {
            say(std::string(e.code_value() == errc::loan_spent ? "SPENT " : "OTHER ") + e.what());
        }
        try {
            co_await node.send_loaned(std::move(loan));
            say("SENT TWICE");
        } catch (const Error& e) {
            say(std::string(e.code_value() == errc::loan_spent ? "TWICE REFUSED " : "OTHER ") + e.what());
        }
        try {
            (void)co_await node.loan("t", 65u << 20);
            say("TOO LARGE LENT");
        } catch (const Error& e) {
            say(std::string(e.code_value() == errc::invalid_argument ? "TOO LARGE REFUSED " : "OTHER ") + e.what());
        }
    };
    asio::co_spawn(node.get_executor(), run(), asio::use_future).get();
    return 0;
}

// ---- the tests ------------------------------------------------------------------------------------

class ShmLoanTest : public RoleNodesTest {
protected:
    ShmLoanTest() : RoleNodesTest("mloan") {}

    // Every node allows shared memory: loans go only over it.
    std::unique_ptr<Process> start(std::vector<std::string> role, const std::string& label) {
        return start_role(std::move(role), true, label);
    }
    /// 1 MB msgpack loans reach a typed listener, every one read in the sender's pool.
    void expect_msgpack_loans_in_place();
};

constexpr Millis startup{15000};
constexpr Millis transfer{60000};

TEST_F(ShmLoanTest, MsgpackLoansReachATypedListenerOfAViewInPlace) {
    expect_msgpack_loans_in_place();
}

// A keyed link moves to shared memory once authenticated (docs/security.md): loans too.
TEST_F(ShmLoanTest, OnAKeyedDomainLoansAreReadInPlaceToo) {
    use_domain_key();
    expect_msgpack_loans_in_place();
}

void ShmLoanTest::expect_msgpack_loans_in_place() {
    constexpr int count = 6;
    auto sink = start({"listen", "frames", "--typed", "msgpack", "--name", "sink"}, "sink");
    ASSERT_TRUE(sink->wait_for_line("READY", startup)) << out(*sink);
    auto sender = start({"send", "frames", "--size", std::to_string(1u << 20), "--count", std::to_string(count),
                         "--codec", "msgpack", "--name", "frames"},
                        "frames");
    ASSERT_TRUE(sender->wait_for_line("SENT", transfer)) << out(*sender) << out(*sink);
    EXPECT_TRUE(sink->wait_for_line("GOT " + std::to_string(count) + " ", transfer)) << out(*sink);
    expect_clean_stop(*sink);
    const auto final_line = sink->wait_for_line("FINAL", 10000ms);
    ASSERT_TRUE(final_line) << out(*sink);
    EXPECT_NE(final_line->find("copied_after 0 corrupt 0 disorder 0"), std::string::npos) << *final_line;
    EXPECT_NE(final_line->find("inplace " + std::to_string(count) + " "), std::string::npos)
        << "every bin read in the sender's pool: " << *final_line;
    expect_clean_stop(*sender);
}

TEST_F(ShmLoanTest, EightMegabyteLoansReachTwoListenersInPlaceAndInOrder) {
    constexpr int count = 12;
    auto one = start({"listen", "camera", "--name", "sink1"}, "sink1");
    auto two = start({"listen", "camera", "--typed", "yes", "--name", "sink2"}, "sink2");
    ASSERT_TRUE(one->wait_for_line("READY", startup)) << out(*one);
    ASSERT_TRUE(two->wait_for_line("READY", startup)) << out(*two);
    auto sender = start({"send", "camera", "--size", std::to_string(8u << 20), "--count", std::to_string(count),
                         "--listeners", "2", "--name", "camera"},
                        "camera");
    ASSERT_TRUE(sender->wait_for_line("SENT", transfer)) << out(*sender) << out(*one) << out(*two);
    for (auto* listener : {one.get(), two.get()}) {
        EXPECT_TRUE(listener->wait_for_line("GOT " + std::to_string(count) + " ", transfer)) << out(*listener);
        EXPECT_GE(peer_pools(listener->pid()), 1u) << "the sender's pool is mapped read-only";
        expect_clean_stop(*listener);
        const auto final_line = listener->wait_for_line("FINAL", 10000ms);
        ASSERT_TRUE(final_line) << out(*listener);
        EXPECT_NE(final_line->find("copied_after 0 corrupt 0 disorder 0"), std::string::npos)
            << *final_line << "\n"
            << out(*listener) << out(*sender);
        EXPECT_EQ(final_line->find("inplace 0 "), std::string::npos) << "read in place: " << *final_line;
        EXPECT_NE(final_line->find(" " + std::to_string(std::uint64_t{count} * (8u << 20)) + " "), std::string::npos)
            << *final_line;
    }
    expect_clean_stop(*sender);
}

TEST_F(ShmLoanTest, AKilledSenderLeavesNoPoolMappedAndNoCorruptMessage) {
    auto listener = start({"listen", "stream", "--name", "sink"}, "sink");
    ASSERT_TRUE(listener->wait_for_line("READY", startup)) << out(*listener);
    auto sender = start(
        {"send", "stream", "--size", std::to_string(1u << 20), "--count", "1000000", "--name", "source"}, "source");
    std::size_t at = 0;
    ASSERT_TRUE(listener->wait_for_match(
        [](const std::string& l) { return l.starts_with("GOT ") && l.find(" inplace 0") == std::string::npos; },
        transfer, 0, &at))
        << out(*listener) << out(*sender);
    EXPECT_GE(peer_pools(listener->pid()), 1u);
    sender->kill();  // mid-stream, mid-message
    // Its pool goes from the listener once nothing holds its messages, and the listener goes on.
    EXPECT_TRUE(eventually([&] { return peer_pools(listener->pid()) == 0; }, 10000ms)) << "still mapped";
    expect_clean_stop(*listener);
    const auto final_line = listener->wait_for_line("FINAL", 10000ms);
    ASSERT_TRUE(final_line) << out(*listener);
    EXPECT_NE(final_line->find("corrupt 0 disorder 0"), std::string::npos) << *final_line;
}

TEST_F(ShmLoanTest, AKilledListenerHoldingLoansFreesThemForAWaitingSender) {
    // A 16 MiB pool takes four 4 MiB loans; the listener keeps every message it gets.
    auto listener = start({"listen", "hold", "--hold", "1000", "--name", "sink"}, "sink");
    ASSERT_TRUE(listener->wait_for_line("READY", startup)) << out(*listener);
    auto sender = start({"send", "hold", "--size", std::to_string(4u << 20), "--count", "12", "--pool",
                         std::to_string(16u << 20), "--outbox", "wait", "--name", "source"},
                        "source");
    ASSERT_TRUE(listener->wait_for_line("HELD 4", transfer)) << out(*listener) << out(*sender);
    // The pool is full: the sender's next loan waits (it cannot finish while the listener holds them).
    EXPECT_TRUE(eventually(
        [&] {
            const auto lines = sender->lines();
            return !lines.empty() && lines.back().starts_with("LOAN ");
        },
        10000ms))
        << out(*sender);
    EXPECT_EQ(sender->count_lines("SENT"), 0u) << out(*sender);
    listener->kill();
    // Its holds went with its link: the waiting loan and the rest go through (to nobody).
    EXPECT_TRUE(sender->wait_for_line("SENT 12", transfer)) << out(*sender);
    expect_clean_stop(*sender);
}

TEST_F(ShmLoanTest, AFullPoolRefusesLoansUnderDropUntilTheHolderIsKilled) {
    auto listener = start({"listen", "hold", "--hold", "1000", "--name", "sink"}, "sink");
    ASSERT_TRUE(listener->wait_for_line("READY", startup)) << out(*listener);
    auto sender = start({"send", "hold", "--size", std::to_string(4u << 20), "--count", "12", "--pool",
                         std::to_string(16u << 20), "--outbox", "drop", "--name", "source"},
                        "source");
    ASSERT_TRUE(sender->wait_for_line("EXHAUSTED", transfer)) << out(*sender) << out(*listener);
    EXPECT_TRUE(listener->wait_for_line("HELD 4", 5000ms)) << out(*listener);
    EXPECT_EQ(sender->count_lines("SENT"), 0u);
    listener->kill();
    EXPECT_TRUE(sender->wait_for_line("SENT 12", transfer)) << out(*sender);
    expect_clean_stop(*sender);
}

TEST_F(ShmLoanTest, ALoanUsedAfterSendIsRefused) {
    auto p = start({"misuse", "--name", "misuse"}, "misuse");
    const auto status = p->wait_exit(transfer);
    ASSERT_TRUE(status && status->success()) << out(*p);
    EXPECT_TRUE(p->wait_for_line("SPENT ", 1000ms)) << out(*p);
    EXPECT_TRUE(p->wait_for_line("TWICE REFUSED ", 1000ms)) << out(*p);
    EXPECT_TRUE(p->wait_for_line("TOO LARGE REFUSED ", 1000ms)) << out(*p);
}

}  // namespace
}  // namespace meshy::test

int main(int argc, char** argv) {
    using namespace meshy::test;
    return run_role_or_tests(argc, argv, {{"listen", role_listen}, {"send", role_send}, {"misuse", role_misuse}});
}
