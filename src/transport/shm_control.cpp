#include "transport/shm_control.hpp"

#include <cstring>

#include "wire/frame.hpp"

namespace meshy::detail::shm {
namespace {

constexpr char control_magic[4] = {'M', 'S', 'H', 'M'};
constexpr std::size_t head_size = sizeof control_magic + 1;
constexpr std::size_t loaned_fixed = 1 + 8 + 4 + 4 + 8 + 8;
constexpr std::size_t max_topic = 0xffff;

/// Reads little-endian integers from a body whose size was checked.
struct Reader {
    const std::byte* at;
    template <class T>
    T take() noexcept {
        T v = 0;
        for (std::size_t i = 0; i < sizeof(T); ++i) {
            v |= static_cast<T>(T{std::to_integer<std::uint8_t>(at[i])} << (8 * i));
        }
        at += sizeof(T);
        return v;
    }
};

struct Writer {
    std::byte* at;
    template <class T>
    void put(T v) noexcept {
        for (std::size_t i = 0; i < sizeof(T); ++i) {
            at[i] = std::byte(static_cast<unsigned char>(static_cast<std::uint64_t>(v) >> (8 * i)));
        }
        at += sizeof(T);
    }
};

std::size_t body_size(const Control& c) {
    switch (c.kind) {
        case ControlKind::offer:
        case ControlKind::pool:
            return head_size + 8;
        case ControlKind::loaned:
            return head_size + loaned_fixed + c.topic.size();
        case ControlKind::release:
            return head_size + 8;
        case ControlKind::switch_over:
        case ControlKind::refuse:
        case ControlKind::pool_mapped:
            break;
    }
    return head_size;
}

}  // namespace

bool is_control(std::span<const std::byte> ping_body) noexcept {
    return ping_body.size() >= sizeof control_magic &&
           std::memcmp(ping_body.data(), control_magic, sizeof control_magic) == 0;
}

bool decode_control(std::span<const std::byte> body, Control& out) noexcept {
    if (!is_control(body) || body.size() < head_size) {
        return false;
    }
    const auto kind = static_cast<ControlKind>(std::to_integer<std::uint8_t>(body[sizeof control_magic]));
    Control c;
    c.kind = kind;
    Reader r{body.data() + head_size};
    const std::size_t fields = body.size() - head_size;
    switch (kind) {
        case ControlKind::offer:
        case ControlKind::pool:
            if (fields != 8) {
                return false;
            }
            (kind == ControlKind::offer ? c.ring_bytes : c.pool_bytes) = r.take<std::uint64_t>();
            break;
        case ControlKind::switch_over:
        case ControlKind::refuse:
        case ControlKind::pool_mapped:
            if (fields != 0) {
                return false;
            }
            break;
        case ControlKind::loaned: {
            if (fields <= loaned_fixed || fields - loaned_fixed > max_topic) {
                return false;
            }
            c.codec = static_cast<CodecId>(r.take<std::uint8_t>());
            c.sent_at_ns = r.take<std::uint64_t>();
            c.slot = r.take<std::uint32_t>();
            c.generation = r.take<std::uint32_t>();
            c.offset = r.take<std::uint64_t>();
            c.length = r.take<std::uint64_t>();
            c.topic = std::string_view(reinterpret_cast<const char*>(r.at), fields - loaned_fixed);
            break;
        }
        case ControlKind::release:
            if (fields != 8) {
                return false;
            }
            c.slot = r.take<std::uint32_t>();
            c.generation = r.take<std::uint32_t>();
            break;
        default:
            return false;
    }
    out = c;
    return true;
}

void encode_control(Buffer& out, const Control& control) {
    const std::size_t body = body_size(control);
    const auto length = static_cast<std::uint32_t>(1 + body);  // the type, then the body
    const std::size_t at = out.size();
    out.resize(at + 4 + length);
    Writer w{out.data() + at};
    w.put(length);
    w.put(static_cast<std::uint8_t>(wire::FrameType::ping));
    std::memcpy(w.at, control_magic, sizeof control_magic);
    w.at += sizeof control_magic;
    w.put(static_cast<std::uint8_t>(control.kind));
    switch (control.kind) {
        case ControlKind::offer:
            w.put(control.ring_bytes);
            break;
        case ControlKind::pool:
            w.put(control.pool_bytes);
            break;
        case ControlKind::loaned:
            w.put(static_cast<std::uint8_t>(control.codec));
            w.put(control.sent_at_ns);
            w.put(control.slot);
            w.put(control.generation);
            w.put(control.offset);
            w.put(control.length);
            if (!control.topic.empty()) {
                std::memcpy(w.at, control.topic.data(), control.topic.size());
            }
            break;
        case ControlKind::release:
            w.put(control.slot);
            w.put(control.generation);
            break;
        case ControlKind::switch_over:
        case ControlKind::refuse:
        case ControlKind::pool_mapped:
            break;
    }
}

}  // namespace meshy::detail::shm
