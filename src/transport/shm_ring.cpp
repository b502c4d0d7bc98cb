#include "transport/shm_ring.hpp"

#include <algorithm>
#include <atomic>
#include <bit>
#include <cstring>

namespace meshy::detail {
namespace {

static_assert(std::atomic_ref<std::uint64_t>::is_always_lock_free, "the ring needs lock-free 64-bit atomics");
static_assert(std::atomic_ref<std::uint32_t>::is_always_lock_free, "the ring needs lock-free 32-bit atomics");

std::atomic_ref<std::uint64_t> index_at(std::byte* base, std::size_t offset) noexcept {
    return std::atomic_ref<std::uint64_t>(*reinterpret_cast<std::uint64_t*>(base + offset));
}
std::atomic_ref<std::uint32_t> flag_at(std::byte* base, std::size_t offset) noexcept {
    return std::atomic_ref<std::uint32_t>(*reinterpret_cast<std::uint32_t*>(base + offset));
}

/// Copies `n` bytes of `from` into the ring at stream position `at`, wrapping at the end.
void copy_in(std::byte* data, std::size_t capacity, std::uint64_t at, const std::byte* from, std::size_t n) noexcept {
    const std::size_t pos = static_cast<std::size_t>(at & (capacity - 1));
    const std::size_t first = std::min(n, capacity - pos);
    std::memcpy(data + pos, from, first);
    if (first < n) {
        std::memcpy(data, from + first, n - first);
    }
}

void copy_out(const std::byte* data, std::size_t capacity, std::uint64_t at, std::byte* to, std::size_t n) noexcept {
    const std::size_t pos = static_cast<std::size_t>(at & (capacity - 1));
    const std::size_t first = std::min(n, capacity - pos);
    std::memcpy(to, data + pos, first);
    if (first < n) {
        std::memcpy(to + first, data, n - first);
    }
}

}  // namespace

bool ShmRingLayout::valid_size(std::size_t mapping_bytes) noexcept {
    if (mapping_bytes <= header_bytes) {
        return false;
    }
    const std::size_t capacity = mapping_bytes - header_bytes;
    return std::has_single_bit(capacity) && capacity >= min_capacity && capacity <= max_capacity;
}

std::size_t ShmRingLayout::mapping_size(std::size_t capacity) noexcept {
    return header_bytes + std::bit_ceil(std::clamp(capacity, min_capacity, max_capacity));
}

// --- writer ---------------------------------------------------------------------------------------

ShmRingWriter::ShmRingWriter(std::span<std::byte> region) noexcept
    : base_(region.data()),
      data_(region.data() + ShmRingLayout::header_bytes),
      capacity_(region.size() - ShmRingLayout::header_bytes) {
}

bool ShmRingWriter::load_read(std::uint64_t& read) const noexcept {
    read = index_at(base_, ShmRingLayout::read_offset).load(std::memory_order_acquire);
    // The reader cannot have consumed what was not published, nor left more than the ring holds.
    return read <= published_ && written_ - read <= capacity_;
}

std::size_t ShmRingWriter::room() const noexcept {
    std::uint64_t read = 0;
    if (!load_read(read)) {
        return 0;
    }
    return capacity_ - static_cast<std::size_t>(written_ - read);
}

std::size_t ShmRingWriter::unread() const noexcept {
    std::uint64_t read = 0;
    if (!load_read(read)) {
        return 0;
    }
    return static_cast<std::size_t>(written_ - read);
}

void ShmRingWriter::note_frames(std::span<const std::byte> bytes) noexcept {
    // The writer's own stream of frames (trusted): follows the length prefixes to know where each
    // frame ends, so that only whole frames are published.
    std::uint64_t at = written_;
    while (!bytes.empty()) {
        if (frame_left_ == 0) {
            prefix_ |= static_cast<std::uint32_t>(std::to_integer<unsigned>(bytes.front())) << (8 * prefix_got_);
            ++prefix_got_;
            bytes = bytes.subspan(1);
            ++at;
            if (prefix_got_ == 4) {
                frame_left_ = prefix_;
                frame_total_ = std::uint64_t{4} + prefix_;
                prefix_ = 0;
                prefix_got_ = 0;
                if (frame_left_ == 0) {
                    boundary_ = at;
                }
            }
            continue;
        }
        const std::uint64_t n = std::min<std::uint64_t>(frame_left_, bytes.size());
        frame_left_ -= n;
        at += n;
        bytes = bytes.subspan(static_cast<std::size_t>(n));
        if (frame_left_ == 0) {
            boundary_ = at;
        }
    }
}

ShmRingWriter::Wrote ShmRingWriter::write(std::span<const std::byte> bytes) noexcept {
    return write(std::span<const std::span<const std::byte>>(&bytes, 1));
}

ShmRingWriter::Wrote ShmRingWriter::write(std::span<const std::span<const std::byte>> parts) noexcept {
    Wrote out;
    std::uint64_t read = 0;
    if (!load_read(read)) {
        out.bad_peer = true;
        return out;
    }
    std::size_t room = capacity_ - static_cast<std::size_t>(written_ - read);
    for (const auto& part : parts) {
        const std::size_t n = std::min(room, part.size());
        if (n > 0) {
            copy_in(data_, capacity_, written_, part.data(), n);
            note_frames(part.first(n));
            written_ += n;
            out.taken += n;
            room -= n;
        }
        if (n < part.size()) {
            break;
        }
    }
    // Whole frames become visible; a frame the ring cannot hold whole streams through in pieces.
    const std::uint64_t visible = frame_left_ != 0 && frame_total_ > capacity_ ? written_ : boundary_;
    if (visible > published_) {
        published_ = visible;
        // Sequentially consistent with the reader's waiting flag: either it sees these bytes when it
        // looks again after raising the flag, or this sees the flag (see announce_waiting()).
        index_at(base_, ShmRingLayout::write_offset).store(published_, std::memory_order_seq_cst);
        out.wake_reader =
            flag_at(base_, ShmRingLayout::reader_waiting_offset).exchange(0, std::memory_order_seq_cst) != 0;
    }
    return out;
}

bool ShmRingWriter::announce_waiting() noexcept {
    flag_at(base_, ShmRingLayout::writer_waiting_offset).store(1, std::memory_order_seq_cst);
    const std::uint64_t read = index_at(base_, ShmRingLayout::read_offset).load(std::memory_order_seq_cst);
    // An impossible index counts as a change: the next write() reports it.
    if (read > published_ || written_ - read < capacity_) {
        clear_waiting();
        return true;
    }
    return false;
}

void ShmRingWriter::clear_waiting() noexcept {
    flag_at(base_, ShmRingLayout::writer_waiting_offset).store(0, std::memory_order_relaxed);
}

// --- reader ---------------------------------------------------------------------------------------

ShmRingReader::ShmRingReader(std::span<std::byte> region) noexcept
    : base_(region.data()),
      data_(region.data() + ShmRingLayout::header_bytes),
      capacity_(region.size() - ShmRingLayout::header_bytes) {
}

ShmRingReader::Read ShmRingReader::read(std::span<std::byte> into, std::string& why) noexcept {
    Read out;
    // Read once into a local, checked before any use: the writer is another process.
    const std::uint64_t write = index_at(base_, ShmRingLayout::write_offset).load(std::memory_order_acquire);
    if (write < read_ || write - read_ > capacity_) {
        out.bad_peer = true;
        why = "shared-memory ring: write index " + std::to_string(write) + " is impossible (read " +
              std::to_string(read_) + ", capacity " + std::to_string(capacity_) + ")";
        return out;
    }
    const std::size_t n = std::min(static_cast<std::size_t>(write - read_), into.size());
    if (n == 0) {
        return out;
    }
    copy_out(data_, capacity_, read_, into.data(), n);
    read_ += n;
    index_at(base_, ShmRingLayout::read_offset).store(read_, std::memory_order_seq_cst);
    out.bytes = n;
    out.wake_writer = flag_at(base_, ShmRingLayout::writer_waiting_offset).exchange(0, std::memory_order_seq_cst) != 0;
    return out;
}

bool ShmRingReader::readable() const noexcept {
    return index_at(base_, ShmRingLayout::write_offset).load(std::memory_order_acquire) != read_;
}

bool ShmRingReader::announce_waiting() noexcept {
    flag_at(base_, ShmRingLayout::reader_waiting_offset).store(1, std::memory_order_seq_cst);
    if (index_at(base_, ShmRingLayout::write_offset).load(std::memory_order_seq_cst) != read_) {
        clear_waiting();
        return true;
    }
    return false;
}

void ShmRingReader::clear_waiting() noexcept {
    flag_at(base_, ShmRingLayout::reader_waiting_offset).store(0, std::memory_order_relaxed);
}

}  // namespace meshy::detail
