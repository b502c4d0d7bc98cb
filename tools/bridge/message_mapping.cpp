#include "bridge/message_mapping.hpp"

#include <meshy/codecs/msgpack.hpp>
#include <nlohmann/json.hpp>

#include "bridge/base64.hpp"
#include "msgpack_json.hpp"

namespace meshy::cli::bridge {
namespace {

using json = nlohmann::json;
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

Buffer payload_of(const json& value) {
    Buffer out;
    Packer pk(out);
    if (value.is_array()) {
        json_to_msgpack(out, value, 0);
        return out;
    }
    if (!value.is_object()) {
        throw MappingError("a message must be a JSON object (or an array of arguments)");
    }
    // ROS's one-field messages (std_msgs/String, Int32, Float64...) are {"data": x}: that is the
    // one argument x, so a listener taking one string gets the string.
    if (value.size() == 1 && value.contains("data")) {
        pk.pack_array(1);
        json_to_msgpack(out, value.front(), 1);
        return out;
    }
    const auto args = value.find("args");
    const bool positional = args != value.end() && args->is_array();
    const std::size_t kwargs = value.size() - (positional ? 1 : 0);
    const std::size_t count = (positional ? args->size() : 0) + (kwargs > 0 ? 1 : 0);
    pk.pack_array(static_cast<std::uint32_t>(count));
    if (positional) {
        for (const auto& item : *args) {
            json_to_msgpack(out, item, 1);
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
            json_to_msgpack(out, item, 1);
        }
    }
    return out;
}

}  // namespace

Buffer json_to_payload(const json& value) {
    try {
        return payload_of(value);
    } catch (const JsonToMsgpackError& e) {
        throw MappingError(e.what());
    }
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
        const msgpack::unpack_limit limit(n, n, n, n, n, max_value_depth);
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
        out["args"] = json::array({msgpack_to_json(root, binary_form(binary_as_bytes), 1)});
        return out;
    }
    std::uint32_t n = root.via.array.size;
    json out = json::object();
    if (n > 0 && string_keyed_map(root.via.array.ptr[n - 1])) {
        out = msgpack_to_json(root.via.array.ptr[n - 1], binary_form(binary_as_bytes), 1);
        --n;
    }
    if (n > 0) {
        json args = json::array();
        for (std::uint32_t i = 0; i < n; ++i) {
            args.push_back(msgpack_to_json(root.via.array.ptr[i], binary_form(binary_as_bytes), 1));
        }
        out["args"] = std::move(args);
    }
    return out;
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
