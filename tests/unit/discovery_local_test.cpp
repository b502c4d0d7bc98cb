// The same-host discovery backend against a private directory, plus backend selection and the
// DNS-SD type. Waits poll a condition instead of sleeping, so a slow machine only makes them slower.
#include <gtest/gtest.h>
#include <signal.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <functional>
#include <map>
#include <mutex>
#include <string>
#include <string_view>
#include <system_error>
#include <thread>
#include <vector>

#include "common/system.hpp"
#include "discovery/discovery.hpp"
#include "discovery_test_support.hpp"
#include "meshy/error.hpp"
#include "meshy/log.hpp"

namespace meshy::detail {
namespace {

using testing::eventually;
using testing::Recorder;

namespace fs = std::filesystem;

std::string host_name() {
    char buf[256] = {};
    ::gethostname(buf, sizeof buf - 1);
    return buf;
}

Advert make_advert(const std::string& id_tail, const std::string& domain = "test") {
    Advert advert;
    advert.id = "00000000-0000-4000-8000-" + id_tail;
    advert.name = "node-" + id_tail.substr(8);
    advert.host = host_name();
    advert.domain = domain;
    advert.protocol = 1;
    advert.tcp_port = 7447;
    advert.unix_path = default_socket_dir() + "/" + advert.id + ".sock";
    advert.pid = ::getpid();
    return advert;
}

// Writes a node file the way another process would (same keys, atomic rename).
void write_node_file(const fs::path& dir, const Advert& advert) {
    fs::create_directories(dir);
    const fs::path temp = dir / ("." + advert.id + ".tmp");
    {
        std::ofstream out(temp);
        out << "v=" << advert.protocol << "\nid=" << advert.id << "\nname=" << advert.name << "\nhost=" << advert.host
            << "\ndomain=" << advert.domain << "\ntcp=" << advert.tcp_port << "\nunix=" << advert.unix_path
            << "\npid=" << advert.pid << "\n";
        for (std::size_t i = 0; i < advert.topics.size(); ++i) {
            out << (i == 0 ? "t0=" : ",") << advert.topics[i];
        }
        out << (advert.topics.empty() ? "" : "\n");
    }
    fs::rename(temp, dir / (advert.id + ".node"));
}

// A process that stays alive until killed, to stand for a peer whose liveness the backend checks.
pid_t spawn_sleeper() {
    const pid_t pid = ::fork();
    if (pid == 0) {
        for (;;) {
            ::pause();
        }
    }
    return pid;
}

class LocalDiscovery : public ::testing::Test {
protected:
    void SetUp() override {
        std::string pattern = (fs::temp_directory_path() / "meshy-discovery-test-XXXXXX").string();
        ASSERT_NE(::mkdtemp(pattern.data()), nullptr);
        root_ = pattern;
        ::setenv("MESHY_LOCAL_DISCOVERY_DIR", root_.c_str(), 1);
    }

    void TearDown() override {
        ::unsetenv("MESHY_LOCAL_DISCOVERY_DIR");
        std::error_code ec;
        fs::remove_all(root_, ec);
    }

    fs::path domain_dir(const std::string& domain) const { return root_ / dns_sd_service_type(domain).substr(7, 8); }

    fs::path root_;
};

TEST_F(LocalDiscovery, SeesPeerOfSameDomain) {
    const Advert a = make_advert("00000000000a");
    const Advert b = make_advert("00000000000b");
    Recorder seen_by_a;
    Recorder seen_by_b;
    auto disc_a = make_local_discovery();
    auto disc_b = make_local_discovery();
    disc_a->start(a, seen_by_a.events());
    disc_b->start(b, seen_by_b.events());

    ASSERT_TRUE(eventually([&] { return seen_by_a.sees(b.id) && seen_by_b.sees(a.id); }));
    EXPECT_FALSE(seen_by_a.sees(a.id));
    EXPECT_FALSE(seen_by_b.sees(b.id));
    const Advert got = seen_by_a.advert(b.id);
    EXPECT_EQ(got.name, b.name);
    EXPECT_EQ(got.host, b.host);
    EXPECT_EQ(got.domain, b.domain);
    EXPECT_EQ(got.protocol, b.protocol);
    EXPECT_EQ(got.tcp_port, b.tcp_port);
    EXPECT_EQ(got.tcp_address, "127.0.0.1");  // same host, no explicit address advertised
    EXPECT_EQ(got.unix_path, b.unix_path);
    EXPECT_EQ(got.pid, b.pid);
    EXPECT_STREQ(disc_a->backend_name(), "local");
    EXPECT_EQ(fs::status(domain_dir("test")).permissions() & fs::perms::all, fs::perms::owner_all);
}

TEST_F(LocalDiscovery, ReportsPeerDownWhenItStops) {
    const Advert a = make_advert("00000000000a");
    const Advert b = make_advert("00000000000b");
    Recorder seen_by_a;
    auto disc_a = make_local_discovery();
    auto disc_b = make_local_discovery();
    disc_a->start(a, seen_by_a.events());
    disc_b->start(b, {});
    ASSERT_TRUE(eventually([&] { return seen_by_a.sees(b.id); }));

    disc_b->stop();
    disc_b->stop();  // idempotent
    EXPECT_FALSE(fs::exists(domain_dir("test") / (b.id + ".node")));
    EXPECT_TRUE(eventually([&] { return seen_by_a.saw_down(b.id); }));
}

TEST_F(LocalDiscovery, IgnoresOtherDomains) {
    const Advert a = make_advert("00000000000a", "alpha");
    const Advert other = make_advert("00000000000c", "beta");
    // Same directory as alpha but another domain: what a hash collision between domains looks like.
    Advert colliding = make_advert("00000000000d", "gamma");
    write_node_file(domain_dir("alpha"), colliding);
    const Advert marker = make_advert("00000000000e", "alpha");

    Recorder seen_by_a;
    auto disc_a = make_local_discovery();
    auto disc_other = make_local_discovery();
    auto disc_marker = make_local_discovery();
    disc_other->start(other, {});
    disc_a->start(a, seen_by_a.events());
    disc_marker->start(marker, {});

    // Once the marker, started last, is seen, every earlier file has been scanned too.
    ASSERT_TRUE(eventually([&] { return seen_by_a.sees(marker.id); }));
    EXPECT_FALSE(seen_by_a.sees(other.id));
    EXPECT_FALSE(seen_by_a.sees(colliding.id));
    EXPECT_EQ(seen_by_a.up_count(other.id), 0);
    EXPECT_EQ(seen_by_a.up_count(colliding.id), 0);
}

TEST_F(LocalDiscovery, ReportsDeadProcessDownAndRemovesItsFile) {
    const pid_t sleeper = spawn_sleeper();
    ASSERT_GT(sleeper, 0);
    Advert peer = make_advert("00000000000f");
    peer.pid = sleeper;
    write_node_file(domain_dir("test"), peer);
    const fs::path peer_file = domain_dir("test") / (peer.id + ".node");

    const Advert a = make_advert("00000000000a");
    Recorder seen_by_a;
    auto disc_a = make_local_discovery();
    disc_a->start(a, seen_by_a.events());
    ASSERT_TRUE(eventually([&] { return seen_by_a.sees(peer.id); }));

    ::kill(sleeper, SIGKILL);
    ::waitpid(sleeper, nullptr, 0);
    EXPECT_TRUE(eventually([&] { return seen_by_a.saw_down(peer.id); }));
    EXPECT_TRUE(eventually([&] { return !fs::exists(peer_file); }));
}

TEST_F(LocalDiscovery, RemovesStaleFileFoundAtStartWithoutReportingIt) {
    const pid_t child = ::fork();
    if (child == 0) {
        ::_exit(0);
    }
    ASSERT_GT(child, 0);
    ::waitpid(child, nullptr, 0);  // reaped: its pid now names no process
    Advert stale = make_advert("000000000010");
    stale.pid = child;
    write_node_file(domain_dir("test"), stale);
    const fs::path stale_file = domain_dir("test") / (stale.id + ".node");

    Recorder seen_by_a;
    auto disc_a = make_local_discovery();
    disc_a->start(make_advert("00000000000a"), seen_by_a.events());
    EXPECT_TRUE(eventually([&] { return !fs::exists(stale_file); }));
    EXPECT_EQ(seen_by_a.up_count(stale.id), 0);
}

TEST_F(LocalDiscovery, ReportsChangedAdvertAgain) {
    Advert peer = make_advert("000000000011");
    write_node_file(domain_dir("test"), peer);
    Recorder seen_by_a;
    auto disc_a = make_local_discovery();
    disc_a->start(make_advert("00000000000a"), seen_by_a.events());
    ASSERT_TRUE(eventually([&] { return seen_by_a.sees(peer.id); }));

    peer.tcp_port = 7500;
    peer.name = "renamed";
    write_node_file(domain_dir("test"), peer);
    EXPECT_TRUE(eventually([&] { return seen_by_a.advert(peer.id).tcp_port == 7500; }));
    EXPECT_EQ(seen_by_a.advert(peer.id).name, "renamed");
    EXPECT_EQ(seen_by_a.up_count(peer.id), 2);
}

TEST_F(LocalDiscovery, RewritesOwnFileWhenDeleted) {
    const Advert a = make_advert("00000000000a");
    auto disc_a = make_local_discovery();
    disc_a->start(a, {});
    const fs::path own = domain_dir("test") / (a.id + ".node");
    ASSERT_TRUE(fs::exists(own));
    fs::remove(own);
    EXPECT_TRUE(eventually([&] { return fs::exists(own); }));
    disc_a->stop();
    EXPECT_FALSE(fs::exists(own));
}

TEST_F(LocalDiscovery, StopReturnsQuickly) {
    auto disc_a = make_local_discovery();
    disc_a->start(make_advert("00000000000a"), {});
    const auto before = std::chrono::steady_clock::now();
    disc_a->stop();
    EXPECT_LT(std::chrono::steady_clock::now() - before,
              std::chrono::milliseconds(250));  // a woken wait, not a 100 ms poll period
}

TEST_F(LocalDiscovery, UpdateCarriesListsToPeers) {
    Advert a = make_advert("00000000000a");
    Advert b = make_advert("00000000000b");
    Recorder seen_by_a;
    auto disc_a = make_local_discovery();
    auto disc_b = make_local_discovery();
    disc_a->start(a, seen_by_a.events());
    disc_b->start(b, {});
    ASSERT_TRUE(eventually([&] { return seen_by_a.sees(b.id); }));
    EXPECT_TRUE(seen_by_a.advert(b.id).complete);
    EXPECT_TRUE(seen_by_a.advert(b.id).topics.empty());

    b.revision = 1;
    b.topics = {"chatter", "odom"};
    b.services = {"add"};
    b.publications = {{"pose", "geometry/Pose", true}};
    disc_b->update(b);
    ASSERT_TRUE(eventually([&] { return seen_by_a.advert(b.id).revision == 1; }));
    const Advert got = seen_by_a.advert(b.id);
    EXPECT_EQ(got.topics, b.topics);
    EXPECT_EQ(got.services, b.services);
    EXPECT_EQ(got.publications, b.publications);
    EXPECT_EQ(seen_by_a.up_count(b.id), 2);
}

TEST_F(LocalDiscovery, BurstOfUpdatesIsCoalesced) {
    Advert a = make_advert("00000000000a");
    Advert b = make_advert("00000000000b");
    Recorder seen_by_a;
    auto disc_a = make_local_discovery();
    auto disc_b = make_local_discovery();
    disc_a->start(a, seen_by_a.events());
    disc_b->start(b, {});
    ASSERT_TRUE(eventually([&] { return seen_by_a.sees(b.id); }));

    // 200 listen() calls in a row, as a node setting up would make them.
    for (std::uint32_t i = 1; i <= 200; ++i) {
        b.revision = i;
        b.topics.push_back("topic/" + std::to_string(1000 + i));
        disc_b->update(b);
    }
    ASSERT_TRUE(eventually([&] { return seen_by_a.advert(b.id).revision == 200; }));
    EXPECT_EQ(seen_by_a.advert(b.id).topics.size(), 200u);
    // One write a 50 ms window: a handful of reports, not 200 (generous for a loaded machine).
    EXPECT_LT(seen_by_a.up_count(b.id), 20);
}

TEST_F(LocalDiscovery, SeesFileWrittenInPlace) {
    Recorder seen_by_a;
    auto disc_a = make_local_discovery();
    disc_a->start(make_advert("00000000000a"), seen_by_a.events());
    Advert peer = make_advert("000000000012");
    const fs::path file = domain_dir("test") / (peer.id + ".node");
    {
        std::ofstream out(file);  // no rename: a close after writing is what the watch sees
        out << "v=1\nid=" << peer.id << "\nname=inplace\nhost=" << peer.host
            << "\ndomain=test\ntcp=0\nunix=\npid=" << peer.pid << "\n";
    }
    ASSERT_TRUE(eventually([&] { return seen_by_a.sees(peer.id); }));
    EXPECT_EQ(seen_by_a.advert(peer.id).name, "inplace");
    fs::remove(file);
    EXPECT_TRUE(eventually([&] { return seen_by_a.saw_down(peer.id); }));
}

TEST_F(LocalDiscovery, RefusesAnotherProtocolVersionWithOneLogLine) {
    std::mutex mutex;
    std::vector<std::string> warnings;
    set_log_sink([&](LogLevel level, std::string_view message) {
        if (level == LogLevel::warn) {
            std::lock_guard lock(mutex);
            warnings.emplace_back(message);
        }
    });
    Advert old_node = make_advert("000000000013");
    old_node.protocol = 0;
    write_node_file(domain_dir("test"), old_node);
    Recorder seen_by_a;
    auto disc_a = make_local_discovery();
    disc_a->start(make_advert("00000000000a"), seen_by_a.events());
    old_node.name = "rewritten";  // a second read of the same peer logs nothing more
    write_node_file(domain_dir("test"), old_node);
    const Advert marker = make_advert("00000000000e");
    write_node_file(domain_dir("test"), marker);
    ASSERT_TRUE(eventually([&] { return seen_by_a.sees(marker.id); }));
    disc_a->stop();
    set_log_sink({});
    EXPECT_EQ(seen_by_a.up_count(old_node.id), 0);
    std::lock_guard lock(mutex);
    ASSERT_EQ(warnings.size(), 1u);
    EXPECT_NE(warnings[0].find("speaks protocol 0, this node speaks 1"), std::string::npos) << warnings[0];
}

TEST_F(LocalDiscovery, ClearsAUnixSocketOutsideTheSocketDirectory) {
    Advert peer = make_advert("000000000014");
    peer.unix_path = "/etc/passwd";
    write_node_file(domain_dir("test"), peer);
    Recorder seen_by_a;
    auto disc_a = make_local_discovery();
    disc_a->start(make_advert("00000000000a"), seen_by_a.events());
    ASSERT_TRUE(eventually([&] { return seen_by_a.sees(peer.id); }));
    EXPECT_EQ(seen_by_a.advert(peer.id).unix_path, "");
    EXPECT_EQ(seen_by_a.advert(peer.id).tcp_port, peer.tcp_port);
}

TEST_F(LocalDiscovery, IgnoresMalformedFiles) {
    fs::create_directories(domain_dir("test"));
    {
        std::ofstream(domain_dir("test") / "00000000-0000-4000-8000-000000000015.node") << "v=1\nid=nope\n";
        std::ofstream(domain_dir("test") / "00000000-0000-4000-8000-000000000016.node")
            << "v=1\nid=00000000-0000-4000-8000-000000000016\nt0=a\\";
    }
    Recorder seen_by_a;
    auto disc_a = make_local_discovery();
    disc_a->start(make_advert("00000000000a"), seen_by_a.events());
    const Advert marker = make_advert("00000000000e");
    write_node_file(domain_dir("test"), marker);
    ASSERT_TRUE(eventually([&] { return seen_by_a.sees(marker.id); }));
    EXPECT_EQ(seen_by_a.up_count("00000000-0000-4000-8000-000000000015"), 0);
    EXPECT_EQ(seen_by_a.up_count("00000000-0000-4000-8000-000000000016"), 0);
}

TEST_F(LocalDiscovery, RecoversWhenTheDirectoryIsRemoved) {
    const Advert a = make_advert("00000000000a");
    Recorder seen_by_a;
    auto disc_a = make_local_discovery();
    disc_a->start(a, seen_by_a.events());
    const Advert b = make_advert("00000000000b");
    write_node_file(domain_dir("test"), b);
    ASSERT_TRUE(eventually([&] { return seen_by_a.sees(b.id); }));

    fs::remove_all(domain_dir("test"));
    EXPECT_TRUE(eventually([&] { return seen_by_a.saw_down(b.id); }));
    // The directory and our own file come back, and so does the watch on them.
    ASSERT_TRUE(eventually([&] { return fs::exists(domain_dir("test") / (a.id + ".node")); }));
    write_node_file(domain_dir("test"), b);
    EXPECT_TRUE(eventually([&] { return seen_by_a.sees(b.id); }));
}

TEST_F(LocalDiscovery, UsesTwoDescriptorsWhateverTheNumberOfPeers) {
    const auto open_fds = [] {
        return std::distance(fs::directory_iterator("/proc/self/fd"), fs::directory_iterator{});
    };
    for (int i = 0; i < 50; ++i) {
        char tail[13];
        std::snprintf(tail, sizeof tail, "%012x", 0x100 + i);
        write_node_file(domain_dir("test"), make_advert(tail));
    }
    const auto before = open_fds();
    Recorder seen_by_a;
    auto disc_a = make_local_discovery();
    disc_a->start(make_advert("00000000000a"), seen_by_a.events());
    ASSERT_TRUE(eventually([&] { return seen_by_a.sees(make_advert("000000000131").id); }));
    EXPECT_LE(open_fds() - before, 2);  // inotify + eventfd (the thread holds no other)
}

TEST_F(LocalDiscovery, WithoutInotifyWatchesTheDirectoryModificationTime) {
    ::setenv("MESHY_LOCAL_DISCOVERY_POLL", "1", 1);  // as when the user's inotify instances are used up
    Advert a = make_advert("00000000000a");
    Advert b = make_advert("00000000000b");
    Recorder seen_by_a;
    auto disc_a = make_local_discovery();
    auto disc_b = make_local_discovery();
    disc_a->start(a, seen_by_a.events());
    disc_b->start(b, {});
    ::unsetenv("MESHY_LOCAL_DISCOVERY_POLL");
    ASSERT_TRUE(eventually([&] { return seen_by_a.sees(b.id); }));
    for (std::uint32_t i = 1; i <= 3; ++i) {  // changes in quick succession, each seen
        b.revision = i;
        b.topics.push_back("t" + std::to_string(i));
        disc_b->update(b);
        ASSERT_TRUE(eventually([&] { return seen_by_a.advert(b.id).revision == i; }));
    }
    disc_b->stop();
    EXPECT_TRUE(eventually([&] { return seen_by_a.saw_down(b.id); }));
}

TEST(DnsSdServiceType, HasExpectedShape) {
    const std::string type = dns_sd_service_type("default");
    EXPECT_EQ(type, "_meshy-933b5bde._tcp");  // FNV-1a 32 of "default"
    ASSERT_EQ(type.size(), 20u);
    const std::string service = type.substr(0, type.find('.'));
    EXPECT_LE(service.size(), 15u);  // DNS-SD's limit on the service name
    EXPECT_EQ(type.substr(service.size()), "._tcp");
    for (const char c : type.substr(7, 8)) {
        EXPECT_TRUE((c >= '0' && c <= '9') || (c >= 'a' && c <= 'f')) << c;
    }
    EXPECT_EQ(dns_sd_service_type(""), "_meshy-811c9dc5._tcp");  // the FNV-1a offset basis
    EXPECT_NE(dns_sd_service_type("alpha"), dns_sd_service_type("beta"));
}

class MakeDiscovery : public LocalDiscovery {
protected:
    void TearDown() override {
        ::unsetenv("MESHY_DISCOVERY");
        set_log_sink({});
        LocalDiscovery::TearDown();
    }
};

TEST_F(MakeDiscovery, EnvironmentForcesLocal) {
    ::setenv("MESHY_DISCOVERY", "local", 1);
    auto discovery = make_discovery(DiscoveryBackend::avahi);
    EXPECT_STREQ(discovery->backend_name(), "local");
}

TEST_F(MakeDiscovery, UnknownEnvironmentValueIsRejected) {
    ::setenv("MESHY_DISCOVERY", "bonjour", 1);
    try {
        make_discovery(DiscoveryBackend::automatic);
        FAIL() << "expected meshy::Error";
    } catch (const Error& e) {
        EXPECT_EQ(e.code_value(), errc::invalid_argument);
    }
}

TEST_F(MakeDiscovery, AutomaticFallsBackToLocalWithoutDaemon) {
    // No bus at this address, so Avahi is unreachable whatever runs on this machine.
    const char* saved = std::getenv("DBUS_SYSTEM_BUS_ADDRESS");
    const std::string saved_value = saved != nullptr ? saved : "";
    ::setenv("DBUS_SYSTEM_BUS_ADDRESS", ("unix:path=" + (root_ / "no-bus.sock").string()).c_str(), 1);
    std::mutex mutex;
    std::vector<std::string> info_lines;
    set_log_sink([&](LogLevel level, std::string_view message) {
        if (level == LogLevel::info) {
            std::lock_guard lock(mutex);
            info_lines.emplace_back(message);
        }
    });
    const LogLevel saved_level = log_level();
    set_log_level(LogLevel::info);

    auto discovery = make_discovery(DiscoveryBackend::automatic);
    discovery->start(make_advert("00000000000a"), {});
    EXPECT_STREQ(discovery->backend_name(), "local");
    EXPECT_TRUE(fs::exists(domain_dir("test") / (make_advert("00000000000a").id + ".node")));
    discovery->stop();

    set_log_sink({});
    set_log_level(saved_level);
    if (saved != nullptr) {
        ::setenv("DBUS_SYSTEM_BUS_ADDRESS", saved_value.c_str(), 1);
    } else {
        ::unsetenv("DBUS_SYSTEM_BUS_ADDRESS");
    }
    std::lock_guard lock(mutex);
    ASSERT_EQ(info_lines.size(), 1u);
    EXPECT_NE(info_lines[0].find("no avahi-daemon reachable; using same-host discovery"), std::string::npos);
}

}  // namespace
}  // namespace meshy::detail
