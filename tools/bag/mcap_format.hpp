// The MCAP container format (https://mcap.dev/spec, major version 0): record opcodes, the records
// meshy writes and reads, their serialization, and the CRC-32 the format uses. Pure functions over
// bytes: nothing here touches files or the mesh, so the parsers can be fuzzed on their own.
//
// Every record is <opcode u8><content length u64><content>; integers are little-endian; a String
// is <u32 length><UTF-8>; a Map or Array is <u32 byte length><entries>.
#pragma once

#include <array>
#include <cstddef>
#include <cstdint>
#include <span>
#include <stdexcept>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

namespace meshy::bag::mcap {

using Bytes = std::vector<std::byte>;
using ByteView = std::span<const std::byte>;

/// A file that is not valid MCAP, or a record that does not parse.
struct McapError : std::runtime_error {
    using std::runtime_error::runtime_error;
};

/// "\x89MCAP0\r\n": the first and the last 8 bytes of every MCAP file (0x30 = major version '0').
inline constexpr std::array<std::byte, 8> magic = {std::byte{0x89}, std::byte{'M'}, std::byte{'C'},  std::byte{'A'},
                                                   std::byte{'P'},  std::byte{'0'}, std::byte{'\r'}, std::byte{'\n'}};

enum class Opcode : std::uint8_t {
    header = 0x01,
    footer = 0x02,
    schema = 0x03,
    channel = 0x04,
    message = 0x05,
    chunk = 0x06,
    message_index = 0x07,
    chunk_index = 0x08,
    attachment = 0x09,
    attachment_index = 0x0a,
    statistics = 0x0b,
    metadata = 0x0c,
    metadata_index = 0x0d,
    summary_offset = 0x0e,
    data_end = 0x0f,
};

/// Opcode and length prefix of every record.
inline constexpr std::size_t record_prefix_size = 1 + 8;
/// Fixed part of a Message record's content: channel id, sequence, log time, publish time.
inline constexpr std::size_t message_fixed_size = 2 + 4 + 8 + 8;
/// A whole Footer record (fixed size) followed by the trailing magic.
inline constexpr std::size_t footer_record_size = record_prefix_size + 8 + 8 + 4;
/// A whole Data End record.
inline constexpr std::size_t data_end_record_size = record_prefix_size + 4;

/// Map<string, string>, in the order written.
using KeyValues = std::vector<std::pair<std::string, std::string>>;

struct Header {
    std::string profile;
    std::string library;
};

struct Footer {
    std::uint64_t summary_start = 0;
    std::uint64_t summary_offset_start = 0;
    std::uint32_t summary_crc = 0;
};

struct Schema {
    std::uint16_t id = 0;
    std::string name;
    std::string encoding;  ///< "" for none (self-describing message encodings)
    Bytes data;
};

struct Channel {
    std::uint16_t id = 0;
    std::uint16_t schema_id = 0;
    std::string topic;
    std::string message_encoding;
    KeyValues metadata;
};

/// A Message record; `data` views the bytes it was parsed from.
struct MessageView {
    std::uint16_t channel_id = 0;
    std::uint32_t sequence = 0;
    std::uint64_t log_time = 0;
    std::uint64_t publish_time = 0;
    ByteView data;
};

/// A Chunk record; `records` views the (possibly compressed) bytes it was parsed from.
struct ChunkView {
    std::uint64_t message_start_time = 0;
    std::uint64_t message_end_time = 0;
    std::uint64_t uncompressed_size = 0;
    std::uint32_t uncompressed_crc = 0;
    std::string compression;  ///< "", "zstd" or "lz4"
    ByteView records;
};

struct MessageIndex {
    std::uint16_t channel_id = 0;
    std::vector<std::pair<std::uint64_t, std::uint64_t>> records;  ///< (log time, offset in the uncompressed chunk)
};

struct ChunkIndex {
    std::uint64_t message_start_time = 0;
    std::uint64_t message_end_time = 0;
    std::uint64_t chunk_start_offset = 0;
    std::uint64_t chunk_length = 0;  ///< whole record, prefix included
    std::vector<std::pair<std::uint16_t, std::uint64_t>> message_index_offsets;
    std::uint64_t message_index_length = 0;
    std::string compression;
    std::uint64_t compressed_size = 0;
    std::uint64_t uncompressed_size = 0;
};

struct Statistics {
    std::uint64_t message_count = 0;
    std::uint16_t schema_count = 0;
    std::uint32_t channel_count = 0;
    std::uint32_t attachment_count = 0;
    std::uint32_t metadata_count = 0;
    std::uint32_t chunk_count = 0;
    std::uint64_t message_start_time = 0;
    std::uint64_t message_end_time = 0;
    std::vector<std::pair<std::uint16_t, std::uint64_t>> channel_message_counts;
};

struct SummaryOffset {
    Opcode group_opcode = Opcode::header;
    std::uint64_t group_start = 0;
    std::uint64_t group_length = 0;
};

struct DataEnd {
    std::uint32_t data_section_crc = 0;
};

// --- CRC-32 (ISO-HDLC, as zlib's crc32) -------------------------------------------------------------

/// Continues a CRC-32 over `bytes`: crc32(b, crc32(a)) == crc32(a + b); crc32({}) == 0.
std::uint32_t crc32(ByteView bytes, std::uint32_t crc = 0) noexcept;

// --- writing: each appends one whole record (opcode, length, content) to `out` ---------------------------

void append_record(Bytes& out, const Header& record);
void append_record(Bytes& out, const Footer& record);
void append_record(Bytes& out, const Schema& record);
void append_record(Bytes& out, const Channel& record);
void append_record(Bytes& out, const MessageIndex& record);
void append_record(Bytes& out, const ChunkIndex& record);
void append_record(Bytes& out, const Statistics& record);
void append_record(Bytes& out, const SummaryOffset& record);
void append_record(Bytes& out, const DataEnd& record);
/// A Message record. Hot path of the recorder: one reservation, two copies.
void append_message(Bytes& out,
                    std::uint16_t channel_id,
                    std::uint32_t sequence,
                    std::uint64_t log_time,
                    std::uint64_t publish_time,
                    ByteView data);
/// A Chunk record around already compressed `records`.
void append_chunk(Bytes& out,
                  std::uint64_t message_start_time,
                  std::uint64_t message_end_time,
                  std::uint64_t uncompressed_size,
                  std::uint32_t uncompressed_crc,
                  std::string_view compression,
                  ByteView records);

// --- reading ---------------------------------------------------------------------------------------------

/// One record as it lies in a byte range: its opcode and a view of its content.
struct RecordView {
    std::uint8_t opcode = 0;
    ByteView content;
    std::size_t size = 0;  ///< whole record, prefix included
};

/// Reads the record that starts at `in[offset]`.
/// @returns false when `in` ends before the record does (a truncated record); `out` is then unset.
bool read_record(ByteView in, std::size_t offset, RecordView& out) noexcept;

/// Each parses the content of one record. @throws McapError when the content is shorter than its
/// fields say. Trailing bytes after the known fields are ignored (the format lets records grow).
Header parse_header(ByteView content);
Footer parse_footer(ByteView content);
Schema parse_schema(ByteView content);
Channel parse_channel(ByteView content);
MessageView parse_message(ByteView content);
ChunkView parse_chunk(ByteView content);
MessageIndex parse_message_index(ByteView content);
ChunkIndex parse_chunk_index(ByteView content);
Statistics parse_statistics(ByteView content);
SummaryOffset parse_summary_offset(ByteView content);
DataEnd parse_data_end(ByteView content);

/// The name of a record type ("Chunk", "Message", ... or "0x2a" for an unknown opcode), for messages.
std::string opcode_name(std::uint8_t opcode);

/// Views a string's bytes.
inline ByteView as_bytes(std::string_view text) noexcept {
    return {reinterpret_cast<const std::byte*>(text.data()), text.size()};
}

}  // namespace meshy::bag::mcap
