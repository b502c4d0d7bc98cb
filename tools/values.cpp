// Command-line words to msgpack, and msgpack to text.
#include <yaml-cpp/yaml.h>

#include <charconv>
#include <cmath>
#include <cstdio>
#include <ctime>
#include <meshy/codecs/msgpack.hpp>
#include <regex>

#include "cli.hpp"

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

std::optional<double> as_float(const std::string& s) {
    static const std::regex number(R"([-+]?(\.[0-9]+|[0-9]+(\.[0-9]*)?)([eE][-+]?[0-9]+)?)");
    if (s == ".inf" || s == "+.inf" || s == ".Inf") {
        return HUGE_VAL;
    }
    if (s == "-.inf" || s == "-.Inf") {
        return -HUGE_VAL;
    }
    if (s == ".nan" || s == ".NaN") {
        return std::nan("");
    }
    if (!std::regex_match(s, number)) {
        return std::nullopt;
    }
    return std::strtod(s.c_str(), nullptr);
}

/// What one argument may expand to. YAML aliases make a node graph, not a tree: `&a [1, *a]` refers
/// to itself and nested aliases multiply (found by tests/fuzz/args_fuzz.cpp), so both are bounded.
struct PackBudget {
    static constexpr int max_depth = 64;
    std::size_t values_left = 100000;
};

/// Packs a YAML node with YAML 1.2 core-schema typing of plain scalars; quoted scalars stay strings.
/// @throws CliError(exit_usage) past the budget's depth or number of values
void pack_yaml(Packer& pk, const YAML::Node& node, std::string& display, PackBudget& budget, int depth = 0) {
    if (depth > PackBudget::max_depth) {
        throw CliError("argument nests deeper than " + std::to_string(PackBudget::max_depth) +
                           " levels (or a YAML alias refers to itself)",
                       exit_usage);
    }
    if (budget.values_left == 0) {
        throw CliError("argument expands to more than 100000 values (YAML aliases)", exit_usage);
    }
    --budget.values_left;
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
                pk.pack(*f);
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
                pack_yaml(pk, item, display, budget, depth + 1);
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
                pack_yaml(pk, kv.first, display, budget, depth + 1);
                display += ": ";
                pack_yaml(pk, kv.second, display, budget, depth + 1);
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
    static const std::regex kw(R"(([A-Za-z_][A-Za-z0-9_]*)=(.*))");
    std::smatch m;
    if (!std::regex_match(word, m, kw)) {
        return false;
    }
    key = m[1];
    value = m[2];
    return true;
}

void append_hex_prefix(std::string& out, std::span<const std::byte> payload) {
    char b[4];
    const std::size_t n = payload.size() < 32 ? payload.size() : 32;
    for (std::size_t i = 0; i < n; ++i) {
        std::snprintf(b, sizeof b, "%02x", std::to_integer<unsigned>(payload[i]));
        out += b;
    }
    if (payload.size() > n) {
        out += "...";
    }
}

/// Deepest nesting of a received message that is decoded for display; deeper ones show as bytes.
constexpr std::size_t max_text_depth = 64;

void object_text(const msgpack::object& o, std::string& out, bool json) {
    switch (o.type) {
        case msgpack::type::NIL:
            out += "null";
            return;
        case msgpack::type::BOOLEAN:
            out += o.via.boolean ? "true" : "false";
            return;
        case msgpack::type::POSITIVE_INTEGER:
            out += std::to_string(o.via.u64);
            return;
        case msgpack::type::NEGATIVE_INTEGER:
            out += std::to_string(o.via.i64);
            return;
        case msgpack::type::FLOAT32:
        case msgpack::type::FLOAT64: {
            if (!std::isfinite(o.via.f64)) {
                out += json ? "null" : (std::isnan(o.via.f64) ? "nan" : (o.via.f64 > 0 ? "inf" : "-inf"));
                return;
            }
            char buf[32];
            const auto r = std::to_chars(buf, buf + sizeof buf, o.via.f64);  // shortest exact form
            std::string t(buf, r.ptr);
            if (t.find_first_of(".eE") == std::string::npos) {
                t += ".0";
            }
            out += t;
            return;
        }
        case msgpack::type::STR:
            out += json_quote(std::string_view(o.via.str.ptr, o.via.str.size));
            return;
        case msgpack::type::BIN: {
            std::string hex;
            append_hex_prefix(hex, std::as_bytes(std::span(o.via.bin.ptr, o.via.bin.size)));
            out += json ? json_quote("<" + std::to_string(o.via.bin.size) + " bytes: " + hex + ">")
                        : "<" + std::to_string(o.via.bin.size) + " bytes: " + hex + ">";
            return;
        }
        case msgpack::type::EXT:
            out += json ? "null" : "<ext>";
            return;
        case msgpack::type::ARRAY:
            out += "[";
            for (std::uint32_t i = 0; i < o.via.array.size; ++i) {
                out += i ? ", " : "";
                object_text(o.via.array.ptr[i], out, json);
            }
            out += "]";
            return;
        case msgpack::type::MAP:
            out += "{";
            for (std::uint32_t i = 0; i < o.via.map.size; ++i) {
                out += i ? ", " : "";
                const auto& kv = o.via.map.ptr[i];
                if (json && kv.key.type != msgpack::type::STR) {
                    // JSON keys are strings: the key's plain text, quoted once (quoting JSON text at
                    // every level of nested keys would double its length per level).
                    std::string key;
                    object_text(kv.key, key, false);
                    out += json_quote(key);
                } else {
                    object_text(kv.key, out, json);
                }
                out += ": ";
                object_text(kv.val, out, json);
            }
            out += "}";
            return;
    }
}

}  // namespace

ParsedArgs parse_args(const std::vector<std::string>& words) {
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
    PackBudget budget;  // for the whole message
    bool first = true;
    for (const auto& node : positional) {
        out.display += first ? "" : ", ";
        first = false;
        pack_yaml(pk, node, out.display, budget);
    }
    if (!keywords.empty()) {
        pk.pack_map(static_cast<std::uint32_t>(keywords.size()));
        for (const auto& [key, node] : keywords) {
            out.display += first ? "" : ", ";
            first = false;
            pk.pack(key);
            out.display += key + "=";
            pack_yaml(pk, node, out.display, budget);
        }
    }
    out.display += ")";
    return out;
}

std::optional<std::vector<std::string>> payload_args(CodecId codec, std::span<const std::byte> payload, bool json) {
    if (codec != CodecId::msgpack) {
        return std::nullopt;
    }
    try {
        // Untrusted bytes: no container may claim more elements than there are bytes (a lying header
        // fails before allocating), and nesting is bounded (object_text recurses).
        const std::size_t n = payload.size();
        const msgpack::unpack_limit limit(n, n, n, n, n, max_text_depth);
        std::size_t offset = 0;
        auto handle =
            msgpack::unpack(reinterpret_cast<const char*>(payload.data()), n, offset, nullptr, nullptr, limit);
        const auto& root = handle.get();
        if (root.type != msgpack::type::ARRAY) {
            return std::nullopt;
        }
        std::vector<std::string> args;
        for (std::uint32_t i = 0; i < root.via.array.size; ++i) {
            object_text(root.via.array.ptr[i], args.emplace_back(), json);
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
    std::string text = "<" + std::to_string(payload.size()) + " bytes, " + std::string(codec_name(codec)) + ": ";
    append_hex_prefix(text, payload);
    text += ">";
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

}  // namespace meshy::cli
