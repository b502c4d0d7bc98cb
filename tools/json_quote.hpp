// A JSON string literal, for the CLI's output (echo --json, launch --dry-run, message display).
#pragma once

#include <string>
#include <string_view>

namespace meshy::cli {

/// `text` as a JSON string literal: quotes, backslashes and control characters escaped; other bytes,
/// also those that are not UTF-8, pass through.
std::string json_quote(std::string_view text);

}  // namespace meshy::cli
