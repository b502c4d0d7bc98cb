// Messages of an advertised type read by their schema's field names (bridge/foxglove_typed.hpp):
// what `meshy topic echo` prints and `meshy bag record` writes for a typed topic, and the check that
// a message fits its type's schema.
#include "bridge/foxglove_typed.hpp"

#include <gtest/gtest.h>

#include <meshy/codecs/msgpack.hpp>
#include <meshy/msgs/foxglove.hpp>
#include <meshy/type.hpp>
#include <nlohmann/json.hpp>

namespace {

using meshy::CodecId;
using nlohmann::ordered_json;
using namespace meshy::cli::bridge;
namespace fg = meshy::msgs::foxglove;

struct Vec {
    double x = 0, y = 0;
    MSGPACK_DEFINE(x, y)
    MESHY_TYPE("test.Vec", x, y);
};

struct Packed {
    std::int64_t seq = 0;
    std::string label;
    Vec at;
    std::vector<std::uint8_t> data;
    std::optional<double> maybe;
    MSGPACK_DEFINE(seq, label, at, data, maybe)
    MESHY_TYPE("test.Packed", seq, label, at, data, maybe);
};

struct Named {
    std::string frame;
    std::int64_t seq = 0;
    std::vector<std::uint8_t> data;
    MSGPACK_DEFINE_MAP(frame, seq, data)
    MESHY_TYPE("test.Named", seq, frame, data);  // schema order differs from the wire's on purpose
};

std::vector<std::byte> pack_args(const auto&... args) {
    meshy::Buffer out;
    msgpack::packer<meshy::Buffer> pk(out);
    pk.pack_array(sizeof...(args));
    (pk.pack(args), ...);
    const auto bytes = out.bytes();
    return {bytes.begin(), bytes.end()};
}

template <class T>
ordered_json schema_of() {
    return ordered_json::parse(meshy::message_type<T>::schema());
}

TEST(TypedMessage, NamesTheElementsOfAPositionalTypeInSchemaOrder) {
    const auto payload = pack_args(Packed{7, "p", {1.5, -2.5}, {1, 2, 3}, std::nullopt});
    const auto sut = typed_message(CodecId::msgpack, payload, schema_of<Packed>());
    ASSERT_TRUE(sut);
    EXPECT_EQ(sut->dump(), R"({"seq":7,"label":"p","at":{"x":1.5,"y":-2.5},"data":"AQID","maybe":null})");
    EXPECT_TRUE(fits_schema(*sut, schema_of<Packed>()));
}

TEST(TypedMessage, KeepsAMapsMembersInTheirOrderAndShowsBytesAsSummaryForPeople) {
    const auto payload = pack_args(Named{"map", 3, {0xab, 0xcd}});
    const auto sut = typed_message(CodecId::msgpack, payload, schema_of<Named>(), TypedBinary::summary);
    ASSERT_TRUE(sut);
    EXPECT_EQ(sut->dump(), R"({"frame":"map","seq":3,"data":"<2 bytes: abcd>"})");
}

TEST(TypedMessage, SeveralArgumentsAreTheFieldsInOrder) {
    const auto payload = pack_args(1.5, 2.5);
    const auto sut = typed_message(CodecId::msgpack, payload, schema_of<Vec>());
    ASSERT_TRUE(sut);
    EXPECT_EQ(sut->dump(), R"({"x":1.5,"y":2.5})");
}

TEST(TypedMessage, AWellKnownTypeFitsItsSchema) {
    const fg::Log log{
        .timestamp = {1, 2}, .level = fg::Log::error, .message = "m", .name = "n", .file = "f", .line = 3};
    const auto schema = schema_of<fg::Log>();
    const auto sut = typed_message(CodecId::msgpack, pack_args(log), schema);
    ASSERT_TRUE(sut);
    EXPECT_TRUE(fits_schema(*sut, schema));
    EXPECT_EQ((*sut)["message"], "m");
}

TEST(TypedMessage, PayloadsWithoutThatJsonFormAreNotTyped) {
    const auto schema = schema_of<Vec>();
    EXPECT_FALSE(typed_message(CodecId::msgpack, pack_args(std::map<int, int>{{1, 2}}), schema));
    EXPECT_FALSE(typed_message(CodecId::msgpack, pack_args(std::vector<int>{1, 2, 3}), schema));  // 3 > 2 fields
    EXPECT_FALSE(typed_message(CodecId::raw, pack_args(1.5, 2.5), schema));
    const std::byte truncated[] = {std::byte{0x92}, std::byte{0x01}};
    EXPECT_FALSE(typed_message(CodecId::msgpack, truncated, schema));
}

TEST(FitsSchema, ChecksTypesRequiredMembersAndBounds) {
    const auto schema = ordered_json::parse(R"({"type":"object","properties":{
        "n":{"type":"integer","minimum":0},
        "s":{"type":"string","contentEncoding":"base64"},
        "o":{"anyOf":[{"type":"number"},{"type":"null"}]},
        "a":{"type":"array","items":{"type":"boolean"},"minItems":1,"maxItems":2},
        "e":{"enum":["x","y"]}},
        "required":["n"],"additionalProperties":{"type":"string"}})");
    EXPECT_TRUE(fits_schema(ordered_json::parse(R"({"n":2.0,"o":null,"a":[true],"e":"y","extra":"ok"})"), schema));
    EXPECT_FALSE(fits_schema(ordered_json::parse(R"({"s":"aGk="})"), schema));       // n is required
    EXPECT_FALSE(fits_schema(ordered_json::parse(R"({"n":-1})"), schema));           // minimum
    EXPECT_FALSE(fits_schema(ordered_json::parse(R"({"n":1.5})"), schema));          // not an integer
    EXPECT_FALSE(fits_schema(ordered_json::parse(R"({"n":1,"o":"x"})"), schema));    // no alternative
    EXPECT_FALSE(fits_schema(ordered_json::parse(R"({"n":1,"a":[]})"), schema));     // minItems
    EXPECT_FALSE(fits_schema(ordered_json::parse(R"({"n":1,"a":[1]})"), schema));    // items
    EXPECT_FALSE(fits_schema(ordered_json::parse(R"({"n":1,"e":"z"})"), schema));    // enum
    EXPECT_FALSE(fits_schema(ordered_json::parse(R"({"n":1,"extra":3})"), schema));  // additionalProperties
    EXPECT_FALSE(fits_schema(ordered_json::parse(R"([1])"), schema));
}

TEST(FitsSchema, AHostileSchemaCostsBoundedWork) {
    // Property lookups are linear: 5000 members against 5000 properties would be 2.5e7 steps. A
    // peer's schema must not make one message cost that: past the budget, the message does not fit.
    ordered_json schema = {{"type", "object"}, {"properties", ordered_json::object()}};
    ordered_json value = ordered_json::object();
    for (int i = 0; i < 5000; ++i) {
        schema["properties"]["p" + std::to_string(i)] = {{"type", "integer"}};
        value["p" + std::to_string(i)] = i;
    }
    EXPECT_FALSE(fits_schema(value, schema));
    value.erase("p0");
    ordered_json small = {{"p1", 1}, {"p2", 2}};
    EXPECT_TRUE(fits_schema(small, schema));
}

}  // namespace
