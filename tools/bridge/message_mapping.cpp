#include "bridge/message_mapping.hpp"

#include <meshy/codecs/msgpack.hpp>
#include <nlohmann/json.hpp>

#include "bridge/base64.hpp"

namespace meshy::cli::bridge {
namespace {

using json = nlohmann::json;
using Packer = msgpack::packer<Buffer>;
constexpr int max_depth = 64;

void pack_json(Packer& pk, const json& v, int depth) {
    if (depth > max_depth) {
        throw MappingError("message nested deeper than " + std::to_string(max_depth) + " levels");
    }
    switch (v.type()) {
        case json::value_t::null:
        case json::value_t::discarded:
            pk.pack_nil();
            return;
        case json::value_t::boolean:
            v.get<bool>() ? pk.pack_true() : pk.pack_false();
            return;
        case json::value_t::number_integer:
            pk.pack(v.get<std::int64_t>());
            return;
        case json::value_t::number_unsigned:
            pk.pack(v.get<std::uint64_t>());
            return;
        case json::value_t::number_float:
            pk.pack(v.get<double>());
            return;
        case json::value_t::string: {
            const auto& s = v.get_ref<const std::string&>();
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
        case json::value_t::array:
            pk.pack_array(static_cast<std::uint32_t>(v.size()));
            for (const auto& item : v) {
                pack_json(pk, item, depth + 1);
            }
            return;
        case json::value_t::object:
            pk.pack_map(static_cast<std::uint32_t>(v.size()));
            for (const auto& [key, item] : v.items()) {
                pk.pack_str(static_cast<std::uint32_t>(key.size()));
                pk.pack_str_body(key.data(), static_cast<std::uint32_t>(key.size()));
                pack_json(pk, item, depth + 1);
            }
            return;
    }
}

json to_json(const msgpack::object& o, bool binary_as_bytes, int depth) {
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
                return json::binary(std::vector<std::uint8_t>(p, p + o.via.bin.size));
            }
            return base64_encode(std::string_view(o.via.bin.ptr, o.via.bin.size));
        case msgpack::type::EXT:
            return nullptr;
        case msgpack::type::ARRAY: {
            json a = json::array();
            for (std::uint32_t i = 0; i < o.via.array.size; ++i) {
                a.push_back(to_json(o.via.array.ptr[i], binary_as_bytes, depth + 1));
            }
            return a;
        }
        case msgpack::type::MAP: {
            json m = json::object();
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
                        key = to_json(kv.key, false, depth + 1).dump();
                        break;
                }
                m[key] = to_json(kv.val, binary_as_bytes, depth + 1);
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

json opaque(CodecId codec, std::span<const std::byte> payload, bool binary_as_bytes) {
    json out = json::object();
    if (binary_as_bytes) {
        const auto* p = reinterpret_cast<const std::uint8_t*>(payload.data());
        out["bytes"] = json::binary(std::vector<std::uint8_t>(p, p + payload.size()));
    } else {
        out["bytes"] = base64_encode(payload);
    }
    out["codec"] = std::string(codec_name(codec));
    return out;
}

}  // namespace

Buffer json_to_payload(const json& value) {
    Buffer out;
    Packer pk(out);
    if (value.is_array()) {
        pack_json(pk, value, 0);
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
        for (const auto& item : *args) {
            pack_json(pk, item, 1);
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
            pack_json(pk, item, 1);
        }
    }
    return out;
}

json payload_to_json(CodecId codec, std::span<const std::byte> payload, bool binary_as_bytes) {
    if (codec != CodecId::msgpack) {
        return opaque(codec, payload, binary_as_bytes);
    }
    msgpack::object_handle handle;
    try {
        std::size_t offset = 0;
        // No container can hold more elements than there are bytes: a lying header fails early.
        const std::size_t n = payload.size();
        const msgpack::unpack_limit limit(n, n, n, n, n, max_depth);
        handle = msgpack::unpack(reinterpret_cast<const char*>(payload.data()), n, offset, nullptr, nullptr, limit);
        if (offset != payload.size()) {
            return opaque(codec, payload, binary_as_bytes);
        }
    } catch (const std::exception&) {
        return opaque(codec, payload, binary_as_bytes);
    }
    const msgpack::object& root = handle.get();
    if (root.type != msgpack::type::ARRAY) {
        json out = json::object();
        out["args"] = json::array({to_json(root, binary_as_bytes, 1)});
        return out;
    }
    std::uint32_t n = root.via.array.size;
    json out = json::object();
    if (n > 0 && string_keyed_map(root.via.array.ptr[n - 1])) {
        out = to_json(root.via.array.ptr[n - 1], binary_as_bytes, 1);
        --n;
    }
    if (n > 0) {
        json args = json::array();
        for (std::uint32_t i = 0; i < n; ++i) {
            args.push_back(to_json(root.via.array.ptr[i], binary_as_bytes, 1));
        }
        out["args"] = std::move(args);
    }
    return out;
}

}  // namespace meshy::cli::bridge
