// Node sends in process: large and small messages in order, large calls, waiting for room.
#include "node_test_support.hpp"

using namespace meshy::test;

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
