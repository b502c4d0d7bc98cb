#include "bag/recorder.hpp"

#include <time.h>

#include <algorithm>
#include <meshy/log.hpp>

#include "bag/codec_encoding.hpp"
#include "bridge/foxglove_schema.hpp"

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

namespace {

/// How long a sender's first messages wait for its advertised schema (it comes over the link the
/// recorder dials when it sees the advert, normally within milliseconds), and how many of them.
constexpr std::uint64_t schema_wait_ns = 2'000'000'000;
constexpr std::size_t schema_wait_messages = 256;

}  // namespace

bool Recorder::record_json(Shared& shared, TopicState& topic, const RawMessage& m, std::uint64_t now) {
    auto sender = std::find_if(topic.json_senders.begin(), topic.json_senders.end(),
                               [&](const JsonSender& s) { return s.sender_id == m.sender_id; });
    if (sender == topic.json_senders.end()) {
        topic.json_senders.push_back(JsonSender{std::string(m.sender_id), std::nullopt, {}, now, {}});
        sender = topic.json_senders.end() - 1;
    }
    const std::uint64_t publish_time = m.sent_at_ns != 0 ? m.sent_at_ns : now;
    if (!sender->writer) {
        SenderType type = advertised_type(shared, topic.topic, m);
        if (!type.type && type.wait && sender->held.size() < schema_wait_messages &&
            now - sender->waiting_since < schema_wait_ns) {
            Buffer copy;
            copy.append(m.payload.data(), m.payload.size());
            sender->held.push_back(HeldMessage{std::move(copy), now, publish_time});
            if (!type.awaited.empty()) {
                sender->waited_type = std::move(type.awaited);
            }
            return true;
        }
        settle_sender(shared, topic, *sender, m, std::move(type.type));
    }
    write_sender_message(shared, topic, *sender, m, m.payload, now, publish_time);
    return true;
}

void Recorder::settle_sender(
    Shared& shared, TopicState& topic, JsonSender& sender, const RawMessage& m, std::optional<AdvertisedType> type) {
    if (!type && !sender.waited_type.empty()) {
        log(LogLevel::warn, "bag record: topic '" + topic.topic + "': the schema of its advertised type '" +
                                sender.waited_type + "' did not arrive; recording with an inferred schema");
    }
    sender.writer.emplace(topic.topic, channel_metadata(shared, m), std::move(type));
    auto held = std::move(sender.held);
    sender.held.clear();
    for (const auto& h : held) {
        write_sender_message(shared, topic, sender, m, h.payload.bytes(), h.log_time, h.publish_time);
    }
}

void Recorder::write_sender_message(Shared& shared,
                                    TopicState& topic,
                                    JsonSender& sender,
                                    const RawMessage& m,
                                    std::span<const std::byte> payload,
                                    std::uint64_t log_time,
                                    std::uint64_t publish_time) {
    if (sender.writer->json_ok()) {
        if (sender.writer->write(shared.writer, payload, log_time, publish_time)) {
            return;
        }
        log(LogLevel::warn, "bag record: topic '" + topic.topic + "' carries " + sender.writer->failure() +
                                ": this sender's messages are recorded as msgpack from here on");
    }
    const std::uint16_t channel = channel_for(shared, topic, m);
    auto& key = topic.channels[topic.last];
    shared.writer.add_message(channel, key.next_sequence++, log_time, publish_time, payload);
}

void Recorder::settle_waiting(Shared& shared, std::uint64_t now, bool all) {
    for (auto& topic : shared.topics) {
        for (auto& sender : topic.json_senders) {
            if (sender.writer || sender.held.empty()) {
                continue;
            }
            RawMessage m;
            m.topic = topic.topic;
            m.codec = CodecId::msgpack;
            m.sender_id = sender.sender_id;
            SenderType type = advertised_type(shared, topic.topic, m);
            if (!type.type && type.wait && !all && now - sender.waiting_since < schema_wait_ns) {
                continue;
            }
            settle_sender(shared, topic, sender, m, std::move(type.type));
        }
    }
}

Recorder::SenderType Recorder::advertised_type(Shared& shared, const std::string& topic, const RawMessage& m) {
    // A sender may reach the recorder before its advert does, and its schema comes in the Info
    // frame of the link the recorder dials to it once it sees the advert: until the advert lists
    // the topic, and while a type it names has no schema here, its messages wait (briefly).
    SenderType out;
    out.wait = true;
    for (const auto& n : shared.node->nodes()) {
        if (n.id != m.sender_id) {
            continue;
        }
        for (const auto& p : n.publications) {
            if (p.topic != topic) {
                continue;
            }
            out.wait = false;
            if (p.type.empty()) {
                return out;
            }
            if (p.schema_encoding == "jsonschema" && !p.schema.empty()) {
                out.type = AdvertisedType{p.type, p.schema};
            } else if (const auto* known = cli::bridge::find_known_type(p.type)) {
                out.type = AdvertisedType{known->name, known->schema};
            } else {
                out.wait = true;
                out.awaited = p.type;
            }
            return out;
        }
    }
    return out;
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
    return static_cast<std::size_t>(
        std::count_if(topic.json_senders.begin(), topic.json_senders.end(),
                      [](const JsonSender& s) { return s.writer && s.writer->channels() > 0; }));
}

void Recorder::tick() {
    std::lock_guard lock(shared_->mutex);
    if (shared_->finished || shared_->error) {
        return;
    }
    const std::uint64_t now = realtime_ns();
    try {
        settle_waiting(*shared_, now, false);
    } catch (const std::exception& e) {
        shared_->error = e.what();
        return;
    }
    const auto start = shared_->writer.open_chunk_start_time();
    if (!start) {
        return;
    }
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
    {
        std::lock_guard lock(shared_->mutex);
        if (!shared_->error) {
            settle_waiting(*shared_, realtime_ns(), true);
        }
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
