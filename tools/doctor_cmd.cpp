// meshy doctor: checks what a mesh needs on this host, one line a check with a fix, read only.
#include <arpa/inet.h>
#include <avahi-client/client.h>
#include <avahi-common/error.h>
#include <avahi-common/simple-watch.h>
#include <fcntl.h>
#include <ifaddrs.h>
#include <net/if.h>
#include <netdb.h>
#include <poll.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <sys/utsname.h>
#include <unistd.h>

#include <CLI/CLI.hpp>
#include <cerrno>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <fstream>
#include <future>
#include <map>
#include <meshy/domain_key.hpp>
#include <meshy/error.hpp>
#include <meshy/version.hpp>
#include <sstream>
#include <string>
#include <vector>

#include "cli.hpp"

namespace meshy::cli {
namespace {

enum class Verdict { ok, warn, fail, skip };

struct Check {
    Verdict verdict = Verdict::ok;
    std::string name;
    std::string detail;
    std::string fix;  // for warn and fail
};

struct Report {
    std::vector<Check> checks;
    void add(Verdict v, std::string name, std::string detail, std::string fix = {}) {
        checks.push_back({v, std::move(name), std::move(detail), std::move(fix)});
        const Check& c = checks.back();
        const char* tag = v == Verdict::ok     ? "ok  "
                          : v == Verdict::warn ? "warn"
                          : v == Verdict::fail ? "FAIL"
                                               : "skip";
        std::printf("%s  %s: %s%s%s\n", tag, c.name.c_str(), c.detail.c_str(),
                    c.fix.empty() ? "" : " -- fix: ", c.fix.c_str());
        std::fflush(stdout);
    }
};

std::string env_or(const char* name, const std::string& fallback) {
    const char* v = std::getenv(name);
    return v && *v ? std::string(v) : fallback;
}

std::string read_file(const std::string& path) {
    std::ifstream in(path);
    std::stringstream text;
    text << in.rdbuf();
    return text.str();
}

/// Runs a read-only command with a time limit; its stdout, or nullopt when it is missing or fails.
std::optional<std::string> command_output(const std::string& command) {
    std::FILE* p = ::popen(("timeout 3 " + command + " 2>/dev/null").c_str(), "r");
    if (!p) {
        return std::nullopt;
    }
    std::string out;
    char chunk[4096];
    std::size_t n = 0;
    while ((n = std::fread(chunk, 1, sizeof chunk, p)) > 0 && out.size() < (8u << 20)) {
        out.append(chunk, n);
    }
    const int status = ::pclose(p);
    if (status != 0) {
        return std::nullopt;
    }
    return out;
}

// ---- Avahi ---------------------------------------------------------------------------------------

struct AvahiFacts {
    std::string version;
    std::string host;
};

std::optional<AvahiFacts> check_avahi(Report& r, const std::string& mode) {
    const std::string bus = env_or("DBUS_SYSTEM_BUS_ADDRESS", "unix:path=/run/dbus/system_bus_socket (default)");
    if (mode == "static" || mode == "local") {
        r.add(Verdict::skip, "avahi-daemon", "MESHY_DISCOVERY=" + mode + " does not use it");
        return std::nullopt;
    }
    AvahiSimplePoll* poll = avahi_simple_poll_new();
    int error = 0;
    AvahiClient* client = poll ? avahi_client_new(
                                     avahi_simple_poll_get(poll), AvahiClientFlags(0),
                                     [](AvahiClient*, AvahiClientState, void*) {}, nullptr, &error)
                               : nullptr;
    std::optional<AvahiFacts> facts;
    if (!client) {
        r.add(Verdict::fail, "avahi-daemon",
              std::string("not reachable on the system bus ") + bus + ": " + avahi_strerror(error),
              "start it (systemctl start avahi-daemon; Debian package avahi-daemon), or point DBUS_SYSTEM_BUS_ADDRESS "
              "at its bus; without it nodes find only this host (or set MESHY_DISCOVERY=static with --peer)");
    } else {
        const auto state = avahi_client_get_state(client);
        facts = AvahiFacts{avahi_client_get_version_string(client) ? avahi_client_get_version_string(client) : "?",
                           avahi_client_get_host_name_fqdn(client) ? avahi_client_get_host_name_fqdn(client) : "?"};
        if (state == AVAHI_CLIENT_S_RUNNING) {
            r.add(Verdict::ok, "avahi-daemon", facts->version + " running on " + bus + ", host name " + facts->host);
        } else {
            r.add(
                Verdict::fail, "avahi-daemon",
                "reachable on " + bus + " but not running (state " + std::to_string(state) + ", host name collision?)",
                "see 'journalctl -u avahi-daemon'; a host name conflict renames the host until it settles");
        }
        avahi_client_free(client);
    }
    if (poll) {
        avahi_simple_poll_free(poll);
    }
    return facts;
}

void check_interfaces(Report& r, const std::string& mode) {
    ifaddrs* list = nullptr;
    if (::getifaddrs(&list) != 0) {
        r.add(Verdict::warn, "interfaces", std::string("cannot list them: ") + std::strerror(errno));
        return;
    }
    std::map<std::string, std::string> seen;  // name -> "addr (multicast)"
    bool any_multicast = false;
    for (auto* i = list; i; i = i->ifa_next) {
        if (!i->ifa_addr || i->ifa_addr->sa_family != AF_INET || !(i->ifa_flags & IFF_UP) ||
            (i->ifa_flags & IFF_LOOPBACK)) {
            continue;
        }
        char text[INET_ADDRSTRLEN] = {};
        ::inet_ntop(AF_INET, &reinterpret_cast<sockaddr_in*>(i->ifa_addr)->sin_addr, text, sizeof text);
        const bool multicast = (i->ifa_flags & IFF_MULTICAST) != 0;
        any_multicast = any_multicast || multicast;
        seen[i->ifa_name] = std::string(text) + (multicast ? "" : " (no multicast)");
    }
    ::freeifaddrs(list);
    std::string all;
    for (const auto& [name, what] : seen) {
        all += (all.empty() ? "" : ", ") + name + " " + what;
    }
    if (seen.empty()) {
        r.add(Verdict::warn, "interfaces", "no IPv4 interface up besides loopback: nodes on this host only",
              "bring up a network interface, or run every node here");
    } else if (!any_multicast && mode != "static") {
        r.add(Verdict::warn, "interfaces", all + ": mDNS cannot leave this host",
              "enable multicast (ip link set DEV multicast on) or use static peers (--peer, MESHY_PEERS)");
    } else {
        r.add(Verdict::ok, "interfaces", all);
    }
}

// ---- firewall and rp_filter ------------------------------------------------------------------------

void check_rp_filter(Report& r) {
    const std::string all = read_file("/proc/sys/net/ipv4/conf/all/rp_filter");
    if (all.empty()) {
        r.add(Verdict::skip, "rp_filter", "/proc/sys/net/ipv4/conf/all/rp_filter not readable");
        return;
    }
    if (all.front() == '1') {
        r.add(Verdict::warn, "rp_filter",
              "strict (1) on all interfaces: packets from a subnet not routed back through the same interface "
              "are dropped (mDNS from a reflector's other subnet, multi-homed hosts)",
              "sysctl net.ipv4.conf.all.rp_filter=2 (loose) if nodes on other subnets are not seen");
        return;
    }
    r.add(Verdict::ok, "rp_filter", "all=" + all.substr(0, 1) + " (0 off, 2 loose)");
}

void check_firewall(Report& r, std::uint16_t port) {
    std::string rules;
    std::string tool;
    if (auto nft = command_output("nft list ruleset")) {
        rules = *nft;
        tool = "nft";
    } else if (auto ipt = command_output("iptables-save")) {
        rules = *ipt;
        tool = "iptables";
    }
    if (tool.empty()) {
        r.add(Verdict::skip, "firewall",
              "neither 'nft list ruleset' nor 'iptables-save' could be read (not installed, "
              "or not root): no rules checked");
        return;
    }
    // Read only, and only the clear cases: a default-drop input with no mention of mDNS's port.
    const bool input_drops = rules.find("hook input priority filter; policy drop") != std::string::npos ||
                             rules.find("hook input priority 0; policy drop") != std::string::npos ||
                             rules.find(":INPUT DROP") != std::string::npos;
    const bool mentions_mdns = rules.find("5353") != std::string::npos || rules.find("mdns") != std::string::npos;
    if (input_drops && !mentions_mdns) {
        r.add(Verdict::fail, "firewall",
              tool + ": incoming packets are dropped by default and no rule mentions mDNS (udp 5353)",
              "allow udp dport 5353 to 224.0.0.251 and the nodes' TCP port(s) (set a fixed listen_port / --listen)");
        return;
    }
    if (input_drops) {
        r.add(Verdict::warn, "firewall",
              tool +
                  ": incoming packets are dropped by default; mDNS is mentioned, but nodes listen on random TCP "
                  "ports" +
                  (port ? " (this one on " + std::to_string(port) + ")" : std::string()),
              "allow the nodes' TCP port(s): give the nodes a fixed listen_port (--listen tcp/0.0.0.0:PORT)");
        return;
    }
    r.add(Verdict::ok, "firewall", tool + ": no default-drop input policy");
}

// ---- this host ------------------------------------------------------------------------------------

void check_socket_dir(Report& r) {
    // The default of NodeOptions::unix_socket_dir.
    const std::string dir = env_or("XDG_RUNTIME_DIR", "").empty() ? "/tmp/meshy-" + std::to_string(::getuid())
                                                                  : env_or("XDG_RUNTIME_DIR", "") + "/meshy";
    struct stat st {};
    if (::stat(dir.c_str(), &st) == 0) {
        if (!S_ISDIR(st.st_mode) || ::access(dir.c_str(), W_OK | X_OK) != 0) {
            r.add(Verdict::fail, "unix socket dir", dir + " is not a writable directory",
                  "remove it or fix its owner/mode (chown $USER " + dir + "), or set XDG_RUNTIME_DIR");
            return;
        }
        r.add(Verdict::ok, "unix socket dir", dir + " writable");
        return;
    }
    const std::string parent = dir.substr(0, dir.rfind('/'));
    if (::access(parent.c_str(), W_OK | X_OK) != 0) {
        r.add(Verdict::fail, "unix socket dir", dir + " does not exist and " + parent + " is not writable",
              "set XDG_RUNTIME_DIR to a writable directory, or NodeOptions::unix_socket_dir");
        return;
    }
    r.add(Verdict::ok, "unix socket dir", dir + " (made on first use; " + parent + " writable)");
}

void check_domain_key(Report& r, const std::string& path) {
    if (path.empty()) {
        r.add(Verdict::ok, "domain key", "none: links are not authenticated (see docs/security.md)");
        return;
    }
    try {
        check_domain_key_file(path);
    } catch (const meshy::Error& e) {
        r.add(Verdict::fail, "domain key", e.what(),
              "give every node of the domain the same key file, mode 0600 (meshy key generate > FILE; chmod 600 "
              "FILE)");
        return;
    }
    r.add(Verdict::ok, "domain key", path + ": a well-formed key, readable by its owner only");
}

void check_nss(Report& r) {
    const std::string text = read_file("/etc/nsswitch.conf");
    std::istringstream lines(text);
    std::string line;
    while (std::getline(lines, line)) {
        if (line.rfind("hosts:", 0) == 0) {
            if (line.find("mdns") != std::string::npos) {
                r.add(Verdict::ok, "nss mdns", "/etc/nsswitch.conf resolves .local names (" + line + ")");
            } else {
                r.add(Verdict::warn, "nss mdns",
                      "/etc/nsswitch.conf does not resolve .local names; meshy does not need it, but tools "
                      "(ping host.local, a peer given as tcp/host.local:PORT) do",
                      "install libnss-mdns (hosts: files mdns4_minimal [NOTFOUND=return] dns)");
            }
            return;
        }
    }
    r.add(Verdict::skip, "nss mdns", "no hosts: line in /etc/nsswitch.conf");
}

// ---- static peers ---------------------------------------------------------------------------------

/// Connects to one static peer and reads the start of its handshake (bounded: 2 s in all).
std::string probe_peer(const std::string& peer) {
    int fd = -1;
    const auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(2);
    if (peer.rfind("unix/", 0) == 0) {
        sockaddr_un sa{};
        sa.sun_family = AF_UNIX;
        const std::string path = peer.substr(5);
        if (path.size() >= sizeof sa.sun_path) {
            return "path too long";
        }
        std::memcpy(sa.sun_path, path.data(), path.size());
        fd = ::socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
        if (fd < 0 || ::connect(fd, reinterpret_cast<sockaddr*>(&sa), sizeof sa) != 0) {
            const std::string why = std::strerror(errno);
            if (fd >= 0) {
                ::close(fd);
            }
            return why;
        }
    } else if (peer.rfind("tcp/", 0) == 0) {
        const auto colon = peer.rfind(':');
        if (colon == std::string::npos || colon < 5) {
            return "not tcp/HOST:PORT";
        }
        std::string host = peer.substr(4, colon - 4);
        if (host.size() > 2 && host.front() == '[') {
            host = host.substr(1, host.size() - 2);
        }
        addrinfo hints{};
        hints.ai_socktype = SOCK_STREAM;
        addrinfo* res = nullptr;
        if (const int e = ::getaddrinfo(host.c_str(), peer.substr(colon + 1).c_str(), &hints, &res); e != 0) {
            return std::string("cannot resolve: ") + ::gai_strerror(e);
        }
        fd = ::socket(res->ai_family, SOCK_STREAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0);
        int rc = fd < 0 ? -1 : ::connect(fd, res->ai_addr, res->ai_addrlen);
        ::freeaddrinfo(res);
        if (rc != 0 && errno == EINPROGRESS) {
            pollfd p{fd, POLLOUT, 0};
            rc = ::poll(&p, 1, 2000) == 1 ? 0 : -1;
            int err = 0;
            socklen_t len = sizeof err;
            if (rc == 0 && (::getsockopt(fd, SOL_SOCKET, SO_ERROR, &err, &len) != 0 || err != 0)) {
                errno = err;
                rc = -1;
            } else if (rc != 0) {
                errno = ETIMEDOUT;
            }
        }
        if (rc != 0) {
            const std::string why = std::strerror(errno);
            if (fd >= 0) {
                ::close(fd);
            }
            return why;
        }
    } else {
        return "not tcp/HOST:PORT or unix/PATH";
    }
    // A meshy node greets first: its handshake starts with "MSHY".
    char magic[4] = {};
    std::size_t got = 0;
    while (got < 4) {
        const auto left =
            std::chrono::duration_cast<std::chrono::milliseconds>(deadline - std::chrono::steady_clock::now());
        pollfd p{fd, POLLIN, 0};
        if (left.count() <= 0 || ::poll(&p, 1, static_cast<int>(left.count())) != 1) {
            break;
        }
        const auto n = ::recv(fd, magic + got, 4 - got, MSG_DONTWAIT);
        if (n <= 0) {
            break;
        }
        got += static_cast<std::size_t>(n);
    }
    ::close(fd);
    if (got < 4 || std::memcmp(magic, "MSHY", 4) != 0) {
        return "connected, but no meshy handshake within 2 s (another program on that port?)";
    }
    return {};
}

void check_peers(Report& r, const std::vector<std::string>& configured) {
    std::vector<std::string> peers = configured;
    std::string env = env_or("MESHY_PEERS", "");
    for (std::size_t start = 0; start < env.size();) {
        auto comma = env.find(',', start);
        if (comma == std::string::npos) {
            comma = env.size();
        }
        std::string item = env.substr(start, comma - start);
        item.erase(0, item.find_first_not_of(' '));
        item.erase(item.find_last_not_of(' ') + 1);
        if (!item.empty()) {
            peers.push_back(item);
        }
        start = comma + 1;
    }
    if (peers.empty()) {
        r.add(Verdict::skip, "static peers", "none configured (--peer, MESHY_PEERS)");
        return;
    }
    // All at once: an unreachable peer costs its 2 s timeout once, not once per peer in turn.
    std::vector<std::future<std::string>> probes;
    for (const auto& p : peers) {
        probes.push_back(std::async(std::launch::async, probe_peer, p));
    }
    for (std::size_t i = 0; i < peers.size(); ++i) {
        const std::string why = probes[i].get();
        if (why.empty()) {
            r.add(Verdict::ok, "static peer " + peers[i], "a meshy node answers");
        } else {
            r.add(Verdict::fail, "static peer " + peers[i], why,
                  "start the node there with a fixed port (--listen tcp/0.0.0.0:PORT), check the address and that "
                  "the port is open");
        }
    }
}

}  // namespace

void setup_doctor(CLI::App& app, const GlobalOptions& globals) {
    auto* doctor = app.add_subcommand(
        "doctor", "Check this host for what a mesh needs (Avahi, interfaces, firewall, peers); exit 1 on a problem");
    doctor->callback([&globals] {
        Report r;
        const std::string mode = env_or("MESHY_DISCOVERY", "automatic");
        const std::string domain = !globals.domain_id.empty() ? globals.domain_id : "default";
        utsname u{};
        ::uname(&u);
        r.add(Verdict::ok, "versions",
              std::string("meshy ") + meshy::version_string + ", wire protocol 2, Linux " + u.release);
        r.add(Verdict::ok, "domain",
              "'" + domain + "'" + (globals.domain_id.empty() ? " (set --domain-id or MESHY_DOMAIN_ID)" : "") +
                  ", discovery " + mode);
        check_avahi(r, mode);
        check_interfaces(r, mode);
        check_socket_dir(r);
        check_domain_key(r, globals.domain_key_file);
        check_rp_filter(r);
        std::string listen_host;
        std::uint16_t port = 0;
        if (!globals.listen.empty()) {
            parse_listen(globals.listen, listen_host, port);
        }
        check_firewall(r, port);
        check_nss(r);
        check_peers(r, globals.peers);
        for (const auto& c : r.checks) {
            if (c.verdict == Verdict::fail) {
                throw CliError("doctor: " + c.name + ": " + c.detail, exit_failure);
            }
        }
        std::printf("healthy\n");
    });
}

}  // namespace meshy::cli
