/// @file
/// `CerealCodec`: cereal's portable-size binary archive. The arguments are archived in order.
/// User types take part with a cereal `serialize` function; they must be default-constructible.
#pragma once

#include <cereal/archives/binary.hpp>
#include <cereal/types/array.hpp>
#include <cereal/types/map.hpp>
#include <cereal/types/optional.hpp>
#include <cereal/types/string.hpp>
#include <cereal/types/tuple.hpp>
#include <cereal/types/unordered_map.hpp>
#include <cereal/types/utility.hpp>
#include <cereal/types/vector.hpp>
#include <istream>
#include <ostream>
#include <span>
#include <streambuf>
#include <tuple>
#include <type_traits>

#include "meshy/buffer.hpp"
#include "meshy/codec.hpp"
#include "meshy/error.hpp"

namespace meshy {

namespace detail {

/// std::streambuf that appends to a meshy::Buffer (cereal writes through std::ostream).
class BufferStreambuf final : public std::streambuf {
public:
    explicit BufferStreambuf(Buffer& out) : out_(out) {}

protected:
    std::streamsize xsputn(const char* s, std::streamsize n) override {
        out_.append(s, static_cast<std::size_t>(n));
        return n;
    }
    int_type overflow(int_type ch) override {
        if (!traits_type::eq_int_type(ch, traits_type::eof())) {
            const char c = traits_type::to_char_type(ch);
            out_.append(&c, 1);
        }
        return traits_type::not_eof(ch);
    }

private:
    Buffer& out_;
};

/// Read-only std::streambuf over a span (cereal reads through std::istream).
class SpanStreambuf final : public std::streambuf {
public:
    explicit SpanStreambuf(std::span<const std::byte> in) {
        char* begin = const_cast<char*>(reinterpret_cast<const char*>(in.data()));
        setg(begin, begin, begin + in.size());
    }
};

}  // namespace detail

/// cereal binary archive codec.
struct CerealCodec {
    static constexpr CodecId id = CodecId::cereal;
    static constexpr std::string_view name = "cereal";

    template <class... T>
    static constexpr bool supports = ((cereal::traits::is_output_serializable<T, cereal::BinaryOutputArchive>::value &&
                                       cereal::traits::is_input_serializable<T, cereal::BinaryInputArchive>::value &&
                                       std::is_default_constructible_v<T>)&&...);

    template <class... T>
    static void encode(Buffer& out, const T&... args) {
        detail::BufferStreambuf buf(out);
        std::ostream stream(&buf);
        cereal::BinaryOutputArchive archive(stream);
        if constexpr (sizeof...(T) > 0) {
            archive(args...);
        }
    }

    template <class... T>
    static std::tuple<T...> decode(std::span<const std::byte> in) {
        detail::SpanStreambuf buf(in);
        std::istream stream(&buf);
        std::tuple<T...> values;
        try {
            cereal::BinaryInputArchive archive(stream);
            std::apply([&](auto&... v) { (archive(v), ...); }, values);
        } catch (const cereal::Exception& e) {
            throw Error(errc::decode_error, std::string("cereal: ") + e.what());
        }
        return values;
    }
};

}  // namespace meshy
