// Shared by the `meshy` CLI's subcommand files: global options, building the CLI's node, turning
// command-line values into messages and messages into text, and Ctrl-C handling.
#pragma once

#include <chrono>
#include <cstdint>
#include <memory>
#include <meshy/buffer.hpp>
#include <meshy/message.hpp>
#include <meshy/node.hpp>
#include <optional>
#include <stdexcept>
#include <string>
#include <string_view>
#include <vector>

#include "json_quote.hpp"

namespace CLI {
class App;
class Validator;
}  // namespace CLI

namespace meshy::cli {

/// Options every subcommand shares.
struct GlobalOptions {
    std::string domain_id;           ///< --domain-id, default $MESHY_DOMAIN_ID, else "default"
    std::string log_level;           ///< --log
    double discovery_time = 1.5;     ///< --discovery-time, seconds (list commands)
    std::vector<std::string> peers;  ///< --peer (repeatable): static peers, added to $MESHY_PEERS
    std::string listen;              ///< --listen tcp/HOST:PORT: where the CLI's node accepts TCP
    std::string domain_key_file;     ///< --domain-key-file, default $MESHY_DOMAIN_KEY_FILE
};

/// Splits "tcp/HOST:PORT" into a listen address and port. @throws CliError(exit_usage).
void parse_listen(const std::string& text, std::string& host, std::uint16_t& port);

/// A failure to report as one line "meshy: error: ..." with an exit code.
struct CliError : std::runtime_error {
    CliError(const std::string& what, int code) : std::runtime_error(what), exit_code(code) {}
    int exit_code;
};

/// Exit codes: 0 success (and Ctrl-C where that is the normal end: echo, hz, record...), 1 failure,
/// 2 bad argument, 3 timeout, 130 Ctrl-C before a one-shot command did its work.
inline constexpr int exit_failure = 1;
inline constexpr int exit_usage = 2;
inline constexpr int exit_timeout = 3;
inline constexpr int exit_interrupted = 130;

void setup_node(CLI::App& app, const GlobalOptions& globals);
void setup_topic(CLI::App& app, const GlobalOptions& globals);
void setup_service(CLI::App& app, const GlobalOptions& globals);
void setup_launch(CLI::App& app, const GlobalOptions& globals);
void setup_bag(CLI::App& app, const GlobalOptions& globals);
void setup_bridge(CLI::App& app, const GlobalOptions& globals);
void setup_doctor(CLI::App& app, const GlobalOptions& globals);
void setup_key(CLI::App& app, const GlobalOptions& globals);

/// Topic and service names as rosbridge writes them: one leading '/' is dropped, so `/chatter` and
/// `chatter` name the same topic (as in `meshy bridge`). Use as a CLI11 option transform.
inline std::string mesh_name(std::string name) {
    if (!name.empty() && name.front() == '/') {
        name.erase(0, 1);
    }
    return name;
}
void setup_speedtest(CLI::App& app, const GlobalOptions& globals);

/// Options of a node the CLI runs, named `name`: the domain from --domain-id, the key from
/// --domain-key-file; also sets the log level
/// (--log, else $MESHY_LOG, else warnings only).
NodeOptions cli_node_options(const GlobalOptions& globals, std::string name);
/// Every node the CLI runs has a name starting with this (`meshy-cli-echo-4242`).
inline constexpr std::string_view cli_node_prefix = "meshy-cli-";
/// "meshy-cli-<what>-<pid>": unique per process, so that the CLI's listeners never share load.
std::string cli_node_name(const std::string& what);
/// Whether `name` is one of the CLI's own nodes.
bool is_cli_node(std::string_view name);
/// Builds the CLI's own node (on its own thread), named cli_node_name(what). Says on stderr when no
/// avahi-daemon was reachable and discovery fell back to this host only.
std::unique_ptr<Node> make_node(const GlobalOptions& globals, const std::string& what);
/// Where a listing looked: the domain and the discovery backend ("avahi" or "local").
struct MeshScope {
    std::string domain;
    std::string backend;
};
/// The mesh as a node sees it after the discovery time, without the CLI's own node. `scope`, when
/// given, receives the domain and backend it looked in.
std::vector<NodeInfo> discover_mesh(const GlobalOptions& globals, const std::string& what, MeshScope* scope = nullptr);
/// A CLI11 check for a number > 0 whose message is one short line (CLI::PositiveNumber prints its
/// whole range, 300 digits).
CLI::Validator positive_number();

// --- Ctrl-C -----------------------------------------------------------------------------------------

/// Blocks SIGINT and SIGTERM in this thread and every thread started after (call first in main).
void block_signals();
/// Waits up to `timeout` for SIGINT/SIGTERM. @returns true when one arrived.
bool wait_for_signal(std::chrono::milliseconds timeout);

/// Waits until `ready()` holds, printing `notice` once if it does not hold at first.
/// @returns false when Ctrl-C came first.
bool wait_until(const std::function<bool()>& ready, const char* notice);

// --- values -----------------------------------------------------------------------------------------

/// A message built from command-line words: positional YAML/JSON values, then key=value pairs.
/// Wire form (msgpack codec): an array of the positional values; when there are keyword
/// arguments, one more element, a map of them, ends the array.
struct ParsedArgs {
    Buffer payload;
    std::string display;  ///< "(3, 4, a=1)" for echoing what is sent
};
/// Prefix main() puts before words starting with '[' (see there); parse_args() removes it.
inline constexpr char bracket_escape = '\x1f';

/// How many values the words may expand to (YAML aliases multiply them).
inline constexpr std::size_t max_arg_values = 100000;

/// @throws CliError(exit_usage) for a keyword before a positional argument, bad YAML, or more
/// than `max_values` values.
ParsedArgs parse_args(const std::vector<std::string>& words, std::size_t max_values = max_arg_values);

/// A msgpack payload as readable text: JSON-like (`json` = strict JSON), or, when it does not
/// decode, "<N bytes: 0a1b2c...>".
std::string payload_text(CodecId codec, std::span<const std::byte> payload, bool json);
/// The arguments of a msgpack payload as a list of texts (one per argument); nullopt if not msgpack.
std::optional<std::vector<std::string>> payload_args(CodecId codec, std::span<const std::byte> payload, bool json);
/// Local time "YYYY-MM-DD HH:MM:SS.mmm" of a CLOCK_REALTIME ns value.
std::string timestamp_text(std::uint64_t ns);

}  // namespace meshy::cli
