// Which REST endpoint of `meshy bridge` a request names: a pure function of the method and the path
// (untrusted bytes; fuzzed by tests/fuzz/rest_fuzz.cpp). docs/bridge-rest.md lists the endpoints.
#pragma once

#include <string>
#include <string_view>

namespace meshy::cli::bridge {

/// The endpoints.
enum class RestEndpoint {
    none,       ///< not a REST path (the dashboard's files, the WebSocket)
    not_found,  ///< under /api/ or /stream/ but no endpoint
    bad_name,   ///< a topic or service name that is empty or not valid percent-encoding
    nodes,      ///< GET /api/nodes
    topics,     ///< GET /api/topics
    services,   ///< GET /api/services
    openapi,    ///< GET /api/openapi.json
    publish,    ///< POST /api/topics/{name}
    latest,     ///< GET /api/topics/{name}/latest
    call,       ///< POST /api/services/{name}
    stream,     ///< GET /stream/{topic}
};

/// A parsed route.
struct RestRoute {
    RestEndpoint endpoint = RestEndpoint::none;
    std::string name;            ///< the topic or service, a meshy name (no leading '/')
    std::string allowed_method;  ///< the method the path takes ("GET" or "POST"), for 405 and preflight
    bool method_ok = false;      ///< the request's method is allowed_method (HEAD counts as GET)
};

/// Parses `path` (the target before '?'). Names may contain '/' as is or as %2F; a name ending in
/// "/latest" is read with GET as the latest endpoint.
RestRoute parse_rest_route(std::string_view method, std::string_view path);

/// True for paths the REST API serves (/api/..., /stream/...).
bool is_rest_path(std::string_view path) noexcept;

}  // namespace meshy::cli::bridge
