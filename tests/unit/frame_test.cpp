#include "wire/frame.hpp"

#include <gtest/gtest.h>

#include <cstring>

using namespace meshy;
using namespace meshy::detail::wire;

namespace {

std::span<const std::byte> all(const Buffer& b) {
    return b.bytes();
}

}  // namespace

TEST(Handshake, RoundTrips) {
    Buffer out;
    encode_handshake(out, Handshake{protocol_version, "id-1", "lab", "talker", "host-a"});
    Handshake sut;
    std::size_t used = 0;
    std::string reason;
    ASSERT_EQ(decode_handshake(all(out), sut, used, reason), Parse::ok) << reason;
    EXPECT_EQ(used, out.size());
    EXPECT_EQ(sut.id, "id-1");
    EXPECT_EQ(sut.domain, "lab");
    EXPECT_EQ(sut.name, "talker");
    EXPECT_EQ(sut.host, "host-a");
}

TEST(Handshake, NeedsMoreUntilComplete) {
    Buffer out;
    encode_handshake(out, Handshake{protocol_version, "id-1", "lab", "talker", "host-a"});
    for (std::size_t n = 0; n < out.size(); ++n) {
        Handshake sut;
        std::size_t used = 0;
        std::string reason;
        EXPECT_EQ(decode_handshake(all(out).first(n), sut, used, reason), Parse::need_more) << n;
    }
}

TEST(Handshake, WrongMagicIsRefusedAtTheFirstByte) {
    const char garbage[] = "G";
    Handshake sut;
    std::size_t used = 0;
    std::string reason;
    EXPECT_EQ(decode_handshake(std::as_bytes(std::span(garbage, 1)), sut, used, reason), Parse::error);
    EXPECT_NE(reason.find("magic"), std::string::npos);
}

TEST(Handshake, OversizeBodyIsRefused) {
    Buffer out;
    out.append("MSHY", 4);
    const std::uint8_t rest[] = {1, 0, 0xff, 0xff};
    out.append(rest, sizeof rest);
    Handshake sut;
    std::size_t used = 0;
    std::string reason;
    EXPECT_EQ(decode_handshake(all(out), sut, used, reason), Parse::error);
}

TEST(Frame, OversizeLengthIsRefusedBeforeTheBodyArrives) {
    const std::uint8_t prefix[] = {0x00, 0x00, 0x00, 0x10, 2};  // 256 MiB
    FrameView frame;
    std::size_t used = 0, needed = 0;
    std::string reason;
    EXPECT_EQ(next_frame(std::as_bytes(std::span(prefix)), 1024, frame, used, needed, reason), Parse::error);
    EXPECT_NE(reason.find("exceeds"), std::string::npos);
}

TEST(Frame, ZeroLengthAndUnknownTypeAreErrors) {
    const std::uint8_t zero[] = {0, 0, 0, 0};
    const std::uint8_t unknown[] = {1, 0, 0, 0, 77};
    FrameView frame;
    std::size_t used = 0, needed = 0;
    std::string reason;
    EXPECT_EQ(next_frame(std::as_bytes(std::span(zero)), 1024, frame, used, needed, reason), Parse::error);
    EXPECT_EQ(next_frame(std::as_bytes(std::span(unknown)), 1024, frame, used, needed, reason), Parse::error);
}

TEST(Frame, MessageRoundTripsAndReportsNeededSize) {
    Buffer out;
    begin_message(out, CodecId::msgpack, 1234, "chatter");
    out.append("payload", 7);
    finish_frame(out);

    FrameView frame;
    std::size_t used = 0, needed = 0;
    std::string reason;
    EXPECT_EQ(next_frame(all(out).first(6), 1 << 20, frame, used, needed, reason), Parse::need_more);
    EXPECT_EQ(needed, out.size());
    ASSERT_EQ(next_frame(all(out), 1 << 20, frame, used, needed, reason), Parse::ok);
    EXPECT_EQ(used, out.size());
    ASSERT_EQ(frame.type, FrameType::message);
    Message m;
    ASSERT_TRUE(decode_message(frame.body, m));
    EXPECT_EQ(m.topic, "chatter");
    EXPECT_EQ(m.codec, CodecId::msgpack);
    EXPECT_EQ(m.sent_at_ns, 1234u);
    EXPECT_EQ(std::string(reinterpret_cast<const char*>(m.payload.data()), m.payload.size()), "payload");
    const auto layout = message_layout("chatter");
    EXPECT_EQ(std::memcmp(out.data() + layout.payload_offset, "payload", 7), 0);
}

TEST(Frame, InfoRequestReplyRoundTrip) {
    Buffer out;
    const InfoPublication pose{"pose", "geometry/Pose", "jsonschema", R"({"type":"object"})", true};
    encode_info(out, Info{7, {"a", "b"}, {"svc"}, {pose, InfoPublication{"log", "", "", "", false}}});
    const std::byte payload[] = {std::byte{1}, std::byte{2}};
    encode_request(out, 99, CodecId::cereal, "svc", payload);
    encode_reply(out, 99, ReplyStatus::remote_error, CodecId::raw, payload);

    std::span<const std::byte> in = all(out);
    FrameView frame;
    std::size_t used = 0, needed = 0;
    std::string reason;

    ASSERT_EQ(next_frame(in, 1 << 20, frame, used, needed, reason), Parse::ok);
    Info info;
    ASSERT_TRUE(decode_info(frame.body, info));
    EXPECT_EQ(info.revision, 7u);
    EXPECT_EQ(info.topics, (std::vector<std::string>{"a", "b"}));
    EXPECT_EQ(info.services, (std::vector<std::string>{"svc"}));
    ASSERT_EQ(info.publications.size(), 2u);
    EXPECT_EQ(info.publications[0], pose);
    EXPECT_EQ(info.publications[1].topic, "log");
    EXPECT_FALSE(info.publications[1].latched);
    in = in.subspan(used);

    ASSERT_EQ(next_frame(in, 1 << 20, frame, used, needed, reason), Parse::ok);
    Request req;
    ASSERT_TRUE(decode_request(frame.body, req));
    EXPECT_EQ(req.call_id, 99u);
    EXPECT_EQ(req.service, "svc");
    EXPECT_EQ(req.payload.size(), 2u);
    in = in.subspan(used);

    ASSERT_EQ(next_frame(in, 1 << 20, frame, used, needed, reason), Parse::ok);
    Reply rep;
    ASSERT_TRUE(decode_reply(frame.body, rep));
    EXPECT_EQ(rep.status, ReplyStatus::remote_error);
    EXPECT_EQ(rep.codec, CodecId::raw);
}

TEST(Frame, TruncatedBodiesAreRejected) {
    Buffer out;
    encode_info(out, Info{1, {"topic"}, {}, {InfoPublication{"t", "type", "enc", "schema", false}}});
    const auto body = all(out).subspan(frame_prefix);
    Info info;
    for (std::size_t n = 0; n < body.size(); ++n) {
        EXPECT_FALSE(decode_info(body.first(n), info)) << n;
    }
    Message m;
    EXPECT_FALSE(decode_message({}, m));
}

TEST(Frame, RequestAndReplyHeadersPlusPayloadAreTheWholeFrames) {
    const std::byte payload[] = {std::byte{7}, std::byte{8}, std::byte{9}};
    for (const std::string_view service : {std::string_view{}, std::string_view{"echo"}}) {
        Buffer whole, parts;
        encode_request(whole, 0x0102030405060708u, CodecId::msgpack, service, payload);
        parts.append("x", 1);  // the header goes after what the buffer holds already
        encode_request_header(parts, 0x0102030405060708u, CodecId::msgpack, service, sizeof payload);
        parts.append(payload, sizeof payload);
        ASSERT_EQ(parts.size(), whole.size() + 1) << "service '" << service << "'";
        EXPECT_EQ(std::memcmp(parts.data() + 1, whole.data(), whole.size()), 0) << "service '" << service << "'";
    }
    Buffer whole, parts;
    encode_reply(whole, 42, ReplyStatus::ok, CodecId::cereal, payload);
    encode_reply_header(parts, 42, ReplyStatus::ok, CodecId::cereal, sizeof payload);
    parts.append(payload, sizeof payload);
    ASSERT_EQ(parts.size(), whole.size());
    EXPECT_EQ(std::memcmp(parts.data(), whole.data(), whole.size()), 0);
}

TEST(Adverts, RoundTrips) {
    Adverts sent;
    sent.subscribe = true;
    sent.adverts.push_back({{"v", "2"}, {"id", "x"}, {"t0", std::string(70000, 'a')}});
    sent.adverts.push_back({});
    sent.gone = {"a", "b"};
    Buffer b;
    encode_adverts(b, sent);
    FrameView f;
    std::size_t used = 0, needed = 0;
    std::string reason;
    ASSERT_EQ(next_frame(all(b), 1u << 20, f, used, needed, reason), Parse::ok) << reason;
    ASSERT_EQ(f.type, FrameType::adverts);
    Adverts got;
    ASSERT_TRUE(decode_adverts(f.body, got));
    EXPECT_TRUE(got.subscribe);
    EXPECT_EQ(got.adverts, sent.adverts);
    EXPECT_EQ(got.gone, sent.gone);
}

TEST(Adverts, TruncatedOrOverLimitIsMalformed) {
    Adverts sent;
    sent.adverts.push_back({{"id", "x"}});
    Buffer b;
    encode_adverts(b, sent);
    const auto body = all(b).subspan(frame_prefix);
    Adverts got;
    for (std::size_t n = 0; n < body.size(); ++n) {
        EXPECT_FALSE(decode_adverts(body.first(n), got)) << n;
    }
    // A count beyond the limit is refused before anything is reserved for it.
    std::vector<std::byte> huge(body.begin(), body.end());
    huge[1] = std::byte{0xff};
    huge[2] = std::byte{0xff};
    EXPECT_FALSE(decode_adverts(huge, got));
    std::vector<std::byte> bad_flags(body.begin(), body.end());
    bad_flags[0] = std::byte{2};
    EXPECT_FALSE(decode_adverts(bad_flags, got));
}
