#include "meshy/log.hpp"

#include <atomic>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <ctime>
#include <mutex>
#include <string>

namespace meshy {
namespace {

LogLevel initial_level() {
    LogLevel level = LogLevel::info;
    if (const char* env = std::getenv("MESHY_LOG")) {
        parse_log_level(env, level);
    }
    return level;
}

std::atomic<LogLevel>& level_ref() {
    static std::atomic<LogLevel> level{initial_level()};
    return level;
}

struct SinkState {
    std::mutex mutex;
    LogSink sink;
};

SinkState& sink_state() {
    static SinkState state;
    return state;
}

void default_sink(LogLevel level, std::string_view message) {
    using namespace std::chrono;
    const auto now = system_clock::now();
    const std::time_t secs = system_clock::to_time_t(now);
    const auto ms = duration_cast<milliseconds>(now.time_since_epoch()).count() % 1000;
    std::tm tm{};
    localtime_r(&secs, &tm);
    char stamp[32];
    std::strftime(stamp, sizeof stamp, "%H:%M:%S", &tm);
    std::fprintf(stderr, "[%s.%03d meshy %.*s] %.*s\n", stamp, static_cast<int>(ms),
                 static_cast<int>(to_string(level).size()), to_string(level).data(), static_cast<int>(message.size()),
                 message.data());
}

}  // namespace

void set_log_sink(LogSink sink) {
    auto& state = sink_state();
    std::lock_guard lock(state.mutex);
    state.sink = std::move(sink);
}

void set_log_level(LogLevel level) {
    level_ref().store(level, std::memory_order_relaxed);
}

LogLevel log_level() noexcept {
    return level_ref().load(std::memory_order_relaxed);
}

bool log_enabled(LogLevel level) noexcept {
    return level != LogLevel::off && level >= log_level();
}

bool parse_log_level(std::string_view text, LogLevel& out) noexcept {
    std::string lower(text);
    for (auto& c : lower) {
        c = static_cast<char>(c >= 'A' && c <= 'Z' ? c - 'A' + 'a' : c);
    }
    static constexpr std::pair<std::string_view, LogLevel> names[] = {
        {"trace", LogLevel::trace},  {"debug", LogLevel::debug}, {"info", LogLevel::info}, {"warn", LogLevel::warn},
        {"warning", LogLevel::warn}, {"error", LogLevel::error}, {"off", LogLevel::off},   {"none", LogLevel::off}};
    for (const auto& [name, level] : names) {
        if (lower == name) {
            out = level;
            return true;
        }
    }
    return false;
}

std::string_view to_string(LogLevel level) noexcept {
    switch (level) {
        case LogLevel::trace:
            return "trace";
        case LogLevel::debug:
            return "debug";
        case LogLevel::info:
            return "info";
        case LogLevel::warn:
            return "warn";
        case LogLevel::error:
            return "error";
        case LogLevel::off:
            return "off";
    }
    return "?";
}

void log(LogLevel level, std::string_view message) {
    if (!log_enabled(level)) {
        return;
    }
    auto& state = sink_state();
    std::lock_guard lock(state.mutex);
    if (state.sink) {
        state.sink(level, message);
    } else {
        default_sink(level, message);
    }
}

}  // namespace meshy
