// Services across real processes: results, remote errors, timeouts, missing providers.
#include "mesh_test_support.hpp"

namespace meshy::test {

// ---- services ----------------------------------------------------------------------------------

TEST_P(MeshTest, ServiceCallReturnsTheResult) {
    spawn_ready({"provide"}, "provider");
    Process& caller = spawn({"call", "multiply", "6", "7"}, "caller");
    const auto status = expect_exit(caller, startup_timeout + discovery_timeout() + delivery_timeout);
    EXPECT_TRUE(status.success()) << status.describe();
    expect_line(caller, "RESULT 42", Millis(0));
}

TEST_P(MeshTest, ServiceExceptionReachesCallerAsRemoteError) {
    spawn_ready({"provide"}, "provider");
    Process& caller = spawn({"call", "fail"}, "caller");
    const auto status = expect_exit(caller, startup_timeout + discovery_timeout() + delivery_timeout);
    EXPECT_EQ(status.describe(), "exit 1");
    const std::string line = expect_line(caller, "ERROR ", Millis(0));
    EXPECT_EQ(line.rfind("ERROR remote_error ", 0), 0u) << line;
    EXPECT_NE(line.find("boom from provider"), std::string::npos) << line;
}

TEST_P(MeshTest, SlowServiceCallTimesOut) {
    auto [provider, ready] = spawn_ready({"provide"}, "provider");
    Process& caller = spawn({"call", "slow", "3000", "--timeout-ms", "300"}, "caller");
    expect_line(*provider, "CALLED slow", startup_timeout + discovery_timeout());
    const auto called = Clock::now();
    const auto status = expect_exit(caller, Millis(2500));  // well before the 3 s reply
    EXPECT_EQ(status.describe(), "exit 1");
    const std::string line = expect_line(caller, "ERROR ", Millis(0));
    EXPECT_EQ(line.rfind("ERROR timeout ", 0), 0u) << line;
    std::cout << "[ info ] timed-out call returned " << seconds_since(called) << " s after the provider got it\n";

    // The provider is fine afterwards.
    Process& again = spawn({"call", "multiply", "3", "4"}, "caller#2");
    EXPECT_TRUE(expect_exit(again, startup_timeout + discovery_timeout() + delivery_timeout).success());
    expect_line(again, "RESULT 12", Millis(0));
}

TEST_P(MeshTest, CallToMissingServiceReportsNoProvider) {
    spawn_ready({"provide"}, "provider");
    // Wait for the provider of "multiply" first, so "missing" is known to be absent, not just not yet found.
    Process& caller = spawn({"call", "missing", "1", "--wait-provider", "multiply"}, "caller");
    const auto status = expect_exit(caller, startup_timeout + discovery_timeout() + delivery_timeout);
    EXPECT_EQ(status.describe(), "exit 1");
    const std::string line = expect_line(caller, "ERROR ", Millis(0));
    EXPECT_EQ(line.rfind("ERROR no_provider ", 0), 0u) << line;
}

}  // namespace meshy::test
