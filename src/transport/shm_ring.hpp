// Internal: a single-producer/single-consumer byte ring in a shared mapping, carrying whole meshy
// frames in order between two processes of one host (docs/shm.md).
//
// Layout of the mapping: one page of header (each index and flag on its own cache line), then the
// data, a power of two of bytes. The indices are byte counts that only grow; a position in the data
// is the index modulo the capacity. Each side keeps its own index privately and only publishes it:
// what it reads from the mapping is the other side's index, which it checks before using, since the
// peer is untrusted (a bad value is an error for that link, never an out-of-bounds access).
//
// A frame becomes visible to the reader only when the writer release-stores its write index after
// all the frame's bytes are in, so a writer killed mid-frame never exposes part of a frame, unless
// the frame is larger than the ring: such a frame streams through it in pieces, which the reader
// reassembles in its own buffer like bytes from a socket.
#pragma once

#include <cstddef>
#include <cstdint>
#include <span>
#include <string>

namespace meshy::detail {

/// Where things lie in a ring's mapping.
struct ShmRingLayout {
    static constexpr std::size_t header_bytes = 4096;
    static constexpr std::size_t write_offset = 0;             ///< u64: bytes published by the writer
    static constexpr std::size_t read_offset = 64;             ///< u64: bytes consumed by the reader
    static constexpr std::size_t reader_waiting_offset = 128;  ///< u32: the reader sleeps (wake it)
    static constexpr std::size_t writer_waiting_offset = 192;  ///< u32: the writer sleeps (wake it)
    static constexpr std::size_t min_capacity = 4096;
    static constexpr std::size_t max_capacity = std::size_t{1} << 30;

    /// True when `mapping_bytes` is a header and a power of two of data within the bounds.
    static bool valid_size(std::size_t mapping_bytes) noexcept;
    /// The mapping size for a ring of at least `capacity` bytes of data (rounded up to a power of two).
    static std::size_t mapping_size(std::size_t capacity) noexcept;
};

/// The writing end of a ring over `region` (a whole mapping; not owned).
class ShmRingWriter {
public:
    /// What write() did.
    struct Wrote {
        std::size_t taken = 0;     ///< bytes of the input copied into the ring
        bool wake_reader = false;  ///< the reader sleeps: signal it (its eventfd)
        bool bad_peer = false;     ///< the reader's index is impossible: close the link
    };

    /// @param region the mapping; valid_size(region.size()) must hold. The ring starts empty: the
    /// creator of a mapping zeroes it (a fresh memfd is zeroed).
    explicit ShmRingWriter(std::span<std::byte> region) noexcept;

    /// Copies as much of `bytes` (the next bytes of a stream of frames) as there is room for, then
    /// publishes every frame completed so far, and the bytes of a frame larger than the ring.
    Wrote write(std::span<const std::byte> bytes) noexcept;
    /// write() of `parts` one after the other, published once: a batch of small frames costs one
    /// look at the reader's index and one store of the write index, not one per frame.
    Wrote write(std::span<const std::span<const std::byte>> parts) noexcept;
    /// Room for this many bytes now (0 when full, or when the reader's index is bad).
    std::size_t room() const noexcept;
    /// Before sleeping for room: says so in the header, then looks again.
    /// @returns true when there is room after all (do not sleep; the flag is cleared).
    bool announce_waiting() noexcept;
    /// Clears the flag announce_waiting() set (after a wake-up).
    void clear_waiting() noexcept;
    /// Bytes written and not yet consumed by the reader (as it last published).
    std::size_t unread() const noexcept;
    std::size_t capacity() const noexcept { return capacity_; }

private:
    /// The reader's index, checked; false when impossible.
    bool load_read(std::uint64_t& read) const noexcept;
    void note_frames(std::span<const std::byte> bytes) noexcept;

    std::byte* base_;
    std::byte* data_;
    std::size_t capacity_;
    std::uint64_t written_ = 0;    // bytes copied in (private)
    std::uint64_t published_ = 0;  // bytes made visible
    std::uint64_t boundary_ = 0;   // where the last complete frame ends
    // The frame being written: its length prefix as it arrives, then the bytes it still lacks.
    std::uint64_t frame_left_ = 0;
    std::uint64_t frame_total_ = 0;
    std::uint32_t prefix_ = 0;
    unsigned prefix_got_ = 0;
};

/// The reading end of a ring over `region` (a whole mapping; not owned).
class ShmRingReader {
public:
    /// What read() did.
    struct Read {
        std::size_t bytes = 0;     ///< bytes copied out
        bool wake_writer = false;  ///< the writer sleeps for room: signal it
        bool bad_peer = false;     ///< the writer's index is impossible: close the link (`why`)
    };

    explicit ShmRingReader(std::span<std::byte> region) noexcept;

    /// Copies up to `into.size()` published bytes out of the ring and frees their room.
    /// On bad_peer, `why` says what was wrong.
    Read read(std::span<std::byte> into, std::string& why) noexcept;
    /// True when published bytes wait (an impossible index counts: read() then reports it).
    bool readable() const noexcept;
    /// Before sleeping: says so in the header, then looks again.
    /// @returns true when bytes arrived after all (do not sleep; the flag is cleared).
    bool announce_waiting() noexcept;
    /// Clears the flag announce_waiting() set (after a wake-up).
    void clear_waiting() noexcept;
    std::size_t capacity() const noexcept { return capacity_; }

private:
    std::byte* base_;
    std::byte* data_;
    std::size_t capacity_;
    std::uint64_t read_ = 0;  // bytes consumed (private)
};

}  // namespace meshy::detail
