// The Avahi backend against the real avahi-daemon on $DBUS_SYSTEM_BUS_ADDRESS (scripts/avahi-lo.sh
// ensure starts a private one on lo); skipped when none is reachable. Each test uses a domain of
// its own, so that other tests publishing at the same time are never seen.
#include <gtest/gtest.h>
#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <functional>
#include <map>
#include <mutex>
#include <random>
#include <string>
#include <string_view>
#include <thread>
#include <vector>

#include "common/system.hpp"
#include "discovery/discovery.hpp"
#include "discovery_test_support.hpp"
#include "meshy/error.hpp"
#include "meshy/log.hpp"

namespace meshy::detail {
namespace {

using testing::Recorder;

// mDNS takes about a second a change on a loaded machine: a generous deadline, still bounded.
bool settles(const std::function<bool()>& condition) {
    return testing::eventually(condition, std::chrono::seconds(10));
}

std::string unique_domain() {
    std::random_device rd;
    return "avahi-test-" + std::to_string(::getpid()) + "-" + std::to_string(rd());
}

Advert make_advert(const std::string& domain, int n) {
    Advert advert;
    char tail[13];
    std::snprintf(tail, sizeof tail, "%012x", n);
    advert.id = "00000000-0000-4000-8000-" + std::string(tail);
    advert.name = "avahi-test-" + std::to_string(n);
    advert.host = host_name();
    advert.domain = domain;
    advert.protocol = 2;
    advert.tcp_port = static_cast<std::uint16_t>(40000 + n);
    advert.unix_path = default_socket_dir() + "/" + advert.id + ".sock";
    advert.pid = ::getpid();
    return advert;
}

class AvahiDiscovery : public ::testing::Test {
protected:
    // Starts a backend, or skips the test when no avahi-daemon answers.
    std::unique_ptr<Discovery> started(const Advert& self, DiscoveryEvents events) {
        auto sut = make_avahi_discovery();
        try {
            sut->start(self, std::move(events));
        } catch (const Error& e) {
            if (e.code_value() == errc::discovery_unavailable) {
                std::printf("%s\n", e.what());
                return nullptr;
            }
            throw;
        }
        return sut;
    }

    const std::string domain_ = unique_domain();
};

#define START_OR_SKIP(var, advert, events)                                          \
    auto var = started(advert, events);                                             \
    if (var == nullptr) {                                                           \
        GTEST_SKIP() << "no avahi-daemon (eval \"$(scripts/avahi-lo.sh ensure)\")"; \
    }

TEST_F(AvahiDiscovery, UpdateReachesAPeer) {
    const Advert a = make_advert(domain_, 1);
    Advert b = make_advert(domain_, 2);
    Recorder seen_by_a;
    START_OR_SKIP(disc_a, a, seen_by_a.events());
    START_OR_SKIP(disc_b, b, {});
    ASSERT_TRUE(settles([&] { return seen_by_a.sees(b.id); }));
    EXPECT_TRUE(seen_by_a.advert(b.id).topics.empty());

    b.revision = 1;
    b.topics = {"chatter", "odom"};
    b.services = {"add"};
    b.publications = {{"pose", "geometry/Pose", false}, {"tf_static", "", true}};
    const auto before = std::chrono::steady_clock::now();
    disc_b->update(b);
    ASSERT_TRUE(settles([&] { return seen_by_a.advert(b.id).revision == 1; }));
    const auto delay = std::chrono::duration_cast<std::chrono::milliseconds>(std::chrono::steady_clock::now() - before);
    std::printf("update -> seen by a peer: %lld ms\n", static_cast<long long>(delay.count()));
    const Advert got = seen_by_a.advert(b.id);
    EXPECT_TRUE(got.complete);
    EXPECT_EQ(got.topics, b.topics);
    EXPECT_EQ(got.services, b.services);
    EXPECT_EQ(got.publications, b.publications);
    EXPECT_EQ(got.tcp_port, b.tcp_port);
    if (std::getenv("MESHY_MEASURE_UPDATES") != nullptr) {
        for (std::uint32_t rev = 2; rev < 12; ++rev) {
            b.revision = rev;
            const auto t0 = std::chrono::steady_clock::now();
            disc_b->update(b);
            ASSERT_TRUE(settles([&] { return seen_by_a.advert(b.id).revision == rev; }));
            std::printf("update %u: %lld ms\n", rev,
                        static_cast<long long>(
                            std::chrono::duration_cast<std::chrono::milliseconds>(std::chrono::steady_clock::now() - t0)
                                .count()));
        }
    }
}

TEST_F(AvahiDiscovery, BurstOfUpdatesIsCoalesced) {
    const Advert a = make_advert(domain_, 1);
    Advert b = make_advert(domain_, 2);
    Recorder seen_by_a;
    START_OR_SKIP(disc_a, a, seen_by_a.events());
    START_OR_SKIP(disc_b, b, {});
    ASSERT_TRUE(settles([&] { return seen_by_a.sees(b.id); }));
    for (std::uint32_t i = 1; i <= 30; ++i) {
        b.revision = i;
        b.topics.push_back("t" + std::to_string(i));
        disc_b->update(b);
    }
    ASSERT_TRUE(settles([&] { return seen_by_a.advert(b.id).revision == 30; }));
    EXPECT_EQ(seen_by_a.advert(b.id).topics.size(), 30u);
    EXPECT_LT(seen_by_a.up_count(b.id), 10);  // one republish a 50 ms window, not 30
}

// An update replaces the node's advert record; the old record's removal, which the daemon reports
// about a second later, must not take the node down. Stopping does.
TEST_F(AvahiDiscovery, UpdatesKeepThePeerUpAndStopTakesItDown) {
    const Advert a = make_advert(domain_, 1);
    Advert b = make_advert(domain_, 2);
    Recorder seen_by_a;
    START_OR_SKIP(disc_a, a, seen_by_a.events());
    START_OR_SKIP(disc_b, b, {});
    ASSERT_TRUE(settles([&] { return seen_by_a.sees(b.id); }));
    for (std::uint32_t rev = 1; rev <= 3; ++rev) {
        b.revision = rev;
        b.topics = {"topic" + std::to_string(rev)};
        disc_b->update(b);
        ASSERT_TRUE(settles([&] { return seen_by_a.advert(b.id).revision == rev; }));
    }
    // Past the 1 s a replaced record stays in a cache (mDNS goodbye), and some margin.
    EXPECT_FALSE(testing::eventually([&] { return seen_by_a.saw_down(b.id); }, std::chrono::milliseconds(2500)));
    EXPECT_EQ(seen_by_a.advert(b.id).topics, b.topics);
    disc_b->stop();
    EXPECT_TRUE(settles([&] { return seen_by_a.saw_down(b.id); }));
}

TEST_F(AvahiDiscovery, LongTopicListIsAnnouncedIncomplete) {
    const Advert a = make_advert(domain_, 1);
    Advert b = make_advert(domain_, 2);
    Recorder seen_by_a;
    START_OR_SKIP(disc_a, a, seen_by_a.events());
    START_OR_SKIP(disc_b, b, {});
    ASSERT_TRUE(settles([&] { return seen_by_a.sees(b.id); }));
    b.revision = 5;
    for (int i = 0; i < 200; ++i) {
        std::string topic = "/robot/sensors/" + std::to_string(i) + "/";
        topic.resize(100, 'x');
        b.topics.push_back(topic);
    }
    disc_b->update(b);
    ASSERT_TRUE(settles([&] { return seen_by_a.advert(b.id).revision == 5; }));
    EXPECT_FALSE(seen_by_a.advert(b.id).complete);
    EXPECT_TRUE(seen_by_a.advert(b.id).topics.empty());
    // Back under the budget: complete again.
    b.revision = 6;
    b.topics.resize(3);
    disc_b->update(b);
    ASSERT_TRUE(settles([&] { return seen_by_a.advert(b.id).revision == 6; }));
    EXPECT_TRUE(seen_by_a.advert(b.id).complete);
    EXPECT_EQ(seen_by_a.advert(b.id).topics.size(), 3u);
}

TEST_F(AvahiDiscovery, RefusesAnotherProtocolVersion) {
    const Advert a = make_advert(domain_, 1);
    Advert old_node = make_advert(domain_, 3);
    old_node.protocol = 1;
    const Advert marker = make_advert(domain_, 4);
    Recorder seen_by_a;
    std::mutex mutex;
    std::vector<std::string> warnings;
    set_log_sink([&](LogLevel level, std::string_view message) {
        if (level == LogLevel::warn) {
            std::lock_guard lock(mutex);
            warnings.emplace_back(message);
        }
    });
    START_OR_SKIP(disc_old, old_node, {});
    START_OR_SKIP(disc_a, a, seen_by_a.events());
    START_OR_SKIP(disc_marker, marker, {});
    const bool seen_both = settles([&] {
        std::lock_guard lock(mutex);
        return seen_by_a.sees(marker.id) && std::any_of(warnings.begin(), warnings.end(), [](const std::string& w) {
                   return w.find("this node speaks 2") != std::string::npos;
               });
    });
    disc_a->stop();
    set_log_sink({});
    ASSERT_TRUE(seen_both);
    EXPECT_EQ(seen_by_a.up_count(old_node.id), 0);
    std::lock_guard lock(mutex);
    ASSERT_GE(warnings.size(), 1u);
    // The log sink is the process's: the old node's own refusals of the others ("speaks protocol 2,
    // this node speaks 1") may come first.
    const bool refused_old = std::any_of(warnings.begin(), warnings.end(), [](const std::string& w) {
        return w.find("speaks protocol 1, this node speaks 2") != std::string::npos;
    });
    EXPECT_TRUE(refused_old) << warnings[0];
}

}  // namespace
}  // namespace meshy::detail
