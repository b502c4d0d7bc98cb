#include "bag/recorder.hpp"

#include <time.h>

#include <algorithm>
#include <meshy/log.hpp>

#include "bag/codec_encoding.hpp"

namespace meshy::bag {

std::uint64_t realtime_ns() noexcept {
    timespec ts{};
    clock_gettime(CLOCK_REALTIME, &ts);
    return static_cast<std::uint64_t>(ts.tv_sec) * 1'000'000'000u + static_cast<std::uint64_t>(ts.tv_nsec);
}

Recorder::Recorder(Node& node, std::string path, RecorderOptions options)
    : node_(node),
      path_(std::move(path)),
      options_(std::move(options)),
      shared_(std::make_shared<Shared>(node, path_, options_.writer)) {
    shared_->json = options_.json;
}

Recorder::~Recorder() {
    if (!finished_) {
        try {
            finish();
        } catch (...) {  // NOLINT(bugprone-empty-catch): a destructor must not throw; finish() reports errors
        }
    }
}

void Recorder::start() {
    for (const auto& topic : options_.topics) {
        record_topic(topic);
    }
}

bool Recorder::record_topic(const std::string& topic) {
    if (std::find(listened_.begin(), listened_.end(), topic) != listened_.end()) {
        return false;
    }
    TopicState* state = nullptr;
    {
        std::lock_guard lock(shared_->mutex);
        shared_->topics.push_back(TopicState{topic, {}, 0, {}});
        state = &shared_->topics.back();
    }
    listened_.push_back(topic);
    node_.listen_raw(topic, [shared = shared_, state](const RawMessage& m) { on_message(*shared, *state, m); });
    return true;
}

std::vector<std::string> Recorder::discover() {
    std::vector<std::string> added;
    if (!discovers() || finished_) {
        return added;
    }
    for (const auto& info : node_.nodes()) {
        if (info.is_self) {
            continue;
        }
        // What it listens to and what it sends: a topic nobody in the mesh listens to is recorded too.
        std::vector<std::string> seen = info.topics;
        for (const auto& p : info.publications) {
            seen.push_back(p.topic);
        }
        for (const auto& topic : seen) {
            const bool wanted = options_.all || (options_.include && std::regex_search(topic, *options_.include));
            if (!wanted || (options_.exclude && std::regex_search(topic, *options_.exclude))) {
                continue;
            }
            if (record_topic(topic)) {
                added.push_back(topic);
            }
        }
    }
    return added;
}

std::uint16_t Recorder::channel_for(Shared& shared, TopicState& topic, const RawMessage& m) {
    if (topic.last < topic.channels.size()) {
        const auto& c = topic.channels[topic.last];
        if (c.codec == m.codec && c.sender_id == m.sender_id) {
            return c.channel;
        }
    }
    for (std::size_t i = 0; i < topic.channels.size(); ++i) {
        if (topic.channels[i].codec == m.codec && topic.channels[i].sender_id == m.sender_id) {
            topic.last = i;
            return topic.channels[i].channel;
        }
    }
    // A new sender or codec on this topic: a new channel, named after the sender while it is known.
    auto& schema = shared.schema_of_codec[static_cast<std::uint8_t>(m.codec)];
    if (schema == 0) {
        schema = shared.writer.add_schema(schema_name(m.codec), "");
    }
    const auto id =
        shared.writer.add_channel(schema, topic.topic, message_encoding(m.codec), channel_metadata(shared, m));
    topic.channels.push_back(ChannelKey{m.codec, std::string(m.sender_id), id, 0});
    topic.last = topic.channels.size() - 1;
    return id;
}

mcap::KeyValues Recorder::channel_metadata(Shared& shared, const RawMessage& m) {
    mcap::KeyValues metadata{{std::string(metadata_codec), std::to_string(static_cast<unsigned>(m.codec))},
                             {std::string(metadata_sender_id), std::string(m.sender_id)}};
    for (const auto& n : shared.node->nodes()) {
        if (n.id == m.sender_id) {
            metadata.emplace_back(std::string(metadata_sender), n.name + "@" + n.host);
            break;
        }
    }
    return metadata;
}

bool Recorder::record_json(Shared& shared, TopicState& topic, const RawMessage& m, std::uint64_t now) {
    auto sender = std::find_if(topic.json_senders.begin(), topic.json_senders.end(),
                               [&](const JsonSender& s) { return s.sender_id == m.sender_id; });
    if (sender == topic.json_senders.end()) {
        topic.json_senders.push_back(
            JsonSender{std::string(m.sender_id), JsonChannelWriter(topic.topic, channel_metadata(shared, m))});
        sender = topic.json_senders.end() - 1;
    }
    if (!sender->writer.json_ok()) {
        return false;
    }
    if (sender->writer.write(shared.writer, m.payload, now, m.sent_at_ns != 0 ? m.sent_at_ns : now)) {
        return true;
    }
    log(LogLevel::warn, "bag record: topic '" + topic.topic +
                            "' carries a message without a JSON form (a map with keys that are not strings?): "
                            "this sender's messages are recorded as msgpack from here on");
    return false;
}

void Recorder::on_message(Shared& shared, TopicState& topic, const RawMessage& m) {
    std::lock_guard lock(shared.mutex);
    if (shared.finished || shared.error) {
        return;
    }
    try {
        // Taken under the lock, so log times grow in the order messages enter the file.
        const std::uint64_t now = realtime_ns();
        if (shared.json && m.codec == CodecId::msgpack && record_json(shared, topic, m, now)) {
            return;
        }
        const std::uint16_t channel = channel_for(shared, topic, m);
        auto& key = topic.channels[topic.last];
        shared.writer.add_message(channel, key.next_sequence++, now, m.sent_at_ns != 0 ? m.sent_at_ns : now, m.payload);
    } catch (const std::exception& e) {
        shared.error = e.what();
    }
}

std::size_t Recorder::json_channels(const TopicState& topic) {
    return static_cast<std::size_t>(std::count_if(topic.json_senders.begin(), topic.json_senders.end(),
                                                  [](const JsonSender& s) { return s.writer.channels() > 0; }));
}

void Recorder::tick() {
    std::lock_guard lock(shared_->mutex);
    if (shared_->finished || shared_->error) {
        return;
    }
    const auto start = shared_->writer.open_chunk_start_time();
    if (!start) {
        return;
    }
    const std::uint64_t now = realtime_ns();
    const auto age = static_cast<std::uint64_t>(options_.max_chunk_age.count());
    // A clock that stepped back (now < start) also flushes: better early than never.
    if (now < *start || now - *start >= age) {
        try {
            shared_->writer.flush_chunk();
        } catch (const std::exception& e) {
            shared_->error = e.what();
        }
    }
}

RecorderStats Recorder::stats() const {
    std::lock_guard lock(shared_->mutex);
    const WriterStats w = shared_->writer.stats();
    RecorderStats s;
    s.messages = w.message_count;
    s.bytes = w.message_bytes;
    s.file_bytes = w.file_bytes;
    s.topics = listened_.size();
    for (const auto& t : shared_->topics) {
        s.channels += t.channels.size() + json_channels(t);
        s.recorded_topics += t.channels.empty() && json_channels(t) == 0 ? 0 : 1;
    }
    s.start_time = w.message_start_time;
    s.end_time = w.message_end_time;
    return s;
}

std::optional<std::string> Recorder::error() const {
    std::lock_guard lock(shared_->mutex);
    return shared_->error;
}

RecorderStats Recorder::finish() {
    if (finished_) {
        return stats();
    }
    finished_ = true;
    {
        // From here on, callbacks still queued on the node's thread return at once.
        std::lock_guard lock(shared_->mutex);
        shared_->finished = true;
    }
    // Not under the mutex: the node takes its own locks, and its thread may be waiting for ours.
    for (const auto& topic : listened_) {
        node_.stop_listening(topic);
    }
    RecorderStats s = stats();
    std::lock_guard lock(shared_->mutex);
    if (s.messages == 0) {
        shared_->writer.discard();
    } else {
        shared_->writer.close();
        s.file_bytes = shared_->writer.stats().file_bytes;
    }
    return s;
}

}  // namespace meshy::bag
