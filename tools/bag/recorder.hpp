// Records topics of the mesh into an MCAP file, through a node it is given.
//
// One channel per (topic, codec, sending node): MCAP's notion of a channel (one publisher on one
// topic), and what keeps each channel's message_encoding fixed. Its metadata names the codec id and
// the sender (see codec_encoding.hpp). log_time is when the message arrived (CLOCK_REALTIME, ns);
// publish_time is the sender's sent_at_ns.
//
// The listen callback only appends to the open chunk (under a mutex): chunks are compressed and
// written on the writer's own thread, so the node's thread never waits on zstd or the disk. tick()
// writes a chunk once its first message is `max_chunk_age` old, so SIGKILL loses about that much.
#pragma once

#include <chrono>
#include <cstdint>
#include <deque>
#include <memory>
#include <meshy/node.hpp>
#include <mutex>
#include <optional>
#include <regex>
#include <string>
#include <vector>

#include "bag/json_encoding.hpp"
#include "bag/mcap_writer.hpp"

namespace meshy::bag {

struct RecorderOptions {
    std::vector<std::string> topics;    ///< recorded from the start
    bool all = false;                   ///< also every topic of the mesh, as it appears
    std::optional<std::regex> include;  ///< also topics of the mesh this matches (regex_search)
    std::optional<std::regex> exclude;  ///< not the --all / --regex topics this matches
    WriterOptions writer;               ///< background = true is what keeps up with the mesh
    /// msgpack messages as JSON with a JSON Schema (Foxglove decodes them; see json_encoding.hpp);
    /// false: as msgpack, the bytes as they came (`--encoding msgpack`)
    bool json = true;
    std::chrono::nanoseconds max_chunk_age = std::chrono::seconds(1);
};

struct RecorderStats {
    std::uint64_t messages = 0;
    std::uint64_t bytes = 0;          ///< payload bytes
    std::uint64_t file_bytes = 0;     ///< written to the file so far
    std::size_t topics = 0;           ///< topics listened to
    std::size_t recorded_topics = 0;  ///< topics with at least one message
    std::size_t channels = 0;
    std::uint64_t start_time = 0;  ///< first log time, ns
    std::uint64_t end_time = 0;
};

class Recorder {
public:
    /// Creates the file (see McapWriter). Listens to nothing yet: call start().
    /// @throws mcap::McapError when the file cannot be created
    Recorder(Node& node, std::string path, RecorderOptions options);
    /// finish()es if that was not done. Callbacks the node still runs afterwards do nothing.
    ~Recorder();
    Recorder(const Recorder&) = delete;
    Recorder& operator=(const Recorder&) = delete;

    /// Listens to the topics named in the options.
    void start();
    /// Whether discover() has anything to do (--all or --regex).
    bool discovers() const noexcept { return options_.all || options_.include.has_value(); }
    /// Listens to topics of the mesh that match --all/--regex and are not recorded yet.
    /// @returns the topics it started to record
    std::vector<std::string> discover();
    /// Writes the open chunk when it is max_chunk_age old. Call it every 100 ms or so.
    void tick();
    RecorderStats stats() const;
    /// Set when recording failed on the node's thread (e.g. the disk is full); nothing more is recorded.
    std::optional<std::string> error() const;
    /// Stops listening and closes the file with its summary; removes it when nothing was recorded.
    /// @throws mcap::McapError when closing fails
    RecorderStats finish();

    const std::string& path() const noexcept { return path_; }

private:
    struct ChannelKey {
        CodecId codec;
        std::string sender_id;
        std::uint16_t channel = 0;
        std::uint32_t next_sequence = 0;
    };
    /// A message kept until its sender's advertised schema arrives.
    struct HeldMessage {
        Buffer payload;
        std::uint64_t log_time = 0;
        std::uint64_t publish_time = 0;
    };
    /// A sender's JSON channels on a topic.
    struct JsonSender {
        std::string sender_id;
        std::optional<JsonChannelWriter> writer;  ///< made once its type is known (or given up on)
        std::vector<HeldMessage> held;            ///< its first messages, while its schema is on the way
        std::uint64_t waiting_since = 0;          ///< log time of the first held message
        std::string waited_type;                  ///< the advertised type whose schema was awaited, if any
    };
    /// What the recorder knows of a sender's advertised type.
    struct SenderType {
        std::optional<AdvertisedType> type;  ///< known, with a schema
        bool wait = false;                   ///< its advert or its schema may still come
        std::string awaited;                 ///< the type it advertised, its schema not here yet
    };
    struct TopicState {
        std::string topic;
        std::vector<ChannelKey> channels;
        std::size_t last = 0;  // index of the last channel used: most messages repeat it
        std::vector<JsonSender> json_senders;
    };
    /// Everything the node's callbacks touch; they hold it by shared_ptr, so a late callback is safe.
    struct Shared {
        Node* node = nullptr;
        bool json = true;
        std::mutex mutex;
        McapWriter writer;
        std::deque<TopicState> topics;  // stable addresses for the callbacks
        std::vector<std::uint16_t> schema_of_codec = std::vector<std::uint16_t>(256, 0);
        bool finished = false;
        std::optional<std::string> error;
        Shared(Node& n, std::string path, WriterOptions options)
            : node(&n), writer(std::move(path), std::move(options)) {}
    };

    bool record_topic(const std::string& topic);
    static void on_message(Shared& shared, TopicState& topic, const RawMessage& m);
    static std::uint16_t channel_for(Shared& shared, TopicState& topic, const RawMessage& m);
    static bool record_json(Shared& shared, TopicState& topic, const RawMessage& m, std::uint64_t now);
    /// Channels recorded as JSON count too.
    static std::size_t json_channels(const TopicState& topic);
    static mcap::KeyValues channel_metadata(Shared& shared, const RawMessage& m);
    /// Writes the held messages of senders whose type is known by now, or whose wait is over (all of
    /// them with `all`: inferred when still unknown). Called with the mutex held.
    static void settle_waiting(Shared& shared, std::uint64_t now, bool all);
    /// The type the sender of `m` advertised for `topic`, when the recorder can use it (a JSON Schema).
    static SenderType advertised_type(Shared& shared, const std::string& topic, const RawMessage& m);
    /// Makes the sender's writer (typed when `type` is given) and writes its held messages.
    /// `m`: a message of that sender on that topic (its codec and sender id name the channels).
    static void settle_sender(
        Shared& shared, TopicState& topic, JsonSender& sender, const RawMessage& m, std::optional<AdvertisedType> type);
    /// Writes one message of a sender as JSON, or as msgpack when it cannot be (with one warning).
    static void write_sender_message(Shared& shared,
                                     TopicState& topic,
                                     JsonSender& sender,
                                     const RawMessage& m,
                                     std::span<const std::byte> payload,
                                     std::uint64_t log_time,
                                     std::uint64_t publish_time);

    Node& node_;
    std::string path_;
    RecorderOptions options_;
    std::shared_ptr<Shared> shared_;
    std::vector<std::string> listened_;
    bool finished_ = false;
};

/// CLOCK_REALTIME in ns since the epoch.
std::uint64_t realtime_ns() noexcept;

}  // namespace meshy::bag
