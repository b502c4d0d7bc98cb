/// @file
/// `meshy::Buffer`: the growable byte buffer that codecs encode into.
#pragma once

#include <cstddef>
#include <cstring>
#include <memory>
#include <span>
#include <utility>

namespace meshy {

/// A growable byte buffer. Growth does not zero-fill, so encoding a 1 MB payload costs one copy.
/// It offers `write(const char*, size_t)`, the stream interface msgpack-c's packer expects.
class Buffer {
public:
    Buffer() = default;
    /// Moving leaves `other` empty, with no capacity.
    Buffer(Buffer&& other) noexcept
        : bytes_(std::move(other.bytes_)),
          size_(std::exchange(other.size_, 0)),
          capacity_(std::exchange(other.capacity_, 0)) {}
    Buffer& operator=(Buffer&& other) noexcept {
        bytes_ = std::move(other.bytes_);
        size_ = std::exchange(other.size_, 0);
        capacity_ = std::exchange(other.capacity_, 0);
        return *this;
    }
    Buffer(const Buffer& other) { append(other.data(), other.size()); }
    Buffer& operator=(const Buffer& other) {
        if (this != &other) {
            clear();
            append(other.data(), other.size());
        }
        return *this;
    }

    /// Appends `size` bytes.
    void append(const void* data, std::size_t size) {
        if (size == 0) {
            return;
        }
        std::memcpy(grow(size), data, size);
    }
    /// msgpack-c stream interface: appends `size` bytes.
    void write(const char* data, std::size_t size) { append(data, size); }
    /// Extends the buffer by `size` uninitialised bytes. @returns a pointer to the first of them.
    std::byte* grow(std::size_t size) {
        reserve(size_ + size);
        std::byte* at = bytes_.get() + size_;
        size_ += size;
        return at;
    }
    /// Ensures capacity for at least `capacity` bytes in total.
    void reserve(std::size_t capacity) {
        if (capacity <= capacity_) {
            return;
        }
        std::size_t next = capacity_ ? capacity_ * 2 : 64;
        while (next < capacity) {
            next *= 2;
        }
        auto fresh = std::make_unique_for_overwrite<std::byte[]>(next);
        if (size_) {
            std::memcpy(fresh.get(), bytes_.get(), size_);
        }
        bytes_ = std::move(fresh);
        capacity_ = next;
    }
    /// Shrinks or grows the logical size (new bytes are uninitialised).
    void resize(std::size_t size) {
        reserve(size);
        size_ = size;
    }
    /// Drops the contents, keeps the capacity.
    void clear() noexcept { size_ = 0; }

    std::byte* data() noexcept { return bytes_.get(); }
    const std::byte* data() const noexcept { return bytes_.get(); }
    std::size_t size() const noexcept { return size_; }
    std::size_t capacity() const noexcept { return capacity_; }
    bool empty() const noexcept { return size_ == 0; }
    /// The contents as a read-only span.
    std::span<const std::byte> bytes() const noexcept { return {bytes_.get(), size_}; }

private:
    std::unique_ptr<std::byte[]> bytes_;
    std::size_t size_ = 0;
    std::size_t capacity_ = 0;
};

}  // namespace meshy
