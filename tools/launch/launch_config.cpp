// launch.yaml -> LaunchConfig, strictly: every problem is one line "FILE:LINE: KEY: problem".
#include "launch_config.hpp"

#include <yaml-cpp/yaml.h>

#include <algorithm>
#include <cctype>
#include <cerrno>
#include <charconv>
#include <cmath>
#include <cstdio>
#include <cstring>
#include <filesystem>
#include <set>

#include "../cli.hpp"

namespace meshy::cli::launch {
namespace {

const std::vector<std::string> top_keys = {"domain_id", "domain_key_file", "peers", "nodes"};

std::string joined(const std::vector<std::string>& words, const char* separator) {
    std::string out;
    for (const auto& w : words) {
        out += (out.empty() ? "" : separator) + w;
    }
    return out;
}

/// Builds the messages of one file.
class Checker {
public:
    explicit Checker(std::string path) : path_(std::move(path)) {}

    [[noreturn]] void fail(const YAML::Mark& mark, const std::string& key, const std::string& problem) const {
        std::string where = path_;
        if (!mark.is_null() && mark.line >= 0) {
            where += ":" + std::to_string(mark.line + 1);
        }
        throw CliError(where + ": " + (key.empty() ? "" : key + ": ") + problem, exit_usage);
    }

    /// Rejects unknown and duplicate keys of `map` (known: `keys`).
    void check_keys(const YAML::Node& map, const std::string& prefix, const std::vector<std::string>& keys) const {
        std::set<std::string> seen;
        for (const auto& item : map) {
            const YAML::Node& key = item.first;
            if (!key.IsScalar()) {
                fail(key.Mark(), prefix, "a key must be a plain name");
            }
            const std::string name = key.Scalar();
            const std::string path = prefix.empty() ? name : prefix + "." + name;
            if (std::find(keys.begin(), keys.end(), name) == keys.end()) {
                fail(key.Mark(), path, "unknown key (expected one of: " + joined(keys, ", ") + ")");
            }
            if (!seen.insert(name).second) {
                fail(key.Mark(), path, "duplicate key");
            }
        }
    }

    std::string text(const YAML::Node& value, const std::string& key) const {
        if (!value.IsScalar()) {
            fail(value.Mark(), key, "expected a string");
        }
        return value.Scalar();
    }

    std::string non_empty_text(const YAML::Node& value, const std::string& key) const {
        std::string s = text(value, key);
        if (s.empty()) {
            fail(value.Mark(), key, "must not be empty");
        }
        return s;
    }

    bool boolean(const YAML::Node& value, const std::string& key) const {
        bool b = false;
        if (!value.IsScalar() || !YAML::convert<bool>::decode(value, b)) {
            fail(value.Mark(), key, "expected true or false, got " + shown(value));
        }
        return b;
    }

    long integer(const YAML::Node& value, const std::string& key, long min) const {
        long n = 0;
        bool ok = value.IsScalar();
        if (ok) {
            const std::string& s = value.Scalar();
            const char* begin = s.data() + (!s.empty() && s[0] == '+' ? 1 : 0);
            const auto [end, ec] = std::from_chars(begin, s.data() + s.size(), n);
            ok = ec == std::errc{} && end == s.data() + s.size() && begin != end;
        }
        if (!ok) {
            fail(value.Mark(), key, "expected an integer, got " + shown(value));
        }
        if (n < min) {
            fail(value.Mark(), key, "must be at least " + std::to_string(min) + ", got " + std::to_string(n));
        }
        return n;
    }

    double seconds(const YAML::Node& value, const std::string& key) const {
        double d = 0;
        bool ok = value.IsScalar();
        if (ok) {
            const std::string& s = value.Scalar();
            const char* begin = s.data() + (!s.empty() && s[0] == '+' ? 1 : 0);
            const auto [end, ec] = std::from_chars(begin, s.data() + s.size(), d);
            ok = ec == std::errc{} && end == s.data() + s.size() && begin != end && std::isfinite(d);
        }
        if (!ok) {
            fail(value.Mark(), key, "expected a number of seconds, got " + shown(value));
        }
        if (d < 0) {
            fail(value.Mark(), key, "must not be negative, got " + value.Scalar());
        }
        return d;
    }

    /// A list of scalars, or a string split into words.
    std::vector<std::string> words(const YAML::Node& value, const std::string& key) const {
        std::vector<std::string> out;
        if (value.IsSequence()) {
            for (const auto& item : value) {
                if (!item.IsScalar()) {
                    fail(item.Mark(), key, "every item of the list must be a string");
                }
                out.push_back(item.Scalar());
            }
            return out;
        }
        if (!value.IsScalar()) {
            fail(value.Mark(), key, "expected a string or a list of strings");
        }
        auto split = split_words(value.Scalar());
        if (!split) {
            fail(value.Mark(), key, "unterminated quote in " + shown(value));
        }
        return *split;
    }

    static std::string shown(const YAML::Node& value) {
        if (value.IsScalar()) {
            return "'" + value.Scalar() + "'";
        }
        return value.IsSequence() ? "a list" : value.IsMap() ? "a map" : "nothing";
    }

    const std::string& path() const { return path_; }

private:
    std::string path_;
};

/// The line of a key (1-based), 0 when unknown.
int line_of(const YAML::Node& node) {
    const YAML::Mark mark = node.Mark();
    return mark.is_null() || mark.line < 0 ? 0 : mark.line + 1;
}

std::string trimmed(std::string s) {
    const auto not_blank = [](unsigned char c) {
        return !std::isspace(c);
    };
    s.erase(std::find_if(s.rbegin(), s.rend(), not_blank).base(), s.end());
    s.erase(s.begin(), std::find_if(s.begin(), s.end(), not_blank));
    return s;
}

NodeConfig parse_node(const Checker& c, const YAML::Node& key, const YAML::Node& value) {
    NodeConfig node;
    node.name = c.non_empty_text(key, "nodes");
    node.line = line_of(key);
    const std::string prefix = "nodes." + node.name;
    if (value.IsNull()) {
        c.fail(key.Mark(), prefix, "missing key 'command'");
    }
    if (!value.IsMap()) {
        c.fail(value.Mark(), prefix, "expected a map of settings (command: ...), got " + Checker::shown(value));
    }
    c.check_keys(value, prefix, node_keys());

    // Null ("key:" or "key: ~") means "not set" for every optional key, as in rosy's files.
    auto get = [&](const char* name) -> std::optional<YAML::Node> {
        const YAML::Node v = value[name];
        if (!v.IsDefined() || v.IsNull()) {
            return std::nullopt;
        }
        return v;
    };
    auto key_name = [&](const char* name) {
        return prefix + "." + name;
    };

    const auto command = get("command");
    if (!command) {
        c.fail(key.Mark(), prefix, "missing key 'command'");
    }
    if (command->IsSequence()) {
        node.command_is_list = true;
        node.command_words = c.words(*command, key_name("command"));
        if (node.command_words.empty() || node.command_words.front().empty()) {
            c.fail(command->Mark(), key_name("command"), "must not be empty");
        }
        node.shell = false;
    } else if (command->IsScalar()) {
        // A trailing newline (a `|` block) would make the appended `--name` a command of its own.
        node.command_text = trimmed(command->Scalar());
        if (node.command_text.empty()) {
            c.fail(command->Mark(), key_name("command"), "must not be empty");
        }
        node.shell = true;
    } else {
        c.fail(command->Mark(), key_name("command"), "expected a string or a list of strings");
    }
    if (const auto v = get("shell")) {
        node.shell = c.boolean(*v, key_name("shell"));
    }
    if (!node.command_is_list && !node.shell) {
        auto split = split_words(node.command_text);
        if (!split) {
            c.fail(command->Mark(), key_name("command"), "unterminated quote");
        }
        node.command_words = std::move(*split);
    }
    if (const auto v = get("disabled")) {
        node.disabled = c.boolean(*v, key_name("disabled"));
    }
    if (const auto v = get("on_host")) {
        node.on_host = c.non_empty_text(*v, key_name("on_host"));
    }
    if (const auto v = get("number")) {
        constexpr long max_copies = 1000;  // a typo guard: more than this is never meant
        node.number = static_cast<int>(c.integer(*v, key_name("number"), 1));
        if (node.number > max_copies) {
            c.fail(v->Mark(), key_name("number"), "must be at most " + std::to_string(max_copies));
        }
    }
    if (const auto v = get("pre_delay")) {
        node.pre_delay = c.seconds(*v, key_name("pre_delay"));
    }
    if (const auto v = get("post_delay")) {
        node.post_delay = c.seconds(*v, key_name("post_delay"));
    }
    if (const auto v = get("env")) {
        if (!v->IsMap()) {
            c.fail(v->Mark(), key_name("env"), "expected a map of NAME: value");
        }
        std::set<std::string> seen;
        for (const auto& item : *v) {
            const std::string env_name = c.non_empty_text(item.first, key_name("env"));
            const std::string env_key = key_name("env") + "." + env_name;
            if (env_name.find('=') != std::string::npos) {
                c.fail(item.first.Mark(), env_key, "a variable name cannot contain '='");
            }
            if (!seen.insert(env_name).second) {
                c.fail(item.first.Mark(), env_key, "duplicate key");
            }
            if (!item.second.IsScalar()) {
                c.fail(item.second.IsDefined() && !item.second.IsNull() ? item.second.Mark() : item.first.Mark(),
                       env_key, "expected a string, number or boolean");
            }
            node.env.emplace_back(env_name, item.second.Scalar());
        }
    }
    if (const auto v = get("cwd")) {
        std::filesystem::path dir = c.non_empty_text(*v, key_name("cwd"));
        if (dir.is_relative()) {
            // Relative to the launch file, so the file works from any working directory.
            std::error_code ec;
            const auto base = std::filesystem::absolute(std::filesystem::path(c.path()), ec).parent_path();
            dir = base / dir;
        }
        node.cwd = dir.lexically_normal().string();
    }
    if (const auto v = get("respawn")) {
        node.respawn = c.boolean(*v, key_name("respawn"));
    }
    if (const auto v = get("respawn_delay")) {
        node.respawn_delay = c.seconds(*v, key_name("respawn_delay"));
    }
    if (const auto v = get("max_restarts")) {
        node.max_restarts = static_cast<int>(c.integer(*v, key_name("max_restarts"), -1));
    }
    if (const auto v = get("args")) {
        node.args = c.words(*v, key_name("args"));
    }
    if (const auto v = get("pass_name")) {
        node.pass_name = c.boolean(*v, key_name("pass_name"));
    }
    return node;
}

}  // namespace

const std::vector<std::string>& node_keys() {
    static const std::vector<std::string> keys = {"command",       "shell",        "disabled", "on_host",  "number",
                                                  "pre_delay",     "post_delay",   "env",      "cwd",      "respawn",
                                                  "respawn_delay", "max_restarts", "args",     "pass_name"};
    return keys;
}

LaunchConfig parse_launch_config(const std::string& text, const std::string& path) {
    const Checker c(path);
    YAML::Node root;
    try {
        root = YAML::Load(text);
    } catch (const YAML::Exception& e) {
        c.fail(e.mark, "", "YAML syntax error: " + e.msg);
    }
    if (!root.IsDefined() || root.IsNull()) {
        c.fail(YAML::Mark::null_mark(), "", "the file is empty (expected a map with a 'nodes' key)");
    }
    if (!root.IsMap()) {
        c.fail(root.Mark(), "", "expected a map with a 'nodes' key, got " + Checker::shown(root));
    }
    c.check_keys(root, "", top_keys);

    LaunchConfig config;
    config.path = path;
    if (const YAML::Node v = root["domain_id"]; v.IsDefined() && !v.IsNull()) {
        config.domain_id = c.non_empty_text(v, "domain_id");
    }
    if (const YAML::Node v = root["peers"]; v.IsDefined() && !v.IsNull()) {
        for (auto& peer : c.words(v, "peers")) {
            // Each node checks the whole syntax when it starts; the file catches the usual slips.
            if (!(peer.starts_with("tcp/") || peer.starts_with("unix/")) || peer.find(',') != std::string::npos) {
                c.fail(v.Mark(), "peers", "'" + peer + "' is not tcp/HOST:PORT or unix/PATH");
            }
            config.peers.push_back(std::move(peer));
        }
    }
    if (const YAML::Node v = root["domain_key_file"]; v.IsDefined() && !v.IsNull()) {
        std::filesystem::path file = c.non_empty_text(v, "domain_key_file");
        if (file.is_relative()) {
            std::error_code ec;
            file = std::filesystem::absolute(std::filesystem::path(path), ec).parent_path() / file;
        }
        config.domain_key_file = file.lexically_normal().string();
    }
    const YAML::Node nodes = root["nodes"];
    if (!nodes.IsDefined() || nodes.IsNull()) {
        c.fail(root.Mark(), "nodes", "missing (expected a map of NAME: {command: ...})");
    }
    if (!nodes.IsMap()) {
        c.fail(nodes.Mark(), "nodes", "expected a map of NAME: {command: ...}, got " + Checker::shown(nodes));
    }
    std::set<std::string> names;
    for (const auto& item : nodes) {
        NodeConfig node = parse_node(c, item.first, item.second);
        if (!names.insert(node.name).second) {
            c.fail(item.first.Mark(), "nodes." + node.name, "duplicate node name");
        }
        config.nodes.push_back(std::move(node));
    }
    return config;
}

LaunchConfig load_launch_config(const std::string& path) {
    std::FILE* f = std::fopen(path.c_str(), "rb");
    if (!f) {
        throw CliError("cannot read " + path + ": " + std::strerror(errno), exit_usage);
    }
    std::string text;
    char chunk[8192];
    std::size_t n = 0;
    while ((n = std::fread(chunk, 1, sizeof chunk, f)) > 0) {
        text.append(chunk, n);
    }
    const bool failed = std::ferror(f) != 0;
    const int err = errno;
    std::fclose(f);
    if (failed) {
        throw CliError("cannot read " + path + ": " + std::strerror(err), exit_usage);
    }
    return parse_launch_config(text, path);
}

std::string shell_quote(std::string_view word) {
    const auto safe = [](char ch) {
        const auto c = static_cast<unsigned char>(ch);
        return std::isalnum(c) || std::strchr("_@%+=:,./-", ch) != nullptr;
    };
    if (!word.empty() && std::all_of(word.begin(), word.end(), safe)) {
        return std::string(word);
    }
    std::string out = "'";
    for (const char ch : word) {
        out += ch == '\'' ? std::string("'\\''") : std::string(1, ch);
    }
    return out + "'";
}

std::optional<std::vector<std::string>> split_words(std::string_view text) {
    std::vector<std::string> words;
    std::string word;
    bool in_word = false;
    for (std::size_t i = 0; i < text.size(); ++i) {
        const char ch = text[i];
        if (ch == ' ' || ch == '\t' || ch == '\n' || ch == '\r') {
            if (in_word) {
                words.push_back(std::move(word));
                word.clear();
                in_word = false;
            }
            continue;
        }
        in_word = true;
        if (ch == '\'') {
            const auto end = text.find('\'', i + 1);
            if (end == std::string_view::npos) {
                return std::nullopt;
            }
            word.append(text.substr(i + 1, end - i - 1));
            i = end;
        } else if (ch == '"') {
            for (++i;; ++i) {
                if (i >= text.size()) {
                    return std::nullopt;
                }
                if (text[i] == '"') {
                    break;
                }
                // Inside double quotes a backslash only quotes these, as in sh.
                if (text[i] == '\\' && i + 1 < text.size() && std::strchr("\"\\$`", text[i + 1]) != nullptr) {
                    ++i;
                }
                word += text[i];
            }
        } else if (ch == '\\') {
            if (i + 1 < text.size()) {
                word += text[++i];
            }
        } else {
            word += ch;
        }
    }
    if (in_word) {
        words.push_back(std::move(word));
    }
    return words;
}

namespace {

/// The first word of the command as a shell would split it ("" when it does not split).
std::string first_word(const NodeConfig& node) {
    if (node.command_is_list || !node.command_words.empty()) {
        return node.command_words.empty() ? std::string() : node.command_words.front();
    }
    const auto words = split_words(node.command_text);
    return words && !words->empty() ? words->front() : std::string();
}

/// A shell command that `exec` can prefix: one program with its arguments (and redirections), no
/// list, pipeline, subshell or compound command, no variable assignment or builtin in front.
bool execable(const NodeConfig& node, const std::string& script) {
    if (script.find_first_of(";&|()`\n") != std::string::npos) {
        return false;
    }
    const std::string first = first_word(node);
    static const std::vector<std::string> builtins = {"if",     "for",  "while",  "until", "case",   "{",
                                                      "!",      "exec", "cd",     "set",   "export", ".",
                                                      "source", "eval", "ulimit", "umask", "trap",   "wait"};
    return !first.empty() && first.find('=') == std::string::npos &&
           std::find(builtins.begin(), builtins.end(), first) == builtins.end();
}

}  // namespace

bool passes_name(const NodeConfig& node) {
    if (node.pass_name) {
        return *node.pass_name;
    }
    return std::filesystem::path(first_word(node)).filename() != "meshy";
}

std::vector<std::string> node_argv(const NodeConfig& node) {
    const bool name = passes_name(node);
    if (!node.shell) {
        std::vector<std::string> argv = node.command_words;
        if (name) {
            argv.insert(argv.end(), {"--name", node.name});
        }
        argv.insert(argv.end(), node.args.begin(), node.args.end());
        return argv;
    }
    std::string script;
    if (node.command_is_list) {
        for (const auto& w : node.command_words) {
            script += (script.empty() ? "" : " ") + shell_quote(w);
        }
    } else {
        script = node.command_text;
    }
    // `exec`: the shell becomes the node, so signals and PR_SET_PDEATHSIG reach the node itself.
    if (execable(node, script)) {
        script = "exec " + script;
    }
    if (name) {
        script += " --name " + shell_quote(node.name);
    }
    for (const auto& a : node.args) {
        script += " " + shell_quote(a);
    }
    return {"/bin/sh", "-c", script};
}

}  // namespace meshy::cli::launch
