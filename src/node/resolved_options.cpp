#include "node/resolved_options.hpp"

#include <cstdlib>
#include <string_view>

#include "meshy/error.hpp"

namespace meshy::detail {

std::string resolve_domain(const std::optional<std::string>& configured) {
    if (configured) {
        return *configured;
    }
    if (const char* env = std::getenv("MESHY_DOMAIN_ID"); env && *env) {
        return env;
    }
    return "default";
}

bool is_wildcard(const std::string& host) {
    return host.empty() || host == "0.0.0.0" || host == "::";
}

DiscoveryBackend backend_of(DiscoveryMode mode) {
    switch (mode) {
        case DiscoveryMode::avahi:
            return DiscoveryBackend::avahi;
        case DiscoveryMode::local:
            return DiscoveryBackend::local;
        case DiscoveryMode::static_peers:
            return DiscoveryBackend::none;
        case DiscoveryMode::automatic:
            break;
    }
    return DiscoveryBackend::automatic;
}

void validate(const NodeOptions& o, const std::string& domain) {
    auto bad = [](const std::string& what) {
        throw Error(errc::invalid_argument, what);
    };
    if (o.name.empty() || o.name.size() > 200) {
        bad("node name must have 1 to 200 characters");
    }
    if (domain.empty() || domain.size() > 200) {
        bad("domain ID must have 1 to 200 characters");
    }
    if (!o.allow_tcp && !o.allow_unix) {
        bad("a node needs TCP or Unix sockets (both are disabled)");
    }
    if (o.max_frame_size < 1024 || o.max_frame_size > 0xffffffffu) {
        bad("max_frame_size must be between 1 KiB and 4 GiB");
    }
    if (o.outbox_capacity == 0 || o.inbox_capacity == 0) {
        bad("outbox_capacity and inbox_capacity must be at least 1");
    }
    if (o.max_inbound_connections == 0) {
        bad("max_inbound_connections must be at least 1");
    }
    if (o.shm_ring_bytes < 4096 || o.shm_ring_bytes > (std::size_t{1} << 30)) {
        bad("shm_ring_bytes must be between 4 KiB and 1 GiB");
    }
    if (o.shm_pool_bytes < 64 * 1024 || o.shm_pool_bytes > (std::size_t{16} << 30) || o.shm_pool_bytes % 4096 != 0) {
        bad("shm_pool_bytes must be a multiple of 4 KiB from 64 KiB to 16 GiB");
    }
    if (o.socket_buffer_size > 0x7fffffff) {
        bad("socket_buffer_size must be at most 2 GiB");
    }
    if (o.heartbeat_interval.count() <= 0 || o.peer_timeout <= o.heartbeat_interval) {
        bad("peer_timeout must be longer than a positive heartbeat_interval");
    }
}

NodeOptions with_environment(NodeOptions options) {
    if (const char* env = std::getenv("MESHY_LISTEN_HOST"); env && *env && is_wildcard(options.listen_host)) {
        options.listen_host = env;  // e.g. 127.0.0.1 keeps every node of a test run on loopback
    }
    if (const char* env = std::getenv("MESHY_DOMAIN_KEY_FILE"); env && *env && options.domain_key_file.empty()) {
        options.domain_key_file = env;
    }
    if (const char* env = std::getenv("MESHY_SHM"); env && *env && !options.allow_shm) {
        options.allow_shm = std::string_view(env) != "0";
    }
    return options;
}

}  // namespace meshy::detail
