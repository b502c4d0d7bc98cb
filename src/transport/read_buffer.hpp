// Internal: the receive buffer of one connection. Frames are handed on where they arrived (a
// listener keeps a reference to the buffer instead of a copy), so a buffer still shared is never
// written again; the reader moves on to a fresh one (or its spare, once unshared). It grows with
// the bytes that have arrived, never with the length a frame announces, and takes what it holds
// beyond its first chunk from the node's receive budget.
#pragma once

#include <cstddef>
#include <memory>
#include <span>

#include "meshy/buffer.hpp"
#include "transport/receive_budget.hpp"

namespace meshy::detail {

/// The size of one read into a buffer with room; a buffer of one chunk costs no budget.
constexpr std::size_t read_chunk = 256u * 1024;

class ReadBuffer {
public:
    /// @param budget shared by the node's connections; null: unbounded.
    explicit ReadBuffer(std::shared_ptr<ReceiveBudget> budget = nullptr);
    ~ReadBuffer();
    ReadBuffer(const ReadBuffer&) = delete;
    ReadBuffer& operator=(const ReadBuffer&) = delete;

    /// The first buffer, of `capacity` bytes (small until the peer's handshake is in).
    void start(std::size_t capacity);
    /// Grows the buffer to a full chunk (the peer's handshake is in).
    void settle();

    /// The bytes received and not handed on yet.
    std::span<const std::byte> pending() const noexcept { return {buf_->data() + begin_, end_ - begin_}; }
    /// `n` bytes at the start of pending() were handed on.
    void consume(std::size_t n) noexcept;
    /// The frame at the start of pending() is `needed` bytes long, of which pending() holds the
    /// start. Makes room for more of it: at most twice what has arrived, and the whole frame only
    /// once a frame as large arrived before on this connection.
    /// @returns false when the receive budget cannot hold it (nothing changed).
    bool frame_needs(std::size_t needed);
    /// Tidies the buffer and says where the next read goes, in `into`.
    /// @returns false when the receive budget cannot hold what that needs.
    bool next_read(std::span<std::byte>& into);
    /// `n` bytes were read into the span next_read() gave.
    void received(std::size_t n) noexcept { end_ += n; }

    /// The buffer pending() lies in: keeping a reference keeps its bytes.
    const std::shared_ptr<Buffer>& buffer() const noexcept { return buf_; }
    /// Size of the frame being received, once its prefix arrived (0 otherwise).
    std::size_t frame_size() const noexcept { return want_; }
    /// Bytes taken from the budget now.
    std::size_t charged() const noexcept { return charged_read_ + charged_spare_; }

    /// Where in `b` to put `unparsed` bytes so that the next read lands at page offset 512: the
    /// kernel copies into such a destination markedly faster than into one at a page's start.
    static std::size_t aligned_read_start(const Buffer& b, std::size_t unparsed) noexcept;

private:
    /// Moves the unparsed bytes to a buffer of at least `capacity` bytes (the spare, or a new one).
    bool fresh(std::size_t capacity);
    bool take(std::size_t bytes);
    void give_back(std::size_t& bytes) noexcept;

    std::shared_ptr<ReceiveBudget> budget_;
    std::shared_ptr<Buffer> buf_;
    std::shared_ptr<Buffer> spare_;  // the previous buffer, reused once unshared
    std::size_t begin_ = 0;          // start of the unparsed bytes
    std::size_t end_ = 0;            // end of the received bytes
    std::size_t want_ = 0;           // bytes of the frame being received, once known
    std::size_t large_hint_ = 0;     // size of the last large frame
    std::size_t charged_read_ = 0;   // budget held for buf_
    std::size_t charged_spare_ = 0;  // budget held for spare_
};

}  // namespace meshy::detail
