// Shared by the examples: rosy's demo flags, `--name NAME` and `--domain-id ID` (launch appends
// `--name`), plus `--listen-host ADDRESS` (the TCP server's address) and `--log LEVEL`.
#pragma once

#include <cstdio>
#include <cstdlib>
#include <string>
#include <string_view>

#include "meshy/log.hpp"
#include "meshy/node_options.hpp"

inline meshy::NodeOptions example_options(int argc, char** argv, std::string default_name) {
    meshy::NodeOptions options{.name = std::move(default_name)};
    for (int i = 1; i < argc; ++i) {
        const std::string_view arg = argv[i];
        auto value = [&]() -> std::string {
            if (i + 1 >= argc) {
                std::fprintf(stderr, "error: %s needs a value\n", argv[i]);
                std::exit(2);
            }
            return argv[++i];
        };
        if (arg == "--name") {
            options.name = value();
        } else if (arg == "--domain-id") {
            options.domain_id = value();
        } else if (arg == "--listen-host") {
            options.listen_host = value();
        } else if (arg == "--log") {
            meshy::LogLevel level{};
            const std::string text = value();
            if (!meshy::parse_log_level(text, level)) {
                std::fprintf(stderr, "error: unknown log level '%s'\n", text.c_str());
                std::exit(2);
            }
            meshy::set_log_level(level);
        } else if (arg == "-h" || arg == "--help") {
            std::printf("usage: %s [--name NAME] [--domain-id ID] [--listen-host ADDRESS] [--log LEVEL]\n", argv[0]);
            std::exit(0);
        } else {
            std::fprintf(stderr, "error: unknown argument '%s'\n", argv[i]);
            std::exit(2);
        }
    }
    return options;
}
