// Node services in process: calls, errors, handlers replaced or removed, timeouts, executors.
#include "node_test_support.hpp"

using namespace meshy::test;

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
