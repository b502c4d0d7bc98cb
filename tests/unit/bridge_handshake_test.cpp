// The HTTP request parser and the WebSocket opening handshake of `meshy bridge`.
#include <gtest/gtest.h>

#include "bridge/base64.hpp"
#include "bridge/http_request.hpp"
#include "bridge/websocket_handshake.hpp"

using namespace meshy::cli::bridge;

namespace {
const std::string upgrade =
    "GET /chat?token=a%20b&x=1 HTTP/1.1\r\nHost: server.example.com\r\nUpgrade: websocket\r\n"
    "Connection: keep-alive, Upgrade\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n"
    "Origin: http://example.com\r\nSec-WebSocket-Version: 13\r\n\r\n";
}

TEST(BridgeHandshake, AcceptKeyOfRfc6455) {
    EXPECT_EQ(websocket_accept_key("dGhlIHNhbXBsZSBub25jZQ=="), "s3pPLMBiTxaQ9kYGzzhZRbK+xOo=");
}

TEST(BridgeHandshake, ParsesUpgradeRequest) {
    const auto p = parse_http_request(upgrade);
    ASSERT_EQ(p.status, HttpParse::Status::complete) << p.error;
    EXPECT_EQ(p.consumed, upgrade.size());
    EXPECT_EQ(p.request.path(), "/chat");
    EXPECT_EQ(p.request.query_param("token").value_or(""), "a b");
    EXPECT_EQ(p.request.query_param("x").value_or(""), "1");
    EXPECT_FALSE(p.request.query_param("y"));
    EXPECT_EQ(*p.request.header("origin"), "http://example.com");
    const auto check = check_websocket_upgrade(p.request);
    ASSERT_TRUE(check.ok) << check.error;
    EXPECT_EQ(check.accept, "s3pPLMBiTxaQ9kYGzzhZRbK+xOo=");
    EXPECT_NE(websocket_upgrade_response(check.accept).find("Sec-WebSocket-Accept: s3pPLMBiTxaQ9kYGzzhZRbK+xOo="),
              std::string::npos);
}

TEST(BridgeHandshake, IncompleteAndMalformed) {
    EXPECT_EQ(parse_http_request(upgrade.substr(0, 40)).status, HttpParse::Status::incomplete);
    EXPECT_EQ(parse_http_request("GET / HTTP/2.0\r\n\r\n").status, HttpParse::Status::error);
    EXPECT_EQ(parse_http_request("GET  / HTTP/1.1\r\n\r\n").status, HttpParse::Status::error);
    EXPECT_EQ(parse_http_request("GET / HTTP/1.1\r\nBad Header\r\n\r\n").status, HttpParse::Status::error);
    EXPECT_EQ(parse_http_request("\x16\x03\x01 binary").status, HttpParse::Status::error);
    EXPECT_EQ(parse_http_request(std::string(20000, 'A')).status, HttpParse::Status::error);
}

TEST(BridgeHandshake, RejectsBadUpgrades) {
    auto check = [](std::string text) {
        return check_websocket_upgrade(parse_http_request(text).request);
    };
    std::string v = upgrade;
    v.replace(v.find("Version: 13"), 11, "Version: 8");
    EXPECT_EQ(check(v).status, 426);
    std::string k = upgrade;
    k.replace(k.find("dGhlIHNhbXBsZSBub25jZQ=="), 24, "c2hvcnQ=");
    EXPECT_FALSE(check(k).ok);
    std::string m = upgrade;
    m.replace(0, 3, "PUT");
    EXPECT_EQ(check(m).status, 405);
}

TEST(BridgeHandshake, Base64RoundTrip) {
    for (const std::string s : {"", "f", "fo", "foo", "foob", "fooba", "foobar"}) {
        EXPECT_EQ(base64_decode(base64_encode(s)).value_or("?"), s);
    }
    EXPECT_EQ(base64_encode(std::string("foobar")), "Zm9vYmFy");
    EXPECT_FALSE(base64_decode("Zm9=YmFy"));
    EXPECT_FALSE(base64_decode("Zm9"));
}
