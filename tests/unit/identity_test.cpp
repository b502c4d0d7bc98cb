// Whether a connection may speak for the node it names: its end against that node's advert.
#include "topology/identity.hpp"

#include <gtest/gtest.h>

namespace meshy::detail {
namespace {

Advert advert_of(std::string host, std::string tcp_address, std::int64_t pid) {
    Advert a;
    a.id = "0123456789abcdef-node";
    a.name = "camera";
    a.host = std::move(host);
    a.tcp_address = std::move(tcp_address);
    a.pid = pid;
    return a;
}

TEST(IdentityTest, AUnixPeerMustBeTheAdvertisedProcess) {
    const auto advert = advert_of("robot", "", 100);
    EXPECT_EQ(identity_mismatch(advert, {true, 100, "unix"}, "robot"), "");
    EXPECT_EQ(identity_mismatch(advert, {true, 0, "unix"}, "robot"), "");  // the kernel did not say
    const auto why = identity_mismatch(advert, {true, 200, "unix"}, "robot");
    EXPECT_NE(why.find("camera (01234567)"), std::string::npos) << why;
    EXPECT_NE(why.find("from process 200"), std::string::npos) << why;
}

TEST(IdentityTest, ATcpPeerMustComeFromTheAdvertisedAddress) {
    const auto advert = advert_of("robot", "192.0.2.7", 0);
    EXPECT_EQ(identity_mismatch(advert, {false, 0, "tcp:192.0.2.7:5000"}, "laptop"), "");
    const auto why = identity_mismatch(advert, {false, 0, "tcp:192.0.2.9:5000"}, "laptop");
    EXPECT_NE(why.find("advertised at 192.0.2.7"), std::string::npos) << why;
    // Loopback is another address of a node of this host, not of one elsewhere.
    EXPECT_EQ(identity_mismatch(advert, {false, 0, "tcp:127.0.0.1:5000"}, "robot"), "");
    EXPECT_NE(identity_mismatch(advert, {false, 0, "tcp:127.0.0.1:5000"}, "laptop"), "");
}

TEST(IdentityTest, AnAdvertWithoutTcpSaysNothingOfTcpPeers) {
    EXPECT_EQ(identity_mismatch(advert_of("robot", "", 0), {false, 0, "tcp:192.0.2.9:1"}, "laptop"), "");
}

TEST(IdentityTest, TheAddressOfATcpRemote) {
    EXPECT_EQ(tcp_remote_address("tcp:10.0.0.1:4242"), "10.0.0.1");
    EXPECT_EQ(tcp_remote_address("tcp:::1:4242"), "::1");
    EXPECT_EQ(tcp_remote_address("unix:/run/x.sock"), "");
    EXPECT_TRUE(is_loopback("127.0.0.2"));
    EXPECT_TRUE(is_loopback("::1"));
    EXPECT_FALSE(is_loopback("10.0.0.1"));
}

}  // namespace
}  // namespace meshy::detail
