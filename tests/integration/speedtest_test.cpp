// `meshy speedtest` with real processes: the table's shape and the consistency of its counts
// (sent = received + dropped). Speed itself is never asserted here.
#include <gtest/gtest.h>
#include <unistd.h>

#include <algorithm>
#include <cstdlib>
#include <sstream>
#include <string>
#include <vector>

#include "process.hpp"

using namespace std::chrono_literals;
using meshy::test::joined;
using meshy::test::Process;
using meshy::test::run_command;

namespace {

const std::string cli = MESHY_CLI_PATH;

std::map<std::string, std::string> env_for(const std::string& discovery) {
    const auto* info = ::testing::UnitTest::GetInstance()->current_test_info();
    return {{"MESHY_DOMAIN_ID", std::string("speed-") + info->name() + "-" + std::to_string(::getpid())},
            {"MESHY_DISCOVERY", discovery},
            {"MESHY_LISTEN_HOST", "127.0.0.1"}};
}

std::vector<std::string> cells(const std::string& row) {
    std::vector<std::string> out;
    std::stringstream in(row);
    std::string cell;
    std::getline(in, cell, '|');  // before the first bar
    while (std::getline(in, cell, '|')) {
        const auto b = cell.find_first_not_of(' ');
        const auto e = cell.find_last_not_of(' ');
        out.push_back(b == std::string::npos ? "" : cell.substr(b, e - b + 1));
    }
    return out;
}

}  // namespace

TEST(Speedtest, RunPrintsATableWithConsistentCounts) {
    auto result =
        run_command({cli, "speedtest", "run", "--run-time", "0.2", "--timeout", "30"}, 110s, env_for("local"));
    ASSERT_TRUE(result.status && result.status->success()) << joined(result.lines);
    std::vector<std::string> rows;
    bool header = false;
    for (const auto& line : result.lines) {
        if (line.rfind("| mode ", 0) == 0) {
            header = true;
            EXPECT_EQ(cells(line).size(), 10u) << line;
            EXPECT_LE(line.size(), 100u) << line;  // readable in a 100-column terminal
        } else if (header && line.rfind("| ", 0) == 0) {
            rows.push_back(line);
        }
    }
    ASSERT_TRUE(header) << joined(result.lines);
    // The output explains its 0 B latency itself.
    EXPECT_TRUE(std::any_of(result.lines.begin(), result.lines.end(), [](const std::string& l) {
        return l.find("At 0 B") != std::string::npos;
    })) << joined(result.lines);
    // topic and service, over shm (the default on one host), unix and tcp, at 0 B, 1 kB and 1 MB.
    ASSERT_EQ(rows.size(), 18u) << joined(result.lines);
    const char* modes[] = {"topic", "service"};
    const char* transports[] = {"shm", "unix", "tcp"};
    const char* sizes[] = {"0 B", "1 kB", "1 MB"};
    for (std::size_t i = 0; i < rows.size(); ++i) {
        const auto c = cells(rows[i]);
        ASSERT_EQ(c.size(), 10u) << rows[i];
        EXPECT_EQ(c[0], modes[i / 9]) << rows[i];
        EXPECT_EQ(c[1], transports[(i / 3) % 3]) << rows[i];
        EXPECT_EQ(c[2], sizes[i % 3]) << rows[i];
        // Counts carry thousands separators ("1,234,567").
        const auto count = [](std::string text) {
            std::erase(text, ',');
            return std::stoull(text);
        };
        EXPECT_GT(count(c[8]), 0u) << rows[i];
        EXPECT_NO_THROW(count(c[9])) << rows[i];
        EXPECT_GT(std::stod(c[3]), 0.0) << rows[i];  // "412.3k": stod reads the number before the unit
        EXPECT_NE(c[6], "n/a") << rows[i];           // one host: latency is known
    }
}

TEST(Speedtest, RecvCountsWhatSendReports) {
    const auto env = env_for("avahi");
    if (const auto& problem = meshy::test::avahi_problem(MESHY_TEST_NODE_PATH, env)) {
        FAIL() << *problem;
    }
    Process recv({cli, "speedtest", "recv", "--message-size", "100", "--codec", "raw", "--timeout", "60"}, env, "recv");
    ASSERT_TRUE(recv.wait_for_line("Waiting for a sender", 20s)) << recv.dump();
    auto send = run_command(
        {cli, "speedtest", "send", "--message-size", "100", "--codec", "raw", "--run-time", "0.3", "--timeout", "30"},
        60s, env);
    ASSERT_TRUE(send.status && send.status->success()) << joined(send.lines);
    auto status = recv.wait_exit(30s);
    ASSERT_TRUE(status && status->success()) << recv.dump();
    // "  sent N, received M, dropped D (x %)"
    unsigned long long sent = 0, received = 0, dropped = 0;
    bool found = false;
    for (const auto& line : recv.lines()) {
        if (std::sscanf(line.c_str(), "  sent %llu, received %llu, dropped %llu", &sent, &received, &dropped) == 3) {
            found = true;
        }
    }
    ASSERT_TRUE(found) << recv.dump();
    EXPECT_GT(received, 0u);
    EXPECT_EQ(sent, received + dropped);
    EXPECT_EQ(recv.count_lines("latency: n/a"), 1u) << recv.dump();  // clocks not declared synchronised
    EXPECT_EQ(recv.count_lines("over shm"), 1u) << recv.dump();      // one host: shared memory, the default
}

TEST(Speedtest, BadOptionsExitWithTwo) {
    auto result = run_command({cli, "speedtest", "send", "--codec", "nope"}, 20s, env_for("local"));
    ASSERT_TRUE(result.status);
    EXPECT_EQ(result.status->code, 2) << joined(result.lines);
    result = run_command({cli, "speedtest", "run", "--disable-unix", "--disable-tcp"}, 20s, env_for("local"));
    ASSERT_TRUE(result.status);
    EXPECT_EQ(result.status->code, 2) << joined(result.lines);
}
