// A mutex whose waiters spin briefly before they sleep (glibc's adaptive kind), where the process
// may run on more than one CPU. For a lock held for a few dozen nanoseconds by two threads at a
// high rate (a producer and the link's writer on an outbox): a waiter that sleeps makes the
// holder's unlock a futex system call, which costs more than the critical section itself. On one
// CPU the holder cannot run while a waiter spins, so there it is a plain mutex.
#pragma once

#include <pthread.h>

#include "common/system.hpp"

namespace meshy::detail {

class AdaptiveMutex {
public:
    AdaptiveMutex() noexcept {
#if defined(__GLIBC__)
        if (runs_on_several_cpus()) {
            pthread_mutexattr_t attr;
            ::pthread_mutexattr_init(&attr);
            ::pthread_mutexattr_settype(&attr, PTHREAD_MUTEX_ADAPTIVE_NP);
            ::pthread_mutex_init(&mutex_, &attr);
            ::pthread_mutexattr_destroy(&attr);
            return;
        }
#endif
        ::pthread_mutex_init(&mutex_, nullptr);
    }
    ~AdaptiveMutex() {
        ::pthread_mutex_destroy(&mutex_);
    }
    AdaptiveMutex(const AdaptiveMutex&) = delete;
    AdaptiveMutex& operator=(const AdaptiveMutex&) = delete;

    void lock() noexcept {
        ::pthread_mutex_lock(&mutex_);
    }
    bool try_lock() noexcept {
        return ::pthread_mutex_trylock(&mutex_) == 0;
    }
    void unlock() noexcept {
        ::pthread_mutex_unlock(&mutex_);
    }

private:
    pthread_mutex_t mutex_;
};

}  // namespace meshy::detail
