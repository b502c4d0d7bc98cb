// `meshy launch`: the launch file (launch.yaml) as a validated struct, and the argv each node's
// copies run with. Parsing is strict: an unknown key, a wrong type or a bad value is an error that
// names the file, the line and the key, so a typo never silently changes what starts.
#pragma once

#include <optional>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

namespace meshy::cli::launch {

/// One entry of `nodes:`.
struct NodeConfig {
    std::string name;
    int line = 0;  ///< 1-based line of the node's key in the file (for messages)

    /// `command` as written: a string (`command_text`) or a list of words (`command_words`).
    bool command_is_list = false;
    std::string command_text;
    std::vector<std::string> command_words;

    bool shell = true;  ///< default: true for a string command, false for a list
    bool disabled = false;
    std::optional<std::string> on_host;
    int number = 1;
    double pre_delay = 0;   ///< seconds to wait before starting the copies
    double post_delay = 0;  ///< seconds to wait after starting them, before the next node
    std::vector<std::pair<std::string, std::string>> env;  ///< in file order; overrides the inherited environment
    std::optional<std::string> cwd;                        ///< absolute (relative ones are resolved at load)
    bool respawn = false;
    double respawn_delay = 1.0;
    int max_restarts = 3;           ///< with respawn; -1: no limit
    std::vector<std::string> args;  ///< appended after `--name NAME`
    /// Append `--name NAME` to the command. Unset: yes, unless the command is the `meshy` CLI
    /// (whose commands take no --name).
    std::optional<bool> pass_name;
};

struct LaunchConfig {
    std::string path;  ///< as given (used in messages)
    std::optional<std::string> domain_id;
    /// `domain_key_file:` given to every node (as MESHY_DOMAIN_KEY_FILE); absolute (a relative one
    /// is resolved against the file's directory).
    std::optional<std::string> domain_key_file;
    std::vector<std::string> peers;  ///< static peers of every node (MESHY_PEERS), after inherited ones
    std::vector<NodeConfig> nodes;   ///< in file order: the start order
};

/// Every key a node may have, in the order messages list them.
const std::vector<std::string>& node_keys();

/// Reads and validates a launch file. Relative `cwd`s are resolved against the file's directory.
/// @throws CliError(exit_usage) with "FILE:LINE: KEY: problem" (or "FILE: problem").
LaunchConfig load_launch_config(const std::string& path);

/// Same, from text; `path` only names the file in messages and anchors relative `cwd`s.
LaunchConfig parse_launch_config(const std::string& text, const std::string& path);

/// The argv one copy of `node` runs: its command, then `--name NAME` (see pass_name), then `args`;
/// wrapped in `/bin/sh -c` when `shell` is set, as `exec COMMAND` when the command is a simple one,
/// so that the node itself (not a shell) is the process launch signals and watches.
std::vector<std::string> node_argv(const NodeConfig& node);

/// Whether `node` passes `--name NAME` to its command (pass_name, else not for the `meshy` CLI).
bool passes_name(const NodeConfig& node);

/// `word` quoted for /bin/sh when it needs it (single quotes), else unchanged.
std::string shell_quote(std::string_view word);

/// Splits `text` into words like a shell would, without any expansion: blanks separate words;
/// single quotes, double quotes and backslashes quote. @returns nullopt on an unterminated quote.
std::optional<std::vector<std::string>> split_words(std::string_view text);

}  // namespace meshy::cli::launch
