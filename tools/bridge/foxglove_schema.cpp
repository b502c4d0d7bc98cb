#include "bridge/foxglove_schema.hpp"

#include <algorithm>
#include <cstdint>
#include <meshy/codecs/msgpack.hpp>
#include <meshy/msgs/foxglove.hpp>
#include <nlohmann/json.hpp>
#include <string_view>
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

/// An inferred schema while it is built. Merged as JSON values, an array's element schemas were
/// copied and compared whole for every element (most of what a message cost); shapes merge in place,
/// and shape_json() makes the JSON Schema once: the one merge_schemas() would have built.
struct Shape {
    enum class Kind : std::uint8_t { null, boolean, integer, number, string, base64, array, object, any_of };
    /// An object's property: its name (in the payload's bytes) and whether every message had it.
    struct Property {
        std::string_view name;
        bool required = true;
        bool operator==(const Property&) const = default;
    };
    explicit Shape(Kind k = Kind::null) : kind(k) {}

    Kind kind;
    /// array: its items' schema, if any element was seen; object: the properties' schemas;
    /// any_of: the alternatives.
    std::vector<Shape> children;
    std::vector<Property> properties;  ///< object: in the order first seen

    bool operator==(const Shape&) const = default;
};

/// The "type" of a shape's JSON Schema (merge_schemas() compares those).
std::string_view type_name(Shape::Kind kind) {
    switch (kind) {
        case Shape::Kind::null:
            return "null";
        case Shape::Kind::boolean:
            return "boolean";
        case Shape::Kind::integer:
            return "integer";
        case Shape::Kind::number:
            return "number";
        case Shape::Kind::string:
        case Shape::Kind::base64:
            return "string";
        case Shape::Kind::array:
            return "array";
        case Shape::Kind::object:
            return "object";
        case Shape::Kind::any_of:
            break;
    }
    return "";
}

constexpr std::size_t no_property = static_cast<std::size_t>(-1);

/// The index of an object shape's property `name`, or no_property.
std::size_t property_index(const Shape& object, std::string_view name) {
    for (std::size_t i = 0; i < object.properties.size(); ++i) {
        if (object.properties[i].name == name) {
            return i;
        }
    }
    return no_property;
}

/// merge_schemas(a, b) on shapes, into `a`.
void merge(Shape& a, Shape&& b) {
    using Kind = Shape::Kind;
    if (a == b) {
        return;
    }
    if ((a.kind == Kind::integer && b.kind == Kind::number) || (a.kind == Kind::number && b.kind == Kind::integer)) {
        a = Shape(Kind::number);
        return;
    }
    if (a.kind == Kind::object && b.kind == Kind::object) {
        for (auto& p : a.properties) {
            const std::size_t i = property_index(b, p.name);
            p.required = p.required && i != no_property && b.properties[i].required;
        }
        for (std::size_t i = 0; i < b.properties.size(); ++i) {
            if (const std::size_t have = property_index(a, b.properties[i].name); have != no_property) {
                merge(a.children[have], std::move(b.children[i]));
            } else {
                a.properties.push_back({b.properties[i].name, false});
                a.children.push_back(std::move(b.children[i]));
            }
        }
        return;
    }
    if (a.kind == Kind::array && b.kind == Kind::array) {
        if (!a.children.empty() && !b.children.empty()) {
            merge(a.children.front(), std::move(b.children.front()));
        } else {
            a.children.clear();  // merge_schemas() keeps items only when both have them
        }
        return;
    }
    // Only shapes that merge() descends into are merged here; any other pair of the same type (a
    // string and a base64 string) stays two alternatives.
    const auto descends = [](const Shape& x, const Shape& y) {
        return type_name(x.kind) == type_name(y.kind) && (x.kind == Kind::array || x.kind == Kind::object);
    };
    if (a.kind != Kind::any_of) {
        std::vector<Shape> any;
        any.push_back(std::move(a));
        a = Shape(Kind::any_of);
        a.children = std::move(any);
    }
    const auto add = [&](Shape&& alt) {
        for (auto& have : a.children) {
            if (have == alt) {
                return;
            }
            if (descends(have, alt)) {
                merge(have, std::move(alt));
                return;
            }
        }
        a.children.push_back(std::move(alt));
    };
    if (b.kind == Kind::any_of) {
        for (auto& alt : b.children) {
            add(std::move(alt));
        }
    } else {
        add(std::move(b));
    }
}

/// Whether a map of `size` keys has two equal ones (no JSON form).
bool duplicate_keys(const msgpack::object_kv* kv, std::uint32_t size) {
    const auto key = [&](std::uint32_t i) {
        return std::string_view(kv[i].key.via.str.ptr, kv[i].key.via.str.size);
    };
    if (size <= 16) {
        for (std::uint32_t i = 1; i < size; ++i) {
            for (std::uint32_t j = 0; j < i; ++j) {
                if (key(i) == key(j)) {
                    return true;
                }
            }
        }
        return false;
    }
    std::vector<std::string_view> keys(size);
    for (std::uint32_t i = 0; i < size; ++i) {
        keys[i] = key(i);
    }
    std::sort(keys.begin(), keys.end());
    return std::adjacent_find(keys.begin(), keys.end()) != keys.end();
}

/// The shape of `o`, into `out`; false when `o` has no JSON form.
bool infer(const msgpack::object& o, int depth, Shape& out) {
    using Kind = Shape::Kind;
    if (depth > max_depth) {
        return false;
    }
    switch (o.type) {
        case msgpack::type::NIL:
            out = Shape(Kind::null);
            return true;
        case msgpack::type::BOOLEAN:
            out = Shape(Kind::boolean);
            return true;
        case msgpack::type::POSITIVE_INTEGER:
        case msgpack::type::NEGATIVE_INTEGER:
            out = Shape(Kind::integer);
            return true;
        case msgpack::type::FLOAT32:
        case msgpack::type::FLOAT64:
            out = Shape(Kind::number);
            return true;
        case msgpack::type::STR:
            out = Shape(Kind::string);
            return true;
        case msgpack::type::BIN:
            out = Shape(Kind::base64);
            return true;
        case msgpack::type::ARRAY: {
            out = Shape(Kind::array);
            Shape element;
            for (std::uint32_t i = 0; i < o.via.array.size; ++i) {
                if (!infer(o.via.array.ptr[i], depth + 1, element)) {
                    return false;
                }
                if (i == 0) {
                    out.children.push_back(std::move(element));
                } else {
                    merge(out.children.front(), std::move(element));
                }
            }
            return true;
        }
        case msgpack::type::MAP: {
            const std::uint32_t size = o.via.map.size;
            for (std::uint32_t i = 0; i < size; ++i) {
                if (o.via.map.ptr[i].key.type != msgpack::type::STR) {
                    return false;
                }
            }
            if (duplicate_keys(o.via.map.ptr, size)) {
                return false;
            }
            out = Shape(Kind::object);
            out.children.resize(size);
            out.properties.reserve(size);
            for (std::uint32_t i = 0; i < size; ++i) {
                const auto& kv = o.via.map.ptr[i];
                if (!infer(kv.val, depth + 1, out.children[i])) {
                    return false;
                }
                out.properties.push_back({std::string_view(kv.key.via.str.ptr, kv.key.via.str.size), true});
            }
            return true;
        }
        case msgpack::type::EXT:
            break;
    }
    return false;
}

ordered_json shape_json(const Shape& s);

/// An object shape's "properties" and "required".
void object_members(const Shape& s, ordered_json::object_t& properties, ordered_json::array_t& required) {
    properties.reserve(s.properties.size());
    for (std::size_t i = 0; i < s.properties.size(); ++i) {
        const std::string name(s.properties[i].name);
        if (s.properties[i].required) {
            required.emplace_back(name);
        }
        properties.emplace_back(name, shape_json(s.children[i]));  // the names are distinct
    }
}

/// The JSON Schema of a shape, as infer_schema() returns it. Its members are placed in a vector of
/// the right size: assigned one by one, they would reallocate it as it grows.
ordered_json shape_json(const Shape& s) {
    using Kind = Shape::Kind;
    ordered_json::object_t out;
    switch (s.kind) {
        case Kind::any_of: {
            ordered_json::array_t any;
            any.reserve(s.children.size());
            for (const auto& alt : s.children) {
                any.push_back(shape_json(alt));
            }
            out.reserve(1);
            out.emplace_back("anyOf", std::move(any));
            break;
        }
        case Kind::array:
            out.reserve(2);
            out.emplace_back("type", "array");
            if (!s.children.empty()) {
                out.emplace_back("items", shape_json(s.children.front()));
            }
            break;
        case Kind::object: {
            ordered_json::object_t properties;
            ordered_json::array_t required;
            object_members(s, properties, required);
            out.reserve(3);
            out.emplace_back("type", "object");
            out.emplace_back("properties", std::move(properties));
            out.emplace_back("required", std::move(required));
            break;
        }
        case Kind::base64:
            out.reserve(2);
            out.emplace_back("type", "string");
            out.emplace_back("contentEncoding", "base64");
            break;
        default:
            out.reserve(1);
            out.emplace_back("type", type_name(s.kind));
            break;
    }
    return ordered_json(std::move(out));
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

ordered_json tuple_schema(ordered_json::array_t items) {
    const std::size_t n = items.size();
    ordered_json::object_t out;
    out.reserve(4);
    out.emplace_back("type", "array");
    out.emplace_back("items", std::move(items));
    out.emplace_back("minItems", n);
    out.emplace_back("additionalItems", false);
    return ordered_json(std::move(out));
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
    std::vector<std::string_view> names;
    names.reserve(message.size());
    for (const auto& [key, value] : message.items()) {
        names.push_back(key);
    }
    std::sort(names.begin(), names.end());
    for (const auto& [type, type_fields] : fields) {
        if (std::equal(type_fields.begin(), type_fields.end(), names.begin(), names.end())) {
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
        std::optional<Shape> kwargs;
        std::vector<Shape> args;
        if (root.type != msgpack::type::ARRAY) {
            if (!infer(root, 1, args.emplace_back())) {
                return std::nullopt;
            }
        } else {
            std::uint32_t count = root.via.array.size;
            if (count > 0 && string_keyed_map(root.via.array.ptr[count - 1])) {
                if (!infer(root.via.array.ptr[count - 1], 1, kwargs.emplace())) {
                    return std::nullopt;
                }
                --count;
            }
            args.resize(count);
            for (std::uint32_t i = 0; i < count; ++i) {
                if (!infer(root.via.array.ptr[i], 1, args[i])) {
                    return std::nullopt;
                }
            }
        }
        ordered_json::object_t properties;
        ordered_json::array_t required;
        if (kwargs) {
            object_members(*kwargs, properties, required);
        }
        if (!args.empty()) {
            ordered_json::array_t items;
            items.reserve(args.size());
            for (const auto& arg : args) {
                items.push_back(shape_json(arg));
            }
            // A keyword argument called "args" is replaced where it stands (and named twice in "required").
            ordered_json& slot = properties["args"];
            slot = tuple_schema(std::move(items));
            required.emplace_back("args");
        }
        ordered_json::object_t out;
        out.reserve(4);
        out.emplace_back("$comment", "inferred");
        out.emplace_back("type", "object");
        out.emplace_back("properties", std::move(properties));
        out.emplace_back("required", std::move(required));
        return ordered_json(std::move(out));
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
