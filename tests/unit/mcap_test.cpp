// The MCAP writer and reader of `meshy bag` (tools/bag/): round trips for every compression, chunking,
// indexes, the summary read without the data, files cut off as by SIGKILL, reindexing, bad input.
#include <gtest/gtest.h>
#include <unistd.h>

#include <cstring>
#include <filesystem>
#include <fstream>
#include <iterator>
#include <map>
#include <random>
#include <string>
#include <vector>

#include "bag/bag_info.hpp"
#include "bag/codec_encoding.hpp"
#include "bag/compression.hpp"
#include "bag/mapped_file.hpp"
#include "bag/mcap_reader.hpp"
#include "bag/mcap_writer.hpp"
#include "bag/reindex.hpp"

namespace fs = std::filesystem;
using namespace meshy::bag;
using mcap::Bytes;
using mcap::ByteView;

namespace {

/// A message as written, to compare with what is read.
struct Sent {
    std::string topic;
    std::uint32_t sequence = 0;
    std::uint64_t log_time = 0;
    std::uint64_t publish_time = 0;
    Bytes data;
    bool operator==(const Sent&) const = default;
};

Bytes bytes_of(std::string_view text) {
    const auto v = mcap::as_bytes(text);
    return {v.begin(), v.end()};
}

Bytes read_all(const std::string& path) {
    std::ifstream in(path, std::ios::binary);
    std::vector<char> chars((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
    Bytes out(chars.size());
    std::memcpy(out.data(), chars.data(), chars.size());
    return out;
}

void write_file(const std::string& path, ByteView bytes) {
    std::ofstream out(path, std::ios::binary | std::ios::trunc);
    out.write(reinterpret_cast<const char*>(bytes.data()), static_cast<std::streamsize>(bytes.size()));
}

/// Every message of a file, by scanning.
std::vector<Sent> scan_all(ByteView file, ScanResult* result = nullptr) {
    std::vector<Sent> out;
    McapReader reader(file);
    ScanHandler handler;
    handler.on_message = [&](const mcap::Channel& c, const mcap::MessageView& m) {
        out.push_back(Sent{c.topic, m.sequence, m.log_time, m.publish_time, Bytes(m.data.begin(), m.data.end())});
        return true;
    };
    const auto r = reader.scan(handler);
    if (result) {
        *result = r;
    }
    return out;
}

class McapTest : public ::testing::Test {
protected:
    void SetUp() override {
        dir_ = fs::temp_directory_path() / ("meshy-mcap-test-" + std::to_string(::getpid()) + "-" +
                                            ::testing::UnitTest::GetInstance()->current_test_info()->name());
        fs::remove_all(dir_);
        fs::create_directories(dir_);
    }
    void TearDown() override { fs::remove_all(dir_); }
    std::string path(const std::string& name) const { return (dir_ / name).string(); }

    /// Writes `count` messages alternating over two topics (msgpack and raw codecs), returns them.
    std::vector<Sent> write_messages(McapWriter& w, int count, std::size_t payload = 16, std::uint64_t t0 = 1000) {
        const auto s1 = w.add_schema(schema_name(meshy::CodecId::msgpack), "");
        const auto s3 = w.add_schema(schema_name(meshy::CodecId::raw), "");
        const auto a = w.add_channel(s1, "alpha", message_encoding(meshy::CodecId::msgpack),
                                     {{"meshy.codec", "1"}, {"meshy.sender", "talker@host"}});
        const auto b = w.add_channel(s3, "beta", message_encoding(meshy::CodecId::raw), {{"meshy.codec", "3"}});
        std::vector<Sent> sent;
        std::mt19937 rng(7);
        std::uint32_t seq_a = 0, seq_b = 0;
        for (int i = 0; i < count; ++i) {
            const bool on_a = i % 3 != 2;
            Sent m{on_a ? "alpha" : "beta", on_a ? seq_a++ : seq_b++, t0 + static_cast<std::uint64_t>(i) * 1000,
                   t0 + static_cast<std::uint64_t>(i) * 1000 - 7, Bytes(payload)};
            for (auto& byte : m.data) {
                byte = static_cast<std::byte>(rng() % 16);  // compressible, not constant
            }
            w.add_message(on_a ? a : b, m.sequence, m.log_time, m.publish_time, m.data);
            sent.push_back(std::move(m));
        }
        return sent;
    }

    fs::path dir_;
};

}  // namespace

TEST(McapFormat, Crc32MatchesZlib) {
    EXPECT_EQ(mcap::crc32(mcap::as_bytes("123456789")), 0xCBF43926u);
    EXPECT_EQ(mcap::crc32({}), 0u);
    // Incremental over any split, including lengths that are not multiples of 8.
    const std::string text = "The quick brown fox jumps over the lazy dog, then again and again.";
    const auto whole = mcap::crc32(mcap::as_bytes(text));
    for (std::size_t split = 0; split <= text.size(); ++split) {
        const auto first = mcap::crc32(mcap::as_bytes(std::string_view(text).substr(0, split)));
        EXPECT_EQ(mcap::crc32(mcap::as_bytes(std::string_view(text).substr(split)), first), whole) << split;
    }
    EXPECT_EQ(mcap::crc32(mcap::as_bytes("The quick brown fox jumps over the lazy dog")), 0x414FA339u);
}

TEST(McapFormat, RecordsRoundTrip) {
    Bytes out;
    mcap::Channel channel{7, 2, "pose", "msgpack", {{"meshy.codec", "1"}, {"k", ""}}};
    mcap::append_record(out, channel);
    mcap::ChunkIndex ci;
    ci.message_start_time = 1;
    ci.message_end_time = 2;
    ci.chunk_start_offset = 3;
    ci.chunk_length = 4;
    ci.message_index_offsets = {{7, 100}, {9, 200}};
    ci.message_index_length = 5;
    ci.compression = "lz4";
    ci.compressed_size = 6;
    ci.uncompressed_size = 8;
    mcap::append_record(out, ci);

    mcap::RecordView r;
    ASSERT_TRUE(mcap::read_record(out, 0, r));
    const std::size_t first_size = r.size;
    EXPECT_EQ(r.opcode, static_cast<std::uint8_t>(mcap::Opcode::channel));
    const auto c = mcap::parse_channel(r.content);
    EXPECT_EQ(c.id, 7);
    EXPECT_EQ(c.schema_id, 2);
    EXPECT_EQ(c.topic, "pose");
    EXPECT_EQ(c.metadata, channel.metadata);
    ASSERT_TRUE(mcap::read_record(out, r.size, r));
    const auto back = mcap::parse_chunk_index(r.content);
    EXPECT_EQ(back.message_index_offsets, ci.message_index_offsets);
    EXPECT_EQ(back.compression, "lz4");
    EXPECT_EQ(back.uncompressed_size, 8u);
    // A record cut anywhere does not read; a content shorter than its fields does not parse.
    for (std::size_t cut = 0; cut < first_size; ++cut) {
        mcap::RecordView partial;
        EXPECT_FALSE(mcap::read_record(ByteView(out).first(cut), 0, partial)) << cut;
    }
    EXPECT_THROW(mcap::parse_channel(ByteView(out).subspan(mcap::record_prefix_size, 10)), mcap::McapError);
}

TEST(Compression, RoundTripsAndRejectsBadData) {
    // Words from a small vocabulary: what LZ4 (no entropy coding) and zstd both shrink.
    static constexpr std::string_view words[] = {"pose ", "x=1.25 ", "y=-3.5 ", "frame=map ", "stamp ", "ok\n"};
    std::string text;
    std::mt19937 rng(1);
    while (text.size() < 300000) {
        text += words[rng() % std::size(words)];
    }
    const Bytes input = bytes_of(text);
    Decompressor d;
    for (auto c : {Compression::none, Compression::zstd, Compression::lz4}) {
        Compressor compressor(c);
        Bytes packed, unpacked;
        compressor.compress(input, packed);
        if (c != Compression::none) {
            EXPECT_LT(packed.size(), input.size() / 2) << compression_option_name(c);
        }
        d.decompress(mcap_compression_name(c), packed, input.size(), unpacked);
        EXPECT_EQ(unpacked, input) << compression_option_name(c);
        // A wrong size, or damaged data, is an error, never a crash.
        EXPECT_THROW(d.decompress(mcap_compression_name(c), packed, input.size() + 1, unpacked), mcap::McapError);
        if (c != Compression::none) {
            Bytes damaged(packed.begin(), packed.begin() + static_cast<std::ptrdiff_t>(packed.size() / 2));
            EXPECT_THROW(d.decompress(mcap_compression_name(c), damaged, input.size(), unpacked), mcap::McapError);
        }
    }
    Bytes out;
    EXPECT_THROW(d.decompress("bz2", input, input.size(), out), mcap::McapError);
    EXPECT_EQ(parse_compression("none"), Compression::none);
    EXPECT_EQ(parse_compression("lz4"), Compression::lz4);
    EXPECT_FALSE(parse_compression("gzip"));
}

TEST(CodecEncoding, TableAndBack) {
    using meshy::CodecId;
    EXPECT_EQ(message_encoding(CodecId::msgpack), "msgpack");
    EXPECT_EQ(message_encoding(CodecId::cereal), "x-meshy-cereal");
    EXPECT_EQ(message_encoding(CodecId::raw), "x-meshy-raw");
    EXPECT_EQ(message_encoding(CodecId{200}), "x-meshy-codec-200");
    for (unsigned id : {1u, 2u, 3u, 128u, 200u, 255u}) {
        mcap::Channel by_name{0, 0, "t", message_encoding(CodecId(id)), {}};
        EXPECT_EQ(channel_codec(by_name), CodecId(id)) << id;
    }
    // The metadata wins over the encoding name; a foreign encoding has no codec.
    EXPECT_EQ(channel_codec(mcap::Channel{0, 0, "t", "json", {{"meshy.codec", "201"}}}), CodecId{201});
    EXPECT_FALSE(channel_codec(mcap::Channel{0, 0, "t", "json", {}}));
    EXPECT_FALSE(channel_codec(mcap::Channel{0, 0, "t", "x-meshy-codec-300", {}}));
}

class McapRoundTrip : public McapTest, public ::testing::WithParamInterface<std::tuple<Compression, bool>> {};

TEST_P(McapRoundTrip, EveryMessageComesBackAndTheSummaryAgrees) {
    const auto [compression, background] = GetParam();
    const std::string file = path("round.mcap");
    std::vector<Sent> sent;
    {
        WriterOptions o;
        o.compression = compression;
        o.background = background;
        o.compression_threads = background ? 2 : 1;
        o.fast_when_behind = false;  // every chunk as configured (see WriterThatFallsBehind... below)
        o.chunk_size = 4096;         // many chunks
        o.profile = "x-meshy";
        o.library = "meshy test";
        McapWriter w(file, o);
        sent = write_messages(w, 1000, 40);
        w.close();
        EXPECT_EQ(w.stats().message_count, 1000u);
        EXPECT_EQ(w.stats().file_bytes, fs::file_size(file));
    }
    const Bytes bytes = read_all(file);
    ScanResult result;
    EXPECT_EQ(scan_all(bytes, &result), sent);
    EXPECT_TRUE(result.complete);
    EXPECT_TRUE(result.problem.empty()) << result.problem;
    EXPECT_GT(result.chunks, 5u);

    McapReader reader(bytes);
    EXPECT_EQ(reader.header().profile, "x-meshy");
    EXPECT_EQ(reader.header().library, "meshy test");
    std::string why;
    const auto summary = reader.read_summary(&why);
    ASSERT_TRUE(summary) << why;
    ASSERT_TRUE(summary->statistics);
    EXPECT_EQ(summary->statistics->message_count, 1000u);
    EXPECT_EQ(summary->statistics->chunk_count, result.chunks);
    EXPECT_EQ(summary->statistics->message_start_time, sent.front().log_time);
    EXPECT_EQ(summary->statistics->message_end_time, sent.back().log_time);
    EXPECT_EQ(summary->chunk_indexes.size(), result.chunks);
    EXPECT_EQ(summary->channels.size(), 2u);
    EXPECT_EQ(summary->schemas.size(), 2u);
    EXPECT_EQ(summary->summary_offsets.size(), 4u);  // Schema, Channel, Statistics, ChunkIndex groups
    EXPECT_EQ(summary->channels.at(0).metadata.at(1).second, "talker@host");

    // Each chunk index points at its chunk, and each message index entry at a message of that time.
    Decompressor d;
    std::uint64_t indexed = 0;
    for (const auto& ci : summary->chunk_indexes) {
        EXPECT_EQ(ci.compression, std::string(mcap_compression_name(compression)));
        mcap::RecordView record;
        ASSERT_TRUE(mcap::read_record(bytes, ci.chunk_start_offset, record));
        ASSERT_EQ(record.opcode, static_cast<std::uint8_t>(mcap::Opcode::chunk));
        EXPECT_EQ(record.size, ci.chunk_length);
        const auto chunk = mcap::parse_chunk(record.content);
        Bytes records;
        d.decompress(chunk.compression, chunk.records, chunk.uncompressed_size, records);
        std::uint64_t index_bytes = 0;
        for (const auto& [channel, offset] : ci.message_index_offsets) {
            mcap::RecordView mi_record;
            ASSERT_TRUE(mcap::read_record(bytes, offset, mi_record));
            index_bytes += mi_record.size;
            const auto mi = mcap::parse_message_index(mi_record.content);
            EXPECT_EQ(mi.channel_id, channel);
            for (const auto& [time, at] : mi.records) {
                mcap::RecordView m;
                ASSERT_TRUE(mcap::read_record(records, at, m));
                const auto message = mcap::parse_message(m.content);
                EXPECT_EQ(message.log_time, time);
                EXPECT_EQ(message.channel_id, channel);
                ++indexed;
            }
        }
        EXPECT_EQ(index_bytes, ci.message_index_length);
    }
    EXPECT_EQ(indexed, 1000u);

    const BagInfo info = read_bag_info(bytes);
    EXPECT_TRUE(info.indexed);
    EXPECT_EQ(info.message_count, 1000u);
    ASSERT_EQ(info.topics.size(), 2u);
    EXPECT_EQ(info.topics[0].topic, "alpha");
    EXPECT_EQ(info.topics[0].count, 667u);
    EXPECT_EQ(info.topics[1].count, 333u);
    EXPECT_EQ(info.topics[1].encodings, std::vector<std::string>{"x-meshy-raw"});
    EXPECT_EQ(info.compressions, std::vector<std::string>{std::string(compression_option_name(compression))});
}

INSTANTIATE_TEST_SUITE_P(AllCompressions,
                         McapRoundTrip,
                         ::testing::Combine(::testing::Values(Compression::none, Compression::zstd, Compression::lz4),
                                            ::testing::Bool()),
                         [](const auto& info) {
                             return std::string(compression_option_name(std::get<0>(info.param))) +
                                    (std::get<1>(info.param) ? "_background" : "_inline");
                         });

TEST_F(McapTest, BackgroundWriterWritesTheSameBytes) {
    // Three threads compress side by side; chunks still reach the file in order. (The fast mode of a
    // writer that falls behind is off: it would change the compressed bytes, not what they hold.)
    for (auto compression : {Compression::none, Compression::zstd, Compression::lz4}) {
        for (bool background : {false, true}) {
            WriterOptions o;
            o.compression = compression;
            o.background = background;
            o.compression_threads = 3;
            o.fast_when_behind = false;
            o.chunk_size = 2000;
            McapWriter w(path(background ? "bg.mcap" : "fg.mcap"), o);
            write_messages(w, 500, 30);
            w.close();
        }
        EXPECT_EQ(read_all(path("bg.mcap")), read_all(path("fg.mcap"))) << compression_option_name(compression);
        fs::remove(path("bg.mcap"));
        fs::remove(path("fg.mcap"));
    }
}

TEST_F(McapTest, WriterThatFallsBehindLosesCompressionNotMessages) {
    // A tiny queue and a caller far faster than zstd: chunks go out fast-compressed or stored as they
    // are (MCAP's compression is per chunk); every message is still there, and the file reads back.
    WriterOptions o;
    o.compression = Compression::zstd;
    o.background = true;
    o.max_queued_chunks = 4;
    o.chunk_size = 2048;
    std::vector<Sent> sent;
    {
        McapWriter w(path("behind.mcap"), o);
        sent = write_messages(w, 3000, 200);
        w.close();
    }
    const Bytes bytes = read_all(path("behind.mcap"));
    ScanResult r;
    EXPECT_EQ(scan_all(bytes, &r), sent);
    EXPECT_TRUE(r.complete);
    const auto summary = McapReader(bytes).read_summary();
    ASSERT_TRUE(summary);
    for (const auto& ci : summary->chunk_indexes) {
        EXPECT_TRUE(ci.compression == "zstd" || ci.compression.empty()) << ci.compression;
    }
}

TEST_F(McapTest, EmptyFileIsValidAndDiscardRemovesIt) {
    {
        McapWriter w(path("empty.mcap"), {});
        w.close();
    }
    const Bytes bytes = read_all(path("empty.mcap"));
    const auto summary = McapReader(bytes).read_summary();
    ASSERT_TRUE(summary);
    EXPECT_EQ(summary->statistics->message_count, 0u);
    ScanResult r;
    EXPECT_TRUE(scan_all(bytes, &r).empty());
    EXPECT_TRUE(r.complete);
    {
        McapWriter w(path("gone.mcap"), {});
        write_messages(w, 3);
        w.discard();
    }
    EXPECT_FALSE(fs::exists(path("gone.mcap")));
    // An existing file is not overwritten.
    EXPECT_THROW(McapWriter(path("empty.mcap"), {}), mcap::McapError);
}

TEST_F(McapTest, SummaryIsReadWithoutTheData) {
    WriterOptions o;
    o.chunk_size = 1000;
    o.compression = Compression::zstd;
    {
        McapWriter w(path("a.mcap"), o);
        write_messages(w, 300, 20);
        w.close();
    }
    Bytes bytes = read_all(path("a.mcap"));
    const auto summary = McapReader(bytes).read_summary();
    ASSERT_TRUE(summary);
    // Wreck every chunk's compressed data: info still answers from the summary alone...
    for (const auto& ci : summary->chunk_indexes) {
        for (std::uint64_t i = ci.chunk_start_offset + ci.chunk_length - ci.compressed_size;
             i < ci.chunk_start_offset + ci.chunk_length; ++i) {
            bytes[i] = std::byte{0x55};
        }
    }
    const BagInfo info = read_bag_info(bytes);
    EXPECT_TRUE(info.indexed);
    EXPECT_EQ(info.message_count, 300u);
    // ...while a scan finds the damage at the first chunk.
    ScanResult r;
    EXPECT_TRUE(scan_all(bytes, &r).empty());
    EXPECT_FALSE(r.complete);
    EXPECT_NE(r.problem.find("zstd"), std::string::npos) << r.problem;
}

TEST_F(McapTest, CorruptSummaryFallsBackToScanning) {
    {
        McapWriter w(path("a.mcap"), {});
        write_messages(w, 50);
        w.close();
    }
    Bytes bytes = read_all(path("a.mcap"));
    // Flip a byte inside the summary: its CRC no longer matches.
    const auto footer = McapReader(bytes).read_summary()->footer;
    bytes[footer.summary_start + 20] ^= std::byte{0xff};
    std::string why;
    EXPECT_FALSE(McapReader(bytes).read_summary(&why));
    EXPECT_NE(why.find("CRC"), std::string::npos) << why;
    const BagInfo info = read_bag_info(bytes);
    EXPECT_FALSE(info.indexed);
    EXPECT_EQ(info.message_count, 50u);
    EXPECT_TRUE(info.problem.empty()) << info.problem;  // the data section itself is whole
}

TEST_F(McapTest, CorruptChunkCrcIsCaught) {
    WriterOptions o;
    o.compression = Compression::none;
    {
        McapWriter w(path("a.mcap"), o);
        write_messages(w, 10);
        w.close();
    }
    Bytes bytes = read_all(path("a.mcap"));
    const auto ci = McapReader(bytes).read_summary()->chunk_indexes.at(0);
    bytes[ci.chunk_start_offset + ci.chunk_length - 1] ^= std::byte{1};  // the last payload byte
    ScanResult r;
    EXPECT_TRUE(scan_all(bytes, &r).empty());
    EXPECT_NE(r.problem.find("CRC"), std::string::npos) << r.problem;
}

TEST_F(McapTest, KilledRecordingKeepsItsCompleteChunksAndReindexes) {
    // A writer that never closes: the file is what a SIGKILL leaves (every chunk was written at flush).
    const std::string file = path("killed.mcap");
    std::vector<Sent> sent;
    std::vector<std::uint64_t> chunk_ends;  // file size after each chunk, and how many messages it held
    std::vector<std::size_t> messages_at;
    {
        WriterOptions o;
        o.compression = Compression::lz4;
        o.chunk_size = std::size_t{1} << 30;  // chunks end only where this test says
        auto w = std::make_unique<McapWriter>(file, o);
        const auto s = w->add_schema("meshy.msgpack", "");
        const auto c = w->add_channel(s, "chatter", "msgpack", {{"meshy.codec", "1"}});
        for (int chunk = 0; chunk < 4; ++chunk) {
            for (int i = 0; i < 25; ++i) {
                const auto n = static_cast<std::uint32_t>(sent.size());
                Sent m{"chatter", n, 5000 + n, 4000 + n, bytes_of("message " + std::to_string(n))};
                w->add_message(c, m.sequence, m.log_time, m.publish_time, m.data);
                sent.push_back(std::move(m));
            }
            w->flush_chunk();
            chunk_ends.push_back(fs::file_size(file));
            messages_at.push_back(sent.size());
        }
        // Leave the writer unfinished, as a killed process would.
        const Bytes snapshot = read_all(file);
        w->discard();
        write_file(file, snapshot);
    }
    const Bytes whole = read_all(file);
    ASSERT_EQ(whole.size(), chunk_ends.back());

    // Cut the file at every interesting place: inside each chunk, inside its message index, at a boundary.
    std::vector<std::uint64_t> cuts;
    for (std::size_t k = 0; k < chunk_ends.size(); ++k) {
        const std::uint64_t begin = k == 0 ? McapReader(whole).data_start() : chunk_ends[k - 1];
        cuts.insert(cuts.end(), {begin + 1, begin + 9, (begin + chunk_ends[k]) / 2, chunk_ends[k] - 1, chunk_ends[k]});
    }
    for (const std::uint64_t cut : cuts) {
        const ByteView torn = ByteView(whole).first(static_cast<std::size_t>(cut));
        // Messages of the chunks whose chunk record is whole (message indexes are not needed).
        std::size_t expected = 0;
        for (std::size_t k = 0; k < chunk_ends.size(); ++k) {
            const std::uint64_t begin = k == 0 ? McapReader(whole).data_start() : chunk_ends[k - 1];
            mcap::RecordView r;
            if (mcap::read_record(torn, static_cast<std::size_t>(begin), r)) {
                expected = messages_at[k];
            }
        }
        SCOPED_TRACE("cut at " + std::to_string(cut) + " of " + std::to_string(whole.size()));
        EXPECT_FALSE(McapReader(torn).read_summary());
        ScanResult result;
        const auto got = scan_all(torn, &result);
        EXPECT_EQ(got, std::vector<Sent>(sent.begin(), sent.begin() + static_cast<std::ptrdiff_t>(expected)));
        EXPECT_FALSE(result.complete);
        EXPECT_FALSE(result.problem.empty());

        const BagInfo info = read_bag_info(torn);
        EXPECT_FALSE(info.indexed);
        EXPECT_EQ(info.message_count, expected);

        const std::string out = path("reindexed.mcap");
        fs::remove(out);
        const ReindexResult rr = reindex(torn, out, ReindexOptions{});
        EXPECT_EQ(rr.messages, expected);
        if (expected > 0) {
            EXPECT_EQ(rr.compression, Compression::lz4);  // kept from the input
        }
        EXPECT_EQ(rr.dropped_bytes, torn.size() - result.data_end);
        const Bytes fixed = read_all(out);
        const auto summary = McapReader(fixed).read_summary();
        ASSERT_TRUE(summary);
        EXPECT_EQ(summary->statistics->message_count, expected);
        ScanResult fixed_result;
        EXPECT_EQ(scan_all(fixed, &fixed_result), got);
        EXPECT_TRUE(fixed_result.complete);
        if (expected > 0) {
            EXPECT_EQ(summary->channels.at(0).metadata, (mcap::KeyValues{{"meshy.codec", "1"}}));
        }
    }
}

TEST_F(McapTest, ReaderRefusesWhatIsNotMcap) {
    EXPECT_THROW(McapReader(ByteView{}), mcap::McapError);
    EXPECT_THROW(McapReader(mcap::as_bytes("hello world, this is not MCAP at all")), mcap::McapError);
    Bytes just_magic(mcap::magic.begin(), mcap::magic.end());
    EXPECT_THROW(McapReader{just_magic}, mcap::McapError);
    EXPECT_THROW(MappedFile(path("missing.mcap")), mcap::McapError);
    EXPECT_THROW(MappedFile(dir_.string()), mcap::McapError);
}

TEST_F(McapTest, ChunkClaimingAHugeSizeIsRefusedWithoutAllocating) {
    Bytes file(mcap::magic.begin(), mcap::magic.end());
    mcap::append_record(file, mcap::Header{"", ""});
    mcap::append_chunk(file, 0, 0, std::uint64_t{1} << 62, 0, "zstd", mcap::as_bytes("tiny"));
    ScanResult r;
    scan_all(file, &r);
    EXPECT_NE(r.problem.find("more than this reader accepts"), std::string::npos) << r.problem;
}

TEST_F(McapTest, RandomDamageNeverCrashes) {
    WriterOptions o;
    o.chunk_size = 600;
    {
        McapWriter w(path("a.mcap"), o);
        write_messages(w, 120, 12);
        w.close();
    }
    const Bytes good = read_all(path("a.mcap"));
    std::mt19937 rng(42);
    for (int round = 0; round < 300; ++round) {
        Bytes bad = good;
        const int flips = 1 + static_cast<int>(rng() % 4);
        for (int i = 0; i < flips; ++i) {
            bad[rng() % bad.size()] ^= static_cast<std::byte>(1 + rng() % 255);
        }
        bad.resize(bad.size() - rng() % 64);
        try {
            const McapReader reader(bad);
            (void)reader.read_summary();
            scan_all(bad);
            (void)read_bag_info(bad);
        } catch (const mcap::McapError&) {
            // fine: e.g. the magic itself was hit
        }
    }
}
