/// @file
/// `MsgpackCodec`, meshy's default: a message is a msgpack array of its arguments
/// (`send("t", 1, "a")` is `[1, "a"]` on the wire), the form rosy's msgpack codec and
/// `meshy topic send` produce. User structs take part with msgpack-c's `MSGPACK_DEFINE`;
/// types adapted another way opt in with `meshy::enable_msgpack<T> = true`.
#pragma once

#ifndef MSGPACK_NO_BOOST
#    define MSGPACK_NO_BOOST 1
#endif

#include <array>
#include <cstddef>
#include <cstdint>
#include <map>
#include <msgpack.hpp>
#include <optional>
#include <span>
#include <string>
#include <string_view>
#include <tuple>
#include <type_traits>
#include <unordered_map>
#include <utility>
#include <vector>

#include "meshy/buffer.hpp"
#include "meshy/codec.hpp"
#include "meshy/error.hpp"

namespace meshy {

/// Specialise to true for a type msgpack-c can pack and convert through your own adaptor.
template <class T>
inline constexpr bool enable_msgpack = false;

namespace detail {

template <class T>
struct msgpack_ok : std::bool_constant<std::is_arithmetic_v<T> || std::is_same_v<T, std::string> ||
                                       std::is_same_v<T, std::string_view> || std::is_same_v<T, msgpack::type::nil_t> ||
                                       enable_msgpack<T>> {};
template <class T>
requires requires(const T& v, msgpack::packer<Buffer>& p, msgpack::object const& o, T& m) {
    v.msgpack_pack(p);
    m.msgpack_unpack(o);
}
struct msgpack_ok<T> : std::true_type {};
template <class T, class A>
struct msgpack_ok<std::vector<T, A>> : msgpack_ok<T> {};
template <class T, std::size_t N>
struct msgpack_ok<std::array<T, N>> : msgpack_ok<T> {};
template <class T>
struct msgpack_ok<std::optional<T>> : msgpack_ok<T> {};
template <class K, class V, class C, class A>
struct msgpack_ok<std::map<K, V, C, A>> : std::bool_constant<msgpack_ok<K>::value && msgpack_ok<V>::value> {};
template <class K, class V, class H, class E, class A>
struct msgpack_ok<std::unordered_map<K, V, H, E, A>>
    : std::bool_constant<msgpack_ok<K>::value && msgpack_ok<V>::value> {};
// A msgpack bin read where it lies (msgpack-c's own adaptor): valid while the message is, which for
// a listener is its callback (a loan's payload: in the sender's pool, without a copy).
template <>
struct msgpack_ok<std::span<const std::byte>> : std::true_type {};
template <class A, class B>
struct msgpack_ok<std::pair<A, B>> : std::bool_constant<msgpack_ok<A>::value && msgpack_ok<B>::value> {};
template <class... T>
struct msgpack_ok<std::tuple<T...>> : std::bool_constant<(msgpack_ok<T>::value && ...)> {};

}  // namespace detail

/// The default codec: msgpack-c, arguments as one msgpack array.
struct MsgpackCodec {
    static constexpr CodecId id = CodecId::msgpack;
    static constexpr std::string_view name = "msgpack";

    template <class... T>
    static constexpr bool supports = (detail::msgpack_ok<T>::value && ...);

    template <class... T>
    static void encode(Buffer& out, const T&... args) {
        msgpack::packer<Buffer> packer(out);
        packer.pack_array(static_cast<std::uint32_t>(sizeof...(T)));
        (packer.pack(args), ...);
    }

    /// For a last argument of bytes (a str or bin on the wire, written unchanged): encodes the
    /// array and every argument before it, and the header of its str or bin, into `out`.
    /// @returns the last argument's bytes, which complete the encoding; or, for any other message,
    ///          an empty span having encoded nothing.
    template <class... T>
    static std::span<const std::byte> encode_head(Buffer& out, const T&... args) {
        constexpr std::size_t n = sizeof...(T);
        if constexpr (n == 0) {
            return {};
        } else {
            using Last = std::tuple_element_t<n - 1, std::tuple<T...>>;
            // msgpack-c packs a vector of std::byte element by element, not as a bin.
            constexpr bool bytes = (detail::is_raw_bytes<Last> && !std::is_same_v<Last, std::vector<std::byte>>) ||
                                   std::is_same_v<Last, std::span<const std::byte>>;
            if constexpr (!bytes) {
                return {};
            } else {
                const auto values = std::forward_as_tuple(args...);
                const Last& last = std::get<n - 1>(values);
                const auto tail = std::as_bytes(std::span(last.data(), last.size()));
                if (tail.empty()) {
                    return {};
                }
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
    }

    template <class... T>
    static std::tuple<T...> decode(std::span<const std::byte> in) {
        // One zone per thread, reused (no allocation per message), and strings and binaries
        // referenced in `in` rather than copied into it: `in` outlives the conversion below.
        thread_local msgpack::zone zone;
        zone.clear();
        msgpack::object root;
        try {
            std::size_t offset = 0;
            bool referenced = false;
            root = msgpack::unpack(zone, reinterpret_cast<const char*>(in.data()), in.size(), offset, referenced,
                                   [](msgpack::type::object_type, std::size_t, void*) { return true; });
        } catch (const std::exception& e) {
            throw Error(errc::decode_error, std::string("msgpack: ") + e.what());
        }
        if (root.type != msgpack::type::ARRAY || root.via.array.size != sizeof...(T)) {
            throw Error(errc::decode_error,
                        "msgpack: expected an array of " + std::to_string(sizeof...(T)) + " argument(s)");
        }
        try {
            return convert<T...>(root, std::index_sequence_for<T...>{});
        } catch (const msgpack::type_error&) {
            throw Error(errc::decode_error, "msgpack: an argument has another type than the receiver expects");
        }
    }

private:
    template <class... T, std::size_t... I>
    static std::tuple<T...> convert(const msgpack::object& root, std::index_sequence<I...>) {
        return std::tuple<T...>{root.via.array.ptr[I].as<T>()...};
    }
};

}  // namespace meshy
