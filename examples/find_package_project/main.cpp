// greeter: a node that provides a service and sends a greeting a second, for five seconds.
// Try it beside the meshy CLI:
//   meshy topic echo greetings
//   meshy service call greet Ada            # Response: "hello, Ada"
#include <chrono>
#include <iostream>
#include <meshy/meshy.hpp>
#include <string>
#include <thread>

int main() {
    using namespace std::chrono_literals;
    try {
        // A node on a thread of its own, in the domain of $MESHY_DOMAIN_ID (else "default").
        meshy::Node node({.name = "greeter"});
        node.add_service_blocking("greet", [](const std::string& name) { return "hello, " + name; });
        std::cout << "greeter: providing 'greet', sending on 'greetings'" << std::endl;
        for (int i = 1; i <= 5; ++i) {
            node.send_blocking("greetings", std::string("hello"), i);
            std::this_thread::sleep_for(1s);  // the pace of the demo, not a wait for an outcome
        }
    } catch (const meshy::Error& e) {
        std::cerr << "greeter: " << e.what() << "\n";
        return 1;
    }
}
