// meshy bridge: the mesh from browsers and scripts, over rosbridge v2 WebSocket (tools/bridge/).
#include <CLI/CLI.hpp>
#include <asio/io_context.hpp>
#include <asio/ip/address.hpp>
#include <asio/post.hpp>
#include <cstdio>
#include <cstdlib>
#include <meshy/log.hpp>
#include <thread>

#include "bridge/bridge_options.hpp"
#include "bridge/bridge_server.hpp"
#include "cli.hpp"

namespace meshy::cli {
namespace {

struct BridgeCommandOptions {
    bridge::BridgeOptions bridge;
    std::string name = "meshy-bridge";
    double stall_timeout = 10;
    double ping_interval = 20;
    double idle_timeout = 60;
    double service_timeout = 30;
};

bool is_loopback(const std::string& address) {
    if (address == "localhost") {
        return true;
    }
    std::error_code ec;
    const auto a = asio::ip::make_address(address, ec);
    return !ec && a.is_loopback();
}

std::chrono::milliseconds seconds(double s) {
    return std::chrono::milliseconds(static_cast<std::int64_t>(s * 1000.0));
}

void run_bridge(const GlobalOptions& globals, BridgeCommandOptions o) {
    auto& b = o.bridge;
    if (b.token.empty()) {
        if (const char* env = std::getenv("MESHY_BRIDGE_TOKEN")) {
            b.token = env;
        }
    }
    std::error_code ec;
    if (b.address != "localhost") {
        asio::ip::make_address(b.address, ec);
        if (ec) {
            throw CliError("--address '" + b.address + "' is not an IP address", exit_usage);
        }
    }
    if (!is_loopback(b.address) && b.token.empty()) {
        throw CliError(
            "refusing to bind " + b.address + " (not loopback) without a token: set --token or MESHY_BRIDGE_TOKEN",
            exit_usage);
    }
    if (b.certfile.empty() != b.keyfile.empty()) {
        throw CliError("TLS needs both --certfile and --keyfile", exit_usage);
    }
    b.stall_timeout = seconds(o.stall_timeout);
    b.ping_interval = seconds(o.ping_interval);
    b.idle_timeout = seconds(o.idle_timeout);
    b.service_timeout = seconds(o.service_timeout);

    const NodeOptions options = cli_node_options(globals, o.name);
    // A server's log is its output: client connects and disconnects show at info level unless
    // --log or MESHY_LOG say otherwise.
    if (globals.log_level.empty() && !std::getenv("MESHY_LOG")) {
        set_log_level(LogLevel::info);
    }
    asio::io_context io(1);
    Node node(io.get_executor(), options);
    std::unique_ptr<bridge::BridgeServer> server;
    try {
        server = std::make_unique<bridge::BridgeServer>(io.get_executor(), node, b);
    } catch (const std::system_error& e) {
        throw CliError("cannot listen on " + b.address + ":" + std::to_string(b.port) + ": " + e.code().message(),
                       exit_failure);
    }
    server->start();
    std::printf("meshy bridge: listening on %s (node %s)\n", server->url().c_str(), o.name.c_str());
    // The same port serves the dashboard over HTTP(S).
    std::string dashboard = server->url();
    dashboard.replace(0, dashboard.find(':'), dashboard.starts_with("wss") ? "https" : "http");
    std::printf("meshy bridge: dashboard at %s/\n", dashboard.c_str());
    std::fflush(stdout);
    std::thread loop([&io] { io.run(); });
    while (!wait_for_signal(std::chrono::milliseconds(200))) {
    }
    asio::post(io, [&server] { server->stop(); });
    node.stop();
    asio::post(io, [&io] { io.stop(); });
    loop.join();
    server.reset();
}

}  // namespace

void setup_bridge(CLI::App& app, const GlobalOptions& globals) {
    auto o = std::make_shared<BridgeCommandOptions>();
    auto& b = o->bridge;
    auto* cmd = app.add_subcommand(
        "bridge", "Serve the mesh to browsers and scripts over rosbridge v2 (WebSocket), with a dashboard at /");
    cmd->add_option("--address", b.address, "Address to bind (non-loopback needs a token)")->capture_default_str();
    cmd->add_option("--port", b.port, "TCP port (0: any free port)")->capture_default_str();
    cmd->add_option("--name", o->name, "Name of the bridge's mesh node")->capture_default_str();
    cmd->add_option("--token", b.token, "Token clients must present (default: $MESHY_BRIDGE_TOKEN)");
    cmd->add_option("--certfile", b.certfile, "TLS certificate chain (PEM): serve wss://")->check(CLI::ExistingFile);
    cmd->add_option("--keyfile", b.keyfile, "TLS private key (PEM)")->check(CLI::ExistingFile);
    cmd->add_option("--topics-glob", b.topics_glob, "Topics clients may subscribe to (fnmatch, repeatable)");
    cmd->add_option("--publish-glob", b.publish_glob,
                    "Topics clients may publish to (fnmatch, repeatable; default: --topics-glob)");
    cmd->add_option("--services-glob", b.services_glob, "Services clients may call or provide (fnmatch, repeatable)");
    cmd->add_option("--allow-origin", b.allow_origin,
                    "Browser origins allowed besides the bridge's own (repeatable, '*': any)");
    cmd->add_option("--rate-limit-msgs", b.rate_limit_msgs, "Messages per second per client (0: no limit)")
        ->check(CLI::NonNegativeNumber);
    cmd->add_option("--rate-limit-bytes", b.rate_limit_bytes, "Bytes per second per client (0: no limit)")
        ->check(CLI::NonNegativeNumber);
    cmd->add_option("--max-message-size", b.max_message_size, "Largest message from a client, bytes")
        ->check(CLI::Range(std::size_t{1024}, std::size_t{1} << 30))
        ->capture_default_str();
    cmd->add_option("--max-clients", b.max_clients, "Most WebSocket clients at once")
        ->check(CLI::Range(std::size_t{1}, std::size_t{100000}))
        ->capture_default_str();
    cmd->add_option("--send-queue-bytes", b.send_queue_bytes, "Send queue bound per client, bytes")
        ->check(CLI::Range(std::size_t{4096}, std::size_t{1} << 32))
        ->capture_default_str();
    cmd->add_option("--stall-timeout", o->stall_timeout, "Seconds a client's writes may stall before it is dropped")
        ->check(CLI::Range(0.1, 3600.0))
        ->capture_default_str();
    cmd->add_option("--ping-interval", o->ping_interval, "Seconds between pings (0: none)")
        ->check(CLI::Range(0.0, 3600.0))
        ->capture_default_str();
    cmd->add_option("--idle-timeout", o->idle_timeout, "Seconds without a frame before a client is closed (0: never)")
        ->check(CLI::Range(0.0, 86400.0))
        ->capture_default_str();
    cmd->add_option("--service-timeout", o->service_timeout, "Default timeout of service calls, seconds")
        ->check(CLI::Range(0.1, 86400.0))
        ->capture_default_str();
    cmd->callback([o, &globals] { run_bridge(globals, *o); });
}

}  // namespace meshy::cli
