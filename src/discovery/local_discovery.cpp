// Same-host discovery without a daemon: every node keeps one file in a per-domain directory and
// watches the directory with inotify, reading only the files that changed. Idle, a node wakes once
// a second to check that a few peers' processes still live (a killed node cannot remove its file)
// and that its own file is still there: a handful of system calls, no file reads.
#include <dirent.h>
#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <sys/eventfd.h>
#include <sys/inotify.h>
#include <sys/stat.h>
#include <sys/types.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <chrono>
#include <cstdint>
#include <cstdlib>
#include <cstring>
#include <ctime>
#include <exception>
#include <limits>
#include <map>
#include <memory>
#include <mutex>
#include <optional>
#include <set>
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

// How often a node checks that its peers' processes live; a killed peer's file goes within this.
constexpr auto kLivenessInterval = std::chrono::milliseconds(1000);
// Peers whose process check_liveness() looks at a tick.
constexpr std::size_t kLivenessChecks = 8;
// Without inotify (the user's instances used up): how often the directory's mtime is looked at.
constexpr auto kDirectoryPoll = std::chrono::milliseconds(250);
// How long update() waits for more updates before writing the file once for all of them.
constexpr auto kCoalesce = std::chrono::milliseconds(50);
constexpr std::string_view kSuffix = ".node";

std::string errno_text(int err) {
    return std::error_code(err, std::generic_category()).message();
}

const char* non_empty_env(const char* name) {
    const char* value = std::getenv(name);
    return value != nullptr && *value != '\0' ? value : nullptr;
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
        // Anything larger than an advert may be is not ours and not worth holding.
        if (out.size() > kMaxAdvertBytes) {
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
        socket_dirs_ = expected_socket_dirs(self_);
        dir_ = base_directory() + "/" + dns_sd_service_type(self_.domain).substr(7, 8);
        own_name_ = self_.id + std::string(kSuffix);
        own_file_ = dir_ + "/" + own_name_;
        liveness_cursor_ = own_name_;  // nodes begin their turns at different peers
        make_directories(dir_);
        // Watch before writing our own file, so that no peer's file written meanwhile is missed.
        wake_fd_ = ::eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC);
        if (wake_fd_ < 0) {
            throw Error(errc::io_error, "local discovery: cannot create an eventfd: " + errno_text(errno));
        }
        // MESHY_LOCAL_DISCOVERY_POLL=1 forces the fallback (a directory on a file system without inotify).
        const char* force_poll = non_empty_env("MESHY_LOCAL_DISCOVERY_POLL");
        inotify_fd_ = force_poll != nullptr && std::string_view(force_poll) == "1"
                          ? (errno = ENOSYS, -1)
                          : ::inotify_init1(IN_NONBLOCK | IN_CLOEXEC);
        if (inotify_fd_ < 0) {
            // fs.inotify.max_user_instances (often 128) counts every process of the user: a host with
            // hundreds of nodes runs out. The directory's modification time then tells of changes.
            log(LogLevel::debug, "local discovery: no inotify instance (" + errno_text(errno) +
                                     "); watching the directory's modification time instead");
        }
        try {
            watch();
            write_own_file(self_);
            {
                std::lock_guard lock(mutex_);
                stop_requested_ = false;
                pending_.reset();
            }
            thread_ = std::thread([this] { run(); });
        } catch (...) {
            ::unlink(own_file_.c_str());
            close_fds();
            throw;
        }
        running_ = true;
        log(LogLevel::debug, "local discovery: publishing " + own_file_);
    }

    void update(const Advert& self) override {
        std::lock_guard api(api_mutex_);
        if (!running_) {
            return;
        }
        {
            std::lock_guard lock(mutex_);
            if (!pending_) {
                pending_since_ = std::chrono::steady_clock::now();
            }
            pending_ = self;
        }
        wake();
    }

    void stop() override {
        std::lock_guard api(api_mutex_);
        if (!running_) {
            return;
        }
        {
            std::lock_guard lock(mutex_);
            stop_requested_ = true;
        }
        wake();
        thread_.join();
        if (::unlink(own_file_.c_str()) != 0 && errno != ENOENT) {
            log(LogLevel::warn, "local discovery: cannot remove " + own_file_ + ": " + errno_text(errno));
        }
        close_fds();
        seen_.clear();
        warned_.clear();
        own_file_failure_.clear();
        scan_failure_.clear();
        events_ = {};
        running_ = false;
    }

    const char* backend_name() const override { return "local"; }

private:
    struct Seen {
        FileSignature signature;
        bool valid = false;     // parsed, same domain and protocol, not ourselves
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

    void close_fds() {
        if (inotify_fd_ >= 0) {
            ::close(inotify_fd_);
        }
        if (wake_fd_ >= 0) {
            ::close(wake_fd_);
        }
        inotify_fd_ = -1;
        wake_fd_ = -1;
        watching_ = false;
    }

    void wake() {
        const std::uint64_t one = 1;
        [[maybe_unused]] const ssize_t n = ::write(wake_fd_, &one, sizeof one);
    }

    // (Re)adds the watch on the directory; a renamed-in file is a complete one (writers rename).
    void watch() {
        if (inotify_fd_ < 0) {
            watching_ = true;  // polling the modification time needs nothing set up
            return;
        }
        if (::inotify_add_watch(inotify_fd_, dir_.c_str(),
                                IN_MOVED_TO | IN_MOVED_FROM | IN_CLOSE_WRITE | IN_DELETE | IN_DELETE_SELF |
                                    IN_MOVE_SELF | IN_ONLYDIR) < 0) {
            throw Error(errc::io_error, "cannot watch " + dir_ + ": " + errno_text(errno));
        }
        watching_ = true;
    }

    void write_own_file(const Advert& advert) {
        const std::string temp = dir_ + "/." + advert.id + ".tmp";
        const int fd = ::open(temp.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC | O_NOFOLLOW, 0644);
        if (fd < 0) {
            throw Error(errc::io_error, "cannot write " + temp + ": " + errno_text(errno));
        }
        const bool written = write_all(fd, advert_to_file_text(advert));
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
        using Clock = std::chrono::steady_clock;
        bool rescan = true;  // the first pass reads every file already there
        auto next_liveness = Clock::now() + kLivenessInterval;
        for (;;) {
            std::optional<Advert> update;
            {
                std::lock_guard lock(mutex_);
                if (stop_requested_) {
                    return;
                }
                // Coalescing: a burst of update() calls (many listen() in a row) becomes one write.
                if (pending_ && Clock::now() >= pending_since_ + kCoalesce) {
                    update = std::move(pending_);
                    pending_.reset();
                }
            }
            if (update) {
                guarded("cannot rewrite own advert", own_file_failure_, [&] {
                    if (update->pid == 0) {
                        update->pid = self_.pid;
                    }
                    self_ = std::move(*update);
                    write_own_file(self_);
                });
            }
            if (rescan) {
                rescan = false;
                guarded("scan failed", scan_failure_, [this] { scan_all(); });
            }
            if (Clock::now() >= next_liveness) {
                next_liveness = Clock::now() + kLivenessInterval;
                guarded("cannot rewrite own advert", own_file_failure_, [&] {
                    if (!watching_) {
                        make_directories(dir_);
                        watch();
                        rescan = true;
                    }
                    ensure_own_file();
                });
                check_liveness();
                if (rescan) {
                    continue;
                }
            }

            auto deadline = next_liveness;
            {
                std::lock_guard lock(mutex_);
                if (pending_) {
                    deadline = std::min(deadline, pending_since_ + kCoalesce);
                }
            }
            if (inotify_fd_ < 0) {
                deadline = std::min(deadline, Clock::now() + kDirectoryPoll);
            }
            const auto wait = std::chrono::ceil<std::chrono::milliseconds>(deadline - Clock::now());
            pollfd fds[2] = {{inotify_fd_, POLLIN, 0}, {wake_fd_, POLLIN, 0}};
            const int ready = ::poll(fds + (inotify_fd_ < 0 ? 1 : 0), inotify_fd_ < 0 ? 1 : 2,
                                     static_cast<int>(std::max<std::int64_t>(wait.count(), 0)));
            if (inotify_fd_ < 0) {
                rescan = directory_changed() || rescan;
            }
            if (ready <= 0) {
                continue;
            }
            if ((fds[1].revents & POLLIN) != 0) {
                std::uint64_t count = 0;
                [[maybe_unused]] const ssize_t n = ::read(wake_fd_, &count, sizeof count);
            }
            if ((fds[0].revents & POLLIN) != 0) {
                rescan = read_events() || rescan;
            }
        }
    }

    // Without inotify: whether the directory's entries may have changed since the last look. Writers
    // rename files into place, which changes the directory's mtime; a change within the clock's
    // granularity could hide a second one, so a directory changed in the last second is rescanned.
    bool directory_changed() {
        struct stat st {};
        if (::stat(dir_.c_str(), &st) != 0) {
            watching_ = false;
            return false;
        }
        const std::int64_t mtime = static_cast<std::int64_t>(st.st_mtim.tv_sec) * 1'000'000'000 + st.st_mtim.tv_nsec;
        timespec now{};
        ::clock_gettime(CLOCK_REALTIME, &now);
        const std::int64_t now_ns = static_cast<std::int64_t>(now.tv_sec) * 1'000'000'000 + now.tv_nsec;
        const bool changed = mtime != directory_mtime_ || now_ns - mtime < 1'000'000'000;
        directory_mtime_ = mtime;
        return changed;
    }

    // Examines every file named by the pending inotify events. @returns true when a full rescan is
    // needed (the queue overflowed, or the directory itself went away).
    bool read_events() {
        std::set<std::string> changed;
        bool rescan = false;
        alignas(inotify_event) char buf[16 * 1024];
        for (;;) {
            const ssize_t n = ::read(inotify_fd_, buf, sizeof buf);
            if (n <= 0) {
                break;
            }
            for (std::size_t at = 0; at + sizeof(inotify_event) <= static_cast<std::size_t>(n);) {
                inotify_event event;
                std::memcpy(&event, buf + at, sizeof event);
                const std::string_view name(event.len > 0 ? buf + at + sizeof(inotify_event) : "",
                                            event.len > 0 ? ::strnlen(buf + at + sizeof(inotify_event), event.len) : 0);
                at += sizeof(inotify_event) + event.len;
                if ((event.mask & IN_Q_OVERFLOW) != 0) {
                    rescan = true;
                } else if ((event.mask & (IN_IGNORED | IN_DELETE_SELF | IN_MOVE_SELF)) != 0) {
                    // Our directory was removed or moved: recreate and re-watch it at the next tick.
                    watching_ = false;
                } else if (name.size() > kSuffix.size() && name.ends_with(kSuffix) && name != own_name_) {
                    changed.emplace(name);
                }
            }
        }
        guarded("scan failed", scan_failure_, [&] {
            for (const auto& file : changed) {
                examine(file);
            }
        });
        return rescan;
    }

    // A failure that persists (a full disk, a removed parent directory) is logged once, not once a
    // second; the next different failure or a recovery re-arms it.
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
        write_own_file(self_);
    }

    // Only after an overflow, a re-watch or at start: every file, examined by its signature.
    void scan_all() {
        DIR* dir = ::opendir(dir_.c_str());
        if (dir == nullptr) {
            return;
        }
        std::set<std::string> present;
        while (const dirent* entry = ::readdir(dir)) {
            const std::string_view name = entry->d_name;
            if (name.size() > kSuffix.size() && name.ends_with(kSuffix) && name != own_name_) {
                present.emplace(name);
            }
        }
        ::closedir(dir);
        std::vector<std::string> gone;
        for (const auto& [file, seen] : seen_) {
            if (!present.contains(file)) {
                gone.push_back(file);
            }
        }
        for (const auto& file : gone) {
            forget(file);
        }
        for (const auto& file : present) {
            examine(file);
        }
    }

    // Peers on this host whose process is gone: their file is stale (kill -9 leaves it behind). A
    // tick checks at most kLivenessChecks peers, taking turns from where the last tick stopped: in
    // a mesh of N nodes every peer is still checked by about kLivenessChecks nodes a second (and the
    // first to see it dead removes its file, which the others see), for O(N) work in all, not O(N^2).
    void check_liveness() {
        std::vector<std::string> dead;
        auto it = seen_.upper_bound(liveness_cursor_);
        for (std::size_t checked = 0; checked < std::min(kLivenessChecks, seen_.size()); ++checked, ++it) {
            if (it == seen_.end()) {
                it = seen_.begin();
            }
            liveness_cursor_ = it->first;
            if (it->second.advert.host == self_.host && process_is_dead(it->second.advert.pid)) {
                dead.push_back(it->first);
            }
        }
        for (const auto& file : dead) {
            const std::string path = dir_ + "/" + file;
            log(LogLevel::debug, "local discovery: removing stale " + path + " (pid " +
                                     std::to_string(seen_[file].advert.pid) + " is gone)");
            ::unlink(path.c_str());
            forget(file);
        }
    }

    void forget(const std::string& file) {
        const auto it = seen_.find(file);
        if (it == seen_.end()) {
            return;
        }
        const bool reported = it->second.reported;
        const std::string id = it->second.advert.id;
        seen_.erase(it);
        if (reported) {
            report_down(id);
        }
    }

    // Reads one .node file if it changed, and reports what changed about its peer.
    void examine(const std::string& file) {
        const std::string path = dir_ + "/" + file;
        struct stat st {};
        if (::lstat(path.c_str(), &st) != 0 || !S_ISREG(st.st_mode)) {
            forget(file);
            return;
        }
        const FileSignature signature = signature_of(st);
        const auto known = seen_.find(file);
        if (known != seen_.end() && known->second.signature == signature) {
            return;
        }
        Seen now;
        now.signature = signature;
        std::string text;
        if (!read_file(path, text)) {
            forget(file);
            return;
        }
        Advert advert;
        std::string reason;
        const std::string stem = file.substr(0, file.size() - kSuffix.size());
        if (!advert_from_file_text(text, advert, &reason) || advert.id != stem) {
            warn_once(path, "local discovery: ignoring " + path + ": " +
                                (reason.empty() ? std::string("id differs from the file name") : reason));
        } else if (advert.id != self_.id && advert.domain == self_.domain) {
            std::string note;
            const std::string refused = check_peer_advert(advert, self_, socket_dirs_, note);
            if (!note.empty()) {
                warn_once(advert.id + note, "local discovery: node " + advert.name + " (" + advert.id + "): " + note);
            }
            if (!refused.empty()) {
                warn_once(advert.id + refused,
                          "local discovery: ignoring node " + advert.name + " (" + advert.id + "): " + refused);
            } else {
                now.valid = true;
                if (advert.tcp_port != 0 && advert.tcp_address.empty()) {
                    advert.tcp_address = "127.0.0.1";
                } else if (advert.tcp_port == 0) {
                    advert.tcp_address.clear();
                }
            }
        }
        now.advert = std::move(advert);
        // A pid from another host (a directory shared with a container) cannot be checked here.
        if (now.advert.host == self_.host && process_is_dead(now.advert.pid)) {
            log(LogLevel::debug,
                "local discovery: removing stale " + path + " (pid " + std::to_string(now.advert.pid) + " is gone)");
            ::unlink(path.c_str());
            forget(file);
            return;
        }
        Seen* old = known != seen_.end() ? &known->second : nullptr;
        if (old != nullptr && old->reported && (!now.valid || old->advert.id != now.advert.id)) {
            report_down(old->advert.id);
        } else if (old != nullptr && old->reported && old->advert == now.advert) {
            now.reported = true;
        }
        if (now.valid && !now.reported) {
            report_up(now.advert);
            now.reported = true;
        }
        seen_[file] = std::move(now);
    }

    // One line per peer and problem, not one per change of its file (bounded: a flood of bad
    // files cannot grow this without limit).
    void warn_once(const std::string& key, const std::string& message) {
        if (warned_.size() >= 1024) {
            warned_.clear();
        }
        if (warned_.insert(key).second) {
            log(LogLevel::warn, message);
        }
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

    std::mutex api_mutex_;  // serializes start(), update() and stop(); never held by the thread
    std::mutex mutex_;      // guards stop_requested_ and the pending update, so events are never delivered under it
    bool stop_requested_ = false;
    std::optional<Advert> pending_;
    std::chrono::steady_clock::time_point pending_since_;
    bool running_ = false;
    std::thread thread_;
    int inotify_fd_ = -1;
    int wake_fd_ = -1;  // eventfd: update() and stop() wake the thread through it

    // Written by start() before the thread exists, then only touched by the thread until stop() joins it.
    Advert self_;
    DiscoveryEvents events_;
    std::vector<std::string> socket_dirs_;
    std::string dir_;
    std::string own_name_;
    std::string own_file_;
    bool watching_ = false;
    std::int64_t directory_mtime_ = 0;
    std::string liveness_cursor_;       // the file whose peer check_liveness() looked at last  // without inotify: the
                                        // directory's mtime at the last look
    std::map<std::string, Seen> seen_;  // by file name
    std::set<std::string> warned_;
    std::string own_file_failure_;  // the last failure logged per activity, to log each one once
    std::string scan_failure_;
};

}  // namespace

std::unique_ptr<Discovery> make_local_discovery() {
    return std::make_unique<LocalDiscovery>();
}

}  // namespace meshy::detail
