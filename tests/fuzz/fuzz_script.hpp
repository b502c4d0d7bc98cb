// The fuzz targets that play a peer step by step read their input as a script: a byte says what
// the peer does next, the bytes after it how. Reads past the end give zeros.
#pragma once

#include <cstddef>
#include <cstdint>
#include <span>

struct FuzzScript {
    std::span<const std::uint8_t> in;

    bool empty() const { return in.empty(); }
    std::uint8_t byte() {
        if (in.empty()) {
            return 0;
        }
        const auto b = in.front();
        in = in.subspan(1);
        return b;
    }
    /// A little-endian integer of sizeof(T) bytes.
    template <class T>
    T le() {
        T v = 0;
        for (std::size_t i = 0; i < sizeof(T); ++i) {
            v |= static_cast<T>(T{byte()} << (8 * i));
        }
        return v;
    }
    std::uint64_t u64() { return le<std::uint64_t>(); }
    std::uint32_t u32() { return le<std::uint32_t>(); }
    /// The next `n` bytes (fewer at the end).
    std::span<const std::byte> take(std::size_t n) {
        n = n < in.size() ? n : in.size();
        const auto out = std::as_bytes(in.first(n));
        in = in.subspan(n);
        return out;
    }
};
