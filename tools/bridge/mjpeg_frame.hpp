// The JPEG bytes a topic message carries, found by a pure function over untrusted bytes (the MJPEG
// stream of `meshy bridge`, GET /stream/{topic}; fuzzed by tests/fuzz/mjpeg_fuzz.cpp).
#pragma once

#include <cstddef>
#include <meshy/codec.hpp>
#include <optional>
#include <span>
#include <string>
#include <string_view>

namespace meshy::cli::bridge {

/// The JPEG image in a message, pointing into `payload`: the whole payload under the raw codec; a
/// msgpack `bin`; the first argument of a msgpack argument array, when it is a `bin` or a map; a map
/// with a `data` bin (and a `format` naming JPEG, if any: the foxglove.CompressedImage shape).
/// Only bytes that start with a JPEG SOI marker (FF D8) count. nullopt otherwise.
std::optional<std::string_view> jpeg_from_payload(CodecId codec, std::span<const std::byte> payload);

/// The multipart boundary of the stream (without the leading "--").
inline constexpr std::string_view mjpeg_boundary = "meshyframe";

/// The response head of an MJPEG stream (multipart/x-mixed-replace), ending in the blank line.
/// `extra_headers` are complete "Name: value\r\n" lines (CORS).
std::string mjpeg_response_head(std::string_view extra_headers = {});

/// The head of one part (boundary line and headers) for a JPEG of `size` bytes; the JPEG follows,
/// then "\r\n".
std::string mjpeg_part_head(std::size_t size);

}  // namespace meshy::cli::bridge
