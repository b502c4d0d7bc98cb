/// @file
/// Codecs turn a message's arguments into bytes and back. A message is the tuple of arguments
/// given to `send` or `call` (rosy's `*args`). Every frame on the wire carries its codec's id, so a
/// receiver (or a tool such as `meshy topic echo`) can decode it, or refuse it cleanly.
///
/// Built-in codecs, each brought by its own header (this one parses none of them):
/// - `MsgpackCodec`, the default: `#include <meshy/codecs/msgpack.hpp>`;
/// - `CerealCodec`, cereal's binary archive: `#include <meshy/codecs/cereal.hpp>`;
/// - `RawCodec`, one bytes argument sent as is: `#include <meshy/codecs/raw.hpp>` (node.hpp brings it).
///
/// A user codec is any type that models `Codec`:
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
/// `decode` throws `meshy::Error(errc::decode_error)` for bytes it cannot read. A codec may also
/// offer `encode_head` (see MsgpackCodec): encode all but a last argument of bytes, and return those
/// bytes, so that a large payload is sent from the caller's memory without a copy.
#pragma once

#include <concepts>
#include <cstddef>
#include <cstdint>
#include <span>
#include <string>
#include <string_view>
#include <tuple>
#include <type_traits>
#include <vector>

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

/// Names several codecs as one template argument: a typed operation given `Codecs<A, B>` encodes
/// with the node's codec (which must be one of them) and decodes messages of either.
/// @code
/// co_await node.listen<meshy::Codecs<meshy::CerealCodec, meshy::MsgpackCodec>>("pose", on_pose);
/// @endcode
template <class... C>
struct Codecs {};

struct MsgpackCodec;  // meshy/codecs/msgpack.hpp
struct CerealCodec;   // meshy/codecs/cereal.hpp
struct RawCodec;      // meshy/codecs/raw.hpp

/// The codecs of a typed operation given no codec argument (`node.send("t", x)`): the node's codec
/// when it is msgpack or raw. A node whose codec is cereal names it: `node.send<meshy::CerealCodec>`.
using DefaultCodecs = Codecs<MsgpackCodec, RawCodec>;

namespace detail {
/// Byte containers that a codec may write unchanged (RawCodec's argument, msgpack's bin and str).
template <class T>
inline constexpr bool is_raw_bytes =
    std::is_same_v<T, std::string> || std::is_same_v<T, std::vector<std::byte>> ||
    std::is_same_v<T, std::vector<std::uint8_t>> || std::is_same_v<T, std::vector<char>>;
}  // namespace detail

}  // namespace meshy
