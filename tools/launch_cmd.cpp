// meshy launch [CONFIG] [-e NAME...] [--dry-run] [--grace S]: starts the nodes of a launch file
// (rosy's launch.yaml, plus env, cwd, args and respawn) and supervises them until Ctrl-C.
#include <unistd.h>

#include <CLI/CLI.hpp>
#include <algorithm>
#include <climits>
#include <cstdio>
#include <cstdlib>
#include <meshy/domain_key.hpp>
#include <set>

#include "cli.hpp"
#include "launch/launch_config.hpp"
#include "launch/supervisor.hpp"

extern char** environ;

namespace meshy::cli {
namespace {

using launch::LaunchConfig;
using launch::NodeConfig;
using launch::PlannedNode;

struct LaunchCommandOptions {
    std::string config = "launch.yaml";
    std::vector<std::string> exclude;
    bool dry_run = false;
    double grace = 5.0;
};

/// Undoes main()'s escape of words that start with '['.
std::string unescaped(std::string word) {
    if (!word.empty() && word.front() == bracket_escape) {
        word.erase(0, 1);
    }
    return word;
}

std::string host_name() {
    char buf[HOST_NAME_MAX + 1] = {};
    if (::gethostname(buf, sizeof buf - 1) != 0) {
        return "localhost";
    }
    return buf;
}

/// Sets NAME=value in an environment list, replacing an earlier value.
void set_env(std::vector<std::string>& env, const std::string& name, const std::string& value) {
    const std::string prefix = name + "=";
    for (auto& entry : env) {
        if (entry.starts_with(prefix)) {
            entry = prefix + value;
            return;
        }
    }
    env.push_back(prefix + value);
}

/// Why a node does not start on this host, or "" when it does.
std::string skip_reason(const NodeConfig& node, const std::set<std::string>& excluded, const std::string& host) {
    if (excluded.count(node.name) != 0) {
        return "excluded";
    }
    if (node.disabled) {
        return "disabled";
    }
    if (node.on_host && *node.on_host != host) {
        return "on_host is " + *node.on_host + ", this host is " + host;
    }
    return {};
}

std::string seconds_text(double s) {
    char buf[32];
    std::snprintf(buf, sizeof buf, "%g s", s);
    return buf;
}

void print_dry_run(const LaunchConfig& config,
                   const std::set<std::string>& excluded,
                   const std::string& host,
                   const std::string& domain_text) {
    std::printf("launch file: %s\nhost: %s\ndomain_id: %s\nnodes, in start order:\n", config.path.c_str(), host.c_str(),
                domain_text.c_str());
    for (const auto& node : config.nodes) {
        const std::string reason = skip_reason(node, excluded, host);
        const std::string verdict = reason.empty() ? "on host " + host + ": start" : "skipped: " + reason;
        std::printf("  %s (line %d): %s\n", node.name.c_str(), node.line, verdict.c_str());
        std::string argv;
        for (const auto& word : launch::node_argv(node)) {
            argv += (argv.empty() ? "" : ", ") + json_quote(word);
        }
        std::printf("    argv: [%s]\n", argv.c_str());
        std::printf("    copies: %d\n", node.number);
        std::printf("    pre_delay: %s, post_delay: %s\n", seconds_text(node.pre_delay).c_str(),
                    seconds_text(node.post_delay).c_str());
        std::string env;
        for (const auto& [name, value] : node.env) {
            env += (env.empty() ? "" : ", ") + name + "=" + launch::shell_quote(value);
        }
        std::printf("    env: %s\n", env.empty() ? "(inherited)" : env.c_str());
        std::printf("    cwd: %s\n", node.cwd ? node.cwd->c_str() : "(launch's)");
        if (node.respawn) {
            const std::string limit = node.max_restarts < 0 ? "unlimited" : std::to_string(node.max_restarts);
            std::printf("    respawn: yes, respawn_delay %s, max_restarts %s\n",
                        seconds_text(node.respawn_delay).c_str(), limit.c_str());
        } else {
            std::printf("    respawn: no\n");
        }
    }
    std::fflush(stdout);
}

void run_launch(const GlobalOptions& globals, bool domain_given, const LaunchCommandOptions& o) {
    const LaunchConfig config = launch::load_launch_config(unescaped(o.config));
    std::set<std::string> excluded;
    for (const auto& word : o.exclude) {
        const std::string name = unescaped(word);
        const bool known =
            std::any_of(config.nodes.begin(), config.nodes.end(), [&](const NodeConfig& n) { return n.name == name; });
        if (!known) {
            throw CliError("--exclude " + name + ": " + config.path + " has no node of that name", exit_usage);
        }
        excluded.insert(name);
    }
    const std::string host = host_name();

    // The command line's --domain-id beats the file's domain_id, which beats the inherited
    // $MESHY_DOMAIN_ID.
    std::optional<std::string> domain;
    std::string domain_text;
    if (domain_given) {
        domain = globals.domain_id;
        domain_text = globals.domain_id + " (from --domain-id)";
    } else if (config.domain_id) {
        domain = config.domain_id;
        domain_text = *config.domain_id + " (from the file)";
    } else if (!globals.domain_id.empty()) {
        domain_text = globals.domain_id + " (inherited $MESHY_DOMAIN_ID)";
    } else {
        domain_text = "default";
    }

    if (o.dry_run) {
        print_dry_run(config, excluded, host, domain_text);
        return;
    }

    std::vector<std::string> base_env;
    for (char** e = environ; e != nullptr && *e != nullptr; ++e) {
        base_env.emplace_back(*e);
    }
    if (domain) {
        set_env(base_env, "MESHY_DOMAIN_ID", *domain);
    }
    if (!config.peers.empty() || !globals.peers.empty()) {
        // The file's peers and --peer add to an inherited $MESHY_PEERS.
        std::string peers = std::getenv("MESHY_PEERS") ? std::getenv("MESHY_PEERS") : "";
        for (const auto& list : {config.peers, globals.peers}) {
            for (const auto& peer : list) {
                peers += (peers.empty() ? "" : ",") + peer;
            }
        }
        set_env(base_env, "MESHY_PEERS", peers);
    }
    // --domain-key-file (or an inherited $MESHY_DOMAIN_KEY_FILE) beats the file's domain_key_file.
    // A bad key file stops the launch before any node starts.
    const std::string key_file =
        !globals.domain_key_file.empty() ? globals.domain_key_file : config.domain_key_file.value_or(std::string());
    if (!key_file.empty()) {
        check_domain_key_file(key_file);
        set_env(base_env, "MESHY_DOMAIN_KEY_FILE", key_file);
    }
    launch::SupervisorOptions options{.grace = o.grace, .notes = {}};
    options.notes.push_back(config.path + ": " + std::to_string(config.nodes.size()) + " node" +
                            (config.nodes.size() == 1 ? "" : "s") + ", host " + host + ", domain " + domain_text);
    std::vector<PlannedNode> plan;
    for (const auto& node : config.nodes) {
        const std::string reason = skip_reason(node, excluded, host);
        if (!reason.empty()) {
            options.notes.push_back("skipped " + node.name + ": " + reason);
            continue;
        }
        PlannedNode planned{node, launch::node_argv(node), base_env};
        for (const auto& [name, value] : node.env) {
            set_env(planned.env, name, value);
        }
        plan.push_back(std::move(planned));
    }

    const auto result = launch::supervise(plan, options);
    if (!result.failed.empty()) {
        std::string list;
        for (const auto& f : result.failed) {
            list += (list.empty() ? "" : "; ") + f;
        }
        throw CliError(std::to_string(result.failed.size()) + " of " + std::to_string(result.copies) +
                           " node processes failed: " + list,
                       exit_failure);
    }
}

}  // namespace

void setup_launch(CLI::App& app, const GlobalOptions& globals) {
    auto o = std::make_shared<LaunchCommandOptions>();
    auto* launch = app.add_subcommand(
        "launch", "Start the nodes of a launch file and supervise them until Ctrl-C (rosy's launch.yaml)");
    launch->add_option("config", o->config, "Launch file (default: ./launch.yaml)");
    launch->add_option("-e,--exclude", o->exclude, "Do not start these nodes")->delimiter(',');
    launch->add_flag("--dry-run", o->dry_run, "Print what would start, and on which host; start nothing");
    launch
        ->add_option("--grace", o->grace,
                     "Seconds to wait after SIGINT before SIGTERM, and after SIGTERM before SIGKILL (default 5)")
        ->check(CLI::Range(0.0, 3600.0));
    const CLI::Option* domain_option = app.get_option("--domain-id");
    launch->callback([o, &globals, domain_option] { run_launch(globals, domain_option->count() > 0, *o); });
}

}  // namespace meshy::cli
