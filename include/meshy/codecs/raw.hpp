/// @file
/// `RawCodec`: a message of zero arguments or one bytes argument (std::string,
/// std::vector<std::byte>, std::vector<std::uint8_t>, std::vector<char>, or a view,
/// std::span<const std::byte>), sent as is. Light (no library behind it): meshy/node.hpp brings it.
#pragma once

#include <cstddef>
#include <cstdint>
#include <span>
#include <string>
#include <tuple>
#include <type_traits>
#include <vector>

#include "meshy/buffer.hpp"
#include "meshy/codec.hpp"
#include "meshy/error.hpp"

namespace meshy {

namespace detail {
/// A read-only view of bytes: RawCodec sends it as is, and a listener of it reads the payload where
/// it lies (valid during the callback; in the sender's shared memory for a loan, docs/shm.md).
template <class T>
inline constexpr bool is_byte_view = std::is_same_v<T, std::span<const std::byte>>;
}  // namespace detail

/// Sends one bytes argument unchanged (or an empty payload for zero arguments).
struct RawCodec {
    static constexpr CodecId id = CodecId::raw;
    static constexpr std::string_view name = "raw";

    template <class... T>
    static constexpr bool supports = sizeof...(T) == 0 ||
                                     (sizeof...(T) == 1 && ((detail::is_raw_bytes<T> || detail::is_byte_view<T>)&&...));

    template <class... T>
    static void encode(Buffer& out, const T&... args) {
        (out.append(args.data(), args.size()), ...);
    }

    /// The payload is the one bytes argument itself: nothing to encode ahead of it.
    /// @returns that argument's bytes (empty for any other message, which encode() then writes).
    template <class... T>
    static std::span<const std::byte> encode_head(Buffer& /*out*/, const T&... args) {
        if constexpr (sizeof...(T) == 1 && ((detail::is_raw_bytes<T> || detail::is_byte_view<T>)&&...)) {
            return (std::as_bytes(std::span(args.data(), args.size())), ...);
        } else {
            return {};
        }
    }

    template <class... T>
    static std::tuple<T...> decode(std::span<const std::byte> in) {
        if constexpr (sizeof...(T) == 0) {
            if (!in.empty()) {
                throw Error(errc::decode_error, "raw payload where no argument was expected");
            }
            return {};
        } else {
            using Bytes = std::tuple_element_t<0, std::tuple<T...>>;
            if constexpr (detail::is_byte_view<Bytes>) {
                return std::tuple<T...>{in};  // no copy: a view of the payload
            } else {
                using Value = typename Bytes::value_type;
                const auto* first = reinterpret_cast<const Value*>(in.data());
                return std::tuple<T...>{Bytes(first, first + in.size())};
            }
        }
    }
};

}  // namespace meshy
