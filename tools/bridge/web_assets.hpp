// The dashboard's files (tools/bridge/web/*), compiled into the binary by embed_web.cmake.
#pragma once

#include <string_view>

namespace meshy::cli::bridge {

/// One embedded file.
struct WebAsset {
    std::string_view name;          ///< file name, e.g. "index.html"
    std::string_view content_type;  ///< e.g. "text/html; charset=utf-8"
    std::string_view data;          ///< the file's bytes
};

/// The embedded file of that name (no leading '/'), or nullptr.
const WebAsset* find_web_asset(std::string_view name);

/// The Content-Type for a file name, by extension.
std::string_view content_type_for(std::string_view name);

}  // namespace meshy::cli::bridge
