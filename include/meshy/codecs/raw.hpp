/// @file
/// `RawCodec`: a message of zero arguments or one bytes argument (std::string,
/// std::vector<std::byte>, std::vector<std::uint8_t>, std::vector<char>), sent as is.
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
template <class T>
inline constexpr bool is_raw_bytes =
    std::is_same_v<T, std::string> || std::is_same_v<T, std::vector<std::byte>> ||
    std::is_same_v<T, std::vector<std::uint8_t>> || std::is_same_v<T, std::vector<char>>;
}  // namespace detail

/// Sends one bytes argument unchanged (or an empty payload for zero arguments).
struct RawCodec {
    static constexpr CodecId id = CodecId::raw;
    static constexpr std::string_view name = "raw";

    template <class... T>
    static constexpr bool supports = sizeof...(T) == 0 || (sizeof...(T) == 1 && (detail::is_raw_bytes<T> && ...));

    template <class... T>
    static void encode(Buffer& out, const T&... args) {
        (out.append(args.data(), args.size()), ...);
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
            using Value = typename Bytes::value_type;
            const auto* first = reinterpret_cast<const Value*>(in.data());
            return std::tuple<T...>{Bytes(first, first + in.size())};
        }
    }
};

}  // namespace meshy
