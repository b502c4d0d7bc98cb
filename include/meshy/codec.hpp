/// @file
/// Codecs turn a message's arguments into bytes and back. A message is the tuple of arguments
/// given to `send` or `call` (rosy's `*args`). Every frame on the wire carries its codec's id, so a
/// receiver (or a tool such as `meshy topic echo`) can decode it, or refuse it cleanly.
///
/// Built-in codecs: `MsgpackCodec` (the default), `CerealCodec` (cereal's binary archive) and
/// `RawCodec` (one bytes argument, sent as is). A user codec is any type that models `Codec`:
///
/// @code
/// struct MyCodec {
///     static constexpr meshy::CodecId id{200};          // 128..255 are free for user codecs
///     static constexpr std::string_view name = "mine";
///     template <class... T> static constexpr bool supports = true;   // which argument types it takes
///     template <class... T> static void encode(meshy::Buffer& out, const T&... args);
///     template <class... T> static std::tuple<T...> decode(std::span<const std::byte> in);
/// };
/// @endcode
///
/// `decode` throws `meshy::Error(errc::decode_error)` for bytes it cannot read.
#pragma once

#include <concepts>
#include <cstdint>
#include <span>
#include <string_view>
#include <tuple>
#include <type_traits>

#include "meshy/buffer.hpp"

namespace meshy {

/// The one-byte codec id carried by every message. 1..127 are meshy's, 128..255 are for users.
enum class CodecId : std::uint8_t { msgpack = 1, cereal = 2, raw = 3 };

/// The name of a built-in codec id ("msgpack", "cereal", "raw"), or "unknown".
constexpr std::string_view codec_name(CodecId id) noexcept {
    switch (id) {
        case CodecId::msgpack:
            return "msgpack";
        case CodecId::cereal:
            return "cereal";
        case CodecId::raw:
            return "raw";
    }
    return "unknown";
}

/// A type usable as a codec: it has a CodecId `id` and a `name`.
template <class C>
concept Codec = requires {
    { C::id } -> std::convertible_to<CodecId>;
    { C::name } -> std::convertible_to<std::string_view>;
};

/// A codec that can encode and decode messages made of `Args...`.
template <class C, class... Args>
concept CodecFor = Codec<C> &&
    C::template supports<std::remove_cvref_t<Args>...>&& requires(Buffer& out,
                                                                  const std::remove_cvref_t<Args>&... args,
                                                                  std::span<const std::byte> in) {
    C::encode(out, args...);
    { C::template decode<std::remove_cvref_t<Args>...>(in) } -> std::same_as<std::tuple<std::remove_cvref_t<Args>...>>;
};

}  // namespace meshy
