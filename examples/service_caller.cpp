// Calls "multiply" with 2 and 2 and prints the result, like rosy's service_caller demo.
#include <asio/co_spawn.hpp>
#include <asio/io_context.hpp>
#include <asio/use_future.hpp>
#include <chrono>
#include <iostream>
#include <meshy/meshy.hpp>

#include "example_args.hpp"

int main(int argc, char** argv) {
    using namespace std::chrono_literals;
    asio::io_context io;
    meshy::Node node(io.get_executor(), example_options(argc, argv, "service_caller"));
    auto done = asio::co_spawn(
        io,
        [&]() -> asio::awaitable<void> {
            co_await node.wait_for_service_provider("multiply", 10s);
            std::cout << "Calculating 2 * 2..." << std::endl;
            const double result = co_await node.call<double>(meshy::CallOptions{.timeout = 5s}, "multiply", 2, 2);
            std::cout << "Result: " << result << std::endl;
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
