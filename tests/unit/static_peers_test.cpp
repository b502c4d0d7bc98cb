// Static peers: endpoint parsing and the rules of the adverts exchanged over links.
#include "node/static_peers.hpp"

#include <gtest/gtest.h>
#include <stdlib.h>

#include <algorithm>

#include "meshy/error.hpp"
#include "node/advert_exchange.hpp"

using namespace meshy;
using namespace meshy::detail;

namespace {

struct EnvGuard {
    explicit EnvGuard(const char* value) {
        if (value) {
            ::setenv("MESHY_PEERS", value, 1);
        } else {
            ::unsetenv("MESHY_PEERS");
        }
    }
    ~EnvGuard() { ::unsetenv("MESHY_PEERS"); }
};

std::shared_ptr<PeerRecord> record(const std::string& id, std::uint32_t revision, const std::string& address) {
    auto r = std::make_shared<PeerRecord>();
    r->id = id;
    r->advert.id = id;
    r->advert.protocol = 2;
    r->advert.revision = revision;
    r->advert.tcp_address = address;
    r->advert.tcp_port = 7447;
    return r;
}

const Link* link(std::uintptr_t n) {
    return reinterpret_cast<const Link*>(n);  // only compared, never used
}

}  // namespace

TEST(PeerEndpoint, ParsesTcpAndUnix) {
    auto sut = parse_peer_endpoint("tcp/10.0.0.1:7447");
    EXPECT_FALSE(sut.is_unix);
    EXPECT_EQ(sut.host, "10.0.0.1");
    EXPECT_EQ(sut.port, 7447);
    sut = parse_peer_endpoint("tcp/[::1]:80");
    EXPECT_EQ(sut.host, "::1");
    EXPECT_EQ(sut.port, 80);
    sut = parse_peer_endpoint("tcp/hub.local:1");
    EXPECT_EQ(sut.host, "hub.local");
    sut = parse_peer_endpoint("unix//run/meshy/hub.sock");
    EXPECT_TRUE(sut.is_unix);
    EXPECT_EQ(sut.path, "/run/meshy/hub.sock");
}

TEST(PeerEndpoint, RefusesMalformedOnesWithTheReason) {
    for (const char* bad :
         {"", "10.0.0.1:7447", "udp/1.2.3.4:5", "tcp/1.2.3.4", "tcp/:7447", "tcp/1.2.3.4:0", "tcp/1.2.3.4:65536",
          "tcp/1.2.3.4:7x", "tcp/::1:80", "tcp/[::1:80", "unix/relative.sock", "unix/"}) {
        try {
            parse_peer_endpoint(bad);
            ADD_FAILURE() << "accepted '" << bad << "'";
        } catch (const Error& e) {
            EXPECT_EQ(e.code(), errc::invalid_argument);
            EXPECT_NE(std::string(e.what()).find("static peer '"), std::string::npos) << e.what();
        }
    }
}

TEST(PeerEndpoint, EnvironmentAddsToTheOptionsWithoutDuplicates) {
    EnvGuard env(" tcp/10.0.0.2:1, ,tcp/10.0.0.1:7447,unix//tmp/a.sock");
    const auto sut = static_peer_endpoints({"tcp/10.0.0.1:7447"});
    ASSERT_EQ(sut.size(), 3u);
    EXPECT_EQ(sut[0].text, "tcp/10.0.0.1:7447");
    EXPECT_EQ(sut[1].text, "tcp/10.0.0.2:1");
    EXPECT_EQ(sut[2].path, "/tmp/a.sock");
}

TEST(PeerEndpoint, MalformedEnvironmentEntryThrows) {
    EnvGuard env("tcp/10.0.0.1");
    EXPECT_THROW(static_peer_endpoints({}), Error);
}

TEST(AdvertExchange, FirstHandAdvertsAreNeverOverriddenByARelay) {
    AdvertExchange sut;
    sut.discovered("d");
    EXPECT_FALSE(sut.accept("d", "hub", link(1)));  // discovery saw it: relays and links say nothing
    EXPECT_FALSE(sut.accept("d", "d", link(1)));
    EXPECT_TRUE(sut.accept("p", "p", link(1)));     // the peer itself, over its link
    EXPECT_FALSE(sut.accept("p", "hub", link(2)));  // a relay does not replace it
    EXPECT_TRUE(sut.accept("r", "hub", link(2)));   // relayed
    EXPECT_TRUE(sut.accept("r", "hub", link(2)));   // updated by the same relay
    EXPECT_FALSE(sut.accept("r", "other", link(3)));
    EXPECT_TRUE(sut.accept("r", "r", link(4)));  // then the peer speaks for itself
    EXPECT_FALSE(sut.gone("r", "hub"));          // so the relay cannot remove it
    EXPECT_TRUE(sut.gone("r", "r"));
}

TEST(AdvertExchange, ClosingALinkForgetsWhatItTold) {
    AdvertExchange sut;
    EXPECT_TRUE(sut.accept("hub", "hub", link(1)));
    EXPECT_TRUE(sut.accept("a", "hub", link(1)));
    EXPECT_TRUE(sut.accept("b", "b", link(2)));
    auto ids = sut.closed(link(1));
    std::sort(ids.begin(), ids.end());
    EXPECT_EQ(ids, (std::vector<std::string>{"a", "hub"}));
    EXPECT_TRUE(sut.closed(link(1)).empty());
    EXPECT_TRUE(sut.accept("a", "other", link(3)));  // free to be learned again
}

TEST(AdvertExchange, LearnedAdvertsAreBounded) {
    AdvertExchange sut;
    for (std::size_t i = 0; i < kMaxLearnedAdverts; ++i) {
        ASSERT_TRUE(sut.accept("n" + std::to_string(i), "hub", link(1)));
    }
    EXPECT_FALSE(sut.accept("one-more", "hub", link(1)));
    EXPECT_TRUE(sut.accept("n0", "hub", link(1)));  // known ones still update
}

TEST(AdvertExchange, ChangesReportNewChangedAndGonePeers) {
    AdvertExchange sut;
    Topology t;
    t.peers = {record("a", 1, "10.0.0.1"), record("b", 1, "10.0.0.2")};
    EXPECT_EQ(sut.changes(t).adverts.size(), 2u);
    EXPECT_TRUE(sut.changes(t).adverts.empty());
    t.peers = {record("a", 2, "10.0.0.1"), record("c", 1, "10.0.0.3")};
    const auto sut_changes = sut.changes(t);
    EXPECT_EQ(sut_changes.adverts.size(), 2u);
    EXPECT_EQ(sut_changes.gone, (std::vector<std::string>{"b"}));
    t.peers = {record("a", 2, "10.0.0.9"), record("c", 1, "10.0.0.3")};  // moved
    EXPECT_EQ(sut.changes(t).adverts.size(), 1u);
}

TEST(AdvertExchange, SplitsLargeUpdatesIntoFramesWithinTheLimit) {
    wire::Adverts big;
    big.subscribe = true;
    big.adverts.resize(kAdvertsPerFrame * 2 + 1);
    big.gone.resize(3);
    const auto frames = split_adverts(big);
    ASSERT_EQ(frames.size(), 3u);
    EXPECT_TRUE(frames[0].subscribe);
    EXPECT_FALSE(frames[1].subscribe);
    EXPECT_EQ(frames[0].adverts.size(), kAdvertsPerFrame);
    EXPECT_EQ(frames[2].adverts.size(), 1u);
    EXPECT_EQ(frames[0].gone.size(), 3u);
    EXPECT_EQ(split_adverts({}).size(), 1u);
}
