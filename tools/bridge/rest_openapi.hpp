// The OpenAPI 3 document of `meshy bridge`'s REST API, served at /api/openapi.json.
#pragma once

#include <string_view>

namespace meshy::cli::bridge {

/// The document, as JSON text.
std::string_view rest_openapi_json() noexcept;

}  // namespace meshy::cli::bridge
