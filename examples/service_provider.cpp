// Provides "multiply" until Ctrl-C, like rosy's service_provider demo.
#include <asio/io_context.hpp>
#include <asio/signal_set.hpp>
#include <iostream>
#include <meshy/meshy.hpp>

#include "example_args.hpp"

int main(int argc, char** argv) {
    asio::io_context io;
    meshy::Node node(io.get_executor(), example_options(argc, argv, "service_provider"));
    node.add_service_blocking("multiply", [](double a, double b) {
        std::cout << "Calculating " << a << " * " << b << "..." << std::endl;
        return a * b;
    });
    std::cout << "Started service..." << std::endl;
    asio::signal_set signals(io, SIGINT, SIGTERM);
    signals.async_wait([&](auto, int) {
        node.stop();
        io.stop();
    });
    io.run();
}
