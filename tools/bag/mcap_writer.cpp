#include "bag/mcap_writer.hpp"

#include <fcntl.h>
#include <sys/uio.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstring>
#include <limits>

namespace meshy::bag {

using mcap::ByteView;
using mcap::McapError;

namespace {

std::string errno_text(int err) {
    return std::strerror(err);
}

/// What a chunk buffer starts with: its usual size, without committing memory to a huge chunk_size.
std::size_t initial_capacity(std::size_t chunk_size) {
    return std::min<std::size_t>(chunk_size, std::size_t{4} << 20) + 64 * 1024;
}

}  // namespace

McapWriter::McapWriter(std::string path, WriterOptions options) : path_(std::move(path)), options_(std::move(options)) {
    const int flags = O_WRONLY | O_CREAT | O_CLOEXEC | (options_.exclusive ? O_EXCL : O_TRUNC);
    fd_ = ::open(path_.c_str(), flags, 0644);
    if (fd_ < 0) {
        throw McapError("cannot create " + path_ + ": " + errno_text(errno));
    }
    if (options_.chunk_size == 0) {
        options_.chunk_size = 1;
    }
    try {
        compressor_ = std::make_unique<Compressor>(options_.compression, options_.compression_level);
        mcap::Bytes head(mcap::magic.begin(), mcap::magic.end());
        mcap::append_record(head, mcap::Header{options_.profile, options_.library});
        write_all({head});
    } catch (...) {
        ::close(fd_);
        ::unlink(path_.c_str());
        fd_ = -1;
        throw;
    }
    open_.records.reserve(initial_capacity(options_.chunk_size));
    if (options_.background) {
        for (unsigned i = 0; i < std::max(1u, options_.compression_threads); ++i) {
            workers_.emplace_back([this] { worker_main(); });
        }
    }
}

McapWriter::~McapWriter() {
    if (!finished_) {
        try {
            close();
        } catch (...) {  // NOLINT(bugprone-empty-catch): a destructor must not throw; close() reports errors
        }
    }
}

std::uint16_t McapWriter::add_schema(std::string name, std::string encoding, mcap::Bytes data) {
    if (schemas_.size() >= std::numeric_limits<std::uint16_t>::max()) {
        throw McapError("too many schemas for one MCAP file");
    }
    const auto id = static_cast<std::uint16_t>(schemas_.size() + 1);
    schemas_.push_back(mcap::Schema{id, std::move(name), std::move(encoding), std::move(data)});
    schema_written_.push_back(false);
    return id;
}

std::uint16_t McapWriter::add_channel(std::uint16_t schema_id,
                                      std::string topic,
                                      std::string message_encoding,
                                      mcap::KeyValues metadata) {
    if (channels_.size() > std::numeric_limits<std::uint16_t>::max()) {
        throw McapError("too many channels for one MCAP file");
    }
    if (schema_id > schemas_.size()) {
        throw McapError("channel refers to an unknown schema");
    }
    const auto id = static_cast<std::uint16_t>(channels_.size());
    channels_.push_back(
        mcap::Channel{id, schema_id, std::move(topic), std::move(message_encoding), std::move(metadata)});
    channel_written_.push_back(false);
    channel_counts_.push_back(0);
    index_slot_.push_back(-1);
    return id;
}

void McapWriter::add_message(std::uint16_t channel_id,
                             std::uint32_t sequence,
                             std::uint64_t log_time,
                             std::uint64_t publish_time,
                             ByteView data) {
    if (finished_) {
        throw McapError("write to a closed MCAP file");
    }
    if (failed_.load(std::memory_order_relaxed)) {
        rethrow_worker_error();
    }
    if (channel_id >= channels_.size()) {
        throw McapError("message on an unknown channel");
    }
    // A chunk must define what its messages refer to, unless an earlier chunk did.
    if (!channel_written_[channel_id]) {
        const auto schema_id = channels_[channel_id].schema_id;
        if (schema_id != 0 && !schema_written_[schema_id - 1]) {
            mcap::append_record(open_.records, schemas_[schema_id - 1]);
            schema_written_[schema_id - 1] = true;
        }
        mcap::append_record(open_.records, channels_[channel_id]);
        channel_written_[channel_id] = true;
    }
    int& slot = index_slot_[channel_id];
    if (slot < 0) {
        slot = static_cast<int>(open_.indexes.size());
        open_.indexes.push_back(mcap::MessageIndex{channel_id, {}});
    }
    open_.indexes[static_cast<std::size_t>(slot)].records.emplace_back(log_time, open_.records.size());
    mcap::append_message(open_.records, channel_id, sequence, log_time, publish_time, data);

    if (!open_has_messages_) {
        open_.start = open_.end = log_time;
        open_has_messages_ = true;
    } else {
        open_.start = std::min(open_.start, log_time);
        open_.end = std::max(open_.end, log_time);
    }
    if (stats_.message_count == 0) {
        stats_.message_start_time = stats_.message_end_time = log_time;
    } else {
        stats_.message_start_time = std::min(stats_.message_start_time, log_time);
        stats_.message_end_time = std::max(stats_.message_end_time, log_time);
    }
    ++stats_.message_count;
    stats_.message_bytes += data.size();
    ++channel_counts_[channel_id];

    if (open_.records.size() >= options_.chunk_size) {
        flush_chunk();
    }
}

std::optional<std::uint64_t> McapWriter::open_chunk_start_time() const {
    if (!open_has_messages_) {
        return std::nullopt;
    }
    return open_.start;
}

void McapWriter::flush_chunk() {
    if (open_.records.empty() || finished_) {
        return;
    }
    for (const auto& index : open_.indexes) {
        index_slot_[index.channel_id] = -1;
    }
    ++stats_.chunk_count;
    open_.number = next_number_++;
    if (!options_.background) {
        commit(open_, pack(open_, *compressor_, compressed_, Effort::normal));
        open_.records.clear();
        open_.indexes.clear();
        open_has_messages_ = false;
        return;
    }
    ClosedChunk next;
    {
        std::unique_lock lock(queue_mutex_);
        queue_changed_.wait(lock, [&] { return queue_.size() < options_.max_queued_chunks || worker_error_; });
        if (worker_error_) {
            lock.unlock();
            rethrow_worker_error();
        }
        queue_.push_back(std::move(open_));
        if (!spare_buffers_.empty()) {
            next.records = std::move(spare_buffers_.back());
            spare_buffers_.pop_back();
        }
    }
    queue_changed_.notify_all();
    open_ = std::move(next);
    open_.records.clear();
    open_.records.reserve(initial_capacity(options_.chunk_size));
    open_has_messages_ = false;
}

void McapWriter::write_all(const std::vector<ByteView>& parts) {
    std::vector<iovec> iov;
    std::size_t total = 0;
    for (const auto& p : parts) {
        if (!p.empty()) {
            iov.push_back(iovec{const_cast<std::byte*>(p.data()), p.size()});
            total += p.size();
        }
        data_crc_ = mcap::crc32(p, data_crc_);
    }
    std::size_t first = 0;
    while (first < iov.size()) {
        const ssize_t n =
            ::writev(fd_, iov.data() + first, static_cast<int>(std::min<std::size_t>(iov.size() - first, IOV_MAX)));
        if (n < 0) {
            if (errno == EINTR) {
                continue;
            }
            throw McapError("cannot write " + path_ + ": " + errno_text(errno));
        }
        auto left = static_cast<std::size_t>(n);
        while (first < iov.size() && left >= iov[first].iov_len) {
            left -= iov[first].iov_len;
            ++first;
        }
        if (first < iov.size()) {
            iov[first].iov_base = static_cast<char*>(iov[first].iov_base) + left;
            iov[first].iov_len -= left;
        }
    }
    file_pos_ += total;
    file_bytes_.store(file_pos_, std::memory_order_relaxed);
}

McapWriter::Packed McapWriter::pack(ClosedChunk& chunk,
                                    Compressor& compressor,
                                    mcap::Bytes& compressed,
                                    Effort effort) {
    Packed packed;
    packed.crc = mcap::crc32(chunk.records);
    packed.body = chunk.records;
    packed.compression = mcap_compression_name(Compression::none);
    if (compressor.compression() != Compression::none && effort != Effort::store) {
        compressor.compress(chunk.records, compressed, effort == Effort::fast);
        packed.body = compressed;
        packed.compression = mcap_compression_name(compressor.compression());
    }
    std::sort(chunk.indexes.begin(), chunk.indexes.end(),
              [](const auto& a, const auto& b) { return a.channel_id < b.channel_id; });
    for (auto& mi : chunk.indexes) {
        // Readers binary-search these by time; log times can step back when the system clock does.
        if (!std::is_sorted(mi.records.begin(), mi.records.end())) {
            std::stable_sort(mi.records.begin(), mi.records.end(),
                             [](const auto& a, const auto& b) { return a.first < b.first; });
        }
    }
    return packed;
}

void McapWriter::commit(ClosedChunk& chunk, const Packed& packed) {
    // The Chunk record's fixed fields, then the body by reference (no copy of the compressed data).
    mcap::Bytes head;
    mcap::append_chunk(head, chunk.start, chunk.end, chunk.records.size(), packed.crc, packed.compression, {});
    const std::uint64_t chunk_length = head.size() + packed.body.size();
    // Patch the record length and the records length (the last 8 bytes of `head`) to cover the body.
    for (std::size_t i = 0; i < 8; ++i) {
        head[1 + i] = static_cast<std::byte>(((chunk_length - mcap::record_prefix_size) >> (8 * i)) & 0xff);
        head[head.size() - 8 + i] = static_cast<std::byte>((packed.body.size() >> (8 * i)) & 0xff);
    }

    mcap::ChunkIndex index;
    index.message_start_time = chunk.start;
    index.message_end_time = chunk.end;
    index.chunk_start_offset = file_pos_;
    index.chunk_length = chunk_length;
    index.compression = std::string(packed.compression);
    index.compressed_size = packed.body.size();
    index.uncompressed_size = chunk.records.size();
    mcap::Bytes indexes;
    for (const auto& mi : chunk.indexes) {
        index.message_index_offsets.emplace_back(mi.channel_id, file_pos_ + chunk_length + indexes.size());
        mcap::append_record(indexes, mi);
    }
    index.message_index_length = indexes.size();

    write_all({head, packed.body, indexes});
    chunk_indexes_.push_back(std::move(index));
}

void McapWriter::worker_main() {
    Compressor compressor(options_.compression, options_.compression_level);
    mcap::Bytes compressed;
    const std::size_t behind = std::max<std::size_t>(1, options_.max_queued_chunks / 4);
    const std::size_t far_behind = std::max<std::size_t>(2, options_.max_queued_chunks / 2);
    for (;;) {
        ClosedChunk chunk;
        Effort effort = Effort::normal;
        {
            std::unique_lock lock(queue_mutex_);
            queue_changed_.wait(lock, [&] { return !queue_.empty() || stopping_ || worker_error_; });
            if (queue_.empty() || worker_error_) {
                return;
            }
            chunk = std::move(queue_.front());
            queue_.pop_front();
            if (options_.fast_when_behind) {
                effort = queue_.size() >= far_behind ? Effort::store
                         : queue_.size() >= behind   ? Effort::fast
                                                     : Effort::normal;
            }
        }
        queue_changed_.notify_all();
        try {
            const Packed packed = pack(chunk, compressor, compressed, effort);
            // Compressed side by side, written in the order they were closed.
            std::unique_lock lock(write_mutex_);
            write_turn_.wait(lock, [&] { return next_write_ == chunk.number || failed_; });
            if (failed_) {
                return;
            }
            commit(chunk, packed);
            ++next_write_;
        } catch (...) {
            {
                std::lock_guard lock(queue_mutex_);
                if (!worker_error_) {
                    worker_error_ = std::current_exception();
                }
                queue_.clear();
            }
            {
                std::lock_guard lock(write_mutex_);
                failed_ = true;  // the chunks after this one would wait for its turn forever
            }
            queue_changed_.notify_all();
            write_turn_.notify_all();
            return;
        }
        write_turn_.notify_all();
        std::lock_guard lock(queue_mutex_);
        chunk.records.clear();
        if (spare_buffers_.size() < 2) {
            spare_buffers_.push_back(std::move(chunk.records));
        }
    }
}

void McapWriter::stop_worker() {
    {
        std::lock_guard lock(queue_mutex_);
        stopping_ = true;
    }
    queue_changed_.notify_all();
    for (auto& w : workers_) {
        if (w.joinable()) {
            w.join();
        }
    }
    workers_.clear();
}

void McapWriter::rethrow_worker_error() {
    std::exception_ptr error;
    {
        std::lock_guard lock(queue_mutex_);
        error = worker_error_;
    }
    if (error) {
        std::rethrow_exception(error);
    }
}

void McapWriter::close() {
    if (finished_) {
        return;
    }
    struct Finish {
        McapWriter* w;
        ~Finish() {
            w->finished_ = true;
            if (w->fd_ >= 0) {
                ::close(w->fd_);
                w->fd_ = -1;
            }
        }
    };
    Finish finish{this};
    flush_chunk();
    stop_worker();
    rethrow_worker_error();

    mcap::Bytes tail;
    mcap::append_record(tail, mcap::DataEnd{data_crc_});
    const std::uint64_t summary_start = file_pos_ + tail.size();
    std::vector<mcap::SummaryOffset> offsets;
    auto group = [&](mcap::Opcode op, auto&& write_records) {
        const std::uint64_t start = file_pos_ + tail.size();
        write_records();
        const std::uint64_t length = file_pos_ + tail.size() - start;
        if (length > 0) {
            offsets.push_back(mcap::SummaryOffset{op, start, length});
        }
    };
    // Grouped by opcode, Channels before Statistics (the spec asks for both).
    group(mcap::Opcode::schema, [&] {
        for (const auto& s : schemas_) {
            mcap::append_record(tail, s);
        }
    });
    group(mcap::Opcode::channel, [&] {
        for (const auto& c : channels_) {
            mcap::append_record(tail, c);
        }
    });
    group(mcap::Opcode::statistics, [&] {
        mcap::Statistics s;
        s.message_count = stats_.message_count;
        s.schema_count = static_cast<std::uint16_t>(schemas_.size());
        s.channel_count = static_cast<std::uint32_t>(channels_.size());
        s.chunk_count = static_cast<std::uint32_t>(chunk_indexes_.size());
        s.message_start_time = stats_.message_start_time;
        s.message_end_time = stats_.message_end_time;
        for (std::size_t id = 0; id < channels_.size(); ++id) {
            s.channel_message_counts.emplace_back(static_cast<std::uint16_t>(id), channel_counts_[id]);
        }
        mcap::append_record(tail, s);
    });
    group(mcap::Opcode::chunk_index, [&] {
        for (const auto& ci : chunk_indexes_) {
            mcap::append_record(tail, ci);
        }
    });
    const std::uint64_t summary_offset_start = file_pos_ + tail.size();
    for (const auto& o : offsets) {
        mcap::append_record(tail, o);
    }
    // The summary CRC covers the summary, the summary offsets and the Footer up to its CRC field.
    mcap::Footer footer{summary_start, summary_offset_start, 0};
    const std::size_t footer_at = tail.size();
    mcap::append_record(tail, footer);
    const std::size_t summary_at = static_cast<std::size_t>(summary_start - file_pos_);
    const ByteView covered(tail.data() + summary_at, footer_at + mcap::footer_record_size - 4 - summary_at);
    const std::uint32_t summary_crc = mcap::crc32(covered);
    for (std::size_t i = 0; i < 4; ++i) {
        tail[tail.size() - 4 + i] = static_cast<std::byte>((summary_crc >> (8 * i)) & 0xff);
    }
    tail.insert(tail.end(), mcap::magic.begin(), mcap::magic.end());
    write_all({tail});
}

void McapWriter::discard() {
    if (finished_) {
        return;
    }
    {
        std::lock_guard lock(queue_mutex_);
        queue_.clear();
    }
    stop_worker();
    finished_ = true;
    if (fd_ >= 0) {
        ::close(fd_);
        fd_ = -1;
    }
    ::unlink(path_.c_str());
}

WriterStats McapWriter::stats() const {
    WriterStats s = stats_;
    s.file_bytes = file_bytes_.load(std::memory_order_relaxed);
    return s;
}

}  // namespace meshy::bag
