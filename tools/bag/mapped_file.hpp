// A file mapped read-only into memory: the reader parses a bag as one byte range, and reading the
// summary of a complete bag touches only its last pages.
#pragma once

#include <string>

#include "bag/mcap_format.hpp"

namespace meshy::bag {

class MappedFile {
public:
    /// @throws mcap::McapError "cannot open PATH: REASON" (missing, unreadable, a directory, ...)
    explicit MappedFile(std::string path);
    ~MappedFile();
    MappedFile(const MappedFile&) = delete;
    MappedFile& operator=(const MappedFile&) = delete;

    mcap::ByteView bytes() const noexcept { return {static_cast<const std::byte*>(data_), size_}; }
    const std::string& path() const noexcept { return path_; }

private:
    std::string path_;
    void* data_ = nullptr;
    std::size_t size_ = 0;
};

}  // namespace meshy::bag
