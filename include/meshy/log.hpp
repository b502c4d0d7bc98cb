/// @file
/// One pluggable log sink with levels. The default sink writes one line per record to stderr;
/// the `MESHY_LOG` environment variable (trace, debug, info, warn, error, off) sets the level,
/// default `info`. Thread-safe: the sink may be called from any meshy thread, one record at a time.
#pragma once

#include <functional>
#include <string_view>

namespace meshy {

/// Severity of a log record, in increasing order.
enum class LogLevel { trace, debug, info, warn, error, off };

/// Receives one formatted record (no trailing newline).
using LogSink = std::function<void(LogLevel, std::string_view message)>;

/// Replaces the sink; an empty function restores the default stderr sink.
void set_log_sink(LogSink sink);
/// Sets the minimum level that reaches the sink.
void set_log_level(LogLevel level);
/// The current minimum level.
LogLevel log_level() noexcept;
/// Parses "trace".."off" (case-insensitive; also "warning"). @returns false when unknown.
bool parse_log_level(std::string_view text, LogLevel& out) noexcept;
/// Short name of a level: "trace", "debug", "info", "warn", "error", "off".
std::string_view to_string(LogLevel level) noexcept;
/// Sends a record to the sink when `level` is enabled.
void log(LogLevel level, std::string_view message);
/// True when records at `level` reach the sink; check before building an expensive message.
bool log_enabled(LogLevel level) noexcept;

}  // namespace meshy
