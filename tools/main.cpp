// `meshy`: the command line of the mesh — node, topic and service commands.
#include <signal.h>
#include <unistd.h>

#include <CLI/CLI.hpp>
#include <algorithm>
#include <cstdio>
#include <cstdlib>
#include <meshy/log.hpp>
#include <meshy/version.hpp>
#include <optional>
#include <string_view>
#include <thread>
#include <vector>

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
    options.peers = globals.peers;
    if (!globals.listen.empty()) {
        parse_listen(globals.listen, options.listen_host, options.listen_port);
    }
    options.domain_key_file = globals.domain_key_file;
    return options;
}

void parse_listen(const std::string& text, std::string& host, std::uint16_t& port) {
    const auto colon = text.rfind(':');
    const auto bad = [&] {
        return CliError("--listen '" + text + "': expected tcp/ADDRESS:PORT (e.g. tcp/0.0.0.0:7447)", exit_usage);
    };
    if (!text.starts_with("tcp/") || colon == std::string::npos || colon < 5) {
        throw bad();
    }
    host = text.substr(4, colon - 4);
    if (host.size() > 2 && host.front() == '[' && host.back() == ']') {
        host = host.substr(1, host.size() - 2);
    }
    const std::string digits = text.substr(colon + 1);
    if (digits.empty() || digits.size() > 5 || digits.find_first_not_of("0123456789") != std::string::npos ||
        std::stoul(digits) > 65535) {
        throw bad();
    }
    port = static_cast<std::uint16_t>(std::stoul(digits));
}

std::string cli_node_name(const std::string& what) {
    // Nodes of one name share load: each CLI process gets a name of its own, so two `topic echo`s
    // (or a `bag record` beside an echo) each receive every message.
    return std::string(cli_node_prefix) + what + "-" + std::to_string(::getpid());
}

bool is_cli_node(std::string_view name) {
    return name.starts_with(cli_node_prefix);
}

std::unique_ptr<Node> make_node(const GlobalOptions& globals, const std::string& what) {
    auto node = std::make_unique<Node>(cli_node_options(globals, cli_node_name(what)));
    // The library says this at info level, which the CLI hides by default; a user who expected
    // other hosts must see it.
    const char* mode = std::getenv("MESHY_DISCOVERY");
    if (node->discovery_backend() == "local" && !(mode && std::string_view(mode) == "local")) {
        std::fprintf(stderr,
                     "meshy: no avahi-daemon reachable: same-host discovery only (MESHY_DISCOVERY=avahi requires "
                     "Avahi)\n");
    }
    return node;
}

std::vector<NodeInfo> discover_mesh(const GlobalOptions& globals, const std::string& what, MeshScope* scope) {
    auto node = make_node(globals, what);
    std::this_thread::sleep_for(std::chrono::duration<double>(globals.discovery_time));
    auto nodes = node->nodes();
    std::erase_if(nodes, [](const NodeInfo& n) { return n.is_self; });
    if (scope) {
        *scope = {node->domain_id(), node->discovery_backend()};
    }
    return nodes;
}

CLI::Validator positive_number() {
    return CLI::Validator(
        [](std::string& text) {
            double value = 0;
            try {
                std::size_t used = 0;
                value = std::stod(text, &used);
                if (used != text.size()) {
                    return "'" + text + "' is not a number";
                }
            } catch (const std::exception&) {
                return "'" + text + "' is not a number";
            }
            return value > 0 ? std::string() : "must be greater than 0 (got " + text + ")";
        },
        "POSITIVE");
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

namespace {

std::size_t edit_distance(std::string_view a, std::string_view b) {
    std::vector<std::size_t> row(b.size() + 1);
    for (std::size_t j = 0; j <= b.size(); ++j) {
        row[j] = j;
    }
    for (std::size_t i = 1; i <= a.size(); ++i) {
        std::size_t diagonal = row[0];
        row[0] = i;
        for (std::size_t j = 1; j <= b.size(); ++j) {
            const std::size_t above = row[j];
            row[j] = std::min({row[j] + 1, row[j - 1] + 1, diagonal + (a[i - 1] == b[j - 1] ? 0 : 1)});
            diagonal = above;
        }
    }
    return row[b.size()];
}

/// "unknown command 'topci'; did you mean 'topic'?" when `word` names no subcommand of `app`.
std::optional<std::string> unknown_command(const CLI::App& app, const std::string& word, const std::string& where) {
    std::vector<std::string> names;
    for (const auto* sub : app.get_subcommands({})) {
        if (sub->check_name(word)) {  // its name or an alias
            return std::nullopt;
        }
        names.push_back(sub->get_name());
    }
    std::string best;
    std::size_t best_distance = 3;  // at most two edits away, else no guess
    for (const auto& name : names) {
        const std::size_t d = edit_distance(word, name);
        if (d < best_distance || (!name.empty() && name.starts_with(word) && best.empty())) {
            best = name;
            best_distance = std::min(d, best_distance);
        }
    }
    std::string text = "unknown command '" + (where.empty() ? "" : where + " ") + word + "'";
    if (!best.empty()) {
        return text + "; did you mean '" + (where.empty() ? "" : where + " ") + best + "'?";
    }
    std::string all;
    for (const auto& name : names) {
        all += (all.empty() ? "" : ", ") + name;
    }
    return text + " (commands: " + all + ")";
}

/// Finds the first word that should name a command or subcommand and does not. Only the global
/// options come before the command; a command with subcommands takes its subcommand next.
std::optional<std::string> find_unknown_command(CLI::App& app, const std::vector<std::string>& args) {
    std::size_t i = 0;
    while (i < args.size() && args[i].starts_with("-")) {
        const bool takes_value = (args[i] == "--domain-id" || args[i] == "--log" || args[i] == "--discovery-time" ||
                                  args[i] == "--peer" || args[i] == "--listen" || args[i] == "--domain-key-file");
        i += takes_value ? 2 : 1;
    }
    if (i >= args.size()) {
        return std::nullopt;
    }
    if (auto unknown = unknown_command(app, args[i], "")) {
        return unknown;
    }
    CLI::App* command = app.get_subcommand(args[i]);
    if (command->get_subcommands({}).empty() || i + 1 >= args.size() || args[i + 1].starts_with("-")) {
        return std::nullopt;
    }
    return unknown_command(*command, args[i + 1], args[i]);
}

}  // namespace

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
    if (const char* env = std::getenv("MESHY_DOMAIN_KEY_FILE")) {
        globals.domain_key_file = env;
    }
    app.add_option("--domain-key-file", globals.domain_key_file,
                   "Domain key file: authenticate every node and encrypt every link (default: $MESHY_DOMAIN_KEY_FILE; "
                   "see meshy key generate)");
    app.add_option("--log", globals.log_level, "Log level: trace, debug, info, warn, error, off")
        ->check([](const std::string& text) {
            meshy::LogLevel level{};
            return meshy::parse_log_level(text, level) ? std::string() : "unknown log level '" + text + "'";
        });
    app.add_option("--peer", globals.peers,
                   "Static peer to dial, tcp/HOST:PORT or unix/PATH (repeatable; adds to $MESHY_PEERS)")
        ->allow_extra_args(false);
    app.add_option("--listen", globals.listen, "Accept TCP at tcp/ADDRESS:PORT (a well-known node for --peer)");
    app.add_option("--discovery-time", globals.discovery_time, "Seconds to discover the mesh before listing")
        ->check(CLI::Range(0.0, 60.0));

    setup_node(app, globals);
    setup_topic(app, globals);
    setup_service(app, globals);
    setup_launch(app, globals);
    setup_bag(app, globals);
    setup_bridge(app, globals);
    setup_speedtest(app, globals);
    setup_doctor(app, globals);
    setup_key(app, globals);

    // CLI11 reads a word in brackets as its own list syntax ("[1,2]" -> "1", "2"); message
    // arguments must reach parse_args() whole, so such words are escaped here and there unescaped.
    if (auto unknown = find_unknown_command(app, std::vector<std::string>(argv + 1, argv + argc))) {
        std::fprintf(stderr, "meshy: error: %s (see meshy --help)\n", unknown->c_str());
        return exit_usage;
    }
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
