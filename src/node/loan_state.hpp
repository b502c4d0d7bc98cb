// Internal: what a meshy::Loan holds: a block of the node's loan pool, the topic and codec of the
// message built in it. The block goes back to the pool (as far as the sender is concerned) when the
// state goes: listeners that got it as a loan hold it on until they send it back.
#pragma once

#include <cstddef>
#include <memory>
#include <span>
#include <string>

#include "meshy/codec.hpp"
#include "transport/shm_pool.hpp"

namespace meshy::detail {

struct LoanState {
    LoanState(std::shared_ptr<ShmLoanPool> p, ShmLoanPool::Block b, std::string t, CodecId c, std::size_t head)
        : pool(std::move(p)), block(b), topic(std::move(t)), codec(c), head_size(head) {}
    ~LoanState() { pool->release(block.slot, block.generation, ShmPoolAllocator::owner); }
    LoanState(const LoanState&) = delete;
    LoanState& operator=(const LoanState&) = delete;

    /// The whole payload: the codec's head (msgpack's bin header), then the user's bytes.
    std::span<const std::byte> payload() const noexcept { return pool->bytes(block); }
    /// The user's bytes.
    std::span<std::byte> user_bytes() const noexcept { return pool->bytes(block).subspan(head_size); }

    std::shared_ptr<ShmLoanPool> pool;
    ShmLoanPool::Block block;
    std::string topic;
    CodecId codec;
    std::size_t head_size;
};

}  // namespace meshy::detail
