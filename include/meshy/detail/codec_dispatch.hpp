/// @file
/// Internal: encoding and decoding with the codecs a typed operation may use, the one chosen at run
/// time (the node's option, or the id a received message carries). This header parses no codec
/// library: each codec's header brings it (meshy/codecs/msgpack.hpp, cereal.hpp), and a typed
/// operation whose codecs' headers were not included stops compiling with a message naming them.
///
/// Why the codecs are named by the template argument rather than found among those included:
/// `node.send("t", 42)` is the same specialization in every translation unit that calls it. Were its
/// body to depend on which codec headers a unit included, units would compile it differently (an ODR
/// violation: the linker keeps one of them, and the others' codecs silently vanish). So a typed
/// operation uses the codecs its codec argument names, DefaultCodecs when it names none, and every
/// unit that compiles it compiles the same code.
#pragma once

#include <cstddef>
#include <span>
#include <string>
#include <tuple>
#include <type_traits>
#include <utility>

#include "meshy/codec.hpp"
#include "meshy/codecs/raw.hpp"
#include "meshy/error.hpp"

namespace meshy::detail {

/// The codec argument of a typed operation that names none: it uses DefaultCodecs.
struct NoCodec {};

/// The codecs a typed operation's codec argument names, as Codecs<...>.
template <class UserCodec>
struct codec_list {
    using type = Codecs<UserCodec>;
};
template <class... C>
struct codec_list<Codecs<C...>> {
    using type = Codecs<C...>;
};
template <>
struct codec_list<NoCodec> {
    using type = DefaultCodecs;
};

/// True when the codec argument names one codec: the operation encodes with it, whatever the
/// node's codec. Otherwise (none, or Codecs<...>) it encodes with the node's codec.
template <class UserCodec>
inline constexpr bool names_one_codec = true;
template <>
inline constexpr bool names_one_codec<NoCodec> = false;
template <class... C>
inline constexpr bool names_one_codec<Codecs<C...>> = false;

/// True when codec C is defined here, that is its header was included. `Use` (the operation's
/// argument types) only makes the check one of the operation being compiled.
template <class C, class... Use>
concept included = requires {
    sizeof(C);
};

/// Stops the compilation with a message naming the header when codec C's was not included.
/// @returns whether it was (the caller compiles nothing more with C when not).
template <class C, class... Use>
constexpr bool require_header() {
    static_assert(included<C, Use...> || !std::is_same_v<C, MsgpackCodec>,
                  "meshy: this typed send/listen/call/add_service uses msgpack (the default codec), whose header "
                  "was not included: #include <meshy/codecs/msgpack.hpp> (or <meshy/meshy.hpp>)");
    static_assert(included<C, Use...> || !std::is_same_v<C, CerealCodec>,
                  "meshy: this typed send/listen/call/add_service uses cereal, whose header was not included: "
                  "#include <meshy/codecs/cereal.hpp> (or <meshy/meshy.hpp>)");
    static_assert(included<C, Use...> || std::is_same_v<C, MsgpackCodec> || std::is_same_v<C, CerealCodec>,
                  "meshy: a codec named by this typed send/listen/call/add_service is declared but not defined: "
                  "include its header");
    return included<C, Use...>;
}

/// The id of codec C, known for the built-in codecs without their headers.
template <class C>
constexpr CodecId id_of() noexcept {
    if constexpr (std::is_same_v<C, MsgpackCodec>) {
        return CodecId::msgpack;
    } else if constexpr (std::is_same_v<C, CerealCodec>) {
        return CodecId::cereal;
    } else if constexpr (std::is_same_v<C, RawCodec>) {
        return CodecId::raw;
    } else {
        return C::id;
    }
}

/// True when `id` is one of the codecs C...
template <class... C>
constexpr bool lists(Codecs<C...>, CodecId id) noexcept {
    return ((id == id_of<C>()) || ...);
}

/// The text that says which codec an id is, for error messages: "2 (cereal)".
inline std::string describe_codec(CodecId id) {
    return std::to_string(static_cast<int>(id)) + " (" + std::string(codec_name(id)) + ")";
}

/// What to do about a codec that a typed operation does not use.
inline std::string unused_codec_hint(CodecId id, bool default_codecs) {
    std::string hint = default_codecs ? "without a codec argument, typed operations use msgpack and raw"
                                      : "it is not among the codecs this operation names";
    if (id == CodecId::cereal) {
        hint +=
            "; name it, as in send<meshy::CerealCodec>(...) or listen<meshy::CerealCodec>(...), with "
            "#include <meshy/codecs/cereal.hpp>";
    }
    return hint;
}

/// The codec a typed operation encodes with, given the node's codec.
/// @throws Error(errc::codec_mismatch) when the operation does not use the node's codec.
template <class UserCodec>
CodecId encoding_codec(CodecId node_codec) {
    if constexpr (names_one_codec<UserCodec>) {
        return id_of<UserCodec>();
    } else {
        if (!lists(typename codec_list<UserCodec>::type{}, node_codec)) {
            throw Error(errc::codec_mismatch, "the node's codec is " + describe_codec(node_codec) + ": " +
                                                  unused_codec_hint(node_codec, std::is_same_v<UserCodec, NoCodec>));
        }
        return node_codec;
    }
}

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
    if constexpr (require_header<C, Args...>()) {
        if constexpr (CodecFor<C, Args...>) {
            if (id == C::id) {
                C::encode(out, args...);
                return true;
            }
        }
    }
    return false;
}

template <class... C, class... Args>
bool encode_with(Codecs<C...>, CodecId id, Buffer& out, const Args&... args) {
    return (try_encode<C>(id, out, args...) || ...);
}

/// Encodes `args` with codec `id`, one of those UserCodec names.
/// @throws Error(errc::codec_mismatch) when that codec cannot encode these types.
template <class UserCodec, class... Args>
void encode_args(CodecId id, Buffer& out, const Args&... args) {
    if (!encode_with(typename codec_list<UserCodec>::type{}, id, out, args...)) {
        throw Error(errc::codec_mismatch, "codec " + describe_codec(id) + " cannot encode these argument types");
    }
}

/// Payloads whose last argument holds this many bytes or more are sent from the caller's bytes:
/// the frame's head is encoded, and the bytes are written after it without a copy when the
/// connection can take them (see Node::send_blocking). Those of a small message are copied
/// straight into the outbox, and the others joined to the frame.
inline constexpr std::size_t large_payload_min = 64 * 1024;

template <class C, class... Args>
std::span<const std::byte> try_encode_head(CodecId id, Buffer& out, const Args&... args) {
    if constexpr (require_header<C, Args...>()) {
        if constexpr (CodecFor<C, Args...> && requires(Buffer & b, const Args&... a) {
                          { C::encode_head(b, a...) } -> std::same_as<std::span<const std::byte>>;
                      }) {
            if (id == C::id) {
                return C::encode_head(out, args...);
            }
        }
    }
    return {};
}

template <class... C, class... Args>
std::span<const std::byte> encode_head_with(Codecs<C...>, CodecId id, Buffer& out, const Args&... args) {
    std::span<const std::byte> tail;
    ((tail = try_encode_head<C>(id, out, args...), !tail.empty()) || ...);
    return tail;
}

/// For a last argument of bytes that codec `id` writes last and unchanged (raw: the one bytes
/// argument; msgpack: a bin or str): encodes everything before those bytes into `out` and
/// @returns them. Otherwise encodes nothing and @returns an empty span.
template <class UserCodec, class... Args>
std::span<const std::byte> encode_head(CodecId id, Buffer& out, const Args&... args) {
    return encode_head_with(typename codec_list<UserCodec>::type{}, id, out, args...);
}

template <class C, class... Args>
bool try_decode(CodecId id, std::span<const std::byte> in, std::tuple<Args...>& out) {
    if constexpr (require_header<C, Args...>()) {
        if constexpr (CodecFor<C, Args...>) {
            if (id == C::id) {
                out = C::template decode<Args...>(in);
                return true;
            }
        }
    }
    return false;
}

template <class... C, class... Args>
bool decode_with(Codecs<C...>, CodecId id, std::span<const std::byte> in, std::tuple<Args...>& out) {
    return (try_decode<C>(id, in, out) || ...);
}

/// Decodes a payload of codec `id`, one of those UserCodec names, into `Args...`.
/// @throws Error(errc::codec_mismatch) when none of those codecs has that id or decodes these
///         types, Error(errc::decode_error) when the bytes are not valid for it.
template <class UserCodec, class... Args>
std::tuple<Args...> decode_args(CodecId id, std::span<const std::byte> in) {
    using List = typename codec_list<UserCodec>::type;
    std::tuple<Args...> out;
    if (decode_with(List{}, id, in, out)) {
        return out;
    }
    if (!lists(List{}, id)) {
        throw Error(errc::codec_mismatch, "cannot decode a payload of codec " + describe_codec(id) + ": " +
                                              unused_codec_hint(id, std::is_same_v<UserCodec, NoCodec>));
    }
    throw Error(errc::codec_mismatch,
                "cannot decode a payload of codec " + describe_codec(id) + " into the receiver's types");
}

}  // namespace meshy::detail
