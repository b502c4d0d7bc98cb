#include "bridge/foxglove_typed.hpp"

#include <cmath>
#include <meshy/codecs/msgpack.hpp>
#include <nlohmann/json.hpp>
#include <string>

#include "msgpack_json.hpp"

namespace meshy::cli::bridge {
namespace {

using ordered_json = nlohmann::ordered_json;
constexpr int max_depth = 64;

struct NotJson {};

/// Work left for one conversion or check: schemas come from peers, and a schema of nested anyOf or
/// many properties must not make one message cost without bound. Property lookups are linear.
struct Budget {
    std::size_t left;
    bool take(std::size_t n) {
        if (n > left) {
            left = 0;
            return false;
        }
        left -= n;
        return true;
    }
};

std::size_t size_of(const ordered_json* j) {
    return j && (j->is_object() || j->is_array()) ? j->size() : 0;
}

const ordered_json* member(const ordered_json* schema, const char* key) {
    if (!schema || !schema->is_object()) {
        return nullptr;
    }
    const auto it = schema->find(key);
    return it == schema->end() ? nullptr : &*it;
}

/// Whether a schema's "type" (absent: any) admits a msgpack value of type `t`.
bool admits(const ordered_json& schema, msgpack::type::object_type t) {
    const ordered_json* type = member(&schema, "type");
    if (!type || !type->is_string()) {
        return true;
    }
    const std::string& name = type->get_ref<const std::string&>();
    switch (t) {
        case msgpack::type::NIL:
            return name == "null";
        case msgpack::type::BOOLEAN:
            return name == "boolean";
        case msgpack::type::POSITIVE_INTEGER:
        case msgpack::type::NEGATIVE_INTEGER:
            return name == "integer" || name == "number";
        case msgpack::type::FLOAT32:
        case msgpack::type::FLOAT64:
            return name == "number";
        case msgpack::type::STR:
        case msgpack::type::BIN:
            return name == "string";
        case msgpack::type::ARRAY:
            return name == "array" || (name == "object" && member(&schema, "properties"));
        case msgpack::type::MAP:
            return name == "object";
        case msgpack::type::EXT:
            return false;
    }
    return false;
}

/// The schema that describes `o`: `schema` itself, or the first of its anyOf/oneOf alternatives that
/// admits it (nullptr, no guidance, when none does).
const ordered_json* pick(const ordered_json* schema, const msgpack::object& o, int depth = 0) {
    if (!schema || !schema->is_object() || depth > 8) {
        return schema;
    }
    for (const char* key : {"anyOf", "oneOf"}) {
        const ordered_json* alternatives = member(schema, key);
        if (!alternatives || !alternatives->is_array()) {
            continue;
        }
        for (const auto& alt : *alternatives) {
            if (admits(alt, o.type)) {
                return pick(&alt, o, depth + 1);
            }
        }
        return nullptr;
    }
    return schema;
}

ordered_json convert(
    const msgpack::object& o, const ordered_json* schema, TypedBinary binary, int depth, Budget& budget) {
    if (depth > max_depth || !budget.take(1 + size_of(member(schema, "anyOf")) + size_of(member(schema, "oneOf")))) {
        throw NotJson{};
    }
    schema = pick(schema, o);
    switch (o.type) {
        case msgpack::type::NIL:
        case msgpack::type::BOOLEAN:
        case msgpack::type::POSITIVE_INTEGER:
        case msgpack::type::NEGATIVE_INTEGER:
        case msgpack::type::FLOAT32:
        case msgpack::type::FLOAT64:
        case msgpack::type::STR:
        case msgpack::type::BIN:
            return msgpack_to_ordered_json(o,
                                           binary == TypedBinary::summary ? BinaryForm::summary : BinaryForm::base64);
        case msgpack::type::ARRAY: {
            const ordered_json* properties = member(schema, "properties");
            if (properties && properties->is_object()) {
                // Packed by position (MSGPACK_DEFINE): the schema's properties name the elements.
                if (o.via.array.size > properties->size() || !budget.take(properties->size())) {
                    throw NotJson{};
                }
                ordered_json out = ordered_json::object();
                std::uint32_t i = 0;
                for (const auto& [name, sub] : properties->items()) {
                    if (i == o.via.array.size) {
                        break;
                    }
                    out[name] = convert(o.via.array.ptr[i++], &sub, binary, depth + 1, budget);
                }
                return out;
            }
            const ordered_json* items = member(schema, "items");
            ordered_json out = ordered_json::array();
            for (std::uint32_t i = 0; i < o.via.array.size; ++i) {
                const ordered_json* sub =
                    items && items->is_array() ? (i < items->size() ? &(*items)[i] : nullptr) : items;
                out.push_back(convert(o.via.array.ptr[i], sub, binary, depth + 1, budget));
            }
            return out;
        }
        case msgpack::type::MAP: {
            const ordered_json* properties = member(schema, "properties");
            const ordered_json* additional = member(schema, "additionalProperties");
            ordered_json out = ordered_json::object();
            for (std::uint32_t i = 0; i < o.via.map.size; ++i) {
                const auto& kv = o.via.map.ptr[i];
                if (kv.key.type != msgpack::type::STR) {
                    throw NotJson{};
                }
                std::string key(kv.key.via.str.ptr, kv.key.via.str.size);
                if (!budget.take(out.size() + size_of(properties))) {
                    throw NotJson{};
                }
                if (out.contains(key)) {
                    throw NotJson{};  // a duplicate key has no JSON form
                }
                const ordered_json* sub = nullptr;
                if (properties && properties->is_object() && properties->contains(key)) {
                    sub = &(*properties)[key];
                } else if (additional && additional->is_object()) {
                    sub = additional;
                }
                out[std::move(key)] = convert(kv.val, sub, binary, depth + 1, budget);
            }
            return out;
        }
        case msgpack::type::EXT:
            break;
    }
    throw NotJson{};
}

bool type_matches(const ordered_json& value, const std::string& type) {
    if (type == "null") {
        return value.is_null();
    }
    if (type == "boolean") {
        return value.is_boolean();
    }
    if (type == "integer") {
        // As JSON Schema validators read JSON text: 2.0 is an integer.
        return value.is_number_integer() || (value.is_number_float() && std::isfinite(value.get<double>()) &&
                                             std::floor(value.get<double>()) == value.get<double>());
    }
    if (type == "number") {
        return value.is_number();
    }
    if (type == "string") {
        return value.is_string();
    }
    if (type == "array") {
        return value.is_array();
    }
    if (type == "object") {
        return value.is_object();
    }
    return true;  // a type name this check does not know: not checked
}

bool fits(const ordered_json& value, const ordered_json& schema, int depth, Budget& budget) {
    if (schema.is_boolean()) {
        return schema.get<bool>();
    }
    if (!schema.is_object()) {
        return true;  // not a schema: nothing to check
    }
    if (depth > max_depth || !budget.take(1 + schema.size())) {
        return false;
    }
    for (const char* key : {"anyOf", "oneOf"}) {
        if (const ordered_json* alternatives = member(&schema, key); alternatives && alternatives->is_array()) {
            bool any = false;
            for (const auto& alt : *alternatives) {
                if (fits(value, alt, depth + 1, budget)) {
                    any = true;
                    break;
                }
            }
            if (!any) {
                return false;
            }
        }
    }
    if (const ordered_json* type = member(&schema, "type")) {
        bool ok = false;
        if (type->is_string()) {
            ok = type_matches(value, type->get_ref<const std::string&>());
        } else if (type->is_array()) {
            for (const auto& t : *type) {
                ok = ok || (t.is_string() && type_matches(value, t.get_ref<const std::string&>()));
            }
        } else {
            ok = true;
        }
        if (!ok) {
            return false;
        }
    }
    if (const ordered_json* values = member(&schema, "enum"); values && values->is_array()) {
        if (!budget.take(values->size())) {
            return false;
        }
        bool found = false;
        for (const auto& v : *values) {
            found = found || v == value;
        }
        if (!found) {
            return false;
        }
    }
    if (const ordered_json* c = member(&schema, "const"); c && *c != value) {
        return false;
    }
    if (value.is_number()) {
        const double x = value.get<double>();
        const ordered_json* minimum = member(&schema, "minimum");
        const ordered_json* maximum = member(&schema, "maximum");
        if ((minimum && minimum->is_number() && x < minimum->get<double>()) ||
            (maximum && maximum->is_number() && x > maximum->get<double>())) {
            return false;
        }
    }
    if (value.is_object()) {
        const ordered_json* properties = member(&schema, "properties");
        const ordered_json* additional = member(&schema, "additionalProperties");
        if (const ordered_json* required = member(&schema, "required"); required && required->is_array()) {
            for (const auto& name : *required) {
                if (name.is_string() && !value.contains(name.get_ref<const std::string&>())) {
                    return false;
                }
            }
        }
        for (const auto& [key, item] : value.items()) {
            if (!budget.take(size_of(properties) + size_of(member(&schema, "required")))) {
                return false;
            }
            if (properties && properties->is_object() && properties->contains(key)) {
                if (!fits(item, (*properties)[key], depth + 1, budget)) {
                    return false;
                }
            } else if (additional && !fits(item, *additional, depth + 1, budget)) {
                return false;
            }
        }
    }
    if (value.is_array()) {
        const ordered_json* min_items = member(&schema, "minItems");
        const ordered_json* max_items = member(&schema, "maxItems");
        if ((min_items && min_items->is_number_unsigned() && value.size() < min_items->get<std::size_t>()) ||
            (max_items && max_items->is_number_unsigned() && value.size() > max_items->get<std::size_t>())) {
            return false;
        }
        if (const ordered_json* items = member(&schema, "items")) {
            for (std::size_t i = 0; i < value.size(); ++i) {
                const ordered_json* sub = items->is_array() ? (i < items->size() ? &(*items)[i] : nullptr) : items;
                if (sub && !fits(value[i], *sub, depth + 1, budget)) {
                    return false;
                }
            }
        }
    }
    return true;
}

}  // namespace

std::optional<ordered_json> typed_message(CodecId codec,
                                          std::span<const std::byte> payload,
                                          const ordered_json& schema,
                                          TypedBinary binary) {
    if (codec != CodecId::msgpack) {
        return std::nullopt;
    }
    try {
        const auto handle = unpack_payload(payload);
        if (!handle || handle->get().type != msgpack::type::ARRAY) {
            return std::nullopt;
        }
        const msgpack::object& args = handle->get();
        const std::size_t n = payload.size();
        // send(topic, message): the one argument is the message; send(topic, a, b): the list is.
        Budget budget{16 * n + 1'000'000};
        return convert(args.via.array.size == 1 ? args.via.array.ptr[0] : args, &schema, binary, 0, budget);
    } catch (const NotJson&) {
        return std::nullopt;
    } catch (const std::exception&) {
        return std::nullopt;
    }
}

bool fits_schema(const ordered_json& value, const ordered_json& schema) {
    Budget budget{10'000'000};
    return fits(value, schema, 0, budget);
}

}  // namespace meshy::cli::bridge
