// Typed messages (meshy/type.hpp), Foxglove's well-known types (meshy/msgs/foxglove.hpp), schema
// inference and the exact JSON <-> msgpack round trip that bags recorded as JSON rely on.
#include <gtest/gtest.h>

#include <meshy/codecs/msgpack.hpp>
#include <meshy/msgs/foxglove.hpp>
#include <meshy/type.hpp>
#include <nlohmann/json.hpp>

#include "bag/json_encoding.hpp"
#include "bridge/foxglove_schema.hpp"
#include "bridge/message_mapping.hpp"

namespace {

using meshy::CodecId;
using nlohmann::ordered_json;
using namespace meshy::cli::bridge;
namespace fg = meshy::msgs::foxglove;

struct Inner {
    std::string label;
    std::vector<std::int32_t> values;
    MSGPACK_DEFINE_MAP(label, values)
    MESHY_TYPE("test/Inner", label, values);
};

struct Sample {
    std::int64_t count = 0;
    std::uint16_t small = 0;
    double ratio = 0;
    bool flag = false;
    std::string name;
    std::vector<std::byte> blob;
    std::optional<double> maybe;
    std::map<std::string, double> table;
    Inner inner;
    MSGPACK_DEFINE_MAP(count, small, ratio, flag, name, blob, maybe, table, inner)
    MESHY_TYPE("test/Sample", count, small, ratio, flag, name, blob, maybe, table, inner);
};

std::vector<std::byte> pack_args(const auto&... args) {
    meshy::Buffer out;
    msgpack::packer<meshy::Buffer> pk(out);
    pk.pack_array(sizeof...(args));
    (pk.pack(args), ...);
    const auto bytes = out.bytes();
    return {bytes.begin(), bytes.end()};
}

TEST(MessageType, SchemaListsFieldsInOrderWithTheirJsonTypes) {
    static_assert(meshy::TypedMessage<Sample>);
    static_assert(!meshy::TypedMessage<int>);
    EXPECT_EQ(meshy::message_type<Sample>::name, "test/Sample");
    const auto sut = ordered_json::parse(meshy::message_type<Sample>::schema());
    EXPECT_EQ(sut["title"], "test/Sample");
    EXPECT_EQ(sut["type"], "object");
    std::vector<std::string> keys;
    for (const auto& [k, v] : sut["properties"].items()) {
        keys.push_back(k);
    }
    EXPECT_EQ(keys,
              (std::vector<std::string>{"count", "small", "ratio", "flag", "name", "blob", "maybe", "table", "inner"}));
    const auto& p = sut["properties"];
    EXPECT_EQ(p["count"], ordered_json::parse(R"({"type":"integer"})"));
    EXPECT_EQ(p["small"], ordered_json::parse(R"({"type":"integer","minimum":0})"));
    EXPECT_EQ(p["ratio"]["type"], "number");
    EXPECT_EQ(p["flag"]["type"], "boolean");
    EXPECT_EQ(p["name"]["type"], "string");
    EXPECT_EQ(p["blob"], ordered_json::parse(R"({"type":"string","contentEncoding":"base64"})"));
    EXPECT_EQ(p["maybe"]["anyOf"][1]["type"], "null");
    EXPECT_EQ(p["table"]["additionalProperties"]["type"], "number");
    EXPECT_EQ(p["inner"]["title"], "test/Inner");
    EXPECT_EQ(p["inner"]["properties"]["values"]["items"]["type"], "integer");
    EXPECT_EQ(sut["required"].size(), 9u);
}

TEST(FoxgloveTypes, FieldsMatchFoxglovesSchemas) {
    const auto fields = [](std::string_view name) {
        const KnownType* t = find_known_type(name);
        EXPECT_NE(t, nullptr) << name;
        std::vector<std::string> out;
        if (t) {
            const auto schema = ordered_json::parse(t->schema);
            for (const auto& [k, v] : schema["properties"].items()) {
                out.push_back(k);
            }
        }
        return out;
    };
    using V = std::vector<std::string>;
    EXPECT_EQ(fields("foxglove.CompressedImage"), (V{"timestamp", "frame_id", "data", "format"}));
    EXPECT_EQ(fields("foxglove.RawImage"), (V{"timestamp", "frame_id", "width", "height", "encoding", "step", "data"}));
    EXPECT_EQ(fields("foxglove.FrameTransform"),
              (V{"timestamp", "parent_frame_id", "child_frame_id", "translation", "rotation"}));
    EXPECT_EQ(fields("foxglove.PoseInFrame"), (V{"timestamp", "frame_id", "pose"}));
    EXPECT_EQ(fields("foxglove.PointCloud"), (V{"timestamp", "frame_id", "pose", "point_stride", "fields", "data"}));
    EXPECT_EQ(fields("foxglove.Log"), (V{"timestamp", "level", "message", "name", "file", "line"}));
    EXPECT_EQ(fields("foxglove.LocationFix"),
              (V{"timestamp", "frame_id", "latitude", "longitude", "altitude", "position_covariance",
                 "position_covariance_type", "color", "metadata"}));
    const auto image = ordered_json::parse(find_known_type("foxglove.CompressedImage")->schema);
    EXPECT_EQ(image["properties"]["data"]["contentEncoding"], "base64");
    EXPECT_EQ(image["properties"]["timestamp"]["title"], "time");
    const auto fix = ordered_json::parse(find_known_type("foxglove.LocationFix")->schema);
    EXPECT_EQ(fix["properties"]["position_covariance"]["minItems"], 9);
}

TEST(FoxgloveTypes, ASentMessageIsRecognisedByItsFields) {
    fg::Log log{.timestamp = {1, 2}, .level = fg::Log::warning, .message = "m", .name = "n", .file = "f", .line = 3};
    const auto payload = pack_args(log);
    const auto json = payload_to_ordered_json(CodecId::msgpack, payload);
    EXPECT_EQ(json["message"], "m");
    EXPECT_EQ(json["timestamp"]["nsec"], 2);
    const KnownType* sut = match_known_type(json);
    ASSERT_NE(sut, nullptr);
    EXPECT_EQ(sut->name, "foxglove.Log");
    EXPECT_EQ(match_known_type(ordered_json::parse(R"({"a":1,"b":2,"c":3})")), nullptr);
}

TEST(SchemaInference, DescribesTheJsonOfAPayload) {
    meshy::Buffer out;
    msgpack::packer<meshy::Buffer> pk(out);
    pk.pack_array(2);
    pk.pack(7);
    pk.pack_map(3);
    pk.pack(std::string("x"));
    pk.pack(1.5);
    pk.pack(std::string("raw"));
    pk.pack_bin(2);
    pk.pack_bin_body("\x01\x02", 2);
    pk.pack(std::string("list"));
    pk.pack(std::vector<int>{1, 2});
    const auto sut = infer_schema(CodecId::msgpack, out.bytes());
    ASSERT_TRUE(sut);
    EXPECT_EQ((*sut)["$comment"], "inferred");
    EXPECT_EQ((*sut)["properties"]["x"]["type"], "number");
    EXPECT_EQ((*sut)["properties"]["raw"]["contentEncoding"], "base64");
    EXPECT_EQ((*sut)["properties"]["list"]["items"]["type"], "integer");
    EXPECT_EQ((*sut)["properties"]["args"]["items"][0]["type"], "integer");
}

TEST(SchemaInference, MapsWithKeysThatAreNotStringsHaveNoJsonForm) {
    meshy::Buffer out;
    msgpack::packer<meshy::Buffer> pk(out);
    pk.pack_array(1);
    pk.pack(std::vector<std::map<int, int>>{{{1, 2}}});
    EXPECT_FALSE(infer_schema(CodecId::msgpack, out.bytes()));
    EXPECT_FALSE(infer_schema(CodecId::raw, out.bytes()));
}

TEST(SchemaInference, MergeWidensToWhatBothMessagesNeed) {
    const auto a = ordered_json::parse(
        R"({"type":"object","properties":{"x":{"type":"integer"},"y":{"type":"string"}},"required":["x","y"]})");
    const auto b = ordered_json::parse(
        R"({"type":"object","properties":{"x":{"type":"number"},"z":{"type":"null"}},"required":["x","z"]})");
    const auto sut = merge_schemas(a, b);
    EXPECT_EQ(sut["properties"]["x"]["type"], "number");
    EXPECT_TRUE(sut["properties"].contains("y"));
    EXPECT_TRUE(sut["properties"].contains("z"));
    EXPECT_EQ(sut["required"], ordered_json::parse(R"(["x"])"));
    const auto any =
        merge_schemas(ordered_json::parse(R"({"type":"string"})"), ordered_json::parse(R"({"type":"null"})"));
    EXPECT_EQ(any["anyOf"].size(), 2u);
    // Same type, different shape: two alternatives (this pair once recursed without end).
    const auto strings = merge_schemas(ordered_json::parse(R"({"type":"string","contentEncoding":"base64"})"),
                                       ordered_json::parse(R"({"type":"string"})"));
    EXPECT_EQ(strings["anyOf"].size(), 2u);
    EXPECT_EQ(merge_schemas(strings, ordered_json::parse(R"({"type":"string"})")), strings);
}

/// msgpack -> JSON text -> msgpack with the inferred schema gives the same bytes.
void expect_round_trip(const std::vector<std::byte>& bytes) {
    const auto schema = infer_schema(CodecId::msgpack, bytes);
    ASSERT_TRUE(schema);
    const std::string text = payload_to_ordered_json(CodecId::msgpack, bytes).dump();
    const meshy::Buffer back = json_to_payload(ordered_json::parse(text), *schema);
    const auto b = back.bytes();
    EXPECT_EQ(std::vector<std::byte>(b.begin(), b.end()), bytes) << text;
}

TEST(JsonRoundTrip, EveryJsonKindComesBackByteForByte) {
    expect_round_trip(pack_args(msgpack::type::nil_t{}, true, false));
    expect_round_trip(pack_args(0, 1, -1, 127, 128, -33, 65536, std::int64_t{-5000000000}, std::uint64_t{1} << 63));
    expect_round_trip(pack_args(0.0, 1.5, -2.25, 1e300));
    expect_round_trip(pack_args(std::string(""), std::string("héllo"), std::string(300, 'x')));
    expect_round_trip(pack_args(std::vector<char>{'\0', '\xff'}, std::vector<int>{1, 2, 3}));
    expect_round_trip(pack_args(std::map<std::string, int>{{"b", 1}, {"a", 2}}));
    fg::PointCloud cloud;
    cloud.fields = {{.name = "x", .offset = 0, .type = fg::PackedElementField::float32}};
    cloud.data = {1, 2, 3, 4};
    cloud.point_stride = 4;
    expect_round_trip(pack_args(cloud));
    Sample s;
    s.blob = {std::byte{9}};
    s.maybe = 2.5;
    s.table = {{"z", 1.0}, {"a", -1.0}};
    s.inner.values = {-1, 1};
    expect_round_trip(pack_args(s));
}

}  // namespace

namespace {

TEST(JsonRoundTrip, KeysThatAreNotUtf8StillComeBackExactly) {
    meshy::Buffer out;
    msgpack::packer<meshy::Buffer> pk(out);
    pk.pack_array(1);
    pk.pack_map(1);
    pk.pack_str(2);
    pk.pack_str_body("\xff\x90", 2);
    pk.pack(1);
    const auto bytes = out.bytes();
    meshy::bag::JsonChannelSchema schema;
    const auto sut = schema.observe("t", bytes);
    ASSERT_TRUE(sut);
    const auto text = meshy::bag::encode_json_message(bytes, sut->text);
    ASSERT_TRUE(text);
    const auto back = meshy::bag::decode_json_message(std::as_bytes(std::span(text->data(), text->size())), sut->text);
    EXPECT_TRUE(std::equal(back.bytes().begin(), back.bytes().end(), bytes.begin(), bytes.end())) << *text;
}

}  // namespace
