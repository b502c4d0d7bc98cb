// `meshy launch`'s guardian: a small process forked at start-up that stops the nodes when launch
// itself dies without doing so (kill -9, a crash). Each node runs in a process group of its own;
// launch tells the guardian every group it starts and every group that has ended, through a pipe.
// When the pipe closes without a goodbye, launch is gone: the guardian signals every group it
// still knows (SIGTERM, then SIGKILL after a grace period) and exits. PR_SET_PDEATHSIG alone does
// not do this: it reaches only launch's direct children, not what a `/bin/sh -c` started.
#pragma once

#include <sys/types.h>

#include <chrono>

namespace meshy::cli::launch {

class Guardian {
public:
    Guardian() = default;
    /// Dismisses the guardian (see dismiss()).
    ~Guardian();
    Guardian(const Guardian&) = delete;
    Guardian& operator=(const Guardian&) = delete;

    /// Forks the guardian. `grace`: how long it waits between SIGTERM and SIGKILL. Call from a
    /// single-threaded process. @throws std::runtime_error when pipe() or fork() fails.
    void start(std::chrono::milliseconds grace);
    /// The process group `pgid` belongs to a node: stop it if launch dies.
    void watch(pid_t pgid);
    /// The process group `pgid` has no member left: forget it (its id may be reused).
    void forget(pid_t pgid);
    /// Launch ends normally (every node is stopped): the guardian exits without signalling.
    void dismiss();

private:
    void tell(pid_t record);

    int fd_ = -1;
    pid_t pid_ = -1;
};

}  // namespace meshy::cli::launch
