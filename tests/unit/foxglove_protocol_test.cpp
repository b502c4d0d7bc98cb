// The Foxglove WebSocket protocol's client messages and binary server messages (foxglove_protocol),
// and the per-channel round-robin queue of a client's topic data (foxglove_fair_queue).
#include "bridge/foxglove_protocol.hpp"

#include <gtest/gtest.h>

#include "bridge/foxglove_fair_queue.hpp"

namespace {

using namespace meshy::cli::bridge;

std::string le32(std::uint32_t v) {
    std::string out;
    for (int i = 0; i < 4; ++i) {
        out += static_cast<char>((v >> (8 * i)) & 0xFF);
    }
    return out;
}

TEST(FoxgloveSubprotocol, AnswersTheFirstFoxgloveProtocolOffered) {
    EXPECT_EQ(select_foxglove_subprotocol("foxglove.websocket.v1"), "foxglove.websocket.v1");
    EXPECT_EQ(select_foxglove_subprotocol("x, foxglove.sdk.v1 ,foxglove.websocket.v1"), "foxglove.sdk.v1");
    EXPECT_EQ(select_foxglove_subprotocol(""), "");
    EXPECT_EQ(select_foxglove_subprotocol("foxglove.websocket.v2"), "");
}

TEST(FoxgloveParse, SubscribeAndUnsubscribe) {
    auto sut = parse_foxglove_message(
        R"({"op":"subscribe","subscriptions":[{"id":0,"channelId":3},{"id":1,"channelId":4}]})", false);
    ASSERT_TRUE(sut.op) << sut.error;
    EXPECT_EQ(sut.op->kind, FoxgloveOpKind::subscribe);
    ASSERT_EQ(sut.op->subscriptions.size(), 2u);
    EXPECT_EQ(sut.op->subscriptions[1], (std::pair<std::uint32_t, std::uint32_t>{1, 4}));
    sut = parse_foxglove_message(R"({"op":"unsubscribe","subscriptionIds":[0]})", false);
    ASSERT_TRUE(sut.op);
    EXPECT_EQ(sut.op->ids, std::vector<std::uint32_t>{0});
}

TEST(FoxgloveParse, ClientAdvertiseWithAndWithoutSchema) {
    const auto sut = parse_foxglove_message(
        R"({"op":"advertise","channels":[{"id":1,"topic":"/a","encoding":"json","schemaName":"T"},)"
        R"({"id":2,"topic":"/b","encoding":"json","schemaName":"U","schema":"{}","schemaEncoding":"jsonschema"}]})",
        false);
    ASSERT_TRUE(sut.op) << sut.error;
    ASSERT_EQ(sut.op->channels.size(), 2u);
    EXPECT_EQ(sut.op->channels[0].topic, "/a");
    EXPECT_EQ(sut.op->channels[0].schema, "");
    EXPECT_EQ(sut.op->channels[1].schema_encoding, "jsonschema");
}

TEST(FoxgloveParse, BinaryMessageDataAndServiceCall) {
    auto sut = parse_foxglove_message(std::string("\x01", 1) + le32(7) + "{\"x\":1}", true);
    ASSERT_TRUE(sut.op) << sut.error;
    EXPECT_EQ(sut.op->kind, FoxgloveOpKind::message_data);
    EXPECT_EQ(sut.op->channel_id, 7u);
    EXPECT_EQ(sut.op->data, "{\"x\":1}");
    sut = parse_foxglove_message(std::string("\x02", 1) + le32(3) + le32(9) + le32(4) + "json" + "{}", true);
    ASSERT_TRUE(sut.op) << sut.error;
    EXPECT_EQ(sut.op->kind, FoxgloveOpKind::service_call);
    EXPECT_EQ(sut.op->service_id, 3u);
    EXPECT_EQ(sut.op->call_id, 9u);
    EXPECT_EQ(sut.op->encoding, "json");
    EXPECT_EQ(sut.op->data, "{}");
}

TEST(FoxgloveParse, BadMessagesSayWhy) {
    const std::pair<std::string, bool> bad[] = {
        {"not json", false},
        {"[1]", false},
        {R"({"op":"nope"})", false},
        {R"({"op":"subscribe","subscriptions":[{"id":-1,"channelId":0}]})", false},
        {R"({"op":"subscribe","subscriptions":[{"id":4294967296,"channelId":0}]})", false},
        {R"({"op":"advertise","channels":[{"id":1,"encoding":"json"}]})", false},
        {"", true},
        {std::string("\x01\x00", 2), true},
        {std::string("\x02", 1) + le32(1) + le32(1) + le32(100) + "json", true},
        {std::string("\x09", 1), true},
    };
    for (const auto& [message, binary] : bad) {
        const auto sut = parse_foxglove_message(message, binary);
        EXPECT_FALSE(sut.op) << message;
        EXPECT_FALSE(sut.error.empty()) << message;
    }
    const auto unsupported = parse_foxglove_message(R"({"op":"getParameters","parameterNames":[]})", false);
    ASSERT_TRUE(unsupported.op);
    EXPECT_EQ(unsupported.op->kind, FoxgloveOpKind::unsupported);
}

TEST(FoxgloveServerMessages, BinaryLayouts) {
    const std::string data = foxglove_message_data(5, 0x0102030405060708ull, "{}");
    ASSERT_EQ(data.size(), 15u);
    EXPECT_EQ(data[0], '\x01');
    EXPECT_EQ(data.substr(1, 4), le32(5));
    EXPECT_EQ(data[5], '\x08');
    EXPECT_EQ(data[12], '\x01');
    EXPECT_EQ(data.substr(13), "{}");
    const std::string response = foxglove_service_response(2, 3, "json", "[]");
    EXPECT_EQ(response, std::string("\x03", 1) + le32(2) + le32(3) + le32(4) + "json[]");
}

}  // namespace

namespace {

using meshy::cli::bridge::FairQueue;

FairQueue::Frame frame(std::string text) {
    return std::make_shared<const std::string>(std::move(text));
}

TEST(FoxgloveFairQueue, ChannelsTakeTurnsSoABusyOneCannotStarveTheOthers) {
    FairQueue sut(4);
    for (int i = 0; i < 4; ++i) {
        sut.push(1, frame("big" + std::to_string(i)));
    }
    sut.push(2, frame("small0"));
    sut.push(3, frame("log0"));
    std::vector<std::string> order;
    while (!sut.empty()) {
        order.push_back(*sut.pop());
    }
    EXPECT_EQ(order, (std::vector<std::string>{"big0", "small0", "log0", "big1", "big2", "big3"}));
    EXPECT_EQ(sut.pop(), nullptr);
}

TEST(FoxgloveFairQueue, AFullChannelDropsItsOwnOldestOnly) {
    FairQueue sut(2);
    sut.push(2, frame("small"));
    EXPECT_FALSE(sut.push(1, frame("a")));
    EXPECT_FALSE(sut.push(1, frame("b")));
    EXPECT_TRUE(sut.push(1, frame("c")));
    EXPECT_EQ(sut.dropped(), 1u);
    EXPECT_EQ(*sut.pop(), "b");
    EXPECT_EQ(*sut.pop(), "small");
    EXPECT_EQ(*sut.pop(), "c");
    sut.push(5, frame("x"));
    sut.erase(5);
    EXPECT_TRUE(sut.empty());
}

}  // namespace
