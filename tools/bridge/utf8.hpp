// UTF-8 validation (RFC 3629: no overlong forms, no surrogates, nothing above U+10FFFF), as RFC 6455
// requires of text messages and close reasons.
#pragma once

#include <string_view>

namespace meshy::cli::bridge {

/// True when `text` is well-formed UTF-8.
bool valid_utf8(std::string_view text) noexcept;

}  // namespace meshy::cli::bridge
