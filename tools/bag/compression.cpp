#include "bag/compression.hpp"

#include <lz4frame.h>
#include <zstd.h>

#include <string>

namespace meshy::bag {

using mcap::McapError;

std::string_view mcap_compression_name(Compression c) noexcept {
    switch (c) {
        case Compression::zstd:
            return "zstd";
        case Compression::lz4:
            return "lz4";
        case Compression::none:
            break;
    }
    return "";
}

std::string_view compression_option_name(Compression c) noexcept {
    return c == Compression::none ? "none" : mcap_compression_name(c);
}

std::optional<Compression> parse_compression(std::string_view name) noexcept {
    if (name == "none" || name.empty()) {
        return Compression::none;
    }
    if (name == "zstd") {
        return Compression::zstd;
    }
    if (name == "lz4") {
        return Compression::lz4;
    }
    return std::nullopt;
}

struct Compressor::Contexts {
    ZSTD_CCtx* zstd = nullptr;
    ~Contexts() { ZSTD_freeCCtx(zstd); }
};

Compressor::Compressor(Compression compression, int level)
    : compression_(compression), level_(level), contexts_(std::make_unique<Contexts>()) {
    if (compression_ == Compression::zstd) {
        contexts_->zstd = ZSTD_createCCtx();
        if (!contexts_->zstd) {
            throw McapError("zstd: cannot create a compression context");
        }
        if (level_ == 0) {
            level_ = 1;  // the recorder must keep up with the mesh; level 1 still shrinks typical data well
        }
    }
}

Compressor::~Compressor() = default;

void Compressor::compress(mcap::ByteView in, mcap::Bytes& out, bool fast) {
    switch (compression_) {
        case Compression::none:
            out.assign(in.begin(), in.end());
            return;
        case Compression::zstd: {
            out.resize(ZSTD_compressBound(in.size()));
            const std::size_t n =
                ZSTD_compressCCtx(contexts_->zstd, out.data(), out.size(), in.data(), in.size(), fast ? -10 : level_);
            if (ZSTD_isError(n)) {
                throw McapError(std::string("zstd: ") + ZSTD_getErrorName(n));
            }
            out.resize(n);
            return;
        }
        case Compression::lz4: {
            LZ4F_preferences_t prefs{};
            prefs.frameInfo.contentSize = in.size();  // lets readers check the size before they allocate
            prefs.frameInfo.blockSizeID = LZ4F_max4MB;
            prefs.compressionLevel = fast ? -20 : level_;
            out.resize(LZ4F_compressFrameBound(in.size(), &prefs));
            const std::size_t n = LZ4F_compressFrame(out.data(), out.size(), in.data(), in.size(), &prefs);
            if (LZ4F_isError(n)) {
                throw McapError(std::string("lz4: ") + LZ4F_getErrorName(n));
            }
            out.resize(n);
            return;
        }
    }
}

struct Decompressor::Contexts {
    ZSTD_DCtx* zstd = nullptr;
    LZ4F_dctx* lz4 = nullptr;
    ~Contexts() {
        ZSTD_freeDCtx(zstd);
        LZ4F_freeDecompressionContext(lz4);
    }
};

Decompressor::Decompressor() : contexts_(std::make_unique<Contexts>()) {
}
Decompressor::~Decompressor() = default;

void Decompressor::decompress(std::string_view compression,
                              mcap::ByteView in,
                              std::uint64_t uncompressed_size,
                              mcap::Bytes& out) {
    if (compression.empty()) {
        if (in.size() != uncompressed_size) {
            throw McapError("uncompressed chunk size differs from its record's");
        }
        out.assign(in.begin(), in.end());
        return;
    }
    out.resize(static_cast<std::size_t>(uncompressed_size));
    if (compression == "zstd") {
        if (!contexts_->zstd && !(contexts_->zstd = ZSTD_createDCtx())) {
            throw McapError("zstd: cannot create a decompression context");
        }
        const std::size_t n = ZSTD_decompressDCtx(contexts_->zstd, out.data(), out.size(), in.data(), in.size());
        if (ZSTD_isError(n)) {
            throw McapError(std::string("zstd: ") + ZSTD_getErrorName(n));
        }
        if (n != out.size()) {
            throw McapError("zstd: chunk decompressed to another size than its record says");
        }
        return;
    }
    if (compression == "lz4") {
        if (!contexts_->lz4 && LZ4F_isError(LZ4F_createDecompressionContext(&contexts_->lz4, LZ4F_VERSION))) {
            contexts_->lz4 = nullptr;
            throw McapError("lz4: cannot create a decompression context");
        }
        LZ4F_resetDecompressionContext(contexts_->lz4);
        std::size_t produced = 0, consumed = 0;
        for (;;) {
            std::size_t dst_size = out.size() - produced;
            std::size_t src_size = in.size() - consumed;
            const std::size_t hint = LZ4F_decompress(contexts_->lz4, out.data() + produced, &dst_size,
                                                     in.data() + consumed, &src_size, nullptr);
            if (LZ4F_isError(hint)) {
                throw McapError(std::string("lz4: ") + LZ4F_getErrorName(hint));
            }
            produced += dst_size;
            consumed += src_size;
            if (hint == 0) {
                // One frame ended. MCAP writes one per chunk; another one may follow.
                if (consumed == in.size()) {
                    break;
                }
                continue;
            }
            if (consumed == in.size() || (dst_size == 0 && src_size == 0)) {
                throw McapError("lz4: chunk data ends inside a frame, or decompresses to more than its record says");
            }
        }
        if (produced != out.size()) {
            throw McapError("lz4: chunk decompressed to another size than its record says");
        }
        return;
    }
    throw McapError("unsupported chunk compression '" + std::string(compression) + "'");
}

}  // namespace meshy::bag
