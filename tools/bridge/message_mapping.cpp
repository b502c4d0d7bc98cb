#include "bridge/message_mapping.hpp"

#include <meshy/codecs/msgpack.hpp>
#include <nlohmann/json.hpp>

#include "bridge/base64.hpp"
#include "msgpack_json.hpp"

namespace meshy::cli::bridge {
namespace {

using json = nlohmann::json;
using ordered_json = nlohmann::ordered_json;
using Packer = msgpack::packer<Buffer>;

BinaryForm binary_form(bool binary_as_bytes) {
    return binary_as_bytes ? BinaryForm::bytes : BinaryForm::base64;
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

// J is nlohmann::json (rosbridge) or nlohmann::ordered_json (Foxglove, bags: keeps the map order).
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

template <class J>
J element_json(const msgpack::object& o, bool binary_as_bytes) {
    if constexpr (std::is_same_v<J, ordered_json>) {
        return msgpack_to_ordered_json(o, binary_form(binary_as_bytes), 1);
    } else {
        return msgpack_to_json(o, binary_form(binary_as_bytes), 1);
    }
}

void element_msgpack(Buffer& out, const json& v, const ordered_json*, int depth = 1) {
    json_to_msgpack(out, v, depth);
}

void element_msgpack(Buffer& out, const ordered_json& v, const ordered_json* schema, int depth = 1) {
    json_to_msgpack(out, v, schema, depth);
}

const ordered_json* member(const ordered_json* schema, const char* key) {
    if (!schema || !schema->is_object()) {
        return nullptr;
    }
    const auto it = schema->find(key);
    return it == schema->end() ? nullptr : &*it;
}

/// The object alternative of a schema that allows several (a message is an object).
const ordered_json* object_schema(const ordered_json* schema) {
    for (const char* alternatives : {"anyOf", "oneOf"}) {
        if (const ordered_json* any = member(schema, alternatives); any && any->is_array()) {
            for (const auto& alt : *any) {
                if (const ordered_json* type = member(&alt, "type");
                    type && type->is_string() && type->get_ref<const std::string&>() == "object") {
                    return &alt;
                }
            }
        }
    }
    return schema;
}

/// `schema`: the message's JSON Schema (null: none; a Foxglove channel's or a bag's).
/// `ros_one_field`: {"data": x} alone is the one argument x (rosbridge; a recorded message of
/// that shape must come back as it was).
template <class J>
Buffer payload_of(const J& value, const ordered_json* schema, bool ros_one_field) {
    Buffer out;
    Packer pk(out);
    const ordered_json* properties = member(object_schema(schema), "properties");
    if (value.is_array()) {
        element_msgpack(out, value, member(properties, "args"), 0);
        return out;
    }
    if (!value.is_object()) {
        throw MappingError("a message must be a JSON object (or an array of arguments)");
    }
    // ROS's one-field messages (std_msgs/String, Int32, Float64...) are {"data": x}: that is the
    // one argument x, so a listener taking one string gets the string.
    if (ros_one_field && value.size() == 1 && value.contains("data")) {
        pk.pack_array(1);
        element_msgpack(out, value.front(), nullptr);
        return out;
    }
    const auto args = value.find("args");
    const bool positional = args != value.end() && args->is_array();
    const std::size_t kwargs = value.size() - (positional ? 1 : 0);
    const std::size_t count = (positional ? args->size() : 0) + (kwargs > 0 ? 1 : 0);
    pk.pack_array(static_cast<std::uint32_t>(count));
    if (positional) {
        const ordered_json* items = member(member(properties, "args"), "items");
        std::size_t i = 0;
        for (const auto& item : *args) {
            const ordered_json* s = items && items->is_array() ? (i < items->size() ? &(*items)[i] : nullptr) : items;
            element_msgpack(out, item, s);
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
            element_msgpack(out, item, member(properties, key.c_str()));
        }
    }
    return out;
}

template <class J>
J payload_to(CodecId codec, std::span<const std::byte> payload, bool binary_as_bytes) {
    if (codec != CodecId::msgpack) {
        return opaque<J>(codec, payload, binary_as_bytes);
    }
    const auto handle = unpack_payload(payload);
    if (!handle) {
        return opaque<J>(codec, payload, binary_as_bytes);
    }
    const msgpack::object& root = handle->get();
    if (root.type != msgpack::type::ARRAY) {
        J out = J::object();
        out["args"] = J::array({element_json<J>(root, binary_as_bytes)});
        return out;
    }
    std::uint32_t n = root.via.array.size;
    J out = J::object();
    if (n > 0 && string_keyed_map(root.via.array.ptr[n - 1])) {
        out = element_json<J>(root.via.array.ptr[n - 1], binary_as_bytes);
        --n;
    }
    if (n > 0) {
        J args = J::array();
        for (std::uint32_t i = 0; i < n; ++i) {
            args.push_back(element_json<J>(root.via.array.ptr[i], binary_as_bytes));
        }
        out["args"] = std::move(args);
    }
    return out;
}

}  // namespace

Buffer json_to_payload(const json& value) {
    try {
        return payload_of(value, nullptr, true);
    } catch (const JsonToMsgpackError& e) {
        throw MappingError(e.what());
    }
}

Buffer json_to_payload(const ordered_json& value, const ordered_json& schema) {
    try {
        return payload_of(value, &schema, false);
    } catch (const JsonToMsgpackError& e) {
        throw MappingError(e.what());
    }
}

json payload_to_json(CodecId codec, std::span<const std::byte> payload, bool binary_as_bytes) {
    return payload_to<json>(codec, payload, binary_as_bytes);
}

ordered_json payload_to_ordered_json(CodecId codec, std::span<const std::byte> payload) {
    return payload_to<ordered_json>(codec, payload, false);
}

}  // namespace meshy::cli::bridge

namespace meshy::cli::bridge {

bool keywords_only(std::span<const std::byte> payload) {
    try {
        const std::size_t n = payload.size();
        const msgpack::unpack_limit limit(n, n, n, n, n, max_value_depth);
        std::size_t offset = 0;
        const auto handle =
            msgpack::unpack(reinterpret_cast<const char*>(payload.data()), n, offset, nullptr, nullptr, limit);
        const msgpack::object& root = handle.get();
        return root.type == msgpack::type::ARRAY && root.via.array.size == 1 &&
               string_keyed_map(root.via.array.ptr[0]) && root.via.array.ptr[0].via.map.size > 0;
    } catch (const std::exception&) {
        return false;
    }
}

std::string call_failure_text(const std::string& what, bool by_keyword) {
    if (!by_keyword) {
        return what;
    }
    return what +
           " (called by keyword: meshy services take positional arguments, so call with {\"args\": [...]} in the "
           "handler's order, e.g. {\"args\": [3, 4]})";
}

}  // namespace meshy::cli::bridge
