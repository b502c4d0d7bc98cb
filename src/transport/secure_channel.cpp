#include "transport/secure_channel.hpp"

#include <sodium.h>

#include <algorithm>
#include <cstring>

namespace meshy::detail::secure {
namespace {

// The ciphertext buffer holds two full records: a read never has to wait for one to be opened.
constexpr std::size_t cipher_capacity = 2 * (max_record + record_overhead);

// Both ciphers take a 96-bit nonce: 4 zero bytes, then the record's number.
constexpr std::size_t nonce_size = crypto_aead_chacha20poly1305_IETF_NPUBBYTES;
static_assert(crypto_aead_aes256gcm_NPUBBYTES == nonce_size);
static_assert(crypto_aead_aes256gcm_ABYTES == record_tag && crypto_aead_chacha20poly1305_IETF_ABYTES == record_tag);
static_assert(sizeof(crypto_aead_aes256gcm_state) == 512);

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

crypto_aead_aes256gcm_state* aes_state(std::array<unsigned char, 512>& a) {
    return reinterpret_cast<crypto_aead_aes256gcm_state*>(a.data());
}
const crypto_aead_aes256gcm_state* aes_state(const std::array<unsigned char, 512>& a) {
    return reinterpret_cast<const crypto_aead_aes256gcm_state*>(a.data());
}

}  // namespace

RecordKey::RecordKey(const std::array<unsigned char, 32>& key, Cipher cipher) : key_(key), cipher_(cipher) {
    if (cipher_ == Cipher::aes256_gcm) {
        crypto_aead_aes256gcm_beforenm(aes_state(aes_), key_.data());  // the key schedule, once
    }
}

RecordKey::~RecordKey() {
    sodium_memzero(key_.data(), key_.size());
    sodium_memzero(aes_.data(), aes_.size());
}

void RecordKey::seal(std::byte* c,
                     std::byte* tag,
                     const std::byte* m,
                     std::size_t len,
                     const std::byte* ad,
                     std::size_t ad_len,
                     std::uint64_t counter) const {
    unsigned char nonce[nonce_size];
    nonce_of(counter, nonce);
    if (cipher_ == Cipher::aes256_gcm) {
        crypto_aead_aes256gcm_encrypt_detached_afternm(uc(c), uc(tag), nullptr, uc(m), len, uc(ad), ad_len, nullptr,
                                                       nonce, aes_state(aes_));
    } else {
        crypto_aead_chacha20poly1305_ietf_encrypt_detached(uc(c), uc(tag), nullptr, uc(m), len, uc(ad), ad_len, nullptr,
                                                           nonce, key_.data());
    }
}

bool RecordKey::open(std::byte* m,
                     const std::byte* c,
                     std::size_t len,
                     const std::byte* tag,
                     const std::byte* ad,
                     std::size_t ad_len,
                     std::uint64_t counter) const {
    unsigned char nonce[nonce_size];
    nonce_of(counter, nonce);
    if (cipher_ == Cipher::aes256_gcm) {
        return crypto_aead_aes256gcm_decrypt_detached_afternm(uc(m), nullptr, uc(c), len, uc(tag), uc(ad), ad_len,
                                                              nonce, aes_state(aes_)) == 0;
    }
    return crypto_aead_chacha20poly1305_ietf_decrypt_detached(uc(m), nullptr, uc(c), len, uc(tag), uc(ad), ad_len,
                                                              nonce, key_.data()) == 0;
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
