#include <gtest/gtest.h>

#include <cstring>
#include <map>
#include <meshy/meshy.hpp>
#include <optional>
#include <string>
#include <vector>

using namespace meshy;

namespace {

struct Pose {
    double x = 0, y = 0;
    std::string frame;
    MSGPACK_DEFINE(x, y, frame)
    template <class Archive>
    void serialize(Archive& ar) {
        ar(x, y, frame);
    }
    friend bool operator==(const Pose&, const Pose&) = default;
};

struct NotSerializable {
    int value = 0;
};

template <class C, class... T>
std::tuple<T...> round_trip(const T&... values) {
    Buffer out;
    C::encode(out, values...);
    return C::template decode<T...>(out.bytes());
}

}  // namespace

static_assert(CodecFor<MsgpackCodec, int, std::string, std::vector<double>, std::map<std::string, int>, Pose>);
static_assert(CodecFor<CerealCodec, int, std::string, Pose>);
static_assert(CodecFor<RawCodec, std::string>);
static_assert(!CodecFor<MsgpackCodec, NotSerializable>);
static_assert(!CodecFor<CerealCodec, NotSerializable>);
static_assert(!CodecFor<RawCodec, int>);

TEST(MsgpackCodec, RoundTripsArgumentsAndStructs) {
    const Pose pose{1.5, -2, "map"};
    auto [i, s, v, p] = round_trip<MsgpackCodec>(42, std::string("hi"), std::vector<int>{1, 2}, pose);
    EXPECT_EQ(i, 42);
    EXPECT_EQ(s, "hi");
    EXPECT_EQ(v, (std::vector<int>{1, 2}));
    EXPECT_EQ(p, pose);
}

TEST(MsgpackCodec, WireFormIsAnArrayOfArguments) {
    Buffer out;
    MsgpackCodec::encode(out, std::string("hello world"));
    ASSERT_GE(out.size(), 1u);
    EXPECT_EQ(std::to_integer<int>(out.data()[0]), 0x91);  // fixarray of one element
}

TEST(MsgpackCodec, WrongArityOrTypeIsADecodeError) {
    Buffer out;
    MsgpackCodec::encode(out, std::string("text"));
    try {
        MsgpackCodec::decode<int, int>(out.bytes());
        FAIL() << "decoded two ints from one string";
    } catch (const Error& e) {
        EXPECT_EQ(e.code(), errc::decode_error);
    }
    EXPECT_THROW(MsgpackCodec::decode<int>(out.bytes()), Error);
    const std::byte junk[] = {std::byte{0xc1}};
    EXPECT_THROW(MsgpackCodec::decode<int>(junk), Error);
}

TEST(CerealCodec, RoundTrips) {
    const Pose pose{3, 4, "odom"};
    auto [p, n] = round_trip<CerealCodec>(pose, std::int64_t{-9});
    EXPECT_EQ(p, pose);
    EXPECT_EQ(n, -9);
}

TEST(CerealCodec, TruncatedInputIsADecodeError) {
    Buffer out;
    CerealCodec::encode(out, std::string("a long enough string"));
    EXPECT_THROW(CerealCodec::decode<std::string>(out.bytes().first(4)), Error);
}

TEST(RawCodec, PassesBytesThrough) {
    const std::vector<std::uint8_t> bytes{0, 1, 2, 255};
    auto [b] = round_trip<RawCodec>(bytes);
    EXPECT_EQ(b, bytes);
    auto [s] = round_trip<RawCodec>(std::string("abc"));
    EXPECT_EQ(s, "abc");
}

TEST(RawCodec, DecodesAViewWithoutACopy) {
    // A listener of std::span<const std::byte> reads the payload where it lies (a loan: in place).
    const std::vector<std::byte> bytes{std::byte{1}, std::byte{2}, std::byte{3}};
    static_assert(CodecFor<RawCodec, std::span<const std::byte>>);
    auto [view] = RawCodec::decode<std::span<const std::byte>>(bytes);
    EXPECT_EQ(view.data(), bytes.data());
    EXPECT_EQ(view.size(), 3u);
    Buffer out;
    RawCodec::encode(out, view);  // and sends one as is
    EXPECT_TRUE(std::equal(out.bytes().begin(), out.bytes().end(), bytes.begin(), bytes.end()));
    auto [via_dispatch] =
        detail::decode_args<detail::NoCodec, std::span<const std::byte>>(CodecId::raw, std::span(bytes));
    EXPECT_EQ(via_dispatch.data(), bytes.data());
}

TEST(MsgpackCodec, DecodesABinAsAViewWithoutACopy) {
    // A listener of (..., std::span<const std::byte>) reads a msgpack bin where it lies.
    static_assert(CodecFor<MsgpackCodec, std::int64_t, std::span<const std::byte>>);
    const std::vector<std::byte> frame{std::byte{9}, std::byte{8}, std::byte{7}, std::byte{6}};
    Buffer out;
    MsgpackCodec::encode(out, std::int64_t{5}, std::span<const std::byte>(frame));  // sent as a bin
    const auto in = out.bytes();
    auto [seq, view] = MsgpackCodec::decode<std::int64_t, std::span<const std::byte>>(in);
    EXPECT_EQ(seq, 5);
    ASSERT_EQ(view.size(), frame.size());
    EXPECT_TRUE(std::equal(view.begin(), view.end(), frame.begin()));
    EXPECT_GE(view.data(), in.data());  // inside the message, not a copy
    EXPECT_LE(view.data() + view.size(), in.data() + in.size());
    // What a sender of std::vector<std::uint8_t> sends is a bin too.
    Buffer other;
    MsgpackCodec::encode(other, std::vector<std::uint8_t>{1, 2});
    auto [from_vector] = MsgpackCodec::decode<std::span<const std::byte>>(other.bytes());
    EXPECT_EQ(from_vector.size(), 2u);
    // A str or a number is not a bin: a decode error, as for any other mismatch.
    Buffer text;
    MsgpackCodec::encode(text, std::string("abc"));
    EXPECT_THROW(MsgpackCodec::decode<std::span<const std::byte>>(text.bytes()), Error);
}

using BuiltinCodecs = Codecs<MsgpackCodec, CerealCodec, RawCodec>;

TEST(CodecDispatch, PicksTheCodecByIdAndRefusesMismatches) {
    Buffer out;
    detail::encode_args<BuiltinCodecs>(CodecId::cereal, out, 7, std::string("x"));
    auto [n, s] = detail::decode_args<BuiltinCodecs, int, std::string>(CodecId::cereal, out.bytes());
    EXPECT_EQ(n, 7);
    EXPECT_EQ(s, "x");
    try {
        detail::decode_args<BuiltinCodecs, int>(CodecId::raw, out.bytes());
        FAIL();
    } catch (const Error& e) {
        EXPECT_EQ(e.code(), errc::codec_mismatch);
    }
    try {
        detail::decode_args<BuiltinCodecs, int>(static_cast<CodecId>(200), out.bytes());
        FAIL();
    } catch (const Error& e) {
        EXPECT_EQ(e.code(), errc::codec_mismatch);
    }
}

// Without a codec argument, a typed operation uses msgpack and raw only (DefaultCodecs), whatever
// else the translation unit includes: that is what keeps its code the same in every unit.
TEST(CodecDispatch, WithoutACodecArgumentOnlyMsgpackAndRawAreUsed) {
    EXPECT_EQ(detail::encoding_codec<detail::NoCodec>(CodecId::msgpack), CodecId::msgpack);
    EXPECT_EQ(detail::encoding_codec<detail::NoCodec>(CodecId::raw), CodecId::raw);
    try {
        detail::encoding_codec<detail::NoCodec>(CodecId::cereal);
        FAIL();
    } catch (const Error& e) {
        EXPECT_EQ(e.code(), errc::codec_mismatch);
        EXPECT_NE(std::string(e.what()).find("meshy/codecs/cereal.hpp"), std::string::npos) << e.what();
    }
    // A codec named alone is used whatever the node's; a list follows the node's codec.
    EXPECT_EQ(detail::encoding_codec<CerealCodec>(CodecId::msgpack), CodecId::cereal);
    EXPECT_EQ((detail::encoding_codec<Codecs<CerealCodec, MsgpackCodec>>(CodecId::cereal)), CodecId::cereal);
    EXPECT_THROW((detail::encoding_codec<Codecs<CerealCodec, MsgpackCodec>>(CodecId::raw)), Error);

    Buffer cereal;
    CerealCodec::encode(cereal, 7);
    try {
        detail::decode_args<detail::NoCodec, int>(CodecId::cereal, cereal.bytes());
        FAIL();
    } catch (const Error& e) {
        EXPECT_EQ(e.code(), errc::codec_mismatch);
        EXPECT_NE(std::string(e.what()).find("listen<meshy::CerealCodec>"), std::string::npos) << e.what();
    }
    EXPECT_EQ(std::get<0>(detail::decode_args<CerealCodec, int>(CodecId::cereal, cereal.bytes())), 7);
}

// A large last argument is sent from the caller's bytes: the head plus those bytes must be exactly
// what the codec would have encoded.
template <class... Args>
void expect_head_and_tail_equal_encoding(CodecId id, const Args&... args) {
    Buffer whole;
    detail::encode_args<BuiltinCodecs>(id, whole, args...);
    Buffer head;
    const auto tail = detail::encode_head<BuiltinCodecs>(id, head, args...);
    ASSERT_FALSE(tail.empty());
    Buffer joined;
    joined.append(head.data(), head.size());
    joined.append(tail.data(), tail.size());
    ASSERT_EQ(joined.size(), whole.size());
    EXPECT_EQ(0, std::memcmp(joined.data(), whole.data(), whole.size()));
}

TEST(CodecDispatch, LastArgumentOfBytesIsEncodedAsHeadPlusTheCallersBytes) {
    for (const std::size_t size : {std::size_t{1}, std::size_t{1000}, detail::large_payload_min - 1,
                                   detail::large_payload_min, std::size_t{70000}, std::size_t{1} << 20}) {
        std::vector<std::uint8_t> bytes(size);
        for (std::size_t i = 0; i < size; ++i) {
            bytes[i] = static_cast<std::uint8_t>(i * 7);
        }
        const std::string text(size, 'x');
        const std::vector<char> chars(size, 'c');
        expect_head_and_tail_equal_encoding(CodecId::msgpack, bytes);
        expect_head_and_tail_equal_encoding(CodecId::msgpack, 42, std::string("name"), bytes);
        expect_head_and_tail_equal_encoding(CodecId::msgpack, text);
        expect_head_and_tail_equal_encoding(CodecId::msgpack, 1.5, chars);
        expect_head_and_tail_equal_encoding(CodecId::msgpack, 3,
                                            std::span<const std::byte>(std::as_bytes(std::span(bytes))));
        expect_head_and_tail_equal_encoding(CodecId::raw, bytes);
        expect_head_and_tail_equal_encoding(CodecId::raw, text);
    }
}

TEST(CodecDispatch, EmptyOrNonBytesLastArgumentsAreEncodedWhole) {
    Buffer head;
    const std::vector<std::uint8_t> empty;
    EXPECT_TRUE(detail::encode_head<BuiltinCodecs>(CodecId::msgpack, head, 7, empty).empty());
    EXPECT_TRUE(detail::encode_head<BuiltinCodecs>(CodecId::raw, head, empty).empty());
    const std::vector<int> numbers(100000);
    EXPECT_TRUE(detail::encode_head<BuiltinCodecs>(CodecId::msgpack, head, numbers).empty());
    const std::vector<std::uint8_t> large(detail::large_payload_min);
    EXPECT_TRUE(detail::encode_head<BuiltinCodecs>(CodecId::cereal, head, large).empty());
    EXPECT_TRUE(detail::encode_head<BuiltinCodecs>(CodecId::raw, head, 1, large).empty());  // raw: one argument
    EXPECT_EQ(head.size(), 0u);
}

TEST(Buffer, GrowsWithoutLosingContents) {
    Buffer sut;
    for (int i = 0; i < 10000; ++i) {
        const auto byte = static_cast<std::uint8_t>(i);
        sut.append(&byte, 1);
    }
    ASSERT_EQ(sut.size(), 10000u);
    EXPECT_EQ(std::to_integer<int>(sut.data()[9999]), 9999 % 256);
    Buffer copy = sut;
    EXPECT_EQ(copy.size(), sut.size());
}

TEST(Error, CarriesCategoryAndMessage) {
    const Error e(errc::timeout, "service 'x'");
    EXPECT_EQ(e.code(), errc::timeout);
    EXPECT_STREQ(e.code().category().name(), "meshy");
    EXPECT_NE(std::string(e.what()).find("service 'x'"), std::string::npos);
}
