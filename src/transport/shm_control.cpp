#include "transport/shm_control.hpp"

#include <cstring>

#include "wire/frame.hpp"

namespace meshy::detail::shm {
namespace {

constexpr char control_magic[4] = {'M', 'S', 'H', 'M'};
constexpr std::size_t head_size = sizeof control_magic + 1;

}  // namespace

bool is_control(std::span<const std::byte> ping_body) noexcept {
    return ping_body.size() >= sizeof control_magic &&
           std::memcmp(ping_body.data(), control_magic, sizeof control_magic) == 0;
}

bool decode_control(std::span<const std::byte> body, Control& out) noexcept {
    if (!is_control(body) || body.size() < head_size) {
        return false;
    }
    const auto kind = std::to_integer<std::uint8_t>(body[sizeof control_magic]);
    switch (static_cast<ControlKind>(kind)) {
        case ControlKind::offer: {
            if (body.size() != head_size + 8) {
                return false;
            }
            std::uint64_t bytes = 0;
            for (std::size_t i = 0; i < 8; ++i) {
                bytes |= std::uint64_t{std::to_integer<std::uint8_t>(body[head_size + i])} << (8 * i);
            }
            out = {ControlKind::offer, bytes};
            return true;
        }
        case ControlKind::switch_over:
        case ControlKind::refuse:
            if (body.size() != head_size) {
                return false;
            }
            out = {static_cast<ControlKind>(kind), 0};
            return true;
    }
    return false;
}

void encode_control(Buffer& out, const Control& control) {
    const std::size_t body = head_size + (control.kind == ControlKind::offer ? 8 : 0);
    const auto length = static_cast<std::uint32_t>(1 + body);  // the type, then the body
    const std::size_t at = out.size();
    out.resize(at + 4 + length);
    auto* p = out.data() + at;
    for (std::size_t i = 0; i < 4; ++i) {
        p[i] = std::byte(static_cast<unsigned char>(length >> (8 * i)));
    }
    p[4] = std::byte(static_cast<unsigned char>(wire::FrameType::ping));
    std::memcpy(p + 5, control_magic, sizeof control_magic);
    p[5 + sizeof control_magic] = std::byte(static_cast<unsigned char>(control.kind));
    if (control.kind == ControlKind::offer) {
        for (std::size_t i = 0; i < 8; ++i) {
            p[head_size + 5 + i] = std::byte(static_cast<unsigned char>(control.ring_bytes >> (8 * i)));
        }
    }
}

}  // namespace meshy::detail::shm
