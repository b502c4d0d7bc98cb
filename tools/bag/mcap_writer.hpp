// Writes an MCAP file: magic, Header, then Chunks (each with its Schema and Channel records before
// their first message) followed by their MessageIndex records, and at close() DataEnd, the summary
// (Schemas, Channels, Statistics, ChunkIndexes), SummaryOffsets, Footer and magic.
//
// Crash safety: each chunk goes to the file with one write() as soon as it is closed (by size, by
// flush_chunk(), or by the caller's clock), so a writer killed with SIGKILL leaves every closed chunk
// readable; only the summary needs close(). `meshy bag reindex` rebuilds it from the chunks.
//
// Speed: add_message() only appends to the open chunk's buffer. With `background`, closed chunks are
// compressed on threads of the writer's own (several chunks at once with `compression_threads` > 1) and
// written in order, so the caller never waits on zstd or the disk unless `max_queued_chunks` chunks are
// already waiting. Before that happens, a writer that falls behind compresses in a fast mode (a lower
// ratio), and further behind stores chunks uncompressed (MCAP's compression is per chunk), until the
// backlog is gone: a recorder should lose compression, not messages.
#pragma once

#include <atomic>
#include <condition_variable>
#include <cstdint>
#include <deque>
#include <exception>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <thread>
#include <vector>

#include "bag/compression.hpp"
#include "bag/mcap_format.hpp"

namespace meshy::bag {

struct WriterOptions {
    Compression compression = Compression::zstd;
    int compression_level = 0;                      ///< 0: Compressor's default
    std::size_t chunk_size = std::size_t{1} << 20;  ///< uncompressed bytes of records that close a chunk
    std::string profile;                            ///< Header profile
    std::string library;                            ///< Header library ("meshy 0.1.0")
    bool background = false;                        ///< compress and write on the writer's own thread(s)
    unsigned compression_threads = 1;               ///< background: chunks compressed at the same time
    std::size_t max_queued_chunks = 8;  ///< background: closed chunks that may wait before add_message() does
    bool fast_when_behind = true;       ///< background: fast mode from 1/4 of the queue, uncompressed from 1/2
    bool exclusive = true;              ///< fail when the file exists (else truncate it)
};

/// What has been written so far.
struct WriterStats {
    std::uint64_t message_count = 0;
    std::uint64_t message_bytes = 0;       ///< payload bytes of the messages
    std::uint64_t chunk_count = 0;         ///< chunks closed (written, or queued for writing)
    std::uint64_t file_bytes = 0;          ///< bytes in the file
    std::uint64_t message_start_time = 0;  ///< earliest log time (0: no message)
    std::uint64_t message_end_time = 0;    ///< latest log time
};

class McapWriter {
public:
    /// Creates `path` and writes the magic and the Header.
    /// @throws mcap::McapError when the file cannot be created (the message names it and says why)
    McapWriter(std::string path, WriterOptions options);
    /// close()s a writer that was neither closed nor discarded, ignoring errors.
    ~McapWriter();
    McapWriter(const McapWriter&) = delete;
    McapWriter& operator=(const McapWriter&) = delete;

    /// Registers a schema (ids from 1). It is written into the chunk of its first channel's first message.
    std::uint16_t add_schema(std::string name, std::string encoding, mcap::Bytes data = {});
    /// Registers a channel (ids from 0). It is written into the chunk of its first message.
    /// @throws mcap::McapError when all 65536 channel ids are taken
    std::uint16_t add_channel(std::uint16_t schema_id,
                              std::string topic,
                              std::string message_encoding,
                              mcap::KeyValues metadata = {});
    const mcap::Channel& channel(std::uint16_t id) const { return channels_.at(id); }

    /// Appends one message to the open chunk; closes the chunk when it reaches chunk_size.
    /// @throws mcap::McapError when an earlier chunk could not be written (disk full, ...)
    void add_message(std::uint16_t channel_id,
                     std::uint32_t sequence,
                     std::uint64_t log_time,
                     std::uint64_t publish_time,
                     mcap::ByteView data);

    /// Closes the open chunk (if it holds anything) and writes it (or queues it, in the background).
    void flush_chunk();
    /// The earliest log time in the open chunk; nullopt when it is empty. The caller's clock decides
    /// when a chunk is old enough to flush.
    std::optional<std::uint64_t> open_chunk_start_time() const;

    /// Writes the last chunk, DataEnd, the summary and the Footer, and closes the file. Idempotent.
    /// @throws mcap::McapError when writing fails
    void close();
    /// Stops writing and removes the file (a recording of nothing leaves no file).
    void discard();

    const std::string& path() const noexcept { return path_; }
    WriterStats stats() const;

private:
    /// A closed chunk on its way to the file.
    struct ClosedChunk {
        std::uint64_t number = 0;  // chunks are written in this order
        mcap::Bytes records;
        std::uint64_t start = 0;
        std::uint64_t end = 0;
        std::vector<mcap::MessageIndex> indexes;
    };

    /// A chunk ready to be written: its CRC and its (compressed) records.
    struct Packed {
        std::uint32_t crc = 0;
        mcap::ByteView body;
        std::string_view compression;
    };

    void write_all(const std::vector<mcap::ByteView>& parts);
    /// How hard to compress: as configured, fast, or not at all (a writer far behind).
    enum class Effort { normal, fast, store };
    static Packed pack(ClosedChunk& chunk, Compressor& compressor, mcap::Bytes& compressed, Effort effort);
    /// Writes a packed chunk and its message indexes at the end of the file (the file side's state).
    void commit(ClosedChunk& chunk, const Packed& packed);
    void worker_main();
    void stop_worker();
    void rethrow_worker_error();

    std::string path_;
    WriterOptions options_;
    int fd_ = -1;
    bool finished_ = false;

    // Producer side (the caller's thread).
    std::vector<mcap::Schema> schemas_;  // id - 1
    std::vector<mcap::Channel> channels_;
    std::vector<bool> schema_written_;
    std::vector<bool> channel_written_;
    std::vector<std::uint64_t> channel_counts_;
    ClosedChunk open_;
    bool open_has_messages_ = false;
    std::vector<int> index_slot_;  // channel id -> position in open_.indexes, or -1
    WriterStats stats_;
    std::unique_ptr<Compressor> compressor_;  // synchronous mode
    mcap::Bytes compressed_;                  // synchronous mode

    // File side: under write_mutex_ in background mode (the workers are joined before close() reads it).
    std::mutex write_mutex_;
    std::condition_variable write_turn_;
    std::uint64_t next_number_ = 0;  // producer side: number of the next closed chunk
    std::uint64_t next_write_ = 0;   // number of the chunk whose turn it is to be written
    std::uint64_t file_pos_ = 0;
    std::uint32_t data_crc_ = 0;
    std::vector<mcap::ChunkIndex> chunk_indexes_;
    std::atomic<std::uint64_t> file_bytes_{0};

    // Background mode.
    std::mutex queue_mutex_;
    std::condition_variable queue_changed_;
    std::deque<ClosedChunk> queue_;
    std::vector<mcap::Bytes> spare_buffers_;  // records buffers the worker is done with, for reuse
    bool stopping_ = false;
    std::exception_ptr worker_error_;
    std::atomic<bool> failed_{false};
    std::vector<std::thread> workers_;
};

}  // namespace meshy::bag
