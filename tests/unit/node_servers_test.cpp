// Where a node accepts connections: its Unix socket and TCP port, their errors, and close().
#include "node/node_servers.hpp"

#include <arpa/inet.h>
#include <fcntl.h>
#include <gtest/gtest.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <unistd.h>

#include <asio/io_context.hpp>
#include <asio/strand.hpp>
#include <atomic>
#include <chrono>
#include <cstdlib>
#include <filesystem>
#include <thread>

#include "eventually.hpp"
#include "meshy/error.hpp"

using namespace meshy;
using namespace meshy::detail;
using meshy::test::eventually;

namespace {

/// An io_context on its own thread, for the acceptors' loops.
class Loop {
public:
    Loop() : guard_(asio::make_work_guard(io_)), thread_([this] { io_.run(); }) {}
    ~Loop() {
        guard_.reset();
        io_.stop();
        thread_.join();
    }
    asio::any_io_executor executor() { return io_.get_executor(); }

private:
    asio::io_context io_;
    asio::executor_work_guard<asio::io_context::executor_type> guard_;
    std::thread thread_;
};

/// A fresh directory for the Unix socket, removed at the end.
class TempDir {
public:
    TempDir() {
        char name[] = "/tmp/meshy-servers-XXXXXX";
        path_ = ::mkdtemp(name);
    }
    ~TempDir() { std::filesystem::remove_all(path_); }
    const std::string& path() const { return path_; }

private:
    std::string path_;
};

/// Connects a plain socket; @returns the connect() errno (0 when it connected).
int connect_tcp(std::uint16_t port) {
    const int fd = ::socket(AF_INET, SOCK_STREAM, 0);
    sockaddr_in sa{};
    sa.sin_family = AF_INET;
    sa.sin_port = htons(port);
    sa.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    const int rc = ::connect(fd, reinterpret_cast<const sockaddr*>(&sa), sizeof sa);
    const int err = rc == 0 ? 0 : errno;
    ::close(fd);
    return err;
}

int connect_unix(const std::string& path) {
    const int fd = ::socket(AF_UNIX, SOCK_STREAM, 0);
    sockaddr_un sa{};
    sa.sun_family = AF_UNIX;
    path.copy(sa.sun_path, sizeof sa.sun_path - 1);
    const int rc = ::connect(fd, reinterpret_cast<const sockaddr*>(&sa), sizeof sa);
    const int err = rc == 0 ? 0 : errno;
    ::close(fd);
    return err;
}

bool is_socket(const std::string& path) {
    struct stat st {};
    return ::stat(path.c_str(), &st) == 0 && S_ISSOCK(st.st_mode);
}

NodeOptions loopback_options(const std::string& dir) {
    NodeOptions o;
    o.listen_host = "127.0.0.1";
    o.unix_socket_dir = dir;
    return o;
}

struct Accepted {
    std::atomic<int> unix_count{0};
    std::atomic<int> tcp_count{0};
    NodeServers::Adopt adopt() {
        return [this](Connection::Socket, bool is_unix) -> std::shared_ptr<Connection> {
            ++(is_unix ? unix_count : tcp_count);
            return nullptr;  // the socket closes
        };
    }
};

}  // namespace

TEST(NodeServersTest, ListensOnAUnixSocketNamedForTheNodeAndOnATcpPortTheSystemPicks) {
    Loop loop;
    TempDir dir;
    Accepted accepted;
    NodeServers servers(loop.executor(), loop.executor());
    servers.open(loopback_options(dir.path()), "node-1", accepted.adopt());

    EXPECT_EQ(servers.unix_path(), dir.path() + "/node-1.sock");
    EXPECT_TRUE(is_socket(servers.unix_path()));
    ASSERT_NE(servers.tcp_port(), 0);

    EXPECT_EQ(connect_unix(servers.unix_path()), 0);
    EXPECT_EQ(connect_tcp(servers.tcp_port()), 0);
    EXPECT_TRUE(eventually([&] { return accepted.unix_count == 1 && accepted.tcp_count == 1; }))
        << accepted.unix_count << " Unix and " << accepted.tcp_count << " TCP connections adopted";
}

TEST(NodeServersTest, OnlyWhatTheOptionsAllowIsOpened) {
    Loop loop;
    TempDir dir;
    Accepted accepted;
    auto tcp_only = loopback_options(dir.path());
    tcp_only.allow_unix = false;
    NodeServers a(loop.executor(), loop.executor());
    a.open(tcp_only, "tcp-only", accepted.adopt());
    EXPECT_TRUE(a.unix_path().empty());
    EXPECT_NE(a.tcp_port(), 0);
    EXPECT_FALSE(std::filesystem::exists(dir.path() + "/tcp-only.sock"));

    auto unix_only = loopback_options(dir.path());
    unix_only.allow_tcp = false;
    NodeServers b(loop.executor(), loop.executor());
    b.open(unix_only, "unix-only", accepted.adopt());
    EXPECT_TRUE(is_socket(b.unix_path()));
    EXPECT_EQ(b.tcp_port(), 0);
}

TEST(NodeServersTest, CloseRemovesTheUnixPathAndStopsAccepting) {
    Loop loop;
    TempDir dir;
    Accepted accepted;
    NodeServers servers(loop.executor(), loop.executor());
    servers.open(loopback_options(dir.path()), "node-2", accepted.adopt());
    const auto path = servers.unix_path();
    const auto port = servers.tcp_port();

    servers.close();
    EXPECT_FALSE(std::filesystem::exists(path));
    EXPECT_EQ(servers.unix_path(), path);  // still says where it was
    // The listening socket closes on the accept loop's executor, soon after close() returns.
    EXPECT_TRUE(eventually([&] { return connect_tcp(port) == ECONNREFUSED; }));
    servers.close();  // again: harmless
}

TEST(NodeServersTest, AFileLeftAtTheNodesPathIsReplaced) {
    // As a killed process with this id would leave it.
    Loop loop;
    TempDir dir;
    Accepted accepted;
    const auto path = dir.path() + "/same-id.sock";
    ::close(::open(path.c_str(), O_CREAT | O_WRONLY, 0600));
    NodeServers servers(loop.executor(), loop.executor());
    servers.open(loopback_options(dir.path()), "same-id", accepted.adopt());
    EXPECT_TRUE(is_socket(path));
    EXPECT_EQ(connect_unix(path), 0);
}

TEST(NodeServersTest, AListenHostThatIsNotAnAddressIsAnInvalidArgumentAndLeavesNothingOpen) {
    Loop loop;
    TempDir dir;
    Accepted accepted;
    auto options = loopback_options(dir.path());
    options.listen_host = "localhost";
    NodeServers servers(loop.executor(), loop.executor());
    try {
        servers.open(options, "node-3", accepted.adopt());
        FAIL() << "open() accepted listen_host 'localhost'";
    } catch (const Error& e) {
        EXPECT_EQ(e.code_value(), errc::invalid_argument);
        EXPECT_NE(std::string(e.what()).find("'localhost' is not an IP address"), std::string::npos) << e.what();
    }
    EXPECT_FALSE(std::filesystem::exists(dir.path() + "/node-3.sock"));  // the Unix socket was closed
}

TEST(NodeServersTest, ATcpPortInUseIsAnIoErrorNamingThePort) {
    Loop loop;
    TempDir dir;
    Accepted accepted;
    NodeServers first(loop.executor(), loop.executor());
    first.open(loopback_options(dir.path()), "first", accepted.adopt());

    auto options = loopback_options(dir.path());
    options.listen_port = first.tcp_port();
    NodeServers second(loop.executor(), loop.executor());
    try {
        second.open(options, "second", accepted.adopt());
        FAIL() << "two nodes listened on port " << first.tcp_port();
    } catch (const Error& e) {
        EXPECT_EQ(e.code_value(), errc::io_error);
        EXPECT_NE(std::string(e.what()).find("127.0.0.1:" + std::to_string(first.tcp_port())), std::string::npos)
            << e.what();
    }
    EXPECT_FALSE(std::filesystem::exists(dir.path() + "/second.sock"));
    EXPECT_EQ(connect_tcp(first.tcp_port()), 0);  // the first is untouched
}

TEST(NodeServersTest, AUnixPathTooLongIsAnInvalidArgument) {
    Loop loop;
    TempDir dir;
    Accepted accepted;
    const std::string id(sizeof(sockaddr_un::sun_path), 'x');
    NodeServers servers(loop.executor(), loop.executor());
    try {
        servers.open(loopback_options(dir.path()), id, accepted.adopt());
        FAIL() << "open() accepted a " << id.size() << "-byte id";
    } catch (const Error& e) {
        EXPECT_EQ(e.code_value(), errc::invalid_argument);
        EXPECT_NE(std::string(e.what()).find("Unix socket path too long"), std::string::npos) << e.what();
    }
    EXPECT_TRUE(servers.unix_path().empty());
}
