// meshy node list | info
#include <unistd.h>

#include <CLI/CLI.hpp>
#include <algorithm>
#include <cstdio>
#include <string>
#include <vector>

#include "cli.hpp"

namespace meshy::cli {
namespace {

struct NodeCommandOptions {
    bool verbose = false;
    std::string name;
    std::string serve_name = "meshy-hub";
};

std::string joined(const std::vector<std::string>& items) {
    std::string out;
    for (const auto& item : items) {
        out += (out.empty() ? "" : ", ") + item;
    }
    return out.empty() ? "none" : out;
}

/// How this host reaches `n`: the link in use, or the one a send would make (links are lazy).
std::string reached_over(const NodeInfo& n) {
    if (!n.transport.empty()) {
        return n.transport;
    }
    char host[256] = {};
    ::gethostname(host, sizeof host - 1);
    return std::string(n.host == host && !n.unix_endpoint.empty() ? "unix" : "tcp") + " (no link open yet)";
}

void print_node(const NodeInfo& n, bool verbose) {
    std::printf("%s@%s (%s)\n", n.name.c_str(), n.host.c_str(), n.id.substr(0, 8).c_str());
    if (verbose) {
        std::printf("    id: %s\n", n.id.c_str());
        std::printf("    endpoints: %s%s%s\n", n.tcp_endpoint.empty() ? "" : ("tcp:" + n.tcp_endpoint).c_str(),
                    !n.tcp_endpoint.empty() && !n.unix_endpoint.empty() ? ", " : "",
                    n.unix_endpoint.empty() ? "" : ("unix:" + n.unix_endpoint).c_str());
        std::printf("    reached over: %s\n", reached_over(n).c_str());
    }
    std::printf("    topics: %s\n", joined(n.topics).c_str());
    std::vector<std::string> sends;
    for (const auto& p : n.publications) {
        sends.push_back(p.type.empty() ? p.topic : p.topic + " [" + p.type + "]");
    }
    std::printf("    publishes: %s\n", joined(sends).c_str());
    std::printf("    services: %s\n", joined(n.services).c_str());
}

}  // namespace

void setup_node(CLI::App& app, const GlobalOptions& globals) {
    auto* node = app.add_subcommand("node", "Nodes of the mesh")->require_subcommand(1);
    auto options = std::make_shared<NodeCommandOptions>();

    auto* list = node->add_subcommand("list", "List the nodes, with their topics and services");
    list->add_flag("-v,--verbose", options->verbose, "Add each node's UUID and endpoints");
    list->callback([options, &globals] {
        MeshScope scope;
        const auto nodes = discover_mesh(globals, "node-list", &scope);
        std::printf("%zu node%s in domain '%s' (%s discovery)%s\n", nodes.size(), nodes.size() == 1 ? "" : "s",
                    scope.domain.c_str(), scope.backend.c_str(), nodes.empty() ? "" : ":");
        if (nodes.empty()) {
            std::printf(
                "Start one (meshy topic echo chatter), check --domain-id or MESHY_DOMAIN_ID, or wait longer "
                "(--discovery-time %g).\n",
                globals.discovery_time * 2);
        }
        for (const auto& n : nodes) {
            print_node(n, options->verbose);
        }
    });

    auto* serve = node->add_subcommand(
        "serve", "Run a node that does nothing but be found: a well-known peer for --peer (with --listen)");
    serve->add_option("--name", options->serve_name, "Node name")->capture_default_str();
    serve->callback([options, &globals] {
        auto node = std::make_unique<Node>(cli_node_options(globals, options->serve_name));
        std::string endpoint = "no TCP";
        for (const auto& n : node->nodes()) {
            if (n.is_self && !n.tcp_endpoint.empty()) {
                endpoint = "tcp " + n.tcp_endpoint;
            }
        }
        std::printf("serving as %s (%s) in domain '%s' (%s discovery); Ctrl-C ends it\n", options->serve_name.c_str(),
                    endpoint.c_str(), node->domain_id().c_str(), node->discovery_backend().c_str());
        std::fflush(stdout);
        while (!wait_for_signal(std::chrono::seconds(3600))) {
        }
    });

    auto* info = node->add_subcommand("info", "Show the node(s) of a name: topics, services, endpoints, transport");
    info->add_option("name", options->name, "Node name")->required();
    info->callback([options, &globals] {
        MeshScope scope;
        auto nodes = discover_mesh(globals, "node-info", &scope);
        std::erase_if(nodes, [&](const NodeInfo& n) { return n.name != options->name; });
        if (nodes.empty()) {
            throw CliError("no node named '" + options->name + "' in domain '" + scope.domain + "' (" + scope.backend +
                               " discovery)",
                           exit_failure);
        }
        for (const auto& n : nodes) {
            print_node(n, true);
        }
    });
}

}  // namespace meshy::cli
