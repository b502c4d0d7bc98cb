// meshy service list | call
#include <CLI/CLI.hpp>
#include <cstdio>
#include <map>

#include "cli.hpp"

namespace meshy::cli {
namespace {

struct ServiceCommandOptions {
    bool verbose = false;
    std::string service;
    std::vector<std::string> args;
    double interval = 0;
    bool no_wait = false;
    double timeout = 10;
};

void run_call(const GlobalOptions& globals, const ServiceCommandOptions& o) {
    const ParsedArgs args = parse_args(o.args);
    auto node = make_node(globals, "call");
    const CallOptions call_options{.timeout = std::chrono::milliseconds(static_cast<long>(o.timeout * 1000))};
    for (;;) {
        if (!o.no_wait &&
            !wait_until([&] { return node->service_has_providers(o.service); }, "Waiting for providers...")) {
            return;
        }
        std::printf("Calling %s%s\n", o.service.c_str(), args.display.c_str());
        std::fflush(stdout);
        Buffer request = args.payload;
        RawPayload reply;
        try {
            reply = node->call_raw_blocking(o.service, CodecId::msgpack, std::move(request), call_options);
        } catch (const Error& e) {
            if (e.code() == errc::timeout) {
                throw CliError("timed out: " + std::string(e.what()), exit_timeout);
            }
            if (e.code() == errc::remote_error) {
                throw CliError("the service failed: " + std::string(e.what()), exit_failure);
            }
            throw;
        }
        // A reply is an array of one value (none for void).
        auto values = payload_args(reply.codec, reply.bytes.bytes(), false);
        if (values && values->size() == 1) {
            std::printf("Response: %s\n", values->front().c_str());
        } else if (values && values->empty()) {
            std::printf("Response: null\n");
        } else {
            std::printf("Response: %s\n", payload_text(reply.codec, reply.bytes.bytes(), false).c_str());
        }
        std::fflush(stdout);
        if (o.interval <= 0 || wait_for_signal(std::chrono::milliseconds(static_cast<long>(o.interval * 1000)))) {
            break;
        }
    }
    node->stop();
}

}  // namespace

void setup_service(CLI::App& app, const GlobalOptions& globals) {
    auto* service = app.add_subcommand("service", "Services: list, call")->require_subcommand(1);
    auto o = std::make_shared<ServiceCommandOptions>();

    auto* list = service->add_subcommand("list", "List the services provided, one per line, sorted");
    list->add_flag("-v,--verbose", o->verbose, "Add the providers");
    list->callback([o, &globals] {
        std::map<std::string, std::vector<std::string>> services;
        for (const auto& n : discover_mesh(globals, "service-list")) {
            for (const auto& s : n.services) {
                services[s].push_back(n.name + "@" + n.host + " (" + n.id.substr(0, 8) + ")");
            }
        }
        for (const auto& [s, providers] : services) {
            if (o->verbose) {
                std::string list_text;
                for (const auto& p : providers) {
                    list_text += (list_text.empty() ? "" : ", ") + p;
                }
                std::printf("%s: %s\n", s.c_str(), list_text.c_str());
            } else {
                std::printf("%s\n", s.c_str());
            }
        }
    });

    auto* call = service->add_subcommand("call", "Call a service: YAML/JSON arguments, then key=value");
    call->add_option("service", o->service, "Service")->required()->transform(mesh_name);
    call->add_option("args", o->args,
                     "YAML/JSON values (42, 3.14, hello, '\"text\"', '{a: 1}', '[1,2]'), then key=value")
        ->expected(0, CLI::detail::expected_max_vector_size);
    call->add_option("-i,--interval", o->interval, "Call again every S seconds until Ctrl-C")
        ->check(CLI::PositiveNumber);
    call->add_flag("--no-wait", o->no_wait, "Call even if no provider is known yet");
    call->add_option("--timeout", o->timeout, "Seconds to wait for each reply (default 10)")
        ->check(CLI::PositiveNumber);
    call->callback([o, &globals] { run_call(globals, *o); });
}

}  // namespace meshy::cli
