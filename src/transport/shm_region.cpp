#include "transport/shm_region.hpp"

#include <fcntl.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <utility>

namespace meshy::detail {
namespace {

constexpr int required_seals = F_SEAL_SHRINK | F_SEAL_GROW;

std::string errno_text(const char* what) {
    return std::string(what) + ": " + std::strerror(errno);
}

}  // namespace

ShmRegion::~ShmRegion() {
    reset();
}

ShmRegion::ShmRegion(ShmRegion&& other) noexcept
    : fd_(std::exchange(other.fd_, -1)),
      map_(std::exchange(other.map_, nullptr)),
      size_(std::exchange(other.size_, 0)) {
}

ShmRegion& ShmRegion::operator=(ShmRegion&& other) noexcept {
    if (this != &other) {
        reset();
        fd_ = std::exchange(other.fd_, -1);
        map_ = std::exchange(other.map_, nullptr);
        size_ = std::exchange(other.size_, 0);
    }
    return *this;
}

void ShmRegion::reset() noexcept {
    if (map_ != nullptr) {
        ::munmap(map_, size_);
        map_ = nullptr;
    }
    close_fd();
    size_ = 0;
}

void ShmRegion::close_fd() noexcept {
    if (fd_ >= 0) {
        ::close(fd_);
        fd_ = -1;
    }
}

ShmRegion ShmRegion::create(std::size_t bytes, const char* name, std::string& error, bool peers_read_only) {
    ShmRegion region;
    region.fd_ = ::memfd_create(name, MFD_CLOEXEC | MFD_ALLOW_SEALING);
    if (region.fd_ < 0) {
        error = errno_text("memfd_create");
        return {};
    }
    if (::ftruncate(region.fd_, static_cast<off_t>(bytes)) != 0) {
        error = errno_text("ftruncate");
        return {};
    }
    // Sealed before the peer sees it: neither end can shrink it under the other's mapping (which
    // would turn an access into SIGBUS) nor grow it.
    if (::fcntl(region.fd_, F_ADD_SEALS, required_seals | (peers_read_only ? 0 : F_SEAL_SEAL)) != 0) {
        error = errno_text("sealing the memfd");
        return {};
    }
    // A ring (shared both ways) is used round and round, so all of its pages are touched within its
    // first lap; touching them now keeps a first touch of shared memory (allocating and zeroing the
    // page, then mapping it into each process) out of the messages of that lap. A loan pool (the
    // peers' copy is read-only) is left to fill as blocks are used: it is larger, and often sparse.
    const int populate = peers_read_only ? 0 : MAP_POPULATE;
    region.map_ = ::mmap(nullptr, bytes, PROT_READ | PROT_WRITE, MAP_SHARED | populate, region.fd_, 0);
    if (region.map_ == MAP_FAILED) {
        region.map_ = nullptr;
        error = errno_text("mmap");
        return {};
    }
    region.size_ = bytes;
    // This mapping stays writable; any made later (a peer's) cannot be, nor become so (mprotect).
    if (peers_read_only && ::fcntl(region.fd_, F_ADD_SEALS, F_SEAL_FUTURE_WRITE | F_SEAL_SEAL) != 0) {
        error = errno_text("sealing the memfd against writes");
        return {};
    }
    return region;
}

ShmRegion ShmRegion::adopt(int fd, std::size_t max_bytes, bool (*valid_size)(std::size_t), std::string& error) {
    return map_peer(fd, max_bytes, valid_size, "a ring", "a page of header and a power of two", true, error);
}

ShmRegion ShmRegion::adopt_read_only(int fd, std::size_t max_bytes, std::string& error) {
    const auto whole_pages = [](std::size_t size) {
        return size % static_cast<std::size_t>(::sysconf(_SC_PAGESIZE)) == 0;
    };
    auto region = map_peer(fd, max_bytes, whole_pages, "a loan pool", "whole pages", false, error);
    region.close_fd();  // the mapping keeps the memory; nothing else needs the descriptor
    return region;
}

ShmRegion ShmRegion::map_peer(int fd,
                              std::size_t max_bytes,
                              bool (*valid_size)(std::size_t),
                              const char* what,
                              const char* shape,
                              bool writable,
                              std::string& error) {
    ShmRegion region;
    region.fd_ = fd;
    struct stat st {};
    if (::fstat(fd, &st) != 0) {
        error = errno_text("fstat");
        return {};
    }
    if (!S_ISREG(st.st_mode)) {
        error = "not a memory file";
        return {};
    }
    const int seals = ::fcntl(fd, F_GET_SEALS);
    if (seals < 0 || (seals & required_seals) != required_seals) {
        error = "the memory file is not sealed against resizing";
        return {};
    }
    const auto size = static_cast<std::size_t>(st.st_size);
    if (st.st_size <= 0 || size > max_bytes || !valid_size(size)) {
        error = std::string(what) + " of " + std::to_string(st.st_size) + " bytes (at most " +
                std::to_string(max_bytes) + " allowed, " + shape + ")";
        return {};
    }
    // A ring's pages are mapped now, as its creator's are (see create()); size is bounded above.
    region.map_ = ::mmap(nullptr, size, writable ? PROT_READ | PROT_WRITE : PROT_READ,
                         MAP_SHARED | (writable ? MAP_POPULATE : 0), fd, 0);
    if (region.map_ == MAP_FAILED) {
        region.map_ = nullptr;
        error = errno_text("mmap");
        return {};
    }
    region.size_ = size;
    return region;
}

}  // namespace meshy::detail
