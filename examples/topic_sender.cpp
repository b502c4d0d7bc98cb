// Sends "hello world" to "some-topic" once a listener is there, like rosy's topic_sender demo.
#include <asio/co_spawn.hpp>
#include <asio/io_context.hpp>
#include <asio/use_future.hpp>
#include <chrono>
#include <iostream>
#include <meshy/meshy.hpp>

#include "example_args.hpp"

int main(int argc, char** argv) {
    asio::io_context io;
    meshy::Node node(io.get_executor(), example_options(argc, argv, "topic_sender"));
    auto done = asio::co_spawn(
        io,
        [&]() -> asio::awaitable<void> {
            co_await node.wait_for_listener("some-topic", std::chrono::seconds(10));
            co_await node.send("some-topic", "hello world");
            std::cout << "Sent \"hello world\" on topic=some-topic" << std::endl;
            node.stop();
        },
        asio::use_future);
    io.run();
    try {
        done.get();
    } catch (const std::exception& e) {
        std::cerr << "error: " << e.what() << std::endl;
        return 1;
    }
}
