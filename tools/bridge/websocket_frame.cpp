#include "bridge/websocket_frame.hpp"

#include "bridge/utf8.hpp"

namespace meshy::cli::bridge {
namespace {

FrameParse fail(std::uint16_t code, std::string why) {
    FrameParse p;
    p.status = FrameParse::Status::error;
    p.close = code;
    p.error = std::move(why);
    return p;
}

WsEvent error_event(std::uint16_t code, std::string why) {
    WsEvent e;
    e.kind = WsEvent::Kind::error;
    e.code = code;
    e.data = std::move(why);
    return e;
}

bool valid_close_code(std::uint16_t code) {
    if (code >= 3000 && code <= 4999) {
        return true;
    }
    switch (code) {
        case 1000:
        case 1001:
        case 1002:
        case 1003:
        case 1007:
        case 1008:
        case 1009:
        case 1010:
        case 1011:
            return true;
        default:
            return false;
    }
}

}  // namespace

FrameParse parse_frame(std::string_view bytes, std::uint64_t max_payload, bool from_client) {
    if (bytes.size() < 2) {
        return {};
    }
    const auto b0 = static_cast<std::uint8_t>(bytes[0]);
    const auto b1 = static_cast<std::uint8_t>(bytes[1]);
    if (b0 & 0x70) {
        return fail(close_code::protocol_error, "reserved bits set without a negotiated extension");
    }
    const std::uint8_t op = b0 & 0x0F;
    const bool fin = (b0 & 0x80) != 0;
    const bool control = (op & 0x8) != 0;
    if (op != 0x0 && op != 0x1 && op != 0x2 && op != 0x8 && op != 0x9 && op != 0xA) {
        return fail(close_code::protocol_error, "unknown opcode " + std::to_string(op));
    }
    const bool masked = (b1 & 0x80) != 0;
    if (from_client && !masked) {
        return fail(close_code::protocol_error, "unmasked frame from a client");
    }
    if (!from_client && masked) {
        return fail(close_code::protocol_error, "masked frame from a server");
    }
    std::uint64_t length = b1 & 0x7F;
    std::size_t pos = 2;
    if (length == 126) {
        if (bytes.size() < 4) {
            return {};
        }
        length =
            static_cast<std::uint64_t>(static_cast<std::uint8_t>(bytes[2])) << 8 | static_cast<std::uint8_t>(bytes[3]);
        if (length < 126) {
            return fail(close_code::protocol_error, "non-minimal payload length");
        }
        pos = 4;
    } else if (length == 127) {
        if (bytes.size() < 10) {
            return {};
        }
        length = 0;
        for (std::size_t i = 2; i < 10; ++i) {
            length = length << 8 | static_cast<std::uint8_t>(bytes[i]);
        }
        if (length >> 63) {
            return fail(close_code::protocol_error, "payload length with the top bit set");
        }
        if (length <= 0xFFFF) {
            return fail(close_code::protocol_error, "non-minimal payload length");
        }
        pos = 10;
    }
    if (control && (!fin || length > 125)) {
        return fail(close_code::protocol_error, "fragmented or oversized control frame");
    }
    if (length > max_payload) {
        return fail(close_code::message_too_big, "frame of " + std::to_string(length) + " bytes exceeds the limit of " +
                                                     std::to_string(max_payload));
    }
    std::uint8_t key[4] = {0, 0, 0, 0};
    if (masked) {
        if (bytes.size() < pos + 4) {
            return {};
        }
        for (std::size_t i = 0; i < 4; ++i) {
            key[i] = static_cast<std::uint8_t>(bytes[pos + i]);
        }
        pos += 4;
    }
    if (bytes.size() - pos < length) {
        return {};
    }
    FrameParse out;
    out.status = FrameParse::Status::complete;
    out.frame.fin = fin;
    out.frame.opcode = static_cast<Opcode>(op);
    out.frame.masked = masked;
    out.frame.payload.assign(bytes.substr(pos, static_cast<std::size_t>(length)));
    if (masked) {
        char* p = out.frame.payload.data();
        for (std::size_t i = 0; i < out.frame.payload.size(); ++i) {
            p[i] = static_cast<char>(static_cast<std::uint8_t>(p[i]) ^ key[i & 3]);
        }
    }
    out.consumed = pos + static_cast<std::size_t>(length);
    return out;
}

std::string encode_frame(Opcode opcode, std::string_view payload, bool fin, std::optional<std::uint32_t> mask) {
    std::string out;
    out.reserve(payload.size() + 14);
    out += static_cast<char>((fin ? 0x80 : 0x00) | static_cast<std::uint8_t>(opcode));
    const char mask_bit = mask ? static_cast<char>(0x80) : 0;
    const std::uint64_t n = payload.size();
    if (n < 126) {
        out += static_cast<char>(mask_bit | static_cast<char>(n));
    } else if (n <= 0xFFFF) {
        out += static_cast<char>(mask_bit | 126);
        out += static_cast<char>((n >> 8) & 0xFF);
        out += static_cast<char>(n & 0xFF);
    } else {
        out += static_cast<char>(mask_bit | 127);
        for (int shift = 56; shift >= 0; shift -= 8) {
            out += static_cast<char>((n >> shift) & 0xFF);
        }
    }
    if (mask) {
        const std::uint8_t key[4] = {static_cast<std::uint8_t>(*mask >> 24), static_cast<std::uint8_t>(*mask >> 16),
                                     static_cast<std::uint8_t>(*mask >> 8), static_cast<std::uint8_t>(*mask)};
        for (const std::uint8_t k : key) {
            out += static_cast<char>(k);
        }
        const std::size_t start = out.size();
        out += payload;
        for (std::size_t i = 0; i < payload.size(); ++i) {
            out[start + i] = static_cast<char>(static_cast<std::uint8_t>(out[start + i]) ^ key[i & 3]);
        }
    } else {
        out += payload;
    }
    return out;
}

std::string close_payload(std::uint16_t code, std::string_view reason) {
    std::string out;
    out += static_cast<char>(code >> 8);
    out += static_cast<char>(code & 0xFF);
    if (reason.size() > 123) {
        reason = reason.substr(0, 123);
        // Do not cut a UTF-8 sequence in half.
        while (!reason.empty() && !valid_utf8(reason)) {
            reason.remove_suffix(1);
        }
    }
    out += reason;
    return out;
}

WsEvent MessageAssembler::on_frame(Frame&& frame) {
    switch (frame.opcode) {
        case Opcode::ping: {
            WsEvent e;
            e.kind = WsEvent::Kind::ping;
            e.data = std::move(frame.payload);
            return e;
        }
        case Opcode::pong: {
            WsEvent e;
            e.kind = WsEvent::Kind::pong;
            e.data = std::move(frame.payload);
            return e;
        }
        case Opcode::close: {
            WsEvent e;
            e.kind = WsEvent::Kind::close;
            if (frame.payload.empty()) {
                e.code = close_code::no_status;
                return e;
            }
            if (frame.payload.size() == 1) {
                return error_event(close_code::protocol_error, "close frame with a one-byte payload");
            }
            e.code = static_cast<std::uint16_t>(static_cast<std::uint8_t>(frame.payload[0]) << 8 |
                                                static_cast<std::uint8_t>(frame.payload[1]));
            if (!valid_close_code(e.code)) {
                return error_event(close_code::protocol_error, "invalid close code " + std::to_string(e.code));
            }
            e.data = frame.payload.substr(2);
            if (!valid_utf8(e.data)) {
                return error_event(close_code::invalid_payload, "close reason is not UTF-8");
            }
            return e;
        }
        case Opcode::continuation:
            if (!in_message_) {
                return error_event(close_code::protocol_error, "continuation frame without a message");
            }
            break;
        case Opcode::text:
        case Opcode::binary:
            if (in_message_) {
                return error_event(close_code::protocol_error, "new message before the last one ended");
            }
            in_message_ = true;
            binary_ = frame.opcode == Opcode::binary;
            buffer_.clear();
            break;
    }
    if (buffer_.size() + frame.payload.size() > max_message_) {
        in_message_ = false;
        buffer_.clear();
        return error_event(close_code::message_too_big,
                           "message exceeds the limit of " + std::to_string(max_message_) + " bytes");
    }
    if (buffer_.empty()) {
        buffer_ = std::move(frame.payload);
    } else {
        buffer_ += frame.payload;
    }
    if (!frame.fin) {
        return {};
    }
    in_message_ = false;
    WsEvent e;
    e.kind = WsEvent::Kind::message;
    e.binary = binary_;
    e.data = std::move(buffer_);
    buffer_.clear();
    if (!e.binary && !valid_utf8(e.data)) {
        return error_event(close_code::invalid_payload, "text message is not UTF-8");
    }
    return e;
}

}  // namespace meshy::cli::bridge
