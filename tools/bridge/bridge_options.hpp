// Options of `meshy bridge`, as one aggregate with defaults (the CLI fills it from its flags).
#pragma once

#include <chrono>
#include <cstddef>
#include <cstdint>
#include <string>
#include <vector>

namespace meshy::cli::bridge {

/// Everything a BridgeServer is built from.
struct BridgeOptions {
    std::string address = "127.0.0.1";                 ///< --address
    std::uint16_t port = 9090;                         ///< --port (0: any free port)
    std::string token;                                 ///< --token / MESHY_BRIDGE_TOKEN; empty: no auth
    std::string certfile;                              ///< --certfile (TLS when set with keyfile)
    std::string keyfile;                               ///< --keyfile
    std::vector<std::string> topics_glob;              ///< --topics-glob: subscribe (and publish unless publish_glob)
    std::vector<std::string> publish_glob;             ///< --publish-glob: advertise/publish
    std::vector<std::string> services_glob;            ///< --services-glob: call_service/advertise_service
    std::vector<std::string> allow_origin;             ///< --allow-origin ("*": any)
    double rate_limit_msgs = 0;                        ///< --rate-limit-msgs per client, 0: unlimited
    double rate_limit_bytes = 0;                       ///< --rate-limit-bytes per client, 0: unlimited
    std::size_t max_message_size = 10u * 1024 * 1024;  ///< --max-message-size
    std::size_t max_clients = 100;                     ///< --max-clients
    std::size_t send_queue_bytes = 8u * 1024 * 1024;   ///< --send-queue-bytes per client
    std::chrono::milliseconds stall_timeout{10000};    ///< --stall-timeout
    std::chrono::milliseconds ping_interval{20000};    ///< --ping-interval
    std::chrono::milliseconds idle_timeout{60000};     ///< --idle-timeout
    std::chrono::milliseconds auth_timeout{10000};     ///< time to send the auth op
    std::chrono::milliseconds service_timeout{30000};  ///< --service-timeout: default call timeout
    std::size_t max_pending_calls = 100;               ///< concurrent call_service ops per client
};

}  // namespace meshy::cli::bridge
