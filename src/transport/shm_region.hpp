// Internal: one shared mapping of a memfd (a ring, docs/shm.md). Nothing is created under /dev/shm:
// the memory lives as long as a descriptor or a mapping of it does, so it goes when both ends die.
#pragma once

#include <cstddef>
#include <span>
#include <string>

namespace meshy::detail {

/// A memfd mapped read-write and shared; owns both the descriptor and the mapping.
class ShmRegion {
public:
    ShmRegion() = default;
    ~ShmRegion();
    ShmRegion(ShmRegion&& other) noexcept;
    ShmRegion& operator=(ShmRegion&& other) noexcept;
    ShmRegion(const ShmRegion&) = delete;
    ShmRegion& operator=(const ShmRegion&) = delete;

    /// A new zeroed region of `bytes`, sealed against shrinking and growing (a peer that maps it
    /// can rely on its size). `name` shows in /proc/<pid>/maps as "/memfd:<name>".
    /// @returns an empty region on failure (`error` says why).
    /// With `peers_read_only`, the memfd is also sealed against writes (F_SEAL_FUTURE_WRITE) once
    /// this mapping is made: a peer given the descriptor can map it read-only, never writable.
    /// Without it (a ring), every page is allocated and mapped now (MAP_POPULATE).
    static ShmRegion create(std::size_t bytes, const char* name, std::string& error, bool peers_read_only = false);
    /// Maps a region a peer passed: `fd` is adopted (closed on failure too). It must be a memfd
    /// sealed against shrinking and growing, of a size that `valid_size` accepts and at most
    /// `max_bytes`. Every page is mapped now, as create() does for a ring.
    /// @returns an empty region on failure (`error` says why).
    static ShmRegion adopt(int fd, std::size_t max_bytes, bool (*valid_size)(std::size_t), std::string& error);

    /// Maps a loan pool a peer passed, read-only: `fd` is adopted (closed on failure too). It must be
    /// a memfd sealed against resizing, a whole number of pages, at most `max_bytes`.
    static ShmRegion adopt_read_only(int fd, std::size_t max_bytes, std::string& error);

    explicit operator bool() const noexcept { return map_ != nullptr; }
    std::span<std::byte> bytes() const noexcept { return {static_cast<std::byte*>(map_), size_}; }
    /// The descriptor (for passing it to the peer); -1 when empty.
    int fd() const noexcept { return fd_; }
    /// Closes the descriptor and keeps the mapping (once passed on, the descriptor is not needed).
    void close_fd() noexcept;

private:
    /// Checks and maps a memfd a peer passed (see adopt); `what` and `shape` name it in errors.
    static ShmRegion map_peer(int fd,
                              std::size_t max_bytes,
                              bool (*valid_size)(std::size_t),
                              const char* what,
                              const char* shape,
                              bool writable,
                              std::string& error);
    void reset() noexcept;

    int fd_ = -1;
    void* map_ = nullptr;
    std::size_t size_ = 0;
};

}  // namespace meshy::detail
