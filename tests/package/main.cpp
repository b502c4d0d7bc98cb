// The package test's consumer: what a fresh project does with an installed (or add_subdirectory'd) meshy.
// It builds a node on loopback with same-host discovery (no avahi-daemon, no network), sends a message to
// itself, calls a service it provides, and exits 0 when both came back, 1 otherwise.
#include <unistd.h>

#include <chrono>
#include <cstdlib>
#include <future>
#include <iostream>
#include <meshy/meshy.hpp>
#include <meshy/version.hpp>
#include <string>
#include <string_view>
#include <utility>

int main() {
    using namespace std::chrono_literals;
#ifdef MESHY_EXPECTED_VERSION
    // The CMake package's version and the headers' must be the same one: project(meshy VERSION ...).
    if (std::string_view(meshy::version_string) != MESHY_EXPECTED_VERSION) {
        std::cerr << "version mismatch: headers say " << meshy::version_string << ", the package "
                  << MESHY_EXPECTED_VERSION << "\n";
        return 1;
    }
#endif
    setenv("MESHY_DISCOVERY", "local", 1);
    try {
        std::promise<std::string> received;
        bool first = true;  // callbacks of one topic run one at a time, so a plain flag is enough
        // A domain of its own keeps concurrent runs (and any other mesh on this host) apart.
        meshy::Node node({.name = "package-test",
                          .domain_id = "package-test-" + std::to_string(getpid()),
                          .listen_host = "127.0.0.1"});
        node.listen_blocking("greeting", [&](const std::string& text) {
            if (std::exchange(first, false)) {
                received.set_value(text);
            }
        });
        node.add_service_blocking("add", [](int a, int b) { return a + b; });

        node.wait_for_listener_blocking("greeting", 10s);
        node.send_blocking("greeting", std::string("hello"));
        auto message = received.get_future();
        if (message.wait_for(10s) != std::future_status::ready) {
            std::cerr << "the message to itself did not arrive within 10 s\n";
            return 1;
        }
        node.wait_for_service_provider_blocking("add", 10s);
        const int sum = node.call_blocking<int>(meshy::CallOptions{.timeout = 10s}, "add", 2, 3);
        const std::string text = message.get();
        std::cout << "meshy " << meshy::version_string << " (" << node.discovery_backend() << " discovery): received '"
                  << text << "', add(2, 3) = " << sum << "\n";
        return text == "hello" && sum == 5 ? 0 : 1;
    } catch (const std::exception& e) {
        std::cerr << "error: " << e.what() << "\n";
        return 1;
    }
}
