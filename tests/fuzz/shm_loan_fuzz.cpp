// Fuzz target: the loan messages of a shared-memory link (src/transport/shm_control.cpp) and the
// pool bookkeeping they drive (src/transport/shm_pool_allocator.cpp). The fuzzer is the peer: it
// sends control bodies (pool, pool_mapped, loaned, release, or garbage) and releases of any block
// id, between this end's own loans. A loaned message is read only where loan_in_pool() allows (as
// the link does, over a pool-sized buffer), and no release may free a block the peer does not hold.
#include <cstddef>
#include <cstdint>
#include <cstdlib>
#include <span>
#include <vector>

#include "fuzz_script.hpp"
#include "transport/shm_control.hpp"
#include "transport/shm_pool_allocator.hpp"

using namespace meshy::detail;

namespace {

void check(bool ok) {
    if (!ok) {
        std::abort();
    }
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
    constexpr std::size_t pool_bytes = 64 * 64;
    constexpr std::uint64_t peer = 1;
    ShmPoolAllocator pool(pool_bytes, 16);
    static const std::vector<std::byte> memory(pool_bytes, std::byte{1});  // the pool a link reads
    static meshy::Buffer frame;                                            // reused: fewer allocations
    std::vector<ShmPoolAllocator::Block> lent;  // blocks this end sent the peer, which it holds
    FuzzScript script{std::span(data, size)};
    unsigned sum = 0;
    for (int steps = 0; steps < 64 && !script.empty(); ++steps) {
        switch (script.byte() % 5) {
            case 0: {  // this end lends a block to the peer
                if (auto b = pool.allocate(std::size_t{script.byte()} * 8 + 1)) {
                    check(pool.hold(b->slot, b->generation, peer));
                    check(pool.release(b->slot, b->generation, ShmPoolAllocator::owner));
                    lent.push_back(*b);
                }
                break;
            }
            case 1: {  // a control body from the peer
                const auto body = script.take(script.byte());
                shm::Control c;
                if (!shm::decode_control(body, c)) {
                    break;
                }
                if (c.kind == shm::ControlKind::loaned && shm::loan_in_pool(c.offset, c.length, memory.size())) {
                    sum += std::to_integer<unsigned>(memory[c.offset]) +
                           std::to_integer<unsigned>(memory[c.offset + c.length - 1]);
                }
                if (c.kind == shm::ControlKind::release) {
                    const bool held = std::erase_if(lent, [&](const auto& b) {
                                          return b.slot == c.slot && b.generation == c.generation;
                                      }) > 0;
                    check(pool.release(c.slot, c.generation, peer) == held);
                }
                // What decodes encodes back to the same body.
                frame.clear();
                shm::encode_control(frame, c);
                const auto again = frame.bytes().subspan(5);
                check(again.size() == body.size() && std::equal(again.begin(), again.end(), body.begin()));
                break;
            }
            case 2: {  // a release of any id
                const auto slot = script.u32() % 20;
                const auto generation = script.u32() % 4;
                const bool held = std::erase_if(lent, [&](const auto& b) {
                                      return b.slot == slot && b.generation == generation;
                                  }) > 0;
                check(pool.release(slot, generation, peer) == held);
                break;
            }
            case 3:  // the peer's link closes
                check(pool.release_holder(peer) == lent.size());
                lent.clear();
                break;
            default:
                break;
        }
        check(pool.live_blocks() == lent.size());
        check(pool.free_bytes() <= pool.capacity());
    }
    pool.release_holder(peer);
    check(pool.free_bytes() == pool.capacity());
    return static_cast<int>(sum & 0);
}
