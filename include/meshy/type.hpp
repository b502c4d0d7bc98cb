/// @file
/// Message types with a name and a JSON Schema, for tools that show messages by their fields
/// (Foxglove through `meshy bridge`, `meshy bag record`). Give a struct its type next to its
/// msgpack definition:
///
/// ```cpp
/// struct Pose {
///     double x = 0, y = 0, z = 0;
///     MSGPACK_DEFINE_MAP(x, y, z)
///     MESHY_TYPE("geometry/Pose", x, y, z);
/// };
/// static_assert(meshy::TypedMessage<Pose>);
/// std::string s = meshy::message_type<Pose>::schema();  // {"title":"geometry/Pose","type":"object",...}
/// ```
///
/// The schema describes the JSON form of the msgpack map MSGPACK_DEFINE_MAP writes: integers,
/// numbers, booleans, strings, msgpack `bin` (std::vector<std::byte>, std::vector<std::uint8_t>,
/// std::vector<char>) as base64 strings with `contentEncoding`, arrays, string-keyed maps, optional
/// values and nested typed structs. This header does not include msgpack.
#pragma once

#include <array>
#include <concepts>
#include <cstddef>
#include <cstdint>
#include <map>
#include <optional>
#include <string>
#include <string_view>
#include <tuple>
#include <type_traits>
#include <unordered_map>
#include <vector>

namespace meshy {

/// A message type's name and schema. Specialise it for a type you cannot edit (give it a
/// `static constexpr std::string_view name` and a `static std::string schema()`); types with
/// MESHY_TYPE get it from the macro.
template <class T>
struct message_type {};

/// A type with a name and a JSON Schema (MESHY_TYPE or a message_type specialisation).
template <class T>
concept TypedMessage = requires {
    { message_type<T>::name } -> std::convertible_to<std::string_view>;
    { message_type<T>::schema() } -> std::convertible_to<std::string>;
};

namespace detail {

/// Appends `text` as a JSON string literal.
inline void append_json_string(std::string& out, std::string_view text) {
    static constexpr char hex[] = "0123456789abcdef";
    out += '"';
    for (const char ch : text) {
        const auto c = static_cast<unsigned char>(ch);
        if (c == '"' || c == '\\') {
            out += '\\';
            out += ch;
        } else if (c < 0x20) {
            out += "\\u00";
            out += hex[c >> 4];
            out += hex[c & 0xF];
        } else {
            out += ch;
        }
    }
    out += '"';
}

template <class T>
struct is_byte_vector : std::false_type {};
template <class A>
struct is_byte_vector<std::vector<std::byte, A>> : std::true_type {};
template <class A>
struct is_byte_vector<std::vector<char, A>> : std::true_type {};
template <class A>
struct is_byte_vector<std::vector<unsigned char, A>> : std::true_type {};

template <class T>
struct is_vector : std::false_type {};
template <class T, class A>
struct is_vector<std::vector<T, A>> : std::true_type {
    using value_type = T;
};

template <class T>
struct is_std_array : std::false_type {};
template <class T, std::size_t N>
struct is_std_array<std::array<T, N>> : std::true_type {
    using value_type = T;
    static constexpr std::size_t size = N;
};

template <class T>
struct is_optional : std::false_type {};
template <class T>
struct is_optional<std::optional<T>> : std::true_type {
    using value_type = T;
};

template <class T>
struct is_string_map : std::false_type {};
template <class V, class C, class A>
struct is_string_map<std::map<std::string, V, C, A>> : std::true_type {
    using mapped_type = V;
};
template <class V, class H, class E, class A>
struct is_string_map<std::unordered_map<std::string, V, H, E, A>> : std::true_type {
    using mapped_type = V;
};

template <class T>
inline constexpr bool dependent_false = false;

/// Appends the JSON Schema of a field of type T.
template <class T>
void append_schema(std::string& out) {
    using U = std::remove_cvref_t<T>;
    if constexpr (TypedMessage<U>) {
        out += message_type<U>::schema();
    } else if constexpr (std::is_same_v<U, bool>) {
        out += R"({"type":"boolean"})";
    } else if constexpr (std::is_enum_v<U>) {
        out += R"({"type":"integer"})";
    } else if constexpr (std::is_integral_v<U> && std::is_unsigned_v<U>) {
        out += R"({"type":"integer","minimum":0})";
    } else if constexpr (std::is_integral_v<U>) {
        out += R"({"type":"integer"})";
    } else if constexpr (std::is_floating_point_v<U>) {
        out += R"({"type":"number"})";
    } else if constexpr (std::is_same_v<U, std::string> || std::is_same_v<U, std::string_view>) {
        out += R"({"type":"string"})";
    } else if constexpr (is_byte_vector<U>::value) {
        out += R"({"type":"string","contentEncoding":"base64"})";
    } else if constexpr (is_vector<U>::value) {
        out += R"({"type":"array","items":)";
        append_schema<typename is_vector<U>::value_type>(out);
        out += '}';
    } else if constexpr (is_std_array<U>::value) {
        out += R"({"type":"array","items":)";
        append_schema<typename is_std_array<U>::value_type>(out);
        const std::string n = std::to_string(is_std_array<U>::size);
        out += R"(,"minItems":)" + n + R"(,"maxItems":)" + n + '}';
    } else if constexpr (is_optional<U>::value) {
        out += R"({"anyOf":[)";
        append_schema<typename is_optional<U>::value_type>(out);
        out += R"(,{"type":"null"}]})";
    } else if constexpr (is_string_map<U>::value) {
        out += R"({"type":"object","additionalProperties":)";
        append_schema<typename is_string_map<U>::mapped_type>(out);
        out += '}';
    } else {
        static_assert(dependent_false<U>,
                      "meshy: no JSON Schema for this field type; give it MESHY_TYPE or specialise "
                      "meshy::message_type for it");
    }
}

/// The names of MESHY_TYPE's fields, from the macro's text "a, b,c".
inline std::vector<std::string_view> split_field_names(std::string_view text) {
    std::vector<std::string_view> names;
    while (!text.empty()) {
        const std::size_t comma = text.find(',');
        std::string_view name = text.substr(0, comma);
        while (!name.empty() && (name.front() == ' ' || name.front() == '\n' || name.front() == '\t')) {
            name.remove_prefix(1);
        }
        while (!name.empty() && (name.back() == ' ' || name.back() == '\n' || name.back() == '\t')) {
            name.remove_suffix(1);
        }
        if (!name.empty()) {
            names.push_back(name);
        }
        if (comma == std::string_view::npos) {
            break;
        }
        text.remove_prefix(comma + 1);
    }
    return names;
}

/// The object schema of a MESHY_TYPE struct: its title, its properties in declaration order (the
/// order MSGPACK_DEFINE_MAP writes them) and every field required.
template <class T>
std::string object_schema() {
    using Fields = decltype(std::declval<const T&>().meshy_fields());
    const auto names = split_field_names(T::meshy_field_names());
    std::string out = R"({"title":)";
    append_json_string(out, T::meshy_type_name());
    out += R"(,"type":"object","properties":{)";
    [&]<std::size_t... I>(std::index_sequence<I...>) {
        static_assert(sizeof...(I) > 0, "meshy: MESHY_TYPE needs at least one field");
        ((out += (I == 0 ? "" : ","), append_json_string(out, names.at(I)), out += ':',
          append_schema<std::tuple_element_t<I, Fields>>(out)),
         ...);
    }
    (std::make_index_sequence<std::tuple_size_v<Fields>>{});
    out += R"(},"required":[)";
    for (std::size_t i = 0; i < names.size(); ++i) {
        if (i > 0) {
            out += ',';
        }
        append_json_string(out, names[i]);
    }
    out += "]}";
    return out;
}

}  // namespace detail

template <class T>
requires requires {
    T::meshy_type_name();
    T::meshy_field_names();
}
struct message_type<T> {
    /// The type's name, e.g. "foxglove.Log".
    static constexpr std::string_view name = T::meshy_type_name();
    /// The JSON Schema of the type's JSON form.
    static std::string schema() { return detail::object_schema<T>(); }
};

/// The JSON Schema of any field type (a typed struct, a number, a vector of them, ...).
template <class T>
std::string json_schema() {
    std::string out;
    detail::append_schema<T>(out);
    return out;
}

}  // namespace meshy

/// Gives the struct it is written in a type name and a JSON Schema built from the listed fields
/// (list the same fields, in the same order, as MSGPACK_DEFINE_MAP). Use it inside the struct.
/// @param type_name a string literal, e.g. "geometry/Pose" or a Foxglove name like "foxglove.Log"
#define MESHY_TYPE(type_name, ...)                          \
    static constexpr std::string_view meshy_type_name() {   \
        return type_name;                                   \
    }                                                       \
    static constexpr std::string_view meshy_field_names() { \
        return #__VA_ARGS__;                                \
    }                                                       \
    auto meshy_fields() const {                             \
        return std::tie(__VA_ARGS__);                       \
    }                                                       \
    static_assert(true, "MESHY_TYPE ends with a semicolon")
