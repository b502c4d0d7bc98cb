// A node's options as it runs with them: the environment's overrides, the domain, validation.
#include "node/resolved_options.hpp"

#include <gtest/gtest.h>

#include <cstdlib>

#include "meshy/error.hpp"

namespace meshy::detail {
namespace {

// Sets an environment variable for one test, restoring it after.
class EnvVar {
public:
    EnvVar(const char* name, const char* value) : name_(name) {
        if (const char* old = std::getenv(name)) {
            old_ = old;
        }
        ::setenv(name, value, 1);
    }
    ~EnvVar() {
        if (old_) {
            ::setenv(name_, old_->c_str(), 1);
        } else {
            ::unsetenv(name_);
        }
    }

private:
    const char* name_;
    std::optional<std::string> old_;
};

errc code_of(const NodeOptions& o) {
    try {
        validate(o, "default");
    } catch (const Error& e) {
        return static_cast<errc>(e.code().value());
    }
    return errc{};
}

TEST(ResolvedOptionsTest, TheDomainComesFromTheOptionsThenTheEnvironmentThenDefault) {
    EnvVar env("MESHY_DOMAIN_ID", "lab");
    EXPECT_EQ(resolve_domain(std::string("robot")), "robot");
    EXPECT_EQ(resolve_domain(std::nullopt), "lab");
    ::unsetenv("MESHY_DOMAIN_ID");
    EXPECT_EQ(resolve_domain(std::nullopt), "default");
}

TEST(ResolvedOptionsTest, TheEnvironmentFillsOnlyWhatTheOptionsLeaveUnset) {
    EnvVar host("MESHY_LISTEN_HOST", "127.0.0.1");
    EnvVar shm("MESHY_SHM", "1");
    NodeOptions o;
    EXPECT_EQ(with_environment(o).listen_host, "127.0.0.1");
    EXPECT_TRUE(with_environment(o).allow_shm);
    o.listen_host = "10.1.2.3";
    EXPECT_EQ(with_environment(o).listen_host, "10.1.2.3");
}

TEST(ResolvedOptionsTest, OptionsOutOfRangeAreRefused) {
    EXPECT_EQ(code_of(NodeOptions{}), errc{});
    NodeOptions o;
    o.name = "";
    EXPECT_EQ(code_of(o), errc::invalid_argument);
    o = {};
    o.allow_tcp = o.allow_unix = false;
    EXPECT_EQ(code_of(o), errc::invalid_argument);
    o = {};
    o.max_inbound_connections = 0;
    EXPECT_EQ(code_of(o), errc::invalid_argument);
    o = {};
    o.shm_ring_bytes = 1024;
    EXPECT_EQ(code_of(o), errc::invalid_argument);
    o = {};
    o.peer_timeout = o.heartbeat_interval;
    EXPECT_EQ(code_of(o), errc::invalid_argument);
}

TEST(ResolvedOptionsTest, WildcardHosts) {
    EXPECT_TRUE(is_wildcard(""));
    EXPECT_TRUE(is_wildcard("0.0.0.0"));
    EXPECT_TRUE(is_wildcard("::"));
    EXPECT_FALSE(is_wildcard("127.0.0.1"));
}

}  // namespace
}  // namespace meshy::detail
