#include "wire/frame.hpp"

#include <bit>
#include <cstring>

namespace meshy::detail::wire {
namespace {

// Little-endian stores and loads; memcpy keeps them free of alignment assumptions.
void put_u8(Buffer& out, std::uint8_t v) {
    out.append(&v, 1);
}
void put_u16(Buffer& out, std::uint16_t v) {
    const std::uint8_t b[2] = {static_cast<std::uint8_t>(v), static_cast<std::uint8_t>(v >> 8)};
    out.append(b, 2);
}
void put_u32(Buffer& out, std::uint32_t v) {
    std::uint8_t b[4];
    for (int i = 0; i < 4; ++i) {
        b[i] = static_cast<std::uint8_t>(v >> (8 * i));
    }
    out.append(b, 4);
}
void put_str8(Buffer& out, std::string_view s) {
    const std::size_t n = s.size() > 255 ? 255 : s.size();
    put_u8(out, static_cast<std::uint8_t>(n));
    out.append(s.data(), n);
}
void put_str16(Buffer& out, std::string_view s) {
    const std::size_t n = s.size() > 0xffff ? 0xffff : s.size();
    put_u16(out, static_cast<std::uint16_t>(n));
    out.append(s.data(), n);
}

template <int N>
std::uint64_t load_le_n(const std::byte* p) {
    if constexpr (std::endian::native == std::endian::little) {
        if constexpr (N == 2) {
            std::uint16_t v;
            std::memcpy(&v, p, 2);
            return v;
        } else if constexpr (N == 4) {
            std::uint32_t v;
            std::memcpy(&v, p, 4);
            return v;
        } else if constexpr (N == 8) {
            std::uint64_t v;
            std::memcpy(&v, p, 8);
            return v;
        }
    }
    std::uint64_t v = 0;
    for (int i = 0; i < N; ++i) {
        v |= static_cast<std::uint64_t>(std::to_integer<std::uint8_t>(p[i])) << (8 * i);
    }
    return v;
}

inline std::uint64_t load_le(const std::byte* p, int n) {
    switch (n) {
        case 1:
            return std::to_integer<std::uint8_t>(p[0]);
        case 2:
            return load_le_n<2>(p);
        case 4:
            return load_le_n<4>(p);
        default:
            return load_le_n<8>(p);
    }
}

inline void store_u32(std::byte* p, std::uint32_t v) {
    if constexpr (std::endian::native == std::endian::little) {
        std::memcpy(p, &v, 4);
    } else {
        for (int i = 0; i < 4; ++i) {
            p[i] = static_cast<std::byte>(v >> (8 * i));
        }
    }
}

inline void store_u64(std::byte* p, std::uint64_t v) {
    if constexpr (std::endian::native == std::endian::little) {
        std::memcpy(p, &v, 8);
    } else {
        for (int i = 0; i < 8; ++i) {
            p[i] = static_cast<std::byte>(v >> (8 * i));
        }
    }
}

/// Bounds-checked reader over a body.
class Reader {
public:
    explicit Reader(std::span<const std::byte> in) : in_(in) {}
    bool u8(std::uint8_t& v) { return fixed(v, 1); }
    bool u16(std::uint16_t& v) { return fixed(v, 2); }
    bool u32(std::uint32_t& v) { return fixed(v, 4); }
    bool u64(std::uint64_t& v) { return fixed(v, 8); }
    bool bytes(std::size_t n, std::span<const std::byte>& out) {
        if (in_.size() - pos_ < n) {
            return false;
        }
        out = in_.subspan(pos_, n);
        pos_ += n;
        return true;
    }
    bool str(std::size_t n, std::string_view& out) {
        std::span<const std::byte> b;
        if (!bytes(n, b)) {
            return false;
        }
        out = {reinterpret_cast<const char*>(b.data()), b.size()};
        return true;
    }
    bool str8(std::string& out) {
        std::uint8_t n = 0;
        std::string_view s;
        if (!u8(n) || !str(n, s)) {
            return false;
        }
        out.assign(s);
        return true;
    }
    bool str16(std::string& out) {
        std::uint16_t n = 0;
        std::string_view s;
        if (!u16(n) || !str(n, s)) {
            return false;
        }
        out.assign(s);
        return true;
    }
    std::span<const std::byte> rest() {
        auto r = in_.subspan(pos_);
        pos_ = in_.size();
        return r;
    }
    bool done() const { return pos_ == in_.size(); }

private:
    template <class T>
    bool fixed(T& v, int n) {
        if (in_.size() - pos_ < static_cast<std::size_t>(n)) {
            return false;
        }
        v = static_cast<T>(load_le(in_.data() + pos_, n));
        pos_ += static_cast<std::size_t>(n);
        return true;
    }
    std::span<const std::byte> in_;
    std::size_t pos_ = 0;
};

std::size_t begin_frame(Buffer& out, FrameType type) {
    const std::size_t start = out.size();
    put_u32(out, 0);
    put_u8(out, static_cast<std::uint8_t>(type));
    return start;
}

void end_frame(Buffer& out, std::size_t start) {
    store_u32(out.data() + start, static_cast<std::uint32_t>(out.size() - start - 4));
}

}  // namespace

void encode_handshake(Buffer& out, const Handshake& hs) {
    out.append(magic, 4);
    put_u16(out, hs.version);
    const std::size_t len_at = out.size();
    put_u16(out, 0);
    const std::size_t body_start = out.size();
    put_str8(out, hs.id);
    put_str8(out, hs.domain);
    put_str8(out, hs.name);
    put_str8(out, hs.host);
    const auto body = static_cast<std::uint16_t>(out.size() - body_start);
    out.data()[len_at] = static_cast<std::byte>(body & 0xff);
    out.data()[len_at + 1] = static_cast<std::byte>(body >> 8);
}

Parse decode_handshake(std::span<const std::byte> in, Handshake& out, std::size_t& consumed, std::string& reason) {
    // Judge the magic on as few bytes as have arrived, so garbage is refused at once.
    const std::size_t have_magic = in.size() < 4 ? in.size() : 4;
    if (std::memcmp(in.data(), magic, have_magic) != 0) {
        reason = "wrong magic (not a meshy peer)";
        return Parse::error;
    }
    if (in.size() < handshake_prefix) {
        return Parse::need_more;
    }
    const auto version = static_cast<std::uint16_t>(load_le(in.data() + 4, 2));
    const auto body_len = static_cast<std::size_t>(load_le(in.data() + 6, 2));
    if (body_len > max_handshake_body) {
        reason = "handshake too long (" + std::to_string(body_len) + " bytes)";
        return Parse::error;
    }
    if (in.size() < handshake_prefix + body_len) {
        return Parse::need_more;
    }
    Reader r(in.subspan(handshake_prefix, body_len));
    Handshake hs;
    hs.version = version;
    if (!r.str8(hs.id) || !r.str8(hs.domain) || !r.str8(hs.name) || !r.str8(hs.host) || !r.done()) {
        reason = "malformed handshake body";
        return Parse::error;
    }
    if (hs.id.empty()) {
        reason = "handshake without a node id";
        return Parse::error;
    }
    out = std::move(hs);
    consumed = handshake_prefix + body_len;
    return Parse::ok;
}

Parse next_frame(std::span<const std::byte> in,
                 std::size_t max_frame,
                 FrameView& out,
                 std::size_t& consumed,
                 std::size_t& needed,
                 std::string& reason) {
    needed = 0;
    if (in.size() < 4) {
        return Parse::need_more;
    }
    const std::size_t length = static_cast<std::size_t>(load_le_n<4>(in.data()));
    if (length == 0) {
        reason = "zero-length frame";
        return Parse::error;
    }
    if (length > max_frame) {
        reason = "frame of " + std::to_string(length) + " bytes exceeds the maximum of " + std::to_string(max_frame);
        return Parse::error;
    }
    const auto type = std::to_integer<std::uint8_t>(in.size() > 4 ? in[4] : std::byte{0});
    if (in.size() > 4 &&
        (type < static_cast<std::uint8_t>(FrameType::info) || type > static_cast<std::uint8_t>(FrameType::adverts))) {
        reason = "unknown frame type " + std::to_string(type);
        return Parse::error;
    }
    if (in.size() < 4 + length) {
        needed = 4 + length;
        return Parse::need_more;
    }
    out.type = static_cast<FrameType>(type);
    out.body = in.subspan(frame_prefix, length - 1);
    consumed = 4 + length;
    return Parse::ok;
}

void encode_info(Buffer& out, const Info& info) {
    const std::size_t start = begin_frame(out, FrameType::info);
    put_u32(out, info.revision);
    put_u32(out, static_cast<std::uint32_t>(info.topics.size()));
    for (const auto& t : info.topics) {
        put_str16(out, t);
    }
    put_u32(out, static_cast<std::uint32_t>(info.services.size()));
    for (const auto& s : info.services) {
        put_str16(out, s);
    }
    put_u32(out, static_cast<std::uint32_t>(info.publications.size()));
    for (const auto& p : info.publications) {
        put_str16(out, p.topic);
        put_str16(out, p.type);
        put_str16(out, p.schema_encoding);
        put_u32(out, static_cast<std::uint32_t>(p.schema.size()));
        out.append(p.schema.data(), p.schema.size());
        put_u8(out, p.latched ? 1 : 0);
    }
    end_frame(out, start);
}

// The headers of calls and replies are written with one grow() (they precede every round trip).
void encode_request_header(
    Buffer& out, std::uint64_t call_id, CodecId codec, std::string_view service, std::size_t payload_size) {
    const std::size_t name = service.size() > 0xffff ? 0xffff : service.size();
    const std::size_t size = frame_prefix + 8 + 1 + 2 + name;
    std::byte* p = out.grow(size);
    store_u32(p, static_cast<std::uint32_t>(size - 4 + payload_size));
    p[4] = static_cast<std::byte>(FrameType::request);
    store_u64(p + 5, call_id);
    p[13] = static_cast<std::byte>(codec);
    p[14] = static_cast<std::byte>(name & 0xff);
    p[15] = static_cast<std::byte>(name >> 8);
    if (name) {
        std::memcpy(p + 16, service.data(), name);
    }
}

void encode_reply_header(
    Buffer& out, std::uint64_t call_id, ReplyStatus status, CodecId codec, std::size_t payload_size) {
    constexpr std::size_t size = frame_prefix + 8 + 1 + 1;
    std::byte* p = out.grow(size);
    store_u32(p, static_cast<std::uint32_t>(size - 4 + payload_size));
    p[4] = static_cast<std::byte>(FrameType::reply);
    store_u64(p + 5, call_id);
    p[13] = static_cast<std::byte>(status);
    p[14] = static_cast<std::byte>(codec);
}

void encode_request(
    Buffer& out, std::uint64_t call_id, CodecId codec, std::string_view service, std::span<const std::byte> payload) {
    encode_request_header(out, call_id, codec, service, payload.size());
    out.append(payload.data(), payload.size());
}

void encode_reply(
    Buffer& out, std::uint64_t call_id, ReplyStatus status, CodecId codec, std::span<const std::byte> payload) {
    encode_reply_header(out, call_id, status, codec, payload.size());
    out.append(payload.data(), payload.size());
}

void encode_empty(Buffer& out, FrameType type) {
    const std::size_t start = begin_frame(out, type);
    end_frame(out, start);
}

void encode_adverts(Buffer& out, const Adverts& adverts) {
    const std::size_t start = begin_frame(out, FrameType::adverts);
    put_u8(out, adverts.subscribe ? 1 : 0);
    put_u32(out, static_cast<std::uint32_t>(adverts.adverts.size()));
    for (const auto& fields : adverts.adverts) {
        put_u16(out, static_cast<std::uint16_t>(fields.size()));
        for (const auto& [key, value] : fields) {
            put_str8(out, key);
            put_u32(out, static_cast<std::uint32_t>(value.size()));
            out.append(value.data(), value.size());
        }
    }
    put_u32(out, static_cast<std::uint32_t>(adverts.gone.size()));
    for (const auto& id : adverts.gone) {
        put_str8(out, id);
    }
    end_frame(out, start);
}

void begin_message(Buffer& out, CodecId codec, std::uint64_t sent_at_ns, std::string_view topic) {
    const std::size_t header = frame_prefix + message_header;
    out.reserve(out.size() + header + topic.size() + 64);
    std::byte* p = out.grow(header + topic.size());
    store_u32(p, 0);  // length: finish_frame()
    p[4] = static_cast<std::byte>(FrameType::message);
    p[5] = static_cast<std::byte>(codec);
    p[6] = std::byte{0};  // flags, reserved
    p[7] = static_cast<std::byte>(topic.size() & 0xff);
    p[8] = static_cast<std::byte>(topic.size() >> 8);
    store_u64(p + 9, sent_at_ns);
    if (!topic.empty()) {
        std::memcpy(p + header, topic.data(), topic.size());
    }
}

void finish_frame(Buffer& out, std::size_t extra) {
    store_u32(out.data(), static_cast<std::uint32_t>(out.size() + extra - 4));
}

MessageLayout message_layout(std::string_view topic) {
    MessageLayout l;
    l.topic_offset = frame_prefix + message_header;
    l.topic_size = topic.size();
    l.payload_offset = l.topic_offset + topic.size();
    return l;
}

bool decode_info(std::span<const std::byte> body, Info& out) {
    Reader r(body);
    Info info;
    std::uint32_t n = 0;
    if (!r.u32(info.revision) || !r.u32(n)) {
        return false;
    }
    // Each entry takes at least 2 bytes, which bounds what a hostile count can make us reserve.
    if (n > body.size() / 2) {
        return false;
    }
    info.topics.resize(n);
    for (auto& t : info.topics) {
        if (!r.str16(t)) {
            return false;
        }
    }
    if (!r.u32(n) || n > body.size() / 2) {
        return false;
    }
    info.services.resize(n);
    for (auto& s : info.services) {
        if (!r.str16(s)) {
            return false;
        }
    }
    // Each publication takes at least 11 bytes (three empty strings, an empty schema, a flag).
    if (!r.u32(n) || n > body.size() / 11) {
        return false;
    }
    info.publications.resize(n);
    for (auto& p : info.publications) {
        std::uint32_t schema_size = 0;
        std::string_view schema;
        std::uint8_t flags = 0;
        if (!r.str16(p.topic) || !r.str16(p.type) || !r.str16(p.schema_encoding) || !r.u32(schema_size) ||
            !r.str(schema_size, schema) || !r.u8(flags) || flags > 1) {
            return false;
        }
        p.schema.assign(schema);
        p.latched = flags == 1;
    }
    if (!r.done()) {
        return false;
    }
    out = std::move(info);
    return true;
}

bool decode_message(std::span<const std::byte> body, Message& out) {
    // The hot path of every received message: fixed fields first, one bounds check for them.
    if (body.size() < message_header) {
        return false;
    }
    const std::byte* p = body.data();
    const auto topic_len = static_cast<std::size_t>(load_le_n<2>(p + 2));
    if (body.size() - message_header < topic_len) {
        return false;
    }
    out.codec = static_cast<CodecId>(std::to_integer<std::uint8_t>(p[0]));
    out.sent_at_ns = load_le_n<8>(p + 4);
    out.topic = std::string_view(reinterpret_cast<const char*>(p + message_header), topic_len);
    out.payload = body.subspan(message_header + topic_len);
    return true;
}

bool decode_request(std::span<const std::byte> body, Request& out) {
    Reader r(body);
    std::uint8_t codec = 0;
    std::uint16_t len = 0;
    if (!r.u64(out.call_id) || !r.u8(codec) || !r.u16(len) || !r.str(len, out.service)) {
        return false;
    }
    out.codec = static_cast<CodecId>(codec);
    out.payload = r.rest();
    return true;
}

bool decode_reply(std::span<const std::byte> body, Reply& out) {
    Reader r(body);
    std::uint8_t status = 0, codec = 0;
    if (!r.u64(out.call_id) || !r.u8(status) || !r.u8(codec)) {
        return false;
    }
    if (status > static_cast<std::uint8_t>(ReplyStatus::bad_request)) {
        return false;
    }
    out.status = static_cast<ReplyStatus>(status);
    out.codec = static_cast<CodecId>(codec);
    out.payload = r.rest();
    return true;
}

bool decode_adverts(std::span<const std::byte> body, Adverts& out) {
    Reader r(body);
    Adverts a;
    std::uint8_t flags = 0;
    std::uint32_t n = 0;
    if (!r.u8(flags) || flags > 1 || !r.u32(n) || n > max_frame_adverts) {
        return false;
    }
    a.subscribe = flags == 1;
    a.adverts.reserve(n);
    for (std::uint32_t i = 0; i < n; ++i) {
        std::uint16_t fields = 0;
        if (!r.u16(fields) || fields > max_advert_fields) {
            return false;
        }
        auto& list = a.adverts.emplace_back();
        list.reserve(fields);
        for (std::uint16_t f = 0; f < fields; ++f) {
            std::string key;
            std::uint32_t size = 0;
            std::string_view value;
            if (!r.str8(key) || !r.u32(size) || !r.str(size, value)) {
                return false;
            }
            list.emplace_back(std::move(key), std::string(value));
        }
    }
    if (!r.u32(n) || n > max_frame_adverts) {
        return false;
    }
    a.gone.resize(n);
    for (auto& id : a.gone) {
        if (!r.str8(id)) {
            return false;
        }
    }
    if (!r.done()) {
        return false;
    }
    out = std::move(a);
    return true;
}

}  // namespace meshy::detail::wire
