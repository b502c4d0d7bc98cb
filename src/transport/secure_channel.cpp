#include "transport/secure_channel.hpp"

#include <openssl/crypto.h>
#include <openssl/evp.h>

#include <algorithm>
#include <cstring>
#include <new>

namespace meshy::detail::secure {
namespace {

// The ciphertext buffer holds two full records: a read never has to wait for one to be opened.
constexpr std::size_t cipher_capacity = 2 * (max_record + record_overhead);

// Both ciphers take a 96-bit nonce: 4 zero bytes, then the record's number (the IETF ChaCha20-Poly1305
// of RFC 8439 and GCM's default IV length; libsodium's crypto_aead_*_ietf and aes256gcm are the same
// constructions, so the records are the ones earlier releases sealed with it).
constexpr int nonce_size = 12;
static_assert(record_tag == 16);
static_assert(max_record <= 0x7fffffff);  // EVP takes int lengths

void nonce_of(std::uint64_t counter, unsigned char nonce[nonce_size]) {
    std::memset(nonce, 0, nonce_size);
    for (int i = 0; i < 8; ++i) {
        nonce[4 + i] = static_cast<unsigned char>(counter >> (8 * i));
    }
}

unsigned char* uc(std::byte* p) {
    return reinterpret_cast<unsigned char*>(p);
}
const unsigned char* uc(const std::byte* p) {
    return reinterpret_cast<const unsigned char*>(p);
}

// Fetched once per process: an implicit fetch on each context would look the algorithm up again.
const EVP_CIPHER* evp_cipher(Cipher cipher) {
    static EVP_CIPHER* const aes = EVP_CIPHER_fetch(nullptr, "AES-256-GCM", nullptr);
    static EVP_CIPHER* const chacha = EVP_CIPHER_fetch(nullptr, "ChaCha20-Poly1305", nullptr);
    return cipher == Cipher::aes256_gcm ? aes : chacha;
}

}  // namespace

RecordKey::RecordKey(const std::array<unsigned char, 32>& key, Cipher cipher, Use use)
    : cipher_(cipher), ctx_(EVP_CIPHER_CTX_new()) {
    const EVP_CIPHER* evp = evp_cipher(cipher);
    // The key schedule runs once here; each record then sets only its nonce.
    if (ctx_ == nullptr || evp == nullptr ||
        EVP_CipherInit_ex2(ctx_, evp, key.data(), nullptr, use == Use::seal ? 1 : 0, nullptr) != 1) {
        EVP_CIPHER_CTX_free(ctx_);
        throw std::bad_alloc();
    }
}

RecordKey::~RecordKey() {
    EVP_CIPHER_CTX_free(ctx_);  // clears the key schedule before freeing it
}

void RecordKey::seal(std::byte* c,
                     std::byte* tag,
                     const std::byte* m,
                     std::size_t len,
                     const std::byte* ad,
                     std::size_t ad_len,
                     std::uint64_t counter) {
    unsigned char nonce[nonce_size];
    nonce_of(counter, nonce);
    int n = 0;
    // These cannot fail with a keyed context, lengths within int and the tag size the cipher has.
    EVP_EncryptInit_ex2(ctx_, nullptr, nullptr, nonce, nullptr);
    EVP_EncryptUpdate(ctx_, nullptr, &n, uc(ad), static_cast<int>(ad_len));
    EVP_EncryptUpdate(ctx_, uc(c), &n, uc(m), static_cast<int>(len));
    EVP_EncryptFinal_ex(ctx_, uc(c) + n, &n);
    EVP_CIPHER_CTX_ctrl(ctx_, EVP_CTRL_AEAD_GET_TAG, static_cast<int>(record_tag), uc(tag));
}

bool RecordKey::open(std::byte* m,
                     const std::byte* c,
                     std::size_t len,
                     const std::byte* tag,
                     const std::byte* ad,
                     std::size_t ad_len,
                     std::uint64_t counter) {
    unsigned char nonce[nonce_size];
    nonce_of(counter, nonce);
    int n = 0;
    unsigned char expected[record_tag];
    std::memcpy(expected, tag, record_tag);  // SET_TAG takes a non-const pointer
    // The plaintext is written before the tag is checked: on failure the caller drops the link and
    // never reads `m`, so the unverified bytes are cleared, not left for a later reader.
    const bool ok = EVP_DecryptInit_ex2(ctx_, nullptr, nullptr, nonce, nullptr) == 1 &&
                    EVP_CIPHER_CTX_ctrl(ctx_, EVP_CTRL_AEAD_SET_TAG, static_cast<int>(record_tag), expected) == 1 &&
                    EVP_DecryptUpdate(ctx_, nullptr, &n, uc(ad), static_cast<int>(ad_len)) == 1 &&
                    EVP_DecryptUpdate(ctx_, uc(m), &n, uc(c), static_cast<int>(len)) == 1 &&
                    EVP_DecryptFinal_ex(ctx_, uc(m) + n, &n) == 1;
    if (!ok) {
        OPENSSL_cleanse(m, len);
    }
    return ok;
}

void Sealer::seal(std::span<const std::span<const std::byte>> parts, Buffer& out) {
    std::size_t total = 0;
    for (const auto& p : parts) {
        total += p.size();
    }
    if (total == 0) {
        return;
    }
    const std::size_t records = (total + max_record - 1) / max_record;
    out.reserve(out.size() + total + records * record_overhead);  // no reallocation below
    std::size_t part = 0, offset = 0;
    while (total > 0) {
        const std::size_t len = std::min(total, max_record);
        total -= len;
        std::byte* header = out.grow(record_header);
        for (int i = 0; i < 4; ++i) {
            header[i] = static_cast<std::byte>(len >> (8 * i));
        }
        std::byte* c = out.grow(len);
        std::byte* tag = out.grow(record_tag);
        const std::uint64_t counter = counter_++;
        while (part < parts.size() && offset == parts[part].size()) {
            ++part, offset = 0;
        }
        const std::byte* m = nullptr;
        if (parts[part].size() - offset >= len) {
            m = parts[part].data() + offset;  // the record lies in one part: sealed from where it is
            offset += len;
        } else {
            // The record spans parts: gather them, then seal in place.
            std::size_t got = 0;
            while (got < len) {
                while (offset == parts[part].size()) {
                    ++part, offset = 0;
                }
                const std::size_t n = std::min(len - got, parts[part].size() - offset);
                std::memcpy(c + got, parts[part].data() + offset, n);
                got += n, offset += n;
            }
            m = c;
        }
        key_.seal(c, tag, m, len, header, record_header, counter);
    }
}

Opener::Opened Opener::peek(std::span<const std::byte> in, std::size_t& total, std::size_t& plain) {
    if (in.size() < record_header) {
        return Opened::need_more;
    }
    std::size_t len = 0;
    for (int i = 0; i < 4; ++i) {
        len |= static_cast<std::size_t>(in[i]) << (8 * i);
    }
    if (len == 0 || len > max_record) {
        return Opened::error;
    }
    plain = len;
    total = len + record_overhead;
    return in.size() >= total ? Opened::ok : Opened::need_more;
}

bool Opener::open(std::span<const std::byte> record, std::byte* plain) {
    const std::size_t len = record.size() - record_overhead;
    if (!key_.open(plain, record.data() + record_header, len, record.data() + record_header + len, record.data(),
                   record_header, counter_)) {
        return false;
    }
    ++counter_;
    return true;
}

void SecureChannel::append_sealed(std::span<const std::span<const std::byte>> parts,
                                  std::size_t from,
                                  std::size_t length,
                                  Buffer& out) {
    std::span<const std::byte> range[8];  // a frame's head and body, or a batch's parts at a time
    std::size_t count = 0;
    for (const auto& part : parts) {
        if (length == 0) {
            break;
        }
        if (from >= part.size()) {
            from -= part.size();
            continue;
        }
        const auto piece = part.subspan(from, std::min(length, part.size() - from));
        from = 0;
        length -= piece.size();
        range[count++] = piece;
        if (count == std::size(range)) {
            sealer_.seal(std::span(range, count), out);
            count = 0;
        }
    }
    if (count > 0) {
        sealer_.seal(std::span(range, count), out);
    }
}

std::span<std::byte> SecureChannel::read_space() {
    if (cipher_.size() == 0) {
        cipher_.reserve(cipher_capacity);
    }
    if (cipher_begin_ > 0) {
        // Move the start of a record not complete yet to the front.
        const std::size_t left = cipher_.size() - cipher_begin_;
        std::memmove(cipher_.data(), cipher_.data() + cipher_begin_, left);
        cipher_.resize(left);
        cipher_begin_ = 0;
    }
    const std::size_t at = cipher_.size();
    cipher_.resize(cipher_capacity);
    std::span<std::byte> space(cipher_.data() + at, cipher_capacity - at);
    cipher_.resize(at);
    return space;
}

std::size_t SecureChannel::received(std::size_t n, std::span<std::byte> into, bool& ok, std::string& reason) {
    ok = true;
    cipher_.resize(cipher_.size() + n);  // the bytes are there: read_space() handed them out
    std::size_t put = 0;
    for (;;) {
        const std::span<const std::byte> in(cipher_.data() + cipher_begin_, cipher_.size() - cipher_begin_);
        std::size_t total = 0, plain = 0;
        const auto r = Opener::peek(in, total, plain);
        if (r == Opener::Opened::need_more) {
            break;
        }
        if (r == Opener::Opened::error) {
            ok = false;
            reason = "malformed record (bad length)";
            return put;
        }
        std::byte* to = nullptr;
        const bool direct = !has_plaintext() && into.size() - put >= plain;
        if (direct) {
            to = into.data() + put;  // straight into the reader's buffer
        } else {
            if (kept_begin_ == kept_.size()) {
                kept_.clear();
                kept_begin_ = 0;
            }
            to = kept_.grow(plain);
        }
        if (!opener_.open(in.first(total), to)) {
            ok = false;
            reason = "a record failed to authenticate (tampered, replayed or out of order)";
            return put;
        }
        if (direct) {
            put += plain;
        }
        cipher_begin_ += total;
    }
    return put;
}

std::size_t SecureChannel::drain(std::span<std::byte> into) {
    const std::size_t n = std::min(into.size(), kept_.size() - kept_begin_);
    std::memcpy(into.data(), kept_.data() + kept_begin_, n);
    kept_begin_ += n;
    if (kept_begin_ == kept_.size()) {
        kept_.clear();
        kept_begin_ = 0;
    }
    return n;
}

}  // namespace meshy::detail::secure
