// Same-host discovery without a daemon: every node keeps one small file in a per-domain directory
// and polls the directory. Cheap enough at 100 ms for the handful of nodes one host runs.
#include <dirent.h>
#include <fcntl.h>
#include <signal.h>
#include <sys/stat.h>
#include <sys/types.h>
#include <unistd.h>

#include <cerrno>
#include <chrono>
#include <condition_variable>
#include <cstdint>
#include <cstdlib>
#include <exception>
#include <limits>
#include <map>
#include <memory>
#include <mutex>
#include <string>
#include <string_view>
#include <system_error>
#include <thread>
#include <utility>
#include <vector>

#include "discovery/discovery.hpp"
#include "meshy/error.hpp"
#include "meshy/log.hpp"

namespace meshy::detail {

namespace {

constexpr auto kPollInterval = std::chrono::milliseconds(100);
constexpr std::string_view kSuffix = ".node";

std::string errno_text(int err) {
    return std::error_code(err, std::generic_category()).message();
}

const char* non_empty_env(const char* name) {
    const char* value = std::getenv(name);
    return value != nullptr && *value != '\0' ? value : nullptr;
}

// Values are free text (a node name may hold anything), so line breaks must not split a record.
std::string escape_value(std::string_view value) {
    std::string out;
    out.reserve(value.size());
    for (const char c : value) {
        switch (c) {
            case '\\':
                out += "\\\\";
                break;
            case '\n':
                out += "\\n";
                break;
            case '\r':
                out += "\\r";
                break;
            default:
                out += c;
        }
    }
    return out;
}

std::string unescape_value(std::string_view value) {
    std::string out;
    out.reserve(value.size());
    for (std::size_t i = 0; i < value.size(); ++i) {
        if (value[i] != '\\' || i + 1 == value.size()) {
            out += value[i];
            continue;
        }
        const char next = value[++i];
        out += next == 'n' ? '\n' : next == 'r' ? '\r' : next;
    }
    return out;
}

std::string serialize(const Advert& advert) {
    std::string text;
    for (const auto& [key, value] : advert_to_fields(advert)) {
        text += key;
        text += '=';
        text += escape_value(value);
        text += '\n';
    }
    return text;
}

AdvertFields parse_lines(std::string_view text) {
    AdvertFields fields;
    while (!text.empty()) {
        const auto eol = text.find('\n');
        const std::string_view line = text.substr(0, eol);
        text = eol == std::string_view::npos ? std::string_view{} : text.substr(eol + 1);
        const auto eq = line.find('=');
        if (eq == std::string_view::npos || eq == 0) {
            continue;
        }
        fields.emplace_back(std::string(line.substr(0, eq)), unescape_value(line.substr(eq + 1)));
    }
    return fields;
}

bool read_file(const std::string& path, std::string& out) {
    const int fd = ::open(path.c_str(), O_RDONLY | O_CLOEXEC | O_NOFOLLOW);
    if (fd < 0) {
        return false;
    }
    out.clear();
    char buf[4096];
    for (;;) {
        const ssize_t n = ::read(fd, buf, sizeof buf);
        if (n < 0 && errno == EINTR) {
            continue;
        }
        if (n <= 0) {
            ::close(fd);
            return n == 0;
        }
        out.append(buf, static_cast<std::size_t>(n));
        // A node file is a few hundred bytes; anything huge is not ours and not worth holding.
        if (out.size() > 64 * 1024) {
            ::close(fd);
            return false;
        }
    }
}

bool write_all(int fd, std::string_view data) {
    while (!data.empty()) {
        const ssize_t n = ::write(fd, data.data(), data.size());
        if (n < 0 && errno == EINTR) {
            continue;
        }
        if (n <= 0) {
            return false;
        }
        data.remove_prefix(static_cast<std::size_t>(n));
    }
    return true;
}

// mkdir -p with 0700 for every directory it creates; existing directories keep their mode.
void make_directories(const std::string& path) {
    for (std::size_t pos = 1; pos <= path.size(); ++pos) {
        if (pos != path.size() && path[pos] != '/') {
            continue;
        }
        const std::string prefix = path.substr(0, pos);
        if (::mkdir(prefix.c_str(), 0700) != 0 && errno != EEXIST) {
            throw Error(errc::io_error, "cannot create discovery directory " + prefix + ": " + errno_text(errno));
        }
    }
    struct stat st {};
    if (::stat(path.c_str(), &st) != 0 || !S_ISDIR(st.st_mode)) {
        throw Error(errc::io_error, "discovery path " + path + " is not a directory");
    }
}

struct FileSignature {
    ino_t inode = 0;
    off_t size = 0;
    std::int64_t mtime_ns = 0;
    friend bool operator==(const FileSignature&, const FileSignature&) = default;
};

FileSignature signature_of(const struct stat& st) {
    return {st.st_ino, st.st_size, static_cast<std::int64_t>(st.st_mtim.tv_sec) * 1'000'000'000 + st.st_mtim.tv_nsec};
}

bool process_is_dead(std::int64_t pid) {
    if (pid <= 0 || pid > std::numeric_limits<pid_t>::max()) {
        return false;
    }
    // EPERM means the process exists under another user: alive.
    return ::kill(static_cast<pid_t>(pid), 0) != 0 && errno == ESRCH;
}

class LocalDiscovery final : public Discovery {
public:
    ~LocalDiscovery() override { stop(); }

    void start(const Advert& self, DiscoveryEvents events) override {
        std::lock_guard api(api_mutex_);
        if (running_) {
            return;
        }
        self_ = self;
        if (self_.pid == 0) {
            self_.pid = ::getpid();
        }
        events_ = std::move(events);
        dir_ = base_directory() + "/" + dns_sd_service_type(self_.domain).substr(7, 8);
        own_file_ = dir_ + "/" + self_.id + std::string(kSuffix);
        make_directories(dir_);
        write_own_file();
        {
            std::lock_guard lock(mutex_);
            stop_requested_ = false;
        }
        try {
            thread_ = std::thread([this] { run(); });
        } catch (...) {
            ::unlink(own_file_.c_str());
            throw;
        }
        running_ = true;
        log(LogLevel::debug, "local discovery: publishing " + own_file_);
    }

    // This backend's records do not carry the lists yet (complete stays false): peers take them
    // from Info frames over their links.
    void update(const Advert&) override {}

    void stop() override {
        std::lock_guard api(api_mutex_);
        if (!running_) {
            return;
        }
        {
            std::lock_guard lock(mutex_);
            stop_requested_ = true;
        }
        wake_.notify_all();
        thread_.join();
        if (::unlink(own_file_.c_str()) != 0 && errno != ENOENT) {
            log(LogLevel::warn, "local discovery: cannot remove " + own_file_ + ": " + errno_text(errno));
        }
        seen_.clear();
        own_file_failure_.clear();
        scan_failure_.clear();
        events_ = {};
        running_ = false;
    }

    const char* backend_name() const override { return "local"; }

private:
    struct Seen {
        FileSignature signature;
        bool valid = false;     // parsed, same domain, not ourselves
        bool reported = false;  // on_peer_up delivered and not yet taken back
        Advert advert;
    };

    static std::string base_directory() {
        if (const char* dir = non_empty_env("MESHY_LOCAL_DISCOVERY_DIR")) {
            return dir;
        }
        if (const char* runtime = non_empty_env("XDG_RUNTIME_DIR")) {
            return std::string(runtime) + "/meshy";
        }
        // /tmp is shared by every user: someone else could pre-create our directory to read or plant
        // adverts, so only a private directory that we own is acceptable.
        const std::string dir = "/tmp/meshy-" + std::to_string(::getuid());
        if (::mkdir(dir.c_str(), 0700) != 0 && errno != EEXIST) {
            throw Error(errc::io_error, "cannot create discovery directory " + dir + ": " + errno_text(errno));
        }
        struct stat st {};
        if (::lstat(dir.c_str(), &st) != 0 || !S_ISDIR(st.st_mode) || st.st_uid != ::getuid() ||
            (st.st_mode & 077) != 0) {
            throw Error(errc::io_error,
                        "discovery directory " + dir + " is not a private directory owned by this user");
        }
        return dir;
    }

    void write_own_file() {
        const std::string temp = dir_ + "/." + self_.id + ".tmp";
        const int fd = ::open(temp.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC | O_NOFOLLOW, 0644);
        if (fd < 0) {
            throw Error(errc::io_error, "cannot write " + temp + ": " + errno_text(errno));
        }
        const bool written = write_all(fd, serialize(self_));
        const int write_errno = errno;
        ::close(fd);
        // The rename is what makes the file appear complete to readers; they never see a partial one.
        if (!written || ::rename(temp.c_str(), own_file_.c_str()) != 0) {
            const int err = written ? errno : write_errno;
            ::unlink(temp.c_str());
            throw Error(errc::io_error, "cannot write " + own_file_ + ": " + errno_text(err));
        }
    }

    void run() {
        std::unique_lock lock(mutex_);
        while (!stop_requested_) {
            lock.unlock();
            guarded("cannot rewrite own advert", own_file_failure_, [this] { ensure_own_file(); });
            guarded("scan failed", scan_failure_, [this] { scan(); });
            lock.lock();
            wake_.wait_for(lock, kPollInterval, [this] { return stop_requested_; });
        }
    }

    // A failure that persists (a full disk, a removed parent directory) is logged once, not ten times
    // a second; the next different failure or a recovery re-arms it.
    template <typename Body>
    static void guarded(const char* what, std::string& last_failure, Body&& body) {
        std::string message;
        try {
            body();
            last_failure.clear();
            return;
        } catch (const std::exception& e) {
            message = std::string("local discovery: ") + what + ": " + e.what();
        } catch (...) {
            message = std::string("local discovery: ") + what;
        }
        if (message != last_failure) {
            log(LogLevel::warn, message);
            last_failure = std::move(message);
        }
    }

    void ensure_own_file() {
        struct stat st {};
        if (::stat(own_file_.c_str(), &st) == 0) {
            return;
        }
        log(LogLevel::debug, "local discovery: " + own_file_ + " vanished; rewriting it");
        make_directories(dir_);
        write_own_file();
    }

    void scan() {
        DIR* dir = ::opendir(dir_.c_str());
        if (dir == nullptr) {
            return;
        }
        std::map<std::string, Seen> current;
        const std::string own_name = self_.id + std::string(kSuffix);
        while (const dirent* entry = ::readdir(dir)) {
            const std::string_view name = entry->d_name;
            if (name.size() <= kSuffix.size() || !name.ends_with(kSuffix) || name == own_name) {
                continue;
            }
            std::string file(name);
            Seen seen;
            if (!examine(file, seen)) {
                continue;
            }
            current.emplace(std::move(file), std::move(seen));
        }
        ::closedir(dir);

        for (auto& [file, previous] : seen_) {
            if (previous.reported && !current.contains(file)) {
                report_down(previous.advert.id);
            }
        }
        for (auto& [file, now] : current) {
            const auto before = seen_.find(file);
            const Seen* old = before == seen_.end() ? nullptr : &before->second;
            if (old != nullptr && old->reported && (!now.valid || old->advert.id != now.advert.id)) {
                report_down(old->advert.id);
            } else if (old != nullptr && old->reported && old->advert == now.advert) {
                now.reported = true;
                continue;
            }
            if (now.valid) {
                report_up(now.advert);
                now.reported = true;
            }
        }
        seen_ = std::move(current);
    }

    // Fills `out` for one .node file; false when the file is gone (vanished or removed as stale).
    bool examine(const std::string& file, Seen& out) {
        const std::string path = dir_ + "/" + file;
        struct stat st {};
        if (::lstat(path.c_str(), &st) != 0 || !S_ISREG(st.st_mode)) {
            return false;
        }
        out.signature = signature_of(st);
        const auto known = seen_.find(file);
        if (known != seen_.end() && known->second.signature == out.signature) {
            out.valid = known->second.valid;
            out.advert = known->second.advert;
        } else {
            std::string text;
            if (!read_file(path, text)) {
                return false;
            }
            Advert advert;
            const std::string stem = file.substr(0, file.size() - kSuffix.size());
            if (!advert_from_fields(parse_lines(text), advert) || advert.id != stem) {
                log(LogLevel::debug, "local discovery: ignoring malformed " + path);
            } else {
                out.valid = advert.id != self_.id && advert.domain == self_.domain;
                if (out.valid && advert.tcp_port != 0 && advert.tcp_address.empty()) {
                    advert.tcp_address = "127.0.0.1";
                } else if (advert.tcp_port == 0) {
                    advert.tcp_address.clear();
                }
            }
            out.advert = std::move(advert);
        }
        // A pid from another host (a directory shared with a container) cannot be checked here.
        if (out.advert.host == self_.host && process_is_dead(out.advert.pid)) {
            log(LogLevel::debug,
                "local discovery: removing stale " + path + " (pid " + std::to_string(out.advert.pid) + " is gone)");
            ::unlink(path.c_str());
            return false;
        }
        return true;
    }

    void report_up(const Advert& advert) {
        if (!events_.on_peer_up) {
            return;
        }
        try {
            events_.on_peer_up(advert);
        } catch (...) {
            log(LogLevel::error, "local discovery: on_peer_up threw; ignored");
        }
    }

    void report_down(const std::string& id) {
        if (!events_.on_peer_down) {
            return;
        }
        try {
            events_.on_peer_down(id);
        } catch (...) {
            log(LogLevel::error, "local discovery: on_peer_down threw; ignored");
        }
    }

    std::mutex api_mutex_;  // serializes start() and stop(); never held by the poll thread
    std::mutex mutex_;      // guards stop_requested_ only, so events are never delivered under it
    std::condition_variable wake_;
    bool stop_requested_ = false;
    bool running_ = false;
    std::thread thread_;

    // Written by start() before the thread exists, then only touched by the thread until stop() joins it.
    Advert self_;
    DiscoveryEvents events_;
    std::string dir_;
    std::string own_file_;
    std::map<std::string, Seen> seen_;  // by file name
    std::string own_file_failure_;      // the last failure logged per activity, to log each one once
    std::string scan_failure_;
};

}  // namespace

std::unique_ptr<Discovery> make_local_discovery() {
    return std::make_unique<LocalDiscovery>();
}

}  // namespace meshy::detail
