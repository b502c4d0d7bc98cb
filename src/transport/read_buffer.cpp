#include "transport/read_buffer.hpp"

#include <algorithm>
#include <cstdint>
#include <cstring>

namespace meshy::detail {
namespace {

constexpr std::size_t read_offset = 512;   // page offset of the bytes a read receives
constexpr std::size_t origin_room = 4096;  // room before the bytes for aligned_read_start()
// A buffer up to this size costs no budget: every connection has one.
constexpr std::size_t free_capacity = read_chunk + origin_room;

}  // namespace

ReadBuffer::ReadBuffer(std::shared_ptr<ReceiveBudget> budget) : budget_(std::move(budget)) {
}

ReadBuffer::~ReadBuffer() {
    give_back(charged_read_);
    give_back(charged_spare_);
}

std::size_t ReadBuffer::aligned_read_start(const Buffer& b, std::size_t unparsed) noexcept {
    const auto next_read = reinterpret_cast<std::uintptr_t>(b.data()) + unparsed;
    return static_cast<std::size_t>((read_offset - next_read % 4096 + 4096) % 4096);
}

void ReadBuffer::start(std::size_t capacity) {
    buf_ = std::make_shared<Buffer>();
    buf_->reserve(capacity + origin_room);
    buf_->resize(buf_->capacity());
    begin_ = end_ = aligned_read_start(*buf_, 0);
}

void ReadBuffer::settle() {
    if (buf_->capacity() < free_capacity) {
        fresh(read_chunk);  // within the free capacity: never refused
    }
}

void ReadBuffer::consume(std::size_t n) noexcept {
    begin_ += n;
    want_ = 0;
    if (n >= read_chunk) {
        large_hint_ = n;
    }
}

bool ReadBuffer::take(std::size_t bytes) {
    return bytes == 0 || !budget_ || budget_->try_take(bytes);
}

void ReadBuffer::give_back(std::size_t& bytes) noexcept {
    if (bytes != 0 && budget_) {
        budget_->give_back(bytes);
    }
    bytes = 0;
}

bool ReadBuffer::frame_needs(std::size_t needed) {
    want_ = needed;
    if (needed <= buf_->capacity() - begin_) {
        return true;
    }
    if (needed <= read_chunk) {
        return fresh(read_chunk);
    }
    // What arrived so far, doubled: a peer claiming a large frame pays for the memory it gets with
    // bytes it actually sends.
    const std::size_t have = end_ - begin_;
    return fresh(std::min(needed, std::max(read_chunk, 2 * have)) + read_chunk);
}

bool ReadBuffer::fresh(std::size_t capacity) {
    capacity += origin_room;
    const std::size_t charge = capacity > free_capacity ? capacity - free_capacity : 0;
    std::shared_ptr<Buffer> next;
    std::size_t next_charge = 0;
    if (spare_ && spare_.use_count() == 1 && spare_->capacity() >= capacity) {
        next = std::move(spare_);
        next_charge = std::exchange(charged_spare_, 0);
    } else {
        if (!take(charge)) {
            // The spare's memory is what this connection can give up first.
            spare_.reset();
            give_back(charged_spare_);
            if (!take(charge)) {
                return false;
            }
        }
        next_charge = charge;
        next = std::make_shared<Buffer>();
        next->reserve(capacity);
    }
    next->resize(next->capacity());
    const std::size_t at = aligned_read_start(*next, end_ - begin_);
    if (end_ > begin_) {
        std::memcpy(next->data() + at, buf_->data() + begin_, end_ - begin_);
    }
    end_ = at + (end_ - begin_);
    begin_ = at;
    give_back(charged_spare_);
    spare_.reset();
    if (buf_->capacity() >= capacity) {
        // As large as this one: the next buffer, once unshared (large frames alternate the two).
        spare_ = std::move(buf_);
        charged_spare_ = charged_read_;
    } else {
        give_back(charged_read_);  // outgrown
    }
    charged_read_ = next_charge;
    buf_ = std::move(next);
    return true;
}

bool ReadBuffer::next_read(std::span<std::byte>& into) {
    const bool shared = buf_.use_count() > 1;
    const std::size_t capacity = buf_->capacity();
    if (begin_ == end_ && !shared) {
        begin_ = end_ = aligned_read_start(*buf_, 0);
    } else if (begin_ == end_ && capacity - end_ < read_chunk && capacity >= free_capacity) {
        // Listeners still hold this buffer and little room is left: the next read goes to another
        // one now, while there is nothing to copy (a large frame read here would otherwise be
        // copied once its length showed it does not fit).
        if (!fresh(capacity - origin_room)) {
            return false;
        }
    } else if (capacity - end_ < read_chunk / 4 && begin_ > origin_room) {
        if (shared) {
            if (!fresh(capacity - origin_room)) {
                return false;
            }
        } else {
            const std::size_t at = aligned_read_start(*buf_, end_ - begin_);
            std::memmove(buf_->data() + at, buf_->data() + begin_, end_ - begin_);
            end_ = at + (end_ - begin_);
            begin_ = at;
        }
    }
    // Large frames (read_chunk and up) are read to their end exactly, and the next one starts a
    // read in a buffer with room for one as large: their bytes are never copied in user space.
    if (begin_ == end_ && large_hint_ && buf_->capacity() - end_ < large_hint_ + read_chunk) {
        if (!fresh(large_hint_ + read_chunk)) {  // nothing to copy yet
            return false;
        }
    }
    if (buf_->capacity() == end_ && !fresh(end_ - begin_ + read_chunk)) {
        return false;
    }
    std::size_t room = buf_->capacity() - end_;
    if (want_ >= read_chunk && begin_ + want_ > end_) {
        room = std::min(room, begin_ + want_ - end_);  // to the end of this large frame
    } else if (want_ == 0 && large_hint_) {
        room = std::min(room, large_hint_);  // likely the end of the next one, if alike
    }
    into = {buf_->data() + end_, room};
    return true;
}

}  // namespace meshy::detail
