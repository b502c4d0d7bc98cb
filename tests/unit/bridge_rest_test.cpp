// meshy bridge's REST pieces that are pure: routes, the latest-message cache, the JPEG inside a message.
#include <gtest/gtest.h>

#include <functional>
#include <meshy/codecs/msgpack.hpp>

#include "bridge/mjpeg_frame.hpp"
#include "bridge/rest_latest_cache.hpp"
#include "bridge/rest_route.hpp"

namespace meshy::cli::bridge {
namespace {

TEST(RestRoute, NamesEndpointsAndMethods) {
    auto sut = parse_rest_route("GET", "/api/nodes");
    EXPECT_EQ(sut.endpoint, RestEndpoint::nodes);
    EXPECT_TRUE(sut.method_ok);
    sut = parse_rest_route("POST", "/api/topics/camera/image");
    EXPECT_EQ(sut.endpoint, RestEndpoint::publish);
    EXPECT_EQ(sut.name, "camera/image");
    sut = parse_rest_route("POST", "/api/topics/%2Fcamera%2Fimage");
    EXPECT_EQ(sut.name, "camera/image");
    sut = parse_rest_route("GET", "/api/topics/a/latest");
    EXPECT_EQ(sut.endpoint, RestEndpoint::latest);
    EXPECT_EQ(sut.name, "a");
    sut = parse_rest_route("POST", "/api/topics/a/latest");  // a topic called "a/latest"
    EXPECT_EQ(sut.endpoint, RestEndpoint::publish);
    EXPECT_EQ(sut.name, "a/latest");
    sut = parse_rest_route("GET", "/api/services/multiply");
    EXPECT_EQ(sut.endpoint, RestEndpoint::call);
    EXPECT_FALSE(sut.method_ok);
    EXPECT_EQ(sut.allowed_method, "POST");
    sut = parse_rest_route("HEAD", "/stream/cam");
    EXPECT_EQ(sut.endpoint, RestEndpoint::stream);
    EXPECT_TRUE(sut.method_ok);
    EXPECT_EQ(parse_rest_route("GET", "/index.html").endpoint, RestEndpoint::none);
    EXPECT_EQ(parse_rest_route("GET", "/api/other").endpoint, RestEndpoint::not_found);
}

TEST(RestRoute, RefusesBadNames) {
    for (const char* path : {"/api/topics/", "/api/topics/%", "/api/topics/%2", "/api/topics/%zz", "/api/topics/%00",
                             "/stream///", "/api/services/%2F"}) {
        EXPECT_EQ(parse_rest_route("POST", path).endpoint, RestEndpoint::bad_name) << path;
    }
}

TEST(LatestCache, KeepsTheLastMessageOfTrackedTopics) {
    LatestCache sut(2, 100);
    EXPECT_FALSE(sut.store("a", {CodecId::msgpack, "x", 0, {}}));
    EXPECT_TRUE(sut.track("a").empty());
    EXPECT_TRUE(sut.store("a", {CodecId::msgpack, "one", 0, {}}));
    EXPECT_TRUE(sut.store("a", {CodecId::msgpack, "two", 0, {}}));
    EXPECT_EQ(sut.find("a")->payload, "two");
    EXPECT_EQ(sut.bytes(), 3u);
}

TEST(LatestCache, EvictsTheTopicAskedForLeastRecently) {
    LatestCache sut(2, 100);
    sut.track("a");
    sut.track("b");
    sut.track("a");  // a is asked for again: b is now the oldest
    EXPECT_EQ(sut.track("c"), std::vector<std::string>{"b"});
    EXPECT_TRUE(sut.tracks("a"));
    EXPECT_FALSE(sut.tracks("b"));
    EXPECT_EQ(sut.size(), 2u);
}

TEST(LatestCache, StaysWithinItsBytes) {
    LatestCache sut(4, 10);
    sut.track("a");
    sut.track("b");
    EXPECT_TRUE(sut.store("a", {CodecId::raw, std::string(6, 'a'), 0, {}}));
    EXPECT_TRUE(sut.store("b", {CodecId::raw, std::string(6, 'b'), 0, {}}));  // forgets a's message
    EXPECT_EQ(sut.find("a"), nullptr);
    EXPECT_TRUE(sut.tracks("a"));
    EXPECT_EQ(sut.bytes(), 6u);
    EXPECT_FALSE(sut.store("a", {CodecId::raw, std::string(11, 'a'), 0, {}}));  // larger than the whole cache
    EXPECT_LE(sut.bytes(), 10u);
}

std::string jpeg_bytes() {
    return std::string("\xFF\xD8\xFF\xE0", 4) + std::string(10, '\0') + std::string("\xFF\xD9", 2);
}

Buffer pack(const std::function<void(msgpack::packer<Buffer>&)>& f) {
    Buffer out;
    msgpack::packer<Buffer> pk(out);
    f(pk);
    return out;
}

void pack_bin(msgpack::packer<Buffer>& pk, const std::string& b) {
    pk.pack_bin(static_cast<std::uint32_t>(b.size()));
    pk.pack_bin_body(b.data(), static_cast<std::uint32_t>(b.size()));
}

TEST(JpegFromPayload, FindsEveryShape) {
    const std::string jpeg = jpeg_bytes();
    const auto raw = std::as_bytes(std::span(jpeg.data(), jpeg.size()));
    EXPECT_EQ(jpeg_from_payload(CodecId::raw, raw), jpeg);
    const Buffer bin = pack([&](auto& pk) { pack_bin(pk, jpeg); });
    EXPECT_EQ(jpeg_from_payload(CodecId::msgpack, bin.bytes()), jpeg);
    const Buffer args = pack([&](auto& pk) {
        pk.pack_array(1);
        pack_bin(pk, jpeg);
    });
    EXPECT_EQ(jpeg_from_payload(CodecId::msgpack, args.bytes()), jpeg);
    const Buffer image = pack([&](auto& pk) {
        pk.pack_array(1);
        pk.pack_map(3);
        pk.pack("frame_id");
        pk.pack("cam");
        pk.pack("data");
        pack_bin(pk, jpeg);
        pk.pack("format");
        pk.pack("jpeg");
    });
    EXPECT_EQ(jpeg_from_payload(CodecId::msgpack, image.bytes()), jpeg);
}

TEST(JpegFromPayload, RefusesWhatIsNoJpeg) {
    const std::string png = "\x89PNG\r\n\x1a\n....";
    EXPECT_FALSE(jpeg_from_payload(CodecId::raw, std::as_bytes(std::span(png.data(), png.size()))));
    const std::string jpeg = jpeg_bytes();
    const Buffer wrong_format = pack([&](auto& pk) {
        pk.pack_map(2);
        pk.pack("format");
        pk.pack("png");
        pk.pack("data");
        pack_bin(pk, jpeg);
    });
    EXPECT_FALSE(jpeg_from_payload(CodecId::msgpack, wrong_format.bytes()));
    const Buffer text = pack([&](auto& pk) { pk.pack(jpeg); });  // a str, not a bin
    EXPECT_FALSE(jpeg_from_payload(CodecId::msgpack, text.bytes()));
    const std::string truncated = "\xc6\x00\x10\x00\x00\xff\xd8";
    EXPECT_FALSE(jpeg_from_payload(CodecId::msgpack, std::as_bytes(std::span(truncated.data(), truncated.size()))));
}

TEST(Mjpeg, PartsAndHeadFollowTheMultipartFormat) {
    EXPECT_EQ(mjpeg_part_head(123), "--meshyframe\r\nContent-Type: image/jpeg\r\nContent-Length: 123\r\n\r\n");
    const std::string head = mjpeg_response_head("X-A: b\r\n");
    EXPECT_EQ(head.rfind("HTTP/1.1 200 OK\r\n", 0), 0u);
    EXPECT_NE(head.find("Content-Type: multipart/x-mixed-replace; boundary=meshyframe\r\n"), std::string::npos);
    EXPECT_TRUE(head.ends_with("X-A: b\r\n\r\n"));
}

}  // namespace
}  // namespace meshy::cli::bridge
