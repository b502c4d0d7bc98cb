// The ordered, schema-guided msgpack <-> JSON mapping of Foxglove's channels and of bags recorded as
// JSON (message_mapping.hpp): JSON keeps the maps' key order and a schema marks which strings were
// bytes, so that `meshy bag play` can send the recorded bytes again.
#include <meshy/codecs/msgpack.hpp>
#include <nlohmann/json.hpp>

#include "bridge/base64.hpp"
#include "bridge/message_mapping.hpp"

namespace meshy::cli::bridge {
namespace {

using json = nlohmann::json;
using Packer = msgpack::packer<Buffer>;
constexpr int max_depth = 64;

using ordered_json = nlohmann::ordered_json;

/// The alternative of `schema` (itself, or one of its anyOf/oneOf) that fits a value of JSON type
/// `t`; nullptr when there is no schema.
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
            if (type != alt.end() && type->is_string() && *type == want) {
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

/// Packs a JSON value. `schema` (optional) is its JSON Schema: a string it marks with
/// contentEncoding base64 becomes msgpack bin.
template <class J>
void pack_json(Packer& pk, const J& v, int depth, const ordered_json* schema = nullptr) {
    if (depth > max_depth) {
        throw MappingError("message nested deeper than " + std::to_string(max_depth) + " levels");
    }
    schema = schema_for(schema, v.type());
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
            pk.pack(v.template get<double>());
            return;
        case json::value_t::string: {
            const auto& s = v.template get_ref<const std::string&>();
            const ordered_json* encoding = member_schema(schema, "contentEncoding");
            if (encoding && *encoding == "base64") {
                if (auto bytes = base64_decode(s)) {
                    pk.pack_bin(static_cast<std::uint32_t>(bytes->size()));
                    pk.pack_bin_body(bytes->data(), static_cast<std::uint32_t>(bytes->size()));
                    return;
                }
            }
            pk.pack_str(static_cast<std::uint32_t>(s.size()));
            pk.pack_str_body(s.data(), static_cast<std::uint32_t>(s.size()));
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
                const ordered_json* s =
                    items && items->is_array() ? (i < items->size() ? &(*items)[i] : nullptr) : items;
                pack_json(pk, item, depth + 1, s);
                ++i;
            }
            return;
        }
        case json::value_t::object: {
            pk.pack_map(static_cast<std::uint32_t>(v.size()));
            const ordered_json* properties = member_schema(schema, "properties");
            for (const auto& [key, item] : v.items()) {
                pk.pack_str(static_cast<std::uint32_t>(key.size()));
                pk.pack_str_body(key.data(), static_cast<std::uint32_t>(key.size()));
                pack_json(pk, item, depth + 1, member_schema(properties, key.c_str()));
            }
            return;
        }
    }
}

// J is nlohmann::json (rosbridge) or nlohmann::ordered_json (Foxglove, bags: keeps the map order).
template <class J>
J to_json(const msgpack::object& o, bool binary_as_bytes, int depth) {
    if (depth > max_depth) {
        return nullptr;
    }
    switch (o.type) {
        case msgpack::type::NIL:
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
        case msgpack::type::BIN:
            if (binary_as_bytes) {
                const auto* p = reinterpret_cast<const std::uint8_t*>(o.via.bin.ptr);
                return J::binary(std::vector<std::uint8_t>(p, p + o.via.bin.size));
            }
            return base64_encode(std::string_view(o.via.bin.ptr, o.via.bin.size));
        case msgpack::type::EXT:
            return nullptr;
        case msgpack::type::ARRAY: {
            J a = J::array();
            for (std::uint32_t i = 0; i < o.via.array.size; ++i) {
                a.push_back(to_json<J>(o.via.array.ptr[i], binary_as_bytes, depth + 1));
            }
            return a;
        }
        case msgpack::type::MAP: {
            J m = J::object();
            for (std::uint32_t i = 0; i < o.via.map.size; ++i) {
                const auto& kv = o.via.map.ptr[i];
                std::string key;
                switch (kv.key.type) {
                    case msgpack::type::STR:
                        key.assign(kv.key.via.str.ptr, kv.key.via.str.size);
                        break;
                    case msgpack::type::ARRAY:
                    case msgpack::type::MAP:
                    case msgpack::type::BIN:
                    case msgpack::type::EXT:
                        // Text of a container key could nest without bound (and its escaping grows
                        // with every level): such keys are named by their kind only.
                        key = "<" +
                              std::string(kv.key.type == msgpack::type::ARRAY ? "array"
                                          : kv.key.type == msgpack::type::MAP ? "map"
                                          : kv.key.type == msgpack::type::BIN ? "bin"
                                                                              : "ext") +
                              ">";
                        break;
                    default:  // nil, bool, numbers: their JSON text
                        key = to_json<J>(kv.key, false, depth + 1).dump();
                        break;
                }
                m[key] = to_json<J>(kv.val, binary_as_bytes, depth + 1);
            }
            return m;
        }
    }
    return nullptr;
}

bool string_keyed_map(const msgpack::object& o) {
    if (o.type != msgpack::type::MAP) {
        return false;
    }
    for (std::uint32_t i = 0; i < o.via.map.size; ++i) {
        if (o.via.map.ptr[i].key.type != msgpack::type::STR) {
            return false;
        }
    }
    return true;
}

template <class J>
J opaque(CodecId codec, std::span<const std::byte> payload, bool binary_as_bytes) {
    J out = J::object();
    if (binary_as_bytes) {
        const auto* p = reinterpret_cast<const std::uint8_t*>(payload.data());
        out["bytes"] = J::binary(std::vector<std::uint8_t>(p, p + payload.size()));
    } else {
        out["bytes"] = base64_encode(payload);
    }
    out["codec"] = std::string(codec_name(codec));
    return out;
}

}  // namespace

template <class J>
Buffer json_to_payload_as(const J& value, const ordered_json* schema) {
    Buffer out;
    Packer pk(out);
    const ordered_json* properties = member_schema(schema_for(schema, json::value_t::object), "properties");
    if (value.is_array()) {
        pack_json(pk, value, 0, member_schema(properties, "args"));
        return out;
    }
    if (!value.is_object()) {
        throw MappingError("a message must be a JSON object (or an array of arguments)");
    }
    const auto args = value.find("args");
    const bool positional = args != value.end() && args->is_array();
    const std::size_t kwargs = value.size() - (positional ? 1 : 0);
    const std::size_t count = (positional ? args->size() : 0) + (kwargs > 0 ? 1 : 0);
    pk.pack_array(static_cast<std::uint32_t>(count));
    if (positional) {
        const ordered_json* items = member_schema(member_schema(properties, "args"), "items");
        std::size_t i = 0;
        for (const auto& item : *args) {
            pack_json(pk, item, 1, items && items->is_array() ? (i < items->size() ? &(*items)[i] : nullptr) : items);
            ++i;
        }
    }
    if (kwargs > 0) {
        pk.pack_map(static_cast<std::uint32_t>(kwargs));
        for (const auto& [key, item] : value.items()) {
            if (positional && key == "args") {
                continue;
            }
            pk.pack_str(static_cast<std::uint32_t>(key.size()));
            pk.pack_str_body(key.data(), static_cast<std::uint32_t>(key.size()));
            pack_json(pk, item, 1, member_schema(properties, key.c_str()));
        }
    }
    return out;
}

Buffer json_to_payload(const ordered_json& value, const ordered_json& schema) {
    return json_to_payload_as(value, &schema);
}

template <class J>
J payload_to_json_as(CodecId codec, std::span<const std::byte> payload, bool binary_as_bytes) {
    if (codec != CodecId::msgpack) {
        return opaque<J>(codec, payload, binary_as_bytes);
    }
    msgpack::object_handle handle;
    try {
        std::size_t offset = 0;
        // No container can hold more elements than there are bytes: a lying header fails early.
        const std::size_t n = payload.size();
        const msgpack::unpack_limit limit(n, n, n, n, n, max_depth);
        handle = msgpack::unpack(reinterpret_cast<const char*>(payload.data()), n, offset, nullptr, nullptr, limit);
        if (offset != payload.size()) {
            return opaque<J>(codec, payload, binary_as_bytes);
        }
    } catch (const std::exception&) {
        return opaque<J>(codec, payload, binary_as_bytes);
    }
    const msgpack::object& root = handle.get();
    if (root.type != msgpack::type::ARRAY) {
        J out = J::object();
        out["args"] = J::array({to_json<J>(root, binary_as_bytes, 1)});
        return out;
    }
    std::uint32_t n = root.via.array.size;
    J out = J::object();
    if (n > 0 && string_keyed_map(root.via.array.ptr[n - 1])) {
        out = to_json<J>(root.via.array.ptr[n - 1], binary_as_bytes, 1);
        --n;
    }
    if (n > 0) {
        J args = J::array();
        for (std::uint32_t i = 0; i < n; ++i) {
            args.push_back(to_json<J>(root.via.array.ptr[i], binary_as_bytes, 1));
        }
        out["args"] = std::move(args);
    }
    return out;
}

nlohmann::ordered_json payload_to_ordered_json(CodecId codec, std::span<const std::byte> payload) {
    return payload_to_json_as<nlohmann::ordered_json>(codec, payload, false);
}

}  // namespace meshy::cli::bridge
