// `meshy`: the command line of the mesh — node, topic and service commands.
#include <signal.h>

#include <CLI/CLI.hpp>
#include <cstdio>
#include <cstdlib>
#include <meshy/log.hpp>
#include <meshy/version.hpp>
#include <thread>

#include "cli.hpp"

namespace meshy::cli {

NodeOptions cli_node_options(const GlobalOptions& globals, std::string name) {
    // Quiet by default: the CLI's own output is the point; MESHY_LOG or --log say otherwise.
    LogLevel level = LogLevel::warn;
    if (!globals.log_level.empty()) {
        parse_log_level(globals.log_level, level);
        set_log_level(level);
    } else if (!std::getenv("MESHY_LOG")) {
        set_log_level(level);
    }
    NodeOptions options{.name = std::move(name)};
    if (!globals.domain_id.empty()) {
        options.domain_id = globals.domain_id;
    }
    return options;
}

std::unique_ptr<Node> make_node(const GlobalOptions& globals, const std::string& what) {
    return std::make_unique<Node>(cli_node_options(globals, "meshy-cli-" + what));
}

std::vector<NodeInfo> discover_mesh(const GlobalOptions& globals, const std::string& what) {
    auto node = make_node(globals, what);
    std::this_thread::sleep_for(std::chrono::duration<double>(globals.discovery_time));
    auto nodes = node->nodes();
    std::erase_if(nodes, [](const NodeInfo& n) { return n.is_self; });
    return nodes;
}

void block_signals() {
    sigset_t set;
    sigemptyset(&set);
    sigaddset(&set, SIGINT);
    sigaddset(&set, SIGTERM);
    pthread_sigmask(SIG_BLOCK, &set, nullptr);
}

bool wait_for_signal(std::chrono::milliseconds timeout) {
    sigset_t set;
    sigemptyset(&set);
    sigaddset(&set, SIGINT);
    sigaddset(&set, SIGTERM);
    timespec ts{static_cast<time_t>(timeout.count() / 1000), static_cast<long>((timeout.count() % 1000) * 1000000)};
    return sigtimedwait(&set, nullptr, &ts) > 0;
}

bool wait_until(const std::function<bool()>& ready, const char* notice) {
    bool noticed = false;
    while (!ready()) {
        if (!noticed && notice) {
            std::printf("%s\n", notice);
            std::fflush(stdout);
            noticed = true;
        }
        if (wait_for_signal(std::chrono::milliseconds(20))) {
            return false;
        }
    }
    return true;
}

}  // namespace meshy::cli

int main(int argc, char** argv) {
    using namespace meshy::cli;
    block_signals();

    CLI::App app{"meshy: a brokerless pub/sub mesh. Inspect and talk to the nodes of a domain.", "meshy"};
    app.set_version_flag("--version", std::string("meshy ") + meshy::version_string);
    app.require_subcommand(1);
    app.fallthrough();
    GlobalOptions globals;
    if (const char* env = std::getenv("MESHY_DOMAIN_ID")) {
        globals.domain_id = env;
    }
    app.add_option("--domain-id", globals.domain_id, "Domain ID (default: $MESHY_DOMAIN_ID, else \"default\")");
    app.add_option("--log", globals.log_level, "Log level: trace, debug, info, warn, error, off")
        ->check([](const std::string& text) {
            meshy::LogLevel level{};
            return meshy::parse_log_level(text, level) ? std::string() : "unknown log level '" + text + "'";
        });
    app.add_option("--discovery-time", globals.discovery_time, "Seconds to discover the mesh before listing")
        ->check(CLI::Range(0.0, 60.0));

    setup_node(app, globals);
    setup_topic(app, globals);
    setup_service(app, globals);
    setup_launch(app, globals);
    setup_bag(app, globals);
    setup_bridge(app, globals);
    setup_speedtest(app, globals);

    // CLI11 reads a word in brackets as its own list syntax ("[1,2]" -> "1", "2"); message
    // arguments must reach parse_args() whole, so such words are escaped here and there unescaped.
    std::vector<std::string> words;
    for (int i = argc - 1; i > 0; --i) {
        std::string word = argv[i];
        if (!word.empty() && word.front() == '[') {
            word.insert(word.begin(), bracket_escape);
        }
        words.push_back(std::move(word));
    }
    try {
        app.parse(words);
    } catch (const CLI::CallForHelp& e) {
        return app.exit(e);
    } catch (const CLI::CallForAllHelp& e) {
        return app.exit(e);
    } catch (const CLI::CallForVersion& e) {
        return app.exit(e);
    } catch (const CLI::ParseError& e) {
        std::fprintf(stderr, "meshy: error: %s (see meshy --help)\n", e.what());
        return exit_usage;
    } catch (const CliError& e) {
        std::fprintf(stderr, "meshy: error: %s\n", e.what());
        return e.exit_code;
    } catch (const meshy::Error& e) {
        std::fprintf(stderr, "meshy: error: %s\n", e.what());
        return e.code() == meshy::errc::timeout            ? exit_timeout
               : e.code() == meshy::errc::invalid_argument ? exit_usage
                                                           : exit_failure;
    } catch (const std::exception& e) {
        std::fprintf(stderr, "meshy: error: %s\n", e.what());
        return exit_failure;
    }
    return 0;
}
