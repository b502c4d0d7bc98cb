// Command-line words to msgpack, and msgpack to text.
#include <yaml-cpp/yaml.h>

#include <charconv>
#include <cmath>
#include <cstdio>
#include <ctime>
#include <meshy/codecs/msgpack.hpp>
#include <nlohmann/json.hpp>

#include "cli.hpp"
#include "msgpack_json.hpp"

namespace meshy::cli {
namespace {

using Packer = msgpack::packer<Buffer>;

bool is_null(const std::string& s) {
    return s.empty() || s == "~" || s == "null" || s == "Null" || s == "NULL";
}

std::optional<bool> as_bool(const std::string& s) {
    if (s == "true" || s == "True" || s == "TRUE") {
        return true;
    }
    if (s == "false" || s == "False" || s == "FALSE") {
        return false;
    }
    return std::nullopt;
}

std::optional<std::int64_t> as_int(const std::string& s) {
    std::string_view v = s;
    if (!v.empty() && v[0] == '+') {
        v.remove_prefix(1);
    }
    int base = 10;
    bool negative = false;
    if (!v.empty() && v[0] == '-') {
        negative = true;
        v.remove_prefix(1);
    }
    if (v.size() > 2 && v[0] == '0' && (v[1] == 'x' || v[1] == 'o')) {
        base = v[1] == 'x' ? 16 : 8;
        v.remove_prefix(2);
    }
    if (v.empty()) {
        return std::nullopt;
    }
    std::uint64_t magnitude = 0;
    const auto [end, ec] = std::from_chars(v.data(), v.data() + v.size(), magnitude, base);
    if (ec != std::errc{} || end != v.data() + v.size() || magnitude > (std::uint64_t{1} << 63)) {
        return std::nullopt;
    }
    if (!negative && magnitude == (std::uint64_t{1} << 63)) {
        return std::nullopt;
    }
    return negative ? static_cast<std::int64_t>(0 - magnitude) : static_cast<std::int64_t>(magnitude);
}

bool is_digit(char c) {
    return c >= '0' && c <= '9';
}

/// The YAML 1.2 core schema's float form without its specials:
/// `[-+]?(\.[0-9]+|[0-9]+(\.[0-9]*)?)([eE][-+]?[0-9]+)?`.
bool yaml_float_text(std::string_view s) {
    std::size_t i = 0;
    const auto digits = [&] {
        const std::size_t from = i;
        while (i < s.size() && is_digit(s[i])) {
            ++i;
        }
        return i - from;
    };
    if (i < s.size() && (s[i] == '-' || s[i] == '+')) {
        ++i;
    }
    if (digits() == 0) {
        if (i >= s.size() || s[i] != '.') {
            return false;
        }
        ++i;
        if (digits() == 0) {
            return false;
        }
    } else if (i < s.size() && s[i] == '.') {
        ++i;
        digits();
    }
    if (i < s.size() && (s[i] == 'e' || s[i] == 'E')) {
        ++i;
        if (i < s.size() && (s[i] == '-' || s[i] == '+')) {
            ++i;
        }
        if (digits() == 0) {
            return false;
        }
    }
    return i == s.size();
}

std::optional<double> as_float(const std::string& s) {
    if (s == ".inf" || s == "+.inf" || s == ".Inf") {
        return HUGE_VAL;
    }
    if (s == "-.inf" || s == "-.Inf") {
        return -HUGE_VAL;
    }
    if (s == ".nan" || s == ".NaN") {
        return std::nan("");
    }
    if (!yaml_float_text(s)) {
        return std::nullopt;
    }
    return std::strtod(s.c_str(), nullptr);
}

/// What one argument may expand to. YAML aliases make a node graph, not a tree: `&a [1, *a]` refers
/// to itself and nested aliases multiply (found by tests/fuzz/args_fuzz.cpp), so both are bounded.
struct PackBudget {
    static constexpr int max_depth = 64;
    std::size_t max_values = max_arg_values;
    std::size_t values_left = max_values;
};

/// Packs a YAML node with YAML 1.2 core-schema typing of plain scalars; quoted scalars stay strings.
/// @throws CliError(exit_usage) past the budget's depth or number of values
void pack_yaml(Buffer& out, const YAML::Node& node, std::string& display, PackBudget& budget, int depth = 0) {
    if (depth > PackBudget::max_depth) {
        throw CliError("argument nests deeper than " + std::to_string(PackBudget::max_depth) +
                           " levels (or a YAML alias refers to itself)",
                       exit_usage);
    }
    if (budget.values_left == 0) {
        throw CliError("argument expands to more than " + std::to_string(budget.max_values) + " values (YAML aliases)",
                       exit_usage);
    }
    --budget.values_left;
    Packer pk(out);
    switch (node.Type()) {
        case YAML::NodeType::Null:
        case YAML::NodeType::Undefined:
            pk.pack_nil();
            display += "null";
            return;
        case YAML::NodeType::Scalar: {
            const std::string& s = node.Scalar();
            if (node.Tag() == "!") {  // quoted: a string, whatever it looks like
                pk.pack(s);
                display += json_quote(s);
            } else if (is_null(s)) {
                pk.pack_nil();
                display += "null";
            } else if (auto b = as_bool(s)) {
                *b ? pk.pack_true() : pk.pack_false();
                display += *b ? "true" : "false";
            } else if (auto i = as_int(s)) {
                pk.pack(*i);
                display += std::to_string(*i);
            } else if (auto f = as_float(s)) {
                pack_float64(out, *f);
                display += s;
            } else {
                pk.pack(s);
                display += json_quote(s);
            }
            return;
        }
        case YAML::NodeType::Sequence: {
            pk.pack_array(static_cast<std::uint32_t>(node.size()));
            display += "[";
            bool first = true;
            for (const auto& item : node) {
                display += first ? "" : ", ";
                first = false;
                pack_yaml(out, item, display, budget, depth + 1);
            }
            display += "]";
            return;
        }
        case YAML::NodeType::Map: {
            pk.pack_map(static_cast<std::uint32_t>(node.size()));
            display += "{";
            bool first = true;
            for (const auto& kv : node) {
                display += first ? "" : ", ";
                first = false;
                pack_yaml(out, kv.first, display, budget, depth + 1);
                display += ": ";
                pack_yaml(out, kv.second, display, budget, depth + 1);
            }
            display += "}";
            return;
        }
    }
}

YAML::Node load(const std::string& word) {
    try {
        return YAML::Load(word);
    } catch (const YAML::Exception& e) {
        throw CliError("cannot parse argument '" + word + "': " + e.msg, exit_usage);
    }
}

bool is_keyword(const std::string& word, std::string& key, std::string& value) {
    // `name=value`: a name as in C, then anything on one line.
    const auto name_char = [](char c, bool first) {
        return c == '_' || (c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') || (!first && is_digit(c));
    };
    const std::size_t eq = word.find('=');
    if (eq == 0 || eq == std::string::npos || word.find_first_of("\r\n") != std::string::npos) {
        return false;
    }
    for (std::size_t i = 0; i < eq; ++i) {
        if (!name_char(word[i], i == 0)) {
            return false;
        }
    }
    key = word.substr(0, eq);
    value = word.substr(eq + 1);
    return true;
}

}  // namespace

ParsedArgs parse_args(const std::vector<std::string>& words, std::size_t max_values) {
    ParsedArgs out;
    std::vector<std::pair<std::string, YAML::Node>> keywords;
    std::vector<YAML::Node> positional;
    for (std::string word : words) {
        if (!word.empty() && word.front() == bracket_escape) {
            word.erase(0, 1);
        }
        std::string key, value;
        if (is_keyword(word, key, value)) {
            keywords.emplace_back(key, load(value));
        } else {
            if (!keywords.empty()) {
                throw CliError("positional argument '" + word + "' after a keyword argument", exit_usage);
            }
            positional.push_back(load(word));
        }
    }
    Packer pk(out.payload);
    pk.pack_array(static_cast<std::uint32_t>(positional.size() + (keywords.empty() ? 0 : 1)));
    out.display = "(";
    PackBudget budget{.max_values = max_values, .values_left = max_values};  // for the whole message
    bool first = true;
    for (const auto& node : positional) {
        out.display += first ? "" : ", ";
        first = false;
        pack_yaml(out.payload, node, out.display, budget);
    }
    if (!keywords.empty()) {
        pk.pack_map(static_cast<std::uint32_t>(keywords.size()));
        for (const auto& [key, node] : keywords) {
            out.display += first ? "" : ", ";
            first = false;
            pk.pack(key);
            out.display += key + "=";
            pack_yaml(out.payload, node, out.display, budget);
        }
    }
    out.display += ")";
    return out;
}

std::optional<std::vector<std::string>> payload_args(CodecId codec, std::span<const std::byte> payload, bool json) {
    if (codec != CodecId::msgpack) {
        return std::nullopt;
    }
    // Untrusted bytes: bounded by unpack_payload (no container claims more elements than there are
    // bytes, nesting at most max_value_depth, nothing after the value).
    const auto handle = unpack_payload(payload);
    if (!handle) {
        return std::nullopt;
    }
    try {
        const auto& root = handle->get();
        if (root.type != msgpack::type::ARRAY) {
            return std::nullopt;
        }
        std::vector<std::string> args;
        for (std::uint32_t i = 0; i < root.via.array.size; ++i) {
            args.push_back(json_text(msgpack_to_json(root.via.array.ptr[i], BinaryForm::summary, 1), json));
        }
        return args;
    } catch (const std::exception&) {
        return std::nullopt;
    }
}

std::string payload_text(CodecId codec, std::span<const std::byte> payload, bool json) {
    if (auto args = payload_args(codec, payload, json)) {
        std::string out = "[";
        for (std::size_t i = 0; i < args->size(); ++i) {
            out += (i ? ", " : "") + (*args)[i];
        }
        return out + "]";
    }
    std::string text = bytes_summary(payload.data(), payload.size());
    text.insert(text.find(':'), ", " + std::string(codec_name(codec)));  // "<N bytes, raw: 0a1b...>"
    return json ? json_quote(text) : text;
}

std::string timestamp_text(std::uint64_t ns) {
    const std::time_t secs = static_cast<std::time_t>(ns / 1000000000u);
    std::tm tm{};
    localtime_r(&secs, &tm);
    char buf[64];
    const std::size_t n = std::strftime(buf, sizeof buf, "%Y-%m-%d %H:%M:%S", &tm);
    std::snprintf(buf + n, sizeof buf - n, ".%03u", static_cast<unsigned>((ns / 1000000u) % 1000u));
    return buf;
}

}  // namespace meshy::cli
