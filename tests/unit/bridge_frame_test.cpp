// RFC 6455 framing of `meshy bridge`: the pure frame parser, encoder and message assembler.
#include <gtest/gtest.h>

#include "bridge/utf8.hpp"
#include "bridge/websocket_frame.hpp"

using namespace meshy::cli::bridge;

namespace {

FrameParse parse(const std::string& bytes, std::uint64_t max = 1 << 20) {
    return parse_frame(bytes, max, true);
}

}  // namespace

TEST(BridgeFrame, ParsesMaskedTextFrame) {
    const std::string wire = encode_frame(Opcode::text, "Hello", true, 0x37fa213du);
    // RFC 6455 5.7: a single-frame masked text message.
    EXPECT_EQ(wire, std::string("\x81\x85\x37\xfa\x21\x3d\x7f\x9f\x4d\x51\x58", 11));
    const auto p = parse(wire);
    ASSERT_EQ(p.status, FrameParse::Status::complete);
    EXPECT_EQ(p.consumed, wire.size());
    EXPECT_TRUE(p.frame.fin);
    EXPECT_EQ(p.frame.opcode, Opcode::text);
    EXPECT_EQ(p.frame.payload, "Hello");
}

TEST(BridgeFrame, IncompleteUntilAllBytesArrive) {
    const std::string wire = encode_frame(Opcode::binary, std::string(300, 'x'), true, 1u);
    for (std::size_t n = 0; n < wire.size(); ++n) {
        EXPECT_EQ(parse(wire.substr(0, n)).status, FrameParse::Status::incomplete) << n;
    }
    const auto p = parse(wire + "extra");
    ASSERT_EQ(p.status, FrameParse::Status::complete);
    EXPECT_EQ(p.consumed, wire.size());
    EXPECT_EQ(p.frame.payload, std::string(300, 'x'));
}

TEST(BridgeFrame, SixtyFourBitLength) {
    const std::string payload(70000, 'a');
    const auto p = parse(encode_frame(Opcode::binary, payload, true, 7u));
    ASSERT_EQ(p.status, FrameParse::Status::complete);
    EXPECT_EQ(p.frame.payload.size(), payload.size());
}

TEST(BridgeFrame, RejectsProtocolViolations) {
    EXPECT_EQ(parse_frame(encode_frame(Opcode::text, "x"), 100, true).close, close_code::protocol_error)
        << "unmasked client frame";
    std::string rsv = encode_frame(Opcode::text, "x", true, 1u);
    rsv[0] = static_cast<char>(rsv[0] | 0x40);
    EXPECT_EQ(parse(rsv).close, close_code::protocol_error);
    std::string opcode = encode_frame(Opcode::text, "x", true, 1u);
    opcode[0] = static_cast<char>(0x83);
    EXPECT_EQ(parse(opcode).close, close_code::protocol_error);
    EXPECT_EQ(parse(encode_frame(Opcode::ping, std::string(126, 'p'), true, 1u)).close, close_code::protocol_error);
    EXPECT_EQ(parse(encode_frame(Opcode::ping, "p", false, 1u)).close, close_code::protocol_error);
    // Non-minimal 16-bit length.
    EXPECT_EQ(parse(std::string("\x81\xfe\x00\x05\x00\x00\x00\x00hello", 13)).close, close_code::protocol_error);
}

TEST(BridgeFrame, OversizeFrameIs1009FromTheHeader) {
    // Only the header: the size is judged before any payload arrives.
    const std::string header("\x82\xff\x00\x00\x00\x00\x01\x00\x00\x00", 10);
    const auto p = parse_frame(header, 1000, true);
    EXPECT_EQ(p.status, FrameParse::Status::error);
    EXPECT_EQ(p.close, close_code::message_too_big);
}

TEST(BridgeFrame, AssemblesFragmentsWithInterleavedPing) {
    MessageAssembler a(1000);
    EXPECT_EQ(a.on_frame({false, Opcode::text, true, "Hel"}).kind, WsEvent::Kind::none);
    EXPECT_EQ(a.on_frame({true, Opcode::ping, true, "p"}).kind, WsEvent::Kind::ping);
    const auto e = a.on_frame({true, Opcode::continuation, true, "lo"});
    ASSERT_EQ(e.kind, WsEvent::Kind::message);
    EXPECT_EQ(e.data, "Hello");
    EXPECT_FALSE(e.binary);
}

TEST(BridgeFrame, AssemblerErrors) {
    MessageAssembler a(10);
    EXPECT_EQ(a.on_frame({true, Opcode::continuation, true, "x"}).code, close_code::protocol_error);
    MessageAssembler b(10);
    b.on_frame({false, Opcode::text, true, "a"});
    EXPECT_EQ(b.on_frame({true, Opcode::text, true, "b"}).code, close_code::protocol_error);
    MessageAssembler c(10);
    c.on_frame({false, Opcode::binary, true, "123456"});
    EXPECT_EQ(c.on_frame({true, Opcode::continuation, true, "789012"}).code, close_code::message_too_big);
    MessageAssembler d(10);
    EXPECT_EQ(d.on_frame({true, Opcode::text, true, "\xc3\x28"}).code, close_code::invalid_payload);
    MessageAssembler e(10);
    EXPECT_EQ(e.on_frame({true, Opcode::close, true, std::string("\x03\xe8", 2)}).code, close_code::normal);
    EXPECT_EQ(e.on_frame({true, Opcode::close, true, std::string("\x03\xed", 2)}).code,
              close_code::protocol_error);  // 1005 must not be sent
    EXPECT_EQ(e.on_frame({true, Opcode::close, true, "x"}).code, close_code::protocol_error);
}

TEST(BridgeFrame, Utf8Validation) {
    EXPECT_TRUE(valid_utf8("plain ascii"));
    EXPECT_TRUE(valid_utf8("\xce\xba\xe1\xbd\xb9\xf0\x9f\x98\x80"));
    EXPECT_FALSE(valid_utf8("\xc0\xaf"));          // overlong
    EXPECT_FALSE(valid_utf8("\xed\xa0\x80"));      // surrogate
    EXPECT_FALSE(valid_utf8("\xf4\x90\x80\x80"));  // above U+10FFFF
    EXPECT_FALSE(valid_utf8("\xe2\x82"));          // truncated
}

TEST(BridgeFrame, ClosePayloadIsCutToFit) {
    const std::string p = close_payload(1008, std::string(200, 'r'));
    EXPECT_EQ(p.size(), 125u);
    EXPECT_EQ(static_cast<unsigned char>(p[0]) << 8 | static_cast<unsigned char>(p[1]), 1008);
}
