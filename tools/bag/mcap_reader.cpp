#include "bag/mcap_reader.hpp"

#include <algorithm>
#include <cstring>
#include <optional>

namespace meshy::bag {

using mcap::ByteView;
using mcap::McapError;
using mcap::Opcode;

namespace {

bool is(std::uint8_t opcode, Opcode op) {
    return opcode == static_cast<std::uint8_t>(op);
}

bool has_magic_at(ByteView file, std::size_t offset) {
    return file.size() >= offset + mcap::magic.size() &&
           std::memcmp(file.data() + offset, mcap::magic.data(), mcap::magic.size()) == 0;
}

std::string at_offset(std::uint64_t offset) {
    return " at offset " + std::to_string(offset);
}

/// The records of one chunk, parsed and checked, not yet delivered.
struct ChunkContents {
    enum class Kind { schema, channel, message };
    std::vector<std::pair<Kind, std::size_t>> order;  // kind, index into its vector
    std::vector<mcap::Schema> schemas;
    std::vector<mcap::Channel> channels;
    std::vector<mcap::MessageView> messages;
};

}  // namespace

McapReader::McapReader(ByteView file, ReaderOptions options) : file_(file), options_(options) {
    if (!has_magic_at(file_, 0)) {
        throw McapError(file_.size() < mcap::magic.size() ? "not an MCAP file (too short)"
                                                          : "not an MCAP file (no MCAP magic at its start)");
    }
    mcap::RecordView header;
    if (!mcap::read_record(file_, mcap::magic.size(), header)) {
        throw McapError("not a complete MCAP file (its Header is cut off)");
    }
    if (!is(header.opcode, Opcode::header)) {
        throw McapError("not a valid MCAP file (its first record is " + mcap::opcode_name(header.opcode) +
                        ", not Header)");
    }
    header_ = mcap::parse_header(header.content);
    data_start_ = mcap::magic.size() + header.size;
}

std::optional<Summary> McapReader::read_summary(std::string* why) const {
    auto fail = [&](std::string reason) -> std::optional<Summary> {
        if (why) {
            *why = std::move(reason);
        }
        return std::nullopt;
    };
    const std::uint64_t size = file_.size();
    if (size < data_start_ + mcap::footer_record_size + mcap::magic.size() ||
        !has_magic_at(file_, static_cast<std::size_t>(size - mcap::magic.size()))) {
        return fail("no Footer and closing magic at the end of the file");
    }
    const std::uint64_t footer_offset = size - mcap::magic.size() - mcap::footer_record_size;
    mcap::RecordView record;
    if (!mcap::read_record(file_, static_cast<std::size_t>(footer_offset), record) ||
        !is(record.opcode, Opcode::footer) || record.size != mcap::footer_record_size) {
        return fail("no Footer record before the closing magic");
    }
    Summary summary;
    summary.footer = mcap::parse_footer(record.content);
    const auto& footer = summary.footer;
    if (footer.summary_start == 0) {
        return fail("the Footer points to no summary");
    }
    if (footer.summary_start < data_start_ || footer.summary_start > footer_offset ||
        (footer.summary_offset_start != 0 &&
         (footer.summary_offset_start < footer.summary_start || footer.summary_offset_start > footer_offset))) {
        return fail("the Footer points outside the file");
    }
    if (footer.summary_crc != 0) {
        // From the summary's start through the Footer's fields before the CRC.
        const ByteView covered = file_.subspan(
            static_cast<std::size_t>(footer.summary_start),
            static_cast<std::size_t>(footer_offset + mcap::footer_record_size - 4 - footer.summary_start));
        if (mcap::crc32(covered) != footer.summary_crc) {
            return fail("the summary's CRC does not match");
        }
    }
    const ByteView section = file_.first(static_cast<std::size_t>(footer_offset));
    std::size_t pos = static_cast<std::size_t>(footer.summary_start);
    try {
        while (pos < section.size()) {
            if (!mcap::read_record(section, pos, record)) {
                return fail("a summary record is cut off" + at_offset(pos));
            }
            switch (static_cast<Opcode>(record.opcode)) {
                case Opcode::schema: {
                    auto s = mcap::parse_schema(record.content);
                    summary.schemas[s.id] = std::move(s);
                    break;
                }
                case Opcode::channel: {
                    auto c = mcap::parse_channel(record.content);
                    summary.channels[c.id] = std::move(c);
                    break;
                }
                case Opcode::statistics:
                    summary.statistics = mcap::parse_statistics(record.content);
                    break;
                case Opcode::chunk_index:
                    summary.chunk_indexes.push_back(mcap::parse_chunk_index(record.content));
                    break;
                case Opcode::summary_offset:
                    summary.summary_offsets.push_back(mcap::parse_summary_offset(record.content));
                    break;
                default:
                    break;  // attachment and metadata indexes, future records: not needed here
            }
            pos += record.size;
        }
    } catch (const McapError& e) {
        return fail(std::string("bad summary: ") + e.what());
    }
    return summary;
}

std::optional<std::string> McapReader::first_chunk_compression() const {
    std::size_t pos = static_cast<std::size_t>(data_start_);
    mcap::RecordView record;
    while (pos < file_.size()) {
        if (is(std::to_integer<std::uint8_t>(file_[pos]), Opcode::chunk)) {
            // The compression field comes early: it reads even from a chunk cut off by a crash.
            constexpr std::size_t fixed = 8 + 8 + 8 + 4;
            if (file_.size() - pos < mcap::record_prefix_size + fixed + 4) {
                return std::nullopt;
            }
            const ByteView rest = file_.subspan(pos + mcap::record_prefix_size);
            std::uint32_t length = 0;
            for (std::size_t i = 0; i < 4; ++i) {
                length |= static_cast<std::uint32_t>(std::to_integer<std::uint8_t>(rest[fixed + i])) << (8 * i);
            }
            if (length > rest.size() - fixed - 4) {
                return std::nullopt;
            }
            return std::string(reinterpret_cast<const char*>(rest.data() + fixed + 4), length);
        }
        if (!mcap::read_record(file_, pos, record) || is(record.opcode, Opcode::data_end) ||
            is(record.opcode, Opcode::footer)) {
            break;
        }
        pos += record.size;
    }
    return std::nullopt;
}

ScanResult McapReader::scan(const ScanHandler& handler, bool sort_chunk_messages) const {
    ScanResult result;
    result.data_end = data_start_;
    std::map<std::uint16_t, mcap::Channel> channels;
    Decompressor decompressor;
    mcap::Bytes buffer;
    std::size_t pos = static_cast<std::size_t>(data_start_);
    mcap::RecordView record;

    auto deliver_message = [&](const mcap::MessageView& m) {
        ++result.messages;
        if (handler.on_message && !handler.on_message(channels.at(m.channel_id), m)) {
            result.stopped = true;
        }
        return !result.stopped;
    };
    auto add_schema = [&](const mcap::Schema& s) {
        if (handler.on_schema) {
            handler.on_schema(s);
        }
    };
    auto add_channel = [&](const mcap::Channel& c) {
        channels[c.id] = c;
        if (handler.on_channel) {
            handler.on_channel(channels[c.id]);
        }
    };

    /// Decompresses, checks and parses a chunk. @throws McapError saying what is wrong with it.
    auto read_chunk = [&](const mcap::ChunkView& chunk, ChunkContents& out) {
        if (chunk.uncompressed_size > options_.max_chunk_size) {
            throw McapError("chunk claims " + std::to_string(chunk.uncompressed_size) +
                            " uncompressed bytes, more than this reader accepts");
        }
        ByteView records = chunk.records;
        if (!chunk.compression.empty()) {
            decompressor.decompress(chunk.compression, chunk.records, chunk.uncompressed_size, buffer);
            records = buffer;
        } else if (chunk.records.size() != chunk.uncompressed_size) {
            throw McapError("uncompressed chunk's size differs from its record's");
        }
        if (chunk.uncompressed_crc != 0 && mcap::crc32(records) != chunk.uncompressed_crc) {
            throw McapError("chunk CRC does not match its data");
        }
        std::map<std::uint16_t, bool> defined_here;
        std::size_t at = 0;
        mcap::RecordView inner;
        while (at < records.size()) {
            if (!mcap::read_record(records, at, inner)) {
                throw McapError("a record inside the chunk is cut off");
            }
            switch (static_cast<Opcode>(inner.opcode)) {
                case Opcode::schema:
                    out.order.emplace_back(ChunkContents::Kind::schema, out.schemas.size());
                    out.schemas.push_back(mcap::parse_schema(inner.content));
                    break;
                case Opcode::channel:
                    out.order.emplace_back(ChunkContents::Kind::channel, out.channels.size());
                    out.channels.push_back(mcap::parse_channel(inner.content));
                    defined_here[out.channels.back().id] = true;
                    break;
                case Opcode::message: {
                    auto m = mcap::parse_message(inner.content);
                    if (!channels.contains(m.channel_id) && !defined_here.contains(m.channel_id)) {
                        throw McapError("message on channel " + std::to_string(m.channel_id) +
                                        " before that channel's record");
                    }
                    out.order.emplace_back(ChunkContents::Kind::message, out.messages.size());
                    out.messages.push_back(m);
                    break;
                }
                default:
                    if (inner.opcode >= 0x01 && inner.opcode <= 0x0f) {
                        throw McapError(mcap::opcode_name(inner.opcode) + " record inside a chunk");
                    }
                    break;  // application-defined records (0x80..) are skipped, as the spec says
            }
            at += inner.size;
        }
    };

    while (!result.complete && !result.stopped) {
        if (pos == file_.size()) {
            result.problem = "the file ends without DataEnd, summary and Footer (the recording did not finish)";
            break;
        }
        if (!mcap::read_record(file_, pos, record)) {
            const std::uint64_t left = file_.size() - pos;
            result.problem =
                (left >= 1 ? "incomplete " + mcap::opcode_name(std::to_integer<std::uint8_t>(file_[pos])) + " record"
                           : std::string("incomplete record")) +
                at_offset(pos) + " (the last " + std::to_string(left) + " bytes)";
            break;
        }
        // First parse and check the record (bad data ends the scan with a reason), then deliver it
        // (a handler's exception, e.g. a full disk while reindexing, is the caller's, not the file's).
        ChunkContents contents;
        mcap::ChunkView chunk;
        std::optional<mcap::Schema> schema;
        std::optional<mcap::Channel> channel;
        std::optional<mcap::MessageView> message;
        try {
            switch (static_cast<Opcode>(record.opcode)) {
                case Opcode::chunk:
                    chunk = mcap::parse_chunk(record.content);
                    read_chunk(chunk, contents);
                    break;
                case Opcode::schema:
                    schema = mcap::parse_schema(record.content);
                    break;
                case Opcode::channel:
                    channel = mcap::parse_channel(record.content);
                    break;
                case Opcode::message:
                    message = mcap::parse_message(record.content);
                    if (!channels.contains(message->channel_id)) {
                        throw McapError("message on channel " + std::to_string(message->channel_id) +
                                        " before that channel's record");
                    }
                    break;
                case Opcode::data_end:
                    mcap::parse_data_end(record.content);
                    break;
                case Opcode::header:
                case Opcode::footer:
                    throw McapError(mcap::opcode_name(record.opcode) + " record inside the data section");
                default:
                    break;  // message indexes (rebuilt by whoever needs them), attachments, metadata, unknown
            }
        } catch (const McapError& e) {
            result.problem = mcap::opcode_name(record.opcode) + " record" + at_offset(pos) + ": " + e.what();
            break;
        }

        if (is(record.opcode, Opcode::chunk)) {
            if (sort_chunk_messages) {
                for (const auto& [kind, i] : contents.order) {
                    if (kind == ChunkContents::Kind::schema) {
                        add_schema(contents.schemas[i]);
                    } else if (kind == ChunkContents::Kind::channel) {
                        add_channel(contents.channels[i]);
                    }
                }
                std::stable_sort(contents.messages.begin(), contents.messages.end(),
                                 [](const auto& a, const auto& b) { return a.log_time < b.log_time; });
                for (const auto& m : contents.messages) {
                    if (!deliver_message(m)) {
                        break;
                    }
                }
            } else {
                for (const auto& [kind, i] : contents.order) {
                    if (kind == ChunkContents::Kind::schema) {
                        add_schema(contents.schemas[i]);
                    } else if (kind == ChunkContents::Kind::channel) {
                        add_channel(contents.channels[i]);
                    } else if (!deliver_message(contents.messages[i])) {
                        break;
                    }
                }
            }
            ++result.chunks;
            if (handler.on_chunk) {
                handler.on_chunk(ChunkInfo{pos, record.size, chunk.compression, chunk.records.size(),
                                           chunk.uncompressed_size, contents.messages.size()});
            }
        } else if (schema) {
            add_schema(*schema);
        } else if (channel) {
            add_channel(*channel);
        } else if (message) {
            deliver_message(*message);
        } else if (is(record.opcode, Opcode::data_end)) {
            result.complete = true;
        }
        pos += record.size;
        result.data_end = pos;
    }
    return result;
}

}  // namespace meshy::bag
