#include "guardian.hpp"

#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstring>
#include <stdexcept>
#include <string>
#include <vector>

namespace meshy::cli::launch {
namespace {

using Clock = std::chrono::steady_clock;

bool group_alive(pid_t pgid) {
    return ::kill(-pgid, 0) == 0 || errno != ESRCH;
}

/// The guardian's whole life: read records until the pipe closes, then act on what it means.
[[noreturn]] void guardian_main(int fd, std::chrono::milliseconds grace) {
    std::vector<pid_t> groups;
    for (;;) {
        pid_t record = 0;
        const ssize_t n = ::read(fd, &record, sizeof record);
        if (n < 0 && errno == EINTR) {
            continue;
        }
        if (n != static_cast<ssize_t>(sizeof record)) {
            break;  // EOF (or a torn record, which only a dying launch leaves): launch is gone
        }
        if (record == 0) {
            ::_exit(0);  // dismissed
        }
        if (record > 0) {
            groups.push_back(record);
        } else {
            std::erase(groups, -record);
        }
    }
    for (const pid_t pgid : groups) {
        ::kill(-pgid, SIGTERM);
    }
    // Bounded: poll the groups until they are gone or the grace period has passed.
    const auto deadline = Clock::now() + grace;
    while (Clock::now() < deadline && std::any_of(groups.begin(), groups.end(), group_alive)) {
        ::poll(nullptr, 0, 50);
    }
    for (const pid_t pgid : groups) {
        if (group_alive(pgid)) {
            ::kill(-pgid, SIGKILL);
        }
    }
    ::_exit(0);
}

}  // namespace

Guardian::~Guardian() {
    dismiss();
}

void Guardian::start(std::chrono::milliseconds grace) {
    int fds[2];
    if (::pipe2(fds, O_CLOEXEC) != 0) {
        throw std::runtime_error(std::string("launch: pipe: ") + std::strerror(errno));
    }
    const pid_t pid = ::fork();
    if (pid < 0) {
        const int e = errno;
        ::close(fds[0]);
        ::close(fds[1]);
        throw std::runtime_error(std::string("launch: fork: ") + std::strerror(e));
    }
    if (pid == 0) {
        // Out of launch's process group, so a terminal's Ctrl-C (which launch handles) does not
        // reach it; SIGINT and SIGTERM stay blocked (inherited mask): only the pipe ends it.
        ::setpgid(0, 0);
        ::signal(SIGPIPE, SIG_IGN);
        ::close(fds[1]);
        // Nor may it hold launch's output pipes open: whoever reads them waits for their end.
        if (const int null = ::open("/dev/null", O_RDWR); null >= 0) {
            ::dup2(null, 0);
            ::dup2(null, 1);
            ::dup2(null, 2);
        }
        const int keep = fds[0];
        for (int fd = 3; fd < keep; ++fd) {
            ::close(fd);
        }
        ::close_range(static_cast<unsigned>(keep) + 1, ~0U, 0);
        guardian_main(keep, grace);
    }
    ::close(fds[0]);
    fd_ = fds[1];
    pid_ = pid;
}

void Guardian::tell(pid_t record) {
    if (fd_ < 0) {
        return;
    }
    ssize_t n = 0;
    do {
        n = ::write(fd_, &record, sizeof record);  // a record is far below PIPE_BUF: written whole
    } while (n < 0 && errno == EINTR);
}

void Guardian::watch(pid_t pgid) {
    tell(pgid);
}

void Guardian::forget(pid_t pgid) {
    tell(-pgid);
}

void Guardian::dismiss() {
    if (fd_ < 0) {
        return;
    }
    tell(0);
    ::close(fd_);
    fd_ = -1;
    int raw = 0;
    while (::waitpid(pid_, &raw, 0) < 0 && errno == EINTR) {
    }
    pid_ = -1;
}

}  // namespace meshy::cli::launch
