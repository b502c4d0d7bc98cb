#include "transport/secure_channel.hpp"

#include <gtest/gtest.h>
#include <sodium.h>
#include <sys/stat.h>
#include <unistd.h>

#include <array>
#include <cstdio>
#include <cstring>
#include <fstream>
#include <string>
#include <string_view>
#include <vector>

#include "meshy/domain_key.hpp"
#include "meshy/error.hpp"
#include "transport/domain_key.hpp"
#include "transport/secure_handshake.hpp"

using namespace meshy;
using namespace meshy::detail;
using namespace meshy::detail::secure;
using Result = secure::Handshake::Result;

namespace {

struct Pair {
    SessionKeys initiator, responder;
};

/// A whole handshake between two ends holding `a` and `b`.
std::optional<Pair> shake(const DomainKey& a,
                          const DomainKey& b,
                          Result* initiator_result = nullptr,
                          Result* responder_result = nullptr,
                          bool offer_aes = aes256_gcm_available()) {
    secure::Handshake init(a, true, offer_aes), resp(b, false, offer_aes);
    Buffer hello, reply, finish;
    init.hello(hello);
    EXPECT_EQ(resp.on_hello(hello.bytes(), reply), Result::ok);
    const Result ri = init.on_reply(reply.bytes(), finish);
    const Result rr = resp.on_finish(finish.bytes());
    if (initiator_result) {
        *initiator_result = ri;
    }
    if (responder_result) {
        *responder_result = rr;
    }
    if (ri != Result::ok || rr != Result::ok) {
        return std::nullopt;
    }
    return Pair{init.keys(), resp.keys()};
}

std::span<const std::byte> text_bytes(const std::string& s) {
    return {reinterpret_cast<const std::byte*>(s.data()), s.size()};
}

/// Opens every record of `sealed` with `sut`. @returns the plaintext, or nullopt when one fails.
std::optional<std::string> open_all(Opener& sut, std::span<const std::byte> sealed) {
    std::string plain;
    while (!sealed.empty()) {
        std::size_t total = 0, size = 0;
        if (Opener::peek(sealed, total, size) != Opener::Opened::ok) {
            return std::nullopt;
        }
        std::string part(size, '\0');
        if (!sut.open(sealed.first(total), reinterpret_cast<std::byte*>(part.data()))) {
            return std::nullopt;
        }
        plain += part;
        sealed = sealed.subspan(total);
    }
    return plain;
}

}  // namespace

TEST(SecureHandshake, SameKeyAgreesOnKeysPerDirection) {
    const auto key = generate_domain_key();
    const auto pair = shake(key, key);
    ASSERT_TRUE(pair);
    EXPECT_EQ(pair->initiator.send, pair->responder.receive);
    EXPECT_EQ(pair->initiator.receive, pair->responder.send);
    EXPECT_NE(pair->initiator.send, pair->initiator.receive);
}

TEST(SecureHandshake, FreshKeysEverySession) {
    const auto key = generate_domain_key();
    const auto a = shake(key, key), b = shake(key, key);
    ASSERT_TRUE(a && b);
    EXPECT_NE(a->initiator.send, b->initiator.send);
}

TEST(SecureHandshake, AnotherKeyFailsOnBothEnds) {
    Result ri{}, rr{};
    EXPECT_FALSE(shake(generate_domain_key(), generate_domain_key(), &ri, &rr));
    EXPECT_EQ(ri, Result::mismatch);
    EXPECT_EQ(rr, Result::mismatch);
}

TEST(SecureHandshake, NoMagicMeansNoKey) {
    const auto key = generate_domain_key();
    secure::Handshake resp(key, false);
    Buffer reply;
    std::vector<std::byte> plain(hello_size, std::byte{'x'});
    std::memcpy(plain.data(), "MSHY", 4);  // a node handshake
    EXPECT_EQ(resp.on_hello(plain, reply), Result::no_key);
    EXPECT_EQ(reply.size(), 0u);
}

TEST(SecureHandshake, ReplayedHelloAndFinishFailAtTheResponder) {
    const auto key = generate_domain_key();
    // Record a whole good handshake.
    secure::Handshake init(key, true), resp(key, false);
    Buffer hello, reply, finish;
    init.hello(hello);
    ASSERT_EQ(resp.on_hello(hello.bytes(), reply), Result::ok);
    ASSERT_EQ(init.on_reply(reply.bytes(), finish), Result::ok);
    ASSERT_EQ(resp.on_finish(finish.bytes()), Result::ok);
    // Replay it to a new responder: its own ephemeral is fresh, so the old finish fails.
    secure::Handshake victim(key, false);
    Buffer reply2;
    ASSERT_EQ(victim.on_hello(hello.bytes(), reply2), Result::ok);
    EXPECT_EQ(victim.on_finish(finish.bytes()), Result::mismatch);
}

TEST(SecureHandshake, ReplayedReplyFailsAtTheInitiator) {
    const auto key = generate_domain_key();
    secure::Handshake init(key, true), resp(key, false);
    Buffer hello, reply, finish;
    init.hello(hello);
    ASSERT_EQ(resp.on_hello(hello.bytes(), reply), Result::ok);
    secure::Handshake victim(key, true);
    Buffer hello2, finish2;
    victim.hello(hello2);
    EXPECT_EQ(victim.on_reply(reply.bytes(), finish2), Result::mismatch);
    EXPECT_EQ(finish2.size(), finish_size);  // sent anyway, so the responder refuses too
}

TEST(SecureHandshake, ReflectedFinishFails) {
    // A responder's own confirmation sent back as the initiator's finish.
    const auto key = generate_domain_key();
    secure::Handshake init(key, true), resp(key, false);
    Buffer hello, reply;
    init.hello(hello);
    ASSERT_EQ(resp.on_hello(hello.bytes(), reply), Result::ok);
    EXPECT_EQ(resp.on_finish(reply.bytes().subspan(hello_size)), Result::mismatch);
}

TEST(SecureHandshake, FinishBeforeHelloFails) {
    secure::Handshake resp(generate_domain_key(), false);
    std::vector<std::byte> zeros(finish_size);
    EXPECT_EQ(resp.on_finish(zeros), Result::mismatch);
}

TEST(SecureHandshake, AesGcmOnlyWhenBothEndsOfferIt) {
    const auto key = generate_domain_key();
    for (const bool init_offers : {false, true}) {
        for (const bool resp_offers : {false, true}) {
            secure::Handshake init(key, true, init_offers), resp(key, false, resp_offers);
            Buffer hello, reply, finish;
            init.hello(hello);
            ASSERT_EQ(resp.on_hello(hello.bytes(), reply), Result::ok);
            ASSERT_EQ(init.on_reply(reply.bytes(), finish), Result::ok);
            ASSERT_EQ(resp.on_finish(finish.bytes()), Result::ok);
            const Cipher want = init_offers && resp_offers ? Cipher::aes256_gcm : Cipher::chacha20_poly1305;
            EXPECT_EQ(init.keys().cipher, want) << init_offers << resp_offers;
            EXPECT_EQ(resp.keys().cipher, want) << init_offers << resp_offers;
        }
    }
}

TEST(SecureHandshake, AStrippedOfferFailsTheConfirmation) {
    // A man in the middle who clears the initiator's offer (to force the other cipher) changes the
    // transcript: neither end's confirmation verifies.
    const auto key = generate_domain_key();
    secure::Handshake init(key, true, true), resp(key, false, true);
    Buffer hello, reply, finish;
    init.hello(hello);
    hello.data()[hello_size - 1] = std::byte{0};
    ASSERT_EQ(resp.on_hello(hello.bytes(), reply), Result::ok);
    EXPECT_EQ(init.on_reply(reply.bytes(), finish), Result::mismatch);
    EXPECT_EQ(resp.on_finish(finish.bytes()), Result::mismatch);
}

/// Records under each cipher (AES-256-GCM only where this CPU has it).
class SecureRecords : public ::testing::TestWithParam<Cipher> {
protected:
    void SetUp() override {
        const bool aes = GetParam() == Cipher::aes256_gcm;
        if (aes && !aes256_gcm_available()) {
            GTEST_SKIP() << "no hardware AES here";
        }
        const auto key = generate_domain_key();
        auto pair = shake(key, key, nullptr, nullptr, aes);
        ASSERT_TRUE(pair);
        ASSERT_EQ(pair->initiator.cipher, GetParam());
        keys_ = *pair;
    }
    Pair keys_;
};

INSTANTIATE_TEST_SUITE_P(Ciphers,
                         SecureRecords,
                         ::testing::Values(Cipher::chacha20_poly1305, Cipher::aes256_gcm),
                         [](const auto& info) {
                             return std::string(info.param == Cipher::aes256_gcm ? "aes256_gcm" : "chacha20_poly1305");
                         });

TEST_P(SecureRecords, RoundTripAcrossPartsAndRecords) {
    const std::string a = "hello ", b(3 * max_record + 17, 'z'), c = "!";
    const std::span<const std::byte> parts[] = {text_bytes(a), text_bytes(b), text_bytes(c)};
    Sealer sealer(keys_.initiator.send, keys_.initiator.cipher);
    Buffer sealed;
    sealer.seal(parts, sealed);
    EXPECT_EQ(sealer.count(), 4u);
    Opener sut(keys_.responder.receive, keys_.responder.cipher);
    EXPECT_EQ(open_all(sut, sealed.bytes()), a + b + c);
}

TEST_P(SecureRecords, PiecesSealedInTurnOpenToTheWhole) {
    const std::string a(100, 'a'), b(seal_piece + 5, 'b'), c(2 * seal_piece, 'c');
    const std::span<const std::byte> parts[] = {text_bytes(a), text_bytes(b), text_bytes(c)};
    const std::size_t total = a.size() + b.size() + c.size();
    SecureChannel sender(keys_.initiator);
    Buffer sealed;
    for (std::size_t from = 0; from < total; from += seal_piece) {
        sender.append_sealed(parts, from, std::min(seal_piece, total - from), sealed);
    }
    Opener sut(keys_.responder.receive, keys_.responder.cipher);
    EXPECT_EQ(open_all(sut, sealed.bytes()), a + b + c);
}

TEST_P(SecureRecords, PlaintextNeverOnTheWire) {
    const std::string secret = "the-payload-nobody-may-read";
    const std::span<const std::byte> parts[] = {text_bytes(secret)};
    Sealer sealer(keys_.initiator.send, keys_.initiator.cipher);
    Buffer sealed;
    sealer.seal(parts, sealed);
    const std::string wire(reinterpret_cast<const char*>(sealed.data()), sealed.size());
    EXPECT_EQ(wire.find("payload"), std::string::npos);
}

TEST_P(SecureRecords, TamperedRecordFails) {
    const std::string msg = "transfer 10 coins";
    const std::span<const std::byte> parts[] = {text_bytes(msg)};
    Sealer sealer(keys_.initiator.send, keys_.initiator.cipher);
    Buffer sealed;
    sealer.seal(parts, sealed);
    for (std::size_t i = record_header; i < sealed.size(); ++i) {
        Buffer copy;
        copy.append(sealed.data(), sealed.size());
        copy.data()[i] ^= std::byte{1};
        Opener sut(keys_.responder.receive, keys_.responder.cipher);
        EXPECT_FALSE(open_all(sut, copy.bytes())) << "byte " << i;
    }
}

TEST_P(SecureRecords, ReplayedRecordFails) {
    const std::string msg = "bye";
    const std::span<const std::byte> parts[] = {text_bytes(msg)};
    Sealer sealer(keys_.initiator.send, keys_.initiator.cipher);
    Buffer first;
    sealer.seal(parts, first);
    Opener sut(keys_.responder.receive, keys_.responder.cipher);
    ASSERT_TRUE(open_all(sut, first.bytes()));
    EXPECT_FALSE(open_all(sut, first.bytes()));
}

TEST_P(SecureRecords, ReorderedRecordsFail) {
    const std::string one = "one", two = "two";
    const std::span<const std::byte> p1[] = {text_bytes(one)};
    const std::span<const std::byte> p2[] = {text_bytes(two)};
    Sealer sealer(keys_.initiator.send, keys_.initiator.cipher);
    Buffer r1, r2;
    sealer.seal(p1, r1);
    sealer.seal(p2, r2);
    Opener sut(keys_.responder.receive, keys_.responder.cipher);
    EXPECT_FALSE(open_all(sut, r2.bytes()));
}

TEST_P(SecureRecords, ReflectedRecordFails) {
    const std::string msg = "ping";
    const std::span<const std::byte> parts[] = {text_bytes(msg)};
    Sealer sealer(keys_.initiator.send, keys_.initiator.cipher);
    Buffer sealed;
    sealer.seal(parts, sealed);
    Opener own_direction(keys_.initiator.receive, keys_.initiator.cipher);  // the sender's own receive side
    EXPECT_FALSE(open_all(own_direction, sealed.bytes()));
}

// Records are the standard AEADs (RFC 8439's ChaCha20-Poly1305, GCM with a 96-bit nonce): libsodium,
// which sealed them in earlier releases, opens what this release seals and the other way round, so
// the two releases' nodes still talk.
TEST_P(SecureRecords, SameRecordsAsLibsodium) {
    const bool aes = GetParam() == Cipher::aes256_gcm;
    if (aes && crypto_aead_aes256gcm_is_available() != 1) {
        GTEST_SKIP() << "libsodium 1.0.18 has AES-256-GCM only on x86 with AES-NI (AesGcmRecords checks the spec's "
                        "vectors everywhere)";
    }
    const std::string msg(3000, 'r');
    const auto& key = keys_.initiator.send;
    for (std::uint64_t counter : {0ull, 1ull, 0x0102030405060708ull}) {
        unsigned char nonce[12] = {};
        for (int i = 0; i < 8; ++i) {
            nonce[4 + i] = static_cast<unsigned char>(counter >> (8 * i));
        }
        const unsigned char ad[4] = {1, 2, 3, 4};
        const auto* m = reinterpret_cast<const unsigned char*>(msg.data());
        std::vector<unsigned char> c(msg.size()), tag(record_tag), reference(msg.size()), reference_tag(record_tag);
        RecordKey sealer(key, GetParam(), RecordKey::Use::seal);
        sealer.seal(reinterpret_cast<std::byte*>(c.data()), reinterpret_cast<std::byte*>(tag.data()),
                    reinterpret_cast<const std::byte*>(m), msg.size(), reinterpret_cast<const std::byte*>(ad), 4,
                    counter);
        if (aes) {
            crypto_aead_aes256gcm_encrypt_detached(reference.data(), reference_tag.data(), nullptr, m, msg.size(), ad,
                                                   4, nullptr, nonce, key.data());
        } else {
            crypto_aead_chacha20poly1305_ietf_encrypt_detached(reference.data(), reference_tag.data(), nullptr, m,
                                                               msg.size(), ad, 4, nullptr, nonce, key.data());
        }
        EXPECT_EQ(c, reference) << "counter " << counter;
        EXPECT_EQ(tag, reference_tag) << "counter " << counter;

        std::string plain(msg.size(), '\0');
        RecordKey opener(key, GetParam(), RecordKey::Use::open);
        EXPECT_TRUE(opener.open(reinterpret_cast<std::byte*>(plain.data()),
                                reinterpret_cast<const std::byte*>(reference.data()), msg.size(),
                                reinterpret_cast<const std::byte*>(reference_tag.data()),
                                reinterpret_cast<const std::byte*>(ad), 4, counter));
        EXPECT_EQ(plain, msg);
        EXPECT_FALSE(opener.open(reinterpret_cast<std::byte*>(plain.data()),
                                 reinterpret_cast<const std::byte*>(reference.data()), msg.size(),
                                 reinterpret_cast<const std::byte*>(reference_tag.data()),
                                 reinterpret_cast<const std::byte*>(ad), 4, counter + 1));
    }
}

namespace {
std::vector<unsigned char> from_hex(std::string_view hex) {
    std::vector<unsigned char> out(hex.size() / 2);
    for (std::size_t i = 0; i < out.size(); ++i) {
        out[i] = static_cast<unsigned char>(std::stoi(std::string(hex.substr(2 * i, 2)), nullptr, 16));
    }
    return out;
}
}  // namespace

// Test cases 13 and 14 of McGrew and Viega's GCM specification (a zero 256-bit key, a zero 96-bit IV,
// which is this channel's nonce for record 0): the records' AES-256-GCM on every platform, including
// those where libsodium has none to compare with.
TEST(AesGcmRecords, MatchTheGcmSpecificationsVectors) {
    const std::array<unsigned char, 32> key{};
    RecordKey sealer(key, Cipher::aes256_gcm, RecordKey::Use::seal);
    std::vector<unsigned char> tag(record_tag);

    std::byte none[1] = {};
    sealer.seal(none, reinterpret_cast<std::byte*>(tag.data()), none, 0, none, 0, 0);
    EXPECT_EQ(tag, from_hex("530f8afbc74536b9a963b4f1c4cb738b"));

    const std::vector<unsigned char> plain(16, 0);
    std::vector<unsigned char> c(16);
    sealer.seal(reinterpret_cast<std::byte*>(c.data()), reinterpret_cast<std::byte*>(tag.data()),
                reinterpret_cast<const std::byte*>(plain.data()), plain.size(), nullptr, 0, 0);
    EXPECT_EQ(c, from_hex("cea7403d4d606b6e074ec5d3baf39d18"));
    EXPECT_EQ(tag, from_hex("d0d1c8a799996bf0265b98b5d48ab919"));

    RecordKey opener(key, Cipher::aes256_gcm, RecordKey::Use::open);
    std::vector<unsigned char> back(16, 1);
    EXPECT_TRUE(opener.open(reinterpret_cast<std::byte*>(back.data()), reinterpret_cast<const std::byte*>(c.data()),
                            c.size(), reinterpret_cast<const std::byte*>(tag.data()), nullptr, 0, 0));
    EXPECT_EQ(back, plain);
}

TEST_P(SecureRecords, OversizeLengthIsAnError) {
    std::byte header[record_header] = {std::byte{0xff}, std::byte{0xff}, std::byte{0xff}, std::byte{0x7f}};
    std::size_t total = 0, plain = 0;
    EXPECT_EQ(Opener::peek(header, total, plain), Opener::Opened::error);
}

TEST_P(SecureRecords, ChannelKeepsWhatTheReaderHasNoRoomFor) {
    SecureChannel sender(keys_.initiator);
    SecureChannel sut(keys_.responder);
    const std::string msg(10000, 'q');
    const std::span<const std::byte> parts[] = {text_bytes(msg)};
    Buffer sealed;
    sender.seal(parts, sealed);
    auto space = sut.read_space();
    ASSERT_GE(space.size(), sealed.size());
    std::memcpy(space.data(), sealed.data(), sealed.size());
    std::string into(100, '\0');
    bool ok = false;
    std::string reason;
    const auto put = sut.received(sealed.size(), {reinterpret_cast<std::byte*>(into.data()), into.size()}, ok, reason);
    ASSERT_TRUE(ok) << reason;
    EXPECT_EQ(put, 0u);  // the record did not fit: kept whole
    std::string got;
    while (sut.has_plaintext()) {
        const auto n = sut.drain({reinterpret_cast<std::byte*>(into.data()), into.size()});
        got.append(into.data(), n);
    }
    EXPECT_EQ(got, msg);
}

TEST(DomainKeyFile, FormatParsesBack) {
    const auto key = generate_domain_key();
    const auto text = format_domain_key(key);
    EXPECT_EQ(text.rfind("meshy-domain-key-v1\n", 0), 0u);
    EXPECT_EQ(parse_domain_key(text, "k").bytes, key.bytes);
    EXPECT_EQ(parse_domain_key("# lab key\n" + text + "\n", "k").bytes, key.bytes);
}

TEST(DomainKeyFile, BadTextIsRefusedWithoutQuotingIt) {
    EXPECT_THROW(parse_domain_key("", "k"), Error);
    EXPECT_THROW(parse_domain_key("meshy-domain-key-v1\n", "k"), Error);
    EXPECT_THROW(parse_domain_key("meshy-domain-key-v1\nc2hvcnQ=\n", "k"), Error);  // 5 bytes
    try {
        parse_domain_key("meshy-domain-key-v1\nnot*base64*at*all*not*base64*at*all*abcdefgh\n", "lab.key");
        FAIL();
    } catch (const Error& e) {
        EXPECT_NE(std::string(e.what()).find("lab.key"), std::string::npos);
        EXPECT_EQ(std::string(e.what()).find("not*base64"), std::string::npos);
    }
}

TEST(DomainKeyFile, ModeOpenToOthersIsRefused) {
    char path[] = "/tmp/meshy-key-test-XXXXXX";
    const int fd = ::mkstemp(path);
    ASSERT_GE(fd, 0);
    const auto text = generate_domain_key_text();
    ASSERT_EQ(::write(fd, text.data(), text.size()), static_cast<ssize_t>(text.size()));
    ::close(fd);
    ASSERT_EQ(::chmod(path, 0600), 0);
    EXPECT_NO_THROW(check_domain_key_file(path));
    ASSERT_EQ(::chmod(path, 0644), 0);
    try {
        check_domain_key_file(path);
        FAIL();
    } catch (const Error& e) {
        EXPECT_NE(std::string(e.what()).find("chmod 600"), std::string::npos) << e.what();
    }
    ::unlink(path);
}
