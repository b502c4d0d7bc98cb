// libFuzzer target: the launch file loader (`meshy launch FILE`, tools/launch/launch_config.cpp).
// A launch file is text someone hands over; a bad one must be a CliError naming the problem, and
// what loads must turn into argv without surprises.
#include <cstddef>
#include <cstdint>
#include <string>

#include "cli.hpp"
#include "launch/launch_config.hpp"

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
    const std::string text(reinterpret_cast<const char*>(data), size);
    using namespace meshy::cli::launch;
    try {
        const LaunchConfig config = parse_launch_config(text, "/fuzz/launch.yaml");
        for (const auto& node : config.nodes) {
            const auto argv = node_argv(node);
            if (argv.empty()) {
                __builtin_trap();  // a loaded node always has a command
            }
        }
    } catch (const meshy::cli::CliError&) {
        // A usage error: "FILE:LINE: KEY: problem".
    }
    // The shell-like splitter of string commands, on the same bytes.
    if (const auto words = split_words(text)) {
        for (const auto& w : *words) {
            (void)shell_quote(w);
        }
    }
    return 0;
}
