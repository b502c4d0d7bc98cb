// Node listeners in process: inboxes, slow and throwing listeners, drops and their warnings.
#include "node_test_support.hpp"

using namespace meshy::test;

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
