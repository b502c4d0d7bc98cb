// The examples (examples/) against each other across real processes, as a user first runs them.
#include "mesh_test_support.hpp"

namespace meshy::test {

// Without --listen-host an example's TCP server would listen on every address.
constexpr const char* examples_off_loopback =
    "the examples have no --listen-host option (examples/example_args.hpp), so they would listen on all "
    "addresses; these tests only run nodes bound to 127.0.0.1";

TEST_P(MeshTest, ExampleTopicSenderReachesTopicListener) {
    if (!examples_bind_loopback()) {
        GTEST_SKIP() << examples_off_loopback;
    }
    Process& listener = spawn_example("topic_listener", {}, "topic_listener");
    expect_line(listener, "Listening...", startup_timeout);
    Process& sender = spawn_example("topic_sender", {}, "topic_sender");
    const auto status = expect_exit(sender, startup_timeout + discovery_timeout() + delivery_timeout);
    EXPECT_TRUE(status.success()) << status.describe();
    expect_line(listener, "Received \"hello world\" on topic=some-topic", delivery_timeout);
}

TEST_P(MeshTest, ExampleServiceCallerGetsResult) {
    if (!examples_bind_loopback()) {
        GTEST_SKIP() << examples_off_loopback;
    }
    Process& provider = spawn_example("service_provider", {}, "service_provider");
    expect_line(provider, "Started service...", startup_timeout);
    Process& caller = spawn_example("service_caller", {}, "service_caller");
    const auto status = expect_exit(caller, startup_timeout + discovery_timeout() + delivery_timeout);
    EXPECT_TRUE(status.success()) << status.describe();
    expect_line(caller, "Calculating 2 * 2...", Millis(0));
    expect_line(caller, "Result: 4", Millis(0));
    expect_line(provider, "Calculating 2 * 2...", delivery_timeout);
}

}  // namespace meshy::test
