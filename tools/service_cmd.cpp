// meshy service list | call
#include <CLI/CLI.hpp>
#include <algorithm>
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

using Clock = std::chrono::steady_clock;

void run_call(const GlobalOptions& globals, const ServiceCommandOptions& o) {
    const ParsedArgs args = parse_args(o.args);
    // --timeout bounds the whole call: discovery, the wait for a provider and the reply.
    const auto budget = std::chrono::milliseconds(static_cast<long>(o.timeout * 1000));
    const auto deadline = Clock::now() + budget;
    auto node = make_node(globals, "call");
    const auto where = [&] {
        return "'" + o.service + "' in domain '" + node->domain_id() + "'";
    };
    const auto timed_out = [&](const std::string& what) {
        node->stop();
        char limit[32];
        std::snprintf(limit, sizeof limit, "%g", o.timeout);
        return CliError("timed out: " + what + " " + where() + " within --timeout " + limit + " s", exit_timeout);
    };
    const auto has_provider = [&] {
        return node->service_has_providers(o.service);
    };
    bool called = false;
    for (;;) {
        if (!called && !has_provider()) {
            if (o.no_wait) {
                // Give discovery its first round (the listing commands' --discovery-time) before
                // concluding nobody provides the service.
                const auto first_round =
                    std::min(deadline, Clock::now() +
                                           std::chrono::milliseconds(static_cast<long>(globals.discovery_time * 1000)));
                while (!has_provider() && Clock::now() < first_round) {
                    if (wait_for_signal(std::chrono::milliseconds(20))) {
                        node->stop();
                        throw CliError("interrupted before the call was made", exit_interrupted);
                    }
                }
                if (!has_provider()) {
                    node->stop();
                    throw CliError("no provider of " + where() + " (" + node->discovery_backend() + " discovery)",
                                   exit_failure);
                }
            } else {
                std::printf("Waiting for providers...\n");
                std::fflush(stdout);
                while (!has_provider()) {
                    if (Clock::now() >= deadline) {
                        throw timed_out("no provider of");
                    }
                    if (wait_for_signal(std::chrono::milliseconds(20))) {
                        node->stop();
                        throw CliError("interrupted before the call was made", exit_interrupted);
                    }
                }
            }
        }
        // A repeated call (--interval) has the whole --timeout for each round.
        const auto left =
            called ? budget : std::chrono::duration_cast<std::chrono::milliseconds>(deadline - Clock::now());
        if (left <= std::chrono::milliseconds(0)) {
            throw timed_out("no reply from");
        }
        std::printf("Calling %s%s\n", o.service.c_str(), args.display.c_str());
        std::fflush(stdout);
        called = true;
        Buffer request = args.payload;
        RawPayload reply;
        try {
            reply =
                node->call_raw_blocking(o.service, CodecId::msgpack, std::move(request), CallOptions{.timeout = left});
        } catch (const Error& e) {
            if (e.code() == errc::timeout) {
                throw timed_out("no reply from");
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
    call->add_option("-i,--interval", o->interval, "Call again every S seconds until Ctrl-C")->check(positive_number());
    call->add_flag("--no-wait", o->no_wait,
                   "Do not wait for a provider: fail (exit 1) if discovery finds none in its first round");
    call->add_option("--timeout", o->timeout,
                     "Seconds the whole call may take, the wait for a provider included (default 10); exit 3 after")
        ->check(positive_number());
    call->callback([o, &globals] { run_call(globals, *o); });
}

}  // namespace meshy::cli
