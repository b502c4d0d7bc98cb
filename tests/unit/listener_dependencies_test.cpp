// Listeners that follow downstream ones, alone: the node's side is three fakes.
#include "node/listener_dependencies.hpp"

#include <gtest/gtest.h>

#include <set>
#include <string>
#include <vector>

namespace meshy::detail {
namespace {

struct ListenerDependenciesTest : testing::Test {
    std::set<std::string, std::less<>> listened;  // topics with a listener (anywhere)
    std::vector<std::string> started, stopped;
    ListenerDependencies sut{{[this](std::string_view t) { return listened.contains(t); },
                              [this](std::string t, ListenerFn) {
                                  listened.insert(t);
                                  started.push_back(std::move(t));
                              },
                              [this](std::string_view t) {
                                  listened.erase(std::string(t));
                                  stopped.emplace_back(t);
                              }}};
    static ListenerFn fn() {
        ListenerFn f;
        f.plain = [](const RawMessage&) {
        };
        return f;
    }
};

TEST_F(ListenerDependenciesTest, ListensUpstreamOnlyWhileDownstreamIsListenedTo) {
    EXPECT_TRUE(sut.empty());
    sut.add("processed", "raw", fn());
    EXPECT_FALSE(sut.empty());
    EXPECT_TRUE(started.empty());  // nobody listens to "processed" yet

    listened.insert("processed");
    sut.evaluate();
    EXPECT_EQ(started, std::vector<std::string>{"raw"});
    sut.evaluate();  // no change: nothing started twice
    EXPECT_EQ(started.size(), 1u);

    listened.erase("processed");
    sut.evaluate();
    EXPECT_EQ(stopped, std::vector<std::string>{"raw"});
}

TEST_F(ListenerDependenciesTest, ADependencyWhoseDownstreamIsListenedToStartsAtOnce) {
    listened.insert("processed");
    sut.add("processed", "raw", fn());
    EXPECT_EQ(started, std::vector<std::string>{"raw"});
}

TEST_F(ListenerDependenciesTest, ClearedDependenciesDoNothing) {
    sut.add("processed", "raw", fn());
    sut.clear();
    EXPECT_TRUE(sut.empty());
    listened.insert("processed");
    sut.evaluate();
    EXPECT_TRUE(started.empty());
}

}  // namespace
}  // namespace meshy::detail
