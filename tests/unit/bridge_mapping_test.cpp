// JSON <-> msgpack mapping and the rosbridge op parser of `meshy bridge` (docs/bridge-protocol.md).
#include <gtest/gtest.h>

#include <limits>
#include <meshy/codecs/msgpack.hpp>
#include <nlohmann/json.hpp>

#include "bridge/message_mapping.hpp"
#include "bridge/rosbridge_op.hpp"
#include "msgpack_json.hpp"

using namespace meshy::cli::bridge;
using json = nlohmann::json;

namespace {

json round_trip(const json& in, bool cbor = false) {
    const meshy::Buffer b = json_to_payload(in);
    return payload_to_json(meshy::CodecId::msgpack, b.bytes(), cbor);
}

std::string packed(const meshy::Buffer& b) {
    return payload_to_json(meshy::CodecId::msgpack, b.bytes(), false).dump();
}

}  // namespace

TEST(BridgeMapping, KwargsOnlyMessage) {
    const meshy::Buffer b = json_to_payload(json{{"text", "x"}});
    auto handle = msgpack::unpack(reinterpret_cast<const char*>(b.data()), b.size());
    const auto& o = handle.get();
    ASSERT_EQ(o.type, msgpack::type::ARRAY);
    ASSERT_EQ(o.via.array.size, 1u);
    EXPECT_EQ(o.via.array.ptr[0].type, msgpack::type::MAP);
    EXPECT_EQ(round_trip(json{{"text", "x"}}), (json{{"text", "x"}}));
    EXPECT_EQ(round_trip(json{{"data", "x"}, {"n", 3}}), (json{{"data", "x"}, {"n", 3}}));
}

TEST(BridgeMapping, RosOneFieldMessageIsItsValue) {
    // std_msgs/String {"data": "x"} reaches a listener taking one string as that string.
    EXPECT_EQ(round_trip(json{{"data", "x"}}), (json{{"args", {"x"}}}));
    EXPECT_EQ(round_trip(json{{"data", {1, 2}}}), (json{{"args", {{1, 2}}}}));
}

TEST(BridgeMapping, FloatsStayFloats) {
    // msgpack-c packs a whole double as an integer; the bridge keeps JSON's 1.0 a float.
    const meshy::Buffer b = json_to_payload(json::parse(R"({"args": [1.0, 2]})"));
    auto handle = msgpack::unpack(reinterpret_cast<const char*>(b.data()), b.size());
    const auto& o = handle.get();
    ASSERT_EQ(o.type, msgpack::type::ARRAY);
    ASSERT_EQ(o.via.array.size, 2u);
    EXPECT_EQ(o.via.array.ptr[0].type, msgpack::type::FLOAT64);
    EXPECT_EQ(o.via.array.ptr[1].type, msgpack::type::POSITIVE_INTEGER);
}

TEST(BridgeMapping, PositionalAndMixed) {
    EXPECT_EQ(round_trip(json{{"args", {1, "a"}}}), (json{{"args", {1, "a"}}}));
    EXPECT_EQ(round_trip(json{{"args", {1}}, {"x", 2}}), (json{{"args", {1}}, {"x", 2}}));
    EXPECT_EQ(round_trip(json::object()), json::object());
    EXPECT_EQ(round_trip(json::array({1, 2})), (json{{"args", {1, 2}}}));
    EXPECT_THROW(json_to_payload(json(5)), MappingError);
}

TEST(BridgeMapping, MeshyMessagesAsJson) {
    // What `meshy topic send chatter hello` and `node.send("t", 3, 4.5)` produce.
    meshy::Buffer b;
    msgpack::packer<meshy::Buffer> pk(b);
    pk.pack_array(2);
    pk.pack(3);
    pk.pack(4.5);
    EXPECT_EQ(packed(b), R"({"args":[3,4.5]})");
}

TEST(BridgeMapping, BinaryIsBase64InJsonAndBytesInCbor) {
    meshy::Buffer b;
    msgpack::packer<meshy::Buffer> pk(b);
    pk.pack_array(1);
    pk.pack_map(1);
    pk.pack(std::string("img"));
    pk.pack_bin(3);
    pk.pack_bin_body("\x01\x02\x03", 3);
    EXPECT_EQ(packed(b), R"({"img":"AQID"})");
    const json c = payload_to_json(meshy::CodecId::msgpack, b.bytes(), true);
    ASSERT_TRUE(c["img"].is_binary());
    EXPECT_EQ(c["img"].get_binary().size(), 3u);
    // And back: a CBOR byte string becomes msgpack bin again.
    EXPECT_EQ(round_trip(c, true), c);
}

TEST(BridgeMapping, OpaquePayloads) {
    const std::string raw("\x00\xff", 2);
    const json j = payload_to_json(meshy::CodecId::raw, std::as_bytes(std::span(raw.data(), raw.size())), false);
    EXPECT_EQ(j["bytes"], "AP8=");
    EXPECT_EQ(j["codec"], "raw");
}

TEST(BridgeOps, ParsesPublishAndSubscribe) {
    auto p = parse_op(R"({"op":"publish","topic":"/chatter","msg":{"data":"hi"}})", false);
    ASSERT_TRUE(p.op) << p.error;
    EXPECT_EQ(p.op->kind, OpKind::publish);
    EXPECT_EQ(meshy_name(p.op->name), "chatter");
    EXPECT_EQ(packed(p.op->payload), R"({"args":["hi"]})");
    p = parse_op(R"({"op":"subscribe","id":"s1","topic":"/a","throttle_rate":100,"queue_length":5,)"
                 R"("fragment_size":1000,"compression":"cbor"})",
                 false);
    ASSERT_TRUE(p.op) << p.error;
    EXPECT_EQ(p.op->throttle_rate, 100u);
    EXPECT_EQ(p.op->queue_length, 5u);
    EXPECT_EQ(p.op->fragment_size, 1000u);
    EXPECT_EQ(p.op->compression, "cbor");
    EXPECT_EQ(p.op->id, "s1");
}

TEST(BridgeOps, CallServiceArgsListOrDict) {
    auto p = parse_op(R"({"op":"call_service","service":"/add","args":[2,3],"id":7,"timeout":1.5})", false);
    ASSERT_TRUE(p.op) << p.error;
    EXPECT_EQ(packed(p.op->payload), R"({"args":[2,3]})");
    EXPECT_EQ(p.op->id, "7");
    EXPECT_DOUBLE_EQ(p.op->timeout_s.value_or(0), 1.5);
    p = parse_op(R"({"op":"call_service","service":"/rosapi/topic_type","args":{"topic":"/x"}})", false);
    ASSERT_TRUE(p.op) << p.error;
    EXPECT_EQ(p.op->rosapi_arg, "/x");
}

TEST(BridgeOps, AuthForms) {
    auto p = parse_op(R"({"op":"auth","token":"s3cret"})", false);
    ASSERT_TRUE(p.op);
    EXPECT_EQ(p.op->token, "s3cret");
    p = parse_op(R"({"op":"auth","mac":"s3cret","client":"c","dest":"d","rand":"r","t":1,"level":"admin","end":2})",
                 false);
    ASSERT_TRUE(p.op);
    EXPECT_EQ(p.op->token, "s3cret");
}

TEST(BridgeOps, ErrorsKeepTheId) {
    auto p = parse_op("{not json", false);
    EXPECT_FALSE(p.op);
    EXPECT_NE(p.error.find("malformed JSON"), std::string::npos);
    p = parse_op(R"({"op":"publish","id":"p1","msg":{}})", false);
    EXPECT_FALSE(p.op);
    EXPECT_EQ(p.id, "p1");
    EXPECT_NE(p.error.find("topic"), std::string::npos);
    EXPECT_FALSE(parse_op(R"({"op":"frobnicate"})", false).op);
    EXPECT_FALSE(parse_op(R"({"op":"subscribe","topic":"/a","throttle_rate":-1})", false).op);
    EXPECT_FALSE(parse_op(R"({"op":"publish","topic":"/","msg":{}})", false).op);
    std::string deep(1000, '[');
    EXPECT_FALSE(parse_op(deep, false).op);
}

TEST(BridgeOps, CborOp) {
    const json op = {{"op", "publish"}, {"topic", "/b"}, {"msg", {{"raw", json::binary({1, 2, 3})}}}};
    const auto bytes = json::to_cbor(op);
    const auto p = parse_op(std::string_view(reinterpret_cast<const char*>(bytes.data()), bytes.size()), true);
    ASSERT_TRUE(p.op) << p.error;
    const json back = payload_to_json(meshy::CodecId::msgpack, p.op->payload.bytes(), true);
    EXPECT_TRUE(back["raw"].is_binary());
}

TEST(BridgeOps, NameMapping) {
    EXPECT_EQ(meshy_name("/chatter"), "chatter");
    EXPECT_EQ(meshy_name("chatter"), "chatter");
    EXPECT_EQ(meshy_name("/a/b"), "a/b");
    EXPECT_EQ(rosbridge_name("chatter"), "/chatter");
    EXPECT_EQ(rosbridge_name("/x"), "/x");
}

TEST(BridgeMapping, NonStringMapKeys) {
    meshy::Buffer b;
    msgpack::packer<meshy::Buffer> pk(b);
    pk.pack_array(1);
    pk.pack_map(3);
    pk.pack(7);
    pk.pack(std::string("seven"));
    pk.pack_map(1);  // a map as a key: named by its kind, never by its (unbounded) text
    pk.pack(1);
    pk.pack(2);
    pk.pack(true);
    pk.pack_nil();
    pk.pack(std::string("nil key"));
    // Not string-keyed, so not kwargs: a positional argument.
    EXPECT_EQ(packed(b), R"({"args":[{"7":"seven","<map>":true,"null":"nil key"}]})");
}

TEST(MsgpackJson, TextKeepsFloatsAndNonFiniteValues) {
    // The CLI's display (topic echo): 1.0 stays a float; nan and inf are words, or null in JSON.
    meshy::Buffer b;
    msgpack::packer<meshy::Buffer> pk(b);
    pk.pack_array(4);
    meshy::cli::pack_float64(b, 1.0);
    meshy::cli::pack_float64(b, std::numeric_limits<double>::quiet_NaN());
    meshy::cli::pack_float64(b, -std::numeric_limits<double>::infinity());
    pk.pack_map(1);
    pk.pack(1);
    pk.pack(std::string("one"));
    auto handle = msgpack::unpack(reinterpret_cast<const char*>(b.data()), b.size());
    const json j = meshy::cli::msgpack_to_json(handle.get(), meshy::cli::BinaryForm::summary);
    EXPECT_EQ(meshy::cli::json_text(j, false), R"([1.0, nan, -inf, {"1": "one"}])");
    EXPECT_EQ(meshy::cli::json_text(j, true), R"([1.0, null, null, {"1": "one"}])");
}

TEST(MsgpackJson, DeepJsonIsAnErrorAndDeepMsgpackIsNull) {
    json deep = 1;
    for (int i = 0; i < 100; ++i) {
        deep = json::array({deep});
    }
    EXPECT_THROW(json_to_payload(deep), MappingError);
    meshy::Buffer b;
    msgpack::packer<meshy::Buffer> pk(b);
    for (int i = 0; i < 100; ++i) {
        pk.pack_array(1);
    }
    pk.pack(1);
    auto handle = msgpack::unpack(reinterpret_cast<const char*>(b.data()), b.size());
    const std::string text =
        meshy::cli::json_text(meshy::cli::msgpack_to_json(handle.get(), meshy::cli::BinaryForm::summary), false);
    EXPECT_NE(text.find("null"), std::string::npos) << text;
}
