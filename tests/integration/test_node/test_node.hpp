// meshy_test_node's parts: the output records and arguments every role shares (common.cpp), the
// roles on an io_context with the coroutine API (coroutine_roles.cpp) and those on the node's own
// thread with the blocking API (blocking_roles.cpp). main.cpp says what each record means.
#pragma once

#include <chrono>
#include <cstdint>
#include <exception>
#include <meshy/meshy.hpp>
#include <optional>
#include <string>
#include <vector>

namespace test_node {

using Millis = std::chrono::milliseconds;

struct Args {
    std::string command;
    std::vector<std::string> positional;
    meshy::NodeOptions options;
    Millis wait_timeout{15000};
    // listen
    std::string echo_topic;
    bool count_only = false;
    std::int64_t report_every = 1000;
    // send
    std::size_t wait_listeners = 1;
    Millis interval{0};
    std::int64_t burst = 1;
    std::string text = "msg";
    bool stay = false;
    bool latched = false;  // send: advertise the topic latched first
    std::string reply_topic;
    std::int64_t until_replies = 0;
    // call
    Millis call_timeout{0};
    std::optional<std::string> wait_provider;  // unset: the called service; "" (--no-wait): none
    // nodes
    std::size_t expect = 0;
    bool with_topics = false;
    // blobs
    bool blob_stream = false;
};

// ---- output (common.cpp) --------------------------------------------------------------------------

/// One record per line on stdout, flushed at once.
void emit(const std::string& line);
/// The ERROR record of an exception: its errc's name (for meshy::Error) and its message.
std::string error_line(const std::exception& e);
/// Prints `problem` and the usage to stderr and exits with 2.
[[noreturn]] void usage(const std::string& problem);
Args parse(int argc, char** argv);
std::int64_t parse_int(const std::string& text, const char* what);
/// The READY record: the node's id, name, discovery backend and endpoints.
void emit_ready(const meshy::Node& node);
/// Blocks SIGINT/SIGTERM in this thread and the threads it starts (before the node starts).
void block_stop_signals();
/// Waits up to `wait` for SIGINT/SIGTERM. @returns true when one came.
bool stop_requested(Millis wait);
/// A blob of `n` bytes whose content follows from `n`; blob_sum checks one.
std::string make_blob(std::int64_t n);
std::int64_t blob_sum(const std::string& blob);

// ---- roles -----------------------------------------------------------------------------------------

int cmd_listen(const Args& a);   // coroutine_roles.cpp
int cmd_provide(const Args& a);  // coroutine_roles.cpp
int cmd_probe(const Args& a);    // coroutine_roles.cpp
int cmd_send(const Args& a);     // blocking_roles.cpp
int cmd_call(const Args& a);     // blocking_roles.cpp
int cmd_blobs(const Args& a);    // blocking_roles.cpp
int cmd_nodes(const Args& a);    // blocking_roles.cpp

}  // namespace test_node
