// In-process tests of Node: real sockets on loopback, same-host discovery in a private directory.
// The multi-process behaviour (Avahi, kill -9, restarts) is covered by tests/integration.
#include <gtest/gtest.h>
#include <unistd.h>

#include <algorithm>
#include <asio/co_spawn.hpp>
#include <asio/detached.hpp>
#include <asio/executor_work_guard.hpp>
#include <asio/io_context.hpp>
#include <asio/steady_timer.hpp>
#include <asio/this_coro.hpp>
#include <asio/use_awaitable.hpp>
#include <asio/use_future.hpp>
#include <atomic>
#include <cctype>
#include <chrono>
#include <cstdint>
#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <functional>
#include <future>
#include <iterator>
#include <meshy/meshy.hpp>
#include <mutex>
#include <optional>
#include <thread>
#include <vector>

using namespace std::chrono_literals;
using meshy::CallOptions;
using meshy::errc;
using meshy::Error;
using meshy::Node;
using meshy::NodeOptions;

namespace {

/// Polls `condition` until it holds or `deadline` passes.
bool eventually(const std::function<bool()>& condition, std::chrono::milliseconds deadline = 5s) {
    const auto until = std::chrono::steady_clock::now() + deadline;
    while (std::chrono::steady_clock::now() < until) {
        if (condition()) {
            return true;
        }
        std::this_thread::sleep_for(5ms);
    }
    return condition();
}

/// Runs a coroutine on the node's executor and waits for it, under a deadline so a hang fails.
template <class T>
T await(Node& node, asio::awaitable<T> op, std::chrono::milliseconds deadline = 10s) {
    auto future = asio::co_spawn(node.get_executor(), std::move(op), asio::use_future);
    if (future.wait_for(deadline) != std::future_status::ready) {
        ADD_FAILURE() << "coroutine did not finish within " << deadline.count() << " ms";
        std::abort();  // the coroutine still refers to this frame's objects
    }
    return future.get();
}

struct Pose {
    double x = 0, y = 0;
    MSGPACK_DEFINE(x, y)
    template <class A>
    void serialize(A& ar) {
        ar(x, y);
    }
};

/// Collects the warnings logged while it lives (the log sink is global).
class WarningLog {
public:
    WarningLog() {
        meshy::set_log_sink([this](meshy::LogLevel level, std::string_view text) {
            if (level == meshy::LogLevel::warn) {
                std::lock_guard lock(mutex_);
                warnings_.emplace_back(text);
            }
        });
    }
    ~WarningLog() { meshy::set_log_sink({}); }
    WarningLog(const WarningLog&) = delete;
    WarningLog& operator=(const WarningLog&) = delete;
    bool empty() const {
        std::lock_guard lock(mutex_);
        return warnings_.empty();
    }
    bool contains(std::string_view part) const { return !matching(part).empty(); }
    std::vector<std::string> matching(std::string_view part) const {
        std::lock_guard lock(mutex_);
        std::vector<std::string> out;
        std::copy_if(warnings_.begin(), warnings_.end(), std::back_inserter(out),
                     [&](const std::string& w) { return w.find(part) != std::string::npos; });
        return out;
    }

private:
    mutable std::mutex mutex_;
    std::vector<std::string> warnings_;
};

class NodeTest : public ::testing::Test {
protected:
    void SetUp() override {
        dir_ = std::filesystem::temp_directory_path() / ("meshy-unit-" + std::to_string(::getpid()));
        std::filesystem::create_directories(dir_);
        ::setenv("MESHY_LOCAL_DISCOVERY_DIR", dir_.c_str(), 1);
        ::setenv("MESHY_DISCOVERY", "local", 1);
        domain_ = std::string(::testing::UnitTest::GetInstance()->current_test_info()->name()) + "-" +
                  std::to_string(::getpid());
    }
    void TearDown() override {
        std::error_code ignored;
        std::filesystem::remove_all(dir_, ignored);
    }
    NodeOptions options(std::string name, meshy::CodecId codec = meshy::CodecId::msgpack) {
        NodeOptions o{.name = std::move(name), .domain_id = domain_, .listen_host = "127.0.0.1", .codec = codec};
        o.unix_socket_dir = dir_.string();
        return o;
    }
    std::filesystem::path dir_;
    std::string domain_;
};

}  // namespace

TEST_F(NodeTest, TopicRoundTripBetweenTwoNodes) {
    Node listener(options("listener"));
    Node sender(options("sender"));
    std::mutex mutex;
    std::vector<std::string> got;
    await(listener, listener.listen("chatter", [&](const std::string& text, int n) {
        std::lock_guard lock(mutex);
        got.push_back(text + std::to_string(n));
    }));
    sender.wait_for_listener_blocking("chatter", 5s);
    sender.send_blocking("chatter", "hello", 1);
    await(sender, sender.send("chatter", std::string("hello"), 2));
    ASSERT_TRUE(eventually([&] {
        std::lock_guard lock(mutex);
        return got.size() == 2;
    }));
    EXPECT_EQ(got, (std::vector<std::string>{"hello1", "hello2"}));
}

TEST_F(NodeTest, DeliversToItself) {
    Node sut(options("solo"));
    std::atomic<int> sum{0};
    sut.listen_blocking("numbers", [&](int n) { sum += n; });
    EXPECT_TRUE(sut.topic_has_listeners("numbers"));
    sut.send_blocking("numbers", 40);
    sut.send_blocking("numbers", 2);
    EXPECT_TRUE(eventually([&] { return sum == 42; }));
}

TEST_F(NodeTest, SendingWithoutListenersDoesNothing) {
    Node sut(options("quiet"));
    EXPECT_FALSE(sut.topic_has_listeners("nobody"));
    EXPECT_NO_THROW(sut.send_blocking("nobody", 1));
}

TEST_F(NodeTest, ServiceCallsAndErrors) {
    Node provider(options("provider"));
    Node caller(options("caller"));
    provider.add_service_blocking("multiply", [](int a, int b) { return a * b; });
    provider.add_service_blocking("fail", []() -> int { throw std::runtime_error("boom"); });
    std::atomic<int> slow_done{0};
    provider.add_service_blocking("slow", [&]() -> asio::awaitable<int> {
        asio::steady_timer t(co_await asio::this_coro::executor, 300ms);
        co_await t.async_wait(asio::use_awaitable);
        ++slow_done;
        co_return 1;
    });
    caller.wait_for_service_provider_blocking("multiply", 5s);
    caller.wait_for_service_provider_blocking("slow", 5s);

    EXPECT_EQ(caller.call_blocking<int>("multiply", 6, 7), 42);
    EXPECT_EQ(await(caller, caller.call<int>("multiply", 2, 2)), 4);

    try {
        caller.call_blocking<int>("fail");
        FAIL() << "no error";
    } catch (const Error& e) {
        EXPECT_EQ(e.code(), errc::remote_error);
        EXPECT_NE(std::string(e.what()).find("boom"), std::string::npos);
    }
    try {
        caller.call_blocking<int>(CallOptions{.timeout = 50ms}, "slow");
        FAIL() << "no timeout";
    } catch (const Error& e) {
        EXPECT_EQ(e.code(), errc::timeout);
    }
    // The late reply of the timed-out call must not answer this one.
    EXPECT_EQ(caller.call_blocking<int>("multiply", 3, 3), 9);
    ASSERT_TRUE(eventually([&] { return slow_done == 1; }));  // the late reply is on its way
    for (int i = 0; i < 20; ++i) {
        EXPECT_EQ(caller.call_blocking<int>("multiply", i, 5), i * 5);
    }

    try {
        caller.call_blocking<int>("missing");
        FAIL() << "no error";
    } catch (const Error& e) {
        EXPECT_EQ(e.code(), errc::no_provider);
    }
}

// Callers and providers remember the service they looked up last: a replaced or removed handler
// must still be the one answering, or none, and a removed one is released at once.
TEST_F(NodeTest, ReplacedAndRemovedServiceHandlersTakeEffectAtOnce) {
    Node provider(options("provider"));
    Node caller(options("caller"));
    auto first = std::make_shared<int>(1), second = std::make_shared<int>(2);
    std::weak_ptr<int> first_alive = first, second_alive = second;
    provider.add_service_blocking("op", [held = std::move(first)](int a, int b) { return a * b; });
    caller.wait_for_service_provider_blocking("op", 5s);
    EXPECT_EQ(caller.call_blocking<int>("op", 6, 7), 42);
    EXPECT_EQ(await(provider, provider.call<int>("op", 2, 5)), 10);  // its own handler

    provider.add_service_blocking("op", [held = std::move(second)](int a, int b) { return a + b; });
    EXPECT_TRUE(first_alive.expired());
    EXPECT_EQ(caller.call_blocking<int>("op", 6, 7), 13);
    EXPECT_EQ(await(provider, provider.call<int>("op", 2, 5)), 7);

    EXPECT_TRUE(provider.remove_service("op"));
    EXPECT_TRUE(second_alive.expired());
    EXPECT_THROW(
        {
            try {
                provider.call_blocking<int>("op", 1, 1);
            } catch (const Error& e) {
                EXPECT_EQ(e.code(), errc::no_provider);
                throw;
            }
        },
        Error);
    // The caller may still send the request before it hears of the removal: it is refused.
    EXPECT_THROW(caller.call_blocking<int>("op", 1, 1), Error);
}

TEST_F(NodeTest, StructsWithEachCodec) {
    {
        Node listener(options("l"));
        Node sender(options("s"));
        std::atomic<double> seen{0};
        listener.listen_blocking("pose", [&](const Pose& p) { seen = p.x + p.y; });
        sender.wait_for_listener_blocking("pose", 5s);
        sender.send_blocking("pose", Pose{1, 2});
        EXPECT_TRUE(eventually([&] { return seen == 3; }));
    }
    {
        // cereal is named, not found among the included headers (see detail/codec_dispatch.hpp):
        // a codec list follows the node's codec.
        using Either = meshy::Codecs<meshy::CerealCodec, meshy::MsgpackCodec>;
        Node listener(options("l", meshy::CodecId::cereal));
        Node sender(options("s", meshy::CodecId::cereal));
        std::atomic<double> seen{0};
        listener.listen_blocking<Either>("pose", [&](const Pose& p) { seen = seen + p.x + p.y; });
        sender.wait_for_listener_blocking("pose", 5s);
        sender.send_blocking<Either>("pose", Pose{1, 2});
        sender.send_blocking<meshy::MsgpackCodec>("pose", Pose{3, 4});
        EXPECT_TRUE(eventually([&] { return seen == 10; }));
    }
}

TEST_F(NodeTest, WithoutACodecArgumentANodeOfCerealRefusesTypedOperations) {
    Node sut(options("s", meshy::CodecId::cereal));
    const auto expect_mismatch = [](auto&& operation) {
        try {
            operation();
            ADD_FAILURE() << "no error";
        } catch (const Error& e) {
            EXPECT_EQ(e.code(), errc::codec_mismatch);
            EXPECT_NE(std::string(e.what()).find("CerealCodec"), std::string::npos) << e.what();
        }
    };
    expect_mismatch([&] { sut.send_blocking("pose", Pose{1, 2}); });  // even with nobody listening
    expect_mismatch([&] { sut.add_service_blocking("twice", [](int x) { return 2 * x; }); });
    expect_mismatch([&] { (void)sut.call_blocking<int>("twice", 1); });
    EXPECT_TRUE(sut.provided_services().empty());
}

TEST_F(NodeTest, RawCodecAndRawListener) {
    Node listener(options("l"));
    Node sender(options("s", meshy::CodecId::raw));
    std::mutex mutex;
    std::string body;
    meshy::CodecId codec{};
    listener.listen_raw("blob", [&](const meshy::RawMessage& m) {
        std::lock_guard lock(mutex);
        body.assign(reinterpret_cast<const char*>(m.payload.data()), m.payload.size());
        codec = m.codec;
    });
    sender.wait_for_listener_blocking("blob", 5s);
    sender.send_blocking("blob", std::string("\x01\x02 bytes"));
    ASSERT_TRUE(eventually([&] {
        std::lock_guard lock(mutex);
        return !body.empty();
    }));
    EXPECT_EQ(body, "\x01\x02 bytes");
    EXPECT_EQ(codec, meshy::CodecId::raw);
}

TEST_F(NodeTest, UndecodableMessagesAreDroppedWithAWarning) {
    WarningLog warnings;
    Node sut(options("typed"));
    std::atomic<int> ints{0};
    sut.listen_blocking("numbers", [&](int) { ++ints; });
    sut.send_blocking("numbers", "not a number");
    sut.send_blocking("numbers", 1);
    EXPECT_TRUE(eventually([&] { return ints == 1; }));
    EXPECT_TRUE(eventually([&] { return !warnings.empty(); }));
}

TEST_F(NodeTest, SlowCoroutineCallbackDoesNotStallOtherTopics) {
    asio::io_context io;
    Node listener(io.get_executor(), options("listener"));
    std::thread runner([&] { io.run(); });
    Node sender(options("sender"));
    std::atomic<int> slow_done{0}, fast{0};
    listener.listen_blocking("slow", [&](int) -> asio::awaitable<void> {
        asio::steady_timer t(co_await asio::this_coro::executor, 2s);
        co_await t.async_wait(asio::use_awaitable);
        ++slow_done;
    });
    listener.listen_blocking("fast", [&](int) { ++fast; });
    sender.wait_for_listener_blocking("slow", 5s);
    sender.wait_for_listener_blocking("fast", 5s);
    sender.send_blocking("slow", 1);
    for (int i = 0; i < 50; ++i) {
        sender.send_blocking("fast", i);
    }
    EXPECT_TRUE(eventually([&] { return fast == 50; }, 1500ms));
    EXPECT_EQ(slow_done, 0);
    listener.stop();
    io.stop();
    runner.join();
}

TEST_F(NodeTest, SlowCoroutineListenerKeepsTheNewestMessages) {
    auto o = options("solo");
    o.inbox_capacity = 4;
    Node sut(o);
    std::mutex mutex;
    std::vector<int> got;
    std::atomic<bool> release{false};
    sut.listen_blocking("numbers", [&](int n) -> asio::awaitable<void> {
        {
            std::lock_guard lock(mutex);
            got.push_back(n);
        }
        asio::steady_timer t(co_await asio::this_coro::executor);
        for (int i = 0; i < 1000 && !release; ++i) {  // the first message holds the listener up
            t.expires_after(5ms);
            co_await t.async_wait(asio::use_awaitable);
        }
    });
    sut.send_blocking("numbers", 0);
    ASSERT_TRUE(eventually([&] {
        std::lock_guard lock(mutex);
        return got.size() == 1;
    }));
    for (int i = 1; i < 100; ++i) {
        sut.send_blocking("numbers", i);
    }
    release = true;
    ASSERT_TRUE(eventually([&] {
        std::lock_guard lock(mutex);
        return got.size() == 5;
    }));
    std::lock_guard lock(mutex);
    EXPECT_EQ(got, (std::vector<int>{0, 96, 97, 98, 99}));
}

// The messages of one read share one reference to their receive buffer, handed on as they leave
// the inbox (taken, or dropped when it is full). A small inbox and a listener that falls behind
// drop many of them mid-run: every message that does arrive must still be intact (run under ASan
// in CI), plain or coroutine listener alike. On a node's own thread a plain listener is called
// where its messages are read, without the inbox; on a user's io_context with two threads it has
// the inbox, filled while the listener is held up.
enum class ListenerKind { plain, plain_on_executor, coroutine };
class InboxRunTest : public NodeTest, public ::testing::WithParamInterface<ListenerKind> {};

TEST_P(InboxRunTest, MessagesOfOneReadStayIntactThroughDrops) {
    const bool coroutine = GetParam() == ListenerKind::coroutine;
    auto listener_options = options("listener");
    listener_options.inbox_capacity = 5;
    asio::io_context io;
    auto work = asio::make_work_guard(io);
    std::vector<std::thread> runners;
    std::optional<Node> listener_storage;
    if (GetParam() == ListenerKind::plain_on_executor) {
        listener_storage.emplace(io.get_executor(), listener_options);
        for (int i = 0; i < 2; ++i) {
            runners.emplace_back([&] { io.run(); });
        }
    } else {
        listener_storage.emplace(listener_options);
    }
    Node& listener = *listener_storage;
    Node sender(options("sender"));
    auto text_of = [](int seq) {
        return std::to_string(seq) + std::string(40 + seq % 50, static_cast<char>('a' + seq % 26));
    };
    std::mutex mutex;
    int received = 0, corrupt = 0, last = -1;
    std::atomic<bool> all_sent{false};
    auto check = [&](int seq, const std::string& text) {
        std::lock_guard lock(mutex);
        ++received;
        corrupt += text == text_of(seq) && seq > last ? 0 : 1;
        last = seq;
    };
    if (coroutine) {
        listener.listen_blocking("burst", [&](int seq, const std::string& text) -> asio::awaitable<void> {
            check(seq, text);
            if (seq == 0) {
                eventually([&] { return all_sent.load(); });  // fall behind the whole burst
            }
            co_return;
        });
    } else {
        listener.listen_blocking("burst", [&](int seq, const std::string& text) {
            check(seq, text);
            if (seq == 0) {
                eventually([&] { return all_sent.load(); });  // fall behind the whole burst
            }
        });
    }
    sender.wait_for_listener_blocking("burst", 5s);
    constexpr int count = 20000;
    for (int seq = 0; seq < count; ++seq) {
        sender.send_blocking("burst", seq, text_of(seq));
    }
    all_sent = true;
    sender.send_blocking("burst", count, text_of(count));
    EXPECT_TRUE(eventually([&] {
        std::lock_guard lock(mutex);
        return last == count;
    }));
    {
        std::lock_guard lock(mutex);
        EXPECT_EQ(corrupt, 0);
        EXPECT_GT(received, 0);
    }
    listener.stop();
    work.reset();
    for (auto& runner : runners) {
        runner.join();
    }
}

INSTANTIATE_TEST_SUITE_P(Listener,
                         InboxRunTest,
                         ::testing::Values(ListenerKind::plain,
                                           ListenerKind::plain_on_executor,
                                           ListenerKind::coroutine),
                         [](const auto& info) {
                             switch (info.param) {
                                 case ListenerKind::plain:
                                     return std::string("plain");
                                 case ListenerKind::plain_on_executor:
                                     return std::string("plain_on_executor");
                                 default:
                                     return std::string("coroutine");
                             }
                         });

// A listener that falls behind again and again has its inbox fill and drain many times a second:
// every drop is still reported (when it happens, when the inbox drains, and when the listener
// stops), and no more than about once a second.
TEST_F(NodeTest, EveryInboxDropIsReportedAndWarningsAreRateLimited) {
    WarningLog warnings;
    auto listener_options = options("listener");
    listener_options.inbox_capacity = 4;
    asio::io_context io;
    auto work = asio::make_work_guard(io);
    std::vector<std::thread> runners;
    Node listener(io.get_executor(), listener_options);
    for (int i = 0; i < 2; ++i) {
        runners.emplace_back([&] { io.run(); });  // one is held by the listener, one reads
    }
    Node sender(options("sender"));
    constexpr int rounds = 6, per_round = 30;
    std::mutex mutex;
    int received = 0, last = -1;
    std::atomic<int> released{-1};  // the round whose burst has been sent
    listener.listen_blocking("burst", [&](int seq) {
        {
            std::lock_guard lock(mutex);
            ++received;
            last = seq;
        }
        if (seq % per_round == 0) {
            eventually([&] { return released.load() >= seq / per_round; });  // fall behind the burst
        }
    });
    sender.wait_for_listener_blocking("burst", 5s);
    const auto start = std::chrono::steady_clock::now();
    for (int round = 0; round < rounds; ++round) {
        for (int i = 0; i < per_round; ++i) {
            sender.send_blocking("burst", round * per_round + i);
        }
        released = round;
        // The newest message is never the one dropped: once it is in, the inbox has drained.
        const bool drained = eventually([&] {
            std::lock_guard lock(mutex);
            return last == round * per_round + per_round - 1;
        });
        EXPECT_TRUE(drained) << "round " << round;
        if (!drained) {
            released = rounds;  // let the listener go; the runners are joined below
            break;
        }
    }
    EXPECT_TRUE(listener.stop_listening("burst"));
    const auto seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
    const auto reports = warnings.matching("from its full inbox");
    std::uint64_t dropped = 0;
    for (const auto& line : reports) {
        const auto at = line.find("dropped ");
        EXPECT_NE(at, std::string::npos) << line;
        dropped += at == std::string::npos ? 0 : std::stoull(line.substr(at + 8));
    }
    {
        std::lock_guard lock(mutex);
        EXPECT_GT(dropped, 0u);
        EXPECT_EQ(static_cast<std::uint64_t>(received) + dropped, std::uint64_t{rounds * per_round});
    }
    // One report for the first drop, then at most one a second, and the last one at the end.
    EXPECT_LE(static_cast<double>(reports.size()), 2 + seconds) << reports.size() << " reports in " << seconds << " s";
    listener.stop();
    work.reset();
    for (auto& runner : runners) {
        runner.join();
    }
}

// A plain listener on the node's own thread is called where its messages are read: one that
// throws is logged and gets the next message, and one that stops listening gets no more.
TEST_F(NodeTest, PlainListenerThatThrowsOrStopsListeningOnItsOwnThread) {
    WarningLog warnings;
    Node listener(options("listener"));
    Node sender(options("sender"));
    std::atomic<int> thrown{0}, seen_after_stop{0}, stops{0};
    std::atomic<bool> stopped{false};
    listener.listen_blocking("faulty", [&](int n) {
        if (n % 2 == 0) {
            ++thrown;
            throw std::runtime_error("even " + std::to_string(n));
        }
    });
    listener.listen_blocking("once", [&](int) {
        if (stopped) {
            ++seen_after_stop;  // a callback after stop_listening() returned
        }
        ++stops;
        listener.stop_listening("once");
        stopped = true;
    });
    sender.wait_for_listener_blocking("faulty", 5s);
    sender.wait_for_listener_blocking("once", 5s);
    for (int i = 0; i < 10; ++i) {
        sender.send_blocking("once", i);  // several in one read, most likely
    }
    for (int i = 0; i < 100; ++i) {
        sender.send_blocking("faulty", i);
    }
    EXPECT_TRUE(eventually([&] { return thrown == 50; }));
    EXPECT_EQ(stops, 1);
    EXPECT_EQ(seen_after_stop, 0);
    EXPECT_TRUE(eventually([&] { return warnings.contains("listener of 'faulty' threw: even 98"); }));
}

// A peer whose advert offers nothing to connect to (Unix sockets only, and its socket file gone,
// as after a crash) is redialled with back-off; the node must keep working meanwhile. It used to
// deadlock on its own lock at the first redial.
TEST_F(NodeTest, UnreachablePeerIsRedialledWithoutBlockingTheNode) {
    auto unix_only = [&](std::string name) {
        auto o = options(std::move(name));
        o.allow_tcp = false;
        return o;
    };
    Node gone(unix_only("gone"));
    for (const auto& entry : std::filesystem::directory_iterator(dir_)) {
        if (entry.path().extension() == ".sock") {
            std::filesystem::remove(entry.path());
        }
    }
    Node sut(unix_only("sut"));
    // Several redials (100, 200, 400 ms) while the node answers: each query takes the node's lock.
    const auto until = std::chrono::steady_clock::now() + 900ms;
    auto prober = std::async(std::launch::async, [&] {
        while (std::chrono::steady_clock::now() < until) {
            (void)sut.nodes();
        }
    });
    if (prober.wait_until(until + 3s) != std::future_status::ready) {
        ADD_FAILURE() << "the node's lock is held for good";
        std::abort();  // a deadlocked node cannot be destroyed
    }
    sut.listen_blocking("still-works", [](int) {});
    EXPECT_TRUE(sut.topic_has_listeners("still-works"));
}

TEST_F(NodeTest, SmallAndLargeMessagesKeepTheirOrder) {
    Node listener(options("listener", meshy::CodecId::raw));
    Node sender(options("sender", meshy::CodecId::raw));
    std::mutex mutex;
    std::vector<std::size_t> sizes;
    listener.listen_raw("mixed", [&](const meshy::RawMessage& m) {
        std::lock_guard lock(mutex);
        sizes.push_back(m.payload.size());
    });
    sender.wait_for_listener_blocking("mixed", 5s);
    std::vector<std::size_t> sent;
    for (int i = 0; i < 300; ++i) {
        const std::size_t size = i % 3 == 0 ? 100000 : i % 3 == 1 ? 10 : 3000;  // shared, inline, shared
        const std::vector<std::byte> payload(size, std::byte{0x5a});
        sender.send_raw("mixed", meshy::CodecId::raw, payload);
        sent.push_back(size);
    }
    ASSERT_TRUE(eventually([&] {
        std::lock_guard lock(mutex);
        return sizes.size() == sent.size();
    }));
    std::lock_guard lock(mutex);
    EXPECT_EQ(sizes, sent);
}

// Large payloads are written from the caller's bytes (with OutboxFull::wait by the sending thread
// itself), small ones copied from them into the outbox; the receiver reads them to their end. Sizes
// that vary, small and empty ones between them, and the sender's own listener (which gets a copy)
// must all see every message intact and in order, with the default socket buffers, small ones (many
// partial writes per message) and the kernel's own.
class LargeSendTest : public NodeTest,
                      public ::testing::WithParamInterface<std::tuple<meshy::OutboxFull, bool, std::size_t>> {};

TEST_P(LargeSendTest, LargePayloadsArriveIntactAndInOrder) {
    const auto [outbox_full, tcp, socket_buffer] = GetParam();
    auto listener_options = options("listener");
    listener_options.allow_unix = !tcp;
    listener_options.socket_buffer_size = socket_buffer;
    Node listener(listener_options);
    auto sender_options = options("sender");
    sender_options.outbox_full = outbox_full;
    sender_options.allow_unix = !tcp;
    sender_options.socket_buffer_size = socket_buffer;
    Node sender(sender_options);
    auto pattern = [](int seq, std::size_t size) {
        std::vector<std::uint8_t> bytes(size);
        for (std::size_t i = 0; i < size; ++i) {
            bytes[i] = static_cast<std::uint8_t>(i * 31 + static_cast<std::size_t>(seq));
        }
        return bytes;
    };
    struct Seen {
        std::mutex mutex;
        std::vector<int> order;
        int corrupt = 0;
    } remote, own;
    auto listen = [&](Node& node, Seen& seen) {
        node.listen_blocking("large", [&, &seen = seen](int seq, const std::vector<std::uint8_t>& bytes) {
            const bool intact = bytes == pattern(seq, bytes.size());
            std::lock_guard lock(seen.mutex);
            seen.order.push_back(seq);
            seen.corrupt += intact ? 0 : 1;
        });
    };
    listen(listener, remote);
    sender.wait_for_listener_blocking("large", 5s);
    listen(sender, own);  // after: waiting counts this node's own listener too
    const std::size_t sizes[] = {70000, 10,   (std::size_t{1} << 20) + 3, 3000, 0, 300000, std::size_t{3} << 20,
                                 1500,  65536};
    constexpr int count = 40;
    for (int seq = 0; seq < count; ++seq) {
        const auto size = sizes[static_cast<std::size_t>(seq) % std::size(sizes)];
        sender.send_blocking("large", seq, pattern(seq, size));
    }
    for (Seen* seen : {&remote, &own}) {
        const bool all = eventually(
            [&] {
                std::lock_guard lock(seen->mutex);
                return seen->order.size() == count;
            },
            20s);
        std::lock_guard lock(seen->mutex);
        std::string got;
        for (int seq : seen->order) {
            got += " " + std::to_string(seq);
        }
        ASSERT_TRUE(all) << (seen == &own ? "own listener" : "remote listener") << " got" << got;
        EXPECT_EQ(seen->corrupt, 0);
        for (int seq = 0; seq < count; ++seq) {
            EXPECT_EQ(seen->order[static_cast<std::size_t>(seq)], seq);
        }
    }
}

std::string large_send_name(const ::testing::TestParamInfo<LargeSendTest::ParamType>& info) {
    const auto [outbox_full, tcp, socket_buffer] = info.param;
    return std::string(outbox_full == meshy::OutboxFull::wait ? "wait" : "drop_oldest") + (tcp ? "_tcp" : "_unix") +
           (socket_buffer == NodeOptions{}.socket_buffer_size ? "" : "_buffer" + std::to_string(socket_buffer));
}

INSTANTIATE_TEST_SUITE_P(Outbox,
                         LargeSendTest,
                         ::testing::Combine(::testing::Values(meshy::OutboxFull::drop_oldest, meshy::OutboxFull::wait),
                                            ::testing::Bool(),
                                            ::testing::Values(NodeOptions{}.socket_buffer_size)),
                         large_send_name);
INSTANTIATE_TEST_SUITE_P(SocketBuffer,
                         LargeSendTest,
                         ::testing::Combine(::testing::Values(meshy::OutboxFull::wait),
                                            ::testing::Bool(),
                                            ::testing::Values(std::size_t{0}, std::size_t{16384})),
                         large_send_name);

TEST_F(NodeTest, LargeServiceRequestAndReplyRoundTrip) {
    Node provider(options("provider", meshy::CodecId::raw));
    Node caller(options("caller", meshy::CodecId::raw));
    provider.add_service_raw("reverse", [](const meshy::RawMessage& m) -> asio::awaitable<meshy::RawPayload> {
        meshy::RawPayload reply;
        reply.codec = m.codec;
        for (auto it = m.payload.rbegin(); it != m.payload.rend(); ++it) {
            reply.bytes.append(&*it, 1);
        }
        co_return reply;
    });
    caller.wait_for_service_provider_blocking("reverse", 5s);
    for (const std::size_t size : {std::size_t{0}, std::size_t{5}, std::size_t{3} << 20}) {
        meshy::Buffer request;
        for (std::size_t i = 0; i < size; ++i) {
            const auto b = static_cast<std::byte>(i % 251);
            request.append(&b, 1);
        }
        const auto reply =
            caller.call_raw_blocking("reverse", meshy::CodecId::raw, request, CallOptions{.timeout = 10s});
        ASSERT_EQ(reply.bytes.size(), size);
        for (std::size_t i = 0; i < size; ++i) {
            ASSERT_EQ(reply.bytes.data()[i], request.data()[size - 1 - i]) << "at " << i;
        }
    }
}

// A reply may land in its request's buffer: replies shorter and longer than their request arrive
// whole, with nothing of the request left in them.
TEST_F(NodeTest, RepliesOfOtherSizesThanTheirRequestArriveWhole) {
    Node provider(options("provider", meshy::CodecId::raw));
    Node caller(options("caller", meshy::CodecId::raw));
    // The request's first 4 bytes say how long a reply to make; its bytes count down from 250.
    provider.add_service_raw("sized", [](const meshy::RawMessage& m) {
        std::uint32_t size = 0;
        std::memcpy(&size, m.payload.data(), sizeof size);
        meshy::RawPayload reply;
        reply.codec = m.codec;
        for (std::uint32_t i = 0; i < size; ++i) {
            const auto b = static_cast<std::byte>(250 - i % 251);
            reply.bytes.append(&b, 1);
        }
        return reply;
    });
    caller.wait_for_service_provider_blocking("sized", 5s);
    for (const std::uint32_t request_size : {4u, 40u, 1000u, 100000u}) {
        for (const std::uint32_t reply_size : {0u, 3u, 1000u, 5000u, 200000u}) {
            meshy::Buffer request;
            request.append(&reply_size, sizeof reply_size);
            for (std::uint32_t i = 4; i < request_size; ++i) {
                const auto b = static_cast<std::byte>(i % 251);
                request.append(&b, 1);
            }
            const auto reply =
                caller.call_raw_blocking("sized", meshy::CodecId::raw, std::move(request), CallOptions{.timeout = 10s});
            ASSERT_EQ(reply.bytes.size(), reply_size) << request_size << " -> " << reply_size;
            for (std::uint32_t i = 0; i < reply_size; ++i) {
                ASSERT_EQ(reply.bytes.data()[i], static_cast<std::byte>(250 - i % 251)) << "at " << i;
            }
        }
    }
}

TEST_F(NodeTest, PlainRawServiceAnswersAndReportsItsException) {
    Node provider(options("provider", meshy::CodecId::raw));
    Node caller(options("caller", meshy::CodecId::raw));
    provider.add_service_raw("upper", [](const meshy::RawMessage& m) {
        if (m.payload.empty()) {
            throw std::runtime_error("nothing to upper");
        }
        meshy::RawPayload reply;
        reply.codec = m.codec;
        for (const std::byte b : m.payload) {
            const auto c = static_cast<char>(std::toupper(static_cast<unsigned char>(b)));
            reply.bytes.append(&c, 1);
        }
        return reply;
    });
    // Something that is not a std::exception reaches the caller too, remote or local.
    provider.add_service_raw("odd", [](const meshy::RawMessage&) -> meshy::RawPayload { throw 42; });
    caller.wait_for_service_provider_blocking("upper", 5s);
    caller.wait_for_service_provider_blocking("odd", 5s);
    auto expect_remote_error = [](Node& node, const char* service, const std::string& text) {
        try {
            node.call_raw_blocking(service, meshy::CodecId::raw, meshy::Buffer{}, {});
            FAIL() << "no error";
        } catch (const Error& e) {
            EXPECT_EQ(e.code(), errc::remote_error);
            EXPECT_NE(std::string(e.what()).find(text), std::string::npos);
        }
    };
    for (Node* node : {&caller, &provider}) {  // remote, and the provider's own service
        meshy::Buffer request;
        request.append("mesh", 4);
        const auto reply = node->call_raw_blocking("upper", meshy::CodecId::raw, std::move(request), {});
        EXPECT_EQ(std::string(reinterpret_cast<const char*>(reply.bytes.data()), reply.bytes.size()), "MESH");
        expect_remote_error(*node, "upper", "nothing to upper");
        expect_remote_error(*node, "odd", "unknown exception");
    }
    EXPECT_THROW(provider.add_service_raw("none", std::function<meshy::RawPayload(const meshy::RawMessage&)>{}), Error);
}

TEST_F(NodeTest, AShortTimeoutExpiresBeforeALongerOneStartedEarlier) {
    Node provider(options("provider"));
    Node caller(options("caller"));
    std::atomic<bool> release{false};
    provider.add_service_blocking("held", [&]() -> asio::awaitable<int> {
        asio::steady_timer t(co_await asio::this_coro::executor);
        for (int i = 0; i < 1000 && !release; ++i) {  // at most 10 s
            t.expires_after(10ms);
            co_await t.async_wait(asio::use_awaitable);
        }
        co_return 7;
    });
    caller.wait_for_service_provider_blocking("held", 5s);
    std::mutex mutex;
    std::vector<std::string> order;
    auto record = [&](std::string what) {
        std::lock_guard lock(mutex);
        order.push_back(std::move(what));
    };
    // The long call arms the node's call timer for 30 s; the short one must bring it forward.
    auto long_call = std::async(std::launch::async, [&] {
        const int v = caller.call_blocking<int>(CallOptions{.timeout = 30s}, "held");
        record("long " + std::to_string(v));
    });
    try {
        caller.call_blocking<int>(CallOptions{.timeout = 100ms}, "held");
        record("short answered");
    } catch (const Error& e) {
        record(e.code() == errc::timeout ? "short timed out" : std::string("short: ") + e.what());
    }
    release = true;
    long_call.get();
    EXPECT_EQ(order, (std::vector<std::string>{"short timed out", "long 7"}));
}

TEST_F(NodeTest, CallerResumesOnItsOwnExecutor) {
    Node provider(options("provider"));
    Node caller(options("caller"));
    provider.add_service_blocking("twice", [](int n) { return 2 * n; });
    caller.wait_for_service_provider_blocking("twice", 5s);
    asio::io_context user_io;
    std::thread::id user_thread, resumed_on;
    int sum = 0;
    asio::co_spawn(
        user_io,
        [&]() -> asio::awaitable<void> {
            for (int i = 1; i <= 50; ++i) {
                sum += co_await caller.call<int>("twice", i);
                if (std::this_thread::get_id() != user_thread) {
                    resumed_on = std::this_thread::get_id();
                }
            }
        },
        asio::detached);
    std::thread runner([&] {
        user_thread = std::this_thread::get_id();
        user_io.run_for(10s);
    });
    runner.join();
    EXPECT_EQ(sum, 2 * (50 * 51 / 2));
    EXPECT_EQ(resumed_on, std::thread::id{}) << "a call resumed on another thread than its io_context's";
}

TEST_F(NodeTest, BlockingCallOnTheNodeThreadIsRefused) {
    Node sut(options("self"));
    sut.add_service_blocking("answer", [] { return 42; });
    std::promise<errc> outcome;
    sut.listen_blocking("go", [&](int) {
        try {
            sut.call_blocking<int>("answer");
            outcome.set_value(errc{});
        } catch (const Error& e) {
            outcome.set_value(static_cast<errc>(e.code().value()));
        }
    });
    sut.send_blocking("go", 1);
    auto f = outcome.get_future();
    ASSERT_EQ(f.wait_for(5s), std::future_status::ready);
    EXPECT_EQ(f.get(), errc::would_deadlock);
    EXPECT_EQ(sut.call_blocking<int>("answer"), 42);  // from another thread it works
}

TEST_F(NodeTest, StopWithdrawsFromPeers) {
    Node watcher(options("watcher"));
    auto leaving = std::make_unique<Node>(options("leaving"));
    leaving->listen_blocking("t", [](int) {});
    leaving->add_service_blocking("s", [] { return 1; });
    ASSERT_TRUE(eventually([&] { return watcher.topic_has_listeners("t") && watcher.service_has_providers("s"); }));
    const auto before = std::chrono::steady_clock::now();
    leaving->stop();
    ASSERT_TRUE(eventually([&] { return !watcher.topic_has_listeners("t"); }, 3s));
    EXPECT_LT(std::chrono::steady_clock::now() - before, 1500ms);
    EXPECT_FALSE(watcher.service_has_providers("s"));
    leaving.reset();
}

TEST_F(NodeTest, StopListeningUpdatesPeers) {
    Node listener(options("listener"));
    Node sender(options("sender"));
    listener.listen_blocking("t", [](int) {});
    ASSERT_TRUE(eventually([&] { return sender.topic_has_listeners("t"); }));
    EXPECT_TRUE(listener.stop_listening("t"));
    EXPECT_FALSE(listener.stop_listening("t"));
    EXPECT_TRUE(eventually([&] { return !sender.topic_has_listeners("t"); }));
}

TEST_F(NodeTest, DependsOnListenerFollowsTheDownstreamTopic) {
    Node relay(options("relay"));
    Node consumer(options("consumer"));
    relay.add_service_blocking("noop", [] {});
    await(relay, relay.depends_on_listener("processed", "raw", [](int) {}));
    EXPECT_FALSE(relay.topic_has_listeners("raw"));
    consumer.listen_blocking("processed", [](int) {});
    EXPECT_TRUE(eventually([&] { return relay.topic_has_listeners("raw"); }));
    consumer.stop_listening("processed");
    EXPECT_TRUE(eventually([&] { return !relay.topic_has_listeners("raw"); }));
}

TEST_F(NodeTest, TopologyListsNodesTopicsAndServices) {
    Node a(options("alpha"));
    Node b(options("beta"));
    a.listen_blocking("t1", [](int) {});
    b.add_service_blocking("s1", [] { return 0; });
    ASSERT_TRUE(eventually([&] { return a.service_has_providers("s1") && b.topic_has_listeners("t1"); }));
    EXPECT_EQ(a.call_blocking<int>("s1"), 0);  // links are made when needed: this call makes a's to b
    const auto nodes = a.nodes();
    ASSERT_EQ(nodes.size(), 2u);
    EXPECT_EQ(nodes[0].name, "alpha");
    EXPECT_TRUE(nodes[0].is_self);
    EXPECT_EQ(nodes[0].topics, std::vector<std::string>{"t1"});
    EXPECT_EQ(nodes[1].name, "beta");
    EXPECT_EQ(nodes[1].services, std::vector<std::string>{"s1"});
    // One host: the Unix link moves to shared memory (on by default) once both ends set it up, or
    // stays on the socket where shared memory cannot be set up (the unit tests also run under an
    // emulator; the integration tests require shm).
    eventually([&] { return a.nodes().at(1).transport == "shm"; });
    const auto transport = a.nodes().at(1).transport;
    EXPECT_TRUE(transport == "shm" || transport == "unix") << transport;
}

TEST_F(NodeTest, ACoroutineWaitingForRoomDoesNotBlockItsThread) {
    Node listener(options("slow"));
    std::atomic<bool> release{false};
    std::atomic<int> got{0};
    struct Release {
        std::atomic<bool>& flag;
        ~Release() { flag = true; }
    } release_on_exit{release};
    // The listener holds its first message until released: its socket fills, then the sender's outbox.
    listener.listen_blocking("bulk", [&](const std::vector<std::uint8_t>&) {
        const auto until = std::chrono::steady_clock::now() + 20s;
        while (!release && std::chrono::steady_clock::now() < until) {
            std::this_thread::sleep_for(1ms);
        }
        ++got;
    });

    asio::io_context io(1);
    auto work = asio::make_work_guard(io);
    auto o = options("sender");
    o.outbox_full = meshy::OutboxFull::wait;
    o.outbox_capacity = 4;
    o.socket_buffer_size = 16 * 1024;
    o.outbox_ttl = 30s;
    Node sender(io.get_executor(), o);
    std::thread runner([&] { io.run(); });
    struct Join {
        asio::io_context& io;
        std::thread& t;
        ~Join() {
            io.stop();
            t.join();
        }
    } join{io, runner};

    constexpr int total = 300;
    std::atomic<int> sent{0};
    std::atomic<int> ticks{0};
    std::atomic<bool> stop_ticking{false};
    asio::co_spawn(
        io,
        [&]() -> asio::awaitable<void> {
            sender.advertise("bulk");  // a node dials the listeners of what it sends as they appear
            co_await sender.wait_for_listener("bulk", 10s);
            asio::steady_timer pause(co_await asio::this_coro::executor);
            const auto linked = [&] {
                for (const auto& n : sender.nodes()) {
                    if (n.name == "slow" && !n.transport.empty()) {
                        return true;
                    }
                }
                return false;
            };
            for (int i = 0; i < 1000 && !linked(); ++i) {  // bounded: 10 s
                pause.expires_after(10ms);
                co_await pause.async_wait(asio::use_awaitable);
            }
            const std::vector<std::uint8_t> chunk(64 * 1024, 7);
            for (int i = 0; i < total; ++i) {
                co_await sender.send("bulk", chunk);
                ++sent;
            }
        },
        asio::detached);
    asio::co_spawn(
        io,
        [&]() -> asio::awaitable<void> {
            asio::steady_timer timer(co_await asio::this_coro::executor);
            while (!stop_ticking) {
                timer.expires_after(1ms);
                co_await timer.async_wait(asio::use_awaitable);
                ++ticks;
            }
        },
        asio::detached);

    // The sender suspends on the full outbox, and the other coroutine of its thread goes on.
    ASSERT_TRUE(eventually([&] { return sent.load() > 0; }, 10s));
    ASSERT_TRUE(eventually(
        [&] {
            const int before = ticks.load();
            std::this_thread::sleep_for(50ms);
            return sent.load() < total && ticks.load() > before + 10;
        },
        5s))
        << "sent " << sent.load() << " of " << total;
    EXPECT_LT(sent.load(), total) << "the outbox never filled";
    release = true;
    // Waiting loses nothing: every message arrives once the listener catches up.
    EXPECT_TRUE(eventually([&] { return got.load() == total; }, 30s)) << got.load() << " of " << total;
    stop_ticking = true;
}

TEST_F(NodeTest, BadOptionsAreRefused) {
    auto o = options("x");
    o.allow_tcp = false;
    o.allow_unix = false;
    EXPECT_THROW(Node{o}, Error);
    EXPECT_THROW(Node{options("")}, Error);
    auto huge_buffers = options("x");
    huge_buffers.socket_buffer_size = std::size_t{3} << 30;
    EXPECT_THROW(Node{huge_buffers}, Error);
}

TEST_F(NodeTest, DomainComesFromTheEnvironment) {
    ::setenv("MESHY_DOMAIN_ID", "from-env", 1);
    NodeOptions o{.name = "env", .listen_host = "127.0.0.1"};
    Node sut(o);
    EXPECT_EQ(sut.domain_id(), "from-env");
    ::unsetenv("MESHY_DOMAIN_ID");
    Node other(NodeOptions{.name = "default", .listen_host = "127.0.0.1"});
    EXPECT_EQ(other.domain_id(), "default");
}
