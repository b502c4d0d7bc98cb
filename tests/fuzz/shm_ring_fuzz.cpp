// Fuzz target: a shared-memory ring whose other end is the fuzzer. The input is a script of steps
// that write the shared header (the peer's index, the waiting flags) and the data bytes, between
// reads and writes of this end; what the reader takes out is split into frames as a link does,
// and the control messages that set a ring up are decoded.
// Nothing the peer writes may make either end read or write outside the mapping.
#include <cstddef>
#include <cstdint>
#include <cstring>
#include <span>
#include <string>
#include <vector>

#include "fuzz_script.hpp"
#include "transport/shm_control.hpp"
#include "transport/shm_ring.hpp"
#include "wire/frame.hpp"

using namespace meshy::detail;

namespace {

void store(std::vector<std::byte>& memory, std::size_t offset, std::uint64_t value) {
    std::memcpy(memory.data() + offset, &value, sizeof value);
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
    constexpr std::size_t capacity = ShmRingLayout::min_capacity;
    // Two rings, as a link has: one this end reads (the peer writes it), one it writes.
    std::vector<std::byte> inbound(ShmRingLayout::mapping_size(capacity));
    std::vector<std::byte> outbound(ShmRingLayout::mapping_size(capacity));
    ShmRingReader reader(inbound);
    ShmRingWriter writer(outbound);
    std::uint64_t peer_write = 0;  // the peer's index, as it would keep it
    std::vector<std::byte> pending;
    std::byte chunk[3000];
    std::string why;
    constexpr std::size_t max_frame = 16384;
    FuzzScript script{std::span(data, size)};
    for (int steps = 0; steps < 512 && !script.empty(); ++steps) {
        switch (script.byte() % 8) {
            case 0: {  // the peer writes bytes after its index, then publishes them
                const std::size_t n = std::min<std::size_t>(script.byte() * 16u + script.byte(), script.in.size());
                for (std::size_t i = 0; i < n; ++i) {
                    inbound[ShmRingLayout::header_bytes + ((peer_write + i) & (capacity - 1))] =
                        std::byte{script.in[i]};
                }
                script.in = script.in.subspan(n);
                peer_write += n;
                store(inbound, ShmRingLayout::write_offset, peer_write);
                break;
            }
            case 1:  // the peer publishes any index at all
                peer_write = script.u64();
                store(inbound, ShmRingLayout::write_offset, peer_write);
                break;
            case 2:  // the peer moves its read index of the other ring anywhere
                store(outbound, ShmRingLayout::read_offset, script.u64());
                break;
            case 3:  // the peer raises or lowers the waiting flags
                inbound[ShmRingLayout::writer_waiting_offset] = std::byte{script.byte()};
                outbound[ShmRingLayout::reader_waiting_offset] = std::byte{script.byte()};
                break;
            case 4: {  // this end reads, and splits what it read into frames
                const auto r = reader.read(std::span(chunk).first(1 + script.byte() * 11u % sizeof chunk), why);
                if (r.bad_peer) {
                    return 0;  // the link closes
                }
                pending.insert(pending.end(), chunk, chunk + r.bytes);
                for (;;) {
                    wire::FrameView frame;
                    std::size_t used = 0, needed = 0;
                    const auto p = wire::next_frame(pending, max_frame, frame, used, needed, why);
                    if (p == wire::Parse::error) {
                        return 0;
                    }
                    if (p == wire::Parse::need_more) {
                        break;
                    }
                    pending.erase(pending.begin(), pending.begin() + static_cast<std::ptrdiff_t>(used));
                }
                break;
            }
            case 5: {  // this end writes a frame of its own
                std::vector<std::byte> frame(5 + script.byte() * 40u);
                const auto len = static_cast<std::uint32_t>(frame.size() - 4);
                std::memcpy(frame.data(), &len, 4);
                if (writer.write(frame).bad_peer) {
                    return 0;
                }
                break;
            }
            case 7: {  // a shared-memory control message in a ping, as the link reads it
                const std::size_t n = std::min<std::size_t>(script.byte() % 32u, script.in.size());
                shm::Control control;
                (void)shm::decode_control(std::as_bytes(script.in.first(n)), control);
                script.in = script.in.subspan(n);
                break;
            }
            case 6:  // this end is about to sleep
                (void)reader.announce_waiting();
                (void)writer.announce_waiting();
                (void)writer.room();
                (void)writer.unread();
                break;
        }
    }
    return 0;
}
