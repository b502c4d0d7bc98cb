// Base64 (RFC 4648, standard alphabet, padded): the WebSocket handshake's key and accept values,
// and binary message data in JSON mode of `meshy bridge`.
#pragma once

#include <cstddef>
#include <optional>
#include <span>
#include <string>
#include <string_view>

namespace meshy::cli::bridge {

/// Encodes bytes as padded base64.
std::string base64_encode(std::span<const std::byte> bytes);
/// Encodes text bytes as padded base64.
inline std::string base64_encode(std::string_view bytes) {
    return base64_encode(std::as_bytes(std::span(bytes.data(), bytes.size())));
}
/// Decodes padded base64 (whitespace not allowed). @returns nullopt for invalid input.
std::optional<std::string> base64_decode(std::string_view text);

}  // namespace meshy::cli::bridge
