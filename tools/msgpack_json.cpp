#include "msgpack_json.hpp"

#include <algorithm>
#include <array>
#include <bit>
#include <charconv>
#include <cmath>
#include <cstdint>
#include <cstdio>
#include <memory>
#include <nlohmann/json.hpp>

#include "bridge/base64.hpp"

namespace meshy::cli {
namespace {

using json = nlohmann::json;
using ordered_json = nlohmann::ordered_json;
using Packer = msgpack::packer<Buffer>;

std::string key_text(const msgpack::object& key, int depth) {
    switch (key.type) {
        case msgpack::type::STR:
            return std::string(key.via.str.ptr, key.via.str.size);
        case msgpack::type::ARRAY:
            return "<array>";
        case msgpack::type::MAP:
            return "<map>";
        case msgpack::type::BIN:
            return "<bin>";
        case msgpack::type::EXT:
            return "<ext>";
        default:  // nil, bool, numbers: their JSON text (a container key's text could nest without bound)
            return json_text(msgpack_to_json(key, BinaryForm::summary, depth), true);
    }
}

void append_float(std::string& out, double value, bool strict) {
    if (!std::isfinite(value)) {
        out += strict ? "null" : (std::isnan(value) ? "nan" : (value > 0 ? "inf" : "-inf"));
        return;
    }
    char buf[32];
    const auto r = std::to_chars(buf, buf + sizeof buf, value);  // shortest exact form
    const std::string_view t(buf, static_cast<std::size_t>(r.ptr - buf));
    out += t;
    if (t.find_first_of(".eE") == std::string_view::npos) {
        out += ".0";
    }
}

void append_text(std::string& out, const json& v, bool strict) {
    switch (v.type()) {
        case json::value_t::null:
        case json::value_t::discarded:
            out += "null";
            return;
        case json::value_t::boolean:
            out += v.get<bool>() ? "true" : "false";
            return;
        case json::value_t::number_integer:
            out += std::to_string(v.get<std::int64_t>());
            return;
        case json::value_t::number_unsigned:
            out += std::to_string(v.get<std::uint64_t>());
            return;
        case json::value_t::number_float:
            append_float(out, v.get<double>(), strict);
            return;
        case json::value_t::string:
            out += json_quote(v.get_ref<const std::string&>());
            return;
        case json::value_t::binary: {
            const auto& b = v.get_binary();
            out += json_quote(bytes_summary(reinterpret_cast<const std::byte*>(b.data()), b.size()));
            return;
        }
        case json::value_t::array: {
            out += "[";
            bool first = true;
            for (const auto& item : v) {
                out += first ? "" : ", ";
                first = false;
                append_text(out, item, strict);
            }
            out += "]";
            return;
        }
        case json::value_t::object: {
            out += "{";
            bool first = true;
            for (const auto& [key, item] : v.items()) {
                out += first ? "" : ", ";
                first = false;
                out += json_quote(key);
                out += ": ";
                append_text(out, item, strict);
            }
            out += "}";
            return;
        }
    }
}

template <class J>
J to_json(const msgpack::object& o, BinaryForm binary, int depth) {
    if (depth > max_value_depth) {
        return nullptr;
    }
    switch (o.type) {
        case msgpack::type::NIL:
        case msgpack::type::EXT:
            return nullptr;
        case msgpack::type::BOOLEAN:
            return o.via.boolean;
        case msgpack::type::POSITIVE_INTEGER:
            return o.via.u64;
        case msgpack::type::NEGATIVE_INTEGER:
            return o.via.i64;
        case msgpack::type::FLOAT32:
        case msgpack::type::FLOAT64:
            return o.via.f64;
        case msgpack::type::STR:
            return std::string(o.via.str.ptr, o.via.str.size);
        case msgpack::type::BIN: {
            const auto* p = reinterpret_cast<const std::byte*>(o.via.bin.ptr);
            switch (binary) {
                case BinaryForm::bytes: {
                    const auto* u = reinterpret_cast<const std::uint8_t*>(p);
                    return J::binary(std::vector<std::uint8_t>(u, u + o.via.bin.size));
                }
                case BinaryForm::summary:
                    return bytes_summary(p, o.via.bin.size);
                case BinaryForm::base64:
                    break;
            }
            return bridge::base64_encode(std::span(p, o.via.bin.size));
        }
        case msgpack::type::ARRAY: {
            J a = J::array();
            for (std::uint32_t i = 0; i < o.via.array.size; ++i) {
                a.push_back(to_json<J>(o.via.array.ptr[i], binary, depth + 1));
            }
            return a;
        }
        case msgpack::type::MAP: {
            J m = J::object();
            for (std::uint32_t i = 0; i < o.via.map.size; ++i) {
                const auto& kv = o.via.map.ptr[i];
                m[key_text(kv.key, depth + 1)] = to_json<J>(kv.val, binary, depth + 1);
            }
            return m;
        }
    }
    return nullptr;
}

/// The alternative of `schema` (itself, or one of its anyOf/oneOf) that fits a value of JSON type
/// `t`; null when there is no schema.
const ordered_json* schema_for(const ordered_json* schema, json::value_t t) {
    if (!schema || !schema->is_object()) {
        return nullptr;
    }
    for (const char* alternatives : {"anyOf", "oneOf"}) {
        const auto it = schema->find(alternatives);
        if (it == schema->end() || !it->is_array()) {
            continue;
        }
        const char* want = t == json::value_t::string   ? "string"
                           : t == json::value_t::array  ? "array"
                           : t == json::value_t::object ? "object"
                                                        : "";
        for (const auto& alt : *it) {
            const auto type = alt.find("type");
            if (type != alt.end() && type->is_string() && type->get_ref<const std::string&>() == want) {
                return &alt;
            }
        }
    }
    return schema;
}

const ordered_json* member_schema(const ordered_json* schema, const char* key) {
    if (!schema) {
        return nullptr;
    }
    const auto it = schema->find(key);
    return it == schema->end() ? nullptr : &*it;
}

/// The schema of an array's element `i`: its `items`, or the i-th of a tuple's.
const ordered_json* item_schema(const ordered_json* items, std::size_t i) {
    if (items && items->is_array()) {
        return i < items->size() ? &(*items)[i] : nullptr;
    }
    return items;
}

void pack_string(Packer& pk, const std::string& s) {
    pk.pack_str(static_cast<std::uint32_t>(s.size()));
    pk.pack_str_body(s.data(), static_cast<std::uint32_t>(s.size()));
}

template <class J>
void to_msgpack(Buffer& out, const J& v, const ordered_json* schema, int depth) {
    if (depth > max_value_depth) {
        throw JsonToMsgpackError("message nested deeper than " + std::to_string(max_value_depth) + " levels");
    }
    schema = schema_for(schema, v.type());
    Packer pk(out);
    switch (v.type()) {
        case json::value_t::null:
        case json::value_t::discarded:
            pk.pack_nil();
            return;
        case json::value_t::boolean:
            v.template get<bool>() ? pk.pack_true() : pk.pack_false();
            return;
        case json::value_t::number_integer:
            pk.pack(v.template get<std::int64_t>());
            return;
        case json::value_t::number_unsigned:
            pk.pack(v.template get<std::uint64_t>());
            return;
        case json::value_t::number_float:
            pack_float64(out, v.template get<double>());
            return;
        case json::value_t::string: {
            const auto& s = v.template get_ref<const std::string&>();
            const ordered_json* encoding = member_schema(schema, "contentEncoding");
            if (encoding && encoding->is_string() && encoding->get_ref<const std::string&>() == "base64") {
                if (auto bytes = bridge::base64_decode(s)) {
                    pk.pack_bin(static_cast<std::uint32_t>(bytes->size()));
                    pk.pack_bin_body(bytes->data(), static_cast<std::uint32_t>(bytes->size()));
                    return;
                }
            }
            pack_string(pk, s);
            return;
        }
        case json::value_t::binary: {
            const auto& b = v.get_binary();
            pk.pack_bin(static_cast<std::uint32_t>(b.size()));
            pk.pack_bin_body(reinterpret_cast<const char*>(b.data()), static_cast<std::uint32_t>(b.size()));
            return;
        }
        case json::value_t::array: {
            pk.pack_array(static_cast<std::uint32_t>(v.size()));
            const ordered_json* items = member_schema(schema, "items");
            std::size_t i = 0;
            for (const auto& item : v) {
                to_msgpack(out, item, item_schema(items, i++), depth + 1);
            }
            return;
        }
        case json::value_t::object: {
            pk.pack_map(static_cast<std::uint32_t>(v.size()));
            const ordered_json* properties = member_schema(schema, "properties");
            for (const auto& [key, item] : v.items()) {
                pack_string(pk, key);
                to_msgpack(out, item, member_schema(properties, key.c_str()), depth + 1);
            }
            return;
        }
    }
}

/// How a msgpack value goes on after its first byte, for the bytes 0xc4..0xdf: the width of its
/// length field (0: none), and its body's size (with a length field: what the body has beyond the
/// length, an ext's type byte).
struct Layout {
    std::uint8_t width;
    std::uint8_t body;
};
constexpr std::array<Layout, 28> layouts = {{
    {1, 0}, {2, 0}, {4, 0},                   // 0xc4 bin 8, 16, 32
    {1, 1}, {2, 1}, {4, 1},                   // 0xc7 ext 8, 16, 32
    {0, 4}, {0, 8},                           // 0xca float 32, 64
    {0, 1}, {0, 2}, {0, 4}, {0, 8},           // 0xcc uint 8..64
    {0, 1}, {0, 2}, {0, 4}, {0, 8},           // 0xd0 int 8..64
    {0, 2}, {0, 3}, {0, 5}, {0, 9}, {0, 17},  // 0xd4 fixext 1..16
    {1, 0}, {2, 0}, {4, 0},                   // 0xd9 str 8, 16, 32
    {2, 0}, {4, 0},                           // 0xdc array 16, 32
    {2, 0}, {4, 0},                           // 0xde map 16, 32
}};

/// Whether `bytes` are exactly one complete msgpack value (its depth not checked). Malformed and
/// truncated payloads are common (any peer, any fuzz input): this spares them msgpack::unpack(),
/// which reports them by throwing.
bool one_msgpack_value(std::span<const std::byte> bytes) {
    const std::size_t n = bytes.size();
    std::size_t pos = 0;
    std::uint64_t pending = 1;  // values still to read; each takes at least one byte
    while (pending > 0) {
        if (pending > n - pos) {
            return false;
        }
        --pending;
        const unsigned b = std::to_integer<unsigned>(bytes[pos++]);
        if (b <= 0x7f || b >= 0xe0 || b == 0xc0 || b == 0xc2 || b == 0xc3) {
            continue;  // fixint, nil, bool
        }
        if (b <= 0x8f) {
            pending += 2 * (b & 0x0f);  // fixmap
            continue;
        }
        if (b <= 0x9f) {
            pending += b & 0x0f;  // fixarray
            continue;
        }
        if (b == 0xc1) {
            return false;  // never used
        }
        std::uint64_t body = b & 0x1f;  // fixstr (0xa0..0xbf)
        if (b >= 0xc4) {
            const Layout layout = layouts[b - 0xc4];
            if (layout.width > n - pos) {
                return false;
            }
            std::uint64_t length = 0;
            for (std::size_t i = 0; i < layout.width; ++i) {
                length = (length << 8) | std::to_integer<unsigned>(bytes[pos + i]);
            }
            pos += layout.width;
            body = layout.width == 0 ? layout.body : length + layout.body;
            if (b >= 0xdc) {
                pending += (b >= 0xde ? 2 : 1) * length;  // array or map
                body = 0;
            }
        }
        if (body > n - pos) {
            return false;
        }
        pos += body;
    }
    return pos == n;
}

}  // namespace

json msgpack_to_json(const msgpack::object& o, BinaryForm binary, int depth) {
    return to_json<json>(o, binary, depth);
}

ordered_json msgpack_to_ordered_json(const msgpack::object& o, BinaryForm binary, int depth) {
    return to_json<ordered_json>(o, binary, depth);
}

void json_to_msgpack(Buffer& out, const json& v, int depth) {
    to_msgpack(out, v, nullptr, depth);
}

void json_to_msgpack(Buffer& out, const ordered_json& v, const ordered_json* schema, int depth) {
    to_msgpack(out, v, schema, depth);
}

std::optional<msgpack::object_handle> unpack_payload(std::span<const std::byte> payload) {
    const std::size_t n = payload.size();
    if (!one_msgpack_value(payload)) {
        return std::nullopt;  // what msgpack::unpack() would throw for, or leave bytes after
    }
    try {
        const msgpack::unpack_limit limit(n, n, n, n, n, max_value_depth);
        // The zone holds the values (16 bytes each, at most one a byte) and copies of the strings: a
        // small payload needs far less than the default chunk (8 KiB), which a sanitizer fills.
        auto zone = std::make_unique<msgpack::zone>(std::min<std::size_t>(MSGPACK_ZONE_CHUNK_SIZE, 64 + 24 * n));
        std::size_t offset = 0;
        bool referenced = false;
        const msgpack::object root = msgpack::unpack(*zone, reinterpret_cast<const char*>(payload.data()), n, offset,
                                                     referenced, nullptr, nullptr, limit);
        if (offset != n) {
            return std::nullopt;
        }
        return msgpack::object_handle(root, std::move(zone));
    } catch (const std::exception&) {
        return std::nullopt;  // nested deeper than max_value_depth
    }
}

void pack_float64(Buffer& out, double value) {
    const auto bits = std::bit_cast<std::uint64_t>(value);
    char bytes[9];
    bytes[0] = static_cast<char>(0xcb);
    for (int i = 0; i < 8; ++i) {
        bytes[1 + i] = static_cast<char>((bits >> (56 - 8 * i)) & 0xff);
    }
    out.write(bytes, sizeof bytes);
}

std::string json_text(const json& value, bool strict) {
    std::string out;
    append_text(out, value, strict);
    return out;
}

std::string json_quote(std::string_view text) {
    std::string out = "\"";
    for (const char c : text) {
        switch (c) {
            case '"':
                out += "\\\"";
                break;
            case '\\':
                out += "\\\\";
                break;
            case '\n':
                out += "\\n";
                break;
            case '\r':
                out += "\\r";
                break;
            case '\t':
                out += "\\t";
                break;
            default:
                if (static_cast<unsigned char>(c) < 0x20) {
                    char b[8];
                    std::snprintf(b, sizeof b, "\\u%04x", static_cast<unsigned>(c));
                    out += b;
                } else {
                    out += c;
                }
        }
    }
    return out + "\"";
}

std::string bytes_summary(const std::byte* data, std::size_t size) {
    std::string out = "<" + std::to_string(size) + " bytes: ";
    const std::size_t n = size < 32 ? size : 32;
    char b[4];
    for (std::size_t i = 0; i < n; ++i) {
        std::snprintf(b, sizeof b, "%02x", std::to_integer<unsigned>(data[i]));
        out += b;
    }
    return out + (size > n ? "...>" : ">");
}

}  // namespace meshy::cli
