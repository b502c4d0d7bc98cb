// Internal: a node's options as it runs with them: the environment's overrides applied
// (MESHY_LISTEN_HOST, MESHY_DOMAIN_KEY_FILE, MESHY_SHM), the domain resolved (MESHY_DOMAIN_ID,
// else "default"), and every value checked before anything starts.
#pragma once

#include <optional>
#include <string>

#include "discovery/discovery.hpp"
#include "meshy/node_options.hpp"

namespace meshy::detail {

/// The domain of a node: `configured`, else MESHY_DOMAIN_ID, else "default".
std::string resolve_domain(const std::optional<std::string>& configured);
/// True for a listen host that means every interface ("", 0.0.0.0, ::).
bool is_wildcard(const std::string& host);
/// The discovery backend a mode asks for (static peers alone: none).
DiscoveryBackend backend_of(DiscoveryMode mode);
/// @throws Error(errc::invalid_argument) naming the first option out of range.
void validate(const NodeOptions& o, const std::string& domain);
/// `options` with the environment's overrides of what they leave unset.
NodeOptions with_environment(NodeOptions options);

}  // namespace meshy::detail
