// meshy bag record | info | play | reindex (recover): MCAP recordings of the mesh (tools/bag/).
#include <unistd.h>

#include <CLI/CLI.hpp>
#include <algorithm>
#include <cmath>
#include <cstdio>
#include <ctime>
#include <deque>
#include <filesystem>
#include <functional>
#include <thread>

#include "bag/bag_info.hpp"
#include "bag/codec_encoding.hpp"
#include "bag/json_export.hpp"
#include "bag/mapped_file.hpp"
#include "bag/player.hpp"
#include "bag/recorder.hpp"
#include "bag/reindex.hpp"
#include "cli.hpp"
#include "meshy/version.hpp"

namespace meshy::cli {
namespace {

namespace fs = std::filesystem;
using Clock = std::chrono::steady_clock;
using namespace std::chrono_literals;

struct BagCommandOptions {
    // record
    std::vector<std::string> topics;
    bool all = false;
    std::string regex;
    std::string exclude;
    std::string output;
    std::string compression = "zstd";
    std::string encoding = "json";
    bool quiet = false;
    // info, play
    std::string input;
    // play
    double rate = 1.0;
    bool loop = false;
    double start_offset = 0.0;
    std::vector<std::string> play_topics;
    bool immediate = false;
    bool no_log = false;
    // reindex
    std::string file;
    std::string reindex_compression;  // "": that of the input
    bool force = false;
    // export
    bool export_json = false;
};

std::string library_name() {
    return std::string("meshy ") + version_string;
}

/// "512 B", "1.5 KiB", "3.2 MiB", "1.1 GiB".
std::string size_text(double bytes) {
    static constexpr const char* units[] = {"B", "KiB", "MiB", "GiB", "TiB"};
    int unit = 0;
    while (bytes >= 1024 && unit < 4) {
        bytes /= 1024;
        ++unit;
    }
    char buf[32];
    std::snprintf(buf, sizeof buf, unit == 0 ? "%.0f %s" : "%.1f %s", bytes, units[unit]);
    return buf;
}

std::string seconds_text(double s) {
    char buf[32];
    std::snprintf(buf, sizeof buf, "%.3f s", s);
    return buf;
}

/// "100%", "50%", "33.3%".
std::string share_text(std::uint64_t part, std::uint64_t whole) {
    const double share = whole == 0 ? 0.0 : 100.0 * static_cast<double>(part) / static_cast<double>(whole);
    char buf[32];
    if (std::abs(share - std::round(share)) < 0.05) {
        std::snprintf(buf, sizeof buf, "%.0f%%", share);
    } else {
        std::snprintf(buf, sizeof buf, "%.1f%%", share);
    }
    return buf;
}

std::string joined(const std::vector<std::string>& items, const char* separator = ", ") {
    std::string out;
    for (const auto& item : items) {
        out += (out.empty() ? "" : separator) + item;
    }
    return out;
}

/// record_YYYY-MM-DD-HH-MM-SS.mcap, local time.
std::string default_output_name() {
    const std::time_t now = std::time(nullptr);
    std::tm local{};
    localtime_r(&now, &local);
    char buf[64];
    std::strftime(buf, sizeof buf, "record_%Y-%m-%d-%H-%M-%S.mcap", &local);
    return buf;
}

/// The most recently modified .mcap file of the current directory.
std::string newest_bag() {
    std::optional<fs::path> best;
    fs::file_time_type best_time{};
    std::error_code ec;
    for (const auto& entry : fs::directory_iterator(".", ec)) {
        std::error_code entry_ec;
        if (!entry.is_regular_file(entry_ec) || entry.path().extension() != ".mcap") {
            continue;
        }
        const auto t = entry.last_write_time(entry_ec);
        if (entry_ec) {
            continue;
        }
        if (!best || t > best_time || (t == best_time && entry.path().filename() > best->filename())) {
            best = entry.path();
            best_time = t;
        }
    }
    if (!best) {
        throw CliError("no .mcap file in the current directory (name one with -i FILE)", exit_failure);
    }
    return best->filename().string();
}

/// Maps a bag. @throws CliError "cannot open PATH: REASON"
std::unique_ptr<bag::MappedFile> open_bag(const std::string& path) {
    try {
        return std::make_unique<bag::MappedFile>(path);
    } catch (const bag::mcap::McapError& e) {
        throw CliError(e.what(), exit_failure);
    }
}

/// What reindex writes when not told: "<name>.reindexed.mcap" beside the input.
std::string reindexed_name(const std::string& input) {
    fs::path p(input);
    if (p.extension() == ".mcap") {
        p.replace_extension();
    }
    return p.string() + ".reindexed.mcap";
}

/// Sleeps until `deadline` unless Ctrl-C comes first. @returns false on Ctrl-C.
bool sleep_until(Clock::time_point deadline) {
    for (;;) {
        const auto now = Clock::now();
        if (deadline <= now) {
            return !wait_for_signal(0ms);
        }
        const auto left = std::chrono::duration_cast<std::chrono::milliseconds>(deadline - now);
        if (left.count() == 0) {
            std::this_thread::sleep_until(deadline);  // under 1 ms: sigtimedwait's resolution is too coarse
            continue;
        }
        if (wait_for_signal(std::min(left, std::chrono::milliseconds(100)))) {
            return false;
        }
    }
}

// --- record ------------------------------------------------------------------------------------------------

/// Shows progress: a live line on a terminal, else rosy's dots (one per message, a line per tick).
class Progress {
public:
    explicit Progress(bool quiet) : quiet_(quiet), tty_(::isatty(STDOUT_FILENO) == 1) {}

    void update(const bag::RecorderStats& s) {
        const auto now = Clock::now();
        samples_.emplace_back(now, s.messages, s.bytes);
        while (samples_.size() > 2 && now - samples_[1].time >= 1s) {
            samples_.pop_front();
        }
        if (quiet_) {
            return;
        }
        if (tty_) {
            if (drawn_ && now - last_draw_ < 200ms) {
                return;
            }
            last_draw_ = now;
            const auto& first = samples_.front();
            const double span = std::chrono::duration<double>(now - first.time).count();
            const double rate = span > 0 ? static_cast<double>(s.messages - first.messages) / span : 0.0;
            const double bandwidth = span > 0 ? static_cast<double>(s.bytes - first.bytes) / span : 0.0;
            std::printf("\r\033[KRecording: %llu messages, %s, %.1f msg/s, %s/s",
                        static_cast<unsigned long long>(s.messages), size_text(static_cast<double>(s.bytes)).c_str(),
                        rate, size_text(bandwidth).c_str());
            drawn_ = true;
        } else if (s.messages > dotted_) {
            const std::uint64_t fresh = s.messages - dotted_;
            const std::uint64_t dots = std::min<std::uint64_t>(fresh, 80);
            std::string line(dots, '.');
            if (fresh > dots) {
                line += " (+" + std::to_string(fresh - dots) + ")";
            }
            std::printf("%s\n", line.c_str());
            dotted_ = s.messages;
        }
        std::fflush(stdout);
    }

    /// Prints a line of its own (clearing the live line first).
    void say(const std::string& line) {
        clear();
        std::printf("%s\n", line.c_str());
        std::fflush(stdout);
    }

    void clear() {
        if (drawn_) {
            std::printf("\r\033[K");
            drawn_ = false;
        }
    }

private:
    struct Sample {
        Sample(Clock::time_point t, std::uint64_t m, std::uint64_t b) : time(t), messages(m), bytes(b) {}
        Clock::time_point time;
        std::uint64_t messages;
        std::uint64_t bytes;
    };
    bool quiet_;
    bool tty_;
    bool drawn_ = false;
    std::uint64_t dotted_ = 0;
    Clock::time_point last_draw_{};
    std::deque<Sample> samples_;
};

/// A CLI11 check: a number greater than 0 (or at least 0), said plainly.
std::function<std::string(const std::string&)> number_check(bool zero_allowed) {
    return [zero_allowed](const std::string& text) -> std::string {
        double value = 0;
        std::size_t used = 0;
        try {
            value = std::stod(text, &used);
        } catch (const std::exception&) {
            used = 0;
        }
        if (used != text.size() || used == 0 || !std::isfinite(value) || value < 0 || (!zero_allowed && value == 0)) {
            return "'" + text + "' is not a number " + (zero_allowed ? "of at least 0" : "greater than 0");
        }
        return {};
    };
}

std::regex compile_regex(const std::string& text, const char* option) {
    try {
        return std::regex(text, std::regex::ECMAScript);
    } catch (const std::regex_error& e) {
        throw CliError(std::string("bad ") + option + " '" + text + "': " + e.what(), exit_usage);
    }
}

void run_record(const GlobalOptions& globals, const BagCommandOptions& o) {
    if (o.topics.empty() && !o.all && o.regex.empty()) {
        throw CliError("nothing to record: name topics, or use --all or --regex", exit_usage);
    }
    bag::RecorderOptions ro;
    ro.topics = o.topics;
    ro.all = o.all;
    if (!o.regex.empty()) {
        ro.include = compile_regex(o.regex, "--regex");
    }
    if (!o.exclude.empty()) {
        ro.exclude = compile_regex(o.exclude, "--exclude");
    }
    ro.writer.compression = bag::parse_compression(o.compression).value_or(bag::Compression::zstd);
    ro.json = o.encoding == "json";
    ro.writer.profile = std::string(bag::meshy_profile);
    ro.writer.library = library_name();
    ro.writer.background = true;
    // Chunks compress side by side on bigger machines; the node's thread keeps a core of its own.
    ro.writer.compression_threads = std::clamp(std::thread::hardware_concurrency() / 2, 1u, 4u);
    const std::string path = o.output.empty() ? default_output_name() : o.output;

    // A name of its own: nodes sharing a name share each message, and a second recorder must not
    // take turns with this one.
    auto node = make_node(globals, "bag-record");
    std::unique_ptr<bag::Recorder> recorder;
    try {
        recorder = std::make_unique<bag::Recorder>(*node, path, std::move(ro));
    } catch (const bag::mcap::McapError& e) {
        throw CliError(e.what(), exit_failure);
    }
    recorder->start();

    Progress progress(o.quiet);
    progress.say("Recording to " + path + " (compression: " + o.compression + ", encoding: " + o.encoding + ")");
    if (!o.topics.empty()) {
        progress.say("Listening to topics: " + joined(o.topics));
    }
    if (o.all) {
        progress.say("Recording every topic of the mesh as it appears" +
                     (o.exclude.empty() ? std::string() : ", except those matching '" + o.exclude + "'"));
    } else if (!o.regex.empty()) {
        progress.say("Recording topics matching '" + o.regex + "' as they appear" +
                     (o.exclude.empty() ? std::string() : ", except those matching '" + o.exclude + "'"));
    }

    const auto began = Clock::now();
    auto next_discovery = began;
    std::optional<std::string> failure;
    for (;;) {
        if (recorder->discovers() && Clock::now() >= next_discovery) {
            for (const auto& topic : recorder->discover()) {
                progress.say("Recording topic: " + topic);
            }
            next_discovery = Clock::now() + 200ms;
        }
        recorder->tick();
        progress.update(recorder->stats());
        if ((failure = recorder->error())) {
            break;
        }
        if (wait_for_signal(100ms)) {
            break;
        }
    }
    progress.clear();
    bag::RecorderStats stats;
    try {
        stats = recorder->finish();
    } catch (const bag::mcap::McapError& e) {
        node->stop();
        throw CliError(e.what(), exit_failure);
    }
    node->stop();
    if (failure) {
        throw CliError("recording stopped: " + *failure, exit_failure);
    }
    if (stats.messages == 0) {
        std::printf("No messages recorded.\n");
        return;
    }
    const double duration = static_cast<double>(stats.end_time - stats.start_time) / 1e9;
    std::printf("Recorded %llu message%s (%s) on %zu topic%s over %s to %s (%s)\n",
                static_cast<unsigned long long>(stats.messages), stats.messages == 1 ? "" : "s",
                size_text(static_cast<double>(stats.bytes)).c_str(), stats.recorded_topics,
                stats.recorded_topics == 1 ? "" : "s", seconds_text(duration).c_str(), path.c_str(),
                size_text(static_cast<double>(stats.file_bytes)).c_str());
}

// --- info --------------------------------------------------------------------------------------------------

void run_info(const BagCommandOptions& o) {
    const std::string path = o.input.empty() ? newest_bag() : o.input;
    const auto file = open_bag(path);
    bag::BagInfo info;
    try {
        info = bag::read_bag_info(file->bytes());
    } catch (const bag::mcap::McapError& e) {
        throw CliError(path + ": " + e.what(), exit_failure);
    }
    std::printf("path: %s\n", path.c_str());
    if (info.indexed) {
        std::printf("status: complete (read from its summary)\n");
    } else {
        std::printf("status: %snot indexed (%s); read by scanning its data\n",
                    info.problem.empty() ? "" : "incomplete, ", info.why_not_indexed.c_str());
        if (!info.problem.empty()) {
            std::printf("problem: %s%s\n", info.problem.c_str(),
                        info.unreadable_bytes == 0
                            ? ""
                            : ("; " + size_text(static_cast<double>(info.unreadable_bytes)) + " not read").c_str());
        }
        std::printf("repair: meshy bag reindex %s\n", path.c_str());
    }
    const double duration = static_cast<double>(info.end_time - info.start_time) / 1e9;
    std::printf("duration: %s\n", seconds_text(duration).c_str());
    if (info.message_count > 0) {
        std::printf("start: %s\n", timestamp_text(info.start_time).c_str());
        std::printf("end: %s\n", timestamp_text(info.end_time).c_str());
    }
    std::printf("size: %s (%llu bytes)\n", size_text(static_cast<double>(info.file_size)).c_str(),
                static_cast<unsigned long long>(info.file_size));
    std::printf("compression: %s\n", info.compressions.empty() ? "none" : joined(info.compressions).c_str());
    std::printf("chunks: %llu\n", static_cast<unsigned long long>(info.chunk_count));
    std::printf("messages: %llu\n", static_cast<unsigned long long>(info.message_count));
    std::printf("topics: %zu\n", info.topics.size());
    for (const auto& t : info.topics) {
        char rate[32] = "-";
        if (duration > 0) {
            std::snprintf(rate, sizeof rate, "%.2f Hz", static_cast<double>(t.count) / duration);
        }
        std::printf("  %s: %llu message%s (%s), %s, %s\n", t.topic.c_str(), static_cast<unsigned long long>(t.count),
                    t.count == 1 ? "" : "s", share_text(t.count, info.message_count).c_str(), rate,
                    joined(t.encodings).c_str());
    }
}

// --- play --------------------------------------------------------------------------------------------------

void run_play(const GlobalOptions& globals, const BagCommandOptions& o) {
    const std::string path = o.input.empty() ? newest_bag() : o.input;
    const auto file = open_bag(path);
    std::unique_ptr<bag::McapReader> reader;
    bag::BagInfo info;
    try {
        reader = std::make_unique<bag::McapReader>(file->bytes());
        info = bag::read_bag_info(file->bytes());
    } catch (const bag::mcap::McapError& e) {
        throw CliError(path + ": " + e.what(), exit_failure);
    }
    const auto topics = bag::bag_topics(*reader);
    if (!o.play_topics.empty()) {
        std::size_t found = 0;
        for (const auto& t : o.play_topics) {
            if (std::find(topics.begin(), topics.end(), t) == topics.end()) {
                std::fprintf(stderr, "meshy: warning: topic '%s' is not in %s\n", t.c_str(), path.c_str());
            } else {
                ++found;
            }
        }
        if (found == 0) {
            throw CliError("none of the topics given is in " + path + " (it has: " + joined(topics) + ")",
                           exit_failure);
        }
    }
    if (!info.indexed) {
        std::fprintf(stderr, "meshy: warning: %s is incomplete (%s); playing what is readable\n", path.c_str(),
                     info.problem.empty() ? info.why_not_indexed.c_str() : info.problem.c_str());
    }

    auto node = make_node(globals, "bag-play");
    const double duration = static_cast<double>(info.end_time - info.start_time) / 1e9;
    char rate[32];
    std::snprintf(rate, sizeof rate, "%g", o.rate);
    std::printf("Playing %s: %llu messages on %zu topic%s over %s, at rate %s%s\n", path.c_str(),
                static_cast<unsigned long long>(info.message_count), topics.size(), topics.size() == 1 ? "" : "s",
                seconds_text(duration).c_str(), rate, o.loop ? ", looping" : "");
    std::fflush(stdout);

    bag::PlayOptions po;
    po.rate = o.rate;
    po.loop = o.loop;
    po.start_offset = o.start_offset;
    po.topics = o.play_topics;
    po.immediate = o.immediate;
    bag::PlayHooks hooks;
    hooks.sleep_until = sleep_until;
    hooks.on_waiting = [] {
        std::printf("Waiting for listeners...\n");
        std::fflush(stdout);
    };
    hooks.on_warning = [](const std::string& w) {
        std::fprintf(stderr, "meshy: warning: %s\n", w.c_str());
    };
    if (!o.no_log) {
        hooks.on_sent = [](const bag::PlayedMessage& m) {
            std::string text;
            if (auto args = payload_args(m.codec, m.payload, false)) {
                text = "(" + joined(*args) + ")";
            } else {
                text = payload_text(m.codec, m.payload, false);
            }
            std::printf("[%9.3f] %.*s: %s\n", m.bag_time, static_cast<int>(m.topic.size()), m.topic.data(),
                        text.c_str());
            std::fflush(stdout);
        };
    }
    const auto began = Clock::now();
    const bag::PlayResult result = bag::play_bag(*node, *reader, po, hooks);
    node->stop();  // sends what is queued, then says goodbye
    if (result.interrupted) {
        return;  // Ctrl-C ends play quietly
    }
    std::printf("Played %llu message%s in %s%s\n", static_cast<unsigned long long>(result.sent),
                result.sent == 1 ? "" : "s",
                seconds_text(std::chrono::duration<double>(Clock::now() - began).count()).c_str(),
                o.loop ? (" (" + std::to_string(result.loops) + " loops)").c_str() : "");
}

// --- reindex -----------------------------------------------------------------------------------------------

void run_reindex(const BagCommandOptions& o) {
    const std::string output = o.output.empty() ? reindexed_name(o.file) : o.output;
    std::error_code ec;
    if (fs::equivalent(output, o.file, ec)) {
        throw CliError("the output must not be the input (" + output + ")", exit_usage);
    }
    bag::ReindexOptions ro;
    ro.library = library_name();
    ro.exclusive = !o.force;
    if (!o.reindex_compression.empty()) {
        ro.compression = bag::parse_compression(o.reindex_compression);
    }
    if (!o.force && fs::exists(output)) {
        throw CliError(output + " exists (--force overwrites it)", exit_failure);
    }
    const auto file = open_bag(o.file);
    try {
        bag::McapReader check(file->bytes());
    } catch (const bag::mcap::McapError& e) {
        throw CliError(o.file + ": " + e.what(), exit_failure);
    }
    bag::ReindexResult result;
    try {
        result = bag::reindex(file->bytes(), output, ro);
    } catch (const bag::mcap::McapError& e) {
        throw CliError(e.what(), exit_failure);  // writing the output failed; the message names it
    }
    std::printf("Wrote %s: %llu message%s from %llu chunk%s of %s (compression: %s)\n", output.c_str(),
                static_cast<unsigned long long>(result.messages), result.messages == 1 ? "" : "s",
                static_cast<unsigned long long>(result.chunks), result.chunks == 1 ? "" : "s", o.file.c_str(),
                std::string(bag::compression_option_name(result.compression)).c_str());
    if (!result.problem.empty()) {
        std::printf("Dropped the unreadable tail of %s (%s): %s\n", o.file.c_str(),
                    size_text(static_cast<double>(result.dropped_bytes)).c_str(), result.problem.c_str());
    }
}

// --- export ------------------------------------------------------------------------------------------------

void run_export(const BagCommandOptions& o) {
    if (!o.export_json) {
        throw CliError("say what to export to: --json", exit_usage);
    }
    const std::string output = o.output.empty() ? fs::path(o.file).replace_extension(".json.mcap").string() : o.output;
    std::error_code ec;
    if (fs::equivalent(output, o.file, ec)) {
        throw CliError("the output must not be the input (" + output + ")", exit_usage);
    }
    if (!o.force && fs::exists(output)) {
        throw CliError(output + " exists (--force overwrites it)", exit_failure);
    }
    const auto file = open_bag(o.file);
    bag::ExportOptions eo;
    eo.compression = bag::parse_compression(o.compression).value_or(bag::Compression::zstd);
    eo.library = library_name();
    eo.exclusive = !o.force;
    eo.on_warning = [](const std::string& w) {
        std::fprintf(stderr, "meshy: warning: %s\n", w.c_str());
    };
    bag::ExportResult result;
    try {
        result = bag::export_json(file->bytes(), output, eo);
    } catch (const bag::mcap::McapError& e) {
        throw CliError(o.file + ": " + e.what(), exit_failure);
    }
    std::printf("Wrote %s: %llu message%s, %llu of them as JSON\n", output.c_str(),
                static_cast<unsigned long long>(result.messages), result.messages == 1 ? "" : "s",
                static_cast<unsigned long long>(result.json_messages));
    if (!result.problem.empty()) {
        std::printf("Dropped the unreadable tail of %s: %s\n", o.file.c_str(), result.problem.c_str());
    }
}

}  // namespace

void setup_bag(CLI::App& app, const GlobalOptions& globals) {
    auto* bag = app.add_subcommand("bag", "Record, inspect and play MCAP bags: record, info, play, reindex, export")
                    ->require_subcommand(1);
    auto o = std::make_shared<BagCommandOptions>();
    const auto compressions = CLI::IsMember({"zstd", "lz4", "none"});

    auto* record = bag->add_subcommand("record", "Record topics to an MCAP file until Ctrl-C");
    record->add_option("topics", o->topics, "Topics to record");
    record->add_flag("-a,--all", o->all, "Record every topic, also those that appear later");
    record->add_option("-e,--regex", o->regex, "Record the topics this regular expression matches, also later ones");
    record->add_option("-x,--exclude", o->exclude,
                       "Leave out the --all/--regex topics this regular expression matches");
    record->add_option("-o,--output", o->output, "Output file (default: record_YYYY-MM-DD-HH-MM-SS.mcap)");
    record->add_option("--compression", o->compression, "Chunk compression: zstd (default), lz4, none")
        ->check(compressions);
    record
        ->add_option("--encoding", o->encoding,
                     "msgpack messages as json (with a JSON Schema: Foxglove decodes them; default) or msgpack "
                     "(the bytes as they came)")
        ->check(CLI::IsMember({"json", "msgpack"}));
    record->add_flag("-q,--quiet", o->quiet, "No progress output");
    record->callback([o, &globals] { run_record(globals, *o); });

    auto* info = bag->add_subcommand("info", "Show what a bag holds: duration, size, compression, topics");
    // The bag as a positional argument (ros2 and rosy take it so) or as -i.
    info->add_option("file,-i,--input", o->input, "Bag file (default: the newest .mcap in the current directory)");
    info->callback([o] { run_info(*o); });

    auto* play = bag->add_subcommand("play", "Send a bag's messages again, with their recorded timing");
    play->add_option("file,-i,--input", o->input, "Bag file (default: the newest .mcap in the current directory)");
    play->add_option("-r,--rate", o->rate, "Speed factor (2: twice as fast)")->check(number_check(false));
    play->add_flag("-l,--loop", o->loop, "Play again and again until Ctrl-C");
    play->add_option("--start-offset", o->start_offset, "Skip the first S seconds of the bag")
        ->check(number_check(true));
    play->add_option("--topics", o->play_topics, "Play only these topics");
    play->add_flag("--immediate", o->immediate, "Do not wait for listeners before playing");
    play->add_flag("--no-log", o->no_log, "Do not print each message played");
    play->callback([o, &globals] { run_play(globals, *o); });

    auto* reindex =
        bag->add_subcommand("reindex", "Write a complete, indexed copy of a bag whose recording was killed");
    reindex->alias("recover");
    reindex->add_option("file,-i,--input", o->file, "The bag to read")->required();
    reindex->add_option("-o,--output", o->output, "Output file (default: NAME.reindexed.mcap beside it)");
    reindex->add_option("--compression", o->reindex_compression, "Chunk compression (default: that of the input)")
        ->check(compressions);
    reindex->add_flag("-f,--force", o->force, "Overwrite the output if it exists");
    reindex->callback([o] { run_reindex(*o); });

    auto* exp = bag->add_subcommand("export", "Write a copy of a bag with its msgpack topics as JSON (for Foxglove)");
    exp->alias("convert");
    exp->add_option("file", o->file, "The bag to read")->required();
    exp->add_flag("--json", o->export_json, "msgpack channels become json channels with a JSON Schema")->required();
    exp->add_option("-o,--output", o->output, "Output file (default: NAME.json.mcap beside it)");
    exp->add_option("--compression", o->compression, "Chunk compression: zstd (default), lz4, none")
        ->check(compressions);
    exp->add_flag("-f,--force", o->force, "Overwrite the output if it exists");
    exp->callback([o] { run_export(*o); });
}

}  // namespace meshy::cli
