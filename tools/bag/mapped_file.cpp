#include "bag/mapped_file.hpp"

#include <fcntl.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>

namespace meshy::bag {

MappedFile::MappedFile(std::string path) : path_(std::move(path)) {
    const int fd = ::open(path_.c_str(), O_RDONLY | O_CLOEXEC);
    if (fd < 0) {
        throw mcap::McapError("cannot open " + path_ + ": " + std::strerror(errno));
    }
    struct stat st {};
    if (::fstat(fd, &st) != 0) {
        const int err = errno;
        ::close(fd);
        throw mcap::McapError("cannot open " + path_ + ": " + std::strerror(err));
    }
    if (!S_ISREG(st.st_mode)) {
        ::close(fd);
        throw mcap::McapError("cannot open " + path_ + ": " +
                              (S_ISDIR(st.st_mode) ? "Is a directory" : "not a regular file"));
    }
    size_ = static_cast<std::size_t>(st.st_size);
    if (size_ > 0) {
        data_ = ::mmap(nullptr, size_, PROT_READ, MAP_PRIVATE, fd, 0);
        if (data_ == MAP_FAILED) {
            const int err = errno;
            data_ = nullptr;
            ::close(fd);
            throw mcap::McapError("cannot read " + path_ + ": " + std::strerror(err));
        }
    }
    ::close(fd);
}

MappedFile::~MappedFile() {
    if (data_) {
        ::munmap(data_, size_);
    }
}

}  // namespace meshy::bag
