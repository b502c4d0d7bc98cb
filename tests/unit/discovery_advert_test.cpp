// The advert's key=value form: round trips through TXT strings and .node file text, list pieces
// within a TXT string, the TXT budget (complete=false), and what a reader refuses.
#include <gtest/gtest.h>

#include <cstdlib>
#include <string>
#include <string_view>
#include <vector>

#include "discovery/discovery.hpp"
#include "meshy/error.hpp"

namespace meshy::detail {
namespace {

Advert sample() {
    Advert advert;
    advert.id = "0123abcd-0000-4000-8000-00000000000a";
    advert.name = "talker";
    advert.host = "robot-1";
    advert.domain = "lab";
    advert.protocol = 2;
    advert.tcp_address = "192.168.1.20";
    advert.tcp_port = 7447;
    advert.unix_path = "/run/user/1000/meshy/" + advert.id + ".sock";
    advert.pid = 4242;
    advert.revision = 17;
    advert.topics = {"chatter", "odom"};
    advert.services = {"add_two_ints"};
    advert.publications = {{"pose", "geometry/Pose", false}, {"tf_static", "", true}, {"log", "", false}};
    return advert;
}

// The strings as Avahi would hand them back: each "key=value".
std::vector<std::string> txt_strings(const AdvertFields& fields) {
    std::vector<std::string> out;
    for (const auto& [key, value] : fields) {
        out.push_back(key + "=" + value);
    }
    return out;
}

bool parse_txt(const std::vector<std::string>& strings, Advert& out, std::string* reason = nullptr) {
    std::vector<std::string_view> views(strings.begin(), strings.end());
    return advert_from_fields(txt_strings_to_fields(views), out, reason);
}

Advert sorted(Advert advert) {
    std::sort(advert.topics.begin(), advert.topics.end());
    std::sort(advert.services.begin(), advert.services.end());
    std::sort(advert.publications.begin(), advert.publications.end(),
              [](const Publication& a, const Publication& b) { return a.topic < b.topic; });
    return advert;
}

TEST(AdvertFields, RoundTripsThroughTxtStrings) {
    const Advert sut = sample();
    const AdvertFields fields = advert_to_fields(sut, kTxtLayout);
    Advert back;
    std::string reason;
    ASSERT_TRUE(parse_txt(txt_strings(fields), back, &reason)) << reason;
    EXPECT_EQ(back, sorted(sut));
    EXPECT_TRUE(back.complete);
}

TEST(AdvertFields, RoundTripsThroughFileText) {
    Advert sut = sample();
    sut.name = "multi\nline\\name";
    Advert back;
    std::string reason;
    ASSERT_TRUE(advert_from_file_text(advert_to_file_text(sut), back, &reason)) << reason;
    EXPECT_EQ(back, sorted(sut));
}

TEST(AdvertFields, EscapesSeparatorsInNames) {
    Advert sut = sample();
    sut.topics = {"a,b", "c;d", "e\\f", "\\", ",", ";;", "ünïcödé", std::string("nul\0byte", 8)};
    sut.services = {"x,y;z"};
    sut.publications = {{"p,q", "t;y\\pe", true}};
    Advert back;
    std::string reason;
    ASSERT_TRUE(parse_txt(txt_strings(advert_to_fields(sut)), back, &reason)) << reason;
    EXPECT_EQ(back, sorted(sut));
}

TEST(AdvertFields, SplitsLongListsIntoTxtStringsOf255BytesAtMost) {
    Advert sut = sample();
    sut.topics.clear();
    for (int i = 0; i < 40; ++i) {
        // Escapes at every position make sure a piece never ends inside one.
        sut.topics.push_back("topic,with;escapes\\" + std::to_string(i));
    }
    const AdvertFields fields = advert_to_fields(sut, {255, static_cast<std::size_t>(-1)});
    int pieces = 0;
    for (const auto& text : txt_strings(fields)) {
        EXPECT_LE(text.size(), 255u) << text;
        pieces += text.starts_with("t") && !text.starts_with("tcp=") ? 1 : 0;
    }
    EXPECT_GT(pieces, 3);
    Advert back;
    std::string reason;
    ASSERT_TRUE(parse_txt(txt_strings(fields), back, &reason)) << reason;
    EXPECT_EQ(back, sorted(sut));
}

TEST(AdvertFields, ANameLongerThanOneStringSpansPieces) {
    Advert sut = sample();
    sut.topics = {std::string(1000, 'x')};
    const AdvertFields fields = advert_to_fields(sut, {255, static_cast<std::size_t>(-1)});
    Advert back;
    ASSERT_TRUE(parse_txt(txt_strings(fields), back));
    EXPECT_EQ(back.topics, sut.topics);
}

TEST(AdvertFields, ListsOverTheBudgetAreLeftOutAndMarkedIncomplete) {
    // The long-topic-list case of issue 20: 200 topics of 100 characters.
    Advert sut = sample();
    sut.topics.clear();
    for (int i = 0; i < 200; ++i) {
        std::string topic = "/robot/sensors/" + std::to_string(i) + "/";
        topic.resize(100, 'x');
        sut.topics.push_back(topic);
    }
    const AdvertFields fields = advert_to_fields(sut, kTxtLayout);
    std::size_t total = 0;
    for (const auto& text : txt_strings(fields)) {
        EXPECT_LE(text.size(), 255u);
        total += 1 + text.size();
    }
    EXPECT_LE(total, kTxtLayout.budget);
    Advert back;
    ASSERT_TRUE(parse_txt(txt_strings(fields), back));
    EXPECT_FALSE(back.complete);
    EXPECT_TRUE(back.topics.empty());
    EXPECT_TRUE(back.services.empty());
    EXPECT_TRUE(back.publications.empty());
    EXPECT_EQ(back.revision, sut.revision);
    EXPECT_EQ(back.id, sut.id);

    // The same advert in a .node file has no budget: complete, every topic.
    Advert from_file;
    ASSERT_TRUE(advert_from_file_text(advert_to_file_text(sut), from_file));
    EXPECT_TRUE(from_file.complete);
    EXPECT_EQ(from_file.topics.size(), 200u);
}

TEST(AdvertFields, ExactFieldTooLongForTxtThrowsButNameIsCut) {
    Advert sut = sample();
    sut.name = std::string(300, 'n');
    const AdvertFields fields = advert_to_fields(sut, kTxtLayout);
    for (const auto& text : txt_strings(fields)) {
        EXPECT_LE(text.size(), 255u);
    }
    sut.host = std::string(300, 'h');
    EXPECT_THROW(advert_to_fields(sut, kTxtLayout), Error);
}

TEST(AdvertFields, RefusesMalformedRecords) {
    const std::vector<std::string> good = txt_strings(advert_to_fields(sample()));
    const auto with = [&](const std::string& extra) {
        std::vector<std::string> strings = good;
        strings.push_back(extra);
        return strings;
    };
    const auto refused = [](const std::vector<std::string>& strings) {
        Advert out;
        std::string reason;
        const bool ok = parse_txt(strings, out, &reason);
        EXPECT_TRUE(ok || !reason.empty());
        return !ok;
    };
    EXPECT_FALSE(refused(good));
    EXPECT_TRUE(refused(with("id=not-a-uuid")));
    EXPECT_TRUE(refused(with("id=../../etc/passwd0000000000000000000000")));
    EXPECT_TRUE(refused(with("tcp=70000")));
    EXPECT_TRUE(refused(with("tcp=-1")));
    EXPECT_TRUE(refused(with("pid=-5")));
    EXPECT_TRUE(refused(with("v=two")));
    EXPECT_TRUE(refused(with("addr=example.com")));
    EXPECT_TRUE(refused(with("unix=relative/path.sock")));
    EXPECT_TRUE(refused(with("name=" + std::string(256, 'n'))));
    EXPECT_TRUE(refused(with("t5=gap")));    // pieces must run 0, 1, ...
    EXPECT_TRUE(refused(with("t0=again")));  // a piece twice
    EXPECT_TRUE(refused({"v=2", "id=" + sample().id, "t0=dangling\\"}));
    EXPECT_TRUE(refused({"v=2", "id=" + sample().id, "t0=a,,b"}));  // an empty name
    EXPECT_TRUE(refused({"v=2", "id=" + sample().id, "t0=a;b"}));   // topics have no parts
    EXPECT_TRUE(refused({"v=2", "id=" + sample().id, "p0=a;b;x"}));
    EXPECT_TRUE(refused({"v=2", "id=" + sample().id, "p0=a;b;l;m"}));
    EXPECT_TRUE(refused({"v=2"}));                // no id
    EXPECT_TRUE(refused({"id=" + sample().id}));  // no version
    EXPECT_FALSE(refused({"v=2", "id=" + sample().id, "future=field"}));
}

TEST(CheckPeerAdvert, RefusesAnotherProtocolVersion) {
    const Advert self = sample();
    Advert peer = sample();
    peer.id = "0123abcd-0000-4000-8000-00000000000b";
    peer.unix_path.clear();
    peer.protocol = 1;
    std::string note;
    const std::string refused = check_peer_advert(peer, self, {"/run/user/1000/meshy"}, note);
    EXPECT_NE(refused.find("protocol 1"), std::string::npos) << refused;
    peer.protocol = self.protocol;
    EXPECT_EQ(check_peer_advert(peer, self, {"/run/user/1000/meshy"}, note), "");
}

TEST(CheckPeerAdvert, KeepsOnlyTheSocketOfThePeerInTheExpectedDirectory) {
    const Advert self = sample();
    Advert peer = sample();
    peer.id = "0123abcd-0000-4000-8000-00000000000b";
    const std::vector<std::string> dirs = expected_socket_dirs(self);
    ASSERT_FALSE(dirs.empty());
    EXPECT_EQ(dirs.front(), "/run/user/1000/meshy");
    std::string note;

    peer.unix_path = "/run/user/1000/meshy/" + peer.id + ".sock";
    EXPECT_EQ(check_peer_advert(peer, self, dirs, note), "");
    EXPECT_EQ(note, "");
    EXPECT_EQ(peer.unix_path, "/run/user/1000/meshy/" + peer.id + ".sock");

    for (const std::string& bad :
         {std::string("/etc/passwd"), "/run/user/1000/meshy/" + self.id + ".sock",
          "/run/user/1000/meshy/../meshy/" + peer.id + ".sock", "/elsewhere/" + peer.id + ".sock"}) {
        peer.unix_path = bad;
        EXPECT_EQ(check_peer_advert(peer, self, dirs, note), "") << bad;  // still reachable over TCP
        EXPECT_NE(note, "") << bad;
        EXPECT_EQ(peer.unix_path, "") << bad;
    }
}

TEST(CheckPeerAdvert, DefaultSocketDirectoryIsAlwaysExpected) {
    Advert self = sample();
    self.unix_path.clear();  // Unix sockets off here, but peers may have theirs
    const char* saved = std::getenv("XDG_RUNTIME_DIR");
    const std::string saved_value = saved != nullptr ? saved : "";
    ::setenv("XDG_RUNTIME_DIR", "/run/user/77", 1);
    const std::vector<std::string> dirs = expected_socket_dirs(self);
    if (saved != nullptr) {
        ::setenv("XDG_RUNTIME_DIR", saved_value.c_str(), 1);
    } else {
        ::unsetenv("XDG_RUNTIME_DIR");
    }
    ASSERT_EQ(dirs.size(), 1u);
    EXPECT_EQ(dirs.front(), "/run/user/77/meshy");
}

TEST(TruncateUtf8, NeverTearsACharacter) {
    EXPECT_EQ(truncate_utf8("ab\xc3\xa9", 3), "ab");  // é is two bytes
    EXPECT_EQ(truncate_utf8("abc", 3), "abc");
    EXPECT_EQ(truncate_utf8("abcd", 2), "ab");
}

TEST(AdvertFields, TxtRdataSplitsIntoStringsAndRefusesOneRunningPastTheEnd) {
    using namespace std::string_view_literals;
    std::vector<std::string_view> strings;
    ASSERT_TRUE(txt_rdata_strings("\x03v=2\x00\x05id=ab"sv, strings));
    EXPECT_EQ(strings, (std::vector<std::string_view>{"v=2", "", "id=ab"}));
    ASSERT_TRUE(txt_rdata_strings(""sv, strings));
    EXPECT_TRUE(strings.empty());
    EXPECT_FALSE(txt_rdata_strings("\x03v=2\x09short"sv, strings));
    EXPECT_TRUE(strings.empty());
}

}  // namespace
}  // namespace meshy::detail
