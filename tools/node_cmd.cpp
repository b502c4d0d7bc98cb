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
