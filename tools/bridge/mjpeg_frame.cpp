#include "bridge/mjpeg_frame.hpp"

#include <meshy/codecs/msgpack.hpp>

namespace meshy::cli::bridge {
namespace {

bool is_jpeg(std::string_view bytes) {
    return bytes.size() >= 4 && static_cast<unsigned char>(bytes[0]) == 0xFF &&
           static_cast<unsigned char>(bytes[1]) == 0xD8;
}

std::optional<std::string_view> from_bin(const msgpack::object& o) {
    if (o.type != msgpack::type::BIN) {
        return std::nullopt;
    }
    const std::string_view bytes(o.via.bin.ptr, o.via.bin.size);
    return is_jpeg(bytes) ? std::optional(bytes) : std::nullopt;
}

bool names_jpeg(std::string_view format) {
    // foxglove.CompressedImage says "jpeg"; others write "jpg" or a media type.
    for (std::string_view ok : {"jpeg", "jpg", "image/jpeg", "JPEG", "JPG"}) {
        if (format == ok) {
            return true;
        }
    }
    return false;
}

std::optional<std::string_view> from_map(const msgpack::object& o) {
    if (o.type != msgpack::type::MAP) {
        return std::nullopt;
    }
    std::optional<std::string_view> data;
    bool format_ok = true;
    for (std::uint32_t i = 0; i < o.via.map.size; ++i) {
        const auto& kv = o.via.map.ptr[i];
        if (kv.key.type != msgpack::type::STR) {
            continue;
        }
        const std::string_view key(kv.key.via.str.ptr, kv.key.via.str.size);
        if (key == "data") {
            data = from_bin(kv.val);
        } else if (key == "format") {
            format_ok = kv.val.type == msgpack::type::STR &&
                        names_jpeg(std::string_view(kv.val.via.str.ptr, kv.val.via.str.size));
        }
    }
    return format_ok ? data : std::nullopt;
}

// Bins stay in the payload (no copy of a frame into the zone); everything else is small.
bool reference_bins(msgpack::type::object_type type, std::size_t, void*) {
    return type == msgpack::type::BIN;
}

}  // namespace

std::optional<std::string_view> jpeg_from_payload(CodecId codec, std::span<const std::byte> payload) {
    const std::string_view bytes(reinterpret_cast<const char*>(payload.data()), payload.size());
    if (codec == CodecId::raw) {
        return is_jpeg(bytes) ? std::optional(bytes) : std::nullopt;
    }
    if (codec != CodecId::msgpack) {
        return std::nullopt;
    }
    try {
        // Limits keep a hostile header from making the unpacker reserve much: a frame is one value.
        const msgpack::unpack_limit limit(1024, 1024, 1024, 1u << 30, 1024, 16);
        std::size_t offset = 0;
        const msgpack::object_handle h =
            msgpack::unpack(bytes.data(), bytes.size(), offset, reference_bins, nullptr, limit);
        const msgpack::object& o = h.get();
        if (auto j = from_bin(o)) {
            return j;
        }
        if (auto j = from_map(o)) {
            return j;
        }
        if (o.type == msgpack::type::ARRAY && o.via.array.size >= 1) {
            const msgpack::object& first = o.via.array.ptr[0];
            if (auto j = from_bin(first)) {
                return j;
            }
            return from_map(first);
        }
    } catch (const std::exception&) {
    }
    return std::nullopt;
}

std::string mjpeg_response_head(std::string_view extra_headers) {
    std::string out =
        "HTTP/1.1 200 OK\r\n"
        "Content-Type: multipart/x-mixed-replace; boundary=";
    out += mjpeg_boundary;
    out +=
        "\r\n"
        "Cache-Control: no-cache, no-store, must-revalidate\r\n"
        "Pragma: no-cache\r\n"
        "X-Content-Type-Options: nosniff\r\n"
        "Connection: close\r\n";
    out += extra_headers;
    out += "\r\n";
    return out;
}

std::string mjpeg_part_head(std::size_t size) {
    std::string out = "--";
    out += mjpeg_boundary;
    out += "\r\nContent-Type: image/jpeg\r\nContent-Length: ";
    out += std::to_string(size);
    out += "\r\n\r\n";
    return out;
}

}  // namespace meshy::cli::bridge
