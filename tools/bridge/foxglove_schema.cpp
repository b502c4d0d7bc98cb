#include "bridge/foxglove_schema.hpp"

#include <algorithm>
#include <meshy/codecs/msgpack.hpp>
#include <meshy/msgs/foxglove.hpp>
#include <nlohmann/json.hpp>
#include <vector>

#include "msgpack_json.hpp"

namespace meshy::cli::bridge {
namespace {

using ordered_json = nlohmann::ordered_json;
constexpr int max_depth = 64;

template <class T>
KnownType known() {
    return {std::string(message_type<T>::name), message_type<T>::schema()};
}

struct NotJson {};

ordered_json infer(const msgpack::object& o, int depth) {
    if (depth > max_depth) {
        throw NotJson{};
    }
    switch (o.type) {
        case msgpack::type::NIL:
            return {{"type", "null"}};
        case msgpack::type::BOOLEAN:
            return {{"type", "boolean"}};
        case msgpack::type::POSITIVE_INTEGER:
        case msgpack::type::NEGATIVE_INTEGER:
            return {{"type", "integer"}};
        case msgpack::type::FLOAT32:
        case msgpack::type::FLOAT64:
            return {{"type", "number"}};
        case msgpack::type::STR:
            return {{"type", "string"}};
        case msgpack::type::BIN:
            return {{"type", "string"}, {"contentEncoding", "base64"}};
        case msgpack::type::ARRAY: {
            ordered_json items;
            for (std::uint32_t i = 0; i < o.via.array.size; ++i) {
                ordered_json s = infer(o.via.array.ptr[i], depth + 1);
                items = items.is_null() ? std::move(s) : merge_schemas(items, s);
            }
            ordered_json out = {{"type", "array"}};
            if (!items.is_null()) {
                out["items"] = std::move(items);
            }
            return out;
        }
        case msgpack::type::MAP: {
            ordered_json properties = ordered_json::object();
            ordered_json required = ordered_json::array();
            for (std::uint32_t i = 0; i < o.via.map.size; ++i) {
                const auto& kv = o.via.map.ptr[i];
                if (kv.key.type != msgpack::type::STR) {
                    throw NotJson{};
                }
                std::string key(kv.key.via.str.ptr, kv.key.via.str.size);
                if (properties.contains(key)) {
                    throw NotJson{};  // a duplicate key has no JSON form
                }
                properties[key] = infer(kv.val, depth + 1);
                required.push_back(std::move(key));
            }
            return {{"type", "object"}, {"properties", std::move(properties)}, {"required", std::move(required)}};
        }
        case msgpack::type::EXT:
            break;
    }
    throw NotJson{};
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

ordered_json tuple_schema(std::vector<ordered_json> items) {
    const std::size_t n = items.size();
    return {{"type", "array"}, {"items", std::move(items)}, {"minItems", n}, {"additionalItems", false}};
}

std::vector<ordered_json> alternatives(const ordered_json& s) {
    const auto it = s.find("anyOf");
    if (it != s.end() && it->is_array() && s.size() == 1) {
        return it->get<std::vector<ordered_json>>();
    }
    return {s};
}

}  // namespace

std::span<const KnownType> known_types() {
    namespace fg = meshy::msgs::foxglove;
    static const std::vector<KnownType> types = {
        known<fg::CompressedImage>(),   known<fg::RawImage>(),   known<fg::FrameTransform>(), known<fg::PoseInFrame>(),
        known<fg::PointCloud>(),        known<fg::Log>(),        known<fg::LocationFix>(),    known<fg::Pose>(),
        known<fg::Vector3>(),           known<fg::Quaternion>(), known<fg::Color>(),          known<fg::KeyValuePair>(),
        known<fg::PackedElementField>()};
    return types;
}

const KnownType* find_known_type(std::string_view name) {
    for (const auto& t : known_types()) {
        if (t.name == name) {
            return &t;
        }
    }
    return nullptr;
}

const KnownType* match_known_type(const ordered_json& message) {
    if (!message.is_object() || message.empty()) {
        return nullptr;
    }
    // Parsed once: the field lists of the types with at least three fields (two-field types such
    // as KeyValuePair would match too many messages by chance).
    static const std::vector<std::pair<const KnownType*, std::vector<std::string>>> fields = [] {
        std::vector<std::pair<const KnownType*, std::vector<std::string>>> out;
        for (const auto& t : known_types()) {
            const auto schema = ordered_json::parse(t.schema);
            std::vector<std::string> names;
            for (const auto& [key, value] : schema["properties"].items()) {
                names.push_back(key);
            }
            if (names.size() >= 3) {
                std::sort(names.begin(), names.end());
                out.emplace_back(&t, std::move(names));
            }
        }
        return out;
    }();
    std::vector<std::string> names;
    for (const auto& [key, value] : message.items()) {
        names.push_back(key);
    }
    std::sort(names.begin(), names.end());
    for (const auto& [type, type_fields] : fields) {
        if (type_fields == names) {
            return type;
        }
    }
    return nullptr;
}

std::optional<ordered_json> infer_schema(CodecId codec, std::span<const std::byte> payload) {
    if (codec != CodecId::msgpack) {
        return std::nullopt;
    }
    try {
        const auto handle = unpack_payload(payload);
        if (!handle) {
            return std::nullopt;
        }
        const msgpack::object& root = handle->get();
        // The same shape as payload_to_json(): a trailing string-keyed map gives the members,
        // the other arguments go to "args".
        ordered_json out = {{"$comment", "inferred"}, {"type", "object"}};
        ordered_json properties = ordered_json::object();
        ordered_json required = ordered_json::array();
        std::vector<ordered_json> args;
        if (root.type != msgpack::type::ARRAY) {
            args.push_back(infer(root, 1));
        } else {
            std::uint32_t count = root.via.array.size;
            if (count > 0 && string_keyed_map(root.via.array.ptr[count - 1])) {
                ordered_json kwargs = infer(root.via.array.ptr[count - 1], 1);
                properties = std::move(kwargs["properties"]);
                required = std::move(kwargs["required"]);
                --count;
            }
            for (std::uint32_t i = 0; i < count; ++i) {
                args.push_back(infer(root.via.array.ptr[i], 1));
            }
        }
        if (!args.empty()) {
            properties["args"] = tuple_schema(std::move(args));
            required.push_back("args");
        }
        out["properties"] = std::move(properties);
        out["required"] = std::move(required);
        return out;
    } catch (const NotJson&) {
        return std::nullopt;
    } catch (const std::exception&) {
        return std::nullopt;
    }
}

ordered_json merge_schemas(const ordered_json& a, const ordered_json& b) {
    if (a == b) {
        return a;
    }
    const auto type_of = [](const ordered_json& s) {
        const auto it = s.find("type");
        return it != s.end() && it->is_string() ? it->get<std::string>() : std::string();
    };
    const std::string ta = type_of(a);
    const std::string tb = type_of(b);
    if ((ta == "integer" && tb == "number") || (ta == "number" && tb == "integer")) {
        return {{"type", "number"}};
    }
    if (ta == "object" && tb == "object" && a.contains("properties") && b.contains("properties")) {
        ordered_json out = a;
        auto& properties = out["properties"];
        for (const auto& [key, value] : b["properties"].items()) {
            properties[key] = properties.contains(key) ? merge_schemas(properties[key], value) : value;
        }
        ordered_json required = ordered_json::array();
        const auto rb = b.value("required", ordered_json::array());
        for (const auto& r : a.value("required", ordered_json::array())) {
            if (std::find(rb.begin(), rb.end(), r) != rb.end()) {
                required.push_back(r);
            }
        }
        out["required"] = std::move(required);
        return out;
    }
    if (ta == "array" && tb == "array" && a.contains("items") && b.contains("items") && a["items"].is_object() &&
        b["items"].is_object()) {
        return {{"type", "array"}, {"items", merge_schemas(a["items"], b["items"])}};
    }
    if (ta == "array" && tb == "array") {
        return {{"type", "array"}};
    }
    // Only shapes that merge_schemas() descends into are merged here; any other pair of the same
    // type (a string and a base64 string) stays two alternatives, or this would recurse forever.
    const auto descends = [&](const ordered_json& x, const ordered_json& y) {
        const std::string t = type_of(x);
        return t == type_of(y) &&
               (t == "array" || (t == "object" && x.contains("properties") && y.contains("properties")));
    };
    std::vector<ordered_json> any = alternatives(a);
    for (const auto& alt : alternatives(b)) {
        bool merged = false;
        for (auto& have : any) {
            if (have == alt) {
                merged = true;
                break;
            }
            if (descends(have, alt)) {
                have = merge_schemas(have, alt);
                merged = true;
                break;
            }
        }
        if (!merged) {
            any.push_back(alt);
        }
    }
    ordered_json out = ordered_json::object();
    out["anyOf"] = std::move(any);
    return out;
}

std::string inferred_schema_name(std::string_view topic) {
    return std::string(topic) + " (inferred)";
}

}  // namespace meshy::cli::bridge
