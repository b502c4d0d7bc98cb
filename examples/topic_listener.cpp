// Listens to "some-topic" until Ctrl-C, like rosy's topic_listener demo.
#include <asio/co_spawn.hpp>
#include <asio/detached.hpp>
#include <asio/io_context.hpp>
#include <asio/signal_set.hpp>
#include <iostream>
#include <meshy/meshy.hpp>

#include "example_args.hpp"

int main(int argc, char** argv) {
    asio::io_context io;
    meshy::Node node(io.get_executor(), example_options(argc, argv, "topic_listener"));
    asio::co_spawn(
        io,
        [&]() -> asio::awaitable<void> {
            co_await node.listen("some-topic", [](const std::string& message) {
                std::cout << "Received \"" << message << "\" on topic=some-topic" << std::endl;
            });
            std::cout << "Listening..." << std::endl;
        },
        asio::detached);
    asio::signal_set signals(io, SIGINT, SIGTERM);
    signals.async_wait([&](auto, int) {
        node.stop();
        io.stop();
    });
    io.run();
}
