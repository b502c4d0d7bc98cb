// Shared by the in-process Node tests (node_*_test.cpp): real sockets on loopback, same-host
// discovery in a private directory. The multi-process behaviour is in tests/integration.
#pragma once

#include <gtest/gtest.h>
#include <unistd.h>

#include <algorithm>
#include <asio/co_spawn.hpp>
#include <asio/detached.hpp>
#include <asio/executor_work_guard.hpp>
#include <asio/io_context.hpp>
#include <asio/steady_timer.hpp>
#include <asio/this_coro.hpp>
#include <asio/use_awaitable.hpp>
#include <asio/use_future.hpp>
#include <atomic>
#include <cctype>
#include <chrono>
#include <cstdint>
#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <functional>
#include <future>
#include <iterator>
#include <meshy/meshy.hpp>
#include <mutex>
#include <optional>
#include <thread>
#include <vector>

#include "eventually.hpp"

using namespace std::chrono_literals;
using meshy::CallOptions;
using meshy::errc;
using meshy::Error;
using meshy::Node;
using meshy::NodeOptions;

namespace meshy::test {

/// Runs a coroutine on the node's executor and waits for it, under a deadline so a hang fails.
template <class T>
T await(Node& node, asio::awaitable<T> op, std::chrono::milliseconds deadline = 10s) {
    auto future = asio::co_spawn(node.get_executor(), std::move(op), asio::use_future);
    if (future.wait_for(deadline) != std::future_status::ready) {
        ADD_FAILURE() << "coroutine did not finish within " << deadline.count() << " ms";
        std::abort();  // the coroutine still refers to this frame's objects
    }
    return future.get();
}

struct Pose {
    double x = 0, y = 0;
    MSGPACK_DEFINE(x, y)
    template <class A>
    void serialize(A& ar) {
        ar(x, y);
    }
};

/// Collects the warnings logged while it lives (the log sink is global).
class WarningLog {
public:
    WarningLog() {
        meshy::set_log_sink([this](meshy::LogLevel level, std::string_view text) {
            if (level == meshy::LogLevel::warn) {
                std::lock_guard lock(mutex_);
                warnings_.emplace_back(text);
            }
        });
    }
    ~WarningLog() { meshy::set_log_sink({}); }
    WarningLog(const WarningLog&) = delete;
    WarningLog& operator=(const WarningLog&) = delete;
    bool empty() const {
        std::lock_guard lock(mutex_);
        return warnings_.empty();
    }
    bool contains(std::string_view part) const { return !matching(part).empty(); }
    std::vector<std::string> matching(std::string_view part) const {
        std::lock_guard lock(mutex_);
        std::vector<std::string> out;
        std::copy_if(warnings_.begin(), warnings_.end(), std::back_inserter(out),
                     [&](const std::string& w) { return w.find(part) != std::string::npos; });
        return out;
    }

private:
    mutable std::mutex mutex_;
    std::vector<std::string> warnings_;
};

class NodeTest : public ::testing::Test {
protected:
    void SetUp() override {
        dir_ = std::filesystem::temp_directory_path() / ("meshy-unit-" + std::to_string(::getpid()));
        std::filesystem::create_directories(dir_);
        ::setenv("MESHY_LOCAL_DISCOVERY_DIR", dir_.c_str(), 1);
        ::setenv("MESHY_DISCOVERY", "local", 1);
        domain_ = std::string(::testing::UnitTest::GetInstance()->current_test_info()->name()) + "-" +
                  std::to_string(::getpid());
    }
    void TearDown() override {
        std::error_code ignored;
        std::filesystem::remove_all(dir_, ignored);
    }
    NodeOptions options(std::string name, meshy::CodecId codec = meshy::CodecId::msgpack) {
        NodeOptions o{.name = std::move(name), .domain_id = domain_, .listen_host = "127.0.0.1", .codec = codec};
        o.unix_socket_dir = dir_.string();
        return o;
    }
    std::filesystem::path dir_;
    std::string domain_;
};

}  // namespace meshy::test
