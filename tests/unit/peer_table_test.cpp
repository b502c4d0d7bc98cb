// The topology alone: adverts, Info frames and the lists in force, without sockets.
#include "topology/peer_table.hpp"

#include <gtest/gtest.h>

namespace meshy::detail {
namespace {

Advert advert(std::string id, std::uint32_t revision, std::vector<std::string> topics, bool complete = true) {
    Advert a;
    a.id = std::move(id);
    a.name = "n-" + a.id;
    a.host = "h";
    a.domain = "d";
    a.revision = revision;
    a.topics = std::move(topics);
    a.complete = complete;
    return a;
}

wire::Info info(std::uint32_t revision, std::vector<std::string> topics) {
    wire::Info i;
    i.revision = revision;
    i.topics = std::move(topics);
    return i;
}

TEST(PeerTable, AdvertListsRouteWithoutALink) {
    PeerTable sut;
    EXPECT_TRUE(sut.upsert(advert("b", 1, {"pose", "map"})));
    EXPECT_TRUE(sut.upsert(advert("a", 1, {"pose"})));
    const auto view = sut.view();
    ASSERT_EQ(view->peers.size(), 2u);
    EXPECT_EQ(view->peers[0]->id, "a");  // sorted by id
    ASSERT_TRUE(view->listeners.contains("pose"));
    ASSERT_EQ(view->listeners.at("pose").size(), 2u);
    EXPECT_EQ(view->listeners.at("pose")[0]->id, "a");
    EXPECT_EQ(view->listeners.at("map").size(), 1u);
    EXPECT_FALSE(sut.needs_info("a"));
}

TEST(PeerTable, SameAdvertAgainChangesNothing) {
    PeerTable sut;
    EXPECT_TRUE(sut.upsert(advert("a", 1, {"pose"})));
    const auto before = sut.view();
    EXPECT_FALSE(sut.upsert(advert("a", 1, {"pose"})));
    EXPECT_EQ(sut.view(), before);
}

TEST(PeerTable, IncompleteAdvertIsCompletedByInfo) {
    PeerTable sut;
    sut.upsert(advert("a", 3, {}, false));
    EXPECT_TRUE(sut.needs_info("a"));
    EXPECT_FALSE(sut.view()->find("a")->lists_known);
    EXPECT_TRUE(sut.set_info("a", info(3, {"scan"})));
    EXPECT_FALSE(sut.needs_info("a"));
    EXPECT_TRUE(sut.view()->listeners.contains("scan"));
    // A newer advert, still too long to carry its lists: the Info must be fetched again.
    sut.upsert(advert("a", 4, {}, false));
    EXPECT_TRUE(sut.needs_info("a"));
}

TEST(PeerTable, OlderInfoIsIgnoredAndNewerWins) {
    PeerTable sut;
    sut.upsert(advert("a", 2, {"x"}));
    EXPECT_FALSE(sut.set_info("a", info(1, {"old"})));
    EXPECT_FALSE(sut.view()->listeners.contains("old"));
    EXPECT_TRUE(sut.set_info("a", info(5, {"new"})));
    EXPECT_TRUE(sut.view()->listeners.contains("new"));
    EXPECT_FALSE(sut.view()->listeners.contains("x"));
    EXPECT_FALSE(sut.set_info("a", info(4, {"older"})));
}

TEST(PeerTable, InfoAloneDoesNotMakeAPeer) {
    PeerTable sut;
    EXPECT_FALSE(sut.set_info("stranger", info(1, {"t"})));
    EXPECT_TRUE(sut.view()->peers.empty());
}

TEST(PeerTable, SchemasFromInfoStayWithTheAdvertsPublications) {
    PeerTable sut;
    Advert a = advert("a", 1, {});
    a.publications.push_back(Publication{"pose", "geometry/Pose", true});
    sut.upsert(a);
    wire::Info i = info(1, {});
    i.publications.push_back(wire::InfoPublication{"pose", "geometry/Pose", "jsonschema", "{}", true});
    sut.set_info("a", i);
    const auto* peer = sut.view()->find("a");
    ASSERT_EQ(peer->publications.size(), 1u);
    EXPECT_EQ(peer->publications[0].schema, "{}");
    EXPECT_TRUE(peer->publications[0].latched);
    EXPECT_EQ(sut.view()->publishers.at("pose").size(), 1u);
}

TEST(PeerTable, ATypedPublicationOfAListenedTopicLacksItsSchemaUntilInfo) {
    PeerTable sut;
    Advert a = advert("a", 2, {});
    a.publications.push_back(Publication{"pose", "geometry/Pose", false});
    a.publications.push_back(Publication{"raw", "", false});
    sut.upsert(a);
    sut.upsert(advert("b", 1, {"pose"}));
    EXPECT_EQ(sut.lacking_schemas({"pose"}), std::vector<std::string>{"a"});
    EXPECT_TRUE(sut.lacking_schemas({"map", "raw"}).empty());  // untyped, or not listened to
    wire::Info i = info(2, {});
    i.publications.push_back(wire::InfoPublication{"pose", "geometry/Pose", "jsonschema", "{}", false});
    sut.set_info("a", i);
    EXPECT_TRUE(sut.lacking_schemas({"pose"}).empty());
}

TEST(PeerTable, RemoveForgetsThePeer) {
    PeerTable sut;
    sut.upsert(advert("a", 1, {"pose"}));
    EXPECT_TRUE(sut.remove("a"));
    EXPECT_FALSE(sut.remove("a"));
    EXPECT_TRUE(sut.view()->listeners.empty());
    EXPECT_FALSE(sut.advert("a"));
}

}  // namespace
}  // namespace meshy::detail
