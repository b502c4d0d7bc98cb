/// @file
/// Internal: encoding and decoding with a codec chosen at run time (the node's option, or the
/// id a received message carries), among the built-in codecs and an optional user codec.
#pragma once

#include <cstddef>
#include <span>
#include <string>
#include <tuple>
#include <type_traits>
#include <utility>
#include <vector>

#include "meshy/codec.hpp"
#include "meshy/codecs/cereal.hpp"
#include "meshy/codecs/msgpack.hpp"
#include "meshy/codecs/raw.hpp"
#include "meshy/error.hpp"

namespace meshy::detail {

/// Placeholder for "no user codec": only the built-in ones.
struct NoCodec {};

/// Wire form of an argument: string literals and C strings travel as strings.
template <class T>
decltype(auto) wire_value(const T& value) {
    if constexpr (std::is_convertible_v<const T&, const char*> && !std::is_same_v<T, std::nullptr_t>) {
        return std::string(value);
    } else {
        return (value);
    }
}

template <class C, class... Args>
bool try_encode(CodecId id, Buffer& out, const Args&... args) {
    if constexpr (CodecFor<C, Args...>) {
        if (id == C::id) {
            C::encode(out, args...);
            return true;
        }
    }
    return false;
}

/// Encodes `args` with codec `id` (UserCodec's when the ids match).
/// @throws Error(errc::codec_mismatch) when that codec cannot encode these types.
template <class UserCodec, class... Args>
void encode_args(CodecId id, Buffer& out, const Args&... args) {
    if constexpr (!std::is_same_v<UserCodec, NoCodec>) {
        if (try_encode<UserCodec>(id, out, args...)) {
            return;
        }
    }
    if (try_encode<MsgpackCodec>(id, out, args...) || try_encode<CerealCodec>(id, out, args...) ||
        try_encode<RawCodec>(id, out, args...)) {
        return;
    }
    throw Error(errc::codec_mismatch, "codec " + std::to_string(static_cast<int>(id)) + " (" +
                                          std::string(codec_name(id)) + ") cannot encode these argument types");
}

/// Payloads whose last argument holds this many bytes or more are sent from the caller's bytes:
/// the frame's head is encoded, and the bytes are written after it without a copy when the
/// connection can take them (see Node::send_blocking). Those of a small message are copied
/// straight into the outbox, and the others joined to the frame.
inline constexpr std::size_t large_payload_min = 64 * 1024;

/// For a last argument of bytes that codec `id` writes last and unchanged (raw: the one bytes
/// argument; msgpack: a bin or str): encodes everything before those bytes into `out` and
/// @returns them. Otherwise encodes nothing and @returns an empty span.
template <class UserCodec, class... Args>
std::span<const std::byte> encode_head(CodecId id, Buffer& out, const Args&... args) {
    if constexpr (sizeof...(Args) == 0) {
        return {};
    } else {
        constexpr std::size_t n = sizeof...(Args);
        using Last = std::remove_cvref_t<std::tuple_element_t<n - 1, std::tuple<Args...>>>;
        if constexpr (!is_raw_bytes<Last>) {
            return {};
        } else {
            const auto values = std::forward_as_tuple(args...);
            const Last& last = std::get<n - 1>(values);
            const auto tail = std::as_bytes(std::span(last.data(), last.size()));
            if (tail.empty()) {
                return {};
            }
            constexpr bool builtin = std::is_same_v<UserCodec, NoCodec>;
            if constexpr (n == 1 && (builtin || std::is_same_v<UserCodec, RawCodec>)) {
                if (id == CodecId::raw) {
                    return tail;
                }
            }
            if constexpr ((builtin || std::is_same_v<UserCodec, MsgpackCodec>)&&CodecFor<MsgpackCodec, Args...> &&
                          !std::is_same_v<Last, std::vector<std::byte>>) {
                if (id == CodecId::msgpack) {
                    // The bytes MsgpackCodec::encode() writes, but for the last argument's body.
                    msgpack::packer<Buffer> packer(out);
                    packer.pack_array(static_cast<std::uint32_t>(n));
                    [&]<std::size_t... I>(std::index_sequence<I...>) {
                        (packer.pack(std::get<I>(values)), ...);
                    }
                    (std::make_index_sequence<n - 1>{});
                    if constexpr (std::is_same_v<Last, std::string>) {
                        packer.pack_str(static_cast<std::uint32_t>(tail.size()));
                    } else {
                        packer.pack_bin(static_cast<std::uint32_t>(tail.size()));
                    }
                    return tail;
                }
            }
            return {};
        }
    }
}

template <class C, class... Args>
bool try_decode(CodecId id, std::span<const std::byte> in, std::tuple<Args...>& out) {
    if constexpr (CodecFor<C, Args...>) {
        if (id == C::id) {
            out = C::template decode<Args...>(in);
            return true;
        }
    }
    return false;
}

/// Decodes a payload of codec `id` into `Args...`.
/// @throws Error(errc::codec_mismatch) when no known codec with that id decodes these types,
///         Error(errc::decode_error) when the bytes are not valid for it.
template <class UserCodec, class... Args>
std::tuple<Args...> decode_args(CodecId id, std::span<const std::byte> in) {
    std::tuple<Args...> out;
    if constexpr (!std::is_same_v<UserCodec, NoCodec>) {
        if (try_decode<UserCodec>(id, in, out)) {
            return out;
        }
    }
    if (try_decode<MsgpackCodec>(id, in, out) || try_decode<CerealCodec>(id, in, out) ||
        try_decode<RawCodec>(id, in, out)) {
        return out;
    }
    throw Error(errc::codec_mismatch, "cannot decode a payload of codec " + std::to_string(static_cast<int>(id)) +
                                          " (" + std::string(codec_name(id)) + ") into the receiver's types");
}

}  // namespace meshy::detail
