/// @file
/// Internal: encoding and decoding with a codec chosen at run time (the node's option, or the
/// id a received message carries), among the built-in codecs and an optional user codec.
#pragma once

#include <span>
#include <string>
#include <tuple>

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
