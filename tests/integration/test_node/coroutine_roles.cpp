// meshy_test_node's roles on an io_context with the coroutine API: listen, provide, probe.
#include <asio/co_spawn.hpp>
#include <asio/detached.hpp>
#include <asio/io_context.hpp>
#include <asio/signal_set.hpp>
#include <asio/steady_timer.hpp>
#include <asio/this_coro.hpp>
#include <asio/use_awaitable.hpp>
#include <cstdint>
#include <functional>
#include <map>
#include <string>
#include <string_view>

#include "test_node.hpp"

namespace test_node {
namespace {

/// Tracks per-sender order of (seq) streams: a seq not above the sender's last is a violation,
/// a jump over seqs counts the skipped ones as missing.
struct OrderTracker {
    std::map<std::string, std::int64_t, std::less<>> last;
    std::int64_t total = 0, violations = 0, missing = 0;

    void add(std::string_view sender, std::int64_t seq) {
        ++total;
        auto it = last.find(sender);
        const std::int64_t prev = it == last.end() ? -1 : it->second;
        if (seq <= prev) {
            ++violations;
        } else {
            missing += seq - prev - 1;
        }
        if (it == last.end()) {
            last.emplace(std::string(sender), seq);
        } else if (seq > prev) {
            it->second = seq;
        }
    }
    void emit_final() const {
        emit("FINAL total=" + std::to_string(total) + " senders=" + std::to_string(last.size()) +
             " violations=" + std::to_string(violations) + " missing=" + std::to_string(missing));
        emit((violations == 0 ? "ORDER_OK " : "ORDER_BAD ") + std::to_string(total));
    }
};

}  // namespace

// ---- listen ------------------------------------------------------------------------------------

int cmd_listen(const Args& a) {
    if (a.positional.size() != 1) {
        usage("listen TOPIC");
    }
    const std::string topic = a.positional[0];
    asio::io_context io;
    meshy::Node node(io.get_executor(), a.options);
    OrderTracker order;  // only touched on the io_context's one thread
    auto finish = [&] {
        order.emit_final();
        node.stop();
        io.stop();
    };
    auto counted = [&](std::string_view sender, std::int64_t seq) {
        order.add(sender, seq);
        if (a.count_only && order.total % a.report_every == 0) {
            emit("COUNT " + std::to_string(order.total));
        }
    };
    asio::co_spawn(
        io,
        [&]() -> asio::awaitable<void> {
            if (a.count_only) {
                // Raw, to see the sender's id: order is per sender.
                node.listen_raw(topic, [&](const meshy::RawMessage& m) {
                    const auto message = meshy::MsgpackCodec::decode<std::int64_t, std::string>(m.payload);
                    counted(m.sender_id, std::get<0>(message));
                });
            } else {
                co_await node.listen(topic, [&](std::int64_t seq, const std::string& text) -> asio::awaitable<void> {
                    emit("RECV " + topic + " " + std::to_string(seq) + " " + text);
                    if (!a.echo_topic.empty()) {
                        co_await node.send(a.echo_topic, seq, text);
                    }
                    counted(text, seq);
                });
            }
            emit_ready(node);
        },
        [](std::exception_ptr e) {
            if (e) {
                std::rethrow_exception(e);
            }
        });
    asio::signal_set signals(io, SIGINT, SIGTERM);
    signals.async_wait([&](std::error_code ec, int) {
        if (!ec) {
            finish();
        }
    });
    io.run();
    return 0;
}

// ---- provide (io_context + coroutines) ---------------------------------------------------------

/// n bytes of a pattern that shows a lost, repeated or reordered piece.
int cmd_provide(const Args& a) {
    asio::io_context io;
    meshy::Node node(io.get_executor(), a.options);
    asio::co_spawn(
        io,
        [&]() -> asio::awaitable<void> {
            co_await node.add_service("multiply", [](std::int64_t x, std::int64_t y) {
                emit("CALLED multiply");
                return x * y;
            });
            co_await node.add_service("fail", []() -> std::int64_t {
                emit("CALLED fail");
                throw std::runtime_error("boom from provider");
            });
            // Large requests and replies (the `blobs` command): a blob's sum, and a blob of n bytes.
            co_await node.add_service("blob_sum", [](std::string blob) { return blob_sum(blob); });
            co_await node.add_service("blob", [](std::int64_t n) { return make_blob(n); });
            // Large messages (`blobs --stream`): each checked whole.
            co_await node.listen("blob_stream", [](std::int64_t seq, const std::string& blob) {
                emit(std::string(blob == make_blob(static_cast<std::int64_t>(blob.size())) ? "BLOB STREAM OK "
                                                                                           : "BLOB STREAM BAD ") +
                     std::to_string(seq));
            });
            co_await node.add_service("slow", [](std::int64_t ms) -> asio::awaitable<std::int64_t> {
                emit("CALLED slow");
                asio::steady_timer timer(co_await asio::this_coro::executor, Millis(ms));
                co_await timer.async_wait(asio::use_awaitable);
                co_return ms;
            });
            emit_ready(node);
        },
        [](std::exception_ptr e) {
            if (e) {
                std::rethrow_exception(e);
            }
        });
    asio::signal_set signals(io, SIGINT, SIGTERM);
    signals.async_wait([&](std::error_code ec, int) {
        if (!ec) {
            node.stop();
            io.stop();
        }
    });
    io.run();
    return 0;
}

// ---- probe -------------------------------------------------------------------------------------

int cmd_probe(const Args& a) {
    asio::io_context io;
    meshy::Node node(io.get_executor(), a.options);
    emit_ready(node);
    node.stop();
    return 0;
}

}  // namespace test_node
